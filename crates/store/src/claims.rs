//! Route ownership: who owns which part of the edge's address space. A claim is a named
//! host (`shop.example.com`, or `*.example.com` for its subdomains), or a path prefix of
//! the default host (the routes without a host), owned by a project or reserved for
//! admins. Claims never overlap; a route is stored only inside a claim of its module's
//! project ([`Database::create_route`]), so one project's routes cannot shadow or answer
//! another's.

use serde::Serialize;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use crate::audit::{Change, append};
use crate::database::Database;
use crate::error::StoreError;
use crate::models::Actor;
use crate::time::{now_ms, rfc3339};

/// The part of the address space a route or claim covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpace {
    /// `""` for the default host, else a host name or `*.` and a host name, lower case.
    pub host: String,
    /// Whole path segments without a trailing `/` (`/api/v1`); `""` is every path.
    pub prefix: String,
}

impl RouteSpace {
    /// A space; the host is lower-cased and the prefix loses its trailing `/`.
    pub fn new(host: Option<&str>, prefix: &str) -> Self {
        Self { host: host.unwrap_or_default().to_ascii_lowercase(), prefix: prefix.trim_end_matches('/').to_string() }
    }

    /// The claim a route in this space takes: a named host whole, a default-host prefix as is.
    pub fn claimed(&self) -> Self {
        if self.host.is_empty() { self.clone() } else { Self { host: self.host.clone(), prefix: String::new() } }
    }

    /// Whether the two spaces share any request.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.covers(other) || other.covers(self)
    }

    /// Whether every request in `other` is in this space.
    pub fn covers(&self, other: &Self) -> bool {
        host_covers(&self.host, &other.host) && segment_prefix(&self.prefix, &other.prefix)
    }
}

/// `a` is `b` or a wildcard over it (`*.x.com` covers `a.x.com`, `*.a.x.com`); the
/// default host only covers itself.
fn host_covers(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match a.strip_prefix("*.") {
        Some(suffix) => !b.is_empty() && b.strip_suffix(suffix).is_some_and(|head| head.ends_with('.') && head.len() > 1),
        None => false,
    }
}

/// `prefix` is `path` or whole leading segments of it.
fn segment_prefix(prefix: &str, path: &str) -> bool {
    prefix.is_empty() || path == prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('/'))
}

/// A claim, as the API shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteClaim {
    /// UUID.
    pub id: String,
    /// `""` for the default host.
    pub host: String,
    /// Path prefix (`""` for every path).
    pub path_prefix: String,
    /// Owning project; `None` when reserved for admins.
    pub project_id: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    /// Why it does not serve, when the host and path rules refuse it and no admin kept it.
    pub held: Option<String>,
    /// When an admin kept it (or made it), milliseconds since the epoch.
    pub kept_at: Option<i64>,
}

impl RouteClaim {
    /// The space it claims.
    pub fn space(&self) -> RouteSpace {
        RouteSpace { host: self.host.clone(), prefix: self.path_prefix.clone() }
    }
}

