//! Hot instance pools for HTTP functions.
//!
//! Each deployed function has a [`Pool`]: instances made ahead of time from its pre-linked
//! module, so a request only takes one and calls it — no compilation, linking or (while a
//! warm instance is ready) instantiation on the request path. By default an instance
//! serves one request and is thrown away, so nothing leaks between requests; a function
//! may opt in to reuse, and then a healthy instance goes back to the pool. A pool also
//! bounds how many requests the function runs at once: past `max_instances` requests
//! wait in a short queue and past that they are refused ([`Saturated`], a 503).
//!
//! [`Pools`] holds every function's pool, drops pools idle for longer than the idle
//! timeout, and keeps the memory of ready instances under the node's budget by emptying
//! the least recently used pools first.
//!
//! **Slots under pressure.** Every instance, ready or running, holds a slot of the
//! engine's pooling allocator. Ready instances may hold at most three quarters of the
//! slots ([`Pools::ready_limit`]), so requests always find slots to run in, and one owner's
//! ready instances at most half of those ([`Pools::owner_limit`]), so one tenant with many
//! functions cannot keep everyone else's cold. Past either bound, pools give back the
//! instances of the least recently used pools (the owner's own, for the owner bound)
//! before they make more. And when a request still finds no free slot, the least recently
//! used pools give theirs back and it tries again; a request never fails because other
//! functions are warm, only (503) when every slot is running a request.
//!
//! Instances are made ahead of time on one background thread at the lowest CPU priority
//! (`SCHED_IDLE`): that work is speculative, so it only ever uses time no request wants.
//! When every core is busy serving, requests find no ready instance and make their own.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::Store;

use crate::core_abi::GuestAlloc;
use crate::http_abi::{self, HttpError, HttpLimits, HttpRequest, HttpResponse};
use crate::invoke::{ComponentHost, CoreHost, Serving, classify, component_store, core_store};
use crate::lanes::Lane;
use crate::limits::MemoryLimiter;
use crate::runtime::{Compiled, HttpEntryPre, NOT_HTTP, Runtime};
use crate::wasi_http::{self, HttpBody, HttpEntry};
use crate::{CallContext, InvokeError};

/// Ready instances a pool keeps by default.
pub const DEFAULT_MIN_INSTANCES: usize = 1;
/// Requests a function runs at once by default (the default pool maximum).
pub const DEFAULT_MAX_INSTANCES: usize = 10;
/// A pool unused this long is dropped.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Linear memory that ready (idle) instances of all pools may declare together. Declared,
/// not resident: a ready instance has touched only its data image, so 2 GiB keeps 1,000
/// functions of ~1 MiB memory hot while bounding what they could grow to.
pub const DEFAULT_MEMORY_BUDGET_BYTES: usize = 2 * 1024 * 1024 * 1024;
/// Requests that may wait for a busy function; more are refused at once.
pub const DEFAULT_MAX_QUEUE: usize = 1000;

/// How one function's instances are kept, and the WASI environment they are made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// Ready instances kept made ahead of time.
    pub min_instances: usize,
    /// Requests run at once (and instances kept at most).
    pub max_instances: usize,
    /// Whether an instance serves more than one request.
    pub reuse: bool,
    /// Linear memory cap of each instance.
    pub max_memory_bytes: usize,
    /// Requests that may wait when all `max_instances` are busy.
    pub max_queue: usize,
    /// The WASI environment of the function's instances (its configuration values, when
    /// its class may read them): set once, when an instance is made, not per request.
    pub env: Arc<BTreeMap<String, String>>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            min_instances: DEFAULT_MIN_INSTANCES,
            max_instances: DEFAULT_MAX_INSTANCES,
            reuse: false,
            max_memory_bytes: crate::invoke::DEFAULT_MAX_MEMORY_BYTES,
            max_queue: DEFAULT_MAX_QUEUE,
            env: Arc::default(),
        }
    }
}

/// The function is running `max_instances` requests and its queue is full, or a request
/// waited in the queue until its deadline: answer 503 and ask the client to come back.
#[derive(Debug, thiserror::Error)]
#[error("the function is at its limit of {max_instances} concurrent requests; try again shortly")]
pub struct Saturated {
    /// The function's concurrency limit.
    pub max_instances: usize,
}

