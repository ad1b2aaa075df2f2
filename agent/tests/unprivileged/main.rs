//! The agent's tests that need no root: the CLI (`report`, `compare`,
//! `export`, error messages), the HTML report in Chromium, the OTLP and
//! Prometheus exporters against a real receiver, the `deploy/` manifests,
//! and the pod model against the test API server.

#![allow(clippy::unwrap_used)]

#[path = "../support"]
mod support {
    pub mod agent;
    pub mod deploy;
    pub mod export;
    pub mod pods;
}

mod alert_rules;
mod audit_cli;
mod audit_html;
mod cli_errors;
mod deploy_daemonset;
mod deploy_manifests;
mod export_metrics;
mod export_outage;
mod export_prometheus;
mod export_traces;
mod k8s_events;
mod pods_classify;
mod pods_events;
mod pods_join;
mod pods_pending;
mod pods_store;
mod pods_watch;
