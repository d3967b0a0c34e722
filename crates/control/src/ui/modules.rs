//! The module pages: the list with a tab per class, search and a status filter; and a
//! module's detail: versions, exported functions with signatures, limits.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use edgefn_store::{Module, ModuleFilter, ModuleVersion};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use super::format::{bytes, ms, pages, time};
use super::layout::{Nav, module_badges};
use super::session::{Session, query};
use crate::access::{Op, decide};
use crate::error::ApiError;
use crate::modules::{STATUSES, find, visible_modules};
use crate::state::AppState;

/// Tabs of the module list: class and label.
const TABS: [(&str, &str); 3] = [("system", "System"), ("admin", "Admin"), ("user", "User")];

/// Query of the module list.
#[derive(Deserialize)]
pub struct ListQuery {
    tab: Option<String>,
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
}

/// `GET /`: the modules the caller may read.
pub async fn list(State(state): State<AppState>, session: Session, Query(q): Query<ListQuery>) -> Response {
    session.render(Nav::Modules, "Modules", list_body(&state, &session, q).await)
}

async fn list_body(state: &AppState, session: &Session, q: ListQuery) -> Result<Markup, ApiError> {
    let caller = &session.caller;
    if let Some(tab) = q.tab.as_deref().filter(|tab| !TABS.iter().any(|(class, _)| class == tab)) {
        return Err(ApiError::bad_request(format!("no tab `{tab}`: choose system, admin or user")));
    }
    let needle = q.q.trim().to_lowercase();
    let filter = ModuleFilter { owner_type: None, status: Some(q.status.clone()).filter(|s| !s.is_empty()) };
    let mut modules = visible_modules(state, caller, filter, Op::Read).await?;
    modules.retain(|m| needle.is_empty() || m.name.to_lowercase().contains(&needle) || m.description.to_lowercase().contains(&needle));
    let count = |class: &str| modules.iter().filter(|m| m.owner_type == class).count();
    // The tab of the class the caller's own uploads get, or else the first with modules,
    // unless it asks for another.
    let own = if caller.user.is_admin() { "admin" } else { "user" };
    let default_tab = if count(own) > 0 { own } else { TABS.iter().map(|(class, _)| *class).find(|c| count(c) > 0).unwrap_or(own) };
    let tab = q.tab.as_deref().unwrap_or(default_tab);
    let shown: Vec<&Module> = modules.iter().filter(|m| m.owner_type == tab).collect();
    let calls = state.db.call_summaries().await?;
    let label = TABS.iter().find(|(class, _)| *class == tab).map_or(tab, |(_, label)| *label);
    Ok(html! {
        nav.tabs aria-label="Module classes" {
            ul {
                @for (class, label) in TABS {
                    li {
                        a href={ "/?" (query(&[("tab", class), ("q", q.q.as_str()), ("status", q.status.as_str())])) } aria-current=[(class == tab).then_some("page")] {
                            (label) " " span.count { (count(class)) } span.visually-hidden { " modules" }
                        }
                    }
                }
            }
        }
        form.filters method="get" action="/" role="search" {
            input type="hidden" name="tab" value=(tab);
            div.field {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(q.q) placeholder="name or description";
            }
            div.field {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" { "any" }
                    @for s in STATUSES { option value=(s) selected[q.status == s] { (s) } }
                }
            }
            button type="submit" { "Filter" }
        }
        @if shown.is_empty() {
            p.empty { "No " (label.to_lowercase()) " modules" @if !needle.is_empty() || !q.status.is_empty() { " match" } ". " a href="/upload" { "Upload one" } "." }
        } @else {
            div.scroll {
                table {
                    caption { (label) " modules: " (shown.len()) }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Class, visibility, status" } th scope="col" { "Latest" } th scope="col" { "Description" }
                        th scope="col" { "API calls" } th scope="col" { "Errors" } th scope="col" { "Last call" } th scope="col" { "Updated" } } }
                    tbody {
                        @for m in &shown {
                            tr {
                                th scope="row" { a href={ "/modules/" (m.id) } { (m.name) } }
                                td { (module_badges(m)) }
                                td { (m.latest_version.as_deref().unwrap_or("—")) }
                                td { (m.description) }
                                @match calls.get(&m.id) {
                                    Some((count, errors, last)) => {
                                        td { (count) }
                                        td { (format!("{:.1} %", *errors as f64 * 100.0 / (*count).max(1) as f64)) }
                                        td { (time(*last)) }
                                    }
                                    None => { td { "0" } td { "—" } td { "never" } }
                                }
                                td { (time(m.updated_at)) }
                            }
                        }
                    }
                }
            }
        }
    })
}