/// A ready instance.
enum Warm {
    Core { store: Store<CoreHost>, guest: GuestAlloc, handle: http_abi::HandleFunc },
    Component { store: Store<ComponentHost>, entry: HttpEntry },
}

impl Warm {
    fn memory_bytes(&self) -> usize {
        match self {
            Warm::Core { store, .. } => store.data().limiter.current_bytes(),
            Warm::Component { store, .. } => store.data().limiter.current_bytes(),
        }
    }
}

/// Figures of one pool, for metrics.
#[derive(Debug, Clone)]
pub struct PoolStats {
    /// The pool's key (the function version it serves).
    pub key: String,
    /// Instances made and waiting for a request.
    pub ready: usize,
    /// Requests running now.
    pub busy: usize,
    /// Requests waiting for a free slot.
    pub queued: usize,
    /// Linear memory held by the ready instances.
    pub ready_bytes: usize,
}

/// One function's instances.
pub struct Pool {
    key: String,
    /// Whose function it is (a project): the unit of the per-owner bound.
    owner: Arc<str>,
    /// Ready instances of all of this owner's pools.
    owner_ready: Arc<AtomicUsize>,
    runtime: Runtime,
    compiled: Arc<Compiled>,
    /// Why the module cannot serve HTTP, if it cannot.
    unservable: Option<String>,
    settings: PoolSettings,
    ready: Mutex<Vec<(Warm, usize)>>,
    slots: Arc<Semaphore>,
    queued: AtomicUsize,
    refilling: AtomicBool,
    /// Whether its last call ran long: the next one starts on the slow lanes.
    last_ran_long: AtomicBool,
    /// Milliseconds since `Pools::epoch` of the last request.
    last_used_ms: AtomicU64,
    shared: Arc<Shared>,
}

/// What all pools share: the clock they measure idleness with, the memory and number of
/// ready instances against their bounds, the registry of pools (to take instances back
/// from), and the background thread that fills pools.
struct Shared {
    epoch: Instant,
    ready_bytes: AtomicUsize,
    budget_bytes: usize,
    ready_count: AtomicUsize,
    /// Most ready instances of all pools.
    ready_limit: usize,
    /// Most ready instances of one owner's pools.
    owner_limit: usize,
    /// Ready-instance counts by owner.
    owners: Mutex<HashMap<Arc<str>, Arc<AtomicUsize>>>,
    /// Every pool (held by [`Pools`]; weak here, so pools and the registry do not keep
    /// each other alive).
    registry: std::sync::Weak<Mutex<HashMap<String, Arc<Pool>>>>,
    refills: std::sync::mpsc::Sender<Arc<Pool>>,
}

/// Starts the thread that fills pools, at the lowest CPU priority; it ends when the
/// pools are dropped.
fn start_filler() -> std::sync::mpsc::Sender<Arc<Pool>> {
    let (tx, rx) = std::sync::mpsc::channel::<Arc<Pool>>();
    let thread = std::thread::Builder::new().name("edgefn-pool-fill".into()).spawn(move || {
        lowest_cpu_priority();
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a current-thread runtime builds");
        while let Ok(pool) = rx.recv() {
            // A bug while filling one pool must not end the filling of every pool.
            let filled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rt.block_on(pool.fill())));
            if filled.is_err() {
                tracing::error!(pool = pool.key, "filling the pool panicked; it will be filled again on its next request");
                pool.refilling.store(false, Ordering::Release);
            }
        }
    });
    thread.expect("spawning the pool-fill thread");
    tx
}

