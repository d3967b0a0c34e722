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
}
