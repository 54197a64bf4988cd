//! `fabrik apply` and `fabrik plan`.

use serde_json::json;

use super::common::{done, engine, request, runtime};
use super::{ApplyArgs, Cli, PlanArgs};
use crate::engine::EngineError;
use crate::engine::command::apply::{ApplyRequest, apply as run_apply, plan_only};
use crate::engine::desired::World;
use crate::error::{Error, exit};
use crate::output::Output;
use crate::plan::{Plan, StepAction};
use crate::provider::registry::Env;

/// `fabrik apply SPEC`.
pub fn apply(cli: &Cli, args: &ApplyArgs, out: &mut Output) -> Result<i32, Error> {
    let loaded = super::spec::load(&args.spec, out)?;
    let rt = runtime()?;
    let lock_wait = args.lock_timeout.map(|d| d.get());
    let base = request(cli, args.sandbox, out, &rt, lock_wait)?;
    let report = rt.block_on(run_apply(ApplyRequest {
        base,
        loaded,
        no_rollback: args.no_rollback,
        refresh: args.refresh,
        retries: args.retries,
    }));
    done(report, out)
}

/// `fabrik plan SPEC`.
pub fn plan(cli: &Cli, args: &PlanArgs, out: &mut Output) -> Result<i32, Error> {
    let loaded = super::spec::load(&args.spec, out)?;
    let env =
        Env::load(std::env::vars(), &loaded.default_dotenv()).map_err(|e| engine(e.into()))?;
    // Planning never writes: secrets that apply would generate (and the
    // fingerprint key) are generated for this plan only.
    let secrets = crate::spec::secrets::resolve_preview(
        &loaded.spec,
        &|k| env.var(k).map(str::to_owned),
        &loaded.default_dotenv(),
    )
    .map_err(|e| engine(EngineError::Secrets(e)))?;
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
