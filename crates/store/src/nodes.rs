//! What the node stream keeps in the metadata database: the change log that numbers the
//! revisions nodes apply, the node registry, and the HTTP traffic nodes report.

use std::collections::{BTreeSet, HashMap};

use serde::Serialize;
use sqlx::SqliteConnection;

use crate::audit::{Change, append};
use crate::database::{Database, MODULE_COLUMNS};
use crate::error::StoreError;
use crate::models::{Actor, Module, ModuleVersion, Route};
use crate::time::{now_ms, rfc3339, rfc3339_opt};

/// Change-log rows kept: a node further behind than this gets a full snapshot.
const CHANGES_KEPT: i64 = 10_000;
/// Traffic rows older than this are deleted.
const TRAFFIC_KEPT_MS: i64 = 7 * 24 * 3600 * 1000;

/// Resource types whose changes nodes must see.
pub(crate) fn nodes_serve(resource_type: &str) -> bool {
    matches!(resource_type, "module" | "version" | "route")
}

/// Appends a change to the log, inside the caller's transaction.
pub(crate) async fn record_change(conn: &mut SqliteConnection, resource_type: &str, resource_id: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (resource_type, resource_id, created_at) VALUES (?, ?, ?)")
        .bind(resource_type)
        .bind(resource_id)
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM changes WHERE revision <= (SELECT MAX(revision) FROM changes) - ?")
        .bind(CHANGES_KEPT)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A node as the registry knows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeRow {
    /// Its certificate's name.
    pub name: String,
    /// Its POP.
    pub pop: Option<String>,
    /// Its edgefn version.
    pub agent_version: String,
    /// Where it connected from.
    pub address: Option<String>,
    /// The revision it last applied.
    pub revision: i64,
    /// CPU use in its last report, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory in its last report.
    pub memory_bytes: i64,
    /// Whether its stream is open now.
    pub connected: bool,
    /// How often it reports, in milliseconds.
    pub report_every_ms: i64,
    /// Resources it could not apply, with why.
    #[sqlx(json)]
    #[schema(value_type = Vec<Object>)]
    pub rejected: serde_json::Value,
    /// First connection.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub first_seen_at: i64,
    /// Last report or connection.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: i64,
    /// When an admin removed it.
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub removed_at: Option<i64>,
}

/// What a node said about itself.
#[derive(Debug, Clone, Default)]
pub struct NodeSeen {
    /// Its POP.
    pub pop: Option<String>,
    /// Its edgefn version.
    pub agent_version: String,
    /// Where it connected from.
    pub address: Option<String>,
    /// The revision it has applied.
    pub revision: i64,
    /// CPU use, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory.
    pub memory_bytes: i64,
    /// How often it reports, in milliseconds.
    pub report_every_ms: i64,
}

/// One function version's traffic in one report window of one node.
#[derive(Debug, Clone, Default)]
pub struct TrafficRow {
    /// The function.
    pub module_id: String,
    /// Its version label.
    pub version: String,
    /// Requests.
    pub requests: i64,
    /// Traps (500).
    pub trap: i64,
    /// Timeouts (504).
    pub timeout: i64,
    /// Other 5xx answers.
    pub server_error: i64,
    /// Refused for overload (503).
    pub overload: i64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
}

/// A function's HTTP traffic summed over nodes and windows.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrafficTotals {
    /// Requests.
    pub requests: i64,
    /// Answers that were errors of the function or the node (traps, timeouts, 5xx, overload).
    pub errors: i64,
    /// Traps.
    pub trap: i64,
    /// Timeouts.
    pub timeout: i64,
    /// Other 5xx answers.
    pub server_error: i64,
    /// Refused for overload.
    pub overload: i64,
    /// `errors / requests` (0 without requests).
    pub error_rate: f64,
    /// The highest p99 any node reported in the period (an upper bound of the true p99).
    pub p99_ms: f64,
    /// Request-weighted mean of the nodes' medians.
    pub p50_ms: f64,
}

/// A key-value entry kept in the metadata database before issue 13, when key-value data
/// moved to the nodes.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LegacyKv {
    /// The function.
    pub module_id: String,
    /// The key.
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
    /// When it expires (ms since the epoch), if ever.
    pub expires_at: Option<i64>,
}

/// Everything nodes run, read at one revision.
#[derive(Debug, Clone, Default)]
pub struct Routed {
    /// The change log's revision these rows are at.
    pub revision: u64,
    /// Every route, in creation order.
    pub routes: Vec<Route>,
    /// The modules routes point at.
    pub modules: Vec<Module>,
    /// Every version of those modules, newest first per module.
    pub versions: Vec<ModuleVersion>,
}

