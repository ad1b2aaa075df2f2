//! D1: local dependencies. Containers of a pod reach each other over
//! loopback: the app sends its logs to Fluent Bit's forward input
//! (127.0.0.1:24224), its queries to cloud-sql-proxy (127.0.0.1:5432);
//! Envoy forwards inbound requests to the app's port on the pod's own IP. A connection refused
//! on such a port after the container that listened there stopped
//! listening is blamed on that container, never on the one that connected
//! and never on the mesh. During a termination that is the dependency gone
//! while the app drained (legacy sidecars stopped in parallel), or a native
//! sidecar lost (crashed, or ended by its own preStop) and, before kubelet
//! 1.37, not restarted.
//!
//! A sidecar refused on the app's port before the app first listened
//! there (or on a port the app declares and never opened) is the app not
//! accepting (istio/istio#43596); other refusals before a listener first
//! opened are startup races (S2/S4), not judged here. Refusals at a mesh's
//! capture port are M4's.

use std::collections::BTreeMap;

use lifecycle_recording::pods::SidecarRole;

use crate::{
    config::AuditConfig,
    finding::{Draft, FindingKind, Judgement, Outcome, RuleId, Severity},
    fmt::offset,
    termination::TerminationAudit,
    timeline::{At, ContainerTimeline, ListenPeriod, PodTimeline, socket::is_loopback},
};

/// The owner's listener a connection expected.
enum Listener {
    /// One opened before the connection; `end` when it closed.
    Opened { end: Option<At> },
    /// One the app opened only later (`opened`), or never (a declared port).
    Awaited { opened: Option<At> },
}

/// Where the owner's listener was when the connections were refused.
#[derive(Clone, Copy)]
enum Missing {
    /// It had closed, at this time.
    Closed(At),
    /// It had not opened yet: it opened at this time, or never (a port
    /// the owner's spec declares).
    NotYet(Option<At>),
}

/// Refused connections from one container to one missing listener.
struct Refusals<'t> {
    from: &'t ContainerTimeline,
    owner: &'t ContainerTimeline,
    port: u16,
    missing: Missing,
    /// The refused connections (their failure records).
    at: Vec<At>,
    /// The addresses they went to (loopback, the pod's own IP).
    addrs: std::collections::BTreeSet<String>,
}

/// Judges D1 over every connection a container of the pod made to a port
/// another container of the pod listened on.
pub fn judge(
    tl: &PodTimeline,
    termination: Option<&TerminationAudit>,
    config: &AuditConfig,
) -> Judgement {
    let mut j = Judgement::default();
    let t0 = termination.and_then(|t| t.t0);
    let mut checked = 0;
    // (from, owner, port, during termination, not yet open) -> refusals.
    let mut groups: BTreeMap<(usize, usize, u16, bool, bool), Refusals<'_>> = BTreeMap::new();
    for (fi, from) in tl.containers.iter().enumerate() {
        for c in &from.sockets.connections {
            // Loopback, or the pod's own address (the connecting socket's
            // local one: Envoy forwards inbound requests to the pod IP).
            let own_ip = !c.local_addr.is_empty() && c.local_addr == c.remote_addr;
            if !is_loopback(&c.remote_addr) && !own_ip {
                continue;
            }
            // The listener the connection should have found: the last one
            // opened before it (its end, if it closed), or for a sidecar one
            // the app was still to open.
            let (oi, owner, listener) = match last_listener(tl, fi, c.remote_port, c.first()) {
                Some((oi, owner, listen)) => (oi, owner, Listener::Opened { end: listen.end }),
                None if from.is_sidecar() => {
                    match awaited_listener(tl, fi, c.remote_port, c.first()) {
                        Some((oi, owner, opened)) => (oi, owner, Listener::Awaited { opened }),
                        None => continue,
                    }
                }
                None => continue,
            };
            checked += 1;
            let (Some(failed), Some("ECONNREFUSED")) = (c.failed, c.error.as_deref()) else {
                continue;
            };
            let missing = match listener {
                Listener::Opened { end } => match end.filter(|end| end.ns <= failed.ns) {
                    Some(closed) => Missing::Closed(closed),
                    None => continue,
                },
                Listener::Awaited { opened } => Missing::NotYet(opened),
            };
            if listening_at(tl, c.remote_port, failed.ns) {
                continue;
            }
            let terminating = t0.is_some_and(|t0| failed.ns >= t0.ns);
            let not_yet = matches!(missing, Missing::NotYet(_));
            let group = groups
                .entry((fi, oi, c.remote_port, terminating, not_yet))
                .or_insert_with(|| Refusals {
                    from,
                    owner,
                    port: c.remote_port,
                    missing,
                    at: Vec::new(),
                    addrs: Default::default(),
                });
            group.at.push(failed);
            group.addrs.insert(c.remote_addr.clone());
        }
    }
    let mut violated = false;
    for ((_, _, _, terminating, _), r) in &groups {
        let draft = blame(r, *terminating, t0, termination, config);
        violated |= matches!(
            draft.kind,
            FindingKind::SidecarGoneBeforeApp | FindingKind::SidecarLostDuringTermination
        );
        j.finding(draft);
    }
    let outcome = match (violated, j.findings.is_empty(), checked) {
        (true, _, _) => Outcome::Violated,
        (false, _, 0) => Outcome::NotApplicable,
        (false, _, _) => Outcome::Held,
    };
    j.verdict(
        RuleId::D1,
        outcome,
        format!(
            "{checked} loopback connection(s) to another container's listener; {} refused after it closed",
            groups.values().map(|r| r.at.len()).sum::<usize>()
        ),
    );
    j
}

