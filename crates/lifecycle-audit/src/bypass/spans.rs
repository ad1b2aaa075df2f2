//! Time intervals with the records at their edges: union and difference.

use serde::{Deserialize, Serialize};

/// One end of an interval: an instant and the record that marks it (none
/// when the interval runs past the recording's start or end).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Wall-clock ns since the Unix epoch.
    pub ns: i64,
    /// `seq` of the record at this edge; `None` past the recording's start or
    /// end.
    pub seq: Option<u64>,
}

/// A half-open interval `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Inclusive start.
    pub start: Edge,
    /// Exclusive end.
    pub end: Edge,
}

impl Span {
    /// Length in ns.
    pub fn len_ns(&self) -> i64 {
        self.end.ns - self.start.ns
    }

    /// Whether `ns` lies in `[start, end)`.
    pub fn contains(&self, ns: i64) -> bool {
        self.start.ns <= ns && ns < self.end.ns
    }
}

/// Sorted, non-overlapping union of `spans` (empty ones dropped).
pub fn union(mut spans: Vec<Span>) -> Vec<Span> {
    spans.retain(|s| s.len_ns() > 0);
    spans.sort_by_key(|s| (s.start.ns, s.end.ns));
    let mut out: Vec<Span> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start.ns <= last.end.ns => {
                if s.end.ns > last.end.ns {
                    last.end = s.end;
                }
            }
            _ => out.push(s),
        }
    }
    out
}

/// `a` minus `b`; both sorted and non-overlapping (as from [`union`]).
pub fn subtract(a: &[Span], b: &[Span]) -> Vec<Span> {
    let mut out = Vec::new();
    for s in a {
        let mut rest = Some(*s);
        for cut in b {
            let Some(r) = rest else { break };
            if cut.end.ns <= r.start.ns || cut.start.ns >= r.end.ns {
                continue;
            }
            if cut.start.ns > r.start.ns {
                out.push(Span {
                    start: r.start,
                    end: cut.start,
                });
            }
            rest = (cut.end.ns < r.end.ns).then_some(Span {
                start: cut.end,
                end: r.end,
            });
        }
        if let Some(r) = rest
            && r.len_ns() > 0
        {
            out.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(a: i64, b: i64) -> Span {
        Span {
            start: Edge {
                ns: a,
                seq: Some(a as u64),
            },
            end: Edge {
                ns: b,
                seq: Some(b as u64),
            },
        }
    }

    fn ends(spans: &[Span]) -> Vec<(i64, i64)> {
        spans.iter().map(|s| (s.start.ns, s.end.ns)).collect()
    }

    #[test]
    fn union_merges_overlaps_and_drops_empty() {
        let u = union(vec![span(5, 9), span(0, 3), span(2, 4), span(7, 7)]);
        assert_eq!(ends(&u), vec![(0, 4), (5, 9)]);
    }

    #[test]
    fn subtract_cuts_holes_and_keeps_edges() {
        let a = union(vec![span(0, 10), span(20, 30)]);
        let b = union(vec![span(2, 4), span(8, 22), span(25, 40)]);
        let d = subtract(&a, &b);
        assert_eq!(ends(&d), vec![(0, 2), (4, 8), (22, 25)]);
        assert_eq!(d[1].start.seq, Some(4), "edges keep their records");
        assert!(subtract(&a, &union(vec![span(-5, 50)])).is_empty());
        assert_eq!(ends(&subtract(&a, &[])), vec![(0, 10), (20, 30)]);
    }
}
