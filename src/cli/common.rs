//! What several commands share: the async runtime, the journal they
//! write, the providers they are handed, Ctrl-C, and how a run's report is
//! printed.

use std::io::{BufRead as _, IsTerminal as _};
use std::sync::Arc;

use serde_json::json;

use super::Cli;
use super::progress::Progress;
use crate::engine::recorder::wall_clock;
use crate::engine::{EngineError, Interrupt, Report, Request};
use crate::error::Error;
use crate::output::Output;
use crate::provider::registry::{Registry, Target};
use crate::store::EventStore;

/// A multi-threaded runtime for the commands that talk to providers.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            action: "cannot start the async runtime for",
            path: "fabrik".into(),
            source,
        })
}

/// An engine error as the command's error.
pub(super) fn engine(e: EngineError) -> Error {
    Error::Engine(Box::new(e))
}

/// The providers: the built-in sandbox beside the journal, or the real
/// services.
pub(super) fn registry(cli: &Cli, sandbox: bool) -> Result<Registry, Error> {
    let target = if sandbox {
        Target::Sandbox(Box::new(crate::sandbox::SandboxConfig::for_state(
            &super::state_path(cli),
        )?))
    } else {
        Target::Real
    };
    Ok(Registry::new(target).allowing_insecure_http(cli.allow_insecure_http))
}

/// Opens (creating) the journal for a command that writes it. With the
/// journal in PostgreSQL, the connection the run's lock will need is
/// opened at the same time.
pub(super) fn open_store(cli: &Cli) -> Result<Arc<dyn EventStore>, Error> {
    let location = super::state_location(cli)?;
    if let crate::store::StateLocation::Postgres(url) = &location {
        crate::store::postgres::PgLocks::warm_up(url);
    }
    Ok(Arc::from(crate::store::open(&location)?))
}

/// Stops at the next step boundary on the first Ctrl-C.
pub(super) fn watch_interrupt(out: &Output) -> Interrupt {
    let interrupt = Interrupt::new();
    let flag = interrupt.clone();
    let mut out = out.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.set();
            // Over the status line being redrawn, if there is one.
            if out.is_live() {
                out.diag_raw(crate::output::REDRAW);
            }
            out.diag("interrupt: stopping at the next step boundary (the run can be resumed)");
        }
    });
    interrupt
}

/// What every engine command is handed, inside `rt`.
pub(super) fn request(
    cli: &Cli,
    sandbox: bool,
    out: &Output,
    rt: &tokio::runtime::Runtime,
    lock_wait: Option<std::time::Duration>,
) -> Result<Request, Error> {
    let _guard = rt.enter();
    Ok(Request {
        store: open_store(cli)?,
        state: super::state_location(cli)?,
        connect: Arc::new(registry(cli, sandbox)?),
        env_vars: std::env::vars().collect(),
        clock: wall_clock(),
        interrupt: watch_interrupt(out),
        observer: Box::new(Progress::new(out.clone())),
        lock_wait,
        environment: cli.env.clone(),
    })
}

/// What a command that only reads is handed: the journal if there is
/// one (an empty one otherwise: nothing is created), inside `rt`.
pub(super) fn request_reading(
    cli: &Cli,
    sandbox: bool,
    out: &Output,
    rt: &tokio::runtime::Runtime,
) -> Result<Request, Error> {
    let _guard = rt.enter();
    let location = super::state_location(cli)?;
    let store: Arc<dyn EventStore> = match crate::store::open_existing(&location) {
        Ok(store) => Arc::from(store),
        Err(crate::store::StoreError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Arc::new(crate::store::memory::MemoryStore::new())
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Request {
        store,
        state: location,
        connect: Arc::new(registry(cli, sandbox)?),
        env_vars: std::env::vars().collect(),
        clock: wall_clock(),
        interrupt: watch_interrupt(out),
        observer: Box::new(Progress::new(out.clone())),
        lock_wait: None,
        environment: cli.env.clone(),
    })
}

/// Prints how a run ended: a summary for people, or one JSON object.
pub(super) fn print_report(report: &Report, out: &mut Output) -> Result<(), Error> {
    if out.is_json() {
        let mut v = serde_json::to_value(report).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".to_owned(), json!("result"));
        }
        return out.json(&v);
    }
    let run = report
        .run
        .as_ref()
        .map(|r| format!(" (run {r})"))
        .unwrap_or_default();
    // The summary, then what details it (a build log's end) below.
    match report.message.split_once('\n') {
        Some((summary, details)) => {
            out.line(&format!("{summary}{run}"))?;
            out.line(details)?;
        }
        None => out.line(&format!("{}{run}", report.message))?,
    }
    if !report.urls.is_empty() {
        out.line(&format!("  urls:    {}", report.urls.join(", ")))?;
    }
    if !report.changes.is_empty() {
        out.line(&format!("  changes: {}", report.changes.join(", ")))?;
    }
    for n in &report.next {
        out.line(&format!("  next:    {n}"))?;
    }
    if let Some(h) = &report.journal_head {
        out.line(&format!("  journal: event {}, head {}", h.seq, h.hash))?;
    }
    Ok(())
}

/// Prints a run's report and returns its exit code.
pub(super) fn done(report: Result<Report, EngineError>, out: &mut Output) -> Result<i32, Error> {
    let report = report.map_err(engine)?;
    print_report(&report, out)?;
    Ok(report.exit_code)
}

/// Whether the run named by `target_arg` (a run id, a deployment name: its
/// latest run, or a spec file: its deployment's latest run) was made
/// against the sandbox. Its resources exist only there, so the commands
/// that finish or undo it use the sandbox without `--sandbox`: the
/// commands Fabrik prints after a failure work exactly as printed.
pub(super) fn journaled_sandbox(cli: &Cli, target_arg: &str, out: &mut Output) -> bool {
    let Ok(store) = super::open_existing(cli) else {
        return false;
    };
    let run = if crate::id::RunId::looks_like(target_arg) {
        target_arg
            .parse::<crate::id::RunId>()
            .ok()
            .and_then(|id| store.run(&id).ok().flatten())
    } else {
        let path = std::path::Path::new(target_arg);
        let name = if path.is_file() {
            crate::engine::command::load_spec(path, cli.env.as_deref())
                .ok()
                .map(|l| l.spec.name)
        } else {
            crate::id::DeploymentId::new(target_arg).ok()
        };
        name.and_then(|d| store.runs(&d).ok())
            .and_then(|runs| runs.into_iter().last())
    };
    let sandboxed = run.as_ref().is_some_and(|r| r.options.sandbox);
    if let (true, Some(r)) = (sandboxed, run) {
        out.diag(&format!(
            "run {} was made against the sandbox: using it",
            r.run
        ));
    }
    sandboxed
}

/// Whether a person can be asked: standard input is a terminal.
pub(super) fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Asks `question` on the terminal; only `y` or `yes` agrees.
pub(super) fn ask(question: &str, out: &mut Output) -> bool {
    out.diag_raw(&format!("{question} [y/N] "));
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes" | "YES")
}

/// Asks on a terminal; refuses without one (CI must say `--yes`).
pub(super) fn confirm(question: &str, yes: bool, out: &mut Output) -> Result<bool, Error> {
    if yes {
        return Ok(true);
    }
    if !interactive() {
        return Err(Error::Usage {
            message: "this changes remote resources and needs confirmation".to_owned(),
            hint: Some("pass --yes (-y) to go ahead without a terminal (as CI does)".to_owned()),
        });
    }
    Ok(ask(question, out))
}
