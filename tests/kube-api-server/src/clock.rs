//! Whole-second API timestamps.
//!
//! The Kubernetes API stores `metav1.Time` with one-second precision and
//! writes it as RFC 3339 in UTC with a `Z` suffix (`2026-11-21T23:57:04Z`).
//! Everything the test server puts into an object goes through here so the
//! agent sees exactly the precision a real cluster gives it.

use std::time::{SystemTime, UNIX_EPOCH};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

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

/// Parses an API timestamp back into Unix seconds (used by tests and by the
/// status editor to read what it wrote earlier).
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
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
}
