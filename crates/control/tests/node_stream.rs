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
    let mut client = NodeStreamClient::new(channel);
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
    let new = |path: &str, pop: &str| edgefn_store::NewRoute {
        host: None,
        path: path.into(),
        match_kind: "exact".into(),
        methods: vec![],
        priority: 0,
        pop_selector: Some(pop.into()),
        module_id: module.id.clone(),
        version: None,
    };
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
    let mut client = NodeStreamClient::new(channel);
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

#[tokio::test]
async fn a_node_that_stops_reading_is_disconnected_not_buffered_without_end() {
    let (_dir, state) = control().await;
    // A node that says Hello and then never reads what it is sent.
    let (_, _out, _unread) = first_delta(&state, None, hello(0, BTreeMap::new())).await;
    assert!(state.db.node("test-node").await.unwrap().connected);
    let module = state.db.modules_by_id_or_name("welcome").await.unwrap().remove(0);
    let actor = edgefn_store::Actor::system();
    // Each change is its own revision (apart by more than the coalescing window) and its
    // own delta of about 16 KB: past what HTTP/2's flow control and the pipe buffer (about
    // 3.5 MB here), deltas queue up on the control plane, and past its bounded queue the
    // node is dropped.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut i = 0;
    while state.db.node("test-node").await.unwrap().connected {
        assert!(std::time::Instant::now() < deadline, "still connected after {i} changes");
        let path = format!("/lag/{i}/{}", "x".repeat(16_000));
        let route = edgefn_store::NewRoute {
            host: None,
            path: path.clone(),
            match_kind: "exact".into(),
            methods: vec![],
            priority: 0,
            pop_selector: None,
            module_id: module.id.clone(),
            version: None,
        };
        let space = edgefn_store::RouteSpace::new(None, &path);
        state.db.create_route(&actor, &route, &space, module.project_id.as_deref(), false).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        i += 1;
    }
    assert!(i > 64, "dropped after only {i} changes");
}
