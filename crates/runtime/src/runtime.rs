//! The [`Runtime`]: one wasmtime engine configured as we promise (pooling allocator,
//! copy-on-write memory images, epoch interruption), the linkers that define what a guest
//! may import, and the compiled-module cache in front of the compiler.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig};

use crate::cache::DiskCache;
use crate::config::{EPOCH_TICK, MEMORY_KEEP_RESIDENT_BYTES, RuntimeConfig};
use crate::error::{InvokeError, PrepareError};
use crate::guest_log::GuestLog;
use crate::http_abi;
use crate::inspect::{self, ModuleInfo, ModuleKind};
use crate::invoke::{self, ComponentHost, CoreHost, InvokeOutput, InvokeRequest};
use crate::lanes::Lanes;

/// Compile workers kept waiting for the next module (at most the concurrent compiles
/// allowed): each holds an engine, a few megabytes.
const WARM_COMPILE_WORKERS: usize = 4;

/// Why a component cannot serve HTTP.
pub(crate) const NOT_HTTP: &str = "the component exports neither wasi:http/incoming-handler (WASI 0.2) nor wasi:http/handler (WASI 0.3)";

/// The WebAssembly magic number every binary starts with.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Compiled code before it is linked.
pub(crate) enum Artifact {
    Core(Module),
    Component(Component),
}

impl Artifact {
    /// The precompiled bytes, as the disk cache and a compile worker's parent load them.
    pub(crate) fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        match self {
            Artifact::Core(m) => m.serialize(),
            Artifact::Component(c) => c.serialize(),
        }
    }
}

/// A module compiled and linked, ready to instantiate in microseconds.
pub enum Compiled {
    /// A core module.
    #[allow(private_interfaces, reason = "the host state type is an implementation detail")]
    Core {
        /// The pre-linked module.
        pre: wasmtime::InstancePre<CoreHost>,
    },
    /// A component.
    #[allow(private_interfaces, reason = "the host state type is an implementation detail")]
    Component {
        /// The component, for export lookups.
        component: Component,
        /// The pre-linked component.
        pre: wasmtime::component::InstancePre<ComponentHost>,
        /// Typed entry point when the component serves HTTP.
        http: Option<HttpEntryPre>,
    },
}

impl Compiled {
    /// The compiled code it links.
    fn artifact(&self) -> ArtifactRef<'_> {
        match self {
            Compiled::Core { pre } => ArtifactRef::Core(pre.module()),
            Compiled::Component { component, .. } => ArtifactRef::Component(component),
        }
    }

    /// What the module imports, as checked against grants: `module.name` of a core
    /// module's functions, the interface names of a component.
    pub fn imports(&self) -> Vec<String> {
        match self {
            Compiled::Core { pre } => inspect::core_imports(pre.module()),
            Compiled::Component { component, .. } => inspect::component_imports(component),
        }
    }
}

/// How a component serves HTTP, pre-linked.
#[allow(private_interfaces, reason = "the host state type is an implementation detail")]
pub enum HttpEntryPre {
    /// WASI 0.2: it exports `wasi:http/incoming-handler` (the `wasi:http/proxy` world).
    P2(wasmtime_wasi_http::p2::bindings::ProxyPre<ComponentHost>),
    /// WASI 0.3: it exports `wasi:http/handler` (the `wasi:http/service` world), async.
    P3(wasmtime_wasi_http::p3::bindings::ServicePre<ComponentHost>),
}

/// A module validated at upload.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: usize,
    /// Kind, world, exports and memory.
    pub info: ModuleInfo,
}

/// A compiled module from [`Runtime::load`].
#[derive(Clone)]
pub struct Loaded {
    /// The compiled module.
    pub module: Arc<Compiled>,
    /// True when no compilation was needed (found in memory or on disk).
    pub cache_hit: bool,
}

