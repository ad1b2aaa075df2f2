//! Parser tests on the path shapes kubelet and the runtimes really produce.

use super::*;

const UID: &str = "1c3e5f0a-7b2d-4e8f-9a10-b2c3d4e5f607";
const STATIC_UID: &str = "5d1bcd7e6d1d4a6b8c7f0e9a8b7c6d5e";

fn uid_sd() -> String {
    UID.replace('-', "_")
}

fn cid() -> String {
    "0123456789abcdef".repeat(4)
}

fn container(runtime: Runtime, qos: QosClass, driver: CgroupDriver) -> CgroupClass {
    CgroupClass::Container(ContainerCgroup {
        runtime,
        container_id: cid(),
        pod_uid: UID.to_owned(),
        qos,
        driver,
        sub_path: None,
    })
}

fn with_sub(class: CgroupClass, sub: &str) -> CgroupClass {
    match class {
        CgroupClass::Container(mut c) => {
            c.sub_path = Some(sub.to_owned());
            CgroupClass::Container(c)
        }
        other => other,
    }
}

fn pod(qos: QosClass, driver: CgroupDriver) -> CgroupClass {
    CgroupClass::Pod(PodCgroup {
        pod_uid: UID.to_owned(),
        qos,
        driver,
    })
}

fn assert_unknown(path: &str) {
    let class = parse_cgroup_path(path);
    assert!(class.is_unknown(), "{path} -> {class:?}");
}

use CgroupDriver::{Cgroupfs, Systemd};
use QosClass::{BestEffort, Burstable, Guaranteed};

#[test]
fn systemd_containerd_all_qos() {
    let (u, c) = (uid_sd(), cid());
    let burstable = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{c}.scope"
    );
    let besteffort = format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/cri-containerd-{c}.scope"
    );
    let guaranteed = format!("/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{c}.scope");
    use Runtime::Containerd;
    assert_eq!(
        parse_cgroup_path(&burstable),
        container(Containerd, Burstable, Systemd)
    );
    assert_eq!(
        parse_cgroup_path(&besteffort),
        container(Containerd, BestEffort, Systemd)
    );
    assert_eq!(
        parse_cgroup_path(&guaranteed),
        container(Containerd, Guaranteed, Systemd)
    );
}

#[test]
fn systemd_crio_docker_and_conmon() {
    let (u, c) = (uid_sd(), cid());
    let base = format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice");
    assert_eq!(
        parse_cgroup_path(&format!("{base}/crio-{c}.scope")),
        container(Runtime::CriO, Burstable, Systemd)
    );
    assert_eq!(
        parse_cgroup_path(&format!("{base}/docker-{c}.scope")),
        container(Runtime::Docker, Burstable, Systemd)
    );
    assert_eq!(
        parse_cgroup_path(&format!("{base}/crio-conmon-{c}.scope")),
        CgroupClass::ConmonMonitor {
            container_id: c.clone(),
            pod_uid: UID.to_owned(),
            qos: Burstable,
            driver: Systemd,
        }
    );
}

#[test]
fn systemd_sub_cgroups_belong_to_the_container() {
    let (u, c) = (uid_sd(), cid());
    let base = format!("/kubepods.slice/kubepods-pod{u}.slice");
    assert_eq!(
        parse_cgroup_path(&format!("{base}/crio-{c}.scope/container")),
        with_sub(container(Runtime::CriO, Guaranteed, Systemd), "container")
    );
    assert_eq!(
        parse_cgroup_path(&format!("{base}/cri-containerd-{c}.scope/init.scope/a/")),
        with_sub(
            container(Runtime::Containerd, Guaranteed, Systemd),
            "init.scope/a"
        )
    );
    // A Kubernetes running inside a container stays attributed to the outer one.
    let inner = format!("{base}/cri-containerd-{c}.scope/kubepods.slice/kubepods-pod{u}.slice");
    assert_eq!(
        parse_cgroup_path(&inner),
        with_sub(
            container(Runtime::Containerd, Guaranteed, Systemd),
            &format!("kubepods.slice/kubepods-pod{u}.slice")
        )
    );
}

