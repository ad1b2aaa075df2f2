//! Measuring a termination: trigger, t0, G, deadline, and per container the
//! preStop, stop signal, SIGKILL, exit and grace used.

use lifecycle_recording::{
    pods::spec::{DEFAULT_GRACE_PERIOD_S, HookFacts},
    time::NS_PER_S,
};

use super::{
    ApiExit, ApiOrder, ContainerTermination, ExitMark, ExitPair, GraceChange, PreStop,
    SenderParent, SignalMark, StateAtStart, StopOrder, TerminationAudit, Trigger,
};
use crate::{
    config::AuditConfig,
    fmt::to_s,
    timeline::{At, ContainerTimeline, PodTimeline, SenderClass, SignalObs},
};

/// Signal number of SIGKILL.
pub const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;

/// The trigger and where kill activity may start (ns).
fn trigger(tl: &PodTimeline) -> Option<(Trigger, i64)> {
    let completed = job_completion(tl);
    if let Some(first) = tl.deletions.first() {
        // A Job pod deleted after it completed: the completion started it.
        if let Some(done) = completed.filter(|d| d.ns < first.request_s * NS_PER_S) {
            return Some((Trigger::JobCompletion { at: done }, done.ns));
        }
        // The request lies in [request_s, request_s + 1) on the API
        // server's clock; allow one more second of difference from the
        // node's. The kubelet learns of the delete through a watch, as the
        // agent does, so when the API's clock runs further ahead the window
        // opens a second before the agent saw the request instead: the
        // kernel's evidence is never cut off by the API's clock.
        let window = ((first.request_s - 1) * NS_PER_S).min(first.at.ns - NS_PER_S);
        return Some((
            Trigger::Deletion {
                request_s: first.request_s,
                deletion_timestamp_s: first.deletion_timestamp_s,
                observed: first.at,
            },
            window,
        ));
    }
    if let Some(done) = completed {
        return Some((Trigger::JobCompletion { at: done }, done.ns));
    }
    // The first runtime stop from which the whole pod went down.
    let first = tl.signals.iter().find(|s| {
        s.sender == SenderClass::Runtime
            && tl.is_pid1(s.target_pid, s.target_start_ns)
            && whole_pod_stopped(tl, s.at.ns)
    })?;
    Some((
        Trigger::Unknown {
            first_activity: first.at,
        },
        first.at.ns,
    ))
}

/// Kill activity this close after t0 counts as the same instant when
/// naming t0's cause.
pub const SAME_INSTANT_NS: i64 = 1_000_000;

/// How far the API server's clock may differ from the node's before the
/// audit reports it: the request's whole second, and as long again for the
/// watch to deliver it.
pub const API_CLOCK_REPORTED_NS: i64 = 3 * NS_PER_S / 2;

/// The API server's clock minus the node's, in seconds, measured on the
/// delete request: its whole-second time on the API's clock (taken at the
/// middle of that second) against the agent's observation of it on the
/// node's. Positive: the API is ahead. `None` within
/// [`API_CLOCK_REPORTED_NS`], where truncation and watch delay explain it.
fn api_clock_offset(request_s: i64, observed_ns: i64) -> Option<f64> {
    let offset_ns = request_s * NS_PER_S + NS_PER_S / 2 - observed_ns;
    (offset_ns.abs() > API_CLOCK_REPORTED_NS).then(|| to_s(offset_ns))
}

/// Whether every container running at `from` was stopped from then on and
/// none started again: a pod-wide stop (an eviction, or a delete the agent
/// did not see), not a probe killing one container for a restart.
fn whole_pod_stopped(tl: &PodTimeline, from: i64) -> bool {
    let running: Vec<&ContainerTimeline> =
        tl.containers.iter().filter(|c| c.alive_at(from)).collect();
    !running.is_empty()
        && running.iter().all(|c| {
            let signalled = tl.signals.iter().any(|s| {
                s.container == c.name
                    && s.at.ns >= from
                    && s.sender == SenderClass::Runtime
                    && tl.is_pid1(s.target_pid, s.target_start_ns)
            });
            let restarted = c.instances.iter().any(|i| i.began().ns > from);
            signalled && !restarted
        })
}

