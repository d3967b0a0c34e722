//! The build worker: takes queued builds from the control plane, builds each in the
//! sandbox ([`crate::sandbox`]) and sends back the module or why it failed.
//!
//! A build is two steps in a fresh directory: the dependency download (public addresses
//! only, through the build proxy; package managers only, with their scripts off: `cargo
//! fetch`, `npm install --ignore-scripts`) and the build (network off): the `[build] command` of the project's
//! `edgefn.toml`, else the toolchain's own (`cargo build --release --target
//! wasm32-wasip2`, `npm run build`, `npm run asbuild`). The artifact is the manifest's
//! `[build] artifact`, else the one `.wasm` the build made. Every line of output goes to
//! the build's log, which the sender follows with `edgefn build logs ID --follow`.
//!
//! The worker talks to the control plane's API with an admin token, so it never needs
//! the control plane's database; a control plane that cannot be reached is retried.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use edgefn_store::Toolchain;
use reqwest::Method;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::project::{MANIFEST, Manifest};
use crate::sandbox::{Ended, Host, Limits, Step};

/// The target Rust projects are built for.
const RUST_TARGET: &str = "wasm32-wasip2";
/// Seconds one claim waits for a queued build.
const CLAIM_WAIT_SECONDS: u64 = 30;
/// How often log lines are sent while a step runs.
const LOG_EVERY: Duration = Duration::from_millis(300);
/// Pause after the control plane could not be reached.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// Directories left out when looking for the artifact.
const NOT_ARTIFACTS: [&str; 3] = ["node_modules", ".git", "deps"];

/// What a worker is allowed.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Shown on the builds it takes; one name per worker.
    pub name: String,
    /// Where builds are unpacked (each in its own directory, removed after).
    pub work_dir: PathBuf,
    /// Longest a whole build may take.
    pub time_limit: Duration,
    /// Step limits.
    pub limits: Limits,
    /// Most log bytes sent per build.
    pub max_log_bytes: usize,
    /// The host user builds run as (a worker running as root must name one).
    pub user: Option<String>,
}

/// What a worker reads of a build it claimed.
#[derive(serde::Deserialize)]
struct Claimed {
    id: String,
    name: String,
    version: String,
    toolchain: Toolchain,
}

/// Takes and does builds until the process ends.
pub async fn run(client: Client, settings: Settings) -> anyhow::Result<()> {
    std::fs::create_dir_all(&settings.work_dir).with_context(|| format!("creating {}", settings.work_dir.display()))?;
    let host = Host::find(settings.user.as_deref());
    if let Err(e) = &host {
        tracing::warn!(error = %e, "builds will fail until this is fixed");
    }
    tracing::info!(worker = %settings.name, "build worker started");
    loop {
        let path = format!("/api/v1/builds/claim?worker={}&waitSeconds={CLAIM_WAIT_SECONDS}", settings.name);
        let build: Claimed = match client.request(Method::POST, &path).send().await {
            Ok(res) if res.status() == reqwest::StatusCode::NO_CONTENT => continue,
            Ok(res) => match Client::json(res).await.and_then(|v| Ok(serde_json::from_value(v)?)) {
                Ok(build) => build,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "claiming a build");
                    tokio::time::sleep(RETRY_AFTER).await;
                    continue;
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "the control plane could not be reached; trying again");
                tokio::time::sleep(RETRY_AFTER).await;
                continue;
            }
        };
        tracing::info!(build = %build.id, name = %build.name, version = %build.version, "building");
        let log = Log::new(&client, &build.id, settings.max_log_bytes);
        let outcome = match &host {
            Ok(host) => do_build(&client, host, &settings, &build, &log).await,
            Err(e) => Err(format!("{e:#}")),
        };
        log.flush().await;
        let sent = match outcome {
            Ok(wasm) => {
                let path = format!("/api/v1/builds/{}/artifact", build.id);
                client.send(client.request(Method::POST, &path).header("content-type", "application/wasm").body(wasm)).await
            }
            Err(error) => {
                let path = format!("/api/v1/builds/{}/failure", build.id);
                client.send(client.request(Method::POST, &path).json(&serde_json::json!({ "error": error }))).await
            }
        };
        match sent {
            Ok(ended) => tracing::info!(build = %build.id, status = %ended["status"], error = %ended["error"], "build ended"),
            Err(e) => tracing::warn!(build = %build.id, error = %format!("{e:#}"), "could not report the build's end"),
        }
    }
}

