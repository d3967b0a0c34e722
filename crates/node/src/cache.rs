//! The node's artifact cache: module bytes on disk by SHA-256, verified before they are
//! written, bounded by total bytes and count with least-recently-used eviction that never
//! touches what the applied snapshot runs.
//!
//! An artifact is written to a temporary name, synced and renamed, so the cache holds
//! whole, verified files or nothing; temporary files a crash left are removed at open.
//! Reads verify the digest again and drop a file that no longer matches.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// Default bound of the cache's bytes: 10 GiB.
pub const DEFAULT_CACHE_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// Default bound of the cache's artifacts.
pub const DEFAULT_CACHE_ENTRIES: usize = 1_000;

/// Suffix of files being written.
const PARTIAL: &str = ".partial";

/// One cached artifact.
#[derive(Debug, Clone, Copy)]
struct Entry {
    size: u64,
    /// Logical clock of the last use: higher is more recent.
    used: u64,
}

#[derive(Debug, Default)]
struct Index {
    entries: BTreeMap<String, Entry>,
    clock: u64,
    bytes: u64,
}

/// The disk cache.
#[derive(Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    max_bytes: u64,
    max_entries: usize,
    index: Mutex<Index>,
}

/// The hex SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl ArtifactCache {
    /// Opens (creating) the cache in `dir`: removes unfinished writes and indexes the rest,
    /// older files as less recently used.
    pub fn open(dir: &Path, max_bytes: u64, max_entries: usize) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.contains(PARTIAL) {
                std::fs::remove_file(entry.path())?;
                continue;
            }
            let meta = entry.metadata()?;
            found.push((meta.modified().ok(), name, meta.len()));
        }
        found.sort();
        let mut index = Index::default();
        for (_, name, size) in found {
            index.clock += 1;
            index.bytes += size;
            index.entries.insert(name, Entry { size, used: index.clock });
        }
        Ok(Self { dir: dir.to_path_buf(), max_bytes, max_entries, index: Mutex::new(index) })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// Whether the artifact is cached.
    pub fn contains(&self, sha256: &str) -> bool {
        self.index.lock().expect("cache index").entries.contains_key(sha256)
    }

    /// How many artifacts and bytes are cached.
    pub fn usage(&self) -> (usize, u64) {
        let index = self.index.lock().expect("cache index");
        (index.entries.len(), index.bytes)
    }

    /// The bytes of a cached artifact, verified; `None` if it is absent or no longer
    /// matches its digest (then it is removed).
    pub fn read(&self, sha256: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let bytes = match std::fs::read(self.path(sha256)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.forget(sha256);
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if digest(&bytes) != sha256 {
            tracing::error!(sha256, "a cached artifact no longer matches its digest; removing it");
            let _ = std::fs::remove_file(self.path(sha256));
            self.forget(sha256);
            return Ok(None);
        }
        let mut index = self.index.lock().expect("cache index");
        index.clock += 1;
        let clock = index.clock;
        if let Some(e) = index.entries.get_mut(sha256) {
            e.used = clock;
        }
        Ok(Some(bytes))
    }

    /// Caches `bytes` as `sha256` after checking they hash to it; bytes that do not are
    /// refused and nothing is written.
    pub fn put(&self, sha256: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let actual = digest(bytes);
        anyhow::ensure!(actual == sha256, "digest mismatch: expected {sha256}, the bytes received hash to {actual}");
        // A name of its own: the same artifact may be written by two functions at once.
        let partial = self.dir.join(format!("{sha256}{PARTIAL}-{}", uuid::Uuid::new_v4()));
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&partial, self.path(sha256))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        let mut index = self.index.lock().expect("cache index");
        index.clock += 1;
        let entry = Entry { size: bytes.len() as u64, used: index.clock };
        if let Some(old) = index.entries.insert(sha256.to_string(), entry) {
            index.bytes -= old.size;
        }
        index.bytes += entry.size;
        Ok(())
    }

    fn forget(&self, sha256: &str) {
        let mut index = self.index.lock().expect("cache index");
        if let Some(old) = index.entries.remove(sha256) {
            index.bytes -= old.size;
        }
    }

    /// Removes least recently used artifacts until the cache is within its bounds, never
    /// one in `keep` (asked for only when the cache is over them). Returns how many were
    /// removed.
    pub fn evict<'a>(&self, keep: impl FnOnce() -> BTreeSet<&'a str>) -> usize {
        let victims: Vec<String> = {
            let index = self.index.lock().expect("cache index");
            if index.entries.len() <= self.max_entries && index.bytes <= self.max_bytes {
                return 0;
            }
            let keep = keep();
            let mut candidates: Vec<(u64, &String, u64)> =
                index.entries.iter().filter(|(sha, _)| !keep.contains(sha.as_str())).map(|(sha, e)| (e.used, sha, e.size)).collect();
            candidates.sort();
            let (mut count, mut bytes) = (index.entries.len(), index.bytes);
            let mut victims = Vec::new();
            for (_, sha, size) in candidates {
                if count <= self.max_entries && bytes <= self.max_bytes {
                    break;
                }
                victims.push(sha.clone());
                count -= 1;
                bytes -= size;
            }
            victims
        };
        for sha in &victims {
            if let Err(e) = std::fs::remove_file(self.path(sha))
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(sha256 = %sha, error = %e, "could not evict an artifact");
                continue;
            }
            self.forget(sha);
        }
        victims.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bytes_that_do_not_match_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(dir.path(), 1 << 20, 10).unwrap();
        let sha = digest(b"good");
        assert!(cache.put(&sha, b"evil").unwrap_err().to_string().contains("digest mismatch"));
        assert!(!cache.contains(&sha));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        cache.put(&sha, b"good").unwrap();
        assert_eq!(cache.read(&sha).unwrap().unwrap(), b"good");
    }

    #[test]
    fn evicts_least_recently_used_but_never_what_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ArtifactCache::open(dir.path(), 10, 2).unwrap();
        let (a, b, c) = (digest(b"aaaa"), digest(b"bbbb"), digest(b"cccc"));
        cache.put(&a, b"aaaa").unwrap();
        cache.put(&b, b"bbbb").unwrap();
        cache.put(&c, b"cccc").unwrap();
        cache.read(&a).unwrap();
        // Three entries over a bound of two: `b` is the least recently used, but kept.
        assert_eq!(cache.evict(|| [b.as_str()].into()), 1);
        assert!(cache.contains(&a) && cache.contains(&b) && !cache.contains(&c));
        assert_eq!(cache.usage(), (2, 8));
    }

    #[test]
    fn a_tampered_file_is_dropped_on_read_and_unfinished_writes_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let sha = digest(b"good");
        {
            let cache = ArtifactCache::open(dir.path(), 1 << 20, 10).unwrap();
            cache.put(&sha, b"good").unwrap();
        }
        std::fs::write(dir.path().join(&sha), b"evil").unwrap();
        std::fs::write(dir.path().join(format!("{sha}{PARTIAL}-1")), b"go").unwrap();
        let cache = ArtifactCache::open(dir.path(), 1 << 20, 10).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(cache.read(&sha).unwrap().is_none());
        assert!(!cache.contains(&sha));
    }
}
