//! The corpus of broken specs: every file under `broken/` must fail to
//! load, and the exact diagnostics (messages, positions, fields, hints) are
//! snapshotted.

use std::path::{Path, PathBuf};

use fabrik::spec::{LoadOptions, SpecError, load};

use super::root;

fn corpus() -> Vec<PathBuf> {
    let dir = root().join("tests/it/spec/broken");
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    out.sort();
    out
}

/// Loads `path` (given relative to the crate root, as a user would type
/// it) and renders what `fabrik validate` reports.
pub fn rendered(path: &Path) -> String {
    match load(path, &LoadOptions::default()) {
        Ok(l) => panic!(
            "{} should be invalid, but loaded with warnings {:?}",
            path.display(),
            l.warnings
        ),
        Err(e @ SpecError::Read { .. }) => panic!("{e}"),
        Err(e) => {
            let all = e.diagnostics();
            assert!(
                all.iter().any(|d| d.is_error()),
                "{}: no error",
                path.display()
            );
            let mut out = String::new();
            for d in all {
                out.push_str(&d.report());
                out.push('\n');
            }
            out.replace(&root().display().to_string(), "<root>")
        }
    }
}

#[test]
fn at_least_thirty_distinct_broken_specs() {
    let files = corpus();
    assert!(files.len() >= 30, "{}", files.len());
    let mut texts: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    texts.sort();
    texts.dedup();
    assert_eq!(texts.len(), files.len(), "corpus entries must differ");
}

#[test]
fn broken_specs_report_exact_messages_and_locations() {
    for abs in corpus() {
        let rel = abs.strip_prefix(root()).unwrap().to_path_buf();
        let name = rel.file_stem().unwrap().to_string_lossy().into_owned();
        let out = rendered(&root().join(&rel)).replace("<root>/", "");
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/spec"),
            prepend_module_to_snapshot => false,
            snapshot_suffix => "",
            description => std::fs::read_to_string(&abs).unwrap(),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("broken-{name}"), out);
        });
    }
}

#[test]
fn invalid_utf8_is_reported_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    std::fs::write(&path, b"name: corpus\napp:\n  image: caf\xe9\n").unwrap();
    let out = rendered(&path).replace(&dir.path().display().to_string(), "<tmp>");
    assert_eq!(
        out,
        "<tmp>/spec.yaml:3:13: error: file is not valid UTF-8 (at byte 30)\n   3 |   image: caf\u{fffd}\n     |             ^\n  hint: save the file as UTF-8\n"
    );
}

#[test]
fn oversized_specs_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.yaml");
    let mut text = String::from("name: big\n");
    while text.len() < 1024 * 1024 + 10 {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    std::fs::write(&path, text).unwrap();
    let out = rendered(&path);
    assert!(out.contains("file is too large"), "{out}");
}
