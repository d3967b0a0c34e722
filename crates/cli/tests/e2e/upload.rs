//! Upload, list, show, change and delete, with every bad input answered clearly.

use serde_json::json;

use crate::{Server, example, files_under};

#[tokio::test]
async fn upload_reports_kind_digest_and_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let bytes = example("add.wat");
    let (status, body) = api.upload("add", "1.0.0", bytes.clone()).await;
    assert_eq!(status, 201, "{body}");
    let sha = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
    assert_eq!(body["version"]["sha256"], json!(hex::encode(sha)));
    assert_eq!(body["version"]["kind"], json!("core"));
    assert_eq!(body["version"]["sizeBytes"], json!(bytes.len()));
    assert_eq!(
        body["version"]["exports"],
        json!([{"name": "add", "params": [{"name": "p0", "type": "i32"}, {"name": "p1", "type": "i32"}], "results": ["i32"], "signature": "add(i32, i32) -> i32"}])
    );
    assert_eq!(body["module"]["name"], json!("add"));
    assert_eq!(body["module"]["status"], json!("active"));
    assert_eq!(body["module"]["latestVersion"], json!("1.0.0"));

    let (status, body) = api.upload("typed", "0.1.0", example("typed.wat")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["version"]["kind"], json!("component"));
    assert_eq!(body["version"]["world"], json!("exports"));

    // A second version of the same name joins the same module.
    let (status, v2) = api.upload("add", "1.1.0", example("add.wat")).await;
    assert_eq!(status, 201, "{v2}");
    let id = v2["module"]["id"].as_str().unwrap();
    let (_, versions) = api.get(&format!("/api/v1/modules/{id}/versions")).await;
    let labels: Vec<_> = versions["versions"].as_array().unwrap().iter().map(|v| v["version"].clone()).collect();
    assert_eq!(labels, vec![json!("1.1.0"), json!("1.0.0")]);
}

#[tokio::test]
async fn multipart_upload_from_a_browser_form() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let form = reqwest::multipart::Form::new()
        .text("name", "greet")
        .text("version", "2.0.0")
        .text("description", "says hello")
        .part("file", reqwest::multipart::Part::bytes(example("greet.wat")).file_name("greet.wasm"));
    let (status, body) = api.send(api.http.post(format!("{}/api/v1/modules", api.url)).multipart(form)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["module"]["description"], json!("says hello"));
    assert_eq!(body["version"]["version"], json!("2.0.0"));
}

