//! Builds from source (`/api/v1/builds`): a user sends a project as a gzipped tar and
//! gets a module version made from it by a build worker (`edgefn build-worker`).
//!
//! The archive is checked ([`crate::archive`]) and the upload it will become is checked
//! ([`modules::plan`]) before it is queued, so a refused build stores nothing. Workers
//! are admins: they take the oldest queued build (`claim`, waiting for one), read its
//! source, append to its log, and end it with the artifact — made into a version by
//! the same code as an upload, for the user who sent the source — or with a failure.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use edgefn_store::{Build, BuildEnd, BuildStatus, NewBuild, Toolchain};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use crate::access::Caller;
use crate::archive;
use crate::body::{JsonBody, QueryParams, read_upload};
use crate::error::ApiError;
use crate::modules::{self, Upload};
use crate::openapi::{Failure, WasmBytes};
use crate::state::AppState;

/// Largest source archive (gzipped) a build takes.
pub const MAX_ARCHIVE_BYTES: usize = 32 * 1024 * 1024;
/// Longest a worker may wait in one `claim`.
const MAX_CLAIM_WAIT_SECONDS: u64 = 60;
/// A build running this long was lost by its worker (workers stop builds long before).
const LOST_AFTER: Duration = Duration::from_secs(2 * 3600);
/// Most builds a list shows.
const LIST_LIMIT: i64 = 100;

/// Query of a build request.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct BuildQuery {
    /// Module name (required).
    name: Option<String>,
    /// Version label to make (default `1.0.0`).
    version: Option<String>,
    /// Description; replaces the module's.
    description: Option<String>,
    /// Class of a new module: `system`, `admin` (admins only) or `user`.
    owner_type: Option<String>,
    /// Project (id or name) of a new module; default the caller's personal project.
    project: Option<String>,
    /// `rust`, `js` or `assemblyscript`; default chosen from the project's files.
    toolchain: Option<String>,
}

/// Source archive bytes (`application/gzip`, a gzipped tar).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[expect(dead_code, reason = "a schema of the document only; the body is read as bytes")]
pub struct ArchiveBytes(Vec<u8>);

/// `POST /api/v1/builds?name=&version=&toolchain=` with the project as a gzipped tar.
#[utoipa::path(post, path = "/api/v1/builds", tag = "builds", params(BuildQuery),
    request_body(content((ArchiveBytes = "application/gzip"), (ArchiveBytes = "multipart/form-data")), description = "The project's directory as a gzipped tar, its files at the root: the raw bytes, or a multipart form with a `file` field"),
    responses((status = 202, description = "Queued", body = Build), Failure))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<BuildQuery>,
    req: Request,
) -> Result<(StatusCode, Json<Build>), ApiError> {
    let name = query.name.ok_or_else(|| ApiError::bad_request("missing module name (`name`)"))?;
    let upload = Upload {
        name,
        version: query.version.unwrap_or_else(|| "1.0.0".into()),
        description: query.description,
        owner_type: query.owner_type,
        project: query.project,
        timeout_ms: None,
    };
    let archive = read_upload(req, MAX_ARCHIVE_BYTES).await?.bytes;
    let build = queue(&state, &caller, upload, query.toolchain.as_deref(), archive).await?;
    Ok((StatusCode::ACCEPTED, Json(build)))
}

/// Queues a build of `archive` making the version `upload` names, after checking both as
/// the API does: what the console's form and `POST /api/v1/builds` share.
pub(crate) async fn queue(
    state: &AppState,
    caller: &Caller,
    upload: Upload,
    toolchain: Option<&str>,
    archive: Vec<u8>,
) -> Result<Build, ApiError> {
    let asked = match toolchain.filter(|t| !t.is_empty()) {
        Some(name) => Some(Toolchain::parse(name).ok_or_else(|| {
            let names: Vec<_> = Toolchain::ALL.iter().map(|t| t.as_str()).collect();
            ApiError::bad_request(format!("toolchain `{name}` is not one of {}", names.join(", ")))
        })?),
        None => None,
    };
    let planned = modules::plan(state, caller, upload.clone()).await?;
    let listing = archive::check(&archive).map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, "bad_archive", why))?;
    let toolchain = archive::toolchain(&listing.root, asked).map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, "bad_archive", why))?;
    if state.db.build_pending(planned.project_id(), &upload.name, &upload.version).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("a build of {} {} is already queued or running", upload.name, upload.version),
        ));
    }
    let build = state
        .db
        .add_build(&NewBuild {
            owner_id: caller.user.id.clone(),
            project_id: planned.project_id().to_string(),
            name: upload.name,
            version: upload.version,
            description: upload.description,
            owner_type: upload.owner_type,
            toolchain,
            archive_sha256: hex::encode(Sha256::digest(&archive)),
            archive,
        })
        .await?;
    state.builds_queued.notify_waiters();
    tracing::info!(build = %build.id, name = %build.name, version = %build.version, toolchain = toolchain.as_str(), "build queued");
    Ok(build)
}

