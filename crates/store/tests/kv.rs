//! The functions' key-value store on a real SQLite file: namespaces and TTLs.

use std::time::Duration;

use edgefn_store::{Actor, Database, NewModule, NewVersion};

async fn module(db: &Database, name: &str) -> String {
    let admin = db.ensure_admin(|| "hash".into()).await.unwrap().0;
    let new = NewModule {
        project_id: db.personal_project(&admin.id).await.unwrap().id,
        owner_id: admin.id,
        owner_type: "admin".into(),
        name: name.into(),
        description: None,
        timeout_ms: 1000,
        max_memory_pages: 16,
    };
    let version = NewVersion {
        version: "1.0.0".into(),
        sha256: format!("{name:0>64}"),
        size_bytes: 1,
        kind: "core".into(),
        world: None,
        exports: serde_json::json!([]),
        memory_pages: None,
        max_memory_pages: None,
    };
    db.create_version(&Actor::system(), &new, &version).await.unwrap().0.id
}

#[tokio::test]
async fn keys_live_in_their_modules_namespace_until_their_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&format!("sqlite://{}", dir.path().join("kv.db").display())).await.unwrap();
    let (a, b) = (module(&db, "a").await, module(&db, "b").await);
    db.kv_put(&a, "k", b"forever", None).await.unwrap();
    db.kv_put(&a, "short", b"soon gone", Some(Duration::from_millis(300))).await.unwrap();
    assert_eq!(db.kv_get(&a, "k").await.unwrap().as_deref(), Some(&b"forever"[..]));
    assert_eq!(db.kv_get(&b, "k").await.unwrap(), None, "another module does not see a's keys");
    assert_eq!(db.kv_get(&a, "short").await.unwrap().as_deref(), Some(&b"soon gone"[..]));
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(db.kv_get(&a, "short").await.unwrap(), None, "expired");
    db.kv_put(&a, "k", b"new", None).await.unwrap();
    assert_eq!(db.kv_get(&a, "k").await.unwrap().as_deref(), Some(&b"new"[..]));
    // Deleting the module deletes its keys.
    db.delete_module(&Actor::system(), &a).await.unwrap();
    assert_eq!(db.kv_get(&a, "k").await.unwrap(), None);
}
