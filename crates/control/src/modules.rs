//! `/api/v1/modules`: upload, list, show, change and delete modules and their versions.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use edgefn_store::{Actor, Module, ModuleFilter, ModulePatch, ModuleVersion, NewModule, NewVersion};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::{Caller, Op, decide, pick};
use crate::body::{JsonBody, QueryParams, read_upload};
use crate::config::{DEFAULT_MODULE_MAX_MEMORY_PAGES, DEFAULT_MODULE_TIMEOUT_MS, MAX_MODULE_TIMEOUT_MS};
use crate::error::ApiError;
use crate::openapi::{Failure, WasmBytes};
use crate::state::AppState;

/// Module statuses a caller may set.
pub(crate) const STATUSES: [&str; 4] = ["uploading", "active", "disabled", "error"];
/// Module classes.
pub(crate) const OWNER_TYPES: [&str; 3] = ["system", "admin", "user"];
/// Largest memory cap a module may be given: the runtime's per-instance ceiling in pages.
const MAX_MEMORY_PAGES: i64 = 8192;

/// Query of an upload (multipart form fields of the same names win).
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Module name (required, here or as a form field).
    name: Option<String>,
    /// Version label (default `1.0.0`).
    version: Option<String>,
    /// Description; replaces the module's.
    description: Option<String>,
    /// Class of a new module: `system`, `admin` (admins only) or `user`.
    owner_type: Option<String>,
    /// Project (id or name) of a new module; default the caller's personal project.
    project: Option<String>,
    /// Time limit per call in milliseconds (up to the class's limit).
    timeout_ms: Option<String>,
}

/// What an upload created.
#[derive(Serialize, ToSchema)]
pub struct Uploaded {
    /// The module, new or existing.
    module: Module,
    /// The version just added.
    version: ModuleVersion,
}

/// What an upload names besides the bytes.
#[derive(Clone)]
pub struct Upload {
    /// Module name.
    pub name: String,
    /// Version label.
    pub version: String,
    /// New description.
    pub description: Option<String>,
    /// Class of a new module (default `admin` for admins, `user` for everyone else).
    pub owner_type: Option<String>,
    /// Project (id or name) of a new module (default: the caller's personal project).
    pub project: Option<String>,
    /// Execution time limit (ms) of a new module, or the new limit of an existing one.
    pub timeout_ms: Option<String>,
}

/// The module `key` (id or name) names for this caller, checked for `op`.
pub async fn find(state: &AppState, caller: &Caller, key: &str, op: Op) -> Result<Module, ApiError> {
    let module = pick(caller, key, state.db.modules_by_id_or_name(key).await?)?;
    decide(caller, &module, op)?;
    Ok(module)
}

pub(crate) fn check_label(what: &str, value: &str) -> Result<(), ApiError> {
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

/// `POST /api/v1/modules?name=&version=&description=&ownerType=&project=` with the wasm
/// as the body (or multipart with those fields).
#[utoipa::path(post, path = "/api/v1/modules", tag = "modules", params(UploadQuery),
    request_body(content((WasmBytes = "application/wasm"), (WasmBytes = "multipart/form-data")), description = "The module: raw bytes, or a multipart form with a `file` field and the query's fields"),
    responses((status = 201, description = "Uploaded: a new module, or a new version of the caller's module of that name", body = Uploaded), Failure))]
pub async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<UploadQuery>,
    req: Request,
) -> Result<(StatusCode, Json<Uploaded>), ApiError> {
    let upload = read_upload(req, state.settings.max_module_bytes).await?;
    let field = |key: &str| upload.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let what = Upload {
        name: field("name").or(query.name).ok_or_else(|| ApiError::bad_request("missing module name (`name`)"))?,
        version: field("version").or(query.version).unwrap_or_else(|| "1.0.0".into()),
        description: field("description").or(query.description),
        owner_type: field("ownerType").or(query.owner_type),
        project: field("project").or(query.project),
        timeout_ms: field("timeoutMs").or(query.timeout_ms),
    };
    let (module, version) = add_version(&state, &caller, what, upload.bytes).await?;
    Ok((StatusCode::CREATED, Json(Uploaded { module, version })))
}

