//! The layers of `shared/src`, checked from its `use crate::` lines (and
//! `crate::` paths written inline): the domain imports neither the HTTP
//! edge nor an adapter (it gets the ports in `platform::Platform`, which
//! the hosts build), and no two top-level modules import each other,
//! directly or around a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that hold the product's rules: they see ports, never the edges.
const DOMAIN: &[&str] = &[
    "accounts",
    "apply",
    "collections",
    "contacts",
    "dead_letters",
    "keys",
    "transforms",
    "triggers",
];
/// What the domain may not import.
const EDGES: &[&str] = &["http", "adapters"];
/// Test support may import anything, and nothing of the product imports it
/// but tests.
const EXEMPT: &[&str] = &["testkit"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments and without its test items (each
/// `#[cfg(test)]` item: to its `;`, or its braces' end).
fn code(text: &str) -> String {
    let text: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(brace)) if semi < brace => semi + 1,
            (_, Some(brace)) => {
                let mut depth = 0;
                let mut end = item.len();
                for (i, c) in item[brace..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = brace + i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(semi), None) => semi + 1,
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The top-level modules a piece of code names: `crate::x` inline or in a
/// `use`, and each first name inside `use crate::{a, b::c, ...}`.
fn named(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The group's items at depth 0, each up to its first `::`.
            let mut depth = 0;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            items.push(item);
            for item in items {
                let name = ident(item.trim());
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Top-level module -> the top-level modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(&root).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || rel.file_name().is_some_and(|f| f == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let to = graph.entry(module.clone()).or_default();
        for name in named(&code(&text)) {
            // `crate::Platform` is `platform`'s, re-exported by lib.rs.
            let name = if name == "Platform" {
                "platform".to_string()
            } else {
                name
            };
            if name != module && name != "self" {
                to.insert(name);
            }
        }
    }
    graph
}

/// The edges that lie on a circle: both ends in one strongly connected
/// component of more than one module.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<(String, String)> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(m) = todo.pop() {
            for next in graph.get(&m).into_iter().flatten() {
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        seen
    };
    let reachable: BTreeMap<&String, BTreeSet<String>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut out = BTreeSet::new();
    for (from, tos) in graph {
        for to in tos {
            // from -> to, and back from `to` to `from`: a circle.
            if reachable.get(to).is_some_and(|r| r.contains(from)) {
                out.insert((from.clone(), to.clone()));
            }
        }
    }
    out
}

fn violations() -> BTreeSet<(String, String)> {
    let mut graph = graph();
    for exempt in EXEMPT {
        graph.remove(*exempt);
    }
    let mut found = circles(&graph);
    for (from, tos) in &graph {
        if DOMAIN.contains(&from.as_str()) {
            for to in tos {
                if EDGES.contains(&to.as_str()) {
                    found.insert((from.clone(), to.clone()));
                }
            }
        }
    }
    found
}

#[test]
fn the_reader_finds_grouped_and_inline_imports() {
    let tested = "use crate::ports;\n#[cfg(test)]\nmod tests {\n    use crate::http;\n    fn f() { if true { crate::adapters::x(); } }\n}\nuse crate::keys;";
    let names: Vec<String> = named(&code(tested)).into_iter().collect();
    assert_eq!(
        names,
        ["keys", "ports"],
        "test items are skipped, what follows is not"
    );
    let code = "use crate::{ports::{Store, Key}, keys, http::ApiError};\nfn f() { crate::ids::new_id(\"x\"); }";
    let names: Vec<String> = named(code).into_iter().collect();
    assert_eq!(names, ["http", "ids", "keys", "ports"]);
    let graph = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
        ("d".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    let found: Vec<_> = circles(&graph).into_iter().collect();
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(!found.iter().any(|(from, _)| from == "d"));
}

#[test]
fn the_domain_sees_no_edge_and_no_modules_import_each_other() {
    let found = violations();
    assert!(
        found.is_empty(),
        "imports that break the layers (the domain importing http or adapters, \
         or modules importing each other around a circle): {found:?}"
    );
}
