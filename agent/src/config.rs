//! Command-line configuration. Every flag has an environment variable
//! `LIFECYCLE_AGENT_<NAME>`.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

use crate::{
    attribution::CacheConfig,
    audit::{AuditConfig, KubeletVersion},
    event_loop::{KubeOptions, LoopOptions},
    kernel::{
        loader::ProbeOptions,
        signal_mask::{DEFAULT_SIGNALS, SignalMask},
    },
    pods::{PendingLimits, StoreConfig},
    recorder::RecordOptions,
    report::Format,
};

/// Port of `/healthz`, `/readyz` and `/metrics` (`run --health-addr`).
pub const DEFAULT_HEALTH_PORT: u16 = 9464;
/// Default listen address of `run`: localhost only. A DaemonSet whose
/// kubelet probes and Prometheus reach the pod IP sets `0.0.0.0:9464`.
pub const DEFAULT_HEALTH_ADDR: &str = "127.0.0.1:9464";
pub use crate::run::health::{HEALTHZ_PATH, METRICS_PATH, READYZ_PATH};

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
    /// Audit a recording and send its traces and metrics over OTLP
    /// (forensics); prints what was exported and dropped.
    Export(Box<ExportCommandArgs>),
    /// Check whether this node can run the agent (kernel, BTF, tracefs,
    /// cgroups, capabilities, BPF); exit code 1 when a check fails.
    Doctor(DoctorArgs),
    /// The node daemon: probes, pod watch, live audits, OTLP export,
    /// `/healthz`, `/readyz`, `/metrics`.
    Run(Box<RunArgs>),
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

/// `export`: a recording's audits as OTLP traces and metrics.
#[derive(Debug, Args)]
pub struct ExportCommandArgs {
    /// The recording (NDJSON from `record`).
    pub recording: PathBuf,
    /// The node the recording was made on (`k8s.node.name` of the
    /// exported resource).
    #[arg(long, env = "LIFECYCLE_AGENT_NODE_NAME")]
    pub node_name: Option<String>,
    /// Longest the final flush of spans and metrics may take.
    #[arg(long, env = "LIFECYCLE_AGENT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
    /// Print the summary as JSON.
    #[arg(long, env = "LIFECYCLE_AGENT_EXPORT_JSON")]
    pub json: bool,
    /// Also print the metrics as Prometheus text.
    #[arg(long, env = "LIFECYCLE_AGENT_PRINT_METRICS")]
    pub print_metrics: bool,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub export: crate::export::ExportArgs,
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
    #[arg(long, env = "LIFECYCLE_AGENT_RING_BUFFER_BYTES", default_value_t = crate::kernel::loader::DEFAULT_RING_BUFFER_BYTES)]
    pub ring_buffer_bytes: u32,
    /// Keep events of every cgroup, not only those below kubepods roots.
    #[arg(long, env = "LIFECYCLE_AGENT_ALL_CGROUPS")]
    pub all_cgroups: bool,
    /// Never mount tracefs; fail if it is not mounted.
    #[arg(long, env = "LIFECYCLE_AGENT_NO_MOUNT_TRACEFS")]
    pub no_mount_tracefs: bool,
    /// Signals recorded (comma list of names or numbers: TERM, SIGUSR2, 23,
    /// RTMIN+1); the kernel only counts the others (`filtered_signals`).
    #[arg(long, env = "LIFECYCLE_AGENT_SIGNALS", default_value = DEFAULT_SIGNALS)]
    pub signals: SignalMask,
    /// Record every signal, housekeeping included (forensics); beats `--signals`.
    #[arg(long, env = "LIFECYCLE_AGENT_ALL_SIGNALS")]
    pub all_signals: bool,
}

impl ProbeArgs {
    pub fn options(&self) -> ProbeOptions {
        ProbeOptions {
            ring_buffer_bytes: self.ring_buffer_bytes,
            filter_to_watch_roots: !self.all_cgroups,
            mount_tracefs: !self.no_mount_tracefs,
            signal_mask: match self.all_signals {
                true => SignalMask::ALL,
                false => self.signals,
            },
        }
    }
}

impl RecordArgs {
    pub fn options(&self) -> RecordOptions {
        RecordOptions {
            event_loop: LoopOptions {
                probes: self.probes.options(),
                kubernetes: self.kube.options(),
                stats_interval: self.stats_interval,
                probe_stats: self.probe_stats,
            },
            duration: self.duration,
            ready_file: self.ready_file.clone(),
            cache: CacheConfig {
                removed_ttl: self.removed_cgroup_ttl,
                ..CacheConfig::default()
            },
        }
    }
}

