//! The adversarial suite: attacks on the boundaries between tenants and around the
//! servers, made through the real sockets as an outside client or a malicious tenant
//! would (docs/security.md lists what each boundary enforces).

mod compiles;
mod connections;
mod framing;
mod fuzz;
mod logs;
mod routes;
mod schema;
mod secrets;
mod slots;
mod smaller;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One HTTP/1.1 response read off a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    /// Status code.
    pub status: u16,
    /// Header lines, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, framed by `content-length`.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Writes `request` (raw bytes, e.g. several pipelined requests) to `addr` and reads
/// `count` responses framed by their `content-length`, within 5 s.
pub async fn raw_exchange(addr: &str, request: &[u8], count: usize) -> Vec<RawResponse> {
    let addr = addr.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let read = async {
        while out.len() < count {
            if let Some((response, used)) = parse_one(&buf) {
                out.push(response);
                buf.drain(..used);
                continue;
            }
            let mut chunk = [0u8; 8192];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the connection closed after {} responses; unread: {:?}", out.len(), String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read).await.expect("responses within 5 s");
    out
}

/// One response at the start of `buf` and the bytes it took, when it is all there.
fn parse_one(buf: &[u8]) -> Option<(RawResponse, usize)> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..head_end]).expect("head is text");
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().expect("status");
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
    assert!(!headers.iter().any(|(n, _)| n == "transfer-encoding"), "these tests read content-length framed responses only: {headers:?}");
    let len: usize = headers.iter().find(|(n, _)| n == "content-length").map_or(0, |(_, v)| v.parse().expect("length"));
    let start = head_end + 4;
    (buf.len() >= start + len).then(|| (RawResponse { status, headers, body: buf[start..start + len].to_vec() }, start + len))
}

/// A `handle`-ABI module that answers exactly `response` (the ABI's response bytes,
/// written as a WAT string: `\n`, `\r`, `\"` escapes).
pub fn answering(response: &str) -> Vec<u8> {
    let bytes = unescape(response).len();
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) (data (i32.const 0) "{response}")
            (global $h (mut i32) (i32.const 8192))
            (func (export "alloc") (param i32) (result i32) (global.get $h) (global.set $h (i32.add (global.get $h) (local.get 0))))
            (func (export "handle") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
              (memory.copy (local.get 8) (i32.const 0) (i32.const {bytes})) (i32.const {bytes})))"#
    ))
    .expect("valid WAT")
}

/// The bytes a WAT string with `\n`, `\r`, `\t`, `\"` and `\\` escapes stands for.
fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('r') => out.push(b'\r'),
                Some('t') => out.push(b'\t'),
                Some(other) => out.extend_from_slice(other.to_string().as_bytes()),
                None => {}
            }
        } else {
            out.extend_from_slice(c.to_string().as_bytes());
        }
    }
    out
}
