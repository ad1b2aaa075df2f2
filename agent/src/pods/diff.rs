//! Turning two status snapshots into the transitions between them.
//!
//! The API only ever shows the latest state, and the agent may miss
//! intermediate updates (a restart between two status writes, a watch gap).
//! What can be recovered is recovered: a restart whose termination was never
//! seen is reported from `lastState.terminated` before the new run.

use crate::pods::status::{
    ConditionSnapshot, ConditionTransition, ContainerChange, ContainerSnapshot,
    ContainerTransition, StateSnapshot, TerminatedFacts,
};
use crate::pods::time::{ApiTimeSource, Stamp};

/// Context shared by all changes found in one API update.
#[derive(Clone, Copy, Debug)]
pub struct UpdateTime {
    /// Agent wall clock when the update was processed, ns.
    pub observed_ns: i64,
    /// Time of the last status write (managedFields), Unix seconds.
    pub status_written_s: Option<i64>,
}

impl UpdateTime {
    fn stamp(&self, api_s: Option<i64>, source: ApiTimeSource) -> Stamp {
        Stamp::with_api(self.observed_ns, api_s, source)
    }

    fn status_stamp(&self) -> Stamp {
        self.stamp(self.status_written_s, ApiTimeSource::StatusUpdate)
    }
}

fn terminated_change(
    facts: &TerminatedFacts,
    restart_count: i32,
    t: UpdateTime,
) -> ContainerTransition {
    ContainerTransition {
        at: t.stamp(facts.finished_at_s, ApiTimeSource::FinishedAt),
        change: ContainerChange::Terminated {
            facts: Box::new(facts.clone()),
            restart_count,
        },
    }
}

/// Whether `old` already showed the run that `facts` describes as finished.
fn termination_already_seen(old: &ContainerSnapshot, facts: &TerminatedFacts) -> bool {
    matches!(&old.state, StateSnapshot::Terminated(seen)
        if seen.container_id == facts.container_id && seen.finished_at_s == facts.finished_at_s)
}

/// The transitions from `old` (none for a container seen for the first
/// time) to `new`, in the order they happened.
pub fn container_changes(
    old: Option<&ContainerSnapshot>,
    new: &ContainerSnapshot,
    t: UpdateTime,
) -> Vec<ContainerTransition> {
    let mut out = Vec::new();

    // A restart we did not see end: report the end from lastState first.
    if let (Some(old), Some(last)) = (old, &new.last_terminated)
        && new.restart_count > old.restart_count
        && !termination_already_seen(old, last)
    {
        out.push(terminated_change(last, new.restart_count - 1, t));
    }

    let same_state =
        old.is_some_and(|o| o.state == new.state && o.container_id == new.container_id);
    if !same_state {
        match &new.state {
            StateSnapshot::Waiting { reason } => {
                let was_same_wait = old.is_some_and(|o| {
                    matches!(&o.state,
                    StateSnapshot::Waiting { reason: r } if r == reason)
                });
                if !was_same_wait {
                    out.push(ContainerTransition {
                        at: t.status_stamp(),
                        change: ContainerChange::Waiting {
                            reason: reason.clone(),
                        },
                    });
                }
            }
            StateSnapshot::Running { started_at_s } => out.push(ContainerTransition {
                at: t.stamp(*started_at_s, ApiTimeSource::StartedAt),
                change: ContainerChange::Running {
                    container_id: new.container_id.clone(),
                    restart_count: new.restart_count,
                },
            }),
            StateSnapshot::Terminated(facts) => {
                if !old.is_some_and(|o| termination_already_seen(o, facts)) {
                    out.push(terminated_change(facts, new.restart_count, t));
                }
            }
            StateSnapshot::Unknown => {}
        }
    }

    let (was_started, was_ready) = old.map_or((false, false), |o| (o.started, o.ready));
    if new.started != was_started {
        out.push(ContainerTransition {
            at: t.status_stamp(),
            change: ContainerChange::Started {
                started: new.started,
            },
        });
    }
    if new.ready != was_ready {
        out.push(ContainerTransition {
            at: t.status_stamp(),
            change: ContainerChange::Ready { ready: new.ready },
        });
    }
    out
}

