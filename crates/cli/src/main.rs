//! `edgefn`: run the platform (`edgefn up`) and drive it from the terminal.

mod client;
mod commands;
mod private;
mod project;
mod sandbox;
mod worker;

use clap::{Parser, Subcommand};

/// mimalloc: the request path allocates and frees many small objects (hyper, tokio,
/// wasmtime stores); glibc's malloc took ~8 % of a node's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Run WebAssembly functions: upload a module, call its exports with JSON.
#[derive(Parser)]
#[command(name = "edgefn", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on this machine: the API, an edge node, storage under ./.edgefn.
    Up(commands::up::UpCommand),
    /// Run the control plane alone: API, admin UI and the node stream (mTLS).
    Control(commands::control::ControlCommand),
    /// Run an edge node fed by a control plane (`--control https://HOST:8443`), or
    /// `node list` / `node rm NAME` the registry.
    Node(commands::node::NodeCommand),
    /// Create the certificates of the node stream's mTLS.
    #[command(subcommand)]
    Certs(commands::certs::CertsCommand),
    /// Upload, list, show and delete modules.
    #[command(subcommand)]
    Module(commands::module::ModuleCommand),
    /// Add, list and remove HTTP routes of the edge nodes.
    #[command(subcommand)]
    Route(commands::route::RouteCommand),
    /// Call an exported function: `edgefn invoke add add 1 2`.
    Invoke(commands::invoke::InvokeCommand),
    /// Show a module's execution history, newest first.
    Executions(commands::history::ExecutionsCommand),
    /// Show a module's call statistics.
    Stats(commands::history::StatsCommand),
    /// Check a server and token, and save them for later commands (mode 0600).
    Login(commands::identity::LoginCommand),
    /// Create, list, disable and enable users.
    #[command(subcommand)]
    User(commands::identity::UserCommand),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(commands::identity::TokenCommand),
    /// Projects and their members.
    #[command(subcommand)]
    Project(commands::identity::ProjectCommand),
    /// Read and verify the audit log.
    #[command(subcommand)]
    Audit(commands::identity::AuditCommand),
    /// Start a function from a template: `edgefn new hello --template rust-http`.
    New(commands::project::NewCommand),
    /// Build the function of `./edgefn.toml` here, or on the build workers (`--remote`);
    /// `build logs ID --follow`, `build list`.
    Build(commands::build::BuildCommand),
    /// Build if needed, upload, apply the settings and routes of `./edgefn.toml`, wait
    /// for the nodes, print the URLs.
    Deploy(commands::project::DeployCommand),
    /// Take builds from a control plane and do them in a sandbox (bubblewrap).
    BuildWorker(commands::build_worker::BuildWorkerCommand),
    /// Compile one module from stdin to stdout (run by the server, killed past the
    /// compile timeout).
    #[command(hide = true)]
    CompileWorker(commands::compile_worker::CompileWorkerCommand),
    /// Relay a dependency step's proxy connections out of its sandbox while its command
    /// runs (run by the build worker inside the sandbox).
    #[command(hide = true)]
    SandboxRelay(commands::sandbox_relay::SandboxRelayCommand),
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(c) => c.execute().await,
        Command::Control(c) => c.execute().await,
        Command::Node(c) => c.execute().await,
        Command::Certs(c) => c.execute(),
        Command::Module(c) => c.execute().await,
        Command::Route(c) => c.execute().await,
        Command::Invoke(c) => c.execute().await,
        Command::Executions(c) => c.execute().await,
        Command::Stats(c) => c.execute().await,
        Command::Login(c) => c.execute().await,
        Command::User(c) => c.execute().await,
        Command::Token(c) => c.execute().await,
        Command::Project(c) => c.execute().await,
        Command::Audit(c) => c.execute().await,
        Command::New(c) => c.execute(),
        Command::Build(c) => c.execute().await,
        Command::BuildWorker(c) => c.execute().await,
        Command::Deploy(c) => c.execute().await,
        Command::CompileWorker(c) => return c.execute(),
        Command::SandboxRelay(c) => return c.execute().await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