/// The resources changed after a revision, re-read at the newest one: what the control
/// plane needs to bring its in-memory world forward without reading everything again.
#[derive(Debug, Clone, Default)]
pub struct Changed {
    /// The change log's revision these rows are at.
    pub revision: u64,
    /// Whether the log still holds every change after the revision asked for (if not,
    /// the caller must read everything).
    pub complete: bool,
    /// Whether a route claim changed (claims held for review decide which routes serve).
    pub claims: bool,
    /// Each changed route by id, `None` when it is gone.
    pub routes: Vec<(String, Option<Route>)>,
    /// Each changed module by id with its routes now (a module's deletion takes its
    /// routes with it) and, unless it is gone, its row and versions (newest first).
    pub modules: Vec<ChangedModule>,
}

/// A module [`Changed`] re-read.
#[derive(Debug, Clone)]
pub struct ChangedModule {
    /// Its id.
    pub id: String,
    /// Its row, `None` when it is gone.
    pub row: Option<Module>,
    /// Its versions, newest first.
    pub versions: Vec<ModuleVersion>,
    /// The routes pointing at it.
    pub routes: Vec<Route>,
}

impl Database {
    /// The routes, the modules they point at and those modules' versions, with the
    /// revision, all from one read transaction (one consistent snapshot of the database).
    pub async fn routed(&self) -> Result<Routed, StoreError> {
        let mut tx = self.pool.begin().await?;
        let revision: Option<i64> = sqlx::query_scalar("SELECT MAX(revision) FROM changes").fetch_one(&mut *tx).await?;
        let routes: Vec<Route> = sqlx::query_as("SELECT * FROM routes ORDER BY seq").fetch_all(&mut *tx).await?;
        let modules: Vec<Module> =
            sqlx::query_as(&format!("SELECT {MODULE_COLUMNS} FROM modules m WHERE m.id IN (SELECT module_id FROM routes)"))
                .fetch_all(&mut *tx)
                .await?;
        let versions: Vec<ModuleVersion> = sqlx::query_as(
            "SELECT * FROM module_versions WHERE module_id IN (SELECT module_id FROM routes) ORDER BY module_id, created_at DESC, id DESC",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Routed { revision: revision.unwrap_or(0) as u64, routes, modules, versions })
    }

    /// What changed after revision `since`, in one read transaction: the routes and
    /// modules the change log names (a version's change counts as its module's), re-read,
    /// and every module a changed route now points at. Its cost follows the number of
    /// changes, not of resources.
    pub async fn changed_since(&self, since: u64) -> Result<Changed, StoreError> {
        let mut tx = self.pool.begin().await?;
        let (oldest, revision): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT MIN(revision), MAX(revision) FROM changes").fetch_one(&mut *tx).await?;
        let revision = revision.unwrap_or(0) as u64;
        let complete = oldest.is_none_or(|oldest| since + 1 >= oldest as u64);
        let mut changed = Changed { revision, complete, ..Default::default() };
        if !complete || since >= revision {
            tx.commit().await?;
            return Ok(changed);
        }
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT DISTINCT resource_type, resource_id FROM changes WHERE revision > ?")
            .bind(since as i64)
            .fetch_all(&mut *tx)
            .await?;
        let ids = |kind: &str| -> String {
            let ids: Vec<&str> = rows.iter().filter(|(t, _)| t == kind).map(|(_, id)| id.as_str()).collect();
            serde_json::to_string(&ids).expect("strings serialize")
        };
        changed.claims = rows.iter().any(|(t, _)| t == "route_claim");
        let route_ids: Vec<String> = rows.iter().filter(|(t, _)| t == "route").map(|(_, id)| id.clone()).collect();
        let routes: Vec<Route> = sqlx::query_as("SELECT * FROM routes WHERE id IN (SELECT value FROM json_each(?))")
            .bind(ids("route"))
            .fetch_all(&mut *tx)
            .await?;
        let mut module_ids: BTreeSet<String> = rows.iter().filter(|(t, _)| t == "module").map(|(_, id)| id.clone()).collect();
        let of_versions: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT module_id FROM module_versions WHERE id IN (SELECT value FROM json_each(?))")
                .bind(ids("version"))
                .fetch_all(&mut *tx)
                .await?;
        module_ids.extend(of_versions);
        module_ids.extend(routes.iter().map(|r| r.module_id.clone()));
        let wanted = serde_json::to_string(&module_ids).expect("strings serialize");
        let modules: Vec<Module> =
            sqlx::query_as(&format!("SELECT {MODULE_COLUMNS} FROM modules m WHERE m.id IN (SELECT value FROM json_each(?))"))
                .bind(&wanted)
                .fetch_all(&mut *tx)
                .await?;
        let versions: Vec<ModuleVersion> = sqlx::query_as(
            "SELECT * FROM module_versions WHERE module_id IN (SELECT value FROM json_each(?)) ORDER BY module_id, created_at DESC, id DESC",
        )
        .bind(&wanted)
        .fetch_all(&mut *tx)
        .await?;
        let module_routes: Vec<Route> =
            sqlx::query_as("SELECT * FROM routes WHERE module_id IN (SELECT value FROM json_each(?)) ORDER BY seq")
                .bind(&wanted)
                .fetch_all(&mut *tx)
                .await?;
        tx.commit().await?;
        let mut by_id: HashMap<String, Route> = routes.into_iter().map(|r| (r.id.clone(), r)).collect();
        changed.routes = route_ids.into_iter().map(|id| (id.clone(), by_id.remove(&id))).collect();
        let mut rows: HashMap<String, Module> = modules.into_iter().map(|m| (m.id.clone(), m)).collect();
        let mut versions_of: HashMap<String, Vec<ModuleVersion>> = HashMap::new();
        for v in versions {
            versions_of.entry(v.module_id.clone()).or_default().push(v);
        }
        let mut routes_of: HashMap<String, Vec<Route>> = HashMap::new();
        for r in module_routes {
            routes_of.entry(r.module_id.clone()).or_default().push(r);
        }
        changed.modules = module_ids
            .into_iter()
            .map(|id| ChangedModule {
                row: rows.remove(&id),
                versions: versions_of.remove(&id).unwrap_or_default(),
                routes: routes_of.remove(&id).unwrap_or_default(),
                id,
            })
            .collect();
        Ok(changed)
    }

