//! One file per subcommand, each with `execute(self)`.

pub mod history;
pub mod identity;
pub mod invoke;
pub mod module;
pub mod node;
pub mod route;
pub mod up;

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
