//! Undoing a failed run: its rollback plan, derived from the journal, and
//! `fabrik rollback` (of a failed run, or of one that never finished).

use serde::Serialize;

use super::reconcile::reconcile;
use super::{Prepared, find_run, spec_of, spec_path_text, view};
use crate::engine::desired::World;
use crate::engine::preflight;
use crate::engine::resource::{self, Doomed};
use crate::engine::run::{End, Run, Started, detailed};
use crate::engine::{Ctx, EngineError, LookupError, Report, Request, record, scrub, with};
use crate::event::{
    Action, Event, Policy, ResourceKey, RollbackPlanned, RollbackStep, RollbackStepDone,
    RollbackStepFailed, RollbackStepSkipped, RunCommand, RunOptions, RunOutcome, RunState,
};
use crate::id::{DeploymentId, Digest, RunId};
use crate::ownership::OwnershipMark;
use crate::projection::{DeploymentView, ResourceStatus, RunView};
use crate::spec::secrets::ResolvedSecrets;
use crate::store::EventStore;

/// What a rollback did.
#[derive(Debug, Clone, Default)]
pub struct UndoOutcome {
    /// Steps executed.
    pub done: Vec<ResourceKey>,
    /// Steps left for a person (`manual`).
    pub manual: Vec<ResourceKey>,
    /// Steps left in place by policy (`never`).
    pub kept: Vec<ResourceKey>,
    /// Steps that failed, with why.
    pub failed: Vec<(ResourceKey, String)>,
}

impl UndoOutcome {
    /// Whether nothing is left for a person.
    pub fn complete(&self) -> bool {
        self.manual.is_empty() && self.failed.is_empty()
    }

