//! What one route change costs a node's state and router with N functions deployed: the
//! copy-and-change a delivery makes now (persistent maps: copy the served state, add the
//! route, add it to a copy of the router) against what every delivery did before (copy
//! every function and route, index every route again). `apply_cost [N…]` prints the
//! median time of 101 rounds of each; under callgrind, `apply_cost count change|whole N`
//! runs one round of one, in `measured_change` / `measured_whole`, so
//! `valgrind --tool=callgrind --toggle-collect='apply_cost::measured_*' …` counts its
//! instructions exactly.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use edgefn_model::{Class, Function, Kind, PathMatch, Resource, Route, Router, Snapshot, Status, Target, Version};

/// A function like those the scale run deploys: one version, default settings.
fn function(i: usize) -> Function {
    let label = "1.0.0".to_string();
    let version = Version { label: label.clone(), sha256: format!("{i:064x}"), size: 200, kind: Kind::Core };
    Function {
        id: format!("{i:08x}-0000-4000-8000-000000000000"),
        name: format!("f{i}"),
        owner: "admin".into(),
        class: Class::User,
        status: Status::Active,
        timeout_ms: 1000,
        max_memory_pages: 16,
        max_instances: 16,
        reuse_instances: true,
        http_timeout_ms: None,
        max_body_bytes: None,
        env: Arc::new(BTreeMap::from([("GREETING".to_string(), "hello".to_string())])),
        allow_hosts: Default::default(),
        latest: Some(label.clone()),
        versions: BTreeMap::from([(label, version)]),
    }
}

fn route(i: usize, function_id: &str) -> Route {
    let mut route =
        Route::new(&format!("r{i:08}"), &format!("/f{i}"), PathMatch::Exact, Target { function_id: function_id.into(), version: None });
    route.seq = i as i64;
    route
}

/// A node's state with `n` functions, each with its route, and their router.
fn deployed(n: usize) -> (Snapshot, Router<Target>) {
    let mut snapshot = Snapshot { revision: 1, ..Default::default() };
    for i in 0..n {
        let f = function(i);
        snapshot.upsert(Resource::Route(route(i, &f.id)));
        snapshot.upsert(Resource::Function(f));
    }
    let router = Router::new(snapshot.routes.values().cloned().collect()).expect("routes index");
    (snapshot, router)
}

/// One route more, as a delivery applies it now.
#[inline(never)]
fn measured_change(served: &Snapshot, router: &Router<Target>, extra: &Route) -> (Snapshot, Router<Target>) {
    let mut next = served.clone();
    let mut next_router = router.clone();
    next_router.insert(extra.clone()).expect("the route indexes");
    next.upsert(Resource::Route(extra.clone()));
    (next, next_router)
}

/// One route more, as every delivery applied it before: a deep copy of every function and
/// route, and a router indexed from all of them.
#[inline(never)]
fn measured_whole(served: &Snapshot, extra: &Route) -> (BTreeMap<String, Function>, Router<Target>) {
    let functions: BTreeMap<String, Function> = served.functions.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let mut routes: BTreeMap<String, Route> = served.routes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    routes.insert(extra.id.clone(), extra.clone());
    let router = Router::new(routes.into_values().collect()).expect("routes index");
    (functions, router)
}

fn median_us(mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..101)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[50]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("count") {
        let n: usize = args.get(2).and_then(|n| n.parse().ok()).expect("apply_cost count change|whole N");
        let (served, router) = deployed(n);
        let extra = route(n, "extra");
        match args[1].as_str() {
            "change" => drop(black_box(measured_change(&served, &router, &extra))),
            "whole" => drop(black_box(measured_whole(&served, &extra))),
            other => panic!("`{other}`: count change or whole"),
        }
        return;
    }
    let sizes: Vec<usize> =
        if args.is_empty() { vec![10, 1_000, 10_000] } else { args.iter().map(|a| a.parse().expect("a count")).collect() };
    println!("| functions | one route change now | as before (copy all, index all) |");
    println!("|---|---|---|");
    for n in sizes {
        let (served, router) = deployed(n);
        let extra = route(n, "extra");
        let change = median_us(|| drop(black_box(measured_change(&served, &router, &extra))));
        let whole = median_us(|| drop(black_box(measured_whole(&served, &extra))));
        println!("| {n} | {change:.1} µs | {whole:.1} µs |");
    }
}
