//! Module bytes, addressed by SHA-256, in any object store (a local directory by default).
//! The local store writes to a temporary file and renames it, so an object is whole or absent.

use std::collections::HashSet;
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};

use crate::error::StoreError;

/// Folder under the store root holding artifacts.
const PREFIX: &str = "sha256";

/// The artifact store.
#[derive(Clone, Debug)]
pub struct Artifacts {
    store: Arc<dyn ObjectStore>,
    /// The directory of a local store: where writes cut short leave temporary files.
    local_dir: Option<std::path::PathBuf>,
}

impl Artifacts {
    /// Artifacts in a local directory (created if missing).
    pub fn local(dir: &std::path::Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Artifacts(object_store::Error::Generic { store: "local", source: Box::new(e) }))?;
        let store = Arc::new(LocalFileSystem::new_with_prefix(dir)?.with_automatic_cleanup(true));
        Ok(Self { store, local_dir: Some(dir.join(PREFIX)) })
    }

    fn path(sha256: &str) -> Path {
        Path::from(format!("{PREFIX}/{sha256}"))
    }

    /// Stores bytes under their digest (idempotent).
    pub async fn put(&self, sha256: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.store.put(&Self::path(sha256), PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// The bytes of a digest.
    pub async fn get(&self, sha256: &str) -> Result<Vec<u8>, StoreError> {
        match self.store.get(&Self::path(sha256)).await {
            Ok(r) => Ok(r.bytes().await?.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFound(format!("artifact {sha256}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes the bytes of a digest; a missing object is not an error.
    pub async fn delete(&self, sha256: &str) -> Result<(), StoreError> {
        match self.store.delete(&Self::path(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every stored digest.
    pub async fn digests(&self) -> Result<Vec<String>, StoreError> {
        let prefix = Path::from(PREFIX);
        let objects: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        Ok(objects.into_iter().filter_map(|o| o.location.filename().map(str::to_string)).collect())
    }

    /// Deletes artifacts no version references (left by a crash between writing the bytes
    /// and committing the rows, or by a failed upload), and the temporary files of writes a
    /// crash cut short (`<digest>#<n>` in a local store, which listings do not show). Run
    /// at start, before any upload. Returns how many were removed.
    pub async fn collect_garbage(&self, referenced: &HashSet<String>) -> Result<usize, StoreError> {
        let mut removed = 0;
        if let Some(dir) = &self.local_dir
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().contains('#') && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        for sha in self.digests().await? {
            if !referenced.contains(&sha) {
                self.delete(&sha).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}
