//! Control-plane settings with named defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// The API listens on loopback by default: exposing it is a deliberate choice.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Data lives beside the working directory, like `.git`.
pub const DEFAULT_DATA_DIR: &str = ".edgefn";
/// Executions kept per module: enough for meaningful percentiles, bounded disk use.
pub const DEFAULT_EXECUTION_RETENTION: i64 = 10_000;
/// Input and output kept per execution; larger values are cut with a marker.
pub const DEFAULT_MAX_RECORDED_BYTES: usize = 4096;
/// Timeout of a new module: the seeds' limit for user modules.
pub const DEFAULT_MODULE_TIMEOUT_MS: i64 = 10_000;
/// Memory cap of a new module: 800 pages = 50 MiB, the seeds' user limit.
pub const DEFAULT_MODULE_MAX_MEMORY_PAGES: i64 = 800;
/// Longest timeout a module may be given.
pub const MAX_MODULE_TIMEOUT_MS: i64 = 600_000;

/// Settings of the control plane.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Address of the REST API.
    pub listen: SocketAddr,
    /// Database, artifacts, compiled cache and the admin token live here.
    pub data_dir: PathBuf,
    /// Largest module accepted.
    pub max_module_bytes: usize,
    /// Instances (ready or running) the process may hold at once: the pooling allocator's
    /// slots.
    pub instance_slots: u32,
    /// Longest an upload's compilation may take.
    pub compile_timeout: std::time::Duration,
    /// The executable to compile in (`edgefn compile-worker`); `None` compiles on a thread.
    pub compile_worker: Option<PathBuf>,
    /// Executions kept per module.
    pub execution_retention: i64,
    /// Sandbox limits per module class.
    pub classes: edgefn_runtime::Classes,
    /// JWT bearer tokens from an identity provider, when configured.
    pub jwt: Option<crate::jwt::JwtConfig>,
    /// Domains users claim hosts under (`apps.example.com`: `NAME.apps.example.com`).
    pub user_host_suffixes: Vec<String>,
    /// Names the platform is reached by (beside the edge URL and the nodes' names), each
    /// with what it is: no user claims them.
    pub reserved_hosts: Vec<(String, String)>,
    /// The name server host challenges are looked up through; `None`: the system's.
    pub dns_resolver: Option<SocketAddr>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            max_module_bytes: edgefn_runtime::RuntimeConfig::default().max_module_bytes,
            instance_slots: edgefn_runtime::RuntimeConfig::default().max_concurrent_instances,
            compile_timeout: edgefn_runtime::RuntimeConfig::default().compile_timeout,
            compile_worker: None,
            execution_retention: DEFAULT_EXECUTION_RETENTION,
            classes: edgefn_runtime::Classes::default(),
            jwt: None,
            user_host_suffixes: Vec::new(),
            reserved_hosts: Vec::new(),
            dns_resolver: None,
        }
    }
}

/// The settings handlers read.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest module accepted.
    pub max_module_bytes: usize,
    /// Input/output kept per execution.
    pub max_recorded_bytes: usize,
    /// Sandbox limits per module class.
    pub classes: edgefn_runtime::Classes,
    /// The JWT verifier, when configured.
    pub jwt: Option<Arc<crate::jwt::Jwt>>,
    /// Which named hosts users may claim.
    pub hosts: crate::hosts::HostRules,
}
