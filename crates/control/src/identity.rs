//! `/api/v1/me`, `/api/v1/users` (admins) and `/api/v1/tokens`: who is calling, user
//! accounts, and API tokens — shown once when created, stored hashed, revocable,
//! optionally expiring.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use edgefn_store::{Actor, ApiToken, User, now_ms};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::access::Caller;
use crate::auth::{hash_token, new_token};
use crate::body::{JsonBody, QueryParams};
use crate::error::ApiError;
use crate::modules::check_label;
use crate::openapi::Failure;
use crate::state::AppState;

/// Longest a token may live, in days (10 years).
const MAX_TOKEN_DAYS: i64 = 3650;

fn check_role(role: &str) -> Result<(), ApiError> {
    if matches!(role, "admin" | "user") { Ok(()) } else { Err(ApiError::bad_request(format!("role `{role}` is not one of admin, user"))) }
}

/// Who is calling.
#[derive(Serialize, ToSchema)]
pub struct Me {
    /// The caller.
    user: User,
    /// Its projects and its role in each, by name.
    projects: Vec<MyProject>,
}

/// A project of the caller.
#[derive(Serialize, ToSchema)]
pub struct MyProject {
    id: String,
    name: String,
    /// `owner`, `developer` or `viewer`.
    role: String,
}

/// `GET /api/v1/me`: the caller and its projects.
#[utoipa::path(get, path = "/api/v1/me", tag = "identity", responses((status = 200, description = "The caller and its projects", body = Me), Failure))]
pub async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>, ApiError> {
    let mut projects = Vec::new();
    for (project_id, role) in &caller.roles {
        let project = state.db.project(project_id).await?;
        projects.push(MyProject { id: project.id, name: project.name, role: role.clone() });
    }
    projects.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(Me { user: caller.user, projects }))
}

/// Body of `POST /api/v1/users`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    /// Login name.
    name: String,
    /// `admin` or `user` (default).
    role: Option<String>,
}

/// A new user and its first token.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewUser {
    user: User,
    /// The token's secret, shown only here.
    token: String,
    token_id: String,
}

/// Users.
#[derive(Serialize, ToSchema)]
pub struct UserList {
    users: Vec<User>,
}

/// `POST /api/v1/users` (admins): a user, its personal project and a first token.
#[utoipa::path(post, path = "/api/v1/users", tag = "identity", request_body = NewUserBody,
    responses((status = 201, description = "The user and its first token (shown once)", body = NewUser), Failure))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewUserBody>,
) -> Result<(StatusCode, Json<NewUser>), ApiError> {
    let (user, token, record) = add_user(&state, &caller, &body.name, body.role.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(NewUser { user, token, token_id: record.id })))
}

/// Creates a user (admins), its personal project and a first token, whose secret is
/// returned this once.
pub(crate) async fn add_user(
    state: &AppState,
    caller: &Caller,
    name: &str,
    role: Option<&str>,
) -> Result<(User, String, ApiToken), ApiError> {
    caller.require_admin("manage users")?;
    check_label("name", name)?;
    let role = role.unwrap_or("user");
    check_role(role)?;
    let actor = Actor::from(&caller.user);
    let user = state.db.create_user(&actor, name, role, None).await?;
    let token = new_token();
    let record = state.db.create_token(&actor, &user.id, "first token", &hash_token(&token), None).await?;
    Ok((user, token, record))
}

/// `GET /api/v1/users` (admins).
#[utoipa::path(get, path = "/api/v1/users", tag = "identity", responses((status = 200, description = "Every user", body = UserList), Failure))]
pub async fn list_users(State(state): State<AppState>, caller: Caller) -> Result<Json<UserList>, ApiError> {
    caller.require_admin("manage users")?;
    Ok(Json(UserList { users: state.db.users().await? }))
}

/// Body of `PATCH /api/v1/users/{id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatchBody {
    /// `admin` or `user`.
    role: Option<String>,
    /// Disable or enable the user.
    disabled: Option<bool>,
}

/// `PATCH /api/v1/users/{id}` (admins): role, or disable/enable. An admin cannot
/// disable or demote itself, so there is always one admin left to undo a mistake.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "identity", params(("id" = String, Path, description = "User id or name")),
    request_body = UserPatchBody, responses((status = 200, description = "The user as it now is", body = User), Failure))]
pub async fn patch_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UserPatchBody>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(change_user(&state, &caller, &id, body.role.as_deref(), body.disabled).await?))
}

