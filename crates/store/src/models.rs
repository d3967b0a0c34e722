//! Rows as the rest of edgefn sees them. JSON field names are camelCase (DESIGN §3).

use serde::Serialize;
use serde_json::Value;

use crate::time::{rfc3339, rfc3339_opt};

/// A user.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// UUID.
    pub id: String,
    /// Unique login name.
    pub name: String,
    /// `admin` or `user`.
    pub role: String,
    /// A disabled user's credentials are refused.
    pub disabled: bool,
    /// Subject (`sub`) of the JWTs that name this user, when it came from an identity provider.
    pub external_id: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

impl User {
    /// Whether this user is a platform admin.
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// An API token as listed: never its secret or hash.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiToken {
    /// UUID.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// What it is for.
    pub name: String,
    /// Creation time.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// After this (ms since the epoch) the token is refused.
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<i64>,
    /// When it was revoked.
    #[serde(serialize_with = "rfc3339_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<i64>,
}

/// A token with the user it names: what authentication looks at.
#[derive(Debug, Clone)]
pub struct TokenOwner {
    /// The token.
    pub token: ApiToken,
    /// Its user.
    pub user: User,
}

/// A project: modules and the users who work on them.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    /// UUID.
    pub id: String,
    /// Unique name; a personal project is `~<user name>`.
    pub name: String,
    /// The user whose personal project this is.
    pub personal_of: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A member of a project.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The project.
    pub project_id: String,
    /// The user.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// `owner`, `developer` or `viewer`.
    pub role: String,
    /// When they joined.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// UUID.
    pub id: String,
    /// Who did it (`None` for edgefn itself).
    pub actor_id: Option<String>,
    /// The actor's name at the time.
    pub actor_name: String,
    /// `user`, `token`, `project`, `member`, `module`, `version` or `route`.
    pub resource_type: String,
    /// Id of the resource.
    pub resource_id: String,
    /// `create`, `update`, `delete`, `disable`, `revoke`, …
    pub operation: String,
    /// The resource before, as JSON text.
    pub old_value: Option<String>,
    /// The resource after, as JSON text.
    pub new_value: Option<String>,
    /// When.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Hash of the entry before (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 of this entry with `prev_hash`.
    pub hash: String,
}

/// Who makes a change, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// User id; `None` for edgefn itself.
    pub id: Option<String>,
    /// Name.
    pub name: String,
}

impl Actor {
    /// edgefn itself (first start, bundled examples).
    pub fn system() -> Self {
        Self { id: None, name: "edgefn".into() }
    }
}

impl From<&User> for Actor {
    fn from(user: &User) -> Self {
        Self { id: Some(user.id.clone()), name: user.name.clone() }
    }
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this actor (user id).
    pub actor_id: Option<String>,
    /// Only this resource type.
    pub resource_type: Option<String>,
    /// Only this resource.
    pub resource_id: Option<String>,
    /// Only this operation.
    pub operation: Option<String>,
    /// Only entries after this seq.
    pub after: Option<i64>,
    /// Only entries before this seq.
    pub before: Option<i64>,
    /// Newest first (else oldest first).
    pub newest_first: bool,
    /// Most entries returned.
    pub limit: i64,
}

/// A module: a name with versions, settings and access rules.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Module {
    /// UUID.
    pub id: String,
    /// Owning user.
    pub owner_id: String,
    /// The project it belongs to.
    pub project_id: Option<String>,
    /// `system`, `admin` or `user`.
    pub owner_type: String,
    /// Name, unique per owner.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `uploading`, `active`, `disabled` or `error`.
    pub status: String,
    /// Runnable by everyone.
    pub is_public: bool,
    /// Users allowed to run it besides the owner.
    #[sqlx(json)]
    pub allowed_users: Vec<String>,
    /// Free-form JSON.
    #[sqlx(json)]
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// Longest a call may run.
    pub timeout_ms: i64,
    /// Most 64 KiB pages of linear memory a call may use.
    pub max_memory_pages: i64,
    /// HTTP requests the function runs at once on a node (its instance pool's maximum).
    pub max_instances: i64,
    /// Whether an instance serves more than one HTTP request (state then persists).
    pub reuse_instances: bool,
    /// Longest an HTTP request may run, when not the node's default (500 ms).
    pub http_timeout_ms: Option<i64>,
    /// Most bytes of an HTTP request or response body, when not the default (100 MiB).
    pub max_body_bytes: Option<i64>,
    /// Configuration values the function reads with `env_get`: secret, shown as
    /// fingerprints only.
    #[sqlx(json)]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub env: crate::env::Env,
    /// Hosts `http_fetch` may reach: exact names or `*.example.com`.
    #[sqlx(json)]
    #[schema(value_type = Vec<String>)]
    pub allow_hosts: std::sync::Arc<Vec<String>>,
    /// The newest version's label.
    pub latest_version: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Last change.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: i64,
}

/// One uploaded version of a module.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModuleVersion {
    /// UUID.
    pub id: String,
    /// The module.
    pub module_id: String,
    /// Label, unique per module (`1.2.0`).
    pub version: String,
    /// Hex SHA-256 of the bytes; the artifact's address.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// `core` or `component`.
    pub kind: String,
    /// For components, the world.
    pub world: Option<String>,
    /// Exported functions with signatures.
    #[sqlx(json)]
    #[schema(value_type = Vec<Object>)]
    pub exports: Value,
    /// Initial memory pages (core modules).
    pub memory_pages: Option<i64>,
    /// Declared maximum memory pages (core modules).
    pub max_memory_pages: Option<i64>,
    /// Upload time.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// What is needed to create a module (when the name is new) and its version.
