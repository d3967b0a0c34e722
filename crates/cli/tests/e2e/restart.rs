//! A restart keeps everything and reuses compiled code from the disk cache.

use serde_json::json;

use crate::Server;

#[tokio::test]
async fn restart_keeps_modules_and_reuses_the_compiled_cache() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let id = api.upload_example("typed.wat").await;
    let token = server.token.clone();
    server.stop();

    let server = Server::start(dir.path(), &[]);
    assert_eq!(server.token, token, "the admin token survives restarts");
    let api = server.client();
    let (status, body) = api.invoke(&id, json!({"function": "greet", "args": ["again"]})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"], json!("Hello, again!"));
    assert_eq!(body["cacheHit"], json!(true), "the restarted server compiled the module again");

    // Without the disk cache the same call must compile, and says so.
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    server.stop();
    let server = Server::start(dir.path(), &[]);
    let (_, body) = server.client().invoke(&id, json!({"function": "greet", "args": ["x"]})).await;
    assert_eq!(body["cacheHit"], json!(false));
}

#[tokio::test]
async fn key_value_data_an_older_edgefn_kept_in_the_database_moves_to_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let route = crate::http::deploy(&api, "demo", crate::example("host-demo.wat"), "/visits").await;
    let id = route["moduleId"].as_str().unwrap().to_string();
    server.stop();
    // Where edgefn kept key-value data before nodes had their own store: 41 visits.
    crate::identity::sqlite(
        dir.path(),
        &format!("INSERT INTO kv (module_id, key, value, expires_at) VALUES ('{id}', 'visits', X'29000000', NULL)"),
    );
    let server = Server::start(dir.path(), &[]);
    let res = crate::http::get_routed(&server.node, "/visits").await;
    assert!(res.text().await.unwrap().starts_with("Hello anonymous: visit 42 "));
    let left = crate::identity::sqlite(dir.path(), "SELECT COUNT(*) FROM kv");
    assert_eq!(left.trim(), "0", "moved, not copied");
}
