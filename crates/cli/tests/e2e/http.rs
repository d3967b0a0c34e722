//! HTTP functions on the edge node of `edgefn up`: routes, the handle ABI, every status.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Api, Server};

/// A handle-ABI module whose `handle` runs `body` (WAT instructions leaving an i32).
pub(crate) fn handler(body: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "200\n\nok")
            (global $h (mut i32) (i32.const 4096))
            (func (export "alloc") (param i32) (result i32) (global.get $h) (global.set $h (i32.add (global.get $h) (local.get 0))))
            (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) {body}))"#
    ))
    .unwrap()
}

/// A handle-ABI module answering `200` with `text`.
pub(crate) fn says(text: &str) -> Vec<u8> {
    responds(&format!("200\n\n{text}"))
}

/// A handle-ABI module answering `200` with the HTML page `html`.
pub(crate) fn serves_page(html: &str) -> Vec<u8> {
    responds(&format!("200\ncontent-type: text/html\n\n{html}"))
}

/// A handle-ABI module whose response is `body` (its status line, headers, blank line and body).
pub(crate) fn responds(body: &str) -> Vec<u8> {
    let data = body.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n").replace('\r', "\\r");
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{data}")
            (global $h (mut i32) (i32.const 4096))
            (func (export "alloc") (param i32) (result i32) (global.get $h) (global.set $h (i32.add (global.get $h) (local.get 0))))
            (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
              (memory.copy (local.get 8) (i32.const 0) (i32.const {len})) (i32.const {len})))"#,
        len = body.len()
    ))
    .unwrap()
}

/// Uploads `wasm` as `name` and routes `path` (exact) to it.
pub(crate) async fn deploy(api: &Api, name: &str, wasm: Vec<u8>, path: &str) -> Value {
    assert_eq!(api.upload(name, "1.0.0", wasm).await.0, 201);
    let (status, route) = api.post("/api/v1/routes", json!({"path": path, "moduleId": name})).await;
    assert_eq!(status, 201, "{route}");
    route
}