    /// Key-value entries left in the metadata database by an older edgefn, live ones only,
    /// for `edgefn up` to move to its node.
    pub async fn legacy_kv(&self) -> Result<Vec<LegacyKv>, StoreError> {
        Ok(sqlx::query_as("SELECT module_id, key, value, expires_at FROM kv WHERE expires_at IS NULL OR expires_at > ?")
            .bind(now_ms())
            .fetch_all(&self.pool)
            .await?)
    }

    /// Forgets the key-value entries once they were moved.
    pub async fn clear_legacy_kv(&self) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM kv").execute(&self.pool).await?;
        Ok(())
    }

    /// Marks every node disconnected: at start, before any stream is open.
    pub async fn nodes_all_disconnected(&self) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET connected = FALSE").execute(&self.pool).await?;
        Ok(())
    }

    /// The newest revision (0 before any change).
    pub async fn revision(&self) -> Result<u64, StoreError> {
        let r: Option<i64> = sqlx::query_scalar("SELECT MAX(revision) FROM changes").fetch_one(&self.pool).await?;
        Ok(r.unwrap_or(0) as u64)
    }

    /// The oldest revision a node may resume from with a delta: older ones get a snapshot.
    pub async fn oldest_resumable_revision(&self) -> Result<u64, StoreError> {
        let r: Option<i64> = sqlx::query_scalar("SELECT MIN(revision) FROM changes").fetch_one(&self.pool).await?;
        Ok(r.map_or(0, |r| (r - 1).max(0) as u64))
    }

    /// Records that a node connected, reported or disconnected; refused if an admin
    /// removed it ([`StoreError::Conflict`]).
    pub async fn node_seen(&self, name: &str, seen: &NodeSeen, connected: bool) -> Result<(), StoreError> {
        let removed: Option<Option<i64>> =
            sqlx::query_scalar("SELECT removed_at FROM nodes WHERE name = ?").bind(name).fetch_optional(&self.pool).await?;
        if let Some(Some(_)) = removed {
            return Err(StoreError::Conflict(format!("node {name} was removed by an admin")));
        }
        let now = now_ms();
        sqlx::query(
            "INSERT INTO nodes (name, pop, agent_version, address, revision, cpu_percent, memory_bytes, report_every_ms, connected, first_seen_at, last_seen_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET pop = excluded.pop, agent_version = excluded.agent_version, \
               address = COALESCE(excluded.address, nodes.address), revision = excluded.revision, cpu_percent = excluded.cpu_percent, \
               memory_bytes = excluded.memory_bytes, report_every_ms = excluded.report_every_ms, connected = excluded.connected, \
               last_seen_at = excluded.last_seen_at",
        )
        .bind(name)
        .bind(&seen.pop)
        .bind(&seen.agent_version)
        .bind(&seen.address)
        .bind(seen.revision)
        .bind(seen.cpu_percent)
        .bind(seen.memory_bytes)
        .bind(seen.report_every_ms)
        .bind(connected)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records what a node could not apply (empty: everything applied).
    pub async fn node_rejected(&self, name: &str, rejected: &serde_json::Value) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET rejected = ? WHERE name = ?").bind(rejected.to_string()).bind(name).execute(&self.pool).await?;
        Ok(())
    }

    /// Marks a node's stream closed.
    pub async fn node_disconnected(&self, name: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE nodes SET connected = FALSE WHERE name = ?").bind(name).execute(&self.pool).await?;
        Ok(())
    }

    /// Every node, by name (removed ones too).
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM nodes ORDER BY name").fetch_all(&self.pool).await?)
    }

    /// One node.
    pub async fn node(&self, name: &str) -> Result<NodeRow, StoreError> {
        let row: Option<NodeRow> = sqlx::query_as("SELECT * FROM nodes WHERE name = ?").bind(name).fetch_optional(&self.pool).await?;
        row.ok_or_else(|| StoreError::NotFound(format!("node {name}")))
    }

    /// Removes a node (audited): it is refused from its next connection on.
    pub async fn remove_node(&self, actor: &Actor, name: &str) -> Result<NodeRow, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old: Option<NodeRow> = sqlx::query_as("SELECT * FROM nodes WHERE name = ?").bind(name).fetch_optional(&mut *tx).await?;
        let old = old.ok_or_else(|| StoreError::NotFound(format!("node {name}")))?;
        if old.removed_at.is_some() {
            return Err(StoreError::Conflict(format!("node {name} is already removed")));
        }
        sqlx::query("UPDATE nodes SET removed_at = ?, connected = FALSE WHERE name = ?")
            .bind(now_ms())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let new: NodeRow = sqlx::query_as("SELECT * FROM nodes WHERE name = ?").bind(name).fetch_one(&mut *tx).await?;
        append(&mut tx, actor, Change::new("node", name, "remove", Some(&old), Some(&new))).await?;
        self.commit_audited(tx).await?;
        Ok(new)
    }

    /// Stores one report window's traffic of a node, and forgets week-old windows.
    pub async fn record_traffic(&self, node: &str, window_end: i64, window_ms: i64, rows: &[TrafficRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO node_traffic (node, module_id, version, window_end, window_ms, requests, trap, timeout, server_error, overload, p50_ms, p99_ms) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(node)
            .bind(&r.module_id)
            .bind(&r.version)
            .bind(window_end)
            .bind(window_ms)
            .bind(r.requests)
            .bind(r.trap)
            .bind(r.timeout)
            .bind(r.server_error)
            .bind(r.overload)
            .bind(r.p50_ms)
            .bind(r.p99_ms)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM node_traffic WHERE window_end < ?").bind(window_end - TRAFFIC_KEPT_MS).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A function's HTTP traffic from the nodes' reports since `since_ms`.
    pub async fn traffic(&self, module_id: &str, since_ms: i64) -> Result<TrafficTotals, StoreError> {
        type Sums = (Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<i64>, Option<f64>, Option<f64>);
        let (requests, trap, timeout, server_error, overload, p99, p50_weighted): Sums = sqlx::query_as(
            "SELECT SUM(requests), SUM(trap), SUM(timeout), SUM(server_error), SUM(overload), MAX(p99_ms), SUM(p50_ms * requests) \
             FROM node_traffic WHERE module_id = ? AND window_end >= ?",
        )
        .bind(module_id)
        .bind(since_ms)
        .fetch_one(&self.pool)
        .await?;
        let requests = requests.unwrap_or(0);
        let (trap, timeout, server_error, overload) =
            (trap.unwrap_or(0), timeout.unwrap_or(0), server_error.unwrap_or(0), overload.unwrap_or(0));
        let errors = trap + timeout + server_error + overload;
        let per = |x: f64| if requests > 0 { x / requests as f64 } else { 0.0 };
        Ok(TrafficTotals {
            requests,
            errors,
            trap,
            timeout,
            server_error,
            overload,
            error_rate: per(errors as f64),
            p99_ms: p99.unwrap_or(0.0),
            p50_ms: per(p50_weighted.unwrap_or(0.0)),
        })
    }
}
