//! `fabrik resume`, `fabrik rollback`, `fabrik destroy` and `fabrik gc`.

use std::io::{BufRead as _, IsTerminal as _};

use serde_json::json;

use super::Cli;
use super::common::{done, engine, registry, request, runtime};
use crate::engine::command::{destroy as destroy_cmd, gc as gc_cmd, resume as resume_cmd};
use crate::engine::command::{load_spec, rollback as rollback_cmd};
use crate::error::{Error, exit};
use crate::output::{Output, table};

/// Whether the run named by `target_arg` (a run id, a deployment name: its
/// latest run, or a spec file: its deployment's latest run) was made
/// against the sandbox. Its resources exist only there, so the commands
/// that finish or undo it use the sandbox without `--sandbox`: the
/// commands Fabrik prints after a failure work exactly as printed.
fn journaled_sandbox(cli: &Cli, target_arg: &str, out: &mut Output) -> bool {
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
            load_spec(path).ok().map(|l| l.spec.name)
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

/// Asks on a terminal; refuses without one (CI must say `--yes`).
fn confirm(question: &str, yes: bool, out: &mut Output) -> Result<bool, Error> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage {
            message: "this changes remote resources and needs confirmation".to_owned(),
            hint: Some("pass --yes to confirm without a terminal".to_owned()),
        });
    }
    out.diag_raw(&format!("{question} [y/N] "));
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES"))
}

/// `fabrik resume RUN|DEPLOYMENT`.
pub fn resume(cli: &Cli, target_arg: &str, sandbox: bool, out: &mut Output) -> Result<i32, Error> {
    let sandbox = sandbox || journaled_sandbox(cli, target_arg, out);
    let rt = runtime()?;
    let req = request(cli, sandbox, out, &rt, None)?;
    done(rt.block_on(resume_cmd::resume(req, target_arg)), out)
}

/// `fabrik rollback RUN|DEPLOYMENT [--dry-run] [--yes]`.
pub fn rollback(
    cli: &Cli,
    target_arg: &str,
    dry_run: bool,
    yes: bool,
    sandbox: bool,
    out: &mut Output,
) -> Result<i32, Error> {
    let store = super::open_existing(cli)?;
    let preview = rollback_cmd::rollback_preview(store.as_ref(), target_arg).map_err(engine)?;
    if dry_run || !out.is_json() {
        if out.is_json() {
            out.json(&json!({ "kind": "rollback_plan", "plan": preview }))?;
        } else {
            out.line(&format!(
                "rollback of run {} ({}): {} step{}",
                preview.run,
                preview.deployment,
                preview.steps.len(),
                if preview.steps.len() == 1 { "" } else { "s" }
            ))?;
            let rows: Vec<Vec<String>> = preview
                .steps
                .iter()
                .map(|s| {
                    vec![
                        s.action.to_string(),
                        s.resource.to_string(),
                        s.kind.to_string(),
                        s.remote_id
                            .clone()
                            .unwrap_or_else(|| "(look up by mark)".to_owned()),
                        s.policy.to_string(),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                out.raw(
                    table(
                        &["ACTION", "RESOURCE", "KIND", "REMOTE ID", "POLICY"],
                        &rows,
                    )
                    .as_bytes(),
                )?;
            }
        }
        if dry_run {
            return Ok(exit::OK);
        }
    }
    if preview.steps.is_empty() {
        out.diag("nothing to roll back");
        return Ok(exit::OK);
    }
    if !confirm(
        &format!(
            "execute these {} steps (manual ones included)?",
            preview.steps.len()
        ),
        yes,
        out,
    )? {
        out.diag("not confirmed; nothing changed");
        return Ok(exit::USAGE);
    }
    drop(store);
    let sandbox = sandbox || journaled_sandbox(cli, preview.run.as_str(), out);
    let rt = runtime()?;
    let req = request(cli, sandbox, out, &rt, None)?;
    done(rt.block_on(rollback_cmd::rollback(req, target_arg)), out)
}

/// `fabrik destroy SPEC|DEPLOYMENT [--yes]`.
pub fn destroy(
    cli: &Cli,
    target_arg: &str,
    yes: bool,
    sandbox: bool,
    out: &mut Output,
) -> Result<i32, Error> {
    if !confirm(
        &format!("delete every remote resource that {target_arg} owns?"),
        yes,
        out,
    )? {
        out.diag("not confirmed; nothing changed");
        return Ok(exit::USAGE);
    }
    let sandbox = sandbox || journaled_sandbox(cli, target_arg, out);
    let rt = runtime()?;
    let req = request(cli, sandbox, out, &rt, None)?;
    done(rt.block_on(destroy_cmd::destroy(req, target_arg)), out)
}

/// `fabrik gc [--delete]`.
pub fn gc(
    cli: &Cli,
    delete: bool,
    sandbox: bool,
    zones: &[String],
    out: &mut Output,
) -> Result<i32, Error> {
    // gc takes no run lock: no lock connection to open beside the journal.
    let store: std::sync::Arc<dyn crate::store::EventStore> =
        std::sync::Arc::from(crate::store::open(&super::state_location(cli)?)?);
    let providers = registry(&super::state_path(cli), sandbox)?;
    let rt = runtime()?;
    let orphans = rt
        .block_on(gc_cmd::gc(
            store.as_ref(),
            &providers,
            &std::env::vars().collect::<Vec<_>>(),
            std::path::Path::new(".env"),
            zones,
            delete,
        ))
        .map_err(engine)?;
    if out.is_json() {
        out.json(&json!({ "kind": "gc", "orphans": orphans }))?;
    } else if orphans.is_empty() {
        out.diag("no orphans: every remote resource marked as Fabrik's belongs to a deployment in this journal");
    } else {
        let rows: Vec<Vec<String>> = orphans
            .iter()
            .map(|o| {
                vec![
                    o.kind.clone(),
                    o.remote_id.clone(),
                    o.name.clone(),
                    o.mark.deployment.to_string(),
                    o.mark.run.to_string(),
                    if o.deleted { "deleted" } else { "found" }.to_owned(),
                ]
            })
            .collect();
        out.raw(
            table(
                &["KIND", "REMOTE ID", "NAME", "DEPLOYMENT", "RUN", "STATE"],
                &rows,
            )
            .as_bytes(),
        )?;
        if !delete {
            out.diag("run `fabrik gc --delete` to delete them");
        }
    }
    Ok(exit::OK)
}
