//! Users, API tokens, projects and their members. Every change is audited in its own
//! transaction; token secrets never reach this module, only their hashes.

use std::collections::HashMap;

use crate::audit::{Change, append};
use crate::database::Database;
use crate::error::StoreError;
use crate::models::{Actor, ApiToken, Member, Project, TokenOwner, User};
use crate::time::now_ms;

/// A member with its user's name; callers add the WHERE clause.
const MEMBER_SELECT: &str =
    "SELECT m.project_id, m.user_id, u.name AS user_name, m.role, m.created_at FROM project_members m JOIN users u ON u.id = m.user_id";

/// Columns of a token as listed.
const TOKEN_COLUMNS: &str = "id, user_id, name, created_at, expires_at, revoked_at";

impl Database {
    /// Creates a user with a personal project it owns (`~<name>`).
    pub async fn create_user(&self, actor: &Actor, name: &str, role: &str, external_id: Option<&str>) -> Result<User, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let user = User {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            role: role.into(),
            disabled: false,
            external_id: external_id.map(str::to_string),
            created_at: now_ms(),
        };
        let inserted = sqlx::query("INSERT INTO users (id, name, role, disabled, external_id, created_at) VALUES (?, ?, ?, FALSE, ?, ?)")
            .bind(&user.id)
            .bind(&user.name)
            .bind(&user.role)
            .bind(&user.external_id)
            .bind(user.created_at)
            .execute(&mut *tx)
            .await;
        match inserted {
            Err(e) if StoreError::is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!("a user named {name} already exists")));
            }
            other => other?,
        };
        append(&mut tx, actor, Change::new("user", &user.id, "create", None, Some(&user))).await?;
        let project = Project {
            id: uuid::Uuid::new_v4().to_string(),
            name: format!("~{name}"),
            personal_of: Some(user.id.clone()),
            created_at: user.created_at,
        };
        insert_project(&mut tx, actor, &project, &user.id).await?;
        self.commit_audited(tx).await?;
        Ok(user)
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users ORDER BY name").fetch_all(&self.pool).await?)
    }

    /// The user with this id, or else this name.
    pub async fn user(&self, key: &str) -> Result<User, StoreError> {
        let row: Option<User> = sqlx::query_as("SELECT * FROM users WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1")
            .bind(key)
            .bind(key)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("user {key}")))
    }

    /// The user an identity provider knows by subject `sub`.
    pub async fn user_by_external_id(&self, sub: &str) -> Result<Option<User>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM users WHERE external_id = ?").bind(sub).fetch_optional(&self.pool).await?)
    }

    /// Changes a user's role and/or disabled flag.
    pub async fn update_user(&self, actor: &Actor, id: &str, role: Option<&str>, disabled: Option<bool>) -> Result<User, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old: Option<User> = sqlx::query_as("SELECT * FROM users WHERE id = ?").bind(id).fetch_optional(&mut *tx).await?;
        let old = old.ok_or_else(|| StoreError::NotFound(format!("user {id}")))?;
        let new = User { role: role.map_or(old.role.clone(), str::to_string), disabled: disabled.unwrap_or(old.disabled), ..old.clone() };
        if new == old {
            return Ok(old);
        }
        sqlx::query("UPDATE users SET role = ?, disabled = ? WHERE id = ?")
            .bind(&new.role)
            .bind(new.disabled)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let operation = match (old.disabled, new.disabled) {
            (false, true) => "disable",
            (true, false) => "enable",
            _ => "update",
        };
        append(&mut tx, actor, Change::new("user", id, operation, Some(&old), Some(&new))).await?;
        self.commit_audited(tx).await?;
        Ok(new)
    }

    /// Stores a new token's hash for `user_id`.
    pub async fn create_token(
        &self,
        actor: &Actor,
        user_id: &str,
        name: &str,
        hash: &str,
        expires_at: Option<i64>,
    ) -> Result<ApiToken, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let token = ApiToken {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.into(),
            name: name.into(),
            created_at: now_ms(),
            expires_at,
            revoked_at: None,
        };
        sqlx::query("INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&token.id)
            .bind(&token.user_id)
            .bind(&token.name)
            .bind(hash)
            .bind(token.created_at)
            .bind(token.expires_at)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, actor, Change::new("token", &token.id, "create", None, Some(&token))).await?;
        self.commit_audited(tx).await?;
        Ok(token)
    }

    /// Tokens of one user, or of everyone; newest first.
    pub async fn tokens(&self, user_id: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ? IS NULL OR user_id = ? ORDER BY created_at DESC, id");
        Ok(sqlx::query_as(&sql).bind(user_id).bind(user_id).fetch_all(&self.pool).await?)
    }

    /// One token.
    pub async fn token(&self, id: &str) -> Result<ApiToken, StoreError> {
        let row: Option<ApiToken> =
            sqlx::query_as(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?")).bind(id).fetch_optional(&self.pool).await?;
        row.ok_or_else(|| StoreError::NotFound(format!("token {id}")))
    }

    /// Revokes a token (revoking twice changes nothing).
    pub async fn revoke_token(&self, actor: &Actor, id: &str) -> Result<ApiToken, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old: Option<ApiToken> =
            sqlx::query_as(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = ?")).bind(id).fetch_optional(&mut *tx).await?;
        let old = old.ok_or_else(|| StoreError::NotFound(format!("token {id}")))?;
        if old.revoked_at.is_some() {
            return Ok(old);
        }
        let new = ApiToken { revoked_at: Some(now_ms()), ..old.clone() };
        sqlx::query("UPDATE api_tokens SET revoked_at = ? WHERE id = ?").bind(new.revoked_at).bind(id).execute(&mut *tx).await?;
        append(&mut tx, actor, Change::new("token", id, "revoke", Some(&old), Some(&new))).await?;
        self.commit_audited(tx).await?;
        Ok(new)
    }

    /// The token with this hash and its user, whatever their state (the caller checks
    /// expiry, revocation and disabled users). Cached until the next write.
    pub async fn token_owner(&self, hash: &str) -> Result<Option<TokenOwner>, StoreError> {
        if let Some(found) = self.tokens_cache.read().expect("cache lock").get(hash) {
            return Ok(Some(found.clone()));
        }
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = ?");
        let Some(token) = sqlx::query_as::<_, ApiToken>(&sql).bind(hash).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let user: User = sqlx::query_as("SELECT * FROM users WHERE id = ?").bind(&token.user_id).fetch_one(&self.pool).await?;
        let found = TokenOwner { token, user };
        Self::remember(&self.tokens_cache, hash.to_string(), found.clone());
        Ok(Some(found))
    }

    /// Creates a shared project owned by `owner_id`.
    pub async fn create_project(&self, actor: &Actor, name: &str, owner_id: &str) -> Result<Project, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let project = Project { id: uuid::Uuid::new_v4().to_string(), name: name.into(), personal_of: None, created_at: now_ms() };
        insert_project(&mut tx, actor, &project, owner_id).await?;
        self.commit_audited(tx).await?;
        Ok(project)
    }

    /// Every project, by name.
    pub async fn projects(&self) -> Result<Vec<Project>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM projects ORDER BY name").fetch_all(&self.pool).await?)
    }

    /// The project with this id, or else this name.
    pub async fn project(&self, key: &str) -> Result<Project, StoreError> {
        let row: Option<Project> = sqlx::query_as("SELECT * FROM projects WHERE id = ? OR name = ? ORDER BY id = ? DESC LIMIT 1")
            .bind(key)
            .bind(key)
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("project {key}")))
    }

    /// A user's personal project.
    pub async fn personal_project(&self, user_id: &str) -> Result<Project, StoreError> {
        let row: Option<Project> =
            sqlx::query_as("SELECT * FROM projects WHERE personal_of = ?").bind(user_id).fetch_optional(&self.pool).await?;
        row.ok_or_else(|| StoreError::NotFound(format!("personal project of user {user_id}")))
    }

    /// Members of a project, by name.
    pub async fn members(&self, project_id: &str) -> Result<Vec<Member>, StoreError> {
        Ok(sqlx::query_as(&format!("{MEMBER_SELECT} WHERE m.project_id = ? ORDER BY u.name"))
            .bind(project_id)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The role of each project `user_id` is a member of, by project id.
    /// Cached until the next write.
    pub async fn memberships(&self, user_id: &str) -> Result<HashMap<String, String>, StoreError> {
        if let Some(found) = self.memberships_cache.read().expect("cache lock").get(user_id) {
            return Ok(found.clone());
        }
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT project_id, role FROM project_members WHERE user_id = ?").bind(user_id).fetch_all(&self.pool).await?;
        let found: HashMap<String, String> = rows.into_iter().collect();
        Self::remember(&self.memberships_cache, user_id.to_string(), found.clone());
        Ok(found)
    }

    /// Adds a member or changes their role.
    pub async fn set_member(&self, actor: &Actor, project_id: &str, user_id: &str, role: &str) -> Result<Member, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old = member(&mut tx, project_id, user_id).await?;
        sqlx::query(
            "INSERT INTO project_members (project_id, user_id, role, created_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(project_id)
        .bind(user_id)
        .bind(role)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        let new = member(&mut tx, project_id, user_id).await?.expect("just written");
        let operation = if old.is_some() { "update" } else { "create" };
        append(&mut tx, actor, Change::new("member", &format!("{project_id}/{user_id}"), operation, old.as_ref(), Some(&new))).await?;
        self.commit_audited(tx).await?;
        Ok(new)
    }

    /// Removes a member.
    pub async fn remove_member(&self, actor: &Actor, project_id: &str, user_id: &str) -> Result<(), StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old = member(&mut tx, project_id, user_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("member {user_id} of project {project_id}")))?;
        sqlx::query("DELETE FROM project_members WHERE project_id = ? AND user_id = ?")
            .bind(project_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        append(&mut tx, actor, Change::new("member", &format!("{project_id}/{user_id}"), "delete", Some(&old), None)).await?;
        self.commit_audited(tx).await?;
        Ok(())
    }
}

