//! The API against its own OpenAPI document, with `schemathesis` (PyPI) generating
//! requests from it and a real admin token: no 5xx, and every status, content type and
//! body matching the document. `scripts/test` installs schemathesis;
//! `EDGEFN_SCHEMATHESIS_EXAMPLES` (default 25) sets the examples per operation.

use std::time::Duration;

use crate::Server;

#[tokio::test]
async fn the_api_keeps_to_its_openapi_document_under_generated_requests() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let examples = std::env::var("EDGEFN_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let run = tokio::process::Command::new("python3")
        .args(["-c", "import sys; from schemathesis.cli import schemathesis; sys.argv[0] = 'schemathesis'; sys.exit(schemathesis())"])
        .args(["run", &format!("{}/api/v1/openapi.json", server.url)])
        .args(["--header", &format!("Authorization: Bearer {}", server.token)])
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"])
        .args(["--max-examples", &examples, "--seed", "20261126", "--no-color"])
        // Revoking its own token would leave the rest of the run unauthenticated.
        .args(["--exclude-operation-id", "revoke_token"])
        // A build worker's long poll holds its request up to `waitSeconds` (60), past the
        // client's 10 s; `builds` tests it.
        .args(["--exclude-operation-id", "claim"])
        // Its cache of failures goes to the test's directory, not the source tree.
        .current_dir(dir.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("schemathesis within 10 minutes")
        .expect("running schemathesis (python3 -m pip install schemathesis; scripts/test does)");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "schemathesis found failures:\n{report}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(report.contains("passed"), "{report}");
    // The server is still healthy afterwards.
    assert_eq!(reqwest::get(format!("{}/healthz", server.url)).await.unwrap().status(), 200);
}
