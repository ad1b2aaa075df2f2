//! Pod startup as the kubelet orders it: init containers one at a time, a
//! native sidecar letting the next container start once it is started
//! (startup probe passed, or running with its postStart done), then the
//! regular containers in spec order, each after the previous one's
//! postStart returned.

use std::sync::Arc;

use super::{containers, plan::ContainerKind, pod::PodContext, state::Stage};
use crate::error::SimError;

/// How startup ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Startup {
    /// Every regular container was started.
    Complete,
    /// A delete (or an abort) came first.
    Interrupted,
    /// An init container failed (exit code): the pod fails.
    InitFailed { container: String, exit_code: i32 },
}

pub fn start_pod(ctx: &Arc<PodContext>) -> Result<Startup, SimError> {
    ctx.state.update(|s| s.stage = Stage::Initializing);
    for plan in ctx
        .plan
        .containers
        .iter()
        .filter(|c| c.kind != ContainerKind::Main)
    {
        if ctx.state.read(|s| s.interrupted()) {
            return Ok(Startup::Interrupted);
        }
        let instance = containers::launch(ctx, plan)?;
        let name = plan.name.clone();
        // Sidecar: until started. Init container: until it exited.
        let outcome = ctx.state.wait_for(None, |s| {
            if s.interrupted() {
                return Some(None);
            }
            let c = s.container(&name)?;
            let this_run = c.current.as_ref().is_some_and(|i| i.id == instance.id);
            match plan.kind {
                ContainerKind::Sidecar if this_run && c.started => Some(Some(0)),
                _ if this_run && !c.running => {
                    Some(Some(c.last_exit.as_ref().map_or(1, |e| e.exit_code)))
                }
                _ => None,
            }
        });
        match outcome.flatten() {
            None => return Ok(Startup::Interrupted),
            Some(0) => {
                if plan.kind == ContainerKind::Init {
                    ctx.state
                        .update(|s| s.container_mut(&name).exit_handled = true);
                }
            }
            Some(exit_code) => {
                ctx.state
                    .update(|s| s.container_mut(&name).exit_handled = true);
                return Ok(Startup::InitFailed {
                    container: name,
                    exit_code,
                });
            }
        }
    }
    ctx.state.update(|s| s.stage = Stage::Running);
    ctx.status.initialized();
    for plan in ctx.plan.of_kind(ContainerKind::Main) {
        if ctx.state.read(|s| s.interrupted()) {
            return Ok(Startup::Interrupted);
        }
        containers::launch(ctx, plan)?;
        ctx.set_phase("Running");
    }
    Ok(Startup::Complete)
}
