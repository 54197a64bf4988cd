//! What several commands share: the async runtime, the journal they
//! write, the providers they are handed, Ctrl-C, and how a run's report is
//! printed.

use std::path::Path;
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

/// The providers: the built-in sandbox beside `state`, or the real
/// services.
pub(super) fn registry(state: &Path, sandbox: bool) -> Result<Registry, Error> {
    let target = if sandbox {
        Target::Sandbox(Box::new(crate::sandbox::SandboxConfig::for_state(state)?))
    } else {
        Target::Real
    };
    Ok(Registry::new(target))
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
        connect: Arc::new(registry(&super::state_path(cli), sandbox)?),
        env_vars: std::env::vars().collect(),
        clock: wall_clock(),
        interrupt: watch_interrupt(out),
        observer: Box::new(Progress::new(out.clone())),
        lock_wait,
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
    out.line(&format!("{}{run}", report.message))?;
    if !report.urls.is_empty() {
        out.line(&format!("  urls:    {}", report.urls.join(", ")))?;
    }
    if !report.changes.is_empty() {
        out.line(&format!("  changes: {}", report.changes.join(", ")))?;
    }
    for n in &report.next {
        out.line(&format!("  next:    {n}"))?;
    }
    Ok(())
}

/// Prints a run's report and returns its exit code.
pub(super) fn done(report: Result<Report, EngineError>, out: &mut Output) -> Result<i32, Error> {
    let report = report.map_err(engine)?;
    print_report(&report, out)?;
    Ok(report.exit_code)
}
