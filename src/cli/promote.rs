//! `fabrik promote NAME --from ENV --to ENV`.

use super::Cli;
use super::common::{confirm, done, engine, journaled_sandbox, request, runtime};
use crate::engine::EngineError;
use crate::engine::command::apply::{How, carry_out, refusals};
use crate::engine::command::plan as plan_cmd;
use crate::engine::command::promote::promotion;
use crate::error::{Error, exit};
use crate::output::Output;

/// Deploys to `to` the image `from` verified last, after showing the plan
/// and asking (unless `yes`).
pub fn promote(
    cli: &Cli,
    name: &str,
    from: &str,
    to: &str,
    yes: bool,
    sandbox: bool,
    out: &mut Output,
) -> Result<i32, Error> {
    // Why a promotion is refused is a matter of what was verified where:
    // told as a usage error (exit 2), before anything is written.
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let found = promotion(super::open_existing(cli)?.as_ref(), name, from, to, &vars).map_err(
        |e| match e {
            EngineError::Refused { message, hint } => Error::Usage {
                message,
                hint: Some(hint),
            },
            e => engine(e),
        },
    )?;
    let source = found.promotion.deployment.to_string();
    let sandbox = sandbox || journaled_sandbox(cli, &source, out);
    let rt = runtime()?;
    let base = request(cli, sandbox, out, &rt, None)?;
    refusals(&base, &found.prepared.loaded, false, &[]).map_err(engine)?;
    let p = &found.promotion;
    out.diag(&format!(
        "promoting {} to {}: {} as run {} of {} verified it ({})",
        name, found.prepared.world.deployment, found.image, p.run, p.deployment, p.digest
    ));
    let planned = rt
        .block_on(plan_cmd::plan(&base, &found.prepared, true))
        .map_err(engine)?;
    super::apply::preview(&planned.plan, out)?;
    if !planned.plan.no_changes
        && !confirm(
            &format!(
                "deploy to {} what {} verified?",
                found.prepared.world.deployment, p.deployment
            ),
            yes,
            out,
        )?
    {
        out.diag("not confirmed; nothing changed");
        return Ok(exit::USAGE);
    }
    let spec = found.prepared.loaded.path.display().to_string();
    let how = How {
        refresh: true,
        approved: Some(planned.approved()),
        promotion: Some(p.clone()),
        ..How::default()
    };
    let promoted = p.to_string();
    let report = rt
        .block_on(carry_out(base, found.prepared, how))
        .map(|mut r| {
            if r.exit_code == exit::OK {
                r.message = format!("{} ({promoted})", r.message);
                r.next.push(format!(
                    "{spec} still names the tag: `fabrik -e {to} apply {spec}` deploys what the tag names then",
                ));
            }
            r
        });
    done(report, out)
}
