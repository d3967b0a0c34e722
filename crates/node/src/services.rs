//! What host functions reach on a node ([`HostServices`]): counts of guest log lines
//! dropped by the runtime's rate limit; guest counters as metrics; the node's key-value
//! store; outbound HTTP with a timeout, no redirects and a size cap.

use std::sync::Arc;
use std::time::Duration;

use edgefn_runtime::{CallContext, FetchRequest, HostFuture, HostServices};

use crate::kv::KvStore;
use crate::metrics::{FunctionLabels, GuestCounterLabels, Metrics};

/// Longest an outbound request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest outbound response body a guest receives.
const MAX_FETCH_RESPONSE_BYTES: usize = 1024 * 1024;

/// The node's host services.
pub struct NodeServices {
    kv: Arc<dyn KvStore>,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
}

impl NodeServices {
    /// Services over the node's key-value store and metrics.
    pub fn new(kv: Arc<dyn KvStore>, metrics: Arc<Metrics>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            // A redirect could leave the allow-list; the guest sees the 3xx instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { kv, metrics, http })
    }
}

impl HostServices for NodeServices {
    fn log_dropped(&self, ctx: &CallContext) {
        self.metrics.logs_dropped.get_or_create(&FunctionLabels { function_id: ctx.function_id.to_string() }).inc();
    }

    fn metrics_increment(&self, ctx: &CallContext, name: &str, value: u64) {
        let labels = GuestCounterLabels { function_id: ctx.function_id.to_string(), name: name.chars().take(100).collect() };
        self.metrics.guest_counters.get_or_create(&labels).inc_by(value);
    }

    fn kv_get(&self, function_id: &str, key: &str) -> HostFuture<Option<Vec<u8>>> {
        self.kv.get(function_id, key)
    }

    fn kv_put(&self, function_id: &str, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> HostFuture<()> {
        self.kv.put(function_id, key, value, ttl)
    }

    fn http_fetch(&self, request: FetchRequest) -> HostFuture<Vec<u8>> {
        let http = self.http.clone();
        Box::pin(async move {
            let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
            let mut builder = http.request(method, &request.url).body(request.body);
            for (name, value) in &request.headers {
                builder = builder.header(name, value);
            }
            let mut response = builder.send().await?;
            let mut out = format!("{}\n", response.status().as_u16()).into_bytes();
            for (name, value) in response.headers() {
                out.extend_from_slice(name.as_str().as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(value.as_bytes());
                out.push(b'\n');
            }
            out.push(b'\n');
            let head = out.len();
            while let Some(chunk) = response.chunk().await? {
                anyhow::ensure!(
                    out.len() - head + chunk.len() <= MAX_FETCH_RESPONSE_BYTES,
                    "the response is over {MAX_FETCH_RESPONSE_BYTES} bytes"
                );
                out.extend_from_slice(&chunk);
            }
            Ok(out)
        })
    }
}
