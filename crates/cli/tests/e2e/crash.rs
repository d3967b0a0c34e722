//! kill -9 at any moment of an upload leaves either the whole module or nothing.

use std::time::Duration;

use serde_json::json;

use crate::{Server, files_under};

/// A valid module of about 3 MB (one large data segment), so an upload takes a while.
fn big_module(seed: u8) -> Vec<u8> {
    let data: String = (0..3_000_000).map(|i| char::from(b'a' + ((i as u8).wrapping_add(seed)) % 26)).collect();
    let text = format!(r#"(module (memory 64) (data (i32.const 0) "{data}") (func (export "seed") (result i32) (i32.const {seed})))"#);
    wat::parse_str(text).unwrap()
}

#[tokio::test]
async fn a_killed_upload_leaves_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Kill at moments spread over the upload: while the body streams, while it compiles,
    // while it commits.
    for (round, delay_ms) in [0u64, 20, 100, 180, 220, 260, 300, 400].into_iter().enumerate() {
        let server = Server::start(dir.path(), &[]);
        let api = server.client();
        let name = format!("big{round}");
        let bytes = big_module(round as u8);
        let upload = {
            let api = api.clone();
            let name = name.clone();
            tokio::spawn(async move {
                let url = format!("{}/api/v1/modules?name={name}&version=1.0.0", api.url);
                api.http.post(url).bearer_auth(&api.token).body(bytes).send().await.map(|r| r.status().as_u16())
            })
        };
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        server.kill();
        let answered = upload.await.unwrap();
        let after_kill = files_under(&dir.path().join("artifacts"));

        let server = Server::start(dir.path(), &[]);
        let api = server.client();
        let (status, body) = api.get(&format!("/api/v1/modules/{name}")).await;
        let artifacts = files_under(&dir.path().join("artifacts"));
        let (_, all) = api.get("/api/v1/modules").await;
        let listed = all["modules"].as_array().unwrap().len();
        if status == 200 {
            // Whole: listed, its bytes present, and it runs.
            let (s, out) = api.invoke(&name, json!({"function": "seed"})).await;
            assert_eq!((s, out["result"].clone()), (200, json!(round)), "round {round}: {body}");
        } else {
            assert_eq!(status, 404, "round {round}: {body}");
            assert_ne!(answered.as_ref().ok(), Some(&201), "round {round}: a 201 was answered but the module is gone");
        }
        eprintln!("round {round}: killed after {delay_ms} ms, answer {:?}, module present: {}", answered.as_ref().ok(), status == 200);
        assert_eq!(
            artifacts.len(),
            listed,
            "round {round}: artifacts {artifacts:?} vs {listed} modules; right after the kill: {after_kill:?}"
        );
        server.stop();
    }
}
