//! Applying a delivery, make before break: every function version the new state runs is
//! fetched, verified (SHA-256) and compiled first; then the new state is written to disk,
//! swapped in whole, and only then acknowledged. A resource that fails is rejected with
//! its reason, and its last good copy (if any) keeps serving.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use edgefn_model::{Function, Resource, ResourceName, Router, Snapshot, Target};
use edgefn_proto::v1;
use futures::StreamExt;

use crate::ingress::Node;

/// Attempts to fetch a good copy of an artifact before the resource is rejected.
const FETCH_ATTEMPTS: u32 = 5;
/// Wait after the first failed attempt; doubled after each.
const FETCH_RETRY: Duration = Duration::from_millis(200);
/// Functions of one delivery made ready at the same time.
const PREPARE_AT_ONCE: usize = 8;

/// Where a node gets artifacts it does not have.
pub trait ArtifactSource: Send + Sync {
    /// The bytes of an artifact (not yet verified).
    fn fetch<'a>(&'a self, sha256: &'a str, size: u64) -> Pin<Box<dyn Future<Output = anyhow::Result<Vec<u8>>> + Send + 'a>>;
}

fn rejected(name: impl ToString, reason: impl ToString) -> v1::Rejected {
    v1::Rejected { resource: name.to_string(), reason: reason.to_string() }
}

impl Node {
    /// Applies `delta` and returns what was rejected (empty: everything applied).
    pub(crate) async fn apply(&self, delta: &v1::Delta, source: &dyn ArtifactSource) -> anyhow::Result<Vec<v1::Rejected>> {
        let serving = self.serving();
        let current = &serving.snapshot;
        // Copies of what is served (persistent maps: the copy costs nothing), changed by
        // what the delta names and nothing else.
        let (mut next, mut router) =
            if delta.snapshot { (Snapshot::default(), Router::default()) } else { ((**current).clone(), serving.router.clone()) };
        let mut refused = Vec::new();
        for name in &delta.removals {
            match name.parse::<ResourceName>() {
                Ok(name) => forget(&mut next, &mut router, &name),
                Err(e) => refused.push(rejected(name, e)),
            }
        }
        let parsed: Vec<(&v1::Resource, Result<Resource, _>)> = delta.upserts.iter().map(|wire| (wire, Resource::try_from(wire))).collect();
        // The functions' artifacts are fetched, written and compiled several at a time, so
        // their round trips and fsyncs overlap.
        let mut jobs = Vec::new();
        for (_, resource) in &parsed {
            if let Ok(Resource::Function(function)) = resource {
                jobs.push(self.prepare_named(function, source));
            }
        }
        let mut prepared: HashMap<String, anyhow::Result<()>> =
            futures::stream::iter(jobs).buffer_unordered(PREPARE_AT_ONCE).collect().await;
        for (wire, resource) in parsed {
            let resource = match resource {
                Ok(resource) => resource,
                Err(e) => {
                    refused.push(rejected(&wire.name, e));
                    keep_last_good(current, &mut next, &mut router, wire.name.parse().ok());
                    continue;
                }
            };
            let failed = match &resource {
                Resource::Function(function) => prepared.remove(&function.id).and_then(Result::err),
                // A route the router cannot take is rejected alone.
                Resource::Route(route) => router.insert(route.clone()).err().map(anyhow::Error::from),
            };
            if let Some(e) = failed {
                tracing::warn!(resource = %resource.name(), error = %format!("{e:#}"), "rejected a resource; its last good copy keeps serving");
                refused.push(rejected(resource.name(), format!("{e:#}")));
                keep_last_good(current, &mut next, &mut router, Some(resource.name()));
                continue;
            }
            next.upsert(resource);
        }
        next.revision = delta.revision;
        // What a delta did not name is as it was on disk: only what it names is written.
        let changed = (!delta.snapshot).then(|| {
            let removed = delta.removals.iter().filter_map(|n| n.parse::<ResourceName>().ok());
            removed.chain(delta.upserts.iter().filter_map(|r| r.name.parse().ok())).collect()
        });
        self.install(next, router, changed).await?;
        Ok(refused)
    }

    /// [`Self::prepare`], with the function's id.
    async fn prepare_named(&self, function: &Function, source: &dyn ArtifactSource) -> (String, anyhow::Result<()>) {
        (function.id.clone(), self.prepare(function, source).await)
    }

