//! Serving HTTP with `wasi:http` components (wasmtime-wasi-http): the same component runs
//! unchanged under `wasmtime serve` or Spin. A WASI 0.2 component (`wasi:http/proxy`) gets
//! the request in its `incoming-handler` and sets its response head through an outparam;
//! a WASI 0.3 component (`wasi:http/service`) returns the response from its async
//! `handler`. Either way the body streams from the guest after the head, and the request
//! body streams to it as it arrives. Outbound requests go out only when the module is
//! granted `http_fetch` and the host is on its `allowHosts`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks, WasiHttpView};

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p3::bindings::Service;

use crate::error::InvokeError;
use crate::host::{CallContext, host_allowed};
use crate::http_abi::{HttpError, HttpLimits};
use crate::invoke::{ComponentHost, STARVED_GRACE, classify, with_deadline};
use crate::lanes::{Lane, Lanes};

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

/// A component instance's HTTP entry point.
pub(crate) enum HttpEntry {
    /// WASI 0.2: `wasi:http/incoming-handler`.
    P2(Proxy),
    /// WASI 0.3: `wasi:http/handler`.
    P3(Service),
}

/// What a request gives back when its guest is done: the store and entry point of an
/// instance that returned normally, `None` for one that failed.
type Finished = Option<(Store<ComponentHost>, HttpEntry)>;

/// Hands `req` to a ready instance. The guest runs right here until it has answered with
/// a response head — or, once it has run long, on the slow lanes (`lane`, [`Lanes::run`]);
/// a guest still running then (to stream its body) goes on in a task of its own, and
/// `deadline` bounds the whole of it. (Most answer and return in one go, and a hop to
/// another thread would cost latency.) `finished` is called when the guest is done.
pub(crate) async fn serve(
    store: Store<ComponentHost>,
    entry: HttpEntry,
    req: hyper::Request<HttpBody>,
    limits: HttpLimits,
    deadline: Instant,
    (lanes, lane): (&Lanes, Lane),
    finished: impl FnOnce(Finished) + Send + 'static,
) -> Result<hyper::Response<HttpBody>, HttpError> {
    // A request body that fails to arrive ends the guest's stream as a terminated connection.
    let req = req.map(|b| b.map_err(|_| wasmtime_wasi_http::Error::ConnectionTerminated).boxed_unsync());
    let (head, head_rx) = tokio::sync::oneshot::channel();
    let call = Call { req, head, deadline, timeout: limits.timeout };
    let task: std::pin::Pin<Box<dyn Future<Output = Result<(), InvokeError>> + Send>> = match entry {
        HttpEntry::P2(proxy) => Box::pin(run_p2(store, proxy, call, finished)),
        HttpEntry::P3(service) => Box::pin(run_p3(store, service, call, finished)),
    };
    let mut task = Box::pin(lanes.run(lane, task));
    let mut head_rx = head_rx;
    tokio::select! {
        biased;
        // A guest starved on the slow lanes (every core busy) has not seen its deadline.
        () = tokio::time::sleep_until((deadline + STARVED_GRACE).into()) => {
            Err(HttpError::Timeout { timeout_ms: limits.timeout.as_millis() as u64 })
        }
        result = &mut task => match head_rx.try_recv() {
            Ok(head) => head,
            Err(_) => Err(no_response(result)),
        },
        head = &mut head_rx => match head {
            Ok(head) => {
                tokio::spawn(task);
                head
            }
            // The guest dropped its response-outparam unset and is still running.
            Err(_) => Err(no_response(task.await)),
        },
    }
}

type Head = tokio::sync::oneshot::Sender<Result<hyper::Response<HttpBody>, HttpError>>;

/// One request, as a guest's runner gets it.
struct Call {
    req: hyper::Request<WasiBody>,
    /// Where the response head goes.
    head: Head,
    deadline: Instant,
    timeout: Duration,
}

/// Ends a guest's request: its last output line written, the instance handed back.
fn done(
    store: Store<ComponentHost>,
    entry: HttpEntry,
    result: Result<(), InvokeError>,
    finished: impl FnOnce(Finished),
) -> Result<(), InvokeError> {
    store.data().output.end();
    finished(result.is_ok().then_some((store, entry)));
    result
}

