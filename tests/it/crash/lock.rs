//! Run locks through the real binary: one run per deployment at a time,
//! named when it refuses another; freed by the operating system when the
//! holder dies; `lock status` and `lock release --force`.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::project::{self, NAME, SPEC_V1};
use crate::support::{Running, fabrik, run, stderr, stdout};

/// API calls slowed down so that an apply holds its lock for seconds.
const SLOW: &str = "latency_ms=250";
const PATIENCE: Duration = Duration::from_secs(60);

fn slow_apply(dir: &Path, spec: &str) -> Running {
    Running::start(
        fabrik(dir)
            .args(["apply", spec, "--sandbox"])
            .env("FABRIK_SANDBOX_FAULTS", SLOW),
    )
}

/// `fabrik --output json lock status`, as (deployment, state, live holder
/// pid, journaled holder run) rows.
fn lock_status(dir: &Path) -> Vec<(String, String, Option<u64>, Option<String>)> {
    let o = run(fabrik(dir).args(["--output", "json", "lock", "status"]));
    if !o.status.success() {
        return Vec::new();
    }
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    v["locks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["deployment"].as_str().unwrap().to_owned(),
                l["state"].as_str().unwrap().to_owned(),
                l["holder"]["pid"].as_u64(),
                l["journal"]["run"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Waits until `pid` holds the deployment's lock and the journal records
/// it (the run has started); returns the run id.
fn wait_until_held(dir: &Path, pid: u32) -> String {
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::time::Instant::now() < deadline {
        if let Some((_, state, Some(p), Some(run))) =
            lock_status(dir).into_iter().find(|l| l.0 == NAME)
            && state == "held"
            && p == u64::from(pid)
        {
            return run;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("process {pid} never held the lock");
}

fn history_runs(dir: &Path) -> Vec<Value> {
    let o = run(fabrik(dir).args(["--output", "json", "history", NAME]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    v["runs"].as_array().cloned().unwrap_or_default()
}

#[test]
fn of_two_concurrent_applies_one_runs_and_the_other_exits_3_naming_it() {
    let dir = project::new(SPEC_V1);
    // The journal exists already, so that this is about the run lock and
    // not about two processes creating a new database at once.
    drop(
        fabrik::store::sqlite::SqliteStore::open(&dir.path().join(".fabrik").join("state.db"))
            .unwrap(),
    );
    let a = slow_apply(dir.path(), "spec.yaml");
    let b = slow_apply(dir.path(), "spec.yaml");
    let (pa, pb) = (a.pid(), b.pid());
    let (oa, ob) = (a.finish(), b.finish());
    let (winner, loser, winner_pid) = match (oa.status.code(), ob.status.code()) {
        (Some(0), Some(3)) => (oa, ob, pa),
        (Some(3), Some(0)) => (ob, oa, pb),
        other => panic!(
            "expected one 0 and one 3, got {other:?}\n--- a\n{}\n--- b\n{}",
            stderr(&oa),
            stderr(&ob)
        ),
    };
    let runs = history_runs(dir.path());
    assert_eq!(runs.len(), 1, "only the winner started a run: {runs:?}");
    let run_id = runs[0]["run"].as_str().unwrap();
    let refused = stderr(&loser);
    assert!(
        refused.contains(&format!("locked by run {run_id}"))
            && refused.contains(&format!("pid {winner_pid}")),
        "the refusal names the holder's run {run_id} and pid {winner_pid}: {refused}"
    );
    assert!(stdout(&winner).contains("deployed and verified"));
}

#[test]
fn after_the_holder_is_killed_the_next_apply_gets_the_lock_and_sends_to_resume() {
    let dir = project::new(SPEC_V1);
    let mut holder = slow_apply(dir.path(), "spec.yaml");
    let killed_run = wait_until_held(dir.path(), holder.pid());
    // Let it change something remote before it dies.
    assert!(
        holder.wait_for("created", PATIENCE),
        "never created anything"
    );
    holder.signal("KILL");
    let o = holder.finish();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&o.status),
        Some(9)
    );

    // No manual step: the lock is free at once, and the journal says the
    // holder is gone.
    let locks = lock_status(dir.path());
    let l = locks.iter().find(|l| l.0 == NAME).unwrap();
    assert_eq!(l.1, "stale", "{locks:?}");
    let next = run(fabrik(dir.path()).args(["apply", "spec.yaml", "--sandbox"]));
    assert_eq!(next.status.code(), Some(6), "{}", stderr(&next));
    assert!(
        stderr(&next).contains(&format!("fabrik resume {killed_run}")),
        "names the resume command: {}",
        stderr(&next)
    );

    // Never a second timeline: resume finishes the killed run.
    let r = run(fabrik(dir.path()).args(["resume", NAME, "--sandbox"]));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    let runs = history_runs(dir.path());
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["run"], killed_run.as_str());
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs:?}");
    super::world::outcome(dir.path(), NAME).unwrap();
    let locks = lock_status(dir.path());
    assert_eq!(locks.iter().find(|l| l.0 == NAME).unwrap().1, "free");
}

#[test]
fn a_second_apply_waits_for_the_lock_with_lock_timeout() {
    let dir = project::new(SPEC_V1);
    let mut first = slow_apply(dir.path(), "spec.yaml");
    wait_until_held(dir.path(), first.pid());
    assert!(first.wait_for("PROVISIONING", PATIENCE));

    // No wait asked: refused at once, while the holder still runs.
    let at_once = run(fabrik(dir.path()).args(["apply", "spec.yaml", "--sandbox"]));
    assert_eq!(at_once.status.code(), Some(3), "{}", stderr(&at_once));
    assert!(
        first.child.try_wait().unwrap().is_none(),
        "the holder is still running"
    );

    // Too short a wait: refused after waiting.
    let started = std::time::Instant::now();
    let short = run(fabrik(dir.path()).args([
        "apply",
        "spec.yaml",
        "--sandbox",
        "--lock-timeout",
        "300ms",
    ]));
    assert_eq!(short.status.code(), Some(3), "{}", stderr(&short));
    assert!(started.elapsed() >= Duration::from_millis(300));

    // Long enough: it runs once the first is done (and finds no changes).
    let waiting =
        run(fabrik(dir.path()).args(["apply", "spec.yaml", "--sandbox", "--lock-timeout", "2m"]));
    let first = first.finish();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(waiting.status.code(), Some(0), "{}", stderr(&waiting));
    assert!(
        stdout(&waiting).contains("no changes"),
        "{}",
        stdout(&waiting)
    );
}

#[test]
fn runs_of_different_deployments_do_not_block_each_other() {
    let dir = project::new(SPEC_V1);
    std::fs::write(
        dir.path().join("other.yaml"),
        SPEC_V1.replace("crashy", "other"),
    )
    .unwrap();
    let mut a = slow_apply(dir.path(), "spec.yaml");
    wait_until_held(dir.path(), a.pid());
    assert!(a.wait_for("PROVISIONING", PATIENCE));
    let b = slow_apply(dir.path(), "other.yaml");
    let (oa, ob) = (a.finish(), b.finish());
    assert_eq!(oa.status.code(), Some(0), "{}", stderr(&oa));
    assert_eq!(ob.status.code(), Some(0), "{}", stderr(&ob));
}

#[test]
fn lock_status_names_the_holder_and_release_force_clears_a_dead_one() {
    let dir = project::new(SPEC_V1);
    let mut holder = slow_apply(dir.path(), "spec.yaml");
    let run_id = wait_until_held(dir.path(), holder.pid());
    let human = run(fabrik(dir.path()).args(["lock", "status"]));
    assert!(human.status.success(), "{}", stderr(&human));
    let text = stdout(&human);
    assert!(
        text.contains(NAME)
            && text.contains("held")
            // The run as tables show it (`--wide` shows it whole).
            && text.contains(&format!("run {} (", &run_id[..8]))
            && text.contains(&format!("pid {}", holder.pid())),
        "{text}"
    );

    // A live holder is never released by force.
    let refused = run(fabrik(dir.path()).args(["lock", "release", NAME, "--force"]));
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("live process"));

    assert!(holder.wait_for("PROVISIONING", PATIENCE));
    holder.signal("KILL");
    let _ = holder.finish();
    let no_force = run(fabrik(dir.path()).args(["lock", "release", NAME]));
    assert_eq!(no_force.status.code(), Some(2), "{}", stderr(&no_force));

    let released = run(fabrik(dir.path()).args(["lock", "release", NAME, "--force"]));
    assert!(released.status.success(), "{}", stderr(&released));
    assert!(
        stderr(&released).contains(&format!("fabrik resume {run_id}")),
        "{}",
        stderr(&released)
    );
    let locks = lock_status(dir.path());
    assert_eq!(locks.iter().find(|l| l.0 == NAME).unwrap().1, "free");
    let export = run(fabrik(dir.path()).args(["journal", "export", "--format", "ndjson"]));
    let broken: Vec<Value> = stdout(&export)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "lock_broken")
        .collect();
    assert_eq!(broken.len(), 1, "{}", stdout(&export));
    assert_eq!(broken[0]["payload"]["previous"]["run"], run_id.as_str());
    assert!(
        broken[0]["payload"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("released with --force by "),
        "{:?}",
        broken[0]
    );
    // The run itself is still there to finish.
    let r = run(fabrik(dir.path()).args(["resume", NAME, "--sandbox"]));
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
}
