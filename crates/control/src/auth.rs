//! Authentication: `Authorization: Bearer …` names a user by an API token (random,
//! stored only as its SHA-256, revocable, optionally expiring) or by a JWT from an
//! identity provider (see [`crate::jwt`]). Expired, forged or revoked credentials and
//! disabled users are answered 401.
//!
//! The middleware puts the [`User`] in the request; handlers that check permissions take
//! a [`Caller`], which adds the user's project roles.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use edgefn_store::{User, now_ms};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::access::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// Prefix that makes edgefn tokens recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "efn_";

/// A new random token (256 bits).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The form a token is stored in.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Resolves the bearer credential to a user and puts it in the request extensions.
pub async fn require_user(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let header = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(credential) = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim) else {
        return Err(ApiError::unauthorized("missing `Authorization: Bearer <token>` header"));
    };
    let user = authenticate(&state, credential).await?;
    req.extensions_mut().insert(user);
    Ok(next.run(req).await)
}

/// The enabled user a credential (API token or JWT) names; 401 with the reason otherwise.
pub async fn authenticate(state: &AppState, credential: &str) -> Result<User, ApiError> {
    let user = if credential.starts_with(TOKEN_PREFIX) {
        token_user(state, credential).await?
    } else if let Some(jwt) = &state.settings.jwt {
        jwt.user(&state.db, credential).await?
    } else {
        return Err(ApiError::unauthorized("invalid token"));
    };
    if user.disabled {
        return Err(ApiError::unauthorized(format!("user {} is disabled", user.name)));
    }
    Ok(user)
}

async fn token_user(state: &AppState, token: &str) -> Result<User, ApiError> {
    let Some(found) = state.db.token_owner(&hash_token(token)).await? else {
        return Err(ApiError::unauthorized("invalid token"));
    };
    if found.token.revoked_at.is_some() {
        return Err(ApiError::unauthorized("this token was revoked"));
    }
    if found.token.expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(ApiError::unauthorized("this token has expired"));
    }
    Ok(found.user)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = parts.extensions.get::<User>().cloned().ok_or_else(|| ApiError::unauthorized("not signed in"))?;
        let roles = state.db.memberships(&user.id).await?;
        Ok(Caller { user, roles })
    }
}
