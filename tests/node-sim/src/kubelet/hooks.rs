//! Lifecycle hooks: which process or call each one becomes.
//!
//! `exec` hooks run as a process inside the container (its cgroup and
//! network namespace, started by the driver, so its parent is outside the
//! container). A handful of real commands are recognised and played by the
//! workload's hook roles: `sleep N` (also under `sh -c`), `pilot-agent wait`,
//! `linkerd-await --port=P`, anything ending in `quitquitquit`. `httpGet`
//! hooks are calls the kubelet makes to the pod's address; `sleep` hooks are
//! the kubelet waiting.

use std::time::Duration;

use serde_json::Value;

use super::{plan::PlanError, probes::resolve_port};

/// A hook as the driver runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    /// The `sleep` action: the kubelet waits, no process.
    Sleep(Duration),
    /// An exec hook: `argv` for the workload binary; `command` as written.
    Exec {
        argv: Vec<String>,
        command: Vec<String>,
    },
    /// An `httpGet` hook to the pod's address.
    Http { port: u16, path: String },
}

fn basename(token: &str) -> &str {
    token.rsplit('/').next().unwrap_or(token)
}

impl Hook {
    pub fn from_handler(handler: &Value, container: &str, spec: &Value) -> Result<Self, PlanError> {
        if let Some(seconds) = handler.pointer("/sleep/seconds").and_then(Value::as_f64) {
            return Ok(Self::Sleep(crate::clock::secs(seconds)));
        }
        if let Some(http) = handler.get("httpGet") {
            let port = resolve_port(http.get("port"), container, spec)?;
            let path = http
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("/")
                .to_owned();
            return Ok(Self::Http { port, path });
        }
        if let Some(command) = handler.pointer("/exec/command").and_then(Value::as_array) {
            let command: Vec<String> = command
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect();
            let argv = recognise(&command).ok_or_else(|| PlanError::UnrecognisedExecHook {
                container: container.to_owned(),
                command: command.clone(),
            })?;
            return Ok(Self::Exec { argv, command });
        }
        Err(PlanError::UnsupportedHook {
            container: container.to_owned(),
            handler: handler.to_string(),
        })
    }
}

