//! Ctrl-C through the real binary: SIGINT sent to a running `fabrik`
//! during each phase stops it at the next step boundary with exit 6 and
//! the resume command; `fabrik resume` then ends exactly as an
//! uninterrupted run does.
//!
//! Each phase is made slow with sandbox latency on the service it talks
//! to, and the signal is sent when the phase's progress line appears.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::project::{self, NAME, SPEC_V1};
use super::world::{compare, outcome};
use crate::support::{Running, fabrik, run, stderr, stdout};

const PATIENCE: Duration = Duration::from_secs(60);

struct Case {
    /// Writes the spec (and runs what must happen first) in `dir`.
    setup: fn(&Path),
    /// The command interrupted.
    args: &'static [&'static str],
    /// The progress line of the phase to interrupt.
    phase: &'static str,
    /// Faults during the interrupted command (latency on the phase's service).
    slow: &'static str,
    /// Faults during the resume and the uninterrupted baseline.
    faults: &'static str,
    /// How the uninterrupted command (and the resume) exits.
    code: i32,
    /// What the interrupted command says about where it stopped.
    stopped: &'static str,
}

const APPLY: &[&str] = &["apply", "spec.yaml", "--sandbox"];

fn spec(dir: &Path) {
    project::write(dir, SPEC_V1);
}

fn failing_spec(dir: &Path) {
    project::write(dir, &project::spec_v1_failing());
}

fn applied(dir: &Path) {
    project::write(dir, SPEC_V1);
    project::apply_ok(dir);
}

fn with_faults(c: &mut std::process::Command, faults: &str) {
    if !faults.is_empty() {
        c.env("FABRIK_SANDBOX_FAULTS", faults);
    }
}

fn interrupted_then_resumed(case: &Case) {
    // The uninterrupted run, for comparison.
    let base = tempfile::tempdir().unwrap();
    (case.setup)(base.path());
    let mut c = fabrik(base.path());
    c.args(case.args);
    with_faults(&mut c, case.faults);
    let o = run(&mut c);
    assert_eq!(o.status.code(), Some(case.code), "{}", stderr(&o));
    let expected = outcome(base.path(), NAME).unwrap();

    let dir = tempfile::tempdir().unwrap();
    (case.setup)(dir.path());
    let mut c = fabrik(dir.path());
    c.args(case.args);
    with_faults(&mut c, case.slow);
    let mut child = Running::start(&mut c);
    assert!(
        child.wait_for(case.phase, PATIENCE),
        "never reached {}",
        case.phase
    );
    child.signal("INT");
    let o = child.finish();
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(6), "{said}");
    let summary = stdout(&o);
    assert!(
        summary.lines().next().unwrap_or("").contains(case.stopped),
        "stopped where expected ({}): {said}",
        case.stopped
    );
    let export = run(fabrik(dir.path()).args(["journal", "export", "--format", "ndjson"]));
    let events: Vec<Value> = stdout(&export)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let interrupted: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "run_interrupted")
        .collect();
    assert_eq!(interrupted.len(), 1, "one interruption journaled: {said}");
    let run_id = interrupted[0]["run"].as_str().unwrap();
    assert!(
        said.contains(&format!("fabrik resume {run_id}")),
        "names the resume command: {said}"
    );
    assert!(
        !events
            .iter()
            .any(|e| e["type"] == "run_finished" && e["run"] == run_id),
        "the interrupted run is left unfinished: {said}"
    );

    let mut r = fabrik(dir.path());
    r.args(["resume", NAME, "--sandbox"]);
    with_faults(&mut r, case.faults);
    let r = run(&mut r);
    assert_eq!(r.status.code(), Some(case.code), "{}", stderr(&r));
    compare(dir.path(), &expected).unwrap();
}

#[test]
fn ctrl_c_while_validating() {
    interrupted_then_resumed(&Case {
        setup: spec,
        args: APPLY,
        phase: "VALIDATING",
        slow: "latency_ms=300",
        faults: "",
        code: 0,
        stopped: "interrupted during VALIDATING",
    });
}

#[test]
fn ctrl_c_while_provisioning() {
    interrupted_then_resumed(&Case {
        setup: spec,
        args: APPLY,
        phase: "PROVISIONING",
        slow: "latency_ms=500,target=cloudflare",
        faults: "",
        code: 0,
        stopped: "interrupted during PROVISIONING",
    });
}

#[test]
fn ctrl_c_while_deploying() {
    interrupted_then_resumed(&Case {
        setup: spec,
        args: APPLY,
        phase: "DEPLOYING",
        slow: "latency_ms=300,target=coolify",
        faults: "",
        code: 0,
        stopped: "interrupted during DEPLOYING",
    });
}

#[test]
fn ctrl_c_while_verifying() {
    interrupted_then_resumed(&Case {
        setup: spec,
        args: APPLY,
        phase: "VERIFYING",
        slow: "latency_ms=1000,target=apps",
        faults: "",
        code: 0,
        stopped: "interrupted during VERIFYING",
    });
}

#[test]
fn ctrl_c_while_rolling_back() {
    interrupted_then_resumed(&Case {
        setup: failing_spec,
        args: APPLY,
        phase: "ROLLING_BACK",
        slow: "health_fail=true,latency_ms=300,target=coolify",
        faults: "health_fail=true",
        code: 5,
        stopped: "interrupted while rolling back",
    });
}

#[test]
fn ctrl_c_while_destroying() {
    interrupted_then_resumed(&Case {
        setup: applied,
        args: &["destroy", "spec.yaml", "--sandbox", "--yes"],
        phase: "DESTROYING",
        slow: "latency_ms=300",
        faults: "",
        code: 0,
        stopped: "destroy interrupted",
    });
}
