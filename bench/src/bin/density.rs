//! Many functions on one node, and its cold starts: one `edgefn control` and one
//! `edgefn node` (default memory budget and instance slots) on loopback. FUNCTIONS
//! distinct small functions and COLD functions of about 100 KB of code are deployed
//! through the API; then REQUESTS requests, nine in ten to a hot set (the first tenth of
//! the functions) and the rest to the long tail, eight at a time, every one checked, with
//! the node's memory and its ready pools after them. Then the node is restarted over its
//! data directory (time until it serves), and the first request of each 100 KB function
//! — compiled code on disk, not in memory — is timed one after another; then the
//! node is stopped, its compiled-code directory removed, started again, and the first
//! request of each timed once more (never compiled on this node: compiled then).
//! `density [FUNCTIONS] [COLD] [REQUESTS]` (defaults 1000, 200, 20000); build `edgefn`
//! with `cargo build --release` first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use edgefn_bench::{Cluster, Process, quantile, says, says_with_code, until, usage};
use futures::StreamExt;

/// Clients deploying, and requests in flight, at once.
const CLIENTS: usize = 4;
const IN_FLIGHT: usize = 8;
/// Code in each cold-start function.
const COLD_CODE_BYTES: usize = 100 * 1024;
/// Longest wait for any one answer: the run stops with what it found rather than hang.
const PATIENCE: Duration = Duration::from_secs(900);

/// A Prometheus sample of the node's metrics: the sum of every series named `name`.
async fn metric(http: &reqwest::Client, metrics_url: &str, name: &str) -> f64 {
    let text = http.get(format!("{metrics_url}/metrics")).send().await.expect("metrics").text().await.expect("metrics text");
    text.lines().filter(|l| l.split([' ', '{']).next() == Some(name)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

/// Milliseconds the first request of each of `paths` took, one after another, sorted.
async fn first_requests(http: &reqwest::Client, node: &str, paths: &[String]) -> Vec<f64> {
    let mut ms = Vec::new();
    for path in paths {
        let started = Instant::now();
        let res = http.get(format!("{node}{path}")).send().await.expect("node reachable");
        assert_eq!(res.status(), 200, "{path}");
        res.bytes().await.expect("body");
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    ms
}

/// Starts node `n1` and waits until it answers `path`: the node, its URLs and how long it
/// took from the process start.
async fn restart(cluster: &Cluster, http: &reqwest::Client, path: &str) -> (Process, (String, String), Duration) {
    let started = Instant::now();
    let (process, urls) = cluster.start_node_with_metrics("n1", None);
    until(http, &format!("{}{path}", urls.0), None, started, PATIENCE).await;
    (process, urls, started.elapsed())
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>().expect("counts are numbers"));
    let functions = args.next().unwrap_or(1000).max(10);
    let cold = args.next().unwrap_or(200).max(1);
    let requests = args.next().unwrap_or(20_000);
    let http = reqwest::Client::new();
    let cluster = Cluster::start(&["n1"], None);
    let (node, (url, metrics_url)) = cluster.start_node_with_metrics("n1", None);

    let start = Instant::now();
    let small = (0..functions).map(|i| (format!("f{i}"), None));
    let large = (0..cold).map(|i| (format!("big{i}"), Some(COLD_CODE_BYTES)));
    futures::stream::iter(small.chain(large))
        .for_each_concurrent(CLIENTS, |(name, code)| {
            let api = &cluster.api;
            async move {
                let wasm = match code {
                    Some(bytes) => says_with_code(&name, bytes),
                    None => says(&name),
                };
                api.deploy(&name, wasm).await
            }
        })
        .await;
    let deployed = start.elapsed();
    for path in [format!("/f{}", functions - 1), format!("/big{}", cold - 1)] {
        until(&http, &format!("{url}{path}"), None, Instant::now(), PATIENCE).await;
    }

    // Nine requests in ten to the hot tenth, the rest spread over the tail.
    let hot = functions / 10;
    let failed = AtomicUsize::new(0);
    let started = Instant::now();
    let mut ms: Vec<f64> = futures::stream::iter(0..requests)
        .map(|i| {
            let pick = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
            let name =
                if i % 10 != 9 { format!("f{}", pick as usize % hot) } else { format!("f{}", hot + pick as usize % (functions - hot)) };
            let (http, url, failed) = (&http, &url, &failed);
            async move {
                let sent = Instant::now();
                let ok = match http.get(format!("{url}/{name}")).send().await {
                    Ok(res) if res.status() == 200 => res.text().await.is_ok_and(|t| t == name),
                    _ => false,
                };
                if !ok {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                sent.elapsed().as_secs_f64() * 1000.0
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let spread = started.elapsed();
    ms.sort_by(f64::total_cmp);
    let (_, rss) = usage(node.0.id());
    let ready_bytes = metric(&http, &metrics_url, "wasm_pool_ready_memory_bytes").await;
    let ready = metric(&http, &metrics_url, "wasm_pool_ready_instances").await;
    let misses = metric(&http, &metrics_url, "wasm_cache_misses_total").await;
    drop(node);

    let big: Vec<String> = (0..cold).map(|i| format!("/big{i}")).collect();
    let (node, (url, metrics_url), from_disk_start) = restart(&cluster, &http, &format!("/f{}", functions - 1)).await;
    let from_disk = first_requests(&http, &url, &big).await;
    let from_disk_compiles = metric(&http, &metrics_url, "wasm_cache_misses_total").await;
    drop(node);
    std::fs::remove_dir_all(cluster.node_dir("n1").join("compiled")).expect("the node's compiled code");
    let (node, (url, metrics_url), bare_start) = restart(&cluster, &http, &format!("/f{}", functions - 1)).await;
    let compiled = first_requests(&http, &url, &big).await;
    let recompiled = metric(&http, &metrics_url, "wasm_cache_misses_total").await;
    drop(node);

    println!(
        "| functions | deployed in | requests (hot {hot}) | failed | p50 | p99 | req/s | node RSS | ready instances | their memory | compiles while serving |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {functions} + {cold} of 100 KB | {:.1} s | {requests} | {} | {:.2} ms | {:.2} ms | {:.0} | {} MB | {ready} | {} MB | {misses} |",
        deployed.as_secs_f64(),
        failed.load(Ordering::Relaxed),
        quantile(&ms, 0.5),
        quantile(&ms, 0.99),
        requests as f64 / spread.as_secs_f64(),
        rss >> 20,
        ready_bytes as u64 >> 20,
    );
    println!();
    println!("| restarted with | serving after | first request of {cold} 100 KB functions: p50 | p99 | compiled |");
    println!("|---|---|---|---|---|");
    println!(
        "| compiled code on disk | {:.2} s | {:.2} ms | {:.2} ms | {from_disk_compiles} |",
        from_disk_start.as_secs_f64(),
        quantile(&from_disk, 0.5),
        quantile(&from_disk, 0.99)
    );
    println!(
        "| no compiled code | {:.2} s | {:.2} ms | {:.2} ms | {recompiled} |",
        bare_start.as_secs_f64(),
        quantile(&compiled, 0.5),
        quantile(&compiled, 0.99)
    );
}
