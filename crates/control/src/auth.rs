//! Bearer-token authentication: every API call names a user by an API token, stored
//! only as its SHA-256. (The identity issue adds JWTs, roles and token management.)

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// Prefix that makes edgefn tokens recognisable in logs and secret scanners.
const TOKEN_PREFIX: &str = "efn_";

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

/// Resolves `Authorization: Bearer …` to a user and puts it in the request extensions.
pub async fn require_user(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let header = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim) else {
        return Err(ApiError::unauthorized("missing `Authorization: Bearer <token>` header"));
    };
    let Some(user) = state.db.user_by_token_hash(&hash_token(token)).await? else {
        return Err(ApiError::unauthorized("invalid token"));
    };
    req.extensions_mut().insert(user);
    Ok(next.run(req).await)
}
