//! Problem 5 of the hardening issue: every guest log line, whichever way the function is
//! called, goes through the same rate limit, cut and escaping of control characters.

use crate::{Launch, Server};

/// A `system` module (everyone may run it; its class may log) whose `flood` writes
/// 5,000-byte lines with a forged log line inside each, until its time runs out.
fn flooder() -> Vec<u8> {
    wat::parse_str(
        r#"(module
            (import "edgefn" "log" (func $log (param i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 4096) "\nFORGED level=ERROR admin token leaked\n")
            (func (export "flood")
              (memory.fill (i32.const 0) (i32.const 120) (i32.const 4096))
              (memory.copy (i32.const 4000) (i32.const 4096) (i32.const 39))
              (loop $again (drop (call $log (i32.const 1) (i32.const 0) (i32.const 5000))) (br $again))))"#,
    )
    .unwrap()
}

#[tokio::test]
async fn a_guest_flooding_the_log_through_the_invoke_api_is_capped_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("server.log");
    let launch = Launch { log_level: Some("info"), log_file: Some(log_file.clone()), ..Launch::default() };
    let server = Server::start_with(&dir.path().join("data"), &[], &launch);
    let admin = server.client();
    let url = format!("{}/api/v1/modules?name=flood&version=1.0.0&ownerType=system", admin.url);
    let (status, body) = admin.send(admin.http.post(url).header("content-type", "application/wasm").body(flooder())).await;
    assert_eq!(status, 201, "{body}");
    let id = body["module"]["id"].as_str().unwrap().to_string();

    // Any user may run a system module: two of them flood at once for 2 s.
    let (eve, mallory) = (admin.new_user("eve").await, admin.new_user("mallory").await);
    let call = serde_json::json!({"function": "flood", "args": [], "timeoutMs": 2000});
    let (a, b) = tokio::join!(eve.invoke("flood", call.clone()), mallory.invoke("flood", call));
    assert_eq!((a.0, b.0), (504, 504), "{a:?} {b:?}");

    let log = std::fs::read_to_string(&log_file).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&id)).collect();
    // 2 s of flooding spans at most three one-second windows of 1,000 lines each.
    assert!(lines.len() >= 1000 && lines.len() <= 3000, "{} guest lines written", lines.len());
    assert!(log.len() < 20 * 1024 * 1024, "the log grew by {} bytes", log.len());
    assert!(lines.iter().all(|l| l.len() < 4096 + 400), "a line was not cut at 4 KiB");
    assert!(!log.lines().any(|l| l.starts_with("FORGED")), "a guest wrote a line of its own into the platform log");
    assert!(lines.iter().any(|l| l.contains("\\nFORGED level=ERROR")), "the escaped newline is kept inside the guest's line");
}
