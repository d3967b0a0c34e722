//! `/api/v1/modules`: upload, list, show, change and delete modules and their versions.

use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use edgefn_runtime::Grants;
use edgefn_store::{Module, ModuleFilter, ModulePatch, ModuleVersion, NewModule, NewVersion, User};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body::{JsonBody, read_upload};
use crate::config::{DEFAULT_MODULE_MAX_MEMORY_PAGES, DEFAULT_MODULE_TIMEOUT_MS, MAX_MODULE_TIMEOUT_MS};
use crate::error::ApiError;
use crate::state::AppState;

/// Module statuses a caller may set.
const STATUSES: [&str; 4] = ["uploading", "active", "disabled", "error"];
/// Module classes.
const OWNER_TYPES: [&str; 3] = ["system", "admin", "user"];
/// Largest memory cap a module may be given: the runtime's per-instance ceiling in pages.
const MAX_MEMORY_PAGES: i64 = 8192;

/// Query of an upload.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
}

fn check_label(what: &str, value: &str) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
        && value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} `{value}` is invalid: use 1-64 letters, digits, '-', '_', '.', '+', starting with a letter or digit"
        )))
    }
}

/// `POST /api/v1/modules?name=&version=&description=` with the wasm as the body.
pub async fn upload(
    State(state): State<AppState>,
    axum::Extension(user): axum::Extension<User>,
    Query(query): Query<UploadQuery>,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let upload = read_upload(req, state.settings.max_module_bytes).await?;
    let field = |key: &str| upload.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let name = field("name").or(query.name).ok_or_else(|| ApiError::bad_request("missing module name (`name`)"))?;
    let version = field("version").or(query.version).unwrap_or_else(|| "1.0.0".into());
    let description = field("description").or(query.description);
    let (module, version) = add_version(&state, &user, name, version, description, upload.bytes).await?;
    Ok((StatusCode::CREATED, Json(json!({"module": module, "version": version}))))
}

/// Validates, stores and registers a module version (creating the module if the owner
/// has none of that name). Bytes first, rows second: a crash in between leaves only an
/// unreferenced artifact, which the next start removes.
pub async fn add_version(
    state: &AppState,
    user: &User,
    name: String,
    version: String,
    description: Option<String>,
    bytes: Vec<u8>,
) -> Result<(Module, ModuleVersion), ApiError> {
    check_label("name", &name)?;
    check_label("version", &version)?;
    let prepared = state.runtime.prepare(&bytes).await?;
    let owner_type = if user.role == "admin" { "admin" } else { "user" };
    if let Err(import) = Grants::for_class(owner_type).check(&prepared.info.imports) {
        return Err(ApiError::ungranted(&import, owner_type));
    }
    state.artifacts.put(&prepared.sha256, bytes).await?;
    let new_module = NewModule {
        owner_id: user.id.clone(),
        owner_type: owner_type.into(),
        name,
        description,
        timeout_ms: DEFAULT_MODULE_TIMEOUT_MS,
        max_memory_pages: DEFAULT_MODULE_MAX_MEMORY_PAGES,
    };
    let new_version = NewVersion {
        version,
        sha256: prepared.sha256.clone(),
        size_bytes: prepared.size as i64,
        kind: prepared.info.kind.as_str().into(),
        world: prepared.info.world.clone(),
        exports: serde_json::to_value(&prepared.info.exports).map_err(ApiError::internal)?,
        memory_pages: prepared.info.memory_pages.map(|p| p as i64),
        max_memory_pages: prepared.info.max_memory_pages.map(|p| p as i64),
    };
    let (module, version) = state.db.create_version(&new_module, &new_version).await?;
    tracing::info!(module = %module.id, name = %module.name, version = %version.version, sha256 = %version.sha256, "module uploaded");
    Ok((module, version))
}

/// Filters of the module list.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    owner_type: Option<String>,
    status: Option<String>,
}

/// `GET /api/v1/modules`.
pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    if let Some(t) = q.owner_type.as_deref().filter(|t| !OWNER_TYPES.contains(t)) {
        return Err(ApiError::bad_request(format!("owner_type `{t}` is not one of {}", OWNER_TYPES.join(", "))));
    }
    if let Some(s) = q.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad_request(format!("status `{s}` is not one of {}", STATUSES.join(", "))));
    }
    let modules = state.db.list_modules(&ModuleFilter { owner_type: q.owner_type, status: q.status }).await?;
    Ok(Json(json!({"modules": modules})))
}