    /// One line for people.
    pub fn summary(&self) -> String {
        let join = |keys: &[ResourceKey]| {
            keys.iter()
                .map(ResourceKey::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = vec![format!("{} undone", self.done.len())];
        if !self.manual.is_empty() {
            parts.push(format!(
                "{} pending by manual policy ({})",
                self.manual.len(),
                join(&self.manual)
            ));
        }
        if !self.kept.is_empty() {
            parts.push(format!(
                "{} kept by policy never ({})",
                self.kept.len(),
                join(&self.kept)
            ));
        }
        if !self.failed.is_empty() {
            parts.push(format!(
                "{} failed ({})",
                self.failed.len(),
                self.failed
                    .iter()
                    .map(|(k, e)| format!("{k}: {e}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        parts.join(", ")
    }
}

/// Rolls back `target_run` (the current run, after a failure, or an
/// earlier failed run for `fabrik rollback`). With `execute_manual`, steps
/// whose policy is `manual` are executed too (a person asked for them).
pub async fn roll_back_run(
    ctx: &Ctx<'_>,
    world: &World,
    secrets: Option<&ResolvedSecrets>,
    target_run: &RunId,
    execute_manual: bool,
) -> Result<UndoOutcome, EngineError> {
    let journal = ctx.journal;
    let store = with(journal, |r| r.store().clone());
    let run = store
        .run(target_run)?
        .ok_or_else(|| LookupError::NoRun(target_run.clone()))?;
    // Steps already planned for that run and not done yet (none, when a
    // crash came after its last step: a new plan from the view would see
    // the rollback's own deletes as changes to undo), or a new plan.
    let planned: Option<Vec<RollbackStep>> = run.rollback.as_ref().map(|rb| {
        rb.steps
            .iter()
            .filter(|s| !rb.done.contains(&s.resource))
            .cloned()
            .collect()
    });
    let steps = match planned {
        Some(steps) => steps,
        None => crate::rollback::plan(&ctx.view(), &run, crate::rollback::policies_of(&run)),
    };
    record(
        journal,
        Event::RollbackPlanned(RollbackPlanned {
            target_run: target_run.clone(),
            steps: steps.clone(),
        }),
    )?;
    let mut out = UndoOutcome::default();
    let command = format!("fabrik rollback {target_run}");
    for step in &steps {
        let act = match step.policy {
            Policy::Auto => true,
            Policy::Manual => execute_manual,
            Policy::Never => false,
        };
        if !act {
            let (reason, cmd) = match step.policy {
                Policy::Manual => ("policy is manual".to_owned(), Some(command.clone())),
                _ => ("policy is never: left in place".to_owned(), None),
            };
            record(
                journal,
                Event::RollbackStepSkipped(RollbackStepSkipped {
                    resource: step.resource.clone(),
                    policy: step.policy,
                    reason,
                    command: cmd,
                }),
            )?;
            if step.policy == Policy::Manual {
                out.manual.push(step.resource.clone());
            } else {
                out.kept.push(step.resource.clone());
            }
            continue;
        }
        match undo_step(ctx, world, &ctx.view(), step, secrets, target_run).await {
            Ok(()) => {
                record(
                    journal,
                    Event::RollbackStepDone(RollbackStepDone {
                        resource: step.resource.clone(),
                        action: step.action,
                    }),
                )?;
                out.done.push(step.resource.clone());
            }
            Err(EngineError::Interrupted) => return Err(EngineError::Interrupted),
            Err(e) => {
                let text = scrub(journal, &e.text());
                record(
                    journal,
                    Event::RollbackStepFailed(RollbackStepFailed {
                        resource: step.resource.clone(),
                        action: step.action,
                        error: text.clone(),
                    }),
                )?;
                out.failed.push((step.resource.clone(), text));
            }
        }
    }
    Ok(out)
}

/// Executes one rollback step: a delete of what the run created, or a
/// restore of what it updated.
async fn undo_step(
    ctx: &Ctx<'_>,
    world: &World,
    view: &DeploymentView,
    step: &RollbackStep,
    secrets: Option<&ResolvedSecrets>,
    owner: &RunId,
) -> Result<(), EngineError> {
    let r = view.resources.get(&step.resource);
    let remote_id = r
        .and_then(|r| r.remote_id.clone())
        .or_else(|| step.remote_id.clone());
    let kind = resource::of(step.kind);
    if step.action == Action::Delete {
        let mark = OwnershipMark::new(ctx.deployment.clone(), owner.clone());
        let doomed = Doomed {
            key: &step.resource,
            view: r,
            remote_id: remote_id.as_deref(),
            owner: Some(&mark),
        };
        return kind.delete(ctx, world, doomed).await;
    }
    let to = step
        .restore_to
        .clone()
        .ok_or_else(|| EngineError::Unresolved {
            what: format!("an earlier state of {} to restore", step.resource),
        })?;
    let hash = r
        .and_then(|r| r.committed.as_ref())
        .and_then(|c| c.desired_hash)
        .unwrap_or_else(|| Digest::of(to.to_string().as_bytes()));
    // A resource the run deleted has no remote id any more: the restore
    // makes it again.
    let id = remote_id.unwrap_or_default();
    kind.restore(ctx, &step.resource, &to, hash, &id, secrets)
        .await
}

/// What `fabrik rollback --dry-run` shows.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackPreview {
    /// The run being undone.
    pub run: RunId,
    /// Its deployment.
    pub deployment: DeploymentId,
    /// The steps, in order.
    pub steps: Vec<RollbackStep>,
}

/// The rollback plan of a failed run, from the journal alone.
pub fn rollback_preview(
    store: &dyn EventStore,
    target: &str,
) -> Result<RollbackPreview, EngineError> {
    let run = find_run(
        store,
        target,
        |r| (r.state == RunState::Failed || r.is_open()) && r.command != RunCommand::Destroy,
        "failed or interrupted run to roll back",
    )?;
    let view = view(store, &run.deployment)?;
    let steps = pending_steps(&view, &run);
    Ok(RollbackPreview {
        run: run.run.clone(),
        deployment: run.deployment.clone(),
        steps,
    })
}

/// Steps still to do for `run`: its own plan's unfinished steps, or a fresh
/// plan; minus what later runs already removed.
fn pending_steps(view: &DeploymentView, run: &RunView) -> Vec<RollbackStep> {
    let mut steps = match &run.rollback {
        Some(rb) if !rb.steps.is_empty() => rb
            .steps
            .iter()
            .filter(|s| !rb.done.contains(&s.resource))
            .cloned()
            .collect(),
        _ => crate::rollback::plan(view, run, crate::rollback::policies_of(run)),
    };
    steps.retain(|s| {
        view.resources
            .get(&s.resource)
            .is_some_and(|r| match s.action {
                Action::Delete => {
                    matches!(r.status, ResourceStatus::Present | ResourceStatus::Pending)
                        && (r.owner_run.as_ref() == Some(&run.run)
                            || r.pending.as_ref().and_then(|p| p.run.as_ref()) == Some(&run.run))
                }
                Action::Restore if r.status == ResourceStatus::Deleted => {
                    run.deleted.contains(&s.resource)
                }
                _ => r.status == ResourceStatus::Present,
            })
    });
    steps
}

/// `fabrik rollback RUN|DEPLOYMENT`: executes every step left of a failed
/// run's rollback (manual ones included: a person asked), as a new run.
pub async fn rollback(mut req: Request, target: &str) -> Result<Report, EngineError> {
    let preview = rollback_preview(req.store.as_ref(), target)?;
    let failed = req
        .store
        .run(&preview.run)?
        .ok_or_else(|| LookupError::NoRun(preview.run.clone()))?;
    let deployment = preview.deployment.clone();
    if failed.is_open() {
        return rollback_open(req, failed).await;
    }
    if preview.steps.is_empty() {
        return Ok(Report {
            deployment,
            run: None,
            outcome: RunOutcome::RolledBack,
            exit_code: 0,
            message: format!("run {} has nothing left to roll back", preview.run),
            urls: Vec::new(),
            changes: Vec::new(),
            next: Vec::new(),
            journal_head: None,
        });
    }
    let prepared = Prepared::for_deletes(spec_of(&failed)?, &req.env_vars)?;
    let started = Started {
        command: RunCommand::Rollback,
        verb: "rollback",
        spec_path: Some(spec_path_text(&prepared.loaded.path)),
        spec_hash: None,
        options: RunOptions {
            target_run: Some(preview.run.clone()),
            sandbox: req.connect.is_sandbox(),
            ..RunOptions::default()
        },
    };
    let mut run = Run::start(&mut req, &deployment, started)?;
    run.advance(RunState::RollingBack)?;
    let view = with(&run.journal, |r| r.view().clone());
    let result = async {
        let connected =
            preflight::connect(&run.journal, req.connect.as_ref(), prepared.scope(&view))
                .await
                .map_err(|(e, _)| e)?;
        run.notify_to(connected.remote.providers.notifiers.clone());
        let ctx = run.ctx(&connected, &req.interrupt);
        roll_back_run(
            &ctx,
            &prepared.world,
            Some(&prepared.secrets),
            &preview.run,
            true,
        )
        .await
    }
    .await;
    let end = match result {
        Ok(out) if out.complete() => End::new(
            RunOutcome::RolledBack,
            format!("rolled back run {}: {}", preview.run, out.summary()),
        )
        .journaling(out.summary())
        .with_changes(out.done.iter().map(|k| format!("{k}: undone")).collect()),
        Ok(out) => End::new(
            RunOutcome::NeedsAttention,
            format!(
                "rollback of run {} incomplete: {}",
                preview.run,
                out.summary()
            ),
        )
        .journaling(out.summary())
        .then(vec![format!("fabrik rollback {}", preview.run)]),
        Err(e) => stopped(
            &run,
            e,
            &req.interrupt,
            Stopped {
                what: "rollback ".to_owned(),
                failed: format!("rollback of run {} ", preview.run),
                retry: format!("fabrik rollback {}", preview.run),
            },
        ),
    };
    run.finish(end).await
}

/// The words and the command for a run that stopped (see [`stopped`]):
/// message prefixes (empty, or ending in a space) and the command that
/// retries after a failure.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// Before "interrupted".
    pub what: String,
    /// Before "failed: …".
    pub failed: String,
    /// The command that retries.
    pub retry: String,
}

impl Stopped {
    /// A resumed or taken-over run: a failure is rolled back by hand.
    pub fn resumed(run: &RunId) -> Self {
        Self {
            what: String::new(),
            failed: String::new(),
            retry: format!("fabrik rollback {run}"),
        }
    }
}

/// How a run that stopped on `e` ends: interrupted (by Ctrl-C), then
/// `fabrik resume` finishes it; or failed (exit 6), then the retry command
/// is next.
pub fn stopped(
    run: &Run,
    e: EngineError,
    interrupt: &crate::engine::Interrupt,
    how: Stopped,
) -> End {
    if matches!(e, EngineError::Interrupted) || interrupt.is_set() {
        return End::interrupted(format!("{}interrupted", how.what), &run.id);
    }
    let text = scrub(&run.journal, &e.text());
    let details = e.details().map(|d| scrub(&run.journal, &d));
    End::new(
        RunOutcome::NeedsAttention,
        detailed(format!("{}failed: {text}", how.failed), &details),
    )
    .journaling(detailed(text, &details))
    .then(vec![how.retry])
}

/// `fabrik rollback` of a run that never finished (interrupted by Ctrl-C,
/// or its process died), which Fabrik names after an interruption: the run
/// itself is taken over and undone (manual steps included: a person
/// asked), so it ends ROLLED_BACK, or FAILED when something is left.
async fn rollback_open(mut req: Request, target: RunView) -> Result<Report, EngineError> {
    if target.command == RunCommand::Destroy {
        return Err(EngineError::Refused {
            message: format!("run {} is an unfinished destroy", target.run),
            hint: format!("finish it with `fabrik resume {}`", target.run),
        });
    }
    let prepared = Prepared::for_deletes(spec_of(&target)?, &req.env_vars)?;
    let mut run = Run::resume(&mut req, target, "rollback", true)?;
    let id = run.id.clone();
    let state = run.state();
    if state != RunState::RollingBack && !state.can_go_to(RunState::RollingBack) {
        // Stopped while validating: nothing was changed.
        let message = "interrupted before changing anything; nothing to roll back";
        let end = End::new(RunOutcome::Failed, format!("run {id} {message}")).journaling(message);
        return run.finish(end).await;
    }
    let view = with(&run.journal, |r| r.view().clone());
    let result = async {
        let connected =
            preflight::connect(&run.journal, req.connect.as_ref(), prepared.scope(&view))
                .await
                .map_err(|(e, _)| e)?;
        run.notify_to(connected.remote.providers.notifiers.clone());
        run.advance(RunState::RollingBack)?;
        let ctx = run.ctx(&connected, &req.interrupt);
        reconcile(&ctx, &prepared.world).await?;
        roll_back_run(&ctx, &prepared.world, Some(&prepared.secrets), &id, true).await
    }
    .await;
    let end = match result {
        Ok(out) if out.complete() => End::new(
            RunOutcome::RolledBack,
            format!("rolled back run {id}: {}", out.summary()),
        )
        .journaling(out.summary()),
        Ok(out) => End::new(
            RunOutcome::NeedsAttention,
            format!("rollback of run {id} incomplete: {}", out.summary()),
        )
        .journaling(out.summary())
        .then(vec![format!("fabrik rollback {id}")]),
        Err(e) => stopped(&run, e, &req.interrupt, Stopped::resumed(&id)),
    };
    run.finish(end).await
}
