//! The OpenAPI document is derived from the handlers: every documented operation is
//! served, every operation has its error answer, and the document names every schema it
//! refers to.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

#[tokio::test]
async fn every_documented_operation_is_served_and_documents_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = edgefn_control::ControlConfig { data_dir: dir.path().into(), ..Default::default() };
    let app = edgefn_control::app(edgefn_control::open(&config).await.unwrap().state);
    let doc: Value = serde_json::from_str(edgefn_control::openapi_document()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", "some-id").replace("{user}", "some-user").replace("{name}", "some-name");
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(operation) = item.get(method) else { continue };
            operations += 1;
            let public = operation["security"] == serde_json::json!([{}]);
            if !public {
                assert!(operation["responses"]["default"].is_object(), "{method} {path} documents no error answer");
            }
            let req = Request::builder()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let status = app.clone().oneshot(req).await.unwrap().status();
            // Served routes answer 401 without a token (or 200 when public), never 404/405.
            let expected = if public { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
            assert_eq!(status, expected, "{method} {path}");
        }
    }
    assert_eq!(operations, 47);
    // Every schema the document refers to is defined in it.
    let text = edgefn_control::openapi_document();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(doc["components"]["schemas"][name].is_object(), "{name} is referred to but not defined");
    }
    // A path that is not documented is not served.
    let req = Request::builder().uri("/api/v1/undocumented").body(Body::empty()).unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::NOT_FOUND);
}
