//! Runtime settings, each with a named default and the reason for its value.

use std::path::PathBuf;
use std::time::Duration;

/// Largest module accepted at upload: a Rust wasi:http component is ~100 KB, but one made
/// from JavaScript or Python carries its engine (13–18 MB); 32 MiB fits those while
/// bounding uploads and compile times (the seeds' 5 MiB refused every JavaScript function).
pub const DEFAULT_MAX_MODULE_BYTES: usize = 32 * 1024 * 1024;
/// Compilation of a 13 MB JavaScript component takes ~5 s on 2 cores; 30 s stops
/// pathological inputs without refusing large honest ones.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(30);
/// Compiled modules kept in memory; each holds its machine code (tens of KB for typical
/// functions), so 512 costs little and covers a busy node's working set.
pub const DEFAULT_MEMORY_CACHE_ENTRIES: usize = 512;
/// Upper bound of any one instance's linear memory: the largest per-class limit of the
/// seeds (admin, 500 MB) rounded up. Per-call limits are usually far lower.
pub const DEFAULT_MAX_INSTANCE_MEMORY_BYTES: usize = 512 * 1024 * 1024;
/// Instances alive at once in this process (pooling allocator slots), ready ones
/// included: an edge node keeps one ready per deployed function, so this bounds the
/// functions a node serves hot. Each slot reserves address space (4 GiB plus guard, no
/// resident memory), so 2000 slots take 8 TiB of the 128 TiB a process may map.
pub const DEFAULT_MAX_CONCURRENT_INSTANCES: u32 = 2000;
/// Linear memory a freed slot resets by copying rather than unmapping, per slot: the
/// pages a guest dirtied (found with Linux's PAGEMAP_SCAN) up to this size are restored
/// with `memcpy`, so short requests cost no `madvise`, no cross-core TLB shootdown and no
/// page faults on the next instance. Beyond it pages are returned to the kernel.
pub const MEMORY_KEEP_RESIDENT_BYTES: usize = 256 * 1024;
/// Guest stack: wasmtime's default; deep enough for real code, small enough that runaway
/// recursion traps quickly with "call stack exhausted".
pub const DEFAULT_MAX_WASM_STACK: usize = 512 * 1024;
/// Compilations that run at once: one per core. Compiling is the heaviest thing an upload
/// asks for (CPU and hundreds of MB for a large module); more at once would only share the
/// cores and add up their memory.
pub fn default_max_concurrent_compiles() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
/// Epoch tick: the granularity of timeouts. 1 ms keeps a 100 ms timeout within ±2 ms.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Settings of a [`crate::Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Modules larger than this are refused at upload.
    pub max_module_bytes: usize,
    /// Compilation taking longer than this fails the upload.
    pub compile_timeout: Duration,
    /// Compiled modules kept in memory (LRU).
    pub memory_cache_entries: usize,
    /// Directory for precompiled modules; `None` keeps the cache in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Hard upper bound for any instance's linear memory.
    pub max_instance_memory_bytes: usize,
    /// Pooling allocator slots (instances alive at once).
    pub max_concurrent_instances: u32,
    /// Maximum guest stack size in bytes.
    pub max_wasm_stack: usize,
    /// Compilations running at once; more wait (up to the compile timeout) for a turn.
    pub max_concurrent_compiles: usize,
    /// An `edgefn` executable to compile in (`edgefn compile-worker`), so a compilation past
    /// its timeout is killed; `None` compiles on a thread of this process.
    pub compile_worker: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            max_module_bytes: DEFAULT_MAX_MODULE_BYTES,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
            memory_cache_entries: DEFAULT_MEMORY_CACHE_ENTRIES,
            cache_dir: None,
            max_instance_memory_bytes: DEFAULT_MAX_INSTANCE_MEMORY_BYTES,
            max_concurrent_instances: DEFAULT_MAX_CONCURRENT_INSTANCES,
            max_wasm_stack: DEFAULT_MAX_WASM_STACK,
            max_concurrent_compiles: default_max_concurrent_compiles(),
            compile_worker: None,
        }
    }
}
