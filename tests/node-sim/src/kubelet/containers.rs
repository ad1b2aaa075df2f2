//! Starting a container (`CreateContainer` + `StartContainer`, status),
//! seeing it exit (the runtime's status), running its hooks (`ExecSync`,
//! HTTP calls to the pod) and probing it.

use std::{
    fs::File,
    io::Write,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_cri::v1::{
    Capability, ContainerConfig, ContainerMetadata, ImageSpec, Int64Value, KeyValue,
    LinuxContainerConfig, LinuxContainerSecurityContext, SecurityProfile,
    security_profile::ProfileType,
};
use serde_json::Value;

use super::{
    hooks::Hook,
    plan::{ContainerKind, ContainerPlan},
    pod::{PodContext, namespaces, pod_labels},
    probes::Probe,
};
use crate::{
    daemonset::cri_capabilities,
    error::SimError,
    log::{Action, HookPhase, ProbeKind},
    net::netns,
    runtime::{ExitInfo, Instance, Launch, images::WORKLOAD_PATH},
    scenario::{
        Role,
        roles::{RoleContext, workload_args},
    },
};

/// Where the kubelet keeps `Localhost` seccomp profiles.
const SECCOMP_ROOT: &str = "/var/lib/kubelet/seccomp";

/// The container's seccomp profile: `securityContext.seccompProfile` of
/// the container, else of the pod; Unconfined when neither says, as the
/// kubelet without `--seccomp-default`.
fn seccomp(container: &Value, pod_spec: &Value) -> SecurityProfile {
    let profile = container
        .pointer("/securityContext/seccompProfile")
        .or_else(|| pod_spec.pointer("/securityContext/seccompProfile"));
    let kind = profile.and_then(|p| p["type"].as_str());
    let (profile_type, localhost_ref) = match kind {
        Some("RuntimeDefault") => (ProfileType::RuntimeDefault, String::new()),
        Some("Localhost") => (
            ProfileType::Localhost,
            format!(
                "{SECCOMP_ROOT}/{}",
                profile
                    .and_then(|p| p["localhostProfile"].as_str())
                    .unwrap_or_default()
            ),
        ),
        _ => (ProfileType::Unconfined, String::new()),
    };
    SecurityProfile {
        profile_type: profile_type as i32,
        localhost_ref,
    }
}

/// The `ContainerConfig` the kubelet sends for `plan`'s run `restart`: the
/// node-sim workload image, `argv` as its arguments, the manifest's env
/// and security context, the pod's namespaces.
fn container_config(
    ctx: &PodContext,
    plan: &ContainerPlan,
    argv: Vec<String>,
    restart: u32,
) -> ContainerConfig {
    let spec = &plan.spec;
    let pod_spec = ctx.plan.manifest.get("spec").cloned().unwrap_or_default();
    let envs = spec
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some(KeyValue {
                key: e.get("name")?.as_str()?.to_owned(),
                value: e
                    .get("value")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            })
        })
        .collect();
    let mut labels = pod_labels(&ctx.plan, &ctx.uid);
    labels.insert("io.kubernetes.container.name".into(), plan.name.clone());
    let security = LinuxContainerSecurityContext {
        capabilities: Some(Capability {
            add_capabilities: cri_capabilities(&spec["securityContext"]["capabilities"]["add"]),
            drop_capabilities: cri_capabilities(&spec["securityContext"]["capabilities"]["drop"]),
            add_ambient_capabilities: Vec::new(),
        }),
        privileged: spec
            .pointer("/securityContext/privileged")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        namespace_options: Some(namespaces(ctx.plan.share_pid)),
        run_as_user: plan.user.map(|(uid, _)| Int64Value { value: uid.into() }),
        run_as_group: plan.user.map(|(_, gid)| Int64Value { value: gid.into() }),
        readonly_rootfs: spec
            .pointer("/securityContext/readOnlyRootFilesystem")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        seccomp: Some(seccomp(spec, &pod_spec)),
        ..LinuxContainerSecurityContext::default()
    };
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: plan.name.clone(),
            attempt: restart,
        }),
        image: Some(ImageSpec {
            image: ctx.env.containerd.images().workload.clone(),
            ..ImageSpec::default()
        }),
        command: vec![WORKLOAD_PATH.to_owned()],
        args: argv,
        envs,
        labels,
        log_path: format!("{}-{restart}.log", plan.name),
        linux: Some(LinuxContainerConfig {
            resources: None,
            security_context: Some(security),
        }),
        ..ContainerConfig::default()
    }
}

