//! The node stream server (`edgefn.node.v1.NodeStream`): one session per connected
//! node. A session sends the node's view of the [`World`](super::world::World) as deltas against what the node
//! holds — a full snapshot when it resumes from a revision the change log no longer
//! covers, or from none — then a delta per new revision, at most [`IN_FLIGHT`] of them
//! unanswered (revisions meanwhile go out together); it takes Acks, Nacks and
//! Reports; and it serves artifacts the node's view runs, in chunks.
//!
//! A node is who its certificate names ([`Identity::Certificate`]); `edgefn up`'s own
//! node, connected in-process, is [`Identity::Local`]. Each session's send queue is
//! bounded: a node that falls that far behind is disconnected and resumes. Deliveries
//! built from a node's whole view (its first) take turns, [`WHOLE_VIEWS_AT_ONCE`] at a
//! time, each turn given back when the transport takes the message.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use edgefn_proto::v1;
use edgefn_proto::v1::node_stream_server::NodeStream;
use edgefn_store::{Artifacts, Database, NodeSeen, StoreError, now_ms};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::world::Current;

/// Messages queued to one node before it counts as lagging and is disconnected.
const SEND_QUEUE: usize = 64;
/// Deltas sent to a node and not yet answered (Ack or Nack): changes made meanwhile wait
/// and go out together in the next, so a node busy applying a burst gets few deliveries.
const IN_FLIGHT: usize = 2;
/// Sessions building a delivery from a node's whole view (a snapshot, or the difference
/// from what a resuming node holds) at once. Each is proportional to the functions
/// deployed — at 10,000, some 8 MB to build, queue and encode — so when many nodes connect
/// together (a control plane restarted under 1,000 nodes) the rest wait their turn: memory
/// stays bounded, and the runtime's threads stay free to answer the connections' pings.
const WHOLE_VIEWS_AT_ONCE: usize = 2;
/// The longest report interval a node may say it keeps (an hour): its status is judged by it.
const MAX_REPORT_EVERY_MS: u64 = 3_600_000;
/// More CPU than any machine has, in percent of one core.
const MAX_CPU_PERCENT: f64 = 100_000.0;

/// How the server knows which node is on the other end.
#[derive(Debug, Clone)]
pub enum Identity {
    /// From the client certificate (mTLS): its common name, and its organizational unit
    /// as the POP.
    Certificate,
    /// A node in this process.
    Local {
        /// Its name.
        name: String,
        /// Its POP.
        pop: Option<String>,
    },
}

/// A connected node as the hub sees it between reports.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Open streams (a restarting node may briefly have two).
    pub sessions: usize,
    /// The last revision it acknowledged.
    pub revision: u64,
    /// Resources of its last delivery it could not apply.
    pub rejected: Vec<(String, String)>,
    /// What of its reports was refused or clamped since it connected.
    pub refused: super::report::Refused,
}

/// What every session shares.
pub struct Hub {
    db: Database,
    artifacts: Artifacts,
    world: Arc<Current>,
    nonce: AtomicU64,
    live: Mutex<HashMap<String, Live>>,
    /// Sessions of a removed node end when this names it.
    removed: watch::Sender<Option<String>>,
    /// Turns to build a delivery from a whole view ([`WHOLE_VIEWS_AT_ONCE`]).
    whole_views: Arc<Semaphore>,
}

impl Hub {
    /// A hub following the database's revisions.
    pub async fn start(db: Database, artifacts: Artifacts) -> anyhow::Result<Arc<Self>> {
        // Streams of a previous run (a crash leaves them marked open) are gone.
        db.nodes_all_disconnected().await?;
        let world = Current::read(&db).await?;
        tokio::spawn(super::world::follow(db.clone(), Arc::downgrade(&world)));
        let (removed, _) = watch::channel(None);
        let whole_views = Arc::new(Semaphore::new(WHOLE_VIEWS_AT_ONCE));
        Ok(Arc::new(Self { db, artifacts, world, nonce: AtomicU64::new(1), live: Mutex::default(), removed, whole_views }))
    }

