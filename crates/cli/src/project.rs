//! A function's project: its manifest `edgefn.toml` (name, version, build, settings,
//! routes; docs/manifest.md), the templates `edgefn new` starts from, and the local build.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The manifest's file name.
pub const MANIFEST: &str = "edgefn.toml";

/// `edgefn.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The module's name.
    pub name: String,
    /// The version label to upload.
    pub version: String,
    /// Shown on the module's page.
    #[serde(default)]
    pub description: Option<String>,
    /// The class of a new module: `user` (default for non-admins), `admin` or `system`.
    #[serde(default)]
    pub class: Option<String>,
    /// The project of a new module (default: your personal project).
    #[serde(default)]
    pub project: Option<String>,
    /// How the artifact is made.
    pub build: Build,
    /// The module's settings.
    #[serde(default)]
    pub settings: Settings,
    /// HTTP routes of the edge nodes to it.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// `[build]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Build {
    /// A shell command run in the project's directory; none when the artifact is the source
    /// (WebAssembly text).
    #[serde(default)]
    pub command: Option<String>,
    /// The `.wasm` (or `.wat`) the build leaves, relative to the project.
    pub artifact: PathBuf,
    /// Sources whose change needs a build (files or directories; default: the project
    /// without its build outputs).
    #[serde(default)]
    pub watch: Vec<PathBuf>,
}

/// `[settings]`: what `PATCH /api/v1/modules/{id}` takes.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Longest a call may run (ms).
    pub timeout_ms: Option<i64>,
    /// Most linear memory (64 KiB pages).
    pub max_memory_pages: Option<i64>,
    /// Requests run at once on a node.
    pub max_instances: Option<i64>,
    /// Whether an instance serves more than one request.
    pub reuse_instances: Option<bool>,
    /// Longest an HTTP request may run (ms).
    pub http_timeout_ms: Option<i64>,
    /// Most bytes of an HTTP body.
    pub max_body_bytes: Option<i64>,
    /// Configuration values (secrets).
    pub env: Option<BTreeMap<String, String>>,
    /// Hosts outbound HTTP may reach.
    pub allow_hosts: Option<Vec<String>>,
    /// Every signed-in user may read and run it.
    pub public: Option<bool>,
}

/// `[[routes]]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Path pattern.
    pub path: String,
    /// `exact` (default), `prefix` or `regex`.
    #[serde(default, rename = "match")]
    pub match_kind: Option<String>,
    /// Allowed methods (default: any).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Host pattern (default: any).
    #[serde(default)]
    pub host: Option<String>,
    /// Higher wins.
    #[serde(default)]
    pub priority: Option<i64>,
}

impl Route {
    /// The match kind, `exact` when not given.
    pub fn match_kind(&self) -> &str {
        self.match_kind.as_deref().unwrap_or("exact")
    }
}

impl Manifest {
    /// Reads and checks `dir/edgefn.toml`; an error names the line and the key.
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| format!("no {MANIFEST} in {}: `edgefn new` makes one", dir.display()))?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        manifest.check().with_context(|| format!("{} is not valid", path.display()))?;
        Ok(manifest)
    }

    fn check(&self) -> anyhow::Result<()> {
        let label = |what: &str, v: &str| {
            let ok = !v.is_empty()
                && v.len() <= 64
                && v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))
                && v.starts_with(|c: char| c.is_ascii_alphanumeric());
            if ok { Ok(()) } else { Err(anyhow::anyhow!("{what} `{v}`: use 1-64 letters, digits, '-', '_', '.', '+'")) }
        };
        label("name", &self.name)?;
        label("version", &self.version)?;
        for route in &self.routes {
            if !route.path.starts_with('/') {
                bail!("route path `{}` must start with `/`", route.path);
            }
            if !["exact", "prefix", "regex"].contains(&route.match_kind()) {
                bail!("route `{}`: match `{}` is not one of exact, prefix, regex", route.path, route.match_kind());
            }
        }
        Ok(())
    }

    /// Whether the artifact is missing or older than a watched source.
    pub fn stale(&self, dir: &Path) -> bool {
        let Some(built) = modified(&dir.join(&self.build.artifact)) else { return true };
        let watch: Vec<PathBuf> = if self.build.watch.is_empty() { vec![PathBuf::from(".")] } else { self.build.watch.clone() };
        let outputs = ["target", ".edgefn", "node_modules", ".git"];
        let mut stack: Vec<PathBuf> = watch.iter().map(|w| dir.join(w)).collect();
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                let entries = std::fs::read_dir(&path).into_iter().flatten().flatten();
                stack.extend(entries.map(|e| e.path()).filter(|p| !p.file_name().is_some_and(|n| outputs.iter().any(|o| n == *o))));
            } else if modified(&path).is_some_and(|m| m > built) && path != dir.join(&self.build.artifact) {
                return true;
            }
        }
        false
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs the manifest's build command in `dir`, its output shown as it comes.
pub fn build(manifest: &Manifest, dir: &Path) -> anyhow::Result<()> {
    let Some(command) = &manifest.build.command else { return Ok(()) };
    eprintln!("building {}: {command}", manifest.name);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .status()
        .with_context(|| format!("could not run `{command}`"))?;
    if !status.success() {
        bail!("the build failed ({status}): `{command}`{}", toolchain_hint(command));
    }
    let artifact = dir.join(&manifest.build.artifact);
    if !artifact.exists() {
        // Cargo writes to CARGO_TARGET_DIR when it is set, not ./target.
        let moved = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(target) if manifest.build.artifact.starts_with("target") => format!(
                "; CARGO_TARGET_DIR is set ({}), so cargo wrote there: unset it for this build, or point build.artifact into it",
                PathBuf::from(target).display()
            ),
            _ => String::new(),
        };
        bail!("the build succeeded but left no {} (build.artifact in {MANIFEST}){moved}", artifact.display());
    }
    Ok(())
}

