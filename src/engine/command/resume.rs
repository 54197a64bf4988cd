//! `fabrik resume`: finishes an interrupted run from the journal (or one
//! that failed with `--no-rollback`, or one whose process died after its
//! last state but before journaling its end).

use super::apply::{ApplyRequest, conclude, steps};
use super::destroy::destroy_all;
use super::reconcile::reconcile;
use super::rollback::{Stopped, roll_back_run, stopped};
use super::{Prepared, find_run, spec_of};
use crate::engine::desired::APP_KEY;
use crate::engine::preflight;
use crate::engine::run::{End, Run, holder, take_lock};
use crate::engine::{EngineError, Report, Request, scrub, with};
use crate::event::{Event, LockBroken, NewEvent, ResourceKey, RunCommand, RunOutcome, RunState};
use crate::id::{DeploymentId, RunId};
use crate::projection::RunView;
use crate::store::EventStore;

/// An apply run that failed with `--no-rollback`, named by `target` (its
/// id, or its deployment's name when it is the latest run), and the
/// deployment's latest run.
fn failed_without_rollback(
    store: &dyn EventStore,
    target: &str,
) -> Result<Option<(RunView, RunView)>, EngineError> {
    let run = if RunId::looks_like(target) {
        let Ok(id) = target.parse::<RunId>() else {
            return Ok(None);
        };
        store.run(&id)?
    } else {
        match DeploymentId::new(target) {
            Ok(d) => store.runs(&d)?.pop(),
            Err(_) => None,
        }
    };
    let Some(run) = run.filter(|r| {
        r.command == RunCommand::Apply && r.state == RunState::Failed && r.options.no_rollback
    }) else {
        return Ok(None);
    };
    let latest = store
        .runs(&run.deployment)?
        .pop()
        .unwrap_or_else(|| run.clone());
    Ok(Some((run, latest)))
}

/// `fabrik resume` of a run that failed with `--no-rollback` (which prints
/// this command): nothing was undone, so finishing the job is applying the
/// same spec again. The failed run cannot leave FAILED, so a new apply run
/// does it; planned from the journal, it keeps what the failed run created
/// and makes the rest.
async fn resume_failed(
    req: Request,
    failed: RunView,
    latest: RunView,
) -> Result<Report, EngineError> {
    if latest.run != failed.run {
        return Ok(Report {
            deployment: failed.deployment.clone(),
            run: Some(latest.run.clone()),
            outcome: latest.outcome.unwrap_or(RunOutcome::NoChanges),
            exit_code: 0,
            message: format!(
                "nothing to resume: run {} was followed by run {} ({})",
                failed.run,
                latest.run,
                latest
                    .outcome
                    .map_or_else(|| latest.state.to_string(), |o| o.to_string())
            ),
            urls: Vec::new(),
            changes: Vec::new(),
            next: Vec::new(),
            journal_head: None,
        });
    }
    let loaded = spec_of(&failed)?;
    let prepared = Prepared::new(loaded, &req.env_vars)?;
    if failed
        .spec_hash
        .is_some_and(|h| h != prepared.world.digests.total)
    {
        return Err(EngineError::Refused {
            message: format!(
                "the spec (or a secret) changed since run {} started, so resuming it would not finish what it planned",
                failed.run
            ),
            hint: format!(
                "apply the new spec with `fabrik apply {}`, or undo the run with `fabrik rollback {}`",
                prepared.loaded.path.display(),
                failed.run
            ),
        });
    }
    let mut report = super::apply::apply(ApplyRequest {
        base: req,
        loaded: prepared.loaded,
        no_rollback: failed.options.no_rollback,
        refresh: failed.options.refresh,
        retries: None,
        approved: None,
        redeploy: false,
        take_over: false,
        rotate: Vec::new(),
    })
    .await?;
    report.message = format!(
        "{} (finishing run {}, which failed with --no-rollback)",
        report.message, failed.run
    );
    Ok(report)
}

/// A report for a command that found nothing to do.
fn nothing(deployment: DeploymentId, latest: Option<&RunView>) -> Report {
    Report {
        deployment,
        run: latest.map(|r| r.run.clone()),
        outcome: latest
            .and_then(|r| r.outcome)
            .unwrap_or(RunOutcome::NoChanges),
        exit_code: 0,
        message: "nothing to resume: the deployment has no unfinished run".to_owned(),
        urls: Vec::new(),
        changes: Vec::new(),
        next: Vec::new(),
        journal_head: None,
    }
}

