//! The API client of the client commands: finds the server and token (flags, then
//! `EDGEFN_URL`/`EDGEFN_TOKEN`, then what `edgefn login` saved, then `./.edgefn/`), and
//! turns API errors into messages.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;

/// Where the API is unless told otherwise.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// How long an idle connection is kept for the next request: under the 10 s in which a
/// server closes a kept-alive connection that sends no new request head.
const POOL_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Times a request answered 429 is sent in all.
const MAX_ATTEMPTS: u32 = 5;
/// The longest `Retry-After` waited for, in seconds.
const MAX_RETRY_AFTER_S: u64 = 30;

/// Connection flags shared by every client command.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// API address (default: the one `edgefn login` saved, else http://127.0.0.1:8080).
    #[arg(long, env = "EDGEFN_URL", global = true)]
    pub url: Option<String>,
    /// API token (default: the one `edgefn login` saved, else <data-dir>/admin-token).
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
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
    /// Print JSON instead of tables.
    pub json: bool,
}

impl Client {
    /// Builds a client from the flags, reading the saved login or token file if needed.
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let saved = Login::load()?;
        let url = args.url.clone().or_else(|| saved.as_ref().map(|l| l.url.clone())).unwrap_or_else(|| DEFAULT_URL.into());
        let token = match args.token.clone().or_else(|| saved.map(|l| l.token)) {
            Some(t) => t,
            None => {
                let path = args.data_dir.join(edgefn_control::ADMIN_TOKEN_FILE);
                std::fs::read_to_string(&path)
                    .with_context(|| format!("no token: pass --token, set EDGEFN_TOKEN, or run where {} exists", path.display()))?
                    .trim()
                    .to_string()
            }
        };
        // Idle connections are dropped before the server closes them: a request sent on one
        // it has closed fails half-sent.
        let http = reqwest::Client::builder().pool_idle_timeout(POOL_IDLE).build().context("making the HTTP client")?;
        Ok(Self { http, url: url.trim_end_matches('/').to_string(), token, json: args.json })
    }

    /// The API address.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The token in use.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A request to `path` with the token set.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url)).bearer_auth(&self.token)
    }

    /// Sends a request and returns its JSON body, or the API's error as an error. An answer
    /// of 429 (this user's compile share is in use, say) is waited out as its `Retry-After`
    /// says and the request sent again, a few times.
    pub async fn send(&self, req: RequestBuilder) -> anyhow::Result<Value> {
        let mut attempt = 1;
        let mut req = req;
        loop {
            let again = req.try_clone();
            let res = req.send().await.with_context(|| format!("could not reach edgefn at {} (is `edgefn up` running?)", self.url))?;
            match again {
                Some(next) if res.status() == reqwest::StatusCode::TOO_MANY_REQUESTS && attempt < MAX_ATTEMPTS => {
                    let wait = res
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                        .unwrap_or(1)
                        .clamp(1, MAX_RETRY_AFTER_S);
                    eprintln!("edgefn is busy (HTTP 429); trying again in {wait} s");
                    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
                    attempt += 1;
                    req = next;
                }
                _ => return Self::json(res).await,
            }
        }
    }

    /// The JSON body of an answer, or the API's error as an error.
    pub async fn json(res: Response) -> anyhow::Result<Value> {
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
}

/// What `edgefn login` saves: `<config dir>/edgefn/login.toml`, mode 0600.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Login {
    /// API address.
    pub url: String,
    /// API token.
    pub token: String,
}

impl Login {
    /// Where it is kept: `$XDG_CONFIG_HOME/edgefn/login.toml` or `~/.config/edgefn/login.toml`.
    pub fn path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
        Some(base.join("edgefn").join("login.toml"))
    }

    /// The saved login, if any.
    pub fn load() -> anyhow::Result<Option<Self>> {
        let Some(path) = Self::path().filter(|p| p.exists()) else { return Ok(None) };
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Some(toml::from_str(&text).with_context(|| format!("in {}", path.display()))?))
    }

    /// Saves it, readable by the user alone.
    pub fn save(&self) -> anyhow::Result<PathBuf> {
        let path = Self::path().context("no config directory: set HOME or XDG_CONFIG_HOME")?;
        write_private(&path, &toml::to_string(self)?)?;
        Ok(path)
    }
}

/// Writes `text` to `path` (its directory made if need be), readable by the user alone.
pub fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::create_dir_all(path.parent().context("a file in a directory")?).with_context(|| format!("creating {}", path.display()))?;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    // A file that existed before keeps its mode on open: set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

/// Path segment escaping for module ids and names.
pub fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}