    /// Makes every version of `function` ready to run: in the artifact cache, verified,
    /// and compiled.
    async fn prepare(&self, function: &Function, source: &dyn ArtifactSource) -> anyhow::Result<()> {
        for version in function.versions.values() {
            let sha = &version.sha256;
            if !self.cache().contains(sha) {
                let mut wait = FETCH_RETRY;
                let mut attempt = 1;
                loop {
                    let fetched = source.fetch(sha, version.size).await.and_then(|bytes| self.cache().put(sha, &bytes));
                    match fetched {
                        Ok(()) => break,
                        Err(e) if attempt >= FETCH_ATTEMPTS => {
                            return Err(e.context(format!("version {}: artifact {sha} after {attempt} attempts", version.label)));
                        }
                        Err(e) => {
                            tracing::warn!(sha256 = %sha, attempt, error = %format!("{e:#}"), "could not fetch an artifact; retrying");
                            tokio::time::sleep(wait).await;
                            wait *= 2;
                            attempt += 1;
                        }
                    }
                }
            }
            self.compile(sha).await.map_err(|e| e.context(format!("version {}: failed to compile", version.label)))?;
        }
        Ok(())
    }
}

/// Takes a resource out of the next state, and a route out of its router too.
fn forget(next: &mut Snapshot, router: &mut Router<Target>, name: &ResourceName) {
    if let ResourceName::Route(id) = name {
        router.remove(id);
    }
    next.remove(name);
}

