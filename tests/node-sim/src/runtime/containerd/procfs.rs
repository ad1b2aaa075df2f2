//! What /proc says about an instance's processes and mounts, and the
//! system calls that end them.

use std::{
    ffi::CString,
    fs, io,
    os::unix::{ffi::OsStrExt, fs::MetadataExt},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// A process's start time (field 22 of /proc/<pid>/stat), or `None` when it
/// is gone or a zombie.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// Live processes (not this one) whose command line contains any of
/// `markers`.
pub(crate) fn processes_naming(markers: &[String]) -> Vec<u32> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            markers.iter().any(|m| text.contains(m.as_str()))
        })
        .collect()
}

/// Live processes (not this one) in the network namespace with this
/// device and inode.
pub(crate) fn processes_in_netns(dev: u64, ino: u64) -> Vec<u32> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            fs::metadata(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|m| m.dev() == dev && m.ino() == ino)
        })
        .collect()
}

/// SIGKILLs `pids` and waits (at most `wait`) until each is gone or a
/// zombie (orphans are reaped by PID 1 when it gets to them). Returns how
/// many did die.
pub(crate) fn kill_and_wait(pids: &[u32], wait: Duration) -> usize {
    let alive: Vec<(u32, u64)> = pids
        .iter()
        .filter_map(|&pid| Some((pid, start_time(pid)?)))
        .collect();
    for (pid, _) in &alive {
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(*pid as libc::pid_t, libc::SIGKILL) };
    }
    let started = Instant::now();
    let running = || {
        alive
            .iter()
            .filter(|(pid, since)| start_time(*pid) == Some(*since))
            .count()
    };
    while running() > 0 && started.elapsed() < wait {
        std::thread::sleep(Duration::from_millis(10));
    }
    alive.len() - running()
}

/// Mount points at or below any of `dirs`, deepest first.
pub(crate) fn mounts_under(dirs: &[&Path]) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = read_mounts()
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.point)
        .filter(|p| dirs.iter().any(|d| p.starts_with(d)))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    points
}

/// Unmounts everything below `dirs` (overlay rootfs, shm, netns bind
/// mounts), deepest first, lazily where a plain umount is refused. Returns
/// how many were unmounted and what is still mounted.
pub(crate) fn unmount_under(dirs: &[&Path]) -> (usize, Vec<PathBuf>) {
    let mut unmounted = 0;
    for _pass in 0..4 {
        let points = mounts_under(dirs);
        if points.is_empty() {
            break;
        }
        for point in points {
            let Ok(c_path) = CString::new(point.as_os_str().as_bytes()) else {
                continue;
            };
            // SAFETY: umount2 with a NUL-terminated path we own.
            let done = unsafe {
                libc::umount2(c_path.as_ptr(), 0) == 0
                    || libc::umount2(c_path.as_ptr(), libc::MNT_DETACH) == 0
            };
            if done {
                unmounted += 1;
            } else {
                let error = std::io::Error::last_os_error();
                tracing::warn!(%error, mount = %point.display(), "cannot unmount");
            }
        }
    }
    (unmounted, mounts_under(dirs))
}

/// One line of /proc/self/mountinfo.
#[derive(Clone, Debug)]
pub(crate) struct MountEntry {
    pub device: String,
    pub point: PathBuf,
    pub fstype: String,
}

/// The mounts of this process's mount namespace, in mount order.
pub(crate) fn read_mounts() -> io::Result<Vec<MountEntry>> {
    let text = fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text.lines().filter_map(parse_mount_line).collect())
}

fn parse_mount_line(line: &str) -> Option<MountEntry> {
    let fields: Vec<&str> = line.split(' ').collect();
    let dash = fields.iter().position(|f| *f == "-")?;
    Some(MountEntry {
        device: (*fields.get(2)?).to_owned(),
        point: PathBuf::from(unescape(fields.get(4)?)),
        fstype: (*fields.get(dash + 1)?).to_owned(),
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(u8::is_ascii_digit));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_point_type_and_device() {
        let line = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw";
        let m = parse_mount_line(line).expect("parsed");
        assert_eq!(m.point, PathBuf::from("/sys/fs/cgroup/unified"));
        assert_eq!(m.fstype, "cgroup2");
        assert_eq!(m.device, "0:38");
        let spaced = "50 27 0:40 / /run/a\\040b rw - overlay overlay rw";
        assert_eq!(
            parse_mount_line(spaced).unwrap().point,
            PathBuf::from("/run/a b")
        );
    }

    #[test]
    fn start_time_of_this_process_and_of_none() {
        let mine = start_time(std::process::id()).expect("own start time");
        assert!(mine > 0);
        assert_eq!(start_time(std::process::id()), Some(mine));
        assert_eq!(start_time(u32::MAX), None);
    }
}
