//! What a node tells the control plane about its work: per function version, requests,
//! errors by kind and latency percentiles over each report window ([`Traffic`]), and the
//! process's CPU and memory ([`ProcessUsage`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use edgefn_proto::v1;

/// Latency samples kept per function version and window; beyond it, samples replace
/// earlier ones at random (reservoir sampling), so percentiles stay unbiased.
const SAMPLES: usize = 2048;

/// How an answered request counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Any answer below 500.
    Ok,
    /// The function trapped (500).
    Trap,
    /// The function ran out of time (504).
    Timeout,
    /// Another 5xx answer, the function's own or the node's.
    ServerError,
    /// Refused for overload (503).
    Overload,
}

impl Outcome {
    /// The outcome of an answer with `status`.
    pub fn of(status: u16) -> Self {
        match status {
            500 => Self::Trap,
            503 => Self::Overload,
            504 => Self::Timeout,
            s if s >= 500 => Self::ServerError,
            _ => Self::Ok,
        }
    }
}

#[derive(Default)]
struct Window {
    requests: u64,
    trap: u64,
    timeout: u64,
    server_error: u64,
    overload: u64,
    latencies_ms: Vec<f64>,
}

/// Traffic since the last report.
#[derive(Default)]
pub struct Traffic {
    windows: Mutex<HashMap<(String, String), Window>>,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

impl Traffic {
    /// Counts one request of a function version.
    pub fn record(&self, function_id: &str, version: &str, outcome: Outcome, latency: Duration) {
        let mut windows = self.windows.lock().expect("traffic lock");
        let w = windows.entry((function_id.to_string(), version.to_string())).or_default();
        w.requests += 1;
        match outcome {
            Outcome::Ok => {}
            Outcome::Trap => w.trap += 1,
            Outcome::Timeout => w.timeout += 1,
            Outcome::ServerError => w.server_error += 1,
            Outcome::Overload => w.overload += 1,
        }
        let ms = latency.as_secs_f64() * 1000.0;
        if w.latencies_ms.len() < SAMPLES {
            w.latencies_ms.push(ms);
        } else {
            let slot = rand::random_range(0..w.requests) as usize;
            if slot < SAMPLES {
                w.latencies_ms[slot] = ms;
            }
        }
    }

    /// The window's traffic, which starts a new window.
    pub fn take(&self) -> Vec<v1::Traffic> {
        let windows = std::mem::take(&mut *self.windows.lock().expect("traffic lock"));
        windows
            .into_iter()
            .map(|((function_id, version), mut w)| {
                w.latencies_ms.sort_by(f64::total_cmp);
                v1::Traffic {
                    function_id,
                    version,
                    requests: w.requests,
                    trap: w.trap,
                    timeout: w.timeout,
                    server_error: w.server_error,
                    overload: w.overload,
                    p50_ms: percentile(&w.latencies_ms, 0.50),
                    p99_ms: percentile(&w.latencies_ms, 0.99),
                }
            })
            .collect()
    }
}

/// CPU time and resident memory of this process, from `/proc/self`.
pub struct ProcessUsage {
    last: Option<(Instant, f64)>,
}

impl ProcessUsage {
    /// Starts measuring.
    pub fn new() -> Self {
        Self { last: cpu_seconds().map(|s| (Instant::now(), s)) }
    }

    /// CPU use since the last call (percent of one core) and resident bytes now.
    pub fn sample(&mut self) -> (f64, u64) {
        let now = cpu_seconds().map(|s| (Instant::now(), s));
        let cpu = match (self.last, now) {
            (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => 100.0 * (s1 - s0) / (t1 - t0).as_secs_f64(),
            _ => 0.0,
        };
        self.last = now;
        (cpu, resident_bytes().unwrap_or(0))
    }
}

impl Default for ProcessUsage {
    fn default() -> Self {
        Self::new()
    }
}

/// Clock ticks per second in `/proc` (Linux's USER_HZ, 100 on every architecture it
/// exposes to user space).
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of this process.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / USER_HZ)
}

/// Resident set size of this process.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_count_and_reset() {
        let traffic = Traffic::default();
        for ms in 1..=100 {
            traffic.record("f", "1", Outcome::Ok, Duration::from_millis(ms));
        }
        traffic.record("f", "1", Outcome::of(504), Duration::from_millis(500));
        traffic.record("f", "1", Outcome::of(503), Duration::from_millis(1));
        traffic.record("g", "2", Outcome::of(502), Duration::from_millis(1));
        let mut report = traffic.take();
        report.sort_by(|a, b| a.function_id.cmp(&b.function_id));
        assert_eq!((report[0].requests, report[0].timeout, report[0].overload, report[0].trap), (102, 1, 1, 0));
        assert!((50.0..=52.0).contains(&report[0].p50_ms), "{}", report[0].p50_ms);
        assert!((99.0..=500.0).contains(&report[0].p99_ms), "{}", report[0].p99_ms);
        assert_eq!((report[1].function_id.as_str(), report[1].server_error), ("g", 1));
        assert!(traffic.take().is_empty());
    }

    #[test]
    fn process_usage_reads_proc() {
        let mut usage = ProcessUsage::new();
        let (_, rss) = usage.sample();
        assert!(rss > 1024 * 1024);
    }
}
