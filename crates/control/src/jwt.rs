//! JWT bearer tokens from an identity provider (Supabase, Auth0, Keycloak, …): verified
//! with an HS256 shared secret or the provider's JWKS (fetched, cached, refetched when a
//! token names a key it does not hold). `exp` and `sub` are required, and so are `iss` and
//! `aud` when configured (a token without them is refused like one with the wrong value).
//! A JWKS token must be signed with its key's own algorithm (`alg` of the key), or, for a
//! key that names none, one of the configured `jwks_algorithms` — never another of the
//! same key type (an RSA key published for RS256 verifies no PS256 token). The `sub` claim
//! names the user: the first valid token of a new subject creates it, and the role claim
//! decides `admin` or `user` on every sign-in.

use std::str::FromStr;
use std::time::{Duration, Instant};

use edgefn_store::{Actor, Database, User};
use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::RwLock;

use crate::error::ApiError;

/// Seconds a token's `exp` and `nbf` may be off by, for clocks that disagree a little
/// (docs/permissions.md).
pub const CLOCK_LEEWAY_SECONDS: u64 = 60;

/// How long fetched keys are trusted before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(300);
/// Least time between two fetches caused by unknown key ids.
const JWKS_MIN_REFETCH: Duration = Duration::from_secs(10);

/// `[auth.jwt]` of the config file.
#[derive(Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Shared secret of HS256 tokens (Supabase's "JWT secret").
    pub hs256_secret: Option<String>,
    /// URL of the provider's JSON Web Key Set.
    pub jwks_url: Option<String>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required `aud`.
    pub audience: Option<String>,
    /// Claim holding the role, as a dotted path (`role`, `app_metadata.role`).
    pub role_claim: Option<String>,
    /// Values of the role claim that make a user an admin (default `["admin"]`).
    pub admin_roles: Option<Vec<String>>,
    /// Claim naming a new user (default `email`, else `sub`).
    pub name_claim: Option<String>,
    /// Algorithms accepted for JWKS keys that name no `alg` (default `["RS256", "ES256"]`).
    pub jwks_algorithms: Option<Vec<String>>,
}

/// What a JWKS key without `alg` verifies when none are configured: one algorithm per key
/// type.
const DEFAULT_JWKS_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

/// A configured verifier.
pub struct Jwt {
    config: JwtConfig,
    secret: Option<DecodingKey>,
    /// Algorithms of JWKS keys without `alg`.
    unnamed_key_algorithms: Vec<Algorithm>,
    jwks: RwLock<Option<(Instant, JwkSet)>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for JwtConfig {
    /// Everything but the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtConfig")
            .field("hs256_secret", &self.hs256_secret.as_ref().map(|_| "<redacted>"))
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("role_claim", &self.role_claim)
            .field("admin_roles", &self.admin_roles)
            .field("name_claim", &self.name_claim)
            .field("jwks_algorithms", &self.jwks_algorithms)
            .finish()
    }
}

impl std::fmt::Debug for Jwt {
    /// The configuration, without the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwt").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Jwt {
    /// A verifier, or an error when the configuration names neither a secret nor a JWKS.
    pub fn new(config: JwtConfig) -> anyhow::Result<Self> {
        if config.hs256_secret.is_none() && config.jwks_url.is_none() {
            anyhow::bail!("[auth.jwt] needs hs256_secret or jwks_url");
        }
        let secret = config.hs256_secret.as_deref().map(|s| DecodingKey::from_secret(s.as_bytes()));
        let unnamed_key_algorithms = match &config.jwks_algorithms {
            None => DEFAULT_JWKS_ALGORITHMS.to_vec(),
            Some(names) => names.iter().map(|name| public_key_algorithm(name)).collect::<anyhow::Result<_>>()?,
        };
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        Ok(Self { config, secret, unnamed_key_algorithms, jwks: RwLock::new(None), http })
    }

