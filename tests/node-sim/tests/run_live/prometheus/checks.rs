//! Reading the dashboard's queries and the alert rules, and judging what
//! Prometheus answered against the expectations in prometheus.rs. Each
//! check returns its problems as text, so one run reports all of them.

use std::{
    collections::{BTreeSet, HashSet},
    path::Path,
};

use serde_json::Value;

use super::{
    ALERTS, BUILTINS, Check, VARIABLES, Want,
    api::{Labels, Prometheus, Series},
};

fn dashboard(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("the dashboard file");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

/// Every target of every panel (rows' nested panels too) as
/// (`panel title/refId`, PromQL with the built-ins substituted).
pub fn dashboard_queries(path: &Path) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    let title = p["title"].as_str().unwrap_or_default();
                    let id = format!("{title}/{}", t["refId"].as_str().unwrap_or_default());
                    out.push((id, substitute(expr)));
                }
            }
            walk(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard(path)["panels"], &mut out);
    out
}

fn substitute(expr: &str) -> String {
    BUILTINS
        .iter()
        .fold(expr.to_owned(), |e, (var, value)| e.replace(var, value))
}

/// Names in `expr` that look like the agent's (`lifecycle_…`) but are
/// neither a metric nor a label Prometheus or `/metrics` knows, and
/// template variables left unsubstituted.
pub fn unknown_names(id: &str, expr: &str, names: &BTreeSet<String>) -> Option<String> {
    let mut unknown: BTreeSet<&str> = expr
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("lifecycle_") && !names.contains(*t))
        .collect();
    if expr.contains('$') {
        unknown.insert("a template variable");
    }
    (!unknown.is_empty()).then(|| format!("{id}: unknown {unknown:?} in {expr}"))
}

fn picks(selector: &str, labels: &Labels) -> bool {
    selector.split(',').filter(|p| !p.is_empty()).all(|p| {
        p.split_once('=')
            .is_some_and(|(k, v)| labels.get(k).is_some_and(|l| l == v))
    })
}

fn passes(check: Check, v: f64) -> bool {
    match check {
        Check::Eq(x) => (v - x).abs() < 1e-9,
        Check::AtLeast(x) => v >= x,
        Check::Within(lo, hi) => (lo..=hi).contains(&v),
    }
}