/// Inserts a project with its first owner, audited.
async fn insert_project(conn: &mut sqlx::SqliteConnection, actor: &Actor, project: &Project, owner_id: &str) -> Result<(), StoreError> {
    let inserted = sqlx::query("INSERT INTO projects (id, name, personal_of, created_at) VALUES (?, ?, ?, ?)")
        .bind(&project.id)
        .bind(&project.name)
        .bind(&project.personal_of)
        .bind(project.created_at)
        .execute(&mut *conn)
        .await;
    match inserted {
        Err(e) if StoreError::is_unique_violation(&e) => {
            return Err(StoreError::Conflict(format!("a project named {} already exists", project.name)));
        }
        other => other?,
    };
    sqlx::query("INSERT INTO project_members (project_id, user_id, role, created_at) VALUES (?, ?, 'owner', ?)")
        .bind(&project.id)
        .bind(owner_id)
        .bind(project.created_at)
        .execute(&mut *conn)
        .await?;
    append(conn, actor, Change::new("project", &project.id, "create", None, Some(project))).await?;
    let owner = member(conn, &project.id, owner_id).await?.expect("just written");
    append(conn, actor, Change::new("member", &format!("{}/{owner_id}", project.id), "create", None, Some(&owner))).await
}

async fn member(conn: &mut sqlx::SqliteConnection, project_id: &str, user_id: &str) -> Result<Option<Member>, StoreError> {
    Ok(sqlx::query_as(&format!("{MEMBER_SELECT} WHERE m.project_id = ? AND m.user_id = ?"))
        .bind(project_id)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await?)
}
