//! Route matching: host (exact, `*.example.com` wildcard, or any) + path (exact, prefix,
//! regex) + methods, with priorities.
//!
//! **Which routes are considered.** A request's host picks one tier of routes: the routes
//! of its exact host if there are any, else those of the most specific wildcard host
//! (`*.a.example.com` before `*.example.com`) that has routes, else the routes for any
//! host. A host with routes never falls through to another tier, so the routes of one
//! owner's host are the only ones that can answer it (docs/permissions.md, "Routes").
//!
//! **Which route wins.** Among the routes of that tier whose path and method match, the
//! one with the highest `priority` wins. Equal priorities are settled, in order, by: the
//! more specific path match (exact > prefix > regex), the longer path pattern, and finally
//! the route created first (lower `seq`, then lower `id`). So the answer depends only on
//! the set of routes, never on the order they were given in.
//!
//! **How patterns match.** Hosts compare in canonical form ([`crate::canonical_host`]:
//! lower case, no port, punycode, one notation per IP address), and request paths in
//! normal form ([`crate::normalize_path`]: no dot or empty segments); a wildcard
//! `*.example.com` matches any name ending in `.example.com` (not `example.com` itself).
//! An exact path matches only itself. A prefix matches whole segments: `/api` matches
//! `/api` and `/api/users`, not `/apix`; `/` matches everything. A regex must match the
//! whole path (it is anchored) and stays inside its scope ([`route_scope`]): the literal
//! segments before its first special character (`/api/v[0-9]+` matches only under `/api`).
//! An empty method list means any method.
//!
//! **Cost.** Exact hosts and paths are hash lookups; prefixes are one lookup per path
//! segment; the regexes of a host are one `RegexSet`. Lookup time therefore depends on the
//! request, not on how many routes exist.

use std::collections::HashMap;

use regex::RegexSet;

use crate::address::{canonical_host, canonical_host_pattern, normalize_path, path_is_normal};
use serde::{Deserialize, Serialize};

named_enum! {
    /// How a route's path pattern matches.
    PathMatch, "match kind" {
        /// The whole path equals the pattern.
        Exact = "exact",
        /// The path starts with the pattern's segments.
        Prefix = "prefix",
        /// The whole path matches the pattern as a regular expression.
        Regex = "regex",
    }
}

/// The path prefix (whole segments, no trailing `/`) a route can match under: an exact
/// path itself, a prefix without its trailing `/`, and for a regex the literal text
/// before its first special character, cut back to a segment boundary (`/api/v[0-9]+` →
/// `/api`; `.*` → `""`, every path). Route ownership claims this space, and the router
/// never lets a regex match outside it.
pub fn route_scope(path: &str, kind: PathMatch) -> &str {
    match kind {
        PathMatch::Exact | PathMatch::Prefix => path.trim_end_matches('/'),
        PathMatch::Regex => {
            let literal = path.find(|c: char| "\\.^$|?*+()[]{}".contains(c)).map_or(path, |i| &path[..i]);
            if literal.len() == path.len() {
                return literal.trim_end_matches('/');
            }
            literal.rfind('/').map_or("", |i| &literal[..i])
        }
    }
}

/// `path` is `scope` or below it, segment-wise.
fn within(path: &str, scope: &str) -> bool {
    scope.is_empty() || path == scope || path.strip_prefix(scope).is_some_and(|rest| rest.starts_with('/'))
}

impl PathMatch {
    fn specificity(self) -> u8 {
        match self {
            Self::Exact => 2,
            Self::Prefix => 1,
            Self::Regex => 0,
        }
    }
}

/// A route as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec<T> {
    /// Unique id (the final tie-break).
    pub id: String,
    /// `example.com`, `*.example.com`, or `None` for any host.
    pub host: Option<String>,
    /// The path pattern.
    pub path: String,
    /// How `path` matches.
    pub kind: PathMatch,
    /// Upper-case methods; empty means any.
    pub methods: Vec<String>,
    /// Higher wins.
    pub priority: i64,
    /// POP names this route applies to (`tokyo-1`, or a prefix ending in `*` such as
    /// `tokyo-*`), comma-separated; `None` applies everywhere.
    pub pop_selector: Option<String>,
    /// Creation order (a tie-break after priority and specificity).
    pub seq: i64,
    /// What the route points at.
    pub target: T,
}

impl<T> RouteSpec<T> {
    /// A route for any host and method with priority 0.
    pub fn new(id: &str, path: &str, kind: PathMatch, target: T) -> Self {
        Self {
            id: id.to_string(),
            host: None,
            path: path.to_string(),
            kind,
            methods: vec![],
            priority: 0,
            pop_selector: None,
            seq: 0,
            target,
        }
    }

