//! The executor: pick a module, a version and one of its functions (signature shown),
//! give JSON arguments and (for a core module) how to read the result — a number, a string,
//! JSON or bytes through the memory ABI —, run it; the result comes back with the time,
//! memory and whether the compiled module came from the cache. Every run is recorded in
//! the history like an API call, since it is one.
//!
//! A function that serves HTTP (the `handle` ABI or a `wasi:http` component) also gets a
//! test-request panel: method, path, headers and body, sent through the edge node, with
//! the status, headers, body and time that came back.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use edgefn_runtime::{ExportedFunction, ResultEncoding};
use edgefn_store::{Module, ModuleFilter, ModuleVersion};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::format::{bytes, ms};
use super::layout::Nav;
use super::session::Session;
use crate::access::Op;
use crate::error::ApiError;
use crate::invoke::{Called, InvokeBody, call};
use crate::modules::{find, visible_modules};
use crate::state::AppState;

/// The form, as sent (also the query of the page).
#[derive(Deserialize, Default)]
pub struct RunForm {
    #[serde(default)]
    module: String,
    #[serde(default)]
    function: String,
    #[serde(default)]
    args: Option<String>,
    #[serde(default)]
    timeout_ms: String,
    /// A version label; empty for the latest.
    #[serde(default)]
    version: String,
    /// How to read a core function's result: `values`, `string`, `json` or `bytes`.
    #[serde(default)]
    result: String,
    /// A component function's arguments, one field each: `param.<name>`.
    #[serde(flatten)]
    params: std::collections::BTreeMap<String, String>,
}

impl RunForm {
    /// What was typed for parameter `name` of a component function.
    fn param(&self, name: &str) -> Option<&String> {
        self.params.get(&format!("param.{name}"))
    }
}

/// `GET /run?module=&function=`.
pub async fn form(State(state): State<AppState>, session: Session, Query(form): Query<RunForm>) -> Response {
    let body = async {
        if form.module.is_empty() {
            return choose_module(&state, &session).await;
        }
        let module = find(&state, &session.caller, &form.module, Op::Execute).await?;
        let version = chosen_version(&state, &module, &form).await?;
        run_form(&state, &module, &version, &form, None).await
    };
    session.render(Nav::Run, "Run a function", body.await)
}

/// `POST /run`: calls the function and shows the outcome above the form.
pub async fn submit(State(state): State<AppState>, session: Session, Form(form): Form<RunForm>) -> Response {
    let body = async {
        let module = find(&state, &session.caller, &form.module, Op::Execute).await?;
        let version = chosen_version(&state, &module, &form).await?;
        let outcome = run(&state, &session, &module, &version, &form).await;
        run_form(&state, &module, &version, &form, Some(outcome)).await
    };
    session.render(Nav::Run, "Run a function", body.await)
}

/// What a run came to: the call, or the error, and which input it concerns.
type Outcome = Result<Called, (Problem, ApiError)>;

#[derive(PartialEq, Eq)]
enum Problem {
    Args,
    Timeout,
    Call,
}

/// The ways to read a core function's result, as the form offers them.
const RESULT_ENCODINGS: [(&str, ResultEncoding, &str); 4] = [
    ("values", ResultEncoding::Values, "numbers"),
    ("string", ResultEncoding::String, "a string in memory (pointer, length)"),
    ("json", ResultEncoding::Json, "JSON in memory"),
    ("bytes", ResultEncoding::Bytes, "bytes in memory, as base64"),
];

/// The version the form names, or the latest.
async fn chosen_version(state: &AppState, module: &Module, form: &RunForm) -> Result<ModuleVersion, ApiError> {
    let wanted = Some(form.version.trim()).filter(|v| !v.is_empty());
    Ok(state.db.resolve(&module.id, wanted).await?.1.clone())
}

