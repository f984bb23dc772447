//! The layers of `shared/src`, checked from the paths its code names
//! (`crate::...`, `use crate::{...}`, and `super::` paths that climb out of
//! their top-level module), outside comments, literals and test items:
//!
//! - the base (ports, platform, messages, keys...) imports only the base;
//! - the domain imports the base and the domain, never an edge (`http`,
//!   `adapters`, `apply`, `work`) nor `testkit`; it gets the ports in
//!   `platform::Platform`, which the hosts build;
//! - no two top-level modules import each other, directly or around a circle;
//! - a name that is no top-level module fails the test (so a re-export
//!   cannot hide an import).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules below the domain: anything may import them; they import only
/// each other.
const BASE: &[&str] = &[
    "alloc", "config", "egress", "error", "ids", "keys", "messages", "patch", "platform", "ports",
];
/// Modules that hold the product's rules.
const DOMAIN: &[&str] = &[
    "accounts",
    "collections",
    "contacts",
    "dead_letters",
    "transforms",
    "triggers",
    "webhooks",
    "delivery",
    "profiles",
    "campaigns",
];
/// Test support: it may import anything; nothing but tests imports it.
const TESTKIT: &str = "testkit";
/// What lib.rs re-exports at the crate's root, and from where.
const REEXPORTS: &[(&str, &str)] = &[("Platform", "platform"), ("contract_tests", "testkit")];

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

