//! Starting a container (cgroup, process, status), reaping it, running its
//! hooks, and probing it.

use std::{
    fs::File,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    hooks::Hook,
    plan::{ContainerKind, ContainerPlan},
    pod::PodContext,
    probes::Probe,
};
use crate::{
    error::SimError,
    log::{Action, HookPhase, ProbeKind},
    net::netns,
    runtime::{
        CgroupDir, ExitInfo, Instance, Launch,
        cgroups::container_name,
        new_container_id,
        spawn::{Placement, spawn},
    },
    scenario::roles::{RoleContext, workload_args},
};

/// Creates the container's cgroup, starts its process there (in the pod's
/// network namespace, as its user) and reports it running.
pub fn start(ctx: &Arc<PodContext>, plan: &ContainerPlan) -> Result<Arc<Instance>, SimError> {
    let restart = ctx
        .state
        .read(|s| s.container(&plan.name).map_or(0, |c| c.restarts));
    let argv = workload_args(
        &plan.name,
        plan.role,
        &plan.sim,
        &RoleContext {
            scale: ctx.env.scale,
            peers: &ctx.env.peers,
            mesh: ctx.plan.capture.as_ref().map(|c| c.mesh),
            rules_file: ctx.rules_file.as_deref(),
            restart,
        },
    )?;
    let id = new_container_id();
    let cgroup = CgroupDir::create(ctx.cgroup.path.join(container_name(ctx.env.driver, &id)))?;
    let log_path = ctx.log_dir.join(format!("{}-{restart}.log", plan.name));
    let log = File::create(&log_path).map_err(|source| SimError::WorkDirFailed {
        path: log_path,
        source,
    })?;
    let mut command = Command::new(&ctx.env.binaries.workload);
    command.args(&argv);
    let launch = Launch {
        command,
        netns: Some(ctx.net.ns.open()?),
        user: plan.user,
        log: Some(log),
    };
    let watcher = ctx.clone();
    let (name, exit_id) = (plan.name.clone(), id.clone());
    let instance = Arc::new(Instance::start(
        &plan.name,
        id.clone(),
        cgroup,
        launch,
        move |exit| {
            exited(&watcher, &name, &exit_id, exit);
        },
    )?);
    ctx.env.log.record_at(
        instance.started,
        &ctx.key,
        Some(&plan.name),
        Action::ContainerStarted {
            container_id: id.clone(),
            pid: instance.pid,
            restart,
            cgroup: instance.cgroup.path.display().to_string(),
            uid: plan.user.map_or(0, |(uid, _)| uid),
        },
    );
    ctx.state.update(|s| {
        let c = s.container_mut(&plan.name);
        if let Some(old) = c.current.replace(instance.clone()) {
            c.previous.push(old);
        }
        c.running = true;
        c.exit_handled = false;
        c.started = false;
        c.ready = false;
        c.stop_done = false;
    });
    ctx.status.running(&plan.name, &id);
    Ok(instance)
}

/// Reaped: leftovers in the cgroup are killed (`runc kill --all`, as for a
/// container without its own PID namespace), the state and status updated.
fn exited(ctx: &Arc<PodContext>, name: &str, id: &str, exit: ExitInfo) {
    let instance = ctx
        .state
        .read(|s| s.container(name).and_then(|c| c.current.clone()))
        .filter(|i| i.id == id);
    let pid = instance.as_ref().map_or(0, |i| i.pid);
    ctx.env.log.record_at(
        exit.at,
        &ctx.key,
        Some(name),
        Action::ContainerExited {
            container_id: id.to_owned(),
            pid,
            exit_code: exit.exit_code,
            signal: exit.signal,
        },
    );
    if let Some(instance) = &instance
        && !instance.cgroup.pids().is_empty()
    {
        match ctx.shim.kill_all(&instance.cgroup.path, libc::SIGKILL) {
            Ok(report) => ctx.log_kill(Some(name), &report),
            Err(error) => tracing::warn!(%error, container = name, "runc kill --all failed"),
        }
    }
    ctx.state.update(|s| {
        let c = s.container_mut(name);
        if c.current.as_ref().is_some_and(|i| i.id == id) {
            c.running = false;
            c.last_exit = Some(exit);
            c.started = false;
            c.ready = false;
        }
    });
    ctx.status.terminated(name, exit.exit_code);
}

