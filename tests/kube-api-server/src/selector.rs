//! Field selectors for pods and events.
//!
//! The API server supports a fixed set of fields per resource in
//! `fieldSelector` (pods: `metadata.name`, `metadata.namespace`,
//! `spec.nodeName`, `status.phase`, …; core events: `involvedObject.kind`,
//! `involvedObject.name`, `reason`, `source`, `type`, …; events.k8s.io
//! events: `regarding.*`, `reportingController`, …), each with `=`,
//! `==` or `!=`, joined by commas. Unsupported fields are
//! rejected with 400 like the real server does, so a typo in the agent's
//! selector fails loudly in tests instead of silently matching everything.

use serde_json::Value;

use crate::resource::Resource;

/// A parsed `fieldSelector`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    field: Field,
    value: String,
    negated: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Name,
    Namespace,
    NodeName,
    Phase,
    RestartPolicy,
    SchedulerName,
    ServiceAccountName,
    HostNetwork,
    PodIp,
    NominatedNodeName,
    /// An event's field, by JSON pointer (in the stored core form).
    Event(&'static str),
    /// An event's `source`: `source.component`, else `reportingComponent`.
    EventSource,
}

impl Field {
    fn parse(name: &str, resource: Resource) -> Option<Self> {
        match resource {
            Resource::Events => return Self::parse_core_event(name),
            // The events.k8s.io names map onto the stored core fields, as the
            // real server's field label conversion does.
            Resource::EventsV1 => {
                let core = match name {
                    "regarding.kind" => "involvedObject.kind",
                    "regarding.namespace" => "involvedObject.namespace",
                    "regarding.name" => "involvedObject.name",
                    "regarding.uid" => "involvedObject.uid",
                    "regarding.apiVersion" => "involvedObject.apiVersion",
                    "regarding.resourceVersion" => "involvedObject.resourceVersion",
                    "regarding.fieldPath" => "involvedObject.fieldPath",
                    "reportingController" => "reportingComponent",
                    "reason" | "source" | "type" | "metadata.name" | "metadata.namespace" => name,
                    _ => return None,
                };
                return Self::parse_core_event(core);
            }
            Resource::Pods => {}
        }
        Some(match name {
            "metadata.name" => Self::Name,
            "metadata.namespace" => Self::Namespace,
            "spec.nodeName" => Self::NodeName,
            "status.phase" => Self::Phase,
            "spec.restartPolicy" => Self::RestartPolicy,
            "spec.schedulerName" => Self::SchedulerName,
            "spec.serviceAccountName" => Self::ServiceAccountName,
            "spec.hostNetwork" => Self::HostNetwork,
            "status.podIP" => Self::PodIp,
            "status.nominatedNodeName" => Self::NominatedNodeName,
            _ => return None,
        })
    }

    fn parse_core_event(name: &str) -> Option<Self> {
        Some(Self::Event(match name {
            "metadata.name" => "/metadata/name",
            "metadata.namespace" => "/metadata/namespace",
            "involvedObject.kind" => "/involvedObject/kind",
            "involvedObject.namespace" => "/involvedObject/namespace",
            "involvedObject.name" => "/involvedObject/name",
            "involvedObject.uid" => "/involvedObject/uid",
            "involvedObject.apiVersion" => "/involvedObject/apiVersion",
            "involvedObject.resourceVersion" => "/involvedObject/resourceVersion",
            "involvedObject.fieldPath" => "/involvedObject/fieldPath",
            "reason" => "/reason",
            "reportingComponent" => "/reportingComponent",
            "source" => return Some(Self::EventSource),
            "type" => "/type",
            _ => return None,
        }))
    }

    /// The field's value in `pod`, with the API server's conventions for
    /// absent fields (empty string; `false` for hostNetwork).
    fn value_in(self, pod: &Value) -> String {
        let text = |ptr: &str| {
            pod.pointer(ptr)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        match self {
            Self::Name => text("/metadata/name"),
            Self::Namespace => text("/metadata/namespace"),
            Self::NodeName => text("/spec/nodeName"),
            Self::Phase => text("/status/phase"),
            Self::RestartPolicy => text("/spec/restartPolicy"),
            Self::SchedulerName => text("/spec/schedulerName"),
            Self::ServiceAccountName => text("/spec/serviceAccountName"),
            Self::PodIp => text("/status/podIP"),
            Self::NominatedNodeName => text("/status/nominatedNodeName"),
            Self::Event(ptr) => text(ptr),
            Self::EventSource => match text("/source/component") {
                component if component.is_empty() => text("/reportingComponent"),
                component => component,
            },
            Self::HostNetwork => pod
                .pointer("/spec/hostNetwork")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
        }
    }
}

/// Why a selector was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    /// A term has no `=`, `==` or `!=`.
    #[error("invalid selector term {0:?}: expected field=value or field!=value")]
    TermWithoutOperator(String),
    /// The field cannot be selected on for this resource.
    #[error("field label not supported: {0}")]
    UnsupportedField(String),
}

impl FieldSelector {
    /// Parses a pod selector; an empty string selects everything.
    #[cfg(test)]
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        Self::parse_for(text, Resource::Pods)
    }

    /// Parses a selector on `resource`'s fields.
    pub fn parse_for(text: &str, resource: Resource) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        for raw in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, value, negated) = if let Some((f, v)) = raw.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = raw.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = raw.split_once('=') {
                (f, v, false)
            } else {
                return Err(SelectorError::TermWithoutOperator(raw.to_owned()));
            };
            let field = Field::parse(field.trim(), resource)
                .ok_or_else(|| SelectorError::UnsupportedField(field.trim().to_owned()))?;
            terms.push(Term {
                field,
                value: value.trim().to_owned(),
                negated,
            });
        }
        Ok(Self { terms })
    }

    /// Whether `pod` satisfies every term.
    pub fn matches(&self, pod: &Value) -> bool {
        self.terms
            .iter()
            .all(|t| (t.field.value_in(pod) == t.value) != t.negated)
    }

    /// Whether the selector has no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_name_equality_and_negation() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "node-a"}});
        assert!(
            FieldSelector::parse("spec.nodeName=node-a")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            FieldSelector::parse("spec.nodeName==node-a")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("spec.nodeName=node-b")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("spec.nodeName!=node-a")
                .unwrap()
                .matches(&pod)
        );
        let both = FieldSelector::parse("spec.nodeName=node-a,metadata.name=p").unwrap();
        assert!(both.matches(&pod));
    }

    #[test]
    fn unscheduled_pod_matches_empty_node_name() {
        let pod = json!({"spec": {}});
        assert!(
            FieldSelector::parse("spec.nodeName=")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("spec.nodeName=node-a")
                .unwrap()
                .matches(&pod)
        );
    }

    #[test]
    fn unsupported_fields_are_refused() {
        assert_eq!(
            FieldSelector::parse("spec.containers=x"),
            Err(SelectorError::UnsupportedField("spec.containers".into()))
        );
        assert!(matches!(
            FieldSelector::parse("spec.nodeName"),
            Err(SelectorError::TermWithoutOperator(_))
        ));
        assert!(FieldSelector::parse("").unwrap().is_empty());
    }
}
