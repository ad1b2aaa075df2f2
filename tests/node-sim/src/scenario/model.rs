//! The scenario file: pods (real manifests plus how each container's
//! process behaves), the cluster's peer services, the steps to play, and
//! what the scenario is expected to show.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::kubelet::version::KubeletVersion;

/// One scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// The software whose behaviour the scenario is about (`node-sim list`
    /// groups by it); the catalogue's files all say it, ad-hoc scenarios in
    /// tests may leave it at `kubernetes`.
    #[serde(default)]
    pub system: System,
    pub description: String,
    /// Kubelet behaviour to reproduce (`"1.28"`, `"1.29"`, ..., default 1.33).
    #[serde(default)]
    pub kubelet: KubeletVersion,
    /// Services in the cluster namespace, by name: `ip:port` in 10.96.0.0/16.
    #[serde(default)]
    pub peers: BTreeMap<String, String>,
    /// Seconds the API server's clock runs ahead of the node's (negative:
    /// behind), for the times it stamps itself (creation, delete request).
    #[serde(default)]
    pub api_clock_ahead: f64,
    pub pods: Vec<PodEntry>,
    /// What to do; empty means: wait until every pod is ready, let them run
    /// for one second, delete them all, wait until they are gone.
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub expect: Expectations,
}

/// Whose behaviour a scenario shows, in `node-sim list`'s order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum System {
    Istio,
    Linkerd,
    CloudSqlProxy,
    FluentBit,
    Vault,
    /// The kubelet, the runtime, the kernel and the app alone: no sidecar
    /// product at stake.
    #[default]
    Kubernetes,
}

impl System {
    /// How `node-sim list` heads the group.
    pub fn title(self) -> &'static str {
        match self {
            Self::Istio => "Istio",
            Self::Linkerd => "Linkerd",
            Self::CloudSqlProxy => "cloud-sql-proxy",
            Self::FluentBit => "Fluent Bit",
            Self::Vault => "Vault",
            Self::Kubernetes => "Kubernetes: the kubelet, the runtime, the kernel, the app",
        }
    }
}

/// A pod: its manifest as it would be created, and its containers' behaviour.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodEntry {
    /// A Kubernetes Pod object (`metadata`, `spec`); `spec.nodeName` is set
    /// to the simulated node.
    pub manifest: Value,
    /// Behaviour per container name; every container needs one.
    pub containers: BTreeMap<String, ContainerSim>,
}

/// The process a container runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Istio or Linkerd proxy (the mesh comes from the pod).
    MeshProxy,
    /// Installs the capture rules (istio-init, linkerd-init).
    MeshInit,
    /// HTTP server that drains on SIGTERM.
    AppServer,
    /// Makes requests every `interval`, through its shutdown; may serve too.
    AppClient,
    /// fluent-bit-like: ships to `sink`, flushes once more on SIGTERM.
    LogShipper,
    /// Works for `work` seconds calling `call`, exits with `exitCode`.
    JobWorker,
    /// vault-agent-like: fetches from `vault`, renews; `once` for the init form.
    SecretsAgent,
    /// cloud-sql-proxy-like forwarder from `listen` to `upstream`.
    DbProxy,
    /// Works for `work` seconds and exits with `exitCode` (db-migrate).
    InitTask,
}

/// Role parameters; durations are scenario seconds.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSim {
    pub role: Option<Role>,
    /// Targets: peer names or `ip:port`.
    #[serde(default)]
    pub call: Vec<String>,
    pub interval: Option<f64>,
    pub serve: Option<u16>,
    /// How long it keeps working after SIGTERM.
    pub drain: Option<f64>,
    #[serde(default)]
    pub ignore_term: bool,
    /// App roles: install no SIGTERM handler at all (the default action
    /// stays: death, unless the process is its pid namespace's init).
    #[serde(default)]
    pub default_term: bool,
    /// App roles: SIGURG sent to one of its own threads this many times a
    /// second (Go's goroutine preemption).
    pub preempt_per_s: Option<u32>,
    pub ready_after: Option<f64>,
    /// Proxy: delay before the capture ports listen; db-proxy: before its
    /// `listen` port does; app: before its `serve` port does.
    pub listen_delay: Option<f64>,
    /// Proxy: abort (SIGABRT) after this long, in every run of the container
    /// up to `crashTimes`.
    pub crash_after: Option<f64>,
    /// How many runs crash (default 1).
    pub crash_times: Option<u32>,
    /// Istio proxy: Istio's real process tree, pilot-agent as PID 1 and
    /// Envoy its child (drain on SIGTERM, then pilot-agent SIGKILLs Envoy).
    #[serde(default)]
    pub pilot_agent: bool,
    pub work: Option<f64>,
    pub exit_code: Option<i32>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub sink: Option<String>,
    pub vault: Option<String>,
    pub health_port: Option<u16>,
    /// Log shipper: the port it accepts the app's logs on (Fluent Bit's
    /// forward input, 24224), closed at SIGTERM.
    pub forward_port: Option<u16>,
    #[serde(default)]
    pub once: bool,
    /// Job worker: POST `/quitquitquit` to this address (peer or `ip:port`,
    /// with another path after it: `127.0.0.1:4191/shutdown` for Linkerd)
    /// as its last act.
    pub quit: Option<String>,
    /// Proxy: holds a connection to this peer open for its whole life (a
    /// control-plane stream); Linkerd's `/shutdown` waits for it to end,
    /// which it never does (linkerd/linkerd2#8033).
    pub linger: Option<String>,
}

