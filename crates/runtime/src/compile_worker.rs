//! Compiling in a child process (`edgefn compile-worker`): cranelift cannot be stopped
//! inside a thread, but a process can be killed. A compilation that runs past the compile
//! timeout is killed at once, its CPU and memory given back, and a crash of the compiler
//! ends only the child. The child builds the same engine from the same settings, so what
//! it writes loads here; wasmtime checks that before it deserializes.
//!
//! The protocol: the module's bytes on the child's stdin; the precompiled artifact on its
//! stdout and exit status 0, or the compiler's message on stderr and exit status 2.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};

use crate::config::RuntimeConfig;
use crate::error::PrepareError;
use crate::runtime::{Artifact, Runtime};

/// Exit status of a worker whose module did not compile.
const INVALID: u8 = 2;

/// The arguments that give a worker the engine settings of `config`.
pub(crate) fn worker_args(config: &RuntimeConfig) -> Vec<String> {
    vec![
        "compile-worker".into(),
        format!("--max-instance-memory-bytes={}", config.max_instance_memory_bytes),
        format!("--max-concurrent-instances={}", config.max_concurrent_instances),
        format!("--max-wasm-stack={}", config.max_wasm_stack),
    ]
}

/// Workers started ahead of need, each waiting with its engine built for the one module
/// it will compile: an upload does not wait for a process to start. Each still compiles a
/// single module and exits, so nothing of one upload is left in the process of the next.
#[derive(Default)]
pub(crate) struct Spares {
    idle: std::sync::Mutex<Vec<tokio::process::Child>>,
}

impl Spares {
    /// A worker ready for a module: a spare that is still alive, or a new one; spares are
    /// refilled to `keep` behind it.
    fn take(&self, worker: &Path, config: &RuntimeConfig, keep: usize) -> std::io::Result<tokio::process::Child> {
        let mut idle = self.idle.lock().expect("spares lock");
        let mut taken = None;
        while let Some(mut child) = idle.pop() {
            if matches!(child.try_wait(), Ok(None)) {
                taken = Some(child);
                break;
            }
        }
        let taken = match taken {
            Some(child) => child,
            None => start(worker, config)?,
        };
        while idle.len() < keep {
            match start(worker, config) {
                Ok(child) => idle.push(child),
                Err(e) => {
                    tracing::warn!(error = %e, "could not start a spare compile worker");
                    break;
                }
            }
        }
        Ok(taken)
    }
}

fn start(worker: &Path, config: &RuntimeConfig) -> std::io::Result<tokio::process::Child> {
    tokio::process::Command::new(worker)
        .args(worker_args(config))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
}

/// Compiles `bytes` in a child process of `worker` (a spare from `spares`, which keeps
/// `keep` more ready), killing it at `deadline`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn compile(
    worker: &Path,
    spares: &Spares,
    keep: usize,
    config: &RuntimeConfig,
    engine: &Engine,
    bytes: &[u8],
    deadline: tokio::time::Instant,
    limit: Duration,
) -> Result<Artifact, PrepareError> {
    let internal =
        |what: &str, e: std::io::Error| PrepareError::Internal(anyhow::anyhow!("{what} the compile worker {}: {e}", worker.display()));
    let mut child = spares.take(worker, config, keep).map_err(|e| internal("starting", e))?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = bytes.to_vec();
    let feeding = tokio::spawn(async move { stdin.write_all(&input).await });
    // On timeout the child is dropped, and so killed.
    let output = tokio::time::timeout_at(deadline, child.wait_with_output())
        .await
        .map_err(|_| PrepareError::CompileTimeout { limit })?
        .map_err(|e| internal("waiting for", e))?;
    feeding.await.map_err(|e| PrepareError::Internal(e.into()))?.map_err(|e| internal("writing to", e))?;
    match output.status.code() {
        Some(0) => deserialize(engine, &output.stdout),
        Some(code) if code == i32::from(INVALID) => Err(PrepareError::Invalid(String::from_utf8_lossy(&output.stderr).trim().to_string())),
        _ => Err(PrepareError::Internal(anyhow::anyhow!(
            "the compile worker failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// Loads what a worker wrote.
#[expect(unsafe_code, reason = "the bytes were written by a compile worker of this binary for this engine's settings")]
fn deserialize(engine: &Engine, bytes: &[u8]) -> Result<Artifact, PrepareError> {
    let loaded = match Engine::detect_precompiled(bytes) {
        // SAFETY: the artifact was produced just now by our own child process, from the
        // same binary and engine settings; wasmtime checks the engine compatibility header.
        Some(Precompiled::Module) => unsafe { Module::deserialize(engine, bytes) }.map(Artifact::Core),
        // SAFETY: as above.
        Some(Precompiled::Component) => unsafe { Component::deserialize(engine, bytes) }.map(Artifact::Component),
        None => return Err(PrepareError::Internal(anyhow::anyhow!("the compile worker wrote no precompiled artifact"))),
    };
    loaded.map_err(|e| PrepareError::Internal(anyhow::Error::from(e).context("loading the compile worker's artifact")))
}

/// The worker's side: builds an engine of `config`'s settings, reads a module on stdin,
/// compiles it and writes the artifact on stdout. Returns the process's exit status.
pub fn serve_compile_worker(config: RuntimeConfig) -> u8 {
    // The engine first: a spare worker builds it while it waits for its module.
    let runtime = match Runtime::new(RuntimeConfig { cache_dir: None, compile_worker: None, ..config }) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("building the engine: {e:#}");
            return 1;
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("reading the module: {e}");
        return 1;
    }
    let serialized = match runtime.compile_here(&bytes) {
        Ok(Artifact::Core(m)) => m.serialize(),
        Ok(Artifact::Component(c)) => c.serialize(),
        Err(e) => {
            eprintln!("{e:#}");
            return INVALID;
        }
    };
    match serialized.map_err(anyhow::Error::from).and_then(|out| Ok(std::io::stdout().lock().write_all(&out)?)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("writing the artifact: {e:#}");
            1
        }
    }
}
