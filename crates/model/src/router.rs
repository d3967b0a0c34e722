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
//! request, not on how many routes exist. The index is built of persistent maps, so a
//! node copies it and adds or removes a route in time that follows the change, not the
//! number of routes (only the regex set of the host a regex route changes is rebuilt).

use std::sync::Arc;

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

/// A route as the index holds it: shared by every copy of the router.
type Entry<T> = Arc<RouteSpec<T>>;

/// The host pattern a route is filed under: the tier of requests it can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tier {
    /// No host: any host without routes of its own.
    Any,
    /// `*.name`: the names under `name`.
    Wildcard(String),
    /// Exactly this host.
    Exact(String),
}

impl Tier {
    /// The tier of a route whose host is canonical.
    fn of<T>(route: &RouteSpec<T>) -> Self {
        match route.host.as_deref() {
            None => Self::Any,
            Some(h) => match h.strip_prefix("*.") {
                Some(name) => Self::Wildcard(name.to_string()),
                None => Self::Exact(h.to_string()),
            },
        }
    }
}

/// The routes of one host pattern, indexed by path. Persistent maps: a copy costs
/// nothing, and a change copies only the part it touches.
#[derive(Debug)]
struct Bucket<T> {
    exact: imbl::HashMap<String, Vec<Entry<T>>>,
    prefix: imbl::HashMap<String, Vec<Entry<T>>>,
    /// The regex routes by id, and one set over all of them (built again when they change).
    regexes: imbl::OrdMap<String, Entry<T>>,
    set: Option<Arc<(RegexSet, Vec<Entry<T>>)>>,
}

impl<T> Default for Bucket<T> {
    fn default() -> Self {
        Self { exact: Default::default(), prefix: Default::default(), regexes: Default::default(), set: None }
    }
}

impl<T> Clone for Bucket<T> {
    fn clone(&self) -> Self {
        Self { exact: self.exact.clone(), prefix: self.prefix.clone(), regexes: self.regexes.clone(), set: self.set.clone() }
    }
}

/// Adds `entry` to the routes filed under `key`.
fn file<T>(map: &mut imbl::HashMap<String, Vec<Entry<T>>>, key: String, entry: Entry<T>) {
    map.entry(key).or_default().push(entry);
}

/// Takes the route `id` from those filed under `key`, dropping the key when none is left.
fn unfile<T>(map: &mut imbl::HashMap<String, Vec<Entry<T>>>, key: &str, id: &str) {
    if let Some(entries) = map.get_mut(key) {
        entries.retain(|e| e.id != id);
        if entries.is_empty() {
            map.remove(key);
        }
    }
}

impl<T> Bucket<T> {
    fn candidates<'a>(&'a self, path: &str, out: &mut Vec<&'a RouteSpec<T>>) {
        if let Some(entries) = self.exact.get(path) {
            out.extend(entries.iter().map(|e| &**e));
        }
        // Every segment boundary of the path: "/a/b" → "/a/b", "/a", "".
        let mut end = path.len();
        loop {
            let key = &path[..end];
            if let Some(entries) = self.prefix.get(key) {
                out.extend(entries.iter().map(|e| &**e));
            }
            match key.rfind('/') {
                Some(i) => end = i,
                None => break,
            }
        }
        if let Some(indexed) = &self.set {
            let (set, entries) = &**indexed;
            let inside =
                set.matches(path).into_iter().map(|i| &*entries[i]).filter(|r| within(path, route_scope(&r.path, PathMatch::Regex)));
            out.extend(inside);
        }
    }

    /// Files a route (its regex set is built by [`Self::index_regexes`]).
    fn add(&mut self, entry: Entry<T>) {
        match entry.kind {
            PathMatch::Exact => file(&mut self.exact, entry.path.clone(), entry),
            PathMatch::Prefix => file(&mut self.prefix, entry.path.trim_end_matches('/').to_string(), entry),
            PathMatch::Regex => drop(self.regexes.insert(entry.id.clone(), entry)),
        }
    }

    /// Takes a route out; true when it was a regex, so the set must be built again.
    fn take(&mut self, route: &RouteSpec<T>) -> bool {
        match route.kind {
            PathMatch::Exact => unfile(&mut self.exact, &route.path, &route.id),
            PathMatch::Prefix => unfile(&mut self.prefix, route.path.trim_end_matches('/'), &route.id),
            PathMatch::Regex => return self.regexes.remove(&route.id).is_some(),
        }
        false
    }

    /// Builds the one set over this bucket's regex routes.
    fn index_regexes(&mut self) -> Result<(), RouteError> {
        if self.regexes.is_empty() {
            self.set = None;
            return Ok(());
        }
        let entries: Vec<Entry<T>> = self.regexes.values().cloned().collect();
        let set = RegexSet::new(entries.iter().map(|e| anchored(&e.path))).map_err(|e| {
            let last = entries.last().expect("not empty");
            RouteError::BadRegex { id: last.id.clone(), pattern: last.path.clone(), message: e.to_string() }
        })?;
        self.set = Some(Arc::new((set, entries)));
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefix.is_empty() && self.regexes.is_empty()
    }
}