/// The innermost pid of `pid` (the last field of `NSpid:` in its status).
fn ns_pid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// Creates and starts the container in the pod's sandbox and reports it
/// running.
pub fn start(ctx: &Arc<PodContext>, plan: &ContainerPlan) -> Result<Arc<Instance>, SimError> {
    let restart = ctx
        .state
        .read(|s| s.container(&plan.name).map_or(0, |c| c.restarts));
    let argv = workload_args(
        &plan.name,
        plan.role,
        &plan.sim,
        &RoleContext {
            peers: &ctx.env.peers,
            mesh: ctx.plan.capture.as_ref().map(|c| c.mesh),
            restart,
        },
    )?;
    let launch = Launch {
        target: ctx.target(&plan.name),
        sandbox_id: ctx.sandbox.id.clone(),
        sandbox_config: ctx.sandbox_config.clone(),
        config: container_config(ctx, plan, argv, restart),
        pod_cgroup: ctx.env.cgroup_root.join(&ctx.cgroup),
    };
    let watcher = ctx.clone();
    let name = plan.name.clone();
    let instance = Arc::new(Instance::start(
        ctx.env.cri.clone(),
        &plan.name,
        launch,
        move |exit| exited(&watcher, &name, exit),
    )?);
    ctx.env.log.record_at(
        instance.started,
        &ctx.key,
        Some(&plan.name),
        Action::ContainerStarted {
            container_id: instance.id.clone(),
            pid: instance.pid,
            ns_pid: ns_pid(instance.pid),
            restart,
            cgroup: instance.cgroup.display().to_string(),
            cgroup_id: std::fs::metadata(&instance.cgroup)
                .map_or(0, |m| std::os::unix::fs::MetadataExt::ino(&m)),
            uid: plan.user.map_or(0, |(uid, _)| uid),
        },
    );
    if plan.role == Role::MeshInit {
        // istio-init's / linkerd-init's step: the capture goes in now,
        // before the init container exits and the next one starts.
        ctx.install_capture(true)?;
    }
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
    ctx.status.running(&plan.name, &instance.id);
    Ok(instance)
}

/// The runtime reported the exit: state and status updated.
fn exited(ctx: &Arc<PodContext>, name: &str, exit: ExitInfo) {
    let instance = ctx
        .state
        .read(|s| s.container(name).and_then(|c| c.current.clone()));
    let (id, pid) = instance
        .as_ref()
        .map_or((String::new(), 0), |i| (i.id.clone(), i.pid));
    ctx.env.log.record_at(
        exit.at,
        &ctx.key,
        Some(name),
        Action::ContainerExited {
            container_id: id.clone(),
            pid,
            exit_code: exit.exit_code,
            signal: exit.signal,
            reason: exit.reason.clone(),
        },
    );
    let (code, reason) = (exit.exit_code, exit.reason.clone());
    ctx.state.update(|s| {
        let c = s.container_mut(name);
        if c.current.as_ref().is_some_and(|i| i.id == id) {
            c.running = false;
            c.last_exit = Some(exit);
            c.started = false;
            c.ready = false;
        }
    });
    ctx.status.terminated(name, code, &reason);
}

