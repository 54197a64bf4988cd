//! Undoing: executing a rollback plan derived from the journal, and
//! observing the remote side for drift (`--refresh`).

use std::collections::BTreeMap;

use super::desired::{
    self, APP_KEY, AppState, MonitorState, MonitorWant, RecordState, RecordWant, World,
};
use super::steps::{self, Ctx};
use super::{EngineError, Journal, record, scrub};
use crate::event::{
    Action, Event, Policy, ResourceKey, ResourceKind, RollbackPlanned, RollbackStep,
    RollbackStepDone, RollbackStepFailed, RollbackStepSkipped,
};
use crate::id::{Digest, RunId};
use crate::ownership::OwnershipMark;
use crate::plan::Observed;
use crate::projection::{DeploymentView, ResourceStatus};
use crate::provider::AppKind;
use crate::spec::secrets::ResolvedSecrets;

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

fn join(keys: &[ResourceKey]) -> String {
    keys.iter()
        .map(ResourceKey::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn view_of(journal: &Journal) -> DeploymentView {
    journal
        .lock()
        .map(|r| r.view().clone())
        .unwrap_or_else(|p| p.into_inner().view().clone())
}

/// Rolls back `target_run` (the current run, after a failure, or an
/// earlier failed run for `fabrik rollback`). With `execute_manual`, steps
/// whose policy is `manual` are executed too (a person asked for them).
pub async fn roll_back_run(
    ctx: &Ctx<'_>,
    secrets: Option<&ResolvedSecrets>,
    target_run: &RunId,
    execute_manual: bool,
) -> Result<UndoOutcome, EngineError> {
    let journal = ctx.journal;
    let store = journal
        .lock()
        .map(|r| r.store().clone())
        .unwrap_or_else(|p| p.into_inner().store().clone());
    let view = view_of(journal);
    let run = store
        .run(target_run)
        .map_err(super::recorder::RecordError::from)?
        .ok_or_else(|| EngineError::Config {
            message: format!("run {target_run} is not in the journal"),
            hint: None,
        })?;
    // Steps already planned for that run and not done yet, or a new plan.
    let planned: Option<Vec<RollbackStep>> = run.rollback.as_ref().map(|rb| {
        rb.steps
            .iter()
            .filter(|s| !rb.done.contains(&s.resource))
            .cloned()
            .collect()
    });
    let steps = match planned {
        Some(steps) if ctx.run != target_run || !steps.is_empty() => steps,
        _ => crate::rollback::plan(&view, &run, crate::rollback::policies_of(&run)),
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
        let view = view_of(journal);
        match undo_step(ctx, &view, step, secrets, target_run).await {
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
                let text = scrub(journal, &super::apply::error_text(&e));
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

/// Executes one rollback step.
pub async fn undo_step(
    ctx: &Ctx<'_>,
    view: &DeploymentView,
    step: &RollbackStep,
    secrets: Option<&ResolvedSecrets>,
    owner: &RunId,
) -> Result<(), EngineError> {
    let r = view.resources.get(&step.resource);
    let desired = r.and_then(|r| r.desired.clone());
    let remote_id = r
        .and_then(|r| r.remote_id.clone())
        .or_else(|| step.remote_id.clone());
    let mark = OwnershipMark::new(ctx.deployment.clone(), owner.clone());
    match (step.action, step.kind) {
        (Action::Delete, ResourceKind::DnsRecord) => {
            let lookup = desired
                .and_then(|d| serde_json::from_value::<RecordState>(d).ok())
                .map(|s| desired::record_from_state(&s));
            steps::dns_delete(
                ctx,
                &step.resource,
                remote_id.as_deref(),
                lookup.as_ref().map(|d| (d, &mark)),
            )
            .await
        }
        (Action::Delete, ResourceKind::Monitor) => {
            let lookup = desired
                .and_then(|d| serde_json::from_value::<MonitorState>(d).ok())
                .map(|s| desired::monitor_from_state(&s));
            steps::monitor_delete(
                ctx,
                &step.resource,
                remote_id.as_deref(),
                lookup.as_ref().map(|d| (d, &mark)),
            )
            .await
        }
        (Action::Delete, ResourceKind::Application) => {
            let state = desired.and_then(|d| serde_json::from_value::<AppState>(d).ok());
            let kind = state.as_ref().map_or(AppKind::Application, app_kind);
            steps::app_delete(
                ctx,
                kind,
                remote_id.as_deref(),
                state.as_ref().map(|s| (s.name.as_str(), owner)),
            )
            .await
        }
        (_, kind) => {
            let to = step.restore_to.clone().ok_or_else(|| EngineError::Config {
                message: format!("no earlier state of {} to restore", step.resource),
                hint: None,
            })?;
            let hash = r
                .and_then(|r| r.committed.as_ref())
                .and_then(|c| c.desired_hash)
                .unwrap_or_else(|| Digest::of(to.to_string().as_bytes()));
            let id = remote_id.ok_or_else(|| EngineError::Config {
                message: format!("{} has no remote id to restore", step.resource),
                hint: None,
            })?;
            restore(ctx, kind, &step.resource, to, hash, &id, secrets).await
        }
    }
}

/// Whether a recorded application state is a Coolify application or service.
pub(crate) fn app_kind(s: &AppState) -> AppKind {
    match s.source {
        desired::SourceState::Compose { .. } | desired::SourceState::Service { .. } => {
            AppKind::Service
        }
        _ => AppKind::Application,
    }
}

async fn restore(
    ctx: &Ctx<'_>,
    kind: ResourceKind,
    key: &ResourceKey,
    to: serde_json::Value,
    hash: Digest,
    id: &str,
    secrets: Option<&ResolvedSecrets>,
) -> Result<(), EngineError> {
    let bad = |what: &str| EngineError::Config {
        message: format!("the recorded state of {key} is not a {what}"),
        hint: None,
    };
    match kind {
        ResourceKind::DnsRecord => {
            let state: RecordState = serde_json::from_value(to).map_err(|_| bad("DNS record"))?;
            let want = RecordWant {
                key: key.clone(),
                desired: desired::record_from_state(&state),
                state,
            };
            steps::dns_update(ctx, &want, hash, id, true).await
        }
        ResourceKind::Monitor => {
            let state: MonitorState = serde_json::from_value(to).map_err(|_| bad("monitor"))?;
            let want = MonitorWant {
                key: key.clone(),
                desired: desired::monitor_from_state(&state),
                state,
            };
            steps::monitor_update(ctx, &want, hash, id, true).await
        }
        ResourceKind::Application => {
            let state: AppState =
                serde_json::from_value(to.clone()).map_err(|_| bad("application"))?;
            let secrets = secrets.ok_or_else(|| EngineError::Config {
                message: "restoring the application needs the spec's secrets".to_owned(),
                hint: None,
            })?;
            let (app, drifted) = desired::app_from_state(&state, secrets)?;
            if !drifted.is_empty() {
                super::note(
                    ctx.journal,
                    &format!(
                        "secrets of {} changed since that version; restoring with today's values",
                        drifted.join(", ")
                    ),
                );
            }
            let (remote, _) = steps::app_update(ctx, &app, &to, hash, id, true).await?;
            steps::app_deploy(ctx, &remote, std::time::Duration::from_secs(600)).await
        }
    }
}

/// Looks at every resource the journal says exists and reports the ones
/// that are gone or differ (`--refresh`).
pub async fn observe(
    ctx: &Ctx<'_>,
    world: &World,
) -> Result<BTreeMap<ResourceKey, Observed>, EngineError> {
    let view = view_of(ctx.journal);
    let mut out = BTreeMap::new();
    for r in view.live_resources() {
        let Some(id) = &r.remote_id else { continue };
        let seen = match r.kind {
            ResourceKind::DnsRecord => {
                let (Some(dns), Some(zone)) = (&ctx.session.providers.dns, ctx.zone) else {
                    continue;
                };
                let Some(want) = world.record(&r.key) else {
                    continue;
                };
                let listed = dns
                    .list_records(zone, want.desired.kind, &want.desired.name)
                    .await
                    .map_err(|e| EngineError::provider(format!("refreshing {}", r.key), e))?;
                match listed.into_iter().find(|x| &x.id == id) {
                    None => Observed::Missing,
                    Some(x) => {
                        let mut diff = Vec::new();
                        let committed = r
                            .desired
                            .clone()
                            .and_then(|d| serde_json::from_value::<RecordState>(d).ok());
                        if let Some(c) = committed {
                            if x.content != c.content {
                                diff.push("content".to_owned());
                            }
                            if x.proxied != c.proxied {
                                diff.push("proxied".to_owned());
                            }
                            if !c.proxied && x.ttl != c.ttl {
                                diff.push("ttl".to_owned());
                            }
                        }
                        if diff.is_empty() {
                            Observed::InSync
                        } else {
                            Observed::Drifted(diff)
                        }
                    }
                }
            }
            ResourceKind::Application => match steps::find_app(ctx, &world.app, Some(id)).await? {
                None => Observed::Missing,
                Some(_) => Observed::InSync,
            },
            ResourceKind::Monitor => {
                let Some(m) = &ctx.session.providers.monitors else {
                    continue;
                };
                let owned = m
                    .find_owned(ctx.deployment)
                    .await
                    .map_err(|e| EngineError::provider("refreshing monitors", e))?;
                if owned.iter().any(|x| &x.id.to_string() == id) {
                    Observed::InSync
                } else {
                    Observed::Missing
                }
            }
        };
        if r.status == ResourceStatus::Present {
            out.insert(r.key.clone(), seen);
        }
    }
    let _ = APP_KEY;
    Ok(out)
}