async fn run(state: &AppState, session: &Session, module: &Module, chosen: &ModuleVersion, form: &RunForm) -> Outcome {
    let version = Some(form.version.trim()).filter(|v| !v.is_empty()).map(str::to_string);
    let exports: Vec<ExportedFunction> = serde_json::from_value(chosen.exports.clone()).unwrap_or_default();
    let typed = exports.iter().find(|f| f.name == form.function).filter(|_| chosen.kind != "core");
    let args = match typed {
        // A component's parameters, one field each: JSON of the parameter's type, or plain
        // text for a string.
        Some(function) => {
            let mut args = serde_json::Map::new();
            for p in &function.params {
                let text = form.param(&p.name).map_or("", |t| t.trim());
                let value = match serde_json::from_str::<Value>(text) {
                    Ok(value) => value,
                    Err(_) if p.ty == "string" => Value::from(form.param(&p.name).cloned().unwrap_or_default()),
                    Err(e) => {
                        return Err((Problem::Args, ApiError::bad_request(format!("`{}` ({}) is not valid JSON: {e}", p.name, p.ty))));
                    }
                };
                args.insert(p.name.clone(), value);
            }
            Value::Object(args)
        }
        None => {
            let text = form.args.as_deref().map(str::trim).filter(|a| !a.is_empty()).unwrap_or("[]");
            serde_json::from_str(text)
                .map_err(|e| (Problem::Args, ApiError::bad_request(format!("the arguments are not valid JSON: {e}"))))?
        }
    };
    let timeout_ms = match form.timeout_ms.trim() {
        "" => None,
        t => Some(t.parse::<u64>().ok().filter(|t| *t > 0).ok_or_else(|| {
            (Problem::Timeout, ApiError::bad_request(format!("the time limit `{t}` is not a whole number of milliseconds above 0")))
        })?),
    };
    let result =
        match form.result.as_str() {
            "" => ResultEncoding::default(),
            name => RESULT_ENCODINGS.iter().find(|(n, _, _)| *n == name).map(|(_, e, _)| *e).ok_or_else(|| {
                (Problem::Call, ApiError::bad_request(format!("result `{name}` is not one of values, string, json, bytes")))
            })?,
        };
    let body = InvokeBody { function: form.function.clone(), args, timeout_ms, version, result };
    call(state, &session.caller, &module.id, body).await.map_err(|e| (Problem::Call, e))
}

async fn choose_module(state: &AppState, session: &Session) -> Result<Markup, ApiError> {
    let modules = visible_modules(state, &session.caller, ModuleFilter::default(), Op::Execute).await?;
    Ok(html! {
        @if modules.is_empty() {
            p.empty { "There is no module you may run yet. " a href="/upload" { "Upload one" } "." }
        } @else {
            form.card method="get" action="/run" {
                div.field {
                    label for="module" { "Module" }
                    select #module name="module" {
                        @for m in &modules { option value=(m.id) { (m.name) " (" (m.owner_type) ")" } }
                    }
                }
                button type="submit" { "Choose" }
            }
        }
    })
}

