//! `fabrik state migrate --to URL`.

use serde_json::json;

use super::{Cli, open_existing, state_location};
use crate::error::{Error, exit};
use crate::output::Output;
use crate::store::StateLocation;
use crate::store::migrate;
use crate::text::count;

/// Copies the journal to another backend, verifying the chain on both
/// sides.
pub fn migrate(cli: &Cli, to: &str, out: &mut Output) -> Result<i32, Error> {
    let from_loc = state_location(cli)?;
    let to_loc = StateLocation::parse(to).map_err(|e| Error::Usage {
        message: format!("--to: {e}"),
        hint: Some(e.hint().to_owned()),
    })?;
    if from_loc == to_loc {
        return Err(Error::usage(
            "the source and the destination are the same journal",
        ));
    }
    // A mistyped path must not leave directories behind: the destination's
    // directory has to exist already.
    if let StateLocation::Sqlite(path) = &to_loc
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        return Err(Error::Usage {
            message: format!(
                "--to {}: the directory {} does not exist",
                path.display(),
                dir.display()
            ),
            hint: Some(format!(
                "create it first (`mkdir -p {}`) or give a path in an existing directory",
                dir.display()
            )),
        });
    }
    let source = open_existing(cli)?;
    let dest = migrate::open_destination(&to_loc)?;
    let mut shown = 0u64;
    let mut progress_out = out.clone();
    let report = migrate::copy(source.as_ref(), dest.as_ref(), |n| {
        if n >= shown + 100_000 {
            shown = n;
            progress_out.diag(&format!("copied {}", count(n, "event")));
        }
    })
    .map_err(|e| Error::Usage {
        message: crate::error::chain_text(&e),
        hint: e.hint().map(str::to_owned),
    })?;
    if out.is_json() {
        out.json(&json!({ "kind": "migrate", "from": from_loc.to_string(), "to": to_loc.to_string(), "report": report }))?;
    } else {
        out.line(&format!(
            "copied {} ({} already there) from {} to {}: chain verified on both sides, {}, {}",
            count(report.copied, "event"),
            report.already_present,
            from_loc,
            to_loc,
            count(report.deployments, "deployment"),
            count(report.runs, "run")
        ))?;
    }
    Ok(exit::OK)
}