/// What an upload will do, checked before its bytes are: the module it adds a version to
/// (or the new module's owner and class), and a changed time limit.
pub struct Planned {
    name: String,
    version: String,
    description: Option<String>,
    project_id: String,
    existing: Option<Module>,
    owner_id: String,
    owner_type: String,
    timeout_ms: Option<i64>,
}

impl Planned {
    /// The module's project.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }
}

/// Checks an upload's names and the caller's rights before any bytes: labels, project,
/// class, rights on an existing module, time limit, and that the version is new.
pub async fn plan(state: &AppState, caller: &Caller, upload: Upload) -> Result<Planned, ApiError> {
    let Upload { name, version, description, owner_type, project, timeout_ms } = upload;
    check_label("name", &name)?;
    check_label("version", &version)?;
    if let Some(t) = owner_type.as_deref().filter(|t| !OWNER_TYPES.contains(t)) {
        return Err(ApiError::bad_request(format!("ownerType `{t}` is not one of {}", OWNER_TYPES.join(", "))));
    }
    let project = match &project {
        Some(key) => state.db.project(key).await?,
        None => state.db.personal_project(&caller.user.id).await?,
    };
    let existing =
        state.db.modules_by_id_or_name(&name).await?.into_iter().find(|m| m.name == name && m.project_id.as_deref() == Some(&project.id));
    let (owner_id, owner_type) = match &existing {
        Some(module) => {
            decide(caller, module, Op::Version)?;
            if owner_type.as_deref().is_some_and(|t| t != module.owner_type) {
                return Err(ApiError::forbidden(format!(
                    "module {name} is of class `{}`; a module's class cannot be changed",
                    module.owner_type
                )));
            }
            if state.db.versions(&module.id).await?.iter().any(|v| v.version == version) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("module {name} already has version {version}; name a new version"),
                ));
            }
            (module.owner_id.clone(), module.owner_type.clone())
        }
        None => {
            // An admin's upload is an admin module unless it says otherwise.
            let class = owner_type.unwrap_or_else(|| if caller.user.is_admin() { "admin" } else { "user" }.into());
            caller.may_create(&class, caller.roles.get(&project.id).map(String::as_str))?;
            (caller.user.id.clone(), class)
        }
    };
    let timeout_ms = match timeout_ms.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => Some(check_timeout(
            state,
            &owner_type,
            text.parse().map_err(|_| ApiError::bad_request(format!("timeoutMs `{text}` is not a whole number of milliseconds")))?,
        )?),
        None => None,
    };
    if owner_type == "system" && existing.is_some() && timeout_ms.is_some() {
        return Err(ApiError::forbidden(format!("system module {name} is immutable: only its status may change; upload a new version")));
    }
    Ok(Planned { name, version, description, project_id: project.id, existing, owner_id, owner_type, timeout_ms })
}

/// Validates, stores and registers a module version: a new version of the project's
/// module of that name, or a new module. Bytes first, rows second: a crash in between
/// leaves only an unreferenced artifact, which the next start removes.
pub async fn add_version(state: &AppState, caller: &Caller, upload: Upload, bytes: Vec<u8>) -> Result<(Module, ModuleVersion), ApiError> {
    let planned = plan(state, caller, upload).await?;
    store_version(state, caller, planned, bytes).await
}

/// The second half of [`add_version`]: compiles and checks the bytes, stores them and
/// registers the version [`plan`] checked.
pub async fn store_version(
    state: &AppState,
    caller: &Caller,
    planned: Planned,
    bytes: Vec<u8>,
) -> Result<(Module, ModuleVersion), ApiError> {
    let Planned { name, version, description, project_id, existing, owner_id, owner_type, timeout_ms } = planned;
    let turn = state.compiles.enter(&caller.user.id)?;
    let prepared = state.runtime.prepare(&bytes).await?;
    drop(turn);
    if let Err(import) = state.settings.classes.of(&owner_type).grants.check(&prepared.info.imports) {
        return Err(ApiError::ungranted(&import, &owner_type));
    }
    state.artifacts.put(&prepared.sha256, bytes).await?;
    let new_module = NewModule {
        owner_id,
        project_id,
        owner_type,
        name,
        description,
        timeout_ms: timeout_ms.unwrap_or(DEFAULT_MODULE_TIMEOUT_MS),
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
    let actor = Actor::from(&caller.user);
    let (mut module, version) = state.db.create_version(&actor, &new_module, &new_version).await?;
    if existing.is_some() && timeout_ms.is_some_and(|t| t != module.timeout_ms) {
        module = state.db.update_module(&actor, &module.id, &ModulePatch { timeout_ms, ..ModulePatch::default() }).await?;
    }
    tracing::info!(module = %module.id, name = %module.name, version = %version.version, sha256 = %version.sha256, "module uploaded");
    Ok((module, version))
}

/// Filters of the module list.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this class: `system`, `admin` or `user`.
    owner_type: Option<String>,
    /// Only this status: `uploading`, `active`, `disabled` or `error`.
    status: Option<String>,
    /// Only modules the caller may run (the seeds' `listExecutable`).
    #[serde(default)]
    executable: bool,
}

