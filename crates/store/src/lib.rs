//! Where edgefn keeps things: metadata in SQL (sqlx, SQLite by default) with versioned
//! migrations, and module bytes in an artifact store (object_store, a local directory by
//! default) addressed by SHA-256.
//!
//! Writes that belong together happen in one transaction, and artifacts are written
//! before the rows that reference them, so a crash at any moment leaves either a whole
//! module or nothing; [`Artifacts::collect_garbage`] removes bytes no row references.
//!
//! ```no_run
//! # async fn demo() -> Result<(), edgefn_store::StoreError> {
//! let db = edgefn_store::Database::open("sqlite://.edgefn/edgefn.db").await?;
//! let modules = db.list_modules(&edgefn_store::ModuleFilter::default()).await?;
//! # Ok(()) }
//! ```

mod artifacts;
mod audit;
mod builds;
mod challenges;
mod claims;
mod database;
mod env;
mod error;
mod identity;
mod models;
mod nodes;
mod time;

pub use artifacts::Artifacts;
pub use audit::{AuditVerdict, BadEntry};
pub use builds::{Build, BuildEnd, BuildStatus, MAX_BUILD_LOG_BYTES, NewBuild, Toolchain};
pub use challenges::HostChallenge;
pub use claims::{RouteClaim, RouteSpace};
pub use database::{Database, Resolved};
pub use env::Env;
pub use error::StoreError;
pub use models::{
    Actor, ApiToken, AuditEntry, AuditFilter, Execution, ExecutionStats, Member, Module, ModuleFilter, ModulePatch, ModuleVersion,
    NewExecution, NewModule, NewRoute, NewVersion, Project, Route, TokenOwner, User,
};
pub use nodes::{Changed, ChangedModule, LegacyKv, NodeRow, NodeSeen, Routed, TrafficRow, TrafficTotals};
pub use time::now_ms;