/// Moves the calling thread to `SCHED_IDLE`: it runs only when a core has nothing else.
#[expect(unsafe_code, reason = "sched_setscheduler on the calling thread (pid 0) with a valid, initialised parameter")]
fn lowest_cpu_priority() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is a valid sched_param that outlives the call; pid 0 is this thread.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower the pool-fill thread's priority");
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Every pool, least recently used first.
    fn pools_by_age(&self) -> Vec<Arc<Pool>> {
        let Some(registry) = self.registry.upgrade() else { return Vec::new() };
        // Each pool's time read once: sorting on the live atomics, which requests move
        // while the sort runs, would not be a total order.
        let mut pools: Vec<(u64, Arc<Pool>)> = registry
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|p| (p.last_used_ms.load(Ordering::Relaxed), p.clone()))
            .collect();
        pools.sort_by_key(|(used, _)| *used);
        pools.into_iter().map(|(_, p)| p).collect()
    }

    /// Empties the least recently used pool that has ready instances, is not `keep`, was
    /// used before `before_ms` and (when `owner` is given) belongs to that owner; returns
    /// whether one gave instances back.
    fn reclaim(&self, keep: &Pool, before_ms: u64, owner: Option<&str>) -> bool {
        self.pools_by_age().iter().any(|p| {
            !std::ptr::eq(&**p, keep)
                && p.last_used_ms.load(Ordering::Relaxed) <= before_ms
                && owner.is_none_or(|o| *p.owner == *o)
                && p.drain() > 0
        })
    }
}

/// The right to run one request on a pool; the slot is freed when it is dropped.
pub struct Lease {
    pool: Arc<Pool>,
    _slot: OwnedSemaphorePermit,
}

