//! After a crash: every intent without an outcome is looked up on the
//! remote side (creates by the intent's ownership mark, the rest by remote
//! id), and what is found is journaled as a finding before the run goes
//! on.

use crate::engine::desired::World;
use crate::engine::resource::{self, Doomed};
use crate::engine::{Ctx, EngineError, note, record};
use crate::event::{Action, Event, Finding, ResourceReconciled};
use crate::ownership::OwnershipMark;

/// Looks up every resource whose intent has no outcome, by the run's
/// ownership mark: adopts what exists, marks absent what does not.
pub async fn reconcile(ctx: &Ctx<'_>, world: &World) -> Result<(), EngineError> {
    let view = ctx.view();
    for r in view.pending_resources() {
        let Some(p) = &r.pending else { continue };
        let owner = p.run.clone().unwrap_or_else(|| ctx.run.clone());
        let mark = p
            .mark
            .clone()
            .unwrap_or_else(|| OwnershipMark::new(ctx.deployment.clone(), owner.clone()));
        note(
            ctx.journal,
            &format!("{}: intent without outcome, looking it up", r.key),
        );
        let kind = resource::of(r.kind);
        let found = kind.find(ctx, world, r, p, &mark).await?;
        if p.action == Action::Delete
            && let Some(id) = &found
        {
            // The delete did not happen: no finding describes "still
            // there" (`absent` folds to deleted), so the step is made
            // again now, with its own intent and outcome. Deletes are
            // idempotent, and it was the step in progress.
            let doomed = Doomed {
                key: &r.key,
                view: Some(r),
                remote_id: Some(id),
                owner: None,
            };
            kind.delete(ctx, world, doomed).await?;
            continue;
        }
        let finding = match (p.action, &found) {
            (Action::Create, Some(_)) => Finding::Adopted,
            (Action::Delete, None) => Finding::Applied,
            // A create not found did not happen; an update or restore is
            // simply made again (it is idempotent).
            _ => Finding::Absent,
        };
        record(
            ctx.journal,
            Event::ResourceReconciled(ResourceReconciled {
                resource: r.key.clone(),
                kind: r.kind,
                action: p.action,
                finding,
                remote_id: found,
            }),
        )?;
    }
    Ok(())
}
