//! Host functions, limits and metrics on the edge node of `edgefn up`, through real
//! requests: key-value, env, request id and headers, guest counters, the guest log cap,
//! the outbound allow-list, the same for components (wit/host.wit), grants, the concurrency limit, and a long run of 100 clients.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::{deploy, get_routed, handler};
use crate::{Server, example};

/// The value of the first metric line starting with `series` (name and labels).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

async fn metrics(server: &Server) -> String {
    reqwest::get(format!("{}/metrics", server.metrics)).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn host_functions_reach_kv_env_request_data_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let route = deploy(&api, "demo", example("host-demo.wat"), "/visits").await;
    let id = route["moduleId"].as_str().unwrap().to_string();

    let res = get_routed(&server.node, "/visits").await;
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(res.text().await.unwrap(), format!("Hello anonymous: visit 1 (request {request_id})\n"));

    let (status, body) = api.patch("/api/v1/modules/demo", json!({"env": {"GREETING": "Hi "}})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["env"]["GREETING"].as_str().unwrap().starts_with("sha256:"), "values are shown as fingerprints: {body}");
    api.synced().await;
    let res = reqwest::Client::new().get(format!("{}/visits", server.node)).header("x-name", "Ada").send().await.unwrap();
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(res.text().await.unwrap(), format!("Hi Ada: visit 2 (request {request_id})\n"), "the count lives in the KV store");

    let text = metrics(&server).await;
    assert_eq!(metric(&text, &format!("wasm_guest_counter_total{{function_id=\"{id}\",name=\"visits\"}}")), Some(2.0), "{text}");
    assert_eq!(metric(&text, &format!("wasm_invoke_count_total{{function_id=\"{id}\"}}")), Some(2.0));
    assert_eq!(metric(&text, &format!("wasm_invoke_latency_seconds_count{{function_id=\"{id}\"}}")), Some(2.0));
    assert!(metric(&text, "wasm_cache_hits_total").unwrap() >= 2.0);
    // Pool gauges carry the same function_id as the invoke metrics, and the version.
    let busy = format!("wasm_pool_busy_instances{{function_id=\"{id}\",version=\"1.0.0\"}}");
    assert_eq!(metric(&text, &busy), Some(0.0), "pool gauges: {text}");
}

#[tokio::test]
async fn a_log_flood_is_capped_at_1000_lines_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let route = deploy(&api, "demo", example("host-demo.wat"), "/flood").await;
    let id = route["moduleId"].as_str().unwrap();
    let res = get_routed(&server.node, "/flood").await;
    assert_eq!(res.text().await.unwrap(), "5000 lines logged\n");
    let dropped = metric(&metrics(&server).await, &format!("wasm_guest_logs_dropped_total{{function_id=\"{id}\"}}"));
    assert_eq!(dropped, Some(4000.0), "5000 lines in well under a second: 1000 kept, 4000 dropped and counted");
    // The node still answers at once.
    assert_eq!(reqwest::get(format!("{}/welcome", server.node)).await.unwrap().status(), 200);
}

#[tokio::test]
async fn outbound_http_is_limited_to_the_allow_list() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    deploy(&api, "demo", example("host-demo.wat"), "/fetch").await;
    // The API's health endpoint is a real HTTP server to fetch from.
    let url = format!("{}/healthz", server.url);
    assert_eq!(api.patch("/api/v1/modules/demo", json!({"env": {"URL": url}})).await.0, 200);
    api.synced().await;
    let denied = get_routed(&server.node, "/fetch").await.text().await.unwrap();
    assert_eq!(denied, "fetch failed with code -3", "a host off the allow-list is denied");

    let (status, body) = api.patch("/api/v1/modules/demo", json!({"allowHosts": ["not a host"]})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("bad_request")));
    assert_eq!(api.patch("/api/v1/modules/demo", json!({"allowHosts": ["127.0.0.1"]})).await.0, 200);
    api.synced().await;
    let fetched = reqwest::get(format!("{}/fetch", server.node)).await.unwrap().text().await.unwrap();
    assert!(fetched.starts_with("200\n") && fetched.contains("\n\n"), "the guest got the response: {fetched}");
    assert!(fetched.ends_with("ok") || fetched.contains("\"ok\""), "{fetched}");
}

