//! image-resize: a `wasi:http` component that resizes, crops and rotates the PNG or JPEG
//! sent as the request body (`POST /image-resize?resize=320x240&rotate=90&format=png`),
//! answering with the new image and its size in `x-image-size`. The operations are in
//! `transform.rs`.

mod transform;

use wasi::exports::http::incoming_handler::Guest;
use wasi::http::types::{Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam};
use wasi::io::streams::StreamError;

/// Largest body read, in bytes.
const MAX_INPUT: usize = 32 * 1024 * 1024;
/// Bytes per write: `blocking-write-and-flush` takes at most 4096.
const WRITE_CHUNK: usize = 4096;

struct Component;

wasi::http::proxy::export!(Component);

impl Guest for Component {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        if !matches!(request.method(), Method::Post) {
            return respond(out, 405, "text/plain; charset=utf-8", b"POST an image\n", None);
        }
        let query = request.path_with_query().unwrap_or_default().split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
        let input = match read_body(request) {
            Ok(input) => input,
            Err(e) => return respond(out, 413, "text/plain; charset=utf-8", format!("{e}\n").as_bytes(), None),
        };
        match transform::apply(&input, &query) {
            Ok(image) => {
                let size = format!("{}x{}", image.size.0, image.size.1);
                respond(out, 200, image.content_type, &image.bytes, Some(&size))
            }
            Err(e) => respond(out, 400, "text/plain; charset=utf-8", format!("{e}\n").as_bytes(), None),
        }
    }
}

fn read_body(request: IncomingRequest) -> Result<Vec<u8>, String> {
    let body = request.consume().map_err(|()| "the body could not be read")?;
    let stream = body.stream().map_err(|()| "the body could not be read")?;
    let mut input = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => input.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => return Err(format!("reading the body: {}", e.to_debug_string())),
        }
        if input.len() > MAX_INPUT {
            return Err(format!("the image is over {} MiB", MAX_INPUT >> 20));
        }
    }
    Ok(input)
}

fn respond(out: ResponseOutparam, status: u16, content_type: &str, body: &[u8], size: Option<&str>) {
    let mut headers = vec![("content-type".to_string(), content_type.as_bytes().to_vec())];
    if let Some(size) = size {
        headers.push(("x-image-size".to_string(), size.as_bytes().to_vec()));
    }
    let response = OutgoingResponse::new(Fields::from_list(&headers).expect("valid headers"));
    response.set_status_code(status).expect("a valid status");
    let outgoing = response.body().expect("a body");
    ResponseOutparam::set(out, Ok(response));
    let stream = outgoing.write().expect("a body stream");
    for chunk in body.chunks(WRITE_CHUNK) {
        if stream.blocking_write_and_flush(chunk).is_err() {
            return; // the client went away
        }
    }
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}
