//! Deterministic trace and span ids.
//!
//! A trace id is the 128-bit FNV-1a hash of `"<pod uid>/<kind>"`
//! (`termination` or `startup`), a span id the 64-bit FNV-1a hash of
//! `"<pod uid>/<kind>/<container or "">"`. The same audit exported twice
//! (a re-export of a recording, a retried batch) therefore carries the
//! same ids, and a backend sees a duplicate rather than a second story.
//! Neither hash is secret or collision-proof; pod uids are unique, which
//! is all the ids need.

use opentelemetry::trace::{SpanId, TraceId};

const FNV128_OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
const FNV128_PRIME: u128 = 0x0000000001000000000000000000013B;
const FNV64_OFFSET: u64 = 0xcbf29ce484222325;
const FNV64_PRIME: u64 = 0x100000001b3;

fn fnv128(parts: &[&str]) -> u128 {
    let mut h = FNV128_OFFSET;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= u128::from(b'/');
            h = h.wrapping_mul(FNV128_PRIME);
        }
        for b in part.bytes() {
            h ^= u128::from(b);
            h = h.wrapping_mul(FNV128_PRIME);
        }
    }
    h
}

fn fnv64(parts: &[&str]) -> u64 {
    let mut h = FNV64_OFFSET;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= u64::from(b'/');
            h = h.wrapping_mul(FNV64_PRIME);
        }
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(FNV64_PRIME);
        }
    }
    h
}

/// The trace of one pod's termination or startup.
pub fn trace_id(pod_uid: &str, kind: &str) -> TraceId {
    // All-zero ids are invalid; FNV of a non-empty input is never zero in
    // practice, but keep the guarantee.
    TraceId::from(fnv128(&[pod_uid, kind]).max(1))
}

/// A span of that trace: the root (`container` = `None`) or a container's.
pub fn span_id(pod_uid: &str, kind: &str, container: Option<&str>) -> SpanId {
    let h = match container {
        None => fnv64(&[pod_uid, kind]),
        Some(c) => fnv64(&[pod_uid, kind, "container", c]),
    };
    SpanId::from(h.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_valid() {
        let uid = "f71ebb1c-3601-487e-8a47-e14e5e5bf86e";
        assert_eq!(trace_id(uid, "termination"), trace_id(uid, "termination"));
        assert_ne!(trace_id(uid, "termination"), trace_id(uid, "startup"));
        assert_ne!(trace_id(uid, "startup"), trace_id("other", "startup"));
        let root = span_id(uid, "termination", None);
        let app = span_id(uid, "termination", Some("app"));
        assert_ne!(root, app);
        assert_ne!(app, span_id(uid, "startup", Some("app")));
        assert_ne!(root, SpanId::INVALID);
        assert_ne!(trace_id(uid, "x"), TraceId::INVALID);
        // Known FNV-1a 64 vector: "a" -> 0xaf63dc4c8601ec8c.
        assert_eq!(fnv64(&["a"]), 0xaf63dc4c8601ec8c);
    }
}
