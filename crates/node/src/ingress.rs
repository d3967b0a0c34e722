//! The [`Node`] and its HTTP ingress: accept connections (HTTP/1.1 and HTTP/2), route each
//! request with the applied snapshot's router, run the function with its limits — a core
//! module on the `handle` ABI or a `wasi:http/proxy` component — and answer, or answer
//! why not, with a request id.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgefn_model::{Function, Kind, Lookup, ResourceName, Router, Snapshot, Status, Target, Version};
use edgefn_runtime::{
    CallContext, Classes, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_QUEUE, DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_MIN_INSTANCES,
    DEFAULT_RESPONSE_CAP, HttpBody, HttpError, HttpLimits, HttpRequest, PoolSettings, Pools, Runtime,
};
use edgefn_serve::{Limits, TimedBody};
use http_body_util::{BodyExt, Full};
use hyper::header::{ALLOW, CONTENT_TYPE, HOST, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};

use crate::body::{Payload, RequestBody, ResponseBody};
use crate::cache::{ArtifactCache, DEFAULT_CACHE_BYTES, DEFAULT_CACHE_ENTRIES};
use crate::kv::KvStore;
use crate::metrics::{ErrorLabels, FunctionLabels, Metrics};
use crate::services::NodeServices;
use crate::traffic::{Outcome, Traffic};

/// Largest request body a core `handle` function receives (413 above): it gets the whole
/// body in its memory at once. Components get theirs streamed, up to their body limit.
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES: u64 = 10 * 1024 * 1024;
/// Longest an HTTP function may run (504 above): interactive requests, not batch work.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_millis(500);

/// Settings of a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The POP this node says it is in (its `Hello`); a POP in its certificate wins, and
    /// the control plane sends only the routes of that POP.
    pub pop: Option<String>,
    /// Largest request body of a core `handle` function (which gets it whole).
    pub max_buffered_body_bytes: u64,
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
    /// Where the node keeps its state, artifacts and key-value data.
    pub data_dir: PathBuf,
    /// Most bytes of artifacts cached on disk.
    pub cache_max_bytes: u64,
    /// Most artifacts cached on disk.
    pub cache_max_entries: usize,
    /// How often the node reports to the control plane.
    pub report_every: Duration,
}

/// How often a node reports by default.
pub const DEFAULT_REPORT_EVERY: Duration = Duration::from_secs(10);

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            pop: None,
            max_buffered_body_bytes: DEFAULT_MAX_BUFFERED_BODY_BYTES,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            min_instances: DEFAULT_MIN_INSTANCES,
            max_queue: DEFAULT_MAX_QUEUE,
            memory_budget_bytes: DEFAULT_MEMORY_BUDGET_BYTES,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            classes: Classes::default(),
            data_dir: PathBuf::from(".edgefn-node"),
            cache_max_bytes: DEFAULT_CACHE_BYTES,
            cache_max_entries: DEFAULT_CACHE_ENTRIES,
            report_every: DEFAULT_REPORT_EVERY,
        }
    }
}

/// What the ingress answers with: a snapshot and its router, swapped together.
pub(crate) struct Serving {
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) router: Router<Target>,
}

