//! `/api/v1/nodes`: the node registry. A node's status comes from the age of its last
//! report against its own report interval: `online` within 3 intervals, `degraded` within
//! 6, `offline` beyond; `removed` once an admin removed it (it is refused from then on).

use axum::Json;
use axum::extract::{Path, State};
use edgefn_store::{NodeRow, now_ms};
use serde::Serialize;
use utoipa::ToSchema;

use crate::access::Caller;
use crate::error::ApiError;
use crate::openapi::Failure;
use crate::state::AppState;

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    /// Reported within 3 intervals.
    Online,
    /// Last report 3 to 6 intervals ago.
    Degraded,
    /// No report for 6 intervals.
    Offline,
    /// Removed by an admin.
    Removed,
}

impl NodeStatus {
    /// Its name, as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Degraded => "degraded",
            Self::Offline => "offline",
            Self::Removed => "removed",
        }
    }
}

/// A node as listed.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// What the registry holds.
    #[serde(flatten)]
    pub node: NodeRow,
    /// Where it stands.
    pub status: NodeStatus,
    /// The revision the control plane is at (its change log's newest).
    pub current_revision: u64,
    /// How many revisions it is behind.
    pub behind: u64,
    /// What of its reports was refused or clamped since it connected (as not true).
    pub refused: super::report::Refused,
}

/// `GET /api/v1/nodes` answer.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeList {
    /// Nodes by name.
    pub nodes: Vec<NodeView>,
    /// The base URL of an edge node serving these routes, when this control plane knows
    /// one (`edgefn up`'s own node, or `edgefn control --edge-url`).
    pub edge_url: Option<String>,
}

/// The status of a node at `now`.
pub fn status_of(node: &NodeRow, now: i64) -> NodeStatus {
    if node.removed_at.is_some() {
        return NodeStatus::Removed;
    }
    let age = now - node.last_seen_at;
    let every = node.report_every_ms.max(1);
    match age {
        a if a <= 3 * every => NodeStatus::Online,
        a if a <= 6 * every => NodeStatus::Degraded,
        _ => NodeStatus::Offline,
    }
}

/// Every node with its status, with what connected nodes acknowledged since their last
/// report. Only admins see nodes' addresses and what they rejected (which names other
/// tenants' functions).
pub async fn views(state: &AppState, caller: &Caller) -> Result<Vec<NodeView>, ApiError> {
    let admin = caller.user.is_admin();
    let live = state.hub.live();
    let current = state.db.revision().await?;
    let now = now_ms();
    Ok(state
        .db
        .nodes()
        .await?
        .into_iter()
        .map(|mut node| {
            let refused = live.get(&node.name).map(|l| l.refused).unwrap_or_default();
            if let Some(l) = live.get(&node.name) {
                node.revision = node.revision.max(i64::try_from(l.revision).unwrap_or(0));
            }
            if !admin {
                node.address = None;
                node.rejected = serde_json::json!([]);
            }
            let status = status_of(&node, now);
            let behind = current.saturating_sub(node.revision.max(0) as u64);
            NodeView { node, status, current_revision: current, behind, refused }
        })
        .collect())
}

/// `GET /api/v1/nodes`: every signed-in user; addresses and rejections for admins only.
#[utoipa::path(get, path = "/api/v1/nodes", tag = "nodes", responses((status = 200, description = "Every node, by name", body = NodeList), Failure))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<NodeList>, ApiError> {
    Ok(Json(NodeList { nodes: views(&state, &caller).await?, edge_url: state.edge_url.get().cloned() }))
}

/// `DELETE /api/v1/nodes/{name}` (admins): removes a node; its streams end and it is
/// refused when it connects again.
#[utoipa::path(delete, path = "/api/v1/nodes/{name}", tag = "nodes", params(("name" = String, Path, description = "Node name")),
    responses((status = 200, description = "The removed node", body = NodeRow), Failure))]
pub async fn remove(State(state): State<AppState>, caller: Caller, Path(name): Path<String>) -> Result<Json<NodeRow>, ApiError> {
    caller.require_admin("remove nodes")?;
    let node = state.db.remove_node(&edgefn_store::Actor::from(&caller.user), &name).await?;
    state.hub.disconnect(&name);
    Ok(Json(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_follows_report_age() {
        let node = NodeRow {
            name: "n".into(),
            pop: None,
            agent_version: String::new(),
            address: None,
            revision: 0,
            cpu_percent: 0.0,
            memory_bytes: 0,
            connected: true,
            report_every_ms: 1000,
            rejected: serde_json::json!([]),
            first_seen_at: 0,
            last_seen_at: 10_000,
            removed_at: None,
        };
        assert_eq!(status_of(&node, 12_999), NodeStatus::Online);
        assert_eq!(status_of(&node, 15_000), NodeStatus::Degraded);
        assert_eq!(status_of(&node, 16_001), NodeStatus::Offline);
        assert_eq!(status_of(&NodeRow { removed_at: Some(1), ..node }, 10_000), NodeStatus::Removed);
    }
}
