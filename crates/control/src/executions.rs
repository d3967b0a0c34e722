//! Execution history and statistics of a module.

use axum::Json;
use axum::extract::{Path, State};
use edgefn_store::{Execution, ExecutionStats, Module, TrafficTotals, now_ms};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::{Caller, Op, decide};
use crate::body::QueryParams;
use crate::error::ApiError;
use crate::modules::find;
use crate::openapi::Failure;
use crate::state::AppState;

/// Most rows in one page.
const MAX_PAGE: i64 = 500;
/// Rows in a page when the caller does not say.
const DEFAULT_PAGE: i64 = 50;

/// How an execution can end.
pub(crate) const STATUSES: [&str; 3] = ["success", "error", "timeout"];

/// Paging and filter of the history.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Rows in the page (1 to 500, default 50).
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
    /// Only `success`, `error` or `timeout`.
    status: Option<String>,
}

/// A page of the history.
#[derive(Serialize, ToSchema)]
pub struct ExecutionPage {
    /// Newest first.
    executions: Vec<Execution>,
    /// Rows the caller may see in all.
    total: i64,
    /// The page size.
    limit: i64,
    /// Rows skipped.
    offset: i64,
}

/// `GET /api/v1/modules/{id}/executions?limit=&offset=&status=`: newest first. The
/// module's owner and admins see every execution; anyone else who may read the module,
/// their own.
#[utoipa::path(get, path = "/api/v1/modules/{id}/executions", tag = "history", params(("id" = String, Path, description = "Module id or name"), Page),
    responses((status = 200, description = "A page of executions, newest first", body = ExecutionPage), Failure))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(page): QueryParams<Page>,
) -> Result<Json<ExecutionPage>, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    let offset = page.offset.unwrap_or(0);
    if !(1..=MAX_PAGE).contains(&limit) || offset < 0 {
        return Err(ApiError::bad_request(format!("limit must be 1..={MAX_PAGE} and offset at least 0")));
    }
    check_status(page.status.as_deref())?;
    let module = find(&state, &caller, &id, Op::Read).await?;
    let executor = visible_executor(&caller, &module);
    state.recorder.flush().await;
    let (executions, total) = state.db.executions(&module.id, executor, page.status.as_deref(), limit, offset).await?;
    Ok(Json(ExecutionPage { executions, total, limit, offset }))
}

/// How far back a function's HTTP traffic is summed.
pub const TRAFFIC_PERIOD_MS: i64 = 24 * 3600 * 1000;

/// `GET /api/v1/modules/{id}/stats` answer: invocations through the API (from the
/// execution history) and HTTP traffic on the edge nodes (from their reports).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionStats {
    /// Calls through the invoke API.
    #[serde(flatten)]
    pub invoke: ExecutionStats,
    /// HTTP requests the nodes served over the last 24 hours.
    pub http: TrafficTotals,
}

/// `GET /api/v1/modules/{id}/stats`: for those who may see every execution.
#[utoipa::path(get, path = "/api/v1/modules/{id}/stats", tag = "history", params(("id" = String, Path, description = "Module id or name")),
    responses((status = 200, description = "Invocations (count, success rate, latency percentiles) and the nodes' HTTP traffic", body = FunctionStats), Failure))]
pub async fn stats(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<FunctionStats>, ApiError> {
    let module = find(&state, &caller, &id, Op::History).await?;
    state.recorder.flush().await;
    let invoke = state.db.execution_stats(&module.id).await?;
    let http = state.db.traffic(&module.id, now_ms() - TRAFFIC_PERIOD_MS).await?;
    Ok(Json(FunctionStats { invoke, http }))
}

/// `Ok` for no status or one an execution can have.
pub(crate) fn check_status(status: Option<&str>) -> Result<(), ApiError> {
    match status {
        Some(s) if !STATUSES.contains(&s) => Err(ApiError::bad_request(format!("status `{s}` is not one of {}", STATUSES.join(", ")))),
        _ => Ok(()),
    }
}

/// Whose executions of `module` the caller sees: everyone's (`None`) for the owner and
/// admins, otherwise only its own.
pub(crate) fn visible_executor<'a>(caller: &'a Caller, module: &Module) -> Option<&'a str> {
    decide(caller, module, Op::History).is_err().then_some(caller.user.id.as_str())
}
