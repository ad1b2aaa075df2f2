//! Runs the test API server stand-alone, e.g. to point a locally built agent
//! at it. Pods can be preloaded from JSON manifests.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use kube_api_server::{ServerOptions, TestApiServer};

/// Command line of the stand-alone test API server.
#[derive(Parser)]
#[command(about = "Serve a Kubernetes API of pods and events on 127.0.0.1 for testing")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8001")]
    listen: SocketAddr,
    /// Where to write a kubeconfig pointing at the server.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Pod manifests (JSON) to create at start; `spec.nodeName` as given.
    #[arg(long = "pod")]
    pods: Vec<PathBuf>,
    /// Number of changes kept before older resource versions expire.
    #[arg(long, default_value_t = 10_000)]
    history: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let args = Args::parse();
    let options = ServerOptions {
        history_limit: args.history,
        ..ServerOptions::default()
    };
    let server = TestApiServer::bind(args.listen, options)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    for path in &args.pods {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        server
            .create_pod(manifest)
            .with_context(|| format!("cannot create pod from {}", path.display()))?;
    }
    if let Some(path) = &args.kubeconfig {
        server
            .write_kubeconfig(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    println!("serving {} ({} pods)", server.url(), args.pods.len());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for ctrl-c")?;
    Ok(())
}
