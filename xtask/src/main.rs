//! Project tasks: `cargo xtask demo | setup | build-ebpf | test | bench | image | fuzz`.

mod bench;
mod demo;
// kill(2) of the demo daemon it started.
#[allow(unsafe_code)]
mod demo_daemon;
mod fuzz;
mod image;
#[cfg(test)]
mod modgraph;
mod pure;
mod recorder;
mod setup;

use std::{path::PathBuf, process::Command};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "xtask", about = "lifecycle-agent project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build the agent and record a sidecar shutdown in real cgroups (no cluster needed).
    Demo,
    /// Install what building and testing need (idempotent; a no-op when present).
    Setup,
    /// Build the eBPF object only (the agent's build script does this too).
    BuildEbpf,
    /// Setup, then formatting, clippy -D warnings, the container image,
    /// and every test (run as root).
    Test {
        /// Extra arguments passed to `cargo test` (after `--workspace`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Test the pure libraries (lifecycle-recording, lifecycle-audit) with
    /// only rustup's stable toolchain on PATH (`test` does this too).
    TestPure,
    /// Setup, then print benchmark figures (run as root).
    Bench(bench::BenchArgs),
    /// Build the container image (static binary, FROM scratch) with buildah (run as root).
    Image(image::ImageArgs),
    /// Setup, then build the libFuzzer targets of `fuzz/` and run one
    /// (or `--all`) for `--seconds` each on a copy of its seed corpus.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Setup => setup::ensure_toolchain(),
        Task::Demo => {
            setup::ensure_toolchain()?;
            demo::demo()
        }
        Task::TestPure => pure::test_pure_crates(&target_dir()),
        Task::BuildEbpf => {
            setup::ensure_toolchain()?;
            run(cargo().args(["build", "-p", "lifecycle-agent"]))
        }
        Task::Test { args } => test(&args),
        Task::Bench(args) => {
            setup::ensure_toolchain()?;
            bench::bench(&args)
        }
        Task::Image(args) => {
            setup::ensure_toolchain()?;
            image::image(&args)
        }
        Task::Fuzz(args) => {
            setup::ensure_toolchain()?;
            fuzz::fuzz(&args)
        }
    }
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    setup::ensure_toolchain()?;
    let root = workspace_root();
    run(cargo().args(["fmt", "--all", "--check"]))?;
    for other_workspace in ["agent-ebpf/Cargo.toml", "fuzz/Cargo.toml"] {
        run(cargo()
            .args(["fmt", "--check", "--manifest-path"])
            .arg(root.join(other_workspace)))?;
    }
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    pure::test_pure_crates(&target_dir())?;
    // The real-kernel tests run the workload binaries (testkit's and
    // node-sim-workload), which `cargo test` builds only for packages that
    // have tests of their own; node-sim's containers run the static one.
    run(cargo().args(["build", "--workspace", "--bins"]))?;
    build_static_workload()?;
    // buildah from Debian's packages builds the image here, so CI builds
    // it too (static binary, FROM scratch, a smoke run inside it), before
    // the tests: node-sim's agent-container test runs it on containerd.
    image::image(&image::ImageArgs::default())?;
    // The tests' pods leave the kubelet's parent cgroups (kubepods and its
    // QoS parents, in every hierarchy) they had to create; remove the
    // empty ones that were not there before, whatever the tests' outcome.
    let mounts = lifecycle_testkit::cgroups::cgroup_mounts().unwrap_or_default();
    let parents_before: Vec<_> = mounts
        .iter()
        .map(|m| lifecycle_testkit::cgroups::kubelet_parents(m))
        .collect();
    // A real-kernel test that is not root fails here instead of skipping:
    // CI must never pass by skipping them.
    let tested = run(cargo()
        .args(["test", "--workspace"])
        .args(extra)
        .env(lifecycle_testkit::REQUIRE_ROOT_ENV, "1"));
    for (mount, before) in mounts.iter().zip(&parents_before) {
        for dir in lifecycle_testkit::cgroups::remove_new_kubelet_parents(mount, before) {
            eprintln!(
                "xtask: removed the empty cgroup {} the tests created",
                dir.display()
            );
        }
    }
    tested?;
    // Last, a short run of every fuzz target: the seeds already ran as
    // unit tests above; this checks that the fuzzers build and that a few
    // hundred thousand mutations of each find nothing.
    fuzz::run_targets(fuzz::TARGETS, fuzz::SMOKE_SECONDS)
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// The static `node-sim-workload` for the node simulator's container
/// image, in `<target dir>/static`: the same build as
/// `node_sim::runtime::binaries::locate_static_workload` runs when it is
/// missing (same flags, so neither undoes the other's), which also checks
/// that it is statically linked.
pub fn build_static_workload() -> anyhow::Result<()> {
    let target_dir = target_dir();
    run(cargo()
        .args(["build", "--release", "-p", "node-sim-workload"])
        .args(["--target", "x86_64-unknown-linux-gnu", "--target-dir"])
        .arg(target_dir.join("static"))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"))
}

/// `CARGO_TARGET_DIR`, or the workspace's `target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| workspace_root().join(dir))
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The cargo that runs us (rustup's), in the workspace root.
pub fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

pub fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
