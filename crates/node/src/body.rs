//! HTTP bodies between clients and functions, streamed both ways and held to the
//! function's body limit while they stream.
//!
//! A request body reaches a component as it arrives ([`RequestBody`]): past the limit, or
//! past the listener's body-read timeout, the guest's stream fails, and the failure is
//! kept so the request is answered `413` or `408` when the guest has not answered yet.
//! A response body goes to the client as the guest writes it ([`ResponseBody`]); past the
//! limit the response is cut off (the connection is reset), since its head has already gone.
//!
//! A request body dropped before its end (the guest did not read it all, or it went over
//! the limit) is read to its end and thrown away in the background, up to
//! [`DRAIN_MAX_BYTES`] more and within the body-read timeout, so the client, still
//! sending, gets the answer instead of a reset connection (a "lingering close").

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use edgefn_runtime::HttpBody;
use edgefn_serve::{BodyTimeout, TimedBody};
use hyper::StatusCode;
use hyper::body::{Body, Frame, SizeHint};

/// Most bytes of an unread request body thrown away after its answer so the client can
/// read that answer; past it the connection is closed.
pub(crate) const DRAIN_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// A request body as a function takes it.
pub(crate) enum Payload {
    /// Handed over as it arrives (components).
    Streamed(RequestBody),
    /// Read whole first (core `handle` functions).
    Whole(Bytes),
}

/// Why a request body stopped short.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyFailure {
    /// More bytes than the limit.
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Not all of it arrived within the body-read timeout.
    TimedOut(String),
    /// The client's connection failed.
    Broken(String),
}

impl BodyFailure {
    /// The answer to a request whose body failed this way.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            BodyFailure::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            BodyFailure::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            BodyFailure::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for BodyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyFailure::TooLarge { limit } => write!(f, "request body is over the limit of {limit} bytes"),
            BodyFailure::TimedOut(why) => f.write_str(why),
            BodyFailure::Broken(why) => write!(f, "could not read the request body: {why}"),
        }
    }
}

impl std::error::Error for BodyFailure {}

/// A request body held to `limit` bytes; the first failure is kept in [`RequestBody::failure`].
pub(crate) struct RequestBody {
    /// `None` once dropped (and handed to the drain).
    inner: Option<TimedBody>,
    limit: u64,
    seen: u64,
    failure: Arc<OnceLock<BodyFailure>>,
}

impl RequestBody {
    /// `inner`, failing once more than `limit` bytes have come.
    pub(crate) fn new(inner: TimedBody, limit: u64) -> Self {
        Self { inner: Some(inner), limit, seen: 0, failure: Arc::default() }
    }

    /// Where the body's failure will be, once it has failed.
    pub(crate) fn failure(&self) -> Arc<OnceLock<BodyFailure>> {
        self.failure.clone()
    }

    /// The whole body, for functions that take it at once.
    pub(crate) async fn collect(self) -> Result<Bytes, BodyFailure> {
        let failure = self.failure();
        match http_body_util::BodyExt::collect(self).await {
            Ok(body) => Ok(body.to_bytes()),
            Err(_) => Err(failure.get().cloned().unwrap_or_else(|| BodyFailure::Broken("unknown".into()))),
        }
    }

    fn fail(&self, failure: BodyFailure) -> anyhow::Error {
        let _ = self.failure.set(failure.clone());
        failure.into()
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = anyhow::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let Some(inner) = self.inner.as_mut() else { return Poll::Ready(None) };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len() as u64;
                    if self.seen > self.limit {
                        let limit = self.limit;
                        return Poll::Ready(Some(Err(self.fail(BodyFailure::TooLarge { limit }))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                let failure =
                    if BodyTimeout::caused(&*e) { BodyFailure::TimedOut(e.to_string()) } else { BodyFailure::Broken(e.to_string()) };
                Poll::Ready(Some(Err(self.fail(failure))))
            }
            other => other.map(|f| f.map(|f| f.map_err(|e| anyhow::anyhow!(e)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.as_ref().map(Body::size_hint).unwrap_or_default()
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(mut inner) = self.inner.take().filter(|b| !b.is_end_stream()) else { return };
        if self.failure.get().is_some_and(|f| !matches!(f, BodyFailure::TooLarge { .. })) {
            return; // timed out or broken: nothing more will come
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let mut thrown = 0u64;
            while thrown <= DRAIN_MAX_BYTES {
                match http_body_util::BodyExt::frame(&mut inner).await {
                    Some(Ok(frame)) => thrown += frame.data_ref().map_or(0, |d| d.len() as u64),
                    _ => return,
                }
            }
        });
    }
}

/// A response body cut off after `limit` bytes.
pub(crate) struct ResponseBody {
    inner: HttpBody,
    left: u64,
    limit: u64,
}

impl ResponseBody {
    /// `inner`, failing once it has sent more than `limit` bytes.
    pub(crate) fn new(inner: HttpBody, limit: u64) -> Self {
        Self { inner, left: limit, limit }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = anyhow::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let frame = std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
            let len = data.map_or(0, |d| d.len() as u64);
            if len > self.left {
                let limit = self.limit;
                return Poll::Ready(Some(Err(anyhow::anyhow!("the function's response body is over the limit of {limit} bytes"))));
            }
            self.left -= len;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
