//! The permission matrix (docs/permissions.md is this table): every caller role × module
//! class × operation through the HTTP API, plus escalation attempts.

use serde_json::{Value, json};

use crate::{Api, Server};

/// Caller roles, relative to the module: a platform admin; `olive`, who uploaded the
/// `user` modules and created project `team`; `pat`, an owner of `team`; `dave`, a
/// developer of `team`; `vic`, a viewer of `team`; `alice`, on the module's
/// `allowed_users`; `eve`, none of these.
const ROLES: [&str; 7] = ["admin", "olive", "pat", "dave", "vic", "alice", "eve"];

/// Module classes: `system` and `admin` modules uploaded by the admin into `team`; `user`
/// (private, shared with alice) and `public` (a `user` module with `isPublic`) uploaded
/// by olive into `team`.
const CLASSES: [&str; 4] = ["system", "admin", "user", "public"];

/// Expected status for each role, in [`ROLES`] order.
const MATRIX: [(&str, &str, [u16; 7]); 28] = [
    ("system", "read", [200, 200, 200, 200, 200, 200, 200]),
    ("system", "execute", [200, 200, 200, 200, 200, 200, 200]),
    ("system", "version", [201, 403, 403, 403, 403, 403, 403]),
    ("system", "update", [200, 403, 403, 403, 403, 403, 403]),
    ("system", "route", [201, 403, 403, 403, 403, 403, 403]),
    ("system", "history", [200, 403, 403, 403, 403, 403, 403]),
    ("system", "delete", [204, 403, 403, 403, 403, 403, 403]),
    ("admin", "read", [200, 404, 404, 404, 404, 404, 404]),
    ("admin", "execute", [200, 404, 404, 404, 404, 404, 404]),
    ("admin", "version", [201, 404, 404, 404, 404, 404, 404]),
    ("admin", "update", [200, 404, 404, 404, 404, 404, 404]),
    ("admin", "route", [201, 404, 404, 404, 404, 404, 404]),
    ("admin", "history", [200, 404, 404, 404, 404, 404, 404]),
    ("admin", "delete", [204, 404, 404, 404, 404, 404, 404]),
    ("user", "read", [200, 200, 200, 200, 200, 200, 404]),
    ("user", "execute", [200, 200, 200, 200, 403, 200, 404]),
    ("user", "version", [201, 201, 201, 201, 403, 403, 404]),
    ("user", "update", [200, 200, 200, 200, 403, 403, 404]),
    ("user", "route", [201, 201, 201, 201, 403, 403, 404]),
    ("user", "history", [200, 200, 403, 403, 403, 403, 404]),
    ("user", "delete", [204, 204, 204, 403, 403, 403, 404]),
    ("public", "read", [200, 200, 200, 200, 200, 200, 200]),
    ("public", "execute", [200, 200, 200, 200, 200, 200, 200]),
    ("public", "version", [201, 201, 201, 201, 403, 403, 403]),
    ("public", "update", [200, 200, 200, 200, 403, 403, 403]),
    ("public", "route", [201, 201, 201, 201, 403, 403, 403]),
    ("public", "history", [200, 200, 403, 403, 403, 403, 403]),
    ("public", "delete", [204, 204, 204, 403, 403, 403, 403]),
];

