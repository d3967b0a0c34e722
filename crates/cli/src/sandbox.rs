//! Runs one build step in a bubblewrap sandbox, within limits.
//!
//! The step sees the project at `/build` (read-write), a home at `/home/build`, the
//! system's `/usr` and the Rust toolchain read-only, a `/etc` of name resolution, TLS
//! roots and a passwd naming only its own user, a private `/tmp`, a `/proc` whose kernel
//! settings (`/proc/sys`) are read-only, no `/sys`, and nothing else of the machine: no
//! data directory, no secrets, no other build. It runs as uid 1000 in its own user, PID,
//! IPC, UTS, cgroup and network namespaces — with no network but its own loopback, where the
//! dependency download (which runs no project code) finds the [`relay`] to the worker's
//! [`proxy`], which reaches public addresses only — with no capabilities, no way to
//! make further user namespaces, and a system-call filter ([`seccomp`]). Bubblewrap itself
//! runs as an unprivileged host user ([`user`]): a worker running as root names one, so the
//! build's uid is never the host's root. Killing the outer `bwrap` ends the namespace's
//! first process, and the kernel then ends every process in it: a step past its time or
//! memory is stopped with everything it started.
//!
//! Memory is watched by summing the resident memory of the step's processes and what its
//! tmpfs mounts (`/tmp`, `/dev`) hold (every [`WATCH_EVERY`]), disk by summing the build
//! directory's blocks (every [`DISK_EVERY`]); each file is capped by the shell's
//! `ulimit -f`; output by the log's own cap.

mod proxy;
pub mod relay;
mod seccomp;
mod user;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use command_fds::{CommandFdExt, FdMapping};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

pub use user::BuildUser;
use user::seen_at;

/// How often the memory of a step's processes is added up.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// How often the disk a build uses is added up.
const DISK_EVERY: Duration = Duration::from_secs(1);
/// Bytes of a memory page.
const PAGE_BYTES: u64 = 4096;
/// Where the project is inside the sandbox.
pub const PROJECT_DIR: &str = "/build";
/// The step's home inside the sandbox (`CARGO_HOME` and npm's cache are under it).
const HOME_DIR: &str = "/home/build";
/// Where the host's rustup directory is seen.
const RUSTUP_DIR: &str = "/opt/rustup";
/// Where the host's cargo commands are seen.
const CARGO_BIN_DIR: &str = "/opt/cargo/bin";
/// Files of `/etc` a step may read: name resolution and TLS roots (for downloads), and
/// the system's command alternatives (`cc`).
const ETC_FILES: [&str; 6] =
    ["/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/ssl", "/etc/ca-certificates", "/etc/alternatives"];

/// A step's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Resident memory of all its processes together.
    pub memory_bytes: u64,
    /// Largest file it may write.
    pub file_bytes: u64,
    /// Disk its directory (project, dependencies, outputs) may take.
    pub disk_bytes: u64,
}

/// A command to run in the sandbox.
pub struct Step<'a> {
    /// Shell command, run in the project.
    pub command: &'a str,
    /// Whether it may download, through the build proxy (public addresses only).
    pub network: bool,
    /// Variables beside `PATH`, `HOME`, `CARGO_HOME` and `RUSTUP_HOME`.
    pub env: &'a [(&'a str, &'a str)],
    /// Files and directories of the project this step does not see (the project's own
    /// tool settings, which could name a program to run).
    pub hidden: &'a [&'a str],
}

/// How a step ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// It ran past the deadline and was killed.
    TimedOut,
    /// Its processes held more memory than the limit and were killed.
    OutOfMemory,
    /// Its directory grew past the disk limit and it was killed.
    OutOfDisk,
}

/// The file descriptor bubblewrap reads the system-call filter from.
const SECCOMP_FD: i32 = 3;

/// Where the host's toolchains are and whom builds run as, found once.
#[derive(Debug, Clone)]
pub struct Host {
    rustup_home: Option<PathBuf>,
    cargo_bin: Option<PathBuf>,
    /// The user bubblewrap is started as, when it is not the worker's own.
    user: Option<BuildUser>,
    /// The system-call filter, compiled.
    seccomp: Vec<u8>,
    /// This program, which runs the dependency step's [`relay`].
    relay: PathBuf,
}

