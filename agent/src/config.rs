//! Command-line configuration. Every flag has an environment variable
//! `LIFECYCLE_AGENT_<NAME>`.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{
    attribution::CacheConfig,
    audit::{AuditConfig, KubeletVersion},
    kernel::loader::ProbeOptions,
    pods::{PendingLimits, StoreConfig},
    record::{KubeOptions, RecordOptions},
    report::Format,
};

#[derive(Debug, Parser)]
#[command(
    name = "lifecycle-agent",
    version,
    about = "Records what really happens when pods start and stop"
)]
pub struct Cli {
    /// Log filter (tracing EnvFilter syntax), e.g. `info,lifecycle_agent=debug`.
    #[arg(
        long,
        env = "LIFECYCLE_AGENT_LOG",
        default_value = "info",
        global = true
    )]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the attributed kernel event stream as NDJSON.
    Record(RecordArgs),
    /// Audit the pod starts and stops of a recording and print a report.
    Report(ReportArgs),
    /// Compare the audits of two recordings per workload (before/after).
    Compare(CompareArgs),
}

/// Settings shared by the audit commands.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Kubelet version whose lifecycle semantics the rules assume (the
    /// recording does not carry it), e.g. `1.29` or `1.33.2`.
    #[arg(long, env = "LIFECYCLE_AGENT_KUBELET_VERSION", default_value = "1.33")]
    pub kubelet_version: KubeletVersion,
}

impl AuditArgs {
    pub fn config(&self) -> AuditConfig {
        AuditConfig {
            kubelet: self.kubelet_version,
            ..AuditConfig::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The recording (NDJSON from `record`).
    pub recording: PathBuf,
    /// `text` (a timeline per pod for the terminal), `json` (see
    /// docs/audits.md) or `html` (one self-contained page).
    #[arg(
        long,
        value_enum,
        env = "LIFECYCLE_AGENT_REPORT_FORMAT",
        default_value = "text"
    )]
    pub format: Format,
    /// Write the report here instead of stdout.
    #[arg(long, short, env = "LIFECYCLE_AGENT_REPORT_OUTPUT")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub audit: AuditArgs,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The recording before the change.
    pub before: PathBuf,
    /// The recording after the change.
    pub after: PathBuf,
    /// `text` or `json`.
    #[arg(
        long,
        value_enum,
        env = "LIFECYCLE_AGENT_REPORT_FORMAT",
        default_value = "text"
    )]
    pub format: Format,
    /// Write the comparison here instead of stdout.
    #[arg(long, short, env = "LIFECYCLE_AGENT_REPORT_OUTPUT")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub audit: AuditArgs,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Output file; `-` for stdout.
    #[arg(long, short, env = "LIFECYCLE_AGENT_OUTPUT", default_value = "-")]
    pub output: PathBuf,
    /// Stop after this long (e.g. `30s`, `5m`); default: until SIGINT/SIGTERM.
    #[arg(long, env = "LIFECYCLE_AGENT_DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub probes: ProbeArgs,
    /// Interval between `stats` lines in the recording.
    #[arg(long, env = "LIFECYCLE_AGENT_STATS_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub stats_interval: Duration,
    /// Create this file once the probes are attached (for scripts and tests).
    #[arg(long, env = "LIFECYCLE_AGENT_READY_FILE")]
    pub ready_file: Option<PathBuf>,
    /// How long a removed cgroup stays attributable.
    #[arg(long, env = "LIFECYCLE_AGENT_REMOVED_CGROUP_TTL", default_value = "120s", value_parser = humantime::parse_duration)]
    pub removed_cgroup_ttl: Duration,
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Measure each probe's kernel run time (BPF_ENABLE_STATS) and print it at exit.
    #[arg(long, env = "LIFECYCLE_AGENT_PROBE_STATS")]
    pub probe_stats: bool,
}

/// The pod watch; on when a node name is given.
#[derive(Debug, Args)]
pub struct KubeArgs {
    /// This node's name (in a DaemonSet: from the downward API,
    /// `spec.nodeName`). Turns on the watch of this node's pods and the join
    /// of kernel events with pod and container names.
    #[arg(long, env = "LIFECYCLE_AGENT_NODE_NAME")]
    pub node_name: Option<String>,
    /// Kubeconfig to reach the API server; default: in-cluster config.
    #[arg(long, env = "LIFECYCLE_AGENT_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Longest a kernel event waits for the API to report its container.
    #[arg(long, env = "LIFECYCLE_AGENT_PENDING_MAX_AGE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub pending_max_age: Duration,
    /// Most kernel events waiting for their container at once.
    #[arg(
        long,
        env = "LIFECYCLE_AGENT_PENDING_MAX_EVENTS",
        default_value_t = 4096
    )]
    pub pending_max_events: usize,
    /// How long a deleted pod stays in the pod model for late events.
    #[arg(long, env = "LIFECYCLE_AGENT_DELETED_POD_TTL", default_value = "10m", value_parser = humantime::parse_duration)]
    pub deleted_pod_ttl: Duration,
}

impl KubeArgs {
    pub fn options(&self) -> Option<KubeOptions> {
        let node_name = self.node_name.clone()?;
        Some(KubeOptions {
            kubeconfig: self.kubeconfig.clone(),
            node_name,
            pending: PendingLimits {
                max_items: self.pending_max_events,
                max_age: self.pending_max_age,
            },
            store: StoreConfig {
                deleted_ttl: self.deleted_pod_ttl,
                ..StoreConfig::default()
            },
        })
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Ring buffer size in bytes (power of two, at least 4096).
    #[arg(long, env = "LIFECYCLE_AGENT_RING_BUFFER_BYTES", default_value_t = 8 << 20)]
    pub ring_buffer_bytes: u32,
    /// Keep events of every cgroup, not only those below kubepods roots.
    #[arg(long, env = "LIFECYCLE_AGENT_ALL_CGROUPS")]
    pub all_cgroups: bool,
    /// Never mount tracefs; fail if it is not mounted.
    #[arg(long, env = "LIFECYCLE_AGENT_NO_MOUNT_TRACEFS")]
    pub no_mount_tracefs: bool,
}

impl ProbeArgs {
    pub fn options(&self) -> ProbeOptions {
        ProbeOptions {
            ring_buffer_bytes: self.ring_buffer_bytes,
            filter_to_watch_roots: !self.all_cgroups,
            mount_tracefs: !self.no_mount_tracefs,
        }
    }
}

impl RecordArgs {
    pub fn options(&self) -> RecordOptions {
        RecordOptions {
            probes: self.probes.options(),
            duration: self.duration,
            stats_interval: self.stats_interval,
            ready_file: self.ready_file.clone(),
            cache: CacheConfig {
                removed_ttl: self.removed_cgroup_ttl,
                ..CacheConfig::default()
            },
            probe_stats: self.probe_stats,
            kubernetes: self.kube.options(),
        }
    }
}