    /// The user a valid token names (created on its first sign-in).
    pub async fn user(&self, db: &Database, token: &str) -> Result<User, ApiError> {
        let claims = self.verify(token).await?;
        let sub = claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty());
        let sub = sub.ok_or_else(|| ApiError::unauthorized("the token has no `sub` claim"))?;
        let role_claim = self.config.role_claim.as_deref().unwrap_or("role");
        let role_value = role_claim.split('.').try_fold(&claims, |v, key| v.get(key)).and_then(Value::as_str);
        let admin_roles = self.config.admin_roles.as_deref().unwrap_or(&[]);
        let is_admin = role_value.is_some_and(|r| if admin_roles.is_empty() { r == "admin" } else { admin_roles.iter().any(|a| a == r) });
        let role = if is_admin { "admin" } else { "user" };
        let actor = Actor { id: None, name: format!("jwt:{sub}") };
        match db.user_by_external_id(sub).await? {
            // A disabled user's claims change nothing: the request is refused as it is.
            Some(user) if user.role == role || user.disabled => Ok(user),
            Some(user) => Ok(db.update_user(&actor, &user.id, Some(role), None).await?),
            None => {
                let name_claim = self.config.name_claim.as_deref().unwrap_or("email");
                let name = claims.get(name_claim).and_then(Value::as_str).unwrap_or(sub);
                match db.create_user(&actor, name, role, Some(sub)).await {
                    Err(edgefn_store::StoreError::Conflict(_)) => {
                        Ok(db.create_user(&actor, &format!("{name}~{sub}"), role, Some(sub)).await?)
                    }
                    other => Ok(other?),
                }
            }
        }
    }

    /// The claims of a token whose signature, expiry, issuer and audience check out.
    async fn verify(&self, token: &str) -> Result<Value, ApiError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| ApiError::unauthorized(format!("invalid token: {e}")))?;
        let key = match (header.alg, &self.secret) {
            (Algorithm::HS256, Some(secret)) => secret.clone(),
            (Algorithm::HS256, None) => return Err(ApiError::unauthorized("HS256 tokens are not accepted here")),
            (alg, _) if self.config.jwks_url.is_some() => {
                let (key, key_alg) = self.key(header.kid.as_deref()).await?;
                let allowed = match key_alg {
                    Some(named) => Algorithm::from_str(&named.to_string()).into_iter().collect(),
                    None => self.unnamed_key_algorithms.clone(),
                };
                if !allowed.contains(&alg) {
                    let names: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
                    let key_name = header.kid.as_deref().unwrap_or("(no kid)");
                    return Err(ApiError::unauthorized(format!(
                        "the token is signed with {alg:?}; key {key_name} verifies only {}",
                        if names.is_empty() { "no signatures".to_string() } else { names.join(", ") }
                    )));
                }
                key
            }
            (alg, _) => return Err(ApiError::unauthorized(format!("{alg:?} tokens are not accepted here"))),
        };
        let mut validation = Validation::new(header.alg);
        let mut required = vec!["exp", "sub"];
        required.extend(self.config.issuer.as_ref().map(|_| "iss"));
        required.extend(self.config.audience.as_ref().map(|_| "aud"));
        validation.set_required_spec_claims(&required);
        // `nbf` (when present) is checked like `exp`, with the same small leeway for clocks
        // that disagree a little.
        validation.validate_nbf = true;
        validation.leeway = CLOCK_LEEWAY_SECONDS;
        if let Some(iss) = &self.config.issuer {
            validation.set_issuer(&[iss]);
        }
        match &self.config.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| {
            let why = match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => "the token has expired".to_string(),
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_string(),
                jsonwebtoken::errors::ErrorKind::InvalidSignature => "the token's signature is not valid".to_string(),
                jsonwebtoken::errors::ErrorKind::MissingRequiredClaim(claim) => format!("the token has no `{claim}` claim"),
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => "the token's issuer (`iss`) is not the configured one".to_string(),
                jsonwebtoken::errors::ErrorKind::InvalidAudience => "the token's audience (`aud`) is not the configured one".to_string(),
                _ => format!("invalid token: {e}"),
            };
            ApiError::unauthorized(why)
        })?;
        Ok(data.claims)
    }

    /// The provider's key `kid` (or its only key) and the algorithm it names, fetching the
    /// set when it is stale or lacks that key.
    async fn key(&self, kid: Option<&str>) -> Result<(DecodingKey, Option<KeyAlgorithm>), ApiError> {
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        let name = kid.unwrap_or("(no kid)");
        let no_key = || ApiError::unauthorized(format!("no key {name} in the identity provider's key set"));
        let decoding = |jwk: &jsonwebtoken::jwk::Jwk| {
            let key = DecodingKey::from_jwk(jwk).map_err(|e| ApiError::unauthorized(format!("unusable key {name}: {e}")))?;
            Ok((key, jwk.common.key_algorithm))
        };
        if let Some((at, set)) = &*self.jwks.read().await {
            match find(set) {
                Some(jwk) if at.elapsed() < JWKS_TTL => return decoding(&jwk),
                // An unknown key right after a fetch: do not let tokens make us hammer the provider.
                None if at.elapsed() < JWKS_MIN_REFETCH => return Err(no_key()),
                _ => {}
            }
        }
        let url = self.config.jwks_url.as_deref().expect("checked by the caller");
        let fetched = async { self.http.get(url).send().await?.error_for_status()?.json::<JwkSet>().await }.await;
        let set = fetched.map_err(|e| {
            tracing::warn!(error = %e, url, "could not fetch the JWKS");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "jwks_unavailable",
                "the identity provider's keys could not be fetched",
            )
        })?;
        let jwk = find(&set);
        *self.jwks.write().await = Some((Instant::now(), set));
        decoding(&jwk.ok_or_else(no_key)?)
    }
}

/// A signature algorithm of public keys, by its JOSE name (`RS256`, `PS256`, `ES256`,
/// `EdDSA`…): a shared-secret one (`HS256`) has no place in a key set.
fn public_key_algorithm(name: &str) -> anyhow::Result<Algorithm> {
    let alg = Algorithm::from_str(name)
        .map_err(|_| anyhow::anyhow!("jwks_algorithms: `{name}` is not a JWS algorithm (RS256, PS256, ES256, EdDSA…)"))?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        anyhow::bail!("jwks_algorithms: `{name}` is a shared-secret algorithm; a key set holds public keys");
    }
    Ok(alg)
}
