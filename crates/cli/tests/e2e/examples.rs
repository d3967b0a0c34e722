//! The example functions of `examples/`, each built from source with its manifest and
//! deployed through `edgefn deploy`, answering through the node.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::project::deploy_rust_project;
use crate::{Server, has_npm, has_wasip2};

/// A copy of `examples/NAME` in `dir` (so builds and deploy state stay out of the tree),
/// without its build outputs.
fn copy_example(name: &str, dir: &Path) -> PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name);
    let to = dir.join(name);
    let out = Command::new("cp").arg("-r").arg(&from).arg(&to).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(to.join("target"));
    to
}

async fn post(url: &str, body: Vec<u8>) -> (u16, String, String, Vec<u8>) {
    let res = reqwest::Client::new().post(url).body(body).send().await.unwrap();
    let header = |name: &str| res.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (content_type, size) = (header("content-type"), header("x-image-size"));
    (res.status().as_u16(), content_type, size, res.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn image_resize_resizes_rotates_and_crops_a_real_photo() {
    if !has_wasip2() {
        eprintln!("the wasm32-wasip2 target is not installed (./scripts/test installs it): not building image-resize");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let project = copy_example("image-resize", dir.path());
    let (out, _) = deploy_rust_project(&server, &project);
    assert!(out.contains("route added: /image-resize (prefix)"), "{out}");
    let photo = std::fs::read(project.join("testdata/f3-discovery.jpg")).unwrap();
    let url = format!("{}/image-resize", server.node);

    // A thumbnail: fits 320×320 keeping the 720×477 photo's shape, a JPEG that decodes.
    let (status, content_type, size, body) = post(&format!("{url}?resize=320x320"), photo.clone()).await;
    assert_eq!((status, content_type.as_str(), size.as_str()), (200, "image/jpeg", "320x212"));
    let thumbnail = image::load_from_memory(&body).unwrap();
    assert_eq!((thumbnail.width(), thumbnail.height()), (320, 212));
    assert!(body.len() < photo.len() / 4, "{} bytes", body.len());

    // Rotated and made a PNG; cropped.
    let (status, content_type, size, body) = post(&format!("{url}?rotate=90&format=png"), photo.clone()).await;
    assert_eq!((status, content_type.as_str(), size.as_str()), (200, "image/png", "477x720"));
    let rotated = image::load_from_memory_with_format(&body, image::ImageFormat::Png).unwrap();
    assert_eq!((rotated.width(), rotated.height()), (477, 720));
    let (status, _, size, _) = post(&format!("{url}?crop=100,50,200,150&resize=100x100"), photo.clone()).await;
    assert_eq!((status, size.as_str()), (200, "100x75"));

    // Bad requests are named.
    let cases = [
        ("?crop=700,400,100,100", photo.clone(), "crop `700,400,100,100` is not inside the 720x477 image"),
        ("?resize=0x10", photo.clone(), "resize `0x10`: expected WIDTHxHEIGHT"),
        ("?sharpen=1", photo.clone(), "unknown operation `sharpen`"),
        ("", b"GIF89a not a photo".to_vec(), "the body is not a PNG or JPEG image"),
    ];
    for (query, body, message) in cases {
        let (status, _, _, text) = post(&format!("{url}{query}"), body).await;
        assert_eq!(status, 400, "{query}");
        assert!(String::from_utf8_lossy(&text).contains(message), "{query}: {}", String::from_utf8_lossy(&text));
    }
    let res = reqwest::get(&url).await.unwrap();
    assert_eq!(res.status(), 405, "routed for POST only, and the function says so for others");
}

#[tokio::test]
async fn markdown_renders_html_and_escapes_raw_html_unless_allowed() {
    if !has_wasip2() {
        eprintln!("the wasm32-wasip2 target is not installed (./scripts/test installs it): not building markdown");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let project = copy_example("markdown", dir.path());
    let (out, _) = deploy_rust_project(&server, &project);
    assert!(out.contains("call it with `edgefn invoke markdown FUNCTION ARGS…`"), "{out}");
    let api = server.client();
    let text = "# Notes\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- [x] done\n\nSee <script>alert(1)</script> and ~~old~~ *new*";
    let (status, answer) = api.invoke("markdown", serde_json::json!({"function": "render", "args": [text, false]})).await;
    assert_eq!(status, 200, "{answer}");
    let html = answer["result"].as_str().unwrap();
    for part in ["<h1>Notes</h1>", "<td>1</td>", "checked=\"\"", "&lt;script&gt;alert(1)&lt;/script&gt;", "<del>old</del>", "<em>new</em>"]
    {
        assert!(html.contains(part), "{part} in {html}");
    }
    assert!(!html.contains("<script>"), "{html}");
    let (_, answer) =
        api.invoke("markdown", serde_json::json!({"function": "render", "args": {"text": "<b>hi</b>", "allow-html": true}})).await;
    assert_eq!(answer["result"], "<p><b>hi</b></p>\n");
}

#[tokio::test]
async fn jwt_check_accepts_a_good_token_and_says_why_it_refuses_the_others() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    if !has_wasip2() {
        eprintln!("the wasm32-wasip2 target is not installed (./scripts/test installs it): not building jwt-check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let project = copy_example("jwt-check", dir.path());
    let manifest = project.join("edgefn.toml");
    let text = std::fs::read_to_string(&manifest).unwrap().replace("change-me-to-a-long-random-secret", "s3cret-for-the-test");
    std::fs::write(&manifest, text).unwrap();
    deploy_rust_project(&server, &project);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let sign = |alg: Algorithm, claims: serde_json::Value, secret: &str| {
        encode(&Header::new(alg), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    };
    let check = |token: Option<String>| {
        let url = format!("{}/jwt-check", server.node);
        async move {
            let mut req = reqwest::Client::new().get(url);
            if let Some(token) = token {
                req = req.header("authorization", token);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
            (status, res.json::<serde_json::Value>().await.unwrap(), challenge)
        }
    };
    let good = sign(Algorithm::HS256, serde_json::json!({"sub": "ada", "exp": now + 600, "role": "admin"}), "s3cret-for-the-test");
    let (status, body, _) = check(Some(format!("Bearer {good}"))).await;
    assert_eq!(
        (status, &body["valid"], &body["sub"], &body["claims"]["role"]),
        (200, &serde_json::json!(true), &serde_json::json!("ada"), &serde_json::json!("admin"))
    );

    let unsigned = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), b64(r#"{"sub":"eve"}"#));
    let cases = [
        (None, "no Authorization header"),
        (Some("Basic YTpi".to_string()), "is not `Bearer <token>`"),
        (Some("Bearer not-a-jwt".to_string()), "expected three dot-separated parts"),
        (Some(format!("Bearer {unsigned}")), "algorithm `none` is not accepted: only HS256"),
        (Some(format!("Bearer {}", sign(Algorithm::HS512, serde_json::json!({"sub": "eve"}), "s3cret-for-the-test"))), "algorithm `HS512`"),
        (Some(format!("Bearer {}", sign(Algorithm::HS256, serde_json::json!({"sub": "eve"}), "guessed"))), "the signature does not match"),
        (
            Some(format!("Bearer {}", sign(Algorithm::HS256, serde_json::json!({"exp": now - 3600}), "s3cret-for-the-test"))),
            "the token expired",
        ),
        (
            Some(format!("Bearer {}", sign(Algorithm::HS256, serde_json::json!({"nbf": now + 3600}), "s3cret-for-the-test"))),
            "not valid for another",
        ),
    ];
    for (header, reason) in cases {
        let (status, body, challenge) = check(header.clone()).await;
        assert_eq!((status, &body["valid"]), (401, &serde_json::json!(false)), "{header:?}");
        assert!(body["error"].as_str().unwrap().contains(reason), "{header:?}: {body}");
        assert!(challenge.unwrap().starts_with("Bearer error=\"invalid_token\""));
    }
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn counter_api_counts_in_the_key_value_store_and_calls_only_its_allowed_host() {
    if !has_npm() {
        eprintln!("no npm here: not building counter-api");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A JavaScript component carries its engine (~13 MB); a debug build of the server takes
    // over a minute to compile it.
    let server = Server::start(&dir.path().join("data"), &["--compile-timeout-ms", "600000"]);
    let (ok, _, err) = crate::cli::edgefn_in(&server, dir.path(), &["new", "counter-api", "--template", "js-http"]);
    assert!(ok, "{err}");
    let project = dir.path().join("counter-api");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/counter-api");
    for file in ["app.js", "wit/world.wit", "edgefn.toml"] {
        std::fs::copy(example.join(file), project.join(file)).unwrap();
    }
    // The upstream it may call: the control plane's health endpoint, a real HTTP server.
    let manifest = std::fs::read_to_string(project.join("edgefn.toml"))
        .unwrap()
        .replace("allow_hosts = [\"example.com\"]", "allow_hosts = [\"127.0.0.1\"]")
        .replace("https://example.com/", &format!("{}/healthz", server.url));
    std::fs::write(project.join("edgefn.toml"), manifest).unwrap();
    let (ok, out, err) = crate::cli::edgefn_in(&server, &project, &["deploy"]);
    assert!(ok, "{out}\n{err}");

    let get = |path: &str| {
        let url = format!("{}/counter-api/{path}", server.node);
        async move {
            let res = reqwest::get(url).await.unwrap();
            (res.status().as_u16(), res.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_eq!(get("hits/ada").await, (200, serde_json::json!({"name": "ada", "hits": 1})));
    assert_eq!(get("hits/ada").await, (200, serde_json::json!({"name": "ada", "hits": 2})));
    assert_eq!(get("hits/bob").await, (200, serde_json::json!({"name": "bob", "hits": 1})));
    let (status, upstream) = get("upstream").await;
    assert_eq!((status, &upstream["status"]), (200, &serde_json::json!(200)), "{upstream}");
    assert!(upstream["body"].as_str().unwrap().contains("\"ok\""), "{upstream}");

    // Off its allow-list, the same call is denied.
    let api = server.client();
    let (status, _) = api.patch("/api/v1/modules/counter-api", serde_json::json!({"allowHosts": ["example.com"]})).await;
    assert_eq!(status, 200);
    api.synced().await;
    let (status, denied) = get("upstream").await;
    assert_eq!(status, 502, "{denied}");
    assert_eq!(get("hits/ada").await.1["hits"], 3, "the counter survives a settings change");
}
