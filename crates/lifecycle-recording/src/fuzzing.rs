//! Fuzz target bodies for this crate's parsers of outside data: recording
//! lines and kubelet cgroup paths.
//!
//! Each function takes arbitrary bytes and must not panic; where a cheap
//! property holds for every accepted input it is asserted as well. The
//! libFuzzer targets in `fuzz/` (`cargo xtask fuzz`) call these, and this
//! module's tests replay the committed seed corpora (`fuzz/corpus/<target>/`)
//! through them in the ordinary test suite.

use std::path::Path;

use crate::{
    cgroup::{CgroupClass, cgroup_level, is_watch_root, parse_cgroup_path},
    event::Record,
    reader::read_lines,
};

/// A fuzz target: its name and its body.
pub type Target = (&'static str, fn(&[u8]));

/// This crate's fuzz targets by name, as `fuzz/` and `cargo xtask fuzz`
/// know them.
pub const TARGETS: &[Target] = &[("recording", recording), ("cgroup_path", cgroup_path)];

/// A recording (any number of lines, any bytes). What the reader accepts
/// is sorted, counted, and survives a write and a read back.
pub fn recording(data: &[u8]) {
    let (records, info) = match read_lines(data, Path::new("fuzz.ndjson")) {
        Ok(read) => read,
        Err(e) => panic!("reading from memory cannot fail: {e}"),
    };
    assert_eq!(info.records, records.len());
    assert!(info.damaged_line_numbers.len() <= info.damaged_lines);
    assert!(
        records
            .windows(2)
            .all(|w| (w[0].time_ns, w[0].seq) <= (w[1].time_ns, w[1].seq))
    );
    for record in &records {
        let line = serde_json::to_string(record).expect("a record serialises");
        if let Err(e) = serde_json::from_str::<Record>(&line) {
            panic!("a written record reads back: {e}: {line}");
        }
    }
}

/// A cgroup path from the kernel (cgroup events, `/proc/<pid>/cgroup`).
pub fn cgroup_path(data: &[u8]) {
    let path = String::from_utf8_lossy(data);
    let class = parse_cgroup_path(&path);
    let level = cgroup_level(&path);
    let _ = is_watch_root(&path);
    // A container or pod is never the root cgroup.
    if matches!(class, CgroupClass::Container(_) | CgroupClass::Pod(_)) {
        assert!(level > 0, "{path:?} classified as {class:?} at level 0");
    }
}

/// Every file of `<corpus>/<target>/` with its name, sorted by name: a
/// target's seed corpus, for the tests that replay it (this crate's and
/// the agent's). Panics when the corpus is missing or empty.
pub fn seed_files(corpus: &Path, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus.join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into();
            (name, std::fs::read(&path).expect("seed readable"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "seed corpus {} is empty", dir.display());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `fuzz/corpus/<target>/`, with its name.
    fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
        seed_files(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus"),
            target,
        )
    }

    #[test]
    fn every_target_has_a_seed_corpus_and_replays_it() {
        for (name, body) in TARGETS {
            for (_, data) in seeds(name) {
                body(&data);
            }
        }
    }

    #[test]
    fn valid_recording_seeds_have_no_damaged_line() {
        for (name, data) in seeds("recording") {
            let (records, info) = read_lines(&data[..], Path::new(&name)).expect("in memory");
            if name.starts_with("bad-") {
                assert!(info.damaged_lines > 0, "{name}");
            } else {
                assert_eq!(info.damaged_lines, 0, "{name}");
                assert!(!records.is_empty(), "{name}");
            }
        }
    }

    #[test]
    fn kubelet_cgroup_seeds_classify() {
        for (name, data) in seeds("cgroup_path") {
            let class = parse_cgroup_path(&String::from_utf8_lossy(&data));
            if name.starts_with("container-") {
                assert!(
                    matches!(class, CgroupClass::Container(_)),
                    "{name}: {class:?}"
                );
            }
        }
    }
}