/// The workload arguments that play an exec hook's command.
fn recognise(command: &[String]) -> Option<Vec<String>> {
    let tokens: Vec<String> = match command {
        [shell, flag, script] if basename(shell).ends_with("sh") && flag == "-c" => {
            script.split_whitespace().map(str::to_owned).collect()
        }
        _ => command.to_vec(),
    };
    let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    if let Some(i) = tokens.iter().position(|t| basename(t) == "sleep") {
        let seconds: f64 = tokens.get(i + 1)?.trim_end_matches('s').parse().ok()?;
        return Some(strings(&[
            "hook-sleep",
            "--ms",
            &crate::clock::millis(seconds).to_string(),
        ]));
    }
    if let Some(url) = tokens.iter().find(|t| t.contains("quitquitquit")) {
        // `http://127.0.0.1:9091/quitquitquit` (curl, wget) names its
        // address; `pilot-agent request POST quitquitquit` means Istio's
        // agent port.
        let addr = url
            .trim_start_matches("http://")
            .split_once('/')
            .map(|(addr, _)| addr)
            .filter(|addr| addr.contains(':'))
            .map(|addr| addr.replace("localhost", "127.0.0.1"))
            .unwrap_or_else(|| "127.0.0.1:15020".to_owned());
        return Some(strings(&[
            "hook-http",
            "--addr",
            &addr,
            "--path",
            "/quitquitquit",
            "--method",
            "POST",
        ]));
    }
    // `pilot-agent request POST drain`: the request goes to Envoy's admin
    // API, which starts draining its inbound listeners.
    if tokens.iter().any(|t| basename(t) == "pilot-agent")
        && tokens.iter().any(|t| t == "request")
        && tokens.last().is_some_and(|t| t == "drain")
    {
        return Some(strings(&[
            "hook-http",
            "--addr",
            "127.0.0.1:15000",
            "--path",
            "/drain_listeners?inboundonly&graceful",
            "--method",
            "POST",
        ]));
    }
    if tokens.iter().any(|t| basename(t) == "pilot-agent") && tokens.iter().any(|t| t == "wait") {
        // pilot-agent wait's flags: `--timeoutSeconds` (60) and
        // `--periodMillis` (500), as `--flag=value` or `--flag value`.
        let flag = |name: &str| {
            tokens.iter().enumerate().find_map(|(i, t)| {
                t.strip_prefix(&format!("--{name}="))
                    .map(str::to_owned)
                    .or_else(|| (t == &format!("--{name}")).then(|| tokens.get(i + 1).cloned())?)
            })
        };
        let timeout_s: f64 = flag("timeoutSeconds").map_or(Some(60.0), |v| v.parse().ok())?;
        let period_ms: u64 = flag("periodMillis").map_or(Some(500), |v| v.parse().ok())?;
        return Some(strings(&[
            "hook-wait",
            "--addr",
            "127.0.0.1:15021",
            "--path",
            "/healthz/ready",
            "--timeout-ms",
            &crate::clock::millis(timeout_s).to_string(),
            "--period-ms",
            &period_ms.to_string(),
        ]));
    }
    if tokens.iter().any(|t| basename(t) == "linkerd-await") {
        let port = tokens
            .iter()
            .find_map(|t| t.strip_prefix("--port="))
            .unwrap_or("4191");
        let port: u16 = port.parse().ok()?;
        return Some(strings(&[
            "hook-wait",
            "--addr",
            &format!("127.0.0.1:{port}"),
            "--path",
            "/ready",
            "--timeout-ms",
            &crate::clock::millis(120.0).to_string(),
            "--period-ms",
            "5",
        ]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hook(handler: Value) -> Result<Hook, PlanError> {
        Hook::from_handler(
            &handler,
            "c",
            &json!({"name": "c", "ports": [{"name": "admin", "containerPort": 15020}]}),
        )
    }

    #[test]
    fn recognises_the_common_hooks() {
        assert_eq!(
            hook(json!({"sleep": {"seconds": 5}})).unwrap(),
            Hook::Sleep(Duration::from_secs(5))
        );
        let Hook::Exec { argv, .. } =
            hook(json!({"exec": {"command": ["/bin/sh", "-c", "sleep 3"]}})).unwrap()
        else {
            panic!("exec expected")
        };
        assert_eq!(argv, ["hook-sleep", "--ms", "3000"]);
        let Hook::Exec { argv, .. } =
            hook(json!({"exec": {"command": ["/bin/sleep", "20"]}})).unwrap()
        else {
            panic!("exec expected")
        };
        assert_eq!(argv[2], "20000");
        let Hook::Exec { argv, .. } =
            hook(json!({"exec": {"command": ["pilot-agent", "wait"]}})).unwrap()
        else {
            panic!("exec expected")
        };
        assert_eq!(&argv[..3], ["hook-wait", "--addr", "127.0.0.1:15021"]);
        assert_eq!(&argv[5..], ["--timeout-ms", "60000", "--period-ms", "500"]);
        let Hook::Exec { argv, .. } = hook(
            json!({"exec": {"command": ["pilot-agent", "wait", "--timeoutSeconds=4", "--periodMillis", "200"]}}),
        )
        .unwrap() else {
            panic!("exec expected")
        };
        assert_eq!(&argv[5..], ["--timeout-ms", "4000", "--period-ms", "200"]);
        let Hook::Exec { argv, .. } =
            hook(json!({"exec": {"command": ["/usr/lib/linkerd/linkerd-await", "--timeout=2m", "--port=4191"]}})).unwrap()
        else {
            panic!("exec expected")
        };
        assert_eq!(argv[2], "127.0.0.1:4191");
        for (command, addr) in [
            (
                json!(["pilot-agent", "request", "POST", "quitquitquit"]),
                "127.0.0.1:15020",
            ),
            (
                json!(["curl", "-X", "POST", "http://localhost:9091/quitquitquit"]),
                "127.0.0.1:9091",
            ),
        ] {
            let Hook::Exec { argv, .. } = hook(json!({"exec": {"command": command}})).unwrap()
            else {
                panic!("exec expected")
            };
            assert_eq!((argv[0].as_str(), argv[2].as_str()), ("hook-http", addr));
        }
        assert_eq!(
            hook(json!({"httpGet": {"path": "/drain", "port": "admin"}})).unwrap(),
            Hook::Http {
                port: 15020,
                path: "/drain".into()
            }
        );
        assert!(matches!(
            hook(json!({"exec": {"command": ["/app/drain", "--timeout=25s"]}})),
            Err(PlanError::UnrecognisedExecHook { .. })
        ));
    }
}
