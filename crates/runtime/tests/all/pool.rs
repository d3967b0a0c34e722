//! Instance pools: fresh instances by default, opt-in reuse, the concurrency limit, the
//! memory budget and the idle timeout — on real modules.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edgefn_runtime::{
    CallContext, DEFAULT_IDLE_TIMEOUT, DEFAULT_MEMORY_BUDGET_BYTES, HttpError, HttpLimits, HttpRequest, Pool, PoolSettings, Pools,
};

use crate::{load, runtime};

/// A `handle` that counts its calls in a global and answers the count as one digit (its
/// bump allocator starts over after each request).
const COUNTER: &str = r#"(module (memory (export "memory") 1) (data (i32.const 0) "200\n\n0")
    (global $n (mut i32) (i32.const 0)) (global $h (mut i32) (i32.const 4096))
    (func (export "alloc") (param i32) (result i32) (global.get $h) (global.set $h (i32.add (global.get $h) (local.get 0))))
    (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (global.set $n (i32.add (global.get $n) (i32.const 1)))
      (i32.store8 (i32.const 5) (i32.add (i32.const 48) (global.get $n)))
      (memory.copy (local.get 8) (i32.const 0) (i32.const 6))
      (global.set $h (i32.const 4096)) (i32.const 6)))"#;

/// A `handle` that never returns.
const SPIN: &str = r#"(module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 8))
    (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) (loop $l (br $l)) (i32.const 0)))"#;

fn limits(timeout_ms: u64) -> HttpLimits {
    HttpLimits { timeout: Duration::from_millis(timeout_ms), max_memory_bytes: 16 << 20, response_cap: 1 << 20 }
}

fn get() -> HttpRequest {
    HttpRequest { method: "GET".into(), path: "/".into(), headers: Vec::new().into(), body: vec![] }
}

async fn body(pool: &Arc<Pool>) -> String {
    let lease = pool.acquire(Duration::from_secs(1)).await.unwrap();
    String::from_utf8(lease.handle_http(get(), limits(500), CallContext::default()).await.unwrap().body).unwrap()
}

