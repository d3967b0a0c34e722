//! The edgefn sandbox: everything that touches wasmtime, and nothing that touches a
//! socket or a database.
//!
//! [`Runtime`] validates and inspects uploaded modules ([`Runtime::prepare`]), keeps
//! compiled code in a two-level cache (memory LRU, then precompiled files on disk keyed
//! by SHA-256 and the engine's compatibility hash), and runs exported functions with
//! JSON arguments under a wall-clock timeout and a memory cap ([`Runtime::invoke`]).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use edgefn_runtime::{InvokeRequest, Runtime, RuntimeConfig};
//! let runtime = Runtime::new(RuntimeConfig::default())?;
//! let wasm = std::fs::read("add.wasm")?;
//! let prepared = runtime.prepare(&wasm).await?;
//! let loaded = runtime.load(&prepared.sha256, || async { Ok(wasm.clone()) }).await?;
//! let out = runtime
//!     .invoke(&loaded.module, InvokeRequest::new("add", serde_json::json!([1, 2])))
//!     .await?;
//! assert_eq!(out.result, serde_json::json!(3));
//! # Ok(()) }
//! ```

mod cache;
mod classes;
mod compile_worker;
mod component_host;
mod component_json;
mod config;
mod core_abi;
mod error;
mod guest_log;
mod guest_output;
mod host;
mod http_abi;
mod inspect;
mod invoke;
mod lanes;
mod limits;
mod pool;
mod runtime;
mod wasi_http;

pub use classes::{ClassLimits, Classes, ClassesFile, DEFAULT_MAX_BODY_BYTES};
pub use compile_worker::serve_compile_worker;
pub use component_json::{json_to_val, type_name, val_to_json};
pub use config::RuntimeConfig;
pub use error::{InvokeError, PrepareError};
pub use guest_log::GuestLog;
pub use host::{CallContext, FetchRequest, Grants, HOST_FUNCTIONS, HostFuture, HostServices, LogLevel, host_allowed};
pub use http_abi::{DEFAULT_RESPONSE_CAP, HttpError, HttpLimits, HttpRequest, HttpResponse, host_owned_header, parse_response};
pub use inspect::{ExportedFunction, ModuleInfo, ModuleKind, Param};
pub use invoke::{InvokeOutput, InvokeRequest, ResultEncoding, wasi_env};
pub use lanes::LaneCounts;
pub use pool::{
    DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_INSTANCES, DEFAULT_MAX_QUEUE, DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_MIN_INSTANCES, Lease, Pool,
    PoolSettings, PoolStats, Pools, Saturated,
};
pub use runtime::{Compiled, HttpEntryPre, Loaded, Prepared, Runtime};
pub use wasi_http::HttpBody;