impl Pool {
    /// Waits (at most `wait`, and only while the queue has room) for a free slot.
    pub async fn acquire(self: &Arc<Self>, wait: Duration) -> Result<Lease, Saturated> {
        self.last_used_ms.store(self.shared.now_ms(), Ordering::Relaxed);
        let saturated = || Saturated { max_instances: self.settings.max_instances };
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if self.queued.fetch_add(1, Ordering::AcqRel) >= self.settings.max_queue {
                    self.queued.fetch_sub(1, Ordering::AcqRel);
                    return Err(saturated());
                }
                let waited = tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await;
                self.queued.fetch_sub(1, Ordering::AcqRel);
                match waited {
                    Ok(Ok(slot)) => slot,
                    _ => return Err(saturated()),
                }
            }
        };
        Ok(Lease { pool: self.clone(), _slot: slot })
    }

    /// This pool's figures.
    pub fn stats(&self) -> PoolStats {
        let ready = self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        PoolStats {
            key: self.key.clone(),
            ready: ready.len(),
            busy: self.settings.max_instances - self.slots.available_permits(),
            queued: self.queued.load(Ordering::Relaxed),
            ready_bytes: ready.iter().map(|(_, bytes)| bytes).sum(),
        }
    }

    /// Where a request's call starts: on the slow lanes if the last one ran long.
    fn lane(&self) -> Lane {
        Lane::new(self.last_ran_long.load(Ordering::Relaxed))
    }

    /// Notes whether a request's call ran long, for the next one.
    fn remember(&self, lane: &Lane) {
        self.last_ran_long.store(lane.ran_long(), Ordering::Relaxed);
    }

    /// A ready instance, or a new one made now.
    async fn take(&self, deadline: Instant, timeout: Duration, lane: &Lane) -> Result<Warm, InvokeError> {
        match self.pop_ready() {
            Some(warm) => Ok(warm),
            None => self.instantiate_for_request(deadline, timeout, lane).await,
        }
    }

    /// Adds a ready instance to the pool and to the counts.
    fn push_ready(&self, warm: Warm) {
        let bytes = warm.memory_bytes();
        self.ready.lock().unwrap_or_else(PoisonError::into_inner).push((warm, bytes));
        self.counted(1, bytes, true);
    }

    /// Takes a ready instance out of the pool and the counts.
    fn pop_ready(&self) -> Option<Warm> {
        let (warm, bytes) = self.ready.lock().unwrap_or_else(PoisonError::into_inner).pop()?;
        self.counted(1, bytes, false);
        Some(warm)
    }

    /// Adds (`up`) or removes `count` ready instances holding `bytes`.
    fn counted(&self, count: usize, bytes: usize, up: bool) {
        if up {
            self.shared.ready_bytes.fetch_add(bytes, Ordering::Relaxed);
            self.shared.ready_count.fetch_add(count, Ordering::Relaxed);
            self.owner_ready.fetch_add(count, Ordering::Relaxed);
        } else {
            self.shared.ready_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.shared.ready_count.fetch_sub(count, Ordering::Relaxed);
            self.owner_ready.fetch_sub(count, Ordering::Relaxed);
        }
    }

    /// An instance for a request: when every slot is taken, the least recently used pools
    /// give back their ready instances and it tries again, until none has any left
    /// ([`InvokeError::Busy`], a 503, when every slot runs a request).
    async fn instantiate_for_request(&self, deadline: Instant, timeout: Duration, lane: &Lane) -> Result<Warm, InvokeError> {
        loop {
            match self.instantiate(deadline, timeout, lane).await {
                Err(InvokeError::Busy(_)) if self.shared.reclaim(self, u64::MAX, None) => {}
                other => return other,
            }
        }
    }

    async fn instantiate(&self, deadline: Instant, timeout: Duration, lane: &Lane) -> Result<Warm, InvokeError> {
        let inner = self.runtime.inner();
        let limiter = MemoryLimiter::new(self.settings.max_memory_bytes);
        match &*self.compiled {
            Compiled::Core { pre } => {
                let mut store = core_store(&inner.engine, limiter, &self.settings.env, deadline, lane);
                let instance = pre.instantiate_async(&mut store).await.map_err(|e| classify(e, timeout))?;
                let guest = GuestAlloc::find(&mut store, &instance).map_err(|e| InvokeError::Trap(e.to_string()))?;
                let handle = http_abi::handle_func(&mut store, &instance)?;
                Ok(Warm::Core { store, guest, handle })
            }
            Compiled::Component { http: Some(pre), .. } => {
                let mut store = component_store(&inner.engine, limiter, &self.settings.env, deadline, lane);
                let entry = match pre {
                    HttpEntryPre::P2(pre) => pre.instantiate_async(&mut store).await.map(HttpEntry::P2),
                    HttpEntryPre::P3(pre) => pre.instantiate_async(&mut store).await.map(HttpEntry::P3),
                };
                Ok(Warm::Component { store, entry: entry.map_err(|e| classify(e, timeout))? })
            }
            Compiled::Component { http: None, .. } => Err(InvokeError::Trap(NOT_HTTP.into())),
        }
    }

    /// Puts an instance back (when reuse is on and there is room) and tops the pool up to
    /// its minimum in the background.
    fn give_back(self: &Arc<Self>, warm: Option<Warm>) {
        if let Some(warm) = warm.filter(|_| self.settings.reuse) {
            let room = self.ready.lock().unwrap_or_else(PoisonError::into_inner).len() < self.settings.max_instances;
            if room && self.may_keep_another() {
                self.push_ready(warm);
            }
        }
        self.refill();
    }

    /// Whether one more ready instance fits the node's and the owner's bounds, after
    /// taking instances back from pools used less recently than this one if needed.
    fn may_keep_another(&self) -> bool {
        let mine = self.last_used_ms.load(Ordering::Relaxed);
        while self.owner_ready.load(Ordering::Relaxed) >= self.shared.owner_limit {
            if !self.shared.reclaim(self, mine, Some(&self.owner)) {
                return false;
            }
        }
        while self.shared.ready_count.load(Ordering::Relaxed) >= self.shared.ready_limit {
            if !self.shared.reclaim(self, mine, None) {
                return false;
            }
        }
        true
    }

    /// Asks the background thread to make instances until `min_instances` are ready.
    fn refill(self: &Arc<Self>) {
        if self.unservable.is_some()
            || self.ready.lock().unwrap_or_else(PoisonError::into_inner).len() >= self.settings.min_instances
            || self.refilling.swap(true, Ordering::AcqRel)
        {
            return;
        }
        if self.shared.refills.send(self.clone()).is_err() {
            self.refilling.store(false, Ordering::Release);
        }
    }

    /// Makes instances until `min_instances` are ready (on the pool-fill thread).
    async fn fill(&self) {
        while self.ready.lock().unwrap_or_else(PoisonError::into_inner).len() < self.settings.min_instances {
            if self.shared.ready_bytes.load(Ordering::Relaxed) > self.shared.budget_bytes || !self.may_keep_another() {
                break;
            }
            let timeout = crate::invoke::DEFAULT_TIMEOUT;
            // This thread is at the lowest priority already: a long start needs no other lane.
            match self.instantiate(Instant::now() + timeout, timeout, &Lane::new(false)).await {
                Ok(warm) => self.push_ready(warm),
                // Slots are taken by running requests: ready instances can wait.
                Err(InvokeError::Busy(_)) => break,
                Err(e) => {
                    tracing::warn!(pool = self.key, error = %e, "could not make a ready instance");
                    break;
                }
            }
        }
        self.refilling.store(false, Ordering::Release);
    }

    /// Drops every ready instance; returns how many.
    fn drain(&self) -> usize {
        let drained: Vec<(Warm, usize)> = std::mem::take(&mut *self.ready.lock().unwrap_or_else(PoisonError::into_inner));
        let bytes = drained.iter().map(|(_, b)| b).sum();
        self.counted(drained.len(), bytes, false);
        drained.len()
    }
}

