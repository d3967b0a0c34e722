//! The node stream with many functions deployed: one `edgefn control` and three
//! `edgefn node`s on loopback. FUNCTIONS distinct functions (each its own module, so its own
//! SHA-256, and its own route) are deployed through the API by four clients, retrying an
//! upload the per-user compile share answers 429; then the time until every node answers
//! the last of them, and CHANGES more routes, each timed from the API's answer to an answer
//! on every node, with the control plane's CPU time per change; then CHANGES uploads of a
//! new 1 KB module one after another, and as many of bytes uploaded before, each timed to
//! the API's answer.
//! `scale [FUNCTIONS] [CHANGES]` (defaults 100 and 50); build `edgefn` with
//! `cargo build --release` first.

use std::time::{Duration, Instant};

use edgefn_bench::{Api, Cluster, everywhere, quantile, says, usage};

/// Clients deploying at once.
const CLIENTS: usize = 4;
/// Longest wait for any one answer: the run stops with what it found rather than hang.
const PATIENCE: Duration = Duration::from_secs(600);

/// A module of about 1 KB that answers with `name`.
fn kilobyte(name: &str) -> Vec<u8> {
    let bytes = says(&format!("{name} {}", "x".repeat(900)));
    assert!((900..1200).contains(&bytes.len()), "{} bytes", bytes.len());
    bytes
}

/// Milliseconds each upload of `modules` took, one after another, sorted.
async fn timed_uploads(api: &Api, modules: Vec<(String, Vec<u8>)>) -> Vec<f64> {
    let mut ms = Vec::new();
    for (name, bytes) in modules {
        let started = Instant::now();
        api.upload(&name, "1.0.0", bytes).await;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    ms
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
    cluster.api.deploy_functions(functions, CLIENTS).await;
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
    let fresh = timed_uploads(&cluster.api, (0..changes).map(|i| (format!("kb{i}"), kilobyte(&format!("kb{i}")))).collect()).await;
    // The same bytes again, under other names: compiled before, so not compiled again.
    let again = timed_uploads(&cluster.api, (0..changes).map(|i| (format!("kb-again{i}"), kilobyte(&format!("kb{i}")))).collect()).await;
    println!(
        "| functions | deployed in | every node caught up after | one more route to 3 nodes: p50 | p99 | CP CPU per change | CP RSS | 1 KB upload p50 / p99 | same bytes again p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {functions} | {:.1} s | {:.2} s | {:.1} ms | {:.1} ms | {:.1} ms | {} MB | {:.1} / {:.1} ms | {:.1} / {:.1} ms |",
        deployed.as_secs_f64(),
        caught_up.as_secs_f64(),
        quantile(&ms, 0.5),
        quantile(&ms, 0.99),
        (cpu_after - cpu_before) * 1000.0 / changes.max(1) as f64,
        rss >> 20,
        quantile(&fresh, 0.5),
        quantile(&fresh, 0.99),
        quantile(&again, 0.5),
        quantile(&again, 0.99),
    );
}
