//! Deterministic trace and span ids.
//!
//! A trace id is the 128-bit FNV-1a hash of `"<pod uid>/<kind>/<view>"`
//! (`termination` or `startup`; `view` is the audit's first record time in
//! ns), a span id the 64-bit FNV-1a hash of the same plus the container.
//! The same audit exported twice (a re-export of a recording, a retried
//! batch) therefore carries the same ids, and a backend sees a duplicate
//! rather than a second story; two agents' views of one termination (one
//! stopped during it, its successor recovered the rest) are two traces,
//! each marked partial.
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
pub fn trace_id(pod_uid: &str, kind: &str, view: i64) -> TraceId {
    // All-zero ids are invalid; FNV of a non-empty input is never zero in
    // practice, but keep the guarantee.
    TraceId::from(fnv128(&[pod_uid, kind, &view.to_string()]).max(1))
}

/// A span of that trace: the root (`container` = `None`) or a container's.
pub fn span_id(pod_uid: &str, kind: &str, view: i64, container: Option<&str>) -> SpanId {
    let view = view.to_string();
    let h = match container {
        None => fnv64(&[pod_uid, kind, &view]),
        Some(c) => fnv64(&[pod_uid, kind, &view, "container", c]),
    };
    SpanId::from(h.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_distinct_and_valid() {
        let uid = "f71ebb1c-3601-487e-8a47-e14e5e5bf86e";
        assert_eq!(
            trace_id(uid, "termination", 7),
            trace_id(uid, "termination", 7)
        );
        assert_ne!(trace_id(uid, "termination", 7), trace_id(uid, "startup", 7));
        assert_ne!(trace_id(uid, "startup", 7), trace_id("other", "startup", 7));
        let root = span_id(uid, "termination", 7, None);
        let app = span_id(uid, "termination", 7, Some("app"));
        assert_ne!(root, app);
        assert_ne!(app, span_id(uid, "startup", 7, Some("app")));
        assert_ne!(root, SpanId::INVALID);
        assert_ne!(trace_id(uid, "x", 7), TraceId::INVALID);
        // Another agent's view of the same pod is another trace.
        assert_ne!(
            trace_id(uid, "termination", 7),
            trace_id(uid, "termination", 8)
        );
        // Known FNV-1a 64 vector: "a" -> 0xaf63dc4c8601ec8c.
        assert_eq!(fnv64(&["a"]), 0xaf63dc4c8601ec8c);
    }
}