/// GETs `path` on the node until it stops answering 404 (routes reach the node asynchronously).
pub(crate) async fn get_routed(node: &str, path: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let res = reqwest::get(format!("{node}{path}")).await.unwrap();
        if res.status() != 404 || Instant::now() > deadline {
            return res;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GETs `path` until it answers `want` or 5 s pass; returns the last answer.
async fn eventually(node: &str, path: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = reqwest::get(format!("{node}{path}")).await.unwrap().text().await.unwrap();
        if text == want || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn both_bundled_examples_answer_on_a_fresh_start_over_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let res = reqwest::get(format!("{}/welcome", server.node)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    assert_eq!(res.text().await.unwrap(), "Hello from edgefn! GET /welcome\n");

    let h2 = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let res = h2.get(format!("{}/welcome?x=1", server.node)).send().await.unwrap();
    assert_eq!(res.version(), reqwest::Version::HTTP_2);
    assert_eq!(res.text().await.unwrap(), "Hello from edgefn! GET /welcome?x=1\n");

    // The wasi:http/proxy component (the one `wasmtime serve` runs) over both protocols.
    let res = reqwest::get(format!("{}/welcome-http", server.node)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "Hello from edgefn!\n");
    let res = h2.get(format!("{}/welcome-http", server.node)).send().await.unwrap();
    assert_eq!((res.version(), res.status()), (reqwest::Version::HTTP_2, reqwest::StatusCode::OK));
    assert_eq!(res.text().await.unwrap(), "Hello from edgefn!\n");
}

#[tokio::test]
async fn every_failure_has_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    deploy(&api, "spin", handler("(loop $l (br $l)) (i32.const 0)"), "/spin").await;
    deploy(&api, "crash", handler("unreachable"), "/crash").await;
    deploy(&api, "garbled", handler("(memory.copy (local.get 8) (i32.const 3) (i32.const 2)) (i32.const 2)"), "/garbled").await;
    deploy(&api, "fails", handler("(i32.const -1)"), "/fails").await;
    deploy(&api, "off", handler("(memory.copy (local.get 8) (i32.const 0) (i32.const 7)) (i32.const 7)"), "/off").await;
    assert_eq!(get_routed(&server.node, "/off").await.status(), 200);
    let (status, _) = api.send(api.http.patch(format!("{}/api/v1/modules/off", api.url)).json(&json!({"status": "disabled"}))).await;
    assert_eq!(status, 200);

    let started = Instant::now();
    let res = get_routed(&server.node, "/spin").await;
    assert_eq!(res.status(), 504);
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
    assert!(res.text().await.unwrap().contains("execution exceeded the timeout of 500 ms"));

    let res = get_routed(&server.node, "/crash").await;
    assert_eq!(res.status(), 500);
    assert!(res.text().await.unwrap().contains("unreachable"));
    let res = get_routed(&server.node, "/garbled").await;
    assert_eq!(res.status(), 502);
    assert!(res.text().await.unwrap().contains("malformed response"));
    assert_eq!(get_routed(&server.node, "/fails").await.status(), 500);
    assert_eq!(reqwest::get(format!("{}/off", server.node)).await.unwrap().status(), 503);
    assert_eq!(reqwest::get(format!("{}/nowhere", server.node)).await.unwrap().status(), 404);
    let res = reqwest::Client::new().delete(format!("{}/welcome", server.node)).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, HEAD");
    let res = reqwest::Client::new().get(format!("{}/welcome", server.node)).body(vec![0u8; 10 * 1024 * 1024 + 1]).send().await.unwrap();
    assert_eq!(res.status(), 413);
}

#[tokio::test]
async fn routes_are_checked_when_created() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    api.upload_example("add.wat").await;
    api.upload_example("typed.wat").await;
    let cases = [
        (json!({"path": "/a", "moduleId": "add"}), 400, "add@1.0.0 cannot serve HTTP: missing export(s): handle, alloc, memory"),
        (
            json!({"path": "/a", "moduleId": "typed"}),
            400,
            "typed@1.0.0 cannot serve HTTP: the component exports neither wasi:http/incoming-handler (WASI 0.2) nor wasi:http/handler (WASI 0.3)",
        ),
        (json!({"path": "/a", "moduleId": "welcome", "match": "glob"}), 400, "match `glob` is not one of exact, prefix, regex"),
        (json!({"path": "/(", "moduleId": "welcome", "match": "regex"}), 400, "invalid regex `/(`"),
        (json!({"path": "a", "moduleId": "welcome"}), 400, "path `a` must start with `/`"),
        (json!({"path": "/a", "moduleId": "welcome", "host": "a*b.com"}), 400, "host `a*b.com` is not a host name"),
        (json!({"path": "/a", "moduleId": "welcome", "methods": ["get me"]}), 400, "method `GET ME` is not an HTTP method name"),
        (json!({"path": "/a", "moduleId": "nope"}), 404, "module nope not found"),
        (json!({"path": "/a", "moduleId": "welcome", "version": "9"}), 404, "version 9 of module"),
    ];
    for (body, status, message) in cases {
        let (got, answer) = api.post("/api/v1/routes", body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{body}: {answer}");
    }
    let (_, routes) = api.get("/api/v1/routes").await;
    let paths: Vec<_> = routes["routes"].as_array().unwrap().iter().map(|r| r["path"].clone()).collect();
    assert_eq!(paths, vec![json!("/welcome"), json!("/welcome-http")], "only the bundled routes");
}

#[tokio::test]
async fn the_highest_priority_route_answers_and_removal_takes_effect() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    assert_eq!(api.upload("low", "1", says("low")).await.0, 201);
    assert_eq!(api.upload("high", "1", says("high")).await.0, 201);
    let (_, low) = api.post("/api/v1/routes", json!({"path": "/api", "match": "prefix", "moduleId": "low"})).await;
    let (_, high) =
        api.post("/api/v1/routes", json!({"path": "/api/v[0-9]+/.*", "match": "regex", "priority": 10, "moduleId": "high"})).await;
    // Routes reach the node asynchronously: wait until the high route is in.
    assert_eq!(eventually(&server.node, "/api/v2/users", "high").await, "high");
    assert_eq!(reqwest::get(format!("{}/api/other", server.node)).await.unwrap().text().await.unwrap(), "low");

    let (status, _) = api.send(api.http.delete(format!("{}/api/v1/routes/{}", api.url, high["id"].as_str().unwrap()))).await;
    assert_eq!(status, 204);
    assert_eq!(eventually(&server.node, "/api/v2/users", "low").await, "low", "the removed route still answers");
    assert_eq!(api.get(&format!("/api/v1/routes/{}", low["id"].as_str().unwrap())).await.0, 200);
}

#[tokio::test]
async fn a_looping_function_does_not_slow_another() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    deploy(&api, "spin", handler("(loop $l (br $l)) (i32.const 0)"), "/spin").await;
    // Routes reach the node asynchronously: wait until /spin is in before the spinners go.
    assert_eq!(get_routed(&server.node, "/spin").await.status(), 504);
    assert_eq!(get_routed(&server.node, "/welcome").await.status(), 200);
    let node = server.node.clone();
    let spinners: Vec<_> = (0..4).map(|_| tokio::spawn(reqwest::get(format!("{node}/spin")))).collect();
    let mut served = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(400) {
        let res = reqwest::get(format!("{}/welcome", server.node)).await.unwrap();
        assert_eq!(res.status(), 200);
        served += 1;
    }
    for s in spinners {
        assert_eq!(s.await.unwrap().unwrap().status(), 504);
    }
    assert!(served >= 20, "only {served} hello requests answered while 4 functions looped");
}

