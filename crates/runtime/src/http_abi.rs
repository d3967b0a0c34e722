//! The core-module HTTP `handle` ABI (DESIGN §4, docs/abi.md):
//!
//! `handle(method_ptr, method_len, path_ptr, path_len, headers_ptr, headers_len,
//!         body_ptr, body_len, response_ptr, response_cap) -> i32`
//!
//! The host obtains memory for each input and for the response buffer from the guest's
//! `alloc(len) -> ptr`, writes the method, the path with its query, the headers as
//! `name: value\n` lines and the body, and calls `handle`. The guest writes its response
//! into the buffer — a status line (`200`), header lines, an empty line, the body — and
//! returns its length, or a negative number for an error.

use std::time::Duration;

use wasmtime::{AsContextMut, Instance, Store, TypedFunc};

use crate::core_abi::GuestAlloc;
use crate::error::InvokeError;
use crate::invoke::{CoreHost, classify};

/// Response buffer when the function sets none: large enough for typical pages.
pub const DEFAULT_RESPONSE_CAP: usize = 1024 * 1024;

/// A request for a `handle` function.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// Path and query, as received (`/hello?name=x`).
    pub path: String,
    /// Header names and values.
    pub headers: std::sync::Arc<[(String, String)]>,
    /// The whole body.
    pub body: Vec<u8>,
}

/// What a `handle` function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Limits of one HTTP call.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Wall-clock limit (instantiation + call).
    pub timeout: Duration,
    /// Linear memory cap.
    pub max_memory_bytes: usize,
    /// Size of the response buffer handed to the guest.
    pub response_cap: usize,
}

/// Why an HTTP call failed; each maps to a status.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The module does not export the ABI (refused at route creation; 500 if reached).
    #[error("module does not implement the handle ABI: {0}")]
    NotHandleAbi(String),
    /// Over the time limit (504).
    #[error("execution exceeded the timeout of {timeout_ms} ms")]
    Timeout {
        /// The limit.
        timeout_ms: u64,
    },
    /// The guest trapped or exceeded its memory (500).
    #[error("{0}")]
    Trap(String),
    /// The guest returned a negative error code (500).
    #[error("the function returned error code {0}")]
    GuestError(i32),
    /// No instance slot is free (503).
    #[error("{0}")]
    Busy(String),
    /// The guest's response is not valid (502).
    #[error("malformed response from the function: {0}")]
    Malformed(String),
    /// A component returned without setting a response (500, as `wasmtime serve` answers).
    #[error("the function returned without setting a response")]
    NoResponse,
}

/// The exports a module needs for the `handle` ABI; `None` when it has them all.
pub(crate) fn missing_exports(module: &wasmtime::Module) -> Option<String> {
    let has = |name: &str| module.exports().any(|e| e.name() == name);
    let missing: Vec<&str> = ["handle", "alloc", "memory"].into_iter().filter(|n| !has(n)).collect();
    (!missing.is_empty()).then(|| format!("missing export(s): {}", missing.join(", ")))
}

/// The guest's `handle` export.
pub(crate) type HandleFunc = TypedFunc<(i32, i32, i32, i32, i32, i32, i32, i32, i32, i32), i32>;

/// Looks up `handle` with its exact signature.
pub(crate) fn handle_func(store: impl AsContextMut, instance: &Instance) -> Result<HandleFunc, InvokeError> {
    instance.get_typed_func(store, "handle").map_err(|e| InvokeError::Trap(format!("the handle export: {:#}", anyhow::Error::from(e))))
}

impl From<InvokeError> for HttpError {
    fn from(e: InvokeError) -> Self {
        match e {
            InvokeError::Timeout { timeout_ms } => HttpError::Timeout { timeout_ms },
            InvokeError::Busy(_) => HttpError::Busy(e.to_string()),
            other => HttpError::Trap(other.to_string()),
        }
    }
}

