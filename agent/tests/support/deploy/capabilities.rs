//! The capability table of docs/operations.md and the capabilities a
//! DaemonSet adds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use k8s_openapi::api::apps::v1::DaemonSet;

use super::read;

/// One row of the capability table of docs/operations.md.
#[derive(Debug)]
pub struct CapabilityRow {
    /// Kubernetes spelling, e.g. `BPF`.
    pub name: String,
    /// The `kernels` cell: which kernels need it.
    pub kernels: String,
    pub daemonset: bool,
    /// `yes`/`no` of each `<name> overlay` column, by overlay name.
    pub overlays: BTreeMap<String, bool>,
}

const TABLE_MARKER: &str =
    "<!-- capabilities-table: read by agent/tests/unprivileged/deploy_daemonset.rs -->";

fn cells(line: &str) -> Vec<String> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_owned())
        .collect()
}

/// The table after the marker in docs/operations.md, columns found by
/// their headers: `capability`, `kernels`, `DaemonSet`, one `<name>
/// overlay` per overlay, and the reason.
pub fn capability_table() -> Vec<CapabilityRow> {
    let text = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"));
    let start = text
        .find(TABLE_MARKER)
        .expect("capability table marker in docs/operations.md");
    let mut lines = text[start + TABLE_MARKER.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'));
    let header = cells(lines.next().expect("table header"));
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("capability table has no {name:?} column: {header:?}"))
    };
    let (name_at, kernels_at, daemonset_at) =
        (column("capability"), column("kernels"), column("DaemonSet"));
    let overlay_columns: Vec<(usize, String)> = header
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_suffix(" overlay").map(|o| (i, o.to_owned())))
        .collect();
    let yes = |cell: &str| match cell {
        "yes" => true,
        "no" => false,
        other => panic!("capability table cell {other:?} is neither yes nor no"),
    };
    lines
        .skip(1) // separator
        .map(|line| {
            let row = cells(line);
            assert_eq!(row.len(), header.len(), "capability table row: {line}");
            let name = row[name_at].trim_matches('`');
            CapabilityRow {
                name: name.strip_prefix("CAP_").unwrap_or(name).to_owned(),
                kernels: row[kernels_at].clone(),
                daemonset: yes(&row[daemonset_at]),
                overlays: overlay_columns
                    .iter()
                    .map(|(i, o)| (o.clone(), yes(&row[*i])))
                    .collect(),
            }
        })
        .collect()
}

/// The names of the rows where `pick` is true.
pub fn granted(rows: &[CapabilityRow], pick: impl Fn(&CapabilityRow) -> bool) -> BTreeSet<String> {
    rows.iter()
        .filter(|r| pick(r))
        .map(|r| r.name.clone())
        .collect()
}

/// The rows the overlay `name` grants.
pub fn granted_by_overlay(rows: &[CapabilityRow], name: &str) -> BTreeSet<String> {
    granted(rows, |r| {
        *r.overlays
            .get(name)
            .unwrap_or_else(|| panic!("capability table has no `{name} overlay` column"))
    })
}

/// `securityContext.capabilities.add` of the DaemonSet's agent container.
pub fn added_capabilities(ds: &DaemonSet) -> BTreeSet<String> {
    let container = &ds
        .spec
        .as_ref()
        .expect("spec")
        .template
        .spec
        .as_ref()
        .expect("pod spec")
        .containers[0];
    container
        .security_context
        .as_ref()
        .and_then(|s| s.capabilities.as_ref())
        .and_then(|c| c.add.clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}
