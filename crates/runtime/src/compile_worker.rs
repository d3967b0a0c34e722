//! Compiling in a child process (`edgefn compile-worker`): cranelift cannot be stopped
//! inside a thread, but a process can be killed. A compilation that runs past the compile
//! timeout is killed at once with its worker, its CPU and memory given back, and a crash
//! of the compiler ends only the child. The child builds its engine from the same
//! settings, so what it writes loads here; wasmtime checks that before it deserializes.
//!
//! Workers stay warm: one that finished a module waits for the next (up to
//! [`COMPILES_PER_WORKER`], then it is retired), so an upload pays neither a process start
//! nor an engine set-up. Reuse does not widen what a worker is trusted with: its output is
//! native code this process runs already.
//!
//! The protocol, one module at a time: the module's length (u32, little-endian) and bytes
//! on the child's stdin; on its stdout a status byte ([`COMPILED`] or [`INVALID`]), a
//! length and the precompiled artifact or the compiler's message. The child exits when its
//! stdin closes.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout};
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};

use crate::config::RuntimeConfig;
use crate::error::PrepareError;
use crate::runtime::Artifact;

/// Status byte of a module that compiled: the artifact follows.
const COMPILED: u8 = 0;
/// Status byte of a module that did not compile: the compiler's message follows.
const INVALID: u8 = 2;
/// Modules a worker compiles before it is retired, so what a long run leaves in its heap
/// (fragmentation, caches) is given back now and then.
const COMPILES_PER_WORKER: u32 = 256;

/// The arguments that give a worker the engine settings of `config`.
pub(crate) fn worker_args(config: &RuntimeConfig) -> Vec<String> {
    vec![
        "compile-worker".into(),
        format!("--max-instance-memory-bytes={}", config.max_instance_memory_bytes),
        format!("--max-concurrent-instances={}", config.max_concurrent_instances),
        format!("--max-wasm-stack={}", config.max_wasm_stack),
    ]
}

/// A running worker and its pipes.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    compiled: u32,
}

/// What a worker answered for one module.
enum Reply {
    Compiled(Vec<u8>),
    Invalid(String),
}

impl Worker {
    fn start(path: &Path, config: &RuntimeConfig) -> std::io::Result<Self> {
        let mut child = tokio::process::Command::new(path)
            .args(worker_args(config))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            // Only a worker that cannot go on writes here (a panic, a broken pipe).
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(Self { child, stdin, stdout, compiled: 0 })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends one module and reads the answer.
    async fn compile(&mut self, bytes: &[u8]) -> std::io::Result<Reply> {
        let len = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
        self.stdin.write_all(&len.to_le_bytes()).await?;
        self.stdin.write_all(bytes).await?;
        self.stdin.flush().await?;
        let status = self.stdout.read_u8().await?;
        let len = self.stdout.read_u32_le().await?;
        let mut payload = vec![0; len as usize];
        self.stdout.read_exact(&mut payload).await?;
        self.compiled += 1;
        match status {
            COMPILED => Ok(Reply::Compiled(payload)),
            INVALID => Ok(Reply::Invalid(String::from_utf8_lossy(&payload).trim().to_string())),
            other => Err(std::io::Error::other(format!("status byte {other}"))),
        }
    }
}

/// Workers waiting for a module, at most as many as compiles may run at once.
#[derive(Default)]
pub(crate) struct Workers {
    idle: std::sync::Mutex<Vec<Worker>>,
}

impl Workers {
    /// A waiting worker that is still alive, or a new one.
    fn take(&self, path: &Path, config: &RuntimeConfig) -> std::io::Result<Worker> {
        let mut idle = self.idle.lock().expect("workers lock");
        while let Some(mut worker) = idle.pop() {
            if worker.alive() {
                return Ok(worker);
            }
        }
        drop(idle);
        Worker::start(path, config)
    }

    /// Keeps a worker that answered for the next module, unless it is due to retire or
    /// `keep` already wait.
    fn give_back(&self, worker: Worker, keep: usize) {
        let mut idle = self.idle.lock().expect("workers lock");
        if worker.compiled < COMPILES_PER_WORKER && idle.len() < keep {
            idle.push(worker);
        }
    }
}

/// Compiles `bytes` in a worker process of `path` (a waiting one from `workers`, which
/// keeps up to `keep` waiting afterwards), killing it at `deadline`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn compile(
    path: &Path,
    workers: &Workers,
    keep: usize,
    config: &RuntimeConfig,
    engine: &Engine,
    bytes: &[u8],
    deadline: tokio::time::Instant,
    limit: Duration,
) -> Result<Artifact, PrepareError> {
    let start_failed = |e: std::io::Error| PrepareError::Internal(anyhow::anyhow!("starting the compile worker {}: {e}", path.display()));
    let mut worker = workers.take(path, config).map_err(start_failed)?;
    loop {
        // On timeout the worker is dropped, and so killed.
        let reply = tokio::time::timeout_at(deadline, worker.compile(bytes)).await.map_err(|_| PrepareError::CompileTimeout { limit })?;
        return match reply {
            Ok(Reply::Compiled(artifact)) => {
                workers.give_back(worker, keep);
                deserialize(engine, &artifact)
            }
            Ok(Reply::Invalid(message)) => {
                workers.give_back(worker, keep);
                Err(PrepareError::Invalid(message))
            }
            // A waiting worker that died (or was still dying when it was taken) fails at
            // once: the module goes to a new one.
            Err(_) if worker.compiled > 0 => {
                worker = Worker::start(path, config).map_err(start_failed)?;
                continue;
            }
            Err(e) => {
                let status = worker.child.wait().await.map_or_else(|e| e.to_string(), |s| s.to_string());
                Err(PrepareError::Internal(anyhow::anyhow!("the compile worker failed ({status}): {e}")))
            }
        };
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

/// The worker's side: builds an engine of `config`'s settings, then compiles each module
/// read on stdin and writes its artifact on stdout, until stdin closes. Returns the
/// process's exit status. It builds the runtime's engine alone (no linkers, ticker or
/// lanes): compiling needs nothing else.
pub fn serve_compile_worker(config: RuntimeConfig) -> u8 {
    // The engine first: a worker builds it before its first module arrives.
    let engine = match crate::runtime::engine(&config) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("building the engine: {e:#}");
            return 1;
        }
    };
    let (mut input, mut output) = (std::io::stdin().lock(), std::io::stdout().lock());
    loop {
        let mut len = [0; 4];
        match input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return 0,
            Err(e) => {
                eprintln!("reading a module: {e}");
                return 1;
            }
        }
        let mut bytes = vec![0; u32::from_le_bytes(len) as usize];
        if let Err(e) = input.read_exact(&mut bytes) {
            eprintln!("reading a module: {e}");
            return 1;
        }
        let (status, payload) = match crate::runtime::compile_with(&engine, &bytes) {
            Ok(artifact) => match artifact.serialize() {
                Ok(out) => (COMPILED, out),
                Err(e) => {
                    eprintln!("serializing the artifact: {:#}", anyhow::Error::from(e));
                    return 1;
                }
            },
            Err(e) => (INVALID, format!("{:#}", anyhow::Error::from(e)).into_bytes()),
        };
        let len = u32::try_from(payload.len()).expect("an artifact under 4 GiB").to_le_bytes();
        let written = output.write_all(&[status]).and_then(|()| output.write_all(&len)).and_then(|()| output.write_all(&payload));
        if let Err(e) = written.and_then(|()| output.flush()) {
            eprintln!("writing the artifact: {e}");
            return 1;
        }
    }
}
