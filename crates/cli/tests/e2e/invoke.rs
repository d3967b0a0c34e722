//! Invoke over HTTP: results, errors with signatures, limits, history and stats.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::Server;

#[tokio::test]
async fn add_returns_the_result_with_timing_and_module() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let id = api.upload_example("add.wat").await;
    let (status, body) = api.invoke(&id, json!({"function": "add", "args": [1, 2]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], json!(3));
    assert_eq!(body["cacheHit"], json!(true));
    assert!(body["executionTimeMs"].as_f64().unwrap() > 0.0);
    assert_eq!(body["memoryUsedBytes"], json!(0));
    assert_eq!(body["module"], json!({"id": id, "name": "add", "version": "1.0.0", "ownerType": "admin"}));

    // The seeds' executor endpoint answers the same way.
    let (status, body) =
        api.post("/functions/v1/wasm-executor", json!({"moduleId": id, "functionName": "add", "args": [20, 22], "timeoutMs": 5000})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], json!(42));
}

#[tokio::test]
async fn bad_calls_are_400_with_the_real_signature() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let id = api.upload_example("add.wat").await;
    let cases = [
        (json!({"function": "add", "args": [1]}), "bad_arguments", "too few arguments: got 1; expected add(i32, i32) -> i32"),
        (json!({"function": "add", "args": [1, 2, 3]}), "bad_arguments", "too many arguments: got 3; expected add(i32, i32) -> i32"),
        (
            json!({"function": "add", "args": [1, true]}),
            "bad_arguments",
            "argument 1: expected an integer for i32, got true; expected add(i32, i32) -> i32",
        ),
        (json!({"function": "mul", "args": [1, 2]}), "unknown_function", "no exported function named `mul`; exports: add(i32, i32) -> i32"),
        (json!({"function": "add", "args": [1, 2], "version": "9.9.9"}), "not_found", "version 9.9.9 of module"),
        (json!({"fn": "add"}), "bad_request", "unknown field `fn`"),
    ];
    for (body, code, message) in cases {
        let (status, answer) = api.invoke(&id, body.clone()).await;
        let expected_status = if code == "not_found" { 404 } else { 400 };
        assert_eq!(status, expected_status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], json!(code), "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{body}: {answer}");
    }
    assert_eq!(api.invoke("no-such-module", json!({"function": "add", "args": []})).await.0, 404);
}

#[tokio::test]
async fn an_infinite_loop_times_out_while_other_calls_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let spin = api.upload_example("loop.wat").await;
    let add = api.upload_example("add.wat").await;

    let looping = {
        let api = api.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let (status, body) = api.invoke(&spin, json!({"function": "spin", "timeoutMs": 1000})).await;
            (status, body, started.elapsed())
        })
    };
    // While the loop runs, another module keeps answering.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut answered = 0;
    while !looping.is_finished() {
        let (status, body) = api.invoke(&add, json!({"function": "add", "args": [answered, 1]})).await;
        assert_eq!((status, body["result"].clone()), (200, json!(answered + 1)));
        answered += 1;
    }
    let (status, body, took) = looping.await.unwrap();
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"], json!({"code": "timeout", "message": "execution exceeded the timeout of 1000 ms"}));
    assert!(took >= Duration::from_millis(1000) && took <= Duration::from_millis(1100), "stopped after {took:?}");
    assert!(answered >= 10, "only {answered} calls succeeded during the loop");
}

#[tokio::test]
async fn a_memory_bomb_is_stopped_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let id = api.upload_example("memory-bomb.wat").await;
    let (status, body) = api.invoke(&id, json!({"function": "grow"})).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], json!("trap"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memory limit exceeded: the function asked for 52494336 bytes of linear memory, its limit is 52428800 bytes"),
        "{body}"
    );
}

#[tokio::test]
async fn components_take_and_return_wit_types_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let id = api.upload_example("typed.wat").await;
    let calls = [
        (json!({"function": "greet", "args": ["edge"]}), json!("Hello, edge!")),
        (json!({"function": "sum", "args": {"values": [1, 2, 3]}}), json!(6)),
        (json!({"function": "translate", "args": [{"x": 1, "y": 1}, 2, 3]}), json!({"x": 3, "y": 4})),
        (json!({"function": "safe-div", "args": [1, 0]}), json!({"err": "division by zero"})),
        (json!({"function": "echo-shape", "args": [{"tag": "text", "value": "v"}]}), json!({"tag": "text", "value": "v"})),
        (json!({"function": "echo-option", "args": [null]}), json!(null)),
    ];
    for (call, expected) in calls {
        let (status, body) = api.invoke(&id, call.clone()).await;
        assert_eq!(status, 200, "{call}: {body}");
        assert_eq!(body["result"], expected, "{call}");
    }
    let (status, body) = api.invoke(&id, json!({"function": "translate", "args": [{"x": "one", "y": 1}, 2, 3]})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        json!(
            "parameter `p` (record { x: s32, y: s32 }): at .x: expected s32, got \"one\"; expected translate(p: record { x: s32, y: s32 }, dx: s32, dy: s32) -> record { x: s32, y: s32 }"
        )
    );
}