/// Builds one project: the module's bytes, or why not.
async fn do_build(client: &Client, host: &Host, settings: &Settings, build: &Claimed, log: &Log) -> Result<Vec<u8>, String> {
    let deadline = tokio::time::Instant::now() + settings.time_limit;
    let dir = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&settings.work_dir)
        .map_err(|e| format!("the worker could not make a directory: {e}"))?;
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).map_err(|e| format!("the worker could not make a directory: {e}"))?;
    let archive = client
        .request(Method::GET, &format!("/api/v1/builds/{}/source", build.id))
        .send()
        .await
        .map_err(|e| format!("reading the source: {e}"))?;
    if !archive.status().is_success() {
        return Err(format!("reading the source: HTTP {}", archive.status()));
    }
    let archive = archive.bytes().await.map_err(|e| format!("reading the source: {e}"))?;
    edgefn_control::archive::unpack(&archive, &project)?;
    log.line(format!(
        "edgefn build worker {}: {} {} with the {} toolchain",
        settings.name,
        build.name,
        build.version,
        build.toolchain.as_str()
    ));
    let recipe = Recipe::of(build.toolchain, &project)?;
    recipe.check(host)?;
    host.prepare(dir.path()).map_err(|e| format!("{e:#}"))?;

    let steps = [(recipe.fetch.as_str(), true, "downloading dependencies"), (recipe.build.as_str(), false, "building (no network)")];
    let started = SystemTime::now();
    for (command, network, what) in steps {
        log.line(format!("$ {command}    # {what}"));
        let (env, hidden) = if network { (recipe.fetch_env, recipe.fetch_hidden) } else { (recipe.build_env, &[][..]) };
        let step = Step { command, network, env, hidden };
        let ended = host.run(dir.path(), &step, settings.limits, deadline, log.sender()).await.map_err(|e| format!("{e:#}"))?;
        match ended {
            Ended::Exited(Some(0)) => {}
            Ended::Exited(code) => {
                let code = code.map_or("a signal".to_string(), |c| format!("exit code {c}"));
                return Err(format!("`{command}` failed ({code}); its output is in the build's log"));
            }
            Ended::TimedOut => {
                return Err(format!("the build ran past its time limit of {} s and was stopped", settings.time_limit.as_secs()));
            }
            Ended::OutOfMemory => {
                return Err(format!("the build used more than {} MiB of memory and was stopped", settings.limits.memory_bytes >> 20));
            }
            Ended::OutOfDisk => {
                return Err(format!("the build took more than {} MiB of disk and was stopped", settings.limits.disk_bytes >> 20));
            }
        }
    }
    let artifact = recipe.artifact(&project, started)?;
    let shown = artifact.strip_prefix(&project).unwrap_or(&artifact).display().to_string();
    let bytes = read_inside(&project, &artifact).map_err(|e| format!("reading the artifact {shown}: {e}"))?;
    log.line(format!("built {shown}"));
    Ok(bytes)
}

/// Reads the file at `path` only if it is a regular file inside `project` itself: the
/// build's processes have ended, but a link it left (to the worker's data, say) is not
/// followed out of the tree.
fn read_inside(project: &Path, path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let root = project.canonicalize().map_err(|e| e.to_string())?;
    let real = path.canonicalize().map_err(|e| e.to_string())?;
    if !real.starts_with(&root) {
        return Err("it leads out of the project (a link?): the module must be a file the build made".into());
    }
    let mut file =
        std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&real).map_err(|e| e.to_string())?;
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("it is not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// How a project is built.
struct Recipe {
    toolchain: Toolchain,
    fetch: String,
    fetch_env: &'static [(&'static str, &'static str)],
    fetch_hidden: &'static [&'static str],
    build: String,
    build_env: &'static [(&'static str, &'static str)],
    /// The manifest's artifact, if it names one.
    artifact: Option<PathBuf>,
}

/// Variables of the dependency download: the project's own settings may not run a
/// program of its choosing while the network is open.
const RUST_FETCH_ENV: &[(&str, &str)] = &[
    ("RUSTC", "rustc"),
    ("RUSTC_WRAPPER", ""),
    ("RUSTC_WORKSPACE_WRAPPER", ""),
    ("CARGO_BUILD_RUSTC_WRAPPER", ""),
    ("CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER", ""),
];
/// What Cargo's dependency download does not see of the project: its Cargo settings
/// (`.cargo/config.toml` can name a compiler wrapper, a credential provider or a proxy) and
/// its toolchain file (which can name a toolchain directory of the project's, whose `cargo`
/// would then run) — so no program of the project's choosing runs while the network is open.
const RUST_FETCH_HIDDEN: &[&str] = &[".cargo", "rust-toolchain", "rust-toolchain.toml"];
const RUST_BUILD_ENV: &[(&str, &str)] = &[("CARGO_NET_OFFLINE", "true")];
const NPM_FETCH_ENV: &[(&str, &str)] =
    &[("npm_config_ignore_scripts", "true"), ("npm_config_git", "git"), ("npm_config_update_notifier", "false")];
/// What npm's download does not see: the project's `.npmrc`, whose settings can name
/// programs (a shell, a git) or turn scripts back on.
const NPM_FETCH_HIDDEN: &[&str] = &[".npmrc"];
const NPM_BUILD_ENV: &[(&str, &str)] =
    &[("npm_config_offline", "true"), ("npm_config_audit", "false"), ("npm_config_fund", "false"), ("npm_config_update_notifier", "false")];