struct State {
    runtime: Runtime,
    config: NodeConfig,
    serving: RwLock<Arc<Serving>>,
    /// Tells watchers the applied revision.
    revision: tokio::sync::watch::Sender<u64>,
    /// The applied state on disk.
    saved: crate::persist::Saved,
    cache: ArtifactCache,
    pools: Pools,
    metrics: Arc<Metrics>,
    services: Arc<NodeServices>,
    pub(crate) traffic: Traffic,
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
    /// A node over its data directory: it serves the snapshot it saved last, at once,
    /// before any contact with a control plane.
    pub fn open(runtime: Runtime, config: NodeConfig, kv: Arc<dyn KvStore>) -> anyhow::Result<Self> {
        if !config.data_dir.exists() {
            // It will hold the functions' settings, secrets included: the node's user only.
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&config.data_dir)?;
        }
        let cache = ArtifactCache::open(&config.data_dir.join("artifacts"), config.cache_max_bytes, config.cache_max_entries)?;
        let (saved, snapshot) = crate::persist::Saved::open(&config.data_dir)?;
        let mut router = Router::default();
        for route in snapshot.routes.values() {
            if let Err(e) = router.insert(route.clone()) {
                tracing::error!(error = %e, "a saved route does not build; serving without it until the control plane resyncs");
            }
        }
        if snapshot.revision > 0 {
            tracing::info!(
                revision = snapshot.revision,
                routes = snapshot.routes.len(),
                functions = snapshot.functions.len(),
                "serving the saved state"
            );
        }
        let pools = Pools::new(runtime.clone(), config.memory_budget_bytes, config.idle_timeout);
        let metrics = Arc::new(Metrics::default());
        let services = Arc::new(NodeServices::new(kv, metrics.clone())?);
        let revision = tokio::sync::watch::Sender::new(snapshot.revision);
        let serving = RwLock::new(Arc::new(Serving { snapshot: Arc::new(snapshot), router }));
        let traffic = Traffic::default();
        let state = State { runtime, config, serving, revision, saved, cache, pools, metrics, services, traffic };
        let node = Self { state: Arc::new(state) };
        node.sweep_pools();
        Ok(node)
    }

    /// The applied snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.serving().snapshot.clone()
    }

    /// The applied snapshot with its router.
    pub(crate) fn serving(&self) -> Arc<Serving> {
        self.state.serving.read().expect("serving lock").clone()
    }

    /// The applied revision, as it changes.
    pub fn revisions(&self) -> tokio::sync::watch::Receiver<u64> {
        self.state.revision.subscribe()
    }

    pub(crate) fn pop(&self) -> Option<&str> {
        self.state.config.pop.as_deref()
    }

    pub(crate) fn config(&self) -> &NodeConfig {
        &self.state.config
    }

    pub(crate) fn cache(&self) -> &ArtifactCache {
        &self.state.cache
    }

    pub(crate) fn traffic(&self) -> &Traffic {
        &self.state.traffic
    }

    /// The compiled module of a cached artifact.
    pub(crate) async fn compile(&self, sha256: &str) -> anyhow::Result<edgefn_runtime::Loaded> {
        let cache = &self.state.cache;
        let fetch = || async { cache.read(sha256)?.ok_or_else(|| anyhow::anyhow!("artifact {sha256} is not in the node's cache")) };
        self.state.runtime.load(sha256, fetch).await
    }

    /// Saves `next` to disk (the resources `changed` names, or everything), then serves it
    /// with `router` (built from its routes), then lets the cache drop what it no longer
    /// runs.
    pub(crate) async fn install(&self, next: Snapshot, router: Router<Target>, changed: Option<Vec<ResourceName>>) -> anyhow::Result<()> {
        let next = Arc::new(next);
        let (state, saved) = (self.state.clone(), next.clone());
        tokio::task::spawn_blocking(move || match changed {
            Some(names) => state.saved.update(&saved, &names),
            None => state.saved.replace(&saved),
        })
        .await??;
        let revision = next.revision;
        *self.state.serving.write().expect("serving lock") = Arc::new(Serving { snapshot: next.clone(), router });
        self.state.revision.send_replace(revision);
        let evicted = self.state.cache.evict(|| next.digests());
        if evicted > 0 {
            tracing::info!(evicted, "artifacts evicted from the cache");
        }
        Ok(())
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
        self.state.metrics.render(&self.state.pools, self.state.cache.usage(), self.snapshot().revision)
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

    async fn answer(&self, mut req: Request<TimedBody>, peer: SocketAddr) -> Reply {
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = req.method().as_str().to_string();
        let (host, path, result) = match locate(&mut req) {
            Ok((host, path)) => {
                let result = self.run(req, &host, &method, &path, &request_id).await;
                (host, path, result)
            }
            Err(refused) => (String::new(), req.uri().path().to_string(), Err(refused)),
        };
        let mut reply = match result {
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
        let serving = self.serving();
        let target = match serving.router.lookup(host, path, method) {
            Lookup::Found(route) => &route.target,
            Lookup::NotFound => return Err((StatusCode::NOT_FOUND, format!("no route for {host}{path}"), None)),
            Lookup::MethodNotAllowed(allowed) => {
                let allow = HeaderValue::from_str(&allowed.join(", ")).ok().map(|v| (ALLOW, v));
                return Err((StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not routed for {path}"), allow));
            }
        };
        let Some((function, version)) = serving.snapshot.resolve(target) else {
            let what = target.version.as_deref().map_or(String::new(), |v| format!(" version {v}"));
            return Err((StatusCode::NOT_FOUND, format!("function {}{what} not found", target.function_id), None));
        };
        let labels = FunctionLabels { function_id: function.id.clone() };
        let metrics = &self.state.metrics;
        metrics.invokes.get_or_create(&labels).inc();
        let started = Instant::now();
        let result = self.call(function, version, req, path, request_id).await;
        let elapsed = started.elapsed();
        metrics.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
        let status = match &result {
            Ok(reply) => reply.status(),
            Err((status, _, _)) => *status,
        };
        self.state.traffic.record(&function.id, &version.label, Outcome::of(status.as_u16()), elapsed);
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
    async fn call(
        &self,
        module: &Function,
        version: &Version,
        req: Request<TimedBody>,
        path: &str,
        request_id: &str,
    ) -> Result<Reply, Failure> {
        if module.status != Status::Active {
            return Err((StatusCode::SERVICE_UNAVAILABLE, format!("function {} is {}", module.name, module.status), None));
        }
        let is_component = version.kind == Kind::Component;
        let class = self.state.config.classes.of(module.class.as_str());
        // Components stream their bodies, up to the function's limit; a core `handle`
        // function gets the whole request body in its memory, up to the node's buffered limit.
        let body_limit = class.body_limit(module.max_body_bytes);
        let request_limit = if is_component { body_limit } else { body_limit.min(self.state.config.max_buffered_body_bytes) };
        let (parts, body) = req.into_parts();
        let body = RequestBody::new(body, request_limit);
        // A whole body is read before the function takes an instance: a slow upload holds none.
        let body = match is_component {
            true => Payload::Streamed(body),
            false => Payload::Whole(body.collect().await.map_err(|f| (f.status(), f.to_string(), None))?),
        };
        let (timeout_ms, max_memory_bytes) = class.cap(module.timeout_ms as i64, module.max_memory_pages as i64);
        // The function's own HTTP timeout within its class's limit, else the node's default
        // (never more than the function's call timeout).
        let timeout = match module.http_timeout_ms {
            Some(ms) => Duration::from_millis(ms.min(class.max_execution_ms)),
            None => self.state.config.http_timeout.min(Duration::from_millis(timeout_ms)),
        };
        let max_memory_bytes = max_memory_bytes as usize;
        let limits = HttpLimits { timeout, max_memory_bytes, response_cap: DEFAULT_RESPONSE_CAP };
        let settings = PoolSettings {
            min_instances: self.state.config.min_instances,
            max_instances: module.max_instances.max(1) as usize,
            reuse: module.reuse_instances,
            max_memory_bytes,
            max_queue: self.state.config.max_queue,
            env: edgefn_runtime::wasi_env(class.grants, &module.env),
        };
        // A function with a pool is hot: its pool holds the compiled module. Pools are
        // named `<function id>@<version>`, which the pool gauges split into labels.
        let pool_key = format!("{}@{}", module.id, version.label);
        let pool = match self.state.pools.find(&pool_key, &settings) {
            Some(pool) => {
                self.state.metrics.cache_hits.inc();
                pool
            }
            None => {
                let loaded = self.compile(&version.sha256).await.map_err(internal)?;
                if loaded.cache_hit {
                    self.state.metrics.cache_hits.inc()
                } else {
                    self.state.metrics.cache_misses.inc()
                };
                // Pools are bounded per owner: a project (the module's owner if it has none).
                self.state.pools.get(&pool_key, &module.owner, &loaded.module, settings)
            }
        };
        let lease = pool.acquire(timeout).await.map_err(|e| {
            (StatusCode::SERVICE_UNAVAILABLE, format!("{}: {e}", module.name), Some((RETRY_AFTER, HeaderValue::from_static("1"))))
        })?;
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
            env: module.env.clone(),
            allow_hosts: module.allow_hosts.clone(),
            log: self.state.runtime.guest_log(),
            services: Some(self.state.services.clone()),
        };
        let failed = |e: HttpError| {
            let (status, retry) = match &e {
                HttpError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, None),
                HttpError::Malformed(_) => (StatusCode::BAD_GATEWAY, None),
                HttpError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, Some((RETRY_AFTER, HeaderValue::from_static("1")))),
                HttpError::Trap(_) | HttpError::GuestError(_) | HttpError::NotHandleAbi(_) | HttpError::NoResponse => {
                    (StatusCode::INTERNAL_SERVER_ERROR, None)
                }
            };
            (status, format!("{}@{}: {e}", module.name, version.label), retry)
        };
        let reply = match body {
            Payload::Streamed(body) => {
                let failure = body.failure();
                let request = Request::from_parts(parts, body.boxed_unsync());
                match lease.serve_wasi_http(request, limits, ctx).await {
                    Ok(reply) => reply.map(|b| ResponseBody::new(b, body_limit).boxed_unsync()),
                    // The guest failed without answering because its request body did.
                    Err(e) => return Err(failure.get().map_or_else(|| failed(e), |f| (f.status(), f.to_string(), None))),
                }
            }
            Payload::Whole(body) => {
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
            }
        };
        host_framed(reply).map_err(|why| (StatusCode::BAD_GATEWAY, format!("{}@{}: {why}", module.name, version.label), None))
    }
}

/// The canonical host and the normal path a request is routed by; its URI is rewritten
/// to that path, so the function sees what was matched. The request target's authority
/// (absolute form, HTTP/2's `:authority`) wins over `Host` (RFC 9112 §3.2.2); two `Host`
/// headers, or a host that is not one, are a 400.
fn locate(req: &mut Request<TimedBody>) -> Result<(String, String), Failure> {
    let mut hosts = req.headers().get_all(HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err((StatusCode::BAD_REQUEST, "the request has more than one Host header".into(), None));
    }
    let raw = match (req.uri().authority(), header) {
        (Some(authority), _) => authority.host().to_string(),
        (None, Some(value)) => {
            value.to_str().map_err(|_| (StatusCode::BAD_REQUEST, "the Host header is not text".to_string(), None))?.to_string()
        }
        (None, None) => String::new(),
    };
    let host = match raw.is_empty() {
        true => raw,
        false => edgefn_model::canonical_host(&raw).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string(), None))?,
    };
    let path = req.uri().path();
    if edgefn_model::path_is_normal(path) {
        return Ok((host, path.to_string()));
    }
    let normal = edgefn_model::normalize_path(path);
    let target = match req.uri().query() {
        Some(query) => format!("{normal}?{query}"),
        None => normal.clone(),
    };
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(target.parse().map_err(|_| (StatusCode::BAD_REQUEST, format!("the path `{path}` is not valid"), None))?);
    *req.uri_mut() =
        hyper::Uri::from_parts(parts).map_err(|_| (StatusCode::BAD_REQUEST, format!("the path `{path}` is not valid"), None))?;
    Ok((host, normal))
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
