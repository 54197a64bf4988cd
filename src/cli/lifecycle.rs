//! `fabrik resume`, `fabrik rollback`, `fabrik destroy` and `fabrik gc`.

use serde_json::json;

use super::Cli;
use super::common::{confirm, done, engine, journaled_sandbox, registry, request, runtime};
use crate::engine::command::rollback as rollback_cmd;
use crate::engine::command::{destroy as destroy_cmd, gc as gc_cmd, resume as resume_cmd};
use crate::error::{Error, exit};
use crate::output::{Output, Styled, table};

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
    // With `--output json` the plan is printed when it is all there is
    // to say: a dry run, or nothing to roll back.
    if dry_run || !out.is_json() || preview.steps.is_empty() {
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
        if !out.is_json() {
            out.diag("nothing to roll back");
        }
        return Ok(exit::OK);
    }
    if !confirm(
        &format!(
            "execute {} (manual ones included)?",
            if preview.steps.len() == 1 {
                "this step".to_owned()
            } else {
                format!("these {} steps", preview.steps.len())
            }
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

/// `fabrik rollback NAME --to RUN [--dry-run] [--yes]`: back to an
/// earlier release.
pub fn rollback_to(
    cli: &Cli,
    deployment: &str,
    to: &str,
    dry_run: bool,
    yes: bool,
    sandbox: bool,
    out: &mut Output,
) -> Result<i32, Error> {
    use crate::engine::command::apply::{How, carry_out};
    use crate::engine::command::plan as plan_cmd;
    use crate::engine::command::release::release;
    let sandbox = sandbox || journaled_sandbox(cli, to, out);
    let rt = runtime()?;
    let base = request(cli, sandbox, out, &rt, None)?;
    let found = release(base.store.as_ref(), deployment, to, &base.env_vars).map_err(engine)?;
    let run = found.run.run.clone();
    out.diag(&format!(
        "back to release {run} of {deployment} (applied {})",
        found.run.started_at
    ));
    for name in &found.changed_secrets {
        out.diag(&format!(
            "note: {name} is rebuilt with today's secret values, which differ from that release's"
        ));
    }
    let planned = rt
        .block_on(plan_cmd::plan(&base, &found.prepared, true))
        .map_err(engine)?;
    super::apply::preview(&planned.plan, out)?;
    if dry_run {
        return Ok(exit::OK);
    }
    if !planned.plan.no_changes
        && !confirm(&format!("restore release {run} of {deployment}?"), yes, out)?
    {
        out.diag("not confirmed; nothing changed");
        return Ok(exit::USAGE);
    }
    let spec = found.prepared.loaded.path.display().to_string();
    let how = How {
        refresh: true,
        approved: Some(planned.approved()),
        release: Some(run.clone()),
        ..How::default()
    };
    let report = rt
        .block_on(carry_out(base, found.prepared, how))
        .map(|mut r| {
            if r.exit_code == exit::OK {
                r.message = format!("{} (release {run})", r.message);
                r.next.push(format!(
                    "{spec} still describes the later release: `fabrik apply {spec}` brings it back"
                ));
            }
            r
        });
    done(report, out)
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
    yes: bool,
    sandbox: bool,
    zones: &[String],
    out: &mut Output,
) -> Result<i32, Error> {
    // gc takes no run lock: no lock connection to open beside the journal.
    let store: std::sync::Arc<dyn crate::store::EventStore> =
        std::sync::Arc::from(crate::store::open(&super::state_location(cli)?)?);
    let providers = registry(cli, sandbox)?;
    let rt = runtime()?;
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let find = |chosen: Option<&std::collections::BTreeSet<String>>| {
        rt.block_on(gc_cmd::gc(
            store.as_ref(),
            &providers,
            &vars,
            std::path::Path::new(".env"),
            zones,
            chosen,
        ))
        .map_err(engine)
    };
    let mut orphans = find(None)?;
    if delete && !orphans.is_empty() {
        if !out.is_json() {
            out.diag_styled(Styled::new().push(orphan_table(&orphans, cli.wide)));
        }
        let question = format!(
            "delete these {} remote resource{}?",
            orphans.len(),
            if orphans.len() == 1 { "" } else { "s" }
        );
        if !confirm(&question, yes, out)? {
            out.diag("not confirmed; nothing deleted");
            return Ok(exit::USAGE);
        }
        let chosen = orphans.iter().map(|o| o.remote_id.clone()).collect();
        orphans = find(Some(&chosen))?;
    }
    if out.is_json() {
        out.json(&json!({ "kind": "gc", "orphans": orphans }))?;
    } else if orphans.is_empty() {
        out.diag("no orphans: every remote resource marked as Fabrik's belongs to a deployment in this journal");
    } else {
        out.raw(orphan_table(&orphans, cli.wide).as_bytes())?;
        if !delete {
            out.diag("run `fabrik gc --delete` to delete them (it asks first)");
        }
    }
    Ok(exit::OK)
}

/// Orphans as a table: what, where, whose, how old.
fn orphan_table(orphans: &[gc_cmd::Orphan], wide: bool) -> String {
    let columns = super::column::Columns::new(
        wide,
        jiff::Timestamp::now(),
        orphans.iter().map(|o| &o.mark.run),
    );
    let rows: Vec<Vec<String>> = orphans
        .iter()
        .map(|o| {
            vec![
                o.kind.clone(),
                o.remote_id.clone(),
                o.name.clone(),
                o.mark.deployment.to_string(),
                o.mark
                    .journal
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
                columns.run(&o.mark.run),
                o.mark
                    .run
                    .timestamp()
                    .map_or_else(|| "?".to_owned(), |t| columns.at(t)),
                if o.deleted { "deleted" } else { "found" }.to_owned(),
            ]
        })
        .collect();
    table(
        &[
            "KIND",
            "REMOTE ID",
            "NAME",
            "DEPLOYMENT",
            "JOURNAL",
            "RUN",
            "CREATED",
            "STATE",
        ],
        &rows,
    )
}
