//! From a template to a live URL: `edgefn new`, `edgefn deploy` against a real server,
//! the node answering, a second deploy doing nothing, manifest changes applied, bad
//! manifests refused before anything is uploaded.

use std::path::Path;

use crate::cli::edgefn_in as edgefn;
use crate::{Server, has_npm, has_wasip2};

async fn body(url: &str) -> (u16, String) {
    let res = reqwest::get(url).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn a_template_goes_live_in_one_command_and_a_second_deploy_does_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();

    let (ok, out, err) = edgefn(&server, &work, &["new", "hi", "--template", "wat"]);
    assert!(ok, "{err}");
    assert!(out.contains("next: cd hi && edgefn deploy"), "{out}");
    let project = work.join("hi");
    let (ok, _, err) = edgefn(&server, &work, &["new", "hi", "--template", "wat"]);
    assert!(!ok && err.contains("exists already"), "{err}");
    let (ok, _, err) = edgefn(&server, &work, &["new", "x", "--template", "cobol"]);
    assert!(!ok && err.contains("no template `cobol`; templates: rust-http"), "{err}");

    let (ok, out, err) = edgefn(&server, &project, &["deploy"]);
    assert!(ok, "{err}");
    assert!(out.contains("uploaded version 0.1.0"), "{out}");
    assert!(out.contains("route added: /hi (prefix)"), "{out}");
    assert!(out.contains(&format!("{}/hi", server.node)), "the URL is printed: {out}");
    assert_eq!(body(&format!("{}/hi/there", server.node)).await, (200, "Hello from hi!\n".into()));

    // Nothing changed: nothing done.
    let (ok, out, err) = edgefn(&server, &project, &["deploy"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("hi is up to date: nothing to do"), "{out}");
    let api = server.client();
    assert_eq!(api.get("/api/v1/modules/hi/versions").await.1["versions"].as_array().unwrap().len(), 1);

    // A changed source, route and setting: a new version under a label of its own (0.1.0 is
    // taken by other bytes), the new route instead of the old, the setting applied.
    let wat = project.join("hi.wat");
    std::fs::write(&wat, std::fs::read_to_string(&wat).unwrap().replace("Hello from hi!", "Howdy from hi!")).unwrap();
    let manifest = project.join("edgefn.toml");
    let text = std::fs::read_to_string(&manifest)
        .unwrap()
        .replace("path = \"/hi\"", "path = \"/howdy\"")
        .replace("http_timeout_ms = 500", "http_timeout_ms = 700");
    std::fs::write(&manifest, text).unwrap();
    let (ok, out, err) = edgefn(&server, &project, &["deploy"]);
    assert!(ok, "{err}");
    assert!(out.contains("uploaded version 0.1.0+"), "{out}");
    assert!(out.contains("settings: httpTimeoutMs") && out.contains("route added: /howdy") && out.contains("route removed: /hi"), "{out}");
    assert_eq!(body(&format!("{}/howdy", server.node)).await, (200, "Howdy from hi!\n".into()));
    assert_eq!(body(&format!("{}/hi", server.node)).await.0, 404);
    assert_eq!(api.get("/api/v1/modules/hi").await.1["httpTimeoutMs"], 700);

    // A manifest with an unknown key is refused, naming the line, before anything is sent.
    std::fs::write(
        &manifest,
        std::fs::read_to_string(&manifest).unwrap().replace("http_timeout_ms = 700", "http_timeout_ms = 700\ntiemout_ms = 5"),
    )
    .unwrap();
    std::fs::write(&wat, std::fs::read_to_string(&wat).unwrap().replace("Howdy", "Hullo")).unwrap();
    let (ok, _, err) = edgefn(&server, &project, &["deploy"]);
    assert!(!ok);
    assert!(err.contains("unknown field `tiemout_ms`") && err.contains("line 13"), "{err}");
    assert_eq!(api.get("/api/v1/modules/hi/versions").await.1["versions"].as_array().unwrap().len(), 2, "nothing uploaded");
}

/// Makes `name` from a Rust `template` in `dir` and deploys it to `server`; returns
/// deploy's stdout and stderr.
fn deploy_rust(server: &Server, dir: &Path, name: &str, template: &str) -> (String, String) {
    let (ok, _, err) = edgefn(server, dir, &["new", name, "--template", template]);
    assert!(ok, "{err}");
    deploy_rust_project(server, &dir.join(name))
}

/// Deploys the Rust project in `project` to `server`, building into a target directory
/// shared between runs (so CI compiles the guest crates once); returns deploy's stdout
/// and stderr.
pub(crate) fn deploy_rust_project(server: &Server, project: &Path) -> (String, String) {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| project.join("target"), std::path::PathBuf::from).join("templates");
    let manifest = project.join("edgefn.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let name = text.lines().find_map(|l| l.strip_prefix("name = ")).unwrap().trim_matches('"').to_string();
    let artifact = format!("wasm32-wasip2/release/{}.wasm", name.replace('-', "_"));
    let text = text.replace(&format!("artifact = \"target/{artifact}\""), &format!("artifact = \"{}/{artifact}\"", target.display()));
    std::fs::write(&manifest, text).unwrap();
    let out = crate::client_command()
        .arg("deploy")
        .current_dir(project)
        .env("EDGEFN_URL", &server.url)
        .env("EDGEFN_DATA_DIR", &server.dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("building {name}: cargo build --release --target wasm32-wasip2")), "{stderr}");
    (stdout, stderr)
}

