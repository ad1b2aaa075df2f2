//! Startup rules: S1 (init containers one at a time, in order), S2 (with
//! native sidecars, nothing after a sidecar starts before it), S3 (main
//! containers after the init containers completed), S4 (legacy hold/await:
//! the app after the proxy is ready), and the startup race (the app's
//! traffic before its sidecar listened) under S2 or S4.

use lifecycle_recording::pods::{ContainerKind, MeshMode, classify::Section};

use super::{ContainerStartup, StartupAudit, startup_probe_port};
use crate::{
    config::AuditConfig,
    finding::{Draft, FindingKind, Judgement, Outcome, RuleId, Severity},
    fmt::secs,
    mesh::context,
    timeline::{At, PodTimeline},
};

/// Judges S1–S4 and the startup race on a pod's measured startup.
pub fn judge(tl: &PodTimeline, audit: &StartupAudit, config: &AuditConfig) -> Judgement {
    let mut j = Judgement::default();
    s1(tl, audit, &mut j);
    s2(tl, audit, config, &mut j);
    s3(tl, audit, &mut j);
    s4(tl, audit, &mut j);
    races(audit, &mut j);
    j
}

fn is_init(c: &ContainerStartup) -> bool {
    c.kind == Some(ContainerKind::Init)
}

fn in_init_section(tl: &PodTimeline, name: &str) -> bool {
    tl.container(name)
        .and_then(|c| c.spec.as_ref())
        .is_some_and(|s| s.section == Section::Init)
}

/// When an init container completed successfully.
fn completed(c: &ContainerStartup, tl: &PodTimeline) -> Option<At> {
    tl.container(&c.container)?
        .instances
        .iter()
        .filter_map(|i| i.exit)
        .find(|x| x.code == 0)
        .map(|x| x.at)
}

fn outcome(violated: bool, checked: usize) -> Outcome {
    match (violated, checked) {
        (true, _) => Outcome::Violated,
        (false, 0) => Outcome::Unknown,
        (false, _) => Outcome::Held,
    }
}

/// A moment later containers must not start before.
struct Gate<'a> {
    rule: RuleId,
    kind: FindingKind,
    at: At,
    /// What happened at `at`, for messages.
    text: &'a str,
}

/// Checks that every container in `later` exec'd after the gate; one
/// finding per offender. Returns whether any did not.
fn after_gate<'a>(
    j: &mut Judgement,
    gate: &Gate<'_>,
    later: impl Iterator<Item = &'a ContainerStartup>,
    checked: &mut usize,
) -> bool {
    let mut violated = false;
    for c in later {
        let Some(exec) = c.first_exec else { continue };
        *checked += 1;
        if exec < gate.at {
            violated = true;
            j.finding(
                Draft::new(
                    gate.rule,
                    gate.kind,
                    Severity::Error,
                    Some(&c.container),
                    format!(
                        "{} started {} before {} ({})",
                        c.container,
                        secs(gate.at.ns - exec.ns),
                        gate.text,
                        gate.rule
                    ),
                )
                .with_evidence([Some(exec.seq), Some(gate.at.seq)]),
            );
        }
    }
    violated
}

fn s1(tl: &PodTimeline, audit: &StartupAudit, j: &mut Judgement) {
    let inits: Vec<(usize, &ContainerStartup)> = audit
        .containers
        .iter()
        .enumerate()
        .filter(|(_, c)| is_init(c))
        .collect();
    if inits.is_empty() {
        j.verdict(RuleId::S1, Outcome::NotApplicable, "no init containers");
        return;
    }
    let (mut violated, mut checked) = (false, 0);
    for (i, init) in inits {
        let Some(done) = completed(init, tl) else {
            continue;
        };
        let later = audit
            .containers
            .iter()
            .skip(i + 1)
            .filter(|c| in_init_section(tl, &c.container));
        let text = format!("init container {} completed", init.container);
        violated |= after_gate(
            j,
            &Gate {
                rule: RuleId::S1,
                kind: FindingKind::InitOutOfOrder,
                at: done,
                text: &text,
            },
            later,
            &mut checked,
        );
    }
    j.verdict(
        RuleId::S1,
        outcome(violated, checked),
        format!("{checked} later start(s) checked"),
    );
}

fn s2(tl: &PodTimeline, audit: &StartupAudit, config: &AuditConfig, j: &mut Judgement) {
    let natives: Vec<usize> = (0..audit.containers.len())
        .filter(|i| audit.containers[*i].kind == Some(ContainerKind::NativeSidecar))
        .collect();
    if natives.is_empty() || !config.kubelet.orders_sidecar_termination() {
        j.verdict(
            RuleId::S2,
            Outcome::NotApplicable,
            "no native sidecars (or kubelet 1.28)",
        );
        return;
    }
    let (mut violated, mut checked) = (false, 0);
    for si in natives {
        let sidecar = &audit.containers[si];
        let Some(exec) = sidecar.first_exec else {
            continue;
        };
        let later = || audit.containers.iter().skip(si + 1);
        let text = format!("sidecar {} started", sidecar.container);
        violated |= after_gate(
            j,
            &Gate {
                rule: RuleId::S2,
                kind: FindingKind::StartedBeforeSidecar,
                at: exec,
                text: &text,
            },
            later(),
            &mut checked,
        );
        let probe_listen = tl
            .container(&sidecar.container)
            .and_then(startup_probe_port)
            .and_then(|port| Some((port, sidecar.listen_on(port)?.at?)));
        if let Some((port, listen)) = probe_listen {
            let text = format!(
                "sidecar {} listened on its startupProbe port {port}",
                sidecar.container
            );
            violated |= after_gate(
                j,
                &Gate {
                    rule: RuleId::S2,
                    kind: FindingKind::StartedBeforeSidecar,
                    at: listen,
                    text: &text,
                },
                later(),
                &mut checked,
            );
        }
    }
    j.verdict(
        RuleId::S2,
        outcome(violated, checked),
        format!("{checked} start(s) checked"),
    );
}

