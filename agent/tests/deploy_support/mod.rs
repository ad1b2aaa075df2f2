//! Loading `deploy/` into Kubernetes API types, and the capability table
//! of docs/operations.md. Shared by two test binaries, each using a part.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment},
    core::v1::{ConfigMap, Container, EnvVar, Namespace, Service, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

pub const NAMESPACE: &str = "lifecycle-agent";

pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every YAML document of a file, as JSON.
pub fn documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    yaml_serde::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|v| !v.is_null())
        .collect()
}

/// One manifest object in its API type.
#[derive(Debug)]
pub enum Object {
    Namespace(Namespace),
    ServiceAccount(ServiceAccount),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    Role(Role),
    RoleBinding(RoleBinding),
    DaemonSet(Box<DaemonSet>),
    Deployment(Box<Deployment>),
    Service(Box<Service>),
    ConfigMap(ConfigMap),
}

/// Deserialises `doc` as `T` and checks that serialising it back gives the
/// same JSON: the API types ignore unknown fields, so a misspelt or
/// misplaced field shows up as a difference here.
fn strict<T: DeserializeOwned + serde::Serialize>(doc: &Value, origin: &str) -> T {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{origin}: not a valid {}: {e}", kind(doc)));
    let back = serde_json::to_value(&typed).expect("serialise");
    assert_eq!(
        &back,
        doc,
        "{origin}: {} has fields the API type does not know (or wrong types)",
        kind(doc)
    );
    typed
}

pub fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or("<no kind>")
}

pub fn typed(doc: &Value, origin: &str) -> Object {
    match kind(doc) {
        "Namespace" => Object::Namespace(strict(doc, origin)),
        "ServiceAccount" => Object::ServiceAccount(strict(doc, origin)),
        "ClusterRole" => Object::ClusterRole(strict(doc, origin)),
        "ClusterRoleBinding" => Object::ClusterRoleBinding(strict(doc, origin)),
        "Role" => Object::Role(strict(doc, origin)),
        "RoleBinding" => Object::RoleBinding(strict(doc, origin)),
        "DaemonSet" => Object::DaemonSet(Box::new(strict(doc, origin))),
        "Deployment" => Object::Deployment(Box::new(strict(doc, origin))),
        "Service" => Object::Service(Box::new(strict(doc, origin))),
        "ConfigMap" => Object::ConfigMap(strict(doc, origin)),
        other => panic!("{origin}: unexpected kind {other}"),
    }
}

/// The resources of `deploy/kustomization.yaml`, in order.
pub fn kustomization_resources(dir: &Path) -> Vec<String> {
    let doc = &documents(&dir.join("kustomization.yaml"))[0];
    doc["resources"]
        .as_array()
        .expect("resources list")
        .iter()
        .map(|r| r.as_str().expect("resource path").to_owned())
        .collect()
}

/// Every object of the base (the kustomization's resources), with the
/// file it came from.
pub fn base_objects() -> Vec<(String, Value, Object)> {
    let dir = deploy_dir();
    let mut out = Vec::new();
    for file in kustomization_resources(&dir) {
        for doc in documents(&dir.join(&file)) {
            let object = typed(&doc, &file);
            out.push((file.clone(), doc, object));
        }
    }
    out
}

/// The base DaemonSet as JSON.
pub fn daemonset_json() -> Value {
    documents(&deploy_dir().join("daemonset.yaml"))
        .into_iter()
        .find(|d| kind(d) == "DaemonSet")
        .expect("a DaemonSet in daemonset.yaml")
}

/// One row of the capability table of docs/operations.md.
#[derive(Debug)]
pub struct CapabilityRow {
    /// Kubernetes spelling, e.g. `BPF`.
    pub name: String,
    pub daemonset: bool,
    pub sys_admin_overlay: bool,
}

const TABLE_MARKER: &str = "<!-- capabilities-table: read by agent/tests/deploy_daemonset.rs -->";

/// The table after the marker in docs/operations.md: `| `CAP_X` | yes | no | why |`.
pub fn capability_table() -> Vec<CapabilityRow> {
    let text = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"));
    let start = text
        .find(TABLE_MARKER)
        .expect("capability table marker in docs/operations.md");
    let yes = |cell: &str| match cell.trim() {
        "yes" => true,
        "no" => false,
        other => panic!("capability table cell {other:?} is neither yes nor no"),
    };
    text[start + TABLE_MARKER.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
            assert!(cells.len() >= 4, "short capability table row: {line}");
            let name = cells[0].trim().trim_matches('`');
            CapabilityRow {
                name: name.strip_prefix("CAP_").unwrap_or(name).to_owned(),
                daemonset: yes(cells[1]),
                sys_admin_overlay: yes(cells[2]),
            }
        })
        .collect()
}

/// The names of the rows where `pick` is true.
pub fn granted(rows: &[CapabilityRow], pick: impl Fn(&CapabilityRow) -> bool) -> BTreeSet<String> {
    rows.iter()
        .filter(|r| pick(r))
        .map(|r| r.name.clone())
        .collect()
}

/// `securityContext.capabilities.add` of the DaemonSet's agent container.
pub fn added_capabilities(ds: &DaemonSet) -> BTreeSet<String> {
    let container = &ds
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod spec")
        .containers[0];
    container
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The base DaemonSet.
pub fn daemonset() -> DaemonSet {
    base_objects()
        .into_iter()
        .find_map(|(_, _, o)| match o {
            Object::DaemonSet(ds) => Some(*ds),
            _ => None,
        })
        .expect("the kustomization has a DaemonSet")
}

/// The DaemonSet's only container, `agent`.
pub fn agent_container(ds: &DaemonSet) -> Container {
    let pod = ds
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .clone()
        .expect("pod spec");
    assert_eq!(pod.containers.len(), 1, "one container");
    assert_eq!(pod.containers[0].name, "agent");
    pod.containers[0].clone()
}

/// An environment variable of the container.
pub fn env<'a>(c: &'a Container, name: &str) -> &'a EnvVar {
    c.env
        .as_ref()
        .and_then(|e| e.iter().find(|v| v.name == name))
        .unwrap_or_else(|| panic!("env {name} is set"))
}
