//! The crash harness: every command of every scenario is killed right
//! after each event it appends (`FABRIK_CRASH_AFTER_EVENT=N`) and right
//! after each side effect it makes (`FABRIK_CRASH_AFTER_EFFECT=N`), then
//! `fabrik resume` must finish the job exactly as the uncrashed command
//! did: same exit code, same projection, same remote world (as many
//! deployments too), no duplicate, no orphan, an intact journal. Each
//! crash is resumed twice, from two copies of the crashed project: at
//! once, and after whatever the crashed run had started on the remote
//! side (a deployment, a delete) has finished, as when a person resumes
//! later.
//!
//! Needs the `failpoints` feature (`cargo test --all-features`). Runs the
//! crash points in parallel worker processes; `FABRIK_CRASH_JOBS` sets how
//! many at once (default: the number of cores plus one, as the runs spend
//! most of their time waiting on the sandbox). `--nocapture` shows the
//! count of crash points exercised.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use fabrik::id::DeploymentId;
use fabrik::store::EventStore;
use fabrik::store::sqlite::SqliteStore;

use super::project::{self, NAME, SPEC_V1, SPEC_V2};
use super::world::{Outcome, compare, outcome, settle, verify_journal};
use crate::support::{fabrik, run, stderr, stdout};

const SIGABRT: i32 = 6;

/// Where to crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crash {
    /// After the N-th event the process appended is durable.
    Event(u64),
    /// After the N-th side effect succeeded, before its outcome is journaled.
    Effect(u64),
}

impl Crash {
    fn set(self, c: &mut Command) {
        match self {
            Self::Event(n) => c.env("FABRIK_CRASH_AFTER_EVENT", n.to_string()),
            Self::Effect(n) => c.env("FABRIK_CRASH_AFTER_EFFECT", n.to_string()),
        };
    }
}

/// One command crashed at every point.
struct Scenario {
    name: &'static str,
    /// Builds the starting state (once; each crash point works on a copy).
    setup: fn(&Path),
    /// The spec the command runs with (written into the copy).
    spec: fn() -> String,
    /// Run in each copy before the crashing command, and expected to abort
    /// there (how the resume scenario gets its interrupted run).
    pre: Option<(&'static [&'static str], Crash)>,
    /// The command crashed at every point.
    args: &'static [&'static str],
    /// `FABRIK_SANDBOX_FAULTS` for every command.
    faults: &'static str,
    /// The exit code of the uncrashed command, and of `fabrik resume`
    /// after a crash that left the run unfinished.
    code: i32,
}

const APPLY: &[&str] = &["apply", "spec.yaml", "--sandbox"];
const DESTROY: &[&str] = &["destroy", "spec.yaml", "--sandbox", "--yes"];
const RESUME: &[&str] = &["resume", NAME, "--sandbox"];

fn nothing(_: &Path) {}

fn applied_v1(dir: &Path) {
    project::write(dir, SPEC_V1);
    project::apply_ok(dir);
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "apply",
            setup: nothing,
            spec: || SPEC_V1.to_owned(),
            pre: None,
            args: APPLY,
            faults: "",
            code: 0,
        },
        Scenario {
            name: "apply that fails verification and rolls back",
            setup: nothing,
            spec: project::spec_v1_failing,
            pre: None,
            args: APPLY,
            faults: "health_fail=true",
            code: 5,
        },
        Scenario {
            name: "update",
            setup: applied_v1,
            spec: || SPEC_V2.to_owned(),
            pre: None,
            args: APPLY,
            faults: "",
            code: 0,
        },
        Scenario {
            name: "destroy",
            setup: applied_v1,
            spec: || SPEC_V1.to_owned(),
            pre: None,
            args: DESTROY,
            faults: "",
            code: 0,
        },
        Scenario {
            // The apply is lost right after its first DNS record was
            // created; its resume must adopt the record, then finish.
            name: "resume of an apply",
            setup: nothing,
            spec: || SPEC_V1.to_owned(),
            pre: Some((APPLY, Crash::Effect(1))),
            args: RESUME,
            faults: "",
            code: 0,
        },
    ]
}

fn command(dir: &Path, args: &[&str], faults: &str) -> Command {
    let mut c = fabrik(dir);
    c.args(args);
    if !faults.is_empty() {
        c.env("FABRIK_SANDBOX_FAULTS", faults);
    }
    c
}

