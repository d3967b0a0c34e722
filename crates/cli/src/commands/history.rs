//! `edgefn executions MODULE` and `edgefn stats MODULE`.

use clap::Args;
use comfy_table::Table;
use reqwest::Method;
use serde_json::Value;

use crate::client::{Client, ClientArgs, segment};

/// Arguments of `executions`.
#[derive(Args)]
pub struct ExecutionsCommand {
    /// Module id or name.
    module: String,
    /// Rows to show.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Rows to skip.
    #[arg(long, default_value_t = 0)]
    offset: u32,
    #[command(flatten)]
    client: ClientArgs,
}

/// Arguments of `stats`.
#[derive(Args)]
pub struct StatsCommand {
    /// Module id or name.
    module: String,
    #[command(flatten)]
    client: ClientArgs,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

impl ExecutionsCommand {
    /// Prints a page of history.
    pub async fn execute(self) -> anyhow::Result<()> {
        let client = Client::new(&self.client)?;
        let path = format!("/api/v1/modules/{}/executions", segment(&self.module));
        let res = client.send(client.request(Method::GET, &path).query(&[("limit", self.limit), ("offset", self.offset)])).await?;
        if client.json {
            println!("{}", serde_json::to_string_pretty(&res)?);
            return Ok(());
        }
        let mut table = Table::new();
        table.load_preset(comfy_table::presets::NOTHING).set_header([
            "TIME",
            "FUNCTION",
            "VERSION",
            "STATUS",
            "MS",
            "INPUT",
            "OUTPUT / ERROR",
        ]);
        for e in res["executions"].as_array().into_iter().flatten() {
            let out = if e["status"] == "success" { text(&e["output"]) } else { text(&e["error"]) };
            let ms = format!("{:.3}", e["executionTimeUs"].as_f64().unwrap_or(0.0) / 1000.0);
            table.add_row([
                text(&e["createdAt"]),
                text(&e["functionName"]),
                text(&e["version"]),
                text(&e["status"]),
                ms,
                text(&e["input"]),
                out,
            ]);
        }
        println!("{table}");
        println!("{} of {} executions", res["executions"].as_array().map_or(0, Vec::len), res["total"]);
        Ok(())
    }
}

impl StatsCommand {
    /// Prints the statistics.
    pub async fn execute(self) -> anyhow::Result<()> {
        let client = Client::new(&self.client)?;
        let s = client.send(client.request(Method::GET, &format!("/api/v1/modules/{}/stats", segment(&self.module)))).await?;
        if client.json {
            println!("{}", serde_json::to_string_pretty(&s)?);
            return Ok(());
        }
        println!("executions    {}", s["totalExecutions"]);
        println!("success rate  {:.1} %", s["successRate"].as_f64().unwrap_or(0.0) * 100.0);
        let ms = |k: &str| format!("{:.3} ms", s[k].as_f64().unwrap_or(0.0));
        println!("latency       avg {}, p50 {}, p95 {}, p99 {}", ms("avgExecutionTime"), ms("p50"), ms("p95"), ms("p99"));
        Ok(())
    }
}
