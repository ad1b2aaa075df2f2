//! Stopping containers as the kubelet does (`killContainersWithSyncResult`):
//! every running container at once, each with its preStop first; with
//! ordered termination (1.29+) a sidecar then waits for every main
//! container and every later sidecar to stop; the remaining grace (the
//! seconds used so far truncated, as the kubelet counts them, and at least
//! 2 s) is the timeout of `StopContainer`: containerd's shim runs
//! `runc kill` with the stop signal, and SIGKILL when it runs out.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    containers,
    plan::{ContainerKind, PodPlan},
    pod::PodContext,
};
use crate::log::{Action, HookPhase, StopCause};

/// The kubelet's floor for a stop timeout.
const MINIMUM_GRACE_S: f64 = 2.0;

/// Who waits for whom (`newTerminationOrdering`): each sidecar for every
/// main container and for the next sidecar in spec order.
pub fn prerequisites(plan: &PodPlan) -> BTreeMap<String, Vec<String>> {
    let mains: Vec<String> = plan
        .of_kind(ContainerKind::Main)
        .map(|c| c.name.clone())
        .collect();
    let sidecars: Vec<&str> = plan
        .of_kind(ContainerKind::Sidecar)
        .map(|c| c.name.as_str())
        .collect();
    let mut prereqs = BTreeMap::new();
    for (i, sidecar) in sidecars.iter().enumerate() {
        let mut waits = mains.clone();
        if let Some(later) = sidecars.get(i + 1) {
            waits.push((*later).to_owned());
        }
        prereqs.insert((*sidecar).to_owned(), waits);
    }
    prereqs
}

/// Stops every running container of the pod within `grace_s` (scenario
/// seconds) and returns when all have exited. When the kubelet dies on the
/// way (`Node::restart_kubelet`), the stops in flight are abandoned and,
/// once the new kubelet is up, the termination starts over with the full
/// grace, as a restarted kubelet does.
pub fn stop_containers(ctx: &Arc<PodContext>, cause: StopCause, grace_s: f64) {
    let mut retry = false;
    loop {
        let generation = ctx.state.read(|s| s.kubelet_generation);
        stop_running(ctx, cause, grace_s, generation, retry);
        let abandoned = ctx
            .state
            .read(|s| s.kubelet_generation != generation && !s.aborted);
        if !abandoned {
            return;
        }
        let up = ctx.state.wait_for(None, |s| {
            (!s.kubelet_down || s.aborted).then_some(!s.aborted)
        });
        if up != Some(true) {
            return;
        }
        ctx.env
            .log
            .record(&ctx.key, None, Action::TerminationRetried);
        retry = true;
    }
}

