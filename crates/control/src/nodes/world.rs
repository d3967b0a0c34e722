//! What nodes should run, kept in memory and brought forward change by change: the
//! [`World`] holds every route, the modules routes point at, and each resource as nodes
//! receive it (encoded once, shared by every node stream). [`Current`] follows the change
//! log: each new revision re-reads only the routes and modules its changes name and
//! records which resources it changed, so a node stream sends those and nothing else. A
//! full read happens at start, when a route claim changes (a claim held for review
//! decides which routes serve), and when the log no longer covers the revision held.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use edgefn_model::{Function, PathMatch, Resource, Route, Target, Version};
use edgefn_proto::v1;
use edgefn_store::{Changed, Database, Module, ModuleVersion, RouteSpace, Routed, StoreError};
use tokio::sync::watch;

/// Changes arriving this close together go out as one delta.
const COALESCE: Duration = Duration::from_millis(10);
/// How often the change log is read for changes made by another process (a control-plane
/// replica over the same database).
const POLL_EVERY: Duration = Duration::from_millis(500);
/// Revisions whose changed names are remembered for node streams that are behind.
const JOURNAL_REVISIONS: usize = 4_096;
/// Names the journal holds at most; a stream further behind diffs its whole view.
const JOURNAL_NAMES: usize = 200_000;

/// A stored route as nodes see it.
pub fn route_of(r: &edgefn_store::Route) -> Route {
    Route {
        id: r.id.clone(),
        host: r.host.clone(),
        path: r.path.clone(),
        kind: r.match_kind.parse().unwrap_or(PathMatch::Exact),
        methods: r.methods.clone(),
        priority: r.priority,
        pop_selector: r.pop_selector.clone(),
        seq: r.seq,
        target: Target { function_id: r.module_id.clone(), version: r.version.clone() },
    }
}

/// A stored module as nodes see it, with the versions named.
fn function_of(m: &Module, versions: &[&ModuleVersion]) -> Result<Function, StoreError> {
    let bad = |e: edgefn_model::UnknownValue| StoreError::Internal(format!("module {}: {e}", m.id));
    let mut named = std::collections::BTreeMap::new();
    for v in versions {
        let version = Version {
            label: v.version.clone(),
            sha256: v.sha256.clone(),
            size: v.size_bytes.max(0) as u64,
            kind: v.kind.parse().map_err(bad)?,
        };
        named.insert(v.version.clone(), version);
    }
    Ok(Function {
        id: m.id.clone(),
        name: m.name.clone(),
        owner: m.project_id.clone().unwrap_or_else(|| m.owner_id.clone()),
        class: m.owner_type.parse().map_err(bad)?,
        status: m.status.parse().map_err(bad)?,
        timeout_ms: m.timeout_ms.max(0) as u64,
        max_memory_pages: m.max_memory_pages.max(0) as u64,
        max_instances: m.max_instances.clamp(0, u32::MAX as i64) as u32,
        reuse_instances: m.reuse_instances,
        http_timeout_ms: m.http_timeout_ms.map(|t| t.max(1) as u64),
        max_body_bytes: m.max_body_bytes.map(|b| b.max(1) as u64),
        env: m.env.values().clone(),
        allow_hosts: m.allow_hosts.clone(),
        latest: m.latest_version.clone(),
        versions: named,
    })
}

/// The names of the resources one step of the change log changed.
struct Step {
    /// The revision before it.
    from: u64,
    /// The revision after it.
    to: u64,
    names: Vec<String>,
}

/// Everything nodes run at one revision, with the rows it came from.
#[derive(Default)]
pub struct World {
    /// The change log's revision it is at.
    pub revision: u64,
    /// Every stored route, those inside a held claim too.
    stored: HashMap<String, edgefn_store::Route>,
    /// Stored route ids by the module they point at.
    stored_of: HashMap<String, BTreeSet<String>>,
    /// Claims held for review: routes inside them do not serve until an admin decides.
    held: Vec<RouteSpace>,
    /// The rows of modules stored routes point at, with their versions (newest first).
    modules: HashMap<String, (Module, Vec<ModuleVersion>)>,
    /// The routes nodes serve.
    serving: HashMap<String, Route>,
    /// Serving route ids by the function they run.
    serving_of: HashMap<String, BTreeSet<String>>,
    /// The functions nodes run (with the versions their routes name).
    functions: HashMap<String, Function>,
    /// Function ids by the digest of an artifact they run.
    digests: HashMap<String, BTreeSet<String>>,
    /// Every resource as nodes receive it, by name.
    encoded: HashMap<String, Arc<v1::Resource>>,
    /// The names recent revisions changed, oldest first.
    journal: VecDeque<Step>,
    journal_names: usize,
}