#[derive(Debug, Clone)]
pub struct NewModule {
    /// Owning user.
    pub owner_id: String,
    /// Project of a new module.
    pub project_id: String,
    /// `system`, `admin` or `user`.
    pub owner_type: String,
    /// Module name.
    pub name: String,
    /// Description; replaces the module's when given.
    pub description: Option<String>,
    /// Default call timeout for a new module.
    pub timeout_ms: i64,
    /// Default memory cap for a new module.
    pub max_memory_pages: i64,
}

/// A version to add.
#[derive(Debug, Clone)]
pub struct NewVersion {
    /// Label.
    pub version: String,
    /// Hex SHA-256.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: i64,
    /// `core` or `component`.
    pub kind: String,
    /// World of a component.
    pub world: Option<String>,
    /// Exports with signatures.
    pub exports: Value,
    /// Initial memory pages.
    pub memory_pages: Option<i64>,
    /// Declared maximum memory pages.
    pub max_memory_pages: Option<i64>,
}

/// Filters for listing modules.
#[derive(Debug, Clone, Default)]
pub struct ModuleFilter {
    /// Only this class.
    pub owner_type: Option<String>,
    /// Only this status.
    pub status: Option<String>,
}

/// Changes to a module; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct ModulePatch {
    /// New description.
    pub description: Option<String>,
    /// New status.
    pub status: Option<String>,
    /// New public flag.
    pub is_public: Option<bool>,
    /// New list of users (ids) allowed to run it.
    pub allowed_users: Option<Vec<String>>,
    /// New timeout.
    pub timeout_ms: Option<i64>,
    /// New memory cap.
    pub max_memory_pages: Option<i64>,
    /// New concurrency limit.
    pub max_instances: Option<i64>,
    /// New instance reuse flag.
    pub reuse_instances: Option<bool>,
    /// New HTTP timeout; 0 goes back to the node's default.
    pub http_timeout_ms: Option<i64>,
    /// New body limit; 0 goes back to the default.
    pub max_body_bytes: Option<i64>,
    /// New configuration values (replacing all).
    pub env: Option<std::collections::BTreeMap<String, String>>,
    /// New outbound allow-list (replacing it).
    pub allow_hosts: Option<Vec<String>>,
}

/// One recorded call.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// UUID.
    pub id: String,
    /// Recording order (assigned when written; 0 before).
    #[serde(skip)]
    pub seq: i64,
    /// The module.
    pub module_id: String,
    /// The version that ran.
    pub version: String,
    /// Who called.
    pub executor_id: Option<String>,
    /// The function.
    pub function_name: String,
    /// Arguments as JSON text, capped in size.
    pub input: String,
    /// Result as JSON text, capped in size.
    pub output: Option<String>,
    /// Wall-clock time in microseconds.
    pub execution_time_us: i64,
    /// Peak linear memory.
    pub memory_used_bytes: i64,
    /// No compilation was needed.
    pub cache_hit: bool,
    /// `success`, `error` or `timeout`.
    pub status: String,
    /// Error message.
    pub error: Option<String>,
    /// Node that ran it (edge nodes; empty for the control plane).
    pub node: Option<String>,
    /// When it ran.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A call to record (the id and time are filled in by the caller).
pub type NewExecution = Execution;

/// Aggregates over a module's retained executions.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStats {
    /// Number of executions.
    pub total_executions: i64,
    /// Successful share, 0..1.
    pub success_rate: f64,
    /// Mean execution time in milliseconds.
    pub avg_execution_time: f64,
    /// Median execution time (ms).
    pub p50: f64,
    /// 95th percentile (ms).
    pub p95: f64,
    /// 99th percentile (ms).
    pub p99: f64,
}

/// An HTTP route to a module.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// UUID.
    pub id: String,
    /// Creation order (a routing tie-break).
    #[serde(skip)]
    pub seq: i64,
    /// `example.com`, `*.example.com`, or `None` for any host.
    pub host: Option<String>,
    /// Path pattern.
    pub path: String,
    /// `exact`, `prefix` or `regex`.
    #[serde(rename = "match")]
    pub match_kind: String,
    /// Allowed methods; empty means any.
    #[sqlx(json)]
    pub methods: Vec<String>,
    /// Higher wins.
    pub priority: i64,
    /// POP names or `prefix*` patterns, comma-separated.
    pub pop_selector: Option<String>,
    /// Target module.
    pub module_id: String,
    /// Pinned version; `None` follows the newest.
    pub version: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

/// A route to create.
#[derive(Debug, Clone)]
pub struct NewRoute {
    /// Host pattern.
    pub host: Option<String>,
    /// Path pattern.
    pub path: String,
    /// `exact`, `prefix` or `regex`.
    pub match_kind: String,
    /// Allowed methods.
    pub methods: Vec<String>,
    /// Priority.
    pub priority: i64,
    /// POP selector.
    pub pop_selector: Option<String>,
    /// Target module.
    pub module_id: String,
    /// Pinned version.
    pub version: Option<String>,
}
