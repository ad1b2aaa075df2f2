//! One pod's life on the node, on its own thread: prepare, start, keep
//! running (restarts, Job completion), stop on delete, report, clean up.

use std::{sync::Arc, time::Instant};

use super::{
    containers,
    plan::{ContainerKind, PodPlan, RestartPolicy},
    pod::PodContext,
    startup::{self, Startup},
    state::{Monitor, PodState, Stage},
    termination,
};
use crate::{
    env::NodeEnv,
    error::SimError,
    log::{Action, StopCause},
};

/// The kubelet's first crash-loop back-off (scenario seconds), doubled per
/// restart up to five minutes.
const BACKOFF_S: f64 = 10.0;

/// Runs the pod to its end; records a failure in the state for waiters.
pub fn run(
    env: Arc<NodeEnv>,
    plan: PodPlan,
    uid: String,
    state: Arc<Monitor<PodState>>,
) -> Result<(), SimError> {
    let key = plan.key();
    let ctx = match PodContext::prepare(env, plan, uid, state.clone()) {
        Ok(ctx) => ctx,
        Err(error) => {
            state.update(|s| s.failure = Some(error.to_string()));
            return Err(error);
        }
    };
    let result = live(&ctx);
    if let Err(error) = &result {
        tracing::warn!(pod = key, %error, "pod ended with an error");
        ctx.state.update(|s| {
            s.failure.get_or_insert_with(|| error.to_string());
        });
    }
    ctx.teardown();
    ctx.state.update(|s| s.stage = Stage::Gone);
    if Arc::strong_count(&ctx) > 1 {
        tracing::warn!(pod = key, "pod context still shared at teardown");
    }
    drop(ctx);
    result
}

fn live(ctx: &Arc<PodContext>) -> Result<(), SimError> {
    match startup::start_pod(ctx)? {
        Startup::Complete => keep_running(ctx)?,
        Startup::Interrupted => {}
        Startup::InitFailed {
            container,
            exit_code,
        } => {
            tracing::info!(pod = ctx.key, container, exit_code, "init container failed");
            ctx.set_phase("Failed");
            ctx.state.update(|s| s.stage = Stage::Completed);
            wait_for_deletion(ctx);
        }
    }
    if ctx.state.read(|s| s.aborted) {
        return Err(SimError::Aborted);
    }
    let grace = ctx.state.read(|s| s.deletion).unwrap_or(ctx.plan.grace_s);
    ctx.state.update(|s| s.stage = Stage::Terminating);
    termination::stop_containers(ctx, StopCause::Deletion, grace as f64);
    ctx.stop_sandbox();
    // The kubelet's phase of a terminated pod counts its regular
    // containers only: native sidecars SIGKILLed at the deadline (137) or
    // ended by SIGTERM (143) do not fail it, nor do init containers.
    let all_zero = ctx.state.read(|s| {
        ctx.plan.of_kind(ContainerKind::Main).all(|c| {
            s.container(&c.name)
                .and_then(|c| c.last_exit.as_ref())
                .is_none_or(|e| e.exit_code == 0)
        })
    });
    if ctx
        .state
        .read(|s| s.phase == "Running" || s.phase == "Pending")
    {
        ctx.set_phase(if all_zero { "Succeeded" } else { "Failed" });
    }
    ctx.status.delete();
    ctx.env.log.record(&ctx.key, None, Action::PodDeleted);
    Ok(())
}

/// What woke the lifecycle loop.
enum Wake {
    Deletion,
    Abort,
    Exited(String),
}

fn keep_running(ctx: &Arc<PodContext>) -> Result<(), SimError> {
    loop {
        let wake = ctx.state.wait_for(None, |s| {
            if s.aborted {
                return Some(Wake::Abort);
            }
            if s.deletion.is_some() {
                return Some(Wake::Deletion);
            }
            s.containers
                .iter()
                .find(|(_, c)| !c.running && c.current.is_some() && !c.exit_handled)
                .map(|(n, _)| Wake::Exited(n.clone()))
        });
        match wake {
            None | Some(Wake::Abort) | Some(Wake::Deletion) => return Ok(()),
            Some(Wake::Exited(name)) => {
                ctx.state
                    .update(|s| s.container_mut(&name).exit_handled = true);
                handle_exit(ctx, &name)?;
            }
        }
    }
}

fn handle_exit(ctx: &Arc<PodContext>, name: &str) -> Result<(), SimError> {
    let Some(plan) = ctx.plan.container(name) else {
        return Ok(());
    };
    let (exit_code, stage, restarts) = ctx.state.read(|s| {
        let c = s.container(name);
        (
            c.and_then(|c| c.last_exit.as_ref())
                .map_or(0, |e| e.exit_code),
            s.stage,
            c.map_or(0, |c| c.restarts),
        )
    });
    let restart = match (plan.kind, ctx.plan.restart_policy) {
        (ContainerKind::Init, _) => false,
        (ContainerKind::Sidecar, _) => stage == Stage::Running,
        (ContainerKind::Main, RestartPolicy::Always) => true,
        (ContainerKind::Main, RestartPolicy::OnFailure) => exit_code != 0,
        (ContainerKind::Main, RestartPolicy::Never) => false,
    };
    if restart {
        let backoff =
            crate::clock::secs((BACKOFF_S * 2f64.powi(restarts.min(5) as i32)).min(300.0));
        let interrupted = ctx.state.wait_for(Some(Instant::now() + backoff), |s| {
            s.interrupted().then_some(())
        });
        if interrupted.is_some() {
            return Ok(());
        }
        ctx.state.update(|s| s.container_mut(name).restarts += 1);
        containers::launch(ctx, plan)?;
        return Ok(());
    }
    if plan.kind == ContainerKind::Main && stage == Stage::Running && mains_done(ctx) {
        complete_job(ctx);
    }
    Ok(())
}

/// Every regular container exited for good (restartPolicy Never/OnFailure).
fn mains_done(ctx: &PodContext) -> bool {
    ctx.state.read(|s| {
        ctx.plan.of_kind(ContainerKind::Main).all(|c| {
            s.container(&c.name).is_some_and(|c| {
                !c.running
                    && c.last_exit.as_ref().is_some_and(|e| {
                        ctx.plan.restart_policy == RestartPolicy::Never || e.exit_code == 0
                    })
            })
        })
    })
}

/// The main containers of a Job pod are done: the sidecars are stopped
/// (preStop, then SIGTERM in reverse order) and the phase follows the main
/// containers' exit codes.
fn complete_job(ctx: &Arc<PodContext>) {
    ctx.state.update(|s| s.stage = Stage::Completed);
    termination::stop_containers(ctx, StopCause::JobCompletion, ctx.plan.grace_s as f64);
    let succeeded = ctx.state.read(|s| {
        ctx.plan.of_kind(ContainerKind::Main).all(|c| {
            s.container(&c.name)
                .and_then(|c| c.last_exit.as_ref())
                .is_some_and(|e| e.exit_code == 0)
        })
    });
    ctx.set_phase(if succeeded { "Succeeded" } else { "Failed" });
    wait_for_deletion(ctx);
}

fn wait_for_deletion(ctx: &PodContext) {
    ctx.state.wait_for(None, |s| s.interrupted().then_some(()));
}
