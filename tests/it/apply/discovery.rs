//! Which journal a command uses: beside the spec, or found upward the way
//! git finds its directory; and nothing created by a run that cannot
//! start.

use super::Project;
use crate::support::{fabrik, run, stderr, stdout};

/// The quickstart in `app/` of a fresh directory.
fn nested() -> (tempfile::TempDir, std::path::PathBuf) {
    let p = Project::example("quickstart", &[]);
    let root = tempfile::tempdir().unwrap();
    let app = root.path().join("app");
    crate::support::copy_pristine(p.path(), &app);
    (root, app)
}

#[test]
fn a_spec_in_another_directory_keeps_its_journal_beside_it() {
    let (root, app) = nested();
    let o = run(fabrik(root.path()).args(["apply", "app/spec.yaml", "--sandbox"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("journal: app/.fabrik/state.db (to be created)"),
        "{}",
        stderr(&o)
    );
    assert!(app.join(".fabrik/state.db").is_file());
    assert!(!root.path().join(".fabrik").exists());
    // Planned again from the parent: found, nothing to do.
    let o = run(fabrik(root.path()).args(["plan", "app/spec.yaml"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("no changes"), "{}", stdout(&o));
    // From inside the directory, the same journal.
    let o = run(fabrik(&app).args(["status", "quickstart"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("quickstart"), "{}", stdout(&o));
}

#[test]
fn inside_a_git_work_tree_the_journal_is_found_from_a_subdirectory() {
    let (root, app) = nested();
    std::fs::create_dir(root.path().join(".git")).unwrap();
    let spec = app.join("spec.yaml");
    let o = run(fabrik(root.path())
        .args(["--state", ".fabrik/state.db", "apply"])
        .arg(&spec)
        .arg("--sandbox"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(root.path().join(".fabrik/state.db").is_file());
    let deeper = app.join("sub");
    std::fs::create_dir(&deeper).unwrap();
    let o = run(fabrik(&deeper).args(["history", "quickstart"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("journal: "), "{}", stderr(&o));
    assert!(stdout(&o).contains("succeeded"), "{}", stdout(&o));
}

#[test]
fn missing_credentials_are_named_all_at_once_and_nothing_is_created() {
    let p = Project::example("quickstart", &[]);
    let o = run(p.cmd().args(["apply", "spec.yaml"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    for var in [
        "COOLIFY_URL",
        "COOLIFY_TOKEN",
        "CLOUDFLARE_API_TOKEN",
        "UPTIME_KUMA_URL",
        "UPTIME_KUMA_USERNAME",
        "UPTIME_KUMA_PASSWORD",
    ] {
        assert!(err.contains(var), "{var} is not named: {err}");
    }
    assert!(err.contains("6 credentials are not set"), "{err}");
    assert!(!p.path().join(".fabrik").exists(), "a journal was created");
    assert!(!p.path().join(".env").exists(), "secrets were generated");
}

/// Starting over: `.fabrik/` deleted, the next apply makes a new journal
/// where the old one was. The head record the old journal left beside the
/// journal key names another journal, not lost history of this one.
#[test]
fn a_new_journal_where_a_deleted_one_was_is_not_refused() {
    let p = super::Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    assert_eq!(p.apply().status.code(), Some(0));
    std::fs::remove_dir_all(p.path().join(".fabrik")).unwrap();
    let o = p.apply();
    assert_eq!(o.status.code(), Some(0), "{}", crate::support::stderr(&o));
    let o = p.run(&["replay", "--verify"]);
    assert_eq!(o.status.code(), Some(0), "{}", crate::support::stderr(&o));
}