    /// Brings what nodes are sent up to the database's revision now, rather than after
    /// the coalescing pause (at start, so the first node gets the current state).
    pub async fn catch_up(&self) -> Result<(), StoreError> {
        self.world.catch_up(&self.db).await
    }

    /// Live state of the connected nodes, by name.
    pub fn live(&self) -> HashMap<String, Live> {
        self.live.lock().expect("live lock").clone()
    }

    /// Ends the sessions of a node an admin removed.
    pub fn disconnect(&self, name: &str) {
        self.removed.send_replace(Some(name.to_string()));
    }

    fn update<R>(&self, name: &str, change: impl FnOnce(&mut Live) -> R) -> R {
        change(self.live.lock().expect("live lock").entry(name.to_string()).or_default())
    }
}

/// The gRPC service over a [`Hub`].
#[derive(Clone)]
pub struct NodeService {
    hub: Arc<Hub>,
    identity: Identity,
}

/// Who is connected.
#[derive(Debug, Clone)]
struct Peer {
    name: String,
    pop: Option<String>,
    address: Option<SocketAddr>,
}

impl NodeService {
    /// The service for peers identified by `identity`.
    pub fn new(hub: Arc<Hub>, identity: Identity) -> v1::node_stream_server::NodeStreamServer<Self> {
        v1::node_stream_server::NodeStreamServer::new(Self { hub, identity }).max_decoding_message_size(edgefn_proto::MAX_MESSAGE_BYTES)
    }

    fn identify<T>(&self, request: &Request<T>) -> Result<Peer, Status> {
        let address = request.remote_addr();
        match &self.identity {
            Identity::Local { name, pop } => Ok(Peer { name: name.clone(), pop: pop.clone(), address }),
            Identity::Certificate => {
                let certs = request.peer_certs().ok_or_else(|| Status::unauthenticated("a node certificate is required"))?;
                let der = certs.first().ok_or_else(|| Status::unauthenticated("a node certificate is required"))?;
                let (name, pop) = super::tls::node_name(der).map_err(|e| Status::unauthenticated(e.to_string()))?;
                Ok(Peer { name, pop, address })
            }
        }
    }

    /// Refuses a node an admin removed (artifact pulls; a stream is refused when it
    /// registers).
    async fn admit(&self, peer: &Peer) -> Result<(), Status> {
        match self.hub.db.node(&peer.name).await {
            Ok(row) if row.removed_at.is_some() => Err(Status::permission_denied(format!("node {} was removed by an admin", peer.name))),
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(()),
            Err(e) => Err(Status::unavailable(e.to_string())),
        }
    }
}

/// A message queued to a node, with the turn it was built in (given back when the
/// transport takes the message).
struct Outgoing {
    message: Result<v1::ControlMessage, Status>,
    _turn: Option<OwnedSemaphorePermit>,
}

type Outbox = mpsc::Sender<Outgoing>;

#[tonic::async_trait]
impl NodeStream for NodeService {
    type StreamStream = Pin<Box<dyn Stream<Item = Result<v1::ControlMessage, Status>> + Send>>;
    type FetchArtifactStream = ReceiverStream<Result<v1::ArtifactChunk, Status>>;