fn aborted(o: &Output) -> bool {
    o.status.signal() == Some(SIGABRT)
}

fn describe(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

/// A copy of the scenario's starting state, with its spec, after `pre`.
fn prepare(s: &Scenario, template: &Path) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::tempdir().unwrap();
    project::copy(template, dir.path());
    project::write(dir.path(), &(s.spec)());
    if let Some((args, crash)) = s.pre {
        let mut c = command(dir.path(), args, s.faults);
        crash.set(&mut c);
        let o = run(&mut c);
        if !aborted(&o) {
            return Err(format!(
                "the preparing command did not crash: {}",
                describe(&o)
            ));
        }
    }
    Ok(dir)
}

/// Whether the deployment's latest run journaled how it ended.
fn finished(dir: &Path) -> bool {
    let store = SqliteStore::open_existing(&dir.join(".fabrik").join("state.db")).unwrap();
    let d = DeploymentId::new(NAME).unwrap();
    store
        .runs(&d)
        .unwrap()
        .last()
        .is_some_and(|r| r.outcome.is_some())
}

/// The uncrashed command: its event count and what it leaves behind.
struct Baseline {
    events: u64,
    outcome: Outcome,
}

fn baseline(s: &Scenario, template: &Path) -> Baseline {
    let dir = prepare(s, template).unwrap_or_else(|e| panic!("{}: {e}", s.name));
    let mut c = command(dir.path(), &["--output", "json"], s.faults);
    c.args(s.args);
    let o = run(&mut c);
    assert_eq!(
        o.status.code(),
        Some(s.code),
        "{}: {}",
        s.name,
        describe(&o)
    );
    let events = stdout(&o)
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v["kind"] == "event")
        })
        .count() as u64;
    assert!(events > 0, "{}: no events in {}", s.name, stdout(&o));
    let outcome = outcome(dir.path(), NAME).unwrap_or_else(|e| panic!("{}: {e}", s.name));
    verify_journal(dir.path()).unwrap_or_else(|e| panic!("{}: {e}", s.name));
    Baseline { events, outcome }
}

/// What one crash point did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// The command crashed there and resume finished the job.
    Crashed,
    /// The command finished before reaching the point.
    Finished,
}

/// Crashes the scenario's command at `crash`, resumes, and checks. On
/// failure the project directory is kept and named in the error.
fn crash_point(
    s: &Scenario,
    template: &Path,
    crash: Crash,
    base: &Baseline,
) -> Result<Point, String> {
    let dir = prepare(s, template)?;
    match check_point(s, dir.path(), crash, base) {
        Ok(p) => Ok(p),
        Err(e) => Err(format!("{e}\n(project kept in {})", dir.keep().display())),
    }
}

fn check_point(s: &Scenario, dir: &Path, crash: Crash, base: &Baseline) -> Result<Point, String> {
    let mut c = command(dir, s.args, s.faults);
    crash.set(&mut c);
    let o = run(&mut c);
    if !aborted(&o) {
        if o.status.code() != Some(s.code) {
            return Err(format!(
                "the command neither crashed nor ended as uncrashed: {}",
                describe(&o)
            ));
        }
        compare(dir, &base.outcome)?;
        return Ok(Point::Finished);
    }
    let finished = finished(dir);
    let later = tempfile::tempdir().unwrap();
    project::copy(dir, later.path());
    resume(s, dir, finished, base).map_err(|e| format!("resumed at once: {e}"))?;
    settle(later.path())?;
    match resume(s, later.path(), finished, base) {
        Ok(()) => Ok(Point::Crashed),
        Err(e) => Err(format!(
            "resumed after the remote side settled: {e}\n(project kept in {})",
            later.keep().display()
        )),
    }
}

/// `fabrik resume` in a crashed project, and the checks of its outcome.
fn resume(s: &Scenario, dir: &Path, finished: bool, base: &Baseline) -> Result<(), String> {
    let r = run(&mut command(dir, RESUME, s.faults));
    let expected = if finished { 0 } else { s.code };
    if r.status.code() != Some(expected) {
        return Err(format!(
            "resume after the crash (run {}) should exit {expected}: {}",
            if finished { "finished" } else { "unfinished" },
            describe(&r)
        ));
    }
    let said = format!("{}{}", stdout(&r), stderr(&r));
    if finished != said.contains("nothing to resume") {
        return Err(format!(
            "resume should say there is nothing to resume if and only if the run had finished: {}",
            describe(&r)
        ));
    }
    compare(dir, &base.outcome)
}