/// Runs a WASI 0.2 guest's `incoming-handler`; its response-outparam sends the head.
async fn run_p2(mut store: Store<ComponentHost>, proxy: Proxy, call: Call, finished: impl FnOnce(Finished)) -> Result<(), InvokeError> {
    let Call { req, head, deadline, timeout } = call;
    let setup = |e: wasmtime::Error| InvokeError::Trap(format!("{:#}", anyhow::Error::from(e)));
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let req = store.data_mut().http().new_incoming_request(Scheme::Http, req).map_err(setup)?;
    let out = store.data_mut().http().new_response_outparam(sender).map_err(setup)?;
    let call = async { proxy.wasi_http_incoming_handler().call_handle(&mut store, req, out).await.map_err(|e| classify(e, timeout)) };
    let mut receiver = receiver;
    // The head goes on as soon as the guest sets it, while the guest runs on.
    let mut head = Some(head);
    let result = {
        let call = with_deadline(deadline, timeout, call);
        tokio::pin!(call);
        loop {
            tokio::select! {
                biased;
                // Dropped unset, the head's sender goes too, and the caller learns it.
                set = &mut receiver, if head.is_some() => {
                    if let (Ok(set), Some(head)) = (set, head.take()) {
                        let _ = head.send(response_head(set));
                    }
                }
                result = &mut call => break result,
            }
        }
    };
    // Set just before the guest returned.
    if let (Some(head), Ok(set)) = (head, receiver.try_recv()) {
        let _ = head.send(response_head(set));
    }
    done(store, HttpEntry::P2(proxy), result, finished)
}

/// The head a WASI 0.2 guest set, as the ingress sends it.
fn response_head(
    set: Result<hyper::Response<wasmtime_wasi_http::p2::body::HyperOutgoingBody>, wasmtime_wasi_http::p2::bindings::http::types::ErrorCode>,
) -> Result<hyper::Response<HttpBody>, HttpError> {
    match set {
        Ok(response) => Ok(response.map(|b| b.map_err(anyhow::Error::from).boxed_unsync())),
        Err(code) => Err(HttpError::Trap(format!("the function answered with error {code:?}"))),
    }
}

/// Runs a WASI 0.3 guest's `handler` in the store's event loop, which goes on until the
/// response body has been sent (or dropped), so the guest's tasks can write it.
async fn run_p3(mut store: Store<ComponentHost>, service: Service, call: Call, finished: impl FnOnce(Finished)) -> Result<(), InvokeError> {
    let Call { req, head, deadline, timeout } = call;
    let call = store.run_concurrent(async |accessor| {
        let (request, io) = accessor.with(|mut access| {
            let (request, io) = wasmtime_wasi_http::p3::Request::from_http(access.get().http().hooks, req);
            (request, Box::pin(io) as std::pin::Pin<Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>>)
        });
        let response = match service.handle(accessor, request).await? {
            Ok(response) => response,
            Err(code) => {
                let _ = head.send(Err(HttpError::Trap(format!("the function answered with error {code:?}"))));
                return Ok(());
            }
        };
        let response = accessor.with(|mut access| response.into_http(&mut access, io))?;
        let (sent_tx, sent_rx) = tokio::sync::oneshot::channel::<()>();
        let response =
            response.map(|b| Watched { inner: b.map_err(anyhow::Error::from).boxed_unsync(), sent: Some(sent_tx) }.boxed_unsync());
        if head.send(Ok(response)).is_ok() {
            // Ends when the body has been sent or dropped.
            let _ = sent_rx.await;
        }
        wasmtime::Result::Ok(())
    });
    let call = async { call.await.and_then(|r| r).map_err(|e| classify(e, timeout)) };
    let result = with_deadline(deadline, timeout, call).await;
    done(store, HttpEntry::P3(service), result, finished)
}

/// A response body that says when it has ended (or been dropped), by dropping `sent`.
struct Watched {
    inner: HttpBody,
    sent: Option<tokio::sync::oneshot::Sender<()>>,
}

impl hyper::body::Body for Watched {
    type Data = Bytes;
    type Error = anyhow::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let frame = std::task::ready!(std::pin::Pin::new(&mut self.inner).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            self.sent = None;
        }
        std::task::Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The error for a guest that ended without setting a response.
fn no_response(result: Result<(), InvokeError>) -> HttpError {
    match result {
        Ok(()) => HttpError::NoResponse,
        Err(e) => e.into(),
    }
}
