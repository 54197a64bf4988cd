//! `fabrik apply` and `fabrik plan`.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::common::{ask, done, engine, journaled_sandbox, request, request_reading, runtime};
use super::{ApplyArgs, Cli, PlanArgs};
use crate::engine::command::Prepared;
use crate::engine::command::apply::{ApplyRequest, apply as run_apply};
use crate::engine::command::plan::{self as plan_cmd, Approved, SavedPlan};
use crate::error::{Error, exit};
use crate::output::{Output, Style, Styled};
use crate::plan::{Plan, StepAction};

/// A saved plan at `path`, if that is what it is (not a spec).
fn saved_plan(path: &Path) -> Result<Option<SavedPlan>, Error> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    match SavedPlan::parse(&text) {
        None => Ok(None),
        Some(Ok(saved)) => Ok(Some(saved)),
        Some(Err(e)) => Err(Error::Usage {
            message: format!("{} is not a plan this fabrik can read: {e}", path.display()),
            hint: Some("make it again with `fabrik plan SPEC -o FILE`".to_owned()),
        }),
    }
}

/// The spec `path` names: itself, or the spec of the plan saved in it.
pub(super) fn spec_behind(path: &Path) -> PathBuf {
    match saved_plan(path) {
        Ok(Some(saved)) => PathBuf::from(saved.spec),
        _ => path.to_owned(),
    }
}

/// `fabrik apply SPEC|PLAN`.
pub fn apply(cli: &Cli, args: &ApplyArgs, out: &mut Output) -> Result<i32, Error> {
    let (spec, mut approved, environment): (PathBuf, Option<Approved>, Option<String>) =
        match saved_plan(&args.spec)? {
            Some(saved) => {
                out.diag(&format!(
                    "applying the plan saved in {} for {}",
                    args.spec.display(),
                    saved.deployment
                ));
                // The plan's environment, whatever --env says.
                let environment = saved.deployment.environment().map(str::to_owned);
                (PathBuf::from(saved.spec), Some(saved.approved), environment)
            }
            None => (args.spec.clone(), None, cli.env.clone()),
        };
    let loaded = super::spec::load(&spec, environment.as_deref(), out)?;
    // Every missing credential at once, before anything is created. An
    // offline apply (`--refresh=false`) may need no provider at all; when
    // it does, its preflight names every missing one the same way.
    if args.refresh {
        check_credentials(cli, &loaded, args.sandbox)?;
    }
    let rt = runtime()?;
    let lock_wait = args.lock_timeout.map(|d| d.get());
    if approved.is_none() && !args.yes {
        // A person reviews the plan first: refreshed, shown, confirmed.
        refuse_unattended("apply")?;
        let base = request(cli, args.sandbox, out, &rt, lock_wait)?;
        crate::engine::command::apply::refusals(&base, &loaded, args.take_over, &args.rotate)
            .map_err(engine)?;
        let prepared = Prepared::new(loaded.clone(), &base.env_vars).map_err(engine)?;
        let planned = rt
            .block_on(plan_cmd::plan(&base, &prepared, args.refresh))
            .map_err(engine)?;
        preview(&planned.plan, out)?;
        if !planned.plan.no_changes
            && !ask(
                &format!("apply these changes to {}?", planned.plan.deployment),
                out,
            )
        {
            out.diag("not applied; nothing changed");
            return Ok(exit::USAGE);
        }
        approved = Some(planned.approved());
    }
    let base = request(cli, args.sandbox, out, &rt, lock_wait)?;
    let report = rt.block_on(run_apply(ApplyRequest {
        base,
        loaded,
        no_rollback: args.no_rollback,
        refresh: args.refresh,
        retries: args.retries,
        approved,
        redeploy: args.redeploy,
        take_over: args.take_over,
        rotate: args.rotate.clone(),
    }));
    done(report, out)
}

