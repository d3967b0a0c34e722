//! The slow lanes: a call that runs long goes on off its caller's thread, still ends at
//! its deadline, and short calls on the caller's thread answer meanwhile. Each test runs
//! on a current-thread runtime, so every task of the test (the short calls, the spinning
//! one while it is short) shares the test's own thread, whose CPU time is then counted.

use std::time::Duration;

use edgefn_runtime::{
    CallContext, DEFAULT_IDLE_TIMEOUT, DEFAULT_MEMORY_BUDGET_BYTES, HttpError, HttpLimits, HttpRequest, InvokeError, InvokeRequest,
    PoolSettings, Pools,
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
/// Most CPU ticks (of 10 ms) the caller's thread may use while a call spins for
/// [`SPIN_MS`]: its fast ticks, the short calls and the test itself, with room to spare;
/// the spin itself would be about 60.
const CALLER_TICKS: u64 = 20;

/// CPU time (user and system) this thread has used, in clock ticks.
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("this thread's stat");
    // Fields after the command (which may hold spaces): state is the first, utime the 12th.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat has a command").1.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
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

    let before = thread_cpu_ticks();
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
    let used = thread_cpu_ticks() - before;
    let err = spinning.await.unwrap().unwrap_err();
    assert!(matches!(err, HttpError::Timeout { timeout_ms: SPIN_MS }), "{err}");
    assert!(answered > 0, "the short function answered while the other spun");
    assert!(used < CALLER_TICKS, "the caller's thread used {used} ticks of 10 ms while a call spun for {SPIN_MS} ms");
}

#[tokio::test]
async fn an_invoke_that_runs_long_moves_off_the_callers_thread_and_still_times_out() {
    let rt = runtime();
    let looping = load(&rt, example("loop.wat")).await;
    let mut req = InvokeRequest::new("spin", json!([]));
    req.timeout = Duration::from_millis(SPIN_MS);
    let before = thread_cpu_ticks();
    let err = rt.invoke(&looping.module, req).await.unwrap_err();
    let used = thread_cpu_ticks() - before;
    assert!(matches!(err, InvokeError::Timeout { timeout_ms: SPIN_MS }), "{err}");
    assert!(used < CALLER_TICKS, "the caller's thread used {used} ticks of 10 ms while a call spun for {SPIN_MS} ms");
}
