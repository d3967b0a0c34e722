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
    let server = Server::start(dir.path(), &["--user-host-suffix", "alice.test"]);
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

/// Sends `request` as it is on a new connection to the node; answers the status and body.
async fn raw(node: &str, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(node.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default())
}

#[tokio::test]
async fn every_host_and_path_has_one_spelling_at_claim_route_and_request() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--user-host-suffix", "test"]);
    let admin = server.client();
    let (olive, eve) = (admin.new_user("olive").await, admin.new_user("eve").await);
    upload_answering(&olive, "books", "olive's books").await;
    upload_answering(&eve, "grab", "eve's page").await;

    // The UTF-8 name and its punycode twin are one host, stored in ASCII.
    let (status, claim) = admin.post("/api/v1/claims", json!({"host": "Bücher.Test.", "project": "~olive"})).await;
    assert_eq!((status, claim["host"].as_str()), (201, Some("xn--bcher-kva.test")), "{claim}");
    let (status, answer) = route(&eve, json!({"host": "xn--bcher-kva.test", "path": "/", "match": "prefix", "moduleId": "grab"})).await;
    assert_eq!(status, 409, "{answer}");
    let (status, answer) = route(&olive, json!({"host": "bücher.test", "path": "/", "match": "prefix", "moduleId": "books"})).await;
    assert_eq!(status, 201, "{answer}");
    let (_, routes) = olive.get("/api/v1/routes").await;
    assert!(routes["routes"].as_array().unwrap().iter().any(|r| r["host"] == "xn--bcher-kva.test"), "{routes}");

    // Route paths must be in normal form; the error names it.
    assert_eq!(route(&olive, json!({"path": "/shop", "match": "prefix", "moduleId": "books"})).await.0, 201);
    assert_eq!(route(&eve, json!({"path": "/evil", "match": "prefix", "moduleId": "grab"})).await.0, 201);
    for (path, message) in [
        ("/evil/../shop", "use `/shop`"),
        ("//shop", "use `/shop`"),
        ("/evil/./x", "use `/evil/x`"),
        ("/%65vil", "use `/evil`"),
        ("/evil%2Fx", "encoded `/` (%2F)"),
        ("/evil/x/..", "use `/evil/`"),
    ] {
        let (status, answer) = route(&eve, json!({"path": path, "match": "prefix", "moduleId": "grab"})).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(answer.contains(message), "{path}: {answer}");
    }
    let (status, answer) = route(&eve, json!({"host": "a*.test", "path": "/", "moduleId": "grab"})).await;
    assert_eq!(status, 400, "{answer}");

    // Request paths are made normal before matching: each reaches `/shop`'s owner.
    get_routed(&server.node, "/shop").await;
    for path in ["/shop", "/evil/../shop", "//shop", "/./shop/", "/%73hop/cart", "/evil/%2e%2e/shop"] {
        assert_eq!(get_host(&server.node, "any.test", path).await, (200, "olive's books".into()), "{path}");
    }
    // An encoded `/` is part of a segment, never a boundary: this is one segment, no route's.
    assert_eq!(get_host(&server.node, "any.test", "/evil%2F..%2Fshop").await.0, 404);
    // The function sees the path that was matched.
    let welcome = get_host(&server.node, "any.test", "/x/../welcome?q=1").await;
    assert_eq!(welcome, (200, "Hello from edgefn! GET /welcome?q=1\n".into()));

    // Request hosts in any spelling: punycode in any case, a trailing dot, a port.
    for host in ["xn--bcher-kva.test", "XN--BCHER-KVA.TEST.", "xn--bcher-kva.test:8000"] {
        for _ in 0..100 {
            if get_host(&server.node, host, "/any").await.0 == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(get_host(&server.node, host, "/any").await, (200, "olive's books".into()), "{host}");
    }

    // Two Host headers are a 400; an absolute-form target is routed by its own authority.
    let node = server.node.clone();
    let (status, _) = raw(&node, "GET /shop HTTP/1.1\r\nHost: any.test\r\nHost: xn--bcher-kva.test\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 400);
    let absolute = "GET http://xn--bcher-kva.test/any HTTP/1.1\r\nHost: any.test\r\nConnection: close\r\n\r\n";
    assert_eq!(raw(&node, absolute).await, (200, "olive's books".into()));
    let (status, _) = raw(&node, "GET /shop HTTP/1.1\r\nHost: exa mple\r\nConnection: close\r\n\r\n").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn ordinary_users_never_claim_the_platforms_hosts_and_its_traffic_keeps_answering() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--user-host-suffix", "apps.test", "--edge-url", "http://Edge.Example.test:8000"]);
    let admin = server.client();
    let (olive, eve) = (admin.new_user("olive").await, admin.new_user("eve").await);
    upload_answering(&olive, "shop", "olive's shop").await;
    upload_answering(&eve, "grab", "eve's page").await;
    assert_eq!(route(&olive, json!({"path": "/shop", "match": "prefix", "moduleId": "shop"})).await.0, 201);

    // Every notation of the machine's addresses, localhost, the edge's own name, a
    // wildcard, a name nobody delegated: refused, each saying why and what to do.
    let port = server.node.rsplit(':').next().unwrap().to_string();
    let attempts = [
        ("127.0.0.1", "is an IP address"),
        ("2130706433", "host `127.0.0.1` is an IP address"),
        ("0x7f000001", "host `127.0.0.1` is an IP address"),
        ("0177.0.0.1", "host `127.0.0.1` is an IP address"),
        ("127.1", "host `127.0.0.1` is an IP address"),
        ("[::1]", "host `[::1]` is an IP address"),
        ("[::ffff:127.0.0.1]", "is an IP address"),
        ("localhost", "names the machine itself"),
        ("LOCALHOST.", "host `localhost` names the machine itself"),
        ("app.localhost", "names the machine itself"),
        ("edge.example.test", "the edge's own host"),
        ("*.apps.test", "wildcard host"),
        ("shop.example.com", "not under a suffix delegated to users (users claim names under `.apps.test`)"),
    ];
    for (host, message) in attempts {
        let (status, answer) =
            route(&eve, json!({"host": host, "path": "/", "match": "prefix", "priority": 1000, "moduleId": "grab"})).await;
        assert_eq!(status, 403, "{host}: {answer}");
        assert!(answer.contains(message), "{host}: {answer}");
        assert!(answer.contains("POST /api/v1/claims") || message == "wildcard host", "{host} says how to get it: {answer}");
    }
    // Requests to the node by any of those names still reach the platform's and olive's routes.
    crate::http::get_routed(&server.node, "/shop").await;
    for host in ["127.0.0.1", "2130706433", "0x7f000001", "[::1]", "localhost", "LOCALHOST", "edge.example.test"] {
        let host = format!("{host}:{port}");
        let (status, answer) = get_host(&server.node, &host, "/welcome").await;
        assert!(status == 200 && answer.starts_with("Hello from edgefn!"), "{host}: {status} {answer}");
        assert_eq!(get_host(&server.node, &host, "/shop/cart").await, (200, "olive's shop".into()), "{host}");
    }

    // A name under the delegated suffix is eve's to take; a host an admin grants is olive's.
    assert_eq!(route(&eve, json!({"host": "eve.apps.test", "path": "/", "match": "prefix", "moduleId": "grab"})).await.0, 201);
    assert_eq!(route(&olive, json!({"host": "eve.apps.test", "path": "/", "moduleId": "shop"})).await.0, 409);
    assert_eq!(route(&olive, json!({"host": "shop.example.com", "path": "/", "match": "prefix", "moduleId": "shop"})).await.0, 403);
    let (status, claim) = admin.post("/api/v1/claims", json!({"host": "Shop.Example.com", "project": "~olive"})).await;
    assert_eq!(status, 201, "{claim}");
    assert_eq!(route(&olive, json!({"host": "shop.example.com", "path": "/", "match": "prefix", "moduleId": "shop"})).await.0, 201);
    for (host, answer) in [("eve.apps.test", "eve's page"), ("shop.example.com", "olive's shop")] {
        for _ in 0..100 {
            if get_host(&server.node, host, "/").await.0 == 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(get_host(&server.node, host, "/").await, (200, answer.to_string()), "{host}");
    }
}

/// dnsmasq on 127.0.0.1:`port` answering only the TXT `records`, killed when dropped.
struct Dnsmasq(std::process::Child);

impl Dnsmasq {
    fn start(port: u16, records: &[(&str, &str)]) -> Self {
        let mut command = std::process::Command::new("/usr/sbin/dnsmasq");
        command.args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file="]);
        command.args(["--listen-address=127.0.0.1", "--bind-interfaces", "--log-facility=-"]).arg(format!("--port={port}"));
        for (name, value) in records {
            command.arg(format!("--txt-record={name},{value}"));
        }
        Self(
            command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("dnsmasq (scripts/test installs it)"),
        )
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_host_is_claimed_by_proving_control_of_its_dns_and_only_with_the_right_record() {
    assert!(std::path::Path::new("/usr/sbin/dnsmasq").exists(), "dnsmasq is missing: install Debian's dnsmasq (scripts/test does)");
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let resolver = format!("127.0.0.1:{port}");
    let server = Server::start(dir.path(), &["--dns-resolver", &resolver, "--edge-url", "http://edge.example.test:8000"]);
    let admin = server.client();
    let (olive, eve) = (admin.new_user("olive").await, admin.new_user("eve").await);
    upload_answering(&olive, "shop", "olive's shop").await;

    // Not delegated, not granted: refused, pointing at the challenge.
    let (status, answer) = route(&olive, json!({"host": "shop.example.com", "path": "/", "match": "prefix", "moduleId": "shop"})).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("POST /api/v1/claims/challenges"), "{answer}");
    // The platform's hosts cannot be proven; another's project is not found.
    for (host, message) in
        [("127.0.0.1", "is an IP address"), ("localhost", "names the machine itself"), ("edge.example.test", "the edge's own host")]
    {
        let (status, answer) = olive.post("/api/v1/claims/challenges", json!({"host": host, "project": "~olive"})).await;
        assert_eq!(status, 403, "{host}: {answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(message), "{host}: {answer}");
    }
    assert_eq!(eve.post("/api/v1/claims/challenges", json!({"host": "shop.example.com", "project": "~olive"})).await.0, 404);

    let (status, challenge) = olive.post("/api/v1/claims/challenges", json!({"host": "Shop.Example.com", "project": "~olive"})).await;
    assert_eq!(status, 201, "{challenge}");
    assert_eq!(challenge["recordName"], "_edgefn-challenge.shop.example.com");
    assert_eq!(challenge["recordType"], "TXT");
    let value = challenge["recordValue"].as_str().unwrap().to_string();
    assert!(value.starts_with("edgefn-verify=") && value.len() > 30, "{value}");
    let again = olive.post("/api/v1/claims/challenges", json!({"host": "shop.example.com", "project": "~olive"})).await.1;
    assert_eq!(again["recordValue"], challenge["recordValue"], "one open challenge per host and project");
    let verify = format!("/api/v1/claims/challenges/{}/verify", challenge["id"].as_str().unwrap());
    assert_eq!(eve.post(&verify, json!(null)).await.0, 404);
    // Waits (at most 10 s) for dnsmasq to answer; returns the verification's answer.
    let verified = |api: Api| {
        let verify = verify.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let (status, body) = api.post(&verify, json!(null)).await;
                if status != 502 || std::time::Instant::now() > deadline {
                    return (status, body);
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    };

    // A wrong record (and the right one under another name) is not proof.
    let wrong = Dnsmasq::start(port, &[("_edgefn-challenge.shop.example.com", "edgefn-verify=wrong"), ("shop.example.com", &value)]);
    let (status, body) = verified(olive.clone()).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("found: `edgefn-verify=wrong`"), "{message}");
    assert_eq!(olive.get("/api/v1/claims").await.1["claims"].as_array().unwrap().len(), 0);
    drop(wrong);

    // The right record: the host is olive's project's claim, and olive routes it.
    let _right = Dnsmasq::start(port, &[("_edgefn-challenge.shop.example.com", &value)]);
    let (status, claim) = verified(olive.clone()).await;
    assert_eq!(status, 201, "{claim}");
    assert_eq!(claim["host"], "shop.example.com");
    assert_eq!(route(&olive, json!({"host": "shop.example.com", "path": "/", "match": "prefix", "moduleId": "shop"})).await.0, 201);
    upload_answering(&eve, "grab", "eve's page").await;
    assert_eq!(route(&eve, json!({"host": "shop.example.com", "path": "/x", "moduleId": "grab"})).await.0, 409);
    for _ in 0..100 {
        if get_host(&server.node, "shop.example.com", "/").await.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(get_host(&server.node, "shop.example.com", "/").await, (200, "olive's shop".into()));
    // The challenge is spent.
    assert_eq!(olive.post(&verify, json!(null)).await.0, 404);
}

#[tokio::test]
async fn claims_an_older_install_allowed_are_listed_and_held_until_an_admin_decides() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An install that delegated `test` to users: olive claims `shop.test` and a path.
    let server = Server::start(&data, &["--user-host-suffix", "test"]);
    let admin = server.client();
    let olive = admin.new_user("olive").await;
    upload_answering(&olive, "shop", "olive's shop").await;
    assert_eq!(route(&olive, json!({"host": "shop.test", "path": "/", "match": "prefix", "moduleId": "shop"})).await.0, 201);
    assert_eq!(route(&olive, json!({"path": "/olive", "match": "prefix", "moduleId": "shop"})).await.0, 201);
    get_routed(&server.node, "/olive").await;
    server.stop();

    // The same data without that delegation: the host is held, listed, and stops serving;
    // the path keeps serving; nothing was deleted.
    let log = dir.path().join("log");
    let server = Server::start_with(&data, &[], &crate::Launch { log_file: Some(log.clone()), ..crate::Launch::default() });
    let admin = server.client();
    let olive = admin.with_token(&olive.token);
    let (status, invalid) = admin.get("/api/v1/claims?invalid=true").await;
    assert_eq!(status, 200, "{invalid}");
    let held = invalid["claims"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{invalid}");
    assert_eq!(held[0]["host"], "shop.test");
    assert!(held[0]["held"].as_str().unwrap().contains("not under a suffix delegated to users"), "{invalid}");
    let id = held[0]["id"].as_str().unwrap().to_string();
    assert_eq!(olive.get("/api/v1/claims").await.1["claims"].as_array().unwrap().len(), 2, "olive still has both claims");
    assert_eq!(get_routed(&server.node, "/olive").await.status(), 200);
    // The node may serve its saved state for a moment before the change reaches it.
    for _ in 0..250 {
        if get_host(&server.node, "shop.test", "/").await.0 == 404 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(get_host(&server.node, "shop.test", "/").await.0, 404, "a held host does not serve");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("does not serve until an admin keeps or removes it"), "{text}");
    // The console lists it for admins.
    let page =
        admin.http.get(format!("{}/routes", server.url)).header("cookie", format!("edgefn_session={}", admin.token)).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(page.contains("claims do not serve until an admin keeps or removes them") && page.contains("shop.test"), "{page}");

    // Only an admin keeps it; then it serves, and still after another start.
    assert_eq!(olive.post(&format!("/api/v1/claims/{id}/keep"), json!(null)).await.0, 403);
    let (status, kept) = admin.post(&format!("/api/v1/claims/{id}/keep"), json!(null)).await;
    assert_eq!((status, kept["held"].is_null(), kept["keptAt"].is_i64()), (200, true, true), "{kept}");
    for _ in 0..100 {
        if get_host(&server.node, "shop.test", "/").await.0 == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(get_host(&server.node, "shop.test", "/").await, (200, "olive's shop".into()));
    server.stop();
    let server = Server::start(&data, &[]);
    assert_eq!(server.client().get("/api/v1/claims?invalid=true").await.1["claims"], json!([]));
    get_routed(&server.node, "/olive").await;
    assert_eq!(get_host(&server.node, "shop.test", "/").await, (200, "olive's shop".into()));
}