/// Claims overlapping `space`, oldest first. The query reads only candidates, each found
/// in the (host, path) index: the space's host and the wildcards over it, each with the
/// path prefixes above the space's and those below it — so its cost does not grow with the
/// number of claims. Only a wildcard space also looks for the names under it, by suffix.
pub(crate) async fn overlapping(conn: &mut SqliteConnection, space: &RouteSpace) -> Result<Vec<RouteClaim>, StoreError> {
    let mut hosts = vec![space.host.clone()];
    let name = space.host.strip_prefix("*.").unwrap_or(&space.host);
    hosts.extend(name.match_indices('.').map(|(at, _)| format!("*{}", &name[at..])));
    let mut above = vec![String::new()];
    above.extend(space.prefix.match_indices('/').filter(|(at, _)| *at > 0).map(|(at, _)| space.prefix[..at].to_string()));
    above.push(space.prefix.clone());
    let in_hosts = |q: &mut QueryBuilder<Sqlite>| {
        let mut list = q.separated(", ");
        for host in &hosts {
            list.push_bind(host.clone());
        }
    };
    let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM route_claims WHERE host IN (");
    in_hosts(&mut q);
    q.push(") AND path_prefix IN (");
    let mut list = q.separated(", ");
    for prefix in above {
        list.push_bind(prefix);
    }
    // Below the prefix: the paths that continue it with `/`, a range in the index ('0' is
    // the character after '/').
    q.push(") UNION SELECT * FROM route_claims WHERE host IN (");
    in_hosts(&mut q);
    q.push(") AND path_prefix >= ")
        .push_bind(format!("{}/", space.prefix))
        .push(" AND path_prefix < ")
        .push_bind(format!("{}0", space.prefix));
    if space.host.starts_with("*.") {
        let escaped = name.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        q.push(" UNION SELECT * FROM route_claims WHERE host LIKE ").push_bind(format!("%.{escaped}")).push(" ESCAPE '\\'");
    }
    q.push(" ORDER BY created_at, id");
    let candidates: Vec<RouteClaim> = q.build_query_as().fetch_all(&mut *conn).await?;
    Ok(candidates.into_iter().filter(|c| c.space().overlaps(space)).collect())
}

/// Inserts a claim of `space` for `project_id` after checking, inside the transaction,
/// that no claim of another owner overlaps it.
pub(crate) async fn insert(
    conn: &mut SqliteConnection,
    actor: &Actor,
    space: &RouteSpace,
    project_id: Option<&str>,
    kept: bool,
) -> Result<RouteClaim, StoreError> {
    if let Some(taken) = overlapping(conn, space).await?.into_iter().find(|c| c.project_id.as_deref() != project_id || c.space() == *space)
    {
        return Err(StoreError::Claimed(Box::new(taken)));
    }
    let claim = RouteClaim {
        id: uuid::Uuid::new_v4().to_string(),
        host: space.host.clone(),
        path_prefix: space.prefix.clone(),
        project_id: project_id.map(str::to_string),
        created_at: now_ms(),
        held: None,
        kept_at: kept.then(now_ms),
    };
    sqlx::query("INSERT INTO route_claims (id, host, path_prefix, project_id, created_at, kept_at) VALUES (?, ?, ?, ?, ?, ?)")
        .bind(&claim.id)
        .bind(&claim.host)
        .bind(&claim.path_prefix)
        .bind(&claim.project_id)
        .bind(claim.created_at)
        .bind(claim.kept_at)
        .execute(&mut *conn)
        .await?;
    append(conn, actor, Change::new("route_claim", &claim.id, "create", None, Some(&claim))).await?;
    Ok(claim)
}

impl Database {
    /// Every claim, oldest first.
    pub async fn claims(&self) -> Result<Vec<RouteClaim>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM route_claims ORDER BY created_at, id").fetch_all(&self.pool).await?)
    }

    /// The claims held from serving, oldest first.
    pub async fn held_claims(&self) -> Result<Vec<RouteClaim>, StoreError> {
        Ok(sqlx::query_as("SELECT * FROM route_claims WHERE held IS NOT NULL ORDER BY created_at, id").fetch_all(&self.pool).await?)
    }

    /// Claims overlapping `space`, oldest first.
    pub async fn overlapping_claims(&self, space: &RouteSpace) -> Result<Vec<RouteClaim>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        overlapping(&mut conn, space).await
    }

    /// One claim.
    pub async fn claim(&self, id: &str) -> Result<RouteClaim, StoreError> {
        let row: Option<RouteClaim> = sqlx::query_as("SELECT * FROM route_claims WHERE id = ?").bind(id).fetch_optional(&self.pool).await?;
        row.ok_or_else(|| StoreError::NotFound(format!("claim {id}")))
    }

    /// Claims `space` for `project_id` (or for admins), `kept` when an admin decided on it
    /// (a grant, a proven host); [`StoreError::Claimed`] names the claim it would overlap.
    pub async fn create_claim(
        &self,
        actor: &Actor,
        space: &RouteSpace,
        project_id: Option<&str>,
        kept: bool,
    ) -> Result<RouteClaim, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let claim = insert(&mut tx, actor, space, project_id, kept).await?;
        self.commit_audited(tx).await?;
        Ok(claim)
    }

    /// Holds a claim from serving with `why`, or lets it serve again (`None`); a change
    /// only when it changes anything.
    pub async fn hold_claim(&self, actor: &Actor, id: &str, why: Option<&str>) -> Result<RouteClaim, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old: Option<RouteClaim> = sqlx::query_as("SELECT * FROM route_claims WHERE id = ?").bind(id).fetch_optional(&mut *tx).await?;
        let old = old.ok_or_else(|| StoreError::NotFound(format!("claim {id}")))?;
        if old.held.as_deref() == why {
            return Ok(old);
        }
        sqlx::query("UPDATE route_claims SET held = ? WHERE id = ?").bind(why).bind(id).execute(&mut *tx).await?;
        let new = RouteClaim { held: why.map(str::to_string), ..old.clone() };
        append(&mut tx, actor, Change::new("route_claim", id, if why.is_some() { "hold" } else { "release" }, Some(&old), Some(&new)))
            .await?;
        // What nodes serve changes with it: the routes inside stop or start.
        crate::nodes::record_change(&mut tx, "route_claim", id).await?;
        self.commit_audited(tx).await?;
        Ok(new)
    }

    /// An admin keeps a claim as it is: it serves, whatever the rules say of it.
    pub async fn keep_claim(&self, actor: &Actor, id: &str) -> Result<RouteClaim, StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old: Option<RouteClaim> = sqlx::query_as("SELECT * FROM route_claims WHERE id = ?").bind(id).fetch_optional(&mut *tx).await?;
        let old = old.ok_or_else(|| StoreError::NotFound(format!("claim {id}")))?;
        let new = RouteClaim { held: None, kept_at: Some(now_ms()), ..old.clone() };
        sqlx::query("UPDATE route_claims SET held = NULL, kept_at = ? WHERE id = ?").bind(new.kept_at).bind(id).execute(&mut *tx).await?;
        append(&mut tx, actor, Change::new("route_claim", id, "keep", Some(&old), Some(&new))).await?;
        if old.held.is_some() {
            crate::nodes::record_change(&mut tx, "route_claim", id).await?;
        }
        self.commit_audited(tx).await?;
        Ok(new)
    }

    /// Deletes a claim whose space no longer holds a route.
    pub async fn delete_claim(&self, actor: &Actor, id: &str, routes_inside: impl Fn(&RouteClaim) -> usize) -> Result<(), StoreError> {
        let (_lock, mut tx) = self.begin_audited().await?;
        let old: Option<RouteClaim> = sqlx::query_as("SELECT * FROM route_claims WHERE id = ?").bind(id).fetch_optional(&mut *tx).await?;
        let old = old.ok_or_else(|| StoreError::NotFound(format!("claim {id}")))?;
        let inside = routes_inside(&old);
        if inside > 0 {
            return Err(StoreError::Conflict(format!("claim {id} still holds {inside} route(s); delete them first")));
        }
        sqlx::query("DELETE FROM route_claims WHERE id = ?").bind(id).execute(&mut *tx).await?;
        append(&mut tx, actor, Change::new("route_claim", id, "delete", Some(&old), None)).await?;
        self.commit_audited(tx).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_overlap_by_host_and_whole_segments() {
        let s = |h: Option<&str>, p: &str| RouteSpace::new(h, p);
        assert!(s(None, "/api").covers(&s(None, "/api/v1")));
        assert!(!s(None, "/api").overlaps(&s(None, "/apix")));
        assert!(s(None, "/").covers(&s(None, "/anything")));
        assert!(!s(None, "/").overlaps(&s(Some("x.com"), "/")), "the default host and a named host are apart");
        assert!(s(Some("*.x.com"), "/").covers(&s(Some("a.x.com"), "/")));
        assert!(s(Some("*.x.com"), "/").covers(&s(Some("*.a.x.com"), "/")));
        assert!(!s(Some("*.x.com"), "/").overlaps(&s(Some("x.com"), "/")));
        assert!(s(Some("A.X.com"), "/").overlaps(&s(Some("a.x.com"), "/b")));
        assert_eq!(s(Some("x.com"), "/deep/path").claimed(), s(Some("x.com"), ""));
    }
}