impl World {
    /// A world from every row: at start, and when changes cannot be applied one by one.
    fn from_rows(routed: Routed, held: Vec<RouteSpace>) -> Self {
        let mut world = Self { revision: routed.revision, held, ..Self::default() };
        let mut versions: HashMap<String, Vec<ModuleVersion>> = HashMap::new();
        for v in routed.versions {
            versions.entry(v.module_id.clone()).or_default().push(v);
        }
        for m in routed.modules {
            let of = versions.remove(&m.id).unwrap_or_default();
            world.modules.insert(m.id.clone(), (m, of));
        }
        let ids: Vec<String> = routed.routes.iter().map(|r| r.id.clone()).collect();
        for r in routed.routes {
            world.store_route(r.id.clone(), Some(r));
        }
        let mut functions = BTreeSet::new();
        let mut ignored = Vec::new();
        for id in &ids {
            world.refresh_route(id, &mut functions, &mut ignored);
        }
        for id in &functions {
            world.refresh_function(id, &mut ignored);
        }
        world
    }

    /// Replaces this world with one read whole, and records what differs.
    fn replace(&mut self, routed: Routed, held: Vec<RouteSpace>) {
        let mut next = Self::from_rows(routed, held);
        let mut names: Vec<String> = next
            .encoded
            .iter()
            .filter(|(name, r)| self.encoded.get(*name).is_none_or(|old| old.version != r.version))
            .map(|(name, _)| name.clone())
            .collect();
        names.extend(self.encoded.keys().filter(|name| !next.encoded.contains_key(*name)).cloned());
        // A function whose routes differ may run in other POPs than before.
        let moved = next.serving_of.iter().filter(|(id, routes)| self.serving_of.get(*id) != Some(routes)).map(|(id, _)| id);
        names.extend(moved.map(|id| format!("function/{id}")));
        next.journal = std::mem::take(&mut self.journal);
        next.journal_names = self.journal_names;
        let from = self.revision;
        *self = next;
        self.record(from, names);
    }

    /// Applies the changes read after this world's revision, touching only what they name.
    fn advance(&mut self, changed: Changed) {
        let from = self.revision;
        let mut routes = BTreeSet::new();
        let mut functions = BTreeSet::new();
        for (id, row) in changed.routes {
            self.store_route(id.clone(), row);
            routes.insert(id);
        }
        for m in changed.modules {
            let now: BTreeSet<&str> = m.routes.iter().map(|r| r.id.as_str()).collect();
            let gone: Vec<String> =
                self.stored_of.get(&m.id).into_iter().flatten().filter(|id| !now.contains(id.as_str())).cloned().collect();
            for id in gone {
                self.store_route(id.clone(), None);
                routes.insert(id);
            }
            for r in m.routes {
                routes.insert(r.id.clone());
                self.store_route(r.id.clone(), Some(r));
            }
            match m.row {
                Some(row) => self.modules.insert(m.id.clone(), (row, m.versions)),
                None => self.modules.remove(&m.id),
            };
            functions.insert(m.id);
        }
        let mut names = Vec::new();
        for id in &routes {
            self.refresh_route(id, &mut functions, &mut names);
        }
        for id in &functions {
            self.refresh_function(id, &mut names);
            if !self.stored_of.contains_key(id) {
                self.modules.remove(id);
            }
        }
        self.revision = changed.revision;
        self.record(from, names);
    }

    fn record(&mut self, from: u64, names: Vec<String>) {
        self.journal_names += names.len();
        self.journal.push_back(Step { from, to: self.revision, names });
        while self.journal.len() > JOURNAL_REVISIONS || (self.journal_names > JOURNAL_NAMES && self.journal.len() > 1) {
            let dropped = self.journal.pop_front().expect("the journal is not empty");
            self.journal_names -= dropped.names.len();
        }
    }

    /// Puts (or, with `None`, drops) a stored route.
    fn store_route(&mut self, id: String, row: Option<edgefn_store::Route>) {
        if let Some(old) = self.stored.remove(&id)
            && let Some(ids) = self.stored_of.get_mut(&old.module_id)
        {
            ids.remove(&id);
            if ids.is_empty() {
                self.stored_of.remove(&old.module_id);
            }
        }
        if let Some(row) = row {
            self.stored_of.entry(row.module_id.clone()).or_default().insert(id.clone());
            self.stored.insert(id, row);
        }
    }

