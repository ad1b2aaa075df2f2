//! The fixture recordings read back unchanged: every line decodes, and
//! writing the decoded line again keeps every field of the original with
//! its value. Fields added since a fixture was recorded may appear (with
//! their defaults); a renamed or dropped field breaks this.

use std::path::PathBuf;

use lifecycle_recording::{Record, read_recording};
use serde_json::Value;

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/recordings");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the fixture directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths
}

/// Where `written` lacks or changes something `original` has.
fn first_difference(original: &Value, written: &Value, at: String) -> Option<String> {
    match (original, written) {
        (Value::Object(o), Value::Object(w)) => o.iter().find_map(|(key, value)| {
            let here = format!("{at}.{key}");
            match w.get(key) {
                None => Some(format!("{here} is not written back")),
                Some(v) => first_difference(value, v, here),
            }
        }),
        (o, w) if o == w => None,
        (o, w) => Some(format!("{at}: {o} read, {w} written")),
    }
}

#[test]
fn a_renamed_field_is_a_difference() {
    let original: Value = serde_json::from_str(r#"{"a": {"b": 1, "c": 2}}"#).expect("JSON");
    let grown: Value = serde_json::from_str(r#"{"a": {"b": 1, "c": 2, "d": 0}}"#).expect("JSON");
    let renamed: Value = serde_json::from_str(r#"{"a": {"b": 1, "e": 2}}"#).expect("JSON");
    assert_eq!(first_difference(&original, &grown, String::new()), None);
    assert_eq!(
        first_difference(&original, &renamed, String::new()).as_deref(),
        Some(".a.c is not written back")
    );
}

#[test]
fn every_fixture_line_round_trips_to_the_same_json() {
    let paths = fixtures();
    assert!(paths.len() >= 4, "fixtures: {paths:?}");
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("a fixture");
        let mut lines = 0;
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let original: Value = serde_json::from_str(line).expect("JSON");
            let record: Record = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
            let written = serde_json::to_value(&record).expect("serialisable");
            if let Some(missing) = first_difference(&original, &written, String::new()) {
                panic!("{}:{}: {missing}\n{line}", path.display(), n + 1);
            }
            lines += 1;
        }
        let (records, info) = read_recording(&path).expect("readable");
        assert_eq!(records.len(), lines, "{}", path.display());
        assert_eq!(info.skipped_lines, 0, "{}", path.display());
    }
}