#[test]
fn systemd_parents() {
    let u = uid_sd();
    assert_eq!(
        parse_cgroup_path("/kubepods.slice"),
        CgroupClass::KubepodsRoot { driver: Systemd }
    );
    assert_eq!(
        parse_cgroup_path("/kubepods.slice/kubepods-besteffort.slice/"),
        CgroupClass::QosParent {
            driver: Systemd,
            qos: BestEffort
        }
    );
    assert_eq!(
        parse_cgroup_path(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice"
        )),
        pod(Burstable, Systemd)
    );
    assert_eq!(
        parse_cgroup_path(&format!("/kubepods.slice/kubepods-pod{u}.slice")),
        pod(Guaranteed, Systemd)
    );
}

#[test]
fn kind_style_prefixed_root() {
    let (u, c) = (uid_sd(), cid());
    let path = format!(
        "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/\
         kubelet-kubepods-besteffort-pod{u}.slice/cri-containerd-{c}.scope"
    );
    assert_eq!(
        parse_cgroup_path(&path),
        container(Runtime::Containerd, BestEffort, Systemd)
    );
    // Seen from the host, the kind node itself is a docker container: its
    // scope is a prefix, not the container being attributed.
    let host = format!("/system.slice/docker-{c}.scope{path}");
    assert_eq!(
        parse_cgroup_path(&host),
        container(Runtime::Containerd, BestEffort, Systemd)
    );
    assert_eq!(
        parse_cgroup_path(&format!(
            "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod{u}.slice"
        )),
        pod(Guaranteed, Systemd)
    );
}

#[test]
fn cgroupfs_all_qos_and_runtimes() {
    let c = cid();
    assert_eq!(
        parse_cgroup_path(&format!("/kubepods/burstable/pod{UID}/{c}")),
        container(Runtime::Unspecified, Burstable, Cgroupfs)
    );
    assert_eq!(
        parse_cgroup_path(&format!("/kubepods/besteffort/pod{UID}/crio-{c}")),
        container(Runtime::CriO, BestEffort, Cgroupfs)
    );
    assert_eq!(
        parse_cgroup_path(&format!("/kubepods/pod{UID}/{c}")),
        container(Runtime::Unspecified, Guaranteed, Cgroupfs)
    );
    assert_eq!(
        parse_cgroup_path(&format!("/kubepods/pod{UID}/crio-conmon-{c}")),
        CgroupClass::ConmonMonitor {
            container_id: c.clone(),
            pod_uid: UID.to_owned(),
            qos: Guaranteed,
            driver: Cgroupfs,
        }
    );
    assert_eq!(
        parse_cgroup_path(&format!("/kubepods/pod{UID}/{c}/nested")),
        with_sub(
            container(Runtime::Unspecified, Guaranteed, Cgroupfs),
            "nested"
        )
    );
}

#[test]
fn cgroupfs_parents_and_cgroup_root_prefix() {
    let c = cid();
    assert_eq!(
        parse_cgroup_path("/kubepods"),
        CgroupClass::KubepodsRoot { driver: Cgroupfs }
    );
    assert_eq!(
        parse_cgroup_path("/kubepods/burstable"),
        CgroupClass::QosParent {
            driver: Cgroupfs,
            qos: Burstable
        }
    );
    assert_eq!(
        parse_cgroup_path(&format!("/kubepods/pod{UID}")),
        pod(Guaranteed, Cgroupfs)
    );
    assert_eq!(
        parse_cgroup_path(&format!("/custom/root/kubepods/besteffort/pod{UID}/{c}")),
        container(Runtime::Unspecified, BestEffort, Cgroupfs)
    );
}

#[test]
fn static_pod_hash_uid() {
    let c = cid();
    let path = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{STATIC_UID}.slice/cri-containerd-{c}.scope"
    );
    assert_eq!(parse_cgroup_path(&path).pod_uid(), Some(STATIC_UID));
    let path = format!("/kubepods/pod{STATIC_UID}/{c}");
    assert_eq!(parse_cgroup_path(&path).pod_uid(), Some(STATIC_UID));
}

#[test]
fn malformed_uids_and_ids_are_unknown() {
    let (u, c) = (uid_sd(), cid());
    let short = &c[..63];
    let upper = c.to_uppercase();
    // systemd names escape '-' as '_': a dashed uid cannot come from kubelet.
    assert_unknown(&format!("/kubepods.slice/kubepods-pod{UID}.slice"));
    assert_unknown("/kubepods.slice/kubepods-podnot_a_uid.slice");
    assert_unknown(&format!(
        "/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{short}.scope"
    ));
    assert_unknown(&format!(
        "/kubepods.slice/kubepods-pod{u}.slice/crio-{upper}.scope"
    ));
    assert_unknown(&format!(
        "/kubepods.slice/kubepods-pod{u}.slice/crio-conmon-{short}.scope"
    ));
    assert_unknown(&format!("/kubepods/pod{u}/{c}"));
    assert_unknown(&format!("/kubepods/burstable/pod{UID}/{short}"));
    assert_unknown(&format!("/kubepods/burstable/pod{UID}/crio-{c}x"));
}

