//! Finding the cgroup2 mount and listing every cgroup below it.
//!
//! A cgroup v2 id is the inode number of the cgroup's directory, so one walk
//! of the mounted hierarchy yields the id -> path table the cache starts from.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

pub use super::mountinfo::{Cgroup2Mount, pick_cgroup2_mount};

/// Where the kernel lists this process's mounts.
pub const MOUNTINFO_PATH: &str = "/proc/self/mountinfo";

/// Failures finding or reading the cgroup2 hierarchy.
#[derive(Debug, Error)]
pub enum CgroupError {
    #[error("cannot read mount table {path}: {source}")]
    MountInfoUnreadable { path: PathBuf, source: io::Error },
    #[error("no cgroup2 filesystem is mounted (checked {path}); cgroup v2 is required")]
    NoCgroup2Mount { path: PathBuf },
    #[error("cannot walk cgroup directory {path}: {source}")]
    WalkFailed { path: PathBuf, source: io::Error },
}

/// One cgroup directory found by a walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupDir {
    /// Cgroup id (the directory's inode number).
    pub id: u64,
    /// Path relative to the mount, starting with `/` (`/` is the mount itself).
    pub path: String,
}

/// Finds the cgroup2 mount point from `/proc/self/mountinfo`.
///
/// Prefers `/sys/fs/cgroup` (pure v2), then `/sys/fs/cgroup/unified`
/// (hybrid), then any other cgroup2 mount.
pub fn find_cgroup2_mount() -> Result<PathBuf, CgroupError> {
    find_cgroup2_mount_info().map(|m| m.mount_point)
}

/// Like [`find_cgroup2_mount`], with the mount's root as well.
pub fn find_cgroup2_mount_info() -> Result<Cgroup2Mount, CgroupError> {
    let path = PathBuf::from(MOUNTINFO_PATH);
    let text =
        std::fs::read_to_string(&path).map_err(|source| CgroupError::MountInfoUnreadable {
            path: path.clone(),
            source,
        })?;
    let mount = pick_cgroup2_mount(&text).ok_or(CgroupError::NoCgroup2Mount { path })?;
    if mount.root != "/" {
        tracing::warn!(
            mount_point = %mount.mount_point.display(),
            root = %mount.root,
            "cgroup2 mount shows only a subtree of the hierarchy; cgroups outside it cannot be attributed"
        );
    }
    tracing::debug!(mount_point = %mount.mount_point.display(), "found cgroup2 mount");
    Ok(mount)
}

/// Lists every cgroup directory below `mount` (the mount itself included),
/// parents before children.
///
/// Directories that vanish during the walk (a concurrent rmdir) are skipped;
/// only a failure to read the mount itself is an error. Names that are not
/// UTF-8 are converted lossily (kubelet and the runtimes only use ASCII).
pub fn walk_cgroups(mount: &Path) -> Result<Vec<CgroupDir>, CgroupError> {
    let walk_err = |path: &Path, source| CgroupError::WalkFailed {
        path: path.to_path_buf(),
        source,
    };
    let root_meta = std::fs::metadata(mount).map_err(|e| walk_err(mount, e))?;
    let mut found = vec![CgroupDir {
        id: root_meta.ino(),
        path: "/".to_owned(),
    }];
    // Directories still to read: (absolute path, path relative to the mount).
    let mut pending = vec![(mount.to_path_buf(), String::new())];
    while let Some((dir, rel)) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A subdirectory removed since it was listed: nothing to report.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !rel.is_empty() => continue,
            Err(e) => return Err(walk_err(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| walk_err(&dir, e))?;
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(walk_err(&entry.path(), e)),
            };
            if !meta.is_dir() {
                continue;
            }
            let child_rel = format!("{rel}/{}", entry.file_name().to_string_lossy());
            found.push(CgroupDir {
                id: meta.ino(),
                path: child_rel.clone(),
            });
            pending.push((entry.path(), child_rel));
        }
    }
    Ok(found)
}

