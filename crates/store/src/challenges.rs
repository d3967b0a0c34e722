//! Open challenges of hosts a project wants to prove it controls (DNS TXT records).

use serde::Serialize;

use crate::{Database, StoreError, now_ms};

/// A challenge, as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostChallenge {
    /// Its id.
    pub id: String,
    /// The host to prove.
    pub host: String,
    /// The project the host becomes a claim of.
    pub project_id: String,
    /// The random token the TXT record must hold.
    pub token: String,
    /// The user who asked.
    pub created_by: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

impl Database {
    /// The open challenge of `host` for `project_id`, made (with a new random `token`) if
    /// there is none.
    pub async fn host_challenge(&self, host: &str, project_id: &str, user_id: &str, token: &str) -> Result<HostChallenge, StoreError> {
        sqlx::query(
            "INSERT INTO host_challenges (id, host, project_id, token, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (host, project_id) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(host)
        .bind(project_id)
        .bind(token)
        .bind(user_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(sqlx::query_as("SELECT * FROM host_challenges WHERE host = ? AND project_id = ?")
            .bind(host)
            .bind(project_id)
            .fetch_one(&self.pool)
            .await?)
    }

    /// One challenge.
    pub async fn challenge(&self, id: &str) -> Result<HostChallenge, StoreError> {
        let row: Option<HostChallenge> =
            sqlx::query_as("SELECT * FROM host_challenges WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.ok_or_else(|| StoreError::NotFound(format!("challenge {id}")))
    }

    /// Removes a challenge (it succeeded).
    pub async fn delete_challenge(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM host_challenges WHERE id = ?").bind(id).execute(&self.pool).await?;
        Ok(())
    }
}
