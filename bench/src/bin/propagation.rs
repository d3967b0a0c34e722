//! Propagation over the node stream: one `edgefn control` and three `edgefn node`s on
//! loopback; for each change (alternately a new route to a served function, and a new
//! version of a routed function, which nodes fetch, verify and compile before they switch),
//! the time from the API's answer (the change is committed) to the new answer on every
//! node. `propagation [CHANGES]` (default 100: 50 of each kind); build `edgefn` with
//! `cargo build --release` first.

use std::time::{Duration, Instant};

use edgefn_bench::{Cluster, everywhere, quantile, says};

/// Longest wait for one change to reach every node.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() {
    let changes: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100);
    let cluster = Cluster::start(&["n1", "n2", "n3"], None);
    let nodes: Vec<(edgefn_bench::Process, String)> = ["n1", "n2", "n3"].iter().map(|n| cluster.start_node(n, None)).collect();
    let urls: Vec<String> = nodes.iter().map(|(_, u)| u.clone()).collect();
    cluster.api.upload("prop", "0.0.0", says("v0")).await;
    cluster.api.route("/prop", "prop").await;
    everywhere(&urls, "/prop", Some("v0"), Instant::now(), PATIENCE).await;

    let (mut routes, mut versions) = (Vec::new(), Vec::new());
    for i in 1..=changes {
        if i % 2 == 1 {
            let path = format!("/r{i}");
            cluster.api.route(&path, "prop").await;
            let start = Instant::now();
            routes.push(everywhere(&urls, &path, None, start, PATIENCE).await.as_secs_f64() * 1000.0);
        } else {
            let text = format!("v{i}");
            cluster.api.upload("prop", &format!("0.0.{i}"), says(&text)).await;
            let start = Instant::now();
            versions.push(everywhere(&urls, "/prop", Some(&text), start, PATIENCE).await.as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("| change (to all 3 nodes) | n | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for (name, mut ms) in [("new route", routes), ("new version (fetch, verify, compile)", versions)] {
        ms.sort_by(f64::total_cmp);
        println!("| {name} | {} | {:.1} ms | {:.1} ms | {:.1} ms |", ms.len(), quantile(&ms, 0.5), quantile(&ms, 0.99), ms[ms.len() - 1]);
    }
}