/// `GET /api/v1/modules/{id}`: the module with its versions. `{id}` may also be a name.
pub async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let module = state.db.module_by_id_or_name(&id).await?;
    let versions = state.db.versions(&module.id).await?;
    let mut body = serde_json::to_value(&module).map_err(ApiError::internal)?;
    body["versions"] = serde_json::to_value(&versions).map_err(ApiError::internal)?;
    Ok(Json(body))
}

/// `GET /api/v1/modules/{id}/versions`.
pub async fn versions(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let module = state.db.module_by_id_or_name(&id).await?;
    Ok(Json(json!({"versions": state.db.versions(&module.id).await?})))
}

/// Body of `PATCH /api/v1/modules/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchBody {
    description: Option<String>,
    status: Option<String>,
    is_public: Option<bool>,
    timeout_ms: Option<i64>,
    max_memory_pages: Option<i64>,
    max_instances: Option<i64>,
    reuse_instances: Option<bool>,
    env: Option<std::collections::BTreeMap<String, String>>,
    allow_hosts: Option<Vec<String>>,
}

/// Most HTTP requests one function may run at once on a node.
const MAX_INSTANCES: i64 = 1000;

/// An allow-list entry: a host name, or `*.` and a host name.
fn check_allowed_host(entry: &str) -> Result<(), ApiError> {
    let name = entry.strip_prefix("*.").unwrap_or(entry);
    let label_ok = |l: &str| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(ApiError::bad_request(format!("allowHosts entry `{entry}` is not a host name or `*.` followed by one")));
    }
    Ok(())
}

/// `PATCH /api/v1/modules/{id}`.
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Result<Json<Value>, ApiError> {
    if let Some(s) = body.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad_request(format!("status `{s}` is not one of {}", STATUSES.join(", "))));
    }
    if let Some(t) = body.timeout_ms.filter(|t| !(1..=MAX_MODULE_TIMEOUT_MS).contains(t)) {
        return Err(ApiError::bad_request(format!("timeoutMs {t} must be between 1 and {MAX_MODULE_TIMEOUT_MS}")));
    }
    if let Some(p) = body.max_memory_pages.filter(|p| !(1..=MAX_MEMORY_PAGES).contains(p)) {
        return Err(ApiError::bad_request(format!("maxMemoryPages {p} must be between 1 and {MAX_MEMORY_PAGES}")));
    }
    if let Some(n) = body.max_instances.filter(|n| !(1..=MAX_INSTANCES).contains(n)) {
        return Err(ApiError::bad_request(format!("maxInstances {n} must be between 1 and {MAX_INSTANCES}")));
    }
    if let Some(key) = body.env.as_ref().and_then(|env| env.keys().find(|k| k.is_empty())) {
        return Err(ApiError::bad_request(format!("env names must not be empty (got `{key}`)")));
    }
    for entry in body.allow_hosts.iter().flatten() {
        check_allowed_host(entry)?;
    }
    let module = state.db.module_by_id_or_name(&id).await?;
    let patch = ModulePatch {
        description: body.description,
        status: body.status,
        is_public: body.is_public,
        timeout_ms: body.timeout_ms,
        max_memory_pages: body.max_memory_pages,
        max_instances: body.max_instances,
        reuse_instances: body.reuse_instances,
        env: body.env,
        allow_hosts: body.allow_hosts,
    };
    Ok(Json(serde_json::to_value(state.db.update_module(&module.id, &patch).await?).map_err(ApiError::internal)?))
}

/// `DELETE /api/v1/modules/{id}`: the module, its versions, history, and unshared bytes.
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let module = state.db.module_by_id_or_name(&id).await?;
    let orphaned = state.db.delete_module(&module.id).await?;
    // Its routes went with it.
    state.routes_changed();
    for sha in orphaned {
        state.artifacts.delete(&sha).await?;
    }
    tracing::info!(module = %module.id, name = %module.name, "module deleted");
    Ok(StatusCode::NO_CONTENT)
}
