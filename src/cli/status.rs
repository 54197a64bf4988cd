//! `fabrik status [DEPLOYMENT]`.

use serde_json::json;

use super::column::Columns;
use super::{Cli, deployment_arg, open_existing};
use crate::error::Error;
use crate::output::{Output, Style, styled_table, table};
use crate::projection::{DeploymentView, ResourceStatus, RunView};

/// Shows all deployments, or one deployment in detail.
pub fn run(cli: &Cli, deployment: Option<&str>, out: &mut Output) -> Result<i32, Error> {
    let store = open_existing(cli)?;
    // A name without an environment, of a deployment that has
    // environments: every environment of it, side by side.
    let environments = match deployment {
        Some(name) if !name.contains('@') => {
            let id = deployment_arg(name)?;
            if store.deployment(&id)?.is_some() {
                Vec::new()
            } else {
                let ids = store.deployments()?;
                ids.into_iter()
                    .filter(|d| d.base() == id.as_str() && d.environment().is_some())
                    .collect()
            }
        }
        _ => Vec::new(),
    };
    let deployment = deployment.filter(|_| environments.is_empty());
    match deployment {
        Some(name) => {
            let id = deployment_arg(name)?;
            let view = store.deployment(&id)?.ok_or_else(|| Error::Usage {
                message: format!("no deployment named {id} in the journal"),
                hint: Some("`fabrik status` lists the deployments".to_owned()),
            })?;
            let latest = match &view.latest_run {
                Some(r) => store.run(r)?,
                None => None,
            };
            if out.is_json() {
                out.json(&json!({ "deployment": view, "latest_run": latest }))?;
            } else {
                let columns = columns_of(cli.wide, &view);
                out.raw(render_deployment(&view, latest.as_ref(), &columns).as_bytes())?;
            }
        }
        None => {
            let mut found = Vec::new();
            // Every environment of one name: what each runs and who ran it.
            let side_by_side = !environments.is_empty();
            let ids = if environments.is_empty() {
                store.deployments()?
            } else {
                environments
            };
            for id in ids {
                let Some(view) = store.deployment(&id)? else {
                    continue;
                };
                let latest = match &view.latest_run {
                    Some(r) => store.run(r)?,
                    None => None,
                };
                found.push((view, latest));
            }
            let columns = Columns::new(
                cli.wide,
                jiff::Timestamp::now(),
                found.iter().filter_map(|(_, r)| r.as_ref().map(|r| &r.run)),
            );
            let rows: Vec<_> = found
                .iter()
                .map(|(view, latest)| summary_row(view, latest.as_ref(), &columns, side_by_side))
                .collect();
            let header: &[&str] = if side_by_side {
                &[
                    "DEPLOYMENT",
                    "STATE",
                    "RELEASE",
                    "LAST RUN",
                    "BY",
                    "UPDATED",
                ]
            } else {
                &["DEPLOYMENT", "STATE", "RESOURCES", "LAST RUN", "UPDATED"]
            };
            let docs: Vec<_> = found
                .iter()
                .map(|(view, latest)| json!({ "deployment": view, "latest_run": latest }))
                .collect();
            if out.is_json() {
                out.json(&json!({ "deployments": docs }))?;
            } else if rows.is_empty() {
                out.diag("no deployments in the journal yet");
            } else {
                out.styled(&styled_table(header, &rows, |column, text| {
                    if column == 1 { state_style(text) } else { None }
                }))?;
            }
        }
    }
    // Shown after what the journal holds, which may help, but not as if
    // nothing were wrong.
    if let Some(gone) = super::replay::history_gone(cli, store.as_ref())? {
        out.diag(&format!("error: {gone}"));
        return Ok(crate::exit::INTEGRITY);
    }
    Ok(0)
}

/// A deployment's row: with `release`, what it runs and who ran its last
/// run (every environment of one name, side by side) instead of how many
/// resources it has.
fn summary_row(
    view: &DeploymentView,
    latest: Option<&RunView>,
    columns: &Columns,
    release: bool,
) -> Vec<String> {
    let dash = || "-".to_owned();
    let mut row = vec![view.deployment.to_string(), state_text(view, latest)];
    row.push(if release {
        deployed_source(view).unwrap_or_else(dash)
    } else {
        view.live_resources().len().to_string()
    });
    row.push(latest.map_or_else(dash, |r| format!("{} {}", r.command, columns.run(&r.run))));
    if release {
        row.push(latest.map_or_else(dash, |r| r.user.clone()));
    }
    row.push(latest.map_or_else(dash, |r| columns.time(&r.last_event_at)));
    row
}

