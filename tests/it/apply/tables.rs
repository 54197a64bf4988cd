//! Tables for people: run ids cut to their first 8 characters and times as
//! how long ago, `--wide` for both whole; every command that takes a run
//! id takes its unique start, and names the candidates of an ambiguous one.

use serde_json::Value;

use super::{Project, ok};
use crate::support::{stderr, stdout};

/// Whether `s` is an RFC 3339 timestamp in UTC as the journal writes it.
fn is_rfc3339(s: &str) -> bool {
    s.len() >= 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T'
}

/// A project with two applies of quickstart (a create, then an update).
fn two_runs() -> (Project, Vec<String>) {
    let p = Project::example("quickstart", &[]);
    ok(&p.apply());
    p.edit("spec.yaml", "whoami:v1.10", "whoami:v1.11");
    ok(&p.apply());
    let runs: Vec<String> = p
        .runs("quickstart")
        .iter()
        .map(|r| r["run"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(runs.len(), 2);
    (p, runs)
}

/// The cells of the table's data rows, split on runs of spaces.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .skip(1)
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

#[test]
fn tables_show_short_ids_and_how_long_ago_and_wide_shows_them_whole() {
    let (p, runs) = two_runs();
    let o = p.run(&["history", "quickstart"]);
    ok(&o);
    let table = stdout(&o);
    let shown = rows(&table);
    assert_eq!(shown.len(), 2, "{table}");
    // The first 8 characters, or more where two runs share them (run ids
    // start with their time: runs a second apart share 8).
    assert_ne!(shown[0][0], shown[1][0], "{table}");
    for (row, run) in shown.iter().zip(&runs) {
        assert!(row[0].len() >= 8 && row[0].len() < 26, "{table}");
        assert!(run.starts_with(&row[0]), "{table}");
        assert!(
            row[2].ends_with(" s ago") || row[2].ends_with(" min ago"),
            "{table}"
        );
    }

    let o = p.run(&["history", "quickstart", "--wide"]);
    ok(&o);
    let table = stdout(&o);
    for (row, run) in rows(&table).iter().zip(&runs) {
        assert_eq!(&row[0], run, "{table}");
        assert!(is_rfc3339(&row[2]), "{table}");
    }

    let o = p.run(&["status"]);
    ok(&o);
    let table = stdout(&o);
    assert!(
        table.contains(&format!("apply {}  ", &runs[1][..8])),
        "{table}"
    );
    assert!(!table.contains(&runs[1]), "{table}");
    assert!(table.contains(" ago"), "{table}");

    let o = p.run(&["status", "quickstart"]);
    ok(&o);
    let detail = stdout(&o);
    let last = detail
        .lines()
        .find_map(|l| l.strip_prefix("last run    "))
        .unwrap_or_else(|| panic!("{detail}"));
    let shown = last.split(' ').next().unwrap();
    assert!(
        shown.len() >= 8 && shown.len() < 26 && runs[1].starts_with(shown),
        "{detail}"
    );
    assert!(
        !detail.contains(&runs[1]) && !detail.contains(&runs[0]),
        "{detail}"
    );

    // JSON keeps the full values.
    let json: Value = p.json(&["history", "quickstart"]);
    assert_eq!(json["runs"][0]["run"], runs[0].as_str());
    assert!(is_rfc3339(json["runs"][0]["started_at"].as_str().unwrap()));
}

#[test]
fn a_run_is_named_by_the_unique_start_of_its_id() {
    let (p, runs) = two_runs();
    // The id as `history` shows it.
    let o = p.run(&["history", "quickstart"]);
    let short = rows(&stdout(&o))[0][0].clone();
    let short = short.as_str();
    assert!(short.len() < 26);

    // rollback --to RUN: back to the first release, named as the table
    // shows it.
    let o = p.run(&[
        "rollback",
        "quickstart",
        "--to",
        short,
        "--dry-run",
        "--sandbox",
    ]);
    ok(&o);
    let said = stderr(&o);
    assert!(
        said.contains(&format!("back to release {}", runs[0])),
        "{said}"
    );
    // The plan shown before it, one line per step.
    assert!(said.contains("\n  ~ app "), "{said}");

    // resume and rollback RUN.
    let o = p.run(&["resume", short, "--sandbox"]);
    assert!(
        stderr(&o).contains(&format!("run {} is not unfinished", runs[0])),
        "{}",
        stderr(&o)
    );
    let o = p.run(&["rollback", short, "--dry-run", "--sandbox"]);
    ok(&o);
    assert!(
        stdout(&o).contains(&format!("rollback of run {}", runs[0])),
        "{}",
        stdout(&o)
    );

    // journal export --run.
    let o = p.run(&["journal", "export", "--format", "ndjson", "--run", short]);
    ok(&o);
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v.get("seq").is_some())
        .collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|e| e["run"] == runs[0].as_str()));

    // Too short a start that both runs share: refused, naming both.
    let shared: String = runs[0]
        .chars()
        .zip(runs[1].chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    assert!(shared.len() >= 4, "{runs:?}");
    let o = p.run(&["journal", "export", "--run", &shared[..4]]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("is ambiguous"), "{err}");
    assert!(err.contains(&runs[0]) && err.contains(&runs[1]), "{err}");

    // A start no run has.
    let o = p.run(&["journal", "export", "--run", "7zzzzzzz"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no run id in the journal starts with 7zzzzzzz"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn status_shows_what_the_application_runs() {
    let (p, _) = two_runs();
    let o = p.run(&["status", "quickstart"]);
    ok(&o);
    let detail = stdout(&o);
    assert!(
        detail.contains("\ndeployed    traefik/whoami:v1.11\n"),
        "{detail}"
    );

    // Set up for the sandbox as the forms test does.
    let p = Project::example(
        "git",
        &[
            ("project: shop", "project: default"),
            (
                "server:\n    uuid: hg0ks8kw4wok04g8cwck8sgo",
                "server: localhost",
            ),
            (
                "url: https://hooks.example.com/fabrik",
                "url: http://127.0.0.1:9/hook",
            ),
            // A pinned commit is shown with the branch.
            (
                "branch: main\n",
                "branch: main\n    commit: 4f1c0ffee4f1c0ffee4f1c0ffee4f1c0ffee4f1c\n",
            ),
        ],
    );
    ok(&p.apply());
    let o = p.run(&["status", "shop-frontend"]);
    ok(&o);
    let detail = stdout(&o);
    let line = detail
        .lines()
        .find(|l| l.starts_with("deployed "))
        .unwrap_or_else(|| panic!("{detail}"));
    assert!(
        line.ends_with(
            "https://github.com/vercel/next-learn branch main (commit 4f1c0ffee4f1c0ffee4f1c0ffee4f1c0ffee4f1c)"
        ),
        "{detail}"
    );
}
