use std::{fs::File, io::BufWriter, io::Write, process::ExitCode};

use anyhow::Context;
use clap::Parser;
use lifecycle_agent::{
    config::{Cli, Command, CompareArgs, DoctorArgs, DoctorFormat, ExportCommandArgs, ReportArgs},
    recorder, report,
};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::watch,
};
use tracing_subscriber::EnvFilter;

/// Runs the command. A user error (a missing file, a bad value, a node
/// that cannot run the agent) prints one message with its causes and exits
/// 1, with no backtrace even when `RUST_BACKTRACE` is set: `anyhow` would
/// print one for an `Err` returned from `main`. Panics keep theirs.
#[tokio::main]
async fn main() -> ExitCode {
    match run_command().await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}", lifecycle_agent::error_chain::render(error.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run_command() -> anyhow::Result<ExitCode> {
    let args = lifecycle_agent::config_file::with_config_file(std::env::args_os().collect())?;
    let cli = Cli::parse_from(args);
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
            let summary = recorder::record(&options, out.as_mut(), stop).await?;
            eprintln!("{}", summary.describe());
        }
        Command::Run(args) => {
            let options = args.options()?;
            let stop = stop_on_signals()?;
            match lifecycle_agent::run::run(options, stop).await {
                Ok(summary) => eprintln!("{}", summary.describe()),
                Err(error) => {
                    tracing::error!(label = error.label(), "the daemon failed");
                    return Err(error.into());
                }
            }
        }
        Command::Report(args) => run_report(&args)?,
        Command::Compare(args) => run_compare(&args)?,
        Command::Export(args) => run_export(&args).await?,
        Command::Doctor(args) => {
            if !run_doctor(&args)? {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write_output(path: Option<&std::path::Path>, text: &str) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("cannot write to stdout")
        }
    }
}

/// Prints the preflight report; false when a check failed.
fn run_doctor(args: &DoctorArgs) -> anyhow::Result<bool> {
    let report = lifecycle_agent::preflight::run_checks(&args.options());
    let text = match args.format {
        DoctorFormat::Text => report.render_text(),
        DoctorFormat::Json => report.render_json(),
    };
    write_output(None, &text)?;
    Ok(!report.failed())
}

async fn run_export(args: &ExportCommandArgs) -> anyhow::Result<()> {
    let config = args.export.config()?;
    if !config.otlp_enabled() {
        tracing::warn!(
            "no OTLP endpoint configured (--otlp-endpoint or OTEL_EXPORTER_OTLP_ENDPOINT): nothing is sent"
        );
    }
    let resource = lifecycle_agent::export::ResourceInfo {
        node_name: args.node_name.clone(),
    };
    let done = lifecycle_agent::export::recording::export_recording(
        &args.recording,
        &args.audit.config(),
        &config,
        &resource,
        args.shutdown_timeout,
    )
    .await?;
    let mut text = if args.json {
        serde_json::to_string_pretty(&done)? + "\n"
    } else {
        format!(
            "{}: {} pod(s), {} trace(s)\n{}\n",
            done.recording, done.pods, done.traces, done.export
        )
    };
    if args.print_metrics {
        text.push_str(&done.prometheus_text);
    }
    write_output(None, &text)
}

fn run_report(args: &ReportArgs) -> anyhow::Result<()> {
    let config = args.audit.config();
    let report = report::audit_file(&args.recording, &config)?;
    write_output(args.output.as_deref(), &report.render(args.format)?)
}

fn run_compare(args: &CompareArgs) -> anyhow::Result<()> {
    let config = args.audit.config();
    let before = report::audit_file(&args.before, &config)?;
    let after = report::audit_file(&args.after, &config)?;
    let comparison = report::compare::compare(
        (&before.recording, &before.pods),
        (&after.recording, &after.pods),
        &before.kubelet_assumed,
    );
    let text = match args.format {
        report::Format::Text => report::compare::render_text(&comparison),
        report::Format::Json => serde_json::to_string_pretty(&comparison)? + "\n",
        report::Format::Html => {
            return Err(report::ReportError::FormatNotSupported("html").into());
        }
    };
    write_output(args.output.as_deref(), &text)
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
