//! The conformance suite: ordinary Rust `wasi:http` components (`conformance/`), served by
//! edgefn (the node of `edgefn up`) and by `wasmtime serve` side by side, asked the same
//! requests, their answers compared. What differs on purpose is asserted as such here and
//! listed in docs/compat.md.
//!
//! The components are committed as component text (`conformance/*.wat`) so machines
//! without the wasm32-wasip2 target run the suite too; where the target is installed
//! (`./scripts/test` installs it), [`the_committed_component_text_is_what_its_source_builds`]
//! rebuilds them and compares. `EDGEFN_BLESS=1` rewrites the text from the source.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Api, Launch, Server};

/// A conformance guest.
struct Guest {
    /// Its source crate under `conformance/`.
    source: &'static str,
    /// Its committed component text.
    text: &'static str,
    /// What `wasmtime serve` needs to serve it (besides `-Scli`).
    wasmtime_flags: &'static [&'static str],
    /// Paths where the guest fails: a trap, a panic, no response or an error code.
    failures: &'static [&'static str],
    /// The world edgefn finds it targets.
    world: &'static str,
}

const GUESTS: [Guest; 2] = [
    Guest {
        source: "guest-p2",
        text: "wasip2.wat",
        wasmtime_flags: &[],
        failures: &["/panic", "/trap", "/no-response"],
        world: "wasi:http/proxy",
    },
    Guest {
        source: "guest-p3",
        text: "wasip3.wat",
        wasmtime_flags: &["-Sp3", "-Wcomponent-model-async"],
        failures: &["/panic", "/trap", "/error-code"],
        world: "wasi:http/service",
    },
];

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance")
}

/// A guest component, assembled from its committed text.
fn guest(text: &str) -> Vec<u8> {
    let path = conformance_dir().join(text);
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A running `wasmtime serve` and everything it printed.
struct WasmtimeServe {
    child: Child,
    url: String,
    output: Arc<Mutex<String>>,
}

impl WasmtimeServe {
    /// Serves `wasm` with `wasmtime serve -Scli` and `args`, on a port the OS picks.
    fn start(wasm: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(conformance_dir().join("wasmtime"))
            .args(["serve", "-Scli", "--addr", "127.0.0.1:0", "--env", "FOO=bar"])
            .args(args)
            .arg(wasm)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wasmtime serve");
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())] {
            let (output, tx) = (output.clone(), tx.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("Serving HTTP on ") {
                        let _ = tx.send(url.trim_end_matches('/').to_string());
                    }
                    let mut output = output.lock().unwrap();
                    output.push_str(&line);
                    output.push('\n');
                }
            });
        }
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("wasmtime serve did not start listening within 60 s");
        Self { child, url, output }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }
}

impl Drop for WasmtimeServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An answer, reduced to what the two servers are compared on.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    /// The headers the guest set that both servers pass on.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn ask(http: &reqwest::Client, base: &str, method: &str, path: &str, body: Option<Vec<u8>>) -> Answer {
    let mut req = http.request(method.parse().unwrap(), format!("{base}/conformance{path}")).header("x-probe", "p1");
    if let Some(body) = body {
        req = req.body(body);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{method} {base}{path}: {e}"));
    let status = res.status().as_u16();
    let headers = ["content-type", "x-conformance", "x-echo"]
        .iter()
        .filter_map(|n| res.headers().get(*n).map(|v| (n.to_string(), v.to_str().unwrap().to_string())))
        .collect();
    Answer { status, headers, body: res.bytes().await.unwrap().to_vec() }
}

