//! `edgefn node`: an edge node as its own process, fed by a control plane over the node
//! stream (mTLS), serving from its own data directory — also before, and without, any
//! contact with the control plane. `edgefn node list|rm` read and change the registry.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::Table;
use reqwest::Method;
use serde_json::Value;

use crate::client::{Client, ClientArgs, segment};

/// Where a standalone node exposes its metrics by default (the usual Prometheus
/// exporter port).
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// `edgefn node`: run a node, or manage the registry.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NodeCommand {
    #[command(subcommand)]
    action: Option<NodeAction>,
    #[command(flatten)]
    run: RunArgs,
}

/// Registry commands.
#[derive(Subcommand, Debug)]
enum NodeAction {
    /// List the nodes with their status and revision.
    List(ListArgs),
    /// Remove a node: it is disconnected and refused from then on.
    Rm(RmArgs),
}

#[derive(Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(Args, Debug)]
struct RmArgs {
    /// The node's name.
    name: String,
    #[command(flatten)]
    client: ClientArgs,
}

/// Flags of a running node.
#[derive(Args, Debug)]
struct RunArgs {
    /// The control plane's node stream, e.g. https://cp.example.com:8443.
    #[arg(long, env = "EDGEFN_CONTROL")]
    control: Option<String>,
    /// The cluster's CA certificate (PEM).
    #[arg(long, env = "EDGEFN_CA_CERT")]
    ca_cert: Option<PathBuf>,
    /// This node's certificate (PEM), from `edgefn certs node`: its name is the node's name.
    #[arg(long, env = "EDGEFN_NODE_CERT")]
    cert: Option<PathBuf>,
    /// This node's private key (PEM).
    #[arg(long, env = "EDGEFN_NODE_KEY")]
    key: Option<PathBuf>,
    /// Address of the HTTP ingress.
    #[arg(long, env = "EDGEFN_NODE_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Address of the Prometheus metrics (`/metrics`).
    #[arg(long, env = "EDGEFN_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
    metrics_listen: SocketAddr,
    /// Where the node keeps its applied state, artifacts, compiled code and key-value data.
    #[arg(long, env = "EDGEFN_NODE_DATA_DIR", default_value = ".edgefn-node")]
    data_dir: PathBuf,
    /// This node's POP, for routes with a POP selector (its certificate's POP wins).
    #[arg(long, env = "EDGEFN_POP")]
    pop: Option<String>,
    /// Memory ready function instances may hold, in MiB.
    #[arg(long, env = "EDGEFN_MEMORY_BUDGET_MB", default_value_t = edgefn_runtime::DEFAULT_MEMORY_BUDGET_BYTES / (1024 * 1024))]
    memory_budget_mb: usize,
    /// Function instances (ready or running) this node holds at once.
    #[arg(long, env = "EDGEFN_INSTANCE_SLOTS", default_value_t = edgefn_runtime::RuntimeConfig::default().max_concurrent_instances)]
    instance_slots: u32,
    /// Most MiB of artifacts kept in the disk cache.
    #[arg(long, env = "EDGEFN_CACHE_MAX_MB", default_value_t = edgefn_node::DEFAULT_CACHE_BYTES / (1024 * 1024))]
    cache_max_mb: u64,
    /// Most artifacts kept in the disk cache.
    #[arg(long, env = "EDGEFN_CACHE_MAX_ENTRIES", default_value_t = edgefn_node::DEFAULT_CACHE_ENTRIES)]
    cache_max_entries: usize,
    /// How often to report to the control plane, in milliseconds.
    #[arg(long, env = "EDGEFN_REPORT_EVERY_MS", default_value_t = edgefn_node::DEFAULT_REPORT_EVERY.as_millis() as u64)]
    report_every_ms: u64,
    /// A TOML file with `[classes]` sandbox limits (as the control plane's).
    #[arg(long, env = "EDGEFN_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "EDGEFN_LOG_JSON")]
    log_json: bool,
    #[command(flatten)]
    connections: super::ConnectionArgs,
}

