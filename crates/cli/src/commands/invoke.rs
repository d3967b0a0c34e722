//! `edgefn invoke MODULE FUNCTION [ARG…]`: each ARG is JSON when it parses as JSON
//! (`1`, `"x"`, `{"a":1}`), otherwise a string.

use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientArgs, segment};

/// Arguments of `invoke`.
#[derive(Args)]
pub struct InvokeCommand {
    /// Module id or name.
    module: String,
    /// Exported function (`interface#function` inside a component interface).
    function: String,
    /// Arguments: JSON values, or plain words taken as strings.
    args: Vec<String>,
    /// Run this version instead of the newest.
    #[arg(long)]
    version: Option<String>,
    /// Stop the call after this many milliseconds (capped by the module's limit).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Read a core function's result from memory: string, bytes or json.
    #[arg(long)]
    result: Option<String>,
    #[command(flatten)]
    client: ClientArgs,
}

impl InvokeCommand {
    /// Runs the call and prints the result.
    pub async fn execute(self) -> anyhow::Result<()> {
        let client = Client::new(&self.client)?;
        let args: Vec<Value> = self.args.iter().map(|a| serde_json::from_str(a).unwrap_or_else(|_| json!(a))).collect();
        let mut body = json!({"function": self.function, "args": args});
        if let Some(v) = self.version {
            body["version"] = json!(v);
        }
        if let Some(t) = self.timeout_ms {
            body["timeoutMs"] = json!(t);
        }
        if let Some(r) = self.result {
            body["result"] = json!(r);
        }
        let path = format!("/api/v1/modules/{}/invoke", segment(&self.module));
        let res = client.send(client.request(Method::POST, &path).json(&body)).await?;
        if client.json {
            println!("{}", serde_json::to_string_pretty(&res)?);
        } else {
            println!("{}", serde_json::to_string_pretty(&res["result"])?);
            eprintln!(
                "{}@{} in {:.3} ms, {} bytes of memory, {}",
                res["module"]["name"].as_str().unwrap_or("?"),
                res["module"]["version"].as_str().unwrap_or("?"),
                res["executionTimeMs"].as_f64().unwrap_or(0.0),
                res["memoryUsedBytes"],
                if res["cacheHit"] == json!(true) { "compiled code from cache" } else { "compiled now" },
            );
        }
        Ok(())
    }
}
