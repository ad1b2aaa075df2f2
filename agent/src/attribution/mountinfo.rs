//! Picking the cgroup2 mount out of `/proc/self/mountinfo` text.

use std::path::{Path, PathBuf};

/// One cgroup2 mount from the mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup2Mount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Which cgroup of the hierarchy the mount shows as its top (`/` unless
    /// this is a bind mount of a subtree or the process is in a cgroup
    /// namespace).
    pub root: String,
}

/// Chooses the cgroup2 mount from mountinfo text: `/sys/fs/cgroup` (pure v2),
/// else `/sys/fs/cgroup/unified` (hybrid), else the first cgroup2 mount listed.
pub fn pick_cgroup2_mount(mountinfo: &str) -> Option<Cgroup2Mount> {
    let mounts: Vec<Cgroup2Mount> = mountinfo.lines().filter_map(parse_cgroup2_line).collect();
    let preferred = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"];
    preferred
        .iter()
        .find_map(|want| mounts.iter().find(|m| m.mount_point == Path::new(want)))
        .or_else(|| mounts.first())
        .cloned()
}

/// Parses one mountinfo line, keeping it only if it is a cgroup2 mount.
///
/// Layout: `id parent maj:min root mount_point options [optional...] - fstype
/// source super_options`; spaces inside fields are escaped as `\040`, so the
/// ` - ` separator is unambiguous.
fn parse_cgroup2_line(line: &str) -> Option<Cgroup2Mount> {
    let (before, after) = line.split_once(" - ")?;
    if after.split(' ').next()? != "cgroup2" {
        return None;
    }
    let mut fields = before.split(' ');
    let root = fields.nth(3)?;
    let mount_point = fields.next()?;
    Some(Cgroup2Mount {
        mount_point: PathBuf::from(unescape_octal(mount_point)),
        root: unescape_octal(root),
    })
}

/// Undoes the kernel's `\ooo` escaping of space, tab, newline and backslash.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        let code =
            digits.filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match code {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    const PURE_V2: &str = "\
22 1 0:20 / /sys rw,nosuid shared:7 - sysfs sysfs rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
90 26 0:23 / /mnt/other\\040cg rw,relatime - cgroup2 cgroup2 rw
";

    fn mount(point: &str, root: &str) -> Option<Cgroup2Mount> {
        Some(Cgroup2Mount {
            mount_point: PathBuf::from(point),
            root: root.to_owned(),
        })
    }

    #[test]
    fn mountinfo_hybrid_picks_unified() {
        assert_eq!(
            pick_cgroup2_mount(HYBRID),
            mount("/sys/fs/cgroup/unified", "/")
        );
    }

    #[test]
    fn mountinfo_pure_v2_prefers_sys_fs_cgroup() {
        assert_eq!(pick_cgroup2_mount(PURE_V2), mount("/sys/fs/cgroup", "/"));
    }

    #[test]
    fn mountinfo_other_location_and_escapes() {
        let text = "90 26 0:23 /kubepods /mnt/my\\040cg rw - cgroup2 none rw\n";
        assert_eq!(pick_cgroup2_mount(text), mount("/mnt/my cg", "/kubepods"));
    }

    #[test]
    fn mountinfo_without_cgroup2() {
        let v1_only: String = HYBRID.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert_eq!(pick_cgroup2_mount(&v1_only), None);
        assert_eq!(pick_cgroup2_mount(""), None);
        assert_eq!(pick_cgroup2_mount("garbage line\n"), None);
    }
}
