//! `edgefn route add|list|rm`: which function answers which host and path.

use clap::{Args, Subcommand};
use comfy_table::Table;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientArgs, segment};

/// Route commands.
#[derive(Subcommand)]
pub enum RouteCommand {
    /// Route a path (and optionally a host) to a module.
    Add(AddArgs),
    /// List routes.
    List(ClientOnly),
    /// Remove a route by id.
    Rm(RmArgs),
}

/// Arguments of `route add`.
#[derive(Args)]
pub struct AddArgs {
    /// Path pattern, e.g. `/hello`, `/api` (with --match prefix), `/items/[0-9]+` (regex).
    path: String,
    /// Target module, by id or name.
    #[arg(long)]
    module: String,
    /// `exact`, `prefix` or `regex`.
    #[arg(long = "match", default_value = "exact")]
    match_kind: String,
    /// Host: `example.com` or `*.example.com` (default: any host).
    #[arg(long)]
    host: Option<String>,
    /// Allowed method; repeat for several (default: any).
    #[arg(long = "method")]
    methods: Vec<String>,
    /// Higher wins when several routes match.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i64,
    /// Only on nodes of these POPs (`tokyo-1`, `tokyo-*`, comma-separated).
    #[arg(long)]
    pop: Option<String>,
    /// Pin a version (default: follow the newest).
    #[arg(long)]
    version: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// Only the connection flags.
#[derive(Args)]
pub struct ClientOnly {
    #[command(flatten)]
    client: ClientArgs,
}

/// Arguments of `route rm`.
#[derive(Args)]
pub struct RmArgs {
    /// Route id.
    id: String,
    #[command(flatten)]
    client: ClientArgs,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "*".into(),
        Value::Array(a) if a.is_empty() => "*".into(),
        Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

impl RouteCommand {
    /// Runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self {
            Self::Add(a) => {
                let client = Client::new(&a.client)?;
                let body = json!({
                    "host": a.host, "path": a.path, "match": a.match_kind, "methods": a.methods,
                    "priority": a.priority, "popSelector": a.pop, "moduleId": a.module, "version": a.version,
                });
                let r = client.send(client.request(Method::POST, "/api/v1/routes").json(&body)).await?;
                if client.json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    println!(
                        "route {} added: {}{} ({}) -> {}",
                        text(&r["id"]),
                        text(&r["host"]),
                        text(&r["path"]),
                        text(&r["match"]),
                        a.module
                    );
                }
                Ok(())
            }
            Self::List(a) => {
                let client = Client::new(&a.client)?;
                let res = client.send(client.request(Method::GET, "/api/v1/routes")).await?;
                if client.json {
                    println!("{}", serde_json::to_string_pretty(&res["routes"])?);
                    return Ok(());
                }
                let mut table = Table::new();
                table
                    .load_preset(comfy_table::presets::NOTHING)
                    .set_header(["ID", "HOST", "PATH", "MATCH", "METHODS", "PRIORITY", "POP", "MODULE", "VERSION"]);
                for r in res["routes"].as_array().into_iter().flatten() {
                    table.add_row(
                        [
                            &r["id"],
                            &r["host"],
                            &r["path"],
                            &r["match"],
                            &r["methods"],
                            &r["priority"],
                            &r["popSelector"],
                            &r["moduleId"],
                            &r["version"],
                        ]
                        .map(text),
                    );
                }
                println!("{table}");
                Ok(())
            }
            Self::Rm(a) => {
                let client = Client::new(&a.client)?;
                client.send(client.request(Method::DELETE, &format!("/api/v1/routes/{}", segment(&a.id)))).await?;
                println!("removed route {}", a.id);
                Ok(())
            }
        }
    }
}
