//! The fold: one event applied to a deployment view and its runs.

use std::collections::BTreeMap;

use super::{
    Committed, DeployProgress, DeploymentView, PendingIntent, ResourceStatus, ResourceView,
    RollbackProgress, RunState, RunView, SkippedStep,
};
use crate::event::{
    Action, Event, Finding, RecordedEvent, ResourceKey, ResourceKind, RunCommand, format_timestamp,
};
use crate::id::RunId;

/// Applies `event` to the view of its deployment and to its run (looked up
/// in `runs`, and inserted there by `run_started`). Total: events the fold
/// cannot place are counted in [`DeploymentView::anomalies`].
pub fn apply_to(
    view: &mut DeploymentView,
    runs: &mut BTreeMap<RunId, RunView>,
    event: &RecordedEvent,
) {
    view.version = event.stream_version;
    view.last_seq = event.seq;
    let at = format_timestamp(event.at);

    if let Event::RunStarted(e) = &event.event {
        if let Some(run) = &event.run {
            let rv = RunView {
                run: run.clone(),
                deployment: event.deployment.clone(),
                command: e.command,
                state: RunState::Pending,
                started_at: at.clone(),
                last_event_at: at.clone(),
                finished_at: None,
                first_seq: event.seq,
                last_seq: event.seq,
                events: 0,
                user: e.user.clone(),
                host: e.host.clone(),
                pid: e.pid,
                fabrik_version: e.fabrik_version.clone(),
                spec_path: e.spec_path.clone(),
                spec_hash: e.spec_hash,
                options: e.options.clone(),
                outcome: None,
                exit_code: None,
                message: None,
                last_error: None,
                created: Vec::new(),
                updated: Vec::new(),
                deleted: Vec::new(),
                secrets: BTreeMap::new(),
                deploy: None,
                checks_passed: 0,
                checks_failed: 0,
                retries: 0,
                notifications_sent: 0,
                notifications_failed: 0,
                rollback: None,
                interrupted: None,
                resumed: 0,
                image: None,
            };
            if runs.insert(run.clone(), rv).is_some() {
                view.anomalies += 1;
            }
            view.latest_run = Some(run.clone());
            view.latest_state = Some(RunState::Pending);
            view.run_count += 1;
        } else {
            view.anomalies += 1;
        }
    }

    let run = match &event.run {
        Some(id) => match runs.get_mut(id) {
            Some(r) => {
                r.events += 1;
                r.last_seq = event.seq;
                // In place: the view keeps its allocation event after event.
                r.last_event_at.clone_from(&at);
                Some(r)
            }
            None => {
                view.anomalies += 1;
                None
            }
        },
        None => None,
    };

    apply_event(view, run, event, &at);
}