impl Recipe {
    fn of(toolchain: Toolchain, project: &Path) -> Result<Self, String> {
        let manifest = if project.join(MANIFEST).exists() { Some(Manifest::load(project).map_err(|e| format!("{e:#}"))?) } else { None };
        let own = manifest.as_ref().and_then(|m| m.build.command.clone());
        let artifact = manifest.map(|m| m.build.artifact);
        let npm_fetch = || "npm install --no-audit --no-fund".to_string();
        let (fetch, fetch_env, fetch_hidden, build, build_env) = match toolchain {
            Toolchain::Rust => (
                format!("cargo fetch --target {RUST_TARGET}"),
                RUST_FETCH_ENV,
                RUST_FETCH_HIDDEN,
                format!("cargo build --release --target {RUST_TARGET}"),
                RUST_BUILD_ENV,
            ),
            Toolchain::Js => (npm_fetch(), NPM_FETCH_ENV, NPM_FETCH_HIDDEN, "npm run build".to_string(), NPM_BUILD_ENV),
            Toolchain::Assemblyscript => (npm_fetch(), NPM_FETCH_ENV, NPM_FETCH_HIDDEN, "npm run asbuild".to_string(), NPM_BUILD_ENV),
        };
        Ok(Recipe { toolchain, fetch, fetch_env, fetch_hidden, build: own.unwrap_or(build), build_env, artifact })
    }

    /// Whether this machine has the toolchain; if not, which command installs it.
    fn check(&self, host: &Host) -> Result<(), String> {
        match self.toolchain {
            Toolchain::Rust if !host.has_rust() => {
                Err("the build worker's machine has no Rust toolchain: install it with rustup (https://rustup.rs)".into())
            }
            Toolchain::Rust if !host.has_rust_target(RUST_TARGET) => {
                Err(format!("the build worker's machine lacks the Rust target {RUST_TARGET}: run `rustup target add {RUST_TARGET}`"))
            }
            Toolchain::Js | Toolchain::Assemblyscript if crate::sandbox::which("npm").is_none() => {
                Err("the build worker's machine has no npm: run `apt-get install nodejs npm`".into())
            }
            _ => Ok(()),
        }
    }

    /// The module the build made.
    fn artifact(&self, project: &Path, since: SystemTime) -> Result<PathBuf, String> {
        if let Some(artifact) = &self.artifact {
            if !artifact.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir)) {
                return Err(format!("the manifest's artifact {} must be a path inside the project", artifact.display()));
            }
            let path = project.join(artifact);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(format!("the build did not make {} (the manifest's artifact)", artifact.display()))
            };
        }
        let mut made = Vec::new();
        find_wasm(project, since, &mut made);
        match made.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err("the build made no .wasm file: name it in edgefn.toml (`[build] artifact`)".into()),
            many => {
                let names: Vec<_> = many.iter().map(|p| p.strip_prefix(project).unwrap_or(p).display().to_string()).collect();
                Err(format!(
                    "the build made several .wasm files ({}): name the module in edgefn.toml (`[build] artifact`)",
                    names.join(", ")
                ))
            }
        }
    }
}

/// `.wasm` files under `dir` written since `since`, leaving out dependencies.
fn find_wasm(dir: &Path, since: SystemTime, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() && !NOT_ARTIFACTS.iter().any(|n| entry.file_name() == **n) {
            find_wasm(&path, since, found);
        } else if kind.is_file()
            && path.extension().is_some_and(|e| e == "wasm")
            && entry.metadata().and_then(|m| m.modified()).is_ok_and(|m| m >= since)
        {
            found.push(path);
        }
    }
}

/// A build's log: lines gathered and sent in batches, up to a byte cap.
struct Log {
    lines: mpsc::UnboundedSender<String>,
    sender: tokio::task::JoinHandle<()>,
}

impl Log {
    fn new(client: &Client, build: &str, cap: usize) -> Self {
        let (lines, mut rx) = mpsc::unbounded_channel::<String>();
        let client = client.clone();
        let path = format!("/api/v1/builds/{build}/log");
        let sender = tokio::spawn(async move {
            let (mut sent, mut cut, mut noted) = (0usize, false, false);
            let mut open = true;
            while open {
                let mut batch = String::new();
                let tick = tokio::time::sleep(LOG_EVERY);
                tokio::pin!(tick);
                loop {
                    tokio::select! {
                        line = rx.recv() => match line {
                            Some(line) if sent + batch.len() + line.len() < cap => { batch.push_str(&line); batch.push('\n'); }
                            Some(_) => cut = true,
                            None => { open = false; break; }
                        },
                        _ = &mut tick => break,
                    }
                }
                if cut && !noted {
                    batch.push_str(&format!("[log cut: the worker sends at most {} KiB]\n", cap / 1024));
                    noted = true;
                }
                if batch.is_empty() {
                    continue;
                }
                sent += batch.len();
                if let Err(e) = client.send(client.request(Method::POST, &path).header("content-type", "text/plain").body(batch)).await {
                    tracing::warn!(error = %format!("{e:#}"), "sending build log");
                }
            }
        });
        Self { lines, sender }
    }

    /// Where a step's output lines go.
    fn sender(&self) -> mpsc::UnboundedSender<String> {
        self.lines.clone()
    }

    fn line(&self, line: String) {
        let _ = self.lines.send(line);
    }

    /// Sends what is left.
    async fn flush(self) {
        drop(self.lines);
        let _ = self.sender.await;
    }
}
