//! Core modules: numbers, the string memory ABI, limits and refusals.

use std::time::{Duration, Instant};

use edgefn_runtime::{InvokeError, InvokeRequest, PrepareError, ResultEncoding, RuntimeConfig};
use serde_json::{Value, json};

use crate::{example, load, runtime};

async fn call(file: &str, req: InvokeRequest) -> Result<Value, InvokeError> {
    let rt = runtime();
    let loaded = load(&rt, example(file)).await;
    rt.invoke(&loaded.module, req).await.map(|o| o.result)
}

#[tokio::test]
async fn numbers_by_signature() {
    assert_eq!(call("add.wat", InvokeRequest::new("add", json!([1, 2]))).await.unwrap(), json!(3));
    assert_eq!(call("add.wat", InvokeRequest::new("add", json!([-5, 2]))).await.unwrap(), json!(-3));
    assert_eq!(call("fibonacci.wat", InvokeRequest::new("fibonacci", json!([90]))).await.unwrap(), json!("2880067194370816120"));
    assert_eq!(call("fibonacci.wat", InvokeRequest::new("fibonacci", json!([10]))).await.unwrap(), json!(55));
    assert_eq!(call("multiply.wat", InvokeRequest::new("multiply", json!(["4294967296", 3]))).await.unwrap(), json!(12884901888_i64));
}

#[tokio::test]
async fn strings_through_the_memory_abi() {
    let mut req = InvokeRequest::new("greet", json!(["World"]));
    req.result = ResultEncoding::String;
    assert_eq!(call("greet.wat", req.clone()).await.unwrap(), json!("Hello, World!"));
    req.args = json!([{"base64": "w6lsw6g="}]);
    assert_eq!(call("greet.wat", req.clone()).await.unwrap(), json!("Hello, élè!"));
    req.result = ResultEncoding::Bytes;
    req.args = json!(["A"]);
    assert_eq!(call("greet.wat", req).await.unwrap(), json!({"base64": "SGVsbG8sIEEh"}));
}

#[tokio::test]
async fn wrong_arguments_name_the_real_signature() {
    let err = call("add.wat", InvokeRequest::new("add", json!([1]))).await.unwrap_err();
    assert_eq!(err.to_string(), "too few arguments: got 1; expected add(i32, i32) -> i32");
    let err = call("add.wat", InvokeRequest::new("add", json!([1, "x"]))).await.unwrap_err();
    assert!(err.to_string().contains("needs two i32 parameters"), "{err}");
    let err = call("add.wat", InvokeRequest::new("add", json!([1, 2.5]))).await.unwrap_err();
    assert!(err.to_string().contains("expected an integer for i32, got 2.5"), "{err}");
    let err = call("add.wat", InvokeRequest::new("add", json!([1, 5000000000u64]))).await.unwrap_err();
    assert!(err.to_string().contains("5000000000 does not fit in i32"), "{err}");
    let err = call("add.wat", InvokeRequest::new("sub", json!([1, 2]))).await.unwrap_err();
    assert_eq!(err.to_string(), "no exported function named `sub`; exports: add(i32, i32) -> i32");
}

#[tokio::test]
async fn an_infinite_loop_stops_at_its_timeout() {
    let mut req = InvokeRequest::new("spin", json!([]));
    req.timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = call("loop.wat", req).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, InvokeError::Timeout { timeout_ms: 300 }), "{err}");
    // Stopped at the deadline, not later than scheduling on a loaded machine explains.
    assert!(took >= Duration::from_millis(300) && took < Duration::from_millis(1000), "took {took:?}");
}

#[tokio::test]
async fn a_memory_bomb_stops_at_its_limit() {
    let mut req = InvokeRequest::new("grow", json!([]));
    req.max_memory_bytes = 4 * 1024 * 1024;
    let err = call("memory-bomb.wat", req).await.unwrap_err();
    assert!(matches!(err, InvokeError::Trap(_)), "{err}");
    assert!(err.to_string().contains("memory limit exceeded"), "{err}");
    assert!(err.to_string().contains("its limit is 4194304 bytes"), "{err}");
}