/// The code without comments and with string and character literals
/// emptied (`""`, `' '`), so that neither hides or fakes a path or a brace.
fn strip(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
        } else if rest.starts_with("/*") {
            let mut depth = 0;
            while i < b.len() {
                if text[i..].starts_with("/*") {
                    depth += 1;
                    i += 2;
                } else if text[i..].starts_with("*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if rest.starts_with("r\"") || rest.starts_with("r#") {
            // A raw string: r"..." or r#"..."#, with as many #.
            let hashes = rest[1..].bytes().take_while(|c| *c == b'#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 1 + hashes + 1;
            let end = rest[body..]
                .find(&close)
                .map_or(rest.len(), |e| body + e + close.len());
            out.push_str("\"\"");
            i += end;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' {
            // A character literal ('x', '\n', '\u{..}'), or a lifetime.
            let lit = if rest[1..].starts_with('\\') {
                rest[2..].find('\'').map(|e| e + 3)
            } else {
                let c = rest[1..].chars().next().map_or(0, char::len_utf8);
                rest[1 + c..].starts_with('\'').then_some(c + 2)
            };
            match lit {
                Some(len) => {
                    out.push_str("' '");
                    i += len;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// `code` (stripped) without its test items: each `#[cfg(test)]` item, to
/// its `;` or its braces' end.
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
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

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The first names of the paths after each `prefix` in `code`: `x` of
/// `prefix x::...`, and each `a` of `prefix {a::b, c}`.
fn after(code: &str, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        // Only where a path starts (not `foo_crate::`).
        let starts = at == 0
            || !rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        rest = &rest[at + prefix.len()..];
        if !starts {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
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
            out.extend(
                items
                    .iter()
                    .map(|i| ident(i.trim()))
                    .filter(|n| !n.is_empty()),
            );
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// The top-level modules a file's code names. `depth` is how deep the
/// file's module is (1 for `src/apply.rs` or `src/http/mod.rs`, 2 for
/// `src/http/body.rs`): `super::` climbing that many levels reaches the
/// crate's root.
fn named(code: &str, depth: usize) -> Vec<String> {
    let mut out = after(code, "crate::");
    let climb = "super::".repeat(depth);
    // `super::super::x` in a depth-2 file: matched by the depth-long prefix.
    out.extend(after(code, &climb));
    out
}

/// Top-level module -> the names it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = src();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in all {
        let rel = path.strip_prefix(&root).unwrap();
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str().unwrap()).collect();
        let module = parts[0].trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let file = *parts.last().unwrap();
        let depth = if file == "mod.rs" {
            parts.len() - 1
        } else {
            parts.len()
        };
        let text = std::fs::read_to_string(&path).unwrap();
        // A file of tests alone (`#[cfg(test)] mod tests;`).
        if file == "tests.rs" {
            continue;
        }
        let to = graph.entry(module.clone()).or_default();
        for name in named(&without_tests(&strip(&text)), depth) {
            let name = REEXPORTS
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(name, |(_, m)| m.to_string());
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
            if reachable.get(to).is_some_and(|r| r.contains(from)) {
                out.insert((from.clone(), to.clone()));
            }
        }
    }
    out
}

/// Every import that breaks a rule, with the rule.
fn violations() -> BTreeSet<(String, String, &'static str)> {
    let graph = graph();
    let mut found = BTreeSet::new();
    for (from, tos) in &graph {
        for to in tos {
            let rule = if !graph.contains_key(to) {
                Some("not a top-level module (a re-export hides where it comes from)")
            } else if to == TESTKIT && from != TESTKIT {
                Some("only tests import testkit")
            } else if BASE.contains(&from.as_str()) && !BASE.contains(&to.as_str()) {
                Some("the base imports only the base")
            } else if DOMAIN.contains(&from.as_str())
                && !BASE.contains(&to.as_str())
                && !DOMAIN.contains(&to.as_str())
            {
                Some("the domain imports no edge")
            } else {
                None
            };
            if let Some(rule) = rule {
                found.insert((from.clone(), to.clone(), rule));
            }
        }
    }
    let mut tested = graph.clone();
    tested.remove(TESTKIT);
    for (from, to) in circles(&tested) {
        found.insert((from, to, "modules import each other"));
    }
    found
}

#[test]
fn the_reader_sees_what_the_compiler_sees() {
    let code = "use crate::{ports::{Store, Key}, keys, http::ApiError};\nfn f() { crate::ids::new_id(\"x\"); }";
    let names: BTreeSet<String> = named(&strip(code), 1).into_iter().collect();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["http", "ids", "keys", "ports"]
    );
    let tested = "use crate::ports;\n#[cfg(test)]\nmod tests {\n    use crate::http;\n    fn f() { let _ = \"}\"; if true { crate::adapters::x(); } }\n}\nuse crate::keys;";
    let names = named(&without_tests(&strip(tested)), 1);
    assert_eq!(
        names,
        ["ports", "keys"],
        "test items are skipped, what follows is not"
    );
    let hidden = "let s = \"crate::http:: // {\";\nlet c = '{';\n/* crate::adapters */\nfn f<'a>(x: &'a str) { crate::keys::a(x); }";
    assert_eq!(
        named(&strip(hidden), 1),
        ["keys"],
        "literals and comments hide nothing"
    );
    let climbing = "use super::super::http::ApiError;\nuse super::model::Trigger;";
    assert_eq!(
        named(&strip(climbing), 2),
        ["http"],
        "super:: out of the module"
    );
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
fn the_layers_hold() {
    let found = violations();
    assert!(
        found.is_empty(),
        "imports that break the layers: {found:#?}"
    );
}

/// Where a route is served from without `routes!` (`http/described.rs`),
/// which serves each handler where its description, the one
/// `GET /openapi.json` holds, says: a plain axum `.route(`,
/// `.route_service(` or `.nest(` in the code of `dirs` outside tests.
fn undescribed_routes(dirs: &[PathBuf]) -> Vec<String> {
    let mut all = Vec::new();
    for dir in dirs {
        files(dir, &mut all);
    }
    let mut found = Vec::new();
    for file in all {
        // The testkit serves test doubles (a Lambda Runtime API), not Hookline.
        if file.components().any(|c| c.as_os_str() == "testkit") {
            continue;
        }
        // Where `routes!` routes.
        if file.ends_with("http/described.rs") {
            continue;
        }
        let code = without_tests(&strip(&std::fs::read_to_string(&file).unwrap()));
        for call in [".route(", ".route_service(", ".nest(", ".nest_service("] {
            if code.contains(call) {
                found.push(format!("{} calls {call}", file.display()));
            }
        }
    }
    found
}

/// A route cannot be served undescribed: every router of the library and
/// the hosts is fed by `routes!`, and the document is made from the same
/// routes (the admin tests call every operation it lists).
#[test]
fn every_route_is_in_the_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs = vec![src(), root.join("local/src")];
    for function in std::fs::read_dir(root.join("functions")).unwrap() {
        dirs.push(function.unwrap().path().join("src"));
    }
    assert_eq!(undescribed_routes(&dirs), Vec::<String>::new());
    // A plain route is found; one in a test is not.
    let planted = tempfile::tempdir().unwrap();
    std::fs::write(
        planted.path().join("a.rs"),
        "fn f() { OpenApiRouter::new().route(\"/x\", get(h)) }\n#[cfg(test)]\nmod tests { fn g() { Router::new().nest(\"/y\", r) } }",
    )
    .unwrap();
    let found = undescribed_routes(&[planted.path().to_path_buf()]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with("calls .route("), "{found:?}");
}
