//! Installs the toolchain the build needs, only what is missing:
//! Debian's rustc-web (a compiler with its library source, for
//! `-Z build-std=core` on the bpfel target), LLVM 22 for bpf-linker,
//! bpf-linker itself, the network tools the tests use, Chromium for the
//! HTML report test, the container runtime the node simulator drives over
//! CRI (containerd, runc, the CNI plugins), umoci and buildah for the
//! images, protoc for the CRI client's build script, Debian's
//! prometheus for `promtool` (the alert rules' checks and unit tests), and
//! g++ for libFuzzer's C++ (`cargo xtask fuzz`).

use std::{path::Path, process::Command};

use anyhow::bail;

use crate::run;

/// (Debian package, a file it installs).
const PACKAGES: &[(&str, &str)] = &[
    ("rustc-web", "/usr/bin/rustc"),
    ("cargo-web", "/usr/bin/cargo"),
    ("rust-web-src", "/usr/share/doc/rust-web-src"),
    ("llvm-22-dev", "/usr/lib/llvm-22/bin/llvm-config"),
    ("iproute2", "/usr/sbin/ip"),
    ("iptables", "/usr/sbin/iptables"),
    ("chromium", "/usr/bin/chromium"),
    ("containerd", "/usr/bin/containerd"),
    ("runc", "/usr/sbin/runc"),
    ("containernetworking-plugins", "/usr/lib/cni/bridge"),
    ("umoci", "/usr/bin/umoci"),
    ("buildah", "/usr/bin/buildah"),
    ("protobuf-compiler", "/usr/bin/protoc"),
    ("prometheus", "/usr/bin/promtool"),
    ("g++", "/usr/bin/g++"),
];

const BPF_LINKER_VERSION: &str = "0.13.0";

pub fn ensure_toolchain() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(_, file)| !Path::new(file).exists())
        .map(|(pkg, _)| *pkg)
        .collect();
    if !missing.is_empty() {
        if !is_root() {
            bail!("missing Debian packages {missing:?}: run `cargo xtask setup` as root");
        }
        eprintln!("xtask setup: installing {missing:?}");
        run(Command::new("apt-get").args(["update", "-q"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let linker = Path::new(&home).join(".cargo/bin/bpf-linker");
    if !linker.exists() {
        eprintln!("xtask setup: building bpf-linker {BPF_LINKER_VERSION} against LLVM 22");
        let path = format!(
            "/usr/lib/llvm-22/bin:{}",
            std::env::var("PATH").unwrap_or_default()
        );
        run(
            Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "install",
                    "bpf-linker",
                    "--version",
                    BPF_LINKER_VERSION,
                    "--locked",
                ])
                .args(["--no-default-features", "--features", "llvm-22"])
                .env("PATH", path),
        )?;
    }
    Ok(())
}

fn is_root() -> bool {
    // `id -u` keeps xtask free of libc.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}
