//! The node stream with many functions deployed: one `edgefn control` and three
//! `edgefn node`s on loopback. FUNCTIONS distinct functions (each its own module, so its own
//! SHA-256, and its own route) are deployed through the API by four clients, retrying an
//! upload the per-user compile share answers 429; then the time until every node answers
//! the last of them, and CHANGES more routes, each timed from the API's answer to an answer
//! on every node, with the control plane's CPU time per change.
//! `scale [FUNCTIONS] [CHANGES]` (defaults 100 and 50); build `edgefn` with
//! `cargo build --release` first.

use std::time::{Duration, Instant};

use edgefn_bench::{Api, Cluster, everywhere, quantile, says, usage};
use futures::StreamExt;

/// Clients deploying at once.
const CLIENTS: usize = 4;
/// Pause before an upload refused 429 is sent again.
const RETRY: Duration = Duration::from_millis(20);
/// Longest wait for any one answer: the run stops with what it found rather than hang.
const PATIENCE: Duration = Duration::from_secs(600);

/// Uploads `name` 1.0.0, waiting out 429s, and routes `/name` to it.
async fn deploy(api: &Api, name: &str) {
    let url = format!("{}/api/v1/modules?name={name}&version=1.0.0", api.url);
    loop {
        let res = api.http.post(&url).bearer_auth(&api.token).header("content-type", "application/wasm").body(says(name)).send().await;
        let res = res.expect("API reachable");
        if res.status() == 429 {
            // Retry-After is in whole seconds; the compile ahead takes about 100 ms.
            tokio::time::sleep(RETRY).await;
            continue;
        }
        assert!(res.status().is_success(), "upload {name}: {}", res.status());
        break;
    }
    api.route(&format!("/{name}"), name).await;
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("counts are numbers"));
    let functions = args.next().unwrap_or(100);
    let changes = args.next().unwrap_or(50);
    let cluster = Cluster::start(&["n1", "n2", "n3"], None);
    let nodes: Vec<(edgefn_bench::Process, String)> = ["n1", "n2", "n3"].iter().map(|n| cluster.start_node(n, None)).collect();
    let urls: Vec<String> = nodes.iter().map(|(_, u)| u.clone()).collect();

    let start = Instant::now();
    futures::stream::iter(0..functions)
        .for_each_concurrent(CLIENTS, |i| {
            let api = &cluster.api;
            async move { deploy(api, &format!("f{i}")).await }
        })
        .await;
    let deployed = start.elapsed();
    let caught_up = everywhere(&urls, &format!("/f{}", functions - 1), None, Instant::now(), PATIENCE).await;

    let control = cluster.control.0.id();
    let (cpu_before, _) = usage(control);
    let mut ms = Vec::new();
    for i in 0..changes {
        let path = format!("/extra{i}");
        cluster.api.route(&path, "f0").await;
        ms.push(everywhere(&urls, &path, None, Instant::now(), PATIENCE).await.as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cpu_after, rss) = usage(control);
    ms.sort_by(f64::total_cmp);
    println!(
        "| functions | deployed in | every node caught up after | one more route to 3 nodes: p50 | p99 | CP CPU per change | CP RSS |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| {functions} | {:.1} s | {:.2} s | {:.1} ms | {:.1} ms | {:.1} ms | {} MB |",
        deployed.as_secs_f64(),
        caught_up.as_secs_f64(),
        quantile(&ms, 0.5),
        quantile(&ms, 0.99),
        (cpu_after - cpu_before) * 1000.0 / changes.max(1) as f64,
        rss >> 20
    );
}
