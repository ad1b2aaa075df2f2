//! Hook processes the kubelet runs inside a container (exec hooks).

use std::time::{Duration, Instant};

use crate::{
    args::Args,
    common::{self, event, json_str},
};

/// `hook-sleep --ms N`: `sleep N` in a preStop.
pub fn sleep(args: &Args) -> Result<i32, String> {
    let ms = args.ms("ms", 0)?;
    event("hook_sleep", &[("ms", ms.to_string())]);
    common::sleep_ms(ms);
    Ok(0)
}

/// `hook-http --addr A --path P [--method M]`: one request (e.g.
/// `pilot-agent request POST quitquitquit`); exit 0 on a 2xx answer.
pub fn http(args: &Args) -> Result<i32, String> {
    let addr = common::addr(args.required("addr")?)?;
    let path = args.required("path")?;
    let method = args.get("method").unwrap_or("GET");
    match common::http(addr, method, path, Duration::from_secs(2)) {
        Ok(reply) => {
            event("hook_http", &[("status", reply.status.to_string())]);
            Ok(if reply.status < 300 { 0 } else { 1 })
        }
        Err(e) => {
            event("hook_http", &[("errno", common::errno_of(&e).to_string())]);
            Ok(1)
        }
    }
}

/// `hook-wait --addr A --path P --timeout-ms T [--period-ms P]`: polls until
/// the endpoint answers 200 (`pilot-agent wait`, `linkerd-await`); exit 1
/// on timeout.
pub fn wait(args: &Args) -> Result<i32, String> {
    let addr = common::addr(args.required("addr")?)?;
    let path = args.required("path")?;
    let timeout = Duration::from_millis(args.ms("timeout-ms", 60_000)?);
    let period = args.ms("period-ms", 10)?;
    let start = Instant::now();
    let mut attempts = 0u32;
    while start.elapsed() < timeout {
        attempts += 1;
        if common::http(addr, "GET", path, Duration::from_millis(500))
            .is_ok_and(|r| r.status == 200)
        {
            event(
                "hook_wait_ready",
                &[("attempts", attempts.to_string()), ("path", json_str(path))],
            );
            return Ok(0);
        }
        common::sleep_ms(period.max(1));
    }
    // pilot-agent wait gives up with exit status 255.
    event("hook_wait_timeout", &[("attempts", attempts.to_string())]);
    Ok(255)
}
