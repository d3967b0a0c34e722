//! Serving HTTP with `wasi:http/proxy` components (wasmtime-wasi-http): the same
//! component runs unchanged under `wasmtime serve` or Spin. The request is handed to the
//! guest's `incoming-handler`; its response head comes back through a oneshot channel
//! while the body streams from the guest. Outbound requests (`outgoing-handler`) go out
//! only when the module is granted `http_fetch` and the host is on its `allowHosts`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView};

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

use crate::error::InvokeError;
use crate::host::{CallContext, host_allowed};
use crate::http_abi::{HttpError, HttpLimits};
use crate::invoke::{ComponentHost, classify, with_deadline};

/// Request and response bodies of HTTP functions.
pub type HttpBody = UnsyncBoxBody<Bytes, anyhow::Error>;

type Sent = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

/// Longest an outbound request may take to connect, to its first response byte, or
/// between two body chunks (the guest may ask for less).
const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(10);

/// Outbound `wasi:http` requests of a component, checked against its grants and
/// allow-list; a denied one is logged with the function and request id and fails in the
/// guest with `HTTP-request-denied`.
impl WasiHttpHooks for CallContext {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Sent,
    ) -> Box<dyn Future<Output = Result<(hyper::Response<WasiBody>, Sent), wasmtime_wasi_http::Error>> + Send> {
        let host = request.uri().host().unwrap_or_default().to_string();
        let why = if !self.grants.allows("http_fetch") {
            Some("outbound HTTP is not granted to this function")
        } else if !host_allowed(&self.allow_hosts, &host) {
            Some("host not on the allow-list")
        } else {
            None
        };
        if let Some(why) = why {
            tracing::warn!(function_id = %self.function_id, request_id = %self.request_id, host, "outbound request denied: {why}");
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        let cap = |t: Option<Duration>| Some(t.map_or(OUTBOUND_TIMEOUT, |t| t.min(OUTBOUND_TIMEOUT)));
        let options = options.unwrap_or_default();
        let options = RequestOptions {
            connect_timeout: cap(options.connect_timeout),
            first_byte_timeout: cap(options.first_byte_timeout),
            between_bytes_timeout: cap(options.between_bytes_timeout),
        };
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Sent))
        })
    }
}

/// Hands `req` to a ready instance's `incoming-handler`. A guest still running after it
/// set the response head goes on in its own task, to stream the body; `deadline` bounds
/// the whole of it. `finished` gets the store and instance back when the guest returned
/// normally, `None` when it failed.
pub(crate) async fn serve(
    mut store: Store<ComponentHost>,
    proxy: Proxy,
    req: hyper::Request<HttpBody>,
    limits: HttpLimits,
    deadline: Instant,
    finished: impl FnOnce(Option<(Store<ComponentHost>, Proxy)>) + Send + 'static,
) -> Result<hyper::Response<HttpBody>, HttpError> {
    let (sender, mut receiver) = tokio::sync::oneshot::channel();
    // A request body that fails to arrive ends the guest's stream as a terminated connection.
    let req = req.map(|b| b.map_err(|_| wasmtime_wasi_http::Error::ConnectionTerminated).boxed_unsync());
    let setup = |e: wasmtime::Error| HttpError::Trap(format!("{:#}", anyhow::Error::from(e)));
    let req = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(setup)?;
    let out = store.data_mut().http().new_response_outparam(sender).map_err(setup)?;
    let timeout = limits.timeout;
    let mut task = Box::pin(async move {
        let call = async { proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await.map_err(|e| classify(e, timeout)) };
        let result = with_deadline(deadline, timeout, call).await;
        finished(result.is_ok().then_some((store, proxy)));
        result
    });
    // The guest runs right here until it returns or sets the response head; only a guest
    // still streaming its body after the head goes on in a task of its own. (Most
    // answer and return in one go, and a hop to another thread would cost latency.)
    let head = tokio::select! {
        biased;
        result = &mut task => match receiver.try_recv() {
            Ok(head) => head,
            Err(_) => return Err(no_response(result)),
        },
        head = &mut receiver => match head {
            Ok(head) => {
                tokio::spawn(task);
                head
            }
            // The guest dropped its response-outparam unset and is still running.
            Err(_) => return Err(no_response(task.await)),
        },
    };
    match head {
        Ok(response) => Ok(response.map(|b| b.map_err(anyhow::Error::from).boxed_unsync())),
        Err(code) => Err(HttpError::Trap(format!("the function answered with error {code:?}"))),
    }
}

/// The error for a guest that ended without setting a response.
fn no_response(result: Result<(), InvokeError>) -> HttpError {
    match result {
        Ok(()) => HttpError::Malformed("the function returned without setting a response".into()),
        Err(e) => e.into(),
    }
}
