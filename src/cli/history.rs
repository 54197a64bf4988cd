//! `fabrik history DEPLOYMENT`.

use serde_json::json;

use super::column::Columns;
use super::{Cli, deployment_arg, open_existing};
use crate::error::Error;
use crate::output::{Output, Style, styled_table};

/// Lists a deployment's runs, oldest first; for a name whose deployment
/// has environments (and no `NAME@ENV` given), those of each environment.
pub fn run(cli: &Cli, deployment: &str, out: &mut Output) -> Result<i32, Error> {
    let id = deployment_arg(deployment)?;
    let store = open_existing(cli)?;
    if id.environment().is_none() && store.runs(&id)?.is_empty() {
        let environments: Vec<_> = store
            .deployments()?
            .into_iter()
            .filter(|d| d.base() == id.as_str() && d.environment().is_some())
            .collect();
        if !environments.is_empty() {
            if out.is_json() {
                let mut docs = Vec::new();
                for d in &environments {
                    docs.push(json!({ "deployment": d, "runs": store.runs(d)? }));
                }
                out.json(&json!({ "deployment": id, "environments": docs }))?;
                return Ok(0);
            }
            for (i, d) in environments.iter().enumerate() {
                if i > 0 {
                    out.line("")?;
                }
                out.line(&format!("{d}:"))?;
                run(cli, d.as_str(), out)?;
            }
            return Ok(0);
        }
    }
    let runs = store.runs(&id)?;
    if runs.is_empty() {
        return Err(Error::Usage {
            message: format!("no deployment named {id} in the journal"),
            hint: Some("`fabrik status` lists the deployments".to_owned()),
        });
    }
    if out.is_json() {
        out.json(&json!({ "deployment": id, "runs": runs }))?;
        return Ok(0);
    }
    let columns = Columns::new(
        cli.wide,
        jiff::Timestamp::now(),
        runs.iter().map(|r| &r.run),
    );
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                columns.run(&r.run),
                r.command.to_string(),
                columns.time(&r.started_at),
                r.state.to_string(),
                r.outcome.map_or_else(
                    || {
                        if r.interrupted.is_some() {
                            "interrupted".to_owned()
                        } else {
                            "-".to_owned()
                        }
                    },
                    |o| o.to_string(),
                ),
                r.exit_code.map_or("-".to_owned(), |c| c.to_string()),
                format!(
                    "{} created, {} updated, {} deleted",
                    r.created.len(),
                    r.updated.len(),
                    r.deleted.len()
                ),
            ]
        })
        .collect();
    out.styled(&styled_table(
        &[
            "RUN", "COMMAND", "STARTED", "STATE", "OUTCOME", "EXIT", "CHANGES",
        ],
        &rows,
        |column, text| match column {
            3 | 4 => Style::of_state(text),
            _ => None,
        },
    ))?;
    // Where each promoted release was verified.
    for r in &runs {
        if let Some(p) = &r.options.promoted_from {
            out.line(&format!("run {}: {p}", r.run))?;
        }
    }
    Ok(0)
}