impl Host {
    /// Finds bubblewrap, the Rust toolchain (`RUSTUP_HOME`, `CARGO_HOME`, else `~/.rustup`,
    /// `~/.cargo`) and the build user: `user` if named; a worker running as root must name
    /// one.
    pub fn find(user: Option<&str>) -> anyhow::Result<Self> {
        if which("bwrap").is_none() {
            bail!("bubblewrap is not installed: builds run in its sandbox (apt-get install bubblewrap)");
        }
        let root = nix::unistd::geteuid().is_root();
        let user = match user.map(BuildUser::lookup).transpose()? {
            None if root => bail!(
                "the build worker runs as root and builds nothing as root: name an unprivileged user for builds with \
                 --build-user (for example `useradd --system --no-create-home edgefn-build`, then `--build-user edgefn-build`)"
            ),
            Some(user) if user.is_current() => None,
            Some(user) if !root => bail!("only a worker running as root can build as another user ({})", user.name()),
            user => user,
        };
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let dir = |var: &str, default: &str| {
            std::env::var_os(var).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(default))).filter(|p| p.is_dir())
        };
        Ok(Self {
            rustup_home: dir("RUSTUP_HOME", ".rustup"),
            cargo_bin: dir("CARGO_HOME", ".cargo").map(|c| c.join("bin")).filter(|p| p.is_dir()),
            user,
            seccomp: seccomp::program()?,
            relay: std::env::current_exe().context("finding the edgefn binary (it relays the dependency step's downloads)")?,
        })
    }

    /// Whether cargo (through rustup) can be run in the sandbox.
    pub fn has_rust(&self) -> bool {
        self.rustup_home.is_some() && self.cargo_bin.as_ref().is_some_and(|b| b.join("cargo").exists())
    }

    /// Whether the Rust toolchain has the standard library of `target`.
    pub fn has_rust_target(&self, target: &str) -> bool {
        let Some(rustup) = &self.rustup_home else { return false };
        std::fs::read_dir(rustup.join("toolchains"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|toolchain| toolchain.path().join("lib/rustlib").join(target).is_dir())
    }

    /// Makes the build directory `dir` ready for its steps, once: its `home`, the sandbox's
    /// passwd and group, and all of it (the unpacked project too) given to the build user.
    /// What the steps then write is the build user's already.
    pub fn prepare(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir.join("home")).context("making the build's home")?;
        // Tools look their user up (wizer finds its configuration by the home in passwd).
        std::fs::write(dir.join("passwd"), format!("build:x:1000:1000:build:{HOME_DIR}:/bin/sh\n"))
            .context("writing the sandbox's passwd")?;
        std::fs::write(dir.join("group"), "build:x:1000:\n").context("writing the sandbox's group")?;
        if let Some(user) = &self.user {
            user.own(dir).context("giving the build directory to the build user")?;
        }
        Ok(())
    }

    /// Runs `step` in the build directory `dir` ([`Host::prepare`]d) — its `project` at
    /// `/build`, its `home` at `/home/build` — killed at `deadline` or past `limits`; each
    /// line of its output goes to `output`.
    pub async fn run(
        &self,
        dir: &Path,
        step: &Step<'_>,
        limits: Limits,
        deadline: tokio::time::Instant,
        output: mpsc::UnboundedSender<String>,
    ) -> anyhow::Result<Ended> {
        let project = dir.join("project");
        let user = self.user.as_ref();
        let mut bwrap = tokio::process::Command::new("bwrap");
        let mut staged: Vec<(&Path, &str)> = vec![(dir, "build")];
        let build = seen_at(user, dir, "build");
        bwrap.args(["--die-with-parent", "--new-session", "--unshare-all", "--unshare-user", "--disable-userns"]);
        bwrap.args(["--uid", "1000", "--gid", "1000", "--cap-drop", "ALL"]);
        bwrap.args(["--ro-bind", "/usr", "/usr"]);
        for dir in ["bin", "lib", "lib64", "sbin"] {
            let host = Path::new("/").join(dir);
            match std::fs::read_link(&host) {
                Ok(target) => bwrap.arg("--symlink").arg(target).arg(&host),
                Err(_) if host.is_dir() => bwrap.arg("--ro-bind").arg(&host).arg(&host),
                Err(_) => continue,
            };
        }
        for file in ETC_FILES.iter().filter(|f| Path::new(f).exists()) {
            bwrap.args(["--ro-bind", file, file]);
        }
        bwrap.args(["--proc", "/proc", "--ro-bind", "/proc/sys", "/proc/sys", "--dev", "/dev"]);
        bwrap.args(["--size", &limits.memory_bytes.to_string(), "--tmpfs", "/tmp"]);
        bwrap.arg("--ro-bind").arg(build.join("passwd")).arg("/etc/passwd");
        bwrap.arg("--ro-bind").arg(build.join("group")).arg("/etc/group");
        bwrap.arg("--bind").arg(build.join("project")).arg(PROJECT_DIR);
        bwrap.arg("--bind").arg(build.join("home")).arg(HOME_DIR);
        for name in step.hidden {
            let inside = format!("{PROJECT_DIR}/{name}");
            match std::fs::symlink_metadata(project.join(name)) {
                Ok(meta) if meta.is_symlink() => bail!("the project's {name} is a link: it must be a file or directory of its own"),
                Ok(meta) if meta.is_dir() => bwrap.args(["--tmpfs", &inside]),
                Ok(_) => bwrap.args(["--ro-bind", "/dev/null", &inside]),
                Err(_) => continue,
            };
        }
        // The dependency step's network is its own loopback; the relay carries its package
        // managers' proxy connections to the worker's proxy, which reaches public addresses only.
        let mut proxy = None;
        if step.network {
            proxy = Some(proxy::Proxy::start(&dir.join("proxy.sock"), output.clone())?);
            bwrap.arg("--bind").arg(build.join("proxy.sock")).arg(relay::SOCKET);
            // Staged by its directory: a stage is a directory.
            let (relay_dir, relay_name) = (
                self.relay.parent().context("the edgefn binary's directory")?,
                self.relay.file_name().context("the edgefn binary's name")?,
            );
            bwrap.arg("--ro-bind").arg(seen_at(user, relay_dir, "relay").join(relay_name)).arg(relay::BINARY);
            staged.push((relay_dir, "relay"));
        }
        let mut path = String::from("/usr/local/bin:/usr/bin:/bin");
        if let (Some(rustup), Some(cargo_bin)) = (&self.rustup_home, &self.cargo_bin) {
            bwrap.arg("--ro-bind").arg(seen_at(user, rustup, "rustup")).arg(RUSTUP_DIR);
            bwrap.arg("--ro-bind").arg(seen_at(user, cargo_bin, "cargo-bin")).arg(CARGO_BIN_DIR);
            staged.extend([(rustup.as_path(), "rustup"), (cargo_bin.as_path(), "cargo-bin")]);
            path = format!("{CARGO_BIN_DIR}:{path}");
        }
        bwrap.args(["--seccomp", &SECCOMP_FD.to_string()]);
        bwrap.args(["--chdir", PROJECT_DIR, "--clearenv"]);
        let home_env = [
            ("PATH", path.as_str()),
            ("HOME", HOME_DIR),
            ("CARGO_HOME", "/home/build/.cargo"),
            ("RUSTUP_HOME", RUSTUP_DIR),
            ("TMPDIR", "/tmp"),
        ];
        let proxy_url = format!("http://{}", relay::LISTEN);
        let proxy_env: &[(&str, &str)] = match step.network {
            true => &[
                ("HTTPS_PROXY", &proxy_url),
                ("https_proxy", &proxy_url),
                ("HTTP_PROXY", &proxy_url),
                ("http_proxy", &proxy_url),
                ("CARGO_HTTP_PROXY", &proxy_url),
                ("npm_config_proxy", &proxy_url),
                ("npm_config_https_proxy", &proxy_url),
            ],
            false => &[],
        };
        for (key, value) in home_env.iter().chain(proxy_env).chain(step.env) {
            bwrap.args(["--setenv", key, value]);
        }
        // `ulimit -f` counts 512-byte blocks.
        let script = format!("ulimit -f {} && exec /bin/sh -c \"$0\"", limits.file_bytes / 512);
        if step.network {
            bwrap.args([relay::BINARY, "sandbox-relay", "--listen", relay::LISTEN, "--socket", relay::SOCKET, "--"]);
        }
        bwrap.args(["/bin/sh", "-c", &script, step.command]);
        // Dropping to the build user comes first: the filter's descriptor is put in place after.
        if let Some(user) = user {
            user.prepare(&mut bwrap, &staged)?;
        }
        let mut filter = tempfile::tempfile().context("making the seccomp filter's file")?;
        {
            use std::io::{Seek, Write};
            filter.write_all(&self.seccomp).and_then(|()| filter.rewind()).context("writing the seccomp filter")?;
        }
        bwrap
            .fd_mappings(vec![FdMapping { parent_fd: filter.into(), child_fd: SECCOMP_FD }])
            .context("handing the seccomp filter to bubblewrap")?;
        bwrap.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = bwrap.spawn().context("starting bwrap")?;
        let pid = child.id().context("bwrap's process id")?;
        let stdout = forward(child.stdout.take().context("stdout")?, output.clone());
        let stderr = forward(child.stderr.take().context("stderr")?, output);
        let mut watch = tokio::time::interval(WATCH_EVERY);
        let mut disk = tokio::time::interval(DISK_EVERY);
        let ended = loop {
            tokio::select! {
                status = child.wait() => break Ended::Exited(status.context("waiting for the build step")?.code()),
                _ = tokio::time::sleep_until(deadline) => break Ended::TimedOut,
                _ = watch.tick() => {
                    if memory_bytes(pid) > limits.memory_bytes {
                        break Ended::OutOfMemory;
                    }
                }
                _ = disk.tick() => {
                    let dir = dir.to_path_buf();
                    if tokio::task::spawn_blocking(move || disk_bytes(&dir)).await.unwrap_or(0) > limits.disk_bytes {
                        break Ended::OutOfDisk;
                    }
                }
            }
        };
        if !matches!(ended, Ended::Exited(_)) {
            child.start_kill().context("stopping the build step")?;
            child.wait().await.context("waiting for the stopped build step")?;
        }
        // The pipes close when the namespace's last process has gone.
        let _ = tokio::join!(stdout, stderr);
        drop(proxy);
        Ok(ended)
    }
}

