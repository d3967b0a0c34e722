//! `edgefn sandbox-relay`: run by the build worker as the first process of a dependency
//! step's sandbox ([`crate::sandbox`]), never by hand.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Where the relay listens and what it runs.
#[derive(Args, Debug)]
pub struct SandboxRelayCommand {
    /// The package managers' proxy address inside the sandbox.
    #[arg(long)]
    listen: SocketAddr,
    /// The worker's proxy socket, as the sandbox sees it.
    #[arg(long)]
    socket: PathBuf,
    /// The step's command.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

impl SandboxRelayCommand {
    /// Runs the step's command and exits with its code.
    pub async fn execute(self) -> std::process::ExitCode {
        match crate::sandbox::relay::run(self.listen, self.socket, self.command).await {
            Ok(code) => std::process::ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("edgefn sandbox relay: {e:#}");
                std::process::ExitCode::FAILURE
            }
        }
    }
}