/// What is wrong with `got` for `want`, if anything.
pub fn judge(want: &Want, got: &Series) -> Option<String> {
    let (listed, others) = match want {
        Want::Empty(_) => return (!got.is_empty()).then(|| "expected no series".into()),
        // Counted against the scenario files by the test itself.
        Want::Expected => return None,
        Want::Exactly(listed) => (*listed, None),
        Want::Has(listed, others) => (*listed, Some(*others)),
    };
    if got.is_empty() {
        return Some("no series".into());
    }
    let mut problems = Vec::new();
    let mut matched = HashSet::new();
    for (selector, check) in listed {
        let hits: Vec<usize> = (0..got.len())
            .filter(|&i| picks(selector, &got[i].0))
            .collect();
        match hits[..] {
            [i] if passes(*check, got[i].1) => _ = matched.insert(i),
            [i] => problems.push(format!("{{{selector}}} = {} is not {check:?}", got[i].1)),
            _ => problems.push(format!("{{{selector}}} picks {} series", hits.len())),
        }
        matched.extend(hits);
    }
    for (i, (labels, v)) in got.iter().enumerate() {
        match others {
            _ if matched.contains(&i) => {}
            None => problems.push(format!("unexpected {}", show_one(labels, *v))),
            Some(c) if !passes(c, *v) => {
                problems.push(format!("{} is not {c:?}", show_one(labels, *v)))
            }
            Some(_) => {}
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn show_one(labels: &Labels, v: f64) -> String {
    let l: Vec<String> = labels
        .iter()
        .filter(|(k, _)| !["instance", "job"].contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!("{{{}}} {v}", l.join(","))
}

pub fn show(got: &Series) -> String {
    if got.is_empty() {
        return "(no series)".into();
    }
    let all: Vec<String> = got.iter().map(|(l, v)| show_one(l, *v)).collect();
    all.join(" ")
}

/// The query variables (`label_values(selector, label)`): the values each
/// offers must be those of `VARIABLES`.
pub fn check_variables(prom: &Prometheus, path: &Path, names: &BTreeSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let dash = dashboard(path);
    let vars = dash["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for var in vars.iter().filter(|v| v["type"] == "query") {
        let name = var["name"].as_str().unwrap_or_default();
        let query = var["query"]["query"]
            .as_str()
            .or(var["query"].as_str())
            .unwrap_or_default();
        let inner = query
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'));
        let Some((selector, label)) = inner.and_then(|q| q.rsplit_once(',')) else {
            problems.push(format!(
                "variable {name}: not label_values(selector, label): {query}"
            ));
            continue;
        };
        let expr = substitute(&format!("group by ({}) ({selector})", label.trim()));
        problems.extend(unknown_names(name, &expr, names));
        let got: BTreeSet<String> = match prom.query(&expr) {
            Ok(got) => got
                .iter()
                .filter_map(|(l, _)| l.get(label.trim()).cloned())
                .collect(),
            Err(e) => BTreeSet::from([format!("error: {e}")]),
        };
        eprintln!("variable {name}: {got:?}");
        let want: BTreeSet<String> = match VARIABLES.iter().find(|v| v.0 == name) {
            Some((_, Ok(values))) => values.iter().map(|v| v.to_string()).collect(),
            Some((_, Err(_))) => BTreeSet::new(),
            None => BTreeSet::from(["an entry in VARIABLES".to_owned()]),
        };
        if got != want {
            problems.push(format!(
                "variable {name}: {query} offers {got:?}, not {want:?}"
            ));
        }
    }
    problems
}

/// `expr` without a final comparison with a number (`… > 0`), if it has one.
fn left_side(expr: &str) -> Option<&str> {
    let (head, number) = expr.trim().rsplit_once(char::is_whitespace)?;
    number.parse::<f64>().ok()?;
    let head = head.trim_end();
    [">=", "<=", "==", "!=", ">", "<"]
        .iter()
        .find_map(|op| head.strip_suffix(op))
}

/// Each rule's expression and Prometheus' own alert state against `ALERTS`.
pub fn check_alerts(prom: &Prometheus, rules: &Path, names: &BTreeSet<String>) -> Vec<String> {
    let text = std::fs::read_to_string(rules).expect("the rules file");
    let doc: Value = serde_saphyr::from_str(&text).expect("the rules file is YAML");
    let alerts = prom.api("/api/v1/alerts", &[]).expect("/api/v1/alerts")["alerts"].clone();
    let alerts = alerts.as_array().cloned().unwrap_or_default();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let groups = doc["groups"].as_array().cloned().unwrap_or_default();
    for rule in groups
        .iter()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
    {
        let (Some(name), Some(expr)) = (rule["alert"].as_str(), rule["expr"].as_str()) else {
            continue;
        };
        seen.insert(name.to_owned());
        problems.extend(unknown_names(name, expr, names));
        let got = prom.query(expr).unwrap_or_else(|e| panic!("{name}: {e}"));
        let lhs = left_side(expr).map(|l| prom.query(l).map(|s| show(&s)));
        let states: Vec<(Labels, String)> = alerts
            .iter()
            .filter(|a| a["labels"]["alertname"] == name)
            .map(|a| {
                let labels = serde_json::from_value(a["labels"].clone()).unwrap_or_default();
                (labels, a["state"].as_str().unwrap_or_default().to_owned())
            })
            .collect();
        let state: Vec<String> = states
            .iter()
            .map(|(l, s)| format!("{s} {}", show_one(l, 0.0)))
            .collect();
        let seen_as = format!(
            "expr gives {}, without its threshold {lhs:?}; alerts {state:?}",
            show(&got)
        );
        eprintln!("alert {name}: {seen_as}");
        let wrong = match ALERTS.iter().find(|a| a.0 == name) {
            None => Some("no entry in ALERTS".to_owned()),
            Some((_, Ok(selector))) => {
                let firing = states
                    .iter()
                    .any(|(l, s)| s == "firing" && picks(selector, l));
                let series = got.iter().any(|(l, _)| picks(selector, l));
                (!firing || !series).then(|| format!("should fire for {{{selector}}}"))
            }
            Some((_, Err(why))) => {
                (!got.is_empty() || !states.is_empty()).then(|| format!("should be silent: {why}"))
            }
        };
        problems.extend(wrong.map(|w| format!("alert {name}: {w}; {seen_as}")));
    }
    let missing = ALERTS.iter().filter(|a| !seen.contains(a.0));
    problems
        .extend(missing.map(|a| format!("alert {}: in ALERTS, not in {}", a.0, rules.display())));
    problems
}