/// `fabrik redeploy DEPLOYMENT|SPEC`: `apply --redeploy` of the spec the
/// deployment was last applied from.
pub fn redeploy(
    cli: &Cli,
    target: &str,
    sandbox: bool,
    yes: bool,
    out: &mut Output,
) -> Result<i32, Error> {
    let spec = if Path::new(target).is_file() {
        PathBuf::from(target)
    } else {
        let store = super::open_existing(cli)?;
        let run = crate::engine::command::find_run(
            store.as_ref(),
            target,
            |r| r.command == crate::event::RunCommand::Apply && r.spec_path.is_some(),
            "apply with a spec",
        )
        .map_err(engine)?;
        let spec = PathBuf::from(run.spec_path.clone().unwrap_or_default());
        // A run id of another environment than --env's (or than none).
        if run.deployment.environment() != cli.env.as_deref() {
            let env = run.deployment.environment().unwrap_or("(none)");
            return Err(Error::Usage {
                message: format!(
                    "run {} is of deployment {}, in environment {env}",
                    run.run, run.deployment
                ),
                hint: Some(format!("`fabrik redeploy {}`", run.deployment)),
            });
        }
        // The file may name another deployment now (a rename): redeploying
        // it would apply that one.
        let now = crate::engine::command::load_spec(&spec, run.deployment.environment())
            .map_err(engine)?;
        if now.spec.name != run.deployment {
            return Err(Error::Usage {
                message: format!(
                    "{} now names deployment {}, not {}",
                    spec.display(),
                    now.spec.name,
                    run.deployment
                ),
                hint: Some(format!(
                    "apply the spec for {}, or `fabrik destroy {}` if it was renamed",
                    now.spec.name, run.deployment
                )),
            });
        }
        spec
    };
    let sandbox = sandbox || journaled_sandbox(cli, target, out);
    let args = ApplyArgs {
        spec,
        no_rollback: false,
        lock_timeout: None,
        sandbox,
        yes,
        refresh: true,
        retries: None,
        take_over: false,
        rotate: Vec::new(),
        redeploy: true,
    };
    apply(cli, &args, out)
}

/// Refuses a run of the real services that lacks credentials, naming every
/// one of them, before anything (journal, `.env`) is created.
fn check_credentials(cli: &Cli, loaded: &crate::spec::Loaded, sandbox: bool) -> Result<(), Error> {
    use crate::provider::registry::{Env, Need};
    let env =
        Env::load(std::env::vars(), &loaded.default_dotenv()).map_err(|e| engine(e.into()))?;
    let need = |yes: bool| if yes { Need::Required } else { Need::No };
    super::common::registry(cli, sandbox)?
        .check(
            &env,
            need(loaded.spec.dns.is_some()),
            need(!loaded.spec.monitors.is_empty()),
        )
        .map_err(|e| engine(e.into()))
}

/// Without a terminal to ask on, a command that changes remote resources
/// goes ahead only with `--yes`.
fn refuse_unattended(command: &str) -> Result<(), Error> {
    if super::common::interactive() {
        return Ok(());
    }
    Err(Error::Usage {
        message: format!(
            "`fabrik {command}` changes remote resources and asks first, but there is no terminal to ask on"
        ),
        hint: Some(
            "pass --yes (-y) to apply without asking (as CI does), or review a saved plan: `fabrik plan SPEC -o plan.json`, then `fabrik apply plan.json`".to_owned(),
        ),
    })
}

