//! `/api/v1/routes`: which function answers which host and path on the edge nodes.
//! A route is checked when it is created — its pattern compiles, its module exists and
//! can serve HTTP — so nodes never meet a route they cannot run; and it must lie in a part
//! of the address space its module's project owns or may claim ([`crate::claims`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use edgefn_model::Router;
use edgefn_store::{Actor, NewRoute, Route};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::{Caller, Op, decide};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::openapi::Failure;
use crate::state::AppState;

/// Body of `POST /api/v1/routes`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteBody {
    /// Host pattern; absent for any host.
    pub host: Option<String>,
    /// Path pattern.
    pub path: String,
    /// `exact` (default), `prefix` or `regex`.
    #[serde(rename = "match")]
    pub match_kind: Option<String>,
    /// Allowed methods; absent or empty for any.
    pub methods: Option<Vec<String>>,
    /// Higher wins (default 0).
    pub priority: Option<i64>,
    /// POP names or `prefix*` patterns, comma-separated.
    pub pop_selector: Option<String>,
    /// Target module: id or name.
    pub module_id: String,
    /// Pinned version; absent follows the newest.
    pub version: Option<String>,
}

/// Validates and stores a route, then tells the nodes.
pub async fn add_route(state: &AppState, caller: &Caller, body: RouteBody) -> Result<Route, ApiError> {
    let match_kind = body.match_kind.unwrap_or_else(|| "exact".into());
    if match_kind.parse::<edgefn_model::PathMatch>().is_err() {
        return Err(ApiError::bad_request(format!("match `{match_kind}` is not one of exact, prefix, regex")));
    }
    let methods: Vec<String> = body.methods.unwrap_or_default().iter().map(|m| m.to_ascii_uppercase()).collect();
    if let Some(bad) = methods.iter().find(|m| m.is_empty() || !m.chars().all(|c| c.is_ascii_uppercase())) {
        return Err(ApiError::bad_request(format!("method `{bad}` is not an HTTP method name")));
    }
    let kind: edgefn_model::PathMatch = match_kind.parse().expect("checked above");
    let host = match body.host.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => Some(edgefn_model::canonical_host_pattern(h).map_err(|e| ApiError::bad_request(format!("host {e}")))?),
        None => None,
    };
    let literal = match kind {
        edgefn_model::PathMatch::Regex => edgefn_model::route_scope(&body.path, kind),
        _ => body.path.as_str(),
    };
    if let Some(problem) = (!literal.is_empty()).then(|| edgefn_model::route_path_problem(literal)).flatten() {
        return Err(ApiError::bad_request(problem));
    }
    let found = crate::modules::find(state, caller, &body.module_id, Op::Route).await?;
    let resolved = state.db.resolve(&found.id, body.version.as_deref()).await?;
    let (module, version) = (&resolved.0, &resolved.1);
    let loaded = state
        .runtime
        .load(&version.sha256, || async { Ok(state.artifacts.get(&version.sha256).await?) })
        .await
        .map_err(ApiError::internal)?;
    if let Err(why) = state.runtime.check_http(&loaded.module) {
        return Err(ApiError::bad_request(format!("{}@{} cannot serve HTTP: {why}", module.name, version.version)));
    }
    if let Err(import) = state.settings.classes.of(&module.owner_type).grants.check(&loaded.module.imports()) {
        return Err(ApiError::ungranted(&import, &module.owner_type));
    }
    let new = NewRoute {
        host,
        path: body.path,
        match_kind,
        methods,
        priority: body.priority.unwrap_or(0),
        pop_selector: body.pop_selector.filter(|p| !p.is_empty()),
        module_id: module.id.clone(),
        version: body.version,
    };
    // The router is the judge of a valid pattern: build one with just this route.
    let probe = Route {
        id: "new".into(),
        seq: 0,
        host: new.host.clone(),
        path: new.path.clone(),
        match_kind: new.match_kind.clone(),
        methods: new.methods.clone(),
        priority: new.priority,
        pop_selector: new.pop_selector.clone(),
        module_id: new.module_id.clone(),
        version: new.version.clone(),
        created_at: 0,
    };
    Router::new(vec![crate::nodes::world::route_of(&probe)])
        .map_err(|e| ApiError::bad_request(e.to_string().replacen("route new: ", "", 1)))?;
    let space = crate::claims::route_space(&probe);
    let owner = crate::claims::claim_owner(module);
    crate::claims::check_may_claim(state, caller, &space, owner).await?;
    let route = match state.db.create_route(&Actor::from(&caller.user), &new, &space, owner, caller.user.is_admin()).await {
        Ok(route) => route,
        Err(e) => return Err(crate::claims::explain(state, caller, &space, e).await),
    };
    tracing::info!(route = %route.id, path = %route.path, module = %module.name, "route added");
    Ok(route)
}

