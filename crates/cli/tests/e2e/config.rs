//! `edgefn up --config FILE`: settings from TOML, flags win, unknown keys refused.

use std::process::Command;

use serde_json::json;

use crate::Server;

#[tokio::test]
async fn settings_come_from_a_toml_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edgefn.toml");
    std::fs::write(&file, "max_module_bytes = 100\nexecution_retention = 2\n").unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--config", file.to_str().unwrap()]);
    let api = server.client();
    let (status, body) = api.upload("add", "1.0.0", crate::example("greet.wat")).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("over the limit of 100 bytes"), "{body}");
    let id = api.upload_example("add.wat").await;
    for _ in 0..4 {
        api.invoke(&id, json!({"function": "add", "args": [1, 1]})).await;
    }
    assert_eq!(api.get(&format!("/api/v1/modules/{id}/executions")).await.1["total"], json!(2));
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edgefn.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\nmax_modul_bytes = 100\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgefn")).args(["up", "--config"]).arg(&file).current_dir(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `max_modul_bytes`"), "{err}");
}
