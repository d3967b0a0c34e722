//! A module's execution history, paged and filtered by status, and for those who may see
//! every execution (owner, admins) its statistics with charts of latency percentiles and
//! success rate over time.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use edgefn_store::{Execution, Module, now_ms};
use maud::{Markup, html};
use serde::Deserialize;

use super::chart::{Series, lines};
use super::format::{bytes, clock, ms, time};
use super::layout::{Nav, badge};
use super::session::{Session, query};
use crate::access::{Op, decide};
use crate::error::ApiError;
use crate::executions::{STATUSES, TRAFFIC_PERIOD_MS, check_status, visible_executor};
use crate::modules::find;
use crate::state::AppState;

/// Rows per page.
const PAGE: i64 = 25;
/// Newest executions the charts are drawn from.
const CHARTED: i64 = 1000;
/// Points on a chart's time axis.
const BUCKETS: usize = 20;

/// Query of the history page.
#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    status: String,
    #[serde(default = "first")]
    page: i64,
}

fn first() -> i64 {
    1
}

/// `GET /modules/{id}/history?status=&page=`.
pub async fn page(State(state): State<AppState>, session: Session, Path(id): Path<String>, Query(q): Query<HistoryQuery>) -> Response {
    match find(&state, &session.caller, &id, Op::Read).await {
        Ok(module) => {
            let body = body(&state, &session, &module, q).await;
            session.render(Nav::Modules, &format!("History of {}", module.name), body)
        }
        Err(e) => session.failure(Nav::Modules, e),
    }
}

async fn body(state: &AppState, session: &Session, module: &Module, q: HistoryQuery) -> Result<Markup, ApiError> {
    let status = Some(q.status.as_str()).filter(|s| !s.is_empty());
    check_status(status)?;
    if q.page < 1 {
        return Err(ApiError::bad_request("page must be 1 or more"));
    }
    let caller = &session.caller;
    let executor = visible_executor(caller, module);
    state.recorder.flush().await;
    let (rows, total) = state.db.executions(&module.id, executor, status, PAGE, (q.page - 1) * PAGE).await?;
    let pages = ((total + PAGE - 1) / PAGE).max(1);
    let link = |page: i64| format!("?{}", query(&[("status", q.status.as_str()), ("page", page.to_string().as_str())]));
    let stats = match decide(caller, module, Op::History) {
        Ok(()) => Some(statistics(state, module).await?),
        Err(_) => None,
    };
    Ok(html! {
        p { "Module " a href={ "/modules/" (module.id) } { (module.name) } ". "
            @if executor.is_some() { "You see the executions you ran; its owner and admins see all of them." } }
        @if let Some(stats) = stats { (stats) }
        section aria-labelledby="executions" {
            h2 #executions { "Executions" }
            form.filters method="get" {
                div.field {
                    label for="status" { "Status" }
                    select #status name="status" {
                        option value="" { "any" }
                        @for s in STATUSES { option value=(s) selected[q.status == s] { (s) } }
                    }
                }
                button type="submit" { "Filter" }
            }
            @if rows.is_empty() {
                p.empty { "No executions" @if status.is_some() { " with this status" } " yet." }
            } @else {
                div.scroll { table #history {
                    caption { (total) " executions, newest first; page " (q.page) " of " (pages) }
                    thead { tr { th scope="col" { "When" } th scope="col" { "Function" } th scope="col" { "Version" } th scope="col" { "Status" }
                        th scope="col" { "Time" } th scope="col" { "Memory" } th scope="col" { "Cache" } th scope="col" { "Result or error" } } }
                    tbody {
                        @for e in &rows {
                            tr {
                                td { (time(e.created_at)) }
                                th scope="row" { (e.function_name) }
                                td { (e.version) }
                                td { (badge(&e.status, &e.status)) }
                                td { (ms(e.execution_time_us as f64 / 1000.0)) }
                                td { (bytes(e.memory_used_bytes.max(0) as u64)) }
                                td { (if e.cache_hit { "hit" } else { "miss" }) }
                                td { code { (short(e.error.as_deref().or(e.output.as_deref()).unwrap_or(""))) } }
                            }
                        }
                    }
                } }
                nav.pager aria-label="Pages" {
                    @if q.page > 1 { a href=(link(q.page - 1)) rel="prev" { "← Newer" } }
                    span { "Page " (q.page) " of " (pages) }
                    @if q.page < pages { a href=(link(q.page + 1)) rel="next" { "Older →" } }
                }
            }
        }
    })
}