    async fn stream(&self, request: Request<Streaming<v1::NodeMessage>>) -> Result<Response<Self::StreamStream>, Status> {
        let peer = self.identify(&request)?;
        let mut inbound = request.into_inner();
        let hello = match inbound.message().await? {
            Some(v1::NodeMessage { kind: Some(v1::node_message::Kind::Hello(hello)) }) => hello,
            _ => return Err(Status::invalid_argument("a stream starts with a Hello")),
        };
        let pop = peer.pop.clone().or_else(|| (!hello.pop.is_empty()).then(|| hello.pop.clone()));
        if let (Some(certified), false) = (&peer.pop, hello.pop.is_empty())
            && *certified != hello.pop
        {
            tracing::warn!(node = %peer.name, certified, said = %hello.pop, "a node's POP differs from its certificate's; using the certificate's");
        }
        let peer = Peer { pop, ..peer };
        let seen = NodeSeen {
            pop: peer.pop.clone(),
            agent_version: hello.agent_version.clone(),
            address: peer.address.map(|a| a.to_string()),
            revision: super::report::plausible_revision(hello.revision, self.hub.world.revision()),
            report_every_ms: hello.report_every_ms.clamp(1, MAX_REPORT_EVERY_MS) as i64,
            ..Default::default()
        };
        // Registers the connection, or refuses a node an admin removed.
        self.hub.db.node_seen(&peer.name, &seen, true).await.map_err(|e| match e {
            StoreError::Conflict(why) => Status::permission_denied(why),
            other => Status::unavailable(other.to_string()),
        })?;
        self.hub.update(&peer.name, |live| {
            live.sessions += 1;
            live.revision = hello.revision;
        });
        tracing::info!(node = %peer.name, pop = peer.pop.as_deref().unwrap_or(""), revision = hello.revision, "node connected");
        let (outbox, queued) = mpsc::channel(SEND_QUEUE);
        let every = Duration::from_millis(seen.report_every_ms as u64);
        let session = Session {
            hub: self.hub.clone(),
            peer,
            seen,
            outbox,
            sent: HashMap::new(),
            at: 0,
            retry: BTreeSet::new(),
            unanswered: 0,
            waiting: false,
            every,
            last_report: None,
        };
        tokio::spawn(session.run(hello, inbound));
        Ok(Response::new(Box::pin(ReceiverStream::new(queued).map(|outgoing: Outgoing| outgoing.message))))
    }

