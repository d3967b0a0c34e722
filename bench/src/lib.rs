//! What the node-stream benchmarks share: a throwaway cluster of real `edgefn` processes
//! (a CA, `edgefn control`, `edgefn node`s) on loopback, and a small API client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The `edgefn` binary: `$EDGEFN_BIN`, else the release build in the shared target dir.
pub fn edgefn_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("EDGEFN_BIN") {
        return bin.into();
    }
    let target =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{}/.cache/edgefn-target", std::env::var("HOME").unwrap_or_default()));
    Path::new(&target).join("release/edgefn")
}

/// Runs `edgefn args…` to completion.
pub fn run(args: &[&str]) {
    let out = Command::new(edgefn_bin()).args(args).output().expect("run edgefn");
    assert!(out.status.success(), "edgefn {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A process killed when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawns `edgefn args…` (pinned to `cpu` with taskset when given) and returns it with
/// the rest of the first stdout line after each of `wanted`.
pub fn spawn(args: &[&str], cpu: Option<usize>, wanted: &[&str]) -> (Process, Vec<String>) {
    let mut command = match cpu {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.args(["-c", &cpu.to_string()]).arg(edgefn_bin());
            c
        }
        None => Command::new(edgefn_bin()),
    };
    let mut child =
        command.args(args).env("EDGEFN_LOG", "warn").stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("spawn edgefn");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut found = vec![String::new(); wanted.len()];
    while found.iter().any(String::is_empty) {
        let line = lines.next().expect("edgefn exited").expect("stdout");
        for (i, prefix) in wanted.iter().enumerate() {
            if let Some(rest) = line.strip_prefix(prefix) {
                found[i] = rest.to_string();
            }
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    (Process(child), found)
}

/// A control plane with its CA, in a temporary directory.
pub struct Cluster {
    /// The directory (removed when dropped).
    pub root: tempfile::TempDir,
    /// `edgefn control`.
    pub control: Process,
    /// The API's base URL.
    pub api: Api,
    /// The node stream's URL.
    pub stream: String,
}

impl Cluster {
    /// Creates a CA and node certificates for `nodes`, and starts `edgefn control`.
    pub fn start(nodes: &[&str], cpu: Option<usize>) -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let certs = root.path().join("certs");
        run(&["certs", "init", "--dir", certs.to_str().unwrap()]);
        for name in nodes {
            run(&["certs", "node", name, "--pop", "bench", "--dir", certs.to_str().unwrap()]);
        }
        let data = root.path().join("cp");
        let args = [
            "control",
            "--listen",
            "127.0.0.1:0",
            "--node-stream-listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().unwrap(),
            "--certs",
            certs.to_str().unwrap(),
        ];
        let (control, found) = spawn(&args, cpu, &["node stream listening on ", "listening on "]);
        let token = std::fs::read_to_string(data.join("admin-token")).expect("admin token").trim().to_string();
        let api = Api { http: reqwest::Client::new(), url: found[1].clone(), token };
        Self { root, control, api, stream: found[0].clone() }
    }

    /// The certificate files of node `name`: (CA, certificate, key).
    pub fn node_files(&self, name: &str) -> (PathBuf, PathBuf, PathBuf) {
        let files = edgefn_control::nodes::CertFiles::node(&self.root.path().join("certs"), name);
        (files.ca, files.cert, files.key)
    }

    /// The data directory of node `name`.
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Starts `edgefn node NAME` and returns it with its ingress URL.
    pub fn start_node(&self, name: &str, cpu: Option<usize>) -> (Process, String) {
        let (process, urls) = self.start_node_with_metrics(name, cpu);
        (process, urls.0)
    }

    /// Starts `edgefn node NAME` and returns it with its ingress and metrics URLs.
    pub fn start_node_with_metrics(&self, name: &str, cpu: Option<usize>) -> (Process, (String, String)) {
        let (ca, cert, key) = self.node_files(name);
        let dir = self.node_dir(name);
        let args = [
            "node",
            "--control",
            &self.stream,
            "--ca-cert",
            ca.to_str().unwrap(),
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ];
        let (process, found) = spawn(&args, cpu, &["node listening on ", "metrics listening on "]);
        (process, (found[0].clone(), found[1].clone()))
    }
}

/// A few calls of the REST API.
pub struct Api {
    /// The client.
    pub http: reqwest::Client,
    /// Base URL.
    pub url: String,
    /// Admin token.
    pub token: String,
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder) -> Value {
        let res = req.bearer_auth(&self.token).send().await.expect("API reachable");
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{status}: {body}");
        body
    }

    /// Uploads a module version; an upload the per-user compile share refuses (429) is
    /// sent again 20 ms later.
    pub async fn upload(&self, name: &str, version: &str, wasm: Vec<u8>) -> Value {
        let url = format!("{}/api/v1/modules?name={name}&version={version}", self.url);
        loop {
            let req = self.http.post(&url).bearer_auth(&self.token).header("content-type", "application/wasm").body(wasm.clone());
            let res = req.send().await.expect("API reachable");
            if res.status() == 429 {
                // Retry-After is in whole seconds; the compile ahead takes milliseconds.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            let status = res.status();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            assert!(status.is_success(), "upload {name}: {status}: {body}");
            return body;
        }
    }

    /// Uploads `name` 1.0.0 and routes `/name` to it.
    pub async fn deploy(&self, name: &str, wasm: Vec<u8>) {
        self.upload(name, "1.0.0", wasm).await;
        self.route(&format!("/{name}"), name).await;
    }

    /// Deploys `f0`..`f{count-1}`, each a [`says`] module answering its name, `clients`
    /// at a time.
    pub async fn deploy_functions(&self, count: usize, clients: usize) {
        use futures::StreamExt;
        futures::stream::iter(0..count)
            .for_each_concurrent(clients, |i| async move {
                let name = format!("f{i}");
                self.deploy(&name, says(&name)).await
            })
            .await;
    }

    /// PATCHes `path` (a module's settings) with `body`.
    pub async fn patch(&self, path: &str, body: Value) -> Value {
        self.send(self.http.patch(format!("{}{path}", self.url)).json(&body)).await
    }

    /// Routes an exact path to a module.
    pub async fn route(&self, path: &str, module: &str) -> Value {
        let body = serde_json::json!({"path": path, "moduleId": module});
        self.send(self.http.post(format!("{}/api/v1/routes", self.url)).json(&body)).await
    }

    /// The control plane's current revision.
    pub async fn revision(&self) -> u64 {
        let body = self.send(self.http.get(format!("{}/api/v1/nodes", self.url))).await;
        body["nodes"].as_array().and_then(|n| n.first()).and_then(|n| n["currentRevision"].as_u64()).unwrap_or(0)
    }
}

/// Polls `url` every millisecond until it answers 200 with `want` (any body if `None`);
/// the time since `start`. Panics after `patience`, so a run stops rather than hang.
pub async fn until(http: &reqwest::Client, url: &str, want: Option<&str>, start: Instant, patience: Duration) -> Duration {
    loop {
        if let Ok(res) = http.get(url).send().await
            && res.status() == 200
        {
            let text = res.text().await.unwrap_or_default();
            if want.is_none_or(|w| w == text) {
                return start.elapsed();
            }
        }
        assert!(start.elapsed() < patience, "{url} never answered {want:?} within {patience:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The time from `start` until every node answers `path` as [`until`] waits for.
pub async fn everywhere(nodes: &[String], path: &str, want: Option<&str>, start: Instant, patience: Duration) -> Duration {
    let http = reqwest::Client::new();
    let waits = nodes.iter().map(|n| {
        let (http, url) = (http.clone(), format!("{n}{path}"));
        async move { until(&http, &url, want, start, patience).await }
    });
    futures::future::join_all(waits).await.into_iter().max().unwrap_or_default()
}

/// A handle-ABI module answering 200 with `text`.
pub fn says(text: &str) -> Vec<u8> {
    wat::parse_str(says_wat(text, "")).expect("valid WAT")
}

/// [`says`] with about `code_bytes` more of code in functions it never calls (wasmtime
/// compiles them all): a larger module, for cold starts.
pub fn says_with_code(text: &str, code_bytes: usize) -> Vec<u8> {
    let body: String = (0..40).map(|j| format!("(i32.const {j}) (i32.add) (i32.const 3) (i32.mul) ")).collect();
    let filler = format!("(func (param i32) (result i32) (local.get 0) {body})");
    let bytes = wat::parse_str(says_wat(text, &filler.repeat(code_bytes / 250))).expect("valid WAT");
    assert!(bytes.len() > code_bytes * 9 / 10, "{} bytes", bytes.len());
    bytes
}

/// The text of [`says`], with `functions` added to the module.
fn says_wat(text: &str, functions: &str) -> String {
    let body = format!("200\n\n{text}");
    let data = body.replace('\n', "\\n");
    format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{data}")
            (global $h (mut i32) (i32.const 4096))
            (func (export "alloc") (param i32) (result i32) (global.get $h) (global.set $h (i32.add (global.get $h) (local.get 0))))
            (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
              (memory.copy (local.get 8) (i32.const 0) (i32.const {len})) (i32.const {len}))
            {functions})"#,
        len = body.len()
    )
}

/// The `q` quantile (0..=1) of `sorted` values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// CPU seconds (user + system) and resident bytes of process `pid`.
pub fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    ((ticks(11) + ticks(12)) / 100.0, pages * 4096)
}