/// What installs a missing toolchain, for the error of a failed build.
fn toolchain_hint(command: &str) -> &'static str {
    if command.contains("wasm32-wasip2") { "\n  (a missing target installs with `rustup target add wasm32-wasip2`)" } else { "" }
}

/// A template's files: path in the project, contents with `{{name}}`-style holes.
pub struct Template {
    /// Its name for `--template`.
    pub name: &'static str,
    /// What it makes.
    pub about: &'static str,
    files: &'static [(&'static str, &'static str)],
    /// Whether it needs the WIT of WASI 0.2 (`wit/deps`), and at which version: that of
    /// the `wasi:http` its toolchain's engine exports.
    wasi_wit: Option<&'static str>,
}

/// The WIT of WASI 0.2 (the `wasi:http/proxy` world and what it includes), as the hello-http
/// example has it: at version 0.2.12.
const WASI_WIT_VERSION: &str = "0.2.12";
const WASI_WIT: [(&str, &str); 7] = [
    ("wit/deps/cli.wit", include_str!("../../../examples/hello-http/wit/deps/cli.wit")),
    ("wit/deps/clocks.wit", include_str!("../../../examples/hello-http/wit/deps/clocks.wit")),
    ("wit/deps/filesystem.wit", include_str!("../../../examples/hello-http/wit/deps/filesystem.wit")),
    ("wit/deps/http.wit", include_str!("../../../examples/hello-http/wit/deps/http.wit")),
    ("wit/deps/io.wit", include_str!("../../../examples/hello-http/wit/deps/io.wit")),
    ("wit/deps/random.wit", include_str!("../../../examples/hello-http/wit/deps/random.wit")),
    ("wit/deps/sockets.wit", include_str!("../../../examples/hello-http/wit/deps/sockets.wit")),
];

