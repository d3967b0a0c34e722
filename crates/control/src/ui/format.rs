//! Numbers and times as people read them: "1.2 MB", "0.42 ms", "2026-11-23 19:40:12 UTC".

/// Bytes in binary units as the seeds show them: "512 bytes", "1 MB", "1.2 MB".
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if n < 1024 {
        return format!("{n} bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let text = if value < 10.0 { format!("{value:.1}") } else { format!("{value:.0}") };
    format!("{} {}", text.strip_suffix(".0").unwrap_or(&text), UNITS[unit])
}

/// Wasm pages (64 KiB each) as bytes.
pub(crate) fn pages(n: i64) -> String {
    bytes(n.max(0) as u64 * 65536)
}

/// A duration in milliseconds: "0.42 ms", "12.3 ms", "250 ms", "1.5 s".
pub(crate) fn ms(ms: f64) -> String {
    match ms {
        m if m < 10.0 => format!("{m:.2} ms"),
        m if m < 100.0 => format!("{m:.1} ms"),
        m if m < 1000.0 => format!("{m:.0} ms"),
        m => format!("{:.1} s", m / 1000.0).replace(".0 s", " s"),
    }
}

/// A time (milliseconds since the epoch) in UTC, to the second.
pub(crate) fn time(epoch_ms: i64) -> String {
    utc(epoch_ms, time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"))
}

/// The time of day (UTC) to the millisecond, for spans shorter than a minute.
pub(crate) fn clock(epoch_ms: i64) -> String {
    utc(epoch_ms, time::macros::format_description!("[hour]:[minute]:[second].[subsecond digits:3] UTC"))
}

fn utc(epoch_ms: i64, format: &[time::format_description::BorrowedFormatItem<'_>]) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000);
    at.ok().and_then(|t| t.format(format).ok()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_the_seeds() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1024 * 1024), "1 MB");
        assert_eq!(bytes(1_258_291), "1.2 MB");
        assert_eq!(bytes(16 * 1024 * 1024), "16 MB");
        assert_eq!(bytes(1536), "1.5 KB");
        assert_eq!(pages(16), "1 MB");
        assert_eq!(pages(256), "16 MB");
    }

    #[test]
    fn durations_keep_two_or_three_figures() {
        assert_eq!(ms(0.4217), "0.42 ms");
        assert_eq!(ms(12.34), "12.3 ms");
        assert_eq!(ms(250.2), "250 ms");
        assert_eq!(ms(1500.0), "1.5 s");
        assert_eq!(ms(10_000.0), "10 s");
    }

    #[test]
    fn times_are_utc_to_the_second() {
        assert_eq!(time(1_795_462_812_345), "2026-11-23 19:40:12 UTC");
        assert_eq!(clock(1_795_462_812_045), "19:40:12.045 UTC");
    }
}
