//! A module's settings page, for those who may change it: limits and instances, HTTP
//! settings, visibility and allowed users, outbound hosts; its configuration values
//! (secrets: written, replaced and removed here, never shown — only their fingerprints);
//! and disabling, enabling or deleting it. Every form goes through the API's own
//! functions (`update_module`, `delete_module`), so the checks and errors are the API's,
//! shown above the form that caused them with what was typed kept.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use edgefn_store::Module;
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::Nav;
use super::session::Session;
use crate::access::Op;
use crate::error::ApiError;
use crate::modules::{PatchBody, delete_module, find, update_module};
use crate::state::AppState;

/// Which form an error belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Limits,
    Env,
    Status,
}

/// The limits form, as sent (every field text, so what was typed comes back as it was).
#[derive(Deserialize, Default, Clone)]
pub struct LimitsForm {
    #[serde(default)]
    description: String,
    #[serde(default)]
    timeout_ms: String,
    #[serde(default)]
    max_memory_pages: String,
    #[serde(default)]
    max_instances: String,
    /// A checkbox: present when ticked.
    #[serde(default)]
    reuse_instances: Option<String>,
    #[serde(default)]
    http_timeout_ms: String,
    #[serde(default)]
    max_body_bytes: String,
    #[serde(default)]
    is_public: Option<String>,
    /// Names or ids, comma- or space-separated.
    #[serde(default)]
    allowed_users: String,
    /// Hosts, comma- or space-separated.
    #[serde(default)]
    allow_hosts: String,
}

impl LimitsForm {
    fn of(module: &Module, users: &BTreeMap<String, String>) -> Self {
        let names: Vec<&str> = module.allowed_users.iter().map(|id| users.get(id).map_or(id.as_str(), String::as_str)).collect();
        Self {
            description: module.description.clone(),
            timeout_ms: module.timeout_ms.to_string(),
            max_memory_pages: module.max_memory_pages.to_string(),
            max_instances: module.max_instances.to_string(),
            reuse_instances: module.reuse_instances.then(|| "on".into()),
            http_timeout_ms: module.http_timeout_ms.map(|t| t.to_string()).unwrap_or_default(),
            max_body_bytes: module.max_body_bytes.map(|b| b.to_string()).unwrap_or_default(),
            is_public: module.is_public.then(|| "on".into()),
            allowed_users: names.join(", "),
            allow_hosts: module.allow_hosts.join(", "),
        }
    }

