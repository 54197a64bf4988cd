//! A plan's steps, phase by phase: the kinds that provision (DNS, in
//! parallel), the application and its deployment, verification, the kinds
//! that watch (monitors), then the deletions of what the spec no longer
//! has. Shared by `apply` and `resume` (a resumed run continues from the
//! phase it was interrupted in).

use futures_util::StreamExt as _;

use super::verify;
use crate::engine::desired::World;
use crate::engine::resource::{self, Doomed, Phase};
use crate::engine::run::advance;
use crate::engine::{Ctx, EngineError, with};
use crate::event::RunState;
use crate::plan::{Plan, Step, StepAction};

/// Order of the apply phases, for "already reached" checks.
fn rank(s: RunState) -> u8 {
    match s {
        RunState::Pending => 0,
        RunState::Validating => 1,
        RunState::Provisioning => 2,
        RunState::Deploying => 3,
        RunState::Verifying => 4,
        _ => 5,
    }
}

/// The create and update steps of the kinds in `phase`.
fn changes(plan: &Plan, phase: Phase) -> impl Iterator<Item = &Step> {
    plan.steps
        .iter()
        .filter(move |s| resource::of(s.kind).phase() == phase && s.action != StepAction::Delete)
}

/// Executes a plan. `redeploy`: deploy the application even when the plan
/// leaves it unchanged (a run that changed it without seeing its
/// deployment finish).
pub async fn execute(
    ctx: &Ctx<'_>,
    world: &World,
    plan: &Plan,
    spec: &crate::spec::Spec,
    redeploy: bool,
) -> Result<(), EngineError> {
    let state = with(ctx.journal, |r| r.state());
    // Entering a phase is a step boundary: after Ctrl-C, stop before it.
    let enter = |s: RunState| {
        if rank(state) >= rank(s) {
            return Ok(());
        }
        ctx.check_interrupt()?;
        advance(ctx.journal, s)
    };
    enter(RunState::Provisioning)?;
    let results: Vec<Result<(), EngineError>> =
        futures_util::stream::iter(changes(plan, Phase::Provisioning))
            .map(|s| resource::of(s.kind).converge(ctx, world, s, redeploy))
            .buffer_unordered(ctx.remote.pace.dns_concurrency.max(1))
            .collect()
            .await;
    for r in results {
        r?;
    }

    enter(RunState::Deploying)?;
    for s in changes(plan, Phase::Deploying) {
        resource::of(s.kind)
            .converge(ctx, world, s, redeploy)
            .await?;
    }

    enter(RunState::Verifying)?;
    verify::verify(ctx, spec).await?;
    for s in changes(plan, Phase::Watching) {
        resource::of(s.kind)
            .converge(ctx, world, s, redeploy)
            .await?;
    }
    // Resources the spec no longer has, now that the new state is verified.
    let view = ctx.view();
    for s in plan.steps.iter().filter(|s| s.action == StepAction::Delete) {
        let doomed = Doomed {
            key: &s.key,
            view: view.resources.get(&s.key),
            remote_id: s.remote_id.as_deref(),
            owner: None,
        };
        resource::of(s.kind).delete(ctx, world, doomed).await?;
    }
    Ok(())
}