/// How the view of one deployment shows run ids and times: cut so that
/// the runs it names (its latest, the lock's, the resources' owners) stay
/// apart.
pub(super) fn columns_of(wide: bool, view: &DeploymentView) -> Columns {
    let runs = view
        .latest_run
        .iter()
        .chain(view.lock.iter().map(|h| &h.run))
        .chain(view.resources.values().filter_map(|r| r.owner_run.as_ref()));
    Columns::new(wide, jiff::Timestamp::now(), runs)
}

/// The colour of a state cell (`COMPLETE (succeeded)`, `FAILED
/// (needs_attention)`): the outcome's, else the state's.
pub(super) fn state_style(text: &str) -> Option<Style> {
    let mut words = text.split([' ', '(', ')']).filter(|w| !w.is_empty());
    let state = words.next()?;
    words
        .next()
        .and_then(Style::of_state)
        .or_else(|| Style::of_state(state))
}

fn state_text(view: &DeploymentView, latest: Option<&RunView>) -> String {
    match latest {
        Some(r) if r.interrupted.is_some() => format!("{} (interrupted)", r.state),
        Some(r) if r.is_open() && view.lock.is_none() => format!("{} (unfinished)", r.state),
        Some(r) => match r.outcome {
            Some(o) => format!("{} ({o})", r.state),
            None => r.state.to_string(),
        },
        None => "-".to_owned(),
    }
}

/// The human rendering of one deployment.
pub(super) fn render_deployment(
    view: &DeploymentView,
    latest: Option<&RunView>,
    columns: &Columns,
) -> String {
    let mut s = String::new();
    s.push_str(&format!("deployment  {}\n", view.deployment));
    s.push_str(&format!("state       {}\n", state_text(view, latest)));
    if let Some(r) = latest {
        s.push_str(&format!(
            "last run    {} {} by {}@{}, started {}",
            columns.run(&r.run),
            r.command,
            r.user,
            r.host,
            columns.time(&r.started_at)
        ));
        if let Some(f) = &r.finished_at {
            s.push_str(&format!(", finished {}", columns.time(f)));
        }
        s.push('\n');
        if let Some(e) = &r.last_error
            && r.outcome != Some(crate::event::RunOutcome::Succeeded)
        {
            s.push_str(&format!("last error  {e}\n"));
        }
        if let Some(i) = &r.image {
            let digest = i
                .digest
                .as_ref()
                .map_or_else(|| "digest unknown".to_owned(), ToString::to_string);
            s.push_str(&format!("image       {} ({digest})\n", i.image));
        }
        if let Some(p) = &r.options.promoted_from {
            s.push_str(&format!("release     {p}\n"));
        }
    }
    if let Some(source) = deployed_source(view) {
        s.push_str(&format!("deployed    {source}\n"));
    }
    if let Some(h) = &view.desired_hash {
        s.push_str(&format!("desired     {}\n", h.short()));
    }
    match &view.lock {
        Some(h) => s.push_str(&format!("lock        held by {}\n", columns.holder(h))),
        None => s.push_str("lock        free\n"),
    }
    let rows: Vec<Vec<String>> = view
        .resources
        .values()
        .filter(|r| r.status != ResourceStatus::Deleted)
        .map(|r| {
            vec![
                r.kind.to_string(),
                r.key.to_string(),
                status_text(r.status),
                r.remote_id.clone().unwrap_or_else(|| "-".to_owned()),
                r.owner_run
                    .as_ref()
                    .map_or("-".to_owned(), |o| columns.run(o)),
            ]
        })
        .collect();
    if rows.is_empty() {
        s.push_str("resources   none\n");
    } else {
        s.push_str(&format!("resources   {}\n", rows.len()));
        for line in table(&["KIND", "KEY", "STATUS", "REMOTE ID", "OWNER RUN"], &rows).lines() {
            s.push_str("  ");
            s.push_str(line);
            s.push('\n');
        }
    }
    s
}

/// What the application runs as of the last run that completed (image
/// and tag, or repository, branch and commit), from the state the journal
/// keeps of it.
fn deployed_source(view: &DeploymentView) -> Option<String> {
    let app = view
        .resources
        .values()
        .find(|r| r.key.as_str() == crate::engine::desired::APP_KEY)
        .filter(|r| r.status == ResourceStatus::Present)?;
    let desired = app.committed.as_ref()?.desired.as_ref()?;
    let source = desired.get("source")?;
    // A state this version cannot read is said, not skipped.
    Some(
        match serde_json::from_value::<crate::engine::resource::app::state::SourceState>(
            source.clone(),
        ) {
            Ok(source) => source.describe(),
            Err(e) => format!("(the journaled source of app cannot be read: {e})"),
        },
    )
}

fn status_text(s: ResourceStatus) -> String {
    match s {
        ResourceStatus::Pending => "pending",
        ResourceStatus::Present => "present",
        ResourceStatus::Absent => "absent",
        ResourceStatus::Deleted => "deleted",
    }
    .to_owned()
}