    /// Whether this route applies on a node of POP `pop`.
    pub fn applies_to_pop(&self, pop: Option<&str>) -> bool {
        let Some(selector) = &self.pop_selector else { return true };
        let Some(pop) = pop else { return false };
        selector.split(',').map(str::trim).any(|s| match s.strip_suffix('*') {
            Some(prefix) => pop.starts_with(prefix),
            None => s == pop,
        })
    }

    /// Whether the route matches this request (the reference definition the index
    /// must agree with).
    pub fn matches(&self, host: &str, path: &str, method: &str) -> bool {
        self.matches_location(&normalize_host(host), &normalize_path(path)) && self.allows(method)
    }

    fn allows(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(method))
    }

    fn matches_location(&self, host: &str, path: &str) -> bool {
        let host_ok = match self.host.as_deref() {
            None => true,
            Some(h) => match h.strip_prefix("*.") {
                Some(suffix) => host.strip_suffix(suffix).is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                None => host.eq_ignore_ascii_case(h),
            },
        };
        host_ok
            && match self.kind {
                PathMatch::Exact => path == self.path,
                PathMatch::Prefix => {
                    let p = self.path.trim_end_matches('/');
                    path == p || path.strip_prefix(p).is_some_and(|rest| rest.starts_with('/'))
                }
                PathMatch::Regex => {
                    within(path, route_scope(&self.path, PathMatch::Regex))
                        && regex::Regex::new(&format!("^(?:{})$", self.path)).is_ok_and(|r| r.is_match(path))
                }
            }
    }

    /// The ordering key within a host tier: the greatest key wins.
    fn rank(&self) -> (i64, u8, usize, std::cmp::Reverse<(i64, &str)>) {
        (self.priority, self.kind.specificity(), self.path.len(), std::cmp::Reverse((self.seq, self.id.as_str())))
    }
}

/// Why a route set could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// A regex path does not compile.
    #[error("route {id}: invalid regex `{pattern}`: {message}")]
    BadRegex {
        /// The route.
        id: String,
        /// The pattern.
        pattern: String,
        /// The compiler's message.
        message: String,
    },
    /// A host pattern is malformed.
    #[error("route {id}: invalid host `{host}`: use `example.com`, `*.example.com`, or leave it out for any host")]
    BadHost {
        /// The route.
        id: String,
        /// The pattern.
        host: String,
    },
    /// An exact or prefix path does not start with `/`.
    #[error("route {id}: path `{path}` must start with `/`")]
    BadPath {
        /// The route.
        id: String,
        /// The pattern.
        path: String,
    },
}

/// The result of a lookup.
#[derive(Debug)]
pub enum Lookup<'a, T> {
    /// The winning route.
    Found(&'a RouteSpec<T>),
    /// Routes match the host and path, but none allows the method; these methods would.
    MethodNotAllowed(Vec<String>),
    /// No route matches the host and path.
    NotFound,
}

/// The routes of one host pattern, indexed by path.
#[derive(Debug, Default)]
struct Bucket {
    exact: HashMap<String, Vec<usize>>,
    prefix: HashMap<String, Vec<usize>>,
    regex: Option<(RegexSet, Vec<usize>)>,
}

impl Bucket {
    fn candidates<T>(&self, routes: &[RouteSpec<T>], path: &str, out: &mut Vec<usize>) {
        if let Some(ids) = self.exact.get(path) {
            out.extend(ids);
        }
        // Every segment boundary of the path: "/a/b" → "/a/b", "/a", "".
        let mut end = path.len();
        loop {
            let key = &path[..end];
            if let Some(ids) = self.prefix.get(key) {
                out.extend(ids);
            }
            match key.rfind('/') {
                Some(i) => end = i,
                None => break,
            }
        }
        if let Some((set, ids)) = &self.regex {
            out.extend(set.matches(path).iter().map(|i| ids[i]).filter(|&r| within(path, route_scope(&routes[r].path, PathMatch::Regex))));
        }
    }
}

/// An immutable, indexed set of routes for one node.
#[derive(Debug)]
pub struct Router<T> {
    routes: Vec<RouteSpec<T>>,
    exact_hosts: HashMap<String, Bucket>,
    wildcard_hosts: HashMap<String, Bucket>,
    any_host: Bucket,
}