/// The first line of a result or error, at most 120 characters.
fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    match line.char_indices().nth(120) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line.to_string(),
    }
}

/// The HTTP traffic the edge nodes reported for `module` over the last 24 hours.
pub(crate) async fn http_traffic(state: &AppState, module: &Module) -> Result<Markup, ApiError> {
    let t = state.db.traffic(&module.id, now_ms() - TRAFFIC_PERIOD_MS).await?;
    Ok(html! {
        section aria-labelledby="traffic" {
            h2 #traffic { "HTTP traffic on the edge (last 24 hours)" }
            @if t.requests == 0 {
                p.empty { "No HTTP requests reported by the nodes in the last 24 hours." }
            } @else {
                dl.facts.totals {
                    dt { "Requests" } dd { (t.requests) }
                    dt { "Error rate" } dd { (format!("{:.2} %", t.error_rate * 100.0)) }
                    dt { "Errors" } dd { (t.trap) " traps, " (t.timeout) " timeouts, " (t.server_error) " other 5xx, " (t.overload) " overloaded" }
                    dt { "p50 / p99" } dd { (ms(t.p50_ms)) " / " (ms(t.p99_ms)) }
                }
                p { "From the nodes' reports: p50 is the nodes' medians weighted by requests, p99 the highest any node reported." }
            }
        }
    })
}

/// Totals and the two charts.
async fn statistics(state: &AppState, module: &Module) -> Result<Markup, ApiError> {
    let stats = state.db.execution_stats(&module.id).await?;
    let (mut recent, _) = state.db.executions(&module.id, None, None, CHARTED, 0).await?;
    recent.reverse();
    let buckets = buckets(&recent, BUCKETS);
    // Periods are named by date and time, or by the time to the millisecond when they
    // all fall within a minute.
    let within_a_minute = buckets.last().zip(buckets.first()).is_some_and(|(b, a)| b.start - a.start < 60_000);
    let at = |t: i64| if within_a_minute { clock(t) } else { time(t) };
    let ends = (buckets.first().map(|b| at(b.start)).unwrap_or_default(), buckets.last().map(|b| at(b.start)).unwrap_or_default());
    let series = |name, class, pick: fn(&Bucket) -> f64| Series { name, class, values: buckets.iter().map(|b| Some(pick(b))).collect() };
    let latency = [series("p50", "p50", |b| b.p50), series("p95", "p95", |b| b.p95), series("p99", "p99", |b| b.p99)];
    let top = buckets.iter().map(|b| b.p99).fold(0.0, f64::max);
    let success = [series("success rate", "ok", |b| b.ok as f64 / b.count as f64 * 100.0)];
    Ok(html! {
        (http_traffic(state, module).await?)
        section aria-labelledby="stats" {
            h2 #stats { "Invocations through the API" }
            dl.facts.totals {
                dt { "Executions" } dd { (stats.total_executions) }
                dt { "Success rate" } dd { (format!("{:.1} %", stats.success_rate * 100.0)) }
                dt { "Mean" } dd { (ms(stats.avg_execution_time)) }
                dt { "p50 / p95 / p99" } dd { (ms(stats.p50)) " / " (ms(stats.p95)) " / " (ms(stats.p99)) }
            }
            @if buckets.len() > 1 {
                (lines("latency", "Latency percentiles over time",
                    &format!("Latency of the last {} executions in {} periods from {} to {}; p99 at most {}.", recent.len(), buckets.len(), ends.0, ends.1, ms(top)),
                    &latency, top * 1.1, ms, (ends.0.as_str(), ends.1.as_str())))
                (lines("success", "Success rate over time",
                    &format!("Share of successful executions per period, from {} to {}.", ends.0, ends.1),
                    &success, 100.0, |v| format!("{v:.0} %"), (ends.0.as_str(), ends.1.as_str())))
                details {
                    summary { "The charts' numbers" }
                    div.scroll { table {
                        thead { tr { th scope="col" { "Period from" } th scope="col" { "Executions" } th scope="col" { "Succeeded" } th scope="col" { "p50" } th scope="col" { "p95" } th scope="col" { "p99" } } }
                        tbody { @for b in &buckets { tr { td { (at(b.start)) } td { (b.count) } td { (b.ok) } td { (ms(b.p50)) } td { (ms(b.p95)) } td { (ms(b.p99)) } } } }
                    } }
                }
            } @else {
                p.empty { "Charts appear once executions span more than one period." }
            }
        }
    })
}

