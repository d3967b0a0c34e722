//! Route claims on a real SQLite file: the overlap query, which reads only candidates
//! from the (host, path) index, finds exactly the claims the plain definition of an
//! overlap does, for hosts, wildcards and nested path prefixes.

use edgefn_store::{Actor, Database, RouteSpace};
use rand::{Rng, SeedableRng};

const HOSTS: [&str; 8] = ["", "a.example.com", "b.a.example.com", "*.example.com", "*.a.example.com", "example.com", "other.org", "*.org"];
const PREFIXES: [&str; 8] = ["", "/api", "/api/v1", "/api/v10", "/apix", "/api/v1/x", "/b", "/api0"];

#[tokio::test]
async fn the_overlap_query_finds_what_the_definition_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(&format!("sqlite://{}", dir.path().join("claims.db").display())).await.unwrap();
    let actor = Actor::system();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // Claims of one owner (nested and overlapping claims of one owner are allowed).
    for _ in 0..60 {
        let host = HOSTS[rng.random_range(0..HOSTS.len())];
        let prefix = if host.is_empty() { PREFIXES[rng.random_range(0..PREFIXES.len())] } else { "" };
        let space = RouteSpace::new(Some(host).filter(|h| !h.is_empty()), prefix);
        let _ = db.create_claim(&actor, &space, None, false).await;
    }
    let all = db.claims().await.unwrap();
    assert!(all.len() > 10, "{} claims", all.len());
    for host in HOSTS {
        for prefix in PREFIXES {
            let space = RouteSpace::new(Some(host).filter(|h| !h.is_empty()), prefix);
            let mut found: Vec<String> = db.overlapping_claims(&space).await.unwrap().into_iter().map(|c| c.id).collect();
            let mut want: Vec<String> = all.iter().filter(|c| c.space().overlaps(&space)).map(|c| c.id.clone()).collect();
            found.sort();
            want.sort();
            assert_eq!(found, want, "host `{host}`, prefix `{prefix}`");
        }
    }
}
