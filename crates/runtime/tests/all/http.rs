//! The core-module `handle` ABI: a real module answering, and every way it can fail.

use std::time::Duration;

use edgefn_runtime::{
    CallContext, DEFAULT_IDLE_TIMEOUT, DEFAULT_MEMORY_BUDGET_BYTES, HttpError, HttpLimits, HttpRequest, HttpResponse, PoolSettings, Pools,
};

use crate::{example, load, runtime};

fn limits() -> HttpLimits {
    HttpLimits { timeout: Duration::from_millis(500), max_memory_bytes: 16 << 20, response_cap: 1 << 20 }
}

fn get(path: &str) -> HttpRequest {
    HttpRequest {
        method: "GET".into(),
        path: path.into(),
        headers: vec![("host".to_string(), "example.com".to_string())].into(),
        body: vec![],
    }
}

async fn serve(wasm: Vec<u8>, req: HttpRequest, limits: HttpLimits) -> Result<HttpResponse, HttpError> {
    let rt = runtime();
    let loaded = load(&rt, wasm).await;
    let pools = Pools::new(rt.clone(), DEFAULT_MEMORY_BUDGET_BYTES, DEFAULT_IDLE_TIMEOUT);
    let pool =
        pools.get("f", "owner", &loaded.module, PoolSettings { max_memory_bytes: limits.max_memory_bytes, ..PoolSettings::default() });
    pool.acquire(Duration::from_secs(1)).await.unwrap().handle_http(req, limits, CallContext::default()).await
}

/// A `handle` whose response is the given text.
fn answering(text: &str) -> Vec<u8> {
    let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{escaped}")
            (global $h (mut i32) (i32.const 4096))
            (func (export "alloc") (param i32) (result i32) (global.get $h) (global.set $h (i32.add (global.get $h) (local.get 0))))
            (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
              (memory.copy (local.get 8) (i32.const 0) (i32.const {len})) (i32.const {len})))"#,
        len = text.len()
    ))
    .unwrap()
}

#[tokio::test]
async fn hello_answers_with_status_headers_and_body() {
    let res = serve(example("hello-handle.wat"), get("/hello?name=x"), limits()).await.unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.headers, vec![("content-type".to_string(), "text/plain; charset=utf-8".to_string())]);
    assert_eq!(String::from_utf8(res.body).unwrap(), "Hello from edgefn! GET /hello?name=x\n");
}

#[tokio::test]
async fn inputs_reach_the_guest_byte_for_byte() {
    // Echo the body the host wrote at (body_ptr, body_len) after a fixed head.
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "201\nx-echo: 1\n\n")
            (global $h (mut i32) (i32.const 4096))
            (func (export "alloc") (param i32) (result i32) (global.get $h) (global.set $h (i32.add (global.get $h) (local.get 0))))
            (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
              (memory.copy (local.get 8) (i32.const 0) (i32.const 15))
              (memory.copy (i32.add (local.get 8) (i32.const 15)) (local.get 6) (local.get 7))
              (i32.add (i32.const 15) (local.get 7))))"#,
    )
    .unwrap();
    let body: Vec<u8> = (0..=255).collect();
    let req = HttpRequest { method: "POST".into(), path: "/".into(), headers: Vec::new().into(), body: body.clone() };
    let res = serve(wasm, req, limits()).await.unwrap();
    assert_eq!((res.status, res.body), (201, body));
}

#[tokio::test]
async fn every_failure_has_its_own_error() {
    let malformed = serve(answering("hello"), get("/"), limits()).await.unwrap_err();
    assert!(matches!(malformed, HttpError::Malformed(ref m) if m.contains("no empty line")), "{malformed}");
    let bad_status = serve(answering("20x\n\nbody"), get("/"), limits()).await.unwrap_err();
    assert!(matches!(bad_status, HttpError::Malformed(ref m) if m.contains("`20x` is not a number")), "{bad_status}");
    let small = HttpLimits { response_cap: 4, ..limits() };
    let over = serve(answering("200\n\nmore than four"), get("/"), small).await.unwrap_err();
    assert!(matches!(over, HttpError::Malformed(ref m) if m.contains("over the response buffer of 4 bytes")), "{over}");

    let negative = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 8))
            (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) (i32.const -7)))"#,
    )
    .unwrap();
    assert!(matches!(serve(negative, get("/"), limits()).await.unwrap_err(), HttpError::GuestError(-7)));

    let spin = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "alloc") (param i32) (result i32) (i32.const 8))
            (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) (loop $l (br $l)) (i32.const 0)))"#,
    )
    .unwrap();
    let timeout = HttpLimits { timeout: Duration::from_millis(100), ..limits() };
    assert!(matches!(serve(spin, get("/"), timeout).await.unwrap_err(), HttpError::Timeout { timeout_ms: 100 }));

    let not_http = serve(example("add.wat"), get("/"), limits()).await.unwrap_err();
    assert!(matches!(not_http, HttpError::NotHandleAbi(ref m) if m.contains("handle, alloc, memory")), "{not_http}");
}
