//! `--output json` is honoured by every command that prints data: the
//! clap tree is walked, and each command is run with it against a sandbox
//! project, its standard output one JSON document per line. A command
//! added without an example here fails the test, by name.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;
use std::process::Stdio;
use std::time::Duration;

use clap::CommandFactory as _;

use crate::support::{fabrik, run, stderr, stdout};

/// Commands whose output is not data, and why.
const EXEMPT: &[(&str, &str)] = &[
    (
        "completions",
        "a shell script, for the shell to read; not data",
    ),
    (
        "schema",
        "the JSON Schema itself: already JSON, one pretty-printed document for editors",
    ),
    ("help", "clap's help text"),
];

/// Commands that run until they are stopped: their first line is read,
/// then they are stopped.
const SERVERS: &[&str] = &["sandbox serve"];

/// One run of a command in the walk.
struct Example {
    /// The command's path in the tree (`journal export`).
    command: &'static str,
    /// Its arguments (`FIRST_RUN` stands for the first run of
    /// `web@staging`).
    args: &'static [&'static str],
    /// Faults for the sandbox (`FABRIK_SANDBOX_FAULTS`).
    faults: Option<&'static str>,
    /// The exit code it must end with.
    code: i32,
}

const fn ok(command: &'static str, args: &'static [&'static str]) -> Example {
    Example {
        command,
        args,
        faults: None,
        code: 0,
    }
}

/// Every command at least once, run in this order in one project (each
/// finds what those before it left: a deployment, a failed run, an
/// export).
const EXAMPLES: &[Example] = &[
    ok("init", &["fresh"]),
    ok("validate", &["spec.yaml"]),
    ok("doctor", &["spec.yaml", "--sandbox", "-e", "staging"]),
    ok("plan", &["spec.yaml", "--sandbox", "-e", "staging"]),
    ok("apply", &["spec.yaml", "--sandbox", "-e", "staging"]),
    ok(
        "promote",
        &["web", "--from", "staging", "--to", "production"],
    ),
    ok("redeploy", &["web", "--sandbox", "-e", "staging"]),
    Example {
        command: "apply",
        args: &[
            "spec.yaml",
            "--sandbox",
            "-e",
            "production",
            "--redeploy",
            "--no-rollback",
        ],
        faults: Some("deploy_fail=true"),
        code: 6,
    },
    ok("rollback", &["web@production", "--dry-run"]),
    ok("rollback", &["web@production"]),
    // Nothing is left to roll back, or to resume: that is the answer.
    ok("rollback", &["web@production"]),
    ok("resume", &["web@production"]),
    ok(
        "rollback",
        &["web@staging", "--to", "FIRST_RUN", "--dry-run"],
    ),
    ok("status", &[]),
    ok("status", &["web@staging"]),
    ok("history", &["web@staging"]),
    ok("logs", &["web@staging"]),
    ok("journal export", &[]),
    ok("journal export", &["-o", "journal.json"]),
    ok("replay", &["--verify"]),
    ok("replay", &["--input", "journal.json"]),
    ok("lock status", &[]),
    ok("lock release", &["web@staging", "--force"]),
    ok("gc", &["--sandbox"]),
    ok("sandbox dump", &[]),
    ok("sandbox serve", &["--addr", "127.0.0.1:0"]),
    ok("state migrate", &["--to", "copy.db"]),
    ok("destroy", &["web@staging", "--sandbox"]),
];

const SPEC: &str = "name: web
coolify: {project: default, environment: production, server: localhost}
app:
  image: traefik/whoami:v1.10
  port: 80
  domains: [https://web.example.com]
  health_check: {path: /health}
dns:
  zone: example.com
  records:
    - {type: A, name: web.example.com, content: 203.0.113.10}
verify:
  http:
    - {url: https://web.example.com/health, status: 200}
environments:
  staging:
    app:
      domains: [https://staging.example.com]
    dns:
      records:
        - {type: A, name: staging.example.com, content: 203.0.113.11}
    verify:
      http:
        - {url: https://staging.example.com/health, status: 200}
  production:
";

/// The leaf commands of the tree, as paths (`journal export`).
fn leaves(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    for sub in cmd.get_subcommands() {
        let path = format!("{prefix}{}", sub.get_name());
        if sub.has_subcommands() {
            leaves(sub, &format!("{path} "), out);
        } else {
            out.push(path);
        }
    }
}

/// Asserts that `out` is one JSON object per line, and not empty; returns
/// the keys of those objects.
#[track_caller]
fn json_lines(what: &str, out: &str, err: &str) -> BTreeSet<String> {
    assert!(
        !out.trim().is_empty(),
        "{what}: nothing on stdout\nstderr:\n{err}"
    );
    let mut keys = BTreeSet::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("{what}: a line of stdout is not JSON ({e}):\n{line}\n\nstdout:\n{out}")
        });
        let object = v
            .as_object()
            .unwrap_or_else(|| panic!("{what}: not an object: {line}"));
        keys.extend(object.keys().cloned());
    }
    keys
}

/// The table of `docs/output.md` that says what each command prints:
/// command path, and the keys its objects have.
fn documented() -> (String, BTreeMap<String, Vec<String>>) {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/output.md"),
    )
    .unwrap();
    let section = &doc[doc.find("### Every command").expect("the section")..];
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `fabrik ")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let command = cells[0]
            .trim_start_matches("| `fabrik ")
            .trim_end_matches('`');
        let keys = cells[2]
            .trim_end_matches(" |")
            .split(", ")
            .map(|k| k.trim_matches('`').to_owned())
            .collect();
        rows.insert(command.to_owned(), keys);
    }
    (doc, rows)
}

