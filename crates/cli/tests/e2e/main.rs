//! End-to-end tests: the real `edgefn` binary on a real socket, driven over HTTP.

mod adversarial;
mod builds;
mod cli;
mod cluster;
mod config;
mod conformance;
mod crash;
mod examples;
mod host;
mod http;
mod identity;
mod invoke;
mod permissions;
mod project;
mod restart;
mod ui;
mod upload;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

/// A running `edgefn up` in its own data directory.
pub struct Server {
    child: Child,
    /// Base URL of the API, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// Base URL of the edge node.
    pub node: String,
    /// Base URL of the node's metrics listener.
    pub metrics: String,
    /// The admin token.
    pub token: String,
    /// The data directory.
    pub dir: PathBuf,
}

impl Server {
    /// Starts `edgefn up` on a free port with `dir` as its data directory.
    pub fn start(dir: &Path, extra: &[&str]) -> Self {
        Self::start_with(dir, extra, &Launch::default())
    }

    /// Starts `edgefn up` as [`Server::start`] does, with the log and limits of `launch`.
    pub fn start_with(dir: &Path, extra: &[&str], launch: &Launch) -> Self {
        let mut command = match launch.max_open_files {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}")).arg("--").arg(env!("CARGO_BIN_EXE_edgefn"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_edgefn")),
        };
        let stderr = match &launch.log_file {
            Some(path) => Stdio::from(std::fs::File::create(path).expect("log file")),
            None => Stdio::inherit(),
        };
        let mut child = command
            .args(["up", "--listen", "127.0.0.1:0", "--node-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(["--build-workers", &launch.build_workers.unwrap_or(0).to_string()])
            .args(extra)
            .env("EDGEFN_LOG", launch.log_level.unwrap_or("warn"))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn edgefn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut node, mut metrics) = (String::new(), String::new());
        let url = loop {
            let line = lines.next().expect("edgefn exited before listening").expect("read stdout");
            if let Some(url) = line.strip_prefix("metrics listening on ") {
                metrics = url.to_string();
            } else if let Some(url) = line.strip_prefix("node listening on ") {
                node = url.to_string();
            } else if let Some(url) = line.strip_prefix("listening on ") {
                break url.to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let token = std::fs::read_to_string(dir.join("admin-token")).expect("admin token").trim().to_string();
        Self { child, url, node, metrics, token, dir: dir.to_path_buf() }
    }

    /// An HTTP client for this server.
    pub fn client(&self) -> Api {
        Api::new(&self.url, &self.token)
    }

    /// Stops the server with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// Stops the server with SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        Command::new("kill").arg(self.child.id().to_string()).status().expect("kill -TERM");
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "edgefn exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How [`Server::start_with`] runs the server.
#[derive(Default)]
pub struct Launch {
    /// `EDGEFN_LOG` (default `warn`).
    pub log_level: Option<&'static str>,
    /// Where its log (stderr) goes; the test's stderr by default.
    pub log_file: Option<PathBuf>,
    /// Its limit of open file descriptors (through `prlimit`).
    pub max_open_files: Option<u64>,
    /// Build workers inside (default none: a test that builds asks for them).
    pub build_workers: Option<usize>,
}

/// A thin client that returns status and JSON body.
#[derive(Clone)]
pub struct Api {
    /// The client.
    pub http: reqwest::Client,
    /// Base URL.
    pub url: String,
    /// Token.
    pub token: String,
}

impl Api {
    /// A client of the API at `url` with `token`.
    pub fn new(url: &str, token: &str) -> Self {
        // A server closes a kept-alive connection that sends no request head for 10 s. A
        // test blocked on a child process does not run its runtime, so the client never
        // sees that close and would send its next request on the dead connection: idle
        // connections are not reused past 5 s.
        let http = reqwest::Client::builder().pool_idle_timeout(std::time::Duration::from_secs(5)).build().expect("client");
        Self { http, url: url.to_string(), token: token.to_string() }
    }

    /// Sends a request with the token and returns (status, JSON body or Null).
    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let res = req.bearer_auth(&self.token).send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    /// GET.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.url))).await
    }
    /// POST JSON.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.url)).json(&body)).await
    }
    /// PATCH JSON.
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.patch(format!("{}{path}", self.url)).json(&body)).await
    }
    /// Uploads module bytes.
    pub async fn upload(&self, name: &str, version: &str, bytes: Vec<u8>) -> (u16, Value) {
        let url = format!("{}/api/v1/modules?name={name}&version={version}", self.url);
        self.send(self.http.post(url).header("content-type", "application/wasm").body(bytes)).await
    }
    /// Uploads an example and returns the module id.
    pub async fn upload_example(&self, file: &str) -> String {
        let name = file.trim_end_matches(".wat");
        let (status, body) = self.upload(name, "1.0.0", example(file)).await;
        assert_eq!(status, 201, "{body}");
        body["module"]["id"].as_str().unwrap().to_string()
    }
    /// The same API as another caller.
    pub fn with_token(&self, token: &str) -> Api {
        Api { http: self.http.clone(), url: self.url.clone(), token: token.to_string() }
    }
    /// Creates an ordinary user and returns a client acting as it.
    pub async fn new_user(&self, name: &str) -> Api {
        let (status, body) = self.post("/api/v1/users", serde_json::json!({"name": name})).await;
        assert_eq!(status, 201, "{body}");
        self.with_token(body["token"].as_str().expect("the new user's token"))
    }

    /// Waits (at most 10 s) until every connected node has applied the control plane's
    /// current revision: changes reach nodes asynchronously, through the node stream.
    pub async fn synced(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (status, body) = self.get("/api/v1/nodes").await;
            assert_eq!(status, 200, "{body}");
            let nodes = body["nodes"].as_array().unwrap();
            if nodes.iter().filter(|n| n["connected"] == true).all(|n| n["behind"] == 0) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "nodes did not catch up: {body}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Invokes a function.
    pub async fn invoke(&self, module: &str, body: Value) -> (u16, Value) {
        self.post(&format!("/api/v1/modules/{module}/invoke"), body).await
    }
}

/// Assembles an example from `examples/`.
pub fn example(file: &str) -> Vec<u8> {
    let path = format!("{}/../../examples/{file}", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
        }
    }
    out
}

/// Whether npm is here (the JavaScript and AssemblyScript builds need it).
pub fn has_npm() -> bool {
    Command::new("npm").arg("--version").output().is_ok()
}

/// Whether Rust's wasm32-wasip2 target is installed (`./scripts/test` installs it).
pub fn has_wasip2() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2"))
}

/// Whether bubblewrap, the build worker's sandbox, is here (`./scripts/test` installs it).
pub fn has_bwrap() -> bool {
    Command::new("bwrap").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// `edgefn` for a client command: the server and token come from what the test passes,
/// never from a login the developer saved (`XDG_CONFIG_HOME` points at an empty place).
pub fn client_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edgefn"));
    command.env("XDG_CONFIG_HOME", std::env::temp_dir().join("edgefn-tests-without-login")).env_remove("EDGEFN_TOKEN");
    command
}
