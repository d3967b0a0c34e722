//! The API client of the client commands: finds the server and token (flags, then
//! `EDGEFN_URL`/`EDGEFN_TOKEN`, then `./.edgefn/`), and turns API errors into messages.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

/// Where the API is unless told otherwise.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Connection flags shared by every client command.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// API address.
    #[arg(long, env = "EDGEFN_URL", default_value = DEFAULT_URL, global = true)]
    pub url: String,
    /// API token (default: the admin token in <data-dir>/admin-token).
    #[arg(long, env = "EDGEFN_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Data directory whose admin-token to use when no token is given.
    #[arg(long, env = "EDGEFN_DATA_DIR", default_value = edgefn_control::DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A configured client.
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    /// Print JSON instead of tables.
    pub json: bool,
}

impl Client {
    /// Builds a client from the flags, reading the token file if needed.
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let token = match &args.token {
            Some(t) => t.clone(),
            None => {
                let path = args.data_dir.join(edgefn_control::ADMIN_TOKEN_FILE);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("no token: pass --token, set EDGEFN_TOKEN, or run where {} exists", path.display()))?
                    .trim()
                    .to_string()
            }
        };
        Ok(Self { http: reqwest::Client::new(), url: args.url.trim_end_matches('/').to_string(), token, json: args.json })
    }

    /// A request to `path` with the token set.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token)
    }

    /// Sends a request and returns its JSON body, or the API's error as an error.
    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Value> {
        let res = req.send().await.with_context(|| format!("could not reach edgefn at {} (is `edgefn up` running?)", self.url))?;
        json_or_error(res).await
    }
}

async fn json_or_error(res: Response) -> anyhow::Result<Value> {
    let status = res.status();
    let text = res.text().await?;
    if status.is_success() {
        return Ok(if text.is_empty() { Value::Null } else { serde_json::from_str(&text)? });
    }
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(e) => bail!("{} (HTTP {}, {})", e["message"].as_str().unwrap_or("?"), status.as_u16(), e["code"].as_str().unwrap_or("?")),
        None => bail!("HTTP {status}: {text}"),
    }
}

/// Path segment escaping for module ids and names.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}
