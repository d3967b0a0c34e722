//! The API's OpenAPI document, derived from the handlers: each handler carries its
//! `#[utoipa::path]` (path, method, parameters, bodies, answers) and the router is built
//! from the same list ([`api_routes`], with utoipa-axum), so a route cannot be served
//! undocumented, documented but missing, or documented with other types than it uses.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::{audit, builds, challenges, claims, executions, identity, invoke, modules, nodes, projects, routes as route_handlers};

/// The document's frame: title, the bearer scheme every operation uses, the error body.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "edgefn API",
        description = "Upload WebAssembly modules, call their functions with JSON, route HTTP to them on edge nodes, and manage users, tokens, projects and claims. Every error is `{\"error\": {\"code\": …, \"message\": …}}`."
    ),
    security(("bearer" = [])),
    modifiers(&Bearer),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

/// Adds the bearer scheme: an API token (`efn_…`) or a JWT of the configured provider.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("API token (efn_…) or JWT").build();
        doc.components.get_or_insert_with(Default::default).add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// An error answer: `{"error": {"code": …, "message": …}}` (what [`crate::ApiError`]
/// answers with).
#[derive(ToSchema, serde::Serialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema, serde::Serialize)]
pub struct ErrorDetail {
    /// Machine-readable code (`bad_request`, `not_found`, `claimed`, …).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

/// Every error status of an operation: the error body, whatever the status (400, 401,
/// 403, 404, 408, 409, 413, 429, 500, 503).
pub struct Failure;

impl utoipa::IntoResponses for Failure {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let content = ContentBuilder::new().schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody"))).build();
        let response =
            ResponseBuilder::new().description("An error, with its code and message").content("application/json", content).build();
        BTreeMap::from([("default".to_string(), RefOr::T(response))])
    }
}

/// Raw module bytes (`application/wasm`): describes the upload body in the document;
/// `body::read_upload` reads the bytes themselves.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "a schema of the document only; the body is read as a stream")]
pub struct WasmBytes(Vec<u8>);

/// The API's routes and their documentation, from the same handlers.
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(modules::upload, modules::list))
        .routes(routes!(modules::show, modules::patch, modules::delete))
        .routes(routes!(modules::versions))
        .routes(routes!(invoke::invoke))
        .routes(routes!(executions::list))
        .routes(routes!(executions::stats))
        .routes(routes!(route_handlers::create, route_handlers::list))
        .routes(routes!(route_handlers::show, route_handlers::delete))
        .routes(routes!(claims::create, claims::list))
        .routes(routes!(claims::delete))
        .routes(routes!(claims::keep))
        .routes(routes!(challenges::create))
        .routes(routes!(challenges::verify))
        .routes(routes!(invoke::executor))
        .routes(routes!(identity::me))
        .routes(routes!(identity::create_user, identity::list_users))
        .routes(routes!(identity::patch_user))
        .routes(routes!(identity::create_token, identity::list_tokens))
        .routes(routes!(identity::revoke_token))
        .routes(routes!(projects::create, projects::list))
        .routes(routes!(projects::show))
        .routes(routes!(projects::put_member, projects::remove_member))
        .routes(routes!(audit::list))
        .routes(routes!(audit::verify))
        .routes(routes!(nodes::api::list))
        .routes(routes!(nodes::api::remove))
        .routes(routes!(builds::create, builds::list))
        .routes(routes!(builds::claim))
        .routes(routes!(builds::show))
        .routes(routes!(builds::log, builds::append_log))
        .routes(routes!(builds::source))
        .routes(routes!(builds::artifact))
        .routes(routes!(builds::failure))
}

/// Routes anyone may call, documented without security.
pub(crate) fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(openapi_json))
}

/// The whole document as JSON, built once.
pub fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let (_, mut doc) = api_routes().split_for_parts();
        doc.merge(public_routes().split_for_parts().1);
        doc.to_pretty_json().expect("the document serializes")
    })
}

/// Whether the server is up.
#[derive(ToSchema, serde::Serialize)]
pub struct Health {
    /// Always `ok`.
    status: String,
}

/// `GET /healthz`.
#[utoipa::path(get, path = "/healthz", tag = "server", security(()), responses((status = 200, description = "The server is up", body = Health)))]
pub(crate) async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into() })
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "server", security(()), responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], document())
}
