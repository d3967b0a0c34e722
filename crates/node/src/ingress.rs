//! The HTTP ingress: accept connections (HTTP/1.1 and HTTP/2), route each request, run
//! the function with its limits — a core module on the `handle` ABI or a
//! `wasi:http/proxy` component — and answer, or answer why not, with a request id.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgefn_runtime::{
    CallContext, Classes, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_QUEUE, DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_MIN_INSTANCES,
    DEFAULT_RESPONSE_CAP, HttpBody, HttpError, HttpLimits, HttpRequest, PoolSettings, Pools, Runtime,
};
use edgefn_serve::{BodyTimeout, Limits, TimedBody};
use edgefn_store::{Artifacts, Database, Resolved, Route};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::header::{ALLOW, CONTENT_TYPE, HOST, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};

use crate::metrics::{ErrorLabels, FunctionLabels, Metrics};
use crate::router::{Lookup, PathMatch, RouteSpec, Router};
use crate::services::NodeServices;

/// Largest request body a function receives (413 above).
pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Longest an HTTP function may run (504 above): interactive requests, not batch work.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_millis(500);

/// Settings of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This node's POP, for routes with a POP selector.
    pub pop: Option<String>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest a function may run.
    pub http_timeout: Duration,
    /// Ready instances each function's pool keeps.
    pub min_instances: usize,
    /// Requests that may wait for a busy function before 503s.
    pub max_queue: usize,
    /// Memory ready instances of all functions may hold; least recently used pools are
    /// emptied first above it.
    pub memory_budget_bytes: usize,
    /// A function's pool unused this long is dropped.
    pub idle_timeout: Duration,
    /// Sandbox limits per module class.
    pub classes: Classes,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            pop: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            min_instances: DEFAULT_MIN_INSTANCES,
            max_queue: DEFAULT_MAX_QUEUE,
            memory_budget_bytes: DEFAULT_MEMORY_BUDGET_BYTES,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            classes: Classes::default(),
        }
    }
}

/// What a route points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Module id.
    pub module_id: String,
    /// Pinned version, or `None` for the newest.
    pub version: Option<String>,
}

/// A stored route as the router sees it.
pub fn route_spec(r: &Route) -> RouteSpec<Target> {
    RouteSpec {
        id: r.id.clone(),
        host: r.host.clone(),
        path: r.path.clone(),
        kind: PathMatch::parse(&r.match_kind).unwrap_or(PathMatch::Exact),
        methods: r.methods.clone(),
        priority: r.priority,
        pop_selector: r.pop_selector.clone(),
        seq: r.seq,
        target: Target { module_id: r.module_id.clone(), version: r.version.clone() },
    }
}

struct State {
    db: Database,
    artifacts: Artifacts,
    runtime: Runtime,
    config: NodeConfig,
    router: RwLock<Arc<Router<Target>>>,
    pools: Pools,
    metrics: Arc<Metrics>,
    services: Arc<NodeServices>,
}

/// An edge node serving HTTP functions.
#[derive(Clone)]
pub struct Node {
    state: Arc<State>,
}

type Reply = Response<HttpBody>;

/// A complete body as an [`HttpBody`].
fn full(bytes: impl Into<Bytes>) -> HttpBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

impl Node {
    /// A node over local storage, with its routes loaded.
    pub async fn start(db: Database, artifacts: Artifacts, runtime: Runtime, config: NodeConfig) -> anyhow::Result<Self> {
        let empty = Router::new(Vec::new(), None)?;
        let pools = Pools::new(runtime.clone(), config.memory_budget_bytes, config.idle_timeout);
        let metrics = Arc::new(Metrics::default());
        let services = Arc::new(NodeServices::new(db.clone(), metrics.clone())?);
        let router = RwLock::new(Arc::new(empty));
        let state = State { db, artifacts, runtime, config, router, pools, metrics, services };
        let node = Self { state: Arc::new(state) };
        node.reload_routes().await?;
        node.sweep_pools();
        Ok(node)
    }

