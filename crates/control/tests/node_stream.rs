//! The node stream server through its real gRPC interface (an in-process connection to
//! the same service remote nodes reach over mTLS): what a node gets for what it says it
//! holds, resume and snapshot rules, POP filtering, and artifact pulls.

use std::collections::BTreeMap;

use edgefn_control::nodes::in_process_channel;
use edgefn_proto::v1;
use edgefn_proto::v1::node_stream_client::NodeStreamClient;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// A control plane (with the bundled examples routed) in a temporary directory.
async fn control() -> (tempfile::TempDir, edgefn_control::AppState) {
    let dir = tempfile::tempdir().unwrap();
    let config = edgefn_control::ControlConfig { data_dir: dir.path().into(), ..Default::default() };
    let state = edgefn_control::open(&config).await.unwrap().state;
    (dir, state)
}

/// Opens a stream as node `name` of `pop`, says `hello`, and returns the first delta
/// with the sender (kept open) and the stream.
async fn first_delta(
    state: &edgefn_control::AppState,
    pop: Option<&str>,
    hello: v1::Hello,
) -> (v1::Delta, mpsc::Sender<v1::NodeMessage>, tonic::Streaming<v1::ControlMessage>) {
    let channel = in_process_channel(state.hub.clone(), "test-node", pop.map(str::to_string));
    let mut client = edgefn_proto::node_stream_client(channel);
    let (outbox, queued) = mpsc::channel(4);
    outbox.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Hello(hello)) }).await.unwrap();
    let mut inbound = client.stream(ReceiverStream::new(queued)).await.unwrap().into_inner();
    let message = inbound.message().await.unwrap().expect("a first message");
    let Some(v1::control_message::Kind::Delta(delta)) = message.kind else { panic!("not a delta: {message:?}") };
    (delta, outbox, inbound)
}

fn hello(revision: u64, held: BTreeMap<String, String>) -> v1::Hello {
    v1::Hello { protocol: edgefn_proto::PROTOCOL, revision, held, agent_version: "test".into(), ..Default::default() }
}

/// An exact route to `module` at `path`.
fn exact(path: &str, module: &str, pop_selector: Option<&str>, version: Option<String>) -> edgefn_store::NewRoute {
    edgefn_store::NewRoute {
        host: None,
        path: path.into(),
        match_kind: "exact".into(),
        methods: vec![],
        priority: 0,
        pop_selector: pop_selector.map(str::to_string),
        module_id: module.into(),
        version,
    }
}

#[tokio::test]
async fn a_new_node_gets_a_snapshot_and_a_current_one_nothing() {
    let (_dir, state) = control().await;
    let current = state.db.revision().await.unwrap();
    assert!(current > 0, "the bundled examples made changes");

    let (snapshot, _out, _in) = first_delta(&state, None, hello(0, BTreeMap::new())).await;
    assert!(snapshot.snapshot);
    assert_eq!(snapshot.revision, current);
    let names: Vec<&str> = snapshot.upserts.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("route/")).count(), 2, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.starts_with("function/")).count(), 2, "{names:?}");
    for r in &snapshot.upserts {
        assert_eq!(r.version, edgefn_proto::resource_version(r), "{}", r.name);
    }

    // Resuming at the current revision with everything: an empty delta.
    let held: BTreeMap<String, String> = snapshot.upserts.iter().map(|r| (r.name.clone(), r.version.clone())).collect();
    let (delta, _out, _in) = first_delta(&state, None, hello(current, held.clone())).await;
    assert!(!delta.snapshot);
    assert!(delta.upserts.is_empty() && delta.removals.is_empty(), "{delta:?}");

    // Resuming with a stale copy of one resource and one that no longer exists: only those.
    let mut stale = held.clone();
    let changed = snapshot.upserts.iter().find(|r| r.name.starts_with("function/")).unwrap().name.clone();
    stale.insert(changed.clone(), "old".into());
    stale.insert("route/gone".into(), "v".into());
    let (delta, _out, _in) = first_delta(&state, None, hello(current, stale)).await;
    assert!(!delta.snapshot);
    assert_eq!(delta.upserts.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), [changed.as_str()]);
    assert_eq!(delta.removals, ["route/gone"]);

    // A revision this control plane never had (a node of another cluster, or a restored
    // database): a snapshot, whatever the node holds.
    let (future, _out, _in) = first_delta(&state, None, hello(current + 1000, held)).await;
    assert!(future.snapshot);
    assert_eq!(future.upserts.len(), 4);
}