/// The sandbox. Cheap to clone; clones share the engine and caches.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    config: RuntimeConfig,
    core_linker: wasmtime::Linker<CoreHost>,
    component_linker: wasmtime::component::Linker<ComponentHost>,
    memory: Mutex<LruCache<String, Arc<Compiled>>>,
    disk: Option<DiskCache>,
    compilations: AtomicU64,
    stop_ticker: Arc<AtomicBool>,
    /// Where calls that run long go on, at a lower CPU priority.
    pub(crate) lanes: Lanes,
    /// Where every call's guest log lines go, rate-limited per function.
    guest_log: Arc<GuestLog>,
    /// Turns to compile: held until a compilation's thread is done, even past its timeout.
    compiles: Arc<tokio::sync::Semaphore>,
    /// Compile workers waiting for a module.
    workers: crate::compile_worker::Workers,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// Builds the engine, linkers and caches, and starts the epoch ticker thread.
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let engine = engine(&config)?;

        let mut core_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut core_linker, |h: &mut CoreHost| &mut h.wasi).map_err(anyhow::Error::from)?;
        crate::host::add_to_linker(&mut core_linker).map_err(anyhow::Error::from)?;
        let mut component_linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut component_linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut component_linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi::p3::add_to_linker(&mut component_linker).map_err(anyhow::Error::from)?;
        wasmtime_wasi_http::p3::add_to_linker(&mut component_linker).map_err(anyhow::Error::from)?;
        crate::component_host::add_to_linker(&mut component_linker).map_err(anyhow::Error::from)?;

        let disk = config.cache_dir.as_deref().map(|dir| DiskCache::open(dir, &engine)).transpose()?;
        let capacity = NonZeroUsize::new(config.memory_cache_entries.max(1)).expect("max(1) is non-zero");
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let compiles = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_compiles.max(1)));
        spawn_epoch_ticker(engine.clone(), stop_ticker.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                config,
                core_linker,
                component_linker,
                memory: Mutex::new(LruCache::new(capacity)),
                disk,
                compilations: AtomicU64::new(0),
                stop_ticker,
                lanes: Lanes::start()?,
                guest_log: Arc::default(),
                compiles,
                workers: Default::default(),
            }),
        })
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The settings this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The guest log every call of this runtime writes through ([`crate::CallContext::log`]).
    pub fn guest_log(&self) -> Arc<GuestLog> {
        self.inner.guest_log.clone()
    }

    /// How many modules this runtime has compiled (cache misses), for tests and metrics.
    pub fn compilations(&self) -> u64 {
        self.inner.compilations.load(Ordering::Relaxed)
    }

    /// How many calls the slow lanes have taken, and how many went back, for tests and
    /// metrics.
    pub fn lane_counts(&self) -> crate::LaneCounts {
        self.inner.lanes.counts()
    }

    /// Validates an upload fully (size, magic number, engine validation, imports), learns
    /// its kind and exports, and leaves it compiled in the cache so the first call is hot.
    /// Bytes compiled before (the same SHA-256, in memory or on disk) are not compiled again.
    pub async fn prepare(&self, bytes: &[u8]) -> Result<Prepared, PrepareError> {
        let limit = self.inner.config.max_module_bytes;
        if bytes.len() > limit {
            return Err(PrepareError::TooLarge { size: bytes.len(), limit });
        }
        if !bytes.starts_with(WASM_MAGIC) {
            return Err(PrepareError::Invalid("not a WebAssembly binary (it does not start with the \\0asm magic number)".into()));
        }
        let sha256 = hex::encode(Sha256::digest(bytes));
        let info = match self.cached(&sha256).await? {
            Some(compiled) => self.info(compiled.artifact()),
            None => {
                let artifact = self.compile(bytes).await?;
                let compiled = self.link(artifact_ref(&artifact))?;
                let info = self.info(artifact_ref(&artifact));
                self.remember(&sha256, &artifact, Arc::new(compiled)).await;
                info
            }
        };
        Ok(Prepared { sha256, size: bytes.len(), info })
    }

    /// What an upload is: its kind, world, exports, imports and memory.
    fn info(&self, artifact: ArtifactRef<'_>) -> ModuleInfo {
        match artifact {
            ArtifactRef::Core(module) => {
                let (memory_pages, max_memory_pages) = inspect::core_memory(module);
                ModuleInfo {
                    kind: ModuleKind::Core,
                    world: None,
                    exports: inspect::core_exports(module),
                    imports: inspect::core_imports(module),
                    memory_pages,
                    max_memory_pages,
                }
            }
            ArtifactRef::Component(c) => ModuleInfo {
                kind: ModuleKind::Component,
                world: Some(inspect::component_world(&self.inner.engine, c)),
                exports: inspect::component_exports(&self.inner.engine, c),
                imports: inspect::component_imports(c),
                memory_pages: None,
                max_memory_pages: None,
            },
        }
    }

    /// The compiled module for `sha256` if this runtime has it: in memory, or on disk (then
    /// kept in memory too).
    async fn cached(&self, sha256: &str) -> Result<Option<Arc<Compiled>>, PrepareError> {
        if let Some(hit) = self.inner.memory.lock().expect("cache lock").get(sha256).cloned() {
            return Ok(Some(hit));
        }
        if self.inner.disk.is_none() {
            return Ok(None);
        }
        let this = self.clone();
        let key = sha256.to_string();
        let from_disk = tokio::task::spawn_blocking(move || {
            let disk = this.inner.disk.as_ref().expect("checked above");
            disk.load(&this.inner.engine, &key).map(|a| this.link(artifact_ref(&a)))
        })
        .await
        .map_err(|e| PrepareError::Internal(e.into()))?;
        let Some(compiled) = from_disk else { return Ok(None) };
        let compiled = Arc::new(compiled?);
        self.inner.memory.lock().expect("cache lock").put(sha256.to_string(), compiled.clone());
        Ok(Some(compiled))
    }

    /// The compiled module for `sha256`: from memory, from the disk cache, or compiled
    /// from the bytes `fetch` returns.
    pub async fn load<F, Fut>(&self, sha256: &str, fetch: F) -> anyhow::Result<Loaded>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<Vec<u8>>>,
    {
        if let Some(module) = self.cached(sha256).await? {
            return Ok(Loaded { module, cache_hit: true });
        }
        let bytes = fetch().await?;
        let actual = hex::encode(Sha256::digest(&bytes));
        anyhow::ensure!(actual == sha256, "artifact {sha256} has SHA-256 {actual}: refusing to run it");
        let artifact = self.compile(&bytes).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let compiled = Arc::new(self.link(artifact_ref(&artifact))?);
        self.remember(sha256, &artifact, compiled.clone()).await;
        Ok(Loaded { module: compiled, cache_hit: false })
    }

    /// Calls an exported function with JSON arguments under the request's limits.
    pub async fn invoke(&self, compiled: &Compiled, req: InvokeRequest) -> Result<InvokeOutput, InvokeError> {
        invoke::invoke(&self.inner, compiled, req).await
    }

    /// Whether a compiled module can serve HTTP (the core `handle` ABI or a
    /// `wasi:http/proxy` component); the reason if not.
    pub fn check_http(&self, compiled: &Compiled) -> Result<(), String> {
        match compiled {
            Compiled::Core { pre } => http_abi::missing_exports(pre.module()).map_or(Ok(()), Err),
            Compiled::Component { http: Some(_), .. } => Ok(()),
            Compiled::Component { http: None, .. } => Err(NOT_HTTP.into()),
        }
    }

    /// Compiles once a turn is free, bounded by the compile timeout (waiting for the turn
    /// included): in a compile worker process when one is configured, which is killed at
    /// the timeout; otherwise on a blocking thread, where a compilation that overruns
    /// keeps its thread until cranelift finishes and keeps its turn until then too, so
    /// overrunning compilations never pile up. The caller is answered at the timeout.
    async fn compile(&self, bytes: &[u8]) -> Result<Artifact, PrepareError> {
        let limit = self.inner.config.compile_timeout;
        let started = tokio::time::Instant::now();
        let turn = tokio::time::timeout(limit, self.inner.compiles.clone().acquire_owned())
            .await
            .map_err(|_| PrepareError::CompilerBusy { running: self.inner.config.max_concurrent_compiles })?
            .map_err(|e| PrepareError::Internal(e.into()))?;
        let config = &self.inner.config;
        if let Some(worker) = &config.compile_worker {
            let keep = config.max_concurrent_compiles.min(WARM_COMPILE_WORKERS);
            let workers = &self.inner.workers;
            let artifact =
                crate::compile_worker::compile(worker, workers, keep, config, &self.inner.engine, bytes, started + limit, limit).await;
            drop(turn);
            self.inner.compilations.fetch_add(1, Ordering::Relaxed);
            return artifact;
        }
        let this = self.clone();
        let owned = bytes.to_vec();
        let task = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            compile_with(&this.inner.engine, &owned)
        });
        let result = tokio::time::timeout_at(started + limit, task)
            .await
            .map_err(|_| PrepareError::CompileTimeout { limit })?
            .map_err(|e| PrepareError::Internal(e.into()))?;
        self.inner.compilations.fetch_add(1, Ordering::Relaxed);
        result.map_err(|e| PrepareError::Invalid(format!("{:#}", anyhow::Error::from(e))))
    }

    /// Links against what guests may import; an unknown import is named in the error.
    fn link(&self, artifact: ArtifactRef<'_>) -> Result<Compiled, PrepareError> {
        let refused = |e: wasmtime::Error| {
            let text = format!("{:#}", anyhow::Error::from(e));
            let import = text.split('`').nth(1).map(str::to_string).unwrap_or(text);
            PrepareError::DisallowedImport { import }
        };
        Ok(match artifact {
            ArtifactRef::Core(m) => Compiled::Core { pre: self.inner.core_linker.instantiate_pre(m).map_err(refused)? },
            ArtifactRef::Component(c) => {
                let pre = self.inner.component_linker.instantiate_pre(c).map_err(refused)?;
                let http = match wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre.clone()) {
                    Ok(p2) => Some(HttpEntryPre::P2(p2)),
                    Err(_) => wasmtime_wasi_http::p3::bindings::ServicePre::new(pre.clone()).ok().map(HttpEntryPre::P3),
                };
                Compiled::Component { component: c.clone(), pre, http }
            }
        })
    }

    async fn remember(&self, sha256: &str, artifact: &Artifact, compiled: Arc<Compiled>) {
        self.inner.memory.lock().expect("cache lock").put(sha256.to_string(), compiled);
        if self.inner.disk.is_some() {
            let this = self.clone();
            let key = sha256.to_string();
            let owned = match artifact {
                Artifact::Core(m) => Artifact::Core(m.clone()),
                Artifact::Component(c) => Artifact::Component(c.clone()),
            };
            let written = tokio::task::spawn_blocking(move || this.inner.disk.as_ref().expect("checked above").store(&key, &owned)).await;
            if let Err(e) = written.map_err(anyhow::Error::from).and_then(|r| r) {
                tracing::warn!(sha256, error = %e, "could not write the compiled-module cache; it will be rebuilt on restart");
            }
        }
    }
}