/// Source of full hierarchy listings for the cache's re-walks.
pub trait HierarchyWalker {
    /// Lists every cgroup of the hierarchy.
    fn walk(&mut self) -> Result<Vec<CgroupDir>, CgroupError>;
}

/// Walks a mounted cgroup2 hierarchy.
///
/// Paths are reported relative to the hierarchy root, like the cgroup
/// tracepoints report them: when the mount shows a subtree (its mountinfo
/// root is e.g. `/kubepods`), that root is prepended.
#[derive(Clone, Debug)]
pub struct Cgroup2Walker {
    mount: PathBuf,
    /// Mount root to prepend; empty when the mount shows the hierarchy root.
    prefix: String,
}

impl Cgroup2Walker {
    /// Walks the hierarchy mounted at `mount`, which shows its root.
    pub fn new(mount: impl Into<PathBuf>) -> Self {
        Self {
            mount: mount.into(),
            prefix: String::new(),
        }
    }

    /// Walks `mount`, whose top is the cgroup `root` of the hierarchy. A root
    /// that is not a plain absolute path (a cgroup namespace shows `/..`
    /// forms) cannot be prepended and is ignored.
    pub fn with_root(mount: impl Into<PathBuf>, root: &str) -> Self {
        let clean = root.starts_with('/') && !root.split('/').any(|c| c == "..");
        let prefix = if clean {
            root.trim_end_matches('/')
        } else {
            ""
        };
        Self {
            mount: mount.into(),
            prefix: prefix.to_owned(),
        }
    }

    /// Walks the hierarchy found by [`find_cgroup2_mount_info`].
    pub fn discover() -> Result<Self, CgroupError> {
        find_cgroup2_mount_info().map(|m| Self::with_root(m.mount_point, &m.root))
    }

    pub fn mount(&self) -> &Path {
        &self.mount
    }
}

impl HierarchyWalker for Cgroup2Walker {
    fn walk(&mut self) -> Result<Vec<CgroupDir>, CgroupError> {
        let mut dirs = walk_cgroups(&self.mount)?;
        if !self.prefix.is_empty() {
            for dir in &mut dirs {
                dir.path = if dir.path == "/" {
                    self.prefix.clone()
                } else {
                    format!("{}{}", self.prefix, dir.path)
                };
            }
        }
        Ok(dirs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walker_prefixes_a_subtree_mount_root() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("pod")).expect("mkdir");
        let mut walker = Cgroup2Walker::with_root(tmp.path(), "/kubepods/");
        let mut paths: Vec<String> = walker
            .walk()
            .expect("walk")
            .into_iter()
            .map(|d| d.path)
            .collect();
        paths.sort();
        assert_eq!(paths, ["/kubepods", "/kubepods/pod"]);
        // A cgroup-namespace style root cannot be trusted and is ignored.
        let mut walker = Cgroup2Walker::with_root(tmp.path(), "/../..");
        let mut paths: Vec<String> = walker
            .walk()
            .expect("walk")
            .into_iter()
            .map(|d| d.path)
            .collect();
        paths.sort();
        assert_eq!(paths, ["/", "/pod"]);
    }

    #[test]
    fn walk_of_missing_directory_fails_clearly() {
        let err = walk_cgroups(Path::new("/nonexistent/cgroup/mount")).unwrap_err();
        assert!(matches!(err, CgroupError::WalkFailed { .. }), "{err}");
    }

    #[test]
    fn walk_lists_directories_with_inodes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(tmp.path().join("a/b")).expect("mkdir");
        std::fs::write(tmp.path().join("a/file"), b"x").expect("write");
        let mut dirs = walk_cgroups(tmp.path()).expect("walk");
        dirs.sort_by(|x, y| x.path.cmp(&y.path));
        let paths: Vec<&str> = dirs.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["/", "/a", "/a/b"]);
        let ino = std::fs::metadata(tmp.path().join("a/b"))
            .expect("stat")
            .ino();
        assert_eq!(dirs[2].id, ino);
    }
}
