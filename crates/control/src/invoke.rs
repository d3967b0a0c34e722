//! Calling functions: `POST /api/v1/modules/{id}/invoke` and the seeds' compatible
//! `POST /functions/v1/wasm-executor`. Every call, failed or not, is recorded.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use edgefn_runtime::{CallContext, InvokeRequest, ResultEncoding};
use edgefn_store::{Execution, Resolved, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::{Caller, Op};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::state::AppState;

/// Body of an invoke.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InvokeBody {
    pub(crate) function: String,
    #[serde(default)]
    pub(crate) args: Value,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) version: Option<String>,
    #[serde(default)]
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
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExecutorBody {
    module_id: String,
    function_name: String,
    #[serde(default)]
    args: Value,
    timeout_ms: Option<u64>,
    version: Option<String>,
    #[serde(default)]
    result: ResultEncoding,
}

/// `POST /api/v1/modules/{id}/invoke`.
pub async fn invoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<InvokeBody>,
) -> Result<Response, ApiError> {
    run(&state, &caller, &id, body).await
}

/// `POST /functions/v1/wasm-executor`.
pub async fn executor(State(state): State<AppState>, caller: Caller, JsonBody(body): JsonBody<ExecutorBody>) -> Result<Response, ApiError> {
    let ExecutorBody { module_id, function_name, args, timeout_ms, version, result } = body;
    run(&state, &caller, &module_id, InvokeBody { function: function_name, args, timeout_ms, version, result }).await
}

async fn run(state: &AppState, caller: &Caller, id: &str, body: InvokeBody) -> Result<Response, ApiError> {
    let called = call(state, caller, id, body).await?;
    Ok(Json(success_body(&called)).into_response())
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

fn success_body(called: &Called) -> Value {
    let Called { result, elapsed, memory_used_bytes, cache_hit, resolved } = called;
    let (module, version) = &**resolved;
    json!({
        "result": result,
        "executionTimeMs": elapsed.as_secs_f64() * 1000.0,
        "memoryUsedBytes": memory_used_bytes,
        "cacheHit": cache_hit,
        "module": {"id": module.id, "name": module.name, "version": version.version, "ownerType": module.owner_type},
    })
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