/// When a run-to-completion pod's main containers had all exited.
fn job_completion(tl: &PodTimeline) -> Option<At> {
    let spec = tl.spec.as_ref()?;
    let job_like =
        spec.owner.as_ref().is_some_and(|o| o.is_job()) || &*spec.restart_policy != "Always";
    if !job_like {
        return None;
    }
    let mains: Vec<&ContainerTimeline> = tl
        .containers
        .iter()
        .filter(|c| c.is_main() && !c.is_sidecar())
        .collect();
    if mains.is_empty() {
        return None;
    }
    mains
        .iter()
        .map(|c| c.instances.last().and_then(|i| i.exit).map(|e| e.at))
        .collect::<Option<Vec<At>>>()?
        .into_iter()
        .max()
}

/// The stop signals a container honours.
pub(crate) fn stop_signals(c: &ContainerTimeline) -> Vec<i32> {
    let declared = c
        .spec
        .as_ref()
        .and_then(|s| s.stop_signal.as_deref())
        .and_then(signal_number);
    match declared {
        Some(sig) => vec![sig],
        None => vec![SIGTERM, 2, 3],
    }
}

/// `SIGUSR1` (or `USR1`) -> 10.
fn signal_number(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    (1..=31).find(|n| lifecycle_recording::event::names::signal_name(*n) == full)
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The preStop of `c`, looking at runtime execs from `window`.
fn prestop(c: &ContainerTimeline, window: i64) -> PreStop {
    let Some(spec) = &c.spec else {
        return PreStop::Unknown;
    };
    match &spec.pre_stop {
        None => PreStop::None,
        Some(HookFacts::Exec { command }) => {
            let program = command.split_whitespace().next().map(basename);
            let hook = c.hooks.iter().find(|h| {
                h.exec.ns >= window
                    && program.is_none_or(|p| p.is_empty() || basename(&h.filename) == p)
            });
            match hook {
                Some(h) => PreStop::Exec {
                    start: h.exec,
                    end: h.exit.map(|x| x.at),
                    exit_code: h.exit.map(|x| x.code),
                    filename: h.filename.clone(),
                },
                None => PreStop::ExecNotSeen {
                    command: command.to_string(),
                },
            }
        }
        Some(HookFacts::Sleep { seconds }) => PreStop::NotObservable {
            action: format!("sleep {seconds}s"),
        },
        Some(HookFacts::HttpGet { .. }) => PreStop::NotObservable {
            action: "httpGet".into(),
        },
        Some(other) => PreStop::NotObservable {
            action: format!("{other:?}"),
        },
    }
}

fn mark(s: &SignalObs) -> SignalMark {
    SignalMark {
        at: s.at,
        signal: s.signal,
        name: s.name.clone(),
        sender: s.sender,
        sender_comm: s.sender_comm.clone(),
        sender_pid: s.sender_pid,
        sender_parent: (s.sender_parent_pid != 0 || !s.sender_parent_comm.is_empty()).then(|| {
            SenderParent {
                comm: s.sender_parent_comm.clone(),
                pid: s.sender_parent_pid,
            }
        }),
        result: s.result.clone(),
        handler: s.handler.clone(),
        target_action: s.target_action.clone(),
        target_ns_init: s.target_ns_init,
    }
}

/// Signals to the PID 1 of any run of `c` from `window`, not from the
/// kernel.
fn pid1_signals<'t>(
    tl: &'t PodTimeline,
    c: &ContainerTimeline,
    window: i64,
) -> impl Iterator<Item = &'t SignalObs> + 't {
    let name = c.name.clone();
    tl.signals.iter().filter(move |s| {
        s.container == name
            && s.at.ns >= window
            && s.sender != SenderClass::Kernel
            && tl.is_pid1(s.target_pid, s.target_start_ns)
    })
}