#[tokio::test]
async fn changes_arrive_as_deltas_and_pops_get_only_their_routes() {
    let (_dir, state) = control().await;
    let (_, out, mut inbound) = first_delta(&state, Some("eu-1"), hello(0, BTreeMap::new())).await;
    // A route for another POP changes the revision but sends the eu-1 node nothing new.
    let module = state.db.modules_by_id_or_name("welcome").await.unwrap().remove(0);
    let new = |path: &str, pop: &str| exact(path, &module.id, Some(pop), None);
    let actor = edgefn_store::Actor::system();
    let space = |p: &str| edgefn_store::RouteSpace::new(None, p);
    state.db.create_route(&actor, &new("/us", "us-*"), &space("/us"), module.project_id.as_deref(), false).await.unwrap();
    let message = inbound.message().await.unwrap().unwrap();
    let Some(v1::control_message::Kind::Delta(delta)) = message.kind else { panic!() };
    assert!(delta.upserts.is_empty() && delta.removals.is_empty(), "{delta:?}");
    out.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Ack(v1::Ack { nonce: delta.nonce, revision: delta.revision })) })
        .await
        .unwrap();
    let route = state.db.create_route(&actor, &new("/eu", "eu-*"), &space("/eu"), module.project_id.as_deref(), false).await.unwrap();
    let message = inbound.message().await.unwrap().unwrap();
    let Some(v1::control_message::Kind::Delta(delta)) = message.kind else { panic!() };
    assert_eq!(delta.upserts.iter().map(|r| r.name.clone()).collect::<Vec<_>>(), [format!("route/{}", route.id)]);
    assert_eq!(delta.revision, state.db.revision().await.unwrap());
}

#[tokio::test]
async fn artifacts_are_pulled_whole_and_only_those_a_node_runs() {
    let (_dir, state) = control().await;
    let channel = in_process_channel(state.hub.clone(), "puller", None);
    let mut client = edgefn_proto::node_stream_client(channel);
    let module = state.db.modules_by_id_or_name("welcome").await.unwrap().remove(0);
    let sha = state.db.version(&module.id, None).await.unwrap().sha256;
    let mut chunks = client.fetch_artifact(v1::ArtifactRequest { sha256: sha.clone() }).await.unwrap().into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.message().await.unwrap() {
        bytes.extend_from_slice(&chunk.data);
    }
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);

    let unknown = "0".repeat(64);
    let err = client.fetch_artifact(v1::ArtifactRequest { sha256: unknown }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
}

#[tokio::test]
async fn a_stream_must_start_with_hello_and_a_removed_node_is_refused() {
    let (_dir, state) = control().await;
    let channel = in_process_channel(state.hub.clone(), "rude", None);
    let mut client = NodeStreamClient::new(channel.clone());
    let (outbox, queued) = mpsc::channel(1);
    let ack = v1::Ack { nonce: "1".into(), revision: 1 };
    outbox.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Ack(ack)) }).await.unwrap();
    let err = client.stream(ReceiverStream::new(queued)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err}");

    let (_, _out, _in) = first_delta(&state, None, hello(0, BTreeMap::new())).await;
    state.db.remove_node(&edgefn_store::Actor::system(), "test-node").await.unwrap();
    let mut client = NodeStreamClient::new(in_process_channel(state.hub.clone(), "test-node", None));
    let (outbox, queued) = mpsc::channel(1);
    outbox.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Hello(hello(0, BTreeMap::new()))) }).await.unwrap();
    let err = client.stream(ReceiverStream::new(queued)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err}");
    assert!(err.message().contains("removed by an admin"), "{err}");
}