/// A regex path as it must match: the whole path.
fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// A route made ready for the index: methods in upper case, its host canonical, its path
/// checked (a regex must compile).
fn checked<T>(mut r: RouteSpec<T>) -> Result<RouteSpec<T>, RouteError> {
    r.methods.iter_mut().for_each(|m| *m = m.to_ascii_uppercase());
    if r.kind != PathMatch::Regex && !r.path.starts_with('/') {
        return Err(RouteError::BadPath { id: r.id.clone(), path: r.path.clone() });
    }
    if let Some(h) = r.host.as_deref() {
        let canonical = canonical_host_pattern(h).map_err(|_| RouteError::BadHost { id: r.id.clone(), host: h.to_string() })?;
        r.host = Some(canonical);
    }
    if r.kind == PathMatch::Regex {
        regex::Regex::new(&anchored(&r.path)).map_err(|e| RouteError::BadRegex {
            id: r.id.clone(),
            pattern: r.path.clone(),
            message: e.to_string(),
        })?;
    }
    Ok(r)
}

/// An indexed set of routes for one node, by id. Copying it costs nothing, and a copy
/// changed by [`Router::insert`] or [`Router::remove`] costs what the change touches, not
/// the number of routes: a node applies a delivery to a copy and swaps the copy in.
#[derive(Debug)]
pub struct Router<T> {
    routes: imbl::HashMap<String, Entry<T>>,
    exact_hosts: imbl::HashMap<String, Bucket<T>>,
    wildcard_hosts: imbl::HashMap<String, Bucket<T>>,
    any_host: Bucket<T>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self {
            routes: Default::default(),
            exact_hosts: Default::default(),
            wildcard_hosts: Default::default(),
            any_host: Bucket::default(),
        }
    }
}

impl<T> Clone for Router<T> {
    fn clone(&self) -> Self {
        Self {
            routes: self.routes.clone(),
            exact_hosts: self.exact_hosts.clone(),
            wildcard_hosts: self.wildcard_hosts.clone(),
            any_host: self.any_host.clone(),
        }
    }
}

/// A request's host in canonical form ([`canonical_host`]); one that is not a host keeps
/// its lower-case text, which no named route has.
fn normalize_host(host: &str) -> String {
    canonical_host(host).unwrap_or_else(|_| host.to_ascii_lowercase())
}

impl<T> Router<T> {
    /// Indexes `routes` (those a node runs: the control plane chose them by POP); a
    /// route with the id of one before it replaces that one.
    pub fn new(routes: Vec<RouteSpec<T>>) -> Result<Self, RouteError> {
        let mut router = Self::default();
        for route in routes {
            router.place(checked(route)?);
        }
        // Each host's regex set is built once, over all of its regex routes.
        router.any_host.index_regexes()?;
        for (_, bucket) in router.exact_hosts.iter_mut().chain(router.wildcard_hosts.iter_mut()) {
            bucket.index_regexes()?;
        }
        Ok(router)
    }

    /// Adds a route, or replaces the one with its id. A route the router cannot take is
    /// refused with the reason, and the router is left as it was.
    pub fn insert(&mut self, route: RouteSpec<T>) -> Result<(), RouteError> {
        let route = checked(route)?;
        let mut next = self.clone();
        let (tier, regex) = (Tier::of(&route), route.kind == PathMatch::Regex);
        next.place(route);
        if regex {
            next.bucket_mut(&tier).index_regexes()?;
        }
        *self = next;
        Ok(())
    }

    /// Takes out the route `id`; false when there is none.
    pub fn remove(&mut self, id: &str) -> bool {
        let Some(old) = self.routes.remove(id) else { return false };
        let tier = Tier::of(&old);
        let bucket = self.bucket_mut(&tier);
        if bucket.take(&old) {
            bucket.index_regexes().expect("the rest of a regex set that was built builds");
        }
        // A host left without routes must not keep its tier: its requests fall through.
        if bucket.is_empty() {
            match tier {
                Tier::Any => {}
                Tier::Wildcard(name) => drop(self.wildcard_hosts.remove(&name)),
                Tier::Exact(name) => drop(self.exact_hosts.remove(&name)),
            }
        }
        true
    }

    /// Files a checked route under its host and path, in place of one with its id.
    fn place(&mut self, route: RouteSpec<T>) {
        self.remove(&route.id);
        let entry = Arc::new(route);
        self.bucket_mut(&Tier::of(&entry)).add(entry.clone());
        self.routes.insert(entry.id.clone(), entry);
    }

    fn bucket_mut(&mut self, tier: &Tier) -> &mut Bucket<T> {
        match tier {
            Tier::Any => &mut self.any_host,
            Tier::Wildcard(name) => self.wildcard_hosts.entry(name.clone()).or_default(),
            Tier::Exact(name) => self.exact_hosts.entry(name.clone()).or_default(),
        }
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
    fn tier(&self, host: &str) -> &Bucket<T> {
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
        self.tier(&host).candidates(path, &mut candidates);

        let best = candidates.iter().copied().filter(|r| r.allows(method)).max_by(|a, b| a.rank().cmp(&b.rank()));
        match best {
            Some(r) => Lookup::Found(r),
            None if candidates.is_empty() => Lookup::NotFound,
            None => {
                let mut allowed: Vec<String> = candidates.iter().flat_map(|r| r.methods.iter().cloned()).collect();
                allowed.sort();
                allowed.dedup();
                Lookup::MethodNotAllowed(allowed)
            }
        }
    }
}