/// Puts the current copy of a rejected resource back into the next state (and a route
/// into its router), or leaves it out when there is none.
fn keep_last_good(current: &Snapshot, next: &mut Snapshot, router: &mut Router<Target>, name: Option<ResourceName>) {
    let Some(name) = name else { return };
    forget(next, router, &name);
    match current.get(&name) {
        // It was served, so the router took it before.
        Some(Resource::Route(route)) if router.insert(route.clone()).is_ok() => next.upsert(Resource::Route(route)),
        Some(Resource::Route(_)) | None => {}
        Some(resource) => next.upsert(resource),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use edgefn_model::{Class, Kind, Lookup, PathMatch, Route, Status, Version};
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::{LocalKv, NodeConfig};

    /// Artifacts from memory, as the control plane would send them.
    struct Artifacts(HashMap<String, Vec<u8>>);

    impl ArtifactSource for Artifacts {
        fn fetch<'a>(&'a self, sha256: &'a str, _size: u64) -> Pin<Box<dyn Future<Output = anyhow::Result<Vec<u8>>> + Send + 'a>> {
            Box::pin(async move { self.0.get(sha256).cloned().ok_or_else(|| anyhow::anyhow!("no artifact {sha256}")) })
        }
    }

    fn open(dir: &std::path::Path) -> Node {
        let runtime =
            edgefn_runtime::Runtime::new(edgefn_runtime::RuntimeConfig { max_concurrent_instances: 8, ..Default::default() }).unwrap();
        let config = NodeConfig { data_dir: dir.to_path_buf(), ..Default::default() };
        let kv = Arc::new(LocalKv::open(&dir.join(crate::KV_FILE)).unwrap());
        Node::open(runtime, config, kv).unwrap()
    }

    fn function(id: &str, shas: &[(String, u64)], timeout_ms: u64) -> Function {
        let versions: std::collections::BTreeMap<String, Version> = shas
            .iter()
            .enumerate()
            .map(|(i, (sha, size))| {
                let label = format!("1.0.{i}");
                (label.clone(), Version { label, sha256: sha.clone(), size: *size, kind: Kind::Core })
            })
            .collect();
        Function {
            id: id.to_string(),
            name: id.to_string(),
            owner: "o".into(),
            class: Class::User,
            status: Status::Active,
            timeout_ms,
            max_memory_pages: 16,
            max_instances: 4,
            reuse_instances: true,
            http_timeout_ms: None,
            max_body_bytes: None,
            env: Default::default(),
            allow_hosts: Default::default(),
            latest: versions.keys().last().cloned(),
            versions,
        }
    }

    /// The route each request of a fixed set finds, by id: what serving looks like.
    fn answers(router: &Router<Target>) -> Vec<Option<String>> {
        let mut found = Vec::new();
        for host in ["a.example", "b.example", "x.b.example", "other.org"] {
            for p in 0..12 {
                for path in [format!("/p{p}"), format!("/p{p}/deeper")] {
                    found.push(match router.lookup(host, &path, "GET") {
                        Lookup::Found(r) => Some(r.id.clone()),
                        Lookup::MethodNotAllowed(_) => Some("405".into()),
                        Lookup::NotFound => None,
                    });
                }
            }
        }
        found
    }

    /// A node that applies a random run of deltas (functions and routes added, changed
    /// and removed, a route the router refuses now and then) and is restarted from its
    /// disk halfway holds and serves exactly what a node given one snapshot of the final
    /// revision does, and what the deltas add up to.
    #[tokio::test]
    async fn a_run_of_deltas_with_a_restart_adds_up_to_one_snapshot() {
        let modules: Vec<Vec<u8>> =
            ["a", "b"].iter().map(|t| wat::parse_str(format!(r#"(module (func (export "{t}")))"#)).unwrap()).collect();
        let shas: Vec<(String, u64)> =
            modules.iter().map(|m| (hex::encode(<sha2::Sha256 as sha2::Digest>::digest(m)), m.len() as u64)).collect();
        let source = Artifacts(shas.iter().map(|(s, _)| s.clone()).zip(modules).collect());
        for seed in 0..6u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let dir = tempfile::tempdir().unwrap();
            let mut node = open(dir.path());
            let mut truth = Snapshot::default();
            for revision in 1..=60u64 {
                let mut delta = v1::Delta { revision, nonce: revision.to_string(), ..Default::default() };
                let mut refused_route = None;
                for _ in 0..rng.random_range(1..=4) {
                    let id = format!("{}", rng.random_range(0..6));
                    match rng.random_range(0..10) {
                        0..=2 => {
                            let versions = &shas[..rng.random_range(1..=2)];
                            let f = function(&format!("f{id}"), versions, rng.random_range(1..5) * 100);
                            delta.upserts.push(v1::Resource::from(&Resource::Function(f)));
                        }
                        3 => {
                            let name = ResourceName::Function(format!("f{id}"));
                            delta.removals.push(name.to_string());
                        }
                        4..=7 => {
                            let kind = [PathMatch::Exact, PathMatch::Prefix][rng.random_range(0..2)];
                            let target = Target { function_id: format!("f{}", rng.random_range(0..6)), version: None };
                            let mut route = Route::new(&format!("r{id}"), &format!("/p{}", rng.random_range(0..12)), kind, target);
                            route.host = [None, Some("a.example"), Some("*.b.example")][rng.random_range(0..3)].map(str::to_string);
                            route.priority = rng.random_range(0..3);
                            delta.upserts.push(v1::Resource::from(&Resource::Route(route)));
                        }
                        8 => {
                            let name = ResourceName::Route(format!("r{id}"));
                            delta.removals.push(name.to_string());
                        }
                        _ if refused_route.is_none() => {
                            // A regex that does not compile: refused alone, the last good copy stays.
                            let target = Target { function_id: "f0".into(), version: None };
                            let route = Route::new(&format!("bad{id}"), "/p(", PathMatch::Regex, target);
                            delta.upserts.push(v1::Resource::from(&Resource::Route(route)));
                            refused_route = Some(format!("route/bad{id}"));
                        }
                        _ => {}
                    }
                }
                // A name given twice in one delta is taken at its last mention: the test
                // keeps one mention per name so its truth is plain.
                let mut seen = std::collections::HashSet::new();
                delta.upserts.reverse();
                delta.upserts.retain(|r| seen.insert(r.name.clone()));
                delta.upserts.reverse();
                delta.removals.retain(|n| !seen.contains(n));
                for name in &delta.removals {
                    let name: ResourceName = name.parse().unwrap();
                    truth.remove(&name);
                }
                for upsert in &delta.upserts {
                    if Some(&upsert.name) != refused_route.as_ref() {
                        truth.upsert(Resource::try_from(upsert).unwrap());
                    }
                }
                truth.revision = revision;
                let rejected = node.apply(&delta, &source).await.unwrap();
                let names: Vec<&str> = rejected.iter().map(|r| r.resource.as_str()).collect();
                assert_eq!(names, refused_route.iter().map(String::as_str).collect::<Vec<_>>(), "seed {seed}, revision {revision}");
                if revision == 30 {
                    drop(node);
                    node = open(dir.path());
                }
            }
            let whole_dir = tempfile::tempdir().unwrap();
            let whole = open(whole_dir.path());
            let everything = v1::Delta {
                revision: truth.revision,
                nonce: "s".into(),
                snapshot: true,
                upserts: truth.resources().map(|r| v1::Resource::from(&r)).collect(),
                removals: vec![],
            };
            assert!(whole.apply(&everything, &source).await.unwrap().is_empty());
            assert_eq!(*node.snapshot(), truth, "seed {seed}: the deltas");
            assert_eq!(*whole.snapshot(), truth, "seed {seed}: the snapshot");
            let fresh = Router::new(truth.routes.values().cloned().collect()).unwrap();
            assert_eq!(answers(&node.serving().router), answers(&fresh), "seed {seed}: the deltas' router");
            assert_eq!(answers(&whole.serving().router), answers(&fresh), "seed {seed}: the snapshot's router");
            drop(node);
            assert_eq!(*open(dir.path()).snapshot(), truth, "seed {seed}: after a restart");
        }
    }
}
