use std::{fs::File, io::BufWriter, io::Write};

use anyhow::Context;
use clap::Parser;
use lifecycle_agent::{
    config::{Cli, Command},
    record,
};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Record(args) => {
            let options = args.options();
            let mut out: Box<dyn Write + Send> = if args.output.as_os_str() == "-" {
                Box::new(BufWriter::with_capacity(1 << 16, std::io::stdout()))
            } else {
                let file = File::create(&args.output)
                    .with_context(|| format!("cannot create {}", args.output.display()))?;
                Box::new(BufWriter::with_capacity(1 << 16, file))
            };
            let stop = stop_on_signals()?;
            let summary = record::record(&options, out.as_mut(), stop).await?;
            eprintln!("{}", summary.describe());
        }
    }
    Ok(())
}

/// A watch that turns true on the first SIGINT or SIGTERM.
fn stop_on_signals() -> anyhow::Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        tracing::info!("stop requested; draining and flushing");
        let _ = tx.send(true);
        // Keep the sender alive so receivers see `true`, not a closed channel.
        std::future::pending::<()>().await;
    });
    Ok(rx)
}
