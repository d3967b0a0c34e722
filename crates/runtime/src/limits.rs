//! Per-call memory cap and accounting: a `ResourceLimiter` that refuses growth past the
//! call's limit with an error (so the guest traps with a clear message instead of
//! looping on a failed `memory.grow`) and records the peak for `memoryUsedBytes`.

use wasmtime::ResourceLimiter;

/// Tables are small metadata; this bound only stops a guest from growing one without end.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Memory accounting for one store.
#[derive(Debug)]
pub(crate) struct MemoryLimiter {
    limit_bytes: usize,
    current_bytes: usize,
    peak_bytes: usize,
}

/// The error a guest sees when it asks for more memory than its limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit exceeded: the function asked for {requested} bytes of linear memory, its limit is {limit} bytes")]
pub(crate) struct MemoryLimitExceeded {
    requested: usize,
    limit: usize,
}

impl MemoryLimiter {
    pub(crate) fn new(limit_bytes: usize) -> Self {
        Self { limit_bytes, current_bytes: 0, peak_bytes: 0 }
    }

    /// Linear memory the store holds now.
    pub(crate) fn current_bytes(&self) -> usize {
        self.current_bytes
    }

    /// Highest total linear memory the store has had.
    pub(crate) fn peak_bytes(&self) -> usize {
        self.peak_bytes
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        let total = self.current_bytes - current.min(self.current_bytes) + desired;
        if total > self.limit_bytes {
            return Err(wasmtime::Error::new(MemoryLimitExceeded { requested: total, limit: self.limit_bytes }));
        }
        self.current_bytes = total;
        self.peak_bytes = self.peak_bytes.max(total);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _max: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