/// The next delta on a stream, or `None` when none comes within half a second.
async fn next_delta(inbound: &mut tonic::Streaming<v1::ControlMessage>) -> Option<v1::Delta> {
    let message = tokio::time::timeout(std::time::Duration::from_millis(500), inbound.message()).await.ok()?.unwrap()?;
    let Some(v1::control_message::Kind::Delta(delta)) = message.kind else { panic!("not a delta: {message:?}") };
    Some(delta)
}

#[tokio::test]
async fn a_node_that_stops_answering_is_sent_two_deltas_then_one_with_everything_since() {
    let (_dir, state) = control().await;
    // A node that says Hello and then neither reads nor answers what it is sent.
    let (first, out, mut inbound) = first_delta(&state, None, hello(0, BTreeMap::new())).await;
    let module = state.db.modules_by_id_or_name("welcome").await.unwrap().remove(0);
    let actor = edgefn_store::Actor::system();
    // 100 changes, each its own revision (apart by more than the coalescing window).
    let mut ids = Vec::new();
    for i in 0..100 {
        let path = format!("/burst/{i}");
        let route = exact(&path, &module.id, None, None);
        let space = edgefn_store::RouteSpace::new(None, &path);
        ids.push(state.db.create_route(&actor, &route, &space, module.project_id.as_deref(), false).await.unwrap().id);
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    }
    state.hub.catch_up().await.unwrap();
    let revision = state.db.revision().await.unwrap();
    assert!(state.db.node("test-node").await.unwrap().connected, "a slow node is not dropped");
    // Unanswered, the snapshot and one delta are all it was sent.
    let second = next_delta(&mut inbound).await.expect("a second delta");
    assert!(second.revision < revision, "{} of {revision}", second.revision);
    assert!(next_delta(&mut inbound).await.is_none(), "a third delta before an answer");
    // Answered, everything since comes in one delta.
    for delta in [&first, &second] {
        let ack = v1::Ack { nonce: delta.nonce.clone(), revision: delta.revision };
        out.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Ack(ack)) }).await.unwrap();
    }
    let last = next_delta(&mut inbound).await.expect("the delta with the rest");
    assert_eq!(last.revision, revision);
    let mut held: BTreeMap<String, String> = BTreeMap::new();
    for delta in [&first, &second, &last] {
        apply(&mut held, delta);
    }
    for id in &ids {
        assert!(held.contains_key(&format!("route/{id}")), "route {id} missing");
    }
}

/// What a node holds after a delta: name → version.
fn apply(held: &mut BTreeMap<String, String>, delta: &v1::Delta) {
    if delta.snapshot {
        held.clear();
    }
    for name in &delta.removals {
        held.remove(name);
    }
    for r in &delta.upserts {
        held.insert(r.name.clone(), r.version.clone());
    }
}

/// A version `label` of module `name` (made if new) with `like`'s owner and the artifact
/// `sha`, stored directly (nothing compiled).
async fn version_like(
    state: &edgefn_control::AppState,
    like: &edgefn_store::Module,
    name: &str,
    label: &str,
    sha: &str,
) -> edgefn_store::Module {
    let module = edgefn_store::NewModule {
        owner_id: like.owner_id.clone(),
        project_id: like.project_id.clone().unwrap_or_default(),
        owner_type: like.owner_type.clone(),
        name: name.to_string(),
        description: None,
        timeout_ms: 1000,
        max_memory_pages: 16,
    };
    let version = edgefn_store::NewVersion {
        version: label.to_string(),
        sha256: sha.to_string(),
        size_bytes: 100,
        kind: "core".into(),
        world: None,
        exports: serde_json::json!([]),
        memory_pages: None,
        max_memory_pages: None,
    };
    state.db.create_version(&edgefn_store::Actor::system(), &module, &version).await.unwrap().0
}

