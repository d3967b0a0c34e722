//! The node's Prometheus metrics, with the seeds' names (DESIGN §1.7): calls, latency,
//! errors by function and kind, compiled-module cache hits and misses, guest log lines
//! dropped by the rate limit, guest counters from `metrics_increment`, and the instance
//! pools' gauges (read from the pools at each scrape).

use edgefn_runtime::Pools;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of per-function series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FunctionLabels {
    /// The module id.
    pub function_id: String,
}

/// Labels of the error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The module id.
    pub function_id: String,
    /// `timeout`, `trap`, `malformed`, `saturated`, `disabled` or `internal`.
    pub code: String,
}

/// Labels of a guest-defined counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuestCounterLabels {
    /// The module id.
    pub function_id: String,
    /// The name the guest gave.
    pub name: String,
}

/// Labels of pool gauges: the same `function_id` as the invoke metrics, and the version.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// The module id.
    pub function_id: String,
    /// The version label the pool serves.
    pub version: String,
}

/// Every metric of a node.
pub struct Metrics {
    registry: Registry,
    /// Requests that reached a function.
    pub invokes: Family<FunctionLabels, Counter>,
    /// Time from routing to the response head.
    pub latency: Family<FunctionLabels, Histogram>,
    /// Failed requests by kind.
    pub errors: Family<ErrorLabels, Counter>,
    /// Compiled modules found in the cache.
    pub cache_hits: Counter,
    /// Compiled modules that had to be compiled.
    pub cache_misses: Counter,
    /// Guest log lines over the rate limit.
    pub logs_dropped: Family<FunctionLabels, Counter>,
    /// Counters guests add to with `metrics_increment`.
    pub guest_counters: Family<GuestCounterLabels, Counter>,
    pool_ready: Family<PoolLabels, Gauge>,
    pool_busy: Family<PoolLabels, Gauge>,
    pool_queued: Family<PoolLabels, Gauge>,
    pool_ready_bytes: Gauge,
    artifact_cache_entries: Gauge,
    artifact_cache_bytes: Gauge,
    applied_revision: Gauge,
}

/// Latency buckets from 50 µs to 10 s.
const LATENCY_BUCKETS: [f64; 17] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let invokes = Family::<FunctionLabels, Counter>::default();
        registry.register("wasm_invoke_count", "Requests that reached a function", invokes.clone());
        let latency = Family::<FunctionLabels, Histogram>::new_with_constructor(new_histogram as fn() -> Histogram);
        registry.register("wasm_invoke_latency_seconds", "Time to run a function and get its response head", latency.clone());
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register("wasm_invoke_errors", "Failed requests by function and kind", errors.clone());
        let cache_hits = Counter::default();
        registry.register("wasm_cache_hits", "Compiled modules found in memory or on disk", cache_hits.clone());
        let cache_misses = Counter::default();
        registry.register("wasm_cache_misses", "Modules that had to be compiled", cache_misses.clone());
        let logs_dropped = Family::<FunctionLabels, Counter>::default();
        registry.register("wasm_guest_logs_dropped", "Guest log lines dropped over the 1000 lines/s limit", logs_dropped.clone());
        let guest_counters = Family::<GuestCounterLabels, Counter>::default();
        registry.register("wasm_guest_counter", "Counters guests add to with metrics_increment", guest_counters.clone());
        let pool_ready = Family::<PoolLabels, Gauge>::default();
        registry.register("wasm_pool_ready_instances", "Instances made and waiting for a request", pool_ready.clone());
        let pool_busy = Family::<PoolLabels, Gauge>::default();
        registry.register("wasm_pool_busy_instances", "Requests a pool is running", pool_busy.clone());
        let pool_queued = Family::<PoolLabels, Gauge>::default();
        registry.register("wasm_pool_queued_requests", "Requests waiting for a busy function", pool_queued.clone());
        let pool_ready_bytes = Gauge::default();
        registry.register("wasm_pool_ready_memory_bytes", "Linear memory held by ready instances", pool_ready_bytes.clone());
        let artifact_cache_entries = Gauge::default();
        registry.register("edgefn_artifact_cache_entries", "Artifacts in the node's disk cache", artifact_cache_entries.clone());
        let artifact_cache_bytes = Gauge::default();
        registry.register("edgefn_artifact_cache_bytes", "Bytes of artifacts in the node's disk cache", artifact_cache_bytes.clone());
        let applied_revision = Gauge::default();
        registry.register("edgefn_applied_revision", "The control plane revision this node serves", applied_revision.clone());
        Self {
            registry,
            invokes,
            latency,
            errors,
            cache_hits,
            cache_misses,
            logs_dropped,
            guest_counters,
            pool_ready,
            pool_busy,
            pool_queued,
            pool_ready_bytes,
            artifact_cache_entries,
            artifact_cache_bytes,
            applied_revision,
        }
    }
}

fn new_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// The text exposition format, with the gauges as they are now: pools, the
    /// artifact cache's `(entries, bytes)` and the applied revision.
    pub fn render(&self, pools: &Pools, cache: (usize, u64), revision: u64) -> String {
        self.artifact_cache_entries.set(cache.0 as i64);
        self.artifact_cache_bytes.set(cache.1 as i64);
        self.applied_revision.set(revision as i64);
        self.pool_ready.clear();
        self.pool_busy.clear();
        self.pool_queued.clear();
        for stats in pools.stats() {
            let (function_id, version) = stats.key.split_once('@').unwrap_or((&stats.key, ""));
            let labels = PoolLabels { function_id: function_id.to_string(), version: version.to_string() };
            self.pool_ready.get_or_create(&labels).set(stats.ready as i64);
            self.pool_busy.get_or_create(&labels).set(stats.busy as i64);
            self.pool_queued.get_or_create(&labels).set(stats.queued as i64);
        }
        self.pool_ready_bytes.set(pools.ready_bytes() as i64);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}
