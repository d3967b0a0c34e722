//! Which named hosts an ordinary user may claim.
//!
//! A request's host picks its tier of routes and never falls through, so whoever holds a
//! host takes all of its traffic. Ordinary users therefore claim only hosts that are
//! plainly theirs to have: a name under a suffix an admin delegated to users
//! (`--user-host-suffix apps.example.com` → `NAME.apps.example.com`), a host an admin
//! granted to their project (`POST /api/v1/claims`), or one whose DNS they proved they
//! control ([`crate::challenges`]). Never an IP address (in any notation: hosts are
//! canonical, [`edgefn_model::canonical_host`]), `localhost` or a name under it, a wildcard,
//! or a name the platform itself is reached by — the configured edge URL, a node's name,
//! the control plane's certificate. Admins may claim anything.

use edgefn_model::{canonical_host, is_ip_literal};

use crate::error::ApiError;
use crate::state::AppState;

/// The host rules of a control plane.
#[derive(Debug, Clone, Default)]
pub struct HostRules {
    /// Suffixes users claim names under, canonical (`apps.example.com`).
    suffixes: Vec<String>,
    /// Names the platform is reached by, canonical, each with what it is.
    reserved: Vec<(String, String)>,
}

impl HostRules {
    /// Rules delegating `suffixes` to users and keeping `reserved` (name, what it names)
    /// for the platform; a suffix that is not a host name is an error.
    pub fn new(suffixes: &[String], reserved: Vec<(String, String)>) -> anyhow::Result<Self> {
        let mut canonical = Vec::new();
        for suffix in suffixes {
            let name = canonical_host(suffix.trim_start_matches('.')).map_err(|e| anyhow::anyhow!("--user-host-suffix {e}"))?;
            anyhow::ensure!(!is_ip_literal(&name), "--user-host-suffix `{suffix}` is an address: users claim names under a domain");
            canonical.push(name);
        }
        let reserved = reserved.into_iter().filter_map(|(name, what)| canonical_host(&name).ok().map(|n| (n, what))).collect();
        Ok(Self { suffixes: canonical, reserved })
    }

    /// The suffixes delegated to users.
    pub fn suffixes(&self) -> &[String] {
        &self.suffixes
    }

    /// Whether `host` (canonical) is a name under a delegated suffix.
    fn delegated(&self, host: &str) -> bool {
        self.suffixes.iter().any(|s| host.strip_suffix(s.as_str()).is_some_and(|head| head.len() > 1 && head.ends_with('.')))
    }
}

/// A 403 unless an ordinary user may claim the named host `host` (canonical, no wildcard)
/// without an admin: `proven` says the caller proved control of its DNS, which stands in
/// for a delegated suffix but not for the platform's own names.
pub async fn check_user_host(state: &AppState, host: &str, proven: bool) -> Result<(), ApiError> {
    check_user_host_in(state, &platform_names(state).await?, host, proven)
}

/// [`check_user_host`] against the platform's names read once ([`platform_names`]), for a
/// caller that checks many hosts.
pub fn check_user_host_in(state: &AppState, platform: &[(String, String)], host: &str, proven: bool) -> Result<(), ApiError> {
    let how = "an admin can give it to your project (POST /api/v1/claims)";
    if is_ip_literal(host) {
        return Err(ApiError::forbidden(format!(
            "host `{host}` is an IP address: the edge's addresses are the platform's; use a name — {how}"
        )));
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Err(ApiError::forbidden(format!("host `{host}` names the machine itself (localhost): {how}")));
    }
    if let Some((_, what)) = platform.iter().find(|(name, _)| name == host) {
        return Err(ApiError::forbidden(format!("host `{host}` is {what}: it is the platform's; {how}")));
    }
    let rules = &state.settings.hosts;
    if proven || rules.delegated(host) {
        return Ok(());
    }
    let suffixes = match rules.suffixes() {
        [] => "none is delegated to users on this control plane".to_string(),
        list => format!("users claim names under {}", list.iter().map(|s| format!("`.{s}`")).collect::<Vec<_>>().join(", ")),
    };
    Err(ApiError::forbidden(format!(
        "host `{host}` is not under a suffix delegated to users ({suffixes}); {how}, or prove you control it with a DNS TXT \
         record (POST /api/v1/claims/challenges)"
    )))
}

/// The names the platform is reached by, canonical, each with what it is: the edge URL's
/// host, the configured reserved names (the control plane's certificate) and the nodes'.
pub async fn platform_names(state: &AppState) -> Result<Vec<(String, String)>, ApiError> {
    let mut names = Vec::new();
    if let Some(edge) = state.edge_url.get().and_then(|url| url_host(url)) {
        names.push((edge, "the edge's own host (its configured URL)".to_string()));
    }
    names.extend(state.settings.hosts.reserved.iter().cloned());
    for node in state.db.nodes().await? {
        if let Ok(name) = canonical_host(&node.name) {
            names.push((name, "the name of an edge node".to_string()));
        }
    }
    Ok(names)
}

/// The canonical host of a URL (`http://Edge.example.com:8000/` → `edge.example.com`).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    canonical_host(authority.rsplit_once('@').map_or(authority, |(_, host)| host)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_a_delegated_suffix_are_users_and_nothing_else_is() {
        let rules = HostRules::new(&["Apps.Example.com.".into()], vec![]).unwrap();
        assert_eq!(rules.suffixes(), ["apps.example.com"]);
        assert!(rules.delegated("shop.apps.example.com"));
        assert!(rules.delegated("a.b.apps.example.com"));
        assert!(!rules.delegated("apps.example.com"));
        assert!(!rules.delegated("evilapps.example.com"));
        assert!(HostRules::new(&["127.0.0.1".into()], vec![]).is_err());
        assert_eq!(url_host("http://Edge.Example.com:8000/x").as_deref(), Some("edge.example.com"));
        assert_eq!(url_host("http://127.0.0.1:8000").as_deref(), Some("127.0.0.1"));
    }
}
