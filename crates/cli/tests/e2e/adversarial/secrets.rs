//! Problem 4 of the hardening issue: a module's configuration values are write-only. No
//! read, listing or audit entry shows them; each has a size limit.

use serde_json::json;

use crate::{Server, example};

#[tokio::test]
async fn env_values_are_never_read_back_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.client();
    let alice = admin.new_user("alice").await;
    let eve = admin.new_user("eve").await;
    let (status, body) = alice.upload("shared", "1.0.0", example("hello-handle.wat")).await;
    assert_eq!(status, 201, "{body}");
    let secret = "sk-live-5f2b9c0e7d";
    let (status, patched) =
        alice.patch("/api/v1/modules/shared", json!({"isPublic": true, "env": {"API_KEY": secret, "MODE": "live"}})).await;
    assert_eq!(status, 200, "{patched}");
    let fingerprint = patched["env"]["API_KEY"].as_str().unwrap().to_string();
    assert!(fingerprint.starts_with("sha256:") && fingerprint.len() == 23, "{fingerprint}");

    // The owner, another user (the module is public) and the admin read it: names, no values.
    let id = patched["id"].as_str().unwrap();
    for (who, api) in [("alice", &alice), ("eve", &eve), ("admin", &admin)] {
        let (status, shown) = api.get(&format!("/api/v1/modules/{id}")).await;
        assert_eq!(status, 200, "{who}: {shown}");
        assert_eq!(shown["env"]["API_KEY"], json!(fingerprint), "{who}");
        let (_, listed) = api.get("/api/v1/modules").await;
        for text in [shown.to_string(), listed.to_string()] {
            assert!(!text.contains(secret) && !text.contains("\"live\""), "{who} read a value: {text}");
        }
    }
    // The audit log records the change and a fingerprint, never the value.
    let (_, audit) = admin.get(&format!("/api/v1/audit?resourceId={id}&limit=1000")).await;
    let entries = audit.to_string();
    assert!(entries.contains("API_KEY") && entries.contains(&fingerprint), "{entries}");
    assert!(!entries.contains(secret), "the audit log holds the secret: {entries}");

    // Setting the same value again keeps the fingerprint; another value changes it.
    let (_, same) = alice.patch("/api/v1/modules/shared", json!({"env": {"API_KEY": secret, "MODE": "live"}})).await;
    assert_eq!(same["env"]["API_KEY"], json!(fingerprint));

    // Limits, each refused with a 400 that names it, and nothing changed.
    let many: serde_json::Map<String, serde_json::Value> = (0..65).map(|i| (format!("K{i}"), json!("v"))).collect();
    let cases = [
        (json!({"env": many}), "at most 64"),
        (json!({"env": {"BIG": "x".repeat(4097)}}), "at most 4096"),
        (json!({"env": {"": "v"}}), "env name ``"),
        (json!({"env": {"1ST": "v"}}), "not starting with a digit"),
        (json!({"env": {"A\nB": "v"}}), "letters, digits or `_`"),
    ];
    for (body, message) in cases {
        let (status, answer) = alice.patch("/api/v1/modules/shared", body).await;
        assert_eq!(status, 400, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{answer}");
    }
    let (_, after) = alice.get(&format!("/api/v1/modules/{id}")).await;
    assert_eq!(after["env"], patched["env"], "refused changes changed nothing");
}
