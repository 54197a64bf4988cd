//! A plan's steps, phase by phase: the kinds that provision (DNS, in
//! parallel) beside the application's create or update, the application's
//! deployment, verification, the kinds that watch (monitors), then the
//! deletions of what the spec no longer has. Shared by `apply` and `resume` (a resumed run continues from the
//! phase it was interrupted in).
//!
//! DNS deletes that a name's new records depend on are made with the
//! provisioning: a record whose type clashes with a new one at its name
//! (A or AAAA ↔ CNAME: Cloudflare refuses them side by side, 81053/81054)
//! is deleted first; a content that leaves a set whose other contents stay
//! is deleted right after the new contents are made, so the name never
//! answers the old and the new server through the deployment. Each is
//! undone by the rollback, which makes the record again.

use futures_util::StreamExt as _;

use super::verify;
use crate::engine::desired::World;
use crate::engine::resource::dns::RecordState;
use crate::engine::resource::{self, Doomed, Phase, app};
use crate::engine::run::advance;
use crate::engine::{Ctx, EngineError, with};
use crate::event::ResourceKind;
use crate::event::RunState;
use crate::plan::{Plan, Step, StepAction};
use crate::projection::DeploymentView;

/// When a delete of the plan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// Before the provisioning's creates: its type clashes with a new
    /// record at its name.
    First,
    /// After the provisioning's creates: its set keeps other contents.
    WithSet,
    /// After verification.
    Last,
}

fn when(world: &World, view: &DeploymentView, step: &Step) -> When {
    if step.kind != ResourceKind::DnsRecord {
        return When::Last;
    }
    let Some(gone) = view
        .resources
        .get(&step.key)
        .and_then(|r| resource::decode::<RecordState>(r).ok().flatten())
    else {
        return When::Last;
    };
    let (kind, name) = (gone.record_type(), gone.identity().1);
    let at_name: Vec<_> = world
        .records
        .iter()
        .filter(|w| w.state.identity().1 == name)
        .map(|w| w.desired.kind)
        .collect();
    use crate::provider::RecordType as T;
    let clash = |a: T, b: T| {
        a != b
            && matches!(
                (a, b),
                (T::Cname, T::A | T::Aaaa) | (T::A | T::Aaaa, T::Cname)
            )
    };
    if at_name.iter().any(|k| clash(*k, kind)) {
        When::First
    } else if at_name.contains(&kind) {
        When::WithSet
    } else {
        When::Last
    }
}

async fn delete_steps(
    ctx: &Ctx<'_>,
    world: &World,
    plan: &Plan,
    view: &DeploymentView,
    at: When,
) -> Result<(), EngineError> {
    let doomed = plan
        .steps
        .iter()
        // The last round takes every delete left (those of an earlier
        // phase a resumed run did not redo are there too).
        .filter(|s| {
            s.action == StepAction::Delete && (at == When::Last || when(world, view, s) == at)
        });
    // Independent of each other: side by side, the first failure in plan
    // order reported once all have ended.
    let results: Vec<Result<(), EngineError>> = futures_util::stream::iter(doomed)
        .map(|s| async move {
            let now = ctx.view();
            // Already deleted by the phase that owns it (a resumed run).
            if now.resources.get(&s.key).is_some_and(|r| !r.exists()) {
                return Ok(());
            }
            let doomed = Doomed {
                key: &s.key,
                view: now.resources.get(&s.key),
                remote_id: s.remote_id.as_deref(),
                owner: None,
            };
            resource::of(s.kind).delete(ctx, world, doomed).await
        })
        .buffered(ctx.remote.pace.parallel.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}

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
    // The view the plan was made from: where each delete's record was.
    let before = ctx.view();
    if rank(state) <= rank(RunState::Provisioning) {
        delete_steps(ctx, world, plan, &before, When::First).await?;
    }
    // The records and the application are independent until the
    // deployment: made side by side.
    let records = futures_util::stream::iter(changes(plan, Phase::Provisioning))
        .map(|s| resource::of(s.kind).converge(ctx, world, s, redeploy))
        .buffer_unordered(ctx.remote.pace.parallel.max(1))
        .collect::<Vec<Result<(), EngineError>>>();
    let apps = futures_util::stream::iter(changes(plan, Phase::Deploying))
        .then(|s| app::provision(ctx, world, s, redeploy))
        .collect::<Vec<_>>();
    let (records, apps) = tokio::join!(records, apps);
    for r in records {
        r?;
    }
    let mut to_deploy = Vec::new();
    for a in apps {
        to_deploy.extend(a?);
    }
    if rank(state) <= rank(RunState::Provisioning) {
        delete_steps(ctx, world, plan, &before, When::WithSet).await?;
    }

    enter(RunState::Deploying)?;
    for d in to_deploy {
        d.deploy(ctx).await?;
    }

    enter(RunState::Verifying)?;
    verify::verify(ctx, spec).await?;
    // Independent of each other: side by side, like the records.
    let watching: Vec<Result<(), EngineError>> =
        futures_util::stream::iter(changes(plan, Phase::Watching))
            .map(|s| resource::of(s.kind).converge(ctx, world, s, redeploy))
            .buffered(ctx.remote.pace.parallel.max(1))
            .collect()
            .await;
    watching.into_iter().collect::<Result<(), EngineError>>()?;
    // Resources the spec no longer has, now that the new state is verified.
    delete_steps(ctx, world, plan, &before, When::Last).await
}