    /// Watches the database for changes made by another process (a control plane beside
    /// a standalone node), every `every`: reloads the routes and forgets cached modules.
    pub fn poll_database(&self, every: Duration) {
        let node = self.clone();
        tokio::spawn(async move {
            let mut seen = None;
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                match node.state.db.generation().await {
                    Ok(now) if seen != Some(now) => {
                        if seen.is_some() {
                            node.state.db.forget_cached();
                            match node.reload_routes().await {
                                Ok(n) => tracing::info!(routes = n, "database changed; routes reloaded"),
                                Err(e) => tracing::error!(error = %e, "could not reload routes; keeping the previous ones"),
                            }
                        }
                        seen = Some(now);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "could not poll the database"),
                }
            }
        });
    }

    /// Drops idle pools and keeps ready instances within the memory budget, every few
    /// seconds, for as long as the node lives.
    fn sweep_pools(&self) {
        let state = Arc::downgrade(&self.state);
        let every = (self.state.config.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(10));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                let Some(state) = state.upgrade() else { break };
                state.pools.sweep();
            }
        });
    }

    /// The Prometheus text exposition of this node's metrics.
    pub fn metrics_text(&self) -> String {
        self.state.metrics.render(&self.state.pools)
    }

    /// Serves `GET /metrics` (Prometheus) and `GET /healthz` on `listener`, within
    /// `limits`, until `shutdown`: kept off the function port so no route can shadow it.
    pub async fn serve_metrics(
        self,
        listener: tokio::net::TcpListener,
        limits: Limits,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        use axum::routing::get;
        let exposition = [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")];
        let app = axum::Router::new()
            .route("/metrics", get(move || async move { (exposition, self.metrics_text()) }))
            .route("/healthz", get(|| async { "ok\n" }))
            .fallback(|| async { (StatusCode::NOT_FOUND, "404 see /metrics\n") });
        let service = hyper_util::service::TowerToHyperService::new(app);
        edgefn_serve::serve(listener, limits, move |_| service.clone(), shutdown).await?;
        Ok(())
    }

    /// Rebuilds the router from the stored routes.
    pub async fn reload_routes(&self) -> anyhow::Result<usize> {
        let routes = self.state.db.routes().await?;
        let router = Router::new(routes.iter().map(route_spec).collect(), self.state.config.pop.as_deref())?;
        let count = router.len();
        *self.state.router.write().expect("router lock") = Arc::new(router);
        Ok(count)
    }

    /// Reloads the routes each time `changes` says they changed, until it closes.
    pub fn follow(&self, mut changes: tokio::sync::watch::Receiver<u64>) {
        let node = self.clone();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                match node.reload_routes().await {
                    Ok(n) => tracing::info!(routes = n, "routes reloaded"),
                    Err(e) => tracing::error!(error = %e, "could not reload routes; keeping the previous ones"),
                }
            }
        });
    }

    /// Serves connections on `listener`, within `limits`, until `shutdown`, then lets open
    /// requests finish.
    pub async fn serve(self, listener: tokio::net::TcpListener, limits: Limits, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let make = |peer: SocketAddr| {
            let node = self.clone();
            hyper::service::service_fn(move |req| {
                let node = node.clone();
                async move { Ok::<_, std::convert::Infallible>(node.answer(req, peer).await) }
            })
        };
        edgefn_serve::serve(listener, limits, make, shutdown).await?;
        Ok(())
    }

    async fn answer(&self, req: Request<TimedBody>, peer: SocketAddr) -> Reply {
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = req.method().as_str().to_string();
        let path = req.uri().path().to_string();
        let host = req
            .headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| req.uri().authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let mut reply = match self.run(req, &host, &method, &path, &request_id).await {
            Ok(reply) => reply,
            Err((status, message, extra)) => {
                if status.is_server_error() {
                    tracing::warn!(request_id, %peer, %method, %host, %path, status = status.as_u16(), error = %message, "request failed");
                } else {
                    tracing::debug!(request_id, %peer, %method, %host, %path, status = status.as_u16(), error = %message, "request refused");
                }
                let mut reply = Response::new(full(format!("{} {message}\n", status.as_u16())));
                *reply.status_mut() = status;
                reply.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
                if let Some((name, value)) = extra {
                    reply.headers_mut().insert(name, value);
                }
                reply
            }
        };
        if let Ok(id) = HeaderValue::from_str(&request_id) {
            reply.headers_mut().insert(HeaderName::from_static("x-request-id"), id);
        }
        reply
    }

    async fn run(&self, req: Request<TimedBody>, host: &str, method: &str, path: &str, request_id: &str) -> Result<Reply, Failure> {
        let router = self.state.router.read().expect("router lock").clone();
        let target = match router.lookup(host, path, method) {
            Lookup::Found(route) => route.target.clone(),
            Lookup::NotFound => return Err((StatusCode::NOT_FOUND, format!("no route for {host}{path}"), None)),
            Lookup::MethodNotAllowed(allowed) => {
                let allow = HeaderValue::from_str(&allowed.join(", ")).ok().map(|v| (ALLOW, v));
                return Err((StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not routed for {path}"), allow));
            }
        };
        let resolved = self.state.db.resolve(&target.module_id, target.version.as_deref()).await.map_err(|e| match e {
            edgefn_store::StoreError::NotFound(what) => (StatusCode::NOT_FOUND, format!("{what} not found"), None),
            other => internal(other),
        })?;
        let labels = FunctionLabels { function_id: resolved.0.id.clone() };
        let metrics = &self.state.metrics;
        metrics.invokes.get_or_create(&labels).inc();
        let started = Instant::now();
        let result = self.call(&resolved, req, path, request_id).await;
        metrics.latency.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
        if let Err((status, _, _)) = &result {
            let code = match *status {
                StatusCode::GATEWAY_TIMEOUT => "timeout",
                StatusCode::BAD_GATEWAY => "malformed",
                StatusCode::SERVICE_UNAVAILABLE => "unavailable",
                StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST => "bad_request",
                _ => "trap",
            };
            metrics.errors.get_or_create(&ErrorLabels { function_id: labels.function_id, code: code.into() }).inc();
        }
        result
    }

    /// Runs the function a request was routed to.
    async fn call(&self, resolved: &Resolved, req: Request<TimedBody>, path: &str, request_id: &str) -> Result<Reply, Failure> {
        let (module, version) = (&resolved.0, &resolved.1);
        if module.status != "active" {
            return Err((StatusCode::SERVICE_UNAVAILABLE, format!("function {} is {}", module.name, module.status), None));
        }
        let (parts, body) = req.into_parts();
        let limit = self.state.config.max_body_bytes;
        let body = match Limited::new(body, limit).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err((StatusCode::PAYLOAD_TOO_LARGE, format!("request body is over the limit of {limit} bytes"), None));
            }
            Err(e) if BodyTimeout::caused(&*e) => return Err((StatusCode::REQUEST_TIMEOUT, e.to_string(), None)),
            Err(e) => return Err((StatusCode::BAD_REQUEST, format!("could not read the request body: {e}"), None)),
        };
        let class = self.state.config.classes.of(&module.owner_type);
        let (timeout_ms, max_memory_bytes) = class.cap(module.timeout_ms, module.max_memory_pages);
        let timeout = self.state.config.http_timeout.min(Duration::from_millis(timeout_ms));
        let max_memory_bytes = max_memory_bytes as usize;
        let limits = HttpLimits { timeout, max_memory_bytes, response_cap: DEFAULT_RESPONSE_CAP };
        let settings = PoolSettings {
            min_instances: self.state.config.min_instances,
            max_instances: module.max_instances.max(1) as usize,
            reuse: module.reuse_instances,
            max_memory_bytes,
            max_queue: self.state.config.max_queue,
        };
        // A function with a pool is hot: its pool holds the compiled module. Pools are
        // named `<function id>@<version>`, which the pool gauges split into labels.
        let pool_key = format!("{}@{}", module.id, version.version);
        let pool = match self.state.pools.find(&pool_key, settings) {
            Some(pool) => {
                self.state.metrics.cache_hits.inc();
                pool
            }
            None => {
                let fetch = || async { Ok(self.state.artifacts.get(&version.sha256).await?) };
                let loaded = self.state.runtime.load(&version.sha256, fetch).await.map_err(internal)?;
                if loaded.cache_hit {
                    self.state.metrics.cache_hits.inc()
                } else {
                    self.state.metrics.cache_misses.inc()
                };
                // Pools are bounded per owner: a project (the module's owner if it has none).
                let owner = module.project_id.as_deref().unwrap_or(&module.owner_id);
                self.state.pools.get(&pool_key, owner, &loaded.module, settings)
            }
        };
        let lease = pool.acquire(timeout).await.map_err(|e| {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{}: {e}", module.name), Some((RETRY_AFTER, HeaderValue::from_static("1"))))
        })?;
        let is_component = version.kind == "component";
        let grants = class.grants;
        // Core modules read headers from the request bytes and through `request_header`
        // (one shared copy); components get them through wasi:http, and a copy only when
        // they may call `request.header`.
        let headers: Arc<[(String, String)]> = if is_component && !grants.allows("request_header") {
            Arc::default()
        } else {
            parts.headers.iter().map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
        };
        let ctx = CallContext {
            function_id: Arc::from(module.id.as_str()),
            request_id: request_id.to_string(),
            headers: headers.clone(),
            grants,
            env: module.env.values().clone(),
            allow_hosts: module.allow_hosts.clone(),
            log: self.state.runtime.guest_log(),
            services: Some(self.state.services.clone()),
        };
        let failed = |e: HttpError| {
            let (status, retry) = match &e {
                HttpError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, None),
                HttpError::Malformed(_) => (StatusCode::BAD_GATEWAY, None),
                HttpError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, Some((RETRY_AFTER, HeaderValue::from_static("1")))),
                HttpError::Trap(_) | HttpError::GuestError(_) | HttpError::NotHandleAbi(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
            };
            (status, format!("{}@{}: {e}", module.name, version.version), retry)
        };
        let reply = if is_component {
            let request = Request::from_parts(parts, full(body));
            lease.serve_wasi_http(request, limits, ctx).await.map_err(failed)?
        } else {
            let path_and_query = parts.uri.path_and_query().map_or_else(|| path.to_string(), |p| p.to_string());
            let request = HttpRequest { method: parts.method.as_str().to_string(), path: path_and_query, headers, body: body.to_vec() };
            let response = lease.handle_http(request, limits, ctx).await.map_err(failed)?;
            let mut reply = Response::new(full(response.body));
            *reply.status_mut() = StatusCode::from_u16(response.status).expect("status checked by the ABI parser");
            for (name, value) in response.headers {
                match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) {
                    (Ok(n), Ok(v)) => {
                        reply.headers_mut().append(n, v);
                    }
                    _ => return Err((StatusCode::BAD_GATEWAY, format!("{}: invalid response header `{name}`", module.name), None)),
                }
            }
            reply
        };
        host_framed(reply).map_err(|why| (StatusCode::BAD_GATEWAY, format!("{}@{}: {why}", module.name, version.version), None))
    }
}

/// A function's response as the host sends it: an informational status (1xx, such as
/// 101 Switching Protocols) is refused, since it would hand the connection to the guest;
/// hop-by-hop and framing headers are dropped (with any header `connection` names), so
/// the server frames the body it actually sends.
fn host_framed(mut reply: Reply) -> Result<Reply, String> {
    if reply.status().is_informational() {
        return Err(format!("a function may not answer with status {}", reply.status().as_u16()));
    }
    let headers = reply.headers_mut();
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    let owned: Vec<HeaderName> = headers.keys().filter(|n| edgefn_runtime::host_owned_header(n.as_str())).cloned().collect();
    for name in owned {
        headers.remove(name);
    }
    Ok(reply)
}

/// An error answer: status, message, and one extra header.
type Failure = (StatusCode, String, Option<(HeaderName, HeaderValue)>);

fn internal(e: impl std::fmt::Display) -> Failure {
    tracing::error!(error = %e, "internal error");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into(), None)
}