/// Routes.
#[derive(Serialize, ToSchema)]
pub struct RouteList {
    /// In creation order.
    routes: Vec<Route>,
}

/// `POST /api/v1/routes`: needs the right to route to the target module.
#[utoipa::path(post, path = "/api/v1/routes", tag = "routes", request_body = RouteBody,
    responses((status = 201, description = "The route, inside a claim of its module's project", body = Route), Failure))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<RouteBody>,
) -> Result<(StatusCode, Json<Route>), ApiError> {
    Ok((StatusCode::CREATED, Json(add_route(&state, &caller, body).await?)))
}

/// `GET /api/v1/routes`: routes to modules the caller may read.
#[utoipa::path(get, path = "/api/v1/routes", tag = "routes", responses((status = 200, description = "Routes to modules the caller may read", body = RouteList), Failure))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<RouteList>, ApiError> {
    Ok(Json(RouteList { routes: visible_routes(&state, &caller).await? }))
}

/// Every route to a module the caller may read.
pub(crate) async fn visible_routes(state: &AppState, caller: &Caller) -> Result<Vec<Route>, ApiError> {
    let mut routes = Vec::new();
    for route in state.db.routes().await? {
        if readable_route(state, caller, &route, Op::Read).await.is_ok() {
            routes.push(route);
        }
    }
    Ok(routes)
}

/// The route's target module checked for `op`; a route to a module the caller may not
/// read is not found.
async fn readable_route(state: &AppState, caller: &Caller, route: &Route, op: Op) -> Result<(), ApiError> {
    let module = state.db.module(&route.module_id).await?;
    decide(caller, &module, Op::Read).map_err(|_| ApiError::not_found(format!("route {} not found", route.id)))?;
    decide(caller, &module, op)
}

/// `GET /api/v1/routes/{id}`.
#[utoipa::path(get, path = "/api/v1/routes/{id}", tag = "routes", params(("id" = String, Path, description = "Route id")),
    responses((status = 200, description = "The route", body = Route), Failure))]
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Route>, ApiError> {
    Ok(Json(readable(&state, &caller, &id, Op::Read).await?))
}

/// `DELETE /api/v1/routes/{id}`: needs the right to route to its module.
#[utoipa::path(delete, path = "/api/v1/routes/{id}", tag = "routes", params(("id" = String, Path, description = "Route id")),
    responses((status = 204, description = "Removed"), Failure))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    remove_route(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A route the caller may read.
pub(crate) async fn readable(state: &AppState, caller: &Caller, id: &str, op: Op) -> Result<Route, ApiError> {
    let route = state.db.route(id).await?;
    readable_route(state, caller, &route, op).await?;
    Ok(route)
}

/// Removes a route, with the right to route to its module, then tells the nodes.
pub(crate) async fn remove_route(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    readable(state, caller, id, Op::Route).await?;
    state.db.delete_route(&Actor::from(&caller.user), id).await?;
    Ok(())
}