/// Pod names: one or a list.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum PodNames {
    One(String),
    Many(Vec<String>),
}

impl PodNames {
    pub fn names(&self) -> Vec<String> {
        match self {
            Self::One(name) => vec![name.clone()],
            Self::Many(names) => names.clone(),
        }
    }
}

/// One step of a scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Step {
    /// Until each pod is Ready.
    WaitReady(PodNames),
    /// Until a container counts as started (startup probe passed, or
    /// running with its postStart done).
    WaitStarted { pod: String, container: String },
    /// Until a container's current run has exited.
    WaitExited { pod: String, container: String },
    /// Until the pod reports this phase.
    WaitPhase { pod: String, phase: String },
    /// Until a container has restarted this many times.
    WaitRestarts {
        pod: String,
        container: String,
        count: u32,
    },
    /// Let time pass (scenario seconds).
    Sleep(f64),
    /// Graceful delete of the pods at once (a node drain when several);
    /// `grace` overrides `terminationGracePeriodSeconds`.
    Delete {
        pods: PodNames,
        #[serde(default)]
        grace: Option<i64>,
    },
    /// Until the pods are gone from the API.
    WaitGone(PodNames),
    /// A host process that is not the container runtime (an operator's
    /// `kill` in a shell on the node) sends `signal` (`SIGTERM`, `TERM`,
    /// `15`) to the container's PID 1: the shell's builtin, as
    /// `sh -c 'kill -s TERM <pid>'`.
    HostKill {
        pod: String,
        container: String,
        signal: String,
    },
    /// The node's kubelet dies and starts again `down` seconds later: the
    /// new one posts its `Starting` Event and retries every termination in
    /// progress from the start, with the full grace.
    RestartKubelet { down: f64 },
    /// A client elsewhere in the cluster calls the pod's address on `port`
    /// every `every` seconds for `for` seconds, in the background (the
    /// next step follows at once): inbound traffic, which a mesh's
    /// capture hands to the proxy and the proxy forwards to the app.
    Call {
        pod: String,
        port: u16,
        every: f64,
        #[serde(rename = "for")]
        for_s: f64,
    },
}

/// What the scenario shows, for the tests and the audits: exactly the
/// findings `lifecycle-agent report` must produce for the recording (put
/// on the cluster's clock), with the scenario's kubelet version assumed.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Expectations {
    /// Every finding, once per finding the audit reports (a kind reported
    /// twice, e.g. one bypass window per outage, is listed twice).
    #[serde(default)]
    pub findings: Vec<ExpectedFinding>,
    /// No finding at all (then `findings` is empty).
    #[serde(default)]
    pub clean: bool,
    /// The findings when the tests play the scenario with another kubelet
    /// version's behaviour (and audit it assuming that version).
    #[serde(default)]
    pub other_kubelets: Vec<KubeletExpectations>,
}

/// The findings of the scenario played as another kubelet version.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeletExpectations {
    pub kubelet: KubeletVersion,
    #[serde(default)]
    pub findings: Vec<ExpectedFinding>,
    #[serde(default)]
    pub clean: bool,
}

impl Expectations {
    /// The findings expected when played as `played` by a scenario written
    /// for `written`; `None` when the file says nothing for that version.
    pub fn for_kubelet(
        &self,
        written: KubeletVersion,
        played: KubeletVersion,
    ) -> Option<&[ExpectedFinding]> {
        if played == written {
            return Some(&self.findings);
        }
        self.other_kubelets
            .iter()
            .find(|k| k.kubelet == played)
            .map(|k| k.findings.as_slice())
    }

    /// Contradictions in the file: `clean` with findings, neither of them.
    pub fn problems(&self) -> Vec<String> {
        let own = std::iter::once((None, self.clean, &self.findings));
        let others = self
            .other_kubelets
            .iter()
            .map(|k| (Some(k.kubelet), k.clean, &k.findings));
        own.chain(others)
            .filter_map(|(version, clean, findings)| {
                let which = version.map_or_else(String::new, |v| format!(" (kubelet {v})"));
                match (clean, findings.is_empty()) {
                    (true, false) => Some(format!("clean but findings listed{which}")),
                    (false, true) => Some(format!("neither clean nor findings{which}")),
                    _ => None,
                }
            })
            .collect()
    }
}

/// One expected audit finding, matched on every field but `note`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExpectedFinding {
    /// Rule id of lifecycle-rules.md (`T3`, `M4`, ...).
    pub rule: String,
    /// The finding's `kind` (docs/audits.md), e.g. `startup_race`.
    pub kind: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// metadata.name of the pod.
    pub pod: String,
    /// The container the finding names; absent for findings about the
    /// pod (e.g. `refused_while_proxy_down`, one per bypass window).
    #[serde(default)]
    pub container: Option<String>,
    /// Why, for a person; not compared.
    #[serde(default)]
    pub note: String,
}