/// Changes a user's role or disables/enables it (admins; never oneself).
pub(crate) async fn change_user(
    state: &AppState,
    caller: &Caller,
    id: &str,
    role: Option<&str>,
    disabled: Option<bool>,
) -> Result<User, ApiError> {
    caller.require_admin("manage users")?;
    if let Some(role) = role {
        check_role(role)?;
    }
    let user = state.db.user(id).await?;
    if user.id == caller.user.id && (disabled == Some(true) || role == Some("user")) {
        return Err(ApiError::bad_request("you cannot disable or demote yourself"));
    }
    Ok(state.db.update_user(&Actor::from(&caller.user), &user.id, role, disabled).await?)
}

/// Body of `POST /api/v1/tokens`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewTokenBody {
    name: String,
    /// Days until it expires; absent for never.
    expires_in_days: Option<i64>,
    /// Whose token (admins only; default the caller).
    user: Option<String>,
}

/// A new token: the record and, once, its secret.
#[derive(Serialize, ToSchema)]
pub struct NewToken {
    #[serde(flatten)]
    record: ApiToken,
    /// The secret, shown only here.
    token: String,
}

/// Tokens.
#[derive(Serialize, ToSchema)]
pub struct TokenList {
    tokens: Vec<ApiToken>,
}

/// `POST /api/v1/tokens`: a new token, shown only in this answer.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "identity", request_body = NewTokenBody,
    responses((status = 201, description = "The token and its secret (shown once)", body = NewToken), Failure))]
pub async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewTokenBody>,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    let (record, token) = issue_token(&state, &caller, &body.name, body.expires_in_days, body.user.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(NewToken { record, token })))
}

/// A new token named `name` for `user` (admins; default the caller), expiring after
/// `expires_in_days` if given; its secret is returned this once.
pub(crate) async fn issue_token(
    state: &AppState,
    caller: &Caller,
    name: &str,
    expires_in_days: Option<i64>,
    user: Option<&str>,
) -> Result<(ApiToken, String), ApiError> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err(ApiError::bad_request("token name must be 1-100 characters"));
    }
    if let Some(days) = expires_in_days.filter(|d| !(1..=MAX_TOKEN_DAYS).contains(d)) {
        return Err(ApiError::bad_request(format!("expiresInDays {days} must be between 1 and {MAX_TOKEN_DAYS}")));
    }
    let owner = match user {
        Some(key) if key != caller.user.id && key != caller.user.name => {
            caller.require_admin("create tokens for other users")?;
            state.db.user(key).await?
        }
        _ => caller.user.clone(),
    };
    let expires_at = expires_in_days.map(|d| now_ms() + d * 86_400_000);
    let token = new_token();
    let record = state.db.create_token(&Actor::from(&caller.user), &owner.id, name.trim(), &hash_token(&token), expires_at).await?;
    Ok((record, token))
}

/// Query of `GET /api/v1/tokens`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokensQuery {
    /// Every user's tokens (admins).
    #[serde(default)]
    all: bool,
}

/// `GET /api/v1/tokens`: the caller's tokens (admins: `?all=true` for everyone's).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "identity", params(TokensQuery), responses((status = 200, description = "Tokens, without their secrets", body = TokenList), Failure))]
pub async fn list_tokens(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<TokensQuery>,
) -> Result<Json<TokenList>, ApiError> {
    if q.all {
        caller.require_admin("list every user's tokens")?;
    }
    let tokens = state.db.tokens((!q.all).then_some(caller.user.id.as_str())).await?;
    Ok(Json(TokenList { tokens }))
}

/// `DELETE /api/v1/tokens/{id}`: revokes one of the caller's tokens (admins: anyone's).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "identity", params(("id" = String, Path, description = "Token id")),
    responses((status = 200, description = "The revoked token", body = ApiToken), Failure))]
pub async fn revoke_token(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<ApiToken>, ApiError> {
    Ok(Json(revoke(&state, &caller, &id).await?))
}

/// Revokes one of the caller's tokens (admins: anyone's).
pub(crate) async fn revoke(state: &AppState, caller: &Caller, id: &str) -> Result<ApiToken, ApiError> {
    let token = state.db.token(id).await?;
    if token.user_id != caller.user.id && !caller.user.is_admin() {
        return Err(ApiError::not_found(format!("token {id} not found")));
    }
    Ok(state.db.revoke_token(&Actor::from(&caller.user), id).await?)
}