#[tokio::test]
async fn runaway_recursion_traps() {
    let wasm = wat::parse_str(r#"(module (func $f (export "f") (call $f)))"#).unwrap();
    let rt = runtime();
    let loaded = load(&rt, wasm).await;
    let err = rt.invoke(&loaded.module, InvokeRequest::new("f", json!([]))).await.unwrap_err();
    assert!(err.to_string().contains("call stack exhausted"), "{err}");
}

#[tokio::test]
async fn memory_used_is_reported() {
    let rt = runtime();
    let loaded = load(&rt, example("greet.wat")).await;
    let out = rt.invoke(&loaded.module, InvokeRequest::new("greet", json!(["x"]))).await.unwrap();
    assert_eq!(out.memory_used_bytes, 65536);
}

#[tokio::test]
async fn bad_uploads_are_refused_with_reasons() {
    let rt = edgefn_runtime::Runtime::new(RuntimeConfig { max_module_bytes: 1000, ..Default::default() }).unwrap();
    let err = rt.prepare(&vec![0u8; 1001]).await.unwrap_err();
    assert!(matches!(err, PrepareError::TooLarge { size: 1001, limit: 1000 }), "{err}");
    let err = rt.prepare(b"hello world").await.unwrap_err();
    assert!(err.to_string().contains("magic number"), "{err}");
    let err = rt.prepare(b"\0asm\x01\0\0\0\x01\x05garbage").await.unwrap_err();
    assert!(matches!(err, PrepareError::Invalid(_)), "{err}");
    let wasm = wat::parse_str(r#"(module (import "evil" "syscall" (func)))"#).unwrap();
    let err = rt.prepare(&wasm).await.unwrap_err();
    assert!(matches!(err, PrepareError::DisallowedImport { ref import } if import == "evil::syscall"), "{err}");
}

#[tokio::test]
async fn compilation_past_its_timeout_is_refused() {
    let rt = edgefn_runtime::Runtime::new(RuntimeConfig { compile_timeout: Duration::from_micros(1), ..Default::default() }).unwrap();
    let err = rt.prepare(&example("typed.wat")).await.unwrap_err();
    assert!(matches!(err, PrepareError::CompileTimeout { .. }), "{err}");
    assert_eq!(err.to_string(), "compilation took longer than 1µs");
}

/// A WASI preview 1 module that writes a panic message to stderr and traps, and one that
/// counts its environment variables.
const WASI_GUEST: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "thread panicked: boom\n")
  (func (export "panic")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 22))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable)
  (func (export "env_count") (result i32)
    (drop (call $sizes (i32.const 16) (i32.const 20)))
    (i32.load (i32.const 16))))"#;

#[tokio::test]
async fn a_trap_keeps_what_the_guest_wrote_to_stderr_and_the_environment_follows_the_grant() {
    let rt = runtime();
    let loaded = load(&rt, wat::parse_str(WASI_GUEST).unwrap()).await;
    let context = |class: &str| edgefn_runtime::CallContext {
        function_id: "wasi".into(),
        grants: edgefn_runtime::Grants::for_class(class),
        env: std::sync::Arc::new([("FOO".to_string(), "bar".to_string()), ("BAZ".to_string(), "1".to_string())].into()),
        log: rt.guest_log(),
        ..Default::default()
    };
    let mut req = InvokeRequest::new("panic", json!([]));
    req.context = context("user");
    let err = rt.invoke(&loaded.module, req).await.unwrap_err().to_string();
    assert!(err.contains("unreachable"), "{err}");
    assert!(err.ends_with("the function wrote to stderr: thread panicked: boom"), "{err}");

    let mut req = InvokeRequest::new("env_count", json!([]));
    req.context = context("admin");
    assert_eq!(rt.invoke(&loaded.module, req.clone()).await.unwrap().result, json!(2), "granted env_get: both values");
    req.context = context("user");
    assert_eq!(rt.invoke(&loaded.module, req).await.unwrap().result, json!(0), "no env_get: no environment");
}
