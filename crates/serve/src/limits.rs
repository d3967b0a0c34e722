//! The limits of a listener, each with its default and the reason for it.

use std::time::Duration;

/// Connections one listener serves at once; more are answered 503. Each costs a file
/// descriptor and a task; 10,000 covers a busy node while the process's descriptor limit
/// (raised at start, [`raise_open_files_limit`]) leaves room for the rest.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Time a client has to send a request head: slow-header (slowloris) clients are dropped.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a request body may take to arrive: a 10 MiB body at ~1.5 Mbit/s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection with no request running this long is closed (silent sockets, idle
/// keep-alive and HTTP/2 connections).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Time a closing connection has to finish what it is sending before it is dropped.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// HTTP/2 streams one connection may run at once.
pub const DEFAULT_MAX_STREAMS: u32 = 256;
/// Bytes a second a client must take, on average over a [`DEFAULT_SEND_WINDOW`], while a
/// response waits on it: a reader at a trickle would otherwise hold its connection and the
/// instance streaming into it for as long as it likes.
pub const DEFAULT_MIN_SEND_RATE: u64 = 1024;
/// The window the send rate is measured over.
pub const DEFAULT_SEND_WINDOW: Duration = Duration::from_secs(10);
/// Accept errors are logged at most once per this interval.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// What one listener allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections at once.
    pub max_connections: usize,
    /// Time to send the request head.
    pub header_read_timeout: Duration,
    /// Time for a request body to arrive.
    pub body_read_timeout: Duration,
    /// Time a connection may sit without a running request.
    pub idle_timeout: Duration,
    /// Time a closing connection has to finish.
    pub drain_timeout: Duration,
    /// HTTP/2 streams at once per connection.
    pub max_streams: u32,
    /// Least bytes a second a client takes while a response waits on it (0: no minimum).
    pub min_send_rate: u64,
    /// The window [`Limits::min_send_rate`] is averaged over.
    pub send_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            max_streams: DEFAULT_MAX_STREAMS,
            min_send_rate: DEFAULT_MIN_SEND_RATE,
            send_window: DEFAULT_SEND_WINDOW,
        }
    }
}

/// Raises this process's soft limit of open files to its hard limit and returns the
/// limit now in force, so the connection limits, not the descriptor limit, are what
/// clients meet first.
#[expect(unsafe_code, reason = "getrlimit/setrlimit on this process with a valid, initialised rlimit")]
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a valid rlimit that outlives both calls.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}