#[tokio::test]
async fn a_function_may_have_its_own_http_timeout_within_its_class() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    deploy(&api, "slow", handler("(loop $l (br $l)) (i32.const 0)"), "/slow").await;
    let res = get_routed(&server.node, "/slow").await;
    assert_eq!(res.status(), 504);
    assert!(res.text().await.unwrap().contains("the timeout of 500 ms"), "the node's default");

    // Up to the class's limit (the admin's modules: 60 s), like `wasmtime serve -Wtimeout`.
    let (status, body) = api.patch("/api/v1/modules/slow", json!({"httpTimeoutMs": 1200})).await;
    assert_eq!((status, body["httpTimeoutMs"].as_i64()), (200, Some(1200)), "{body}");
    api.synced().await;
    let res = reqwest::get(format!("{}/slow", server.node)).await.unwrap();
    assert_eq!(res.status(), 504);
    assert!(res.text().await.unwrap().contains("the timeout of 1200 ms"));

    let (status, body) = api.patch("/api/v1/modules/slow", json!({"httpTimeoutMs": 60_001})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("httpTimeoutMs 60001 must be between 1 and 60000"), "{body}");
    let (status, body) = api.patch("/api/v1/modules/slow", json!({"httpTimeoutMs": -5})).await;
    assert_eq!(status, 400, "{body}");

    // 0 goes back to the node's default.
    let (status, body) = api.patch("/api/v1/modules/slow", json!({"httpTimeoutMs": 0})).await;
    assert_eq!((status, &body["httpTimeoutMs"]), (200, &Value::Null), "{body}");
    api.synced().await;
    let res = reqwest::get(format!("{}/slow", server.node)).await.unwrap();
    assert!(res.text().await.unwrap().contains("the timeout of 500 ms"));
}

#[tokio::test]
async fn a_crlf_head_ends_at_its_own_empty_line_though_the_body_holds_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let wasm = responds("200\r\ncontent-type: text/plain\r\nx-kind: crlf\r\n\r\nfirst\n\nthird\n");
    deploy(&api, "crlf", wasm, "/crlf").await;
    let res = get_routed(&server.node, "/crlf").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-kind"], "crlf");
    assert_eq!(res.text().await.unwrap(), "first\n\nthird\n");
}
