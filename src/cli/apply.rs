//! `fabrik apply` and `fabrik plan`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::progress::Progress;
use super::{ApplyArgs, Cli, PlanArgs, state_path};
use crate::engine::apply::{ApplyRequest, apply as run_apply, plan_only};
use crate::engine::connect::{Env, Target};
use crate::engine::desired::World;
use crate::engine::recorder::wall_clock;
use crate::engine::{EngineError, Interrupt, Report};
use crate::error::{Error, exit};
use crate::output::Output;
use crate::plan::{Plan, StepAction};
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

/// Parses `30s`, `5m`, `1h`, `250ms` or a number of seconds.
pub(super) fn duration(text: &str) -> Result<Duration, Error> {
    let t = text.trim();
    let (num, unit) = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((t, "s"), |i| (&t[..i], &t[i..]));
    let n: f64 = num.parse().map_err(|_| bad_duration(text))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad_duration(text)),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| bad_duration(text))
}

fn bad_duration(text: &str) -> Error {
    Error::Usage {
        message: format!("{text:?} is not a duration"),
        hint: Some("use e.g. 30s, 5m or 1h".to_owned()),
    }
}

/// Where the sandbox keeps its world for `state`, and its faults.
pub(super) fn sandbox_target(state: &Path) -> Result<Target, Error> {
    let config = crate::sandbox::SandboxConfig::for_state(state)
        .map_err(|e| Error::Engine(Box::new(EngineError::Sandbox(e))))?;
    Ok(Target::Sandbox(Box::new(config)))
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

fn engine(e: EngineError) -> Error {
    Error::Engine(Box::new(e))
}

/// `fabrik apply SPEC`.
pub fn apply(cli: &Cli, args: &ApplyArgs, out: &mut Output) -> Result<i32, Error> {
    let loaded = super::spec::load(&args.spec, out)?;
    let state = state_path(cli);
    let lock_wait = args.lock_timeout.as_deref().map(duration).transpose()?;
    let target = if args.sandbox {
        sandbox_target(&state)?
    } else {
        Target::Real
    };
    let env = Env::load(std::env::vars(), &loaded.default_dotenv()).map_err(engine)?;
    let store = open_store(cli)?;
    let rt = runtime()?;
    let progress = Progress::new(out.clone());
    let state_loc = super::state_location(cli)?;
    let report = rt.block_on(async {
        let interrupt = watch_interrupt(out);
        run_apply(ApplyRequest {
            store,
            state: state_loc,
            loaded,
            target,
            env,
            no_rollback: args.no_rollback,
            refresh: args.refresh,
            retries: args.retries,
            lock_wait,
            clock: wall_clock(),
            interrupt,
            observer: Box::new(progress),
        })
        .await
    });
    let report = report.map_err(engine)?;
    print_report(&report, out)?;
    Ok(report.exit_code)
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

/// `fabrik plan SPEC`.
pub fn plan(cli: &Cli, args: &PlanArgs, out: &mut Output) -> Result<i32, Error> {
    let loaded = super::spec::load(&args.spec, out)?;
    let env = Env::load(std::env::vars(), &loaded.default_dotenv()).map_err(engine)?;
    // Planning never writes: secrets that apply would generate (and the
    // fingerprint key) are generated for this plan only.
    let secrets = crate::spec::secrets::resolve_preview(
        &loaded.spec,
        &|k| env.var(k).map(str::to_owned),
        &loaded.default_dotenv(),
    )
    .map_err(|e| {
        engine(EngineError::Config {
            message: crate::error::chain_text(&e),
            hint: e.hint(),
        })
    })?;
    let digests = crate::spec::hash::desired_state(&loaded.spec, &secrets);
    let world = World::from_spec(&loaded.spec, &secrets, digests).map_err(|e| engine(e.into()))?;
    // Planning reads the journal but never creates one.
    let plan = match crate::store::open_existing(&super::state_location(cli)?) {
        Ok(store) => plan_only(store.as_ref(), &world, None).map_err(engine)?,
        Err(crate::store::StoreError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            let store = crate::store::memory::MemoryStore::new();
            plan_only(&store, &world, None).map_err(engine)?
        }
        Err(e) => return Err(e.into()),
    };
    if out.is_json() {
        let mut v = serde_json::to_value(&plan).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".to_owned(), json!("plan"));
        }
        out.json(&v)?;
    } else {
        out.raw(render_plan(&plan).as_bytes())?;
    }
    Ok(if args.detailed_exitcode && !plan.no_changes {
        exit::USAGE
    } else {
        exit::OK
    })
}

fn show(v: &Option<serde_json::Value>) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(serde_json::Value::String(s)) if s.len() > 60 || s.contains('\n') => {
            format!(
                "({} characters, digest {})",
                s.len(),
                crate::id::Digest::of(s.as_bytes()).short()
            )
        }
        Some(v) => v.to_string(),
    }
}

/// The human rendering of a plan.
pub fn render_plan(plan: &Plan) -> String {
    let mut s = format!(
        "plan for {} (desired state {})\n",
        plan.deployment,
        plan.spec_hash.short()
    );
    if plan.no_changes {
        s.push_str("no changes: the deployment matches the spec\n");
        return s;
    }
    for step in &plan.steps {
        let (sign, word) = match step.action {
            StepAction::Create => ('+', "create"),
            StepAction::Update => ('~', "update"),
            StepAction::Delete => ('-', "delete"),
            StepAction::Noop => ('=', "no change"),
        };
        s.push_str(&format!("  {sign} {:<40} {word}", step.key.as_str()));
        if let Some(r) = &step.reason {
            s.push_str(&format!(" ({r})"));
        }
        s.push('\n');
        if step.action == StepAction::Noop {
            continue;
        }
        for c in &step.changes {
            if c.secret {
                let what = match (step.action, c.from.is_none() && c.to.is_none()) {
                    (StepAction::Create, _) => "(secret)",
                    _ => "(secret changed)",
                };
                s.push_str(&format!("      {}: {what}\n", c.path));
            } else if step.action == StepAction::Create {
                s.push_str(&format!("      {}: {}\n", c.path, show(&c.to)));
            } else {
                s.push_str(&format!(
                    "      {}: {} → {}\n",
                    c.path,
                    show(&c.from),
                    show(&c.to)
                ));
            }
        }
    }
    let count = |a: StepAction| plan.steps.iter().filter(|s| s.action == a).count();
    s.push_str(&format!(
        "{} to create, {} to update, {} to delete, {} unchanged\n",
        count(StepAction::Create),
        count(StepAction::Update),
        count(StepAction::Delete),
        count(StepAction::Noop)
    ));
    if !plan.rollback.is_empty() {
        s.push_str("if the run fails, rollback would:\n");
        for r in &plan.rollback {
            let what = match r.action {
                crate::event::Action::Restore => {
                    format!("restore {} to its last applied state", r.resource)
                }
                _ => format!("delete {}", r.resource),
            };
            let line = match r.policy {
                crate::event::Policy::Auto => format!("{what} (automatically)"),
                crate::event::Policy::Manual => {
                    format!("{what} when you run `fabrik rollback` (policy manual)")
                }
                crate::event::Policy::Never => {
                    format!("leave {} as it is (policy never)", r.resource)
                }
            };
            s.push_str(&format!("  {line}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("2").unwrap(), Duration::from_secs(2));
        assert!(duration("soon").is_err());
        assert!(duration("5y").is_err());
    }
}
