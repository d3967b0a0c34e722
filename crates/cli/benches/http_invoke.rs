//! End-to-end invoke over HTTP: `add(1, 2)` through the real API on a real socket.
//! Starts `edgefn up` (this build) on a free port, then measures p50/p99 latency and
//! requests per second with 1 and 16 concurrent clients. The load generator shares the
//! machine's cores with the server, so the figures are a floor, not a ceiling.
//!
//! `cargo bench -p edgefn --bench http_invoke`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

/// Requests per client before measuring.
const WARMUP: usize = 200;
/// How long each measurement runs.
const RUN: Duration = Duration::from_secs(5);

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgefn"))
        .args(["up", "--listen", "127.0.0.1:0", "--execution-retention", "100000000", "--data-dir"])
        .arg(dir.path())
        .env("EDGEFN_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start edgefn");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(u) = line.strip_prefix("listening on ") {
            break u.to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let token = std::fs::read_to_string(dir.path().join("admin-token")).unwrap().trim().to_string();
    let wasm = wat::parse_file(format!("{}/../../examples/add.wat", env!("CARGO_MANIFEST_DIR"))).unwrap();

    let tokio = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    tokio.block_on(async {
        let http = reqwest::Client::new();
        let res = http.post(format!("{url}/api/v1/modules?name=add&version=1.0.0")).bearer_auth(&token).body(wasm).send().await.unwrap();
        assert_eq!(res.status(), 201);
        let invoke = format!("{url}/api/v1/modules/add/invoke");
        let health = format!("{url}/healthz");
        println!("{:<28} {:>8} {:>8} {:>8} {:>8}", "request, clients", "p50 ms", "p99 ms", "max ms", "req/s");
        let mut invokes = 0;
        for (what, clients) in [("GET /healthz (floor)", 1), ("invoke add(1,2)", 1), ("GET /healthz (floor)", 16), ("invoke add(1,2)", 16)]
        {
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (http, invoke, health, token) = (http.clone(), invoke.clone(), health.clone(), token.clone());
                let floor = what.starts_with("GET");
                tasks.push(tokio::spawn(async move {
                    let call = || async {
                        let t = Instant::now();
                        let req = if floor {
                            http.get(&health)
                        } else {
                            http.post(&invoke).bearer_auth(&token).json(&json!({"function": "add", "args": [1, 2]}))
                        };
                        let res = req.send().await.unwrap();
                        assert_eq!(res.status(), 200);
                        let _ = res.bytes().await.unwrap();
                        t.elapsed()
                    };
                    for _ in 0..WARMUP {
                        call().await;
                    }
                    let mut samples = Vec::new();
                    let until = Instant::now() + RUN;
                    while Instant::now() < until {
                        samples.push(call().await);
                    }
                    samples
                }));
            }
            let mut all: Vec<Duration> = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            if !what.starts_with("GET") {
                invokes += all.len() + clients * WARMUP;
            }
            all.sort();
            let pct = |p: f64| all[((p * all.len() as f64) as usize).min(all.len() - 1)].as_secs_f64() * 1000.0;
            let rps = all.len() as f64 / RUN.as_secs_f64();
            println!("{:<28} {:>8.3} {:>8.3} {:>8.3} {rps:>8.0}", format!("{what}, {clients}"), pct(0.50), pct(0.99), pct(1.0));
        }
        // Every call is in the history: nothing was dropped under load.
        let stats: serde_json::Value =
            http.get(format!("{url}/api/v1/modules/add/stats")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        println!("history: {} of {invokes} calls recorded", stats["totalExecutions"]);
        assert_eq!(stats["totalExecutions"], json!(invokes));
    });
    let _ = child.kill();
    let _ = child.wait();
}