async fn run_form(
    state: &AppState,
    module: &Module,
    version: &ModuleVersion,
    form: &RunForm,
    outcome: Option<Outcome>,
) -> Result<Markup, ApiError> {
    let wanted = Some(form.version.trim()).filter(|v| !v.is_empty());
    let versions = state.db.versions(&module.id).await?;
    let core = version.kind == "core";
    let exports: Vec<ExportedFunction> = serde_json::from_value(version.exports.clone()).unwrap_or_default();
    let serves_http =
        version.world.as_deref().is_some_and(|w| w.starts_with("wasi:http/")) || (core && exports.iter().any(|f| f.name == "handle"));
    // Functions that take or give resources, streams or futures cannot be called with JSON.
    let functions: Vec<ExportedFunction> = exports.into_iter().filter(|f| !f.signature.contains("resource>")).collect();
    let routes: Vec<_> = state.db.routes().await?.into_iter().filter(|r| r.module_id == module.id).collect();
    let chosen = functions.iter().find(|f| f.name == form.function).or(functions.first());
    let start = chosen.map(template).unwrap_or_else(|| "[]".into());
    let args = form.args.clone().unwrap_or_else(|| start.clone());
    let problem = |p: Problem| match &outcome {
        Some(Err((q, e))) if *q == p => Some(e.message().to_string()),
        _ => None,
    };
    Ok(html! {
        p {
            "Module " a href={ "/modules/" (module.id) } { (module.name) } ", version " (version.version)
            (if wanted.is_none() { " (latest)" } else { "" }) ". "
            a href="/run" { "Choose another module" }
        }
        @if versions.len() > 1 {
            form.inline method="get" action="/run" {
                input type="hidden" name="module" value=(module.id);
                label for="version" { "Version" }
                select #version name="version" {
                    @for v in &versions {
                        option value=(v.version) selected[v.version == version.version] { (v.version) }
                    }
                }
                button type="submit" { "Choose" }
            }
        }
        @match &outcome {
            Some(Ok(called)) => { (result(called)) }
            Some(Err((Problem::Call, err))) => {
                section.outcome.failed aria-labelledby="outcome" {
                    h2 #outcome { "The call failed" }
                    p role="alert" { (err.message()) }
                    p.hint { "HTTP " (err.status().as_u16()) ", " code { (err.code()) } }
                }
            }
            _ => {}
        }
        @if serves_http {
            (request_panel(module, routes.first().map_or("/", |r| r.path.as_str()), None))
        }
        @if functions.is_empty() {
            @if !serves_http { p.empty { "This module exports no functions to run." } }
        } @else {
            @if !core {
                // A component function's form is built from its types: choose it first.
                form.card method="get" action="/run" {
                    input type="hidden" name="module" value=(module.id);
                    input type="hidden" name="version" value=[wanted];
                    div.field {
                        label for="component-function" { "Function" }
                        select #component-function name="function" {
                            @for f in &functions { option value=(f.name) selected[Some(f) == chosen] { (f.signature) } }
                        }
                    }
                    button type="submit" { "Choose" }
                }
            }
            form.card method="post" action="/run" {
                input type="hidden" name="module" value=(module.id);
                input type="hidden" name="version" value=[wanted];
                @if core {
                    div.field {
                        label for="function" { "Function" }
                        select #function name="function" aria-describedby="signature" {
                            @for f in &functions {
                                option value=(f.name) selected[Some(f) == chosen] data-signature=(f.signature) data-template=(template(f)) { (f.signature) }
                            }
                        }
                        p.hint { "Signature: " code #signature { (chosen.map_or("", |f| f.signature.as_str())) } }
                    }
                    div.field {
                        label for="args" { "Arguments (a JSON array, one value per parameter)" }
                        @let error = problem(Problem::Args);
                        textarea #args name="args" rows="3" spellcheck="false" data-template=(start)
                            aria-invalid=[error.as_ref().map(|_| "true")] aria-describedby=[error.as_ref().map(|_| "args-error")] { (args) }
                        @if let Some(error) = error { p #args-error .error role="alert" { (error) } }
                    }
                } @else if let Some(f) = chosen {
                    input type="hidden" name="function" value=(f.name);
                    p.hint { "Signature: " code #signature { (f.signature) } }
                    @let error = problem(Problem::Args);
                    @if let Some(error) = &error { p #args-error .error role="alert" { (error) } }
                    @for p in &f.params {
                        div.field {
                            label for={ "param-" (p.name) } { (p.name) ": " code { (p.ty) } }
                            @let start = if p.ty == "string" { String::new() } else { p.example.to_string() };
                            @let typed = form.param(&p.name).cloned().unwrap_or(start);
                            @if p.ty == "string" || !p.example.is_object() && !p.example.is_array() {
                                input id={ "param-" (p.name) } name={ "param." (p.name) } value=(typed) spellcheck="false"
                                    aria-describedby={ "param-" (p.name) "-hint" } aria-invalid=[error.as_ref().map(|_| "true")];
                            } @else {
                                textarea id={ "param-" (p.name) } name={ "param." (p.name) } rows="3" spellcheck="false"
                                    aria-describedby={ "param-" (p.name) "-hint" } aria-invalid=[error.as_ref().map(|_| "true")] { (typed) }
                            }
                            p.hint id={ "param-" (p.name) "-hint" } {
                                @if p.ty == "string" { "Text as it is." } @else { "JSON: " (example_hint(&p.ty)) }
                            }
                        }
                    }
                }
                @if core {
                    div.field {
                        label for="result-as" { "Read the result as" }
                        select #result-as name="result" aria-describedby="result-hint" {
                            @for (name, _, label) in RESULT_ENCODINGS {
                                option value=(name) selected[form.result == name] { (label) }
                            }
                        }
                        p #result-hint .hint { "A function that returns a string or JSON returns where it is in its memory, as two numbers; read it as such." }
                    }
                }
                div.field {
                    label for="timeout" { "Time limit in milliseconds (optional)" }
                    @let error = problem(Problem::Timeout);
                    input #timeout type="number" name="timeout_ms" min="1" value=(form.timeout_ms) placeholder=(module.timeout_ms)
                        aria-invalid=[error.as_ref().map(|_| "true")] aria-describedby=[error.as_ref().map(|_| "timeout-error")];
                    @if let Some(error) = error { p #timeout-error .error role="alert" { (error) } }
                }
                button type="submit" { "Run" }
            }
            p { a href={ "/modules/" (module.id) "/history" } { "See the history of this module" } }
        }
    })
}

fn result(called: &Called) -> Markup {
    let pretty = serde_json::to_string_pretty(&called.result).unwrap_or_default();
    html! {
        section.outcome aria-labelledby="outcome" {
            h2 #outcome { "Result" }
            pre #result role="status" { (pretty) }
            dl.facts {
                dt { "Time" } dd #time { (ms(called.elapsed.as_secs_f64() * 1000.0)) }
                dt { "Memory" } dd #memory { (bytes(called.memory_used_bytes)) }
                dt { "Compiled code" } dd #cache { (if called.cache_hit { "cache hit: compiled earlier and reused" } else { "cache miss: compiled for this call" }) }
            }
        }
    }
}

/// How a WIT type is written in JSON, for a parameter's hint.
fn example_hint(ty: &str) -> &'static str {
    match ty {
        t if t.starts_with("record") => "an object with a value per field",
        t if t.starts_with("list") || t.starts_with("tuple") => "an array",
        t if t.starts_with("option") => "null, or the value",
        t if t.starts_with("result") => "{\"ok\": …} or {\"err\": …}",
        t if t.starts_with("variant") => "{\"tag\": case, \"value\": …}, or the case's name alone",
        t if t.starts_with("enum") => "one of the names, as a string",
        t if t.starts_with("flags") => "an array of names",
        "bool" => "true or false",
        _ => "a number",
    }
}