/// Sends each line of `pipe` to `output`.
fn forward(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static, output: mpsc::UnboundedSender<String>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if output.send(line).is_err() {
                break;
            }
        }
    })
}

/// Memory a step holds: the resident bytes of `root` and every process under it, and the
/// bytes held by the tmpfs mounts its processes see.
fn memory_bytes(root: u32) -> u64 {
    let tree = process_tree(root);
    let resident: u64 = tree.iter().map(|(_, rss)| rss * PAGE_BYTES).sum();
    // Every process under bubblewrap's first is in the sandbox's mount namespace.
    let tmpfs = tree.first().map_or(0, |(pid, _)| tmpfs_bytes(*pid));
    resident + tmpfs
}

/// The processes under `root` (not `root` itself), parents first, with their resident pages.
fn process_tree(root: u32) -> Vec<(u32, u64)> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // Fields after the command name (which may hold spaces) in parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (Some(ppid), Some(rss)) =
            (fields.get(1).and_then(|f| f.parse::<u32>().ok()), fields.get(21).and_then(|f| f.parse::<u64>().ok()))
        else {
            continue;
        };
        parent_of.push((pid, ppid, rss));
    }
    let mut inside = vec![root];
    let mut tree = Vec::new();
    let mut grew = true;
    while grew {
        grew = false;
        for (pid, ppid, rss) in &parent_of {
            if !inside.contains(pid) && inside.contains(ppid) {
                inside.push(*pid);
                tree.push((*pid, *rss));
                grew = true;
            }
        }
    }
    tree
}

/// Bytes held by the tmpfs mounts `pid` sees (read through its root, as its mount
/// namespace has them): what a build writes to `/tmp` or `/dev/shm` is memory.
fn tmpfs_bytes(pid: u32) -> u64 {
    let Ok(mounts) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else { return 0 };
    let mut total = 0;
    for line in mounts.lines() {
        // `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS…] - TYPE SOURCE SUPER_OPTIONS`
        let Some((head, tail)) = line.split_once(" - ") else { continue };
        if tail.split_whitespace().next() != Some("tmpfs") {
            continue;
        }
        let Some(point) = head.split_whitespace().nth(4) else { continue };
        let path = format!("/proc/{pid}/root{}", point.replace("\\040", " "));
        if let Ok(fs) = nix::sys::statvfs::statvfs(path.as_str()) {
            total += (fs.blocks() - fs.blocks_free()) * fs.fragment_size();
        }
    }
    total
}

/// Disk blocks taken by the files under `dir` (links not followed; a sparse file counts
/// what it holds, not its length).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

/// The path of the command `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}
