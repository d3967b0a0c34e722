//! The conformance guest: an ordinary Rust `wasi:http/proxy` component (std, the `wasi`
//! crate), with one path per behaviour the suite compares between edgefn and
//! `wasmtime serve`, under `/conformance/` (`/conformance/hello`…). Every answer is plain
//! text so the two servers' bodies compare byte for byte.

use std::io::Write as _;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

struct Conformance;

wasi::http::proxy::export!(Conformance);

impl Guest for Conformance {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let target = request.path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let path = path.strip_prefix("/conformance").unwrap_or(path);
        match path {
            "/hello" => text(out, 200, "hello from the conformance guest\n"),
            "/env" => {
                let value = std::env::var(query).unwrap_or_else(|_| "<unset>".into());
                text(out, 200, &format!("{query}={value}\n"));
            }
            "/env-names" => {
                let mut names: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                names.sort();
                text(out, 200, &format!("{}\n", names.join(",")));
            }
            "/args" => text(out, 200, &format!("{}\n", std::env::args().count())),
            "/print" => {
                println!("conformance: a line to stdout");
                eprintln!("conformance: a line to stderr");
                print!("conformance: a line without its newline");
                std::io::stdout().flush().ok();
                text(out, 200, "printed\n");
            }
            "/panic" => panic!("the conformance guest panicked on purpose"),
            "/trap" => core::arch::wasm32::unreachable(),
            "/no-response" => drop(out),
            "/status" => {
                let code = query.parse().unwrap_or(500);
                let headers = Fields::from_list(&[("x-conformance".into(), b"status".to_vec())]).unwrap();
                respond(out, code, headers, b"custom status\n");
            }
            "/request" => {
                let method = format!("{:?}", request.method());
                let probe = request
                    .headers()
                    .get(&"x-probe".to_string())
                    .first()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                text(out, 200, &format!("{method} {target} x-probe={probe}\n"));
            }
            "/sleep" => {
                let ms: u64 = query.parse().unwrap_or(0);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                text(out, 200, "slept\n");
            }
            "/clock" => {
                let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
                let random = wasi::random::random::get_random_bytes(16);
                let ok = since_epoch.as_secs() > 1_600_000_000 && random.len() == 16 && random.iter().any(|b| *b != 0);
                text(out, 200, if ok { "clock and random ok\n" } else { "clock or random wrong\n" });
            }
            "/bytes" => {
                let n: usize = query.parse().unwrap_or(0);
                stream_out(out, n, |buf, _| buf.fill(b'x'));
            }
            "/count" => {
                let mut total = 0usize;
                read_body(request, |chunk| total += chunk.len());
                text(out, 200, &format!("{total} bytes\n"));
            }
            "/echo" => echo(request, out),
            _ => text(out, 404, "no such conformance path\n"),
        }
    }
}

/// A plain-text answer.
fn text(out: ResponseOutparam, status: u16, body: &str) {
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())]).unwrap();
    respond(out, status, headers, body.as_bytes());
}

fn respond(out: ResponseOutparam, status: u16, headers: Fields, body: &[u8]) {
    let response = OutgoingResponse::new(headers);
    response.set_status_code(status).unwrap();
    let outgoing = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().unwrap();
    write_all(&stream, body).unwrap();
    drop(stream);
    OutgoingBody::finish(outgoing, None).unwrap();
}

/// Writes all of `bytes`, waiting whenever the host's buffer is full (back-pressure).
fn write_all(stream: &OutputStream, mut bytes: &[u8]) -> Result<(), StreamError> {
    while !bytes.is_empty() {
        let room = stream.check_write()? as usize;
        if room == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = room.min(bytes.len());
        stream.write(&bytes[..n])?;
        bytes = &bytes[n..];
    }
    stream.blocking_flush()
}

/// Reads the request body as it arrives, chunk by chunk.
fn read_body(request: IncomingRequest, mut each: impl FnMut(&[u8])) {
    let body = request.consume().unwrap();
    let stream: InputStream = body.stream().unwrap();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => each(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => panic!("reading the request body failed: {}", e.to_debug_string()),
        }
    }
}

/// Sends `n` bytes, 64 KiB at a time, filled by `fill`.
fn stream_out(out: ResponseOutparam, n: usize, fill: impl Fn(&mut [u8], usize)) {
    let response = OutgoingResponse::new(Fields::new());
    let outgoing = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < n {
        let len = buf.len().min(n - sent);
        fill(&mut buf[..len], sent);
        write_all(&stream, &buf[..len]).unwrap();
        sent += len;
    }
    drop(stream);
    OutgoingBody::finish(outgoing, None).unwrap();
}

/// Answers at once (head and then each chunk as it arrives) with the request body.
fn echo(request: IncomingRequest, out: ResponseOutparam) {
    let headers = Fields::from_list(&[("x-echo".into(), b"1".to_vec())]).unwrap();
    let response = OutgoingResponse::new(headers);
    let outgoing = response.body().unwrap();
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().unwrap();
    read_body(request, |chunk| write_all(&stream, chunk).unwrap());
    drop(stream);
    OutgoingBody::finish(outgoing, None).unwrap();
}
