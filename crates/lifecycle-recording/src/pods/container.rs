//! The lifecycle facts of one container: kind and role, probes, hooks,
//! stop signal, ports and user, as the spec declares them.

#[cfg(feature = "k8s")]
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};
#[cfg(feature = "k8s")]
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

#[cfg(feature = "k8s")]
use crate::pods::annotations::LifecycleAnnotations;
#[cfg(feature = "k8s")]
use crate::pods::classify::{self, ClassificationRules};
use crate::pods::classify::{ContainerKind, Section, SidecarRole};

/// Longest exec command kept (longer ones are cut, marked with `…`).
#[cfg(feature = "k8s")]
const MAX_COMMAND_LEN: usize = 160;

/// A port given by number or by container-port name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortRef {
    /// A port number.
    Number(i32),
    /// A named container port.
    Name(Box<str>),
}

#[cfg(feature = "k8s")]
impl From<&IntOrString> for PortRef {
    fn from(value: &IntOrString) -> Self {
        match value {
            IntOrString::Int(n) => Self::Number(*n),
            IntOrString::String(s) => Self::Name(s.as_str().into()),
        }
    }
}

#[cfg(feature = "k8s")]
fn command_text(argv: Option<&Vec<String>>) -> Box<str> {
    let mut text = argv.map(|a| a.join(" ")).unwrap_or_default();
    if text.len() > MAX_COMMAND_LEN {
        let mut cut = MAX_COMMAND_LEN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text.into()
}

/// What a probe or hook does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum HookFacts {
    /// Runs a command in the container (argv joined by spaces).
    Exec {
        /// The command line.
        command: Box<str>,
    },
    /// An HTTP GET.
    HttpGet {
        /// Target port.
        port: PortRef,
        /// Request path.
        path: Option<Box<str>>,
    },
    /// A TCP connect.
    TcpSocket {
        /// Target port.
        port: PortRef,
    },
    /// A gRPC health check.
    Grpc {
        /// Target port.
        port: i32,
    },
    /// The kubelet sleeps (lifecycle `sleep` action).
    Sleep {
        /// Seconds.
        seconds: i64,
    },
    /// No handler set (an invalid object, kept rather than dropped).
    Unspecified,
}

#[cfg(feature = "k8s")]
impl From<&LifecycleHandler> for HookFacts {
    fn from(h: &LifecycleHandler) -> Self {
        if let Some(exec) = &h.exec {
            Self::Exec {
                command: command_text(exec.command.as_ref()),
            }
        } else if let Some(http) = &h.http_get {
            Self::HttpGet {
                port: (&http.port).into(),
                path: http.path.as_deref().map(Box::from),
            }
        } else if let Some(tcp) = &h.tcp_socket {
            Self::TcpSocket {
                port: (&tcp.port).into(),
            }
        } else if let Some(sleep) = &h.sleep {
            Self::Sleep {
                seconds: sleep.seconds,
            }
        } else {
            Self::Unspecified
        }
    }
}

/// A probe: its action and timing (defaults filled in as the kubelet does).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeFacts {
    /// What the probe does.
    pub action: HookFacts,
    /// `initialDelaySeconds` (default 0).
    pub initial_delay_s: i32,
    /// `periodSeconds` (default 10).
    pub period_s: i32,
    /// `failureThreshold` (default 3).
    pub failure_threshold: i32,
}

#[cfg(feature = "k8s")]
impl From<&Probe> for ProbeFacts {
    fn from(p: &Probe) -> Self {
        let action = if let Some(exec) = &p.exec {
            HookFacts::Exec {
                command: command_text(exec.command.as_ref()),
            }
        } else if let Some(http) = &p.http_get {
            HookFacts::HttpGet {
                port: (&http.port).into(),
                path: http.path.as_deref().map(Box::from),
            }
        } else if let Some(tcp) = &p.tcp_socket {
            HookFacts::TcpSocket {
                port: (&tcp.port).into(),
            }
        } else if let Some(grpc) = &p.grpc {
            HookFacts::Grpc { port: grpc.port }
        } else {
            HookFacts::Unspecified
        };
        Self {
            action,
            initial_delay_s: p.initial_delay_seconds.unwrap_or(0),
            period_s: p.period_seconds.unwrap_or(10),
            failure_threshold: p.failure_threshold.unwrap_or(3),
        }
    }
}

/// The lifecycle facts of one container.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpecFacts {
    /// Container name.
    pub name: Box<str>,
    /// Image reference as written in the spec.
    pub image: Box<str>,
    /// Where it is declared.
    pub section: Section,
    /// Position within its section (0-based, spec order).
    pub index: u16,
    /// Lifecycle kind.
    pub kind: ContainerKind,
    /// Role.
    pub role: SidecarRole,
    /// `startupProbe`.
    pub startup_probe: Option<ProbeFacts>,
    /// `readinessProbe`.
    pub readiness_probe: Option<ProbeFacts>,
    /// `livenessProbe`.
    pub liveness_probe: Option<ProbeFacts>,
    /// `lifecycle.postStart`.
    pub post_start: Option<HookFacts>,
    /// `lifecycle.preStop`.
    pub pre_stop: Option<HookFacts>,
    /// `lifecycle.stopSignal`, when set.
    pub stop_signal: Option<Box<str>>,
    /// Declared container ports.
    pub ports: Vec<u16>,
    /// `securityContext.runAsUser` of the container.
    pub run_as_user: Option<i64>,
}

#[cfg(feature = "k8s")]
impl ContainerSpecFacts {
    pub(crate) fn from_container(
        c: &Container,
        section: Section,
        index: usize,
        annotations: &LifecycleAnnotations,
        rules: &ClassificationRules,
    ) -> Self {
        let role = classify::container_role(c, section, annotations, rules);
        let kind = classify::container_kind(c, section, role, rules);
        let lifecycle = c.lifecycle.as_ref();
        Self {
            name: c.name.as_str().into(),
            image: c.image.as_deref().unwrap_or_default().into(),
            section,
            index: u16::try_from(index).unwrap_or(u16::MAX),
            kind,
            role,
            startup_probe: c.startup_probe.as_ref().map(ProbeFacts::from),
            readiness_probe: c.readiness_probe.as_ref().map(ProbeFacts::from),
            liveness_probe: c.liveness_probe.as_ref().map(ProbeFacts::from),
            post_start: lifecycle
                .and_then(|l| l.post_start.as_ref())
                .map(HookFacts::from),
            pre_stop: lifecycle
                .and_then(|l| l.pre_stop.as_ref())
                .map(HookFacts::from),
            stop_signal: lifecycle
                .and_then(|l| l.stop_signal.as_deref())
                .map(Box::from),
            ports: c
                .ports
                .iter()
                .flatten()
                .filter_map(|p| u16::try_from(p.container_port).ok())
                .collect(),
            run_as_user: c.security_context.as_ref().and_then(|s| s.run_as_user),
        }
    }
}

#[cfg(test)]
#[cfg(feature = "k8s")]
mod tests {
    use super::*;

    #[test]
    fn long_commands_are_cut_on_char_boundaries() {
        let argv = vec!["é".repeat(200)];
        let text = command_text(Some(&argv));
        assert!(text.len() <= MAX_COMMAND_LEN + '…'.len_utf8());
        assert!(text.ends_with('…'));
    }
}