/// Writes the request into a ready instance, calls `handle` and reads the response.
pub(crate) async fn call_handle(
    store: &mut Store<CoreHost>,
    guest: &GuestAlloc,
    handle: &HandleFunc,
    req: HttpRequest,
    limits: HttpLimits,
) -> Result<HttpResponse, HttpError> {
    let fail = |e: wasmtime::Error| HttpError::from(classify(e, limits.timeout));
    let mut headers = Vec::with_capacity(req.headers.iter().map(|(k, v)| k.len() + v.len() + 3).sum());
    for (name, value) in req.headers.iter() {
        headers.extend_from_slice(name.as_bytes());
        headers.extend_from_slice(b": ");
        headers.extend_from_slice(value.as_bytes());
        headers.push(b'\n');
    }
    let mut args = [0i32; 10];
    for (i, input) in [req.method.as_bytes(), req.path.as_bytes(), &headers, &req.body].into_iter().enumerate() {
        args[2 * i] = guest.place(&mut *store, input).await.map_err(fail)?;
        args[2 * i + 1] = input.len() as i32;
    }
    let cap = i32::try_from(limits.response_cap).unwrap_or(i32::MAX);
    let out = guest.alloc(&mut *store, cap).await.map_err(fail)?;
    args[8] = out;
    args[9] = cap;
    let params = (args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8], args[9]);
    let len = handle.call_async(&mut *store, params).await.map_err(fail)?;
    if len < 0 {
        return Err(HttpError::GuestError(len));
    }
    if len > cap {
        return Err(HttpError::Malformed(format!("returned length {len} is over the response buffer of {cap} bytes")));
    }
    let start = out as u32 as usize;
    let bytes = guest
        .memory()
        .data(&*store)
        .get(start..start + len as usize)
        .ok_or_else(|| HttpError::Malformed("response lies outside the module's memory".into()))?;
    parse_response(bytes)
}

/// Whether a response header belongs to the host, never to a function: the hop-by-hop
/// fields of RFC 9110 §7.6.1 (`connection`, `keep-alive`, `te`, `trailer`, `upgrade`,
/// `proxy-*`) and the message framing (`content-length`, `transfer-encoding`), which the
/// host derives from the body it actually sends. A function that could set them could end
/// its response early and have the rest of its body read as a second response on the same
/// connection, or keep a client waiting for bytes that never come.
pub fn host_owned_header(name: &str) -> bool {
    const NAMES: [&str; 8] =
        ["connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "content-length", "http2-settings"];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name)) || name.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("proxy-"))
}

/// Parses `STATUS\nname: value\n…\n\nbody` (lines may also end in `\r\n`).
pub fn parse_response(bytes: &[u8]) -> Result<HttpResponse, HttpError> {
    let malformed = |m: &str| HttpError::Malformed(m.to_string());
    // The head ends at its first empty line, in either line ending: the body may hold
    // empty lines of the other kind.
    let lf = bytes.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    let crlf = bytes.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    let split = match (lf, crlf) {
        (Some(lf), Some(crlf)) => Some(if crlf.0 < lf.0 { crlf } else { lf }),
        (lf, crlf) => lf.or(crlf),
    };
    let (head_end, body_start) = split.ok_or_else(|| malformed("no empty line between the head and the body"))?;
    let head = std::str::from_utf8(&bytes[..head_end]).map_err(|_| malformed("the status line and headers are not UTF-8"))?;
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default().trim();
    let status: u16 = status_line.parse().map_err(|_| HttpError::Malformed(format!("status line `{status_line}` is not a number")))?;
    if !(100..=599).contains(&status) {
        return Err(HttpError::Malformed(format!("status {status} is not between 100 and 599")));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| HttpError::Malformed(format!("header line `{line}` has no `:`")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(HttpResponse { status, headers, body: bytes[body_start..].to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_its_first_empty_line_whatever_the_body_holds() {
        let crlf = parse_response(b"200\r\ncontent-type: text/plain\r\n\r\none\n\nthree").unwrap();
        assert_eq!((crlf.status, crlf.headers.len(), crlf.body.as_slice()), (200, 1, &b"one\n\nthree"[..]));
        let lf = parse_response(b"201\nx-a: b\n\none\r\n\r\nthree").unwrap();
        assert_eq!((lf.status, lf.headers, lf.body.as_slice()), (201, vec![("x-a".into(), "b".into())], &b"one\r\n\r\nthree"[..]));
        assert!(matches!(parse_response(b"200\r\nx: y"), Err(HttpError::Malformed(_))));
    }
}