fn s3(tl: &PodTimeline, audit: &StartupAudit, j: &mut Judgement) {
    let inits: Vec<&ContainerStartup> = audit.containers.iter().filter(|c| is_init(c)).collect();
    if inits.is_empty() {
        j.verdict(RuleId::S3, Outcome::NotApplicable, "no init containers");
        return;
    }
    let mains = || {
        audit.containers.iter().filter(|c| {
            tl.container(&c.container)
                .is_some_and(crate::timeline::ContainerTimeline::is_main)
        })
    };
    let (mut violated, mut checked) = (false, 0);
    for init in inits {
        let Some(done) = completed(init, tl) else {
            continue;
        };
        let text = format!("init container {} completed", init.container);
        violated |= after_gate(
            j,
            &Gate {
                rule: RuleId::S3,
                kind: FindingKind::MainBeforeInitialized,
                at: done,
                text: &text,
            },
            mains(),
            &mut checked,
        );
    }
    j.verdict(
        RuleId::S3,
        outcome(violated, checked),
        format!("{checked} main start(s) checked"),
    );
}

fn s4(tl: &PodTimeline, audit: &StartupAudit, j: &mut Judgement) {
    let Some(mesh) = context(tl) else {
        j.verdict(RuleId::S4, Outcome::NotApplicable, "no mesh proxy");
        return;
    };
    let hold = matches!(
        mesh.info.mode,
        MeshMode::IstioLegacy {
            hold_application_until_proxy_starts: true
        } | MeshMode::LinkerdLegacy {
            proxy_await: true,
            ..
        }
    );
    if !hold {
        j.verdict(
            RuleId::S4,
            Outcome::NotApplicable,
            "no hold/await in legacy mode",
        );
        return;
    }
    let before = j.findings.len();
    let restart_policy = tl.spec.as_ref().map_or("Always", |s| &*s.restart_policy);
    super::hold::hook_failed(mesh.proxy, restart_policy, j);
    let hook_failed = j.findings.len() > before;
    let proxy = audit.container(&mesh.proxy.name);
    let ready = mesh.outbound_port().and_then(|p| proxy?.listen_on(p)?.at);
    let Some(ready) = ready else {
        // The proxy never listened, yet the apps started: the hold gave up.
        let mut violated = hook_failed;
        for c in audit
            .containers
            .iter()
            .filter(|c| c.kind == Some(ContainerKind::App))
        {
            let Some(exec) = c.first_exec.filter(|_| mesh.proxy.first_exec().is_some()) else {
                continue;
            };
            violated = true;
            j.finding(
                Draft::new(
                    RuleId::S4,
                    FindingKind::StartedBeforeProxyReady,
                    Severity::Error,
                    Some(&c.container),
                    format!(
                        "{} started though {} never listened on its capture port: the hold/await gave up (S4)",
                        c.container, mesh.proxy.name
                    ),
                )
                .with_evidence([Some(exec.seq)]),
            );
        }
        if violated {
            j.verdict(
                RuleId::S4,
                Outcome::Violated,
                "hold/await in force, the proxy never ready",
            );
        } else {
            j.verdict(
                RuleId::S4,
                Outcome::Unknown,
                "proxy capture listener not seen",
            );
        }
        return;
    };
    let mut checked = 0;
    let apps = audit
        .containers
        .iter()
        .filter(|c| c.kind == Some(ContainerKind::App));
    let text = format!("{} listened (hold/await)", mesh.proxy.name);
    let violated = after_gate(
        j,
        &Gate {
            rule: RuleId::S4,
            kind: FindingKind::StartedBeforeProxyReady,
            at: ready,
            text: &text,
        },
        apps,
        &mut checked,
    );
    j.verdict(
        RuleId::S4,
        outcome(violated || hook_failed, checked),
        "hold/await in force",
    );
}

fn races(audit: &StartupAudit, j: &mut Judgement) {
    for g in &audit.gaps {
        let (rule, probe_note) = if g.native {
            let note = if g.startup_probe {
                ""
            } else {
                "; the sidecar has no startupProbe"
            };
            (RuleId::S2, note)
        } else {
            (RuleId::S4, "; legacy sidecar")
        };
        let listen_seq = g.sidecar_listening.map(|l| l.seq);
        let ports: Vec<String> = g.ports.iter().map(u16::to_string).collect();
        let on = if ports.is_empty() {
            String::new()
        } else {
            format!(" on {}", ports.join(", "))
        };
        for (what, gap, at) in [
            ("connected", g.connect_gap_s, g.app_first_connect),
            ("accepted a connection", g.accept_gap_s, g.app_first_accept),
        ] {
            let Some(gap) = gap.filter(|g| *g < 0.0) else {
                continue;
            };
            j.finding(
                Draft::new(
                    rule,
                    FindingKind::StartupRace,
                    Severity::Warning,
                    Some(&g.app),
                    format!(
                        "{} {what} {:.3} s before {} listened{on} (startup race{probe_note})",
                        g.app, -gap, g.sidecar
                    ),
                )
                .with_evidence([at.map(|a| a.seq), listen_seq]),
            );
        }
    }
}
