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

/// Query of the audit page.
#[derive(Deserialize)]
pub struct AuditQuery {
    after: Option<i64>,
    #[serde(default)]
    verify: bool,
}

/// `GET /audit?after=&verify=`: admins only.
pub async fn audit(State(state): State<AppState>, session: Session, Query(q): Query<AuditQuery>) -> Response {
    let body = async {
        session.caller.require_admin("read the audit log")?;
        let verdict = if q.verify { Some(state.db.verify_audit().await?) } else { None };
        let filter = AuditFilter { after: q.after, limit: AUDIT_PAGE, ..AuditFilter::default() };
        let entries = state.db.audit(&filter).await?;
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
            @if entries.is_empty() {
                p.empty { "No entries" @if q.after.is_some() { " after #" (q.after.unwrap_or(0)) } "." }
            } @else {
                div.scroll { table {
                    caption { "Entries " (entries[0].seq) "–" (entries[entries.len() - 1].seq) ", oldest first" }
                    thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Actor" } th scope="col" { "Operation" }
                        th scope="col" { "Resource" } th scope="col" { "Hash" } } }
                    tbody {
                        @for e in &entries {
                            tr {
                                th scope="row" { (e.seq) }
                                td { (time(e.created_at)) }
                                td { (e.actor_name) }
                                td { (e.operation) }
                                td { (e.resource_type) " " code { (e.resource_id) } }
                                td { code title=(e.hash) { (e.hash.get(..12).unwrap_or(&e.hash)) "…" } }
                            }
                        }
                    }
                } }
                @if entries.len() as i64 == AUDIT_PAGE {
                    nav.pager aria-label="Pages" {
                        a href={ "/audit?" (query(&[("after", entries[entries.len() - 1].seq.to_string().as_str())])) } rel="next" { "Later entries →" }
                    }
                }
            }
        })
    };
    session.render(Nav::Audit, "Audit log", body.await)
}
