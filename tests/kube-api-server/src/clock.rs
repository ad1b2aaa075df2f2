//! API timestamps.
//!
//! The Kubernetes API stores `metav1.Time` with one-second precision and
//! writes it as RFC 3339 in UTC with a `Z` suffix (`2026-11-21T23:57:04Z`).
//! `metav1.MicroTime` (an Event's `eventTime`, `series.lastObservedTime`)
//! keeps microseconds and is read and written with exactly six fractional
//! digits (`2026-12-04T19:40:00.123456Z`): the real server refuses other
//! shapes. Everything the test server puts into an object goes through here
//! so the agent sees exactly the precision a real cluster gives it.

use std::time::{SystemTime, UNIX_EPOCH};

use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset, format_description::well_known::Rfc3339};

/// The current wall-clock time, truncated to whole Unix seconds.
pub fn now_s() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
}

/// Formats Unix seconds the way the API server does (`YYYY-MM-DDTHH:MM:SSZ`).
///
/// Seconds outside the range `time` can represent are clamped to the epoch;
/// tests never use such values.
pub fn rfc3339(secs: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    at.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// Parses an API timestamp (Time or MicroTime; a fraction is dropped) back
/// into Unix seconds (used by tests, the status editor and event tables).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

/// Re-writes a `metav1.Time` as the server stores it: parsed as RFC 3339
/// (fractions accepted), written in UTC, whole seconds.
pub fn normalize_time(text: &str) -> Option<String> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(rfc3339(at.unix_timestamp()))
}

/// Re-writes a `metav1.MicroTime` as the server stores it. The input must
/// have exactly six fractional digits, as the server's parser demands.
pub fn normalize_micro_time(text: &str) -> Option<String> {
    let fraction = text.get(19..)?.strip_prefix('.')?;
    let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
    if digits != 6 {
        return None;
    }
    let at = OffsetDateTime::parse(text, &Rfc3339)
        .ok()?
        .to_offset(UtcOffset::UTC);
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    at.format(&format).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_whole_seconds_with_z_suffix() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_305_424), "2026-11-21T23:57:04Z");
    }

    #[test]
    fn parse_inverts_format() {
        let secs = 1_795_305_424;
        assert_eq!(parse_rfc3339(&rfc3339(secs)), Some(secs));
        assert_eq!(parse_rfc3339("not a time"), None);
    }

    #[test]
    fn times_are_normalised_like_the_server() {
        assert_eq!(
            normalize_time("2026-11-21T23:57:04.5+01:00").as_deref(),
            Some("2026-11-21T22:57:04Z")
        );
        assert_eq!(
            normalize_micro_time("2026-12-04T19:40:00.123456Z").as_deref(),
            Some("2026-12-04T19:40:00.123456Z")
        );
        assert_eq!(
            normalize_micro_time("2026-12-04T20:40:00.000001+01:00").as_deref(),
            Some("2026-12-04T19:40:00.000001Z")
        );
        assert_eq!(normalize_micro_time("2026-12-04T19:40:00Z"), None);
        assert_eq!(normalize_micro_time("2026-12-04T19:40:00.123Z"), None);
        assert_eq!(
            parse_rfc3339("2026-12-04T19:40:00.999999Z"),
            Some(1_796_413_200)
        );
    }
}
