//! The control plane's side of the edge: what nodes should run ([`world`]), the node
//! stream that tells them ([`stream`]) and where it is served ([`serve`]), mTLS
//! ([`tls`]), and the node registry's API ([`api`]).

pub mod api;
pub mod report;
pub mod serve;
pub mod stream;
pub mod tls;
pub mod world;

pub use serve::{in_process_channel, serve_nodes};
pub use stream::{Hub, Identity, NodeService};
pub use tls::CertFiles;