/// Waits (at most 10 s) until a line of `log()` contains every one of `parts`.
async fn logged(log: impl Fn() -> String, parts: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let all = log();
        if all.lines().any(|line| parts.iter().all(|p| line.contains(p))) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never logged {parts:?}; the log:\n{}",
            &all[all.floor_char_boundary(all.len().saturating_sub(4000))..]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads from `conn` until `text` has come (or the connection ends or times out); returns
/// all it read.
fn read_until(conn: &mut TcpStream, text: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(text) {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Sends the head of a chunked POST to `/echo` and one chunk, then checks the response
/// head and that chunk come back before the rest of the body is sent.
fn streams_before_the_body_ends(base: &str) {
    let addr = base.trim_start_matches("http://");
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(conn, "POST /conformance/echo HTTP/1.1\r\nHost: conformance\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n").unwrap();
    let got = read_until(&mut conn, "first");
    assert!(
        got.starts_with("HTTP/1.1 200") && got.contains("first"),
        "{base}: no echo of the first chunk while the body was still open: {got}"
    );
    write!(conn, "6\r\nsecond\r\n0\r\n\r\n").unwrap();
    let got = read_until(&mut conn, "second");
    assert!(got.contains("second"), "{base}: {got}");
}

/// Deploys `wasm`, which targets `world`, as an admin's function (every grant: its env reaches the WASI
/// environment, its output the log) routed at `/conformance/…`, with `FOO=bar` and a 30 s
/// HTTP timeout; returns the route's id.
async fn deploy_everywhere(api: &Api, name: &str, wasm: Vec<u8>, world: &str) -> String {
    let (status, body) = api.upload(name, "1.0.0", wasm).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"]["world"], world, "{body}");
    let (status, body) = api.patch(&format!("/api/v1/modules/{name}"), json!({"env": {"FOO": "bar"}, "httpTimeoutMs": 30_000})).await;
    assert_eq!(status, 200, "{body}");
    let (status, route) = api.post("/api/v1/routes", json!({"path": "/conformance", "match": "prefix", "moduleId": name})).await;
    assert_eq!(status, 201, "{route}");
    api.synced().await;
    route["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_http_components_answer_as_under_wasmtime_serve() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("edgefn.log");
    let server = Server::start_with(
        &dir.path().join("data"),
        &[],
        &Launch { log_level: Some("info"), log_file: Some(log_file.clone()), ..Launch::default() },
    );
    let api = server.client();
    let edgefn_log = || std::fs::read_to_string(&log_file).unwrap_or_default();
    let http = reqwest::Client::new();
    for Guest { source: crate_dir, text, wasmtime_flags, failures, world } in GUESTS {
        let wasm = guest(text);
        let file = dir.path().join(format!("{crate_dir}.wasm"));
        std::fs::write(&file, &wasm).unwrap();
        let wasmtime = WasmtimeServe::start(&file, wasmtime_flags);
        let route = deploy_everywhere(&api, crate_dir, wasm, world).await;
        let servers = [("edgefn", server.node.as_str()), ("wasmtime serve", wasmtime.url.as_str())];

        // The same answer, byte for byte.
        let one_mib: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let cases: Vec<(&str, &str, Option<Vec<u8>>)> = vec![
            ("GET", "/hello", None),
            ("GET", "/env?FOO", None),
            ("GET", "/env?NOT_SET", None),
            ("GET", "/args", None),
            ("GET", "/print", None),
            ("GET", "/status?418", None),
            ("PUT", "/request?a=1&b=two", None),
            ("GET", "/sleep?20", None),
            ("GET", "/clock", None),
            ("GET", "/bytes?300000", None),
            ("GET", "/nothing-here", None),
            ("POST", "/count", Some(one_mib.clone())),
            ("POST", "/echo", Some(one_mib.repeat(3))),
        ];
        for (method, path, body) in &cases {
            let [a, b] = [0, 1].map(|i| ask(&http, servers[i].1, method, path, body.clone()));
            let (a, b) = (a.await, b.await);
            assert_eq!(a.status, b.status, "{crate_dir} {method} {path}: edgefn {a:?}, wasmtime serve {b:?}");
            assert_eq!(a, b, "{crate_dir} {method} {path}: the same answer from both servers");
        }

        // A guest that traps, panics, returns before setting a response or answers with an
        // error code: 500 from both. (The bodies differ: wasmtime serve's HTML page,
        // edgefn's one-line reason.)
        for path in failures {
            for (name, base) in servers {
                let answer = ask(&http, base, "GET", path, None).await;
                assert_eq!(answer.status, 500, "{crate_dir} {path} on {name}: {}", String::from_utf8_lossy(&answer.body));
            }
        }
        if failures.contains(&"/no-response") {
            let answer = ask(&http, &server.node, "GET", "/no-response", None).await;
            assert!(String::from_utf8_lossy(&answer.body).contains("returned without setting a response"));
        }

        // Output: each line of stdout and stderr, a panic's message too, on both servers'
        // logs; edgefn's with the request id, and a last line without its newline kept.
        let res = http.get(format!("{}/conformance/print", server.node)).send().await.unwrap();
        let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        for line in ["conformance: a line to stdout", "conformance: a line to stderr", "conformance: a line without its newline"] {
            logged(edgefn_log, &[line, &request_id]).await;
        }
        logged(edgefn_log, &["the conformance guest panicked on purpose"]).await;
        for line in ["conformance: a line to stdout", "conformance: a line to stderr", "the conformance guest panicked on purpose"] {
            logged(|| wasmtime.output(), &[line]).await;
        }

        // The environment: the module's values on both; wasmtime serve adds its own.
        let names =
            |base: String| async move { reqwest::get(format!("{base}/conformance/env-names")).await.unwrap().text().await.unwrap() };
        assert_eq!(names(server.node.clone()).await, "FOO\n");
        assert!(names(wasmtime.url.clone()).await.split([',', '\n']).any(|n| n == "FOO"));

        // Bodies stream both ways: the head and the first bytes come back while the
        // request body is still arriving.
        for (_, base) in servers {
            streams_before_the_body_ends(base);
        }
        let (status, body) = api.send(api.http.delete(format!("{}/api/v1/routes/{route}", api.url))).await;
        assert_eq!(status, 204, "{body}");
        api.synced().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_bodies_are_held_to_the_function_limit_and_the_body_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--body-read-timeout-ms", "3000"]);
    let api = server.client();
    deploy_everywhere(&api, "limits", guest(GUESTS[0].text), GUESTS[0].world).await;
    let http = reqwest::Client::new();
    let node = &server.node;

    // 20 MiB echoed by default: streamed, over the 10 MiB a `handle` function may receive.
    let big: Vec<u8> = (0..20 << 20).map(|i| (i % 253) as u8).collect();
    let answer = ask(&http, node, "POST", "/echo", Some(big.clone())).await;
    assert_eq!(answer.status, 200);
    assert_eq!(Sha256::digest(&answer.body), Sha256::digest(&big), "20 MiB echoed intact");

    let (status, body) = api.patch("/api/v1/modules/limits", json!({"maxBodyBytes": 1 << 20})).await;
    assert_eq!((status, body["maxBodyBytes"].as_i64()), (200, Some(1 << 20)), "{body}");
    api.synced().await;
    let two_mib = vec![7u8; 2 << 20];
    // Past the limit the guest's stream fails, and the answer says why.
    let answer = ask(&http, node, "POST", "/count", Some(two_mib.clone())).await;
    assert_eq!(answer.status, 413, "{}", String::from_utf8_lossy(&answer.body));
    // Chunked, with no length declared: the same.
    let stream = futures::stream::iter(two_mib.chunks(64 << 10).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    let res = http.post(format!("{node}/conformance/count")).body(reqwest::Body::wrap_stream(stream)).send().await.unwrap();
    assert_eq!(res.status(), 413);
    assert!(res.text().await.unwrap().contains("over the limit of 1048576 bytes"));
    // Within it, still fine.
    let answer = ask(&http, node, "POST", "/count", Some(vec![1u8; 1 << 20])).await;
    assert_eq!((answer.status, answer.body), (200, b"1048576 bytes\n".to_vec()));
    // A response over the limit is cut off: its head has gone, so the body ends in an error.
    let res = http.get(format!("{node}/conformance/bytes?{}", 3 << 20)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.bytes().await.is_err(), "a 3 MiB response under a 1 MiB limit cannot complete");

    // A body that stops arriving: the guest's stream fails at the body-read timeout, 408.
    let mut conn = TcpStream::connect(node.trim_start_matches("http://")).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(conn, "POST /conformance/count HTTP/1.1\r\nHost: conformance\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n").unwrap();
    let answer = read_until(&mut conn, "did not arrive within 3 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    // The limit is the class's at most (admin modules: 1 GiB); 0 goes back to the default.
    let (status, body) = api.patch("/api/v1/modules/limits", json!({"maxBodyBytes": (1u64 << 30) + 1})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("maxBodyBytes 1073741825 must be between 1 and 1073741824"), "{body}");
    let (status, body) = api.patch("/api/v1/modules/limits", json!({"maxBodyBytes": 0})).await;
    assert_eq!((status, &body["maxBodyBytes"]), (200, &serde_json::Value::Null), "{body}");
}

#[test]
fn the_committed_component_text_is_what_its_source_builds() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let installed = installed.map(|o| String::from_utf8_lossy(&o.stdout).contains("wasm32-wasip2")).unwrap_or(false);
    if !installed {
        eprintln!("the wasm32-wasip2 target is not installed: the committed component text is used as it is");
        return;
    }
    let rustc = Command::new("rustc").arg("--version").output().expect("rustc");
    let rustc = String::from_utf8(rustc.stdout).unwrap().trim().to_string();
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| conformance_dir().join("target"), PathBuf::from).join("conformance");
    for Guest { source: crate_dir, text, .. } in GUESTS {
        let manifest = conformance_dir().join(crate_dir).join("Cargo.toml");
        let status = Command::new("cargo")
            .args(["build", "--release", "--locked", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(&manifest)
            .env("CARGO_TARGET_DIR", &target_dir)
            .status()
            .expect("cargo build");
        assert!(status.success(), "building {}", manifest.display());
        let name = crate_dir.replace('-', "_").replace("guest_", "conformance_");
        let wasm = std::fs::read(target_dir.join("wasm32-wasip2/release").join(format!("{name}.wasm"))).unwrap();
        let printed = format!(";; {crate_dir}, built with {rustc}\n{}\n", wasmprinter::print_bytes(&wasm).unwrap());
        let path = conformance_dir().join(text);
        if std::env::var_os("EDGEFN_BLESS").is_some() {
            std::fs::write(&path, &printed).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap();
        if committed.lines().next() != printed.lines().next() {
            eprintln!("{}: committed from another compiler; not compared with {rustc}'s build", path.display());
            continue;
        }
        assert!(
            committed == printed,
            "{} is not what {crate_dir} builds: run EDGEFN_BLESS=1 cargo test -p edgefn --test e2e committed_component_text",
            path.display()
        );
    }
}
