//! Credentials (API tokens, JWTs by secret and by JWKS), escalation attempts, execution
//! history visibility, and the audit log's chain caught after tampering with sqlite3.

use std::process::Command;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::permissions::user;
use crate::{Api, Server, example};

/// A test-only Ed25519 key pair: the private key signs, the JWKS serves the public half.
const ED25519_PRIVATE_PEM: &str =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIMPddnE0IQR+3vtFm0OfN+13ThvVCVt6CMaHVaGSZ8Kr\n-----END PRIVATE KEY-----\n";
const ED25519_PUBLIC_X: &str = "xMHJMsvG0zrHaGX-01XQE52De5-i4Sa5g1lCZFzmkVI";
/// A test-only RSA key pair (made with `openssl genrsa 2048`) and its public modulus.
const RSA_PRIVATE_PEM: &str = include_str!("fixtures/jwt-rsa-test-key.pem");
const RSA_PUBLIC_N: &str = "iXmd1m7IUQ1mXIb5lVXu2wDM4nYpVbTCyJOWOi1vGoxYID2y478xLFwNR5U2vAD1pPptcLLpCC913QkkqN-kM4je14MJ4H56LUbizPFFA-lR3HdEo1mW_aq6udIRKRzE0oUc3wb0AeP1dOkYq5JhnftPGwquj-5cqeJnu0eOpo6YDDvcHGSur61ax3J3MpNiDKwf47eJu83B2nxDw0Chp3cAai80x4TVaYEFRz_ztKLeykDkPwittRsKpaift6kTbF35pX26okUpGfI7K9SbVqrpokRKzioRz-oJOIVRDSwEs7aWK_rv1Z9cIMBm4yNAshecVjK98aiJpUcovh5UZw";

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn with_token(api: &Api, token: &str) -> Api {
    Api { token: token.to_string(), ..api.clone() }
}

pub(crate) fn sqlite(dir: &std::path::Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(dir.join("edgefn.db")).arg(sql).output().expect("sqlite3 CLI");
    assert!(out.status.success(), "sqlite3 {sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn edgefn(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edgefn"))
        .args(args)
        .args(["--url", &server.url, "--token", &server.token])
        .env("XDG_CONFIG_HOME", server.dir.join("config"))
        .output()
        .unwrap()
}