/// The engine of `config`, with a pooling allocator sized by it. A
/// compile worker builds the same one, so what it writes loads in its parent (wasmtime
/// checks that the settings match before it deserializes) and a module the pool cannot
/// hold (a memory over its limit) is refused by the compiler, as an invalid upload.
pub(crate) fn engine(config: &RuntimeConfig) -> anyhow::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let instances = config.max_concurrent_instances;
    // A component holds several core instances and tables (its module, adapter shims).
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(4))
        .total_memories(instances)
        .total_tables(instances.saturating_mul(4))
        .total_stacks(instances)
        .max_memory_size(config.max_instance_memory_bytes)
        // Every freed slot stays warm for the module that used it, so a node serving many
        // functions does not re-map module images when their instances come and go.
        .max_unused_warm_slots(instances)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT_BYTES)
        .table_keep_resident(MEMORY_KEEP_RESIDENT_BYTES / 4);
    let mut wasm = wasmtime::Config::new();
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        // Instantiation maps the module's data image copy-on-write instead of copying it.
        .memory_init_cow(true)
        // Timeouts: a 1 ms ticker bumps the epoch; each store checks its own deadline.
        .epoch_interruption(true)
        .max_wasm_stack(config.max_wasm_stack)
        .wasm_component_model(true)
        // WASI 0.3 components (`wasi:http/handler@0.3`) are async: streams, futures, tasks.
        .wasm_component_model_async(true);
    Engine::new(&wasm).map_err(anyhow::Error::from)
}

/// Compiles `bytes` on the calling thread (a blocking one, or a compile worker's).
pub(crate) fn compile_with(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Artifact> {
    if wasmparser::Parser::is_component(bytes) {
        Component::new(engine, bytes).map(Artifact::Component)
    } else {
        Module::new(engine, bytes).map(Artifact::Core)
    }
}

/// A borrowed [`Artifact`], so linking does not need ownership.
enum ArtifactRef<'a> {
    Core(&'a Module),
    Component(&'a Component),
}

fn artifact_ref(a: &Artifact) -> ArtifactRef<'_> {
    match a {
        Artifact::Core(m) => ArtifactRef::Core(m),
        Artifact::Component(c) => ArtifactRef::Component(c),
    }
}

/// Bumps the engine epoch every tick until the runtime is dropped.
fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    std::thread::Builder::new().name("edgefn-epoch".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(EPOCH_TICK);
            engine.increment_epoch();
        }
    })?;
    Ok(())
}
