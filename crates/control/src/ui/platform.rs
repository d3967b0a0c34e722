//! The platform pages: deployments, the node registry, and (admins) the audit log with a
//! check of its hash chain.

use axum::extract::{Query, State};
use axum::response::Response;
use edgefn_store::AuditFilter;
use maud::html;
use serde::Deserialize;

use super::format::{bytes, time};
use super::layout::{Nav, badge};
use super::session::{Session, query};
use crate::error::ApiError;
use crate::state::AppState;

/// Audit entries per page.
const AUDIT_PAGE: i64 = 50;

/// `GET /deployments`.
pub async fn deployments(session: Session) -> Response {
    let body = html! {
        p.empty { "No deployments yet." }
        p { "Every change to functions and routes reaches the nodes at once through the node stream (see Nodes). "
            "Staged rollouts — canary and rolling, with automatic abort — are not built yet." }
    };
    session.render(Nav::Deployments, "Deployments", Ok(body))
}

/// `GET /nodes`: the node registry.
pub async fn nodes(State(state): State<AppState>, session: Session) -> Response {
    let body = async {
        let nodes = crate::nodes::api::views(&state, &session.caller).await?;
        let current = state.db.revision().await?;
        Ok::<_, ApiError>(html! {
            p { "Edge nodes connect to the control plane over the node stream (mTLS), receive the routes and functions of their POP, "
                "and report every few seconds. The control plane is at revision " strong { (current) } ". "
                "Start a node with " code { "edgefn node --control https://HOST:8443 …" } " (README, \"Scale-out\")." }
            @if nodes.is_empty() {
                p.empty { "No node has connected yet." }
            } @else {
                div.scroll { table {
                    caption { (nodes.len()) " nodes" }
                    thead { tr { th scope="col" { "Node" } th scope="col" { "POP" } th scope="col" { "Status" } th scope="col" { "Revision" }
                        th scope="col" { "CPU" } th scope="col" { "Memory" } th scope="col" { "Version" } th scope="col" { "Last seen" } th scope="col" { "Problems" } } }
                    tbody {
                        @for n in &nodes {
                            tr {
                                th scope="row" { (n.node.name) }
                                td { (n.node.pop.as_deref().unwrap_or("-")) }
                                td { (badge(n.status.as_str(), n.status.as_str()))
                                    @if n.node.connected { " (connected)" } }
                                td { (n.node.revision) @if n.behind > 0 { " (" (n.behind) " behind)" } @else { " (current)" } }
                                td { (format!("{:.1} %", n.node.cpu_percent)) }
                                td { (bytes(n.node.memory_bytes.max(0) as u64)) }
                                td { (n.node.agent_version) }
                                td { (time(n.node.last_seen_at)) }
                                td {
                                    @for r in n.node.rejected.as_array().into_iter().flatten() {
                                        div { code { (r["resource"].as_str().unwrap_or("")) } ": " (r["reason"].as_str().unwrap_or("")) }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
        })
    };
    session.render(Nav::Nodes, "Nodes", body.await)
}

/// Query of the audit page: filters, the page (entries before `before`), the chain check.
#[derive(Deserialize, Default)]
pub struct AuditQuery {
    before: Option<i64>,
    #[serde(default)]
    verify: bool,
    /// An actor's name.
    #[serde(default)]
    actor: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    operation: String,
}

/// Resource types the audit log records, for the filter.
const AUDITED: [&str; 9] = ["module", "version", "route", "route_claim", "user", "token", "project", "member", "node"];

/// `GET /audit?actor=&resource=&operation=&before=&verify=`: admins only; newest first,
/// each change shown as what it changed.
pub async fn audit(State(state): State<AppState>, session: Session, Query(q): Query<AuditQuery>) -> Response {
    let body = async {
        session.caller.require_admin("read the audit log")?;
        let verdict = if q.verify { Some(state.db.verify_audit().await?) } else { None };
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let actor_id = match text(&q.actor) {
            Some(name) => Some(state.db.user(&name).await.map_err(|_| ApiError::bad_request(format!("no user {name}")))?.id),
            None => None,
        };
        let filter = AuditFilter {
            actor_id,
            resource_type: text(&q.resource),
            operation: text(&q.operation),
            before: q.before,
            newest_first: true,
            limit: AUDIT_PAGE,
            ..AuditFilter::default()
        };
        let entries = state.db.audit(&filter).await?;
        let users: std::collections::HashMap<String, String> = state.db.users().await?.into_iter().map(|u| (u.id, u.name)).collect();
        Ok::<_, ApiError>(html! {
            form method="get" action="/audit" {
                input type="hidden" name="verify" value="true";
                button type="submit" { "Verify chain" }
                " Recomputes every entry's hash and checks each links to the one before."
            }
            @if let Some(v) = verdict {
                @match &v.first_bad {
                    None => {
                        p.notice #verdict role="status" { "Chain intact: " (v.entries) " entries; head #" (v.head_seq) " " code { (v.head_hash.get(..16).unwrap_or(&v.head_hash)) "…" } "." }
                    }
                    Some(bad) => {
                        p.error #verdict role="alert" { "Chain broken at entry #" (bad.seq) " (" (bad.id) "): " (bad.reason) "." }
                    }
                }
            }
            form.filters.inline method="get" action="/audit" aria-label="Filter entries" {
                label for="audit-actor" { "Actor" }
                input #audit-actor name="actor" value=(q.actor) list="audit-users";
                datalist #audit-users { @for name in users.values() { option value=(name) {} } }
                label for="audit-resource" { "Resource" }
                select #audit-resource name="resource" {
                    option value="" { "any" }
                    @for r in AUDITED { option value=(r) selected[q.resource == r] { (r) } }
                }
                label for="audit-operation" { "Operation" }
                select #audit-operation name="operation" {
                    option value="" { "any" }
                    @for o in ["create", "update", "delete"] { option value=(o) selected[q.operation == o] { (o) } }
                }
                button type="submit" { "Filter" }
            }
            @if entries.is_empty() {
                p.empty { "No entries." }
            } @else {
                div.scroll { table {
                    caption { "Entries " (entries[0].seq) "–" (entries[entries.len() - 1].seq) ", newest first" }
                    thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Operation" }
                        th scope="col" { "Resource" } th scope="col" { "Change" } th scope="col" { "Hash" } } }
                    tbody {
                        @for e in &entries {
                            tr {
                                th scope="row" { (e.seq) }
                                td { (time(e.created_at)) }
                                td { a href={ "/audit?" (query(&[("actor", e.actor_name.as_str())])) } { (e.actor_name) } }
                                td { (e.operation) }
                                td { (e.resource_type) " " (resource_link(e, &users)) }
                                td { (change(e.old_value.as_deref(), e.new_value.as_deref())) }
                                td { code title=(e.hash) { (e.hash.get(..12).unwrap_or(&e.hash)) "…" } }
                            }
                        }
                    }
                } }
                @if entries.len() as i64 == AUDIT_PAGE {
                    nav.pager aria-label="Pages" {
                        a rel="next" href={ "/audit?" (query(&[
                            ("before", entries[entries.len() - 1].seq.to_string().as_str()),
                            ("actor", q.actor.as_str()), ("resource", q.resource.as_str()), ("operation", q.operation.as_str()),
                        ])) } { "Earlier entries →" }
                    }
                }
            }
        })
    };
    session.render(Nav::Audit, "Audit log", body.await)
}

/// The resource of an entry by its name where the entry gives one, linked to its page
/// where it has one.
fn resource_link(e: &edgefn_store::AuditEntry, users: &std::collections::HashMap<String, String>) -> maud::Markup {
    let id = e.resource_id.as_str();
    let named = |v: &Option<String>| {
        v.as_deref().and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())?["name"].as_str().map(str::to_string)
    };
    let name = named(&e.new_value).or_else(|| named(&e.old_value));
    let label = html! { @match &name { Some(n) => { (n) }, None => { code { (id) } } } };
    match e.resource_type.as_str() {
        "module" if e.operation != "delete" => html! { a href={ "/modules/" (id) } title=(id) { (label) } },
        "user" => html! { (users.get(id).map_or(id, String::as_str)) },
        _ => label,
    }
}

/// What an entry changed: for each field whose value differs, `field: old → new`.
fn change(old: Option<&str>, new: Option<&str>) -> maud::Markup {
    let parse = |v: Option<&str>| v.and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok()).unwrap_or(serde_json::Value::Null);
    let (old, new) = (parse(old), parse(new));
    let fields = |v: &serde_json::Value| v.as_object().cloned().unwrap_or_default();
    let (o, n) = (fields(&old), fields(&new));
    let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let shown = |v: Option<&serde_json::Value>| v.map_or_else(|| "—".to_string(), |v| v.to_string());
    let changed: Vec<(&String, String, String)> =
        keys.into_iter().filter(|k| o.get(*k) != n.get(*k)).map(|k| (k, shown(o.get(k)), shown(n.get(k)))).collect();
    html! {
        @if changed.is_empty() {
            "—"
        } @else {
            details {
                summary { (changed.len()) " field" @if changed.len() != 1 { "s" } }
                ul.diff { @for (k, before, after) in &changed { li { code { (k) } ": " del { (before) } " → " ins { (after) } } } }
            }
        }
    }
}
