//! `otlp-receiver`: an OTLP endpoint (gRPC and HTTP/protobuf on one port)
//! that prints what it receives, one line per span and per metric.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use otlp_receiver::{Receiver, view};

#[derive(Parser)]
#[command(about = "Receives OTLP traces and metrics and prints them")]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:4317")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let receiver = Receiver::start_on(args.listen).await?;
    println!(
        "listening on {} (gRPC and POST /v1/traces, /v1/metrics)",
        receiver.addr()
    );
    let (mut spans_seen, mut metric_requests_seen) = (0, 0);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let spans = receiver.spans();
        for s in &spans[spans_seen..] {
            println!(
                "span {:?} {} trace={} span={} parent={} pod={} container={} events={}",
                s.transport,
                s.span.name,
                hex(&s.span.trace_id),
                hex(&s.span.span_id),
                hex(&s.span.parent_span_id),
                view::attr_str(&s.span.attributes, "k8s.pod.name").unwrap_or("-"),
                view::attr_str(&s.span.attributes, "k8s.container.name").unwrap_or("-"),
                s.span.events.len(),
            );
        }
        spans_seen = spans.len();
        let metrics = receiver.metric_requests();
        for r in &metrics[metric_requests_seen..] {
            for m in r
                .request
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
            {
                println!("metric {:?} {} [{}]", r.transport, m.name, m.unit);
            }
        }
        metric_requests_seen = metrics.len();
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
