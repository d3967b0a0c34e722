//! Guest log lines, one path for every way a function runs (the invoke API, the edge
//! node, either ABI): a per-function allowance of lines per second, each line cut at
//! 4 KiB and its control characters escaped so one line can never pose as several, then
//! the platform log under the target `guest`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::host::LogLevel;

/// Guest log lines a function may write per second, all callers together; the rest are
/// dropped and counted.
pub const GUEST_LOG_LINES_PER_SECOND: u32 = 1000;
/// Longest guest log line kept, in bytes; longer ones are cut.
pub const MAX_LOG_LINE_BYTES: usize = 4096;
/// Functions whose allowance is remembered before windows older than a second are
/// forgotten.
const MAX_TRACKED_FUNCTIONS: usize = 10_000;

/// The rate limiter and writer of guest log lines; one per runtime.
#[derive(Default)]
pub struct GuestLog {
    /// Per function: the second being counted and the lines written in it.
    windows: Mutex<HashMap<Arc<str>, (Instant, u32)>>,
}

impl GuestLog {
    /// Writes one line of `function_id` unless its allowance for this second is spent;
    /// returns whether it was written.
    pub fn write(&self, function_id: &Arc<str>, request_id: &str, level: LogLevel, message: &str) -> bool {
        if !self.admit(function_id) {
            return false;
        }
        let (message, function_id) = (neutralised(message), &**function_id);
        match level {
            LogLevel::Debug => tracing::debug!(target: "guest", function_id, request_id, "{message}"),
            LogLevel::Info => tracing::info!(target: "guest", function_id, request_id, "{message}"),
            LogLevel::Warn => tracing::warn!(target: "guest", function_id, request_id, "{message}"),
            LogLevel::Error => tracing::error!(target: "guest", function_id, request_id, "{message}"),
        }
        true
    }

    fn admit(&self, function_id: &Arc<str>) -> bool {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED_FUNCTIONS && !windows.contains_key(function_id) {
            windows.retain(|_, (started, _)| now.duration_since(*started) < Duration::from_secs(1));
        }
        let (started, lines) = windows.entry(function_id.clone()).or_insert((now, 0));
        if now.duration_since(*started) >= Duration::from_secs(1) {
            *started = now;
            *lines = 0;
        }
        *lines += 1;
        *lines <= GUEST_LOG_LINES_PER_SECOND
    }
}

/// `message` cut to [`MAX_LOG_LINE_BYTES`] on a character boundary, with control
/// characters (newlines, carriage returns, escape sequences…) written as escapes.
pub fn neutralised(message: &str) -> Cow<'_, str> {
    let cut = &message[..message.floor_char_boundary(MAX_LOG_LINE_BYTES)];
    if !cut.chars().any(char::is_control) {
        return Cow::Borrowed(cut);
    }
    let mut out = String::with_capacity(cut.len() + 16);
    for c in cut.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_and_cannot_forge_other_lines() {
        assert_eq!(neutralised("plain text"), "plain text");
        assert_eq!(neutralised("a\nERROR forged\r\x1b[31m"), "a\\nERROR forged\\r\\u{1b}[31m");
        let long = "é".repeat(3000);
        let cut = neutralised(&long);
        assert!(cut.len() <= MAX_LOG_LINE_BYTES && cut.len() >= MAX_LOG_LINE_BYTES - 1);
    }

    #[test]
    fn each_function_gets_its_own_allowance_per_second() {
        let log = GuestLog::default();
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let written = (0..GUEST_LOG_LINES_PER_SECOND + 50).filter(|_| log.write(&a, "r", LogLevel::Debug, "x")).count();
        assert_eq!(written, GUEST_LOG_LINES_PER_SECOND as usize);
        assert!(log.write(&b, "r", LogLevel::Debug, "x"), "another function is not limited by the first");
    }
}
