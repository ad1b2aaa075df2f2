# lifecycle-agent container image.
#
#   docker build -t lifecycle-agent:0.1.0 .
#
# Not built in CI (no container engine there): `cargo xtask image` builds the
# equivalent image with buildah from a locally built binary and
# deploy/image/Containerfile.local.
#
# Build stage: rustup's Rust 1.95 for the agent, plus what `cargo xtask
# setup` installs for the eBPF programs: Debian's rustc-web, cargo-web and
# rust-web-src (a compiler with its library source for -Z build-std=core on
# bpfel-unknown-none), LLVM 22 and bpf-linker built against it. rustc-web
# 1.96 and llvm-22-dev come from bookworm-security.
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      rustc-web cargo-web rust-web-src llvm-22-dev \
 && rm -rf /var/lib/apt/lists/*
RUN PATH=/usr/lib/llvm-22/bin:$PATH cargo install bpf-linker --version 0.13.0 --locked \
      --no-default-features --features llvm-22
WORKDIR /src
COPY . .
# A static binary (glibc, crt-static): the runtime image has no libc. The
# eBPF object is built by agent/build.rs with Debian's compiler and embedded.
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    CARGO_PROFILE_RELEASE_DEBUG=0 CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    cargo build --release --locked --target x86_64-unknown-linux-gnu -p lifecycle-agent \
 && cp target/x86_64-unknown-linux-gnu/release/lifecycle-agent /lifecycle-agent

# Runtime: no shell, no package manager; CA certificates for OTLP over TLS.
FROM gcr.io/distroless/static-debian12
COPY --from=build /lifecycle-agent /usr/local/bin/lifecycle-agent
# uid 0 with only the capabilities the DaemonSet adds (docs/operations.md):
# Kubernetes gives added capabilities to uid 0 only.
USER 0:0
ENTRYPOINT ["/usr/local/bin/lifecycle-agent"]
CMD ["run"]
