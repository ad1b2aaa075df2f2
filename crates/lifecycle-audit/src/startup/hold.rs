//! A hold that timed out. Istio's `holdApplicationUntilProxyStarts` is a
//! postStart `pilot-agent wait` on the proxy (Linkerd's `linkerd-await`
//! likewise): it polls the proxy's readiness, by default every 500 ms for
//! 60 s, and exits non-zero when the proxy never became ready. The kubelet
//! then reports FailedPostStartHook, kills the proxy container (restarted
//! or not by the pod's restartPolicy) and starts the app anyway: the hold
//! meant to close the startup gap is what let the app run without a proxy.
//! The hook's runtime exec is seen in the kernel: the first exec into the
//! proxy's run right after its start, with its exit status.

use lifecycle_recording::pods::spec::HookFacts;

use crate::{
    finding::{Draft, FindingKind, Judgement, RuleId, Severity},
    fmt::secs,
    timeline::ContainerTimeline,
};

/// A postStart exec begins right after the container's start; later execs
/// into it are probes and other hooks.
const POST_START_WITHIN_NS: i64 = 2_000_000_000;

/// The finding when the proxy's postStart hold hook failed, naming what
/// the kubelet does next.
pub fn hook_failed(proxy: &ContainerTimeline, restart_policy: &str, j: &mut Judgement) {
    let Some(HookFacts::Exec { command }) = proxy.spec.as_ref().and_then(|s| s.post_start.as_ref())
    else {
        return;
    };
    for (index, run) in proxy.instances.iter().enumerate() {
        let Some(exec) = run.exec else { continue };
        let Some(hook) = proxy
            .hooks
            .iter()
            .find(|h| h.instance == index && h.exec.ns - exec.ns < POST_START_WITHIN_NS)
        else {
            continue;
        };
        let Some(exit) = hook.exit.filter(|x| x.code != 0) else {
            continue;
        };
        let next = if restart_policy == "Never" {
            "with restartPolicy Never it is not restarted: the pod is left without its proxy"
        } else {
            "it is restarted after the crash back-off, and the hold waits again"
        };
        j.finding(
            Draft::new(
                RuleId::S4,
                FindingKind::PostStartHookFailed,
                Severity::Warning,
                Some(&proxy.name),
                format!(
                    "{}'s postStart hook `{}` exited {} after {} (FailedPostStartHook): the kubelet killed the container and started the app without a ready proxy; {next} (S4)",
                    proxy.name,
                    command,
                    exit.code,
                    secs(exit.at.ns - hook.exec.ns)
                ),
            )
            .with_evidence([Some(hook.exec.seq), Some(exit.at.seq)]),
        );
    }
}
