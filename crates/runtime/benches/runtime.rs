//! Runtime benchmarks: compile, load from the disk cache, and instantiate + call.
//! `cargo bench -p edgefn-runtime`; figures go in docs/benchmarks.md.
#![allow(missing_docs, reason = "criterion's macros generate undocumented functions")]

use criterion::{Criterion, criterion_group, criterion_main};
use edgefn_runtime::{InvokeRequest, Runtime, RuntimeConfig};
use serde_json::json;

fn example(name: &str) -> Vec<u8> {
    wat::parse_file(format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn benches(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();

    // Compile: validation + compilation + linking + export inspection (what an upload costs).
    for file in ["add.wat", "typed.wat"] {
        let bytes = example(file);
        c.bench_function(&format!("compile/{file}"), |b| b.iter(|| tokio.block_on(rt.prepare(&bytes)).unwrap()));
    }

    // Load from the disk cache: a memory cache of one entry and two modules taken in turn,
    // so every load reads, verifies and deserializes a precompiled file.
    let dir = tempfile::tempdir().unwrap();
    let disk = Runtime::new(RuntimeConfig { cache_dir: Some(dir.path().into()), memory_cache_entries: 1, ..Default::default() }).unwrap();
    let (a, b) = (example("add.wat"), example("fibonacci.wat"));
    let sha_a = tokio.block_on(disk.prepare(&a)).unwrap().sha256;
    let sha_b = tokio.block_on(disk.prepare(&b)).unwrap().sha256;
    c.bench_function("load/from-disk-cache", |bench| {
        let mut flip = false;
        bench.iter(|| {
            flip = !flip;
            let sha = if flip { &sha_a } else { &sha_b };
            let loaded = tokio.block_on(disk.load(sha, || async { unreachable!("must come from disk") })).unwrap();
            assert!(loaded.cache_hit);
        })
    });

    // Instantiate from the compiled cache and call: a fresh store and instance per call.
    let add = tokio.block_on(async {
        let p = rt.prepare(&a).await.unwrap();
        rt.load(&p.sha256, || async { unreachable!() }).await.unwrap()
    });
    c.bench_function("instantiate+call/core add(1,2)", |b| {
        b.iter(|| tokio.block_on(rt.invoke(&add.module, InvokeRequest::new("add", json!([1, 2])))).unwrap())
    });
    let typed_bytes = example("typed.wat");
    let typed = tokio.block_on(async {
        let p = rt.prepare(&typed_bytes).await.unwrap();
        rt.load(&p.sha256, || async { unreachable!() }).await.unwrap()
    });
    c.bench_function("instantiate+call/component greet(\"edge\")", |b| {
        b.iter(|| tokio.block_on(rt.invoke(&typed.module, InvokeRequest::new("greet", json!(["edge"])))).unwrap())
    });
}

criterion_group!(runtime, benches);
criterion_main!(runtime);