/// The finding for one group of refusals.
fn blame(
    r: &Refusals<'_>,
    terminating: bool,
    t0: Option<At>,
    termination: Option<&TerminationAudit>,
    config: &AuditConfig,
) -> Draft {
    let (from, owner, n) = (&r.from.name, &r.owner.name, r.at.len());
    let when = |at: At| match t0 {
        Some(t0) => format!("t0{}", offset(at.ns - t0.ns)),
        None => at.ns.to_string(),
    };
    let to = match r.addrs.iter().collect::<Vec<_>>().as_slice() {
        [one] => format!("{one}:{}", r.port),
        _ => format!("port {} (loopback and the pod's IP)", r.port),
    };
    let refused = format!(
        "{n} connection(s) from {from} to {to} refused (first at {}, last at {})",
        when(r.at[0]),
        when(r.at[n - 1])
    );
    let closed = match r.missing {
        Missing::Closed(closed) => closed,
        Missing::NotYet(opened) => {
            let since = match opened {
                Some(at) => format!("it listened there only from {}", when(at)),
                None => format!(
                    "it declares containerPort {} and never listened on it",
                    r.port
                ),
            };
            let message = format!(
                "{owner} was not accepting on {} ({since}); {refused}: the app not accepting, not {from} or the mesh (D1)",
                r.port
            );
            let mut evidence: Vec<Option<u64>> = vec![opened.map(|a| a.seq)];
            evidence.extend(r.at.iter().take(8).map(|a| Some(a.seq)));
            return Draft::new(
                RuleId::D1,
                FindingKind::AppNotAccepting,
                Severity::Warning,
                Some(owner),
                message,
            )
            .with_evidence(evidence);
        }
    };
    let app_to_sidecar = r.owner.is_sidecar() && r.from.is_main() && !r.from.is_sidecar();
    let stopped_by_signal = termination
        .and_then(|t| t.container(owner))
        .and_then(|c| c.stop_signal.as_ref())
        .is_some_and(|s| s.at.ns <= closed.ns);
    // The same container listening again later: a crash and a restart.
    let reopened = r
        .owner
        .sockets
        .listens
        .iter()
        .filter_map(|l| l.start.filter(|s| l.port == r.port && s.ns > closed.ns))
        .min_by_key(|s| s.ns);
    let (kind, message) = if let (true, true, Some(again)) = (
        terminating && app_to_sidecar && !stopped_by_signal && r.owner.is_native_sidecar(),
        config.kubelet.allows_restart_during_termination(),
        reopened,
    ) {
        (
            FindingKind::LocalListenerGone,
            format!(
                "sidecar {owner} did not listen on {} for {} during termination: it stopped without a stop signal at {} and a 1.37+ kubelet restarted it (KEP-4438); {refused} (D1)",
                r.port,
                crate::fmt::secs(again.ns - closed.ns),
                when(closed)
            ),
        )
    } else if terminating && app_to_sidecar && !stopped_by_signal && r.owner.is_native_sidecar() {
        let restart = if config.kubelet.allows_restart_during_termination() {
            "a 1.37+ kubelet restarts it"
        } else {
            "not restarted before kubelet 1.37"
        };
        (
            FindingKind::SidecarLostDuringTermination,
            format!(
                "sidecar {owner} lost during termination ({restart}): it stopped listening on {} at {} without a stop signal while {from} still ran; {refused} (D1)",
                r.port,
                when(closed)
            ),
        )
    } else if terminating && app_to_sidecar {
        let what = match r.owner.role {
            Some(SidecarRole::LogShipper) => {
                format!("log shipper {owner} gone before the app: final logs lost")
            }
            _ => format!("{owner} was gone while {from} drained"),
        };
        (
            FindingKind::SidecarGoneBeforeApp,
            format!(
                "{what}; it stopped listening on {} at {}; {refused} (D1)",
                r.port,
                when(closed)
            ),
        )
    } else if r.from.is_sidecar() && !r.owner.is_sidecar() {
        (
            FindingKind::AppGoneBeforeSidecar,
            format!(
                "{owner} no longer listened on {} (closed at {}): the app was gone, not {from} or the mesh; {refused} (D1)",
                r.port,
                when(closed)
            ),
        )
    } else {
        (
            FindingKind::LocalListenerGone,
            format!(
                "{owner} did not listen on {} (closed at {}); {refused} (D1)",
                r.port,
                when(closed)
            ),
        )
    };
    let mut evidence: Vec<Option<u64>> = vec![Some(closed.seq)];
    evidence.extend(r.at.iter().take(8).map(|a| Some(a.seq)));
    Draft::new(RuleId::D1, kind, Severity::Warning, Some(owner), message).with_evidence(evidence)
}