/// A request's host in canonical form ([`canonical_host`]); one that is not a host keeps
/// its lower-case text, which no named route has.
fn normalize_host(host: &str) -> String {
    canonical_host(host).unwrap_or_else(|_| host.to_ascii_lowercase())
}

impl<T> Router<T> {
    /// Indexes `routes` (those a node runs: the control plane chose them by POP).
    pub fn new(mut routes: Vec<RouteSpec<T>>) -> Result<Self, RouteError> {
        let mut exact_hosts: HashMap<String, Bucket> = HashMap::new();
        let mut wildcard_hosts: HashMap<String, Bucket> = HashMap::new();
        let mut any_host = Bucket::default();
        let mut regexes: HashMap<(u8, String), Vec<(String, usize)>> = HashMap::new();
        for (i, r) in routes.iter_mut().enumerate() {
            r.methods.iter_mut().for_each(|m| *m = m.to_ascii_uppercase());
            if r.kind != PathMatch::Regex && !r.path.starts_with('/') {
                return Err(RouteError::BadPath { id: r.id.clone(), path: r.path.clone() });
            }
            let (class, key) = match r.host.as_deref() {
                None => (0, String::new()),
                Some(h) => {
                    let h = canonical_host_pattern(h).map_err(|_| RouteError::BadHost { id: r.id.clone(), host: h.to_string() })?;
                    let name = h.strip_prefix("*.").unwrap_or(&h);
                    r.host = Some(h.clone());
                    if h.starts_with("*.") { (1, name.to_string()) } else { (2, name.to_string()) }
                }
            };
            let bucket = match class {
                0 => &mut any_host,
                1 => wildcard_hosts.entry(key.clone()).or_default(),
                _ => exact_hosts.entry(key.clone()).or_default(),
            };
            match r.kind {
                PathMatch::Exact => bucket.exact.entry(r.path.clone()).or_default().push(i),
                PathMatch::Prefix => bucket.prefix.entry(r.path.trim_end_matches('/').to_string()).or_default().push(i),
                PathMatch::Regex => {
                    regex::Regex::new(&format!("^(?:{})$", r.path)).map_err(|e| RouteError::BadRegex {
                        id: r.id.clone(),
                        pattern: r.path.clone(),
                        message: e.to_string(),
                    })?;
                    regexes.entry((class, key)).or_default().push((format!("^(?:{})$", r.path), i));
                }
            }
        }
        for ((class, key), entries) in regexes {
            let set = RegexSet::new(entries.iter().map(|(p, _)| p)).expect("each pattern compiled above");
            let ids = entries.into_iter().map(|(_, i)| i).collect();
            let bucket = match class {
                0 => &mut any_host,
                1 => wildcard_hosts.get_mut(&key).expect("bucket created above"),
                _ => exact_hosts.get_mut(&key).expect("bucket created above"),
            };
            bucket.regex = Some((set, ids));
        }
        Ok(Self { routes, exact_hosts, wildcard_hosts, any_host })
    }

    /// Number of routes that apply to this node.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// True when no route applies to this node.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The routes a request for `host` is matched against: its exact host's if it has
    /// any, else the most specific wildcard's, else those for any host.
    fn tier(&self, host: &str) -> &Bucket {
        if let Some(b) = self.exact_hosts.get(host) {
            return b;
        }
        // Wildcards: every proper suffix after a dot ("a.b.c" → "b.c", "c"), longest first.
        let mut rest = host;
        while let Some((_, suffix)) = rest.split_once('.') {
            if let Some(b) = self.wildcard_hosts.get(suffix) {
                return b;
            }
            rest = suffix;
        }
        &self.any_host
    }

    /// Finds the route for a request (its host and path are made canonical first).
    pub fn lookup(&self, host: &str, path: &str, method: &str) -> Lookup<'_, T> {
        let host = normalize_host(host);
        let normal;
        let path = if path_is_normal(path) {
            path
        } else {
            normal = normalize_path(path);
            normal.as_str()
        };
        let mut candidates = Vec::new();
        self.tier(&host).candidates(&self.routes, path, &mut candidates);

        let best = candidates.iter().map(|&i| &self.routes[i]).filter(|r| r.allows(method)).max_by(|a, b| a.rank().cmp(&b.rank()));
        match best {
            Some(r) => Lookup::Found(r),
            None if candidates.is_empty() => Lookup::NotFound,
            None => {
                let mut allowed: Vec<String> = candidates.iter().flat_map(|&i| self.routes[i].methods.iter().cloned()).collect();
                allowed.sort();
                allowed.dedup();
                Lookup::MethodNotAllowed(allowed)
            }
        }
    }
}
