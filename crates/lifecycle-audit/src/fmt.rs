//! Durations and instants as the reports write them.

use lifecycle_recording::time::{NS_PER_MS, NS_PER_S};

/// Nanoseconds as seconds (`f64`).
pub fn to_s(ns: i64) -> f64 {
    ns as f64 / NS_PER_S as f64
}

/// `0.004 s`, `12.346 s`; sub-millisecond values keep microseconds.
pub fn secs(ns: i64) -> String {
    let s = to_s(ns);
    if ns != 0 && s.abs() < 0.001 {
        format!("{s:.6} s")
    } else {
        format!("{s:.3} s")
    }
}

/// A signed offset: `+1.234 s`, `-0.010 s`.
pub fn offset(ns: i64) -> String {
    let text = secs(ns.abs());
    if ns < 0 {
        format!("-{text}")
    } else {
        format!("+{text}")
    }
}

/// An optional offset in seconds, for tables: `+1.234` or `—`.
pub fn cell(offset_s: Option<f64>) -> String {
    offset_s.map_or_else(|| "—".to_owned(), |s| format!("{s:+.3}"))
}

/// Unix nanoseconds as `HH:MM:SS.mmm` UTC (the day is in the header).
pub fn clock(ns: i64) -> String {
    let secs = ns.div_euclid(NS_PER_S);
    let millis = ns.rem_euclid(NS_PER_S) / NS_PER_MS;
    let day = secs.rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}.{millis:03}",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

/// Unix seconds as RFC3339 (whole seconds, as the API writes them).
pub fn api_time(s: i64) -> String {
    lifecycle_recording::time::format_rfc3339_nanos(i128::from(s) * i128::from(NS_PER_S))
        .split('.')
        .next()
        .map(|t| format!("{t}Z"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(secs(4_000_000), "0.004 s");
        assert_eq!(secs(12_345_600_000), "12.346 s");
        assert_eq!(secs(123_000), "0.000123 s");
        assert_eq!(offset(-10_000_000), "-0.010 s");
        assert_eq!(offset(1_234_000_000), "+1.234 s");
        assert_eq!(cell(Some(-0.5)), "-0.500");
        assert_eq!(cell(None), "—");
        assert_eq!(clock(3_723_004_000_000), "01:02:03.004");
        assert_eq!(api_time(1_795_305_424), "2026-11-21T23:57:04Z");
    }
}