/// The listener on `port` of a container other than `from` that last opened
/// before `at`.
fn last_listener(
    tl: &PodTimeline,
    from: usize,
    port: u16,
    at: Option<At>,
) -> Option<(usize, &ContainerTimeline, &ListenPeriod)> {
    let at = at?;
    tl.containers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != from)
        .flat_map(|(i, c)| c.sockets.listens.iter().map(move |l| (i, c, l)))
        .filter(|(_, _, l)| l.port == port && l.start.is_none_or(|s| s.ns <= at.ns))
        .max_by_key(|(_, _, l)| l.start.map(|s| s.ns))
}

/// The app container (not a sidecar, not `from`) that `from` expected on
/// `port` at `at`: the first to listen there later (with when), else one
/// whose spec declares the port (never opened).
fn awaited_listener(
    tl: &PodTimeline,
    from: usize,
    port: u16,
    at: Option<At>,
) -> Option<(usize, &ContainerTimeline, Option<At>)> {
    let at = at?;
    let apps = || {
        tl.containers
            .iter()
            .enumerate()
            .filter(move |(i, c)| *i != from && !c.is_sidecar())
    };
    let later = apps()
        .flat_map(|(i, c)| c.sockets.listens.iter().map(move |l| (i, c, l)))
        .filter_map(|(i, c, l)| {
            l.start
                .filter(|s| l.port == port && s.ns > at.ns)
                .map(|s| (i, c, s))
        })
        .min_by_key(|(_, _, s)| s.ns);
    if let Some((i, c, s)) = later {
        return Some((i, c, Some(s)));
    }
    apps()
        .find(|(_, c)| c.spec.as_ref().is_some_and(|s| s.ports.contains(&port)))
        .map(|(i, c)| (i, c, None))
}

/// Whether any container of the pod listened on `port` at `ns`.
fn listening_at(tl: &PodTimeline, port: u16, ns: i64) -> bool {
    tl.containers
        .iter()
        .flat_map(|c| &c.sockets.listens)
        .any(|l| l.port == port && l.covers(ns))
}