/// Query of the module page.
#[derive(Deserialize)]
pub struct ShowQuery {
    uploaded: Option<String>,
}

/// `GET /modules/{id}`.
pub async fn show(
    State(state): State<AppState>,
    session: Session,
    headers: axum::http::HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    // The API is where this page came from.
    let api = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).map_or_else(String::new, |h| format!("http://{h}"));
    match find(&state, &session.caller, &id, Op::Read).await {
        Ok(module) => {
            let body = show_body(&state, &session, &module, q, &api).await;
            session.render(Nav::Modules, &format!("Module {}", module.name), body)
        }
        Err(e) => session.failure(Nav::Modules, e),
    }
}

async fn show_body(state: &AppState, session: &Session, module: &Module, q: ShowQuery, api: &str) -> Result<Markup, ApiError> {
    let caller = &session.caller;
    let versions = state.db.versions(&module.id).await?;
    let latest = versions.iter().find(|v| Some(&v.version) == module.latest_version.as_ref());
    let class = state.settings.classes.of(&module.owner_type);
    let (timeout_ms, max_memory) = class.cap(module.timeout_ms, module.max_memory_pages);
    let traffic = match decide(caller, module, Op::History) {
        Ok(()) => Some(super::history::http_traffic(state, module).await?),
        Err(_) => None,
    };
    Ok(html! {
        p.badges { (module_badges(module)) }
        @if !module.description.is_empty() { p { (module.description) } }
        @if let Some(version) = &q.uploaded { p.notice role="status" { "Version " (version) " uploaded." } }
        ul.actions {
            @if decide(caller, module, Op::Execute).is_ok() {
                li { a.button href={ "/run?" (query(&[("module", module.id.as_str())])) } { "Run a function" } }
            }
            li { a.button href={ "/modules/" (module.id) "/history" } { "History" } }
            @if decide(caller, module, Op::Version).is_ok() {
                li { a.button href={ "/upload?" (query(&[("name", module.name.as_str())])) } { "Upload a new version" } }
            }
            @if decide(caller, module, Op::Update).is_ok() {
                li { a.button href={ "/modules/" (module.id) "/settings" } { "Settings" } }
            }
        }
        section aria-labelledby="exports" {
            h2 #exports { "Exported functions" @if let Some(v) = latest { " of " (v.version) } }
            @match latest.map(|v| exports(&v.exports)).filter(|e| !e.is_empty()) {
                Some(list) => {
                    div.scroll { table {
                        thead { tr { th scope="col" { "Function" } th scope="col" { "Signature" } } }
                        tbody { @for (name, signature) in list { tr { th scope="row" { (name) } td { code { (signature) } } } } }
                    } }
                }
                None => { p.empty { "No exported functions." } }
            }
        }
        (call_it(state, session, module, latest, api).await?)
        @if let Some(traffic) = traffic { (traffic) }
        section aria-labelledby="limits" {
            h2 #limits { "Limits" }
            dl.facts {
                dt { "Execution time" } dd { (ms(timeout_ms as f64)) " per call (" (module.owner_type) " modules: at most " (ms(class.max_execution_ms as f64)) ")" }
                dt { "Memory" } dd { (memory(latest, max_memory)) }
                dt { "HTTP requests" } dd { @match module.http_timeout_ms {
                    Some(t) => { (ms(t as f64)) " per request on a node" }
                    None => { "the node's default per request (500 ms)" }
                } }
                dt { "HTTP bodies" } dd { "up to " (bytes(class.body_limit(module.max_body_bytes.map(|b| b as u64)))) " each way, streamed (" (module.owner_type) " modules: at most " (bytes(class.max_body_bytes)) ")" }
                dt { "Instances" } dd { "up to " (module.max_instances) " at once on a node; " (if module.reuse_instances { "instances are reused" } else { "a fresh instance per request" }) }
            }
        }
        section aria-labelledby="versions" {
            h2 #versions { "Versions" }
            div.scroll { table {
                thead { tr { th scope="col" { "Version" } th scope="col" { "Kind" } th scope="col" { "Size" } th scope="col" { "SHA-256" } th scope="col" { "Uploaded" } } }
                tbody {
                    @for v in &versions {
                        tr {
                            th scope="row" { (v.version) }
                            td { (v.kind) @if let Some(world) = &v.world { " (" (world) ")" } }
                            td { (bytes(v.size_bytes as u64)) }
                            td { code title=(v.sha256) { (v.sha256.get(..12).unwrap_or(&v.sha256)) "…" } }
                            td { (time(v.created_at)) }
                        }
                    }
                }
            } }
        }
        section aria-labelledby="details" {
            h2 #details { "Details" }
            dl.facts {
                dt { "Id" } dd { code { (module.id) } }
                dt { "Created" } dd { (time(module.created_at)) }
                dt { "Visibility" } dd { (if module.is_public { "public: every signed-in user may read and run it" } else { "private" }) }
            }
        }
    })
}