#[tokio::test]
async fn every_call_is_recorded_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let add = api.upload_example("add.wat").await;
    let spin = api.upload_example("loop.wat").await;
    for i in 0..8 {
        assert_eq!(api.invoke(&add, json!({"function": "add", "args": [i, i]})).await.0, 200);
    }
    assert_eq!(api.invoke(&add, json!({"function": "add", "args": [1]})).await.0, 400);
    assert_eq!(api.invoke(&spin, json!({"function": "spin", "timeoutMs": 50})).await.0, 504);

    let (status, page) = api.get(&format!("/api/v1/modules/{add}/executions?limit=3")).await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], json!(9));
    let rows = page["executions"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["status"], json!("error"));
    assert_eq!(rows[0]["error"], json!("too few arguments: got 1; expected add(i32, i32) -> i32"));
    assert_eq!(rows[1]["input"], json!("[7,7]"));
    assert_eq!(rows[1]["output"], json!("14"));
    assert_eq!(rows[1]["status"], json!("success"));
    let (_, next) = api.get(&format!("/api/v1/modules/{add}/executions?limit=3&offset=3")).await;
    assert_eq!(next["executions"][0]["input"], json!("[5,5]"));
    assert_eq!(api.get(&format!("/api/v1/modules/{add}/executions?limit=0")).await.0, 400);
    let (_, errors) = api.get(&format!("/api/v1/modules/{add}/executions?status=error")).await;
    assert_eq!((errors["total"].clone(), errors["executions"][0]["input"].clone()), (json!(1), json!("[1]")));
    let (_, successes) = api.get(&format!("/api/v1/modules/{add}/executions?status=success&limit=2")).await;
    assert_eq!(successes["total"], json!(8));
    assert_eq!(successes["executions"][0]["input"], json!("[7,7]"));
    let (status, body) = api.get(&format!("/api/v1/modules/{add}/executions?status=failed")).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], json!("status `failed` is not one of success, error, timeout"));

    let (_, timeouts) = api.get(&format!("/api/v1/modules/{spin}/executions")).await;
    assert_eq!(timeouts["executions"][0]["status"], json!("timeout"));

    let (status, stats) = api.get(&format!("/api/v1/modules/{add}/stats")).await;
    assert_eq!(status, 200);
    assert_eq!(stats["totalExecutions"], json!(9));
    assert!((stats["successRate"].as_f64().unwrap() - 8.0 / 9.0).abs() < 1e-9, "{stats}");
    let (p50, p95, p99) = (stats["p50"].as_f64().unwrap(), stats["p95"].as_f64().unwrap(), stats["p99"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= p95 && p95 <= p99, "{stats}");
}

#[tokio::test]
async fn history_keeps_only_the_retention_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--execution-retention", "5"]);
    let api = server.client();
    let add = api.upload_example("add.wat").await;
    for i in 0..12 {
        assert_eq!(api.invoke(&add, json!({"function": "add", "args": [i, 0]})).await.0, 200);
    }
    let (_, page) = api.get(&format!("/api/v1/modules/{add}/executions")).await;
    assert_eq!(page["total"], json!(5));
    assert_eq!(page["executions"][0]["input"], json!("[11,0]"));
    assert_eq!(page["executions"][4]["input"], json!("[7,0]"));
}

#[tokio::test]
async fn a_new_version_is_called_as_soon_as_it_is_uploaded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    assert_eq!(api.upload("calc", "1.0.0", crate::example("add.wat")).await.0, 201);
    assert_eq!(api.invoke("calc", json!({"function": "add", "args": [2, 3]})).await.1["result"], json!(5));
    assert_eq!(api.upload("calc", "2.0.0", crate::example("multiply.wat")).await.0, 201);
    let (status, body) = api.invoke("calc", json!({"function": "multiply", "args": [2, 3]})).await;
    assert_eq!((status, body["result"].clone(), body["module"]["version"].clone()), (200, json!(6), json!("2.0.0")));
    // The old version stays callable by label.
    let (status, body) = api.invoke("calc", json!({"function": "add", "args": [2, 3], "version": "1.0.0"})).await;
    assert_eq!((status, body["result"].clone()), (200, json!(5)));
}
