//! The edgefn control plane: the REST API over the module registry, invoke and history,
//! and the admin web UI over the same functions.
//!
//! [`open`] prepares the data directory (database with migrations, artifacts, compiled
//! cache, first admin token); [`app`] is the axum router, callable without a socket in
//! tests; [`serve`] runs it on a listener until shutdown.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = edgefn_control::ControlConfig::default();
//! let opened = edgefn_control::open(&config).await?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! edgefn_control::serve(listener, opened.state, edgefn_serve::Limits::default(), std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod access;
pub mod archive;
mod audit;
mod auth;
mod body;
mod builds;
mod bundled;
mod challenges;
mod claims;
mod config;
mod error;
mod executions;
mod hosts;
mod identity;
mod invoke;
mod jwt;
mod modules;
pub mod nodes;
mod openapi;
mod projects;
mod recorder;
mod routes;
mod state;
mod ui;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use edgefn_runtime::{Runtime, RuntimeConfig};
use edgefn_store::{Artifacts, Database};

pub use builds::MAX_ARCHIVE_BYTES;
pub use config::{ApiSettings, ControlConfig, DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_MAX_RECORDED_BYTES};
pub use error::ApiError;
pub use jwt::JwtConfig;
pub use recorder::Recorder;
pub use state::AppState;

pub use openapi::document as openapi_document;

/// File in the data directory holding the audit log's head (`<seq> <hash>`), written after
/// every audited change, so `audit verify` notices entries deleted from the end.
pub const AUDIT_WITNESS_FILE: &str = "audit-head";

/// File in the data directory holding the first admin token (mode 0600).
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// A prepared control plane.
pub struct Opened {
    /// State for [`app`].
    pub state: AppState,
    /// The first admin's token, when it was created by this call (print it once).
    pub new_admin_token: Option<String>,
}

/// Opens the data directory: database (migrated), artifacts (unreferenced ones removed),
/// compiled-module cache, and the first admin with a token on first start.
pub async fn open(config: &ControlConfig) -> anyhow::Result<Opened> {
    let ControlConfig {
        listen: _,
        data_dir,
        max_module_bytes,
        instance_slots,
        compile_timeout,
        compile_worker,
        execution_retention,
        classes,
        jwt,
        user_host_suffixes,
        reserved_hosts,
        dns_resolver,
    } = config;
    let jwt = jwt.clone().map(jwt::Jwt::new).transpose()?.map(Arc::new);
    let hosts = hosts::HostRules::new(user_host_suffixes, reserved_hosts.clone())?;
    let dns = challenges::Dns::new(*dns_resolver);
    let runtime = RuntimeConfig {
        max_module_bytes: *max_module_bytes,
        max_concurrent_instances: *instance_slots,
        compile_timeout: *compile_timeout,
        compile_worker: compile_worker.clone(),
        ..RuntimeConfig::default()
    };
    let (db, artifacts, runtime) = open_storage(data_dir, runtime).await?;
    let removed = artifacts.collect_garbage(&db.referenced_digests().await?).await?;
    if removed > 0 {
        tracing::info!(removed, "removed artifacts left by interrupted uploads");
    }

    let mut new_token = None;
    let (admin, created) = db
        .ensure_admin(|| {
            let token = auth::new_token();
            let hash = auth::hash_token(&token);
            new_token = Some(token);
            hash
        })
        .await?;
    let new_admin_token = if created {
        let token = new_token.expect("token made when the admin was created");
        write_secret(&data_dir.join(ADMIN_TOKEN_FILE), &token)?;
        Some(token)
    } else {
        None
    };

    let recorder = Recorder::start(db.clone(), *execution_retention);
    let settings = Arc::new(ApiSettings {
        max_module_bytes: *max_module_bytes,
        max_recorded_bytes: DEFAULT_MAX_RECORDED_BYTES,
        classes: *classes,
        jwt,
        hosts,
    });
    let compiles = Arc::new(state::CompileGate::new(runtime.config().max_concurrent_compiles));
    let hub = nodes::Hub::start(db.clone(), artifacts.clone()).await?;
    let state = AppState {
        db,
        artifacts,
        runtime,
        recorder,
        settings,
        hub,
        compiles,
        edge_url: Arc::default(),
        uploads: Arc::default(),
        builds_queued: Arc::default(),
        dns,
        stopping: Arc::default(),
    };
    claims::backfill(&state).await.map_err(|e| anyhow::anyhow!("claiming the space of older routes: {}", e.message()))?;
    let admin = access::Caller { roles: state.db.memberships(&admin.id).await?, user: admin };
    if created && let Err(e) = bundled::deploy(&state, &admin).await {
        tracing::warn!(error = e.message(), "could not deploy the bundled examples; continuing without them");
    }
    state.hub.catch_up().await?;
    Ok(Opened { state, new_admin_token })
}

/// The database, artifact store and a runtime of `runtime`'s settings with its compiled
/// cache under `data_dir`, created if missing: what `edgefn up` and a standalone
/// `edgefn node` share.
pub async fn open_storage(data_dir: &std::path::Path, runtime: RuntimeConfig) -> anyhow::Result<(Database, Artifacts, Runtime)> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let db_path = data_dir.join("edgefn.db");
    let db = Database::open(&format!("sqlite://{}", db_path.display())).await.context("opening the database")?;
    let db = db.witness_audit_head(data_dir.join(AUDIT_WITNESS_FILE)).await.context("opening the audit witness")?;
    let artifacts = Artifacts::local(&data_dir.join("artifacts")).context("opening the artifact store")?;
    let runtime = Runtime::new(RuntimeConfig { cache_dir: Some(data_dir.join("cache")), ..runtime })?;
    Ok((db, artifacts, runtime))
}

/// Writes a file only its owner can read.
fn write_secret(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{content}")?;
    Ok(())
}

/// Holds the claims the host and path rules refuse, now that the state knows how the
/// edge is reached (its URL is set after [`open`]); answers how many.
pub async fn review_claims(state: &AppState) -> anyhow::Result<usize> {
    claims::review(state).await.map_err(|e| anyhow::anyhow!("reviewing claims: {}", e.message()))
}

/// The REST API and the web UI.
pub fn app(state: AppState) -> Router {
    let (api, _) = openapi::api_routes().split_for_parts();
    let api = api.route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_user));
    let (public, _) = openapi::public_routes().split_for_parts();
    Router::new()
        .merge(api)
        .merge(public)
        .merge(ui::router())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this endpoint")
        })
        // Uploads enforce their own limit (413 in our format); lift axum's default of 2 MB.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(ui::not_framed))
        .with_state(state)
}

/// Serves the API on `listener`, within `limits`, until `shutdown` completes, then drains
/// open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: edgefn_serve::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let recorder = state.recorder.clone();
    let (stopping, queued) = (state.stopping.clone(), state.builds_queued.clone());
    let shutdown = async move {
        shutdown.await;
        stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        queued.notify_waiters();
    };
    let service = hyper_util::service::TowerToHyperService::new(app(state));
    edgefn_serve::serve(listener, limits, move |_| service.clone(), shutdown).await?;
    recorder.flush().await;
    Ok(())
}
