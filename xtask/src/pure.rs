//! The two pure libraries build and test with rustup's stable toolchain
//! alone: no bpf-linker, no Debian rustc-web, no eBPF build, no tokio, aya
//! or kube. `cargo xtask test` checks it by running their tests with a PATH
//! that holds nothing else (plus the C compiler and linker rustc links
//! with), in a target directory of their own.

use std::{
    env, fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
};

use anyhow::Context;

use std::process::Command;

use crate::{run, workspace_root};

/// The crates that must stand alone.
pub const PURE_CRATES: [&str; 2] = ["lifecycle-recording", "lifecycle-audit"];

fn find_on_path(name: &str) -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A directory with rustup's proxies and the system's `cc` and `ld`.
fn bare_path(dir: &Path) -> anyhow::Result<()> {
    let home = env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("neither CARGO_HOME nor HOME is set")?;
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let rustup_bin = home.join("bin");
    let tools = ["cargo", "rustc", "rustdoc", "rustup"]
        .map(|t| (t, Some(rustup_bin.join(t))))
        .into_iter()
        .chain(["cc", "ld"].map(|t| (t, find_on_path(t))));
    for (name, source) in tools {
        let source = source
            .filter(|p| p.exists())
            .with_context(|| format!("{name} not found for the bare toolchain PATH"))?;
        symlink(&source, dir.join(name))
            .with_context(|| format!("cannot link {} into {}", source.display(), dir.display()))?;
    }
    Ok(())
}

/// Runs the pure crates' tests with only rustup's toolchain on PATH.
pub fn test_pure_crates(target_dir: &Path) -> anyhow::Result<()> {
    let bin = target_dir.join("pure/bin");
    bare_path(&bin)?;
    let mut cmd = Command::new(bin.join("cargo"));
    cmd.env_clear()
        .env("PATH", &bin)
        .env("CARGO_TARGET_DIR", target_dir.join("pure"))
        .current_dir(workspace_root())
        .arg("test");
    for var in ["HOME", "RUSTUP_HOME", "CARGO_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Some(value) = env::var_os(var) {
            cmd.env(var, value);
        }
    }
    for krate in PURE_CRATES {
        cmd.args(["-p", krate]);
    }
    run(&mut cmd)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Crates the pure libraries must never pull in, even indirectly.
    const FORBIDDEN: [&str; 6] = [
        "tokio",
        "aya",
        "kube",
        "k8s-openapi",
        "opentelemetry",
        "hyper",
    ];

    /// The package names in `krate`'s normal dependency tree, itself included.
    fn normal_tree(krate: &str) -> BTreeSet<String> {
        let out = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(workspace_root())
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "-p",
                krate,
            ])
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "cargo tree -p {krate}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_pure_crates_stay_small_and_free_of_the_runtime_stack() {
        for krate in PURE_CRATES {
            let tree = normal_tree(krate);
            assert!(tree.contains(krate), "{krate} missing from its own tree");
            assert!(
                tree.len() < 40,
                "{krate} pulls in {} crates: {tree:?}",
                tree.len()
            );
            for name in FORBIDDEN {
                assert!(!tree.contains(name), "{krate} depends on {name}");
            }
        }
    }
}