/// `fabrik resume RUN|DEPLOYMENT`: finishes an interrupted run (or one that
/// failed with `--no-rollback`).
pub async fn resume(mut req: Request, target: &str) -> Result<Report, EngineError> {
    let target = &super::whole_run_id(req.store.as_ref(), target)?;
    if let Some((failed, latest)) = failed_without_rollback(req.store.as_ref(), target)? {
        return resume_failed(req, failed, latest).await;
    }
    if !RunId::looks_like(target)
        && let Ok(d) = DeploymentId::new(target)
        && req.store.deployment(&d)?.is_none()
    {
        // A run killed before its first event left nothing in the journal,
        // and changed nothing: there is nothing to finish.
        return Ok(Report {
            message: format!(
                "nothing to resume: no run of {d} is in the journal (a run stopped before its first event changed nothing); apply the spec again"
            ),
            next: vec!["fabrik apply SPEC".to_owned()],
            ..nothing(d, None)
        });
    }
    if !RunId::looks_like(target)
        && let Ok(d) = DeploymentId::new(target)
        && let Some(v) = req.store.deployment(&d)?
    {
        let latest = match &v.latest_run {
            Some(r) => req.store.run(r)?,
            None => None,
        };
        if let Some(run) = latest.clone().filter(ended_unrecorded) {
            return finish_ended(&mut req, run).await;
        }
        if !latest.as_ref().is_some_and(RunView::is_open) {
            if v.lock.is_some() {
                clear_stale_lock(&req, &d)?;
            }
            return Ok(nothing(d, latest.as_ref()));
        }
    }
    let target_run = find_run(
        req.store.as_ref(),
        target,
        RunView::is_open,
        "unfinished run",
    )?;
    if ended_unrecorded(&target_run) {
        return finish_ended(&mut req, target_run).await;
    }
    if !target_run.is_open() {
        return Err(EngineError::Refused {
            message: format!(
                "run {} is not unfinished (it ended {})",
                target_run.run,
                target_run
                    .outcome
                    .map_or_else(|| target_run.state.to_string(), |o| o.to_string())
            ),
            hint: match target_run.state {
                RunState::Failed => format!("undo it with `fabrik rollback {}`", target_run.run),
                _ => "nothing to resume".to_owned(),
            },
        });
    }
    // Finishing a destroy or a rollback deletes (and restores): it does
    // not need every secret of the application.
    let deletes =
        target_run.command == RunCommand::Destroy || target_run.state == RunState::RollingBack;
    let prepared = if deletes {
        Prepared::for_deletes(spec_of(&target_run)?, &req.env_vars)?
    } else {
        Prepared::new(spec_of(&target_run)?, &req.env_vars)?
    };
    if target_run.command == RunCommand::Apply
        && !deletes
        && let Some(h) = target_run.spec_hash
        && h != prepared.world.digests.total
    {
        return Err(EngineError::Refused {
            message: format!(
                "the spec (or a secret) changed since run {} started, so it cannot be finished as it was planned",
                target_run.run
            ),
            hint: format!(
                "restore the spec as it was, or undo the run with `fabrik rollback {}`",
                target_run.run
            ),
        });
    }
    let command = target_run.command;
    let options = target_run.options.clone();
    let mut run = Run::resume(&mut req, target_run, "resume", false)?;
    let id = run.id.clone();
    run.serving(prepared.world.app.domains.clone());
    with(&run.journal, |r| r.scrub(&prepared.secrets.scrubber()));
    let view = with(&run.journal, |r| r.view().clone());
    let connected =
        match preflight::connect(&run.journal, req.connect.as_ref(), prepared.scope(&view)).await {
            Ok(c) => c,
            Err((e, _)) => {
                // Nothing was changed by this attempt: leave the run open
                // for another resume.
                let reason = format!(
                    "resume could not connect: {}",
                    scrub(&run.journal, &e.text())
                );
                run.leave_open(reason)?;
                return Err(e);
            }
        };
    run.notify_to(connected.remote.providers.notifiers.clone());
    let world = &prepared.world;
    let state = run.state();
    match command {
        RunCommand::Apply | RunCommand::Rollback if state == RunState::RollingBack => {
            let target_run = options.target_run.clone().unwrap_or_else(|| id.clone());
            let result = async {
                let ctx = run.ctx(&connected, &req.interrupt);
                reconcile(&ctx, world).await?;
                let asked = command == RunCommand::Rollback;
                roll_back_run(&ctx, world, Some(&prepared.secrets), &target_run, asked).await
            }
            .await;
            let end = match result {
                Ok(out) if out.complete() => End::new(
                    RunOutcome::RolledBack,
                    format!("rollback finished: {}", out.summary()),
                )
                .journaling(out.summary()),
                Ok(out) => End::new(
                    RunOutcome::NeedsAttention,
                    format!("rollback incomplete: {}", out.summary()),
                )
                .journaling(out.summary())
                .then(vec![format!("fabrik rollback {target_run}")]),
                Err(e) => stopped(&run, e, &req.interrupt, Stopped::resumed(&id)),
            };
            run.finish(end).await
        }
        RunCommand::Destroy => {
            let result = async {
                // Interrupted before it journaled DESTROYING.
                if run.state() == RunState::Pending {
                    run.advance(RunState::Destroying)?;
                }
                let ctx = run.ctx(&connected, &req.interrupt);
                reconcile(&ctx, world).await?;
                destroy_all(&ctx, world).await
            }
            .await;
            let end = match result {
                Ok(deleted) => End::new(
                    RunOutcome::Destroyed,
                    format!("{} destroyed", run.deployment),
                )
                .journaling("destroyed")
                .with_changes(deleted.iter().map(|k| format!("{k}: delete")).collect()),
                Err(e) => stopped(&run, e, &req.interrupt, Stopped::resumed(&id)),
            };
            let mut report = run.finish(end).await?;
            if report.outcome == RunOutcome::Destroyed {
                report.urls.clear();
            }
            Ok(report)
        }
        _ => {
            let result = async {
                reconcile(&run.ctx(&connected, &req.interrupt), world).await?;
                if run.state() == RunState::Pending {
                    run.advance(RunState::Validating)?;
                }
                let redeploy = needs_deploy(&run);
                steps(&run, &connected, &req, &prepared, None, redeploy).await
            }
            .await;
            let result = match result {
                Ok(changes) => Ok((connected, changes)),
                Err(e) => Err((e, Some(connected))),
            };
            conclude(run, result, &prepared, options.no_rollback, &req.interrupt).await
        }
    }
}