/// Modules.
#[derive(Serialize, ToSchema)]
pub struct ModuleList {
    /// The modules, as the caller may see them.
    modules: Vec<Module>,
}

/// `GET /api/v1/modules`: the modules the caller may read.
#[utoipa::path(get, path = "/api/v1/modules", tag = "modules", params(ListQuery), responses((status = 200, description = "The modules the caller may read (or run)", body = ModuleList), Failure))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<ModuleList>, ApiError> {
    let op = if q.executable { Op::Execute } else { Op::Read };
    let modules = visible_modules(&state, &caller, ModuleFilter { owner_type: q.owner_type, status: q.status }, op).await?;
    Ok(Json(ModuleList { modules }))
}

/// The modules matching `filter` (checked: a known class and status) on which the
/// caller may do `op`.
pub(crate) async fn visible_modules(state: &AppState, caller: &Caller, filter: ModuleFilter, op: Op) -> Result<Vec<Module>, ApiError> {
    if let Some(t) = filter.owner_type.as_deref().filter(|t| !OWNER_TYPES.contains(t)) {
        return Err(ApiError::bad_request(format!("owner_type `{t}` is not one of {}", OWNER_TYPES.join(", "))));
    }
    if let Some(s) = filter.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad_request(format!("status `{s}` is not one of {}", STATUSES.join(", "))));
    }
    let mut modules = state.db.list_modules(&filter).await?;
    modules.retain(|m| decide(caller, m, op).is_ok());
    Ok(modules)
}

/// A module with its versions.
#[derive(Serialize, ToSchema)]
pub struct ModuleWithVersions {
    /// The module.
    #[serde(flatten)]
    module: Module,
    /// Its versions, oldest first.
    versions: Vec<ModuleVersion>,
}

/// A module's versions.
#[derive(Serialize, ToSchema)]
pub struct VersionList {
    /// Oldest first.
    versions: Vec<ModuleVersion>,
}

/// `GET /api/v1/modules/{id}`: the module with its versions. `{id}` may also be a name.
#[utoipa::path(get, path = "/api/v1/modules/{id}", tag = "modules", params(("id" = String, Path, description = "Module id or name")),
    responses((status = 200, description = "The module and its versions", body = ModuleWithVersions), Failure))]
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<ModuleWithVersions>, ApiError> {
    let module = find(&state, &caller, &id, Op::Read).await?;
    let versions = state.db.versions(&module.id).await?;
    Ok(Json(ModuleWithVersions { module, versions }))
}

/// `GET /api/v1/modules/{id}/versions`.
#[utoipa::path(get, path = "/api/v1/modules/{id}/versions", tag = "modules", params(("id" = String, Path, description = "Module id or name")),
    responses((status = 200, description = "The module's versions", body = VersionList), Failure))]
pub async fn versions(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<VersionList>, ApiError> {
    let module = find(&state, &caller, &id, Op::Read).await?;
    Ok(Json(VersionList { versions: state.db.versions(&module.id).await? }))
}

/// Body of `PATCH /api/v1/modules/{id}`: the fields to change.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchBody {
    pub(crate) description: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) is_public: Option<bool>,
    pub(crate) allowed_users: Option<Vec<String>>,
    pub(crate) owner_type: Option<String>,
    pub(crate) timeout_ms: Option<i64>,
    pub(crate) max_memory_pages: Option<i64>,
    pub(crate) max_instances: Option<i64>,
    pub(crate) reuse_instances: Option<bool>,
    /// Longest an HTTP request may run on a node, up to the class's limit; 0 for the
    /// node's default (500 ms).
    pub(crate) http_timeout_ms: Option<i64>,
    /// Most bytes of an HTTP request or response body on a node, up to the class's limit;
    /// 0 for the default (100 MiB).
    pub(crate) max_body_bytes: Option<i64>,
    pub(crate) env: Option<std::collections::BTreeMap<String, String>>,
    pub(crate) allow_hosts: Option<Vec<String>>,
}

