//! Applying a delivery, make before break: every function version the new state runs is
//! fetched, verified (SHA-256) and compiled first; then the new state is written to disk,
//! swapped in whole, and only then acknowledged. A resource that fails is rejected with
//! its reason, and its last good copy (if any) keeps serving.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use edgefn_model::{Function, Resource, ResourceName, Router, Snapshot};
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
        let current = self.snapshot();
        let mut next = if delta.snapshot { Snapshot::default() } else { (*current).clone() };
        let mut refused = Vec::new();
        for name in &delta.removals {
            match name.parse::<ResourceName>() {
                Ok(name) => next.remove(&name),
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
                    keep_last_good(&current, &mut next, wire.name.parse().ok());
                    continue;
                }
            };
            if let Resource::Function(function) = &resource
                && let Some(Err(e)) = prepared.remove(&function.id)
            {
                tracing::warn!(function = %function.name, id = %function.id, error = %format!("{e:#}"), "rejected a function; its last good copy keeps serving");
                refused.push(rejected(resource.name(), format!("{e:#}")));
                keep_last_good(&current, &mut next, Some(resource.name()));
                continue;
            }
            next.upsert(resource);
        }
        // A route the router cannot take is rejected alone.
        let mut unroutable = Vec::new();
        let router = match next.router() {
            Ok(router) => router,
            Err(_) => {
                let bad: Vec<String> =
                    next.routes.values().filter(|r| Router::new(vec![(*r).clone()]).is_err()).map(|r| r.id.clone()).collect();
                for id in bad {
                    let name = ResourceName::Route(id);
                    refused.push(rejected(&name, "the router refused it"));
                    next.remove(&name);
                    keep_last_good(&current, &mut next, Some(name.clone()));
                    unroutable.push(name);
                }
                next.router()?
            }
        };
        next.revision = delta.revision;
        // What a delta did not name is as it was on disk: only what it names is written.
        let changed = (!delta.snapshot).then(|| {
            let removed = delta.removals.iter().filter_map(|n| n.parse::<ResourceName>().ok());
            removed.chain(delta.upserts.iter().filter_map(|r| r.name.parse().ok())).chain(unroutable).collect()
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

/// Puts the current copy of a rejected resource back into the next state.
fn keep_last_good(current: &Snapshot, next: &mut Snapshot, name: Option<ResourceName>) {
    if let Some(resource) = name.and_then(|n| current.get(&n)) {
        next.upsert(resource);
    }
}
