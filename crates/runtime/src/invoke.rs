//! Calling an exported function with JSON: a fresh store per call with its memory cap
//! and deadline, instantiation from the pre-linked module, argument mapping, and trap
//! classification (timeout, memory, trap).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value as Json;
use wasmtime::{Store, Trap, UpdateDeadline};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::{ResourceTable, p1::WasiP1Ctx};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::component_json::type_name;
use crate::component_json::{json_to_val, val_to_json};
use crate::core_abi;
use crate::error::InvokeError;
use crate::guest_output::GuestOutput;
use crate::host::CallContext;
use crate::inspect::{component_exports, component_function, core_function};
use crate::lanes::Lane;
use crate::limits::{MemoryLimitExceeded, MemoryLimiter};
use crate::runtime::{Compiled, Inner};

/// Timeout of a call when the caller gives none: the seeds' limit for user modules.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long past its deadline a call on the slow lanes may take to notice it, when every
/// core is busy and the lanes get no time, before its caller stops waiting.
pub(crate) const STARVED_GRACE: Duration = Duration::from_millis(100);
/// Memory cap of a call when the caller gives none: the seeds' 50 MB for user modules.
pub const DEFAULT_MAX_MEMORY_BYTES: usize = 50 * 1024 * 1024;

/// How to read a core function's result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultEncoding {
    /// Plain numbers (the default).
    #[default]
    Values,
    /// A UTF-8 string read from guest memory.
    String,
    /// Bytes read from guest memory, returned as `{"base64": …}`.
    Bytes,
    /// A JSON document read from guest memory.
    Json,
}

/// One call.
#[derive(Clone)]
pub struct InvokeRequest {
    /// Exported function name (`interface#func` inside component interfaces).
    pub function: String,
    /// A JSON array of positional arguments; for components also an object by name.
    pub args: Json,
    /// Wall-clock limit for instantiation plus the call.
    pub timeout: Duration,
    /// Linear memory cap for the call.
    pub max_memory_bytes: usize,
    /// How to read a core function's result.
    pub result: ResultEncoding,
    /// Grants, configuration and services for host functions (none by default).
    pub context: CallContext,
}

impl InvokeRequest {
    /// A call with default limits.
    pub fn new(function: impl Into<String>, args: Json) -> Self {
        Self {
            function: function.into(),
            args,
            timeout: DEFAULT_TIMEOUT,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            result: ResultEncoding::Values,
            context: CallContext::default(),
        }
    }
}

/// What a successful call returned.
#[derive(Debug, Clone)]
pub struct InvokeOutput {
    /// The result as JSON.
    pub result: Json,
    /// Peak linear memory of the instance.
    pub memory_used_bytes: u64,
    /// Time spent instantiating and running.
    pub elapsed: Duration,
}

/// The WASI environment of a module's instances: its configuration values `env` when its
/// class may read them (`grants` has `env_get`), else none.
pub fn wasi_env(grants: crate::Grants, env: &Arc<BTreeMap<String, String>>) -> Arc<BTreeMap<String, String>> {
    if grants.allows("env_get") { env.clone() } else { Arc::default() }
}

/// Store data for core modules.
pub(crate) struct CoreHost {
    pub(crate) limiter: MemoryLimiter,
    pub(crate) wasi: WasiP1Ctx,
    /// The request a call serves, for host functions.
    pub(crate) ctx: CallContext,
    /// Where the guest's stdout and stderr go.
    pub(crate) output: GuestOutput,
}

/// Store data for components.
pub(crate) struct ComponentHost {
    pub(crate) limiter: MemoryLimiter,
    /// The request a call serves.
    pub(crate) ctx: CallContext,
    /// Where the guest's stdout and stderr go.
    pub(crate) output: GuestOutput,
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
}

