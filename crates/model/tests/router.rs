//! Router properties: the index agrees with the plain definition of a match and of the
//! winner (seed properties 5 and 20), for any route set and request.

use edgefn_model::{Lookup, PathMatch, RouteSpec, Router};
use proptest::prelude::*;

fn route(id: &str, host: Option<&str>, path: &str, kind: PathMatch, methods: &[&str], priority: i64) -> RouteSpec<String> {
    RouteSpec {
        id: id.into(),
        host: host.map(str::to_string),
        path: path.into(),
        kind,
        methods: methods.iter().map(|m| m.to_string()).collect(),
        priority,
        pop_selector: None,
        seq: id.trim_start_matches('r').parse().unwrap_or(0),
        target: id.into(),
    }
}

fn winner(router: &Router<String>, host: &str, path: &str, method: &str) -> Option<String> {
    match router.lookup(host, path, method) {
        Lookup::Found(r) => Some(r.id.clone()),
        _ => None,
    }
}

/// Four routes to `/api` that differ in host and path specificity.
fn api_routes() -> Vec<RouteSpec<String>> {
    vec![
        route("r1", None, "/api", PathMatch::Prefix, &[], 0),
        route("r2", None, "/api/users", PathMatch::Exact, &["GET"], 0),
        route("r3", Some("*.example.com"), "/api", PathMatch::Prefix, &[], 0),
        route("r4", Some("shop.example.com"), "/api", PathMatch::Prefix, &[], 0),
    ]
}

#[test]
fn matching_rules() {
    let mut routes = api_routes();
    routes.push(route("r5", None, "/items/[0-9]+", PathMatch::Regex, &[], 0));
    routes.push(route("r6", None, "/", PathMatch::Prefix, &[], -1));
    routes.push(route("r7", None, "/api", PathMatch::Prefix, &[], 5));
    let router = Router::new(routes).unwrap();
    // Priority beats specificity.
    assert_eq!(winner(&router, "x.org", "/api/users", "GET").as_deref(), Some("r7"));
    // Prefixes match whole segments; "/" catches the rest at its low priority.
    assert_eq!(winner(&router, "x.org", "/apix", "GET").as_deref(), Some("r6"));
    // Regexes are anchored to the whole path.
    assert_eq!(winner(&router, "x.org", "/items/42", "GET").as_deref(), Some("r5"));
    assert_eq!(winner(&router, "x.org", "/items/42/more", "GET").as_deref(), Some("r6"));

    let router = Router::new(api_routes()).unwrap();
    // A host's own routes answer it (exact host, else wildcard, else any); exact path > prefix.
    assert_eq!(winner(&router, "Shop.Example.com:8443", "/api/x", "GET").as_deref(), Some("r4"));
    assert_eq!(winner(&router, "a.b.example.com", "/api/x", "GET").as_deref(), Some("r3"));
    assert_eq!(winner(&router, "example.com", "/api/x", "GET").as_deref(), Some("r1"));
    assert_eq!(winner(&router, "x.org", "/api/users", "GET").as_deref(), Some("r2"));
    assert_eq!(winner(&router, "x.org", "/api/users", "POST").as_deref(), Some("r1"));
    assert!(matches!(router.lookup("x.org", "/nowhere", "GET"), Lookup::NotFound));

    // A host with routes never falls through to the routes for any host, whatever their
    // priority, and a regex never matches outside its literal scope.
    let mut routes = api_routes();
    routes.push(route("r8", None, "/", PathMatch::Prefix, &[], 1000));
    routes.push(route("r9", None, "/users/[0-9]+|/admin", PathMatch::Regex, &[], 2000));
    let router = Router::new(routes).unwrap();
    assert_eq!(winner(&router, "shop.example.com", "/api/x", "GET").as_deref(), Some("r4"));
    assert!(matches!(router.lookup("shop.example.com", "/elsewhere", "GET"), Lookup::NotFound));
    assert!(matches!(router.lookup("a.example.com", "/elsewhere", "GET"), Lookup::NotFound));
    assert_eq!(winner(&router, "x.org", "/users/7", "GET").as_deref(), Some("r9"));
    assert_eq!(winner(&router, "x.org", "/admin", "GET").as_deref(), Some("r8"), "the regex stays under /users");
    assert_eq!(edgefn_model::route_scope("/users/[0-9]+|/admin", PathMatch::Regex), "/users");
    assert_eq!(edgefn_model::route_scope("/api/v[0-9]+/.*", PathMatch::Regex), "/api");
    assert_eq!(edgefn_model::route_scope("/ab.*", PathMatch::Regex), "");
    assert_eq!(edgefn_model::route_scope("/plain/", PathMatch::Regex), "/plain");
    assert_eq!(edgefn_model::route_scope("/api/", PathMatch::Prefix), "/api");

    let only_get = Router::new(vec![route("r1", None, "/a", PathMatch::Exact, &["get", "HEAD"], 0)]).unwrap();
    assert!(matches!(only_get.lookup("h", "/a", "DELETE"), Lookup::MethodNotAllowed(m) if m == ["GET", "HEAD"]));
}