impl Lease {
    /// Serves one request with a core module's `handle` export.
    pub async fn handle_http(self, req: HttpRequest, limits: HttpLimits, ctx: CallContext) -> Result<HttpResponse, HttpError> {
        if let Some(why) = &self.pool.unservable {
            return Err(HttpError::NotHandleAbi(why.clone()));
        }
        let deadline = Instant::now() + limits.timeout;
        let pool = self.pool.clone();
        let lane = pool.lane();
        let call_lane = lane.clone();
        // The call holds the lease (its slot) until it has ended, wherever it runs.
        let call = async move {
            let pool = &self.pool;
            let Warm::Core { mut store, guest, handle } = pool.take(deadline, limits.timeout, &call_lane).await? else {
                return Err(HttpError::NotHandleAbi("components serve HTTP through wasi:http/proxy".into()));
            };
            crate::invoke::arm_deadline(&mut store, deadline, &call_lane);
            store.data_mut().begin(ctx);
            let result = http_abi::call_handle(&mut store, &guest, &handle, req, limits).await;
            store.data().output.end();
            let healthy = matches!(result, Ok(_) | Err(HttpError::GuestError(_) | HttpError::Malformed(_)));
            pool.give_back(healthy.then_some(Warm::Core { store, guest, handle }));
            result
        };
        let call = pool.runtime.inner().lanes.run(lane.clone(), call);
        let result = crate::invoke::with_deadline(deadline, limits.timeout, call).await;
        pool.remember(&lane);
        if result.is_err() {
            pool.refill();
        }
        result
    }

    /// Serves one request with a `wasi:http/proxy` component; the body streams from the
    /// guest after the head is returned, and the lease is held until it ends.
    pub async fn serve_wasi_http(
        self,
        req: hyper::Request<HttpBody>,
        limits: HttpLimits,
        ctx: CallContext,
    ) -> Result<hyper::Response<HttpBody>, HttpError> {
        if let Some(why) = &self.pool.unservable {
            return Err(HttpError::NotHandleAbi(why.clone()));
        }
        let deadline = Instant::now() + limits.timeout;
        let lane = self.pool.lane();
        let take = self.pool.take(deadline, limits.timeout, &lane);
        let warm = match crate::invoke::with_deadline(deadline, limits.timeout, take).await {
            Ok(warm) => warm,
            Err(e) => {
                self.pool.refill();
                return Err(e.into());
            }
        };
        let Warm::Component { mut store, entry } = warm else {
            return Err(HttpError::NotHandleAbi("not a wasi:http component".into()));
        };
        crate::invoke::arm_deadline(&mut store, deadline, &lane);
        store.data_mut().begin(ctx);
        let pool = self.pool.clone();
        let lanes = &pool.runtime.inner().lanes;
        let finished_pool = pool.clone();
        let served = wasi_http::serve(store, entry, req, limits, deadline, (lanes, lane.clone()), move |finished| {
            finished_pool.give_back(finished.map(|(store, entry)| Warm::Component { store, entry }));
            drop(self);
        })
        .await;
        // The CPU it took to answer with a head (a streamed body goes at the client's pace).
        pool.remember(&lane);
        served
    }
}

/// Every function's pool on this node.
pub struct Pools {
    runtime: Runtime,
    pools: Arc<Mutex<HashMap<String, Arc<Pool>>>>,
    shared: Arc<Shared>,
    idle_timeout: Duration,
}

