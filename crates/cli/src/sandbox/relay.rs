//! Inside the dependency step's sandbox: the step's first process, which listens on the
//! sandbox's own loopback (the only network device it has) for the package managers'
//! proxy connections, carries each to the worker's [`super::proxy`] through the unix
//! socket bound into the sandbox, and runs the step's command, ending with it.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tokio::net::{TcpListener, UnixStream};

/// Where the relay listens inside the sandbox, as the package managers' proxy.
pub const LISTEN: &str = "127.0.0.1:3128";
/// Where the sandbox sees the worker's proxy socket.
pub const SOCKET: &str = "/run/edgefn/proxy.sock";
/// Where the sandbox sees the edgefn binary that runs the relay.
pub const BINARY: &str = "/run/edgefn/edgefn";

/// Relays `listen` to `socket` while `command` runs; its exit code is the command's
/// (128 + the signal's number when a signal ended it).
pub async fn run(listen: SocketAddr, socket: PathBuf, command: Vec<OsString>) -> anyhow::Result<i32> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("listening on {listen} in the sandbox"))?;
    let (program, args) = command.split_first().context("no command to run")?;
    let mut child = tokio::process::Command::new(program).args(args).spawn().with_context(|| format!("starting {program:?}"))?;
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.context("waiting for the step's command")?;
                use std::os::unix::process::ExitStatusExt;
                return Ok(status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1));
            }
            accepted = listener.accept() => {
                let Ok((mut inside, _)) = accepted else { continue };
                let socket = socket.clone();
                tokio::spawn(async move {
                    if let Ok(mut outside) = UnixStream::connect(&socket).await {
                        let _ = tokio::io::copy_bidirectional(&mut inside, &mut outside).await;
                    }
                });
            }
        }
    }
}