#[test]
fn pop_selectors_and_bad_routes() {
    let mut tokyo = route("r1", None, "/", PathMatch::Prefix, &[], 0);
    tokyo.pop_selector = Some("tokyo-*, osaka-1".into());
    assert!(tokyo.applies_to_pop(Some("tokyo-2")));
    assert!(tokyo.applies_to_pop(Some("osaka-1")));
    assert!(!tokyo.applies_to_pop(Some("osaka-2")));
    assert!(!tokyo.applies_to_pop(None));

    let err = Router::new(vec![route("r1", None, "/(", PathMatch::Regex, &[], 0)]).unwrap_err();
    assert!(err.to_string().starts_with("route r1: invalid regex `/(`"), "{err}");
    let err = Router::new(vec![route("r1", Some("a*.com"), "/", PathMatch::Prefix, &[], 0)]).unwrap_err();
    assert!(err.to_string().contains("invalid host `a*.com`"), "{err}");
    let err = Router::new(vec![route("r1", None, "api", PathMatch::Exact, &[], 0)]).unwrap_err();
    assert!(err.to_string().contains("must start with `/`"), "{err}");
}

fn arb_path() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof!["a", "b", "c"], 0..4).prop_map(|segs| format!("/{}", segs.join("/")))
}

/// A generated route: host, path, kind, methods, priority.
type Spec = (Option<&'static str>, String, PathMatch, Vec<&'static str>, i64);

fn arb_route() -> impl Strategy<Value = Spec> {
    let host = prop_oneof![Just(None), Just(Some("example.com")), Just(Some("*.example.com")), Just(Some("api.example.com"))];
    let kind = prop_oneof![Just(PathMatch::Exact), Just(PathMatch::Prefix), Just(PathMatch::Regex)];
    let methods = proptest::sample::subsequence(vec!["GET", "POST"], 0..=2);
    (host, arb_path(), kind, methods, 0i64..3).prop_map(|(h, p, k, m, pr)| {
        let path = if k == PathMatch::Regex { format!("{}[a-c/]*", p.trim_end_matches('/')) } else { p };
        (h, path, k, m, pr)
    })
}

fn arb_request() -> impl Strategy<Value = (&'static str, String, &'static str)> {
    let host =
        prop_oneof![Just("example.com"), Just("api.example.com"), Just("x.api.example.com"), Just("other.org"), Just("EXAMPLE.com:8080")];
    (host, arb_path(), prop_oneof![Just("GET"), Just("POST"), Just("PUT")])
}

/// The host pattern whose routes answer `host` (the plain definition): the exact host if
/// any route names it, else the longest wildcard some route names, else any host (`None`).
fn tier_of(routes: &[RouteSpec<String>], host: &str) -> Option<String> {
    let host = host.split(':').next().unwrap().to_ascii_lowercase();
    let named = |pattern: &str| routes.iter().any(|r| r.host.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(pattern)));
    if named(&host) {
        return Some(host);
    }
    let mut rest = host.as_str();
    while let Some((_, suffix)) = rest.split_once('.') {
        let wildcard = format!("*.{suffix}");
        if named(&wildcard) {
            return Some(wildcard);
        }
        rest = suffix;
    }
    None
}

