//! The repository's test fixtures (`tests/fixtures/`) and a polling helper
//! shared by the test binaries.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::Value;

/// `tests/fixtures/` of this repository.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// A recording under `tests/fixtures/recordings/`.
pub fn recording_fixture(name: &str) -> PathBuf {
    fixtures_dir().join("recordings").join(name)
}

/// A pod object (JSON, as the API server serves it) from
/// `tests/fixtures/pods/`; panics with the path when it is missing or not
/// JSON.
pub fn pod_fixture(name: &str) -> Value {
    let path = fixtures_dir().join("pods").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Calls `check` every `every` until it gives something or `limit` passes.
pub fn poll<T>(
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}