/// A node's side of a stream: what it holds and at which revision.
struct Follower {
    pop: &'static str,
    held: BTreeMap<String, String>,
    at: u64,
    out: mpsc::Sender<v1::NodeMessage>,
    inbound: tonic::Streaming<v1::ControlMessage>,
}

impl Follower {
    async fn connect(state: &edgefn_control::AppState, pop: &'static str, held: BTreeMap<String, String>, at: u64) -> (Self, v1::Delta) {
        let (delta, out, inbound) = first_delta(state, Some(pop), hello(at, held.clone())).await;
        let mut follower = Self { pop, held, at: delta.revision, out, inbound };
        apply(&mut follower.held, &delta);
        follower.ack(&delta).await;
        (follower, delta)
    }

    async fn ack(&self, delta: &v1::Delta) {
        let ack = v1::Ack { nonce: delta.nonce.clone(), revision: delta.revision };
        self.out.send(v1::NodeMessage { kind: Some(v1::node_message::Kind::Ack(ack)) }).await.unwrap();
    }

    /// Reads deltas until one reaches `revision`, applying each.
    async fn follow_to(&mut self, revision: u64) {
        while self.at != revision {
            let message = tokio::time::timeout(std::time::Duration::from_secs(30), self.inbound.message()).await;
            let message = message.expect("a delta within 30 s").unwrap().unwrap();
            let Some(v1::control_message::Kind::Delta(delta)) = message.kind else { continue };
            apply(&mut self.held, &delta);
            self.at = delta.revision;
            self.ack(&delta).await;
        }
    }
}

/// A node that went away before more changes than the control plane remembers names for
/// (4,096 revisions) comes back with what it held: it is sent the difference between that
/// and the current view, which leaves it holding what a snapshot holds.
#[tokio::test]
async fn a_node_from_before_the_retained_changes_is_resynced() {
    let (_dir, state) = control().await;
    let db = &state.db;
    let actor = edgefn_store::Actor::system();
    let welcome = db.modules_by_id_or_name("welcome").await.unwrap().remove(0);
    let owner = welcome.project_id.clone();
    let space = |path: &str| edgefn_store::RouteSpace::new(None, path);
    let gone = db.create_route(&actor, &exact("/gone", &welcome.id, None, None), &space("/gone"), owner.as_deref(), false).await.unwrap();
    state.hub.catch_up().await.unwrap();
    let (away, _) = Follower::connect(&state, "eu-1", BTreeMap::new(), 0).await;
    let (held, at) = (away.held.clone(), away.at);
    assert!(held.contains_key(&format!("route/{}", gone.id)));
    drop(away);

    db.delete_route(&actor, &gone.id).await.unwrap();
    let new = db.create_route(&actor, &exact("/new", &welcome.id, None, None), &space("/new"), owner.as_deref(), false).await.unwrap();
    for n in 0..4_100 {
        let patch = edgefn_store::ModulePatch { timeout_ms: Some(1_000 + n % 2), ..Default::default() };
        db.update_module(&actor, &welcome.id, &patch).await.unwrap();
    }
    state.hub.catch_up().await.unwrap();
    let revision = db.revision().await.unwrap();
    assert!(revision - at > 4_096, "only {} revisions since", revision - at);

    let (back, delta) = Follower::connect(&state, "eu-1", held, at).await;
    assert!(!delta.snapshot, "a revision the control plane had: a difference, not a snapshot");
    assert_eq!(delta.revision, revision);
    assert!(delta.removals.contains(&format!("route/{}", gone.id)), "{:?}", delta.removals);
    assert!(delta.upserts.iter().any(|r| r.name == format!("route/{}", new.id)));
    let (whole, _) = Follower::connect(&state, "eu-1", BTreeMap::new(), 0).await;
    assert_eq!(back.held, whole.held, "the resynced node and a snapshot differ");
}

