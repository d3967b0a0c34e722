//! `edgefn up`: everything on one machine — the control plane (API, UI, SQLite, artifacts
//! under the data directory) and one edge node, which takes its state through the same
//! node stream as a remote node, over an in-process connection.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

/// The edge node of `edgefn up` listens on loopback by default, beside the API.
const DEFAULT_NODE_LISTEN: &str = "127.0.0.1:8000";
/// Name of `edgefn up`'s own node in the registry.
const LOCAL_NODE: &str = "local";
/// How long `edgefn up` waits for its node's first sync before it says it is up.
const FIRST_SYNC: Duration = Duration::from_secs(30);

/// Control-plane flags `edgefn up` and `edgefn control` share; each may also come from
/// `EDGEFN_*` or the TOML file.
#[derive(Args, Debug)]
pub struct ControlArgs {
    /// Address of the REST API and admin UI [default: 127.0.0.1:8080].
    #[arg(long, env = "EDGEFN_LISTEN")]
    listen: Option<SocketAddr>,
    /// Function instances (ready or running) the process holds at once [default: 2000].
    #[arg(long, env = "EDGEFN_INSTANCE_SLOTS")]
    instance_slots: Option<u32>,
    /// Longest an upload's compilation may take, in milliseconds [default: 30000]; the
    /// compiler process is killed past it.
    #[arg(long, env = "EDGEFN_COMPILE_TIMEOUT_MS")]
    compile_timeout_ms: Option<u64>,
    /// Where the database, artifacts, compiled cache and admin token live [default: .edgefn].
    #[arg(long, env = "EDGEFN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Largest module accepted, in bytes.
    #[arg(long, env = "EDGEFN_MAX_MODULE_BYTES")]
    max_module_bytes: Option<usize>,
    /// Executions kept per module.
    #[arg(long, env = "EDGEFN_EXECUTION_RETENTION")]
    execution_retention: Option<i64>,
    /// Shared secret of HS256 JWTs from an identity provider (e.g. Supabase's JWT secret).
    #[arg(long, env = "EDGEFN_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// JWKS URL of an identity provider whose JWTs are accepted.
    #[arg(long, env = "EDGEFN_JWKS_URL")]
    jwks_url: Option<String>,
    /// A TOML file with any of these settings (flags win), `[classes.<class>]` sandbox
    /// limits and `[auth.jwt]` (docs/permissions.md).
    #[arg(long, env = "EDGEFN_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "EDGEFN_LOG_JSON")]
    pub(crate) log_json: bool,
    /// Base URL of an edge node serving these routes, for the console's links and test
    /// requests [`edgefn up`: its own node].
    #[arg(long, env = "EDGEFN_EDGE_URL")]
    pub(crate) edge_url: Option<String>,
    /// A domain under which users claim hosts of their own (`apps.example.com`: a project
    /// routes `NAME.apps.example.com`); repeat, or separate with commas.
    #[arg(long = "user-host-suffix", env = "EDGEFN_USER_HOST_SUFFIXES", value_delimiter = ',')]
    user_host_suffixes: Vec<String>,
    /// The name server (`IP:PORT`, UDP) host challenges' TXT records are looked up
    /// through [default: the system's resolver].
    #[arg(long, env = "EDGEFN_DNS_RESOLVER")]
    dns_resolver: Option<SocketAddr>,
    #[command(flatten)]
    pub(crate) connections: super::ConnectionArgs,
}