    async fn fetch_artifact(&self, request: Request<v1::ArtifactRequest>) -> Result<Response<Self::FetchArtifactStream>, Status> {
        let peer = self.identify(&request)?;
        self.admit(&peer).await?;
        let sha256 = request.into_inner().sha256;
        if !self.hub.world.world().runs(peer.pop.as_deref(), &sha256) {
            return Err(Status::not_found(format!("artifact {sha256} is not one this node runs")));
        }
        let bytes = self.hub.artifacts.get(&sha256).await.map_err(|e| match e {
            StoreError::NotFound(what) => Status::not_found(format!("{what} not found")),
            other => Status::unavailable(other.to_string()),
        })?;
        let (sender, receiver) = mpsc::channel(4);
        tokio::spawn(async move {
            let size = bytes.len() as u64;
            for (i, chunk) in bytes.chunks(edgefn_proto::CHUNK_BYTES).enumerate() {
                let chunk = v1::ArtifactChunk { data: chunk.to_vec(), size: if i == 0 { size } else { 0 } };
                if sender.send(Ok(chunk)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }
}

/// What a delta carries.
#[derive(Debug, Clone, Copy)]
enum Delivery {
    /// Everything the node should hold, replacing what it has.
    Snapshot,
    /// The difference between what the node should hold and what it says it holds.
    Difference,
    /// The resources changed since the node was last sent (the difference, when the
    /// journal no longer goes back that far).
    Changes,
}

/// One node's stream.
struct Session {
    hub: Arc<Hub>,
    peer: Peer,
    seen: NodeSeen,
    outbox: Outbox,
    /// What the node holds (as far as this session knows): name → version.
    sent: HashMap<String, String>,
    /// The revision it was last sent.
    at: u64,
    /// Resources it rejected, sent again with the next delta.
    retry: BTreeSet<String>,
    /// Deltas sent and not yet answered.
    unanswered: usize,
    /// Whether revisions came while [`IN_FLIGHT`] deltas were unanswered.
    waiting: bool,
    /// How often the node said it reports.
    every: Duration,
    /// When its last report came.
    last_report: Option<tokio::time::Instant>,
}

impl Session {
    async fn run(mut self, hello: v1::Hello, mut inbound: Streaming<v1::NodeMessage>) {
        let mut revisions = self.hub.world.subscribe();
        let mut removed = self.hub.removed.subscribe();
        let current = *revisions.borrow_and_update();
        let oldest = self.hub.db.oldest_resumable_revision().await.unwrap_or(u64::MAX);
        // A node with nothing, from before what the log covers, or from a revision this
        // control plane never had, gets everything; one that resumes gets the difference
        // from what it says it holds.
        let snapshot = hello.revision == 0 || hello.revision < oldest || hello.revision > current;
        let turn = self.hub.whole_views.clone().acquire_owned().await.ok();
        let mut open = if snapshot {
            self.send(Delivery::Snapshot, turn)
        } else {
            self.sent = hello.held.into_iter().collect();
            self.send(Delivery::Difference, turn)
        };
        while open {
            tokio::select! {
                changed = revisions.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    revisions.borrow_and_update();
                    if self.unanswered < IN_FLIGHT {
                        open = self.send(Delivery::Changes, None);
                    } else {
                        self.waiting = true;
                    }
                }
                message = inbound.message() => match message {
                    Ok(Some(message)) => {
                        self.receive(message).await;
                        if self.waiting && self.unanswered < IN_FLIGHT {
                            self.waiting = false;
                            open = self.send(Delivery::Changes, None);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(node = %self.peer.name, error = %e, "node stream failed");
                        break;
                    }
                },
                _ = removed.changed() => {
                    open = removed.borrow_and_update().as_deref() != Some(self.peer.name.as_str());
                }
            }
        }
        self.close().await;
    }

    /// Sends what the node should hold and does not: everything, the difference from
    /// what it holds, or the resources changed since it was last sent. Returns false when
    /// the node is too far behind to queue more (the stream is then dropped). `turn` is
    /// held until the transport takes the message.
    fn send(&mut self, how: Delivery, turn: Option<OwnedSemaphorePermit>) -> bool {
        let pop = self.peer.pop.clone();
        let pop = pop.as_deref();
        let mut upserts = Vec::new();
        let mut removals = Vec::new();
        let world = self.hub.world.world();
        let changes = match how {
            Delivery::Changes => world.changed_after(self.at),
            Delivery::Snapshot | Delivery::Difference => None,
        };
        match changes {
            Some(names) => {
                for name in names.into_iter().chain(self.retry.iter().map(String::as_str)) {
                    match world.visible(name, pop) {
                        Some(r) if self.sent.get(name) != Some(&r.version) => {
                            self.sent.insert(name.to_string(), r.version.clone());
                            upserts.push(v1::Resource::clone(r));
                        }
                        Some(_) => {}
                        None => {
                            if self.sent.remove(name).is_some() {
                                removals.push(name.to_string());
                            }
                        }
                    }
                }
            }
            None => {
                let snapshot = matches!(how, Delivery::Snapshot);
                let mut held = HashMap::new();
                for (name, r) in world.view(pop) {
                    if snapshot || self.sent.get(name) != Some(&r.version) {
                        upserts.push(v1::Resource::clone(r));
                    }
                    held.insert(name.clone(), r.version.clone());
                }
                if !snapshot {
                    removals = self.sent.keys().filter(|n| !held.contains_key(*n)).cloned().collect();
                }
                self.sent = held;
            }
        }
        self.at = world.revision;
        drop(world);
        self.retry.clear();
        upserts.sort_by(|a, b| a.name.cmp(&b.name));
        removals.sort();
        let nonce = self.hub.nonce.fetch_add(1, Ordering::Relaxed).to_string();
        let delta = v1::Delta { revision: self.at, nonce, snapshot: matches!(how, Delivery::Snapshot), upserts, removals };
        let message = v1::ControlMessage { kind: Some(v1::control_message::Kind::Delta(delta)) };
        match self.outbox.try_send(Outgoing { message: Ok(message), _turn: turn }) {
            Ok(()) => {
                self.unanswered += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(node = %self.peer.name, queued = SEND_QUEUE, "node is too far behind; disconnecting it so it resumes");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    async fn receive(&mut self, message: v1::NodeMessage) {
        let name = self.peer.name.clone();
        match message.kind {
            Some(v1::node_message::Kind::Ack(ack)) => {
                self.unanswered = self.unanswered.saturating_sub(1);
                let current = self.hub.world.revision();
                let had_rejections = self.hub.update(&name, |live| {
                    live.revision = ack.revision.min(current);
                    !std::mem::take(&mut live.rejected).is_empty()
                });
                if had_rejections && let Err(e) = self.hub.db.node_rejected(&name, &serde_json::json!([])).await {
                    tracing::warn!(node = %name, error = %e, "could not record a node's state");
                }
            }
            Some(v1::node_message::Kind::Nack(nack)) => {
                self.unanswered = self.unanswered.saturating_sub(1);
                for r in &nack.rejected {
                    tracing::warn!(node = %name, resource = %r.resource, reason = %r.reason, "node rejected a resource; it keeps its last good copy");
                    // Sent again with the next revision or connection.
                    self.sent.remove(&r.resource);
                    self.retry.insert(r.resource.clone());
                }
                let rejected: Vec<(String, String)> = nack.rejected.iter().map(|r| (r.resource.clone(), r.reason.clone())).collect();
                let json: Vec<_> =
                    rejected.iter().map(|(resource, reason)| serde_json::json!({"resource": resource, "reason": reason})).collect();
                let current = self.hub.world.revision();
                self.hub.update(&name, |live| {
                    live.revision = nack.revision.min(current);
                    live.rejected = rejected;
                });
                if let Err(e) = self.hub.db.node_rejected(&name, &serde_json::Value::Array(json)).await {
                    tracing::warn!(node = %name, error = %e, "could not record a node's state");
                }
            }
            Some(v1::node_message::Kind::Report(report)) => {
                let now = tokio::time::Instant::now();
                if self.last_report.is_some_and(|last| now - last < self.every / 2) {
                    let refused = self.hub.update(&name, |live| {
                        live.refused.reports += 1;
                        live.refused.reports
                    });
                    tracing::warn!(node = %name, refused, "refused a report sent sooner than half the node's interval after the last");
                    return;
                }
                self.last_report = Some(now);
                self.seen.revision = super::report::plausible_revision(report.revision, self.hub.world.revision());
                self.seen.agent_version = report.agent_version.chars().take(64).collect();
                self.seen.cpu_percent = if report.cpu_percent.is_finite() { report.cpu_percent.clamp(0.0, MAX_CPU_PERCENT) } else { 0.0 };
                self.seen.memory_bytes = i64::try_from(report.memory_bytes).unwrap_or(i64::MAX);
                let checked = {
                    let world = self.hub.world.world();
                    super::report::check(&report, self.every, |id| world.function_visible(id, self.peer.pop.as_deref()))
                };
                if checked.refused != super::report::Refused::default() {
                    let total = self.hub.update(&name, |live| {
                        live.refused.rows += checked.refused.rows;
                        live.refused.clamped += checked.refused.clamped;
                        live.refused
                    });
                    tracing::warn!(node = %name, dropped_rows = checked.refused.rows, clamped_rows = checked.refused.clamped, ?total, "a node reported traffic that cannot be true");
                }
                let rows = checked.rows;
                let db = &self.hub.db;
                let stored = async {
                    db.node_seen(&name, &self.seen, true).await?;
                    if !rows.is_empty() {
                        db.record_traffic(&name, now_ms(), checked.window_ms as i64, &rows).await?;
                    }
                    Ok::<_, StoreError>(())
                };
                if let Err(e) = stored.await {
                    tracing::warn!(node = %name, error = %e, "could not record a node's report");
                }
            }
            Some(v1::node_message::Kind::Hello(_)) | None => {
                tracing::debug!(node = %name, "ignored a message this control plane does not expect");
            }
        }
    }

    async fn close(self) {
        let name = self.peer.name.clone();
        let mut last = false;
        {
            let mut live = self.hub.live.lock().expect("live lock");
            if let Some(entry) = live.get_mut(&name) {
                entry.sessions = entry.sessions.saturating_sub(1);
                if entry.sessions == 0 {
                    live.remove(&name);
                    last = true;
                }
            }
        }
        if last && let Err(e) = self.hub.db.node_disconnected(&name).await {
            tracing::warn!(node = %name, error = %e, "could not record a node's disconnection");
        }
        tracing::info!(node = %name, "node disconnected");
    }
}