/// What both kinds of store data do when a request starts and ends.
pub(crate) trait Serving {
    /// The instance starts serving the request of `ctx`.
    fn begin(&mut self, ctx: CallContext);
    /// The guest's output, for the end of the request and the trap it explains.
    fn output(&self) -> &GuestOutput;
}

impl Serving for CoreHost {
    fn begin(&mut self, ctx: CallContext) {
        self.output.begin(&ctx);
        self.ctx = ctx;
    }
    fn output(&self) -> &GuestOutput {
        &self.output
    }
}

impl Serving for ComponentHost {
    fn begin(&mut self, ctx: CallContext) {
        self.output.begin(&ctx);
        self.ctx = ctx;
    }
    fn output(&self) -> &GuestOutput {
        &self.output
    }
}

/// `error` with what the guest last wrote to stderr when it trapped (a panic message).
pub(crate) fn explained(error: InvokeError, output: &GuestOutput) -> InvokeError {
    match (error, output.stderr_tail()) {
        (InvokeError::Trap(trap), Some(stderr)) => InvokeError::Trap(format!("{trap}; the function wrote to stderr: {stderr}")),
        (error, _) => error,
    }
}

impl WasiView for ComponentHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for ComponentHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.ctx }
    }
}

/// A store for one call of a component: memory cap, deadline, sandboxed WASI and HTTP.
pub(crate) fn component_store(
    engine: &wasmtime::Engine,
    limiter: MemoryLimiter,
    env: &BTreeMap<String, String>,
    deadline: Instant,
    lane: &Lane,
) -> Store<ComponentHost> {
    let output = GuestOutput::default();
    let host = ComponentHost {
        limiter,
        ctx: CallContext::default(),
        wasi: sandbox(env, &output).build(),
        output,
        table: ResourceTable::new(),
        http: WasiHttpCtx::new(),
    };
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limiter);
    arm_deadline(&mut store, deadline, lane);
    store
}

/// WASI as a function sees it: the environment `env`, stdout and stderr into `output`, no
/// arguments, files or network, an empty stdin; the host's clocks and random numbers.
/// (Sockets are already denied by default; saying so keeps it true if that changes.)
fn sandbox(env: &BTreeMap<String, String>, output: &GuestOutput) -> WasiCtxBuilder {
    let mut b = WasiCtxBuilder::new();
    let (stdout, stderr) = output.pipes();
    b.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false).stdout(stdout).stderr(stderr);
    for (name, value) in env {
        b.env(name, value);
    }
    b
}

/// A store for one call of a core module: memory cap, deadline, sandboxed WASI.
pub(crate) fn core_store(
    engine: &wasmtime::Engine,
    limiter: MemoryLimiter,
    env: &BTreeMap<String, String>,
    deadline: Instant,
    lane: &Lane,
) -> Store<CoreHost> {
    let output = GuestOutput::default();
    let wasi = sandbox(env, &output).build_p1();
    let mut store = Store::new(engine, CoreHost { limiter, wasi, ctx: CallContext::default(), output });
    store.limiter(|h| &mut h.limiter);
    arm_deadline(&mut store, deadline, lane);
    store
}

/// Arms the store's deadline and CPU sharing: the guest yields to the executor every
/// epoch tick, and `lane` counts the CPU it uses and says when it has run long enough to
/// move to the slow lanes ([`crate::lanes`]). Past `deadline` the guest is interrupted; a
/// call that is not running then is ended by [`with_deadline`].
pub(crate) fn arm_deadline<T>(store: &mut Store<T>, deadline: Instant, lane: &Lane) {
    let lane = lane.clone();
    lane.resume();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            return Ok(UpdateDeadline::Interrupt);
        }
        Ok(lane.tick())
    });
}

/// Runs a call future to completion or until `deadline`, whichever is first.
pub(crate) async fn with_deadline<R, E>(deadline: Instant, timeout: Duration, call: impl Future<Output = Result<R, E>>) -> Result<R, E>
where
    E: From<InvokeError>,
{
    match tokio::time::timeout_at(deadline.into(), call).await {
        Ok(result) => result,
        Err(_) => Err(InvokeError::Timeout { timeout_ms: timeout.as_millis() as u64 }.into()),
    }
}

