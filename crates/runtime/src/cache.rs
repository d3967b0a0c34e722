//! Precompiled modules on disk, so a restart does not recompile.
//!
//! A file is named by the module's SHA-256 and the engine's compatibility hash, written
//! to a temporary name and renamed into place, and ends with a checksum: the SHA-256 of
//! the module's SHA-256, the engine hash and the contents together, so a file is valid
//! only for the module and engine it was written for (one module's file copied over
//! another's fails the check). A file whose checksum does not match (torn write, bit rot,
//! a file moved or tampered with) or that wasmtime refuses (another engine's build or
//! settings) is deleted and rebuilt: nothing is ever loaded blindly. The directory is
//! private to the server's user (mode 0700, files 0600).

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Precompiled};

use crate::runtime::Artifact;

/// Length of the checksum trailer.
const CHECKSUM_LEN: usize = 32;

/// A directory of precompiled modules for one engine configuration.
#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    engine_hash: String,
}

impl DiskCache {
    pub(crate) fn open(dir: &Path, engine: &Engine) -> anyhow::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating cache directory {}: {e}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| anyhow::anyhow!("making cache directory {} private: {e}", dir.display()))?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self { dir: dir.to_path_buf(), engine_hash: format!("{:016x}", hasher.finish()) })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}-{}.cwasm", self.engine_hash))
    }

    /// Loads a precompiled module, or `None` when there is no usable file.
    pub(crate) fn load(&self, engine: &Engine, sha256: &str) -> Option<Artifact> {
        let path = self.path(sha256);
        let data = std::fs::read(&path).ok()?;
        match verify_and_deserialize(engine, &data, &self.checksum_key(sha256)) {
            Ok(artifact) => Some(artifact),
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "discarding unusable compiled-module cache file");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// What the checksum binds a file to: the module and the engine.
    fn checksum_key(&self, sha256: &str) -> String {
        format!("edgefn-compiled-v2\0{sha256}\0{}\0", self.engine_hash)
    }

    /// Writes a precompiled module atomically (temp file, rename). Not synced to disk: it
    /// is a cache, and a file a crash lost or tore fails its checksum and is rebuilt, so an
    /// upload or a delivery does not wait for the disk.
    pub(crate) fn store(&self, sha256: &str, artifact: &Artifact) -> anyhow::Result<()> {
        let mut data = artifact.serialize()?;
        let checksum = checksum(&self.checksum_key(sha256), &data);
        data.extend_from_slice(&checksum);
        let path = self.path(sha256);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&data)?;
        }
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// SHA-256 of `key` then `body`.
fn checksum(key: &str, body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(key.as_bytes());
    hasher.update(body);
    hasher.finalize().into()
}

fn verify_and_deserialize(engine: &Engine, data: &[u8], key: &str) -> Result<Artifact, String> {
    let split = data.len().checked_sub(CHECKSUM_LEN).ok_or("file is truncated")?;
    let (body, trailer) = data.split_at(split);
    if checksum(key, body).as_slice() != trailer {
        return Err("checksum mismatch (a torn write, or a file made for another module or engine)".into());
    }
    match Engine::detect_precompiled(body) {
        Some(Precompiled::Module) => deserialize_module(engine, body).map(Artifact::Core),
        Some(Precompiled::Component) => deserialize_component(engine, body).map(Artifact::Component),
        None => Err(wasmtime::Error::msg("not a wasmtime precompiled artifact")),
    }
    .map_err(|e| format!("{e:#}", e = anyhow::Error::from(e)))
}

#[expect(unsafe_code, reason = "the bytes were written by this cache and their checksum verified just before")]
fn deserialize_module(engine: &Engine, body: &[u8]) -> wasmtime::Result<wasmtime::Module> {
    // SAFETY: `body` passed the SHA-256 check against the trailer this cache wrote after
    // `Module::serialize` for this very module and engine, and wasmtime checks the engine
    // compatibility header itself.
    unsafe { wasmtime::Module::deserialize(engine, body) }
}

#[expect(unsafe_code, reason = "the bytes were written by this cache and their checksum verified just before")]
fn deserialize_component(engine: &Engine, body: &[u8]) -> wasmtime::Result<wasmtime::component::Component> {
    // SAFETY: as for `deserialize_module`.
    unsafe { wasmtime::component::Component::deserialize(engine, body) }
}
