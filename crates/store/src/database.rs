//! The metadata database: open (creating and migrating), and one method per query.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, RwLock};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::audit::{Change, append};
use crate::claims::RouteSpace;
use crate::error::StoreError;
use crate::models::{
    Actor, Execution, ExecutionStats, Module, ModuleFilter, ModulePatch, ModuleVersion, NewExecution, NewModule, NewRoute, NewVersion,
    Route, TokenOwner, User,
};
use crate::time::now_ms;

/// Connections kept open: SQLite serialises writers anyway; a few readers run alongside.
const MAX_CONNECTIONS: u32 = 8;

/// Columns of a module plus its newest version's label.
pub(crate) const MODULE_COLUMNS: &str = "m.id, m.owner_id, m.project_id, m.owner_type, m.name, m.description, m.status, m.is_public, \
    m.allowed_users, m.metadata, m.timeout_ms, m.max_memory_pages, m.max_instances, m.reuse_instances, m.http_timeout_ms, m.max_body_bytes, m.env, m.allow_hosts, m.created_at, m.updated_at, \
    (SELECT v.version FROM module_versions v WHERE v.module_id = m.id ORDER BY v.created_at DESC, v.id DESC LIMIT 1) AS latest_version";

/// Executions per multi-row INSERT.
const INSERT_CHUNK: usize = 500;
/// Entries kept in each read cache before it is emptied and refilled.
const MAX_CACHED: usize = 10_000;

/// The metadata database.
///
/// The lookups on every call's path — token to user, the user's project roles, module
/// key to candidate modules, and module id to module and version — are cached in memory. Every method here that writes modules, versions, users
/// or tokens empties the caches, so a read never sees a row older than this process's
/// last write. (Several control-plane replicas over one PostgreSQL will need a change
/// feed to do the same across processes.)
///
/// Writes that are audited take one lock for their transaction, so audit entries are
/// numbered and chained one after another.
#[derive(Clone, Debug)]
pub struct Database {
    pub(crate) pool: SqlitePool,
    pub(crate) tokens_cache: Arc<RwLock<HashMap<String, TokenOwner>>>,
    resolved: Arc<RwLock<HashMap<ResolveKey, Resolved>>>,
    pub(crate) memberships_cache: Arc<RwLock<HashMap<String, HashMap<String, String>>>>,
    named: Arc<RwLock<HashMap<String, Vec<Module>>>>,
    pub(crate) writes: Arc<tokio::sync::Mutex<()>>,
    /// File outside the database where the audit log's head is written after each
    /// audited change ([`Database::witness_audit_head`]).
    pub(crate) audit_witness: Option<Arc<std::path::PathBuf>>,
    /// Counts this process's audited commits, so the node stream wakes on a change.
    commits: Arc<tokio::sync::watch::Sender<u64>>,
}