/// Runs a hook against `instance`; returns whether it succeeded. An exec
/// hook still running at `timeout` is left to end with its container.
pub fn run_hook(
    ctx: &Arc<PodContext>,
    plan: &ContainerPlan,
    instance: &Instance,
    phase: HookPhase,
    hook: &Hook,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    let ok = match hook {
        Hook::Sleep(duration) => {
            ctx.env.log.record(
                &ctx.key,
                Some(&plan.name),
                Action::HookStarted {
                    hook: phase,
                    pid: None,
                },
            );
            let until = Instant::now() + (*duration).min(timeout);
            ctx.state.wait_for(Some(until), |s| s.aborted.then_some(()));
            true
        }
        Hook::Http { port, path } => {
            ctx.env.log.record(
                &ctx.key,
                Some(&plan.name),
                Action::HookStarted {
                    hook: phase,
                    pid: None,
                },
            );
            let addr = std::net::SocketAddr::new(ctx.net.ip.into(), *port);
            ctx.env
                .cluster
                .netns()
                .run_in(|| {
                    crate::net::http::get(addr, path, timeout.max(Duration::from_millis(200)))
                })
                .ok()
                .and_then(Result::ok)
                .is_some_and(|status| (200..300).contains(&status))
        }
        Hook::Exec { argv, .. } => {
            let mut command = Command::new(&ctx.env.binaries.workload);
            command.args(argv);
            let log = File::options()
                .create(true)
                .append(true)
                .open(ctx.log_dir.join(format!("{}-hooks.log", plan.name)))
                .ok();
            let netns = ctx.net.ns.open().ok();
            let placement = Placement {
                cgroup: Some(&instance.cgroup.path),
                netns: netns.as_ref(),
                user: plan.user,
                log,
            };
            match spawn(command, placement) {
                Ok(mut child) => {
                    ctx.env.log.record(
                        &ctx.key,
                        Some(&plan.name),
                        Action::HookStarted {
                            hook: phase,
                            pid: Some(child.id()),
                        },
                    );
                    let mut outcome = None;
                    while outcome.is_none()
                        && Instant::now() < deadline
                        && !ctx.state.read(|s| s.aborted)
                    {
                        match child.try_wait() {
                            Ok(Some(status)) => outcome = Some(status.success()),
                            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                            Err(_) => outcome = Some(false),
                        }
                    }
                    if outcome.is_none() {
                        // Reaped whenever it ends (with its container at the latest).
                        std::thread::spawn(move || {
                            let _ = child.wait();
                        });
                    }
                    outcome.unwrap_or(false)
                }
                Err(error) => {
                    tracing::warn!(%error, container = plan.name, "hook did not start");
                    false
                }
            }
        }
    };
    ctx.env.log.record(
        &ctx.key,
        Some(&plan.name),
        Action::HookFinished { hook: phase, ok },
    );
    ok
}

/// Starts a container, runs its postStart, and sets up its probes (or marks
/// it started and ready at once when it has none). Returns the instance.
pub fn launch(ctx: &Arc<PodContext>, plan: &ContainerPlan) -> Result<Arc<Instance>, SimError> {
    let instance = start(ctx, plan)?;
    if let Some(hook) = &plan.post_start {
        run_hook(
            ctx,
            plan,
            &instance,
            HookPhase::PostStart,
            hook,
            ctx.env.scale.real(120.0),
        );
    }
    match &plan.startup_probe {
        Some(probe) => spawn_prober(ctx, plan, &instance, probe.clone(), ProbeKind::Startup),
        None => mark_started(ctx, &plan.name, &instance.id),
    }
    Ok(instance)
}

/// Started (no startup probe, or it passed): readiness follows, from the
/// readiness probe or at once.
fn mark_started(ctx: &Arc<PodContext>, name: &str, id: &str) {
    let Some(plan) = ctx.plan.container(name) else {
        return;
    };
    let has_readiness = plan.readiness_probe.is_some();
    let current = ctx.state.update(|s| {
        let c = s.container_mut(name);
        let current = c.running && c.current.as_ref().is_some_and(|i| i.id == id);
        if current {
            c.started = true;
            c.ready = !has_readiness;
        }
        current
    });
    if !current {
        return;
    }
    ctx.publish_flags(name);
    if let (Some(probe), Some(instance)) = (
        plan.readiness_probe.clone(),
        ctx.state
            .read(|s| s.container(name).and_then(|c| c.current.clone())),
    ) {
        spawn_prober(ctx, plan, &instance, probe, ProbeKind::Readiness);
    }
}

/// A prober thread: in the cluster namespace, it checks the pod's address
/// every period while this run of the container lives and the pod is not
/// stopping.
fn spawn_prober(
    ctx: &Arc<PodContext>,
    plan: &ContainerPlan,
    instance: &Instance,
    probe: Probe,
    kind: ProbeKind,
) {
    let ctx2 = ctx.clone();
    let (name, id) = (plan.name.clone(), instance.id.clone());
    let thread = std::thread::spawn(move || {
        let ctx = ctx2;
        if netns::enter(ctx.env.cluster.netns().file()).is_err() {
            return;
        }
        let scale = ctx.env.scale;
        let alive = |ctx: &PodContext| {
            ctx.state.read(|s| {
                !s.interrupted()
                    && s.container(&name).is_some_and(|c| {
                        c.running && c.current.as_ref().is_some_and(|i| i.id == id)
                    })
            })
        };
        let mut next = Instant::now() + scale.real(probe.initial_delay_s);
        let mut first_success = true;
        loop {
            ctx.state
                .wait_for(Some(next), |s| s.interrupted().then_some(()));
            if !alive(&ctx) {
                return;
            }
            next = Instant::now() + scale.real(probe.period_s);
            let ok = probe.check(ctx.net.ip, scale.real(probe.timeout_s));
            match kind {
                ProbeKind::Startup if ok => {
                    ctx.env.log.record(
                        &ctx.key,
                        Some(&name),
                        Action::ProbeSucceeded { probe: kind },
                    );
                    mark_started(&ctx, &name, &id);
                    return;
                }
                ProbeKind::Startup => {}
                ProbeKind::Readiness => {
                    if ok && first_success {
                        first_success = false;
                        ctx.env.log.record(
                            &ctx.key,
                            Some(&name),
                            Action::ProbeSucceeded { probe: kind },
                        );
                    }
                    let changed = ctx.state.update(|s| {
                        let c = s.container_mut(&name);
                        let changed =
                            c.ready != ok && c.current.as_ref().is_some_and(|i| i.id == id);
                        if changed {
                            c.ready = ok;
                        }
                        changed
                    });
                    if changed {
                        ctx.publish_flags(&name);
                    }
                }
            }
        }
    });
    ctx.threads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(thread);
}

/// Whether the container is a sidecar in the native sense.
pub fn is_sidecar(plan: &ContainerPlan) -> bool {
    plan.kind == ContainerKind::Sidecar
}
