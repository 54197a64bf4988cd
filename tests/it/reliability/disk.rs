//! A full disk under the journal. SQLite is made to refuse to grow the
//! journal past N more pages (`FABRIK_JOURNAL_PAGE_ROOM`, the failpoints
//! feature, through `PRAGMA max_page_count`): the append that needs one
//! more page fails with `SQLITE_FULL`, what a full disk gives, on SQLite's
//! own path. For every N from none upward until the apply fits, a run cut
//! by the full disk names `fabrik resume RUN` (exit 6), and that resume,
//! with room again, finishes the deployment with nothing made twice.

use crate::support::{expect_exit, fabrik, run, sandbox_dump, stderr};

fn count(dump: &serde_json::Value, path: &[&str]) -> usize {
    let mut v = dump;
    for p in path {
        v = &v[*p];
    }
    v.as_array().map_or(0, Vec::len)
}

fn records(dump: &serde_json::Value) -> usize {
    dump["cloudflare"]["zones"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|z| z["records"].as_array().map_or(0, Vec::len))
        .sum()
}

#[cfg(feature = "failpoints")]
#[test]
fn a_full_disk_stops_the_run_naming_fabrik_resume_which_finishes_it() {
    let mut cut_runs = 0;
    let mut refused_before_a_run = 0;
    for room in 0..200 {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("spec.yaml"), super::spec("full")).unwrap();
        let o = run(fabrik(d)
            .env("FABRIK_JOURNAL_PAGE_ROOM", room.to_string())
            .args(["apply", "spec.yaml", "--sandbox"]));
        if o.status.success() {
            break;
        }
        let err = stderr(&o);
        assert!(
            err.contains("the disk holding the journal is full"),
            "room {room}: the error does not say the disk is full:\n{err}"
        );
        let resume = err
            .split("`fabrik resume ")
            .nth(1)
            .and_then(|rest| rest.split('`').next());
        match resume {
            Some(run_id) => {
                cut_runs += 1;
                expect_exit(&o, 6, &["apply", "(room for the journal)"]);
                let r = run(fabrik(d).args(["resume", run_id, "--sandbox"]));
                expect_exit(&r, 0, &["resume", run_id]);
                let dump = sandbox_dump(d);
                assert_eq!(count(&dump, &["coolify", "applications"]), 1, "room {room}");
                assert_eq!(count(&dump, &["uptime_kuma", "monitors"]), 1, "room {room}");
                assert_eq!(records(&dump), 1, "room {room}");
                let again = run(fabrik(d).args(["apply", "spec.yaml", "--sandbox"]));
                expect_exit(&again, 0, &["apply", "after the resume"]);
                assert!(
                    crate::support::stdout(&again).contains("no changes"),
                    "room {room}: the resumed deployment is not what the spec says:\n{}",
                    crate::support::stdout(&again)
                );
            }
            None => {
                // Refused before its run began: nothing was changed, and
                // the hint says to run the command again.
                refused_before_a_run += 1;
                assert!(err.contains("run the command again"), "room {room}:\n{err}");
                assert!(
                    !d.join(".fabrik/sandbox.db").exists()
                        || count(&sandbox_dump(d), &["coolify", "applications"]) == 0,
                    "room {room}: a run refused before it began changed the world"
                );
            }
        }
    }
    eprintln!(
        "full disk: {refused_before_a_run} sizes refused before a run began, {cut_runs} cut a run that `fabrik resume` then finished"
    );
    assert!(cut_runs > 0, "no room cut a run in the middle");
    assert!(
        refused_before_a_run > 0,
        "no room refused the run at its start"
    );
}
