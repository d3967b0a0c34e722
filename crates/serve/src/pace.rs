//! A minimum send rate: a client that reads a response at a trickle, or not at all, does
//! not hold its connection (and the function instance streaming into it) for as long as it
//! likes.
//!
//! While a response waits on the client — a write the socket cannot take — the bytes the
//! client accepts are counted over windows of [`Limits::send_window`]; a window in which it
//! took fewer than [`Limits::min_send_rate`] bytes a second on average ends the connection
//! (the write fails with `TimedOut`, hyper drops the connection, the response body and
//! whatever produces it). A client that keeps up never meets it, however large the body.
//!
//! [`Limits::send_window`]: crate::Limits::send_window
//! [`Limits::min_send_rate`]: crate::Limits::min_send_rate

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// A stream whose writes must keep a minimum rate while they wait on the peer.
pub(crate) struct Paced<S> {
    inner: S,
    /// Least bytes per window; 0 turns pacing off.
    min_bytes: u64,
    window: Duration,
    /// Start of the window being measured, while the client holds writes back.
    since: Option<Instant>,
    /// Bytes written since `since`.
    sent: u64,
    timer: Pin<Box<Sleep>>,
}

impl<S> Paced<S> {
    /// `inner`, cut when it takes fewer than `min_rate` bytes a second over a `window`.
    pub(crate) fn new(inner: S, min_rate: u64, window: Duration) -> Self {
        let min_bytes = min_rate.saturating_mul(window.as_millis() as u64) / 1000;
        Self { inner, min_bytes, window, since: None, sent: 0, timer: Box::pin(tokio::time::sleep(window)) }
    }

    /// Accounts a write's outcome.
    fn paced(&mut self, cx: &mut Context<'_>, written: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        if self.min_bytes == 0 {
            return written;
        }
        let now = Instant::now();
        match written {
            Poll::Ready(Ok(n)) => {
                self.sent += n as u64;
                if self.since.is_some_and(|since| now - since >= self.window) {
                    if self.sent < self.min_bytes {
                        return Poll::Ready(Err(self.too_slow()));
                    }
                    // It kept up through a whole window: measure again when it next holds back.
                    self.since = None;
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                if self.since.is_none() {
                    self.start(now);
                }
                while self.timer.as_mut().poll(cx).is_ready() {
                    if self.sent < self.min_bytes {
                        return Poll::Ready(Err(self.too_slow()));
                    }
                    self.start(Instant::now());
                }
                Poll::Pending
            }
            failed => failed,
        }
    }

    fn start(&mut self, now: Instant) {
        self.since = Some(now);
        self.sent = 0;
        self.timer.as_mut().reset(now + self.window);
    }

    fn too_slow(&self) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("the client took fewer than {} bytes in {:?}: below the minimum send rate", self.min_bytes, self.window),
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Paced<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Paced<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.paced(cx, written)
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.paced(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
