//! A resumed apply watches the deployment it queued before it stopped,
//! instead of queueing another.

use std::ops::ControlFlow;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;

use fabrik::store::sqlite::SqliteStore;
use fabrik::store::{EventStore, Scan};
use serde_json::Value;

use super::project::{self, SPEC_V1};
use crate::support::{fabrik, run, stderr, stdout};

/// The position (1-based) of the first event of `type_name` in the journal
/// of `dir`: the crash point right after it.
fn position_of(dir: &Path, type_name: &str) -> u64 {
    let store = SqliteStore::open_existing(&dir.join(".fabrik").join("state.db")).unwrap();
    let mut at = None;
    store
        .scan(&Scan::default(), &mut |e| {
            if e.type_name == type_name {
                at = Some(e.seq);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })
        .unwrap();
    at.unwrap_or_else(|| panic!("no {type_name} event"))
}

/// Deployments of the application in the sandbox world of `dir`.
fn deployments(dir: &Path) -> Vec<Value> {
    let dump = run(fabrik(dir).args(["sandbox", "dump"]));
    assert!(dump.status.success(), "{}", stderr(&dump));
    let world: Value = serde_json::from_str(&stdout(&dump)).unwrap();
    let apps = world["coolify"]["applications"]
        .as_array()
        .expect("applications");
    assert_eq!(apps.len(), 1, "{world:#}");
    apps[0]["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn a_resume_watches_the_deployment_queued_before_the_crash() {
    let clean = project::new(SPEC_V1);
    project::apply_ok(clean.path());
    assert_eq!(deployments(clean.path()).len(), 1);
    // The journal of a fresh project starts with this run's events, so
    // an event's sequence number is its position in what the run appended.
    let triggered = position_of(clean.path(), "deploy_triggered");

    let dir = project::new(SPEC_V1);
    let crashed = run(fabrik(dir.path())
        .args(["apply", "spec.yaml", "--sandbox"])
        .env("FABRIK_CRASH_AFTER_EVENT", triggered.to_string()));
    assert_eq!(crashed.status.signal(), Some(6), "{}", stderr(&crashed));
    let resumed = run(fabrik(dir.path()).args(["resume", project::NAME, "--sandbox"]));
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let said = format!("{}{}", stdout(&resumed), stderr(&resumed));
    assert!(said.contains("deployment finished"), "{said}");
    assert!(!said.contains("deployment queued"), "{said}");
    let deps = deployments(dir.path());
    assert_eq!(deps.len(), 1, "a second deployment was queued: {deps:#?}");
    assert_eq!(deps[0]["status"], "finished", "{deps:#?}");
}