#[test]
fn unexpected_components_under_kubepods_are_unknown() {
    let (u, c) = (uid_sd(), cid());
    for path in [
        "/kubepods.slice/kubepods-guaranteed.slice".to_owned(),
        "/kubepods.slice/system.slice".to_owned(),
        "/kubepods.slice/kubepods-burstable.slice/other.slice".to_owned(),
        // Pod slice directly below the root but named for a QoS class.
        format!("/kubepods.slice/kubepods-burstable-pod{u}.slice"),
        // QoS of the pod slice does not match its parent.
        format!("/kubepods.slice/kubepods-burstable.slice/kubepods-besteffort-pod{u}.slice"),
        format!("/kubepods.slice/kubepods-pod{u}.slice/containerd-{c}.scope"),
        format!("/kubepods.slice/kubepods-pod{u}.slice/cri-containerd-{c}"),
        format!("/kubepods.slice/kubepods-pod{u}.slice/crio-{c}.slice"),
        "/kubepods/guaranteed/x".to_owned(),
        format!("/kubepods/burstable/{c}"),
        format!("/kubepods/pod{UID}/docker-{c}.scope"),
        // `-kubepods.slice` outside the slice systemd would nest it in.
        "/system.slice/kubelet-kubepods.slice".to_owned(),
        "/kubepods/../kubepods".to_owned(),
    ] {
        assert_unknown(&path);
    }
}

#[test]
fn paths_outside_kubepods() {
    let c = cid();
    for path in [
        "",
        "/",
        "/init.scope",
        "/system.slice/containerd.service",
        "/system.slice/kubelet.service",
        "/user.slice/user-1000.slice/session-3.scope",
        "/kubelet.slice",
        "/kubepods-burstable.slice",
        "/kubepodsx",
        "/system.slice/docker-x.scope",
    ] {
        assert_eq!(
            parse_cgroup_path(path),
            CgroupClass::NotKubernetes,
            "{path}"
        );
    }
    let docker = format!("/system.slice/docker-{c}.scope");
    assert_eq!(parse_cgroup_path(&docker), CgroupClass::NotKubernetes);
}

#[test]
fn watch_roots() {
    assert_eq!(is_watch_root("/kubepods.slice"), Some(Systemd));
    assert_eq!(is_watch_root("/kubepods.slice/"), Some(Systemd));
    assert_eq!(is_watch_root("/kubepods"), Some(Cgroupfs));
    assert_eq!(is_watch_root("/custom/kubepods"), Some(Cgroupfs));
    assert_eq!(
        is_watch_root("/kubelet.slice/kubelet-kubepods.slice"),
        Some(Systemd)
    );
    assert_eq!(is_watch_root("/kubelet.slice"), None);
    assert_eq!(
        is_watch_root("/kubepods.slice/kubepods-besteffort.slice"),
        None
    );
    assert_eq!(is_watch_root("/system.slice"), None);
    assert_eq!(is_watch_root("/"), None);
}

#[test]
fn levels() {
    assert_eq!(cgroup_level("/"), 0);
    assert_eq!(cgroup_level("/kubepods.slice"), 1);
    assert_eq!(cgroup_level("/kubelet.slice/kubelet-kubepods.slice/"), 2);
}

#[test]
fn serializes_snake_case() {
    let c = cid();
    let class = container(Runtime::CriO, BestEffort, Systemd);
    let json = serde_json::to_value(&class).expect("serialize");
    assert_eq!(
        json,
        serde_json::json!({
            "kind": "container",
            "runtime": "crio",
            "container_id": c,
            "pod_uid": UID,
            "qos": "best_effort",
            "driver": "systemd",
        })
    );
    let json = serde_json::to_value(CgroupClass::NotKubernetes).expect("serialize");
    assert_eq!(json, serde_json::json!({ "kind": "not_kubernetes" }));
    let json = serde_json::to_value(CgroupClass::QosParent {
        driver: Cgroupfs,
        qos: Burstable,
    })
    .expect("serialize");
    assert_eq!(
        json,
        serde_json::json!({ "kind": "qos_parent", "driver": "cgroupfs", "qos": "burstable" })
    );
}
