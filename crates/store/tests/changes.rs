//! The change log on a real SQLite file: every change to what nodes run (modules,
//! versions, routes) takes one new revision in its own transaction, other changes none,
//! and the node registry keeps reports and refuses removed nodes.

use edgefn_store::{Actor, Database, ModulePatch, NewModule, NewRoute, NewVersion, NodeSeen, RouteSpace, StoreError, TrafficRow};

async fn open() -> (tempfile::TempDir, Database) {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&format!("sqlite://{}", dir.path().join("changes.db").display())).await.unwrap();
    (dir, db)
}

fn version(label: &str) -> NewVersion {
    NewVersion {
        version: label.into(),
        sha256: format!("{label:0>64}").replace('.', "0"),
        size_bytes: 1,
        kind: "core".into(),
        world: None,
        exports: serde_json::json!([]),
        memory_pages: None,
        max_memory_pages: None,
    }
}

#[tokio::test]
async fn each_change_nodes_run_is_one_revision() {
    let (_dir, db) = open().await;
    let actor = Actor::system();
    let (admin, _) = db.ensure_admin(|| "hash".into()).await.unwrap();
    let before = db.revision().await.unwrap();
    let project = db.personal_project(&admin.id).await.unwrap().id;
    let new = NewModule {
        project_id: project.clone(),
        owner_id: admin.id.clone(),
        owner_type: "admin".into(),
        name: "m".into(),
        description: None,
        timeout_ms: 1000,
        max_memory_pages: 16,
    };
    assert_eq!(before, 0, "users, tokens and projects are not what nodes run");
    let (module, _) = db.create_version(&actor, &new, &version("1.0.0")).await.unwrap();
    let after_upload = db.revision().await.unwrap();
    assert!(after_upload > before);
    db.create_version(&actor, &new, &version("2.0.0")).await.unwrap();
    let after_second = db.revision().await.unwrap();
    assert!(after_second > after_upload);
    let patch = ModulePatch { description: Some("changed".into()), ..Default::default() };
    db.update_module(&actor, &module.id, &patch).await.unwrap();
    let after_patch = db.revision().await.unwrap();
    assert_eq!(after_patch, after_second + 1);
    let route = NewRoute {
        host: None,
        path: "/m".into(),
        match_kind: "exact".into(),
        methods: vec![],
        priority: 0,
        pop_selector: None,
        module_id: module.id.clone(),
        version: None,
    };
    let route = db.create_route(&actor, &route, &RouteSpace::new(None, "/m"), Some(&project), false).await.unwrap();
    let after_route = db.revision().await.unwrap();
    assert_eq!(after_route, after_patch + 1);
    db.delete_route(&actor, &route.id).await.unwrap();
    assert_eq!(db.revision().await.unwrap(), after_route + 1);

    // A change that fails leaves no revision behind.
    assert!(db.update_module(&actor, "missing", &patch).await.is_err());
    assert_eq!(db.revision().await.unwrap(), after_route + 1);
    assert!(db.oldest_resumable_revision().await.unwrap() < after_upload);
}

#[tokio::test]
async fn the_registry_keeps_reports_and_refuses_removed_nodes() {
    let (_dir, db) = open().await;
    let seen =
        NodeSeen { pop: Some("eu-1".into()), agent_version: "0.1.0".into(), revision: 7, report_every_ms: 500, ..Default::default() };
    db.node_seen("n1", &seen, true).await.unwrap();
    let row = db.node("n1").await.unwrap();
    assert_eq!((row.revision, row.connected, row.report_every_ms, row.pop.as_deref()), (7, true, 500, Some("eu-1")));
    let traffic =
        TrafficRow { module_id: "m".into(), version: "1".into(), requests: 10, trap: 1, p50_ms: 2.0, p99_ms: 9.0, ..Default::default() };
    let second = TrafficRow { requests: 30, p50_ms: 4.0, p99_ms: 5.0, ..traffic.clone() };
    db.record_traffic("n1", edgefn_store::now_ms(), 500, &[traffic, second]).await.unwrap();
    let totals = db.traffic("m", 0).await.unwrap();
    assert_eq!((totals.requests, totals.errors, totals.trap), (40, 2, 2));
    assert_eq!((totals.p99_ms, totals.p50_ms), (9.0, 3.5));
    assert_eq!(db.traffic("other", 0).await.unwrap().requests, 0);

    db.remove_node(&Actor::system(), "n1").await.unwrap();
    assert!(matches!(db.node_seen("n1", &seen, true).await, Err(StoreError::Conflict(_))));
    assert!(matches!(db.remove_node(&Actor::system(), "n1").await, Err(StoreError::Conflict(_))));
    assert!(matches!(db.remove_node(&Actor::system(), "nobody").await, Err(StoreError::NotFound(_))));
    assert!(db.node("n1").await.unwrap().removed_at.is_some());
}