/// Most HTTP requests one function may run at once on a node.
const MAX_INSTANCES: i64 = 1000;
/// Most configuration values a module may have: enough for real configuration, small
/// enough that every call's copy stays cheap.
pub const MAX_ENV_VALUES: usize = 64;
/// Longest configuration value, in bytes (a key, a certificate, a URL).
pub const MAX_ENV_VALUE_BYTES: usize = 4096;
/// Longest configuration name, in bytes.
const MAX_ENV_NAME_BYTES: usize = 128;

/// Configuration values within the limits, with names like `API_KEY` (letters, digits
/// and `_`, not starting with a digit); a 400 naming the first problem otherwise.
fn check_env(env: &std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    if env.len() > MAX_ENV_VALUES {
        return Err(ApiError::bad_request(format!("env has {} values; at most {MAX_ENV_VALUES} are allowed", env.len())));
    }
    for (name, value) in env {
        let well_formed = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !well_formed || name.len() > MAX_ENV_NAME_BYTES {
            let shown: String = name.chars().take(40).collect();
            return Err(ApiError::bad_request(format!(
                "env name `{shown}` must be 1 to {MAX_ENV_NAME_BYTES} letters, digits or `_`, not starting with a digit"
            )));
        }
        if value.len() > MAX_ENV_VALUE_BYTES {
            return Err(ApiError::bad_request(format!(
                "env value of `{name}` is {} bytes; at most {MAX_ENV_VALUE_BYTES} are allowed",
                value.len()
            )));
        }
    }
    Ok(())
}

/// Whether `pattern` is a host name, or `*.` and a host name (allow-list entries, claims).
pub(crate) fn is_host_pattern(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    let label_ok = |l: &str| !l.is_empty() && l.len() <= 63 && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    name.len() <= 253 && name.split('.').all(label_ok)
}

/// `timeout_ms` if it is within what modules of `class` may be given; a 400 otherwise.
fn check_timeout(state: &AppState, class: &str, timeout_ms: i64) -> Result<i64, ApiError> {
    let max = MAX_MODULE_TIMEOUT_MS.min(state.settings.classes.of(class).max_execution_ms as i64);
    if (1..=max).contains(&timeout_ms) {
        Ok(timeout_ms)
    } else {
        Err(ApiError::bad_request(format!("timeoutMs {timeout_ms} must be between 1 and {max} (the limit of `{class}` modules)")))
    }
}

/// `PATCH /api/v1/modules/{id}`.
#[utoipa::path(patch, path = "/api/v1/modules/{id}", tag = "modules", params(("id" = String, Path, description = "Module id or name")),
    request_body = PatchBody, responses((status = 200, description = "The module as it now is", body = Module), Failure))]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PatchBody>,
) -> Result<Json<Module>, ApiError> {
    Ok(Json(update_module(&state, &caller, &id, body).await?))
}

