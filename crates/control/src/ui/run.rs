//! The executor: pick a module and one of its functions (signature shown), give JSON
//! arguments, run it; the result comes back with the time, memory and whether the
//! compiled module came from the cache. Every run is recorded in the history like an
//! API call, since it is one.

use axum::Form;
use axum::extract::{Query, State};
use axum::response::Response;
use edgefn_runtime::{ExportedFunction, ResultEncoding};
use edgefn_store::{Module, ModuleFilter};
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
}

/// `GET /run?module=&function=`.
pub async fn form(State(state): State<AppState>, session: Session, Query(form): Query<RunForm>) -> Response {
    let body = async {
        if form.module.is_empty() {
            return choose_module(&state, &session).await;
        }
        let module = find(&state, &session.caller, &form.module, Op::Execute).await?;
        run_form(&state, &module, &form, None).await
    };
    session.render(Nav::Run, "Run a function", body.await)
}

/// `POST /run`: calls the function and shows the outcome above the form.
pub async fn submit(State(state): State<AppState>, session: Session, Form(form): Form<RunForm>) -> Response {
    let body = async {
        let module = find(&state, &session.caller, &form.module, Op::Execute).await?;
        let outcome = run(&state, &session, &module, &form).await;
        run_form(&state, &module, &form, Some(outcome)).await
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

async fn run(state: &AppState, session: &Session, module: &Module, form: &RunForm) -> Outcome {
    let text = form.args.as_deref().map(str::trim).filter(|a| !a.is_empty()).unwrap_or("[]");
    let args: Value =
        serde_json::from_str(text).map_err(|e| (Problem::Args, ApiError::bad_request(format!("the arguments are not valid JSON: {e}"))))?;
    let timeout_ms = match form.timeout_ms.trim() {
        "" => None,
        t => Some(t.parse::<u64>().ok().filter(|t| *t > 0).ok_or_else(|| {
            (Problem::Timeout, ApiError::bad_request(format!("the time limit `{t}` is not a whole number of milliseconds above 0")))
        })?),
    };
    let body = InvokeBody { function: form.function.clone(), args, timeout_ms, version: None, result: ResultEncoding::default() };
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

async fn run_form(state: &AppState, module: &Module, form: &RunForm, outcome: Option<Outcome>) -> Result<Markup, ApiError> {
    let resolved = state.db.resolve(&module.id, None).await?;
    let functions: Vec<ExportedFunction> = serde_json::from_value(resolved.1.exports.clone()).unwrap_or_default();
    let chosen = functions.iter().find(|f| f.name == form.function).or(functions.first());
    let start = chosen.map(template).unwrap_or_else(|| "[]".into());
    let args = form.args.clone().unwrap_or_else(|| start.clone());
    let problem = |p: Problem| match &outcome {
        Some(Err((q, e))) if *q == p => Some(e.message().to_string()),
        _ => None,
    };
    Ok(html! {
        p {
            "Module " a href={ "/modules/" (module.id) } { (module.name) } ", version " (resolved.1.version) " (latest). "
            a href="/run" { "Choose another module" }
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
        @if functions.is_empty() {
            p.empty { "This module exports no functions to run." }
        } @else {
            form.card method="post" action="/run" {
                input type="hidden" name="module" value=(module.id);
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
