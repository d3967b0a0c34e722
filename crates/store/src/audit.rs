//! The audit log: every change to users, tokens, projects, modules and routes, written in
//! the same transaction as the change. Append-only and hash-chained: each entry's hash
//! covers its fields and the previous entry's hash, so editing, reordering or deleting a
//! row breaks the chain at that row, which [`Database::verify_audit`] reports.
//!
//! Deleting the newest rows leaves a shorter chain that is valid in itself; to catch that,
//! the head (`seq` and hash) is also written to a witness file outside the database after
//! every audited change ([`Database::witness_audit_head`]), and verification checks that
//! the entry it names is still there, unchanged.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::database::Database;
use crate::error::StoreError;
use crate::models::{Actor, AuditEntry, AuditFilter};
use crate::time::now_ms;

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A change to record.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    pub resource_type: &'static str,
    pub resource_id: String,
    pub operation: &'static str,
    pub old: Option<Value>,
    pub new: Option<Value>,
}

impl Change {
    /// A change of `resource_type` `resource_id` from `old` to `new` (either may be absent).
    pub fn new<T: Serialize>(
        resource_type: &'static str,
        resource_id: &str,
        operation: &'static str,
        old: Option<&T>,
        new: Option<&T>,
    ) -> Self {
        let json = |v: Option<&T>| v.map(|v| serde_json::to_value(v).expect("rows serialize"));
        Self { resource_type, resource_id: resource_id.to_string(), operation, old: json(old), new: json(new) }
    }
}

/// The hash of an entry: SHA-256 of the JSON array of its fields, `prev_hash` last.
pub fn entry_hash(e: &AuditEntry) -> String {
    let fields = serde_json::json!([
        e.seq,
        e.id,
        e.actor_id,
        e.actor_name,
        e.resource_type,
        e.resource_id,
        e.operation,
        e.old_value,
        e.new_value,
        e.created_at,
        e.prev_hash
    ]);
    hex::encode(Sha256::digest(fields.to_string().as_bytes()))
}

/// Appends an entry inside the caller's transaction, and a change-log row when nodes
/// serve what changed (one revision per change, in the same transaction). Callers hold
/// the database's write lock ([`Database::begin_audited`]), so the chain never forks.
pub(crate) async fn append(conn: &mut SqliteConnection, actor: &Actor, change: Change) -> Result<(), StoreError> {
    let last: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
    let (seq, prev_hash) = last.map_or((1, GENESIS_HASH.to_string()), |(s, h)| (s + 1, h));
    let mut entry = AuditEntry {
        seq,
        id: uuid::Uuid::new_v4().to_string(),
        actor_id: actor.id.clone(),
        actor_name: actor.name.clone(),
        resource_type: change.resource_type.into(),
        resource_id: change.resource_id,
        operation: change.operation.into(),
        old_value: change.old.map(|v| v.to_string()),
        new_value: change.new.map(|v| v.to_string()),
        created_at: now_ms(),
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry_hash(&entry);
    sqlx::query(
        "INSERT INTO audit_log (seq, id, actor_id, actor_name, resource_type, resource_id, operation, old_value, new_value, created_at, prev_hash, hash) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(entry.seq)
    .bind(&entry.id)
    .bind(&entry.actor_id)
    .bind(&entry.actor_name)
    .bind(&entry.resource_type)
    .bind(&entry.resource_id)
    .bind(&entry.operation)
    .bind(&entry.old_value)
    .bind(&entry.new_value)
    .bind(entry.created_at)
    .bind(&entry.prev_hash)
    .bind(&entry.hash)
    .execute(&mut *conn)
    .await?;
    if crate::nodes::nodes_serve(&entry.resource_type) {
        crate::nodes::record_change(conn, &entry.resource_type, &entry.resource_id).await?;
    }
    Ok(())
}

/// What [`Database::verify_audit`] found.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditVerdict {
    /// Entries read.
    pub entries: i64,
    /// `seq` and hash of the newest entry: keep it elsewhere to detect a deleted tail.
    pub head_seq: i64,
    /// Hash of the newest entry.
    pub head_hash: String,
    /// The first entry that does not fit the chain, and why; `None` when all do.
    pub first_bad: Option<BadEntry>,
}

/// An entry that breaks the chain.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BadEntry {
    /// Its position (as stored).
    pub seq: i64,
    /// Its id.
    pub id: String,
    /// What is wrong.
    pub reason: String,
}