/// A unit of work for the pool.
#[derive(Debug, Clone, Copy)]
struct Job {
    scenario: usize,
    crash: Crash,
}

/// Shared between the workers.
#[derive(Default)]
struct Board {
    queue: VecDeque<Job>,
    running: usize,
    crashed: Vec<[u64; 2]>,
    failures: Vec<String>,
}

fn work(
    board: &(Mutex<Board>, Condvar),
    scenarios: &[Scenario],
    templates: &[tempfile::TempDir],
    bases: &[Baseline],
) {
    let (lock, cv) = board;
    loop {
        let job = {
            let mut b = lock.lock().unwrap();
            loop {
                if let Some(j) = b.queue.pop_front() {
                    b.running += 1;
                    break Some(j);
                }
                if b.running == 0 {
                    break None;
                }
                b = cv.wait(b).unwrap();
            }
        };
        let Some(job) = job else {
            cv.notify_all();
            return;
        };
        let s = &scenarios[job.scenario];
        // A panic must not leave the other workers waiting for this job.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            crash_point(
                s,
                templates[job.scenario].path(),
                job.crash,
                &bases[job.scenario],
            )
        }))
        .unwrap_or_else(|p| {
            Err(format!(
                "panicked: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default()
            ))
        });
        let mut b = lock.lock().unwrap();
        b.running -= 1;
        match (result, job.crash) {
            (Ok(Point::Crashed), Crash::Event(_)) => b.crashed[job.scenario][0] += 1,
            (Ok(Point::Crashed), Crash::Effect(n)) => {
                b.crashed[job.scenario][1] += 1;
                // Effects are counted by crashing after each one until the
                // command no longer reaches the next.
                b.queue.push_front(Job {
                    scenario: job.scenario,
                    crash: Crash::Effect(n + 1),
                });
            }
            (Ok(Point::Finished), Crash::Effect(1)) => b.failures.push(format!(
                "{}: the command made no side effect at all",
                s.name
            )),
            (Ok(Point::Finished), _) => {}
            (Err(e), crash) => b.failures.push(format!("{} at {crash:?}: {e}", s.name)),
        }
        cv.notify_all();
    }
}

fn jobs() -> usize {
    std::env::var("FABRIK_CRASH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get) + 1
        })
        .max(1)
}

#[test]
fn every_crash_point_resumes_to_the_uncrashed_outcome() {
    let started = Instant::now();
    let scenarios = scenarios();
    let templates: Vec<tempfile::TempDir> = scenarios
        .iter()
        .map(|s| {
            let t = tempfile::tempdir().unwrap();
            // A git work tree: the spec's identity survives the copies.
            std::fs::create_dir(t.path().join(".git")).unwrap();
            (s.setup)(t.path());
            t
        })
        .collect();
    let bases: Vec<Baseline> = std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .iter()
            .zip(&templates)
            .map(|(s, t)| scope.spawn(|| baseline(s, t.path())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut board = Board {
        crashed: vec![[0, 0]; scenarios.len()],
        ..Board::default()
    };
    for (i, _) in scenarios.iter().enumerate() {
        board.queue.push_back(Job {
            scenario: i,
            crash: Crash::Effect(1),
        });
    }
    for (i, b) in bases.iter().enumerate() {
        for n in 1..=b.events {
            board.queue.push_back(Job {
                scenario: i,
                crash: Crash::Event(n),
            });
        }
    }
    let board = (Mutex::new(board), Condvar::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs() {
            scope.spawn(|| work(&board, &scenarios, &templates, &bases));
        }
    });
    let board = board.0.into_inner().unwrap();
    let mut total = 0;
    for (s, [events, effects]) in scenarios.iter().zip(&board.crashed) {
        println!("{}: {events} event points, {effects} effect points", s.name);
        total += events + effects;
    }
    println!(
        "crash points exercised: {total} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        board.failures.is_empty(),
        "{} crash points failed:\n\n{}",
        board.failures.len(),
        board.failures.join("\n\n")
    );
    for (s, [events, effects]) in scenarios.iter().zip(&board.crashed) {
        assert!(
            *events > 0 && *effects > 0,
            "{}: no crash point was reached",
            s.name
        );
    }
}
