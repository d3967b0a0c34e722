//! Timestamps: milliseconds since the Unix epoch in the database, RFC 3339 in JSON.

use serde::Serializer;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Serializes a millisecond timestamp as RFC 3339 (`2026-11-23T10:00:00.123Z`).
pub(crate) fn rfc3339<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(*ms) * 1_000_000).map_err(serde::ser::Error::custom)?;
    s.serialize_str(&at.format(&Rfc3339).map_err(serde::ser::Error::custom)?)
}

/// [`rfc3339`] for an optional timestamp (`null` when absent).
pub(crate) fn rfc3339_opt<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match ms {
        Some(ms) => rfc3339(ms, s),
        None => s.serialize_none(),
    }
}
