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

#[tokio::test]
async fn the_data_directory_and_everything_in_it_is_its_owners_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777;
    // An install from before: open to every local user.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("node")).unwrap();
    std::fs::write(data.join("node/notes.txt"), "left by an older edgefn").unwrap();
    for (path, bits) in [("", 0o755), ("node", 0o755), ("node/notes.txt", 0o644)] {
        std::fs::set_permissions(data.join(path), std::fs::Permissions::from_mode(bits)).unwrap();
    }
    let log = dir.path().join("log");
    let launch = crate::Launch { log_file: Some(log.clone()), ..crate::Launch::default() };
    let server = Server::start_with(&data, &[], &launch);
    let api = server.client();
    // A secret in the database and in the node's state.
    let id = api.upload_example("add.wat").await;
    let (status, body) = api.patch(&format!("/api/v1/modules/{id}"), json!({"env": {"API_KEY": "s3cret-value"}})).await;
    assert_eq!(status, 200, "{body}");
    api.synced().await;
    let mut entries = vec![data.clone()];
    let mut seen = Vec::new();
    while let Some(path) = entries.pop() {
        if path.is_dir() {
            entries.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
        seen.push(path.strip_prefix(&data).unwrap().display().to_string());
        assert_eq!(mode(&path) & 0o077, 0, "{} is {:o}", path.display(), mode(&path));
    }
    for expected in ["edgefn.db", "admin-token", "node/state.redb", "node/notes.txt"] {
        assert!(seen.iter().any(|s| s == expected), "{expected} in {seen:?}");
    }
    assert_eq!(mode(&data), 0o700);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("other users could read files of the data directory: now only its owner can"), "{log}");
    assert!(log.contains("tightened=3"), "{log}");
}