/// `run`: the node daemon. Every flag can also come from the environment
/// (`LIFECYCLE_AGENT_<FLAG>`) or from the `--config` file (`flag: value`
/// lines, flag names without dashes' prefix); a flag beats the
/// environment, which beats the file.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A file of `flag-name: value` lines (YAML-like, `#` comments).
    #[arg(long, env = "LIFECYCLE_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, env = "LIFECYCLE_AGENT_HEALTH_ADDR", default_value = DEFAULT_HEALTH_ADDR)]
    pub health_addr: std::net::SocketAddr,
    /// Host `/proc` (in a pod, a read-only mount of the host's), read to
    /// recover running containers after a restart.
    #[arg(long, env = "LIFECYCLE_AGENT_PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,
    /// Directory of the recording journal (rotated NDJSON); off if unset.
    #[arg(long, env = "LIFECYCLE_AGENT_JOURNAL_DIR")]
    pub journal_dir: Option<PathBuf>,
    /// Size at which a journal file is rotated.
    #[arg(long, env = "LIFECYCLE_AGENT_JOURNAL_MAX_FILE_BYTES", default_value_t = 64 << 20)]
    pub journal_max_file_bytes: u64,
    /// Rotated journal files kept besides the current one.
    #[arg(long, env = "LIFECYCLE_AGENT_JOURNAL_MAX_FILES", default_value_t = 4)]
    pub journal_max_files: usize,
    /// Interval of the pipeline statistics (self-telemetry, journal).
    #[arg(long, env = "LIFECYCLE_AGENT_STATS_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub stats_interval: Duration,
    /// Longest the stop on SIGTERM takes to flush the exporter.
    #[arg(long, env = "LIFECYCLE_AGENT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
    /// How long a removed cgroup stays attributable.
    #[arg(long, env = "LIFECYCLE_AGENT_REMOVED_CGROUP_TTL", default_value = "120s", value_parser = humantime::parse_duration)]
    pub removed_cgroup_ttl: Duration,
    /// Records an audit keeps per pod (about 1 KB each in memory); past it
    /// the older half of its socket records is dropped (counted).
    #[arg(
        long,
        env = "LIFECYCLE_AGENT_MAX_RECORDS_PER_POD",
        default_value_t = crate::run::LIVE_MAX_RECORDS_PER_POD
    )]
    pub max_records_per_pod: usize,
    #[command(flatten)]
    pub probes: ProbeArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub export: crate::export::ExportArgs,
    #[command(flatten)]
    pub events: crate::api_events::EventsArgs,
}

impl RunArgs {
    /// The daemon's options; fails on a bad export setting.
    pub fn options(&self) -> Result<crate::run::RunOptions, crate::export::ExportError> {
        let probes = self.probes.options();
        Ok(crate::run::RunOptions {
            preflight: crate::preflight::PreflightOptions::for_run(&probes, &self.proc_root),
            event_loop: LoopOptions {
                probes,
                kubernetes: self.kube.options(),
                stats_interval: self.stats_interval,
                probe_stats: false,
            },
            cache: CacheConfig {
                removed_ttl: self.removed_cgroup_ttl,
                ..CacheConfig::default()
            },
            audit: AuditConfig {
                max_records_per_pod: self.max_records_per_pod,
                ..self.audit.config()
            },
            export: self.export.config()?,
            events: self.events.config(self.kube.node_name.as_deref()),
            health_addr: self.health_addr,
            journal: self
                .journal_dir
                .as_ref()
                .map(|dir| crate::run::journal::JournalOptions {
                    dir: dir.clone(),
                    max_file_bytes: self.journal_max_file_bytes,
                    max_files: self.journal_max_files,
                }),
            proc_root: self.proc_root.clone(),
            shutdown_timeout: self.shutdown_timeout,
        })
    }
}

/// Output of `doctor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DoctorFormat {
    Text,
    Json,
}

/// `doctor`: the preflight checks of `run`, printed.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// `text` or `json`.
    #[arg(
        long,
        value_enum,
        env = "LIFECYCLE_AGENT_DOCTOR_FORMAT",
        default_value = "text"
    )]
    pub format: DoctorFormat,
    /// The kernel's BTF.
    #[arg(long, env = "LIFECYCLE_AGENT_BTF_PATH", default_value = crate::kernel::btf::VMLINUX_BTF)]
    pub btf_path: PathBuf,
    /// A tracefs mount point; default: where the agent looks
    /// (/sys/kernel/tracing, /sys/kernel/debug/tracing, mountinfo).
    #[arg(long, env = "LIFECYCLE_AGENT_TRACEFS_PATH")]
    pub tracefs_path: Option<PathBuf>,
    /// The host's `/proc` (`/host/proc` in the DaemonSet), as `run --proc-root`.
    #[arg(long, env = "LIFECYCLE_AGENT_PROC_ROOT", default_value = "/proc")]
    pub proc_root: PathBuf,
    #[command(flatten)]
    pub probes: ProbeArgs,
}

impl DoctorArgs {
    pub fn options(&self) -> crate::preflight::PreflightOptions {
        crate::preflight::PreflightOptions {
            btf_path: self.btf_path.clone(),
            tracefs_path: self.tracefs_path.clone(),
            ..crate::preflight::PreflightOptions::for_run(&self.probes.options(), &self.proc_root)
        }
    }
}
