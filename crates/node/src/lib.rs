//! The edgefn edge node: runs what the control plane says, from its own disk, and keeps
//! doing so when the control plane is gone.
//!
//! - [`Node`] holds the applied [`Snapshot`] (functions, versions, routes) and answers
//!   HTTP with it (`ingress`); it never reads the control plane's database.
//! - `sync` is the node stream client: `Hello` with the applied revision, then `Delta`s
//!   applied make-before-break (`apply`: artifacts fetched, verified and compiled before
//!   a route to them goes live), `Ack`/`Nack` per delivery, and a `Report` every few
//!   seconds (`traffic`).
//! - `cache` keeps artifacts on disk by digest, `persist` the applied snapshot, and `kv`
//!   functions' key-value data, so a restarted node serves before it talks to anyone.

mod apply;
mod body;
mod cache;
mod ingress;
mod kv;
mod metrics;
mod persist;
mod services;
mod sync;
mod traffic;

pub use apply::ArtifactSource;
pub use cache::{DEFAULT_CACHE_BYTES, DEFAULT_CACHE_ENTRIES};
pub use edgefn_model::Snapshot;
pub use ingress::{DEFAULT_REPORT_EVERY, Node, NodeConfig};
pub use kv::{KV_FILE, KvStore, LocalKv};
pub use persist::STATE_FILE;
pub use sync::{AGENT_VERSION, Backoff, channel};
