//! The rough edges of what a person reads: counts that agree with their
//! noun, headlines that say what failed, a status line erased before what
//! follows it, and reasons said once.

use std::time::Duration;

use super::{Project, ok};
use crate::support::{Terminal, journal_events, stderr, stdout};

#[test]
fn ctrl_c_erases_the_status_line_and_says_interrupted_once() {
    let p = Project::example("quickstart", &[]);
    let mut t = Terminal::start(
        p.path(),
        &["apply", "spec.yaml", "--sandbox", "--yes"],
        &[("FABRIK_SANDBOX_FAULTS", Some("health_fail=true"))],
    );
    assert!(
        t.wait_for("waiting for 200", Duration::from_secs(60)),
        "verification never started waiting"
    );
    t.type_text("\x03");
    let (code, shown) = t.finish();
    assert_eq!(code, Some(6), "{shown}");
    // The status line is erased before the interrupt is acknowledged, so
    // the two never share a line.
    let at = shown.find("interrupt: stopping").expect(&shown);
    assert!(
        shown[..at].ends_with("\r\x1b[2K"),
        "{:?}",
        &shown[at.saturating_sub(80)..at + 20]
    );
    assert!(shown.contains("interrupted by Ctrl-C"), "{shown}");
    assert!(!shown.contains("interrupted: interrupted"), "{shown}");
}

#[test]
fn lock_status_names_no_holder_of_a_free_lock() {
    let p = Project::example("quickstart", &[]);
    ok(&p.apply());
    let o = p.run(&["lock", "status"]);
    ok(&o);
    let table = stdout(&o);
    let row = table
        .lines()
        .find(|l| l.starts_with("quickstart"))
        .expect(&table);
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["quickstart", "free"],
        "{table}"
    );
    assert!(!table.contains("another process"), "{table}");
}

#[test]
fn a_journal_that_cannot_be_opened_says_so_in_the_headline() {
    let p = Project::example("quickstart", &[]);
    std::fs::create_dir(p.path().join("dir.db")).unwrap();
    let o = p.run(&["status", "--state", "dir.db"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: cannot open the journal dir.db\n"),
        "{err}"
    );
    assert!(!err.contains("error: journal\n"), "{err}");
}

#[test]
fn counts_of_one_are_singular() {
    let p = Project::example("quickstart", &[]);
    ok(&p.apply());
    p.edit("spec.yaml", "whoami:v1.10", "whoami:v1.11");
    ok(&p.apply());
    let finished: Vec<String> = journal_events(p.path())
        .iter()
        .filter(|e| e["type"] == "run_finished")
        .map(|e| e["payload"]["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(finished, ["3 changes", "1 change"]);

    let o = p.run(&[
        "journal",
        "export",
        "--deployment",
        "quickstart",
        "-o",
        "one.ndjson",
    ]);
    ok(&o);
    assert!(stderr(&o).contains("exported "), "{}", stderr(&o));

    // One problem in a spec: "1 error".
    p.edit("spec.yaml", "port: 80", "port: 0");
    let o = p.run(&["plan", "spec.yaml", "--sandbox"]);
    assert_eq!(o.status.code(), Some(4));
    let err = stderr(&o);
    assert!(err.contains("is not a valid spec: 1 error\n"), "{err}");
}

#[test]
fn without_user_set_the_run_is_recorded_as_the_os_account() {
    let p = Project::example("quickstart", &[]);
    let o = crate::support::run(p.cmd().env_remove("USER").env_remove("USERNAME").args([
        "apply",
        "spec.yaml",
        "--sandbox",
    ]));
    ok(&o);
    // What the system says this account is.
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let expected = if id.status.success() {
        String::from_utf8_lossy(&id.stdout).trim().to_owned()
    } else {
        let uid = std::process::Command::new("id").arg("-u").output().unwrap();
        format!("uid {}", String::from_utf8_lossy(&uid.stdout).trim())
    };
    let runs = p.runs("quickstart");
    assert_eq!(runs[0]["user"], expected.as_str(), "{runs:?}");
}

#[test]
fn output_given_a_file_hints_at_output_file() {
    let p = Project::example("quickstart", &[]);
    let o = p.run(&["journal", "export", "--output", "f.ndjson"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("use --output-file f.ndjson (-o)"), "{err}");
    // Not for a value that is no path.
    let o = p.run(&["journal", "export", "--output", "xml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!stderr(&o).contains("--output-file"), "{}", stderr(&o));
    // The long spelling of -o is --output-file.
    let o = p.run(&["plan", "--help"]);
    assert!(
        stdout(&o).contains("-o, --output-file <FILE>"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn state_migrate_creates_no_directories() {
    let p = Project::example("quickstart", &[]);
    ok(&p.apply());
    let to = p.path().join("no-such-dir").join("deeper").join("x.db");
    let o = p.run(&["state", "migrate", "--to", to.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    let missing = to.parent().unwrap().display().to_string();
    assert!(
        err.contains(&format!("the directory {missing} does not exist")),
        "{err}"
    );
    assert!(
        !p.path().join("no-such-dir").exists(),
        "a directory was created"
    );

    // Into a directory that exists: copied, counted in the singular.
    let to = p.path().join("copy.db");
    let o = p.run(&["state", "migrate", "--to", to.to_str().unwrap()]);
    ok(&o);
    assert!(
        stdout(&o).contains(", 1 deployment, 1 run\n"),
        "{}",
        stdout(&o)
    );
}
