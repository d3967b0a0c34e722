//! `edgefn new` and `edgefn deploy`: from a template to a live URL. Deploy
//! builds when sources changed, uploads a version unless the newest one is these very
//! bytes, makes the module's settings and routes what the manifest says, waits until the
//! edge nodes serve it, and prints its URLs; run again with no change it does nothing and
//! says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::client::{Client, ClientArgs, segment, write_private};
use crate::commands::module::read_module;
use crate::project::{MANIFEST, Manifest, Route, build, template};

/// Longest `deploy` waits for the nodes.
const SYNC_WAIT: Duration = Duration::from_secs(30);
/// Where deploy remembers the settings it applied (configuration values cannot be read
/// back: they are secrets).
const STATE_FILE: &str = ".edgefn/deployed.json";

/// `edgefn new NAME --template T`.
#[derive(Args)]
pub struct NewCommand {
    /// The function's name (and its directory's).
    name: String,
    /// One of: rust-http, rust-fn, js-http, ts-http, assemblyscript, wat.
    #[arg(long, default_value = "rust-http")]
    template: String,
    /// Where to make it (default: ./NAME).
    #[arg(long)]
    dir: Option<PathBuf>,
}

impl NewCommand {
    /// Writes the template.
    pub fn execute(self) -> anyhow::Result<()> {
        let template = template(&self.template)?;
        let dir = self.dir.unwrap_or_else(|| PathBuf::from(&self.name));
        let files = template.write(&dir, &self.name)?;
        println!("made {} from the {} template ({}):", dir.display(), template.name, template.about);
        for file in files {
            println!("  {}", file.display());
        }
        println!("next: cd {} && edgefn deploy", dir.display());
        Ok(())
    }
}

