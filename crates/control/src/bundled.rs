//! Example functions deployed on first start, so `curl 127.0.0.1:8000/hello` answers on
//! a fresh install. They are ordinary modules and routes: change or delete them freely.

use edgefn_store::User;

use crate::error::ApiError;
use crate::modules::add_version;
use crate::routes::{RouteBody, add_route};
use crate::state::AppState;

/// The hello function on the `handle` ABI.
const HELLO: &str = include_str!("../../../examples/hello-handle.wat");

/// Uploads the examples and routes `GET /hello` to the hello function.
pub async fn deploy(state: &AppState, admin: &User) -> Result<(), ApiError> {
    let wasm = wat::parse_str(HELLO).map_err(ApiError::internal)?;
    let description = Some("Bundled example: answers GET /hello on the edge node".to_string());
    let (module, _) = add_version(state, admin, "hello".into(), "1.0.0".into(), description, wasm).await?;
    add_route(
        state,
        RouteBody {
            host: None,
            path: "/hello".into(),
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