/// Flags of `edgefn up`.
#[derive(Args, Debug)]
pub struct UpCommand {
    #[command(flatten)]
    control: ControlArgs,
    /// Address of the edge node's HTTP ingress [default: 127.0.0.1:8000].
    #[arg(long, env = "EDGEFN_NODE_LISTEN")]
    node_listen: Option<SocketAddr>,
    /// Address of the edge node's Prometheus metrics (`/metrics`) [default: 127.0.0.1:9464].
    #[arg(long, env = "EDGEFN_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// This node's POP name, for routes with a POP selector.
    #[arg(long, env = "EDGEFN_POP")]
    pop: Option<String>,
    /// Memory ready function instances may hold, in MiB (least recently used first out).
    #[arg(long, env = "EDGEFN_MEMORY_BUDGET_MB")]
    memory_budget_mb: Option<usize>,
    /// Requests that may wait for a function at its concurrency limit; more get 503.
    #[arg(long, env = "EDGEFN_MAX_QUEUE")]
    max_queue: Option<usize>,
    /// How often the node reports its traffic to the control plane, in milliseconds
    /// [default: 10000].
    #[arg(long, env = "EDGEFN_REPORT_EVERY_MS")]
    report_every_ms: Option<u64>,
    /// Build workers run inside, taking builds sent to `POST /api/v1/builds` (0: none;
    /// run `edgefn build-worker` elsewhere).
    #[arg(long, env = "EDGEFN_BUILD_WORKERS", default_value_t = 1)]
    build_workers: usize,
    #[command(flatten)]
    build_limits: super::build_worker::WorkerLimits,
}

/// The optional TOML file; unknown keys are an error so typos do not pass silently.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    listen: Option<SocketAddr>,
    node_listen: Option<SocketAddr>,
    node_stream_listen: Option<SocketAddr>,
    certs: Option<PathBuf>,
    metrics_listen: Option<SocketAddr>,
    pop: Option<String>,
    memory_budget_mb: Option<usize>,
    max_queue: Option<usize>,
    report_every_ms: Option<u64>,
    instance_slots: Option<u32>,
    compile_timeout_ms: Option<u64>,
    data_dir: Option<PathBuf>,
    max_module_bytes: Option<usize>,
    execution_retention: Option<i64>,
    user_host_suffixes: Option<Vec<String>>,
    dns_resolver: Option<SocketAddr>,
    #[serde(default)]
    pub(crate) classes: edgefn_runtime::ClassesFile,
    #[serde(default)]
    auth: AuthFile,
}

/// `[auth]` of the config file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    jwt: Option<edgefn_control::JwtConfig>,
}

