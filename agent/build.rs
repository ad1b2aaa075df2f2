//! Builds the eBPF programs (`agent-ebpf`) and puts the object in OUT_DIR so
//! that the agent binary embeds it.
//!
//! The eBPF crate needs `-Z build-std=core` for the tier-3 target
//! `bpfel-unknown-none`, which needs a compiler with its library source:
//! Debian's `rustc-web` (installed by `cargo xtask setup`) plus `bpf-linker`.
//! Override the compiler with `LIFECYCLE_EBPF_RUSTC` / `LIFECYCLE_EBPF_CARGO`.

use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

const OBJECT: &str = "lifecycle-probes";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("agent/ sits in the workspace root")
        .to_path_buf();
    let ebpf_dir = root.join("agent-ebpf");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    for watched in [
        "agent-ebpf/src",
        "agent-ebpf/Cargo.toml",
        "agent-ebpf/Cargo.lock",
        "agent-common/src",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    for var in ["LIFECYCLE_EBPF_RUSTC", "LIFECYCLE_EBPF_CARGO"] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let rustc = env::var("LIFECYCLE_EBPF_RUSTC").unwrap_or_else(|_| "/usr/bin/rustc".into());
    let cargo = env::var("LIFECYCLE_EBPF_CARGO").unwrap_or_else(|_| "/usr/bin/cargo".into());
    let home_bin = env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cargo/bin"))
        .unwrap_or_default();
    let path = format!(
        "{}:{}",
        home_bin.display(),
        env::var("PATH").unwrap_or_default()
    );
    let missing: Vec<String> = [rustc.as_str(), cargo.as_str()]
        .iter()
        .filter(|p| !Path::new(p).exists())
        .map(|p| p.to_string())
        .chain((!on_path(&path, "bpf-linker")).then(|| "bpf-linker".to_string()))
        .collect();
    if !missing.is_empty() {
        panic!(
            "the eBPF toolchain is missing ({}): run `cargo xtask setup` (installs Debian's \
             rustc-web, rust-web-src, llvm-22-dev and bpf-linker), then build again",
            missing.join(", ")
        );
    }

    // The nested build gets its own target dir (no lock shared with this
    // build) that survives between profiles, so it is rebuilt only on change.
    let target_dir = root.join("target").join("ebpf");
    let rustflags = [
        "--cfg",
        "bpf_target_arch=\"x86_64\"",
        "-Cdebuginfo=2",
        "-Clink-arg=--btf",
    ]
    .join("\x1f");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(&ebpf_dir)
        .args([
            "build",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
        ])
        .arg("--target-dir")
        .arg(&target_dir);
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("CARGO")
            || key.starts_with("RUSTC")
            || key == "RUSTFLAGS"
            || key == "RUSTDOCFLAGS"
        {
            cmd.env_remove(&key);
        }
    }
    cmd.env("RUSTC", &rustc)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags)
        .env("PATH", &path);
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("could not run {cargo}: {e}"));
    if !status.success() {
        panic!("building the eBPF programs failed ({status}); see the output above");
    }
    let built = target_dir.join("bpfel-unknown-none/release").join(OBJECT);
    std::fs::copy(&built, out_dir.join(OBJECT))
        .unwrap_or_else(|e| panic!("copying {} failed: {e}", built.display()));
}

fn on_path(path: &str, program: &str) -> bool {
    path.split(':')
        .any(|dir| Path::new(dir).join(program).is_file())
}
