//! Fuzz target bodies for the agent's parsers of outside data.
//!
//! Each function takes arbitrary bytes and runs them through one parser the
//! way the agent does with what it reads from the kernel, procfs, the API
//! server or a config file. None may panic: malformed input has to come
//! back as an error (or `None`). Where a cheap property holds for every
//! accepted input, the function asserts it too.
//!
//! The same functions are called by the libFuzzer targets in `fuzz/`
//! (`cargo xtask fuzz`) and by this module's tests, which replay the
//! committed seed corpora (`fuzz/corpus/<target>/`) in the ordinary test
//! suite.

use std::path::Path;

use agent_common::EventKind;

use crate::{
    attribution::pick_cgroup2_mount,
    config_file::parse_entries,
    event::build::EventBuilder,
    kernel::{
        btf::Btf,
        decode::{ProbeSample, decode, encode},
        offsets::resolve_struct_offsets,
        tracefs::TracepointFormat,
    },
    pods::RawPod,
    run::recover::{parse_cgroup_v2, parse_stat},
};

/// A fuzz target: its name and its body.
pub type Target = (&'static str, fn(&[u8]));

/// The agent's fuzz targets by name, as `fuzz/` and `cargo xtask fuzz` know
/// them.
pub const TARGETS: &[Target] = &[
    ("pod_json", pod_json),
    ("mountinfo", mountinfo),
    ("proc_stat", proc_stat),
    ("kernel_record", kernel_record),
    ("btf", btf),
    ("tracefs_format", tracefs_format),
    ("config_file", config_file),
];

/// A pod object from the API server: the tolerant decoder, then the strict
/// decode of spec and status. Both entry points (a JSON value, and the
/// `Deserialize` impl the watcher uses) must agree on whether a uid exists.
pub fn pod_json(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let raw = RawPod::from_value(value);
        let _ = raw.display_name();
        let uid = raw.uid().map(str::to_owned);
        if let Ok(pod) = raw.decode() {
            // A decoded pod always has a non-empty uid.
            assert!(pod.meta.uid.as_deref().is_some_and(|u| !u.is_empty()));
            assert_eq!(pod.meta.uid, uid);
        }
    }
    if let Ok(raw) = serde_json::from_slice::<RawPod>(data) {
        let _ = raw.decode();
    }
}

/// `/proc/self/mountinfo`: where cgroup v2 is mounted.
pub fn mountinfo(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Some(mount) = pick_cgroup2_mount(&text) {
        let _ = format!("{mount:?}");
    }
}

/// `/proc/<pid>/stat` (ppid and start time) and `/proc/<pid>/cgroup`.
pub fn proc_stat(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = parse_stat(&text);
    if let Some(path) = parse_cgroup_v2(&text) {
        // The path is a suffix of one of the text's lines.
        assert!(text.contains(path));
    }
}

/// A ring-buffer record: decoded, turned into a recording event (nothing
/// attributes), serialised; a decoded record re-encodes to the bytes it
/// came from.
pub fn kernel_record(data: &[u8]) {
    let Ok(sample) = decode(data) else {
        return;
    };
    let bytes = match &sample {
        ProbeSample::SignalGenerate(e) => encode(e),
        ProbeSample::SignalDeliver(e) => encode(e),
        ProbeSample::ProcessExec(e) => encode(e),
        ProbeSample::ProcessFork(e) => encode(e),
        ProbeSample::ProcessExit(e) => encode(e),
        ProbeSample::Cgroup(e) => encode(e),
        ProbeSample::Socket(e) => encode(e),
    };
    assert_eq!(bytes, data[..bytes.len()]);
    assert!(EventKind::from_u32(sample.header().kind).is_some());
    let mut builder = EventBuilder::new(|_| None);
    let event = builder.build(&sample);
    serde_json::to_string(&event).expect("an event serialises");
}

/// `/sys/kernel/btf/vmlinux`: parsed, then the agent's struct offsets
/// looked up in it (absent structs and members are errors, not panics).
pub fn btf(data: &[u8]) {
    let Ok(btf) = Btf::from_bytes(data) else {
        return;
    };
    let _ = btf.type_count();
    let _ = resolve_struct_offsets(&btf);
    for (strukt, path) in [("task_struct", "comm"), ("sock", "sk_cgrp_data.cgroup")] {
        let _ = btf.member_shape(strukt, path);
        let _ = btf.struct_size(strukt);
    }
}

/// A tracefs `format` file: a parsed format has fields, and each field is
/// found by its own name.
pub fn tracefs_format(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(format) = TracepointFormat::parse("fuzz:event", &text) else {
        return;
    };
    assert!(!format.fields.is_empty());
    for field in &format.fields {
        assert!(format.field(&field.name).is_some());
    }
}

/// The `run` config file: entries are parsed, and written back as
/// `key: "value"` lines they parse to the same keys and values.
pub fn config_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("fuzz.yaml");
    let Ok(entries) = parse_entries(&text, path) else {
        return;
    };
    let lines = text.lines().count();
    let mut rendered = String::new();
    for (key, value, line) in &entries {
        assert!((1..=lines).contains(line));
        rendered.push_str(&format!("{key}: \"{value}\"\n"));
    }
    let again = parse_entries(&rendered, path).expect("rendered entries parse");
    let pairs = |e: &[(String, String, usize)]| -> Vec<(String, String)> {
        e.iter().map(|(k, v, _)| (k.clone(), v.clone())).collect()
    };
    assert_eq!(pairs(&entries), pairs(&again));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of `fuzz/corpus/<target>/`, with its name.
    fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
        lifecycle_recording::fuzzing::seed_files(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus"),
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
    fn real_pod_seeds_have_a_spec() {
        for (name, data) in seeds("pod_json") {
            if name.starts_with("fixture-") {
                let value: serde_json::Value = serde_json::from_slice(&data).expect(&name);
                assert!(value.get("spec").is_some(), "{name}");
            }
        }
    }

    #[test]
    fn valid_seeds_parse() {
        for (name, data) in seeds("kernel_record") {
            assert_eq!(decode(&data).is_ok(), !name.starts_with("bad-"), "{name}");
        }
        for (name, data) in seeds("btf") {
            let parsed = Btf::from_bytes(&data);
            assert_eq!(parsed.is_ok(), !name.starts_with("bad-"), "{name}");
            if name.starts_with("agent-structs") {
                let btf = parsed.expect("parsed");
                if let Err(e) = resolve_struct_offsets(&btf) {
                    panic!("{name}: {e}");
                }
            }
        }
        for (name, data) in seeds("tracefs_format") {
            let text = String::from_utf8_lossy(&data);
            let parsed = TracepointFormat::parse("seed", &text);
            assert_eq!(parsed.is_ok(), !name.starts_with("bad-"), "{name}");
        }
        for (name, data) in seeds("proc_stat") {
            let text = String::from_utf8_lossy(&data);
            let parsed = parse_stat(&text).or(parse_cgroup_v2(&text).map(|_| (0, 0)));
            assert_eq!(parsed.is_some(), !name.starts_with("bad-"), "{name}");
        }
        for (name, data) in seeds("mountinfo") {
            let found = pick_cgroup2_mount(&String::from_utf8_lossy(&data));
            assert_eq!(found.is_some(), !name.starts_with("bad-"), "{name}");
        }
        for (name, data) in seeds("config_file") {
            let parsed = parse_entries(&String::from_utf8_lossy(&data), Path::new("seed"));
            assert_eq!(parsed.is_ok(), !name.starts_with("bad-"), "{name}");
        }
    }
}
