//! `/api/v1/claims`: who owns which part of the edge's address space (a named host, or a
//! path prefix of the default host). Routes claim what they need as they are created;
//! admins also reserve space for a project or for themselves here, and only they may give
//! a project a wildcard host or the whole default host. A claim never overlaps another
//! owner's, so a route can never answer another project's traffic (docs/permissions.md).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use edgefn_model::{PathMatch, route_scope};
use edgefn_store::{Actor, Module, Route, RouteClaim, RouteSpace, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Caller;
use crate::body::{JsonBody, QueryParams};
use crate::error::ApiError;
use crate::openapi::Failure;
use crate::state::AppState;

/// Body of `POST /api/v1/claims`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimBody {
    /// Host name or `*.` and a host name; absent for the default host.
    host: Option<String>,
    /// Path prefix on the default host (default `/`, every path); a named host is claimed whole.
    path_prefix: Option<String>,
    /// Project id or name; absent reserves the space for admins.
    project: Option<String>,
}

/// How a space is named in messages: `/api on the default host`, `host shop.example.com`.
fn describe(space: &RouteSpace) -> String {
    match (space.host.as_str(), space.prefix.as_str()) {
        ("", "") => "the whole default host".into(),
        ("", prefix) => format!("`{prefix}` on the default host"),
        (host, _) => format!("host `{host}`"),
    }
}

/// A 403 unless `caller` may take `space` for `owner` when no claim covers it yet: admins
/// may claim anything; others a named host the host rules allow them ([`crate::hosts`]),
/// or a path of at least one segment on the default host — never a wildcard host or the
/// whole default host, which an admin gives.
pub async fn check_may_claim(state: &AppState, caller: &Caller, space: &RouteSpace, owner: Option<&str>) -> Result<(), ApiError> {
    if caller.user.is_admin() {
        return Ok(());
    }
    let overlapping = state.db.overlapping_claims(space).await?;
    if overlapping.iter().any(|c| c.project_id.as_deref() == owner && c.space().covers(space)) {
        return Ok(());
    }
    if space.host.starts_with("*.") {
        return Err(ApiError::forbidden(format!(
            "{} is a wildcard host; an admin gives wildcard hosts to projects (POST /api/v1/claims)",
            describe(space)
        )));
    }
    if !space.host.is_empty() {
        // A host another owner holds: the store refuses it with a 409 naming whose.
        if overlapping.iter().any(|c| c.project_id.as_deref() != owner) {
            return Ok(());
        }
        return crate::hosts::check_user_host(state, &space.host, false).await;
    }
    if space.prefix.is_empty() {
        return Err(ApiError::forbidden(
            "a route here could answer every path of the default host; put it under a path of your own (e.g. /my-app/…) or ask an admin",
        ));
    }
    Ok(())
}

/// A store error about `space` as the caller should read it: a claim of another owner is
/// a 409 that names the owner's project and claim only to admins and its members.
pub async fn explain(state: &AppState, caller: &Caller, space: &RouteSpace, err: StoreError) -> ApiError {
    let StoreError::Claimed(claim) = err else { return err.into() };
    let owner = match &claim.project_id {
        None => "reserved by an admin".to_string(),
        Some(id) if caller.user.is_admin() || caller.roles.contains_key(id) => {
            let name = state.db.project(id).await.map_or_else(|_| id.clone(), |p| p.name);
            format!("claimed by project {name} (claim {} of {})", claim.id, describe(&claim.space()))
        }
        Some(_) => "claimed by another project".to_string(),
    };
    ApiError::new(StatusCode::CONFLICT, "claimed", format!("{} is {owner}", describe(space)))
}

/// Claims.
#[derive(Serialize, ToSchema)]
pub struct ClaimList {
    /// Oldest first.
    claims: Vec<RouteClaim>,
}

/// Query of `GET /api/v1/claims`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only the claims held from serving because the host and path rules refuse them.
    invalid: Option<bool>,
}

/// `GET /api/v1/claims`: admins see every claim; others those of their projects.
#[utoipa::path(get, path = "/api/v1/claims", tag = "routes", params(ListQuery),
    responses((status = 200, description = "Claims of the caller's projects (all, for admins)", body = ClaimList), Failure))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ClaimList>, ApiError> {
    let invalid = query.invalid.unwrap_or(false);
    let claims: Vec<RouteClaim> = state
        .db
        .claims()
        .await?
        .into_iter()
        .filter(|c| caller.user.is_admin() || c.project_id.as_ref().is_some_and(|p| caller.roles.contains_key(p)))
        .filter(|c| !invalid || c.held.is_some())
        .collect();
    Ok(Json(ClaimList { claims }))
}

/// `POST /api/v1/claims/{id}/keep` (admins): keeps a held claim as it is; it serves again.
#[utoipa::path(post, path = "/api/v1/claims/{id}/keep", tag = "routes", params(("id" = String, Path, description = "Claim id")),
    responses((status = 200, description = "The claim, serving", body = RouteClaim), Failure))]
