//! Debian's `prometheus` as a child of the test: a generated configuration
//! (one static target, the rules file, 1 s scrapes and evaluations), its
//! HTTP API, and the process killed and reaped on drop, also when the test
//! panics. Requests are HTTP/1.0, so Go's server closes the connection
//! after the answer and never chunks it.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use lifecycle_testkit::free_local_addr;
use serde_json::Value;

pub type Labels = BTreeMap<String, String>;
pub type Series = Vec<(Labels, f64)>;

pub struct Prometheus {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts it scraping `target` with `rules` loaded; returns once ready.
    pub fn start(target: SocketAddr, rules: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("prometheus.yml");
        let rules = rules.canonicalize().expect("the rules file");
        let text = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: [{rules:?}]\n\
             scrape_configs:\n  - job_name: lifecycle-agent\n    \
             static_configs: [{{targets: [\"{target}\"]}}]\n"
        );
        std::fs::write(&config, text).expect("write prometheus.yml");
        let addr = free_local_addr();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus (Debian's package)");
        let prom = Self { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(prom.addr, "/-/ready").map(|r| r.0) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "prometheus not ready\n{}",
                prom.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        prom
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `data` of an API answer, or the error Prometheus gave.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        let url = format!("{path}?{}", query.join("&"));
        let (status, body) = get(self.addr, &url).ok_or_else(|| format!("GET {url} failed"))?;
        let answer: Value = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {status}, not JSON ({e}): {body}"))?;
        if answer["status"] != "success" {
            return Err(format!("{}: {}", answer["errorType"], answer["error"]));
        }
        Ok(answer["data"].clone())
    }

    /// An instant query at the current time.
    pub fn query(&self, expr: &str) -> Result<Series, String> {
        let data = self.api("/api/v1/query", &[("query", expr)])?;
        if data["resultType"] != "vector" {
            return Err(format!("a {} instead of a vector", data["resultType"]));
        }
        Ok(data["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone()).unwrap_or_default();
                let value = s["value"][1].as_str().and_then(|v| v.parse().ok());
                (labels, value.unwrap_or(f64::NAN))
            })
            .collect())
    }

    /// Waits (60 s at most) until `expr` gives one series whose value passes `ok`.
    pub fn wait_for(&self, expr: &str, ok: impl Fn(f64) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.query(expr);
            if let Ok([(_, v)]) = got.as_deref()
                && ok(*v)
            {
                return;
            }
            assert!(Instant::now() < deadline, "{expr}: {got:?}\n{}", self.log());
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Every metric and label name Prometheus holds, and the metric names
    /// of the agent's `/metrics` text.
    pub fn names(&self, metrics: &str) -> BTreeSet<String> {
        let mut names: BTreeSet<String> = metrics
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(['{', ' ']).next())
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        for path in ["/api/v1/label/__name__/values", "/api/v1/labels"] {
            let data = self.api(path, &[]).expect(path);
            let list: Vec<String> = serde_json::from_value(data).expect("a list of names");
            names.extend(list);
        }
        names
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: prometheus\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text.split_once("\r\n\r\n")?.1.to_owned()))
}

/// Percent-encoding of a query parameter (everything but RFC 3986's
/// unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
