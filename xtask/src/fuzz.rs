//! `cargo xtask fuzz`: builds the libFuzzer targets of `fuzz/` and runs them.
//!
//! No nightly compiler and no cargo-fuzz are needed: the coverage
//! instrumentation libFuzzer feeds on (SanitizerCoverage's 8-bit counters,
//! PC table and comparison tracing) is an LLVM pass that stable rustc runs
//! through `-C passes` and `-C llvm-args`, and `libfuzzer-sys` builds
//! libFuzzer itself with the C++ compiler `setup` installs. What is left
//! out is the address sanitizer (`-Z sanitizer`, nightly only): safe Rust
//! needs it little, and panics, overflows and debug assertions still abort.
//!
//! Each run works on `target/fuzz-corpus/<target>/`, seeded from the
//! committed `fuzz/corpus/<target>/` (what a run adds stays there for the
//! next one), and libFuzzer writes a crashing input to
//! `target/fuzz-artifacts/<target>/`.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::{cargo, run, target_dir, workspace_root};

/// Every fuzz target: a `fuzz/fuzz_targets/<name>.rs` and a seed corpus
/// `fuzz/corpus/<name>/`.
pub const TARGETS: &[&str] = &[
    "recording",
    "cgroup_path",
    "pod_json",
    "mountinfo",
    "proc_stat",
    "kernel_record",
    "btf",
    "tracefs_format",
    "config_file",
];

/// Seconds per target in `cargo xtask test`.
pub const SMOKE_SECONDS: u64 = 30;

const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// What stable rustc needs to instrument code for libFuzzer (the flags
/// cargo-fuzz passes, less the nightly-only sanitizer).
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "--cfg",
    "fuzzing",
    "-Cdebug-assertions",
    "-Coverflow-checks",
];

#[derive(clap::Args)]
pub struct FuzzArgs {
    /// The target to run (one of the `fuzz/fuzz_targets/` names).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    target: Option<String>,
    /// Run every target, one after the other.
    #[arg(long)]
    all: bool,
    /// How long each target runs.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
}

/// What one run did, from libFuzzer's output.
#[derive(Debug, Default, PartialEq)]
pub struct RunStats {
    pub executions: u64,
    pub execs_per_s: u64,
    /// Coverage after loading the seeds, and at the end.
    pub initial_cov: u64,
    pub final_cov: u64,
    pub corpus_before: usize,
    pub corpus_after: usize,
    /// Crashing, leaking, timing-out or out-of-memory inputs saved.
    pub artifacts: Vec<PathBuf>,
}

pub fn fuzz(args: &FuzzArgs) -> anyhow::Result<()> {
    let targets: Vec<&str> = match &args.target {
        Some(name) if TARGETS.contains(&name.as_str()) => vec![name.as_str()],
        Some(name) => bail!("unknown fuzz target {name:?}: one of {TARGETS:?}"),
        None => TARGETS.to_vec(),
    };
    run_targets(&targets, args.seconds)
}

/// Builds the fuzzers, runs each of `targets` for `seconds`, prints a line
/// of figures per target and fails when any found a crash.
pub fn run_targets(targets: &[&str], seconds: u64) -> anyhow::Result<()> {
    build()?;
    let mut failed = Vec::new();
    let mut summary = Vec::new();
    for target in targets {
        let stats = run_one(target, seconds)?;
        let line = format!(
            "{target:<15} {} execs, {} exec/s, cov {} -> {}, corpus {} -> {}, crashes {}",
            stats.executions,
            stats.execs_per_s,
            stats.initial_cov,
            stats.final_cov,
            stats.corpus_before,
            stats.corpus_after,
            stats.artifacts.len()
        );
        eprintln!("xtask fuzz: {line}");
        summary.push(line);
        if !stats.artifacts.is_empty() {
            for artifact in &stats.artifacts {
                eprintln!(
                    "xtask fuzz: {target}: crashing input {}",
                    artifact.display()
                );
            }
            failed.push(*target);
        }
    }
    eprintln!("xtask fuzz: summary ({seconds} s per target)");
    for line in &summary {
        eprintln!("  {line}");
    }
    if !failed.is_empty() {
        bail!("fuzz targets {failed:?} crashed (inputs under target/fuzz-artifacts/)");
    }
    Ok(())
}

