//! The platform pages: routes, deployments, nodes, and (admins) the audit log with a
//! check of its hash chain.

use axum::extract::{Query, State};
use axum::response::Response;
use edgefn_store::AuditFilter;
use maud::{Markup, html};
use serde::Deserialize;

use super::format::time;
use super::layout::Nav;
use super::session::{Session, query};
use crate::error::ApiError;
use crate::routes::visible_routes;
use crate::state::AppState;

/// Audit entries per page.
const AUDIT_PAGE: i64 = 50;

/// `GET /routes`: routes to the modules the caller may read.
pub async fn routes(State(state): State<AppState>, session: Session) -> Response {
    let body = async {
        let routes = visible_routes(&state, &session.caller).await?;
        let mut rows = Vec::new();
        for route in routes {
            let module = state.db.module(&route.module_id).await?;
            rows.push((route, module.name));
        }
        Ok::<_, ApiError>(html! {
            p { "Requests to the edge node go to the route with the highest priority that matches; among equals, the most specific, then the oldest. "
                "Add routes with " code { "edgefn route add" } " or " code { "POST /api/v1/routes" } "." }
            @if rows.is_empty() {
                p.empty { "No routes to modules you can see." }
            } @else {
                div.scroll { table {
                    caption { (rows.len()) " routes" }
                    thead { tr { th scope="col" { "Path" } th scope="col" { "Match" } th scope="col" { "Host" } th scope="col" { "Methods" }
                        th scope="col" { "Priority" } th scope="col" { "Module" } th scope="col" { "Version" } th scope="col" { "Created" } } }
                    tbody {
                        @for (r, name) in &rows {
                            tr {
                                th scope="row" { code { (r.path) } }
                                td { (r.match_kind) }
                                td { (r.host.as_deref().unwrap_or("any")) }
                                td { @if r.methods.is_empty() { "any" } @else { (r.methods.join(", ")) } }
                                td { (r.priority) }
                                td { a href={ "/modules/" (r.module_id) } { (name) } }
                                td { (r.version.as_deref().unwrap_or("latest")) }
                                td { (time(r.created_at)) }
                            }
                        }
                    }
                } }
            }
        })
    };
    session.render(Nav::Routes, "Routes", body.await)
}

/// What the node and deployment pages say until nodes report to the control plane.
fn not_reporting(what: &str) -> Markup {
    html! {
        p.empty { "No " (what) " yet." }
        p { "The edge node that " code { "edgefn up" } " starts reads routes and modules from this control plane's database directly, "
            "so new versions and routes reach it at once. Nodes that run elsewhere will report here, with their status, heartbeat and load, "
            "and rollouts will show their progress per node, once nodes connect to the control plane; that connection is not built yet." }
    }
}

/// `GET /deployments`.
pub async fn deployments(session: Session) -> Response {
    session.render(Nav::Deployments, "Deployments", Ok(not_reporting("deployments to remote nodes")))
}

/// `GET /nodes`.
pub async fn nodes(session: Session) -> Response {
    session.render(Nav::Nodes, "Nodes", Ok(not_reporting("remote nodes have registered")))
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
