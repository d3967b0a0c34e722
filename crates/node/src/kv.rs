//! Functions' key-value data on a node ([`KvStore`]): node-local by default, in its own
//! file under the node's data directory ([`LocalKv`], on redb), behind a trait so a shared
//! backend can take its place.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use edgefn_runtime::HostFuture;
use redb::{Database, ReadableDatabase, TableDefinition};

/// The store's file name under a node's data directory.
pub const KV_FILE: &str = "kv.redb";

/// Longest key-value key.
pub const MAX_KV_KEY_BYTES: usize = 512;
/// Largest key-value value.
pub const MAX_KV_VALUE_BYTES: usize = 1024 * 1024;

/// A function's key-value namespace store.
pub trait KvStore: Send + Sync {
    /// A live value of `function_id`'s key.
    fn get(&self, function_id: &str, key: &str) -> HostFuture<Option<Vec<u8>>>;
    /// Sets a key, to expire after `ttl` if given.
    fn put(&self, function_id: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> HostFuture<()>;
}

/// Keys are `<function id>\0<key>`; values are the expiry (ms since the epoch, 0 for
/// never, little-endian) followed by the value.
const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("kv");

/// The node-local store: one redb file.
#[derive(Clone)]
pub struct LocalKv {
    db: Arc<Database>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl LocalKv {
    /// Opens (creating, with its directory) the store at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = Database::create(path)?;
        let tx = db.begin_write()?;
        tx.open_table(TABLE)?;
        tx.commit()?;
        Ok(Self { db: Arc::new(db) })
    }

    fn get_now(&self, function_id: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(TABLE)?;
        let Some(stored) = table.get(format!("{function_id}\0{key}").as_str())? else { return Ok(None) };
        let (expiry, value) = stored.value().split_at(8);
        let expiry = u64::from_le_bytes(expiry.try_into()?);
        Ok((expiry == 0 || expiry > now_ms()).then(|| value.to_vec()))
    }

    fn put_now(&self, function_id: &str, key: &str, value: &[u8], ttl: Option<Duration>) -> anyhow::Result<()> {
        let now = now_ms();
        let expiry = ttl.map_or(0, |t| now.saturating_add(t.as_millis() as u64).max(1));
        let mut stored = expiry.to_le_bytes().to_vec();
        stored.extend_from_slice(value);
        let tx = self.db.begin_write()?;
        {
            let mut table = tx.open_table(TABLE)?;
            table.insert(format!("{function_id}\0{key}").as_str(), stored.as_slice())?;
            // Expired keys of this function go on the way.
            let (start, end) = (format!("{function_id}\0"), format!("{function_id}\u{1}"));
            table.retain_in(start.as_str()..end.as_str(), |_, v| {
                let expiry = u64::from_le_bytes(v[..8].try_into().unwrap_or_default());
                expiry == 0 || expiry > now
            })?;
        }
        tx.commit()?;
        Ok(())
    }
}

impl KvStore for LocalKv {
    fn get(&self, function_id: &str, key: &str) -> HostFuture<Option<Vec<u8>>> {
        let (this, function_id, key) = (self.clone(), function_id.to_string(), key.to_string());
        Box::pin(async move { tokio::task::spawn_blocking(move || this.get_now(&function_id, &key)).await? })
    }

    fn put(&self, function_id: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> HostFuture<()> {
        let (this, function_id, key) = (self.clone(), function_id.to_string(), key.to_string());
        Box::pin(async move {
            anyhow::ensure!(!key.is_empty() && key.len() <= MAX_KV_KEY_BYTES, "keys are 1 to {MAX_KV_KEY_BYTES} bytes");
            anyhow::ensure!(value.len() <= MAX_KV_VALUE_BYTES, "values are at most {MAX_KV_VALUE_BYTES} bytes");
            tokio::task::spawn_blocking(move || this.put_now(&function_id, &key, &value, ttl)).await?
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn namespaces_expiry_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv.redb");
        {
            let kv = LocalKv::open(&path).unwrap();
            kv.put("f1", "k", b"one".to_vec(), None).await.unwrap();
            kv.put("f1", "gone", b"x".to_vec(), Some(Duration::from_millis(1))).await.unwrap();
            kv.put("f2", "k", b"two".to_vec(), None).await.unwrap();
            assert!(kv.put("f1", "", b"x".to_vec(), None).await.is_err());
            assert!(kv.put("f1", "big", vec![0; MAX_KV_VALUE_BYTES + 1], None).await.is_err());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        let kv = LocalKv::open(&path).unwrap();
        assert_eq!(kv.get("f1", "k").await.unwrap().as_deref(), Some(&b"one"[..]));
        assert_eq!(kv.get("f2", "k").await.unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(kv.get("f1", "gone").await.unwrap(), None);
        assert_eq!(kv.get("f1", "big").await.unwrap(), None);
    }
}
