//! The conformance guest for WASI 0.3: an ordinary Rust `wasi:http/service@0.3.0`
//! component (std, the `wasip3` crate, async), with the paths of the 0.2 guest under
//! `/conformance/` so the suite asks both the same requests of edgefn and of
//! `wasmtime serve -Sp3`.

use std::io::Write as _;

use wasip3::http::types::{ErrorCode, Fields, Request, Response};
use wasip3::wit_bindgen::StreamResult;
use wasip3::{wit_bindgen, wit_future, wit_stream};

wasip3::http::service::export!(Conformance);

struct Conformance;

impl wasip3::exports::http::handler::Guest for Conformance {
    async fn handle(request: Request) -> Result<Response, ErrorCode> {
        let target = request.get_path_with_query().unwrap_or_default();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let path = path.strip_prefix("/conformance").unwrap_or(path);
        Ok(match path {
            "/hello" => text(200, "hello from the conformance guest\n"),
            "/env" => {
                let value = std::env::var(query).unwrap_or_else(|_| "<unset>".into());
                text(200, &format!("{query}={value}\n"))
            }
            "/env-names" => {
                let mut names: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                names.sort();
                text(200, &format!("{}\n", names.join(",")))
            }
            "/args" => text(200, &format!("{}\n", std::env::args().count())),
            "/print" => {
                println!("conformance: a line to stdout");
                eprintln!("conformance: a line to stderr");
                print!("conformance: a line without its newline");
                std::io::stdout().flush().ok();
                text(200, "printed\n")
            }
            "/panic" => panic!("the conformance guest panicked on purpose"),
            "/trap" => core::arch::wasm32::unreachable(),
            "/error-code" => return Err(ErrorCode::InternalError(Some("the guest answered with an error code".into()))),
            "/status" => {
                let headers = Fields::from_list(&[("x-conformance".into(), b"status".to_vec())]).unwrap();
                respond(query.parse().unwrap_or(500), headers, b"custom status\n".to_vec())
            }
            "/request" => {
                let method = format!("{:?}", request.get_method());
                let probe = request.get_headers().get("x-probe").first().map(|v| String::from_utf8_lossy(v).into_owned());
                text(200, &format!("{method} {target} x-probe={}\n", probe.unwrap_or_default()))
            }
            "/sleep" => {
                let ms: u64 = query.parse().unwrap_or(0);
                wasip3::clocks::monotonic_clock::wait_for(ms * 1_000_000).await;
                text(200, "slept\n")
            }
            "/clock" => {
                let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
                let random = wasip3::random::random::get_random_bytes(16);
                let ok = since_epoch.as_secs() > 1_600_000_000 && random.len() == 16 && random.iter().any(|b| *b != 0);
                text(200, if ok { "clock and random ok\n" } else { "clock or random wrong\n" })
            }
            "/bytes" => {
                let n: usize = query.parse().unwrap_or(0);
                streamed(Fields::new(), move |mut tx| async move {
                    let mut sent = 0;
                    while sent < n {
                        let len = (64 * 1024).min(n - sent);
                        if !tx.write_all(vec![b'x'; len]).await.is_empty() {
                            return;
                        }
                        sent += len;
                    }
                })
            }
            "/count" => {
                let mut total = 0;
                read_body(request, |chunk| total += chunk.len()).await;
                text(200, &format!("{total} bytes\n"))
            }
            "/echo" => {
                let headers = Fields::from_list(&[("x-echo".into(), b"1".to_vec())]).unwrap();
                streamed(headers, move |mut tx| async move {
                    let mut reader = body_of(request);
                    loop {
                        let (result, chunk) = reader.read(Vec::with_capacity(64 * 1024)).await;
                        if !chunk.is_empty() && !tx.write_all(chunk).await.is_empty() {
                            return;
                        }
                        if !matches!(result, StreamResult::Complete(_)) {
                            return;
                        }
                    }
                })
            }
            _ => text(404, "no such conformance path\n"),
        })
    }
}

/// A plain-text answer.
fn text(status: u16, body: &str) -> Response {
    let headers = Fields::from_list(&[("content-type".into(), b"text/plain".to_vec())]).unwrap();
    respond(status, headers, body.as_bytes().to_vec())
}

fn respond(status: u16, headers: Fields, body: Vec<u8>) -> Response {
    let response = streamed(headers, move |mut tx| async move {
        tx.write_all(body).await;
    });
    response.set_status_code(status).unwrap();
    response
}

/// A response whose body `write` sends after the head has gone.
fn streamed<F: Future<Output = ()> + 'static>(
    headers: Fields,
    write: impl FnOnce(wit_bindgen::StreamWriter<u8>) -> F,
) -> Response {
    let (tx, rx) = wit_stream::new();
    let (trailers_tx, trailers_rx) = wit_future::new(|| Ok(None));
    drop(trailers_tx);
    let (response, _sent) = Response::new(headers, Some(rx), trailers_rx);
    wit_bindgen::spawn(write(tx));
    response
}

/// The request's body stream.
fn body_of(request: Request) -> wit_bindgen::StreamReader<u8> {
    let (done_tx, done_rx) = wit_future::new(|| Ok(()));
    drop(done_tx);
    Request::consume_body(request, done_rx).0
}

/// Reads the request body as it arrives.
async fn read_body(request: Request, mut each: impl FnMut(&[u8])) {
    let mut reader = body_of(request);
    loop {
        let (result, chunk) = reader.read(Vec::with_capacity(64 * 1024)).await;
        each(&chunk);
        if !matches!(result, StreamResult::Complete(_)) {
            return;
        }
    }
}
