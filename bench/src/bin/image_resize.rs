//! The `image-resize` example against the same Rust code built natively, in the same run:
//! a real photo (`examples/image-resize/testdata/f3-discovery.jpg`, 720×477 JPEG) through
//! each operation set, natively (the example's `transform.rs` compiled into this binary)
//! and through an `edgefn node` (the component from `cargo build --release --target
//! wasm32-wasip2`, POSTed over loopback HTTP). Rounds interleave the two; the report is
//! each one's median and the ratio. `image_resize [ROUNDS]` (default 30); build `edgefn`
//! with `cargo build --release` first.

#[path = "../../../examples/image-resize/src/transform.rs"]
#[allow(dead_code, reason = "the example's own constants, used by the component")]
mod transform;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use edgefn_bench::{Cluster, quantile};

/// What is measured: a thumbnail, a rotation, a crop and re-encode.
const CASES: [(&str, &str); 3] = [
    ("resize to 320×212, JPEG", "resize=320x212&format=jpeg"),
    ("rotate 90°, JPEG", "rotate=90&format=jpeg"),
    ("crop 256×256, PNG", "crop=200,100,256,256&format=png"),
];

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    quantile(&values, 0.5)
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::args().nth(1).map_or(30, |r| r.parse().expect("ROUNDS is a number"));
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/image-resize");
    let photo = std::fs::read(example.join("testdata/f3-discovery.jpg")).expect("the photo");
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| example.join("target"), |t| Path::new(&t).join("templates"));
    let built = Command::new("cargo")
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(&example)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo");
    assert!(built.success(), "building the example");
    let wasm = std::fs::read(target.join("wasm32-wasip2/release/image_resize.wasm")).expect("the component");

    let cluster = Cluster::start(&["i1"], None);
    let (_node, node_url) = cluster.start_node("i1", None);
    let uploaded = cluster.api.upload("image-resize", "1.0.0", wasm).await;
    let id = uploaded["module"]["id"].as_str().expect("module id").to_string();
    cluster
        .api
        .patch(&format!("/api/v1/modules/{id}"), serde_json::json!({"maxMemoryPages": 4096, "timeoutMs": 10000, "httpTimeoutMs": 10000}))
        .await;
    cluster.api.route("/image-resize", &id).await;
    let http = reqwest::Client::new();
    let url = format!("{node_url}/image-resize");
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    // Wait for the route, and warm up: compile, first instance, connection.
    loop {
        let res = http.post(format!("{url}?{}", CASES[0].1)).body(photo.clone()).send().await.expect("node reachable");
        if res.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the node did not serve the example: {}", res.status());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    println!("image-resize, {} KB photo, {rounds} interleaved rounds (median ms)", photo.len() / 1024);
    println!("| operation | native | edgefn node (HTTP) | ratio | output |");
    println!("|---|---|---|---|---|");
    for (name, query) in CASES {
        let (mut native, mut wasm) = (Vec::new(), Vec::new());
        let mut output = String::new();
        for _ in 0..rounds {
            let start = Instant::now();
            let out = transform::apply(&photo, query).expect("native transform");
            native.push(start.elapsed().as_secs_f64() * 1e3);
            output = format!("{}×{} {}, {} KB", out.size.0, out.size.1, out.content_type, out.bytes.len() / 1024);

            let start = Instant::now();
            let res = http.post(format!("{url}?{query}")).body(photo.clone()).send().await.expect("answered");
            assert_eq!(res.status(), 200);
            let bytes = res.bytes().await.expect("body");
            wasm.push(start.elapsed().as_secs_f64() * 1e3);
            assert!(bytes.len() > 100);
        }
        let (n, w) = (median(native), median(wasm));
        println!("| {name} | {n:.1} | {w:.1} | {:.2}× | {output} |", w / n);
    }
}
