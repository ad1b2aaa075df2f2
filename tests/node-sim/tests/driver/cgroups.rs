//! Pod and container cgroups named like the kubelet's cgroupfs driver and
//! runc name them, and removed with the pod. (runc's systemd driver needs
//! systemd, which does not run here: the systemd layout is covered by the
//! agent's attribution tests on the testkit's kubelet-style cgroups.)

use node_sim::runtime::cgroups::cgroup2_mount;

use crate::{Live, PLAIN, scenario, serial};

fn cgroup_v2_path(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .expect("cgroup file")
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("v2 line")
        .to_owned()
}

fn check_cgroup_names(expected: impl Fn(&str, &str) -> String) {
    let _serial = serial();
    let live = Live::start(&scenario(PLAIN));
    let uid = live.node.pod(&live.name).expect("pod").uid;
    let containers = live.containers();
    assert_eq!(containers.len(), 2);
    let pod_dir = cgroup2_mount().expect("cgroup2").join(
        expected(&uid, "")
            .trim_start_matches('/')
            .trim_end_matches('/'),
    );
    for (name, pid, id) in &containers {
        assert_eq!(cgroup_v2_path(*pid), expected(&uid, id), "{name}");
    }
    assert!(pod_dir.is_dir(), "{}", pod_dir.display());
    live.delete();
    assert!(
        !pod_dir.exists(),
        "the pod cgroup is removed: {}",
        pod_dir.display()
    );
}

#[test]
fn cgroupfs_driver_names_pod_and_container_cgroups_like_the_kubelet() {
    check_cgroup_names(|uid, id| {
        let pod = format!("/kubepods/besteffort/pod{uid}");
        if id.is_empty() {
            pod
        } else {
            format!("{pod}/{id}")
        }
    });
}
