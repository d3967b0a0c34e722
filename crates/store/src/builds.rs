//! Builds from source: the queue `POST /api/v1/builds` fills and build workers take from,
//! each build's source archive (kept until it ends), its log, and how it ended.

use serde::{Deserialize, Serialize};

use crate::database::Database;
use crate::error::StoreError;
use crate::time::{now_ms, rfc3339, rfc3339_opt};

/// Most log bytes kept per build; the rest is cut, saying so once.
pub const MAX_BUILD_LOG_BYTES: i64 = 1024 * 1024;

/// How a project is built, chosen from its files (Cargo.toml → Rust, asconfig.json →
/// AssemblyScript, package.json → JavaScript/TypeScript).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum Toolchain {
    /// `cargo build --release --target wasm32-wasip2`.
    Rust,
    /// npm and the project's `build` script (ComponentizeJS, esbuild…).
    Js,
    /// npm and the AssemblyScript compiler.
    Assemblyscript,
}

impl Toolchain {
    /// Every toolchain.
    pub const ALL: [Toolchain; 3] = [Toolchain::Rust, Toolchain::Js, Toolchain::Assemblyscript];

    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Toolchain::Rust => "rust",
            Toolchain::Js => "js",
            Toolchain::Assemblyscript => "assemblyscript",
        }
    }

    /// The toolchain of this name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Where a build is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[sqlx(type_name = "TEXT", rename_all = "lowercase")]
pub enum BuildStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is building it.
    Running,
    /// It made a module version.
    Succeeded,
    /// It ended without one (`error` says why).
    Failed,
}

impl BuildStatus {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Queued => "queued",
            BuildStatus::Running => "running",
            BuildStatus::Succeeded => "succeeded",
            BuildStatus::Failed => "failed",
        }
    }

    /// Whether the build has ended.
    pub fn is_done(self) -> bool {
        matches!(self, BuildStatus::Succeeded | BuildStatus::Failed)
    }
}

/// A build as the API shows it (never its archive).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Build {
    /// UUID.
    pub id: String,
    /// The user the version is made for (who sent the source).
    pub owner_id: String,
    /// The module's project.
    pub project_id: String,
    /// The module's name.
    pub name: String,
    /// The version label it makes.
    pub version: String,
    /// The module's new description, if given.
    pub description: Option<String>,
    /// The class asked for a new module.
    pub owner_type: Option<String>,
    /// How it is built.
    pub toolchain: Toolchain,
    /// Where it is.
    pub status: BuildStatus,
    /// SHA-256 of the source archive.
    pub archive_sha256: String,
    /// Size of the source archive.
    pub archive_bytes: i64,
    /// Why it failed.
    pub error: Option<String>,
    /// The module it added a version to, once it succeeded.
    pub module_id: Option<String>,
    /// The worker that took it.
    pub worker: Option<String>,
    /// Bytes of log so far.
    pub log_bytes: i64,
    /// When it was queued.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// When a worker took it.
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<i64>,
    /// When it ended.
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<i64>,
}

/// A build to queue.
pub struct NewBuild {
    /// The user the version is made for.
    pub owner_id: String,
    /// The module's project.
    pub project_id: String,
    /// The module's name.
    pub name: String,
    /// The version label.
    pub version: String,
    /// The module's new description.
    pub description: Option<String>,
    /// The class asked for a new module.
    pub owner_type: Option<String>,
    /// How it is built.
    pub toolchain: Toolchain,
    /// The source, a gzipped tar.
    pub archive: Vec<u8>,
    /// Its SHA-256.
    pub archive_sha256: String,
}

/// How a build ended.
pub enum BuildEnd {
    /// It added a version to this module.
    Succeeded {
        /// The module's id.
        module_id: String,
    },
    /// It failed, for this reason.
    Failed {
        /// What went wrong, for people.
        error: String,
    },
}

const BUILD_COLUMNS: &str = "id, owner_id, project_id, name, version, description, owner_type, toolchain, status, archive_sha256, archive_bytes, \
    error, module_id, worker, log_bytes, created_at, started_at, finished_at";

