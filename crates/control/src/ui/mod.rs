//! The admin web UI at `/`: pages rendered on the server (maud) from the same functions
//! the REST API calls, with the same permission checks, so every reading page works
//! without JavaScript. `assets/ui.js` only adds conveniences (drag-and-drop, the module
//! name taken from the file name, argument templates). Forms post back to the page that
//! shows their outcome; validation errors appear next to the field they concern.
//!
//! Signing in stores the token in an `HttpOnly`, `SameSite=Strict` cookie; posts from
//! another origin are refused; no page may be framed, and pages load scripts and styles
//! from the console only.

mod builds;
mod chart;
mod format;
mod history;
mod layout;
mod modules;
mod people;
mod platform;
mod routes;
mod run;
mod session;
mod settings;
mod stash;
mod upload;

pub use stash::UploadStash;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;
use crate::state::AppState;

/// The pages and their assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(modules::list))
        .route("/sign-in", get(session::form).post(session::sign_in))
        .route("/sign-out", axum::routing::post(session::sign_out))
        .route("/modules/{id}", get(modules::show))
        .route("/modules/{id}/history", get(history::page))
        .route("/modules/{id}/settings", get(settings::page).post(settings::limits))
        .route("/modules/{id}/env", axum::routing::post(settings::env))
        .route("/modules/{id}/status", axum::routing::post(settings::status))
        .route("/modules/{id}/delete", axum::routing::post(settings::delete))
        .route("/upload", get(upload::form).post(upload::submit))
        .route("/run", get(run::form).post(run::submit))
        .route("/run/request", axum::routing::post(run::request))
        .route("/routes", get(routes::list).post(routes::create))
        .route("/routes/{id}/edit", get(routes::edit_form).post(routes::edit))
        .route("/routes/{id}/delete", axum::routing::post(routes::delete))
        .route("/builds", get(builds::list).post(builds::submit))
        .route("/builds/{id}", get(builds::show))
        .route("/deployments", get(platform::deployments))
        .route("/nodes", get(platform::nodes))
        .route("/audit", get(platform::audit))
        .route("/tokens", get(people::tokens).post(people::create_token))
        .route("/tokens/{id}/revoke", axum::routing::post(people::revoke_token))
        .route("/users", get(people::users).post(people::create_user))
        .route("/projects", get(people::projects).post(people::create_project))
        .route("/projects/{id}/members", axum::routing::post(people::member))
        .route("/users/{id}", axum::routing::post(people::change))
        .route("/ui/ui.css", get(|| async { asset("text/css", include_str!("assets/ui.css")) }))
        .route("/ui/ui.js", get(|| async { asset("text/javascript", include_str!("assets/ui.js")) }))
        .route("/ui/examples/add.wasm", get(example))
        .layer(axum::middleware::from_fn(same_origin))
}

/// What every console response says about where it may be shown and what it may load: in
/// no frame (a page elsewhere — an edge function on the same host, say — that framed the
/// console could make an admin click its buttons), with scripts and styles from the
/// console only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the framing and content headers to a response: the control plane's listener
/// sends them on all it answers (pages, assets, errors and the API alike).
pub(crate) async fn not_framed(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "max-age=300")], body).into_response()
}

/// `add.wasm`, for trying the upload page without a module at hand.
async fn example() -> Result<Response, ApiError> {
    let wasm = wat::parse_str(include_str!("../../../../examples/add.wat")).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/wasm"), (header::CONTENT_DISPOSITION, "attachment; filename=\"add.wasm\"")], wasm)
        .into_response())
}

/// Refuses state-changing requests a page of another site started (cross-site request
/// forgery): browsers say where a request comes from in `Sec-Fetch-Site` or `Origin`.
async fn same_origin(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) || from_here(req.headers()) {
        next.run(req).await
    } else {
        (StatusCode::FORBIDDEN, "cross-site form posts are refused").into_response()
    }
}

fn from_here(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(_, rest)| rest == host),
        (Some(_), None) => false,
        (None, _) => true,
    }
}
