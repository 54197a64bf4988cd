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

/// The last event type of the journal of `dir`.
fn last_event_type(dir: &Path) -> Option<String> {
    let store = SqliteStore::open_existing(&dir.join(".fabrik").join("state.db")).ok()?;
    let mut last = None;
    store
        .scan(&Scan::default(), &mut |e| {
            last = Some(e.type_name.to_owned());
            ControlFlow::Continue(())
        })
        .ok()?;
    last
}

/// A crash right after Coolify accepted the deploy, resumed once that
/// deployment has finished (a person resumes later): the resume finds the
/// finished deployment instead of queueing another.
#[test]
fn a_resume_after_the_deployment_finished_deploys_nothing_more() {
    // The side effect right after which the run stops with the deploy
    // requested and answered, but nothing journaled about its answer.
    let mut crashed = None;
    for n in 1..=12 {
        let dir = project::new(SPEC_V1);
        let o = run(fabrik(dir.path())
            .args(["apply", "spec.yaml", "--sandbox"])
            .env("FABRIK_CRASH_AFTER_EFFECT", n.to_string()));
        if o.status.signal() != Some(6) {
            break;
        }
        if last_event_type(dir.path()).as_deref() == Some("deploy_requested")
            && deployments(dir.path()).len() == 1
        {
            crashed = Some(dir);
            break;
        }
    }
    let dir = crashed.expect("a crash point right after the deploy request");
    super::world::settle(dir.path()).unwrap();
    let before = deployments(dir.path());
    assert_eq!(before.len(), 1);
    assert_eq!(before[0]["status"], "finished", "{before:#?}");
    let resumed = run(fabrik(dir.path()).args(["resume", project::NAME, "--sandbox"]));
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let deps = deployments(dir.path());
    assert_eq!(deps.len(), 1, "a second deployment was queued: {deps:#?}");
}
