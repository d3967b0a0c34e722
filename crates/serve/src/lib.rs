//! The serve loop every edgefn listener runs (the API and web UI, the node's ingress, its
//! metrics): HTTP/1.1 and HTTP/2 on hyper with the same limits on each, so that no client
//! can hold a server's sockets, descriptors or tasks.
//!
//! - **Connections**: at most [`Limits::max_connections`] at once; one more is answered
//!   `503` with `Retry-After` and closed, never left waiting.
//! - **Slow and silent clients**: the request head must arrive within
//!   [`Limits::header_read_timeout`]; a request's body within [`Limits::body_read_timeout`]
//!   (the handler then reads an error, which it answers `408`); a connection with no
//!   request running for [`Limits::idle_timeout`] — one that never sent anything, a
//!   keep-alive connection between requests, an HTTP/2 connection without streams — is
//!   closed (a request runs until its response body is sent). HTTP/2 peers are pinged to
//!   find dead ones. On shutdown, running requests get [`Limits::drain_timeout`].
//! - **Slow readers**: a client that takes a response at less than
//!   [`Limits::min_send_rate`] while the server waits on it is cut ([`pace`]).
//! - **Accept errors** (out of descriptors): the loop backs off instead of spinning and
//!   logs once per [`LOG_EVERY`] with the number of errors since.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use edgefn_serve::{Limits, TimedBody, serve};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let hello = hyper::service::service_fn(|_req: hyper::Request<TimedBody>| async {
//!     Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from("hi"))))
//! });
//! serve(listener, Limits::default(), move |_peer| hello.clone(), std::future::pending()).await
//! # }
//! ```

mod body;
mod limits;
mod pace;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use body::{BodyTimeout, TimedBody};
pub use limits::{LOG_EVERY, Limits, raise_open_files_limit};

/// The answer to a connection over the limit.
const TOO_MANY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\n\
connection: close\r\ncontent-length: 38\r\n\r\n503 too many connections; retry later\n";

/// Time an idle connection has to close after it is asked to (an HTTP/2 peer answering
/// the GOAWAY's ping); one that does not is dropped.
const IDLE_CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Boxed errors, as hyper takes them.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves connections on `listener` until `shutdown`, then lets open requests finish (at
/// most [`Limits::drain_timeout`]). `make` gives each connection its service, with the
/// peer's address.
pub async fn serve<M, S, B>(listener: TcpListener, limits: Limits, make: M, shutdown: impl Future<Output = ()>) -> std::io::Result<()>
where
    M: Fn(SocketAddr) -> S,
    S: Service<Request<TimedBody>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(64 * 1024)
        .max_concurrent_streams(limits.max_streams)
        .keep_alive_interval(Some(limits.idle_timeout.min(Duration::from_secs(20))))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut backoff = AcceptBackoff::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => {
                    backoff.reset();
                    a
                }
                Err(e) => {
                    backoff.failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers go out at once: a streamed body's chunks must not wait for the client's
        // delayed ACK (Nagle), which costs ~40 ms per response.
        let _ = stream.set_nodelay(true);
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let mut stream = stream;
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(TOO_MANY)).await;
            });
            continue;
        };
        let activity = Arc::new(Activity::new());
        let service = Tracked { inner: make(peer), activity: activity.clone(), body_timeout: limits.body_read_timeout };
        let builder = builder.clone();
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let stream = pace::Paced::new(stream, limits.min_send_rate, limits.send_window);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = pin!(conn);
            let mut ticks = tokio::time::interval((limits.idle_timeout / 4).max(Duration::from_millis(10)));
            // How long a closing connection gets: all of the drain timeout when the server
            // stops (requests may be running); a moment when it was idle (nothing is).
            let closing = loop {
                tokio::select! {
                    result = conn.as_mut() => break Err(result),
                    _ = stopped.changed() => break Ok(limits.drain_timeout),
                    _ = ticks.tick() => if activity.idle_for() >= limits.idle_timeout { break Ok(IDLE_CLOSE_GRACE) },
                }
            };
            match closing {
                Err(result) => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                }
                Ok(grace) => {
                    conn.as_mut().graceful_shutdown();
                    if tokio::time::timeout(grace, conn).await.is_err() {
                        tracing::debug!(%peer, "connection dropped: it did not close when asked");
                    }
                }
            }
        });
    }
    stop.send_replace(true);
    // Every connection task holds a slot: all are back when all have ended.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(limits.drain_timeout, slots.acquire_many(all)).await;
    Ok(())
}

/// When a connection last started or finished a request, and how many are running.
struct Activity {
    started: Instant,
    /// Milliseconds since `started` of the last request start or end.
    last_ms: AtomicU64,
    running: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self { started: Instant::now(), last_ms: AtomicU64::new(0), running: AtomicUsize::new(0) }
    }

    fn touch(&self) {
        self.last_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long no request has been running (zero while one is).
    fn idle_for(&self) -> Duration {
        if self.running.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// Ends a request's part in [`Activity`] when dropped (answered or abandoned).
struct Running(Arc<Activity>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A connection's service: counts its requests and puts a deadline on their bodies.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    body_timeout: Duration,
}

impl<S, B> Service<Request<Incoming>> for Tracked<S>
where
    S: Service<Request<TimedBody>, Response = Response<B>>,
    S::Future: Send + 'static,
{
    type Response = Response<Counted<B>>;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.activity.running.fetch_add(1, Ordering::Relaxed);
        self.activity.touch();
        let running = Running(self.activity.clone());
        let future = self.inner.call(req.map(|body| TimedBody::new(body, self.body_timeout)));
        // The request runs until its response body is sent (or dropped).
        Box::pin(async move { Ok(future.await?.map(|inner| Counted { inner, _running: running })) })
    }
}

/// A response body that keeps its request counted as running until it is dropped.
struct Counted<B> {
    inner: B,
    _running: Running,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<B::Data>, B::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// The accept loop's answer to errors: a short pause that doubles up to a second while
/// they go on, and one log line per [`LOG_EVERY`].
#[derive(Default)]
struct AcceptBackoff {
    pause: Duration,
    failures: u64,
    last_logged: Option<Instant>,
}

impl AcceptBackoff {
    async fn failed(&mut self, error: &std::io::Error) {
        self.failures += 1;
        if self.last_logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            tracing::warn!(%error, failures = self.failures, "accepting connections failed; backing off");
            self.last_logged = Some(Instant::now());
            self.failures = 0;
        }
        self.pause = (self.pause * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        tokio::time::sleep(self.pause).await;
    }

    fn reset(&mut self) {
        self.pause = Duration::ZERO;
    }
}
