//! A guest's standard output and error — `println!`, `eprintln!`, a panic message — as
//! the guest's WASI stdout and stderr: cut into lines and written to the function's log
//! stream with the request id, through the same per-function allowance, 4 KiB cut and
//! escaping as guest log calls ([`crate::GuestLog`]). Lines on stdout are logged at info,
//! on stderr at error. Like log calls they need the `log` grant; without it the bytes are
//! dropped, as before.
//!
//! An instance's pipes are made once, with its store (instances are made ahead of time,
//! before their request is known), and share one [`GuestOutput`]: the pool tells it which
//! request the instance serves ([`GuestOutput::begin`]) and when that ends
//! ([`GuestOutput::end`], which writes a last line that had no newline). The last lines
//! written to stderr are kept for the trap they explain ([`GuestOutput::stderr_tail`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::guest_log::MAX_LOG_LINE_BYTES;
use crate::host::{CallContext, LogLevel};

/// Lines of stderr kept to explain a trap (a Rust panic writes three).
const STDERR_TAIL_LINES: usize = 4;

/// Which of the two pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// The capture of one instance's stdout and stderr.
#[derive(Clone, Default)]
pub(crate) struct GuestOutput(Arc<Mutex<Capture>>);

#[derive(Default)]
struct Capture {
    /// The request being served; lines go nowhere while none is.
    ctx: Option<CallContext>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// The last lines of stderr of this request.
    stderr_tail: VecDeque<String>,
}

impl Capture {
    fn write(&mut self, stream: Stream, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let pending = match stream {
                Stream::Stdout => &mut self.stdout,
                Stream::Stderr => &mut self.stderr,
            };
            let room = MAX_LOG_LINE_BYTES - pending.len();
            match bytes[..bytes.len().min(room)].iter().position(|b| *b == b'\n') {
                Some(end) => {
                    pending.extend_from_slice(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    self.emit(stream);
                }
                None if bytes.len() >= room => {
                    // A line longer than the cut: written as it is, the rest as further lines.
                    pending.extend_from_slice(&bytes[..room]);
                    bytes = &bytes[room..];
                    self.emit(stream);
                }
                None => {
                    pending.extend_from_slice(bytes);
                    bytes = &[];
                }
            }
        }
    }

    /// Writes the pending line of `stream`.
    fn emit(&mut self, stream: Stream) {
        let pending = match stream {
            Stream::Stdout => std::mem::take(&mut self.stdout),
            Stream::Stderr => std::mem::take(&mut self.stderr),
        };
        let line = String::from_utf8_lossy(&pending);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if stream == Stream::Stderr && !line.is_empty() {
            if self.stderr_tail.len() == STDERR_TAIL_LINES {
                self.stderr_tail.pop_front();
            }
            self.stderr_tail.push_back(line.to_string());
        }
        if let Some(ctx) = self.ctx.as_ref().filter(|c| c.grants.allows("log")) {
            let level = if stream == Stream::Stdout { LogLevel::Info } else { LogLevel::Error };
            ctx.log(level, line);
        }
    }
}

impl GuestOutput {
    /// The instance starts serving the request of `ctx`.
    pub(crate) fn begin(&self, ctx: &CallContext) {
        let mut capture = self.lock();
        capture.ctx = Some(ctx.clone());
        capture.stderr_tail.clear();
    }

    /// The request ended: a last line without its newline is written, and later output
    /// (of a guest still running on) goes nowhere.
    pub(crate) fn end(&self) {
        let mut capture = self.lock();
        for stream in [Stream::Stdout, Stream::Stderr] {
            let pending = if stream == Stream::Stdout { &capture.stdout } else { &capture.stderr };
            if !pending.is_empty() {
                capture.emit(stream);
            }
        }
        capture.ctx = None;
    }

    /// What the guest last wrote to stderr in this request (a panic message), if anything.
    pub(crate) fn stderr_tail(&self) -> Option<String> {
        let mut capture = self.lock();
        if !capture.stderr.is_empty() {
            capture.emit(Stream::Stderr);
        }
        let tail: Vec<&str> = capture.stderr_tail.iter().map(String::as_str).collect();
        (!tail.is_empty()).then(|| tail.join(" / "))
    }

    /// The stdout and stderr pipes to give the instance's WASI context.
    pub(crate) fn pipes(&self) -> (Pipe, Pipe) {
        (Pipe { output: self.clone(), stream: Stream::Stdout }, Pipe { output: self.clone(), stream: Stream::Stderr })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Capture> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One of an instance's output pipes: always ready, every write taken at once (the
/// allowance, not back-pressure, is what bounds a guest that floods it).
#[derive(Clone)]
pub(crate) struct Pipe {
    output: GuestOutput,
    stream: Stream,
}

impl Pipe {
    fn write_bytes(&self, bytes: &[u8]) {
        self.output.lock().write(self.stream, bytes);
    }
}

impl IsTerminal for Pipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Pipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Pipe {
    async fn ready(&mut self) {}
}

impl OutputStream for Pipe {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl AsyncWrite for Pipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_into_lines_and_a_trap_keeps_the_last_of_stderr() {
        let output = GuestOutput::default();
        let (out, err) = output.pipes();
        out.write_bytes(b"one\ntw");
        out.write_bytes(b"o\n");
        err.write_bytes(b"thread panicked at src/lib.rs:3:5:\nboom\r\nnote: run with RUST_BACKTRACE=1");
        assert_eq!(output.stderr_tail().as_deref(), Some("thread panicked at src/lib.rs:3:5: / boom / note: run with RUST_BACKTRACE=1"));
        let long = vec![b'x'; MAX_LOG_LINE_BYTES * 2 + 10];
        err.write_bytes(&long);
        let capture = output.lock();
        assert_eq!(capture.stderr.len(), 10, "two full lines were written, ten bytes wait for more");
        assert!(capture.stdout.is_empty());
    }
}