impl FileConfig {
    /// The file at `path`, or the defaults when there is none.
    pub(crate) fn read(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let Some(path) = path else { return Ok(Self::default()) };
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Sandbox limits: the defaults with this file's changes.
    pub(crate) fn classes(&self) -> anyhow::Result<edgefn_runtime::Classes> {
        edgefn_runtime::Classes::default().with(&self.classes).map_err(anyhow::Error::msg)
    }

    /// Where `edgefn control` takes node streams: the flag, then the file, then 127.0.0.1:8443.
    pub(crate) fn node_stream_listen(&self, flag: Option<SocketAddr>) -> SocketAddr {
        flag.or(self.node_stream_listen).unwrap_or_else(|| super::control::DEFAULT_NODE_STREAM_LISTEN.parse().expect("valid default"))
    }

    /// The certificate directory: the flag, then the file, then `<data dir>/certs`.
    pub(crate) fn certs(&self, flag: Option<PathBuf>, data_dir: &std::path::Path) -> PathBuf {
        flag.or_else(|| self.certs.clone()).unwrap_or_else(|| data_dir.join("certs"))
    }
}

impl ControlArgs {
    /// The control plane's settings: flags, then the file, then defaults.
    pub(crate) fn config(&self, file: &FileConfig) -> anyhow::Result<edgefn_control::ControlConfig> {
        let mut jwt = file.auth.jwt.clone();
        if self.jwt_secret.is_some() || self.jwks_url.is_some() {
            let mut config = jwt.unwrap_or_default();
            config.hs256_secret = self.jwt_secret.clone().or(config.hs256_secret);
            config.jwks_url = self.jwks_url.clone().or(config.jwks_url);
            jwt = Some(config);
        }
        let defaults = edgefn_control::ControlConfig::default();
        Ok(edgefn_control::ControlConfig {
            listen: self.listen.or(file.listen).unwrap_or(defaults.listen),
            data_dir: self.data_dir.clone().or(file.data_dir.clone()).unwrap_or(defaults.data_dir),
            max_module_bytes: self.max_module_bytes.or(file.max_module_bytes).unwrap_or(defaults.max_module_bytes),
            instance_slots: self.instance_slots.or(file.instance_slots).unwrap_or(defaults.instance_slots).max(1),
            compile_timeout: self
                .compile_timeout_ms
                .or(file.compile_timeout_ms)
                .map_or(defaults.compile_timeout, |ms| Duration::from_millis(ms.max(1))),
            // Compilations run in a child process of this binary, killed at the timeout.
            compile_worker: std::env::current_exe().ok(),
            execution_retention: self.execution_retention.or(file.execution_retention).unwrap_or(defaults.execution_retention),
            classes: file.classes()?,
            jwt,
            user_host_suffixes: match self.user_host_suffixes.is_empty() {
                true => file.user_host_suffixes.clone().unwrap_or_default(),
                false => self.user_host_suffixes.clone(),
            },
            reserved_hosts: Vec::new(),
            dns_resolver: self.dns_resolver.or(file.dns_resolver),
        })
    }
}

/// Prints where the API is and the admin token (or where it is).
pub(crate) fn print_control(config: &edgefn_control::ControlConfig, addr: SocketAddr, opened: &edgefn_control::Opened) {
    println!("  admin UI    http://{addr}/  (sign in with the admin token)");
    println!("  API         http://{addr}  (OpenAPI: http://{addr}/api/v1/openapi.json)");
    println!("  data        {}", config.data_dir.display());
    let token_file = config.data_dir.join(edgefn_control::ADMIN_TOKEN_FILE);
    match &opened.new_admin_token {
        Some(token) => println!("  admin token {token}\n              (shown once; saved to {}, mode 0600)", token_file.display()),
        None => println!("  admin token in {}", token_file.display()),
    }
}

impl UpCommand {
    /// Runs until ctrl-c or SIGTERM.
    pub async fn execute(self) -> anyhow::Result<()> {
        super::init_logs(self.control.log_json);
        let file = FileConfig::read(self.control.config.as_deref())?;
        let config = self.control.config(&file)?;
        crate::private::data_dir(&config.data_dir)?;
        let opened = edgefn_control::open(&config).await?;
        let listener = super::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = opened.state.clone();
        let pop = self.pop.clone().or(file.pop.clone());
        let node_config = edgefn_node::NodeConfig {
            pop: pop.clone(),
            memory_budget_bytes: self
                .memory_budget_mb
                .or(file.memory_budget_mb)
                .map_or(edgefn_runtime::DEFAULT_MEMORY_BUDGET_BYTES, |mb| mb * 1024 * 1024),
            max_queue: self.max_queue.or(file.max_queue).unwrap_or(edgefn_runtime::DEFAULT_MAX_QUEUE),
            classes: config.classes,
            data_dir: config.data_dir.join("node"),
            report_every: self
                .report_every_ms
                .or(file.report_every_ms)
                .map_or(edgefn_node::DEFAULT_REPORT_EVERY, |ms| Duration::from_millis(ms.max(100))),
            ..Default::default()
        };
        let kv = edgefn_node::LocalKv::open(&node_config.data_dir.join(edgefn_node::KV_FILE))?;
        move_legacy_kv(&state.db, &kv).await?;
        let node = edgefn_node::Node::open(state.runtime.clone(), node_config, Arc::new(kv))?;
        let channel = edgefn_control::nodes::in_process_channel(state.hub.clone(), LOCAL_NODE, pop);
        tokio::spawn(node.clone().follow(channel));
        // Say "up" once the node serves what the control plane has.
        let target = state.db.revision().await?;
        let mut revisions = node.revisions();
        let synced = tokio::time::timeout(FIRST_SYNC, revisions.wait_for(|r| *r >= target)).await.is_ok_and(|r| r.is_ok());
        if !synced {
            tracing::warn!("the node has not synced with the control plane yet; it serves what it has");
        }
        let node_listener =
            super::bind(self.node_listen.or(file.node_listen).unwrap_or_else(|| DEFAULT_NODE_LISTEN.parse().expect("valid default")))
                .await?;
        let node_addr = node_listener.local_addr()?;
        let _ = state.edge_url.set(self.control.edge_url.clone().unwrap_or_else(|| format!("http://{node_addr}")));
        edgefn_control::review_claims(&state).await?;
        let metrics_listener = super::bind(
            self.metrics_listen
                .or(file.metrics_listen)
                .unwrap_or_else(|| super::node::DEFAULT_METRICS_LISTEN.parse().expect("valid default")),
        )
        .await?;
        let metrics_addr = metrics_listener.local_addr()?;
        println!("edgefn is up");
        print_control(&config, addr, &opened);
        println!("  edge node   http://{node_addr}  (try: curl http://{node_addr}/hello)");
        println!("  metrics     http://{metrics_addr}/metrics");
        println!("metrics listening on http://{metrics_addr}");
        println!("node listening on http://{node_addr}");
        println!("listening on http://{addr}");
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let limits = self.control.connections.limits();
        tokio::spawn(node.clone().serve_metrics(metrics_listener, limits, super::until_stopped(stopped.clone())));
        let node_task = tokio::spawn(node.serve(node_listener, limits, super::until_stopped(stopped.clone())));
        let api_task = tokio::spawn(edgefn_control::serve(listener, opened.state, limits, super::until_stopped(stopped)));
        self.start_build_workers(addr, &config.data_dir)?;
        shutdown_signal().await;
        stop.send_replace(true);
        node_task.await??;
        api_task.await??;
        Ok(())
    }
}

impl UpCommand {
    /// Starts the build workers inside, as the first admin over the API.
    fn start_build_workers(&self, api: SocketAddr, data_dir: &std::path::Path) -> anyhow::Result<()> {
        if self.build_workers == 0 {
            return Ok(());
        }
        let token_file = data_dir.join(edgefn_control::ADMIN_TOKEN_FILE);
        let Ok(token) = std::fs::read_to_string(&token_file) else {
            tracing::warn!(file = %token_file.display(), "no admin token file: no build worker runs inside; run `edgefn build-worker`");
            return Ok(());
        };
        let args = crate::client::ClientArgs {
            url: Some(format!("http://{api}")),
            token: Some(token.trim().to_string()),
            data_dir: data_dir.to_path_buf(),
            json: false,
        };
        let client = crate::client::Client::new(&args)?;
        for n in 1..=self.build_workers {
            let settings = self.build_limits.settings(format!("up-{n}"), std::env::temp_dir().join("edgefn-builds"));
            let client = client.clone();
            tokio::spawn(async move {
                if let Err(e) = crate::worker::run(client, settings).await {
                    tracing::error!(error = %format!("{e:#}"), "the build worker stopped");
                }
            });
        }
        Ok(())
    }
}

/// Moves key-value data an older edgefn kept in the metadata database to the node's own
/// store, once.
async fn move_legacy_kv(db: &edgefn_store::Database, kv: &edgefn_node::LocalKv) -> anyhow::Result<()> {
    use edgefn_node::KvStore;
    let entries = db.legacy_kv().await?;
    if entries.is_empty() {
        return Ok(());
    }
    let now = edgefn_store::now_ms();
    for e in &entries {
        let ttl = e.expires_at.map(|at| Duration::from_millis(at.saturating_sub(now).max(1) as u64));
        kv.put(&e.module_id, &e.key, e.value.clone(), ttl).await.context("moving key-value data to the node")?;
    }
    db.clear_legacy_kv().await?;
    tracing::info!(entries = entries.len(), "moved key-value data from the database to the node's store");
    Ok(())
}

/// Waits for ctrl-c or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
