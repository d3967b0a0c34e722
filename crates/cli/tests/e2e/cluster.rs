//! Scale-out with real processes on loopback: one `edgefn control` and three
//! `edgefn node`s, each with its own data directory and certificate. Routes reach every
//! node; a tampered artifact is refused and the old version keeps serving; the nodes keep
//! serving through `kill -9` of the control plane and from disk across their own restart;
//! nodes without a valid certificate, or removed by an admin, are refused; the registry
//! shows revisions and status, and HTTP traffic shows in a function's stats.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Api;
use crate::http::says;

/// Reports every 300 ms: `offline` after 6 missed reports, within 2 s.
const REPORT_MS: &str = "300";

fn edgefn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_edgefn"))
}

/// Runs an `edgefn` command to completion and returns its stdout.
fn run(args: &[&str]) -> String {
    let out = edgefn().args(args).output().expect("run edgefn");
    assert!(out.status.success(), "edgefn {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A child process killed when dropped, with the lines it printed on stdout.
struct Process {
    child: Child,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `edgefn args…` and reads stdout until each of `wanted` prefixes printed a line;
/// returns what followed each prefix.
fn spawn(args: &[&str], log: &Path, wanted: &[&str]) -> (Process, Vec<String>) {
    let mut child = edgefn()
        .args(args)
        .env("EDGEFN_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap()))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut found = vec![String::new(); wanted.len()];
    while found.iter().any(String::is_empty) {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("edgefn {args:?} exited; log: {}", std::fs::read_to_string(log).unwrap_or_default()))
            .unwrap();
        for (i, prefix) in wanted.iter().enumerate() {
            if let Some(rest) = line.strip_prefix(prefix) {
                found[i] = rest.to_string();
            }
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    (Process { child }, found)
}

/// A control plane process.
struct Control {
    process: Process,
    api: String,
    stream: String,
    token: String,
    dir: PathBuf,
    certs: PathBuf,
}

impl Control {
    /// Starts `edgefn control` on `api` / `stream` addresses (`127.0.0.1:0` for any).
    fn start(dir: &Path, certs: &Path, api: &str, stream: &str) -> Self {
        let args = [
            "control",
            "--listen",
            api,
            "--node-stream-listen",
            stream,
            "--data-dir",
            dir.to_str().unwrap(),
            "--certs",
            certs.to_str().unwrap(),
        ];
        let (process, found) = spawn(&args, &dir.with_extension("log"), &["node stream listening on ", "listening on "]);
        let token = std::fs::read_to_string(dir.join("admin-token")).unwrap().trim().to_string();
        Self { process, stream: found[0].clone(), api: found[1].clone(), token, dir: dir.to_path_buf(), certs: certs.to_path_buf() }
    }

    fn client(&self) -> Api {
        Api::new(&self.api, &self.token)
    }

    /// `kill -9`, then the same control plane again on the same addresses.
    fn crash(&mut self) {
        self.process.child.kill().unwrap();
        self.process.child.wait().unwrap();
    }

    fn restart(&mut self) {
        let (api, stream) = (self.api.trim_start_matches("http://").to_string(), self.stream.trim_start_matches("https://").to_string());
        *self = Self::start(&self.dir, &self.certs, &api, &stream);
    }
}

/// A node process.
struct Node {
    process: Process,
    url: String,
    name: String,
    dir: PathBuf,
    log: PathBuf,
}

/// Starts `edgefn node NAME` with its certificate files, data in `dir`.
fn start_node(control: &Control, name: &str, cert: &Path, key: &Path, dir: &Path) -> Node {
    let log = dir.with_extension("log");
    let ca = control.certs.join("ca.pem");
    let args = [
        "node",
        "--control",
        &control.stream,
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
        "--report-every-ms",
        REPORT_MS,
    ];
    let (process, found) = spawn(&args, &log, &["node listening on "]);
    Node { process, url: found[0].clone(), name: name.to_string(), dir: dir.to_path_buf(), log }
}

fn node_files(certs: &Path, name: &str) -> (PathBuf, PathBuf) {
    let files = edgefn_control::nodes::CertFiles::node(certs, name);
    (files.cert, files.key)
}

/// A CA, a control plane and three nodes in `root`.
fn cluster(root: &Path) -> (Control, Vec<Node>) {
    let certs = root.join("certs");
    run(&["certs", "init", "--dir", certs.to_str().unwrap()]);
    for (name, pop) in [("n1", "eu-1"), ("n2", "eu-2"), ("n3", "us-1")] {
        run(&["certs", "node", name, "--pop", pop, "--dir", certs.to_str().unwrap()]);
    }
    let control = Control::start(&root.join("cp"), &certs, "127.0.0.1:0", "127.0.0.1:0");
    let nodes = ["n1", "n2", "n3"]
        .iter()
        .map(|name| {
            let (cert, key) = node_files(&certs, name);
            start_node(&control, name, &cert, &key, &root.join(name))
        })
        .collect();
    (control, nodes)
}

/// GETs `url` until `check` holds for (status, body) or `within` passes; returns the last.
async fn until(url: &str, within: Duration, check: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + within;
    loop {
        let answer = match reqwest::get(url).await {
            Ok(res) => (res.status().as_u16(), res.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        };
        if check(answer.0, &answer.1) || Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn route(api: &Api, path: &str, module: &str, version: Option<&str>) -> Value {
    let (status, route) = api.post("/api/v1/routes", json!({"path": path, "moduleId": module, "version": version})).await;
    assert_eq!(status, 201, "{route}");
    route
}

/// The registry's entry of `name`.
async fn registered(api: &Api, name: &str) -> Option<Value> {
    let (status, body) = api.get("/api/v1/nodes").await;
    assert_eq!(status, 200, "{body}");
    body["nodes"].as_array().unwrap().iter().find(|n| n["name"] == name).cloned()
}

/// Waits until the registry's entry of `name` satisfies `check`.
async fn registry_until(api: &Api, name: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let entry = registered(api, name).await;
        match entry {
            Some(e) if check(&e) => return e,
            e if Instant::now() > deadline => panic!("node {name} never got there; last: {e:?}"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test]
async fn routes_reach_every_node_which_report_their_revision_and_traffic() {
    let root = tempfile::tempdir().unwrap();
    let (control, mut nodes) = cluster(root.path());
    let api = control.client();

    // A route created on the control plane answers on all three nodes.
    assert_eq!(api.upload("greet", "1.0.0", says("hello from the edge")).await.0, 201);
    route(&api, "/greet", "greet", None).await;
    for node in &nodes {
        let (status, body) = until(&format!("{}/greet", node.url), Duration::from_secs(10), |s, _| s == 200).await;
        assert_eq!((status, body.as_str()), (200, "hello from the edge"), "node {}", node.name);
    }

    // The registry lists the three nodes (no others), each at the current revision, online.
    for node in &nodes {
        let entry = registry_until(&api, &node.name, Duration::from_secs(10), |e| e["behind"] == 0 && e["status"] == "online").await;
        assert!(entry["revision"].as_u64().unwrap() > 0, "{entry}");
        assert_eq!(entry["connected"], true);
    }
    let (_, all) = api.get("/api/v1/nodes").await;
    let names: Vec<&str> = all["nodes"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    assert_eq!(registered(&api, "n3").await.unwrap()["pop"], "us-1", "the POP comes from the certificate");
    let listed = run(&["node", "list", "--url", &control.api, "--token", &control.token]);
    for name in ["n1", "n2", "n3"] {
        assert!(listed.lines().any(|l| l.contains(name) && l.contains("online")), "{listed}");
    }

    // HTTP traffic reaches the function's stats through the nodes' reports.
    for node in &nodes {
        for _ in 0..10 {
            assert_eq!(reqwest::get(format!("{}/greet", node.url)).await.unwrap().status(), 200);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        let (_, stats) = api.get("/api/v1/modules/greet/stats").await;
        if stats["http"]["requests"].as_i64() >= Some(30) || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(stats["http"]["requests"].as_i64().unwrap() >= 30, "{stats}");
    assert_eq!(stats["http"]["errors"], 0, "{stats}");
    assert_eq!(stats["totalExecutions"], 0, "no call went through the invoke API: {stats}");

    // A POP selector sends a route only to the nodes of that POP.
    assert_eq!(api.upload("eu-only", "1.0.0", says("eu")).await.0, 201);
    let (status, body) = api.post("/api/v1/routes", json!({"path": "/eu", "moduleId": "eu-only", "popSelector": "eu-*"})).await;
    assert_eq!(status, 201, "{body}");
    for node in &nodes[..2] {
        assert_eq!(until(&format!("{}/eu", node.url), Duration::from_secs(10), |s, _| s == 200).await.0, 200);
    }
    registry_until(&api, "n3", Duration::from_secs(10), |e| e["behind"] == 0).await;
    assert_eq!(reqwest::get(format!("{}/eu", nodes[2].url)).await.unwrap().status(), 404);
    let n3_state = std::fs::read(nodes[2].dir.join("state.redb")).unwrap();
    assert!(!n3_state.windows(7).any(|w| w == b"eu-only"), "a node holds nothing it may not run");

    // A stopped node turns offline.
    let stopped = nodes.pop().unwrap();
    drop(stopped.process);
    let entry = registry_until(&api, "n3", Duration::from_secs(10), |e| e["status"] == "offline").await;
    assert_eq!(entry["connected"], false);
    assert_eq!(registered(&api, "n1").await.unwrap()["status"], "online");
}

#[tokio::test]
async fn nodes_serve_through_a_killed_control_plane_and_from_disk_then_catch_up() {
    let root = tempfile::tempdir().unwrap();
    let (mut control, mut nodes) = cluster(root.path());
    let api = control.client();
    assert_eq!(api.upload("steady", "1.0.0", says("steady")).await.0, 201);
    route(&api, "/steady", "steady", None).await;
    let (status, uploaded) = api.upload("fragile", "1.0.0", says("fragile")).await;
    assert_eq!(status, 201, "{uploaded}");
    let fragile = uploaded["version"]["sha256"].as_str().or(uploaded["sha256"].as_str()).expect("sha256").to_string();
    route(&api, "/fragile", "fragile", None).await;
    for node in &nodes {
        assert_eq!(until(&format!("{}/steady", node.url), Duration::from_secs(10), |s, _| s == 200).await.0, 200);
        assert_eq!(until(&format!("{}/fragile", node.url), Duration::from_secs(10), |s, _| s == 200).await.0, 200);
    }

    // Steady load on every node while the control plane is killed: no request fails.
    let urls: Vec<String> = nodes.iter().map(|n| format!("{}/steady", n.url)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load: Vec<_> = urls
        .iter()
        .cloned()
        .map(|url| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let (mut ok, mut failed) = (0u32, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match http.get(&url).send().await {
                        Ok(res) if res.status() == 200 => ok += 1,
                        Ok(res) => failed.push(res.status().to_string()),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    control.crash();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for task in load {
        let (ok, failed) = task.await.unwrap();
        assert!(failed.is_empty(), "{} failed, first: {:?}", failed.len(), failed.first());
        assert!(ok > 50, "only {ok} answers");
    }

    // A node restarted while the control plane is down serves from its own disk — all but
    // a function whose cached artifact was deleted meanwhile.
    let (name, dir) = (nodes[0].name.clone(), nodes[0].dir.clone());
    drop(nodes.remove(0).process);
    std::fs::remove_file(dir.join("artifacts").join(&fragile)).unwrap();
    std::fs::remove_dir_all(dir.join("compiled")).unwrap();
    let (cert, key) = node_files(&control.certs, &name);
    let restarted = start_node(&control, &name, &cert, &key, &dir);
    let res = reqwest::get(format!("{}/steady", restarted.url)).await.unwrap();
    assert_eq!((res.status().as_u16(), res.text().await.unwrap()), (200, "steady".to_string()));
    let log = std::fs::read_to_string(&restarted.log).unwrap();
    assert!(log.contains("serving the saved state"), "{log}");
    assert_eq!(reqwest::get(format!("{}/fragile", restarted.url)).await.unwrap().status(), 500);
    nodes.insert(0, restarted);

    // The control plane comes back; a change made then reaches every node.
    control.restart();
    let api = control.client();
    assert_eq!(api.upload("after", "1.0.0", says("made after the outage")).await.0, 201);
    route(&api, "/after", "after", None).await;
    for node in &nodes {
        let (status, body) = until(&format!("{}/after", node.url), Duration::from_secs(30), |s, _| s == 200).await;
        assert_eq!((status, body.as_str()), (200, "made after the outage"), "node {}", node.name);
        assert_eq!(reqwest::get(format!("{}/steady", node.url)).await.unwrap().status(), 200);
        // The node said what it lacked and fetched it: the function answers again.
        let (status, body) = until(&format!("{}/fragile", node.url), Duration::from_secs(30), |s, _| s == 200).await;
        assert_eq!((status, body.as_str()), (200, "fragile"), "node {}", node.name);
    }
    let log = std::fs::read_to_string(&nodes[0].log).unwrap();
    assert!(log.contains("artifacts of applied functions are missing from the cache"), "{log}");
    assert!(nodes[0].dir.join("artifacts").join(&fragile).exists(), "the node fetched the artifact again");
}

/// A node killed at a random point of a burst of 1,000 route changes, restarted while the
/// control plane is down, serves exactly a state it had acknowledged: the routes of one
/// revision (a prefix of the burst, which created them one change each in order), and at
/// least every route of the last revision the control plane saw it acknowledge.
#[tokio::test]
async fn a_node_killed_during_a_burst_serves_a_state_it_acknowledged() {
    use rand::Rng;
    const BURST: usize = 1_000;
    let root = tempfile::tempdir().unwrap();
    let (mut control, mut nodes) = cluster(root.path());
    let api = control.client();
    assert_eq!(api.upload("burst", "1.0.0", says("in the burst")).await.0, 201);
    route(&api, "/b0", "burst", None).await;
    assert_eq!(until(&format!("{}/b0", nodes[0].url), Duration::from_secs(10), |s, _| s == 200).await.0, 200);
    let first = registered(&api, "n1").await.unwrap()["currentRevision"].as_u64().unwrap();

    // The node is killed once it has acknowledged a random part of the burst.
    let kill_at = rand::rng().random_range(50..BURST as u64 - 50);
    let pid = nodes[0].process.child.id();
    let watcher = {
        let api = control.client();
        tokio::spawn(async move {
            let seen = registry_until(&api, "n1", Duration::from_secs(120), |n| n["revision"].as_u64() >= Some(first + kill_at)).await;
            let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
            assert!(status.success(), "kill -KILL {pid}");
            seen["revision"].as_u64().unwrap()
        })
    };
    for i in 1..BURST {
        route(&api, &format!("/b{i}"), "burst", None).await;
    }
    let last = registered(&api, "n1").await.unwrap()["currentRevision"].as_u64().unwrap();
    assert_eq!(last - first, BURST as u64 - 1, "one revision per route");
    let acknowledged = watcher.await.unwrap();
    control.crash();

    let (name, dir) = (nodes[0].name.clone(), nodes[0].dir.clone());
    drop(nodes.remove(0).process);
    let (cert, key) = node_files(&control.certs, &name);
    let restarted = start_node(&control, &name, &cert, &key, &dir);
    let http = reqwest::Client::new();
    let mut served = Vec::with_capacity(BURST);
    for i in 0..BURST {
        let res = http.get(format!("{}/b{i}", restarted.url)).send().await.unwrap();
        served.push(res.status().as_u16() == 200);
    }
    let held = served.iter().take_while(|s| **s).count();
    assert!(served[held..].iter().all(|s| !s), "after /b{held} the node serves a later route: not one revision's state");
    // Route /bN came with revision first + N.
    let must = (acknowledged - first) as usize + 1;
    assert!(held >= must, "the node acknowledged revision {acknowledged} (/b0../b{}) but serves only /b0../b{}", must - 1, held.max(1) - 1);
    eprintln!("killed after revision {acknowledged} was acknowledged (aimed at {}); serves /b0../b{}", first + kill_at, held - 1);
}

#[tokio::test]
async fn a_tampered_artifact_is_refused_reported_and_the_old_version_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    let (control, nodes) = cluster(root.path());
    let api = control.client();
    assert_eq!(api.upload("pinned", "1.0.0", says("version one")).await.0, 201);
    route(&api, "/pinned", "pinned", Some("1.0.0")).await;
    for node in &nodes {
        assert_eq!(until(&format!("{}/pinned", node.url), Duration::from_secs(10), |s, _| s == 200).await.1, "version one");
    }
    // Version 2 is stored, then changed in the control plane's artifact store before any
    // node runs it; a route to it makes the nodes fetch it.
    let (status, v2) = api.upload("pinned", "2.0.0", says("version two")).await;
    assert_eq!(status, 201, "{v2}");
    let sha = v2["version"]["sha256"].as_str().or(v2["sha256"].as_str()).expect("sha256 in the upload answer").to_string();
    let stored = control.dir.join("artifacts").join("sha256").join(&sha);
    let bytes = std::fs::read(&stored).unwrap();
    let at = bytes.windows(3).position(|w| w == b"two").expect("the answer in the data segment");
    let mut tampered = bytes.clone();
    tampered[at..at + 3].copy_from_slice(b"TWO");
    std::fs::write(&stored, tampered).unwrap();
    route(&api, "/pinned-two", "pinned", Some("2.0.0")).await;

    for node in &nodes {
        let entry = registry_until(&api, &node.name, Duration::from_secs(30), |e| !e["rejected"].as_array().unwrap().is_empty()).await;
        let reason = entry["rejected"][0]["reason"].as_str().unwrap();
        assert!(reason.contains("digest mismatch"), "{entry}");
        assert!(entry["rejected"][0]["resource"].as_str().unwrap().starts_with("function/"), "{entry}");
        // The old version keeps serving; the tampered bytes were never cached or served.
        let res = reqwest::get(format!("{}/pinned", node.url)).await.unwrap();
        assert_eq!((res.status().as_u16(), res.text().await.unwrap()), (200, "version one".to_string()));
        assert_eq!(reqwest::get(format!("{}/pinned-two", node.url)).await.unwrap().status(), 404);
        assert!(!node.dir.join("artifacts").join(&sha).exists(), "node {} cached a tampered artifact", node.name);
        let log = std::fs::read_to_string(&node.log).unwrap();
        assert!(log.contains("digest mismatch"), "{log}");
    }
}

#[tokio::test]
async fn nodes_without_a_valid_certificate_or_removed_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let (control, mut nodes) = cluster(root.path());
    let api = control.client();
    for node in &nodes {
        registry_until(&api, &node.name, Duration::from_secs(10), |e| e["connected"] == true).await;
    }

    // A certificate of another CA.
    let other = root.path().join("other-ca");
    run(&["certs", "init", "--dir", other.to_str().unwrap()]);
    run(&["certs", "node", "intruder", "--dir", other.to_str().unwrap()]);
    let (cert, key) = node_files(&other, "intruder");
    let intruder = start_node(&control, "intruder", &cert, &key, &root.path().join("intruder"));

    // An expired certificate of the right CA.
    let (cert, key) = expired_cert(&control.certs, "stale");
    let stale = start_node(&control, "stale", &cert, &key, &root.path().join("stale"));

    tokio::time::sleep(Duration::from_secs(3)).await;
    for refused in [&intruder, &stale] {
        assert!(registered(&api, &refused.name).await.is_none(), "{} was admitted", refused.name);
        assert_eq!(reqwest::get(format!("{}/welcome", refused.url)).await.unwrap().status(), 404);
        let log = std::fs::read_to_string(&refused.log).unwrap();
        assert!(log.contains("lost the control plane"), "{log}");
    }

    // A node an admin removed is disconnected and refused when it connects again.
    let out = run(&["node", "rm", "n3", "--url", &control.api, "--token", &control.token]);
    assert!(out.contains("removed node n3"), "{out}");
    let entry = registry_until(&api, "n3", Duration::from_secs(10), |e| e["status"] == "removed").await;
    assert_eq!(entry["connected"], false);
    let n3 = nodes.pop().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let log = std::fs::read_to_string(&n3.log).unwrap();
        if log.contains("was removed by an admin") {
            break;
        }
        assert!(Instant::now() < deadline, "n3 was not refused: {log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It still serves what it had: losing the control plane never empties a node.
    assert_eq!(reqwest::get(format!("{}/welcome", n3.url)).await.unwrap().status(), 200);
    // Only admins remove nodes, and see their addresses and what they rejected.
    let user = api.new_user("mallory").await;
    let (_, listed) = user.get("/api/v1/nodes").await;
    let n1 = listed["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "n1").unwrap().clone();
    assert_eq!((n1["address"].clone(), n1["status"].as_str()), (Value::Null, Some("online")), "{n1}");
    let (status, body) = user.send(user.http.delete(format!("{}/api/v1/nodes/n1", user.url))).await;
    assert_eq!(status, 403, "{body}");
}

/// A node certificate of `certs`' CA that expired yesterday.
fn expired_cert(certs: &Path, name: &str) -> (PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::from_pem(&std::fs::read_to_string(certs.join("ca.key")).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&std::fs::read_to_string(certs.join("ca.pem")).unwrap(), &ca_key).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, name);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(10);
    params.not_after = now - time::Duration::days(1);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let (cert_path, key_path) = (certs.join(format!("{name}-expired.pem")), certs.join(format!("{name}-expired.key")));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

#[tokio::test]
async fn forged_and_flooding_reports_are_refused_or_clamped_and_counted() {
    use edgefn_proto::v1;
    let root = tempfile::tempdir().unwrap();
    let certs = root.path().join("certs");
    run(&["certs", "init", "--dir", certs.to_str().unwrap()]);
    run(&["certs", "node", "forger", "--pop", "eu-1", "--dir", certs.to_str().unwrap()]);
    let control = Control::start(&root.path().join("cp"), &certs, "127.0.0.1:0", "127.0.0.1:0");
    let api = control.client();
    let (status, uploaded) = api.upload("greet", "1.0.0", says("hi")).await;
    assert_eq!(status, 201, "{uploaded}");
    let id = uploaded["module"]["id"].as_str().or(uploaded["id"].as_str()).expect("module id").to_string();
    route(&api, "/greet", "greet", None).await;

    // A node with a valid certificate that lies: a revision the control plane never had,
    // then 50 reports back to back, each of 1,000 rows, one of them 3×10^17 requests.
    let (cert, key) = node_files(&certs, "forger");
    let read = |p: &Path| std::fs::read(p).unwrap();
    let channel = edgefn_node::channel(&control.stream, &read(&certs.join("ca.pem")), &read(&cert), &read(&key)).unwrap();
    let mut client = edgefn_proto::node_stream_client(channel);
    let (outbox, queued) = tokio::sync::mpsc::channel(128);
    let hello = v1::Hello {
        protocol: edgefn_proto::PROTOCOL,
        revision: u64::MAX,
        agent_version: "forger".into(),
        // Every report but the first comes sooner than half this after the last, however
        // slowly a loaded machine sends the 50 (at 1 s it may take longer than half of it).
        report_every_ms: 600_000,
        ..Default::default()
    };
    outbox.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Hello(hello)) }).await.unwrap();
    let mut inbound = client.stream(tokio_stream::wrappers::ReceiverStream::new(queued)).await.unwrap().into_inner();
    assert!(inbound.message().await.unwrap().is_some(), "the control plane answers with a delta");
    for _ in 0..50 {
        let mut traffic: Vec<v1::Traffic> = (0..999)
            .map(|i| v1::Traffic { function_id: format!("made-up-{i}"), version: "1".into(), requests: 1, ..Default::default() })
            .collect();
        traffic.push(v1::Traffic {
            function_id: id.clone(),
            version: "1.0.0".into(),
            requests: 300_000_000_000_000_000,
            p50_ms: 1.0,
            p99_ms: 1e12,
            ..Default::default()
        });
        let report = v1::Report { revision: u64::MAX, window_ms: 1000, traffic, ..Default::default() };
        outbox.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Report(report)) }).await.unwrap();
    }

    // The registry counts what it refused; the revision reads as nothing known, not -1.
    let entry = registry_until(&api, "forger", Duration::from_secs(30), |e| e["refused"]["reports"].as_u64() >= Some(49)).await;
    assert_eq!(entry["refused"]["reports"], 49, "{entry}");
    assert_eq!((entry["refused"]["rows"].as_u64(), entry["refused"]["clamped"].as_u64()), (Some(999), Some(1)), "{entry}");
    assert_eq!(entry["revision"], 0, "{entry}");
    // The function's figures are what one window could hold.
    let (_, stats) = api.get("/api/v1/modules/greet/stats").await;
    let requests = stats["http"]["requests"].as_i64().unwrap();
    assert!((1..=1_000_000).contains(&requests), "{stats}");
    assert!(stats["http"]["p99Ms"].as_f64().unwrap() <= 600_000.0, "{stats}");
    let log = std::fs::read_to_string(control.dir.with_extension("log")).unwrap();
    assert!(log.contains("a node reported traffic that cannot be true"), "{log}");
    drop(outbox);
}
