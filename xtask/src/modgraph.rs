//! Import cycles between the modules of a crate.
//!
//! Reads a crate's `src/` as text: every file is a module, and every
//! `crate::`/`super::` path in it (in `use` items and inline) is an edge to
//! the deepest module the path names. An edge between two modules counts
//! at the level where they part: `a::b::x` -> `a::c::y` is an edge
//! `a::b` -> `a::c`. A cycle is a set of sibling modules that reach each
//! other. Comments and `#[cfg(test)] mod tests { … }` blocks at the end of a
//! file, and files named `tests.rs` or `*_tests.rs`, are left out: tests may
//! look at anything.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs, io,
    path::{Path, PathBuf},
};

type Module = Vec<String>;

/// The module a file defines, relative to `src`.
fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The text without `//` comments and without a trailing test module.
fn code_of(text: &str) -> String {
    let mut code: String = text
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(at) = code.find("#[cfg(test)]")
        && code[at..].contains("mod tests")
    {
        code.truncate(at);
    }
    code
}

/// Expands `a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else {
        return vec![path.to_owned()];
    };
    let (prefix, rest) = path.split_at(open);
    let body = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(rest);
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, ch) in body.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&body[start..]);
    items
        .into_iter()
        .filter(|item| !item.trim().is_empty())
        .flat_map(|item| expand(&format!("{prefix}{}", item.trim())))
        .collect()
}

/// Every `crate::…`/`super::…` path of the code.
fn paths_in(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let squeezed: String = code.split_whitespace().collect::<Vec<_>>().join(" ");
    for item in squeezed.split("use ").skip(1) {
        let Some(end) = item.find(';') else { continue };
        let tree: String = item[..end].chars().filter(|c| !c.is_whitespace()).collect();
        if tree.starts_with("crate::") || tree.starts_with("super::") {
            paths.extend(expand(&tree));
        }
    }
    let bytes = code.as_bytes();
    for root in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(found) = code[from..].find(root) {
            let at = from + found;
            from = at + root.len();
            let glued = at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
            if glued || (at > 1 && &code[at - 2..at] == "::") {
                continue;
            }
            let len = code[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(code.len() - at);
            paths.push(code[at..at + len].trim_end_matches(':').to_owned());
        }
    }
    paths
}

/// The module a path points into, seen from module `me`.
fn target_of(path: &str, me: &Module, modules: &BTreeSet<Module>) -> Module {
    let mut parts = path.split("::").peekable();
    let mut base: Module = me.clone();
    if parts.peek() == Some(&"crate") {
        parts.next();
        base.clear();
    } else {
        while parts.peek() == Some(&"super") {
            parts.next();
            base.pop();
        }
    }
    for part in parts {
        let mut next = base.clone();
        next.push(part.to_owned());
        if !modules.contains(&next) {
            break;
        }
        base = next;
    }
    base
}

/// The import cycles of the crate whose sources are in `src`, each as its
/// modules joined by `::`.
pub fn cycles(src: &Path) -> io::Result<Vec<Vec<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files)?;
    let modules: BTreeSet<Module> = files.iter().map(|f| module_of(src, f)).collect();
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        if name
            .as_deref()
            .is_some_and(|n| n == "tests.rs" || n.ends_with("_tests.rs"))
            || file.components().any(|c| c.as_os_str() == "tests")
        {
            continue;
        }
        let me = module_of(src, file);
        for path in paths_in(&code_of(&fs::read_to_string(file)?)) {
            let to = target_of(&path, &me, &modules);
            let common = me.iter().zip(&to).take_while(|(a, b)| a == b).count();
            if common < me.len() && common < to.len() {
                edges
                    .entry(me[..=common].to_vec())
                    .or_default()
                    .insert(to[..=common].to_vec());
            }
        }
    }
    Ok(strongly_connected(&edges)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| c.iter().map(|m| m.join("::")).collect())
        .collect())
}

/// Kosaraju: the strongly connected components of the graph.
fn strongly_connected(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    let nodes: BTreeSet<&Module> = edges
        .iter()
        .flat_map(|(from, to)| std::iter::once(from).chain(to))
        .collect();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    for &node in &nodes {
        finish_order(node, edges, &mut seen, &mut order);
    }
    let mut reverse: BTreeMap<&Module, Vec<&Module>> = BTreeMap::new();
    for (from, to) in edges {
        for t in to {
            reverse.entry(t).or_default().push(from);
        }
    }
    let mut assigned = BTreeSet::new();
    let mut components = Vec::new();
    for &node in order.iter().rev() {
        if !assigned.insert(node) {
            continue;
        }
        let mut component = vec![node.clone()];
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            for &prev in reverse.get(n).into_iter().flatten() {
                if assigned.insert(prev) {
                    component.push(prev.clone());
                    stack.push(prev);
                }
            }
        }
        component.sort();
        components.push(component);
    }
    components
}

fn finish_order<'a>(
    start: &'a Module,
    edges: &'a BTreeMap<Module, BTreeSet<Module>>,
    seen: &mut BTreeSet<&'a Module>,
    order: &mut Vec<&'a Module>,
) {
    if !seen.insert(start) {
        return;
    }
    let mut stack = vec![(start, edges.get(start).into_iter().flatten())];
    while let Some((node, next)) = stack.last_mut() {
        match next.next() {
            Some(child) if seen.insert(child) => {
                stack.push((child, edges.get(child).into_iter().flatten()));
            }
            Some(_) => {}
            None => {
                order.push(node);
                stack.pop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = root.join(path);
            fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        }
    }

    #[test]
    fn a_cycle_between_siblings_is_found_and_a_chain_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(
            dir.path(),
            &[
                ("lib.rs", "mod a;\nmod b;\nmod c;\n"),
                ("a/mod.rs", "mod x;\nuse crate::b::Thing;\n"),
                (
                    "a/x.rs",
                    "// use crate::c::Other;\nfn f() { super::super::c::g() }\n",
                ),
                ("b.rs", "use crate::{a::x::{self, Y}, c};\n"),
                (
                    "c.rs",
                    "pub fn g() {}\n#[cfg(test)]\nmod tests { use crate::a::x; }\n",
                ),
            ],
        );
        let found = cycles(dir.path()).expect("readable");
        assert_eq!(found, vec![vec!["a".to_owned(), "b".to_owned()]]);
    }

    /// The project's own crates have none.
    #[test]
    fn the_workspace_crates_have_no_import_cycles() {
        let root = crate::workspace_root();
        let mut all = Vec::new();
        for krate in [
            "agent",
            "agent-common",
            "crates/lifecycle-recording",
            "crates/lifecycle-audit",
            "xtask",
            "tests/node-sim",
            "tests/kube-api-server",
            "tests/otlp-receiver",
            "tests/testkit",
        ] {
            let src = root.join(krate).join("src");
            for cycle in cycles(&src).expect("the crate's sources") {
                all.push(format!("{krate}: {}", cycle.join(" <-> ")));
            }
        }
        assert!(all.is_empty(), "import cycles:\n{}", all.join("\n"));
    }
}