/// Measures the termination of the pod, if it has one.
pub fn measure(tl: &PodTimeline, config: &AuditConfig) -> Option<TerminationAudit> {
    let (trigger, window) = trigger(tl)?;
    let ordered = config.kubelet.orders_sidecar_termination()
        && tl
            .containers
            .iter()
            .any(ContainerTimeline::is_native_sidecar);
    let order = if ordered {
        StopOrder::NativeOrdered
    } else {
        StopOrder::Parallel
    };

    // The run each container had when the window opened: alive then, or
    // ending right then (a Job's main container whose exit is the
    // completion that opens the window), or its first one after, for
    // containers that had not started yet.
    let runs: Vec<Option<usize>> = tl
        .containers
        .iter()
        .map(|c| {
            c.instance_at(window)
                .map(|(i, _)| i)
                .or_else(|| {
                    c.instances
                        .iter()
                        .rposition(|i| i.exit.is_some_and(|x| x.at.ns == window))
                })
                .or_else(|| c.instances.iter().position(|i| i.began().ns >= window))
        })
        .collect();
    let mut starts: Vec<(At, String)> = Vec::new();
    for c in &tl.containers {
        if let PreStop::Exec { start, .. } = prestop(c, window) {
            starts.push((start, format!("preStop of {}", c.name)));
        }
        let wanted = stop_signals(c);
        if let Some(s) =
            pid1_signals(tl, c, window).find(|s| wanted.contains(&s.signal) || s.signal == SIGKILL)
        {
            starts.push((s.at, format!("{} to {}", s.name, c.name)));
        }
    }
    // t0 is the earliest; its cause is the first container, in the pod's
    // order, whose activity came within SAME_INSTANT_NS of it: parallel
    // stop signals microseconds apart have no order two clock samples (or
    // two agents) agree on.
    let t0 = starts.iter().map(|(at, _)| *at).min();
    let first = t0.and_then(|t0| {
        starts
            .iter()
            .find(|(at, _)| at.ns - t0.ns < SAME_INSTANT_NS)
            .map(|(_, cause)| (t0, cause.clone()))
    });

    let spec_grace = tl.spec.as_ref().map(|s| s.termination_grace_period_s);
    let grace_changes: Vec<GraceChange> = tl
        .deletions
        .iter()
        .filter_map(|d| {
            d.grace_s.map(|g| GraceChange {
                at: d.at,
                grace_s: g,
            })
        })
        .collect();
    let (grace_s, grace_source) = match (grace_changes.iter().map(|g| g.grace_s).min(), spec_grace)
    {
        (Some(g), _) if matches!(trigger, Trigger::Deletion { .. }) => (g, "deletion"),
        (_, Some(g)) => (g, "spec"),
        _ => (DEFAULT_GRACE_PERIOD_S, "default"),
    };
    // The kubelet starts at the request; hooks the kernel cannot see (sleep,
    // httpGet) may put the first visible activity later. The agent saw the
    // request about when the kubelet did.
    let kubelet_start = t0.map(|t0| match trigger {
        Trigger::Deletion { observed, .. } => t0.ns.min(observed.ns),
        _ => t0.ns,
    });
    let first_grace = match trigger {
        Trigger::Deletion { .. } => grace_changes.first().map_or(grace_s, |g| g.grace_s),
        _ => grace_s,
    };
    let mut deadline = kubelet_start.map(|start| {
        let shortened = grace_changes
            .iter()
            .skip(1)
            .map(|g| g.at.ns.max(start) + g.grace_s * NS_PER_S);
        shortened.fold(start + first_grace * NS_PER_S, i64::min)
    });

    let mut containers = Vec::new();
    for (ci, c) in tl.containers.iter().enumerate() {
        let reference = t0.map_or(window, |t| t.ns);
        let run = runs[ci].map(|ri| &c.instances[ri]);
        let state_at_start = match run {
            Some(r) if r.alive_at(reference) => StateAtStart::Running,
            _ if c
                .instances
                .iter()
                .any(|i| i.exit.is_some_and(|x| x.at.ns <= reference)) =>
            {
                StateAtStart::Exited
            }
            _ if c.instances.is_empty() && c.api.runs.is_empty() => StateAtStart::NeverStarted,
            Some(_) => StateAtStart::Running,
            None => StateAtStart::Unknown,
        };
        let wanted = stop_signals(c);
        let mut stops = pid1_signals(tl, c, window).filter(|s| wanted.contains(&s.signal));
        let stop_signal = stops.next().map(mark);
        let repeated_stop_signals = stops.map(mark).collect();
        let sigkill = pid1_signals(tl, c, window)
            .find(|s| s.signal == SIGKILL)
            .map(mark);
        let exit = run
            .and_then(|r| r.exit)
            .filter(|x| state_at_start != StateAtStart::Exited || x.at.ns >= window)
            .map(|x| ExitMark {
                at: x.at,
                code: x.code,
                killed_by: x.killed_by,
            });
        let api_exit = c
            .api
            .terminations
            .iter()
            .find(|t| t.at.ns >= window)
            .map(|t| ApiExit {
                finished_at_s: t.finished_at_s,
                exit_code: t.exit_code,
                reason: t.reason.clone(),
                seq: t.at.seq,
            });
        let grace_used = grace_used(kubelet_start, deadline, exit);
        let restarts = match t0 {
            Some(t0) => c
                .instances
                .iter()
                .filter_map(|i| i.exec)
                .filter(|e| e.ns > t0.ns)
                .collect(),
            None => Vec::new(),
        };
        containers.push(ContainerTermination {
            container: c.name.clone(),
            kind: c.kind,
            role: c.role,
            main: c.is_main(),
            state_at_start,
            prestop: prestop(c, window),
            stop_signal,
            repeated_stop_signals,
            sigkill,
            exit,
            api_exit,
            grace_used,
            restarts,
        });
    }

    // A kubelet restarted during the termination retries it with the full
    // grace: the deadline counts from its retry.
    let kubelet_restart = match (kubelet_start, deadline) {
        (Some(start), Some(d)) => {
            super::restart::find(tl, start, d, config.kubelet_slack_ns, &containers)
        }
        _ => None,
    };
    if let Some(restart) = &kubelet_restart {
        deadline = Some(restart.retry_ns() + first_grace * NS_PER_S);
        for c in &mut containers {
            c.grace_used = grace_used(kubelet_start, deadline, c.exit);
        }
    }
    let mut exit_order: Vec<(At, String)> = containers
        .iter()
        .filter_map(|c| c.exit.map(|x| (x.at, c.container.clone())))
        .collect();
    exit_order.sort();
    let t0_after_request_s = match (trigger, t0) {
        (Trigger::Deletion { request_s, .. }, Some(t0)) => Some((
            to_s(t0.ns - (request_s + 1) * NS_PER_S),
            to_s(t0.ns - request_s * NS_PER_S),
        )),
        _ => None,
    };
    let api_clock_offset_s = match trigger {
        Trigger::Deletion {
            request_s,
            observed,
            ..
        } => api_clock_offset(request_s, observed.ns),
        _ => None,
    };
    Some(TerminationAudit {
        trigger,
        order,
        grace_s,
        grace_source: grace_source.to_owned(),
        grace_changes,
        t0,
        t0_cause: first.map(|(_, cause)| cause),
        t0_after_request_s,
        api_clock_offset_s,
        kubelet_start,
        deadline,
        kubelet_restart,
        exit_pairs: exit_pairs(&containers),
        exit_order: exit_order.into_iter().map(|(_, n)| n).collect(),
        containers,
    })
}