/// An HTTP function that is also callable through the invoke API (`add`).
fn module_wasm() -> Vec<u8> {
    let handle = std::fs::read_to_string(format!("{}/../../examples/hello-handle.wat", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body = handle.trim_end().strip_suffix(')').unwrap();
    wat::parse_str(format!("{body}\n  (func (export \"add\") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))"))
        .unwrap()
}

/// Uploads `bytes` as `name` (query string `extra`), returning status and body.
async fn upload(api: &Api, name: &str, version: &str, extra: &str) -> (u16, Value) {
    let url = format!("{}/api/v1/modules?name={name}&version={version}&project=team{extra}", api.url);
    api.send(api.http.post(url).header("content-type", "application/wasm").body(module_wasm())).await
}

/// Creates a user and returns a client with its token.
pub async fn user(admin: &Api, name: &str) -> Api {
    let (status, body) = admin.post("/api/v1/users", json!({"name": name})).await;
    assert_eq!(status, 201, "{body}");
    Api { token: body["token"].as_str().unwrap().to_string(), ..admin.clone() }
}

/// Uploads a module of `class` named `name` and returns its id: `system`/`admin` by the
/// admin, `user`/`public` by olive (shared with alice; public for `public`).
async fn module_of(clients: &[Api], class: &str, name: &str, alice_id: &str) -> String {
    let (admin, olive) = (&clients[0], &clients[1]);
    let (status, body) = match class {
        "system" | "admin" => upload(admin, name, "1.0.0", &format!("&ownerType={class}")).await,
        _ => upload(olive, name, "1.0.0", "").await,
    };
    assert_eq!(status, 201, "{class} {name}: {body}");
    let id = body["module"]["id"].as_str().unwrap().to_string();
    if matches!(class, "user" | "public") {
        let patch = json!({"allowedUsers": [alice_id], "isPublic": class == "public"});
        let (status, body) = olive.patch(&format!("/api/v1/modules/{id}"), patch).await;
        assert_eq!(status, 200, "{body}");
    }
    id
}

/// Does `op` on module `id` as `api`; returns the status.
async fn attempt(api: &Api, op: &str, id: &str, name: &str, role: &str) -> u16 {
    let (status, body) = match op {
        "read" => api.get(&format!("/api/v1/modules/{id}")).await,
        "execute" => api.invoke(id, json!({"function": "add", "args": [2, 3]})).await,
        "version" => upload(api, name, &format!("2.0.0-{role}"), "").await,
        "update" => api.patch(&format!("/api/v1/modules/{id}"), json!({"status": "active"})).await,
        "route" => api.post("/api/v1/routes", json!({"path": format!("/{name}/{role}"), "moduleId": id})).await,
        "history" => api.get(&format!("/api/v1/modules/{id}/stats")).await,
        "delete" => api.send(api.http.delete(format!("{}/api/v1/modules/{id}", api.url))).await,
        other => unreachable!("{other}"),
    };
    // An allowed call must really have done its work.
    match (op, status) {
        ("execute", 200) => assert_eq!(body["result"], 5, "{body}"),
        ("read", 200) => assert_eq!(body["id"], id, "{body}"),
        (_, 403 | 404) => assert!(body["error"]["message"].is_string(), "{body}"),
        _ => {}
    }
    status
}

/// A client per role of [`ROLES`] (the admin first), with olive's project `team` and its
/// members; returns them and alice's user id.
async fn team(server: &Server) -> (Vec<Api>, String) {
    let admin = server.client();
    let mut clients = vec![admin.clone()];
    for name in &ROLES[1..] {
        clients.push(user(&admin, name).await);
    }
    let olive = &clients[1];
    let (status, body) = olive.post("/api/v1/projects", json!({"name": "team"})).await;
    assert_eq!(status, 201, "{body}");
    for (who, role) in [("pat", "owner"), ("dave", "developer"), ("vic", "viewer")] {
        let (status, body) =
            olive.send(olive.http.put(format!("{}/api/v1/projects/team/members/{who}", olive.url)).json(&json!({"role": role}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (_, users) = admin.get("/api/v1/users").await;
    let alice_id = users["users"].as_array().unwrap().iter().find(|u| u["name"] == "alice").unwrap()["id"].as_str().unwrap().to_string();
    (clients, alice_id)
}

#[tokio::test]
async fn every_role_class_and_operation_gets_the_answer_of_the_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let (clients, alice_id) = team(&server).await;

    let mut failures = Vec::new();
    for (class, op, expected) in MATRIX {
        // Each (class, operation) gets its own module, and a delete gets one per role, so
        // no cell changes what another meets.
        let name = format!("{class}-{op}");
        let mut id = module_of(&clients, class, &name, &alice_id).await;
        for (i, client) in clients.iter().enumerate() {
            if op == "delete" && i > 0 {
                id = module_of(&clients, class, &format!("{name}-{}", ROLES[i]), &alice_id).await;
            }
            let got = attempt(client, op, &id, &name, ROLES[i]).await;
            if got != expected[i] {
                failures.push(format!("{class} × {} × {op}: expected {}, got {got}", ROLES[i], expected[i]));
            }
        }
    }
    assert!(failures.is_empty(), "{} cells differ:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(CLASSES.len() * 7, MATRIX.len());
}

/// Route ownership (docs/permissions.md, "Routes and claims"): each role's answer, in
/// [`ROLES`] order, when it routes olive's `user` module of `team` or manages claims.
/// `own`: a new path; `taken`: a path eve's project claimed first; `whole`: the whole
/// default host; `wildcard`: `*.team.test`; `reserve`: `POST /api/v1/claims` for `team`;
/// `release`: `DELETE` a claim of `team` that holds no route. The host cases route
/// `/` (prefix) on a named host: `delegated` `<role>.apps.test` (the server delegates
/// `apps.test` to users), `undelegated` `<role>.shop.test`, `edge` the edge URL's host,
/// and the rest an IP address or `localhost` in the notation the case names (each case
/// its own address, so no cell's claim covers another's).
const CLAIMS_MATRIX: [(&str, [u16; 7]); 17] = [
    ("own", [201, 201, 201, 201, 403, 403, 404]),
    ("taken", [409, 409, 409, 409, 403, 403, 404]),
    ("whole", [409, 403, 403, 403, 403, 403, 404]),
    ("wildcard", [201, 403, 403, 403, 403, 403, 404]),
    ("reserve", [201, 403, 403, 403, 403, 403, 403]),
    ("release", [204, 204, 204, 403, 403, 404, 404]),
    ("delegated", [201, 201, 201, 201, 403, 403, 404]),
    ("undelegated", [201, 403, 403, 403, 403, 403, 404]),
    ("edge", [201, 403, 403, 403, 403, 403, 404]),
    ("127.0.0.11", [201, 403, 403, 403, 403, 403, 404]),
    ("2130706444", [201, 403, 403, 403, 403, 403, 404]),
    ("0x7f00000d", [201, 403, 403, 403, 403, 403, 404]),
    ("0177.0.0.14", [201, 403, 403, 403, 403, 403, 404]),
    ("[::1]", [201, 403, 403, 403, 403, 403, 404]),
    ("[::ffff:127.0.0.15]", [201, 403, 403, 403, 403, 403, 404]),
    ("LOCALHOST", [201, 403, 403, 403, 403, 403, 404]),
    ("app.localhost", [201, 403, 403, 403, 403, 403, 404]),
];

#[tokio::test]
async fn every_role_meets_the_route_claims_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--user-host-suffix", "apps.test", "--edge-url", "http://edge.team.test:8000"]);
    let (clients, alice_id) = team(&server).await;
    let (admin, eve) = (&clients[0], &clients[6]);
    let id = module_of(&clients, "user", "site", &alice_id).await;
    // Eve's own module claims /eve-space first.
    let (status, body) = eve.upload("eves", "1.0.0", module_wasm()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(eve.post("/api/v1/routes", json!({"path": "/eve-space", "moduleId": "eves"})).await.0, 201);

    let mut failures = Vec::new();
    let on_host = |client: &Api, host: String| {
        let client = client.clone();
        let id = id.clone();
        async move { client.post("/api/v1/routes", json!({"host": host, "path": "/", "match": "prefix", "moduleId": id})).await }
    };
    for (case, expected) in CLAIMS_MATRIX {
        // The admin last: a claim it makes for `team` would cover the members' attempts.
        for (i, client) in clients.iter().enumerate().rev() {
            let role = ROLES[i];
            let (status, body) = match case {
                "own" => client.post("/api/v1/routes", json!({"path": format!("/site-{role}"), "moduleId": id})).await,
                "taken" => client.post("/api/v1/routes", json!({"path": "/eve-space/x", "moduleId": id})).await,
                "whole" => client.post("/api/v1/routes", json!({"path": "/", "match": "prefix", "moduleId": id})).await,
                "wildcard" => {
                    let host = format!("*.{role}.team.test");
                    client.post("/api/v1/routes", json!({"host": host, "path": "/", "match": "prefix", "moduleId": id})).await
                }
                "reserve" => client.post("/api/v1/claims", json!({"pathPrefix": format!("/reserved-{role}"), "project": "team"})).await,
                "release" => {
                    let (status, claim) =
                        admin.post("/api/v1/claims", json!({"pathPrefix": format!("/release-{role}"), "project": "team"})).await;
                    assert_eq!(status, 201, "{claim}");
                    client.send(client.http.delete(format!("{}/api/v1/claims/{}", client.url, claim["id"].as_str().unwrap()))).await
                }
                "delegated" => on_host(client, format!("{role}.apps.test")).await,
                "undelegated" => on_host(client, format!("{role}.shop.test")).await,
                "edge" => on_host(client, "edge.team.test".into()).await,
                address => on_host(client, address.into()).await,
            };
            if status >= 400 {
                assert!(body["error"]["message"].is_string(), "{case} × {role}: {body}");
            }
            if status != expected[i] {
                failures.push(format!("{case} × {role}: expected {}, got {status}: {body}", expected[i]));
            }
        }
    }
    assert!(failures.is_empty(), "{} cells differ:\n{}", failures.len(), failures.join("\n"));
}
