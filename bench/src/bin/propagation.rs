//! Propagation over the node stream: one `edgefn control` and three `edgefn node`s on
//! loopback; for each change (alternately a new route to a served function, and a new
//! version of a routed function, which nodes fetch, verify and compile before they switch),
//! the time from the API's answer (the change is committed) to the new answer on every
//! node. `propagation [CHANGES]` (default 100: 50 of each kind); build `edgefn` with
//! `cargo build --release` first.

use std::time::{Duration, Instant};

use edgefn_bench::{Cluster, quantile, says};

/// Polls `url` every millisecond until it answers 200 with `want` (any body if `None`).
async fn until(http: &reqwest::Client, url: &str, want: Option<&str>, start: Instant) -> Duration {
    loop {
        if let Ok(res) = http.get(url).send().await
            && res.status() == 200
        {
            let text = res.text().await.unwrap_or_default();
            if want.is_none_or(|w| w == text) {
                return start.elapsed();
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{url} never answered {want:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The time until every node answers.
async fn everywhere(nodes: &[String], path: &str, want: Option<&str>, start: Instant) -> Duration {
    let http = reqwest::Client::new();
    let waits = nodes.iter().map(|n| {
        let (http, url) = (http.clone(), format!("{n}{path}"));
        async move { until(&http, &url, want, start).await }
    });
    futures::future::join_all(waits).await.into_iter().max().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let changes: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(100);
    let cluster = Cluster::start(&["n1", "n2", "n3"], None);
    let nodes: Vec<(edgefn_bench::Process, String)> = ["n1", "n2", "n3"].iter().map(|n| cluster.start_node(n, None)).collect();
    let urls: Vec<String> = nodes.iter().map(|(_, u)| u.clone()).collect();
    cluster.api.upload("prop", "0.0.0", says("v0")).await;
    cluster.api.route("/prop", "prop").await;
    everywhere(&urls, "/prop", Some("v0"), Instant::now()).await;

    let (mut routes, mut versions) = (Vec::new(), Vec::new());
    for i in 1..=changes {
        if i % 2 == 1 {
            let path = format!("/r{i}");
            cluster.api.route(&path, "prop").await;
            let start = Instant::now();
            routes.push(everywhere(&urls, &path, None, start).await.as_secs_f64() * 1000.0);
        } else {
            let text = format!("v{i}");
            cluster.api.upload("prop", &format!("0.0.{i}"), says(&text)).await;
            let start = Instant::now();
            versions.push(everywhere(&urls, "/prop", Some(&text), start).await.as_secs_f64() * 1000.0);
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
