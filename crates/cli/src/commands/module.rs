//! `edgefn module upload|list|show|delete`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use comfy_table::Table;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::Value;

use crate::client::{Client, ClientArgs, segment};

/// Module commands.
#[derive(Subcommand)]
pub enum ModuleCommand {
    /// Upload a .wasm (or .wat, assembled here) as a new module or a new version.
    Upload(UploadArgs),
    /// List modules.
    List(ListArgs),
    /// Show a module, its versions and exported functions.
    Show(KeyArgs),
    /// Delete a module with all its versions and history.
    Delete(KeyArgs),
}

/// Arguments of `upload`.
#[derive(Args)]
pub struct UploadArgs {
    /// The module file: binary .wasm, or WebAssembly text (.wat).
    file: PathBuf,
    /// Module name (default: the file name without extension).
    #[arg(long)]
    name: Option<String>,
    /// Version label.
    #[arg(long, default_value = "1.0.0")]
    version: String,
    /// Description.
    #[arg(long)]
    description: Option<String>,
    /// Class of a new module: `system` or `admin` (admins only) or `user`.
    #[arg(long)]
    owner_type: Option<String>,
    /// Project (name or id) of a new module (default: your personal project).
    #[arg(long)]
    project: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// Arguments of `list`.
#[derive(Args)]
pub struct ListArgs {
    /// Only this class: system, admin or user.
    #[arg(long)]
    owner_type: Option<String>,
    /// Only this status: uploading, active, disabled or error.
    #[arg(long)]
    status: Option<String>,
    /// Only modules you may run.
    #[arg(long)]
    executable: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// A module named by id or name.
#[derive(Args)]
pub struct KeyArgs {
    /// Module id or name.
    module: String,
    #[command(flatten)]
    client: ClientArgs,
}

/// Human sizes: 1.2 KB, 3.4 MB.
pub fn human_bytes(n: i64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / f64::from(1 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KB", n as f64 / f64::from(1 << 10)),
        n => format!("{n} B"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

impl ModuleCommand {
    /// Runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self {
            Self::Upload(a) => upload(a).await,
            Self::List(a) => list(a).await,
            Self::Show(a) => show(a).await,
            Self::Delete(a) => {
                let client = Client::new(&a.client)?;
                client.send(client.request(Method::DELETE, &format!("/api/v1/modules/{}", segment(&a.module)))).await?;
                println!("deleted {}", a.module);
                Ok(())
            }
        }
    }
}

/// A module file's bytes: a binary as it is, WebAssembly text assembled.
pub(crate) fn read_module(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes);
    }
    // Not a binary: assemble WebAssembly text here so examples upload as they are.
    wat::parse_bytes(&bytes)
        .map(|b| b.into_owned())
        .with_context(|| format!("{} is neither a .wasm binary nor valid WebAssembly text", path.display()))
}

async fn upload(a: UploadArgs) -> anyhow::Result<()> {
    let client = Client::new(&a.client)?;
    let bytes = read_module(&a.file)?;
    let name = match a.name {
        Some(n) => n,
        None => {
            a.file.file_stem().and_then(|s| s.to_str()).context("cannot take a module name from the file name; pass --name")?.to_string()
        }
    };
    let bar = ProgressBar::new(bytes.len() as u64);
    bar.set_style(ProgressStyle::with_template("uploading {bar:30} {bytes}/{total_bytes} {msg}")?);
    let progress = bar.clone();
    let chunks: Vec<Vec<u8>> = bytes.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let stream = futures::stream::iter(chunks).map(move |c| {
        progress.inc(c.len() as u64);
        Ok::<_, std::io::Error>(c)
    });
    let mut query = vec![("name", name), ("version", a.version)];
    for (key, value) in [("description", a.description), ("ownerType", a.owner_type), ("project", a.project)] {
        if let Some(value) = value {
            query.push((key, value));
        }
    }
    let req = client
        .request(Method::POST, "/api/v1/modules")
        .query(&query)
        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
        .header(reqwest::header::CONTENT_LENGTH, bytes.len())
        .body(reqwest::Body::wrap_stream(stream));
    bar.set_message("validating and compiling");
    let res = client.send(req).await;
    bar.finish_and_clear();
    let res = res?;
    if client.json {
        println!("{}", serde_json::to_string_pretty(&res)?);
        return Ok(());
    }
    let (m, v) = (&res["module"], &res["version"]);
    println!(
        "uploaded {}@{} ({}, {})",
        text(&m["name"]),
        text(&v["version"]),
        text(&v["kind"]),
        human_bytes(v["sizeBytes"].as_i64().unwrap_or(0))
    );
    println!("  id      {}", text(&m["id"]));
    println!("  sha256  {}", text(&v["sha256"]));
    for f in v["exports"].as_array().into_iter().flatten() {
        println!("  export  {}", text(&f["signature"]));
    }
    Ok(())
}

async fn list(a: ListArgs) -> anyhow::Result<()> {
    let client = Client::new(&a.client)?;
    let mut query = vec![];
    if let Some(t) = a.owner_type {
        query.push(("owner_type", t));
    }
    if let Some(s) = a.status {
        query.push(("status", s));
    }
    if a.executable {
        query.push(("executable", "true".into()));
    }
    let res = client.send(client.request(Method::GET, "/api/v1/modules").query(&query)).await?;
    if client.json {
        println!("{}", serde_json::to_string_pretty(&res["modules"])?);
        return Ok(());
    }
    let mut table = Table::new();
    table.load_preset(comfy_table::presets::NOTHING).set_header(["NAME", "LATEST", "CLASS", "STATUS", "ID", "DESCRIPTION"]);
    for m in res["modules"].as_array().into_iter().flatten() {
        table.add_row([&m["name"], &m["latestVersion"], &m["ownerType"], &m["status"], &m["id"], &m["description"]].map(text));
    }
    println!("{table}");
    Ok(())
}

async fn show(a: KeyArgs) -> anyhow::Result<()> {
    let client = Client::new(&a.client)?;
    let m = client.send(client.request(Method::GET, &format!("/api/v1/modules/{}", segment(&a.module)))).await?;
    if client.json {
        println!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(());
    }
    println!("{} ({})", text(&m["name"]), text(&m["id"]));
    println!("  class {}, status {}, public {}", text(&m["ownerType"]), text(&m["status"]), text(&m["isPublic"]));
    let pages = m["maxMemoryPages"].as_i64().unwrap_or(0);
    println!("  limits: timeout {} ms, memory {}", text(&m["timeoutMs"]), human_bytes(pages * 65536));
    if !text(&m["description"]).is_empty() {
        println!("  {}", text(&m["description"]));
    }
    for v in m["versions"].as_array().into_iter().flatten() {
        println!(
            "\n  version {} ({}, {}, {})",
            text(&v["version"]),
            text(&v["kind"]),
            human_bytes(v["sizeBytes"].as_i64().unwrap_or(0)),
            text(&v["createdAt"])
        );
        for f in v["exports"].as_array().into_iter().flatten() {
            println!("    {}", text(&f["signature"]));
        }
    }
    Ok(())
}