/// An audited write in progress: the write lock and the transaction.
pub(crate) type AuditedTx = (tokio::sync::OwnedMutexGuard<()>, sqlx::Transaction<'static, Sqlite>);

/// A module id and an optional version label.
type ResolveKey = (String, Option<String>);
/// A module with the version a lookup chose, shared from the cache.
pub type Resolved = Arc<(Module, ModuleVersion)>;

impl Database {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a committed transaction survives a process crash; only an OS
            // crash can lose the last moments, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS).connect_with(options).await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self {
            pool,
            tokens_cache: Arc::default(),
            resolved: Arc::default(),
            memberships_cache: Arc::default(),
            named: Arc::default(),
            writes: Arc::default(),
            audit_witness: None,
            commits: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// Starts a transaction whose changes go to the audit log.
    pub(crate) async fn begin_audited(&self) -> Result<AuditedTx, StoreError> {
        let lock = self.writes.clone().lock_owned().await;
        Ok((lock, self.begin_write().await?))
    }

    /// Commits an audited transaction, empties the read caches it may have made stale and
    /// writes the new head of the audit log to the witness file, if there is one (the
    /// caller still holds the write lock, so the head is this change's).
    pub(crate) async fn commit_audited(&self, tx: sqlx::Transaction<'static, Sqlite>) -> Result<(), StoreError> {
        tx.commit().await?;
        self.invalidate();
        self.commits.send_modify(|n| *n += 1);
        if let Some(path) = &self.audit_witness {
            crate::audit::write_witness(&self.pool, path).await?;
        }
        Ok(())
    }

    /// A transaction holding SQLite's write lock from its first statement. A deferred
    /// transaction that reads first cannot upgrade once another connection has committed
    /// (`SQLITE_BUSY_SNAPSHOT`, not retried); this one waits for the lock instead.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Changes each time this process commits an audited change (which includes every
    /// change nodes serve); other processes' changes show in [`Self::revision`] only.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Empties the read caches; called by every write they could make stale.
    pub(crate) fn invalidate(&self) {
        self.tokens_cache.write().expect("cache lock").clear();
        self.memberships_cache.write().expect("cache lock").clear();
        self.named.write().expect("cache lock").clear();
        self.resolved.write().expect("cache lock").clear();
    }

    pub(crate) fn remember<K: std::hash::Hash + Eq, V>(cache: &RwLock<HashMap<K, V>>, key: K, value: V) {
        let mut map = cache.write().expect("cache lock");
        if map.len() >= MAX_CACHED {
            map.clear();
        }
        map.insert(key, value);
    }

    /// The first admin, and a token for it (its hash given) when it has none: on the
    /// first start, or after a start that stopped between the two. Returns the admin and
    /// whether the token was created now.
    pub async fn ensure_admin(&self, token_hash: impl FnOnce() -> String) -> Result<(User, bool), StoreError> {
        let actor = Actor::system();
        let existing = sqlx::query_as::<_, User>("SELECT * FROM users WHERE role = 'admin' ORDER BY created_at LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        let admin = match existing {
            Some(admin) => admin,
            None => self.create_user(&actor, "admin", "admin", None).await?,
        };
        let tokens: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE user_id = ?").bind(&admin.id).fetch_one(&self.pool).await?;
        if tokens > 0 {
            return Ok((admin, false));
        }
        self.create_token(&actor, &admin.id, "first admin token", &token_hash(), None).await?;
        Ok((admin, true))
    }

    /// The module with id `id` and its version `version` (newest when `None`): the
    /// lookup every call makes, served from memory after the first time.
    pub async fn resolve(&self, id: &str, version: Option<&str>) -> Result<Resolved, StoreError> {
        let cache_key = (id.to_string(), version.map(str::to_string));
        if let Some(found) = self.resolved.read().expect("cache lock").get(&cache_key) {
            return Ok(found.clone());
        }
        let module = self.module(id).await?;
        let version = self.version(&module.id, version).await?;
        let found = Arc::new((module, version));
        Self::remember(&self.resolved, cache_key, found.clone());
        Ok(found)
    }

    /// Adds a version, creating the module when the owner has none of that name, in one
    /// transaction. A version label the module already has is a conflict.
    pub async fn create_version(
        &self,
        actor: &Actor,
        module: &NewModule,
        version: &NewVersion,
    ) -> Result<(Module, ModuleVersion), StoreError> {
        let now = now_ms();
        let (_lock, mut tx) = self.begin_audited().await?;
        let created = sqlx::query(
            "INSERT INTO modules (id, owner_id, project_id, owner_type, name, description, timeout_ms, max_memory_pages, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (owner_id, name) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(&module.owner_id)
        .bind(&module.project_id)
        .bind(&module.owner_type)
        .bind(&module.name)
        .bind(module.description.as_deref().unwrap_or(""))
        .bind(module.timeout_ms)
        .bind(module.max_memory_pages)
        .bind(now)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let module_id: String = sqlx::query_scalar("SELECT id FROM modules WHERE owner_id = ? AND name = ?")
            .bind(&module.owner_id)
            .bind(&module.name)
            .fetch_one(&mut *tx)
            .await?;
        if let Some(description) = &module.description {
            sqlx::query("UPDATE modules SET description = ?, updated_at = ? WHERE id = ?")
                .bind(description)
                .bind(now)
                .bind(&module_id)
                .execute(&mut *tx)
                .await?;
        }
        let version_id = uuid::Uuid::new_v4().to_string();
        let inserted = sqlx::query(
            "INSERT INTO module_versions (id, module_id, version, sha256, size_bytes, kind, world, exports, memory_pages, max_memory_pages, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&version_id)
        .bind(&module_id)
        .bind(&version.version)
        .bind(&version.sha256)
        .bind(version.size_bytes)
        .bind(&version.kind)
        .bind(&version.world)
        .bind(version.exports.to_string())
        .bind(version.memory_pages)
        .bind(version.max_memory_pages)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if StoreError::is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("module {} already has version {}", module.name, version.version)));
            }
            other => other?,
        };
        let m = module_row(&mut tx, &module_id).await?;
        let v: ModuleVersion = sqlx::query_as("SELECT * FROM module_versions WHERE id = ?").bind(&version_id).fetch_one(&mut *tx).await?;
        if created {
            append(&mut tx, actor, Change::new("module", &module_id, "create", None, Some(&m))).await?;
        }
        append(&mut tx, actor, Change::new("version", &version_id, "create", None, Some(&v))).await?;
        self.commit_audited(tx).await?;
        Ok((m, v))
    }

    /// Modules matching the filter, by name.
    pub async fn list_modules(&self, filter: &ModuleFilter) -> Result<Vec<Module>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {MODULE_COLUMNS} FROM modules m WHERE 1 = 1"));
        if let Some(t) = &filter.owner_type {
            q.push(" AND m.owner_type = ").push_bind(t);
        }
        if let Some(s) = &filter.status {
            q.push(" AND m.status = ").push_bind(s);
        }
        q.push(" ORDER BY m.name, m.id");
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    /// The module with this id.
    pub async fn module(&self, id: &str) -> Result<Module, StoreError> {
        let row: Option<Module> =
            sqlx::query_as(&format!("SELECT {MODULE_COLUMNS} FROM modules m WHERE m.id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.ok_or_else(|| StoreError::NotFound(format!("module {id}")))
    }

    /// The module with this id, or else those with this name (oldest first): names are
    /// unique per owner only, so the caller picks among them by what it may see.
    pub async fn modules_by_id_or_name(&self, key: &str) -> Result<Vec<Module>, StoreError> {
        if let Some(found) = self.named.read().expect("cache lock").get(key) {
            return Ok(found.clone());
        }
        let found: Vec<Module> = sqlx::query_as(&format!(
            "SELECT {MODULE_COLUMNS} FROM modules m WHERE m.id = ? OR m.name = ? ORDER BY m.id = ? DESC, m.created_at, m.id"
        ))
        .bind(key)
        .bind(key)
        .bind(key)
        .fetch_all(&self.pool)
        .await?;
        Self::remember(&self.named, key.to_string(), found.clone());
        Ok(found)
    }

    /// Applies a patch and returns the module as it now is.
    pub async fn update_module(&self, actor: &Actor, id: &str, patch: &ModulePatch) -> Result<Module, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old = module_row(&mut tx, id).await?;
        let mut q = QueryBuilder::<Sqlite>::new("UPDATE modules SET updated_at = ");
        q.push_bind(now_ms());
        if let Some(v) = &patch.description {
            q.push(", description = ").push_bind(v);
        }
        if let Some(v) = &patch.status {
            q.push(", status = ").push_bind(v);
        }
        if let Some(v) = patch.is_public {
            q.push(", is_public = ").push_bind(v);
        }
        if let Some(v) = &patch.allowed_users {
            q.push(", allowed_users = ").push_bind(serde_json::to_string(v).expect("strings serialize"));
        }
        if let Some(v) = patch.timeout_ms {
            q.push(", timeout_ms = ").push_bind(v);
        }
        if let Some(v) = patch.max_memory_pages {
            q.push(", max_memory_pages = ").push_bind(v);
        }
        if let Some(v) = patch.max_instances {
            q.push(", max_instances = ").push_bind(v);
        }
        if let Some(v) = patch.reuse_instances {
            q.push(", reuse_instances = ").push_bind(v);
        }
        if let Some(v) = patch.http_timeout_ms {
            // 0 goes back to the node's default.
            q.push(", http_timeout_ms = ").push_bind((v > 0).then_some(v));
        }
        if let Some(v) = patch.max_body_bytes {
            // 0 goes back to the default.
            q.push(", max_body_bytes = ").push_bind((v > 0).then_some(v));
        }
        if let Some(v) = &patch.env {
            q.push(", env = ").push_bind(old.env.replaced_by(v.clone()).to_stored_json());
        }
        if let Some(v) = &patch.allow_hosts {
            q.push(", allow_hosts = ").push_bind(serde_json::to_string(v).expect("strings serialize"));
        }
        q.push(" WHERE id = ").push_bind(id);
        q.build().execute(&mut *tx).await?;
        let new = module_row(&mut tx, id).await?;
        append(&mut tx, actor, Change::new("module", id, "update", Some(&old), Some(&new))).await?;
        self.commit_audited(tx).await?;
        Ok(new)
    }

    /// Deletes a module with its versions and executions. Returns the digests no longer
    /// referenced by any version, whose artifacts the caller may delete.
    pub async fn delete_module(&self, actor: &Actor, id: &str) -> Result<Vec<String>, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old = module_row(&mut tx, id).await?;
        let digests: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT sha256 FROM module_versions WHERE module_id = ?").bind(id).fetch_all(&mut *tx).await?;
        sqlx::query("DELETE FROM executions WHERE module_id = ?").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM module_versions WHERE module_id = ?").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM modules WHERE id = ?").bind(id).execute(&mut *tx).await?;
        append(&mut tx, actor, Change::new("module", id, "delete", Some(&old), None)).await?;
        let mut orphaned = Vec::new();
        for sha in digests {
            let still: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM module_versions WHERE sha256 = ?").bind(&sha).fetch_one(&mut *tx).await?;
            if still == 0 {
                orphaned.push(sha);
            }
        }
        self.commit_audited(tx).await?;
        Ok(orphaned)
    }

    /// Versions of a module, newest first.
    pub async fn versions(&self, module_id: &str) -> Result<Vec<ModuleVersion>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM module_versions WHERE module_id = ? ORDER BY created_at DESC, id DESC")
            .bind(module_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// A version by label, or the newest when `version` is `None`.
    pub async fn version(&self, module_id: &str, version: Option<&str>) -> Result<ModuleVersion, StoreError> {
        let row: Option<ModuleVersion> = match version {
            Some(v) => sqlx::query_as("SELECT * FROM module_versions WHERE module_id = ? AND version = ?").bind(module_id).bind(v),
            None => sqlx::query_as("SELECT * FROM module_versions WHERE module_id = ? ORDER BY created_at DESC, id DESC LIMIT 1")
                .bind(module_id),
        }
        .fetch_optional(&self.pool)
        .await?;
        let what = match version {
            Some(v) => format!("version {v} of module {module_id}"),
            None => format!("a version of module {module_id}"),
        };
        row.ok_or(StoreError::NotFound(what))
    }

    /// Every digest some version references.
    pub async fn referenced_digests(&self) -> Result<HashSet<String>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT DISTINCT sha256 FROM module_versions").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().collect())
    }

    /// Records executions in one transaction, numbered in order after every earlier one,
    /// then keeps only the newest `keep` per module. One writer at a time (the recorder).
    pub async fn insert_executions(&self, batch: &[NewExecution], keep: i64) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM executions").fetch_one(&mut *tx).await?;
        // One multi-row INSERT per chunk: 15 columns × 500 rows stays far below SQLite's
        // limit on bound parameters.
        for (n, chunk) in batch.chunks(INSERT_CHUNK).enumerate() {
            let first = last + 1 + (n * INSERT_CHUNK) as i64;
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO executions (seq, id, module_id, version, executor_id, function_name, input, output, \
                 execution_time_us, memory_used_bytes, cache_hit, status, error, node, created_at) ",
            );
            q.push_values((first..).zip(chunk), |mut row, (seq, e)| {
                row.push_bind(seq)
                    .push_bind(&e.id)
                    .push_bind(&e.module_id)
                    .push_bind(&e.version)
                    .push_bind(&e.executor_id)
                    .push_bind(&e.function_name)
                    .push_bind(&e.input)
                    .push_bind(&e.output)
                    .push_bind(e.execution_time_us)
                    .push_bind(e.memory_used_bytes)
                    .push_bind(e.cache_hit)
                    .push_bind(&e.status)
                    .push_bind(&e.error)
                    .push_bind(&e.node)
                    .push_bind(e.created_at);
            });
            q.build().execute(&mut *tx).await?;
        }
        let modules: HashSet<&str> = batch.iter().map(|e| e.module_id.as_str()).collect();
        for module_id in modules {
            // The index on (module_id, seq) finds the oldest row to keep directly.
            sqlx::query(
                "DELETE FROM executions WHERE module_id = ? AND seq <= \
                 (SELECT seq FROM executions WHERE module_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
            )
            .bind(module_id)
            .bind(module_id)
            .bind(keep)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Calls kept in the history of each module that has any: (count, errors and
    /// timeouts, time of the last), by module id.
    pub async fn call_summaries(&self) -> Result<std::collections::HashMap<String, (i64, i64, i64)>, StoreError> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "SELECT module_id, COUNT(*), COALESCE(SUM(status != 'success'), 0), MAX(created_at) FROM executions GROUP BY module_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(|(id, count, errors, last)| (id, (count, errors, last))).collect())
    }

    /// A page of a module's executions, newest first, and the total count; only those
    /// run by `executor` and ending in `status` when given.
    pub async fn executions(
        &self,
        module_id: &str,
        executor: Option<&str>,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Execution>, i64), StoreError> {
        const WHERE: &str = "WHERE module_id = ? AND (?2 IS NULL OR executor_id = ?2) AND (?3 IS NULL OR status = ?3)";
        let rows = sqlx::query_as::<_, Execution>(&format!("SELECT * FROM executions {WHERE} ORDER BY seq DESC LIMIT ?4 OFFSET ?5"))
            .bind(module_id)
            .bind(executor)
            .bind(status)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM executions {WHERE}"))
            .bind(module_id)
            .bind(executor)
            .bind(status)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows, total))
    }

    /// Count, success rate, mean and percentiles of a module's retained executions.
    pub async fn execution_stats(&self, module_id: &str) -> Result<ExecutionStats, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT execution_time_us, status FROM executions WHERE module_id = ?")
            .bind(module_id)
            .fetch_all(&self.pool)
            .await?;
        let total = rows.len();
        let mut times: Vec<i64> = rows.iter().map(|(t, _)| *t).collect();
        times.sort_unstable();
        let ok = rows.iter().filter(|(_, s)| s == "success").count();
        let ms = |us: i64| us as f64 / 1000.0;
        // Nearest-rank percentile.
        let pct = |p: f64| if total == 0 { 0.0 } else { ms(times[((p * total as f64).ceil() as usize).clamp(1, total) - 1]) };
        Ok(ExecutionStats {
            total_executions: total as i64,
            success_rate: if total == 0 { 0.0 } else { ok as f64 / total as f64 },
            avg_execution_time: if total == 0 { 0.0 } else { ms(times.iter().sum::<i64>()) / total as f64 },
            p50: pct(0.50),
            p95: pct(0.95),
            p99: pct(0.99),
        })
    }

    /// Adds a route in `space`, numbered after every earlier one, for the project that
    /// owns its module (`None`: reserved for admins). The space must not overlap a claim of
    /// another owner ([`StoreError::Claimed`]); when no claim of the owner covers it yet,
    /// the route claims it (a named host whole) in the same transaction, `kept` when an
    /// admin made the route.
    pub async fn create_route(
        &self,
        actor: &Actor,
        r: &NewRoute,
        space: &RouteSpace,
        owner: Option<&str>,
        kept: bool,
    ) -> Result<Route, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let (_lock, mut tx) = self.begin_audited().await?;
        let claims = crate::claims::overlapping(&mut tx, space).await?;
        if let Some(taken) = claims.iter().find(|c| c.project_id.as_deref() != owner) {
            return Err(StoreError::Claimed(Box::new(taken.clone())));
        }
        if !claims.iter().any(|c| c.space().covers(space)) {
            crate::claims::insert(&mut tx, actor, &space.claimed(), owner, kept).await?;
        }
        sqlx::query(
            "INSERT INTO routes (id, seq, host, path, match_kind, methods, priority, pop_selector, module_id, version, created_at) \
             VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM routes), ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&r.host)
        .bind(&r.path)
        .bind(&r.match_kind)
        .bind(serde_json::to_string(&r.methods).expect("strings serialize"))
        .bind(r.priority)
        .bind(&r.pop_selector)
        .bind(&r.module_id)
        .bind(&r.version)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let route: Route = sqlx::query_as("SELECT * FROM routes WHERE id = ?").bind(&id).fetch_one(&mut *tx).await?;
        append(&mut tx, actor, Change::new("route", &id, "create", None, Some(&route))).await?;
        self.commit_audited(tx).await?;
        Ok(route)
    }

    /// Every route, in creation order.
    pub async fn routes(&self) -> Result<Vec<Route>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM routes ORDER BY seq").fetch_all(&self.pool).await?)
    }

    /// One route.
    pub async fn route(&self, id: &str) -> Result<Route, StoreError> {
        let row: Option<Route> = sqlx::query_as("SELECT * FROM routes WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.ok_or_else(|| StoreError::NotFound(format!("route {id}")))
    }

    /// Deletes a route.
    pub async fn delete_route(&self, actor: &Actor, id: &str) -> Result<(), StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old: Option<Route> = sqlx::query_as("SELECT * FROM routes WHERE id = ?").bind(id).fetch_optional(&mut *tx).await?;
        let old = old.ok_or_else(|| StoreError::NotFound(format!("route {id}")))?;
        sqlx::query("DELETE FROM routes WHERE id = ?").bind(id).execute(&mut *tx).await?;
        append(&mut tx, actor, Change::new("route", id, "delete", Some(&old), None)).await?;
        self.commit_audited(tx).await?;
        Ok(())
    }
}

/// A module read inside a transaction.
async fn module_row(conn: &mut sqlx::SqliteConnection, id: &str) -> Result<Module, StoreError> {
    let row: Option<Module> =
        sqlx::query_as(&format!("SELECT {MODULE_COLUMNS} FROM modules m WHERE m.id = ?")).bind(id).fetch_optional(&mut *conn).await?;
    row.ok_or_else(|| StoreError::NotFound(format!("module {id}")))
}
