//! Errors a caller of the runtime can cause, with the context needed to explain them.

/// Why an uploaded module was refused.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The module is larger than the configured limit (HTTP 413).
    #[error("module is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the upload.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// The bytes are not a valid WebAssembly module or component (HTTP 400).
    #[error("invalid WebAssembly: {0}")]
    Invalid(String),
    /// The module imports something this platform does not provide (HTTP 400).
    #[error("module imports {import}, which is not available to functions on this platform")]
    DisallowedImport {
        /// The import, as `module::name` (core) or its WIT name (component).
        import: String,
    },
    /// As many compilations as the server runs at once are running, and none ended within
    /// the compile timeout (HTTP 429: try again later).
    #[error("the server is compiling as many modules as it can ({running} at once); try again shortly")]
    CompilerBusy {
        /// Compilations the server runs at once.
        running: usize,
    },
    /// Compilation did not finish in time (HTTP 400).
    #[error("compilation took longer than {limit:?}")]
    CompileTimeout {
        /// The compile timeout.
        limit: std::time::Duration,
    },
    /// A fault of the platform itself, not of the module (HTTP 500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// No exported function has this name (HTTP 400).
    #[error("no exported function named `{name}`; exports: {available}")]
    UnknownFunction {
        /// The requested name.
        name: String,
        /// The signatures of every exported function.
        available: String,
    },
    /// Arguments do not fit the function's parameters (HTTP 400).
    #[error("{message}; expected {signature}")]
    BadArguments {
        /// What is wrong.
        message: String,
        /// The function's real signature.
        signature: String,
    },
    /// The call ran past its deadline and was stopped (HTTP 504).
    #[error("execution exceeded the timeout of {timeout_ms} ms")]
    Timeout {
        /// The timeout that applied.
        timeout_ms: u64,
    },
    /// The guest trapped, ran out of memory or stack (HTTP 500).
    #[error("{0}")]
    Trap(String),
    /// Every instance slot of the engine is running a call (HTTP 503: try again shortly).
    #[error("the server is running as many instances as it can ({0}); try again shortly")]
    Busy(String),
    /// The result could not be turned into JSON as asked (HTTP 500: the guest broke the ABI).
    #[error("bad result: {0}")]
    BadResult(String),
    /// A fault of the platform itself (HTTP 500).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}