    /// Brings a route as nodes see it in line with its stored row; the functions it ran
    /// and runs go into `functions` (their pinned versions may have changed).
    fn refresh_route(&mut self, id: &str, functions: &mut BTreeSet<String>, names: &mut Vec<String>) {
        if let Some(old) = self.serving.remove(id) {
            let fid = &old.target.function_id;
            if let Some(ids) = self.serving_of.get_mut(fid) {
                ids.remove(id);
                if ids.is_empty() {
                    self.serving_of.remove(fid);
                }
            }
            functions.insert(fid.clone());
        }
        let held = |r: &edgefn_store::Route| !self.held.is_empty() && self.held.iter().any(|h| h.covers(&crate::claims::route_space(r)));
        let route = self.stored.get(id).filter(|r| !held(r)).map(route_of);
        if let Some(route) = &route {
            let fid = route.target.function_id.clone();
            self.serving_of.entry(fid.clone()).or_default().insert(id.to_string());
            self.serving.insert(id.to_string(), route.clone());
            functions.insert(fid);
        }
        self.encode(format!("route/{id}"), route.map(Resource::Route), names);
    }

    /// Brings a function as nodes see it in line with its module and the routes naming it.
    fn refresh_function(&mut self, id: &str, names: &mut Vec<String>) {
        let function = match (self.serving_of.get(id), self.modules.get(id)) {
            (Some(routes), Some((module, versions))) => {
                let pins: Vec<Option<&str>> =
                    routes.iter().filter_map(|r| self.serving.get(r)).map(|r| r.target.version.as_deref()).collect();
                let named: Vec<&ModuleVersion> = versions
                    .iter()
                    .filter(|v| {
                        pins.iter().any(|p| p.map_or(module.latest_version.as_deref() == Some(v.version.as_str()), |p| p == v.version))
                    })
                    .collect();
                match function_of(module, &named) {
                    Ok(function) => Some(function),
                    Err(e) => {
                        tracing::error!(error = %e, "a module nodes run cannot be read; nodes are not sent it");
                        None
                    }
                }
            }
            _ => None,
        };
        if let Some(old) = self.functions.remove(id) {
            for v in old.versions.values() {
                if let Some(ids) = self.digests.get_mut(&v.sha256) {
                    ids.remove(id);
                    if ids.is_empty() {
                        self.digests.remove(&v.sha256);
                    }
                }
            }
        }
        if let Some(function) = &function {
            for v in function.versions.values() {
                self.digests.entry(v.sha256.clone()).or_default().insert(id.to_string());
            }
            self.functions.insert(id.to_string(), function.clone());
        }
        // Its routes changed, or its module: even with the same encoding, the POPs that
        // run it may differ, so streams look at it again.
        let name = format!("function/{id}");
        let mut ignored = Vec::new();
        self.encode(name.clone(), function.map(Resource::Function), &mut ignored);
        names.push(name);
    }

    /// Sets the encoded form of a resource, noting its name when it changed.
    fn encode(&mut self, name: String, resource: Option<Resource>, names: &mut Vec<String>) {
        let changed = match resource {
            Some(resource) => {
                let wire = v1::Resource::from(&resource);
                let changed = self.encoded.get(&name).is_none_or(|old| old.version != wire.version);
                if changed {
                    self.encoded.insert(name.clone(), Arc::new(wire));
                }
                changed
            }
            None => self.encoded.remove(&name).is_some(),
        };
        if changed {
            names.push(name);
        }
    }

    /// The resource a node of POP `pop` holds under `name`, if it holds one.
    pub fn visible(&self, name: &str, pop: Option<&str>) -> Option<&Arc<v1::Resource>> {
        let resource = self.encoded.get(name)?;
        let applies = if let Some(id) = name.strip_prefix("route/") {
            self.serving.get(id).is_some_and(|r| r.applies_to_pop(pop))
        } else if let Some(id) = name.strip_prefix("function/") {
            self.function_visible(id, pop)
        } else {
            false
        };
        applies.then_some(resource)
    }

    /// Whether a node of POP `pop` runs the function `id`: a route it serves runs it.
    pub fn function_visible(&self, id: &str, pop: Option<&str>) -> bool {
        self.serving_of.get(id).is_some_and(|routes| routes.iter().filter_map(|r| self.serving.get(r)).any(|r| r.applies_to_pop(pop)))
    }

    /// Every resource a node of POP `pop` holds, by name.
    pub fn view(&self, pop: Option<&str>) -> impl Iterator<Item = (&String, &Arc<v1::Resource>)> {
        self.encoded.iter().filter(move |(name, _)| self.visible(name, pop).is_some())
    }