/// Checks and applies a change of a module's settings (the API's PATCH and the console's
/// forms), then tells the nodes.
pub(crate) async fn update_module(state: &AppState, caller: &Caller, id: &str, body: PatchBody) -> Result<Module, ApiError> {
    let module = find(state, caller, id, Op::Update).await?;
    if body.owner_type.as_ref().is_some_and(|t| *t != module.owner_type) {
        return Err(ApiError::forbidden(format!(
            "module {} is of class `{}`; a module's class cannot be changed",
            module.name, module.owner_type
        )));
    }
    let only_status = body.description.is_none()
        && body.is_public.is_none()
        && body.allowed_users.is_none()
        && body.timeout_ms.is_none()
        && body.max_memory_pages.is_none()
        && body.max_instances.is_none()
        && body.reuse_instances.is_none()
        && body.http_timeout_ms.is_none()
        && body.max_body_bytes.is_none()
        && body.env.is_none()
        && body.allow_hosts.is_none();
    if module.owner_type == "system" && !only_status {
        return Err(ApiError::forbidden(format!(
            "system module {} is immutable: only its status may change; upload a new version",
            module.name
        )));
    }
    let class = state.settings.classes.of(&module.owner_type);
    if let Some(s) = body.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad_request(format!("status `{s}` is not one of {}", STATUSES.join(", "))));
    }
    if let Some(t) = body.timeout_ms {
        check_timeout(state, &module.owner_type, t)?;
    }
    if let Some(t) = body.http_timeout_ms.filter(|t| *t != 0) {
        check_timeout(state, &module.owner_type, t).map_err(|_| {
            let max = MAX_MODULE_TIMEOUT_MS.min(class.max_execution_ms as i64);
            ApiError::bad_request(format!(
                "httpTimeoutMs {t} must be between 1 and {max} (the limit of `{}` modules), or 0 for the node's default",
                module.owner_type
            ))
        })?;
    }
    if let Some(b) = body.max_body_bytes.filter(|b| *b != 0 && !(1..=class.max_body_bytes as i64).contains(b)) {
        return Err(ApiError::bad_request(format!(
            "maxBodyBytes {b} must be between 1 and {} (the limit of `{}` modules), or 0 for the default ({})",
            class.max_body_bytes,
            module.owner_type,
            edgefn_runtime::DEFAULT_MAX_BODY_BYTES
        )));
    }
    let max_pages = MAX_MEMORY_PAGES.min((class.max_memory_bytes / 65536) as i64);
    if let Some(p) = body.max_memory_pages.filter(|p| !(1..=max_pages).contains(p)) {
        return Err(ApiError::bad_request(format!(
            "maxMemoryPages {p} must be between 1 and {max_pages} (the limit of `{}` modules)",
            module.owner_type
        )));
    }
    if let Some(n) = body.max_instances.filter(|n| !(1..=MAX_INSTANCES).contains(n)) {
        return Err(ApiError::bad_request(format!("maxInstances {n} must be between 1 and {MAX_INSTANCES}")));
    }
    if let Some(env) = &body.env {
        check_env(env)?;
    }
    for entry in body.allow_hosts.iter().flatten() {
        if !is_host_pattern(entry) {
            return Err(ApiError::bad_request(format!("allowHosts entry `{entry}` is not a host name or `*.` followed by one")));
        }
    }
    let mut allowed_users = None;
    if let Some(keys) = &body.allowed_users {
        let mut ids = Vec::new();
        for key in keys {
            let user = state.db.user(key).await.map_err(|_| ApiError::bad_request(format!("allowedUsers: no user {key}")))?;
            if !ids.contains(&user.id) {
                ids.push(user.id);
            }
        }
        allowed_users = Some(ids);
    }
    let patch = ModulePatch {
        description: body.description,
        status: body.status,
        is_public: body.is_public,
        allowed_users,
        timeout_ms: body.timeout_ms,
        max_memory_pages: body.max_memory_pages,
        max_instances: body.max_instances,
        reuse_instances: body.reuse_instances,
        http_timeout_ms: body.http_timeout_ms,
        max_body_bytes: body.max_body_bytes,
        env: body.env,
        allow_hosts: body.allow_hosts,
    };
    Ok(state.db.update_module(&Actor::from(&caller.user), &module.id, &patch).await?)
}

/// `DELETE /api/v1/modules/{id}`: the module, its versions, history, and unshared bytes.
#[utoipa::path(delete, path = "/api/v1/modules/{id}", tag = "modules", params(("id" = String, Path, description = "Module id or name")),
    responses((status = 204, description = "Deleted, with its versions, routes and history"), Failure))]
pub async fn delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    delete_module(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a module with its versions, routes, history and unshared bytes.
pub(crate) async fn delete_module(state: &AppState, caller: &Caller, id: &str) -> Result<(), ApiError> {
    let module = find(state, caller, id, Op::Delete).await?;
    let orphaned = state.db.delete_module(&Actor::from(&caller.user), &module.id).await?;
    // Its routes went with it.
    for sha in orphaned {
        state.artifacts.delete(&sha).await?;
    }
    tracing::info!(module = %module.id, name = %module.name, "module deleted");
    Ok(())
}
