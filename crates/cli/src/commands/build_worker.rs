//! `edgefn build-worker`: takes builds from a control plane and does them in a sandbox
//! (see the `worker` module). `edgefn up` runs one inside unless told not to.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::client::{Client, ClientArgs};
use crate::sandbox::Limits;
use crate::worker::{self, Settings};

/// Flags of a build worker's limits, shared with `edgefn up`.
#[derive(Args, Debug, Clone)]
pub struct WorkerLimits {
    /// Longest a build may take, in seconds.
    #[arg(long, env = "EDGEFN_BUILD_TIME_LIMIT_SECONDS", default_value_t = 600)]
    pub build_time_limit_seconds: u64,
    /// Most memory (resident, all of a build's processes together), in MiB.
    #[arg(long, env = "EDGEFN_BUILD_MEMORY_MB", default_value_t = 4096)]
    pub build_memory_mb: u64,
    /// Largest file a build may write, in MiB.
    #[arg(long, env = "EDGEFN_BUILD_FILE_MB", default_value_t = 1024)]
    pub build_file_mb: u64,
    /// Disk a build's directory (sources, dependencies, outputs) may take, in MiB.
    #[arg(long, env = "EDGEFN_BUILD_DISK_MB", default_value_t = 8192)]
    pub build_disk_mb: u64,
    /// Most log a build sends, in KiB.
    #[arg(long, env = "EDGEFN_BUILD_LOG_KB", default_value_t = 1024)]
    pub build_log_kb: usize,
    /// The unprivileged host user builds run as; a worker running as root builds nothing
    /// without one (`useradd --system --no-create-home edgefn-build`).
    #[arg(long, env = "EDGEFN_BUILD_USER")]
    pub build_user: Option<String>,
}

impl WorkerLimits {
    /// The worker's settings, named `name`, unpacking under `work_dir`.
    pub fn settings(&self, name: String, work_dir: PathBuf) -> Settings {
        Settings {
            name,
            work_dir,
            time_limit: Duration::from_secs(self.build_time_limit_seconds.max(1)),
            limits: Limits {
                memory_bytes: self.build_memory_mb.max(1) << 20,
                file_bytes: self.build_file_mb.max(1) << 20,
                disk_bytes: self.build_disk_mb.max(1) << 20,
            },
            max_log_bytes: self.build_log_kb.max(1) << 10,
            user: self.build_user.clone(),
        }
    }
}

/// `edgefn build-worker`.
#[derive(Args)]
pub struct BuildWorkerCommand {
    /// The worker's name, shown on its builds; each worker needs its own [default: the host's name].
    #[arg(long)]
    name: Option<String>,
    /// Where builds are unpacked (each in its own directory, removed after).
    #[arg(long, default_value = "/tmp/edgefn-builds")]
    work_dir: PathBuf,
    #[command(flatten)]
    limits: WorkerLimits,
    /// Print logs as JSON lines.
    #[arg(long)]
    log_json: bool,
    #[command(flatten)]
    client: ClientArgs,
}

impl BuildWorkerCommand {
    /// Runs until stopped.
    pub async fn execute(self) -> anyhow::Result<()> {
        super::init_logs(self.log_json);
        let client = Client::new(&self.client)?;
        let name = self.name.unwrap_or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "worker".into())
        });
        let settings = self.limits.settings(name, self.work_dir);
        tokio::select! {
            result = worker::run(client, settings) => result,
            () = super::up::shutdown_signal() => Ok(()),
        }
    }
}
