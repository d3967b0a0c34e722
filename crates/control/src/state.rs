//! What every handler shares: the database, the artifact store, the runtime, the recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::StatusCode;

use edgefn_runtime::Runtime;
use edgefn_store::{Artifacts, Database};

use crate::error::ApiError;
use crate::recorder::Recorder;

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Metadata.
    pub db: Database,
    /// Module bytes.
    pub artifacts: Artifacts,
    /// The sandbox.
    pub runtime: Runtime,
    /// Execution history writer.
    pub recorder: Recorder,
    /// Limits and defaults.
    pub settings: Arc<crate::config::ApiSettings>,
    /// The node stream's hub: what nodes run, and who is connected.
    pub hub: Arc<crate::nodes::Hub>,
    /// Compilations running per user.
    pub compiles: Arc<CompileGate>,
    /// The base URL of an edge node serving this control plane's routes (`edgefn up`'s
    /// own node, or `edgefn control --edge-url`): the console's links and test requests.
    pub edge_url: Arc<std::sync::OnceLock<String>>,
    /// Files of console uploads refused for something other than the file, kept for the
    /// corrected form.
    pub uploads: Arc<crate::ui::UploadStash>,
    /// Woken when a build is queued: build workers waiting in `claim` look again.
    pub builds_queued: Arc<tokio::sync::Notify>,
    /// Where host challenges' TXT records are looked up.
    pub dns: crate::challenges::Dns,
    /// Set when the server stops: build workers waiting in `claim` are answered at once,
    /// so they do not hold the drain up.
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// How many uploads each user has compiling: one user may compile at most half of what
/// the server compiles at once (at least one), so one tenant's uploads cannot take every
/// turn; one more is answered 429 with `Retry-After`.
#[derive(Debug)]
pub struct CompileGate {
    per_user: usize,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

/// A user's turn to compile, given back when dropped.
pub struct CompileTurn {
    user: String,
    running: Arc<Mutex<HashMap<String, usize>>>,
}

impl CompileGate {
    /// A gate for a server that runs `total` compilations at once.
    pub fn new(total: usize) -> Self {
        Self { per_user: (total / 2).max(1), running: Arc::default() }
    }

    /// A turn for `user`, or a 429 when it has as many compiling as it may.
    pub fn enter(&self, user: &str) -> Result<CompileTurn, ApiError> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = running.entry(user.to_string()).or_default();
        if *mine >= self.per_user {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_compiles",
                format!("you have {mine} upload(s) compiling, the most one user may; try again when they are done"),
            )
            .retry_after(2));
        }
        *mine += 1;
        Ok(CompileTurn { user: user.to_string(), running: self.running.clone() })
    }
}

impl Drop for CompileTurn {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = running.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.user);
            }
        }
    }
}