/// Sorts a wasmtime error into timeout, no free instance slot, memory, trap or platform
/// fault.
pub(crate) fn classify(err: wasmtime::Error, timeout: Duration) -> InvokeError {
    if let Some(limit) = err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return InvokeError::Busy(limit.to_string());
    }
    if let Some(Trap::Interrupt) = err.downcast_ref::<Trap>() {
        return InvokeError::Timeout { timeout_ms: timeout.as_millis() as u64 };
    }
    if let Some(mem) = err.downcast_ref::<MemoryLimitExceeded>() {
        return InvokeError::Trap(mem.to_string());
    }
    if let Some(trap) = err.downcast_ref::<Trap>() {
        let place = err
            .downcast_ref::<wasmtime::WasmBacktrace>()
            .and_then(|bt| bt.frames().first().and_then(|f| f.func_name().map(|n| format!(" in function `{n}`"))))
            .unwrap_or_default();
        return InvokeError::Trap(format!("{trap}{place}"));
    }
    InvokeError::Trap(format!("{:#}", anyhow::Error::from(err)))
}

/// A call's result and the peak memory of its store.
type Called = (Result<Json, InvokeError>, usize);

pub(crate) async fn invoke(inner: &Inner, compiled: &Compiled, req: InvokeRequest) -> Result<InvokeOutput, InvokeError> {
    let started = Instant::now();
    let deadline = started + req.timeout;
    let timeout = req.timeout;
    let limiter = MemoryLimiter::new(req.max_memory_bytes);
    let env = wasi_env(req.context.grants, &req.context.env);
    let lane = Lane::new(false);
    // The call owns its store, so it may move to the slow lanes; its result comes back
    // with what the store says of it (stderr, peak memory).
    let call: std::pin::Pin<Box<dyn Future<Output = Called> + Send>> = match compiled {
        Compiled::Core { pre, .. } => {
            let mut store = core_store(&inner.engine, limiter, &env, deadline, &lane);
            store.data_mut().begin(req.context.clone());
            let pre = pre.clone();
            Box::pin(async move {
                let result = with_deadline(deadline, timeout, call_core(&mut store, &pre, &req)).await;
                (ended(result, store.data()), store.data().limiter.peak_bytes())
            })
        }
        Compiled::Component { component, pre, .. } => {
            let mut store = component_store(&inner.engine, limiter, &env, deadline, &lane);
            store.data_mut().begin(req.context.clone());
            let (engine, component, pre) = (inner.engine.clone(), component.clone(), pre.clone());
            Box::pin(async move {
                let result = with_deadline(deadline, timeout, call_component(&engine, &mut store, &component, &pre, &req)).await;
                (ended(result, store.data()), store.data().limiter.peak_bytes())
            })
        }
    };
    // A call starved on the slow lanes (every core busy) still ends soon after its deadline.
    let (result, peak) = match tokio::time::timeout_at((deadline + STARVED_GRACE).into(), inner.lanes.run(lane, call)).await {
        Ok(done) => done,
        Err(_) => (Err(InvokeError::Timeout { timeout_ms: timeout.as_millis() as u64 }), 0),
    };
    Ok(InvokeOutput { result: result?, memory_used_bytes: peak as u64, elapsed: started.elapsed() })
}

/// Ends a call's request: its last output line written, a trap explained by its stderr.
pub(crate) fn ended<R>(result: Result<R, InvokeError>, host: &impl Serving) -> Result<R, InvokeError> {
    let result = result.map_err(|e| explained(e, host.output()));
    host.output().end();
    result
}

