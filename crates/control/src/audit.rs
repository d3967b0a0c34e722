//! `/api/v1/audit` (admins): read the audit log with filters, and verify its hash chain.
//! There is no endpoint that changes it.

use axum::Json;
use axum::extract::State;
use edgefn_store::{AuditEntry, AuditFilter, AuditVerdict};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::Caller;
use crate::body::QueryParams;
use crate::error::ApiError;
use crate::openapi::Failure;
use crate::state::AppState;

/// Most entries in one page.
const MAX_PAGE: i64 = 1000;

/// Filters of `GET /api/v1/audit`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only changes by this user (id or name).
    actor: Option<String>,
    /// Only this kind of resource (`module`, `route`, `user`…).
    resource_type: Option<String>,
    /// Only this resource.
    resource_id: Option<String>,
    /// Only this operation (`create`, `update`…).
    operation: Option<String>,
    /// Entries after this `seq` (paging).
    after: Option<i64>,
    /// Entries in the page (1 to 1000, default 100).
    limit: Option<i64>,
}

/// A page of the audit log.
#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    /// Oldest first.
    entries: Vec<AuditEntry>,
}

/// `GET /api/v1/audit?actor=&resourceType=&resourceId=&operation=&after=&limit=`: oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, description = "Entries, oldest first", body = AuditPage), Failure))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require_admin("read the audit log")?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1..={MAX_PAGE}")));
    }
    let actor_id = match &q.actor {
        Some(key) => Some(state.db.user(key).await?.id),
        None => None,
    };
    let filter = AuditFilter {
        actor_id,
        resource_type: q.resource_type,
        resource_id: q.resource_id,
        operation: q.operation,
        after: q.after,
        limit,
        ..AuditFilter::default()
    };
    Ok(Json(AuditPage { entries: state.db.audit(&filter).await? }))
}

/// `GET /api/v1/audit/verify`: walks the chain and names the first bad entry.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit", responses((status = 200, description = "What the walk found", body = AuditVerdict), Failure))]
pub async fn verify(State(state): State<AppState>, caller: Caller) -> Result<Json<AuditVerdict>, ApiError> {
    caller.require_admin("read the audit log")?;
    Ok(Json(state.db.verify_audit().await?))
}
