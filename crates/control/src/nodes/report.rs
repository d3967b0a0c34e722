//! What a node may report, and what is done with a report that cannot be true.
//!
//! A node is trusted to run what it is sent, not to tell the truth about traffic: its
//! reports become every tenant's statistics and the registry's figures, and a broken or
//! taken-over node could flood the control plane's store with rows or make a function show
//! 10^17 requests. So a report is checked before it is stored: one sooner than half the
//! node's interval after the last is refused whole; its rows are only those of functions the
//! node runs, once each per version, at most [`MAX_ROWS`]; counts are clamped to what the
//! window could hold ([`MAX_REQUESTS_PER_SECOND`]), error counts to the requests, latencies
//! to [`MAX_LATENCY_MS`]; a revision the control plane never had reads as 0. What was
//! refused or clamped is counted per node (the registry shows it) and logged.

use std::collections::HashSet;
use std::time::Duration;

use edgefn_proto::v1;
use edgefn_store::TrafficRow;

/// Most traffic rows one report may carry.
pub const MAX_ROWS: usize = 10_000;
/// More requests a second than one node could serve to one function version.
pub const MAX_REQUESTS_PER_SECOND: u64 = 1_000_000;
/// Longer than any function may run (the longest class limit is a minute).
pub const MAX_LATENCY_MS: f64 = 600_000.0;

/// What was refused or changed of a node's reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Refused {
    /// Reports refused whole (sent too often).
    pub reports: u64,
    /// Rows dropped: of functions the node does not run, repeated, or past the limit.
    pub rows: u64,
    /// Rows whose figures were clamped to what could be true.
    pub clamped: u64,
}

/// A report's rows as they will be stored, and what was refused of them.
#[derive(Debug)]
pub struct Checked {
    /// The rows to store.
    pub rows: Vec<TrafficRow>,
    /// The window the rows cover, clamped to between 1 ms and ten intervals.
    pub window_ms: u64,
    /// What was dropped or clamped.
    pub refused: Refused,
}

/// Checks `report` from a node that reports every `every` and runs the functions `runs`.
pub fn check(report: &v1::Report, every: Duration, runs: impl Fn(&str) -> bool) -> Checked {
    let every_ms = (every.as_millis() as u64).max(1);
    let window_ms = report.window_ms.clamp(1, every_ms.saturating_mul(10));
    let max_requests = MAX_REQUESTS_PER_SECOND.saturating_mul(window_ms).div_ceil(1000);
    let mut refused = Refused::default();
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for t in &report.traffic {
        if rows.len() >= MAX_ROWS || !runs(&t.function_id) || !seen.insert((t.function_id.as_str(), t.version.as_str())) {
            refused.rows += 1;
            continue;
        }
        let requests = t.requests.min(max_requests);
        let count = |n: u64| n.min(requests) as i64;
        let latency = |ms: f64| if ms.is_finite() && ms > 0.0 { ms.min(MAX_LATENCY_MS) } else { 0.0 };
        let (p50_ms, p99_ms) = (latency(t.p50_ms), latency(t.p99_ms));
        let row = TrafficRow {
            module_id: t.function_id.clone(),
            version: t.version.clone(),
            requests: requests as i64,
            trap: count(t.trap),
            timeout: count(t.timeout),
            server_error: count(t.server_error),
            overload: count(t.overload),
            p50_ms: p50_ms.min(p99_ms),
            p99_ms,
        };
        let exact = row.requests as u64 == t.requests
            && [row.trap, row.timeout, row.server_error, row.overload].map(|n| n as u64) == [t.trap, t.timeout, t.server_error, t.overload]
            && row.p99_ms == t.p99_ms
            && row.p50_ms == t.p50_ms;
        if !exact {
            refused.clamped += 1;
        }
        rows.push(row);
    }
    Checked { rows, window_ms, refused }
}

/// A revision a node says it holds, as the registry records it: one the control plane
/// never had (`current` is its newest) is 0, "nothing known".
pub fn plausible_revision(said: u64, current: u64) -> i64 {
    if said > current { 0 } else { i64::try_from(said).unwrap_or(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traffic(function_id: &str, version: &str, requests: u64, trap: u64, p99_ms: f64) -> v1::Traffic {
        v1::Traffic { function_id: function_id.into(), version: version.into(), requests, trap, p50_ms: 1.0, p99_ms, ..Default::default() }
    }

    #[test]
    fn what_cannot_be_true_is_dropped_or_clamped_and_counted() {
        let report = v1::Report {
            window_ms: 10_000,
            traffic: vec![
                traffic("f1", "1", 120, 3, 4.5),
                traffic("f1", "1", 5, 0, 1.0),
                traffic("stranger", "1", 5, 0, 1.0),
                traffic("f2", "1", 300_000_000_000_000_000, u64::MAX, 1e12),
                traffic("f3", "1", 7, 0, f64::NAN),
            ],
            ..Default::default()
        };
        let checked = check(&report, Duration::from_secs(10), |id| id != "stranger");
        assert_eq!(checked.window_ms, 10_000);
        assert_eq!(checked.refused, Refused { reports: 0, rows: 2, clamped: 2 });
        let [f1, f2, f3] = checked.rows.as_slice() else { panic!("{:?}", checked.rows) };
        assert_eq!((f1.requests, f1.trap, f1.p99_ms), (120, 3, 4.5), "a true row is kept as it is");
        assert_eq!((f2.requests, f2.trap, f2.p99_ms), (10_000_000, 10_000_000, MAX_LATENCY_MS));
        assert_eq!((f3.p50_ms, f3.p99_ms), (0.0, 0.0));
    }

    #[test]
    fn a_window_and_a_revision_are_held_to_what_could_be() {
        let report = v1::Report { window_ms: u64::MAX, ..Default::default() };
        assert_eq!(check(&report, Duration::from_secs(1), |_| true).window_ms, 10_000);
        let many =
            v1::Report { traffic: (0..MAX_ROWS + 5).map(|i| traffic(&format!("f{i}"), "1", 1, 0, 1.0)).collect(), ..Default::default() };
        let checked = check(&many, Duration::from_secs(1), |_| true);
        assert_eq!((checked.rows.len(), checked.refused.rows), (MAX_ROWS, 5));
        assert_eq!(plausible_revision(u64::MAX, 12), 0);
        assert_eq!(plausible_revision(12, 12), 12);
    }
}
