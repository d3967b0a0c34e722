//! `edgefn build`: the project's build here, or on the control plane's build workers
//! (`--remote`); `edgefn build logs ID --follow` and `edgefn build list`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::project::ProjectArgs;
use crate::client::{Client, segment};
use crate::project::{Manifest, build};

/// How often a followed log is read.
const FOLLOW_EVERY: Duration = Duration::from_millis(500);
/// Directories never sent to a build worker: build outputs, dependencies, local state.
const NOT_SENT: [&str; 5] = ["target", "node_modules", ".git", ".edgefn", "build"];

/// `edgefn build`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BuildCommand {
    #[command(subcommand)]
    sub: Option<BuildSub>,
    #[command(flatten)]
    project: ProjectArgs,
}

#[derive(Subcommand)]
enum BuildSub {
    /// Print a remote build's log (`--follow`: until it ends).
    Logs {
        /// The build's id.
        id: String,
        /// Keep printing until the build ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// The newest remote builds.
    List,
}

impl BuildCommand {
    /// Builds, or shows builds.
    pub async fn execute(self) -> anyhow::Result<()> {
        let ProjectArgs { dir, remote, client } = self.project;
        match self.sub {
            Some(BuildSub::Logs { id, follow: keep }) => {
                let client = Client::new(&client)?;
                let build = follow(&client, &id, keep).await?;
                if keep {
                    ended(&build)?;
                }
                Ok(())
            }
            Some(BuildSub::List) => list(&Client::new(&client)?).await,
            None if remote => {
                let manifest = Manifest::load(&dir)?;
                let client = Client::new(&client)?;
                match super::project::build_remotely(&client, &manifest, &dir).await? {
                    (_, Some(version)) => println!("made {} version {version}", manifest.name),
                    (_, None) => println!("{}'s newest version was built from these sources: nothing to do", manifest.name),
                }
                Ok(())
            }
            None => {
                let manifest = Manifest::load(&dir)?;
                build(&manifest, &dir)?;
                println!("built {}", dir.join(&manifest.build.artifact).display());
                Ok(())
            }
        }
    }
}

/// The project as a gzipped tar, without build outputs and dependencies.
pub fn pack(dir: &Path) -> anyhow::Result<Vec<u8>> {
    let archive = edgefn_control::archive::pack(dir, &NOT_SENT).with_context(|| format!("packing {}", dir.display()))?;
    if archive.len() > edgefn_control::MAX_ARCHIVE_BYTES {
        bail!("the project packs to {} MiB, over the build limit of {} MiB", archive.len() >> 20, edgefn_control::MAX_ARCHIVE_BYTES >> 20);
    }
    Ok(archive)
}

/// The SHA-256 of an archive, as the API shows it.
pub fn digest(archive: &[u8]) -> String {
    hex::encode(Sha256::digest(archive))
}

/// Sends the project to the build workers as version `label`, prints its log as it
/// comes, and returns the ended build; an error when it failed.
pub async fn remote(client: &Client, manifest: &Manifest, archive: &[u8], label: &str) -> anyhow::Result<Value> {
    let mut query = vec![("name", manifest.name.clone()), ("version", label.to_string())];
    for (key, value) in [("description", &manifest.description), ("ownerType", &manifest.class), ("project", &manifest.project)] {
        if let Some(value) = value {
            query.push((key, value.clone()));
        }
    }
    let req =
        client.request(Method::POST, "/api/v1/builds").query(&query).header("content-type", "application/gzip").body(archive.to_vec());
    let queued = client.send(req).await?;
    let id = queued["id"].as_str().context("the build has an id")?;
    eprintln!(
        "build {id} queued ({} KiB of source, {} toolchain); its log follows",
        archive.len() / 1024,
        queued["toolchain"].as_str().unwrap_or("?")
    );
    let build = follow(client, id, true).await?;
    ended(&build)?;
    Ok(build)
}

/// Prints a build's log; with `keep`, until it ends. Returns the build as it was last read.
async fn follow(client: &Client, id: &str, keep: bool) -> anyhow::Result<Value> {
    use std::io::Write;
    let mut after = 0;
    loop {
        let log = client.send(client.request(Method::GET, &format!("/api/v1/builds/{}/log?after={after}", segment(id)))).await?;
        print!("{}", log["text"].as_str().unwrap_or_default());
        std::io::stdout().flush()?;
        after = log["next"].as_i64().unwrap_or(after);
        if !keep || matches!(log["status"].as_str(), Some("succeeded" | "failed")) {
            return client.send(client.request(Method::GET, &format!("/api/v1/builds/{}", segment(id)))).await;
        }
        tokio::time::sleep(FOLLOW_EVERY).await;
    }
}

/// An error when the build failed.
fn ended(build: &Value) -> anyhow::Result<()> {
    match build["status"].as_str() {
        Some("failed") => bail!("build {} failed: {}", build["id"].as_str().unwrap_or_default(), build["error"].as_str().unwrap_or("?")),
        _ => Ok(()),
    }
}

/// `edgefn build list`.
async fn list(client: &Client) -> anyhow::Result<()> {
    let res = client.send(client.request(Method::GET, "/api/v1/builds")).await?;
    if client.json {
        println!("{}", serde_json::to_string_pretty(&res)?);
        return Ok(());
    }
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING).set_header(["ID", "MODULE", "VERSION", "TOOLCHAIN", "STATUS", "QUEUED", "ERROR"]);
    for b in res["builds"].as_array().into_iter().flatten() {
        let text = |k: &str| b[k].as_str().unwrap_or_default().to_string();
        table.add_row([text("id"), text("name"), text("version"), text("toolchain"), text("status"), text("createdAt"), text("error")]);
    }
    println!("{table}");
    Ok(())
}
