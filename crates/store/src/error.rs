//! Store errors, sorted by what the API should answer.

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist (HTTP 404).
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness rule was broken (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The artifact store failed.
    #[error("artifact store: {0}")]
    Artifacts(#[from] object_store::Error),
    /// The route or claim would overlap this claim of another owner (HTTP 409).
    #[error("that part of the address space is claimed ({} {})", .0.host, .0.path_prefix)]
    Claimed(Box<crate::claims::RouteClaim>),
    /// A file the store keeps beside the database could not be read or written.
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    /// True when the database reported a uniqueness violation.
    pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(d) if d.is_unique_violation())
    }
}