/// Arguments to start from: a JSON array with a value of the right type per parameter.
fn template(function: &ExportedFunction) -> String {
    let value = |ty: &str| match ty {
        "string" | "char" => Value::from(""),
        "bool" => Value::from(false),
        t if t.starts_with("list<") => Value::Array(vec![]),
        t if t.starts_with(['i', 'u', 's', 'f']) && t[1..].chars().all(|c| c.is_ascii_digit()) => Value::from(0),
        _ => Value::Null,
    };
    Value::Array(function.params.iter().map(|p| value(&p.ty)).collect()).to_string()
}

/// A test request, as sent (`POST /run/request`).
#[derive(Deserialize, Default)]
pub struct TestRequest {
    module: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    path: String,
    /// `name: value` lines.
    #[serde(default)]
    headers: String,
    #[serde(default)]
    body: String,
}

/// What the node answered a test request.
struct TestAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    elapsed: std::time::Duration,
}

/// Most of a test answer's body shown.
const SHOWN_BODY_BYTES: usize = 64 * 1024;

/// `POST /run/request`: sends the request through the edge node and shows the answer.
pub async fn request(State(state): State<AppState>, session: Session, Form(form): Form<TestRequest>) -> Response {
    let body = async {
        let module = find(&state, &session.caller, &form.module, Op::Execute).await?;
        let answer = send(&state, &form).await;
        Ok(html! {
            p { "Module " a href={ "/modules/" (module.id) } { (module.name) } ". " a href={ "/run?module=" (module.id) } { "Back to its functions" } }
            @match &answer {
                Ok(answer) => { (test_answer(answer)) }
                Err(e) => {
                    section.outcome.failed aria-labelledby="outcome" {
                        h2 #outcome { "The request was not sent" }
                        p role="alert" { (e.message()) }
                    }
                }
            }
            (request_panel(&module, &form.path, Some(&form)))
        })
    };
    session.render(Nav::Run, "Send a test request", body.await)
}

