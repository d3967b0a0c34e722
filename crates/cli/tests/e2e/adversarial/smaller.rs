//! Point 7 of the hardening issue: JWTs not valid yet, claims of disabled users, and
//! entries deleted from the end of the audit log.

use serde_json::json;

use crate::Server;
use crate::identity::{edgefn, hs256, now, sqlite};

#[tokio::test]
async fn jwts_not_yet_valid_and_claims_of_disabled_users_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "test-secret-that-is-long-enough-for-hs256";
    let server = Server::start(dir.path(), &["--jwt-secret", secret]);
    let admin = server.client();
    let claims = |sub: &str, role: &str| json!({"sub": sub, "role": role, "exp": now() + 7200});

    // `nbf` an hour ahead: refused; within the leeway of a minute: accepted.
    let mut early = claims("u-early", "user");
    early["nbf"] = json!(now() + 3600);
    let (status, body) = admin.with_token(&hs256(secret, early)).get("/api/v1/me").await;
    assert_eq!((status, body["error"]["message"].as_str()), (401, Some("the token is not valid yet (nbf)")));
    let mut skewed = claims("u-skewed", "user");
    skewed["nbf"] = json!(now() + 20);
    assert_eq!(admin.with_token(&hs256(secret, skewed)).get("/api/v1/me").await.0, 200);
    let (_, users) = admin.get("/api/v1/users").await;
    assert!(!users.to_string().contains("u-early"), "a refused token created no user: {users}");

    // A user signs in, is disabled, then comes back with an admin role claim.
    let (status, me) = admin.with_token(&hs256(secret, claims("u-dave", "user"))).get("/api/v1/me").await;
    assert_eq!(status, 200, "{me}");
    let id = me["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(admin.patch(&format!("/api/v1/users/{id}"), json!({"disabled": true})).await.0, 200);
    let before = admin.get("/api/v1/audit?resourceType=user").await.1["entries"].as_array().unwrap().len();
    let (status, _) = admin.with_token(&hs256(secret, claims("u-dave", "admin"))).get("/api/v1/me").await;
    assert_eq!(status, 401);
    let (_, users) = admin.get("/api/v1/users").await;
    let dave = users["users"].as_array().unwrap().iter().find(|u| u["id"] == id.as_str()).unwrap().clone();
    assert_eq!((dave["role"].as_str(), dave["disabled"].as_bool()), (Some("user"), Some(true)), "{dave}");
    let after = admin.get("/api/v1/audit?resourceType=user").await.1["entries"].as_array().unwrap().len();
    assert_eq!(before, after, "nothing was written for the disabled user");
}

#[tokio::test]
async fn entries_deleted_from_the_end_of_the_audit_log_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let admin = server.client();
    for name in ["amy", "ben", "cat"] {
        admin.new_user(name).await;
    }
    let ok = edgefn(&server, &["audit", "verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let count: i64 = sqlite(dir.path(), "SELECT COUNT(*) FROM audit_log").trim().parse().unwrap();

    // Someone with the database file removes the newest entries (the guards dropped first).
    sqlite(dir.path(), "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;");
    sqlite(dir.path(), &format!("DELETE FROM audit_log WHERE seq > {}", count - 3));
    let bad = edgefn(&server, &["audit", "verify"]);
    assert!(!bad.status.success(), "a shorter chain passed: {}", String::from_utf8_lossy(&bad.stdout));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains(&format!("audit log broken at entry {count}")) && stderr.contains("entries at its end were deleted"),
        "{stderr}"
    );
    // The witness lives beside the database, readable by the server's user only.
    use std::os::unix::fs::PermissionsExt;
    let witness = dir.path().join("audit-head");
    assert_eq!(std::fs::metadata(&witness).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(std::fs::read_to_string(&witness).unwrap().starts_with(&format!("{count} ")));
}