#[tokio::test]
async fn bad_uploads_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-module-bytes", "1000"]);
    let api = server.client();
    assert_eq!(api.upload("add", "1.0.0", example("add.wat")).await.0, 201);

    let cases: Vec<(&str, Vec<u8>, u16, &str, &str)> = vec![
        ("add", example("add.wat"), 409, "conflict", "already has version 1.0.0"),
        ("big", vec![0; 1001], 413, "too_large", "over the limit of 1000 bytes"),
        ("text", b"(module)".to_vec(), 400, "invalid_wasm", "magic number"),
        ("broken", b"\0asm\x01\0\0\0\x01\x05junk".to_vec(), 400, "invalid_wasm", "invalid WebAssembly"),
        ("evil", wat::parse_str(r#"(module (import "host" "exec" (func)))"#).unwrap(), 400, "disallowed_import", "host::exec"),
        ("bad name!", example("add.wat"), 400, "bad_request", "name `bad name!` is invalid"),
    ];
    for (name, bytes, status, code, message) in cases {
        let (got, body) = api.upload(&name.replace(' ', "%20"), "1.0.0", bytes).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["code"], json!(code), "{name}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(message), "{name}: {body}");
    }
    let (status, body) = api.send(api.http.post(format!("{}/api/v1/modules", api.url)).body(example("add.wat"))).await;
    assert_eq!((status, body["error"]["message"].clone()), (400, json!("missing module name (`name`)")));
    for (timeout, message) in [
        ("0", "timeoutMs 0 must be between 1 and 60000 (the limit of `admin` modules)"),
        ("soon", "timeoutMs `soon` is not a whole number of milliseconds"),
    ] {
        let (status, body) = api.upload(&format!("slow&timeoutMs={timeout}"), "1.0.0", example("add.wat")).await;
        assert_eq!((status, body["error"]["message"].clone()), (400, json!(message)));
    }

    // Nothing but the first upload and the bundled welcome is there: two modules, two
    // artifacts (the 4.6 KB welcome-http example is over this server's 1000-byte limit).
    let (_, list) = api.get("/api/v1/modules").await;
    let names: Vec<_> = list["modules"].as_array().unwrap().iter().map(|m| m["name"].clone()).collect();
    assert_eq!(names, vec![json!("add"), json!("welcome")]);
    assert_eq!(files_under(&dir.path().join("artifacts")).len(), 2);
}

#[tokio::test]
async fn credentials_are_required() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let http = reqwest::Client::new();
    let res = http.get(format!("{}/api/v1/modules", server.url)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = http.get(format!("{}/api/v1/modules", server.url)).bearer_auth("efn_forged").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body, json!({"error": {"code": "unauthorized", "message": "invalid token"}}));
    // Health and the API description are public.
    assert_eq!(http.get(format!("{}/healthz", server.url)).send().await.unwrap().status(), 200);
    let doc: serde_json::Value = http.get(format!("{}/api/v1/openapi.json", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(doc["openapi"], json!("3.1.0"));
    // Unknown endpoints answer in the same error format.
    let res = http.get(format!("{}/nope", server.url)).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn list_show_patch_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let add = api.upload_example("add.wat").await;
    api.upload_example("greet.wat").await;

    let (_, list) = api.get("/api/v1/modules?owner_type=admin").await;
    let names: Vec<_> = list["modules"].as_array().unwrap().iter().map(|m| m["name"].clone()).collect();
    assert_eq!(names, vec![json!("add"), json!("greet")], "sorted by name");
    let (_, list) = api.get("/api/v1/modules?owner_type=system").await;
    let names: Vec<_> = list["modules"].as_array().unwrap().iter().map(|m| m["name"].clone()).collect();
    assert_eq!(names, vec![json!("welcome"), json!("welcome-http")], "the bundled examples are system modules");
    let (status, body) = api.get("/api/v1/modules?owner_type=root").await;
    assert_eq!(status, 400, "{body}");

    let (status, by_name) = api.get("/api/v1/modules/add").await;
    assert_eq!(status, 200);
    assert_eq!(by_name["id"], json!(add));
    assert_eq!(by_name["versions"][0]["exports"][0]["signature"], json!("add(i32, i32) -> i32"));
    assert_eq!(api.get("/api/v1/modules/00000000-0000-0000-0000-000000000000").await.0, 404);

    let patch = |body: serde_json::Value| {
        let api = api.clone();
        let url = format!("{}/api/v1/modules/{add}", api.url);
        async move { api.send(api.http.patch(url).json(&body)).await }
    };
    let (status, m) = patch(json!({"description": "adds", "timeoutMs": 2000, "maxMemoryPages": 16, "isPublic": true})).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (m["description"].clone(), m["timeoutMs"].clone(), m["maxMemoryPages"].clone(), m["isPublic"].clone()),
        (json!("adds"), json!(2000), json!(16), json!(true))
    );
    for (bad, message) in [
        (json!({"status": "gone"}), "status `gone` is not one of"),
        (json!({"owner": "me"}), "unknown field `owner`"),
        (json!({"timeoutMs": 0}), "timeoutMs 0 must be between"),
        (json!({"maxMemoryPages": 100000}), "maxMemoryPages 100000 must be between"),
    ] {
        let (status, body) = patch(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(message), "{bad}: {body}");
    }
    let (status, body) = api.send(api.http.patch(format!("{}/api/v1/modules/{add}", api.url)).body("{not json")).await;
    assert_eq!(status, 400, "{body}");
    let (_, unchanged) = api.get(&format!("/api/v1/modules/{add}")).await;
    assert_eq!(unchanged["status"], json!("active"));

    // A disabled module cannot run, even right after a call warmed every cache.
    assert_eq!(api.invoke(&add, json!({"function": "add", "args": [1, 2]})).await.0, 200);
    assert_eq!(patch(json!({"status": "disabled"})).await.0, 200);
    let (status, body) = api.invoke(&add, json!({"function": "add", "args": [1, 2]})).await;
    assert_eq!(status, 403, "{body}");

    let (status, _) = api.send(api.http.delete(format!("{}/api/v1/modules/{add}", api.url))).await;
    assert_eq!(status, 204);
    assert_eq!(api.get(&format!("/api/v1/modules/{add}")).await.0, 404);
    assert_eq!(api.send(api.http.delete(format!("{}/api/v1/modules/{add}", api.url))).await.0, 404);
    // Only greet's and the bundled examples' bytes remain.
    assert_eq!(files_under(&dir.path().join("artifacts")).len(), 3);
}

#[tokio::test]
async fn an_upload_sets_the_time_limit_of_a_new_module_or_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let api = server.client();
    let (status, body) = api.upload("add&timeoutMs=250", "1.0.0", example("add.wat")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["module"]["timeoutMs"], json!(250));
    let (status, body) = api.upload("add&timeoutMs=300", "1.1.0", example("add.wat")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["module"]["timeoutMs"], json!(300));
    assert_eq!(api.get("/api/v1/modules/add").await.1["timeoutMs"], json!(300));
    // Without it, a new version keeps the module's limit.
    assert_eq!(api.upload("add", "1.2.0", example("add.wat")).await.1["module"]["timeoutMs"], json!(300));
}
