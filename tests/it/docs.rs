//! The documentation against the code and the binary: what `docs/` quotes
//! is what Fabrik prints.

use std::path::{Path, PathBuf};

use crate::support::{fabrik, run, stderr, stdout};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Every `.rs` file under `dir`, concatenated.
fn sources(dir: &Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push_str(&read(&path));
        }
    }
}

/// The code spans (`` `x` `` and ``` `` x `` ```) of `text`, with runs of
/// white space made one space (a span may wrap).
fn code_spans(text: &str) -> Vec<String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut spans = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find('`') {
        let after = &rest[at..];
        let (open, close) = if after.starts_with("`` ") {
            ("`` ", " ``")
        } else {
            ("`", "`")
        };
        let body = &after[open.len()..];
        let Some(end) = body.find(close) else { break };
        spans.push(body[..end].to_owned());
        rest = &body[end + close.len()..];
    }
    spans
}

#[test]
fn troubleshooting_quotes_real_messages() {
    let doc = read(&root().join("docs/troubleshooting.md"));
    let mut code = String::new();
    sources(&root().join("src"), &mut code);
    let messages: Vec<String> = doc
        .split("**Message:**")
        .skip(1)
        .map(|rest| rest.split("\n\n").next().unwrap_or_default().to_owned())
        .flat_map(|paragraph| code_spans(&paragraph))
        .collect();
    assert!(messages.len() >= 9, "{messages:?}");
    for message in &messages {
        // What varies is written `…`: each fixed part is in the code.
        for part in message.split('…').map(str::trim) {
            if part.chars().count() < 4 {
                continue;
            }
            assert!(
                code.contains(part),
                "docs/troubleshooting.md quotes {message:?}, but no source file says {part:?}"
            );
        }
    }
    let readme = read(&root().join("README.md"));
    assert!(
        readme.contains("docs/troubleshooting.md"),
        "the README links it"
    );
}

#[test]
fn the_plan_in_docs_output_is_what_plan_prints() {
    let doc = read(&root().join("docs/output.md"));
    let start = doc
        .find("```text\nplan for quickstart")
        .expect("the plan example")
        + 8;
    let block = &doc[start..start + doc[start..].find("```").unwrap()];

    let dir = tempfile::tempdir().unwrap();
    crate::support::copy_pristine(&crate::support::examples().join("quickstart"), dir.path());
    let o = run(fabrik(dir.path()).args(["apply", "spec.yaml", "--sandbox"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let spec = dir.path().join("spec.yaml");
    std::fs::write(&spec, read(&spec).replace("whoami:v1.10", "whoami:v1.11")).unwrap();
    let o = run(fabrik(dir.path()).args(["plan", "spec.yaml", "--sandbox"]));
    assert!(o.status.success(), "{}", stderr(&o));
    // The desired state's digest differs with the generated secret.
    let hash = |t: &str| {
        let from = t.find("(desired state ").unwrap() + 15;
        t.replacen(&t[from..from + 12], "HASH", 1)
    };
    assert_eq!(hash(block), hash(&stdout(&o)));
}

#[test]
fn every_flag_the_docs_name_exists() {
    // Flags of other tools the docs show (cargo, scripts).
    let others = [
        "--all-features",
        "--bench",
        "--branch",
        "--check",
        "--events",
        "--features",
        "--help",
        "--lib",
        "--nocapture",
        "--quick",
        "--release",
        "--runs",
        "--test",
        "--version",
    ];
    let reference = read(&root().join("docs/commands.md"));
    let mut docs = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        docs.push(entry.unwrap().path());
    }
    for path in docs
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = read(path);
        for (at, _) in text.match_indices("--") {
            let before = text[..at].chars().next_back().unwrap_or(' ');
            if !matches!(before, ' ' | '`' | '(' | '\n' | '[') {
                continue;
            }
            let flag: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                .collect();
            if flag.len() < 4 || others.contains(&flag.as_str()) {
                continue;
            }
            assert!(
                reference.contains(&format!("{flag} ")) || reference.contains(&format!("{flag}`")),
                "{} names {flag}, which no command has",
                path.display()
            );
        }
    }
}

/// The first fenced block of `kind` in `text` after `from`.
fn block<'a>(text: &'a str, from: &str, kind: &str) -> &'a str {
    let section = &text[text.find(from).expect(from)..];
    let open = format!("```{kind}\n");
    let start = section.find(&open).expect("the block") + open.len();
    &section[start..start + section[start..].find("```").unwrap()]
}

#[test]
fn the_validate_example_in_docs_spec_is_what_validate_prints() {
    let doc = read(&root().join("docs/spec.md"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spec.yaml"),
        block(&doc, "## Checking a spec", "yaml"),
    )
    .unwrap();
    let o = run(fabrik(dir.path()).args(["validate", "spec.yaml"]));
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert_eq!(stderr(&o), block(&doc, "## Checking a spec", "text"));
    // The JSON form names the fields the section lists.
    let o = run(fabrik(dir.path()).args(["validate", "spec.yaml", "--output", "json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let first = &v["diagnostics"][0];
    for key in [
        "file", "line", "column", "path", "message", "hint", "severity",
    ] {
        assert!(first.get(key).is_some(), "{key} in {first}");
    }
    assert_eq!(first["excerpt"]["text"], "  domian: shop.example.com");
    assert_eq!(first["excerpt"]["caret"], 2);
    assert_eq!(first["excerpt"]["width"], 6);
}