/// Waits (at most 30 s: ready instances are made at the lowest CPU priority, which a
/// loaded machine starves) until `holds` says yes.
async fn until(what: &str, holds: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !holds() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the pool has made `n` ready instances in the background.
async fn ready(pool: &Arc<Pool>, n: usize) {
    until(&format!("{n} ready instances"), || pool.stats().ready == n).await;
}

#[tokio::test]
async fn instances_are_fresh_per_request_unless_reuse_is_on() {
    let rt = runtime();
    let loaded = load(&rt, wat::parse_str(COUNTER).unwrap()).await;
    let pools = Pools::new(rt.clone(), DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_IDLE_TIMEOUT);

    let fresh = pools.get("fresh", "owner", &loaded.module, PoolSettings::default());
    ready(&fresh, 1).await;
    for _ in 0..3 {
        assert_eq!(body(&fresh).await, "1", "a fresh instance per request sees no earlier request");
    }
    ready(&fresh, 1).await;

    let reused = pools.get("reused", "owner", &loaded.module, PoolSettings { reuse: true, ..PoolSettings::default() });
    ready(&reused, 1).await;
    let seen = [body(&reused).await, body(&reused).await, body(&reused).await];
    assert_eq!(seen, ["1", "2", "3"], "with reuse one instance serves every request");
    assert_eq!(reused.stats().ready, 1);
}

#[tokio::test]
async fn a_saturated_function_is_refused_then_recovers() {
    let rt = runtime();
    let loaded = load(&rt, wat::parse_str(SPIN).unwrap()).await;
    let pools = Pools::new(rt.clone(), DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_IDLE_TIMEOUT);
    let pool = pools.get("spin", "owner", &loaded.module, PoolSettings { max_instances: 1, max_queue: 1, ..PoolSettings::default() });

    let lease = pool.acquire(Duration::from_secs(1)).await.unwrap();
    // The running request spins for 1.5 s: long enough that a loaded machine still sees
    // the waiter queue behind it.
    let running = tokio::spawn(lease.handle_http(get(), limits(1500), CallContext::default()));
    until("the first request runs", || pool.stats().busy == 1).await;

    // One may wait (the queue holds one), but not past its wait time.
    let started = Instant::now();
    let waited = pool.acquire(Duration::from_millis(50)).await.map(|_| ()).unwrap_err();
    assert_eq!(waited.max_instances, 1);
    assert!(started.elapsed() >= Duration::from_millis(50));
    // While one waits, the queue is full and the next is refused at once.
    let waiter = tokio::spawn({
        let pool = pool.clone();
        async move { pool.acquire(Duration::from_secs(5)).await.is_ok() }
    });
    until("one request waits", || pool.stats().queued == 1).await;
    assert!(pool.acquire(Duration::from_secs(2)).await.is_err(), "a full queue refuses at once");

    assert!(matches!(running.await.unwrap(), Err(HttpError::Timeout { timeout_ms: 1500 })));
    assert!(waiter.await.unwrap(), "the waiting request gets the slot when the running one ends");
}

#[tokio::test]
async fn the_memory_budget_empties_the_least_recently_used_pool_first() {
    let rt = runtime();
    let loaded = load(&rt, wat::parse_str(COUNTER).unwrap()).await;
    // Each ready instance holds one 64 KiB page; the budget fits one of them.
    let pools = Pools::new(rt.clone(), 100_000, DEFAULT_IDLE_TIMEOUT);
    let old = pools.get("old", "owner", &loaded.module, PoolSettings::default());
    ready(&old, 1).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let new = pools.get("new", "owner", &loaded.module, PoolSettings::default());
    ready(&new, 1).await;
    assert_eq!(pools.ready_bytes(), 2 * 65536);

    assert_eq!(pools.sweep(), 1);
    assert_eq!((old.stats().ready, new.stats().ready, pools.ready_bytes()), (0, 1, 65536));
    // An emptied pool still serves: it makes an instance on demand.
    assert_eq!(body(&old).await, "1");
}

#[tokio::test]
async fn idle_pools_are_dropped() {
    let rt = runtime();
    let loaded = load(&rt, wat::parse_str(COUNTER).unwrap()).await;
    let pools = Pools::new(rt.clone(), DEFAULT_MEMORY_BUDGET_BYTES, Duration::from_millis(500));
    let pool = pools.get("idle", "owner", &loaded.module, PoolSettings::default());
    assert_eq!(pools.sweep(), 0, "not idle yet");
    ready(&pool, 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(pools.sweep(), 1);
    assert!(pools.stats().is_empty());
    assert_eq!(pools.ready_bytes(), 0);
}

/// A runtime of the default settings with only `slots` instance slots.
fn runtime_with_slots(slots: u32) -> edgefn_runtime::Runtime {
    edgefn_runtime::Runtime::new(edgefn_runtime::RuntimeConfig { max_concurrent_instances: slots, ..Default::default() }).unwrap()
}

#[tokio::test]
async fn warm_pools_give_their_slots_back_so_every_request_is_served() {
    // 40 slots: ready instances may hold 30, one owner 15.
    let rt = runtime_with_slots(40);
    let loaded = load(&rt, wat::parse_str(COUNTER).unwrap()).await;
    let pools = Pools::new(rt.clone(), DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_IDLE_TIMEOUT);
    assert_eq!((pools.ready_limit(), pools.owner_limit()), (30, 15));
    // One tenant with 100 functions, each requested twice: every request is answered,
    // though only 40 instances can exist at once.
    let greedy: Vec<Arc<Pool>> =
        (0..100).map(|i| pools.get(&format!("greedy-{i}"), "greedy", &loaded.module, PoolSettings::default())).collect();
    for round in 0..2 {
        for pool in &greedy {
            assert_eq!(body(pool).await, "1", "round {round}");
        }
    }
    until("the greedy tenant at its bound", || pools.ready_count() >= 10).await;
    assert!(pools.ready_count() <= 15, "{} ready instances for one owner", pools.ready_count());

    // Another tenant's functions warm up beside it and keep their instances.
    let others: Vec<Arc<Pool>> =
        (0..10).map(|i| pools.get(&format!("other-{i}"), "other", &loaded.module, PoolSettings::default())).collect();
    for pool in &others {
        assert_eq!(body(pool).await, "1");
    }
    for pool in &others {
        ready(pool, 1).await;
    }
    assert!(pools.ready_count() <= pools.ready_limit());

    // Every slot held by ready instances: a request takes one back instead of failing.
    let crowd: Vec<Arc<Pool>> =
        (0..30).map(|i| pools.get(&format!("crowd-{i}"), &format!("t{i}"), &loaded.module, PoolSettings::default())).collect();
    for pool in &crowd {
        assert_eq!(body(pool).await, "1");
    }
    assert!(pools.ready_count() <= pools.ready_limit());
}

#[tokio::test]
async fn with_every_slot_running_a_request_the_next_is_told_to_retry() {
    let rt = runtime_with_slots(4);
    let spin = load(&rt, wat::parse_str(SPIN).unwrap()).await;
    let pools = Pools::new(rt.clone(), DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_IDLE_TIMEOUT);
    let settings = PoolSettings { min_instances: 0, ..PoolSettings::default() };
    let pool = pools.get("spin", "owner", &spin.module, settings);
    let mut running = Vec::new();
    for _ in 0..4 {
        let lease = pool.acquire(Duration::from_secs(1)).await.unwrap();
        running.push(tokio::spawn(lease.handle_http(get(), limits(1500), CallContext::default())));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lease = pool.acquire(Duration::from_secs(1)).await.unwrap();
    let err = lease.handle_http(get(), limits(500), CallContext::default()).await.unwrap_err();
    assert!(matches!(err, HttpError::Busy(_)), "{err:?}");
    for r in running {
        assert!(matches!(r.await.unwrap(), Err(HttpError::Timeout { .. })));
    }
}
