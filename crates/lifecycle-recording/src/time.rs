//! Fixed-width RFC 3339 timestamps: `2026-11-21T23:54:34.123456789Z`.
//!
//! Always UTC with a `Z` suffix and exactly nine fractional digits, so the
//! strings sort in time order and line up in logs. Also the one home of
//! the nanosecond constants.

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

/// Nanoseconds per second.
pub const NS_PER_S: i64 = 1_000_000_000;
/// Nanoseconds per millisecond.
pub const NS_PER_MS: i64 = 1_000_000;

/// An instant RFC 3339 cannot write.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    /// Before the year 0000 or after 9999.
    #[error(
        "{unix_ns} ns since the Unix epoch is outside the years 0000-9999 RFC 3339 can express"
    )]
    OutOfRange {
        /// The instant, Unix nanoseconds.
        unix_ns: i128,
    },
    /// The formatter failed.
    #[error("formatting {unix_ns} ns since the Unix epoch failed")]
    FormatFailed {
        /// The instant, Unix nanoseconds.
        unix_ns: i128,
        /// What the formatter said.
        #[source]
        source: time::error::Format,
    },
}

impl TimeError {
    /// A short stable name of the failure, for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::OutOfRange { .. } => "out_of_range",
            Self::FormatFailed { .. } => "format_failed",
        }
    }
}

const LAYOUT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

/// Formats Unix nanoseconds as RFC 3339 UTC with nanosecond precision.
///
/// Fails for instants outside the years 0000-9999, which RFC 3339 cannot
/// write.
pub fn try_format_rfc3339_nanos(unix_ns: i128) -> Result<String, TimeError> {
    let out_of_range = TimeError::OutOfRange { unix_ns };
    let at = OffsetDateTime::from_unix_timestamp_nanos(unix_ns).map_err(|_| out_of_range)?;
    if !(0..=9999).contains(&at.year()) {
        return Err(TimeError::OutOfRange { unix_ns });
    }
    at.format(LAYOUT)
        .map_err(|source| TimeError::FormatFailed { unix_ns, source })
}

/// Like [`try_format_rfc3339_nanos`], for callers that always want text.
///
/// Every instant reachable from a `u64` boot timestamp is in range; for the
/// rest the result is `out-of-range:<unix_ns>ns`, which cannot be mistaken
/// for a timestamp.
pub fn format_rfc3339_nanos(unix_ns: i128) -> String {
    try_format_rfc3339_nanos(unix_ns).unwrap_or_else(|_| format!("out-of-range:{unix_ns}ns"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NS: i128 = 1_000_000_000;

    #[test]
    fn epoch() {
        assert_eq!(format_rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
    }

    #[test]
    fn nanosecond_digits_are_kept_and_padded() {
        let at = 1_795_305_274 * NS + 123_456_789;
        assert_eq!(format_rfc3339_nanos(at), "2026-11-21T23:54:34.123456789Z");
        assert_eq!(format_rfc3339_nanos(1), "1970-01-01T00:00:00.000000001Z");
        assert_eq!(
            format_rfc3339_nanos(NS + 10),
            "1970-01-01T00:00:01.000000010Z"
        );
        assert_eq!(
            format_rfc3339_nanos(999_999_999),
            "1970-01-01T00:00:00.999999999Z"
        );
    }

    #[test]
    fn leap_days() {
        assert_eq!(
            format_rfc3339_nanos(1_709_210_096 * NS + 1),
            "2024-02-29T12:34:56.000000001Z"
        );
        assert_eq!(
            format_rfc3339_nanos(951_782_400 * NS),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn before_the_epoch() {
        assert_eq!(format_rfc3339_nanos(-1), "1969-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn largest_boot_derived_value_is_in_range() {
        let latest = i128::from(u64::MAX) * 2;
        assert!(try_format_rfc3339_nanos(latest).is_ok());
    }

    #[test]
    fn out_of_range_is_an_error() {
        let far = 400_000_000_000 * NS;
        assert!(matches!(
            try_format_rfc3339_nanos(far),
            Err(TimeError::OutOfRange { .. })
        ));
        assert!(try_format_rfc3339_nanos(-70_000_000_000 * NS).is_err());
        assert_eq!(format_rfc3339_nanos(far), format!("out-of-range:{far}ns"));
    }
}