/// Builds listed.
#[derive(Serialize, ToSchema)]
pub struct BuildList {
    /// Newest first: the caller's, or everyone's for an admin.
    builds: Vec<Build>,
}

/// `GET /api/v1/builds`: the newest builds.
#[utoipa::path(get, path = "/api/v1/builds", tag = "builds", responses((status = 200, body = BuildList), Failure))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<BuildList>, ApiError> {
    Ok(Json(BuildList { builds: newest(&state, &caller).await? }))
}

/// The newest builds the caller may see: its own, or everyone's for an admin.
pub(crate) async fn newest(state: &AppState, caller: &Caller) -> Result<Vec<Build>, ApiError> {
    let owner = (!caller.user.is_admin()).then_some(caller.user.id.as_str());
    Ok(state.db.builds(owner, LIST_LIMIT).await?)
}

/// The build `id` if the caller may see it (its sender or an admin).
pub(crate) async fn visible(state: &AppState, caller: &Caller, id: &str) -> Result<Build, ApiError> {
    let build = state.db.build(id).await?;
    if build.owner_id != caller.user.id && !caller.user.is_admin() {
        return Err(ApiError::not_found(format!("build {id} not found")));
    }
    Ok(build)
}

/// `GET /api/v1/builds/{id}`.
#[utoipa::path(get, path = "/api/v1/builds/{id}", tag = "builds", params(("id" = String, Path, description = "Build id")),
    responses((status = 200, body = Build), Failure))]
pub async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Build>, ApiError> {
    Ok(Json(visible(&state, &caller, &id).await?))
}

/// Where to read a log from.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LogQuery {
    /// The chunk number read last (`next` of the previous answer); default 0, the start.
    after: Option<i64>,
}

/// A piece of a build's log.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuildLog {
    /// The build's status when the text was read: once it is `succeeded` or `failed`,
    /// no more text comes.
    status: BuildStatus,
    /// Log text after `after`.
    text: String,
    /// Pass as `after` to read on.
    next: i64,
    /// Why it failed.
    error: Option<String>,
}

/// `GET /api/v1/builds/{id}/log?after=N`: the log after chunk N, and the status.
#[utoipa::path(get, path = "/api/v1/builds/{id}/log", tag = "builds", params(("id" = String, Path, description = "Build id"), LogQuery),
    responses((status = 200, body = BuildLog), Failure))]
pub async fn log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<LogQuery>,
) -> Result<Json<BuildLog>, ApiError> {
    // The status first: text written before a build ended is all read with its end.
    let build = visible(&state, &caller, &id).await?;
    let after = query.after.unwrap_or(0).max(0);
    let chunks = state.db.build_log(&id, after).await?;
    let next = chunks.last().map_or(after, |(seq, _)| *seq);
    let text = chunks.into_iter().map(|(_, chunk)| chunk).collect();
    Ok(Json(BuildLog { status: build.status, text, next, error: build.error }))
}

/// Who is claiming.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct ClaimQuery {
    /// The worker's name (shown on the build).
    worker: String,
    /// Seconds to wait for a build when none is queued (0–60, default 0).
    wait_seconds: Option<u64>,
}

/// `POST /api/v1/builds/claim?worker=&waitSeconds=` (admins: build workers): the oldest
/// queued build, now running for this worker; 204 when none came within the wait. The
/// builds this worker had running are failed first: it does one at a time, so they were
/// lost when it stopped.
#[utoipa::path(post, path = "/api/v1/builds/claim", tag = "builds", params(ClaimQuery),
    responses((status = 200, description = "A build to do", body = Build), (status = 204, description = "No build is queued"), Failure))]
pub async fn claim(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ClaimQuery>,
) -> Result<axum::response::Response, ApiError> {
    caller.require_admin("run build workers")?;
    modules::check_label("worker", &query.worker)?;
    let lost_before = edgefn_store::now_ms() - LOST_AFTER.as_millis() as i64;
    let lost = state.db.fail_lost_builds(&query.worker, lost_before, "the build worker stopped before the build ended").await?;
    if lost > 0 {
        tracing::warn!(lost, worker = %query.worker, "failed builds their worker lost");
    }
    let wait = Duration::from_secs(query.wait_seconds.unwrap_or(0).min(MAX_CLAIM_WAIT_SECONDS));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let queued = state.builds_queued.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        if let Some(build) = state.db.claim_build(&query.worker).await? {
            tracing::info!(build = %build.id, worker = %query.worker, "build started");
            return Ok(Json(build).into_response());
        }
        if state.stopping.load(std::sync::atomic::Ordering::SeqCst) || tokio::time::timeout_at(deadline, queued).await.is_err() {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    }
}