/// Writes the head of the audit log to `path` (`<seq> <hash>`, mode 0600), atomically.
pub(crate) async fn write_witness(pool: &sqlx::SqlitePool, path: &std::path::Path) -> Result<(), StoreError> {
    let head: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(pool).await?;
    let Some((seq, hash)) = head else { return Ok(()) };
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        writeln!(f, "{seq} {hash}")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| StoreError::Internal(format!("writing the audit witness {}: {e}", path.display())))
}

/// The head a witness file names, if the file exists.
fn read_witness(path: &std::path::Path) -> Result<Option<(i64, String)>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::Internal(format!("reading the audit witness {}: {e}", path.display()))),
    };
    let parsed = text.trim().split_once(' ').and_then(|(seq, hash)| Some((seq.parse().ok()?, hash.to_string())));
    parsed.map(Some).ok_or_else(|| StoreError::Internal(format!("the audit witness {} is not `<seq> <hash>`", path.display())))
}

impl Database {
    /// Keeps the audit log's head in `path` from now on, and checks it in
    /// [`Database::verify_audit`]. A missing file is created from the current head.
    pub async fn witness_audit_head(mut self, path: std::path::PathBuf) -> Result<Self, StoreError> {
        if read_witness(&path)?.is_none() {
            write_witness(&self.pool, &path).await?;
        }
        self.audit_witness = Some(std::sync::Arc::new(path));
        Ok(self)
    }

    /// Entries matching the filter, oldest first.
    pub async fn audit(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM audit_log WHERE 1 = 1");
        if let Some(v) = &f.actor_id {
            q.push(" AND actor_id = ").push_bind(v);
        }
        if let Some(v) = &f.resource_type {
            q.push(" AND resource_type = ").push_bind(v);
        }
        if let Some(v) = &f.resource_id {
            q.push(" AND resource_id = ").push_bind(v);
        }
        if let Some(v) = &f.operation {
            q.push(" AND operation = ").push_bind(v);
        }
        if let Some(v) = f.after {
            q.push(" AND seq > ").push_bind(v);
        }
        if let Some(v) = f.before {
            q.push(" AND seq < ").push_bind(v);
        }
        q.push(if f.newest_first { " ORDER BY seq DESC LIMIT " } else { " ORDER BY seq LIMIT " }).push_bind(f.limit);
        Ok(q.build_query_as().fetch_all(&self.pool).await?)
    }

    /// Walks the whole chain: numbering from 1 without gaps, each `prev_hash` equal to the
    /// hash before, each hash recomputed from the fields; then checks that the entry the
    /// witness file names is there with the same hash. Stops at the first bad entry.
    pub async fn verify_audit(&self) -> Result<AuditVerdict, StoreError> {
        use futures::TryStreamExt;
        let witness = match &self.audit_witness {
            Some(path) => read_witness(path)?,
            None => None,
        };
        let mut witnessed = None;
        let mut rows = sqlx::query_as::<_, AuditEntry>("SELECT * FROM audit_log ORDER BY seq").fetch(&self.pool);
        let mut verdict = AuditVerdict { entries: 0, head_seq: 0, head_hash: GENESIS_HASH.into(), first_bad: None };
        while let Some(e) = rows.try_next().await? {
            let reason = if e.seq != verdict.head_seq + 1 {
                Some(format!("expected entry {} here, found {} (an entry was deleted or renumbered)", verdict.head_seq + 1, e.seq))
            } else if e.prev_hash != verdict.head_hash {
                Some("its prev_hash is not the hash of the entry before (entries were deleted, inserted or reordered)".to_string())
            } else if entry_hash(&e) != e.hash {
                Some("its contents do not match its hash (the entry was edited)".to_string())
            } else {
                None
            };
            if let Some(reason) = reason {
                verdict.first_bad = Some(BadEntry { seq: e.seq, id: e.id, reason });
                break;
            }
            if witness.as_ref().is_some_and(|(seq, _)| *seq == e.seq) {
                witnessed = Some((e.id.clone(), e.hash.clone()));
            }
            verdict.entries += 1;
            verdict.head_seq = e.seq;
            verdict.head_hash = e.hash;
        }
        if let (None, Some((seq, hash))) = (&verdict.first_bad, witness) {
            let reason = match witnessed {
                None => Some((
                    String::new(),
                    format!("the log ends at entry {} but entry {seq} was written: entries at its end were deleted", verdict.head_seq),
                )),
                Some((id, found)) if found != hash => {
                    Some((id, format!("entry {seq} is not the one written (its hash was {hash}): the log was rewritten")))
                }
                Some(_) => None,
            };
            if let Some((id, reason)) = reason {
                verdict.first_bad = Some(BadEntry { seq, id, reason });
            }
        }
        Ok(verdict)
    }
}
