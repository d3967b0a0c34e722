//! The disk cache survives restarts and never loads a damaged or foreign file.

use std::path::{Path, PathBuf};

use edgefn_runtime::{InvokeRequest, Runtime, RuntimeConfig};
use serde_json::json;

use crate::example;

fn with_disk(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig { cache_dir: Some(dir.to_path_buf()), ..Default::default() }).unwrap()
}

fn cache_file(dir: &Path) -> PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

async fn load_from_scratch(dir: &Path, bytes: Vec<u8>, sha: &str) -> (bool, u64) {
    let rt = with_disk(dir);
    let loaded = rt.load(sha, || async move { Ok(bytes) }).await.unwrap();
    let out = rt.invoke(&loaded.module, InvokeRequest::new("add", json!([2, 3]))).await.unwrap();
    assert_eq!(out.result, json!(5));
    (loaded.cache_hit, rt.compilations())
}

#[tokio::test]
async fn a_restart_reuses_compiled_code() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = example("add.wat");
    let sha = with_disk(dir.path()).prepare(&bytes).await.unwrap().sha256;
    assert_eq!(load_from_scratch(dir.path(), bytes, &sha).await, (true, 0));
}

#[tokio::test]
async fn a_corrupt_cache_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = example("add.wat");
    let sha = with_disk(dir.path()).prepare(&bytes).await.unwrap().sha256;
    let file = cache_file(dir.path());
    let mut data = std::fs::read(&file).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0xff;
    std::fs::write(&file, &data).unwrap();

    assert_eq!(load_from_scratch(dir.path(), bytes.clone(), &sha).await, (false, 1));
    // The rebuilt file is good again.
    assert_eq!(load_from_scratch(dir.path(), bytes, &sha).await, (true, 0));
}

#[tokio::test]
async fn a_foreign_engines_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = example("add.wat");
    let sha = with_disk(dir.path()).prepare(&bytes).await.unwrap().sha256;
    // Precompiled by an engine with other settings, with the trailer a checksum of its
    // contents alone would have.
    let foreign = wasmtime::Engine::default();
    let mut data = wasmtime::Module::new(&foreign, &bytes).unwrap().serialize().unwrap();
    let checksum = <sha2::Sha256 as sha2::Digest>::digest(&data);
    data.extend_from_slice(&checksum);
    std::fs::write(cache_file(dir.path()), &data).unwrap();

    assert_eq!(load_from_scratch(dir.path(), bytes, &sha).await, (false, 1));
}

#[tokio::test]
async fn fetched_bytes_must_match_their_digest() {
    let dir = tempfile::tempdir().unwrap();
    let rt = with_disk(dir.path());
    let wrong = "0".repeat(64);
    let err = rt.load(&wrong, || async { Ok(example("add.wat")) }).await.err().unwrap();
    assert!(err.to_string().contains("refusing to run it"), "{err}");
}

#[tokio::test]
async fn a_file_copied_from_another_module_is_not_loaded_as_it() {
    let dir = tempfile::tempdir().unwrap();
    let (add, multiply) = (example("add.wat"), example("multiply.wat"));
    let rt = with_disk(dir.path());
    let add_sha = rt.prepare(&add).await.unwrap().sha256;
    let multiply_sha = rt.prepare(&multiply).await.unwrap().sha256;
    let file_of = |sha: &str| {
        let files: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        files.into_iter().find(|p| p.file_name().unwrap().to_string_lossy().starts_with(sha)).expect("a cache file per module")
    };
    // Another tenant's compiled code under add's name: its checksum is bound to multiply.
    std::fs::copy(file_of(&multiply_sha), file_of(&add_sha)).unwrap();
    assert_eq!(load_from_scratch(dir.path(), add, &add_sha).await, (false, 1), "the copied file was rejected and add recompiled");

    // Files and the directory are the server's alone.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(file_of(&add_sha)).unwrap().permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn the_same_bytes_uploaded_again_are_not_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = example("add.wat");
    let rt = with_disk(dir.path());
    let first = rt.prepare(&bytes).await.unwrap();
    let again = rt.prepare(&bytes).await.unwrap();
    assert_eq!(rt.compilations(), 1);
    assert_eq!(again.info, first.info);
    // After a restart the disk cache answers, with the same description of the module.
    let restarted = with_disk(dir.path());
    let after = restarted.prepare(&bytes).await.unwrap();
    assert_eq!((restarted.compilations(), after.sha256.as_str()), (0, first.sha256.as_str()));
    assert_eq!(after.info, first.info);
    // Bytes that fail are never cached: they fail every time, with the compiler's reason.
    let mut broken = bytes.clone();
    broken.truncate(bytes.len() - 3);
    for _ in 0..2 {
        let err = restarted.prepare(&broken).await.err().unwrap();
        assert!(matches!(err, edgefn_runtime::PrepareError::Invalid(_)), "{err}");
    }
    assert_eq!(restarted.compilations(), 2);
}
