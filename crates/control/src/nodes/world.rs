//! What nodes should run, per revision: the [`World`] is every route with the function
//! versions routes name, read from the database once per revision and shared by every
//! node stream; [`World::view`] is the part a node of one POP receives, encoded once per
//! POP. [`follow`] rebuilds it when the change log moves.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgefn_model::{Function, PathMatch, Resource, Route, Snapshot, Target, Version};
use edgefn_proto::v1;
use edgefn_store::{Database, Module, ModuleVersion, StoreError};

/// Changes arriving this close together go out as one delta.
const COALESCE: Duration = Duration::from_millis(10);
/// How often the change log is read for changes made by another process (a control-plane
/// replica over the same database).
const POLL_EVERY: Duration = Duration::from_millis(500);

/// The encoded resources a node of one POP holds: name → resource (with its version).
pub type View = BTreeMap<String, v1::Resource>;

/// Everything nodes run at one revision.
pub struct World {
    /// The change log's revision it was read at.
    pub revision: u64,
    snapshot: Snapshot,
    views: Mutex<HashMap<Option<String>, Arc<View>>>,
}

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
    let mut named = BTreeMap::new();
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

impl World {
    /// Reads the world at the database's current revision: three queries in one read
    /// transaction, whatever the number of routes.
    pub async fn read(db: &Database) -> Result<Self, StoreError> {
        let routed = db.routed().await?;
        // Routes inside a claim held for review do not serve until an admin decides.
        let held: Vec<edgefn_store::RouteSpace> = db.held_claims().await?.iter().map(|c| c.space()).collect();
        let mut snapshot = Snapshot { revision: routed.revision, ..Default::default() };
        let mut pins: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
        for r in &routed.routes {
            if !held.is_empty() && held.iter().any(|h| h.covers(&crate::claims::route_space(r))) {
                continue;
            }
            pins.entry(&r.module_id).or_default().push(r.version.as_deref());
            snapshot.routes.insert(r.id.clone(), route_of(r));
        }
        let mut versions: BTreeMap<&str, Vec<&ModuleVersion>> = BTreeMap::new();
        for v in &routed.versions {
            versions.entry(&v.module_id).or_default().push(v);
        }
        for module in &routed.modules {
            let pins = pins.get(module.id.as_str()).map_or(&[][..], Vec::as_slice);
            let named: Vec<&ModuleVersion> = versions
                .get(module.id.as_str())
                .into_iter()
                .flatten()
                .copied()
                .filter(|v| pins.iter().any(|p| p.map_or(module.latest_version.as_deref() == Some(v.version.as_str()), |p| p == v.version)))
                .collect();
            snapshot.functions.insert(module.id.clone(), function_of(module, &named)?);
        }
        Ok(Self { revision: routed.revision, snapshot, views: Mutex::default() })
    }

    /// The resources a node of POP `pop` runs: the routes that apply to it, and the
    /// functions those routes name. Encoded once per POP and revision.
    pub fn view(&self, pop: Option<&str>) -> Arc<View> {
        let key = pop.map(str::to_string);
        if let Some(view) = self.views.lock().expect("views lock").get(&key) {
            return view.clone();
        }
        let mut view = View::new();
        for route in self.snapshot.routes.values().filter(|r| r.applies_to_pop(pop)) {
            let resource = v1::Resource::from(&Resource::Route(route.clone()));
            view.insert(resource.name.clone(), resource);
            if let Some(function) = self.snapshot.functions.get(&route.target.function_id) {
                let resource = v1::Resource::from(&Resource::Function(function.clone()));
                view.insert(resource.name.clone(), resource);
            }
        }
        let view = Arc::new(view);
        self.views.lock().expect("views lock").insert(key, view.clone());
        view
    }
}

impl World {
    /// Whether a node of POP `pop` runs the artifact `sha256` (the only ones it may fetch).
    pub fn runs(&self, pop: Option<&str>, sha256: &str) -> bool {
        self.snapshot
            .routes
            .values()
            .filter(|r| r.applies_to_pop(pop))
            .filter_map(|r| self.snapshot.functions.get(&r.target.function_id))
            .any(|f| f.versions.values().any(|v| v.sha256 == sha256))
    }
}

/// Reads the world again and publishes it when the database's revision moved past the
/// one `world` holds.
pub async fn catch_up(db: &Database, world: &tokio::sync::watch::Sender<Arc<World>>) -> Result<(), StoreError> {
    if db.revision().await? == world.borrow().revision {
        return Ok(());
    }
    let next = World::read(db).await?;
    world.send_if_modified(|current| {
        let newer = next.revision > current.revision;
        if newer {
            tracing::debug!(revision = next.revision, "new revision for the nodes");
            *current = Arc::new(next);
        }
        newer
    });
    Ok(())
}

/// Keeps `world` at the database's revision: woken by this process's commits (after a
/// short pause that gathers a burst of changes into one revision) and by a poll of the
/// change log for other processes' commits. Runs until the hub is gone.
pub async fn follow(db: Database, world: std::sync::Weak<tokio::sync::watch::Sender<Arc<World>>>) {
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
        let Some(world) = world.upgrade() else { return };
        if let Err(e) = catch_up(&db, &world).await {
            tracing::error!(error = %e, "could not read what nodes run; they keep the previous revision");
        }
    }
}
