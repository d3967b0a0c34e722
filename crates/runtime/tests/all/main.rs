//! Runtime tests against real wasm: the examples in `examples/` compiled by the real engine.

mod cache;
mod component;
mod core;
mod fuzz;
mod http;
mod json;
mod lanes;
mod pool;

use edgefn_runtime::{Loaded, Runtime, RuntimeConfig};

/// Reads an example from the repository's `examples/` folder and assembles it.
pub fn example(name: &str) -> Vec<u8> {
    let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A runtime without a disk cache.
pub fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig::default()).expect("runtime")
}

/// Prepares and loads `bytes`.
pub async fn load(rt: &Runtime, bytes: Vec<u8>) -> Loaded {
    let prepared = rt.prepare(&bytes).await.expect("prepare");
    rt.load(&prepared.sha256, || async move { Ok(bytes) }).await.expect("load")
}
