//! Loading `deploy/` into Kubernetes API types, building its overlays as
//! kustomize would (JSON 6902 patches on the base DaemonSet), and the
//! capability table of docs/operations.md.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment},
    core::v1::{ConfigMap, Container, EnvVar, Namespace, Service, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

mod capabilities;
mod collector;

pub use capabilities::*;
pub use collector::*;

pub const NAMESPACE: &str = "lifecycle-agent";

pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// The base kustomization (`deploy/` itself only points at it).
pub fn base_dir() -> PathBuf {
    deploy_dir().join("base")
}

/// The overlay directories under `deploy/overlays`, by name.
pub fn overlay_names() -> BTreeSet<String> {
    std::fs::read_dir(deploy_dir().join("overlays"))
        .expect("deploy/overlays")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
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

/// The `.yaml` files of `dir` other than its kustomization.
pub fn yaml_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect()
}

/// The `path` of every patch of `dir/kustomization.yaml`.
pub fn patch_files(dir: &Path) -> BTreeSet<String> {
    let doc = &documents(&dir.join("kustomization.yaml"))[0];
    let Some(patches) = doc["patches"].as_array() else {
        return BTreeSet::new();
    };
    patches
        .iter()
        .map(|p| p["path"].as_str().expect("patch path").to_owned())
        .collect()
}

/// The `resources` of `dir/kustomization.yaml`, in order.
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
    let dir = base_dir();
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
    documents(&base_dir().join("daemonset.yaml"))
        .into_iter()
        .find(|d| kind(d) == "DaemonSet")
        .expect("a DaemonSet in daemonset.yaml")
}

/// `json` with the JSON 6902 patches of the overlay `name` applied, as
/// kustomize does: each patch must target the agent's DaemonSet.
pub fn patched_by(name: &str, mut json: Value) -> Value {
    let dir = deploy_dir().join("overlays").join(name);
    let doc = &documents(&dir.join("kustomization.yaml"))[0];
    for patch in doc["patches"].as_array().into_iter().flatten() {
        let target = &patch["target"];
        assert_eq!(target["kind"], "DaemonSet", "{name}: {patch}");
        assert_eq!(target["name"], "lifecycle-agent", "{name}: {patch}");
        let file = patch["path"].as_str().expect("patch path");
        let ops = documents(&dir.join(file)).remove(0);
        let ops: json_patch::Patch = serde_json::from_value(ops)
            .unwrap_or_else(|e| panic!("{name}/{file}: not a JSON 6902 patch: {e}"));
        json_patch::patch(&mut json, &ops)
            .unwrap_or_else(|e| panic!("{name}/{file} does not apply: {e}"));
    }
    json
}

/// The DaemonSet the overlay `name` builds (its first resource is the
/// base; others, such as a PrometheusRule, are not DaemonSets).
pub fn overlay_daemonset_json(name: &str) -> Value {
    let dir = deploy_dir().join("overlays").join(name);
    assert_eq!(
        kustomization_resources(&dir)[0],
        "../../base",
        "{name} builds on the base"
    );
    patched_by(name, daemonset_json())
}

/// A Kubernetes quantity (`512Mi`, `100m`, `1`, `2G`) as a number of units.
pub fn quantity(q: &str) -> f64 {
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number
        .parse()
        .unwrap_or_else(|e| panic!("quantity {q:?}: {e}"));
    let scale = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("quantity {q:?}: unknown suffix {other:?}"),
    };
    number * scale
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