/// One kubelet generation's stop of the running containers.
fn stop_running(
    ctx: &Arc<PodContext>,
    cause: StopCause,
    grace_s: f64,
    generation: u64,
    retry: bool,
) {
    let ordered = ctx.env.version.ordered_sidecar_termination();
    let blocking_bug = ctx.env.version.never_started_sidecar_blocks();
    let running = ctx.state.update(|s| {
        for plan in &ctx.plan.containers {
            let c = s.container_mut(&plan.name);
            // Not running: nothing to wait for (pre-closed), except a
            // never-started sidecar under kubernetes#125880.
            let held_by_bug = blocking_bug && plan.kind == ContainerKind::Sidecar;
            c.stop_done = !(c.running || held_by_bug);
        }
        s.running()
    });
    if !retry {
        ctx.env.log.record(
            &ctx.key,
            None,
            Action::TerminationStarted { cause, grace_s },
        );
    }
    let prereqs = if ordered {
        prerequisites(&ctx.plan)
    } else {
        BTreeMap::new()
    };
    let t0 = Instant::now();
    let workers: Vec<_> = running
        .into_iter()
        .map(|name| {
            let ctx = ctx.clone();
            let waits = prereqs.get(&name).cloned().unwrap_or_default();
            std::thread::spawn(move || {
                stop_one(&ctx, &name, cause, grace_s, &waits, t0, generation)
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
}

/// What ended a sidecar's wait for its turn.
enum Woke {
    Turn,
    ExitedBeforeTurn,
}

fn stop_one(
    ctx: &Arc<PodContext>,
    name: &str,
    cause: StopCause,
    grace_s: f64,
    waits: &[String],
    t0: Instant,
    generation: u64,
) {
    let Some(plan) = ctx.plan.container(name) else {
        return;
    };
    // The kubelet that started this stop died: leave it (not stop_done).
    let gone = |s: &super::state::PodState| s.kubelet_generation != generation;
    let Some(mut instance) = ctx
        .state
        .read(|s| s.container(name).and_then(|c| c.current.clone()))
    else {
        return;
    };
    let spent_s = |since: Instant| since.elapsed().as_secs_f64().floor();
    ctx.env.log.record(
        &ctx.key,
        Some(name),
        Action::KillingStarted { cause, grace_s },
    );
    let mut grace = grace_s;
    let skip_pre_stop = cause == StopCause::JobCompletion && plan.kind == ContainerKind::Main;
    if let (Some(hook), false) = (&plan.pre_stop, skip_pre_stop)
        && grace > 0.0
    {
        let start = Instant::now();
        containers::run_hook(
            ctx,
            plan,
            &instance,
            HookPhase::PreStop,
            hook,
            crate::clock::secs(grace),
        );
        grace -= spent_s(start);
    }
    if ctx.state.read(gone) {
        return;
    }
    if !waits.is_empty() && grace > 0.0 {
        let start = Instant::now();
        let deadline = start + crate::clock::secs(grace);
        // KEP-4438's alpha leaves pods with a grace of 1 s or less alone.
        let restarts = ctx.env.version.restarts_sidecars_in_termination() && grace_s > 1.0;
        let reached = loop {
            let woke = ctx.state.wait_for(Some(deadline), |s| {
                let turn = s.aborted
                    || gone(s)
                    || waits
                        .iter()
                        .all(|w| s.container(w).is_none_or(|c| c.stop_done));
                let exited = || s.container(name).is_some_and(|c| !c.running);
                match (turn, restarts && exited()) {
                    (true, _) => Some(Woke::Turn),
                    (false, true) => Some(Woke::ExitedBeforeTurn),
                    (false, false) => None,
                }
            });
            match woke {
                // KEP-4438: back up before its turn, at once (no backoff),
                // without a preStop of its own; its turn's SIGTERM goes to
                // the live instance, with the grace left.
                Some(Woke::ExitedBeforeTurn) => {
                    ctx.state.update(|s| s.container_mut(name).restarts += 1);
                    ctx.env
                        .log
                        .record(&ctx.key, Some(name), Action::RestartedDuringTermination);
                    match containers::launch(ctx, plan) {
                        Ok(again) => instance = again,
                        Err(error) => {
                            tracing::warn!(%error, pod = ctx.key, container = name, "restart in termination failed");
                            break None;
                        }
                    }
                }
                Some(Woke::Turn) => break Some(()),
                None => break None,
            }
        };
        let waited = start.elapsed();
        ctx.env.log.record(
            &ctx.key,
            Some(name),
            Action::TurnReached {
                waited_ms: waited.as_millis() as u64,
                deadline_hit: reached.is_none(),
            },
        );
        grace -= spent_s(start);
    }
    if ctx.state.read(gone) {
        return;
    }
    // The kubelet hands the runtime whole seconds, at least 2.
    let timeout_s = grace.max(MINIMUM_GRACE_S) as i64;
    tracing::debug!(pod = ctx.key, container = name, since_t0 = ?t0.elapsed(), timeout_s, "stop");
    let exited = |deadline: Instant| {
        ctx.state
            .wait_for(Some(deadline), |s| {
                (s.aborted
                    || gone(s)
                    || s.container(name).is_some_and(|c| {
                        !c.running || c.current.as_ref().is_some_and(|i| i.id != instance.id)
                    }))
                .then_some(())
            })
            .is_some()
    };
    if ctx
        .state
        .read(|s| s.container(name).is_some_and(|c| c.running))
    {
        ctx.env
            .log
            .record(&ctx.key, Some(name), Action::StopRequested { timeout_s });
        let cancel = ctx.env.kubelet.subscribe();
        if *cancel.borrow() != generation {
            return;
        }
        match ctx
            .env
            .cri
            .stop_container_until(&ctx.target(name), &instance.id, timeout_s, cancel)
        {
            Ok(true) => {
                ctx.env
                    .log
                    .record(&ctx.key, Some(name), Action::StopReturned);
            }
            // The kubelet died with the request in flight.
            Ok(false) => return,
            Err(error) => {
                tracing::warn!(%error, pod = ctx.key, container = name, "StopContainer failed");
            }
        }
        if ctx.state.read(gone) {
            return;
        }
        // The status watcher reports the exit within its poll interval.
        exited(Instant::now() + Duration::from_secs(10));
    }
    if ctx.state.read(gone) {
        return;
    }
    ctx.state.update(|s| s.container_mut(name).stop_done = true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PodEntry;
    use serde_json::json;

    #[test]
    fn sidecars_wait_for_mains_and_later_sidecars() {
        let entry: PodEntry = serde_json::from_value(json!({
            "manifest": {"metadata": {"name": "p"}, "spec": {
                "initContainers": [
                    {"name": "logs", "restartPolicy": "Always"},
                    {"name": "migrate"},
                    {"name": "vault", "restartPolicy": "Always"},
                    {"name": "envoy", "restartPolicy": "Always"}],
                "containers": [{"name": "app"}, {"name": "worker"}]}},
            "containers": {
                "logs": {"role": "log-shipper", "sink": "10.96.0.1:1"}, "migrate": {"role": "init-task"},
                "vault": {"role": "init-task"}, "envoy": {"role": "init-task"},
                "app": {"role": "init-task"}, "worker": {"role": "init-task"}}
        }))
        .unwrap();
        let plan = PodPlan::build(&entry, "node").unwrap();
        let prereqs = prerequisites(&plan);
        assert_eq!(prereqs["envoy"], ["app", "worker"]);
        assert_eq!(prereqs["vault"], ["app", "worker", "envoy"]);
        assert_eq!(prereqs["logs"], ["app", "worker", "vault"]);
        assert!(!prereqs.contains_key("migrate") && !prereqs.contains_key("app"));
    }
}
