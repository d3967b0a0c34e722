//! The README walkthrough, with the real CLI against a real server.

use serde_json::{Value, json};

use crate::Server;

/// Runs `edgefn ARGS` from the examples' parent folder against `server`.
fn edgefn(server: &Server, args: &[&str]) -> (bool, String, String) {
    edgefn_in(server, std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")), args)
}

/// Runs `edgefn ARGS` in `dir` against `server` (its admin token); returns whether it
/// succeeded, its stdout and stderr.
pub(crate) fn edgefn_in(server: &Server, dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = crate::client_command()
        .args(args)
        .current_dir(dir)
        .env("EDGEFN_URL", &server.url)
        .env("EDGEFN_DATA_DIR", &server.dir)
        .output()
        .expect("run edgefn");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn the_readme_walkthrough_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);

    let (ok, out, err) = edgefn(&server, &["module", "upload", "examples/add.wat", "--name", "add", "--version", "1.0.0"]);
    assert!(ok, "{err}");
    assert!(out.contains("uploaded add@1.0.0 (core, 59 B)"), "{out}");
    assert!(out.contains("export  add(i32, i32) -> i32"), "{out}");

    let (ok, out, err) = edgefn(&server, &["invoke", "add", "add", "1", "2"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "3");
    assert!(err.contains("add@1.0.0 in"), "{err}");

    let (ok, _, err) = edgefn(&server, &["invoke", "add", "add", "1"]);
    assert!(!ok);
    assert!(err.contains("error: too few arguments: got 1; expected add(i32, i32) -> i32 (HTTP 400, bad_arguments)"), "{err}");

    let (ok, out, _) = edgefn(&server, &["executions", "add", "--json"]);
    assert!(ok);
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["total"], json!(2));
    assert_eq!(page["executions"][1]["output"], json!("3"));

    let (ok, out, _) = edgefn(&server, &["stats", "add"]);
    assert!(ok);
    assert!(out.contains("executions    2") && out.contains("success rate  50.0 %"), "{out}");

    assert!(edgefn(&server, &["module", "upload", "examples/greet.wat"]).0);
    let (ok, out, err) = edgefn(&server, &["invoke", "greet", "greet", "World", "--result", "string"]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "\"Hello, World!\"");

    assert!(edgefn(&server, &["module", "upload", "examples/typed.wat"]).0);
    let (ok, out, err) = edgefn(&server, &["invoke", "typed", "translate", r#"{"x":1,"y":2}"#, "10", "20", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["result"], json!({"x": 11, "y": 22}));

    assert!(edgefn(&server, &["module", "upload", "examples/loop.wat"]).0);
    let (ok, _, err) = edgefn(&server, &["invoke", "loop", "spin", "--timeout-ms", "200"]);
    assert!(!ok);
    assert!(err.contains("execution exceeded the timeout of 200 ms (HTTP 504, timeout)"), "{err}");

    let (ok, out, _) = edgefn(&server, &["module", "list"]);
    assert!(ok);
    for name in ["add", "greet", "typed", "loop"] {
        assert!(out.lines().any(|l| l.trim_start().starts_with(name)), "{name} missing from\n{out}");
    }
    let (ok, out, _) = edgefn(&server, &["module", "show", "typed"]);
    assert!(ok);
    assert!(out.contains("safe-div(a: s32, b: s32) -> result<s32, string>"), "{out}");
    assert!(edgefn(&server, &["module", "delete", "loop"]).0);
    let (ok, _, err) = edgefn(&server, &["module", "show", "loop"]);
    assert!(!ok && err.contains("HTTP 404"), "{err}");

    // HTTP functions: upload, route, and the node answers.
    assert!(edgefn(&server, &["module", "upload", "examples/hello-handle.wat", "--name", "greeter"]).0);
    let (ok, out, err) = edgefn(&server, &["route", "add", "/greet", "--match", "prefix", "--module", "greeter", "--method", "GET"]);
    assert!(ok, "{err}");
    assert!(out.contains("/greet (prefix) -> greeter"), "{out}");
    let mut answer = String::new();
    for _ in 0..100 {
        answer = reqwest::get(format!("{}/greet/you", server.node)).await.unwrap().text().await.unwrap();
        if answer.starts_with("Hello") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(answer, "Hello from edgefn! GET /greet/you\n");
    let (ok, out, _) = edgefn(&server, &["route", "list"]);
    assert!(ok && out.contains("/greet") && out.contains("/welcome"), "{out}");

    // A wrong token is refused with a clear message.
    let (ok, _, err) = edgefn(&server, &["module", "list", "--token", "efn_wrong"]);
    assert!(!ok && err.contains("invalid token (HTTP 401, unauthorized)"), "{err}");
}