#[tokio::test]
async fn api_tokens_expire_are_revoked_and_die_with_a_disabled_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.client();
    let bob = user(&admin, "bob").await;
    assert_eq!(bob.get("/api/v1/me").await.1["user"]["name"], "bob");

    // Forged: the right shape, never issued.
    let forged = with_token(&admin, &format!("efn_{}", "ab".repeat(32)));
    let (status, body) = forged.get("/api/v1/modules").await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("invalid token")));
    assert_eq!(with_token(&admin, "").get("/api/v1/modules").await.0, 401);

    // A second token, shown once, listed without its secret.
    let (status, created) = bob.post("/api/v1/tokens", json!({"name": "ci", "expiresInDays": 30})).await;
    assert_eq!(status, 201, "{created}");
    let ci = with_token(&admin, created["token"].as_str().unwrap());
    assert_eq!(ci.get("/api/v1/me").await.0, 200);
    let (_, listed) = bob.get("/api/v1/tokens").await;
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(created["token"].as_str().unwrap()));
    assert!(listed["tokens"][0].get("token").is_none());

    // Revoked: refused from the next call on; someone else's token is not found.
    let id = created["id"].as_str().unwrap();
    let eve = user(&admin, "eve").await;
    assert_eq!(eve.send(eve.http.delete(format!("{}/api/v1/tokens/{id}", eve.url))).await.0, 404);
    assert_eq!(ci.get("/api/v1/me").await.0, 200);
    let (status, revoked) = bob.send(bob.http.delete(format!("{}/api/v1/tokens/{id}", bob.url))).await;
    assert_eq!(status, 200, "{revoked}");
    let (status, body) = ci.get("/api/v1/me").await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("this token was revoked")));

    // Expired: a token whose expiry has passed (set in the file; never used before, so
    // not cached).
    let (_, short) = bob.post("/api/v1/tokens", json!({"name": "short", "expiresInDays": 1})).await;
    sqlite(dir.path(), &format!("UPDATE api_tokens SET expires_at = 1000 WHERE id = '{}'", short["id"].as_str().unwrap()));
    let (status, body) = with_token(&admin, short["token"].as_str().unwrap()).get("/api/v1/me").await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("this token has expired")));
    assert_eq!(bob.post("/api/v1/tokens", json!({"name": "x", "expiresInDays": 0})).await.0, 400);

    // Disabled: every credential of the user is refused; enabling restores them.
    let (status, _) = admin.patch("/api/v1/users/bob", json!({"disabled": true})).await;
    assert_eq!(status, 200);
    let (status, body) = bob.get("/api/v1/me").await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("user bob is disabled")));
    assert_eq!(admin.patch("/api/v1/users/bob", json!({"disabled": false})).await.0, 200);
    assert_eq!(bob.get("/api/v1/me").await.0, 200);
    // Admins cannot lock themselves out; users cannot manage users.
    assert_eq!(admin.patch("/api/v1/users/admin", json!({"disabled": true})).await.0, 400);
    assert_eq!(bob.post("/api/v1/users", json!({"name": "mallory", "role": "admin"})).await.0, 403);
    assert_eq!(bob.patch("/api/v1/users/bob", json!({"role": "admin"})).await.0, 403);
    assert_eq!(bob.post("/api/v1/tokens", json!({"name": "x", "user": "admin"})).await.0, 403);

    // The CLI: login saves server and token with mode 0600; later commands use them.
    let config = dir.path().join("config");
    let out = Command::new(env!("CARGO_BIN_EXE_edgefn"))
        .args(["login", "--url", &server.url, "--token", &bob.token])
        .env("XDG_CONFIG_HOME", &config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let saved = config.join("edgefn/login.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&saved).unwrap().permissions().mode() & 0o777, 0o600);
    let out =
        Command::new(env!("CARGO_BIN_EXE_edgefn")).args(["token", "list", "--json"]).env("XDG_CONFIG_HOME", &config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tokens: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(tokens.as_array().unwrap().iter().all(|t| t["userId"] == tokens[0]["userId"]));
    assert_eq!(tokens.as_array().unwrap().len(), 3);
}

pub(crate) fn hs256(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
}

#[tokio::test]
async fn jwts_signed_with_the_shared_secret_name_users_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "test-secret-that-is-long-enough-for-hs256";
    let server = Server::start(dir.path(), &["--jwt-secret", secret]);
    let admin = server.client();
    let claims = |sub: &str, role: &str, exp: i64| json!({"sub": sub, "email": format!("{sub}@example.com"), "role": role, "exp": exp});

    // A provider's user: created on first sign-in, the same user next time.
    let jane = with_token(&admin, &hs256(secret, claims("u-1", "authenticated", now() + 600)));
    let (status, me) = jane.get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!((me["user"]["name"].as_str(), me["user"]["role"].as_str()), (Some("u-1@example.com"), Some("user")));
    assert_eq!(jane.get("/api/v1/me").await.1["user"]["id"], me["user"]["id"]);
    assert_eq!(jane.get("/api/v1/audit").await.0, 403);
    // The role claim makes an admin.
    let root = with_token(&admin, &hs256(secret, claims("u-2", "admin", now() + 600)));
    assert_eq!(root.get("/api/v1/audit").await.0, 200);

    // Expired, forged (another secret), tampered payload, unsigned: all 401.
    let expired = with_token(&admin, &hs256(secret, claims("u-1", "user", now() - 600)));
    let (status, body) = expired.get("/api/v1/me").await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("the token has expired")));
    let forged = with_token(&admin, &hs256("another-secret-another-secret-another", claims("u-2", "admin", now() + 600)));
    let (status, body) = forged.get("/api/v1/me").await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("the token's signature is not valid")));
    let good = hs256(secret, claims("u-1", "user", now() + 600));
    let parts: Vec<&str> = good.split('.').collect();
    let elevated = base64_url(&claims("u-2", "admin", now() + 600).to_string());
    let tampered = with_token(&admin, &format!("{}.{elevated}.{}", parts[0], parts[2]));
    assert_eq!(tampered.get("/api/v1/me").await.0, 401);
    let none_alg = with_token(&admin, &format!("{}.{}.", base64_url(r#"{"alg":"none","typ":"JWT"}"#), parts[1]));
    assert_eq!(none_alg.get("/api/v1/me").await.0, 401);

    // A disabled provider user is refused though its JWT is valid.
    let id = me["user"]["id"].as_str().unwrap();
    assert_eq!(admin.patch(&format!("/api/v1/users/{id}"), json!({"disabled": true})).await.0, 200);
    assert_eq!(jane.get("/api/v1/me").await.0, 401);
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn jwts_are_verified_with_the_providers_jwks() {
    // The provider: a JWKS endpoint on a real socket, with an Ed25519 key, an RSA key
    // published for RS256 and the same RSA key naming no algorithm.
    let rsa = |kid: &str, alg: Option<&str>| {
        let mut key = json!({"kty": "RSA", "n": RSA_PUBLIC_N, "e": "AQAB", "kid": kid, "use": "sig"});
        if let Some(alg) = alg {
            key["alg"] = json!(alg);
        }
        key
    };
    let jwks = json!({"keys": [
        {"kty": "OKP", "crv": "Ed25519", "x": ED25519_PUBLIC_X, "kid": "k1", "alg": "EdDSA", "use": "sig"},
        rsa("r1", Some("RS256")),
        rsa("r2", None),
    ]});
    let app = axum::Router::new().route("/jwks.json", axum::routing::get(move || async move { axum::Json(jwks) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edgefn.toml");
    std::fs::write(&config, "[auth.jwt]\nissuer = \"https://idp.test\"\naudience = \"edgefn\"\n").unwrap();
    let server = Server::start(&dir.path().join("data"), &["--jwks-url", &jwks_url, "--config", config.to_str().unwrap()]);
    let admin = server.client();
    let ed25519 = EncodingKey::from_ed_pem(ED25519_PRIVATE_PEM.as_bytes()).unwrap();
    let rsa_key = EncodingKey::from_rsa_pem(RSA_PRIVATE_PEM.as_bytes()).unwrap();
    let good = |exp: i64| json!({"sub": "k-user", "exp": exp, "iss": "https://idp.test", "aud": "edgefn"});
    let sign = |kid: &str, alg: Algorithm, claims: Value| {
        let mut header = Header::new(alg);
        header.kid = Some(kid.into());
        let key = if alg == Algorithm::EdDSA { &ed25519 } else { &rsa_key };
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    };
    let answer = |token: String| {
        let api = with_token(&admin, &token);
        async move {
            let (status, body) = api.get("/api/v1/me").await;
            (status, body["error"]["message"].as_str().unwrap_or("").to_string(), body)
        }
    };
    let (status, _, me) = answer(sign("k1", Algorithm::EdDSA, good(now() + 600))).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["user"]["name"], "k-user");
    let (status, message, _) = answer(sign("k2", Algorithm::EdDSA, good(now() + 600))).await;
    assert_eq!((status, message.as_str()), (401, "no key k2 in the identity provider's key set"));
    assert_eq!(answer(sign("k1", Algorithm::EdDSA, good(now() - 600))).await.0, 401);
    // HS256 is not accepted when only a JWKS is configured.
    assert_eq!(answer(hs256("x", good(now() + 600))).await.0, 401);

    // The configured issuer and audience are required, not only checked when present.
    for (claim, value, why) in [
        ("iss", Value::Null, "the token has no `iss` claim"),
        ("aud", Value::Null, "the token has no `aud` claim"),
        ("iss", json!("https://other.test"), "the token's issuer (`iss`) is not the configured one"),
        ("aud", json!("someone-else"), "the token's audience (`aud`) is not the configured one"),
    ] {
        let mut claims = good(now() + 600);
        match value {
            Value::Null => drop(claims.as_object_mut().unwrap().remove(claim)),
            value => claims[claim] = value,
        }
        let (status, message, _) = answer(sign("k1", Algorithm::EdDSA, claims)).await;
        assert_eq!((status, message.as_str()), (401, why), "{claim}");
    }

    // A key verifies its own algorithm only; one without `alg`, the configured list.
    assert_eq!(answer(sign("r1", Algorithm::RS256, good(now() + 600))).await.0, 200);
    for alg in [Algorithm::PS256, Algorithm::RS512] {
        let (status, message, _) = answer(sign("r1", alg, good(now() + 600))).await;
        assert_eq!((status, message), (401, format!("the token is signed with {alg:?}; key r1 verifies only RS256")));
    }
    assert_eq!(answer(sign("r2", Algorithm::RS256, good(now() + 600))).await.0, 200);
    let (status, message, _) = answer(sign("r2", Algorithm::PS256, good(now() + 600))).await;
    assert_eq!((status, message.as_str()), (401, "the token is signed with PS256; key r2 verifies only RS256, ES256"));
}

#[tokio::test]
async fn escalation_attempts_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.client();
    let (olive, eve, vic) = (user(&admin, "olive").await, user(&admin, "eve").await, user(&admin, "vic").await);
    let upload = |api: &Api, query: &str| {
        let url = format!("{}/api/v1/modules?{query}", api.url);
        let req = api.http.post(url).header("content-type", "application/wasm").body(example("add.wat"));
        let api = api.clone();
        async move { api.send(req).await }
    };
    // A user creating system or admin modules.
    for class in ["system", "admin"] {
        let (status, body) = upload(&eve, &format!("name=x&ownerType={class}")).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["message"], format!("only admins create `{class}` modules"));
    }
    // A user turning their module into a system module.
    let (status, body) = upload(&olive, "name=mine").await;
    assert_eq!(status, 201, "{body}");
    let id = body["module"]["id"].as_str().unwrap().to_string();
    assert_eq!(olive.patch(&format!("/api/v1/modules/{id}"), json!({"ownerType": "system"})).await.0, 403);
    assert_eq!(upload(&olive, "name=mine&version=2.0.0&ownerType=system").await.0, 403);
    // Adding themselves to another's allowed_users: hidden when private, 403 when public.
    assert_eq!(eve.patch(&format!("/api/v1/modules/{id}"), json!({"allowedUsers": ["eve"]})).await.0, 404);
    assert_eq!(olive.patch(&format!("/api/v1/modules/{id}"), json!({"isPublic": true})).await.0, 200);
    assert_eq!(eve.patch(&format!("/api/v1/modules/{id}"), json!({"allowedUsers": ["eve"]})).await.0, 403);
    // A viewer uploading into the project; a stranger uploading into it.
    olive.post("/api/v1/projects", json!({"name": "team"})).await;
    let put = olive.http.put(format!("{}/api/v1/projects/team/members/vic", olive.url)).json(&json!({"role": "viewer"}));
    assert_eq!(olive.send(put).await.0, 200);
    assert_eq!(upload(&vic, "name=new&project=team").await.0, 403);
    assert_eq!(upload(&eve, "name=new&project=team").await.0, 403);
    // A viewer managing members.
    let put = vic.http.put(format!("{}/api/v1/projects/team/members/vic", vic.url)).json(&json!({"role": "owner"}));
    assert_eq!(vic.send(put).await.0, 403);
    // Admins may not rewrite a system module's settings, only add versions or change its status.
    let (status, body) = upload(&admin, "name=sys&ownerType=system").await;
    assert_eq!(status, 201, "{body}");
    let sys = body["module"]["id"].as_str().unwrap();
    assert_eq!(admin.patch(&format!("/api/v1/modules/{sys}"), json!({"description": "x"})).await.0, 403);
    assert_eq!(admin.patch(&format!("/api/v1/modules/{sys}"), json!({"status": "disabled"})).await.0, 200);
    // Disabled modules are not executable, even by admins.
    assert_eq!(admin.invoke(sys, json!({"function": "add", "args": [1, 2]})).await.0, 403);
    // A module's limits are capped by its class: 10 s and 50 MiB for user modules.
    assert_eq!(olive.patch(&format!("/api/v1/modules/{id}"), json!({"timeoutMs": 20_000})).await.0, 400);
    assert_eq!(olive.patch(&format!("/api/v1/modules/{id}"), json!({"maxMemoryPages": 801})).await.0, 400);

    // Nothing changed: olive's module is still a user module, eve not on its list.
    let (_, module) = olive.get(&format!("/api/v1/modules/{id}")).await;
    assert_eq!((module["ownerType"].as_str(), module["allowedUsers"].as_array().unwrap().len()), (Some("user"), 0));
    let (_, team) = olive.get("/api/v1/projects/team").await;
    assert_eq!(team["members"].as_array().unwrap().iter().find(|m| m["userName"] == "vic").unwrap()["role"], "viewer");
    // Listing shows only what the caller may read; ?executable=true what it may run.
    let (_, listed) = eve.get("/api/v1/modules").await;
    let names: Vec<&str> = listed["modules"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mine", "sys", "welcome", "welcome-http"]);
    let (_, runnable) = eve.get("/api/v1/modules?executable=true").await;
    let names: Vec<&str> = runnable["modules"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mine", "welcome", "welcome-http"]);
}

#[tokio::test]
async fn execution_history_is_visible_to_the_executor_the_owner_and_admins() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.client();
    let (olive, alice) = (user(&admin, "olive").await, user(&admin, "alice").await);
    let url = format!("{}/api/v1/modules?name=add", olive.url);
    let (_, body) = olive.send(olive.http.post(url).header("content-type", "application/wasm").body(example("add.wat"))).await;
    let id = body["module"]["id"].as_str().unwrap().to_string();
    olive.patch(&format!("/api/v1/modules/{id}"), json!({"isPublic": true})).await;
    for api in [&olive, &alice, &alice] {
        assert_eq!(api.invoke(&id, json!({"function": "add", "args": [1, 2]})).await.0, 200);
    }
    let total = |api: &Api| {
        let (api, path) = (api.clone(), format!("/api/v1/modules/{id}/executions"));
        async move { api.get(&path).await.1["total"].as_i64().unwrap() }
    };
    assert_eq!((total(&olive).await, total(&alice).await, total(&admin).await), (3, 2, 3));
    assert_eq!(alice.get(&format!("/api/v1/modules/{id}/stats")).await.0, 403);
}

#[tokio::test]
async fn audit_verify_catches_rows_edited_reordered_or_deleted_with_sqlite3() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.client();
    let bob = user(&admin, "bob").await;
    bob.post("/api/v1/tokens", json!({"name": "ci"})).await;
    admin.patch("/api/v1/users/bob", json!({"disabled": true})).await;

    // Changes are recorded with actor, operation and old and new values.
    let (status, log) = admin.get("/api/v1/audit?resourceType=user&operation=disable").await;
    assert_eq!(status, 200, "{log}");
    let entry = &log["entries"][0];
    assert_eq!((entry["actorName"].as_str(), entry["resourceType"].as_str()), (Some("admin"), Some("user")));
    assert!(entry["oldValue"].as_str().unwrap().contains("\"disabled\":false"));
    assert!(entry["newValue"].as_str().unwrap().contains("\"disabled\":true"));
    let count: i64 = sqlite(dir.path(), "SELECT COUNT(*) FROM audit_log").trim().parse().unwrap();
    assert!(count >= 10, "{count} entries");
    let ok = edgefn(&server, &["audit", "verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with(&format!("audit log intact: {count} entries")));

    // The database itself refuses edits: triggers guard the table.
    let refused = Command::new("sqlite3")
        .arg(dir.path().join("edgefn.db"))
        .arg("UPDATE audit_log SET actor_name = 'x' WHERE seq = 3")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&refused.stderr).contains("append-only"));

    // Someone with the file drops the guards and edits a row: caught at that row.
    sqlite(dir.path(), "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;");
    let original = sqlite(dir.path(), "SELECT actor_name FROM audit_log WHERE seq = 5").trim().to_string();
    sqlite(dir.path(), "UPDATE audit_log SET actor_name = 'mallory' WHERE seq = 5");
    let bad = edgefn(&server, &["audit", "verify"]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("audit log broken at entry 5") && stderr.contains("edited"), "{stderr}");
    sqlite(dir.path(), &format!("UPDATE audit_log SET actor_name = '{original}' WHERE seq = 5"));
    assert!(edgefn(&server, &["audit", "verify"]).status.success());

    // Two rows swapped (their positions exchanged): caught at the first.
    sqlite(
        dir.path(),
        "UPDATE audit_log SET seq = -1 WHERE seq = 6; UPDATE audit_log SET seq = 6 WHERE seq = 7; UPDATE audit_log SET seq = 7 WHERE seq = -1;",
    );
    let stderr = String::from_utf8_lossy(&edgefn(&server, &["audit", "verify"]).stderr).to_string();
    assert!(stderr.contains("audit log broken at entry 6"), "{stderr}");
    sqlite(
        dir.path(),
        "UPDATE audit_log SET seq = -1 WHERE seq = 6; UPDATE audit_log SET seq = 6 WHERE seq = 7; UPDATE audit_log SET seq = 7 WHERE seq = -1;",
    );
    assert!(edgefn(&server, &["audit", "verify"]).status.success());

    // A row deleted: caught where the numbering breaks.
    sqlite(dir.path(), "DELETE FROM audit_log WHERE seq = 8");
    let stderr = String::from_utf8_lossy(&edgefn(&server, &["audit", "verify"]).stderr).to_string();
    assert!(stderr.contains("audit log broken at entry 9") && stderr.contains("deleted"), "{stderr}");
    // Users do not read the audit log.
    assert_eq!(bob.get("/api/v1/audit").await.0, 401);
    assert_eq!(user(&admin, "carol").await.get("/api/v1/audit/verify").await.0, 403);
}
