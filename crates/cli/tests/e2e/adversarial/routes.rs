//! Problem 1 of the hardening issue: no user can take another's host or path on the edge
//! node. Routes live inside claims of their module's project; claims never overlap.

use serde_json::{Value, json};

use super::answering;
use crate::http::get_routed;
use crate::{Api, Server};

/// Uploads a module that answers `200` with `text`.
async fn upload_answering(api: &Api, name: &str, text: &str) {
    let (status, body) = api.upload(name, "1.0.0", answering(&format!("200\\n\\n{text}"))).await;
    assert_eq!(status, 201, "{body}");
}

async fn route(api: &Api, body: Value) -> (u16, String) {
    let (status, answer) = api.post("/api/v1/routes", body).await;
    (status, answer["error"]["message"].as_str().unwrap_or_default().to_string())
}

/// GETs `path` on the node with a `Host` header.
async fn get_host(node: &str, host: &str, path: &str) -> (u16, String) {
    let res = reqwest::Client::new().get(format!("{node}{path}")).header("host", host).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn a_tenant_cannot_route_into_another_tenants_hosts_or_paths() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.client();
    let (alice, bob) = (admin.new_user("alice").await, admin.new_user("bob").await);
    upload_answering(&alice, "shop", "alice's shop").await;
    upload_answering(&bob, "grab", "bob's page").await;
    assert_eq!(route(&alice, json!({"path": "/shop", "match": "prefix", "moduleId": "shop"})).await.0, 201);
    assert_eq!(route(&alice, json!({"host": "shop.alice.test", "path": "/", "match": "prefix", "moduleId": "shop"})).await.0, 201);

    // Everything bob tries on alice's space, or the whole default host, is refused.
    let attempts = [
        (json!({"path": "/", "match": "prefix", "priority": 100000}), 403, "every path of the default host"),
        (json!({"path": ".*", "match": "regex", "priority": 100000}), 403, "every path of the default host"),
        (json!({"path": "/shop", "priority": 100000}), 409, "`/shop` on the default host is claimed by another project"),
        (json!({"path": "/shop/cart", "match": "prefix"}), 409, "claimed by another project"),
        (json!({"path": "/shop/[a-z]+", "match": "regex"}), 409, "claimed by another project"),
        (json!({"path": "/welcome", "priority": 100000}), 409, "`/welcome` on the default host is reserved by an admin"),
        (json!({"host": "shop.alice.test", "path": "/x"}), 409, "host `shop.alice.test` is claimed by another project"),
        (json!({"host": "*.alice.test", "path": "/", "match": "prefix"}), 403, "wildcard host"),
    ];
    for (mut body, status, message) in attempts {
        body["moduleId"] = json!("grab");
        let (got, answer) = route(&bob, body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer.contains(message), "{body}: {answer}");
        assert!(!answer.contains("~alice"), "the owner is named to a stranger: {answer}");
    }
    // A regex under bob's own path cannot reach past it, whatever it says.
    assert_eq!(route(&bob, json!({"path": "/bob/(.*)|/shop", "match": "regex", "priority": 9, "moduleId": "grab"})).await.0, 201);
    assert_eq!(route(&bob, json!({"path": "/bob-only", "moduleId": "grab"})).await.0, 201);
    assert_eq!(get_routed(&server.node, "/bob/x").await.text().await.unwrap(), "bob's page");

    // Alice's traffic is alice's; the bundled example is the admin's.
    assert_eq!(get_host(&server.node, "any.test", "/shop").await, (200, "alice's shop".into()));
    assert_eq!(get_host(&server.node, "any.test", "/shop/cart").await, (200, "alice's shop".into()));
    assert_eq!(get_host(&server.node, "shop.alice.test", "/anything").await, (200, "alice's shop".into()));
    assert_eq!(get_host(&server.node, "any.test", "/welcome").await.0, 200);
    assert!(get_host(&server.node, "any.test", "/welcome").await.1.starts_with("Hello from edgefn!"));
    // A named host never falls through to the default host's routes.
    let (_, answer) = get_host(&server.node, "shop.alice.test", "/bob-only").await;
    assert_eq!(answer, "alice's shop", "bob's default-host route answered on alice's host");

    // The admin and alice are told whose claim it is; claims are listed to their projects.
    upload_answering(&admin, "mine", "admin").await;
    let (status, answer) = route(&admin, json!({"path": "/shop", "moduleId": "mine"})).await;
    assert_eq!(status, 409);
    assert!(answer.contains("claimed by project ~alice"), "{answer}");
    let (_, listed) = alice.get("/api/v1/claims").await;
    let spaces: Vec<(String, String)> = listed["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["host"].as_str().unwrap().to_string(), c["pathPrefix"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(spaces, vec![("".to_string(), "/shop".to_string()), ("shop.alice.test".to_string(), "".to_string())]);
    let (_, bobs) = bob.get("/api/v1/claims").await;
    assert!(!bobs.to_string().contains("/shop\""), "bob sees alice's claims: {bobs}");

    // An admin gives bob a wildcard host; then bob routes under it and alice cannot.
    assert_eq!(bob.post("/api/v1/claims", json!({"host": "*.tenant.test"})).await.0, 403);
    let (status, claim) = admin.post("/api/v1/claims", json!({"host": "*.tenant.test", "project": "~bob"})).await;
    assert_eq!(status, 201, "{claim}");
    assert_eq!(route(&bob, json!({"host": "api.tenant.test", "path": "/", "match": "prefix", "moduleId": "grab"})).await.0, 201);
    assert_eq!(route(&alice, json!({"host": "x.tenant.test", "path": "/", "moduleId": "shop"})).await.0, 409);
    let (status, answer) = admin.post("/api/v1/claims", json!({"host": "shop.alice.test", "project": "~bob"})).await;
    assert_eq!(status, 409, "claims never overlap, even an admin's: {answer}");
    get_routed(&server.node, "/bob/x").await;
    for _ in 0..50 {
        if get_host(&server.node, "api.tenant.test", "/").await.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(get_host(&server.node, "api.tenant.test", "/").await, (200, "bob's page".into()));

    // A claim holding routes is not released; once they are gone, its owner releases it.
    let claim_id = claim["id"].as_str().unwrap();
    let (status, _) = admin.send(admin.http.delete(format!("{}/api/v1/claims/{claim_id}", admin.url))).await;
    assert_eq!(status, 409);
    let (_, routes) = alice.get("/api/v1/routes").await;
    let shop_claim = listed["claims"][0]["id"].as_str().unwrap();
    for r in routes["routes"].as_array().unwrap().iter().filter(|r| r["host"].is_null() && r["path"] == "/shop") {
        let (status, _) = alice.send(alice.http.delete(format!("{}/api/v1/routes/{}", alice.url, r["id"].as_str().unwrap()))).await;
        assert_eq!(status, 204);
    }
    assert_eq!(bob.send(bob.http.delete(format!("{}/api/v1/claims/{shop_claim}", bob.url))).await.0, 404);
    assert_eq!(alice.send(alice.http.delete(format!("{}/api/v1/claims/{shop_claim}", alice.url))).await.0, 204);
    assert_eq!(route(&bob, json!({"path": "/shop", "moduleId": "grab"})).await.0, 201, "released space is free again");
}
