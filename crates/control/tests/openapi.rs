//! Every operation in the OpenAPI document is served by the router.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

#[tokio::test]
async fn every_documented_operation_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = edgefn_control::ControlConfig { data_dir: dir.path().into(), ..Default::default() };
    let app = edgefn_control::app(edgefn_control::open(&config).await.unwrap().state);
    let doc: Value = serde_json::from_str(edgefn_control::OPENAPI).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = path.replace("{id}", "some-id").replace("{user}", "some-user");
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let req = Request::builder()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .uri(&concrete)
                .body(Body::empty())
                .unwrap();
            let status = app.clone().oneshot(req).await.unwrap().status();
            // Served routes answer 401 without a token (or 200 when public), never 404/405.
            assert!(status == StatusCode::UNAUTHORIZED || status == StatusCode::OK, "{method} {path}: {status}");
        }
    }
    assert_eq!(operations, 30);
    // A path that is not documented is not served.
    let req = Request::builder().uri("/api/v1/undocumented").body(Body::empty()).unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::NOT_FOUND);
}
