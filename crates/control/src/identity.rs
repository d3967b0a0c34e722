//! `/api/v1/me`, `/api/v1/users` (admins) and `/api/v1/tokens`: who is calling, user
//! accounts, and API tokens — shown once when created, stored hashed, revocable,
//! optionally expiring.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use edgefn_store::{Actor, now_ms};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::access::Caller;
use crate::auth::{hash_token, new_token};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::modules::check_label;
use crate::state::AppState;

/// Longest a token may live, in days (10 years).
const MAX_TOKEN_DAYS: i64 = 3650;

fn check_role(role: &str) -> Result<(), ApiError> {
    if matches!(role, "admin" | "user") { Ok(()) } else { Err(ApiError::bad_request(format!("role `{role}` is not one of admin, user"))) }
}

/// `GET /api/v1/me`: the caller and its projects.
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    let mut projects = Vec::new();
    for (project_id, role) in &caller.roles {
        let project = state.db.project(project_id).await?;
        projects.push(json!({"id": project.id, "name": project.name, "role": role}));
    }
    projects.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Json(json!({"user": caller.user, "projects": projects})))
}

/// Body of `POST /api/v1/users`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    name: String,
    role: Option<String>,
}

/// `POST /api/v1/users` (admins): a user, its personal project and a first token.
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require_admin("manage users")?;
    check_label("name", &body.name)?;
    let role = body.role.unwrap_or_else(|| "user".into());
    check_role(&role)?;
    let actor = Actor::from(&caller.user);
    let user = state.db.create_user(&actor, &body.name, &role, None).await?;
    let token = new_token();
    let record = state.db.create_token(&actor, &user.id, "first token", &hash_token(&token), None).await?;
    Ok((StatusCode::CREATED, Json(json!({"user": user, "token": token, "tokenId": record.id}))))
}

/// `GET /api/v1/users` (admins).
pub async fn list_users(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, ApiError> {
    caller.require_admin("manage users")?;
    Ok(Json(json!({"users": state.db.users().await?})))
}

/// Body of `PATCH /api/v1/users/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    role: Option<String>,
    disabled: Option<bool>,
}

/// `PATCH /api/v1/users/{id}` (admins): role, or disable/enable. An admin cannot
/// disable or demote itself, so there is always one admin left to undo a mistake.
pub async fn patch_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UserPatchBody>,
) -> Result<Json<Value>, ApiError> {
    caller.require_admin("manage users")?;
    if let Some(role) = &body.role {
        check_role(role)?;
    }
    let user = state.db.user(&id).await?;
    if user.id == caller.user.id && (body.disabled == Some(true) || body.role.as_deref() == Some("user")) {
        return Err(ApiError::bad_request("you cannot disable or demote yourself"));
    }
    let updated = state.db.update_user(&Actor::from(&caller.user), &user.id, body.role.as_deref(), body.disabled).await?;
    Ok(Json(json!(updated)))
}

/// Body of `POST /api/v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewTokenBody {
    name: String,
    /// Days until it expires; absent for never.
    expires_in_days: Option<i64>,
    /// Whose token (admins only; default the caller).
    user: Option<String>,
}

/// `POST /api/v1/tokens`: a new token, shown only in this answer.
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewTokenBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if body.name.trim().is_empty() || body.name.len() > 100 {
        return Err(ApiError::bad_request("token name must be 1-100 characters"));
    }
    if let Some(days) = body.expires_in_days.filter(|d| !(1..=MAX_TOKEN_DAYS).contains(d)) {
        return Err(ApiError::bad_request(format!("expiresInDays {days} must be between 1 and {MAX_TOKEN_DAYS}")));
    }
    let owner = match &body.user {
        Some(key) if *key != caller.user.id && *key != caller.user.name => {
            caller.require_admin("create tokens for other users")?;
            state.db.user(key).await?
        }
        _ => caller.user.clone(),
    };
    let expires_at = body.expires_in_days.map(|d| now_ms() + d * 86_400_000);
    let token = new_token();
    let record = state.db.create_token(&Actor::from(&caller.user), &owner.id, body.name.trim(), &hash_token(&token), expires_at).await?;
    let mut answer = json!(record);
    answer["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Query of `GET /api/v1/tokens`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensQuery {
    /// Every user's tokens (admins).
    #[serde(default)]
    all: bool,
}

/// `GET /api/v1/tokens`: the caller's tokens (admins: `?all=true` for everyone's).
pub async fn list_tokens(State(state): State<AppState>, caller: Caller, Query(q): Query<TokensQuery>) -> Result<Json<Value>, ApiError> {
    if q.all {
        caller.require_admin("list every user's tokens")?;
    }
    let tokens = state.db.tokens((!q.all).then_some(caller.user.id.as_str())).await?;
    Ok(Json(json!({"tokens": tokens})))
}

/// `DELETE /api/v1/tokens/{id}`: revokes one of the caller's tokens (admins: anyone's).
pub async fn revoke_token(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let token = state.db.token(&id).await?;
    if token.user_id != caller.user.id && !caller.user.is_admin() {
        return Err(ApiError::not_found(format!("token {id} not found")));
    }
    Ok(Json(json!(state.db.revoke_token(&Actor::from(&caller.user), &id).await?)))
}
