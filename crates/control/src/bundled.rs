//! Example functions deployed on first start, so `curl 127.0.0.1:8000/welcome` answers on
//! a fresh install. They are ordinary modules and routes: change or delete them freely.

use crate::access::Caller;
use crate::error::ApiError;
use crate::modules::{Upload, add_version};
use crate::routes::{RouteBody, add_route};
use crate::state::AppState;

/// The examples: module name, WebAssembly text, route path.
const EXAMPLES: [(&str, &str, &str); 2] = [
    ("welcome", include_str!("../../../examples/hello-handle.wat"), "/welcome"),
    ("welcome-http", include_str!("../../../examples/hello-http.wat"), "/welcome-http"),
];

/// Uploads the examples as `system` modules (runnable by everyone) of the first admin and
/// routes `GET /welcome` (the `handle` ABI) and `GET /welcome-http` (a `wasi:http/proxy`
/// component) to them.
pub async fn deploy(state: &AppState, admin: &Caller) -> Result<(), ApiError> {
    for (name, text, path) in EXAMPLES {
        deploy_one(state, admin, name, text, path).await?;
    }
    Ok(())
}

async fn deploy_one(state: &AppState, admin: &Caller, name: &str, text: &str, path: &str) -> Result<(), ApiError> {
    let wasm = wat::parse_str(text).map_err(ApiError::internal)?;
    let upload = Upload {
        name: name.into(),
        version: "1.0.0".into(),
        description: Some(format!("Bundled example: answers GET {path} on the edge node")),
        owner_type: Some("system".into()),
        project: None,
        timeout_ms: None,
    };
    let (module, _) = add_version(state, admin, upload, wasm).await?;
    add_route(
        state,
        admin,
        RouteBody {
            host: None,
            path: path.into(),
            match_kind: Some("exact".into()),
            methods: Some(vec!["GET".into(), "HEAD".into()]),
            priority: None,
            pop_selector: None,
            module_id: module.id,
            version: None,
        },
    )
    .await?;
    Ok(())
}
