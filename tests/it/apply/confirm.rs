//! Nothing changes remote resources without a person's go-ahead: on a
//! terminal the plan is shown and confirmed; without one, `--yes` (or a
//! reviewed, saved plan) is required.

use serde_json::Value;

use super::Project;
use crate::support::{on_terminal, run, stderr, stdout};

fn apps(p: &Project) -> usize {
    p.dump()["coolify"]["applications"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn apply_on_a_terminal_shows_the_plan_and_asks_first() {
    let p = Project::example("quickstart", &[]);
    let (code, shown) = on_terminal(p.path(), &["apply", "spec.yaml", "--sandbox"], "n\n");
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("+ app"), "the plan is shown: {shown}");
    assert!(
        shown.contains("apply these changes to quickstart? [y/N]"),
        "{shown}"
    );
    assert!(shown.contains("not applied; nothing changed"), "{shown}");
    assert!(
        !p.path().join(".fabrik/sandbox.db").exists() || apps(&p) == 0,
        "a refused apply changed the world"
    );

    let (code, shown) = on_terminal(p.path(), &["apply", "spec.yaml", "--sandbox"], "y\n");
    assert_eq!(code, Some(0), "{shown}");
    assert!(
        shown.contains("quickstart is deployed and verified"),
        "{shown}"
    );
    assert_eq!(apps(&p), 1);

    // Nothing to change: nothing to ask.
    let (code, shown) = on_terminal(p.path(), &["apply", "spec.yaml", "--sandbox"], "");
    assert_eq!(code, Some(0), "{shown}");
    assert!(!shown.contains("[y/N]"), "{shown}");
    assert!(shown.contains("no changes"), "{shown}");
}

#[test]
fn a_deletion_stands_out_in_the_plan_on_a_terminal() {
    let p = Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    p.edit(
        "spec.yaml",
        "monitors:\n  - name: quickstart\n    url: https://quickstart.example.com/health\n    interval: 60s\n",
        "",
    );
    let (code, shown) = on_terminal(p.path(), &["apply", "spec.yaml", "--sandbox"], "n\n");
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("- monitor:quickstart"), "{shown}");
    assert!(shown.contains("1 to delete"), "{shown}");
}

#[test]
fn without_a_terminal_apply_needs_yes() {
    let p = Project::example("quickstart", &[]);
    let o = run(p
        .cmd()
        .env_remove("FABRIK_YES")
        .args(["apply", "spec.yaml", "--sandbox"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no terminal to ask on"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("--yes (-y)"), "{}", stderr(&o));
    assert!(
        !p.path().join(".fabrik").exists(),
        "a refused apply created the journal"
    );
    let o = run(p
        .cmd()
        .env_remove("FABRIK_YES")
        .args(["apply", "spec.yaml", "--sandbox", "-y"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_saved_plan_is_applied_exactly_or_refused_when_things_moved() {
    let p = Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    p.edit("spec.yaml", "whoami:v1.10", "whoami:v1.11");
    let o = p.run(&["plan", "spec.yaml", "-o", "plan.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("~ app"), "{}", stdout(&o));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(p.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(saved["kind"], "saved_plan");
    // Applied without a terminal and without --yes: the plan was reviewed.
    let o = run(p
        .cmd()
        .env_remove("FABRIK_YES")
        .args(["apply", "plan.json", "--sandbox"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("app: update"), "{}", stdout(&o));

    // A plan made before another run is refused.
    p.edit("spec.yaml", "whoami:v1.11", "whoami:v1.12");
    assert_eq!(
        p.run(&["plan", "spec.yaml", "-o", "old.json"])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(p.apply().status.code(), Some(0));
    let o = p.run(&["apply", "old.json", "--sandbox"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("journal moved since the plan was made"),
        "{}",
        stderr(&o)
    );

    // A plan whose spec changed since is refused.
    assert_eq!(
        p.run(&["plan", "spec.yaml", "-o", "new.json"])
            .status
            .code(),
        Some(0)
    );
    p.edit("spec.yaml", "whoami:v1.12", "whoami:v1.13");
    let o = p.run(&["apply", "new.json", "--sandbox"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("changed since the plan was made"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn destroy_asks_on_a_terminal() {
    let p = Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    let (code, shown) = on_terminal(p.path(), &["destroy", "quickstart", "--sandbox"], "n\n");
    assert_eq!(code, Some(2), "{shown}");
    assert!(shown.contains("[y/N]"), "{shown}");
    assert_eq!(apps(&p), 1, "a refused destroy changed the world");
    let (code, shown) = on_terminal(p.path(), &["destroy", "quickstart", "--sandbox"], "y\n");
    assert_eq!(code, Some(0), "{shown}");
    assert_eq!(apps(&p), 0);
}