/// Executions of one period.
#[derive(Debug, PartialEq)]
struct Bucket {
    start: i64,
    count: usize,
    ok: usize,
    p50: f64,
    p95: f64,
    p99: f64,
}

/// `rows` (oldest first) in up to `n` equal periods of time; empty periods are left out.
fn buckets(rows: &[Execution], n: usize) -> Vec<Bucket> {
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return Vec::new() };
    let span = (last.created_at - first.created_at).max(0) + 1;
    let width = (span + n as i64 - 1) / n as i64;
    let mut groups: Vec<Vec<&Execution>> = vec![Vec::new(); n];
    for row in rows {
        groups[((row.created_at - first.created_at) / width).clamp(0, n as i64 - 1) as usize].push(row);
    }
    groups
        .iter()
        .enumerate()
        .filter(|(_, g)| !g.is_empty())
        .map(|(i, group)| {
            let mut times: Vec<f64> = group.iter().map(|e| e.execution_time_us as f64 / 1000.0).collect();
            times.sort_by(f64::total_cmp);
            // Nearest rank.
            let pct = |p: f64| times[((p * times.len() as f64).ceil() as usize).clamp(1, times.len()) - 1];
            Bucket {
                start: first.created_at + i as i64 * width,
                count: group.len(),
                ok: group.iter().filter(|e| e.status == "success").count(),
                p50: pct(0.50),
                p95: pct(0.95),
                p99: pct(0.99),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(at: i64, us: i64, status: &str) -> Execution {
        Execution {
            id: String::new(),
            seq: 0,
            module_id: String::new(),
            version: String::new(),
            executor_id: None,
            function_name: String::new(),
            input: String::new(),
            output: None,
            execution_time_us: us,
            memory_used_bytes: 0,
            cache_hit: true,
            status: status.into(),
            error: None,
            node: None,
            created_at: at,
        }
    }

    #[test]
    fn executions_fall_into_equal_periods_with_nearest_rank_percentiles() {
        let mut rows: Vec<Execution> = (1..=100).map(|i| execution(0, i * 1000, "success")).collect();
        rows.push(execution(999, 5000, "error"));
        let b = buckets(&rows, 2);
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].start, b[0].count, b[0].ok, b[0].p50, b[0].p95, b[0].p99), (0, 100, 100, 50.0, 95.0, 99.0));
        assert_eq!((b[1].start, b[1].count, b[1].ok, b[1].p99), (500, 1, 0, 5.0));
    }

    #[test]
    fn empty_periods_are_left_out() {
        let rows = [execution(0, 1000, "success"), execution(100, 2000, "success")];
        let b = buckets(&rows, 10);
        assert_eq!(b.iter().map(|b| b.start).collect::<Vec<_>>(), vec![0, 99]);
        assert!(buckets(&[], 10).is_empty());
    }
}
