//! The code map's invariants, enforced: the pure core does no I/O, and no
//! module depends on one of a higher layer (so there is no cycle between
//! layers). Read from the source, outside `#[cfg(test)]` items.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use modules of its own layer or
/// lower ones, never higher.
const LAYERS: &[&[&str]] = &[
    // Vocabulary.
    &["id", "text", "exit", "canonical", "secret", "ownership"],
    // The pure core.
    &["event", "projection", "decide", "plan", "rollback"],
    // Reading and keeping: the spec, the journal, checks over the network.
    &["spec", "store", "export", "generate", "failpoint", "verify"],
    // The simulator of the services.
    &["sandbox"],
    // The services' clients and the registry that builds them.
    &["provider"],
    // The effectful shell that runs commands.
    &["engine"],
    // The command line and what it prints.
    &["cli", "output", "error"],
];

/// The pure core: no I/O, no clock, no randomness, no async.
const CORE: &[&str] = &[
    "event",
    "projection",
    "plan",
    "decide",
    "rollback",
    "ownership",
    "canonical",
];

/// What the core must not use.
const FORBIDDEN: &[&str] = &[
    "std::fs",
    "std::net",
    "std::process",
    "std::env",
    "std::time::SystemTime",
    "std::time::Instant",
    "Instant::now",
    "SystemTime::now",
    "Timestamp::now",
    "::generate()",
    "tokio",
    "reqwest",
    "rusqlite",
    "postgres::",
    "hyper",
    "rand::",
    "getrandom",
    "async fn",
    ".await",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a source file belongs to.
fn module_of(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The file's code without comments and without `#[cfg(test)]` items.
fn production_code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim_start().starts_with("#[cfg(test)]") {
            // Skip the item: to the end of its braces, or its `;`.
            let mut depth = 0i64;
            let mut opened = false;
            i += 1;
            while i < lines.len() {
                let l = code_of(lines[i]);
                depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                opened |= l.contains('{');
                if (opened && depth <= 0) || (!opened && l.trim_end().ends_with(';')) {
                    break;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        out.push_str(code_of(lines[i]));
        out.push('\n');
        i += 1;
    }
    out
}

/// A line without its `//` comment (doc comments included).
fn code_of(line: &str) -> &str {
    match line.find("//") {
        Some(i) if !line[..i].contains('"') => &line[..i],
        _ => line,
    }
}

fn sources() -> Vec<(String, PathBuf, String)> {
    let mut all = Vec::new();
    files(&src(), &mut all);
    all.sort();
    all.into_iter()
        .filter(|p| !matches!(module_of(p).as_str(), "lib" | "main"))
        .map(|p| {
            let code = production_code(&std::fs::read_to_string(&p).unwrap());
            (module_of(&p), p, code)
        })
        .collect()
}

/// The top-level modules each module uses (`crate::x`).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, _, code) in sources() {
        let deps = g.entry(m.clone()).or_default();
        for (i, _) in code.match_indices("crate::") {
            let name: String = code[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != m {
                deps.insert(name);
            }
        }
        // `use crate::{a, b::c}` lists.
        for (i, _) in code.match_indices("crate::{") {
            let list = &code[i + 8..];
            let list = &list[..list.find('}').unwrap_or(list.len())];
            for part in list.split(',') {
                let name = part.trim().split("::").next().unwrap_or("").trim();
                if !name.is_empty() && name != m {
                    deps.insert(name.to_owned());
                }
            }
        }
    }
    g
}

fn layer(m: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&m))
        .unwrap_or_else(|| panic!("module {m} is in no layer of tests/it/architecture.rs"))
}

#[test]
fn the_core_does_no_io() {
    let mut found = Vec::new();
    for (m, path, code) in sources() {
        if !CORE.contains(&m.as_str()) {
            continue;
        }
        for (n, line) in code.lines().enumerate() {
            for f in FORBIDDEN {
                if line.contains(f) {
                    found.push(format!("{}: {f}: {}", path.display(), line.trim()));
                }
            }
            for shell in [
                "engine", "store", "provider", "cli", "output", "sandbox", "verify",
            ] {
                if line.contains(&format!("crate::{shell}")) {
                    found.push(format!("{}:{}: uses {shell}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "the core does I/O:\n{}", found.join("\n"));
}

#[test]
fn the_io_check_sees_what_it_forbids() {
    // The scanner itself: a forbidden use in production code is seen, one
    // inside a test item or a comment is not.
    let code = production_code(
        "use std::fs;\n// std::net in a comment\n#[cfg(test)]\nmod tests {\n    use tokio;\n}\nfn f() {}\n",
    );
    assert!(code.contains("std::fs"));
    assert!(!code.contains("std::net"));
    assert!(!code.contains("tokio"));
    assert!(code.contains("fn f()"));
}

#[test]
fn no_module_uses_a_higher_layer() {
    let g = graph();
    let mut up = Vec::new();
    for (m, deps) in &g {
        for d in deps {
            if !g.contains_key(d) {
                continue;
            }
            if layer(d) > layer(m) {
                up.push(format!(
                    "{m} (layer {}) uses {d} (layer {})",
                    layer(m),
                    layer(d)
                ));
            }
        }
    }
    assert!(up.is_empty(), "upward dependencies:\n{}", up.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    let g = graph();
    // Depth-first search for a back edge.
    fn visit<'a>(
        m: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| *s == m) {
            return Some(stack[i..].iter().map(|s| s.to_string()).collect());
        }
        if done.contains(m) {
            return None;
        }
        stack.push(m);
        for d in g.get(m).into_iter().flatten() {
            if g.contains_key(d)
                && let Some(c) = visit(d, g, stack, done)
            {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(m);
        None
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(cycle) = visit(m, &g, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}