impl NodeCommand {
    /// Runs a node until ctrl-c or SIGTERM, or a registry command.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self.action {
            Some(NodeAction::List(args)) => list(&Client::new(&args.client)?).await,
            Some(NodeAction::Rm(args)) => {
                let client = Client::new(&args.client)?;
                client.send(client.request(Method::DELETE, &format!("/api/v1/nodes/{}", segment(&args.name)))).await?;
                println!("removed node {}: it is disconnected and will be refused", args.name);
                Ok(())
            }
            None => self.run.execute().await,
        }
    }
}

async fn list(client: &Client) -> anyhow::Result<()> {
    let body = client.send(client.request(Method::GET, "/api/v1/nodes")).await?;
    if client.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let mut table = Table::new();
    table.set_header(["NAME", "POP", "STATUS", "REVISION", "BEHIND", "CPU %", "MEMORY MB", "VERSION", "LAST SEEN"]);
    let text = |v: &Value| v.as_str().unwrap_or("-").to_string();
    for n in body["nodes"].as_array().into_iter().flatten() {
        table.add_row([
            text(&n["name"]),
            text(&n["pop"]),
            text(&n["status"]),
            n["revision"].to_string(),
            n["behind"].to_string(),
            format!("{:.1}", n["cpuPercent"].as_f64().unwrap_or(0.0)),
            format!("{:.0}", n["memoryBytes"].as_f64().unwrap_or(0.0) / (1024.0 * 1024.0)),
            text(&n["agentVersion"]),
            text(&n["lastSeenAt"]),
        ]);
    }
    println!("{table}");
    Ok(())
}

impl RunArgs {
    async fn execute(self) -> anyhow::Result<()> {
        super::init_logs(self.log_json);
        crate::private::data_dir(&self.data_dir)?;
        let control = self.control.context("--control is required: the control plane's node stream (https://HOST:8443)")?;
        let read = |flag: &Option<PathBuf>, what: &str| -> anyhow::Result<Vec<u8>> {
            let path = flag.as_ref().with_context(|| format!("--{what} is required (see `edgefn certs`)"))?;
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))
        };
        let channel =
            edgefn_node::channel(&control, &read(&self.ca_cert, "ca-cert")?, &read(&self.cert, "cert")?, &read(&self.key, "key")?)?;
        let runtime = edgefn_runtime::Runtime::new(edgefn_runtime::RuntimeConfig {
            max_concurrent_instances: self.instance_slots,
            // In-process: a node compiles only what the control plane accepted, which compiled
            // within its compile timeout in a worker killed past it (docs/security.md). A
            // worker process per compile would add ~25 ms to every new version's rollout.
            compile_worker: None,
            cache_dir: Some(self.data_dir.join("compiled")),
            ..Default::default()
        })?;
        let classes = super::up::FileConfig::read(self.config.as_deref())?.classes()?;
        let config = edgefn_node::NodeConfig {
            pop: self.pop,
            memory_budget_bytes: self.memory_budget_mb * 1024 * 1024,
            classes,
            data_dir: self.data_dir.clone(),
            cache_max_bytes: self.cache_max_mb * 1024 * 1024,
            cache_max_entries: self.cache_max_entries,
            report_every: Duration::from_millis(self.report_every_ms.max(100)),
            ..Default::default()
        };
        let kv = edgefn_node::LocalKv::open(&self.data_dir.join(edgefn_node::KV_FILE))?;
        let node = edgefn_node::Node::open(runtime, config, Arc::new(kv))?;
        let limits = self.connections.limits();
        let listener = super::bind(self.listen).await?;
        let metrics = super::bind(self.metrics_listen).await?;
        println!("metrics listening on http://{}", metrics.local_addr()?);
        println!("node listening on http://{}", listener.local_addr()?);
        tokio::spawn(node.clone().follow(channel));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(node.clone().serve_metrics(metrics, limits, super::until_stopped(stopped.clone())));
        let serving = tokio::spawn(node.serve(listener, limits, super::until_stopped(stopped)));
        super::up::shutdown_signal().await;
        stop.send_replace(true);
        serving.await?
    }
}