pub async fn keep(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<RouteClaim>, ApiError> {
    caller.require_admin("keep claims")?;
    let claim = state.db.keep_claim(&Actor::from(&caller.user), &id).await?;
    tracing::info!(claim = %claim.id, host = %claim.host, prefix = %claim.path_prefix, "an admin kept a claim the rules refuse; it serves");
    Ok(Json(claim))
}

/// Why the host and path rules would refuse `claim` now, if they would: a host or path
/// not in its one spelling, or a named host no user may claim ([`crate::hosts`]). Admins'
/// own claims, claims an admin made or kept, and wildcards (which only admins give) pass.
fn problem(state: &AppState, platform: &[(String, String)], claim: &RouteClaim) -> Option<String> {
    if claim.project_id.is_none() || claim.kept_at.is_some() {
        return None;
    }
    if !claim.host.is_empty() {
        match edgefn_model::canonical_host_pattern(&claim.host) {
            Ok(canonical) if canonical != claim.host => return Some(format!("its host is not in canonical form: `{canonical}`")),
            Err(e) => return Some(format!("its host {e}")),
            Ok(_) if claim.host.starts_with("*.") => return None,
            Ok(_) => {}
        }
        return crate::hosts::check_user_host_in(state, platform, &claim.host, false).err().map(|e| e.message().to_string());
    }
    if claim.path_prefix.is_empty() {
        return None;
    }
    edgefn_model::route_path_problem(&claim.path_prefix)
}

/// Holds every claim the rules now refuse (and releases those they no longer do), logging
/// each: what an older install let users claim stops serving until an admin keeps or
/// removes it. Answers how many are held.
pub async fn review(state: &AppState) -> Result<usize, ApiError> {
    let mut held = 0;
    let platform = crate::hosts::platform_names(state).await?;
    for claim in state.db.claims().await? {
        let why = problem(state, &platform, &claim);
        if why != claim.held {
            state.db.hold_claim(&Actor::system(), &claim.id, why.as_deref()).await?;
        }
        if let Some(why) = &why {
            held += 1;
            tracing::warn!(claim = %claim.id, host = %claim.host, prefix = %claim.path_prefix, why = %why, "a claim the host and path rules refuse does not serve until an admin keeps or removes it");
        }
    }
    if held > 0 {
        tracing::warn!(
            held,
            "claims held from serving: GET /api/v1/claims?invalid=true lists them; POST /api/v1/claims/{{id}}/keep keeps one, DELETE removes it"
        );
    }
    Ok(held)
}

/// `POST /api/v1/claims` (admins): reserves a host or default-host prefix for a project,
/// or for admins.
#[utoipa::path(post, path = "/api/v1/claims", tag = "routes", request_body = ClaimBody,
    responses((status = 201, description = "The claim", body = RouteClaim), Failure))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ClaimBody>,
) -> Result<(StatusCode, Json<RouteClaim>), ApiError> {
    caller.require_admin("reserve hosts and paths")?;
    let host = match body.host.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => Some(edgefn_model::canonical_host_pattern(h).map_err(|e| ApiError::bad_request(format!("host {e}")))?),
        None => None,
    };
    let prefix = body.path_prefix.unwrap_or_else(|| "/".into());
    if let Some(problem) = edgefn_model::route_path_problem(&prefix) {
        return Err(ApiError::bad_request(format!("pathPrefix: {problem}")));
    }
    let space = RouteSpace::new(host.as_deref(), route_scope(&prefix, PathMatch::Prefix)).claimed();
    let project = match &body.project {
        Some(key) => Some(state.db.project(key).await?.id),
        None => None,
    };
    match state.db.create_claim(&Actor::from(&caller.user), &space, project.as_deref(), true).await {
        Ok(claim) => Ok((StatusCode::CREATED, Json(claim))),
        Err(e) => Err(explain(&state, &caller, &space, e).await),
    }
}

/// `DELETE /api/v1/claims/{id}`: admins, or an owner of the claim's project, once no route
/// lies inside it.
#[utoipa::path(delete, path = "/api/v1/claims/{id}", tag = "routes", params(("id" = String, Path, description = "Claim id")),
    responses((status = 204, description = "Released"), Failure))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let claim = state.db.claim(&id).await?;
    let role = claim.project_id.as_ref().and_then(|p| caller.roles.get(p)).map(String::as_str);
    if !caller.user.is_admin() {
        if role.is_none() {
            return Err(ApiError::not_found(format!("claim {id} not found")));
        }
        if role != Some("owner") {
            return Err(ApiError::forbidden("releasing a claim needs the owner role in its project"));
        }
    }
    let routes = state.db.routes().await?;
    let inside = |c: &RouteClaim| routes.iter().filter(|r| c.space().covers(&route_space(r))).count();
    state.db.delete_claim(&Actor::from(&caller.user), &id, inside).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The part of the address space `route` answers in.
pub fn route_space(route: &Route) -> RouteSpace {
    let kind = route.match_kind.parse().unwrap_or(PathMatch::Exact);
    RouteSpace::new(route.host.as_deref(), route_scope(&route.path, kind))
}

/// Who owns the space `module`'s routes claim: its project, or the admins for a `system`
/// module (the platform's routes, like its modules).
pub fn claim_owner(module: &Module) -> Option<&str> {
    if module.owner_type == "system" { None } else { module.project_id.as_deref() }
}

/// Claims for routes stored before claims existed: each route's space for its module's
/// project (admins' for system modules), skipping any that would overlap another owner's.
pub async fn backfill(state: &AppState) -> Result<(), ApiError> {
    for route in state.db.routes().await? {
        let space = route_space(&route);
        if state.db.overlapping_claims(&space).await?.iter().any(|c| c.space().covers(&space)) {
            continue;
        }
        let module = state.db.module(&route.module_id).await?;
        match state.db.create_claim(&Actor::system(), &space.claimed(), claim_owner(&module), false).await {
            Ok(_) => {}
            Err(StoreError::Claimed(other)) => {
                tracing::warn!(route = %route.id, claim = %other.id, "an older route overlaps another project's claim; it keeps working until deleted")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