fn build(specs: &[Spec]) -> Vec<RouteSpec<String>> {
    specs.iter().enumerate().map(|(i, (h, p, k, m, pr))| route(&format!("r{i}"), *h, p, *k, m, *pr)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// The index finds exactly the route the plain definition picks (property 20: no
    /// matching route has a higher priority than the winner).
    #[test]
    fn index_agrees_with_the_definition(specs in proptest::collection::vec(arb_route(), 0..40), reqs in proptest::collection::vec(arb_request(), 1..20)) {
        let routes = build(&specs);
        let router = Router::new(routes.clone()).unwrap();
        for (host, path, method) in reqs {
            let tier = tier_of(&routes, host);
            let matching: Vec<&RouteSpec<String>> =
                routes.iter().filter(|r| r.host.as_deref().map(str::to_ascii_lowercase) == tier && r.matches(host, &path, method)).collect();
            let got = winner(&router, host, &path, method);
            match matching.iter().map(|r| r.priority).max() {
                None => prop_assert_eq!(got, None),
                Some(top) => {
                    let got = got.expect("a route matches");
                    let chosen = routes.iter().find(|r| r.id == got).unwrap();
                    prop_assert!(chosen.matches(host, &path, method));
                    prop_assert_eq!(chosen.priority, top);
                }
            }
        }
    }

    /// Property 5: the winner depends on the set of routes, not their order.
    #[test]
    fn routing_is_deterministic(specs in proptest::collection::vec(arb_route(), 1..40), reqs in proptest::collection::vec(arb_request(), 1..20), seed in any::<u64>()) {
        let routes = build(&specs);
        let mut shuffled = routes.clone();
        let n = shuffled.len();
        for i in (1..n).rev() {
            shuffled.swap(i, (seed.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize);
        }
        let a = Router::new(routes).unwrap();
        let b = Router::new(shuffled).unwrap();
        for (host, path, method) in reqs {
            prop_assert_eq!(winner(&a, host, &path, method), winner(&b, host, &path, method));
        }
    }
}

/// What a router answers to every request of `reqs`: the winner's id, or the methods
/// that would be allowed.
fn answers(router: &Router<String>, reqs: &[(&'static str, String, &'static str)]) -> Vec<Result<String, Vec<String>>> {
    reqs.iter()
        .map(|(host, path, method)| match router.lookup(host, path, method) {
            Lookup::Found(r) => Ok(r.id.clone()),
            Lookup::MethodNotAllowed(allowed) => Err(allowed),
            Lookup::NotFound => Err(vec![]),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A router changed route by route — routes added, replaced under their id and
    /// removed, each change on a copy of the one before — answers every request as a
    /// router built at once from the routes left; and the copies before each change still
    /// answer as they did (a node serves from one while it changes the next).
    #[test]
    fn a_router_changed_in_place_agrees_with_one_built_whole(
        changes in proptest::collection::vec((0usize..12, proptest::option::of(arb_route())), 1..60),
        reqs in proptest::collection::vec(arb_request(), 1..20),
    ) {
        let mut live = Router::new(vec![]).unwrap();
        let mut held: std::collections::BTreeMap<usize, RouteSpec<String>> = Default::default();
        for (step, (slot, change)) in changes.into_iter().enumerate() {
            let before = live.clone();
            let before_answers = answers(&before, &reqs);
            match change {
                Some((h, p, k, m, pr)) => {
                    let mut r = route(&format!("r{slot}"), h, &p, k, &m, pr);
                    r.seq = step as i64;
                    live.insert(r.clone()).unwrap();
                    held.insert(slot, r);
                }
                None => {
                    prop_assert_eq!(live.remove(&format!("r{slot}")), held.remove(&slot).is_some());
                }
            }
            prop_assert_eq!(answers(&before, &reqs), before_answers, "a copy changed with its original");
            prop_assert_eq!(live.len(), held.len());
        }
        let whole = Router::new(held.into_values().collect()).unwrap();
        prop_assert_eq!(answers(&live, &reqs), answers(&whole, &reqs));
    }
}

#[test]
fn a_route_the_router_refuses_leaves_it_as_it_was() {
    let mut router = Router::new(vec![route("r1", None, "/a", PathMatch::Exact, &[], 0)]).unwrap();
    let err = router.insert(route("r1", None, "/(", PathMatch::Regex, &[], 0)).unwrap_err();
    assert!(err.to_string().contains("invalid regex"), "{err}");
    assert_eq!(winner(&router, "x.org", "/a", "GET").as_deref(), Some("r1"));
    // The last route of a host gone: its requests fall through to the routes for any host.
    router.insert(route("r2", Some("shop.example.com"), "/b", PathMatch::Exact, &[], 0)).unwrap();
    assert_eq!(winner(&router, "shop.example.com", "/a", "GET"), None);
    assert!(router.remove("r2"));
    assert_eq!(winner(&router, "shop.example.com", "/a", "GET").as_deref(), Some("r1"));
    assert!(!router.remove("r2"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Fuzz target: any route patterns build a router or a clear error, and any request
    /// line — odd hosts, ports, unicode, empty paths — is looked up without a panic, with
    /// an answer that agrees with the plain definition.
    #[test]
    fn any_patterns_and_any_requests_are_handled(
        patterns in proptest::collection::vec(("\\PC{0,12}", prop_oneof![Just(PathMatch::Exact), Just(PathMatch::Prefix), Just(PathMatch::Regex)], proptest::option::of("[*.a-zA-Z0-9:\\[\\]-]{0,12}")), 0..8),
        requests in proptest::collection::vec(("\\PC{0,16}", "\\PC{0,16}", "[A-Z]{0,7}"), 1..8),
    ) {
        let routes: Vec<RouteSpec<String>> = patterns
            .iter()
            .enumerate()
            .map(|(i, (path, kind, host))| route(&format!("r{i}"), host.as_deref(), path, *kind, &[], 0))
            .collect();
        let Ok(router) = Router::new(routes.clone()) else { return Ok(()) };
        for (host, path, method) in requests {
            if let Lookup::Found(r) = router.lookup(&host, &path, &method) {
                prop_assert!(r.matches(&host, &path, &method), "{} does not match {host} {path}", r.id);
            }
            let scope = edgefn_model::route_scope(&path, PathMatch::Regex);
            prop_assert!(path.starts_with(scope));
        }
    }
}
