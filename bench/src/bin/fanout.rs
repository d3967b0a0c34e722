//! Fan-out of the node stream: `edgefn control` with N simulated nodes (default 1000), each
//! its own mTLS connection and stream from this process, which say Hello, take the
//! snapshot and acknowledge every delta. For each of CHANGES new routes, the time from the
//! API's answer to the moment the last stream received the delta; and the control
//! plane's CPU and memory. With FUNCTIONS, that many distinct functions (each its own
//! module and route) are deployed first, so each stream's snapshot holds them all.
//! `fanout [STREAMS] [CHANGES] [FUNCTIONS]` (1000, 50 and 0); build `edgefn` with
//! `cargo build --release` first. The control plane runs on CPU 0, this process on CPU 1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgefn_bench::{Cluster, quantile, says, usage};
use edgefn_proto::v1;

/// Per stream: (revision, when it arrived) of each delta.
type Arrivals = Arc<Mutex<Vec<(u64, Instant)>>>;

async fn simulated(channel: tonic::transport::Channel, arrivals: Arrivals) {
    let mut client = edgefn_proto::node_stream_client(channel);
    let (outbox, queued) = tokio::sync::mpsc::channel(16);
    let hello =
        v1::Hello { protocol: edgefn_proto::PROTOCOL, agent_version: "bench".into(), report_every_ms: 60_000, ..Default::default() };
    outbox.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Hello(hello)) }).await.unwrap();
    let mut inbound = client.stream(tokio_stream::wrappers::ReceiverStream::new(queued)).await.expect("stream").into_inner();
    // Ends when the control plane goes away at the end of the run; a stream lost before
    // that shows as a change that never reaches every stream.
    while let Ok(Some(message)) = inbound.message().await {
        let Some(v1::control_message::Kind::Delta(delta)) = message.kind else { continue };
        arrivals.lock().unwrap().push((delta.revision, Instant::now()));
        let ack = v1::Ack { nonce: delta.nonce, revision: delta.revision };
        if outbox.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Ack(ack)) }).await.is_err() {
            return;
        }
    }
}

/// When every stream has a delta at `revision` or later: the latest first arrival. Panics
/// after `patience`.
async fn all_reached(streams: &[Arrivals], revision: u64, patience: Duration) -> Instant {
    let deadline = Instant::now() + patience;
    loop {
        let firsts: Vec<Option<Instant>> =
            streams.iter().map(|a| a.lock().unwrap().iter().find(|(r, _)| *r >= revision).map(|(_, at)| *at)).collect();
        if firsts.iter().all(Option::is_some) {
            return firsts.into_iter().flatten().max().expect("at least one stream");
        }
        assert!(Instant::now() < deadline, "{} streams never got revision {revision}", firsts.iter().filter(|f| f.is_none()).count());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let changes: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(50);
    let functions: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    edgefn_serve::raise_open_files_limit();
    let cluster = Cluster::start(&["sim"], Some(0));
    let pid = cluster.control.0.id();
    cluster.api.upload("fan", "1.0.0", says("fan")).await;
    cluster.api.route("/fan", "fan").await;
    cluster.api.deploy_functions(functions, 4).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (cpu_idle, rss_idle) = usage(pid);

    let (ca, cert, key) = cluster.node_files("sim");
    let (ca, cert, key) = (std::fs::read(ca).unwrap(), std::fs::read(cert).unwrap(), std::fs::read(key).unwrap());
    let connecting = Instant::now();
    let streams: Vec<Arrivals> = (0..count).map(|_| Arrivals::default()).collect();
    for arrivals in &streams {
        let channel = edgefn_node::channel(&cluster.stream, &ca, &cert, &key).expect("channel");
        tokio::spawn(simulated(channel, arrivals.clone()));
    }
    let revision = cluster.api.revision().await;
    all_reached(&streams, revision, Duration::from_secs(900)).await;
    let connected = connecting.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu_connected, rss_connected) = usage(pid);

    let mut ms = Vec::new();
    for i in 0..changes {
        cluster.api.route(&format!("/fan{i}"), "fan").await;
        let start = Instant::now();
        let target = revision + 1 + i as u64;
        let last = all_reached(&streams, target, Duration::from_secs(60)).await;
        ms.push(last.saturating_duration_since(start).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (cpu_after, rss_after) = usage(pid);
    ms.sort_by(f64::total_cmp);
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "| streams | functions | connect + snapshot to all | change to all: p50 | p99 | max | CP CPU per change | CP RSS idle → {count} streams → after |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {count} | {functions} | {:.2} s | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} → {:.0} → {:.0} MB |",
        connected.as_secs_f64(),
        quantile(&ms, 0.5),
        quantile(&ms, 0.99),
        ms[ms.len() - 1],
        (cpu_after - cpu_connected) * 1000.0 / changes as f64,
        mb(rss_idle),
        mb(rss_connected),
        mb(rss_after),
    );
    println!("(CP CPU while {count} streams connected and took their snapshot: {:.2} s)", cpu_connected - cpu_idle);
}
