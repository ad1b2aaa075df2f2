//! Attribute keys. Semantic-convention keys where OpenTelemetry has one;
//! everything else lives under the project's own `lifecycle.` namespace
//! (README, "Exporting to OpenTelemetry", lists them all).

// OpenTelemetry semantic conventions.
pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_VERSION: &str = "service.version";
pub const K8S_NODE_NAME: &str = "k8s.node.name";
pub const K8S_NAMESPACE_NAME: &str = "k8s.namespace.name";
pub const K8S_POD_NAME: &str = "k8s.pod.name";
pub const K8S_POD_UID: &str = "k8s.pod.uid";
pub const K8S_CONTAINER_NAME: &str = "k8s.container.name";
pub const CONTAINER_ID: &str = "container.id";
pub const PROCESS_PID: &str = "process.pid";
pub const PROCESS_EXIT_CODE: &str = "process.exit.code";
pub const SERVER_PORT: &str = "server.port";

/// The semantic-convention key naming a pod's controller, e.g.
/// `k8s.deployment.name`, for the workload kinds that have one.
pub fn workload_key(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Deployment" => "k8s.deployment.name",
        "ReplicaSet" => "k8s.replicaset.name",
        "StatefulSet" => "k8s.statefulset.name",
        "DaemonSet" => "k8s.daemonset.name",
        "Job" => "k8s.job.name",
        "CronJob" => "k8s.cronjob.name",
        _ => return None,
    })
}

// The project's own.
pub const WORKLOAD_KIND: &str = "lifecycle.workload.kind";
pub const WORKLOAD_NAME: &str = "lifecycle.workload.name";
pub const MESH_MODE: &str = "lifecycle.mesh.mode";
pub const NATIVE_SIDECARS: &str = "lifecycle.native_sidecars";
pub const KUBELET_ASSUMED: &str = "lifecycle.kubelet.assumed";
pub const AUDIT_COMPLETED_BY: &str = "lifecycle.audit.completed_by";
pub const AUDIT_PARTIAL: &str = "lifecycle.audit.partial";
pub const AUDIT_RECORDS: &str = "lifecycle.audit.records";
pub const TIME_PARTIAL: &str = "lifecycle.time.partial";
pub const TIME_SOURCE: &str = "lifecycle.time.source";

pub const CONTAINER_KIND: &str = "lifecycle.container.kind";
pub const SIDECAR_ROLE: &str = "lifecycle.sidecar.role";
pub const CONTAINER_MAIN: &str = "lifecycle.container.main";

pub const TERMINATION_TRIGGER: &str = "lifecycle.termination.trigger";
pub const TERMINATION_REQUEST_S: &str = "lifecycle.termination.request_s";
pub const TERMINATION_ORDER: &str = "lifecycle.termination.order";
pub const TERMINATION_GRACE_S: &str = "lifecycle.termination.grace_s";
pub const TERMINATION_GRACE_SOURCE: &str = "lifecycle.termination.grace_source";
pub const TERMINATION_T0_CAUSE: &str = "lifecycle.termination.t0_cause";
pub const TERMINATION_DEADLINE_S: &str = "lifecycle.termination.deadline_s";
pub const TERMINATION_EXIT_ORDER: &str = "lifecycle.termination.exit_order";
pub const TERMINATION_STATE_AT_START: &str = "lifecycle.termination.state_at_start";
pub const TERMINATION_GRACE_USED: &str = "lifecycle.termination.grace_used";
pub const TERMINATION_SIGTERM_TO_EXIT_S: &str = "lifecycle.termination.sigterm_to_exit_s";
pub const EXIT_SIGNAL: &str = "lifecycle.exit.signal";
pub const PRESTOP_KIND: &str = "lifecycle.prestop.kind";
pub const PRESTOP_PROGRAM: &str = "lifecycle.prestop.program";

pub const SIGNAL_NAME: &str = "lifecycle.signal.name";
pub const SIGNAL_SENDER: &str = "lifecycle.signal.sender";
pub const SIGNAL_SENDER_COMM: &str = "lifecycle.signal.sender_comm";
pub const SIGNAL_SENDER_PID: &str = "lifecycle.signal.sender_pid";
pub const SIGNAL_RESULT: &str = "lifecycle.signal.result";
pub const SIGNAL_HANDLER: &str = "lifecycle.signal.handler";

pub const FINDING_RULE: &str = "lifecycle.finding.rule";
pub const FINDING_KIND: &str = "lifecycle.finding.kind";
pub const FINDING_SEVERITY: &str = "lifecycle.finding.severity";
pub const FINDING_MESSAGE: &str = "lifecycle.finding.message";
pub const FINDING_CONTAINER: &str = "lifecycle.finding.container";
pub const FINDING_EVIDENCE: &str = "lifecycle.finding.evidence";
pub const FINDING_COUNT: &str = "lifecycle.finding.count";

pub const STARTUP_END: &str = "lifecycle.startup.end";
pub const STARTUP_GAP_S: &str = "lifecycle.startup.gap_s";
pub const STARTUP_CONNECT_GAP_S: &str = "lifecycle.startup.connect_gap_s";
pub const STARTUP_ACCEPT_GAP_S: &str = "lifecycle.startup.accept_gap_s";
pub const STARTUP_SIDECAR: &str = "lifecycle.startup.sidecar";
pub const STARTUP_GAP_KIND: &str = "lifecycle.startup.gap_kind";

pub const BYPASS_CAUSE: &str = "lifecycle.bypass.cause";
pub const BYPASS_WINDOW_S: &str = "lifecycle.bypass.window_s";
pub const BYPASS_WINDOWS: &str = "lifecycle.bypass.windows";
pub const BYPASS_REFUSED: &str = "lifecycle.bypass.refused";
pub const BYPASS_PLAINTEXT: &str = "lifecycle.bypass.plaintext";
pub const BYPASS_PROXIED: &str = "lifecycle.bypass.proxied";
pub const FLOW_CLASS: &str = "lifecycle.flow.class";

// Self-telemetry.
pub const EVENT_KIND: &str = "lifecycle.event.kind";
pub const ERROR_REASON: &str = "lifecycle.error.reason";
pub const JOIN_OUTCOME: &str = "lifecycle.join.outcome";
pub const POD_STATE: &str = "lifecycle.pod.state";
pub const EXPORT_SIGNAL: &str = "lifecycle.export.signal";
pub const EXPORT_REASON: &str = "lifecycle.export.reason";
pub const K8S_EVENT_VERB: &str = "lifecycle.k8s_event.verb";
pub const K8S_EVENT_ERROR: &str = "lifecycle.k8s_event.error";
pub const K8S_EVENT_DROP_REASON: &str = "lifecycle.k8s_event.drop_reason";