    fn patch(&self) -> Result<PatchBody, ApiError> {
        let number = |name: &str, text: &str, empty: Option<i64>| -> Result<Option<i64>, ApiError> {
            match text.trim() {
                "" => Ok(empty),
                t => t.parse().map(Some).map_err(|_| ApiError::bad_request(format!("{name} `{t}` is not a whole number"))),
            }
        };
        let list = |text: &str| text.split([',', ' ', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
        Ok(PatchBody {
            description: Some(self.description.trim().to_string()),
            timeout_ms: number("timeoutMs", &self.timeout_ms, None)?,
            max_memory_pages: number("maxMemoryPages", &self.max_memory_pages, None)?,
            max_instances: number("maxInstances", &self.max_instances, None)?,
            reuse_instances: Some(self.reuse_instances.is_some()),
            // Empty: back to the defaults.
            http_timeout_ms: number("httpTimeoutMs", &self.http_timeout_ms, Some(0))?,
            max_body_bytes: number("maxBodyBytes", &self.max_body_bytes, Some(0))?,
            is_public: Some(self.is_public.is_some()),
            allowed_users: Some(list(&self.allowed_users)),
            allow_hosts: Some(list(&self.allow_hosts)),
            ..PatchBody::default()
        })
    }
}

/// The configuration-value form: set `name` to `value`, or remove `remove`.
#[derive(Deserialize, Default)]
pub struct EnvForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    remove: Option<String>,
}

/// The status form.
#[derive(Deserialize)]
pub struct StatusForm {
    status: String,
}

/// The delete form: `confirm` must be the module's name.
#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// Query of the settings page.
#[derive(Deserialize)]
pub struct SettingsQuery {
    /// Set after a change was saved.
    saved: Option<String>,
}

/// `GET /modules/{id}/settings`.
pub async fn page(State(state): State<AppState>, session: Session, Path(id): Path<String>, Query(q): Query<SettingsQuery>) -> Response {
    let body = async {
        let module = find(&state, &session.caller, &id, Op::Update).await?;
        let users = user_names(&state).await?;
        let body = body(&module, &LimitsForm::of(&module, &users), None).await?;
        Ok(html! { @if q.saved.is_some() { p.notice role="status" { "Saved." } } (body) })
    };
    session.render(Nav::Modules, "Settings", body.await)
}

/// `POST /modules/{id}/settings`.
pub async fn limits(State(state): State<AppState>, session: Session, Path(id): Path<String>, Form(form): Form<LimitsForm>) -> Response {
    let changed = async { update_module(&state, &session.caller, &id, form.patch()?).await };
    answer(&state, &session, &id, changed.await, Some(&form), Part::Limits).await
}

/// `POST /modules/{id}/env`: sets or removes one configuration value, keeping the others.
pub async fn env(State(state): State<AppState>, session: Session, Path(id): Path<String>, Form(form): Form<EnvForm>) -> Response {
    let changed = async {
        let module = find(&state, &session.caller, &id, Op::Update).await?;
        let mut values: BTreeMap<String, String> = (**module.env.values()).clone();
        match &form.remove {
            Some(name) => {
                values.remove(name);
            }
            None => {
                let name = form.name.trim();
                if name.is_empty() {
                    return Err(ApiError::bad_request("give the value a name"));
                }
                values.insert(name.to_string(), form.value.clone());
            }
        }
        update_module(&state, &session.caller, &id, PatchBody { env: Some(values), ..PatchBody::default() }).await
    };
    answer(&state, &session, &id, changed.await, None, Part::Env).await
}

/// `POST /modules/{id}/status`: disables or enables the module.
pub async fn status(State(state): State<AppState>, session: Session, Path(id): Path<String>, Form(form): Form<StatusForm>) -> Response {
    let result = update_module(&state, &session.caller, &id, PatchBody { status: Some(form.status), ..PatchBody::default() }).await;
    answer(&state, &session, &id, result, None, Part::Status).await
}

/// `POST /modules/{id}/delete`.
pub async fn delete(State(state): State<AppState>, session: Session, Path(id): Path<String>, Form(form): Form<DeleteForm>) -> Response {
    let module = match find(&state, &session.caller, &id, Op::Delete).await {
        Ok(module) => module,
        Err(e) => return session.failure(Nav::Modules, e),
    };
    if form.confirm.trim() != module.name {
        let error = ApiError::bad_request(format!("type the module's name, {}, to delete it", module.name));
        return answer(&state, &session, &id, Err(error), None, Part::Status).await;
    }
    match delete_module(&state, &session.caller, &module.id).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => session.failure(Nav::Modules, e),
    }
}

/// The settings page again on success; on an error, with the error beside its form and
/// the limits form as it was sent (`form`), or else as the module now is.
async fn answer(
    state: &AppState,
    session: &Session,
    id: &str,
    result: Result<Module, ApiError>,
    form: Option<&LimitsForm>,
    part: Part,
) -> Response {
    match result {
        Ok(module) => Redirect::to(&format!("/modules/{}/settings?saved=1", module.id)).into_response(),
        Err(error) => {
            let status = error.status();
            let page = async {
                let module = find(state, &session.caller, id, Op::Update).await?;
                let current;
                let form = match form {
                    Some(form) => form,
                    None => {
                        current = LimitsForm::of(&module, &user_names(state).await?);
                        &current
                    }
                };
                body(&module, form, Some((part, error))).await
            };
            (status, session.render(Nav::Modules, "Settings", page.await)).into_response()
        }
    }
}

/// User ids to names, for the allowed-users field.
async fn user_names(state: &AppState) -> Result<BTreeMap<String, String>, ApiError> {
    Ok(state.db.users().await?.into_iter().map(|u| (u.id, u.name)).collect())
}

