//! One file per subcommand, each with `execute(self)`.

pub mod build;
pub mod build_worker;
pub mod certs;
pub mod compile_worker;
pub mod control;
pub mod history;
pub mod identity;
pub mod invoke;
pub mod module;
pub mod node;
pub mod project;
pub mod route;
pub mod sandbox_relay;
pub mod up;

/// Connection limits of every listener a command serves (`edgefn_serve::Limits`).
#[derive(clap::Args, Debug)]
pub(crate) struct ConnectionArgs {
    /// Connections each listener serves at once; more are answered 503 [default: 10000,
    /// or a quarter of the process's open-file limit if lower].
    #[arg(long, env = "EDGEFN_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Milliseconds a client has to send a request head.
    #[arg(long, env = "EDGEFN_HEADER_READ_TIMEOUT_MS", default_value_t = edgefn_serve::Limits::default().header_read_timeout.as_millis() as u64)]
    header_read_timeout_ms: u64,
    /// Milliseconds a request body may take to arrive (408 after).
    #[arg(long, env = "EDGEFN_BODY_READ_TIMEOUT_MS", default_value_t = edgefn_serve::Limits::default().body_read_timeout.as_millis() as u64)]
    body_read_timeout_ms: u64,
    /// Milliseconds a connection may stay open with no request running.
    #[arg(long, env = "EDGEFN_IDLE_CONNECTION_TIMEOUT_MS", default_value_t = edgefn_serve::Limits::default().idle_timeout.as_millis() as u64)]
    idle_connection_timeout_ms: u64,
    /// Least bytes a second a client must take while a response waits on it, averaged
    /// over `--send-window-ms`; a slower reader is disconnected (0: no minimum).
    #[arg(long, env = "EDGEFN_MIN_SEND_RATE", default_value_t = edgefn_serve::Limits::default().min_send_rate)]
    min_send_rate: u64,
    /// The window the send rate is measured over, in milliseconds.
    #[arg(long, env = "EDGEFN_SEND_WINDOW_MS", default_value_t = edgefn_serve::Limits::default().send_window.as_millis() as u64)]
    send_window_ms: u64,
}

impl ConnectionArgs {
    /// The limits, after raising the open-file limit as far as the system allows: the
    /// default connection limit leaves descriptors for three listeners and their files.
    pub(crate) fn limits(&self) -> edgefn_serve::Limits {
        let open_files = edgefn_serve::raise_open_files_limit();
        let fitting = usize::try_from(open_files / 4).unwrap_or(usize::MAX).max(1);
        let defaults = edgefn_serve::Limits::default();
        let ms = std::time::Duration::from_millis;
        edgefn_serve::Limits {
            max_connections: self.max_connections.unwrap_or(defaults.max_connections.min(fitting)).max(1),
            header_read_timeout: ms(self.header_read_timeout_ms.max(1)),
            body_read_timeout: ms(self.body_read_timeout_ms.max(1)),
            idle_timeout: ms(self.idle_connection_timeout_ms.max(1)),
            min_send_rate: self.min_send_rate,
            send_window: ms(self.send_window_ms.max(1)),
            ..defaults
        }
    }
}

/// A listener on `addr`, or an error naming it.
pub(crate) async fn bind(addr: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    use anyhow::Context;
    tokio::net::TcpListener::bind(addr).await.with_context(|| format!("listening on {addr}"))
}

/// Logs to stderr, as text or JSON lines, filtered by `EDGEFN_LOG` (default `info`).
pub(crate) fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EDGEFN_LOG").unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    if json { logs.json().init() } else { logs.init() }
}

/// Ends when `stopped` turns true (or its sender is dropped): the shutdown signal each
/// server of a command is given.
pub(crate) async fn until_stopped(mut stopped: tokio::sync::watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}
