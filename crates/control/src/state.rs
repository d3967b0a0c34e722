//! What every handler shares: the database, the artifact store, the runtime, the recorder.

use std::sync::Arc;

use edgefn_runtime::Runtime;
use edgefn_store::{Artifacts, Database};

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
    /// Bumped whenever the set of routes changes; nodes in this process follow it.
    pub routes: tokio::sync::watch::Sender<u64>,
}

impl AppState {
    /// Tells route followers to reload.
    pub fn routes_changed(&self) {
        self.routes.send_modify(|v| *v += 1);
    }
}