/// How to reach the module: its routes with their URLs on the edge node, and copyable
/// curl and CLI lines for the invoke API and for each route.
async fn call_it(
    state: &AppState,
    session: &Session,
    module: &Module,
    latest: Option<&ModuleVersion>,
    api: &str,
) -> Result<Markup, ApiError> {
    let routes: Vec<_> =
        crate::routes::visible_routes(state, &session.caller).await?.into_iter().filter(|r| r.module_id == module.id).collect();
    let edge = state.edge_url.get().map_or("http://EDGE-NODE", String::as_str);
    let first = latest.map(|v| exports(&v.exports)).unwrap_or_default().into_iter().find(|(_, sig)| !sig.contains("resource>"));
    let mut lines = Vec::new();
    if let Some((function, _)) = &first {
        lines.push(format!("edgefn invoke {} {function} …", module.name));
        lines.push(format!(
            "curl -X POST {api}/api/v1/modules/{}/invoke -H \"Authorization: Bearer $TOKEN\" -d '{{\"function\": \"{function}\", \"args\": []}}'",
            module.name
        ));
    }
    for route in routes.iter().filter(|r| r.match_kind != "regex") {
        let host = route.host.as_deref().map(|h| format!(" -H 'Host: {h}'")).unwrap_or_default();
        lines.push(format!("curl{host} {edge}{}", route.path));
    }
    Ok(html! {
        section aria-labelledby="reach" {
            h2 #reach { "Call it" }
            @if routes.is_empty() {
                p { "No routes on the edge node lead here. " a href="/routes" { "Add one" } "." }
            } @else {
                ul {
                    @for r in &routes {
                        li {
                            code { (r.path) } " (" (r.match_kind) @if let Some(h) = &r.host { ", host " (h) } ")"
                            @if r.host.is_none() && r.match_kind != "regex" && state.edge_url.get().is_some() {
                                " — " a href={ (edge) (r.path) } { (edge) (r.path) }
                            }
                        }
                    }
                }
            }
            @if !lines.is_empty() {
                @for (i, line) in lines.iter().enumerate() {
                    p.secret { code id={ "snippet-" (i) } { (line) } " " button type="button" data-copy={ "#snippet-" (i) } aria-label="Copy this line" { "Copy" } }
                }
            }
        }
    })
}

/// "Initial: 1 MB, Max: 16 MB": the memory the module declares, capped by its limits.
fn memory(version: Option<&ModuleVersion>, cap_bytes: u64) -> String {
    let cap = bytes(cap_bytes);
    match version.and_then(|v| v.memory_pages) {
        Some(initial) => {
            let declared = version.and_then(|v| v.max_memory_pages).map(|p| p as u64 * 65536);
            format!("Initial: {}, Max: {}", pages(initial), bytes(declared.map_or(cap_bytes, |d| d.min(cap_bytes))))
        }
        None => format!("No linear memory; Max: {cap}"),
    }
}

/// (name, signature) of each exported function in a version's `exports`.
pub(crate) fn exports(exports: &Value) -> Vec<(String, String)> {
    let text = |e: &Value, key: &str| e.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
    exports.as_array().into_iter().flatten().map(|e| (text(e, "name"), text(e, "signature"))).collect()
}