    /// The names changed after revision `after`, or `None` when the journal no longer
    /// goes back that far.
    pub fn changed_after(&self, after: u64) -> Option<BTreeSet<&str>> {
        if after >= self.revision {
            return Some(BTreeSet::new());
        }
        let first = self.journal.iter().position(|s| s.to > after)?;
        if self.journal[first].from > after {
            return None;
        }
        Some(self.journal.iter().skip(first).flat_map(|s| s.names.iter().map(String::as_str)).collect())
    }

    /// Whether a node of POP `pop` runs the artifact `sha256` (the only ones it may fetch).
    pub fn runs(&self, pop: Option<&str>, sha256: &str) -> bool {
        self.digests.get(sha256).is_some_and(|ids| ids.iter().any(|id| self.function_visible(id, pop)))
    }
}

/// The world at the newest revision read, shared by every node stream, and the revisions
/// as they come.
pub struct Current {
    world: RwLock<World>,
    revisions: watch::Sender<u64>,
    /// One reader of the change log at a time.
    reading: tokio::sync::Mutex<()>,
}

impl Current {
    /// The world as the database holds it now.
    pub async fn read(db: &Database) -> Result<Arc<Self>, StoreError> {
        let world = read_whole(db).await?;
        let revisions = watch::Sender::new(world.revision);
        Ok(Arc::new(Self { world: RwLock::new(world), revisions, reading: tokio::sync::Mutex::new(()) }))
    }

    /// The world, locked for reading: hold it briefly and never across an `await`.
    pub fn world(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().expect("world lock")
    }

    /// The revision of the world.
    pub fn revision(&self) -> u64 {
        *self.revisions.borrow()
    }

    /// Wakes on each new revision.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revisions.subscribe()
    }

    /// Brings the world to the database's revision: applies the changes made since, or
    /// reads everything again when they cannot be applied one by one.
    pub async fn catch_up(&self, db: &Database) -> Result<(), StoreError> {
        let _reading = self.reading.lock().await;
        let since = self.revision();
        let changed = db.changed_since(since).await?;
        if changed.revision <= since {
            return Ok(());
        }
        let revision = if changed.complete && !changed.claims {
            let mut world = self.world.write().expect("world lock");
            world.advance(changed);
            world.revision
        } else {
            let (routed, held) = read_rows(db).await?;
            let mut world = self.world.write().expect("world lock");
            world.replace(routed, held);
            world.revision
        };
        tracing::debug!(revision, "new revision for the nodes");
        self.revisions.send_replace(revision);
        Ok(())
    }
}

async fn read_rows(db: &Database) -> Result<(Routed, Vec<RouteSpace>), StoreError> {
    let routed = db.routed().await?;
    let held = db.held_claims().await?.iter().map(|c| c.space()).collect();
    Ok((routed, held))
}

async fn read_whole(db: &Database) -> Result<World, StoreError> {
    let (routed, held) = read_rows(db).await?;
    Ok(World::from_rows(routed, held))
}

/// Keeps `current` at the database's revision: woken by this process's commits (after a
/// short pause that gathers a burst of changes into one revision) and by a poll of the
/// change log for other processes' commits. Runs until the hub is gone.
pub async fn follow(db: Database, current: std::sync::Weak<Current>) {
    let mut commits = db.commits();
    let mut poll = tokio::time::interval(POLL_EVERY);
    loop {
        tokio::select! {
            changed = commits.changed() => {
                if changed.is_err() {
                    return;
                }
                tokio::time::sleep(COALESCE).await;
                commits.borrow_and_update();
            }
            _ = poll.tick() => {}
        }
        let Some(current) = current.upgrade() else { return };
        if let Err(e) = current.catch_up(&db).await {
            tracing::error!(error = %e, "could not read what nodes run; they keep the previous revision");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_answers_only_for_the_revisions_it_still_holds() {
        let mut world = World::default();
        let last = JOURNAL_REVISIONS as u64 + 10;
        for revision in 1..=last {
            let from = world.revision;
            world.revision = revision;
            world.record(from, vec![format!("route/{revision}")]);
        }
        assert_eq!(world.changed_after(last), Some(BTreeSet::new()));
        let recent: Vec<&str> = world.changed_after(last - 2).unwrap().into_iter().collect();
        assert_eq!(recent, [format!("route/{}", last - 1), format!("route/{last}")]);
        // The oldest step kept goes from revision 10 to 11.
        assert_eq!(world.changed_after(10).map(|names| names.len()), Some(JOURNAL_REVISIONS));
        assert!(world.changed_after(9).is_none(), "a stream further behind diffs its whole view");
    }
}