/// `fabrik plan SPEC`.
pub fn plan(cli: &Cli, args: &PlanArgs, out: &mut Output) -> Result<i32, Error> {
    let loaded = super::spec::load(&args.spec, cli.env.as_deref(), out)?;
    let spec_arg = args.spec.display().to_string();
    let sandbox = args.sandbox || journaled_sandbox(cli, &spec_arg, out);
    let rt = runtime()?;
    // Planning never writes: not the journal, and not the secrets apply
    // would generate (and the fingerprint key), made for this plan only.
    let base = request_reading(cli, sandbox, out, &rt)?;
    let prepared = Prepared::preview(loaded, &base.env_vars).map_err(engine)?;
    let planned = rt
        .block_on(plan_cmd::plan(&base, &prepared, args.refresh))
        .map_err(engine)?;
    if !planned.known && !out.is_json() {
        out.diag(&format!(
            "no journal of {} in {}: planned as a new deployment",
            planned.plan.deployment,
            super::state_location(cli)?
        ));
    }
    if let Some(file) = &args.output_file {
        let spec = crate::engine::command::spec_path_text(&prepared.loaded.path);
        let saved = SavedPlan::new(spec, &planned);
        let text = serde_json::to_string_pretty(&saved).unwrap_or_default();
        std::fs::write(file, text + "\n").map_err(|source| Error::Io {
            action: "cannot write",
            path: file.clone(),
            source,
        })?;
        out.diag(&format!(
            "plan saved in {}: `fabrik apply {}` carries out exactly this plan",
            file.display(),
            file.display()
        ));
    }
    let plan = &planned.plan;
    if out.is_json() {
        out.json(&plan_json(plan))?;
    } else {
        out.styled(&render_plan(plan))?;
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

/// A plan as the JSON document `plan --output json` prints (`"kind":
/// "plan"`).
fn plan_json(plan: &Plan) -> serde_json::Value {
    let mut v = serde_json::to_value(plan).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("kind".to_owned(), json!("plan"));
    }
    v
}

/// A plan shown before it is carried out (or instead of it, in a dry
/// run): for people on stderr, with `--output json` as the `plan`
/// document on stdout.
pub(super) fn preview(plan: &Plan, out: &mut Output) -> Result<(), Error> {
    if out.is_json() {
        out.json(&plan_json(plan))
    } else {
        out.diag_styled(&render_plan(plan));
        Ok(())
    }
}

/// The human rendering of a plan: creates (`+`) green, updates (`~`)
/// yellow, deletions (`-`) red and drift (`!`) magenta, on a terminal.
pub fn render_plan(plan: &Plan) -> Styled {
    let mut s = Styled::new();
    s.push(format!(
        "plan for {} (desired state {})\n",
        plan.deployment,
        plan.spec_hash.short()
    ));
    if plan.no_changes {
        s.push("no changes: the deployment matches the spec\n");
        return s;
    }
    for step in &plan.steps {
        let (sign, word, style) = match step.action {
            StepAction::Create => ('+', "create", Style::Create),
            StepAction::Update => ('~', "update", Style::Update),
            StepAction::Delete => ('-', "delete", Style::Delete),
            StepAction::Noop => ('=', "no change", Style::Quiet),
        };
        s.push("  ");
        s.push_styled(
            Some(style),
            format!("{sign} {:<40} {word}", step.key.as_str()),
        );
        if let Some(r) = &step.reason {
            s.push(format!(" ({r})"));
        }
        s.push("\n");
        if step.action == StepAction::Noop {
            continue;
        }
        for d in &step.drift {
            s.push("    ");
            s.push_styled(
                Some(Style::Drift),
                format!(
                    "! {}: {} in the journal, {} remotely",
                    d.field,
                    show(&d.journal),
                    show(&d.remote)
                ),
            );
            s.push("\n");
        }
        for c in &step.changes {
            if c.secret {
                let what = match (step.action, c.from.is_none() && c.to.is_none()) {
                    (StepAction::Create, _) => "(secret)",
                    _ => "(secret changed)",
                };
                s.push(format!("      {}: {what}\n", c.path));
            } else if step.action == StepAction::Create {
                s.push(format!("      {}: {}\n", c.path, show(&c.to)));
            } else {
                s.push(format!(
                    "      {}: {} → {}\n",
                    c.path,
                    show(&c.from),
                    show(&c.to)
                ));
            }
        }
    }
    let count = |a: StepAction| plan.steps.iter().filter(|s| s.action == a).count();
    s.push(format!(
        "{} to create, {} to update, ",
        count(StepAction::Create),
        count(StepAction::Update)
    ));
    let deletes = count(StepAction::Delete);
    s.push_styled(
        (deletes > 0).then_some(Style::Delete),
        format!("{deletes} to delete"),
    );
    s.push(format!(", {} unchanged\n", count(StepAction::Noop)));
    if !plan.rollback.is_empty() {
        s.push("if the run fails, rollback would:\n");
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
            s.push(format!("  {line}\n"));
        }
    }
    s
}
