//! The `--k8s-events*` flags of `run`, read into [`EventsConfig`].

use std::time::Duration;

use clap::{ArgAction, Args};

use super::limit::RateLimit;

/// Findings as Kubernetes Events. Every flag has a `LIFECYCLE_AGENT_*`
/// variable.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Post warning and error findings as `events.k8s.io/v1` Events on
    /// their pods (needs `--node-name`; RBAC create/patch on events).
    #[arg(long = "k8s-events", env = "LIFECYCLE_AGENT_K8S_EVENTS", default_value_t = true, action = ArgAction::Set)]
    pub enabled: bool,
    /// Post info findings too, as Normal Events.
    #[arg(long = "k8s-events-info", env = "LIFECYCLE_AGENT_K8S_EVENTS_INFO", default_value_t = false, action = ArgAction::Set)]
    pub info: bool,
    /// Events waiting to be posted at most; past it the oldest is dropped.
    #[arg(
        long = "k8s-events-queue",
        env = "LIFECYCLE_AGENT_K8S_EVENTS_QUEUE",
        default_value_t = 1000
    )]
    pub queue: usize,
    /// Events one pod may post at once.
    #[arg(
        long = "k8s-events-pod-burst",
        env = "LIFECYCLE_AGENT_K8S_EVENTS_POD_BURST",
        default_value_t = 25
    )]
    pub pod_burst: u32,
    /// A pod's budget regains one Event this often.
    #[arg(long = "k8s-events-pod-refill", env = "LIFECYCLE_AGENT_K8S_EVENTS_POD_REFILL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub pod_refill: Duration,
    /// Events the node may post at once.
    #[arg(
        long = "k8s-events-burst",
        env = "LIFECYCLE_AGENT_K8S_EVENTS_BURST",
        default_value_t = 100
    )]
    pub burst: u32,
    /// The node's budget regains one Event this often.
    #[arg(long = "k8s-events-refill", env = "LIFECYCLE_AGENT_K8S_EVENTS_REFILL", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub refill: Duration,
    /// Attempts per Event (the first included) before it is dropped.
    #[arg(
        long = "k8s-events-attempts",
        env = "LIFECYCLE_AGENT_K8S_EVENTS_ATTEMPTS",
        default_value_t = 6
    )]
    pub attempts: u32,
}

/// How `run` posts Events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsConfig {
    /// `reportingInstance`: this node.
    pub node_name: String,
    /// Post info findings as Normal Events too.
    pub include_info: bool,
    /// Events waiting to be posted at most.
    pub queue_capacity: usize,
    pub per_pod: RateLimit,
    pub node: RateLimit,
    /// Attempts per Event, the first included.
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Longest one request may take.
    pub request_timeout: Duration,
}

impl EventsConfig {
    /// The defaults, for `node_name`.
    pub fn new(node_name: String) -> Self {
        Self {
            node_name,
            include_info: false,
            queue_capacity: 1000,
            per_pod: RateLimit {
                burst: 25,
                every: Duration::from_secs(10),
            },
            node: RateLimit {
                burst: 100,
                every: Duration::from_millis(200),
            },
            max_attempts: 6,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl EventsArgs {
    /// `None` when off or without a node (no pod watch, no pods to name).
    pub fn config(&self, node_name: Option<&str>) -> Option<EventsConfig> {
        let node_name = node_name?;
        if !self.enabled {
            return None;
        }
        Some(EventsConfig {
            include_info: self.info,
            queue_capacity: self.queue.max(1),
            per_pod: RateLimit {
                burst: self.pod_burst.max(1),
                every: self.pod_refill,
            },
            node: RateLimit {
                burst: self.burst.max(1),
                every: self.refill,
            },
            max_attempts: self.attempts.max(1),
            ..EventsConfig::new(node_name.to_owned())
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::config::{Cli, Command};
    use crate::config_file::with_config_file;

    fn run_args(args: &[&str]) -> crate::config::RunArgs {
        let args = with_config_file(args.iter().map(Into::into).collect()).expect("config");
        match Cli::try_parse_from(args).expect("parses").command {
            Command::Run(run) => *run,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn on_by_default_with_a_node_and_off_without_one() {
        let run = run_args(&["agent", "run", "--node-name", "n1"]);
        let c = run
            .events
            .config(run.kube.node_name.as_deref())
            .expect("on");
        assert_eq!(c, super::EventsConfig::new("n1".into()));
        let run = run_args(&["agent", "run"]);
        assert!(run.events.config(run.kube.node_name.as_deref()).is_none());
    }

    #[test]
    fn flags_and_the_config_file_set_the_budgets_and_turn_it_off() {
        let run = run_args(&[
            "agent",
            "run",
            "--node-name=n1",
            "--k8s-events-info=true",
            "--k8s-events-queue=7",
            "--k8s-events-pod-burst=3",
            "--k8s-events-pod-refill=1m",
            "--k8s-events-burst=9",
            "--k8s-events-refill=1s",
            "--k8s-events-attempts=2",
        ]);
        let c = run.events.config(Some("n1")).expect("on");
        assert!(c.include_info);
        assert_eq!(c.queue_capacity, 7);
        assert_eq!((c.per_pod.burst, c.per_pod.every.as_secs()), (3, 60));
        assert_eq!((c.node.burst, c.node.every.as_secs()), (9, 1));
        assert_eq!(c.max_attempts, 2);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agent.yaml");
        std::fs::write(&file, "k8s-events: false\n").unwrap();
        let config = format!("--config={}", file.display());
        let run = run_args(&["agent", "run", "--node-name=n1", &config]);
        assert!(run.events.config(Some("n1")).is_none(), "off from the file");
    }
}