fn apply_event(
    view: &mut DeploymentView,
    mut run: Option<&mut RunView>,
    event: &RecordedEvent,
    at: &str,
) {
    let run_id = &event.run;
    match &event.event {
        Event::RunStarted(_) => {}
        Event::RunStateChanged(e) => {
            let Some(run) = run else { return };
            if run.state != e.from || !e.from.can_go_to(e.to) {
                view.anomalies += 1;
            }
            run.state = e.to;
            if let Some(reason) = &e.reason {
                run.last_error = Some(reason.clone());
            }
            if view.latest_run.as_ref() == Some(&run.run) {
                view.latest_state = Some(e.to);
            }
            match e.to {
                RunState::Complete if run.command == RunCommand::Apply => {
                    view.last_complete_run = Some(run.run.clone());
                    view.desired_hash = run.spec_hash;
                    for r in view.resources.values_mut() {
                        if r.status == ResourceStatus::Present {
                            r.committed = Some(Committed {
                                run: run.run.clone(),
                                desired: r.desired.clone(),
                                desired_hash: r.desired_hash,
                            });
                        }
                    }
                }
                RunState::Destroyed => {
                    view.desired_hash = None;
                    view.last_complete_run = None;
                    for r in view.resources.values_mut() {
                        r.committed = None;
                    }
                }
                _ => {}
            }
        }
        Event::RunFinished(e) => {
            let Some(run) = run else { return };
            run.outcome = Some(e.outcome);
            run.exit_code = Some(e.exit_code);
            run.message = e.message.clone();
            run.finished_at = Some(at.to_owned());
            run.interrupted = None;
        }
        Event::RunResumed(_) => {
            let Some(run) = run else { return };
            run.resumed += 1;
            run.interrupted = None;
        }
        Event::RunInterrupted(e) => {
            let Some(run) = run else { return };
            run.interrupted = Some(e.reason.clone());
        }
        Event::SpecValidated(e) => {
            if let Some(run) = run {
                run.spec_hash = Some(e.spec_hash);
            }
        }
        Event::SpecRejected(e) => {
            if let Some(run) = run {
                run.last_error = e.problems.first().cloned();
            }
        }
        Event::SecretResolved(e) => {
            if let Some(run) = run {
                run.secrets.insert(e.name.clone(), e.source);
            }
        }
        Event::ImageResolved(e) => {
            if let Some(run) = run {
                run.image = Some(e.clone());
            }
        }
        Event::ResourceIntent(e) => {
            let r = resource(view, &e.resource, e.kind);
            // A create of what does not exist names no remote id, and
            // inherits none: the id a deleted resource had is gone with it.
            let creates = e.action == Action::Create && r.status != ResourceStatus::Present;
            if creates {
                r.remote_id = None;
            }
            r.pending = Some(PendingIntent {
                run: run_id.clone(),
                action: e.action,
                seq: event.seq,
                remote_id: e.remote_id.clone().or_else(|| r.remote_id.clone()),
                mark: e.mark.clone(),
                desired_hash: e.desired_hash,
                outcome_unknown: false,
            });
            if e.desired.is_some() {
                r.desired = e.desired.clone();
            }
            if creates {
                r.status = ResourceStatus::Pending;
            }
        }
        Event::ResourceCreated(e) => {
            let r = resource(view, &e.resource, e.kind);
            r.status = ResourceStatus::Present;
            r.remote_id = Some(e.remote_id.clone());
            r.owner_run = Some(e.mark.run.clone());
            r.mark = Some(e.mark.clone());
            if e.incomplete.is_some() {
                // It exists, not as desired: the next plan changes it.
                r.desired_hash = None;
            } else if e.desired_hash.is_some() {
                r.desired_hash = e.desired_hash;
            }
            r.pending = None;
            r.last_error = e.incomplete.clone();
            r.last_run = run_id.clone();
            if let Some(run) = run.as_deref_mut() {
                if !run.created.contains(&e.resource) {
                    run.created.push(e.resource.clone());
                }
                if let Some(error) = &e.incomplete {
                    run.last_error = Some(format!("{}: {error}", e.resource));
                }
            }
        }
        Event::ResourceUpdated(e) => {
            let r = resource(view, &e.resource, e.kind);
            r.status = ResourceStatus::Present;
            r.remote_id = Some(e.remote_id.clone());
            if e.restored
                && let Some(c) = &r.committed
            {
                r.desired = c.desired.clone();
            }
            if e.desired_hash.is_some() {
                r.desired_hash = e.desired_hash;
            }
            r.pending = None;
            r.last_error = None;
            r.last_run = run_id.clone();
            if let Some(run) = run.as_deref_mut()
                && !e.restored
                && !run.updated.contains(&e.resource)
            {
                run.updated.push(e.resource.clone());
            }
        }
        Event::ResourceDeleted(e) => {
            let r = resource(view, &e.resource, e.kind);
            r.status = ResourceStatus::Deleted;
            r.pending = None;
            r.owner_run = None;
            r.committed = None;
            r.last_error = None;
            r.last_run = run_id.clone();
            if let Some(run) = run.as_deref_mut()
                && !run.deleted.contains(&e.resource)
            {
                run.deleted.push(e.resource.clone());
            }
        }
        Event::ResourceFailed(e) => {
            let r = resource(view, &e.resource, e.kind);
            r.last_error = Some(e.error.clone());
            if e.outcome_unknown {
                if let Some(p) = &mut r.pending {
                    p.outcome_unknown = true;
                }
            } else {
                // A definite failure changed nothing: the resource is where
                // the last definite event left it. Only a create of what did
                // not exist is pending, so that is absent.
                r.pending = None;
                if r.status == ResourceStatus::Pending {
                    r.status = ResourceStatus::Absent;
                    r.remote_id = None;
                }
            }
            if let Some(run) = run.as_deref_mut() {
                run.last_error = Some(format!("{}: {}", e.resource, e.error));
            }
        }
        Event::ResourceReconciled(e) => {
            let r = resource(view, &e.resource, e.kind);
            let intent_run = r.pending.as_ref().and_then(|p| p.run.clone());
            let intent_mark = r.pending.as_ref().and_then(|p| p.mark.clone());
            r.pending = None;
            match (e.finding, e.action) {
                (Finding::Adopted, _) | (Finding::Applied, Action::Create) => {
                    r.status = ResourceStatus::Present;
                    if let Some(id) = &e.remote_id {
                        r.remote_id = Some(id.clone());
                    }
                    r.owner_run = intent_run.or(run_id.clone());
                    if intent_mark.is_some() {
                        r.mark = intent_mark;
                    }
                    if let Some(run) = run.as_deref_mut()
                        && e.action == Action::Create
                        && !run.created.contains(&e.resource)
                    {
                        run.created.push(e.resource.clone());
                    }
                }
                (Finding::Applied, Action::Delete) | (Finding::Absent, Action::Delete) => {
                    r.status = ResourceStatus::Deleted;
                    r.owner_run = None;
                }
                (Finding::Applied, _) => {
                    r.status = ResourceStatus::Present;
                }
                (Finding::Absent, _) => {
                    r.status = if r.remote_id.is_some() && e.action != Action::Create {
                        ResourceStatus::Present
                    } else {
                        ResourceStatus::Absent
                    };
                }
            }
        }
        Event::AttemptFailed(_) => {
            if let Some(run) = run {
                run.retries += 1;
            }
        }
        Event::DeployRequested(_) => {
            if let Some(run) = run {
                run.deploy = Some(DeployProgress {
                    deployment_uuid: None,
                    status: Some("requested".to_owned()),
                    url: None,
                });
            }
        }
        Event::DeployTriggered(e) => {
            if let Some(run) = run {
                run.deploy = Some(DeployProgress {
                    deployment_uuid: e.deployment_uuid.clone(),
                    status: Some("queued".to_owned()),
                    url: None,
                });
            }
        }
        Event::DeploymentObserved(e) => {
            if let Some(run) = run {
                let d = run.deploy.get_or_insert(DeployProgress {
                    deployment_uuid: None,
                    status: None,
                    url: None,
                });
                d.deployment_uuid = Some(e.deployment_uuid.clone());
                d.status = Some(e.status.clone());
                if e.url.is_some() {
                    d.url = e.url.clone();
                }
            }
        }
        Event::VerificationPassed(_) => {
            if let Some(run) = run {
                run.checks_passed += 1;
            }
        }
        Event::VerificationFailed(e) => {
            if let Some(run) = run {
                run.checks_failed += 1;
                run.last_error = Some(format!("{}: {}", e.check, e.error));
            }
        }
        Event::RollbackPlanned(e) => {
            if let Some(run) = run {
                run.rollback = Some(RollbackProgress {
                    target_run: Some(e.target_run.clone()),
                    steps: e.steps.clone(),
                    ..RollbackProgress::default()
                });
            }
        }
        Event::RollbackStepDone(e) => {
            if let Some(run) = run {
                let rb = run.rollback.get_or_insert_with(RollbackProgress::default);
                rb.failed.retain(|k| k != &e.resource);
                rb.skipped.retain(|k| k.resource != e.resource);
                if !rb.done.contains(&e.resource) {
                    rb.done.push(e.resource.clone());
                }
            }
        }
        Event::RollbackStepSkipped(e) => {
            if let Some(run) = run {
                let rb = run.rollback.get_or_insert_with(RollbackProgress::default);
                rb.skipped.retain(|k| k.resource != e.resource);
                rb.skipped.push(SkippedStep {
                    resource: e.resource.clone(),
                    policy: e.policy,
                    command: e.command.clone(),
                });
            }
        }
        Event::RollbackStepFailed(e) => {
            if let Some(run) = run {
                run.last_error = Some(format!("rollback of {}: {}", e.resource, e.error));
                let rb = run.rollback.get_or_insert_with(RollbackProgress::default);
                if !rb.failed.contains(&e.resource) {
                    rb.failed.push(e.resource.clone());
                }
            }
        }
        Event::NotificationSent(_) => {
            if let Some(run) = run {
                run.notifications_sent += 1;
            }
        }
        Event::NotificationFailed(_) => {
            if let Some(run) = run {
                run.notifications_failed += 1;
            }
        }
        Event::LockAcquired(e) => {
            view.lock = Some(e.holder.clone());
        }
        Event::LockReleased(e) => {
            if view.lock.as_ref().is_some_and(|h| h.run == e.run) {
                view.lock = None;
            }
        }
        Event::LockBroken(_) => {
            view.lock = None;
        }
        // A seal of the journal: nothing about the deployment changes.
        Event::JournalCheckpoint(_) => {}
    }
}

fn resource<'a>(
    view: &'a mut DeploymentView,
    key: &ResourceKey,
    kind: ResourceKind,
) -> &'a mut ResourceView {
    view.resources
        .entry(key.clone())
        .or_insert_with(|| ResourceView::new(key.clone(), kind))
}
