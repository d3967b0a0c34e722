//! Calling functions: `POST /api/v1/modules/{id}/invoke` and the seeds' compatible
//! `POST /functions/v1/wasm-executor`. Every call, failed or not, is recorded.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use edgefn_runtime::{CallContext, InvokeRequest, ResultEncoding};
use edgefn_store::{Execution, Resolved, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::access::{Caller, Op};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::openapi::Failure;
use crate::state::AppState;

/// Body of an invoke.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InvokeBody {
    /// The exported function.
    pub(crate) function: String,
    /// Its arguments: a JSON array matching the signature (docs/abi.md).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub(crate) args: Value,
    /// A shorter time limit than the module's, in milliseconds.
    pub(crate) timeout_ms: Option<u64>,
    /// A version other than the newest.
    pub(crate) version: Option<String>,
    /// How to read a core module's result: `values` (default), `string`, `bytes` or `json`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub(crate) result: ResultEncoding,
}

/// A call that returned.
pub struct Called {
    /// The function's result.
    pub result: Value,
    /// Wall time of the call.
    pub elapsed: Duration,
    /// Linear memory the instance used.
    pub memory_used_bytes: u64,
    /// Whether the compiled module came from the cache.
    pub cache_hit: bool,
    /// The module and version called.
    pub resolved: Resolved,
}

/// Body of the seeds' executor endpoint.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecutorBody {
    /// Module id or name.
    module_id: String,
    /// The exported function.
    function_name: String,
    /// Its arguments.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    args: Value,
    /// A shorter time limit than the module's, in milliseconds.
    timeout_ms: Option<u64>,
    /// A version other than the newest.
    version: Option<String>,
    /// How to read a core module's result.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    result: ResultEncoding,
}

/// A call's answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvokeResult {
    /// What the function returned, as JSON.
    #[schema(value_type = Object)]
    result: Value,
    /// Wall time of the call.
    execution_time_ms: f64,
    /// Linear memory the instance used.
    memory_used_bytes: u64,
    /// Whether the compiled module came from the cache.
    cache_hit: bool,
    /// The module and version that ran.
    module: InvokedModule,
}

/// The module and version a call ran.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InvokedModule {
    id: String,
    name: String,
    version: String,
    owner_type: String,
}

/// `POST /api/v1/modules/{id}/invoke`.
#[utoipa::path(post, path = "/api/v1/modules/{id}/invoke", tag = "invoke", params(("id" = String, Path, description = "Module id or name")),
    request_body = InvokeBody, responses((status = 200, description = "The function returned", body = InvokeResult), Failure))]
pub async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<InvokeBody>,
) -> Result<Json<InvokeResult>, ApiError> {
    Ok(Json(call(&state, &caller, &id, body).await?.into()))
}

/// `POST /functions/v1/wasm-executor`.
#[utoipa::path(post, path = "/functions/v1/wasm-executor", tag = "invoke", request_body = ExecutorBody,
    responses((status = 200, description = "The function returned (the seeds' executor endpoint)", body = InvokeResult), Failure))]
pub async fn executor(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ExecutorBody>,
) -> Result<Json<InvokeResult>, ApiError> {
    let ExecutorBody { module_id, function_name, args, timeout_ms, version, result } = body;
    let body = InvokeBody { function: function_name, args, timeout_ms, version, result };
    Ok(Json(call(&state, &caller, &module_id, body).await?.into()))
}

/// Runs a function of the module `id` (id or name) for `caller`, and records the call.
pub async fn call(state: &AppState, caller: &Caller, id: &str, body: InvokeBody) -> Result<Called, ApiError> {
    if body.timeout_ms == Some(0) {
        return Err(ApiError::bad_request("timeoutMs must be at least 1"));
    }
    let found = crate::modules::find(state, caller, id, Op::Execute).await?;
    let resolved = state.db.resolve(&found.id, body.version.as_deref()).await?;
    let (module, version) = &*resolved;
    let loaded = state
        .runtime
        .load(&version.sha256, || async { Ok(state.artifacts.get(&version.sha256).await?) })
        .await
        .map_err(|e| ApiError::internal(format!("loading {}@{}: {e:#}", module.name, version.version)))?;

    // A module's limits are capped by its class; a caller may ask for less time, never more.
    let class = state.settings.classes.of(&module.owner_type);
    let (module_timeout_ms, max_memory_bytes) = class.cap(module.timeout_ms, module.max_memory_pages);
    let timeout_ms = body.timeout_ms.map_or(module_timeout_ms, |t| t.min(module_timeout_ms));
    let execution_id = uuid_v4();
    let request = InvokeRequest {
        function: body.function.clone(),
        args: body.args.clone(),
        timeout: Duration::from_millis(timeout_ms),
        max_memory_bytes: max_memory_bytes as usize,
        result: body.result,
        // Host functions as the module's class allows; log lines take the runtime's one
        // rate-limited path, and the key-value store and outbound fetch belong to the node.
        context: CallContext {
            function_id: Arc::from(module.id.as_str()),
            request_id: execution_id.clone(),
            grants: class.grants,
            env: module.env.values().clone(),
            allow_hosts: module.allow_hosts.clone(),
            log: state.runtime.guest_log(),
            ..CallContext::default()
        },
    };
    let started = std::time::Instant::now();
    let outcome = state.runtime.invoke(&loaded.module, request).await;
    let elapsed = started.elapsed();

    let cap = state.settings.max_recorded_bytes;
    let mut record = Execution {
        id: execution_id,
        seq: 0,
        module_id: module.id.clone(),
        version: version.version.clone(),
        executor_id: Some(caller.user.id.clone()),
        function_name: body.function,
        input: capped(body.args.to_string(), cap),
        output: None,
        execution_time_us: elapsed.as_micros() as i64,
        memory_used_bytes: 0,
        cache_hit: loaded.cache_hit,
        status: "success".into(),
        error: None,
        node: None,
        created_at: now_ms(),
    };
    match outcome {
        Ok(out) => {
            record.output = Some(capped(out.result.to_string(), cap));
            record.memory_used_bytes = out.memory_used_bytes as i64;
            state.recorder.record(record).await;
            Ok(Called {
                result: out.result,
                elapsed,
                memory_used_bytes: out.memory_used_bytes,
                cache_hit: loaded.cache_hit,
                resolved: resolved.clone(),
            })
        }
        Err(err) => {
            record.status = if matches!(err, edgefn_runtime::InvokeError::Timeout { .. }) { "timeout" } else { "error" }.into();
            record.error = Some(capped(err.to_string(), cap));
            state.recorder.record(record).await;
            Err(ApiError::from(&err))
        }
    }
}

impl From<Called> for InvokeResult {
    fn from(called: Called) -> Self {
        let Called { result, elapsed, memory_used_bytes, cache_hit, resolved } = called;
        let (module, version) = &*resolved;
        Self {
            result,
            execution_time_ms: elapsed.as_secs_f64() * 1000.0,
            memory_used_bytes,
            cache_hit,
            module: InvokedModule {
                id: module.id.clone(),
                name: module.name.clone(),
                version: version.version.clone(),
                owner_type: module.owner_type.clone(),
            },
        }
    }
}

/// Cuts `text` to `cap` bytes (on a character boundary), marking the cut.
fn capped(mut text: String, cap: usize) -> String {
    if text.len() > cap {
        let total = text.len();
        text.truncate(text.floor_char_boundary(cap));
        text.push_str(&format!("…[truncated, {total} bytes]"));
    }
    text
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}
