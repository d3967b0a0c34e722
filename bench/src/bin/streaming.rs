//! A streamed echo through `edgefn node` and through `wasmtime serve`, in the same run:
//! the conformance suite's WASI 0.2 component (`conformance/wasip2.wat`) echoes a request
//! body of `MIB` MiB (default 100) as it arrives; the client sends it in 64 KiB chunks
//! while it reads the answer. For each round, and each server in turn, the time from the
//! first byte sent to the last byte read, and the server process's peak resident memory
//! during the request (its high-water mark, reset to the resident memory before each
//! request). Then a slow reader: a 10 MiB response read at 1 MiB/s, whose time
//! should be the reader's 10 s and whose server memory should not grow with the body.
//! `streaming [MIB] [ROUNDS]` (defaults 100 and 5); build `edgefn` with
//! `cargo build --release` first; `wasmtime` is `conformance/wasmtime`'s.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edgefn_bench::{Cluster, Process, quantile};
use futures::StreamExt;

const CHUNK: usize = 64 * 1024;

/// `wasmtime serve` of `wasm` and the base URL it serves on.
fn wasmtime_serve(wasm: &std::path::Path) -> (Process, String) {
    let mut child = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/wasmtime"))
        .args(["serve", "-Scli", "--addr", "127.0.0.1:0"])
        .arg(wasm)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasmtime serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = lines.next().expect("wasmtime serve exited").expect("stderr");
        if let Some(url) = line.strip_prefix("Serving HTTP on ") {
            break url.trim_end_matches('/').to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    (Process(child), url)
}

/// Resident bytes of `pid` now and at its high-water mark.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok()).unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `mib` MiB read from `url` at `rate` MiB/s: (seconds, resident bytes before, peak resident bytes).
async fn slow_read(http: &reqwest::Client, url: &str, pid: u32, mib: usize, rate: f64) -> (f64, u64, u64) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
    let (before, _) = memory(pid);
    let start = Instant::now();
    let res = http.get(format!("{url}?{}", mib * 1024 * 1024)).send().await.expect("answered");
    assert_eq!(res.status(), 200, "{url}");
    let mut stream = res.bytes_stream();
    let mut got = 0usize;
    while let Some(chunk) = stream.next().await {
        got += chunk.expect("the body streamed to the end").len();
        // Read no faster than `rate`.
        let due = Duration::from_secs_f64(got as f64 / (rate * 1048576.0));
        tokio::time::sleep(due.saturating_sub(start.elapsed())).await;
    }
    assert_eq!(got, mib * 1024 * 1024, "{url}: the whole body came back");
    let (_, peak) = memory(pid);
    (start.elapsed().as_secs_f64(), before, peak)
}

/// One echo of `mib` MiB through `url`: (seconds, peak resident bytes).
async fn echo(http: &reqwest::Client, url: &str, pid: u32, mib: usize) -> (f64, u64) {
    // Resets the high-water mark of resident memory to what is resident now.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
    let (before, _) = memory(pid);
    let chunks = mib * 1024 * 1024 / CHUNK;
    let body = futures::stream::iter(0..chunks).map(|i| Ok::<_, std::io::Error>(vec![(i % 251) as u8; CHUNK]));
    let start = Instant::now();
    let res = http.post(url).body(reqwest::Body::wrap_stream(body)).send().await.expect("echo answered");
    assert_eq!(res.status(), 200, "{url}");
    let mut stream = res.bytes_stream();
    let mut got = 0;
    while let Some(chunk) = stream.next().await {
        got += chunk.expect("the echo streamed to the end").len();
    }
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(got, chunks * CHUNK, "{url}: the whole body came back");
    let (_, peak) = memory(pid);
    (elapsed, peak.max(before))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let rounds: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let wat = concat!(env!("CARGO_MANIFEST_DIR"), "/../conformance/wasip2.wat");
    let wasm = wat::parse_file(wat).expect("the conformance component");

    let cluster = Cluster::start(&["s1"], None);
    let (node, node_url) = cluster.start_node("s1", None);
    cluster.api.upload("echo", "1.0.0", wasm.clone()).await;
    // The admin's modules may run for up to 60 s: room for a slow round.
    cluster.api.patch("/api/v1/modules/echo", serde_json::json!({"httpTimeoutMs": 60_000})).await;
    cluster.api.route("/conformance/echo", "echo").await;
    cluster.api.route("/conformance/bytes", "echo").await;
    let file = cluster.root.path().join("echo.wasm");
    std::fs::write(&file, &wasm).expect("write the component");
    let (wasmtime, wasmtime_url) = wasmtime_serve(&file);

    let http = reqwest::Client::new();
    let servers = [
        ("edgefn node", format!("{node_url}/conformance/echo"), node.0.id()),
        ("wasmtime serve", format!("{wasmtime_url}/conformance/echo"), wasmtime.0.id()),
    ];
    // The route reaches the node through the stream.
    let deadline = Instant::now() + Duration::from_secs(30);
    while http.post(&servers[0].1).body("ready?").send().await.map(|r| r.status()).ok() != Some(reqwest::StatusCode::OK) {
        assert!(Instant::now() < deadline, "the node never served the echo");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (_, url, pid) in &servers {
        echo(&http, url, *pid, 1).await; // warm up: compile, first instance, connections
    }
    let mut figures: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); servers.len()];
    for round in 0..rounds {
        // Interleaved, the order swapped every round.
        for k in 0..servers.len() {
            let i = (k + round) % servers.len();
            let (name, url, pid) = &servers[i];
            let (secs, peak) = echo(&http, url, *pid, mib).await;
            println!("round {round} {name}: {secs:.3} s, {:.0} MiB/s, peak {:.1} MiB", mib as f64 / secs, peak as f64 / 1048576.0);
            figures[i].0.push(secs);
            figures[i].1.push(peak as f64 / 1048576.0);
        }
    }
    for (name, url, pid) in &servers {
        let url = url.replace("/echo", "/bytes");
        let (secs, before, peak) = slow_read(&http, &url, *pid, 10, 1.0).await;
        let in_mib = |b: u64| b as f64 / 1048576.0;
        println!(
            "slow reader, 10 MiB at 1 MiB/s from {name}: {secs:.2} s, resident memory {:.1} MiB before, peak {:.1} MiB",
            in_mib(before),
            in_mib(peak)
        );
    }
    println!("\n{mib} MiB echo, medians of {rounds} interleaved rounds:");
    for ((name, _, pid), (mut secs, mut peaks)) in servers.iter().zip(figures) {
        secs.sort_by(f64::total_cmp);
        peaks.sort_by(f64::total_cmp);
        let (rss, _) = memory(*pid);
        println!(
            "  {name:15} {:.3} s ({:.0} MiB/s); peak resident memory {:.1} MiB (max {:.1}), {:.1} MiB after",
            quantile(&secs, 0.5),
            mib as f64 / quantile(&secs, 0.5),
            quantile(&peaks, 0.5),
            peaks.last().copied().unwrap_or_default(),
            rss as f64 / 1048576.0,
        );
    }
}