/// The build `id`, running: what a worker may act on.
async fn running(state: &AppState, caller: &Caller, id: &str) -> Result<Build, ApiError> {
    caller.require_admin("run build workers")?;
    let build = state.db.build(id).await?;
    if build.status != BuildStatus::Running {
        return Err(ApiError::new(StatusCode::CONFLICT, "conflict", format!("build {id} is {}, not running", build.status.as_str())));
    }
    Ok(build)
}

/// `GET /api/v1/builds/{id}/source` (build workers): the running build's archive.
#[utoipa::path(get, path = "/api/v1/builds/{id}/source", tag = "builds", params(("id" = String, Path, description = "Build id")),
    responses((status = 200, description = "The source archive", content_type = "application/gzip", body = ArchiveBytes), Failure))]
pub async fn source(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    running(&state, &caller, &id).await?;
    Ok(([(CONTENT_TYPE, "application/gzip")], state.db.build_archive(&id).await?))
}

/// `POST /api/v1/builds/{id}/log` (build workers): appends the body (text) to the log.
#[utoipa::path(post, path = "/api/v1/builds/{id}/log", tag = "builds", params(("id" = String, Path, description = "Build id")),
    request_body(content = String, content_type = "text/plain"), responses((status = 204, description = "Appended"), Failure))]
pub async fn append_log(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    text: Bytes,
) -> Result<StatusCode, ApiError> {
    running(&state, &caller, &id).await?;
    state.db.append_build_log(&id, &String::from_utf8_lossy(&text)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/builds/{id}/artifact` (build workers): the built module. It becomes a
/// version as an upload by the build's sender would; a refused module fails the build
/// with the reason. Answers the ended build.
#[utoipa::path(post, path = "/api/v1/builds/{id}/artifact", tag = "builds", params(("id" = String, Path, description = "Build id")),
    request_body(content((WasmBytes = "application/wasm"), (WasmBytes = "multipart/form-data")), description = "The module the build made: the raw bytes, or a multipart form with a `file` field"),
    responses((status = 200, description = "The build, ended", body = Build), Failure))]
pub async fn artifact(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> Result<Json<Build>, ApiError> {
    let build = running(&state, &caller, &id).await?;
    let bytes = match read_upload(req, state.settings.max_module_bytes).await {
        Ok(upload) => upload.bytes,
        Err(e) => return end(&state, &build, BuildEnd::Failed { error: format!("the built module was refused: {}", e.message()) }).await,
    };
    let made = async {
        let owner = state.db.user(&build.owner_id).await?;
        // Whoever queued the build must still be able to upload when it ends.
        if owner.disabled {
            return Err(ApiError::forbidden(format!("its sender {} was disabled while it ran", owner.name)));
        }
        let sender = Caller { roles: state.db.memberships(&owner.id).await?, user: owner };
        let upload = Upload {
            name: build.name.clone(),
            version: build.version.clone(),
            description: build.description.clone(),
            owner_type: build.owner_type.clone(),
            project: Some(build.project_id.clone()),
            timeout_ms: None,
        };
        let planned = modules::plan(&state, &sender, upload).await?;
        modules::store_version(&state, &sender, planned, bytes).await
    }
    .await;
    let ended = match made {
        Ok((module, _)) => BuildEnd::Succeeded { module_id: module.id },
        Err(e) => BuildEnd::Failed { error: format!("the built module was refused: {}", e.message()) },
    };
    end(&state, &build, ended).await
}

/// Why a build failed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Failed {
    /// For people: the compiler's last words, the limit it passed…
    error: String,
}

/// `POST /api/v1/builds/{id}/failure` (build workers): ends the build as failed.
#[utoipa::path(post, path = "/api/v1/builds/{id}/failure", tag = "builds", params(("id" = String, Path, description = "Build id")),
    request_body = Failed, responses((status = 200, description = "The build, ended", body = Build), Failure))]
pub async fn failure(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(failed): JsonBody<Failed>,
) -> Result<Json<Build>, ApiError> {
    let build = running(&state, &caller, &id).await?;
    end(&state, &build, BuildEnd::Failed { error: failed.error }).await
}

async fn end(state: &AppState, build: &Build, end: BuildEnd) -> Result<Json<Build>, ApiError> {
    let ended = state.db.finish_build(&build.id, &end).await?;
    match &ended.error {
        Some(error) => tracing::info!(build = %ended.id, error = %error, "build failed"),
        None => tracing::info!(build = %ended.id, name = %ended.name, version = %ended.version, "build made a module version"),
    }
    Ok(Json(ended))
}