/// (exit − kubelet start) / (deadline − kubelet start); `None` without
/// all three, or for an exit before the start.
fn grace_used(start: Option<i64>, deadline: Option<i64>, exit: Option<ExitMark>) -> Option<f64> {
    match (start, deadline, exit) {
        (Some(start), Some(d), Some(x)) if d > start && x.at.ns >= start => {
            Some(to_s(x.at.ns - start) / to_s(d - start))
        }
        _ => None,
    }
}

/// Every (sidecar, main) pair that both ended: kernel gap and API view.
fn exit_pairs(containers: &[ContainerTermination]) -> Vec<ExitPair> {
    let ended = |c: &&ContainerTermination| c.exit.is_some() || c.api_exit.is_some();
    let sidecars = containers
        .iter()
        .filter(|c| c.kind.is_some_and(|k| k.is_sidecar()))
        .filter(ended);
    let mut out = Vec::new();
    for s in sidecars {
        for m in containers
            .iter()
            .filter(|c| c.main && !c.kind.is_some_and(|k| k.is_sidecar()))
            .filter(ended)
        {
            let kernel_gap_s = match (s.exit, m.exit) {
                (Some(a), Some(b)) => Some(to_s(a.at.ns - b.at.ns)),
                _ => None,
            };
            let api_s =
                |c: &ContainerTermination| c.api_exit.as_ref().and_then(|a| a.finished_at_s);
            let api = match (api_s(s), api_s(m), kernel_gap_s) {
                (Some(a), Some(b), _) if a == b => ApiOrder::SameSecond,
                (Some(a), Some(b), Some(gap)) if (a < b) == (gap < 0.0) => ApiOrder::Agrees,
                (Some(_), Some(_), Some(_)) => ApiOrder::Disagrees,
                (Some(_), Some(_), None) => ApiOrder::Agrees,
                _ => ApiOrder::Missing,
            };
            out.push(ExitPair {
                sidecar: s.container.clone(),
                main: m.container.clone(),
                kernel_gap_s,
                api,
            });
        }
    }
    out
}