/// The templates `edgefn new` offers.
pub const TEMPLATES: [Template; 6] = [
    Template {
        name: "rust-http",
        about: "a wasi:http component in Rust (cargo build --target wasm32-wasip2)",
        files: &[
            ("edgefn.toml", include_str!("../../../templates/rust-http/edgefn.toml")),
            ("Cargo.toml", include_str!("../../../templates/rust-http/Cargo.toml")),
            ("src/lib.rs", include_str!("../../../templates/rust-http/src/lib.rs")),
            (".gitignore", include_str!("../../../templates/rust-http/gitignore")),
        ],
        wasi_wit: None,
    },
    Template {
        name: "js-http",
        about: "a wasi:http component in JavaScript (ComponentizeJS from npm)",
        files: &[
            ("edgefn.toml", include_str!("../../../templates/js-http/edgefn.toml")),
            ("package.json", include_str!("../../../templates/js-http/package.json")),
            ("app.js", include_str!("../../../templates/js-http/app.js")),
            ("build.mjs", include_str!("../../../templates/js-http/build.mjs")),
            ("wit/world.wit", include_str!("../../../templates/js-http/world.wit")),
            ("wit/deps/host.wit", include_str!("../../../wit/host.wit")),
            (".gitignore", include_str!("../../../templates/js-http/gitignore")),
        ],
        // The version ComponentizeJS 0.23's engine exports `incoming-handler` at.
        wasi_wit: Some("0.2.10"),
    },
    Template {
        name: "ts-http",
        about: "a wasi:http component in TypeScript (esbuild and ComponentizeJS from npm)",
        files: &[
            ("edgefn.toml", include_str!("../../../templates/ts-http/edgefn.toml")),
            ("package.json", include_str!("../../../templates/ts-http/package.json")),
            ("app.ts", include_str!("../../../templates/ts-http/app.ts")),
            ("build.mjs", include_str!("../../../templates/ts-http/build.mjs")),
            ("wit/world.wit", include_str!("../../../templates/js-http/world.wit")),
            ("wit/deps/host.wit", include_str!("../../../wit/host.wit")),
            (".gitignore", include_str!("../../../templates/ts-http/gitignore")),
        ],
        wasi_wit: Some("0.2.10"),
    },
    Template {
        name: "rust-fn",
        about: "typed functions in Rust for the invoke API (a WIT world, wit-bindgen)",
        files: &[
            ("edgefn.toml", include_str!("../../../templates/rust-fn/edgefn.toml")),
            ("Cargo.toml", include_str!("../../../templates/rust-fn/Cargo.toml")),
            ("wit/world.wit", include_str!("../../../templates/rust-fn/wit/world.wit")),
            ("src/lib.rs", include_str!("../../../templates/rust-fn/src/lib.rs")),
            (".gitignore", include_str!("../../../templates/rust-fn/gitignore")),
        ],
        wasi_wit: None,
    },
    Template {
        name: "assemblyscript",
        about: "a core module on the handle ABI in AssemblyScript (npm installs the compiler)",
        files: &[
            ("edgefn.toml", include_str!("../../../templates/assemblyscript/edgefn.toml")),
            ("package.json", include_str!("../../../templates/assemblyscript/package.json")),
            ("assembly/index.ts", include_str!("../../../templates/assemblyscript/assembly/index.ts")),
            (".gitignore", include_str!("../../../templates/assemblyscript/gitignore")),
        ],
        wasi_wit: None,
    },
    Template {
        name: "wat",
        about: "a core module on the handle ABI in WebAssembly text (no toolchain)",
        files: &[
            ("edgefn.toml", include_str!("../../../templates/wat/edgefn.toml")),
            ("{{name}}.wat", include_str!("../../../templates/wat/function.wat")),
        ],
        wasi_wit: None,
    },
];

impl Template {
    /// Writes the template for `name` into `dir` (which must not exist); returns the files.
    pub fn write(&self, dir: &Path, name: &str) -> anyhow::Result<Vec<PathBuf>> {
        if dir.exists() {
            bail!("{} exists already: choose another name or directory", dir.display());
        }
        let body = format!("Hello from {name}!\n");
        let len = "200\ncontent-type: text/plain; charset=utf-8\n\n".len() + body.len();
        let wasi = self.wasi_wit.unwrap_or(WASI_WIT_VERSION);
        let fill = |text: &str| {
            text.replace("{{name}}", name)
                .replace("{{crate}}", &name.replace('-', "_"))
                .replace("{{len}}", &len.to_string())
                .replace(WASI_WIT_VERSION, wasi)
        };
        let wit: &[(&str, &str)] = if self.wasi_wit.is_some() { &WASI_WIT } else { &[] };
        let mut written = Vec::new();
        for (path, text) in self.files.iter().chain(wit) {
            let path = dir.join(fill(path));
            std::fs::create_dir_all(path.parent().expect("inside the project"))?;
            std::fs::write(&path, fill(text)).with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
        Ok(written)
    }
}

/// The template called `name`, or an error listing them.
pub fn template(name: &str) -> anyhow::Result<&'static Template> {
    TEMPLATES.iter().find(|t| t.name == name).ok_or_else(|| {
        let all: Vec<String> = TEMPLATES.iter().map(|t| format!("{} ({})", t.name, t.about)).collect();
        anyhow::anyhow!("no template `{name}`; templates: {}", all.join(", "))
    })
}
