//! The slow lanes: a call that runs long goes on off its caller's thread, still ends at
//! its deadline, and short calls on the caller's thread answer meanwhile; the next call of
//! a function that ran long starts off it. Each test runs
//! on a current-thread runtime, so every task of the test (the short calls, the spinning
//! one while it is short) shares the test's own thread, whose CPU time is then counted.

use std::time::Duration;

use edgefn_runtime::{
    CallContext, DEFAULT_IDLE_TIMEOUT, DEFAULT_MEMORY_BUDGET_BYTES, HttpError, HttpLimits, HttpRequest, InvokeError, InvokeRequest,
    PoolSettings, Pools, Runtime,
};
use serde_json::json;

use crate::{example, load, runtime};

/// A `handle` that never returns.
const SPIN: &str = r#"(module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 8))
    (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) (loop $l (br $l)) (i32.const 0)))"#;

/// A `handle` that answers "ok".
const OK: &str = r#"(module (memory (export "memory") 1) (data (i32.const 0) "200\n\nok")
    (func (export "alloc") (param i32) (result i32) (i32.const 1024))
    (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      (memory.copy (local.get 8) (i32.const 0) (i32.const 7)) (i32.const 7)))"#;

/// How long the spinning calls run: long enough that running them here would show.
const SPIN_MS: u64 = 600;
/// Most CPU the caller's thread may use while a call spins for [`SPIN_MS`]: the call's
/// fast run (2 ms), the short calls and the test itself, with room to spare; the spin
/// itself would be 600 ms.
const CALLER_CPU: Duration = Duration::from_millis(200);

/// CPU time this thread has spent running (the kernel's schedstat, in nanoseconds).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("this thread's schedstat");
    Duration::from_nanos(stat.split_whitespace().next().expect("time on CPU").parse().unwrap())
}

fn get() -> HttpRequest {
    HttpRequest { method: "GET".into(), path: "/".into(), headers: Vec::new().into(), body: vec![] }
}

fn limits(timeout_ms: u64) -> HttpLimits {
    HttpLimits { timeout: Duration::from_millis(timeout_ms), max_memory_bytes: 16 << 20, response_cap: 1 << 20 }
}

#[tokio::test]
async fn an_http_call_that_runs_long_moves_off_the_callers_thread_and_still_times_out() {
    let rt = runtime();
    let spin = load(&rt, wat::parse_str(SPIN).unwrap()).await;
    let ok = load(&rt, wat::parse_str(OK).unwrap()).await;
    let pools = Pools::new(rt.clone(), DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_IDLE_TIMEOUT);
    let spin = pools.get("spin", "eve", &spin.module, PoolSettings::default());
    let ok = pools.get("ok", "olive", &ok.module, PoolSettings::default());

    let before = thread_cpu();
    let lease = spin.acquire(Duration::from_secs(1)).await.unwrap();
    let spinning = tokio::spawn(lease.handle_http(get(), limits(SPIN_MS), CallContext::default()));
    let mut answered = 0;
    while !spinning.is_finished() {
        let lease = ok.acquire(Duration::from_secs(1)).await.unwrap();
        let response = lease.handle_http(get(), limits(500), CallContext::default()).await.unwrap();
        assert_eq!(response.body, b"ok");
        answered += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let used = thread_cpu() - before;
    let err = spinning.await.unwrap().unwrap_err();
    assert!(matches!(err, HttpError::Timeout { timeout_ms: SPIN_MS }), "{err}");
    assert!(answered > 0, "the short function answered while the other spun");
    moved_off_the_caller(&rt, used);
}

#[tokio::test]
async fn an_invoke_that_runs_long_moves_off_the_callers_thread_and_still_times_out() {
    let rt = runtime();
    let looping = load(&rt, example("loop.wat")).await;
    let mut req = InvokeRequest::new("spin", json!([]));
    req.timeout = Duration::from_millis(SPIN_MS);
    let before = thread_cpu();
    let err = rt.invoke(&looping.module, req).await.unwrap_err();
    let used = thread_cpu() - before;
    assert!(matches!(err, InvokeError::Timeout { timeout_ms: SPIN_MS }), "{err}");
    moved_off_the_caller(&rt, used);
}

/// The one spinning call moved to the lanes; unless they starved — other processes took
/// the cores, and then the call finishes on its caller's thread by design — the caller's
/// thread used only the call's fast run and its own work (`used`).
fn moved_off_the_caller(rt: &Runtime, used: Duration) {
    let counts = rt.lane_counts();
    assert_eq!((counts.started, counts.moved), (0, 1), "{counts:?}");
    if counts.returned == 0 {
        assert!(used < CALLER_CPU, "the caller's thread used {used:?} of CPU while a call spun for {SPIN_MS} ms");
    }
}

#[tokio::test]
async fn the_next_call_of_a_function_that_ran_long_starts_on_the_slow_lanes() {
    let rt = runtime();
    let spin = load(&rt, wat::parse_str(SPIN).unwrap()).await;
    let pools = Pools::new(rt.clone(), DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_IDLE_TIMEOUT);
    let spin = pools.get("spin", "eve", &spin.module, PoolSettings::default());
    let mut used = Vec::new();
    let mut started_on_lanes = Vec::new();
    for _ in 0..2 {
        let lease = spin.acquire(Duration::from_secs(1)).await.unwrap();
        let before = thread_cpu();
        let err = lease.handle_http(get(), limits(100), CallContext::default()).await.unwrap_err();
        used.push(thread_cpu() - before);
        started_on_lanes.push(rt.lane_counts().started);
        assert!(matches!(err, HttpError::Timeout { timeout_ms: 100 }), "{err}");
    }
    // The first call spins here for its fast run (2 ms of CPU) before it moves; the second
    // starts on the lanes. (It may still come back here and spin if the lanes starve, as
    // they do when other processes load the machine, so its CPU here is not a measure.)
    assert!(used[0] >= Duration::from_millis(2), "the first call ran here first: {used:?}");
    assert_eq!(started_on_lanes, [0, 1], "only the second call started on the slow lanes");
}
