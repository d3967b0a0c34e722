//! `edgefn node`: an edge node as its own process, serving the routes and modules of a
//! data directory that a control plane (`edgefn up`) manages — on the same machine for
//! now; it notices the control plane's changes by polling the database.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

/// Where a standalone node exposes its metrics by default (the usual Prometheus
/// exporter port).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// How often a standalone node looks for changes in the database.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Flags of `edgefn node`.
#[derive(Args, Debug)]
pub struct NodeCommand {
    /// Address of the HTTP ingress.
    #[arg(long, env = "EDGEFN_NODE_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Address of the Prometheus metrics (`/metrics`).
    #[arg(long, env = "EDGEFN_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
    metrics_listen: SocketAddr,
    /// The control plane's data directory.
    #[arg(long, env = "EDGEFN_DATA_DIR", default_value = edgefn_control::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// This node's POP name, for routes with a POP selector.
    #[arg(long, env = "EDGEFN_POP")]
    pop: Option<String>,
    /// Memory ready function instances may hold, in MiB.
    #[arg(long, env = "EDGEFN_MEMORY_BUDGET_MB", default_value_t = edgefn_runtime::DEFAULT_MEMORY_BUDGET_BYTES / (1024 * 1024))]
    memory_budget_mb: usize,
    /// Function instances (ready or running) this node holds at once.
    #[arg(long, env = "EDGEFN_INSTANCE_SLOTS", default_value_t = edgefn_runtime::RuntimeConfig::default().max_concurrent_instances)]
    instance_slots: u32,
    /// The control plane's TOML config file, for its `[classes]` sandbox limits.
    #[arg(long, env = "EDGEFN_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "EDGEFN_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    connections: super::ConnectionArgs,
}

impl NodeCommand {
    /// Runs until ctrl-c or SIGTERM.
    pub async fn execute(self) -> anyhow::Result<()> {
        super::init_logs(self.log_json);
        anyhow::ensure!(
            self.data_dir.join("edgefn.db").exists(),
            "no control plane data in {} (start `edgefn up` there first, or pass --data-dir)",
            self.data_dir.display()
        );
        let runtime = edgefn_runtime::RuntimeConfig {
            max_concurrent_instances: self.instance_slots,
            compile_worker: std::env::current_exe().ok(),
            ..Default::default()
        };
        let (db, artifacts, runtime) = edgefn_control::open_storage(&self.data_dir, runtime).await?;
        let classes = super::up::FileConfig::read(self.config.as_deref())?.classes()?;
        let config = edgefn_node::NodeConfig {
            pop: self.pop,
            memory_budget_bytes: self.memory_budget_mb * 1024 * 1024,
            classes,
            ..Default::default()
        };
        let limits = self.connections.limits();
        let node = edgefn_node::Node::start(db, artifacts, runtime, config).await?;
        node.poll_database(POLL_EVERY);
        let listener = tokio::net::TcpListener::bind(self.listen).await.with_context(|| format!("listening on {}", self.listen))?;
        let metrics =
            tokio::net::TcpListener::bind(self.metrics_listen).await.with_context(|| format!("listening on {}", self.metrics_listen))?;
        println!("metrics listening on http://{}", metrics.local_addr()?);
        println!("node listening on http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(node.clone().serve_metrics(metrics, limits, super::until_stopped(stopped.clone())));
        let serving = tokio::spawn(node.serve(listener, limits, super::until_stopped(stopped)));
        super::up::shutdown_signal().await;
        stop.send_replace(true);
        serving.await?
    }
}