impl Database {
    /// Queues a build.
    pub async fn add_build(&self, new: &NewBuild) -> Result<Build, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO builds (id, owner_id, project_id, name, version, description, owner_type, toolchain, status, archive, \
             archive_sha256, archive_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
        )
        .bind(&id)
        .bind(&new.owner_id)
        .bind(&new.project_id)
        .bind(&new.name)
        .bind(&new.version)
        .bind(&new.description)
        .bind(&new.owner_type)
        .bind(new.toolchain)
        .bind(&new.archive)
        .bind(&new.archive_sha256)
        .bind(new.archive.len() as i64)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.build(&id).await
    }

    /// One build.
    pub async fn build(&self, id: &str) -> Result<Build, StoreError> {
        sqlx::query_as(&format!("SELECT {BUILD_COLUMNS} FROM builds WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("build {id}")))
    }

    /// The newest `limit` builds, of one user or of everyone.
    pub async fn builds(&self, owner_id: Option<&str>, limit: i64) -> Result<Vec<Build>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {BUILD_COLUMNS} FROM builds WHERE (? IS NULL OR owner_id = ?) ORDER BY created_at DESC, id DESC LIMIT ?"
        ))
        .bind(owner_id)
        .bind(owner_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Whether a queued or running build already makes this version of this module.
    pub async fn build_pending(&self, project_id: &str, name: &str, version: &str) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM builds WHERE project_id = ? AND name = ? AND version = ? AND status IN ('queued', 'running')",
        )
        .bind(project_id)
        .bind(name)
        .bind(version)
        .fetch_one(&self.pool)
        .await?;
        Ok(n > 0)
    }

    /// Gives the oldest queued build to `worker` (now running), if there is one.
    pub async fn claim_build(&self, worker: &str) -> Result<Option<Build>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "UPDATE builds SET status = 'running', worker = ?, started_at = ? \
             WHERE id = (SELECT id FROM builds WHERE status = 'queued' ORDER BY created_at, id LIMIT 1) RETURNING {BUILD_COLUMNS}"
        ))
        .bind(worker)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The source archive of a build that has not ended.
    pub async fn build_archive(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let archive: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT archive FROM builds WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        match archive {
            Some(Some(bytes)) => Ok(bytes),
            Some(None) => Err(StoreError::Conflict(format!("build {id} has ended; its source is no longer kept"))),
            None => Err(StoreError::NotFound(format!("build {id}"))),
        }
    }

    /// Appends to a running build's log, up to [`MAX_BUILD_LOG_BYTES`] in all: past it the
    /// text is cut, and the log says so once. Returns the bytes kept.
    pub async fn append_build_log(&self, id: &str, text: &str) -> Result<usize, StoreError> {
        let _write = self.writes.lock().await;
        let mut tx = self.pool.begin().await?;
        let row: Option<(BuildStatus, i64)> =
            sqlx::query_as("SELECT status, log_bytes FROM builds WHERE id = ?").bind(id).fetch_optional(&mut *tx).await?;
        let Some((status, used)) = row else { return Err(StoreError::NotFound(format!("build {id}"))) };
        if status != BuildStatus::Running {
            return Err(StoreError::Conflict(format!("build {id} is not running")));
        }
        let room = (MAX_BUILD_LOG_BYTES - used).max(0) as usize;
        if room == 0 || text.is_empty() {
            return Ok(0);
        }
        let mut kept = text.to_string();
        if kept.len() > room {
            let mut cut = room;
            while !kept.is_char_boundary(cut) {
                cut -= 1;
            }
            kept.truncate(cut);
            kept.push_str(&format!("\n[log cut: a build keeps at most {} KiB of log]\n", MAX_BUILD_LOG_BYTES / 1024));
        }
        let seq: i64 =
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM build_logs WHERE build_id = ?").bind(id).fetch_one(&mut *tx).await?;
        sqlx::query("INSERT INTO build_logs (build_id, seq, chunk) VALUES (?, ?, ?)")
            .bind(id)
            .bind(seq)
            .bind(&kept)
            .execute(&mut *tx)
            .await?;
        // A cut log counts as full, so nothing is added after the note.
        let used = if kept.len() > room { MAX_BUILD_LOG_BYTES } else { used + kept.len() as i64 };
        sqlx::query("UPDATE builds SET log_bytes = ? WHERE id = ?").bind(used).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(kept.len())
    }

    /// The log chunks after chunk number `after`, with their numbers.
    pub async fn build_log(&self, id: &str, after: i64) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT seq, chunk FROM build_logs WHERE build_id = ? AND seq > ? ORDER BY seq")
            .bind(id)
            .bind(after)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Ends a running build and forgets its archive; a build that is not running is left
    /// as it is ([`StoreError::Conflict`]).
    pub async fn finish_build(&self, id: &str, end: &BuildEnd) -> Result<Build, StoreError> {
        let (status, module_id, error) = match end {
            BuildEnd::Succeeded { module_id } => (BuildStatus::Succeeded, Some(module_id.as_str()), None),
            BuildEnd::Failed { error } => (BuildStatus::Failed, None, Some(error.as_str())),
        };
        let done = sqlx::query(
            "UPDATE builds SET status = ?, module_id = ?, error = ?, archive = NULL, finished_at = ? WHERE id = ? AND status = 'running'",
        )
        .bind(status)
        .bind(module_id)
        .bind(error)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            let build = self.build(id).await?;
            return Err(StoreError::Conflict(format!("build {id} is {}, not running", build.status.as_str())));
        }
        self.build(id).await
    }

    /// Fails the running builds of `worker`, and any started before `started_before` (ms):
    /// their worker stopped without ending them. Returns how many.
    pub async fn fail_lost_builds(&self, worker: &str, started_before: i64, error: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE builds SET status = 'failed', error = ?, archive = NULL, finished_at = ? \
             WHERE status = 'running' AND (worker = ? OR started_at < ?)",
        )
        .bind(error)
        .bind(now_ms())
        .bind(worker)
        .bind(started_before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
