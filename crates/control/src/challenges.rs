//! `/api/v1/claims/challenges`: a project proves it controls a host through DNS, and the
//! host becomes its claim — the way to a custom host that is not under a suffix delegated
//! to users, without an admin.
//!
//! The project asks for a challenge and publishes its value in a TXT record at
//! `_edgefn-challenge.<host>`; `verify` looks the record up through the control plane's
//! resolver (`--dns-resolver`, else the system's) and, when one of its strings is the
//! value, claims the host for the project. The platform's own hosts — addresses,
//! `localhost`, the edge's and nodes' names — stay out of reach whatever DNS says
//! ([`crate::hosts`]).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use edgefn_model::canonical_host;
use edgefn_store::{Actor, HostChallenge, RouteClaim, RouteSpace};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Caller;
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::openapi::Failure;
use crate::state::AppState;

/// The label the TXT record is published under, before the host.
pub const RECORD_LABEL: &str = "_edgefn-challenge";

/// Body of `POST /api/v1/claims/challenges`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeBody {
    /// The host to prove (a name, no wildcard).
    host: String,
    /// Project id or name; the host becomes its claim.
    project: String,
}

/// A challenge and the record that answers it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Challenge {
    /// Its id (for `verify`).
    id: String,
    /// The host, canonical.
    host: String,
    /// The project it is for.
    project_id: String,
    /// Where to publish the record: `_edgefn-challenge.<host>`.
    record_name: String,
    /// Its type, `TXT`.
    record_type: &'static str,
    /// What the record must hold: `edgefn-verify=<token>`.
    record_value: String,
}

impl From<HostChallenge> for Challenge {
    fn from(c: HostChallenge) -> Self {
        Self {
            record_name: format!("{RECORD_LABEL}.{}", c.host),
            record_type: "TXT",
            record_value: format!("edgefn-verify={}", c.token),
            id: c.id,
            host: c.host,
            project_id: c.project_id,
        }
    }
}

/// How the control plane looks records up.
#[derive(Debug, Clone)]
pub struct Dns(TokioResolver);

impl Dns {
    /// Through the name server at `server` (UDP), or the system's (`/etc/resolv.conf`).
    pub fn new(server: Option<std::net::SocketAddr>) -> Self {
        let mut resolver = match server {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            }
            None => TokioResolver::builder_tokio().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "no system DNS configuration: host challenges cannot be verified until --dns-resolver is given");
                TokioResolver::builder_with_config(ResolverConfig::new(), TokioConnectionProvider::default())
            }),
        };
        // A record just published must be seen: answers are not kept.
        resolver.options_mut().cache_size = 0;
        Self(resolver.build())
    }

    /// The strings of the TXT records at `name`, each record's parts joined.
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        match self.0.txt_lookup(format!("{name}.")).await {
            Ok(lookup) => Ok(lookup.iter().map(|txt| txt.txt_data().iter().map(|part| String::from_utf8_lossy(part)).collect()).collect()),
            Err(e) if e.is_no_records_found() => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The project `key` if the caller may route in it (an owner or developer, or an admin).
async fn routable_project(state: &AppState, caller: &Caller, key: &str) -> Result<String, ApiError> {
    let project = state.db.project(key).await.map_err(|_| ApiError::not_found(format!("project {key} not found")))?;
    match caller.roles.get(&project.id).map(String::as_str) {
        _ if caller.user.is_admin() => Ok(project.id),
        Some("owner" | "developer") => Ok(project.id),
        Some(_) => Err(ApiError::forbidden(format!("claiming hosts for project {} needs the owner or developer role", project.name))),
        None => Err(ApiError::not_found(format!("project {key} not found"))),
    }
}

/// `POST /api/v1/claims/challenges`: the record that proves the project controls a host.
#[utoipa::path(post, path = "/api/v1/claims/challenges", tag = "routes", request_body = ChallengeBody,
    responses((status = 201, description = "The challenge: publish its record, then verify", body = Challenge), Failure))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<ChallengeBody>,
) -> Result<(StatusCode, Json<Challenge>), ApiError> {
    let project = routable_project(&state, &caller, &body.project).await?;
    let host = canonical_host(&body.host).map_err(|e| ApiError::bad_request(format!("host {e}")))?;
    crate::hosts::check_user_host(&state, &host, true).await?;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let challenge = state.db.host_challenge(&host, &project, &caller.user.id, &hex::encode(bytes)).await?;
    Ok((StatusCode::CREATED, Json(challenge.into())))
}

/// `POST /api/v1/claims/challenges/{id}/verify`: looks the record up; when it holds the
/// value, the host is claimed for the project.
#[utoipa::path(post, path = "/api/v1/claims/challenges/{id}/verify", tag = "routes", params(("id" = String, Path, description = "Challenge id")),
    responses((status = 201, description = "The record was found: the host's claim", body = RouteClaim), Failure))]
pub async fn verify(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<RouteClaim>), ApiError> {
    let challenge = state.db.challenge(&id).await?;
    routable_project(&state, &caller, &challenge.project_id).await.map_err(|_| ApiError::not_found(format!("challenge {id} not found")))?;
    crate::hosts::check_user_host(&state, &challenge.host, true).await?;
    let view = Challenge::from(challenge.clone());
    let found = state.dns.txt(&view.record_name).await.map_err(|e| {
        ApiError::new(StatusCode::BAD_GATEWAY, "dns_failed", format!("looking up the TXT record {}: {e}", view.record_name))
    })?;
    if !found.contains(&view.record_value) {
        let seen =
            if found.is_empty() { "none".to_string() } else { found.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ") };
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_verified",
            format!("no TXT record `{}` at {} yet (found: {seen}); publish it and verify again", view.record_value, view.record_name),
        ));
    }
    let space = RouteSpace::new(Some(&challenge.host), "");
    let claim = match state.db.create_claim(&Actor::from(&caller.user), &space, Some(&challenge.project_id), true).await {
        Ok(claim) => claim,
        Err(e) => return Err(crate::claims::explain(&state, &caller, &space, e).await),
    };
    state.db.delete_challenge(&challenge.id).await?;
    tracing::info!(host = %challenge.host, project = %challenge.project_id, "host proven through DNS and claimed");
    Ok((StatusCode::CREATED, Json(claim)))
}