async fn body(module: &Module, form: &LimitsForm, error: Option<(Part, ApiError)>) -> Result<Markup, ApiError> {
    let error_of = |part: Part| error.as_ref().filter(|(p, _)| *p == part).map(|(_, e)| e.message().to_string());
    let fingerprints = module.env.fingerprints();
    let system = module.owner_type == "system";
    let field = |id: &str, label: &str, name: &str, value: &str, hint: &str| {
        html! {
            div.field {
                label for=(id) { (label) }
                input #(id) name=(name) value=(value) aria-describedby={ (id) "-hint" };
                p #{ (id) "-hint" } .hint { (hint) }
            }
        }
    };
    Ok(html! {
        p { "Module " a href={ "/modules/" (module.id) } { (module.name) } " (" (module.owner_type) "). Changes reach the nodes within milliseconds." }
        @if system {
            p.notice { "A system module is immutable: only its status changes here; upload a new version for the rest." }
        } @else {
            form.card method="post" action={ "/modules/" (module.id) "/settings" } aria-labelledby="limits" aria-describedby=[error_of(Part::Limits).map(|_| "limits-error")] {
                h2 #limits { "Limits, instances and access" }
                @if let Some(e) = error_of(Part::Limits) { p #limits-error .error role="alert" { (e) } }
                (field("description", "Description", "description", &form.description, "Shown on the module's page."))
                (field("timeout", "Time limit per call (ms)", "timeout_ms", &form.timeout_ms, "Capped by the module's class."))
                (field("memory", "Memory limit (64 KiB pages)", "max_memory_pages", &form.max_memory_pages, "Capped by the module's class."))
                (field("instances", "Requests at once on a node", "max_instances", &form.max_instances, "1 to 1000."))
                div.field.check {
                    input #reuse type="checkbox" name="reuse_instances" checked[form.reuse_instances.is_some()];
                    label for="reuse" { "Reuse instances between HTTP requests (state then persists)" }
                }
                (field("http-timeout", "HTTP request time limit (ms)", "http_timeout_ms", &form.http_timeout_ms, "Empty: the node's default, 500 ms."))
                (field("body-limit", "HTTP body limit (bytes)", "max_body_bytes", &form.max_body_bytes, "Empty: 100 MiB."))
                (field("allow-hosts", "Hosts it may call out to", "allow_hosts", &form.allow_hosts, "Names or *.suffix, comma-separated; needs the http_fetch grant."))
                div.field.check {
                    input #public type="checkbox" name="is_public" checked[form.is_public.is_some()];
                    label for="public" { "Public: every signed-in user may read and run it" }
                }
                (field("allowed-users", "Users who may run it", "allowed_users", &form.allowed_users, "Names, comma-separated."))
                button type="submit" { "Save" }
            }
            section.card aria-labelledby="env" {
                h2 #env { "Configuration values" }
                p.hint { "Secrets: read by the function (its WASI environment and " code { "env_get" } "), never shown again. A fingerprint changes when the value does." }
                @if let Some(e) = error_of(Part::Env) { p #env-error .error role="alert" { (e) } }
                @if fingerprints.is_empty() {
                    p.empty { "No values yet." }
                } @else {
                    table {
                        caption { (fingerprints.len()) " values" }
                        thead { tr { th scope="col" { "Name" } th scope="col" { "Fingerprint" } th scope="col" { "Remove" } } }
                        tbody {
                            @for (name, fingerprint) in &fingerprints {
                                tr {
                                    th scope="row" { code { (name) } }
                                    td { code { (fingerprint) } }
                                    td { form.inline method="post" action={ "/modules/" (module.id) "/env" } {
                                        input type="hidden" name="remove" value=(name);
                                        button.link type="submit" aria-label={ "Remove " (name) } { "Remove" }
                                    } }
                                }
                            }
                        }
                    }
                }
                form method="post" action={ "/modules/" (module.id) "/env" } {
                    div.field {
                        label for="env-name" { "Name" }
                        input #env-name name="name" required autocomplete="off";
                    }
                    div.field {
                        label for="env-value" { "Value (replaces the current one)" }
                        input #env-value name="value" type="password" autocomplete="new-password";
                    }
                    button type="submit" { "Set value" }
                }
            }
        }
        section.card aria-labelledby="status" {
            h2 #status { "Status" }
            @if let Some(e) = error_of(Part::Status) { p #status-error .error role="alert" { (e) } }
            p { "Now " strong #status-now { (module.status) } ". A disabled module answers 503 on the nodes and refuses calls." }
            form.inline method="post" action={ "/modules/" (module.id) "/status" } {
                @if module.status == "disabled" {
                    input type="hidden" name="status" value="active";
                    button type="submit" { "Enable" }
                } @else {
                    input type="hidden" name="status" value="disabled";
                    button type="submit" { "Disable" }
                }
            }
            form method="post" action={ "/modules/" (module.id) "/delete" } {
                div.field {
                    label for="confirm" { "To delete it with its versions, routes and history, type its name" }
                    input #confirm name="confirm" autocomplete="off";
                }
                button.danger type="submit" { "Delete " (module.name) }
            }
        }
    })
}
