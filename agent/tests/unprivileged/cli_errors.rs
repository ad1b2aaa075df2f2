//! A failed command prints one message with its causes, each said once,
//! and no backtrace even with `RUST_BACKTRACE=1`.

use std::process::Output;

use crate::support::agent::command;

fn agent(args: &[&str]) -> Output {
    command(args)
        .env("RUST_BACKTRACE", "1")
        .env("LIFECYCLE_AGENT_LOG", "off")
        .output()
        .expect("the agent runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_no_backtrace(text: &str) {
    assert!(!text.to_lowercase().contains("backtrace"), "{text}");
}

#[test]
fn a_missing_recording_is_one_message_with_its_cause() {
    let out = agent(&["report", "/nonexistent/recording.jsonl"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(
        text.trim_end(),
        "error: cannot open recording /nonexistent/recording.jsonl\n  caused by: No such file or directory (os error 2)"
    );
}

#[test]
fn a_bad_flag_value_names_the_flag_without_a_backtrace() {
    let out = agent(&["record", "--duration", "soon"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("'--duration <DURATION>'"), "{text}");
    assert_eq!(text.matches("error:").count(), 1, "{text}");
    assert_no_backtrace(&text);
}

#[test]
fn an_unreachable_kubernetes_api_is_said_once() {
    let out = agent(&[
        "record",
        "--node-name",
        "node-a",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--output",
        "/dev/null",
    ]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.starts_with("error: the Kubernetes API is unavailable\n  caused by: kubeconfig /nonexistent/kubeconfig is unreadable"),
        "{text}"
    );
    assert_eq!(text.matches("Kubernetes API").count(), 1, "{text}");
    assert_eq!(text.matches("No such file").count(), 1, "{text}");
    assert_no_backtrace(&text);
}

#[test]
fn a_bad_export_setting_stops_the_daemon_before_it_serves_anything() {
    let started = std::time::Instant::now();
    let out = command(&["run", "--health-addr", "127.0.0.1:0"])
        .env("LIFECYCLE_AGENT_LOG", "info")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("the agent runs");
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    // Nothing started: no log line before the error (the health endpoints
    // log where they listen, the checks log each result).
    assert_eq!(
        text.trim_end(),
        r#"error: unsupported OTLP protocol "http/json" (grpc, http/protobuf)"#
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_bad_signal_name_or_number_is_named_before_anything_loads() {
    for (flag, value, said) in [
        ("record", "TERM,SIGFOO", "unknown signal name \"SIGFOO\""),
        ("record", "TERM,65", "signal number 65 is outside 1-64"),
        ("run", ",", "the signal list is empty"),
    ] {
        let out = agent(&[flag, "--signals", value]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains("'--signals <SIGNALS>'"), "{text}");
        assert!(text.contains(said), "{value}: {text}");
        assert_no_backtrace(&text);
    }
    // The variable is checked the same way.
    let out = command(&["record"])
        .env("LIFECYCLE_AGENT_SIGNALS", "TERM,NOPE")
        .env("LIFECYCLE_AGENT_LOG", "off")
        .output()
        .expect("the agent runs");
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("unknown signal name \"NOPE\""), "{text}");
}
