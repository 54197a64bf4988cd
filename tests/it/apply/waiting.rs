//! What a run waits for, as the progress line says it: verification names
//! the answer it waits for, what it got and how much of the timeout has
//! passed, and polls with backoff.

use super::Project;
use crate::support::on_terminal_with;

/// The `verification_failed` event of the last run.
fn failed_check(p: &Project) -> serde_json::Value {
    crate::support::journal_events(p.path())
        .into_iter()
        .rfind(|e| e["type"] == "verification_failed")
        .expect("a failed check")
}

#[test]
fn verification_says_what_it_waits_for_and_backs_off() {
    let p = Project::example("quickstart", &[("timeout: 2m", "timeout: 5s")]);
    let (code, shown) = on_terminal_with(
        p.path(),
        &["apply", "spec.yaml", "--sandbox", "--yes"],
        "",
        &[("FABRIK_SANDBOX_FAULTS", "health_fail=true")],
    );
    assert_eq!(code, Some(6), "{shown}");
    assert!(
        shown.contains(
            "waiting for 200 from https://quickstart.example.com/health (got 503), 0 s of 5 s"
        ),
        "{shown}"
    );
    assert!(shown.contains(" s of 5 s"), "{shown}");
    assert!(!shown.contains("attempt"), "{shown}");
    // Polled fast first, then less and less often: five times a second
    // would have made 25 attempts in 5 s, every 2 s three.
    let attempts = failed_check(&p)["payload"]["evidence"]["attempts"]
        .as_u64()
        .unwrap();
    assert!((5..=15).contains(&attempts), "{attempts} attempts in 5 s");
}

#[test]
fn a_body_check_says_which_text_it_waits_for() {
    let p = Project::example(
        "quickstart",
        &[
            ("timeout: 2m", "timeout: 1s"),
            (
                "      status: 200\n",
                "      status: 200\n      body_contains: all systems go\n",
            ),
        ],
    );
    let (code, shown) = on_terminal_with(
        p.path(),
        &["apply", "spec.yaml", "--sandbox", "--yes"],
        "",
        &[],
    );
    assert_eq!(code, Some(6), "{shown}");
    assert!(
        shown.contains(
            "waiting for \"all systems go\" in the body of https://quickstart.example.com/health (got 200 without it), 0 s of 1 s"
        ),
        "{shown}"
    );
}