/// The journal records a holder of the lock of a deployment whose runs have
/// all ended: its process died between `run_finished` and `lock_released`.
/// Taking the real lock proves no process holds it; the record is then
/// cleared with `lock_broken`. Left alone if a live process holds the lock.
fn clear_stale_lock(req: &Request, deployment: &DeploymentId) -> Result<(), EngineError> {
    let me = holder(&RunId::generate(), "resume", &req.clock);
    let Ok(guard) = take_lock(req, deployment, me) else {
        return Ok(());
    };
    let v = super::view(req.store.as_ref(), deployment)?;
    if let Some(previous) = v.lock {
        req.store.append(
            deployment,
            v.version,
            &[NewEvent {
                run: None,
                at: (req.clock)(),
                event: Event::LockBroken(LockBroken {
                    previous,
                    reason: "holder process is gone".to_owned(),
                }),
            }],
        )?;
    }
    guard.release();
    Ok(())
}

/// Whether a run reached its final state but its process died before
/// journaling how it ended (`run_finished`).
fn ended_unrecorded(run: &RunView) -> bool {
    run.outcome.is_none() && run.state.is_terminal()
}

/// Journals the end of a run that reached its final state but whose
/// process died before recording `run_finished` (and releasing the lock):
/// the outcome follows from that state.
async fn finish_ended(req: &mut Request, target: RunView) -> Result<Report, EngineError> {
    let untouched =
        target.created.is_empty() && target.updated.is_empty() && target.deleted.is_empty();
    let (outcome, next) = match target.state {
        RunState::Complete if untouched => (RunOutcome::NoChanges, Vec::new()),
        RunState::Complete => (RunOutcome::Succeeded, Vec::new()),
        RunState::Destroyed => (RunOutcome::Destroyed, Vec::new()),
        RunState::RolledBack => (RunOutcome::RolledBack, Vec::new()),
        _ => (
            RunOutcome::NeedsAttention,
            vec![format!("fabrik rollback {}", target.run)],
        ),
    };
    let run = Run::resume(req, target, "resume", false)?;
    let message = format!(
        "run {} had ended ({outcome}); its end is now journaled",
        run.id
    );
    run.finish(End::new(outcome, message).then(next)).await
}

/// Whether the run changed the application without seeing its deployment
/// finish (it must deploy again when resumed).
fn needs_deploy(run: &Run) -> bool {
    let Some(current) = with(&run.journal, |r| r.run().cloned()) else {
        return false;
    };
    let key = ResourceKey::new(APP_KEY);
    let touched = current.created.contains(&key) || current.updated.contains(&key);
    let finished = current.deploy.as_ref().and_then(|d| d.status.as_deref()) == Some("finished");
    touched && !finished
}
