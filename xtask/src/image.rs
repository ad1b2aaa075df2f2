//! `cargo xtask image`: the container image, built on this machine without a
//! container engine or a registry.
//!
//! 1. A static `lifecycle-agent` (glibc with `crt-static`, debug info
//!    dropped) in its own target directory (`target/image`), so the shared
//!    debug and release builds keep their artifacts.
//! 2. An image `FROM scratch` with buildah (storage driver `vfs`, isolation
//!    `chroot`: no daemon, no overlay mounts) from
//!    `deploy/image/Containerfile.local`: the binary and the host's CA
//!    bundle, nothing else.
//! 3. A smoke run of `lifecycle-agent --version` inside the image, and an
//!    OCI archive (`target/image/lifecycle-agent-<version>.oci.tar`) for
//!    `skopeo copy` or `ctr images import`.
//!
//! The repository's `Dockerfile` does the same from published base images.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Args;

use crate::{cargo, run, workspace_root};

const TARGET: &str = "x86_64-unknown-linux-gnu";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// ELF program header type of the dynamic loader path.
const PT_INTERP: u32 = 3;

#[derive(Args, Default)]
pub struct ImageArgs {
    /// Image name and tag; default `localhost/lifecycle-agent:<version>`.
    #[arg(long)]
    tag: Option<String>,
}

pub fn image(args: &ImageArgs) -> anyhow::Result<()> {
    let root = workspace_root();
    let version = env!("CARGO_PKG_VERSION");
    let tag = args
        .tag
        .clone()
        .unwrap_or_else(|| format!("localhost/lifecycle-agent:{version}"));
    let target_dir = root.join("target/image");
    ensure_buildah()?;

    let started = Instant::now();
    run(cargo()
        .args(["build", "--release", "--locked", "-p", "lifecycle-agent"])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo"))?;
    let build_time = started.elapsed();
    let binary = target_dir.join(TARGET).join("release/lifecycle-agent");
    if has_interpreter(&binary)? {
        bail!(
            "{} is dynamically linked; the scratch image needs a static binary",
            binary.display()
        );
    }

    let context = target_dir.join("context");
    std::fs::create_dir_all(&context)?;
    std::fs::copy(&binary, context.join("lifecycle-agent"))
        .with_context(|| format!("copy {}", binary.display()))?;
    if Path::new(CA_BUNDLE).exists() {
        std::fs::copy(CA_BUNDLE, context.join("ca-certificates.crt"))?;
    } else {
        eprintln!(
            "xtask image: no {CA_BUNDLE}; the image gets no CA certificates (TLS to OTLP fails)"
        );
        std::fs::write(context.join("ca-certificates.crt"), b"")?;
    }

    let started = Instant::now();
    run(buildah()
        .args([
            "bud",
            "--isolation",
            "chroot",
            "--layers=false",
            "-t",
            &tag,
            "-f",
        ])
        .arg(root.join("deploy/image/Containerfile.local"))
        .arg(&context))?;
    let image_time = started.elapsed();
    let container = output(buildah().args(["from", &tag]))?;
    let smoke = output(buildah().args([
        "run",
        "--isolation",
        "chroot",
        &container,
        "--",
        "/usr/local/bin/lifecycle-agent",
        "--version",
    ]));
    run(buildah().args(["rm", &container]))?;
    let smoke = smoke?;
    let archive = target_dir.join(format!("lifecycle-agent-{version}.oci.tar"));
    let _ = std::fs::remove_file(&archive);
    run(buildah()
        .args(["push", &tag])
        .arg(format!("oci-archive:{}:{tag}", archive.display())))?;
    let size = output(buildah().args(["images", "--format", "{{.Size}}", &tag]))?;

    println!("image        {tag} ({size}; `{smoke}` inside it)");
    println!(
        "binary       {} ({:.1} MB, static)",
        binary.display(),
        mb(std::fs::metadata(&binary)?.len())
    );
    println!(
        "OCI archive  {} ({:.1} MB)",
        archive.display(),
        mb(std::fs::metadata(&archive)?.len())
    );
    println!(
        "time         static build {}, image {}",
        secs(build_time),
        secs(image_time)
    );
    Ok(())
}

fn buildah() -> Command {
    let mut cmd = Command::new("buildah");
    cmd.args(["--storage-driver", "vfs"]);
    cmd
}

/// Installs Debian's buildah when it is missing (as root).
fn ensure_buildah() -> anyhow::Result<()> {
    if Command::new("buildah").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("xtask image: installing buildah");
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", "buildah"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether a 64-bit little-endian ELF file names a dynamic loader.
fn has_interpreter(path: &Path) -> anyhow::Result<bool> {
    let elf = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if elf.get(..5) != Some(b"\x7fELF\x02") {
        bail!("{} is not a 64-bit ELF file", path.display());
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        bail!("{}: truncated ELF header", path.display());
    };
    Ok((0..usize::from(phnum)).any(|i| {
        let at = phoff as usize + i * usize::from(phentsize);
        u32_at(at) == Some(PT_INTERP)
    }))
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