#[tokio::test]
async fn the_assemblyscript_template_builds_with_npm_and_answers() {
    if !has_npm() {
        eprintln!("no npm here: not building the assemblyscript template");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let (ok, _, err) = edgefn(&server, dir.path(), &["new", "as-hi", "--template", "assemblyscript"]);
    assert!(ok, "{err}");
    let (ok, out, err) = edgefn(&server, &dir.path().join("as-hi"), &["deploy"]);
    assert!(ok, "{out}\n{err}");
    assert!(err.contains("building as-hi: npm install"), "{err}");
    assert_eq!(body(&format!("{}/as-hi/x?y=1", server.node)).await, (200, "Hello from as-hi! GET /as-hi/x?y=1\n".into()));
    let (ok, out, _) = edgefn(&server, &dir.path().join("as-hi"), &["deploy"]);
    assert!(ok && out.starts_with("as-hi is up to date"), "{out}");
}

#[tokio::test]
async fn the_js_template_builds_with_componentize_js_and_answers() {
    if !has_npm() {
        eprintln!("no npm here: not building the js-http template");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A JavaScript component carries its engine (~13 MB); a debug build of the server takes
    // over a minute to compile it.
    let server = Server::start(&dir.path().join("data"), &["--compile-timeout-ms", "600000"]);
    // (ts-http is built by the build worker, in `builds`.)
    for (name, template) in [("js-hi", "js-http")] {
        let (ok, _, err) = edgefn(&server, dir.path(), &["new", name, "--template", template]);
        assert!(ok, "{err}");
        let (ok, out, err) = edgefn(&server, &dir.path().join(name), &["deploy"]);
        assert!(ok, "{out}\n{err}");
        assert!(err.contains(&format!("building {name}: npm install")) && out.contains("uploaded version 0.1.0"), "{out}\n{err}");
        let (status, text) = body(&format!("{}/{name}/x?y=1", server.node)).await;
        assert_eq!((status, text), (200, format!("Hello from {name}! GET /{name}/x?y=1\n")));
    }
}

#[tokio::test]
async fn the_rust_templates_build_and_answer() {
    if !has_wasip2() {
        eprintln!("the wasm32-wasip2 target is not installed (./scripts/test installs it): not building the Rust templates");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);

    // rust-http: a wasi:http component answering with its GREETING setting.
    deploy_rust(&server, dir.path(), "hello-rs", "rust-http");
    let (status, text) = body(&format!("{}/hello-rs/world", server.node)).await;
    assert_eq!((status, text.as_str()), (200, "Hello from hello-rs! You asked for /hello-rs/world\n"));

    // rust-fn: typed functions through the invoke API.
    let (out, _) = deploy_rust(&server, dir.path(), "hello-fn", "rust-fn");
    assert!(out.contains("call it with `edgefn invoke hello-fn FUNCTION ARGS…`"), "{out}");
    let api = server.client();
    let (status, answer) = api.invoke("hello-fn", serde_json::json!({"function": "greet", "args": ["World"]})).await;
    assert_eq!((status, &answer["result"]), (200, &serde_json::json!("Hello, World!")), "{answer}");
    let args = serde_json::json!({"function": "translate", "args": {"p": {"x": 1, "y": 2}, "dx": 10, "dy": 20}});
    assert_eq!(api.invoke("hello-fn", args).await.1["result"], serde_json::json!({"x": 11, "y": 22}));
    let (_, answer) = api.invoke("hello-fn", serde_json::json!({"function": "divide", "args": [1, 0]})).await;
    assert_eq!(answer["result"], serde_json::json!({"err": "division by zero"}));
}