/// Builds every fuzz target with coverage instrumentation (release, with
/// debug assertions and overflow checks, see `fuzz/Cargo.toml`).
fn build() -> anyhow::Result<()> {
    let manifest = workspace_root().join("fuzz/Cargo.toml");
    run(cargo()
        .args(["build", "--release", "--bins", "--target", TRIPLE])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir().join("fuzz"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", RUSTFLAGS.join(" ")))
}

fn run_one(target: &str, seconds: u64) -> anyhow::Result<RunStats> {
    let binary = target_dir().join(format!("fuzz/{TRIPLE}/release/{target}"));
    let corpus = target_dir().join("fuzz-corpus").join(target);
    let artifacts = target_dir().join("fuzz-artifacts").join(target);
    let seeds = workspace_root().join("fuzz/corpus").join(target);
    fs::create_dir_all(&corpus).with_context(|| format!("cannot create {}", corpus.display()))?;
    fs::create_dir_all(&artifacts)
        .with_context(|| format!("cannot create {}", artifacts.display()))?;
    for entry in fs::read_dir(&seeds).with_context(|| format!("no seeds {}", seeds.display()))? {
        let path = entry?.path();
        let name = path.file_name().context("seed without a name")?;
        fs::copy(&path, corpus.join(name))
            .with_context(|| format!("cannot copy seed {}", path.display()))?;
    }
    let before = files(&artifacts)?;
    let corpus_before = files(&corpus)?.len();
    let mut prefix = artifacts.clone().into_os_string();
    prefix.push("/");
    eprintln!(
        "xtask fuzz: {target} for {seconds} s on {}",
        corpus.display()
    );
    let output = Command::new(&binary)
        .arg(&corpus)
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1")
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg({
            let mut a = std::ffi::OsString::from("-artifact_prefix=");
            a.push(&prefix);
            a
        })
        .output()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    let log = String::from_utf8_lossy(&output.stderr);
    let log_file = artifacts.join("last-run.log");
    fs::write(&log_file, log.as_bytes())
        .with_context(|| format!("cannot write {}", log_file.display()))?;
    let mut stats = parse_output(&log);
    stats.corpus_before = corpus_before;
    stats.corpus_after = files(&corpus)?.len();
    stats.artifacts = files(&artifacts)?
        .into_iter()
        .filter(|p| !before.contains(p) && p != &log_file)
        .collect();
    if !output.status.success() {
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        for line in tail.iter().rev() {
            eprintln!("  | {line}");
        }
        if stats.artifacts.is_empty() {
            bail!(
                "{target}: the fuzzer failed ({}) without saving an input",
                output.status
            );
        }
    }
    Ok(stats)
}

/// The files of `dir`, sorted.
fn files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads libFuzzer's status lines (`#N INITED cov: C ft: F corp: ...`) and
/// final stats (`stat::number_of_executed_units: N`).
pub fn parse_output(log: &str) -> RunStats {
    let mut stats = RunStats::default();
    let field = |line: &str, key: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == key)?;
        words.next()?.parse().ok()
    };
    for line in log.lines() {
        if line.split_whitespace().nth(1) == Some("INITED") {
            stats.initial_cov = field(line, "cov:").unwrap_or(0);
        }
        if let Some(cov) = field(line, "cov:") {
            stats.final_cov = stats.final_cov.max(cov);
        }
        let stat = |name: &str| {
            line.strip_prefix(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(n) = stat("stat::number_of_executed_units:") {
            stats.executions = n;
        }
        if let Some(n) = stat("stat::average_exec_per_sec:") {
            stats.execs_per_s = n;
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_a_source_and_seeds() {
        let fuzz = workspace_root().join("fuzz");
        let mut sources: Vec<String> = fs::read_dir(fuzz.join("fuzz_targets"))
            .expect("fuzz/fuzz_targets")
            .map(|e| {
                let path = e.expect("entry").path();
                path.file_stem().expect("stem").to_string_lossy().into()
            })
            .collect();
        sources.sort();
        let mut listed: Vec<String> = TARGETS.iter().map(|t| t.to_string()).collect();
        listed.sort();
        assert_eq!(sources, listed);
        for target in TARGETS {
            let seeds = files(&fuzz.join("corpus").join(target)).expect("seed corpus");
            assert!(!seeds.is_empty(), "{target} has no seeds");
        }
    }

    #[test]
    fn libfuzzer_output_is_read() {
        let log = "INFO: Seed: 1\n\
            #2\tINITED cov: 120 ft: 130 corp: 9/3kb exec/s: 0 rss: 40Mb\n\
            #1024\tNEW    cov: 151 ft: 200 corp: 12/4kb lim: 40 exec/s: 512 rss: 41Mb\n\
            #2048\tDONE   cov: 160 ft: 230 corp: 14/4kb lim: 40 exec/s: 1024 rss: 41Mb\n\
            stat::number_of_executed_units: 2048\n\
            stat::average_exec_per_sec:     1024\n";
        let stats = parse_output(log);
        assert_eq!(
            (
                stats.executions,
                stats.execs_per_s,
                stats.initial_cov,
                stats.final_cov
            ),
            (2048, 1024, 120, 160)
        );
    }
}