/// A node that followed every delta of a random run of changes (uploads, routes made and
/// deleted, settings changed, modules deleted, claims held and released, applied in
/// batches of one to four changes) holds what one snapshot of the final revision holds;
/// so does a node that reconnected halfway with what it held.
#[tokio::test]
async fn incremental_deltas_add_up_to_a_snapshot_of_the_final_revision() {
    use rand::{Rng, SeedableRng};
    for seed in 0..4u64 {
        let (_dir, state) = control().await;
        let db = &state.db;
        let actor = edgefn_store::Actor::system();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let welcome = db.modules_by_id_or_name("welcome").await.unwrap().remove(0);
        let owner = |m: &edgefn_store::Module| m.project_id.clone();
        let sha = db.version(&welcome.id, None).await.unwrap().sha256;
        let mut followers = Vec::new();
        for pop in ["eu-1", "us-1"] {
            followers.push(Follower::connect(&state, pop, BTreeMap::new(), 0).await.0);
        }
        let mut modules: Vec<edgefn_store::Module> = vec![welcome.clone()];
        let mut routes: Vec<String> = Vec::new();
        for step in 0..80 {
            match rng.random_range(0..10) {
                0..=2 => {
                    let name = if modules.len() > 1 && rng.random_bool(0.4) {
                        modules[rng.random_range(1..modules.len())].name.clone()
                    } else {
                        format!("m{step}")
                    };
                    let m = version_like(&state, &welcome, &name, &format!("1.0.{step}"), &sha).await;
                    modules.retain(|k| k.id != m.id);
                    modules.push(m);
                }
                3..=5 => {
                    let m = &modules[rng.random_range(0..modules.len())];
                    let path = format!("/p{step}");
                    let pin = if rng.random_bool(0.3) { m.latest_version.clone() } else { None };
                    let pop_selector = [None, Some("eu-*"), Some("us-1")][rng.random_range(0..3)];
                    let route = exact(&path, &m.id, pop_selector, pin);
                    let space = edgefn_store::RouteSpace::new(None, &path);
                    routes.push(db.create_route(&actor, &route, &space, owner(m).as_deref(), false).await.unwrap().id);
                }
                6 if !routes.is_empty() => {
                    let id = routes.swap_remove(rng.random_range(0..routes.len()));
                    db.delete_route(&actor, &id).await.unwrap();
                }
                7 => {
                    let m = &modules[rng.random_range(0..modules.len())];
                    let patch = edgefn_store::ModulePatch { timeout_ms: Some(rng.random_range(100..5000)), ..Default::default() };
                    db.update_module(&actor, &m.id, &patch).await.unwrap();
                }
                8 if modules.len() > 1 => {
                    let m = modules.remove(rng.random_range(1..modules.len()));
                    db.delete_module(&actor, &m.id).await.unwrap();
                    let left: Vec<String> = db.routes().await.unwrap().into_iter().map(|r| r.id).collect();
                    routes.retain(|id| left.contains(id));
                }
                _ => {
                    let claims = db.claims().await.unwrap();
                    if !claims.is_empty() {
                        let claim = &claims[rng.random_range(0..claims.len())];
                        let why = claim.held.is_none().then_some("review");
                        db.hold_claim(&actor, &claim.id, why).await.unwrap();
                    }
                }
            }
            if rng.random_range(0..4) == 0 {
                state.hub.catch_up().await.unwrap();
            }
            if step == 40 {
                // The eu-1 node reconnects with what it holds.
                state.hub.catch_up().await.unwrap();
                let revision = db.revision().await.unwrap();
                followers[0].follow_to(revision).await;
                let held = followers[0].held.clone();
                let (resumed, delta) = Follower::connect(&state, "eu-1", held, revision).await;
                assert!(!delta.snapshot, "seed {seed}: a resuming node gets a delta");
                followers[0] = resumed;
            }
        }
        state.hub.catch_up().await.unwrap();
        let revision = db.revision().await.unwrap();
        for follower in &mut followers {
            follower.follow_to(revision).await;
            let (whole, snapshot) = Follower::connect(&state, follower.pop, BTreeMap::new(), 0).await;
            assert_eq!(snapshot.revision, revision);
            assert_eq!(follower.held, whole.held, "seed {seed}, POP {}: the deltas and the snapshot differ", follower.pop);
        }
    }
}