/// Conditions that are new or whose status changed.
pub fn condition_changes(
    old: &[ConditionSnapshot],
    new: &[ConditionSnapshot],
    t: UpdateTime,
) -> Vec<ConditionTransition> {
    new.iter()
        .filter(|c| !old.iter().any(|o| o.kind == c.kind && o.status == c.status))
        .map(|c| ConditionTransition {
            at: t.stamp(c.last_transition_s, ApiTimeSource::LastTransitionTime),
            condition: c.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::ids::ContainerId;

    const T: UpdateTime = UpdateTime {
        observed_ns: 1_000,
        status_written_s: Some(50),
    };

    fn id(s: &str) -> Option<ContainerId> {
        ContainerId::parse(&format!("containerd://{s}"))
    }

    fn running(cid: &str, at: i64, restarts: i32) -> ContainerSnapshot {
        ContainerSnapshot {
            container_id: id(cid),
            state: StateSnapshot::Running {
                started_at_s: Some(at),
            },
            last_terminated: None,
            started: false,
            ready: false,
            restart_count: restarts,
        }
    }

    fn ended(cid: &str, code: i32, at: i64) -> TerminatedFacts {
        TerminatedFacts {
            exit_code: code,
            signal: None,
            reason: Some("Error".into()),
            started_at_s: Some(at - 5),
            finished_at_s: Some(at),
            container_id: id(cid),
        }
    }

    fn kinds(changes: &[ContainerTransition]) -> Vec<&'static str> {
        changes
            .iter()
            .map(|c| match c.change {
                ContainerChange::Waiting { .. } => "waiting",
                ContainerChange::Running { .. } => "running",
                ContainerChange::Terminated { .. } => "terminated",
                ContainerChange::Started { .. } => "started",
                ContainerChange::Ready { .. } => "ready",
            })
            .collect()
    }

    #[test]
    fn first_sight_reports_state_and_flags() {
        let mut snap = running("a", 10, 0);
        snap.started = true;
        snap.ready = true;
        let changes = container_changes(None, &snap, T);
        assert_eq!(kinds(&changes), vec!["running", "started", "ready"]);
        assert_eq!(changes[0].at.api_time_s, Some(10));
        assert_eq!(
            changes[0].at.api_time_source,
            Some(ApiTimeSource::StartedAt)
        );
        assert_eq!(
            changes[1].at.api_time_source,
            Some(ApiTimeSource::StatusUpdate)
        );
    }

    #[test]
    fn unchanged_status_yields_nothing() {
        let snap = running("a", 10, 0);
        assert!(container_changes(Some(&snap), &snap.clone(), T).is_empty());
    }

    #[test]
    fn missed_termination_is_recovered_from_last_state() {
        let mut old = running("a", 10, 0);
        old.ready = true;
        let mut new = running("b", 20, 1);
        new.last_terminated = Some(Box::new(ended("a", 137, 19)));
        let changes = container_changes(Some(&old), &new, T);
        assert_eq!(kinds(&changes), vec!["terminated", "running", "ready"]);
        assert_eq!(changes[0].at.api_time_s, Some(19));
        assert!(
            matches!(&changes[0].change, ContainerChange::Terminated { facts, restart_count: 0 } if facts.exit_code == 137)
        );
    }

    #[test]
    fn seen_termination_is_not_repeated_on_restart() {
        let facts = ended("a", 1, 19);
        let old = ContainerSnapshot {
            state: StateSnapshot::Terminated(Box::new(facts.clone())),
            ..running("a", 10, 0)
        };
        let mut new = running("b", 20, 1);
        new.last_terminated = Some(Box::new(facts));
        assert_eq!(
            kinds(&container_changes(Some(&old), &new, T)),
            vec!["running"]
        );
    }

    #[test]
    fn conditions_report_only_status_changes() {
        let c = |kind: &str, status: &str, at: i64| ConditionSnapshot {
            kind: kind.into(),
            status: status.into(),
            reason: None,
            last_transition_s: Some(at),
        };
        let old = vec![c("Ready", "False", 1), c("Initialized", "True", 1)];
        let new = vec![
            c("Ready", "True", 9),
            c("Initialized", "True", 1),
            c("ContainersReady", "True", 9),
        ];
        let changes = condition_changes(&old, &new, T);
        let kinds: Vec<_> = changes.iter().map(|c| &*c.condition.kind).collect();
        assert_eq!(kinds, vec!["Ready", "ContainersReady"]);
        assert_eq!(changes[0].at.api_time_s, Some(9));
    }
}
