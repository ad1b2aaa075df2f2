//! Text and JSON renderings of a [`Report`].

use std::fmt::Write;

use serde::Serialize;

use super::{Check, Report, Status};

/// Longest detail line before wrapping, for an 100-column terminal.
const WRAP: usize = 78;

pub(super) fn text(report: &Report) -> String {
    let mut out = format!("lifecycle-agent doctor: kernel {}\n", report.kernel_release);
    let width = report
        .checks
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(0);
    for check in &report.checks {
        let tag = match check.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        let indent = " ".repeat(2 + 4 + 2 + width + 2);
        let lines = wrap(&check.detail, WRAP);
        let _ = writeln!(
            out,
            "  {tag}  {:width$}  {}",
            check.name,
            lines.first().map_or("", String::as_str)
        );
        for line in lines.iter().skip(1) {
            let _ = writeln!(out, "{indent}{line}");
        }
        if let Some(remedy) = &check.remedy {
            let mut first = true;
            for line in wrap(remedy, WRAP - 3) {
                let prefix = if first { "-> " } else { "   " };
                first = false;
                let _ = writeln!(out, "{indent}{prefix}{line}");
            }
        }
    }
    let _ = writeln!(
        out,
        "{} checks: {} ok, {} warning(s), {} failed{}",
        report.checks.len(),
        report.count(Status::Ok),
        report.count(Status::Warn),
        report.count(Status::Fail),
        if report.failed() {
            ": the agent cannot run here"
        } else {
            ""
        }
    );
    out
}

/// Splits on spaces into lines of at most `width` characters (longer words
/// stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[derive(Serialize)]
struct JsonReport<'a> {
    kernel_release: &'a str,
    failed: bool,
    warnings: usize,
    checks: &'a [Check],
}

pub(super) fn json(report: &Report) -> String {
    let doc = JsonReport {
        kernel_release: &report.kernel_release,
        failed: report.failed(),
        warnings: report.count(Status::Warn),
        checks: &report.checks,
    };
    // Plain strings, enums and numbers: serialisation cannot fail.
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_keeps_words_whole_and_lines_short() {
        let lines = wrap("aaa bbb ccc dddddddddd e", 8);
        assert_eq!(lines, ["aaa bbb", "ccc", "dddddddddd", "e"]);
        assert_eq!(wrap("", 8), [""]);
    }
}
