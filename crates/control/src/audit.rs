//! `/api/v1/audit` (admins): read the audit log with filters, and verify its hash chain.
//! There is no endpoint that changes it.

use axum::Json;
use axum::extract::{Query, State};
use edgefn_store::{AuditFilter, AuditVerdict};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Most entries in one page.
const MAX_PAGE: i64 = 1000;

/// Filters of `GET /api/v1/audit`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditQuery {
    actor: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
    operation: Option<String>,
    /// Entries after this `seq` (paging).
    after: Option<i64>,
    limit: Option<i64>,
}

/// `GET /api/v1/audit?actor=&resourceType=&resourceId=&operation=&after=&limit=`: oldest first.
pub async fn list(State(state): State<AppState>, caller: Caller, Query(q): Query<AuditQuery>) -> Result<Json<Value>, ApiError> {
    caller.require_admin("read the audit log")?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be 1..={MAX_PAGE}")));
    }
    let actor_id = match &q.actor {
        Some(key) => Some(state.db.user(key).await?.id),
        None => None,
    };
    let filter =
        AuditFilter { actor_id, resource_type: q.resource_type, resource_id: q.resource_id, operation: q.operation, after: q.after, limit };
    Ok(Json(json!({"entries": state.db.audit(&filter).await?})))
}

/// `GET /api/v1/audit/verify`: walks the chain and names the first bad entry.
pub async fn verify(State(state): State<AppState>, caller: Caller) -> Result<Json<AuditVerdict>, ApiError> {
    caller.require_admin("read the audit log")?;
    Ok(Json(state.db.verify_audit().await?))
}