/// A snapshot over gRPC's default 4 MB message limit — 80 functions with 64 KB of
/// settings each here; about 10,000 small functions make as much — reaches a new node
/// whole, and a node that holds that much can say so in its Hello.
#[tokio::test]
async fn a_snapshot_over_four_megabytes_reaches_a_new_node() {
    let (_dir, state) = control().await;
    let db = &state.db;
    let actor = edgefn_store::Actor::system();
    let welcome = db.modules_by_id_or_name("welcome").await.unwrap().remove(0);
    let sha = db.version(&welcome.id, None).await.unwrap().sha256;
    let env: std::collections::BTreeMap<String, String> = (0..64).map(|i| (format!("V{i}"), "x".repeat(1024))).collect();
    for i in 0..80 {
        let m = version_like(&state, &welcome, &format!("big{i}"), "1.0.0", &sha).await;
        let patch = edgefn_store::ModulePatch { env: Some(env.clone()), ..Default::default() };
        db.update_module(&actor, &m.id, &patch).await.unwrap();
        let path = format!("/big{i}");
        let space = edgefn_store::RouteSpace::new(None, &path);
        db.create_route(&actor, &exact(&path, &m.id, None, None), &space, m.project_id.as_deref(), false).await.unwrap();
    }
    state.hub.catch_up().await.unwrap();
    let (snapshot, _out, _in) = first_delta(&state, None, hello(0, BTreeMap::new())).await;
    assert!(snapshot.snapshot);
    let bytes = prost::Message::encoded_len(&snapshot);
    assert!(bytes > 5 * 1024 * 1024, "only {bytes} bytes");
    let big =
        snapshot.upserts.iter().filter(|r| matches!(&r.body, Some(v1::resource::Body::Function(f)) if f.name.starts_with("big"))).count();
    assert_eq!(big, 80);

    // A Hello naming 100,000 resources (about 8 MB) is read too.
    let mut held: BTreeMap<String, String> = snapshot.upserts.iter().map(|r| (r.name.clone(), r.version.clone())).collect();
    held.extend((0..100_000).map(|i| (format!("route/{i:036}"), "0".repeat(32))));
    let (difference, _out, _in) = first_delta(&state, None, hello(snapshot.revision, held)).await;
    assert!(!difference.snapshot);
    assert_eq!(difference.removals.len(), 100_000, "the routes it does not have are removed");
}

/// Fifty nodes connecting at once, more than take their turn building a snapshot
/// together, each get the whole snapshot.
#[tokio::test]
async fn nodes_connecting_together_each_get_a_snapshot_in_turn() {
    let (_dir, state) = control().await;
    state.hub.catch_up().await.unwrap();
    let (alone, _out, _in) = first_delta(&state, None, hello(0, BTreeMap::new())).await;
    let connecting = (0..50).map(|_| first_delta(&state, None, hello(0, BTreeMap::new())));
    let firsts = tokio::time::timeout(std::time::Duration::from_secs(60), futures::future::join_all(connecting)).await.unwrap();
    for (delta, _out, _in) in firsts {
        assert!(delta.snapshot);
        assert_eq!(delta.revision, alone.revision);
        assert_eq!(delta.upserts, alone.upserts);
    }
}