#[tokio::test]
async fn components_use_the_host_interfaces_and_allow_listed_outbound_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let route = deploy(&api, "hc", example("host-component.wat"), "/hc").await;
    let id = route["moduleId"].as_str().unwrap().to_string();

    let first = get_routed(&server.node, "/hc").await;
    let first_id = first.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(first.text().await.unwrap(), "greeting=;last=;fetch=off\n");

    // config values, and an outbound request to a host that is not allow-listed yet
    let authority = server.url.trim_start_matches("http://").to_string();
    let (status, body) = api.patch("/api/v1/modules/hc", json!({"env": {"greeting": "hi", "fetch": authority}})).await;
    assert_eq!(status, 200, "{body}");
    api.synced().await;
    let second = get_routed(&server.node, "/hc").await;
    let second_id = second.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(second.text().await.unwrap(), format!("greeting=hi;last={first_id};fetch=denied\n"), "kv kept the last request id");

    assert_eq!(api.patch("/api/v1/modules/hc", json!({"allowHosts": ["127.0.0.1"]})).await.0, 200);
    api.synced().await;
    let third = get_routed(&server.node, "/hc").await.text().await.unwrap();
    assert_eq!(third, format!("greeting=hi;last={second_id};fetch=200\n"), "the API's /healthz answered the guest");

    let text = metrics(&server).await;
    assert_eq!(metric(&text, &format!("wasm_guest_counter_total{{function_id=\"{id}\",name=\"component_hits\"}}")), Some(3.0), "{text}");

    // A `system` module may not use the key-value store: refused at route creation, naming the interface.
    assert_eq!(api.upload("hc-system", "1.0.0", example("host-component.wat")).await.0, 201);
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("edgefn.db").display())).await.unwrap();
    sqlx::query("UPDATE modules SET owner_type = 'system' WHERE name = 'hc-system'").execute(&db).await.unwrap();
    let (status, body) = api.post("/api/v1/routes", json!({"path": "/hc2", "moduleId": "hc-system"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("disallowed_import")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("`edgefn:host/kv@0.1.0`"), "{body}");
}

#[tokio::test]
async fn imports_outside_the_grants_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let unknown = wat::parse_str(r#"(module (import "edgefn" "fly" (func)))"#).unwrap();
    let (status, body) = api.upload("fly", "1.0.0", unknown).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("disallowed_import")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("edgefn::fly"), "{body}");

    // A `user` module may only abort (seed §6.2): make the demo one, then route it.
    assert_eq!(api.upload("demo", "1.0.0", example("host-demo.wat")).await.0, 201);
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("edgefn.db").display())).await.unwrap();
    sqlx::query("UPDATE modules SET owner_type = 'user' WHERE name = 'demo'").execute(&db).await.unwrap();
    let (status, body) = api.post("/api/v1/routes", json!({"path": "/demo", "moduleId": "demo"})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("disallowed_import")), "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`edgefn.log`") && message.contains("class `user`"), "{message}");
}

#[tokio::test]
async fn a_saturated_function_answers_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-queue", "0"]);
    let api = server.client();
    deploy(&api, "spin", handler("(loop $l (br $l)) (i32.const 0)"), "/spin").await;
    assert_eq!(api.patch("/api/v1/modules/spin", json!({"maxInstances": 1})).await.0, 200);
    assert_eq!(api.patch("/api/v1/modules/spin", json!({"maxInstances": 0})).await.0, 400);
    api.synced().await;
    let node = server.node.clone();
    let first = tokio::spawn(async move { reqwest::get(format!("{node}/spin")).await.unwrap().status() });
    // Once the pool gauge shows the first request running, the next one has no slot and no queue.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !metrics(&server).await.lines().any(|l| l.starts_with("wasm_pool_busy_instances{") && l.ends_with(" 1")) {
        assert!(Instant::now() < deadline, "the first request never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = reqwest::get(format!("{}/spin", server.node)).await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert!(refused.text().await.unwrap().contains("limit of 1 concurrent request"));
    assert_eq!(first.await.unwrap(), 504);
    let text = metrics(&server).await;
    assert!(text.lines().any(|l| l.starts_with("wasm_invoke_errors_total{") && l.contains("code=\"unavailable\"")), "{text}");
}

#[tokio::test]
async fn a_hundred_clients_for_thirty_seconds_get_no_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    assert_eq!(get_routed(&server.node, "/welcome").await.status(), 200);
    let http = reqwest::Client::new();
    let until = Instant::now() + Duration::from_secs(30);
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let (http, url) = (http.clone(), format!("{}/welcome", server.node));
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, Vec::new());
                while Instant::now() < until {
                    let answer = match http.get(&url).send().await {
                        Ok(res) => (res.status(), res.text().await),
                        Err(e) => {
                            failed.push(e.to_string());
                            continue;
                        }
                    };
                    match answer {
                        (status, Ok(text)) if status == 200 && text.starts_with("Hello from edgefn!") => ok += 1,
                        (status, text) => failed.push(format!("{status}: {text:?}")),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, Vec::new());
    for c in clients {
        let (n, f) = c.await.unwrap();
        ok += n;
        failed.extend(f);
    }
    println!("100 clients × 30 s: {ok} answers, {} errors", failed.len());
    assert!(failed.is_empty(), "{} errors, first: {:?}", failed.len(), failed.first());
    assert!(ok > 1000, "only {ok} answers");
}