fn positional(args: &Json, signature: &str) -> Result<Vec<Json>, InvokeError> {
    match args {
        Json::Array(items) => Ok(items.clone()),
        Json::Null => Ok(vec![]),
        _ => Err(InvokeError::BadArguments { message: "args must be a JSON array".into(), signature: signature.into() }),
    }
}

async fn call_core(store: &mut Store<CoreHost>, pre: &wasmtime::InstancePre<CoreHost>, req: &InvokeRequest) -> Result<Json, InvokeError> {
    let instance = pre.instantiate_async(&mut *store).await.map_err(|e| classify(e, req.timeout))?;
    let Some(func) = instance.get_func(&mut *store, &req.function) else {
        let available = pre
            .module()
            .exports()
            .filter_map(|e| e.ty().func().map(|f| core_function(e.name(), f).signature))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(InvokeError::UnknownFunction { name: req.function.clone(), available });
    };
    let ty = func.ty(&*store);
    let signature = core_function(&req.function, &ty).signature;
    let args = positional(&req.args, &signature)?;
    let params = core_abi::lower_args(&mut *store, &instance, &ty, &args, &signature).await?;
    let mut results = vec![wasmtime::Val::I32(0); ty.results().len()];
    func.call_async(&mut *store, &params, &mut results).await.map_err(|e| classify(e, req.timeout))?;
    core_abi::lift_results(&mut *store, &instance, &results, req.result)
}

async fn call_component(
    engine: &wasmtime::Engine,
    store: &mut Store<ComponentHost>,
    component: &wasmtime::component::Component,
    pre: &wasmtime::component::InstancePre<ComponentHost>,
    req: &InvokeRequest,
) -> Result<Json, InvokeError> {
    let unknown = || InvokeError::UnknownFunction {
        name: req.function.clone(),
        available: component_exports(engine, component).into_iter().map(|f| f.signature).collect::<Vec<_>>().join(", "),
    };
    let index = match req.function.split_once('#') {
        Some((iface, func)) => {
            let iface = component.get_export_index(None, iface).ok_or_else(unknown)?;
            component.get_export_index(Some(&iface), func)
        }
        None => component.get_export_index(None, &req.function),
    }
    .ok_or_else(unknown)?;
    let instance = pre.instantiate_async(&mut *store).await.map_err(|e| classify(e, req.timeout))?;
    let func = instance.get_func(&mut *store, index).ok_or_else(unknown)?;
    let ty = func.ty(&*store);
    let signature = component_function(&req.function, &ty).signature;
    let bad = |message: String| InvokeError::BadArguments { message, signature: signature.clone() };
    let param_types: Vec<(String, wasmtime::component::types::Type)> = ty.params().map(|(n, t)| (n.to_string(), t)).collect();
    let args: Vec<Json> = match &req.args {
        Json::Object(obj) => {
            if let Some(extra) = obj.keys().find(|k| !param_types.iter().any(|(n, _)| n == *k)) {
                return Err(bad(format!("unknown parameter `{extra}`")));
            }
            param_types.iter().map(|(n, _)| obj.get(n).cloned().unwrap_or(Json::Null)).collect()
        }
        other => positional(other, &signature)?,
    };
    if args.len() != param_types.len() {
        return Err(bad(format!("expected {} arguments, got {}", param_types.len(), args.len())));
    }
    let mut params = Vec::with_capacity(args.len());
    for ((name, ty), arg) in param_types.iter().zip(&args) {
        params.push(json_to_val(ty, arg).map_err(|m| bad(format!("parameter `{name}` ({}): {m}", type_name(ty))))?);
    }
    let mut results = vec![wasmtime::component::Val::Bool(false); ty.results().len()];
    func.call_async(&mut *store, &params, &mut results).await.map_err(|e| classify(e, req.timeout))?;
    Ok(match results.as_slice() {
        [] => Json::Null,
        [one] => val_to_json(one),
        many => Json::Array(many.iter().map(val_to_json).collect()),
    })
}