#[test]
fn every_command_that_prints_data_prints_json_lines_with_output_json() {
    let mut commands = Vec::new();
    leaves(&fabrik::cli::Cli::command(), "", &mut commands);
    assert!(commands.len() > 20, "{commands:?}");
    for (name, _) in EXEMPT {
        assert!(
            commands.contains(&(*name).to_owned()) || *name == "help",
            "exempt {name} is no command"
        );
    }
    for example in EXAMPLES {
        assert!(
            commands.iter().any(|c| c == example.command),
            "example for {}, which is no command",
            example.command
        );
    }
    for c in &commands {
        assert!(
            EXEMPT.iter().any(|(name, _)| name == c) || EXAMPLES.iter().any(|e| e.command == c),
            "`fabrik {c}` has no example in tests/it/json_output.rs: add one (or, if it prints no data, an exemption with the reason)"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
    let mut first_run = String::new();
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for example in EXAMPLES {
        let mut cmd = fabrik(dir.path());
        cmd.args(["--output", "json"])
            .args(example.command.split(' '))
            .args(example.args.iter().map(|a| {
                if *a == "FIRST_RUN" {
                    first_run.as_str()
                } else {
                    a
                }
            }));
        if let Some(f) = example.faults {
            cmd.env("FABRIK_SANDBOX_FAULTS", f);
        }
        let what = format!(
            "fabrik --output json {} {:?}",
            example.command, example.args
        );
        if SERVERS.contains(&example.command) {
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = std::io::BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            let line = rx.recv_timeout(Duration::from_secs(30));
            let _ = child.kill();
            let _ = child.wait();
            let keys = json_lines(&what, &line.unwrap_or_default(), "");
            seen.entry(example.command).or_default().extend(keys);
            continue;
        }
        let o = run(&mut cmd);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(
            o.status.code(),
            Some(example.code),
            "{what}\nstdout:\n{out}\nstderr:\n{err}"
        );
        let keys = json_lines(&what, &out, &err);
        seen.entry(example.command).or_default().extend(keys);
        if first_run.is_empty() && example.command == "apply" {
            let last: serde_json::Value =
                serde_json::from_str(out.lines().last().unwrap()).unwrap();
            first_run = last["run"].as_str().unwrap().to_owned();
        }
    }

    // docs/output.md says what each prints: every command has a row, and
    // the keys it names are in what the command printed.
    let (doc, rows) = documented();
    for (command, keys) in &seen {
        let named = rows
            .get(*command)
            .unwrap_or_else(|| panic!("docs/output.md has no row for `fabrik {command}`"));
        for key in named {
            assert!(
                keys.contains(key),
                "docs/output.md says `fabrik {command}` prints `{key}`, but it printed only {keys:?}"
            );
        }
    }
    for row in rows.keys() {
        assert!(
            seen.contains_key(row.as_str()),
            "docs/output.md has a row for `fabrik {row}`, which is no command run here"
        );
    }
    for (name, _) in EXEMPT.iter().filter(|(n, _)| *n != "help") {
        assert!(
            doc.contains(&format!("`fabrik {name}`")),
            "docs/output.md does not say what `fabrik {name}` prints"
        );
    }
}