/// Runs a hook against `instance`; returns whether it succeeded.
pub fn run_hook(
    ctx: &Arc<PodContext>,
    plan: &ContainerPlan,
    instance: &Instance,
    phase: HookPhase,
    hook: &Hook,
    timeout: Duration,
) -> bool {
    let started = |exec: Option<Vec<String>>| {
        ctx.env.log.record(
            &ctx.key,
            Some(&plan.name),
            Action::HookStarted { hook: phase, exec },
        );
    };
    let ok = match hook {
        Hook::Sleep(duration) => {
            started(None);
            let until = Instant::now() + (*duration).min(timeout);
            ctx.state.wait_for(Some(until), |s| s.aborted.then_some(()));
            true
        }
        Hook::Http { port, path } => {
            started(None);
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
            let mut cmd = vec![WORKLOAD_PATH.to_owned()];
            cmd.extend(argv.iter().cloned());
            started(Some(cmd.clone()));
            // ExecSync counts whole seconds; a hook still running then is
            // killed by the runtime, as the kubelet's hook timeout does.
            let timeout_s = timeout.as_secs_f64().ceil().max(1.0) as i64;
            match ctx
                .env
                .cri
                .exec_sync(&ctx.target(&plan.name), &instance.id, cmd, timeout_s)
            {
                Ok(result) => {
                    let log = ctx.log_dir.join(format!("{}-hooks.log", plan.name));
                    if let Ok(mut file) = File::options().create(true).append(true).open(log) {
                        let _ = file.write_all(result.stdout.as_bytes());
                    }
                    result.exit_code == 0
                }
                Err(error) => {
                    tracing::warn!(%error, container = plan.name, "exec hook failed");
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
        let ok = run_hook(
            ctx,
            plan,
            &instance,
            HookPhase::PostStart,
            hook,
            crate::clock::secs(120.0),
        );
        if !ok {
            // FailedPostStartHook: the kubelet kills the container (its
            // exit then restarts it by the restart policy) and goes on
            // with the pod's next container.
            ctx.env
                .log
                .record(&ctx.key, Some(&plan.name), Action::PostStartFailed);
            kill_for_restart(ctx, &plan.name, &instance.id);
            return Ok(instance);
        }
    }
    if let Some(probe) = &plan.liveness_probe {
        spawn_prober(ctx, plan, &instance, probe.clone(), ProbeKind::Liveness);
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
        let alive = |ctx: &PodContext| {
            ctx.state.read(|s| {
                !s.interrupted()
                    && s.container(&name).is_some_and(|c| {
                        c.running && c.current.as_ref().is_some_and(|i| i.id == id)
                    })
            })
        };
        let mut next = Instant::now() + crate::clock::secs(probe.initial_delay_s);
        let mut first_success = true;
        let mut failures = 0;
        loop {
            ctx.state
                .wait_for(Some(next), |s| s.interrupted().then_some(()));
            if !alive(&ctx) {
                return;
            }
            next = Instant::now() + crate::clock::secs(probe.period_s);
            let ok = probe.check(ctx.net.ip, crate::clock::secs(probe.timeout_s));
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
                // Liveness counts only once the container started (after
                // its startup probe, as the kubelet's prober does).
                ProbeKind::Liveness => {
                    let started = ctx
                        .state
                        .read(|s| s.container(&name).is_some_and(|c| c.started));
                    failures = if ok || !started { 0 } else { failures + 1 };
                    if failures >= probe.failure_threshold {
                        ctx.env.log.record(
                            &ctx.key,
                            Some(&name),
                            Action::LivenessFailed { failures },
                        );
                        kill_for_restart(&ctx, &name, &id);
                        return;
                    }
                }
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

/// The kubelet kills a container whose liveness probe or postStart hook
/// failed, with the pod's grace period; its exit then restarts it by the
/// restart policy.
fn kill_for_restart(ctx: &PodContext, name: &str, id: &str) {
    let timeout_s = ctx.plan.grace_s.max(0);
    ctx.env
        .log
        .record(&ctx.key, Some(name), Action::StopRequested { timeout_s });
    match ctx.env.cri.stop_container(&ctx.target(name), id, timeout_s) {
        Ok(()) => {
            ctx.env
                .log
                .record(&ctx.key, Some(name), Action::StopReturned);
        }
        Err(error) => tracing::warn!(%error, container = name, "StopContainer failed"),
    }
}

/// Whether the container is a sidecar in the native sense.
pub fn is_sidecar(plan: &ContainerPlan) -> bool {
    plan.kind == ContainerKind::Sidecar
}
