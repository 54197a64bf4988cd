//! `fabrik doctor SPEC`.

use std::path::Path;

use serde_json::json;

use super::Cli;
use super::common::{engine, request_reading, runtime};
use crate::engine::command::Prepared;
use crate::engine::command::doctor::doctor as run_doctor;
use crate::error::{Error, exit};
use crate::output::Output;

/// `fabrik doctor SPEC [--sandbox]`: exit 0 when everything checked is
/// fine, 1 otherwise (each problem listed with its hint).
pub fn doctor(cli: &Cli, spec: &Path, sandbox: bool, out: &mut Output) -> Result<i32, Error> {
    let loaded = super::spec::load(spec, cli.env.as_deref(), out)?;
    let rt = runtime()?;
    let base = request_reading(cli, sandbox, out, &rt)?;
    // Nothing is written: secrets the spec would generate are made for
    // this check only.
    let prepared = Prepared::preview(loaded, &base.env_vars).map_err(engine)?;
    let checks = rt.block_on(run_doctor(base.connect.as_ref(), &prepared));
    let problems = checks.iter().filter(|c| c.problem.is_some()).count();
    if out.is_json() {
        out.json(&json!({ "kind": "doctor", "checks": checks, "problems": problems }))?;
    } else {
        for c in &checks {
            match &c.problem {
                None => out.line(&format!("ok      {}", c.what))?,
                Some(p) => {
                    out.line(&format!("PROBLEM {}: {p}", c.what))?;
                    if let Some(h) = &c.hint {
                        out.line(&format!("        hint: {h}"))?;
                    }
                }
            }
        }
        out.line(&match problems {
            0 => "everything the spec needs is in place".to_owned(),
            n => crate::text::count(n, "problem"),
        })?;
    }
    Ok(if problems == 0 {
        exit::OK
    } else {
        exit::UNEXPECTED
    })
}