async fn send(state: &AppState, form: &TestRequest) -> Result<TestAnswer, ApiError> {
    let edge = state.edge_url.get().ok_or_else(|| {
        ApiError::bad_request("this control plane knows no edge node to send through: start it with --edge-url (edgefn up uses its own)")
    })?;
    if !form.path.starts_with('/') {
        return Err(ApiError::bad_request(format!("path `{}` must start with `/`", form.path)));
    }
    let method = reqwest::Method::from_bytes(form.method.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| ApiError::bad_request(format!("`{}` is not an HTTP method", form.method)))?;
    // The edge node and nothing else: no proxy from the environment, no redirect followed
    // (a function answering `302 Location: http://127.0.0.1:<metrics>/…` is shown its 302),
    // and a URL whose authority is still the edge's.
    let url =
        reqwest::Url::parse(&format!("{edge}{}", form.path)).map_err(|e| ApiError::bad_request(format!("path `{}`: {e}", form.path)))?;
    let edge_url = reqwest::Url::parse(edge).map_err(ApiError::internal)?;
    if (url.host_str(), url.port_or_known_default()) != (edge_url.host_str(), edge_url.port_or_known_default()) {
        return Err(ApiError::bad_request(format!("path `{}` would leave the edge node", form.path)));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(ApiError::internal)?;
    let mut req = client.request(method, url);
    for line in form.headers.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, value) =
            line.split_once(':').ok_or_else(|| ApiError::bad_request(format!("header line `{line}` is not `name: value`")))?;
        req = req.header(name.trim(), value.trim());
    }
    if !form.body.is_empty() {
        req = req.body(form.body.clone());
    }
    let started = std::time::Instant::now();
    let res = req.send().await.map_err(|e| ApiError::bad_request(format!("the edge node at {edge} did not answer: {e}")))?;
    let status = res.status().as_u16();
    let headers = res.headers().iter().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let bytes = res.bytes().await.map_err(|e| ApiError::bad_request(format!("the answer's body broke off: {e}")))?;
    let shown = &bytes[..bytes.len().min(SHOWN_BODY_BYTES)];
    let mut body = String::from_utf8_lossy(shown).into_owned();
    if bytes.len() > SHOWN_BODY_BYTES {
        body.push_str(&format!("\n… ({} bytes in all)", bytes.len()));
    }
    Ok(TestAnswer { status, headers, body, elapsed: started.elapsed() })
}

fn test_answer(answer: &TestAnswer) -> Markup {
    html! {
        section.outcome aria-labelledby="outcome" {
            h2 #outcome { "Answer: " span #answer-status { (answer.status) } }
            dl.facts {
                dt { "Time" } dd #answer-time { (ms(answer.elapsed.as_secs_f64() * 1000.0)) }
                @for (name, value) in &answer.headers { dt { (name) } dd { (value) } }
            }
            pre #answer-body role="status" { (answer.body) }
        }
    }
}

/// The test-request form, filled with `sent` when there is one.
fn request_panel(module: &Module, path: &str, sent: Option<&TestRequest>) -> Markup {
    let method = sent.map_or("GET", |s| s.method.as_str());
    html! {
        form.card method="post" action="/run/request" aria-labelledby="test-request" {
            h2 #test-request { "Send a test request" }
            p.hint { "It goes through the edge node, as any client's would, and the function's routes decide where it lands." }
            input type="hidden" name="module" value=(module.id);
            div.field {
                label for="method" { "Method" }
                select #method name="method" {
                    @for m in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] { option selected[m == method] { (m) } }
                }
            }
            div.field {
                label for="path" { "Path and query" }
                input #path name="path" value=(path) required;
            }
            div.field {
                label for="headers" { "Headers (one " code { "name: value" } " a line)" }
                textarea #headers name="headers" rows="2" spellcheck="false" { (sent.map_or("", |s| s.headers.as_str())) }
            }
            div.field {
                label for="body" { "Body" }
                textarea #body name="body" rows="3" spellcheck="false" { (sent.map_or("", |s| s.body.as_str())) }
            }
            button type="submit" { "Send" }
        }
    }
}
