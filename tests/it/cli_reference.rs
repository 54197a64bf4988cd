//! `docs/commands.md` is the clap tree, rendered: it cannot drift from
//! what the binary accepts.

use std::path::Path;

use crate::support::{fabrik, run, stdout};

fn file() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/commands.md")
}

/// Fails when `docs/commands.md` differs from the reference generated from
/// the command-line definitions. `FABRIK_UPDATE_DOCS=1` rewrites it.
#[test]
fn the_command_reference_is_current() {
    let fresh = fabrik::cli::reference::reference();
    if std::env::var_os("FABRIK_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(file(), &fresh).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(file()).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "docs/commands.md is stale: run `FABRIK_UPDATE_DOCS=1 cargo test --test it cli_reference`"
    );
}

/// Every subcommand the binary's help lists has a section.
#[test]
fn every_command_of_the_help_has_a_section() {
    let dir = tempfile::tempdir().unwrap();
    let help = stdout(&run(fabrik(dir.path()).arg("--help")));
    let reference = fabrik::cli::reference::reference();
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // A command's line, not the continuation of a long description.
        .filter(|l| !l[2..].starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() > 10, "{help}");
    for c in commands {
        assert!(
            reference.contains(&format!("`fabrik {c}`")),
            "no section for {c}"
        );
    }
}