/// Flags of the commands that work on a project: where it is, where it is built, and the
/// server.
#[derive(Args)]
pub struct ProjectArgs {
    /// The project directory.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Build on the control plane's build workers instead of here.
    #[arg(long)]
    pub remote: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `edgefn deploy`.
#[derive(Args)]
pub struct DeployCommand {
    #[command(flatten)]
    project: ProjectArgs,
}

impl DeployCommand {
    /// Builds, uploads, applies, waits, prints the URLs.
    pub async fn execute(self) -> anyhow::Result<()> {
        let dir = &self.project.dir;
        let manifest = Manifest::load(dir)?;
        let client = Client::new(&self.project.client)?;
        let made = if self.project.remote {
            build_remotely(&client, &manifest, dir).await?
        } else {
            if manifest.stale(dir) {
                build(&manifest, dir)?;
            }
            let wasm = read_module(&dir.join(&manifest.build.artifact)).with_context(|| format!("build.artifact in {MANIFEST}"))?;
            upload(&client, &manifest, &wasm).await?
        };
        let mut changes = Vec::new();
        let module = match made {
            (module, Some(version)) => {
                changes.push(format!("uploaded version {version}"));
                module
            }
            (module, None) => module,
        };
        let id = module["id"].as_str().context("the module has an id")?.to_string();
        if let Some(change) = apply_settings(&client, &manifest, &module, dir).await? {
            changes.push(change);
        }
        changes.extend(apply_routes(&client, &manifest, &id).await?);
        if changes.is_empty() {
            println!("{} is up to date: nothing to do", manifest.name);
        } else {
            for change in &changes {
                println!("{change}");
            }
            wait_for_nodes(&client).await?;
        }
        let nodes = client.send(client.request(Method::GET, "/api/v1/nodes")).await?;
        let edge = nodes["edgeUrl"].as_str().unwrap_or("http://<edge node>");
        if manifest.routes.is_empty() {
            println!("no routes: call it with `edgefn invoke {} FUNCTION ARGS…`", manifest.name);
        }
        for route in manifest.routes.iter().filter(|r| r.match_kind() != "regex") {
            println!("{}{}{}", edge, route.path, route.host.as_deref().map(|h| format!("  (host {h})")).unwrap_or_default());
        }
        Ok(())
    }
}

/// The module of the manifest's name, if there is one, and its versions.
async fn existing(client: &Client, manifest: &Manifest) -> anyhow::Result<Option<(Value, Vec<Value>)>> {
    let path = format!("/api/v1/modules/{}", segment(&manifest.name));
    let Ok(module) = client.send(client.request(Method::GET, &path)).await else { return Ok(None) };
    let versions = client.send(client.request(Method::GET, &format!("{path}/versions"))).await?;
    Ok(Some((module, versions["versions"].as_array().cloned().unwrap_or_default())))
}

/// The manifest's version label, or, when the module has it already, the label with the
/// first digits of `sha` appended (`0.1.0+3f2a9c1b`).
fn free_label(manifest: &Manifest, versions: &[Value], sha: &str) -> String {
    if versions.iter().any(|v| v["version"] == manifest.version.as_str()) {
        format!("{}+{}", manifest.version, &sha[..8])
    } else {
        manifest.version.clone()
    }
}

/// Sends the project to the build workers unless the module's newest version was built
/// from these very sources; returns the module and the version made, if any.
pub(crate) async fn build_remotely(client: &Client, manifest: &Manifest, dir: &Path) -> anyhow::Result<(Value, Option<String>)> {
    let archive = super::build::pack(dir)?;
    let sha = super::build::digest(&archive);
    let mut label = manifest.version.clone();
    if let Some((module, versions)) = existing(client, manifest).await? {
        let builds = client.send(client.request(Method::GET, "/api/v1/builds")).await?;
        let built_from_these = builds["builds"].as_array().into_iter().flatten().any(|b| {
            b["moduleId"] == module["id"]
                && b["archiveSha256"] == sha.as_str()
                && b["status"] == "succeeded"
                && b["version"] == module["latestVersion"]
        });
        if built_from_these {
            return Ok((module, None));
        }
        label = free_label(manifest, &versions, &sha);
    }
    let built = super::build::remote(client, manifest, &archive, &label).await?;
    let id = built["moduleId"].as_str().context("a successful build names its module")?;
    let module = client.send(client.request(Method::GET, &format!("/api/v1/modules/{id}"))).await?;
    Ok((module, Some(label)))
}

/// Uploads `wasm` unless the module's newest version is these bytes; returns the module
/// and the version uploaded, if any.
async fn upload(client: &Client, manifest: &Manifest, wasm: &[u8]) -> anyhow::Result<(Value, Option<String>)> {
    let sha = hex::encode(Sha256::digest(wasm));
    let mut label = manifest.version.clone();
    if let Some((module, versions)) = existing(client, manifest).await? {
        let latest = module["latestVersion"].as_str();
        if versions.iter().any(|v| v["sha256"] == sha.as_str() && v["version"].as_str() == latest) {
            return Ok((module, None));
        }
        label = free_label(manifest, &versions, &sha);
    }
    let mut query = vec![("name", manifest.name.clone()), ("version", label.clone())];
    for (key, value) in [("description", &manifest.description), ("ownerType", &manifest.class), ("project", &manifest.project)] {
        if let Some(value) = value {
            query.push((key, value.clone()));
        }
    }
    let req = client
        .request(Method::POST, "/api/v1/modules")
        .query(&query)
        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
        .body(wasm.to_vec());
    let res = client.send(req).await?;
    Ok((res["module"].clone(), Some(label)))
}

/// Makes the module's settings the manifest's; returns what changed, if anything.
async fn apply_settings(client: &Client, manifest: &Manifest, module: &Value, dir: &Path) -> anyhow::Result<Option<String>> {
    let s = &manifest.settings;
    let mut patch = serde_json::Map::new();
    let mut want = |key: &str, value: Option<Value>| {
        if let Some(value) = value.filter(|v| module[key] != *v) {
            patch.insert(key.to_string(), value);
        }
    };
    want("timeoutMs", s.timeout_ms.map(Value::from));
    want("maxMemoryPages", s.max_memory_pages.map(Value::from));
    want("maxInstances", s.max_instances.map(Value::from));
    want("reuseInstances", s.reuse_instances.map(Value::from));
    want("httpTimeoutMs", s.http_timeout_ms.map(Value::from));
    want("maxBodyBytes", s.max_body_bytes.map(Value::from));
    want("allowHosts", s.allow_hosts.as_ref().map(|h| json!(h)));
    want("isPublic", s.public.map(Value::from));
    if let Some(description) = &manifest.description {
        want("description", Some(Value::from(description.clone())));
    }
    // Configuration values are secrets the API never shows: what this project last set is
    // remembered next to it, and they are sent when they differ or the names on the
    // server do.
    let env = s.env.clone().unwrap_or_default();
    let names_on_server: Vec<&String> = module["env"].as_object().map(|o| o.keys().collect()).unwrap_or_default();
    let state_path = dir.join(STATE_FILE);
    let applied: BTreeMap<String, String> = std::fs::read_to_string(&state_path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map_or_else(BTreeMap::new, |v| serde_json::from_value(v["env"].clone()).unwrap_or_default());
    let env_changed = s.env.is_some() && (applied != env || names_on_server != env.keys().collect::<Vec<_>>());
    if env_changed {
        patch.insert("env".into(), json!(env));
    }
    if patch.is_empty() {
        return Ok(None);
    }
    let keys: Vec<String> = patch.keys().cloned().collect();
    let id = module["id"].as_str().unwrap_or_default();
    client.send(client.request(Method::PATCH, &format!("/api/v1/modules/{id}")).json(&Value::Object(patch))).await?;
    if env_changed {
        write_private(&state_path, &serde_json::to_string(&json!({ "env": env }))?)?;
    }
    Ok(Some(format!("settings: {}", keys.join(", "))))
}

/// Makes the module's routes the manifest's: adds the missing, removes the others.
async fn apply_routes(client: &Client, manifest: &Manifest, id: &str) -> anyhow::Result<Vec<String>> {
    let all = client.send(client.request(Method::GET, "/api/v1/routes")).await?;
    let current: Vec<Value> = all["routes"].as_array().into_iter().flatten().filter(|r| r["moduleId"] == id).cloned().collect();
    let same = |want: &Route, have: &Value| {
        let methods: Vec<String> = want.methods.iter().map(|m| m.to_ascii_uppercase()).collect();
        have["path"] == want.path.as_str()
            && have["match"] == want.match_kind()
            && have["host"].as_str() == want.host.as_deref()
            && have["priority"].as_i64().unwrap_or(0) == want.priority.unwrap_or(0)
            && have["methods"]
                .as_array()
                .map(|m| m.iter().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>())
                .unwrap_or_default()
                == methods
            && have["version"].is_null()
    };
    let mut changes = Vec::new();
    for want in manifest.routes.iter().filter(|w| !current.iter().any(|h| same(w, h))) {
        let body = json!({"path": want.path, "match": want.match_kind(), "methods": want.methods, "host": want.host,
            "priority": want.priority, "moduleId": id});
        client.send(client.request(Method::POST, "/api/v1/routes").json(&body)).await?;
        changes.push(format!("route added: {} ({})", want.path, want.match_kind()));
    }
    for have in current.iter().filter(|h| !manifest.routes.iter().any(|w| same(w, h))) {
        let route = have["id"].as_str().unwrap_or_default();
        client.send(client.request(Method::DELETE, &format!("/api/v1/routes/{route}"))).await?;
        changes.push(format!("route removed: {}", have["path"].as_str().unwrap_or_default()));
    }
    Ok(changes)
}

/// Waits until every connected node has applied the control plane's newest change.
async fn wait_for_nodes(client: &Client) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let nodes = client.send(client.request(Method::GET, "/api/v1/nodes")).await?;
        let connected: Vec<&Value> = nodes["nodes"].as_array().into_iter().flatten().filter(|n| n["connected"] == true).collect();
        let behind = connected.iter().filter(|n| n["behind"].as_u64().unwrap_or(0) > 0).count();
        if behind == 0 {
            println!(
                "served by {} node{} ({} ms)",
                connected.len(),
                if connected.len() == 1 { "" } else { "s" },
                started.elapsed().as_millis()
            );
            return Ok(());
        }
        if started.elapsed() > SYNC_WAIT {
            bail!(
                "{behind} of {} nodes have not applied the change after {} s; it is stored and they will catch up",
                connected.len(),
                SYNC_WAIT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
