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