impl Pools {
    /// No pools yet; ready instances together may hold `budget_bytes` of memory, three
    /// quarters of the engine's instance slots, and one owner half of that.
    pub fn new(runtime: Runtime, budget_bytes: usize, idle_timeout: Duration) -> Self {
        let slots = runtime.config().max_concurrent_instances as usize;
        let ready_limit = (slots * 3 / 4).max(1);
        let pools: Arc<Mutex<HashMap<String, Arc<Pool>>>> = Arc::default();
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            ready_bytes: AtomicUsize::new(0),
            budget_bytes,
            ready_count: AtomicUsize::new(0),
            ready_limit,
            owner_limit: (ready_limit / 2).max(1),
            owners: Mutex::default(),
            registry: Arc::downgrade(&pools),
            refills: start_filler(),
        });
        Self { runtime, pools, shared, idle_timeout }
    }

    /// Most ready instances all pools together keep.
    pub fn ready_limit(&self) -> usize {
        self.shared.ready_limit
    }

    /// Most ready instances one owner's pools keep.
    pub fn owner_limit(&self) -> usize {
        self.shared.owner_limit
    }

    /// Ready instances of all pools.
    pub fn ready_count(&self) -> usize {
        self.shared.ready_count.load(Ordering::Relaxed)
    }

    /// The pool for `key` if there is one with these settings: a hot function's request
    /// needs neither the compiled-module cache nor [`Pools::get`].
    pub fn find(&self, key: &str, settings: &PoolSettings) -> Option<Arc<Pool>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner).get(key).filter(|p| p.settings == *settings).cloned()
    }

    /// The pool for `key` (one function version of `owner`), made — and filled in the
    /// background — on first use, and replaced when the module or its settings changed.
    pub fn get(&self, key: &str, owner: &str, compiled: &Arc<Compiled>, settings: PoolSettings) -> Arc<Pool> {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(pool) = pools.get(key).filter(|p| p.settings == settings && Arc::ptr_eq(&p.compiled, compiled)) {
            return pool.clone();
        }
        let owner: Arc<str> = Arc::from(owner);
        let owner_ready = self.shared.owners.lock().unwrap_or_else(PoisonError::into_inner).entry(owner.clone()).or_default().clone();
        let slots = Arc::new(Semaphore::new(settings.max_instances.max(1)));
        let pool = Arc::new(Pool {
            key: key.to_string(),
            owner,
            owner_ready,
            runtime: self.runtime.clone(),
            compiled: compiled.clone(),
            unservable: self.runtime.check_http(compiled).err(),
            settings,
            ready: Mutex::default(),
            slots,
            queued: AtomicUsize::new(0),
            refilling: AtomicBool::new(false),
            last_ran_long: AtomicBool::new(false),
            last_used_ms: AtomicU64::new(self.shared.now_ms()),
            shared: self.shared.clone(),
        });
        if let Some(old) = pools.insert(key.to_string(), pool.clone()) {
            old.drain();
        }
        drop(pools);
        pool.refill();
        self.enforce_budget();
        pool
    }

    /// Drops pools idle for longer than the idle timeout and, while ready instances hold
    /// more memory than the budget, empties the least recently used pools. Returns how
    /// many pools were dropped or emptied.
    pub fn sweep(&self) -> usize {
        let idle_ms = self.idle_timeout.as_millis() as u64;
        let now = self.shared.now_ms();
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        let before = pools.len();
        pools.retain(|_, p| {
            let keep = now.saturating_sub(p.last_used_ms.load(Ordering::Relaxed)) < idle_ms;
            if !keep {
                p.drain();
            }
            keep
        });
        let dropped = before - pools.len();
        drop(pools);
        dropped + self.enforce_budget()
    }

    fn enforce_budget(&self) -> usize {
        if self.shared.ready_bytes.load(Ordering::Relaxed) <= self.shared.budget_bytes {
            return 0;
        }
        let mut emptied = 0;
        for pool in self.shared.pools_by_age() {
            if self.shared.ready_bytes.load(Ordering::Relaxed) <= self.shared.budget_bytes {
                break;
            }
            if pool.drain() > 0 {
                emptied += 1;
            }
        }
        emptied
    }

    /// Figures of every pool.
    pub fn stats(&self) -> Vec<PoolStats> {
        let pools: Vec<Arc<Pool>> = self.pools.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        pools.iter().map(|p| p.stats()).collect()
    }

    /// Memory held by ready instances of all pools.
    pub fn ready_bytes(&self) -> usize {
        self.shared.ready_bytes.load(Ordering::Relaxed)
    }
}
