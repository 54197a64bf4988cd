//! `fabrik resume`, `fabrik rollback`, `fabrik destroy` and `fabrik gc`:
//! the commands that finish, undo or clean up what runs left behind, all
//! driven by the journal.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::apply::{
    Connected, advance, conclude, connect_and_preflight, execute, holder, notify, refuse_open_run,
    resolve_secrets, spec_path_text, take_lock,
};
use super::connect::{Env, Target};
use super::desired::{APP_KEY, AppState, MonitorState, RecordState, World};
use super::recorder::{Clock, Observer, RecordError, Recorder};
use super::steps::{self, Ctx};
use super::{EngineError, Interrupt, Journal, Report, note, record, scrub};
use crate::event::{
    Action, Event, Finding, LockAcquired, LockReleased, ResourceKey, ResourceKind,
    ResourceReconciled, RunCommand, RunOptions, RunOutcome, RunResumed, RunStarted,
};
use crate::id::{DeploymentId, RunId};
use crate::ownership::OwnershipMark;
use crate::plan::{self, StepAction};
use crate::projection::{DeploymentView, ResourceStatus, RunState, RunView};
use crate::provider::AppKind;
use crate::spec::{LoadOptions, Loaded};
use crate::store::EventStore;

/// What every lifecycle command needs.
pub struct Request {
    /// The journal.
    pub store: Arc<dyn EventStore>,
    /// Where it lives (and so where its locks are).
    pub state: crate::store::StateLocation,
    /// Real services or the sandbox.
    pub target: Target,
    /// The process environment.
    pub env_vars: Vec<(String, String)>,
    /// The clock.
    pub clock: Clock,
    /// Ctrl-C.
    pub interrupt: Interrupt,
    /// Where progress goes.
    pub observer: Box<dyn Observer>,
    /// `--lock-timeout`.
    pub lock_wait: Option<Duration>,
}

fn store_err(e: crate::store::StoreError) -> EngineError {
    EngineError::Record(RecordError::Store(e))
}

/// A run named on the command line: a run id, or a deployment name (its
/// latest run matching `pick`).
pub fn find_run(
    store: &dyn EventStore,
    target: &str,
    pick: impl Fn(&RunView) -> bool,
    what: &str,
) -> Result<RunView, EngineError> {
    if crate::id::RunId::looks_like(target) {
        let id: RunId =
            target
                .parse()
                .map_err(|e: crate::id::InvalidRunId| EngineError::Config {
                    message: e.to_string(),
                    hint: None,
                })?;
        return store
            .run(&id)
            .map_err(store_err)?
            .ok_or_else(|| EngineError::Config {
                message: format!("no run {id} in the journal"),
                hint: Some("`fabrik history DEPLOYMENT` lists the runs".to_owned()),
            });
    }
    let d = DeploymentId::new(target).map_err(|e| EngineError::Config {
        message: e.to_string(),
        hint: Some("give a run id or a deployment name".to_owned()),
    })?;
    let runs = store.runs(&d).map_err(store_err)?;
    if runs.is_empty() {
        return Err(EngineError::Config {
            message: format!("no deployment named {d} in the journal"),
            hint: Some("`fabrik status` lists the deployments".to_owned()),
        });
    }
    runs.into_iter()
        .rev()
        .find(|r| pick(r))
        .ok_or_else(|| EngineError::Config {
            message: format!("deployment {d} has no {what}"),
            hint: Some(format!("`fabrik history {d}` lists its runs")),
        })
}

/// Loads the spec a run was started with (its journaled absolute path).
pub fn spec_of(run: &RunView) -> Result<Loaded, EngineError> {
    let path = run
        .spec_path
        .as_deref()
        .ok_or_else(|| EngineError::Config {
            message: format!("run {} names no spec file", run.run),
            hint: None,
        })?;
    load_spec(Path::new(path))
}

/// Loads and validates a spec file.
pub fn load_spec(path: &Path) -> Result<Loaded, EngineError> {
    crate::spec::load(path, &LoadOptions::default()).map_err(|e| EngineError::Config {
        message: format!("{}: {}", path.display(), crate::error::chain_text(&e)),
        hint: Some(format!(
            "the spec must be readable and valid (`fabrik validate {}`)",
            path.display()
        )),
    })
}

fn view(store: &dyn EventStore, d: &DeploymentId) -> Result<DeploymentView, EngineError> {
    Ok(store
        .deployment(d)
        .map_err(store_err)?
        .unwrap_or_else(|| DeploymentView::new(d.clone())))
}

fn run_of(journal: &Journal) -> (RunId, RunState) {
    let r = journal.lock().unwrap_or_else(|p| p.into_inner());
    (r.run_id().clone(), r.state())
}

fn finish(
    journal: &Journal,
    to: Option<RunState>,
    outcome: RunOutcome,
    code: i32,
    message: &str,
) -> Result<(), EngineError> {
    let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(to) = to
        && r.state() != to
    {
        r.transition(to, None)?;
    }
    r.finish(outcome, code, Some(message.to_owned()))?;
    Ok(())
}

/// A new run of `command` on `deployment` with the lock held.
fn start_run(
    req: &mut Request,
    deployment: &DeploymentId,
    command: RunCommand,
    verb: &str,
    spec_path: Option<&Path>,
    options: RunOptions,
) -> Result<(Journal, crate::lock::HeldLock, RunId), EngineError> {
    let run = RunId::generate();
    let me = holder(&run, verb, &req.clock);
    let guard = take_lock(&req.state, deployment, me.clone(), req.lock_wait)?;
    refuse_open_run(req.store.as_ref(), deployment)?;
    let observer = std::mem::replace(&mut req.observer, Box::new(super::recorder::Quiet));
    let recorder = Recorder::start(
        req.store.clone(),
        deployment.clone(),
        run.clone(),
        RunStarted {
            command,
            spec_path: spec_path.map(spec_path_text),
            spec_hash: None,
            user: me.user.clone(),
            host: me.host.clone(),
            pid: me.pid,
            fabrik_version: env!("CARGO_PKG_VERSION").to_owned(),
            options,
        },
        req.clock.clone(),
        observer,
    )?;
    let journal: Journal = Arc::new(Mutex::new(recorder));
    record(&journal, Event::LockAcquired(LockAcquired { holder: me }))?;
    Ok((journal, guard, run))
}

fn release(journal: &Journal, guard: crate::lock::HeldLock) -> Result<(), EngineError> {
    let run = run_of(journal).0;
    record(journal, Event::LockReleased(LockReleased { run }))?;
    guard.release();
    Ok(())
}

/// Everything needed to talk to the providers for a spec.
struct Prepared {
    loaded: Loaded,
    secrets: crate::spec::secrets::ResolvedSecrets,
    world: World,
    env: Env,
}

fn prepare(loaded: Loaded, env_vars: &[(String, String)]) -> Result<Prepared, EngineError> {
    let env = Env::load(env_vars.iter().cloned(), &loaded.default_dotenv())?;
    let secrets = resolve_secrets(&loaded, &env)?;
    let digests = crate::spec::hash::desired_state(&loaded.spec, &secrets);
    let world = World::from_spec(&loaded.spec, &secrets, digests)?;
    Ok(Prepared {
        loaded,
        secrets,
        world,
        env,
    })
}

async fn connect(
    journal: &Journal,
    p: &Prepared,
    target: &Target,
) -> Result<Connected, EngineError> {
    {
        let mut r = journal.lock().unwrap_or_else(|e| e.into_inner());
        r.scrub(&p.secrets.scrubber());
    }
    connect_and_preflight(journal, &p.loaded.spec, &p.secrets, target, &p.env)
        .await
        .map_err(|(e, _)| e)
}

// ---------------------------------------------------------------- rollback

/// What `fabrik rollback --dry-run` shows.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackPreview {
    /// The run being undone.
    pub run: RunId,
    /// Its deployment.
    pub deployment: DeploymentId,
    /// The steps, in order.
    pub steps: Vec<crate::event::RollbackStep>,
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
fn pending_steps(view: &DeploymentView, run: &RunView) -> Vec<crate::event::RollbackStep> {
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
        .run(&preview.run)
        .map_err(store_err)?
        .ok_or_else(|| EngineError::Config {
            message: format!("no run {}", preview.run),
            hint: None,
        })?;
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
        });
    }
    let prepared = prepare(spec_of(&failed)?, &req.env_vars)?;
    let spec_path = prepared.loaded.path.clone();
    let sandboxed = matches!(req.target, Target::Sandbox(_));
    let (journal, guard, run) = start_run(
        &mut req,
        &deployment,
        RunCommand::Rollback,
        "rollback",
        Some(&spec_path),
        RunOptions {
            target_run: Some(preview.run.clone()),
            sandbox: sandboxed,
            ..RunOptions::default()
        },
    )?;
    advance(&journal, RunState::RollingBack)?;
    let result = async {
        let connected = connect(&journal, &prepared, &req.target).await?;
        let ctx = connected.ctx(&journal, &deployment, &run, &req.interrupt);
        let out =
            super::undo::roll_back_run(&ctx, Some(&prepared.secrets), &preview.run, true).await?;
        Ok::<_, EngineError>((connected, out))
    }
    .await;
    let report = match result {
        Ok((connected, out)) if out.complete() => {
            notify(
                &journal,
                Some(&connected.session),
                &deployment,
                &run,
                "rolled_back",
                &out.summary(),
                &req.clock,
            )
            .await;
            finish(
                &journal,
                Some(RunState::RolledBack),
                RunOutcome::RolledBack,
                0,
                &out.summary(),
            )?;
            Report {
                deployment: deployment.clone(),
                run: Some(run.clone()),
                outcome: RunOutcome::RolledBack,
                exit_code: 0,
                message: format!("rolled back run {}: {}", preview.run, out.summary()),
                urls: Vec::new(),
                changes: out.done.iter().map(|k| format!("{k}: undone")).collect(),
                next: Vec::new(),
            }
        }
        Ok((_, out)) => {
            finish(
                &journal,
                Some(RunState::Failed),
                RunOutcome::NeedsAttention,
                6,
                &out.summary(),
            )?;
            report(
                &deployment,
                &run,
                RunOutcome::NeedsAttention,
                crate::error::exit::NEEDS_ATTENTION,
                format!(
                    "rollback of run {} incomplete: {}",
                    preview.run,
                    out.summary()
                ),
                Vec::new(),
                vec![format!("fabrik rollback {}", preview.run)],
            )
        }
        Err(e) => interrupted_or_failed(
            &journal,
            &deployment,
            &run,
            e,
            None,
            Vec::new(),
            &Stop {
                what: "rollback ".to_owned(),
                failed: format!("rollback of run {} ", preview.run),
                retry: format!("fabrik rollback {}", preview.run),
            },
        )?,
    };
    release(&journal, guard)?;
    Ok(report)
}

/// `fabrik rollback` of a run that never finished (interrupted by Ctrl-C,
/// or its process died), which Fabrik names after an interruption: the run
/// itself is taken over and undone (manual steps included: a person
/// asked), so it ends ROLLED_BACK, or FAILED when something is left.
async fn rollback_open(mut req: Request, run: RunView) -> Result<Report, EngineError> {
    if run.command == RunCommand::Destroy {
        return Err(EngineError::Config {
            message: format!("run {} is an unfinished destroy", run.run),
            hint: Some(format!("finish it with `fabrik resume {}`", run.run)),
        });
    }
    let deployment = run.deployment.clone();
    let prepared = prepare(spec_of(&run)?, &req.env_vars)?;
    let me = holder(&run.run, "rollback", &req.clock);
    let guard = take_lock(&req.state, &deployment, me.clone(), req.lock_wait)?;
    let observer = std::mem::replace(&mut req.observer, Box::new(super::recorder::Quiet));
    let recorder = Recorder::resume(req.store.clone(), run.clone(), req.clock.clone(), observer)?;
    let journal: Journal = Arc::new(Mutex::new(recorder));
    record(
        &journal,
        Event::RunResumed(RunResumed {
            pid: me.pid,
            host: me.host.clone(),
            user: me.user.clone(),
        }),
    )?;
    record(&journal, Event::LockAcquired(LockAcquired { holder: me }))?;
    let id = run.run.clone();
    let state = run_of(&journal).1;
    if state != RunState::RollingBack && !state.can_go_to(RunState::RollingBack) {
        // Stopped while validating: nothing was changed.
        let message = "interrupted before changing anything; nothing to roll back";
        finish(
            &journal,
            Some(RunState::Failed),
            RunOutcome::Failed,
            0,
            message,
        )?;
        release(&journal, guard)?;
        return Ok(report(
            &deployment,
            &id,
            RunOutcome::Failed,
            0,
            format!("run {id} {message}"),
            Vec::new(),
            Vec::new(),
        ));
    }
    let result = async {
        let connected = connect(&journal, &prepared, &req.target).await?;
        advance(&journal, RunState::RollingBack)?;
        let ctx = connected.ctx(&journal, &deployment, &id, &req.interrupt);
        reconcile(&ctx, &prepared.world).await?;
        super::undo::roll_back_run(&ctx, Some(&prepared.secrets), &id, true).await
    }
    .await;
    let out = match result {
        Ok(out) if out.complete() => {
            finish(
                &journal,
                Some(RunState::RolledBack),
                RunOutcome::RolledBack,
                0,
                &out.summary(),
            )?;
            report(
                &deployment,
                &id,
                RunOutcome::RolledBack,
                0,
                format!("rolled back run {id}: {}", out.summary()),
                Vec::new(),
                Vec::new(),
            )
        }
        Ok(out) => {
            finish(
                &journal,
                Some(RunState::Failed),
                RunOutcome::NeedsAttention,
                crate::error::exit::NEEDS_ATTENTION,
                &out.summary(),
            )?;
            report(
                &deployment,
                &id,
                RunOutcome::NeedsAttention,
                crate::error::exit::NEEDS_ATTENTION,
                format!("rollback of run {id} incomplete: {}", out.summary()),
                Vec::new(),
                vec![format!("fabrik rollback {id}")],
            )
        }
        Err(e) => interrupted_or_failed(
            &journal,
            &deployment,
            &id,
            e,
            Some(&req.interrupt),
            Vec::new(),
            &Stop::resumed(&id),
        )?,
    };
    release(&journal, guard)?;
    Ok(out)
}

fn interrupted(journal: &Journal, run: &RunId) -> Result<(), EngineError> {
    record(
        journal,
        Event::RunInterrupted(crate::event::RunInterrupted {
            reason: "interrupted by Ctrl-C".to_owned(),
            resume_command: format!("fabrik resume {run}"),
        }),
    )?;
    Ok(())
}

// ----------------------------------------------------------------- destroy

/// `fabrik destroy SPEC|DEPLOYMENT`: deletes everything the deployment
/// owns, in reverse dependency order. Running it again after a partial
/// failure finishes the job.
pub async fn destroy(mut req: Request, target: &str) -> Result<Report, EngineError> {
    let path = Path::new(target);
    let loaded = if path.is_file() {
        load_spec(path)?
    } else {
        let run = find_run(
            req.store.as_ref(),
            target,
            |r| r.spec_path.is_some(),
            "run with a spec",
        )?;
        spec_of(&run)?
    };
    let deployment = loaded.spec.name.clone();
    let before = view(req.store.as_ref(), &deployment)?;
    if before.run_count == 0 {
        return Err(EngineError::Config {
            message: format!("no deployment named {deployment} in the journal"),
            hint: Some("nothing to destroy".to_owned()),
        });
    }
    let prepared = prepare(loaded, &req.env_vars)?;
    let spec_path = prepared.loaded.path.clone();
    let sandboxed = matches!(req.target, Target::Sandbox(_));
    let (journal, guard, run) = start_run(
        &mut req,
        &deployment,
        RunCommand::Destroy,
        "destroy",
        Some(&spec_path),
        RunOptions {
            sandbox: sandboxed,
            ..RunOptions::default()
        },
    )?;
    advance(&journal, RunState::Destroying)?;
    let result = async {
        let connected = connect(&journal, &prepared, &req.target).await?;
        let ctx = connected.ctx(&journal, &deployment, &run, &req.interrupt);
        let deleted = destroy_all(&ctx, &prepared.world).await?;
        Ok::<_, EngineError>((connected, deleted))
    }
    .await;
    let report = match result {
        Ok((connected, deleted)) => {
            notify(
                &journal,
                Some(&connected.session),
                &deployment,
                &run,
                "destroyed",
                "destroyed",
                &req.clock,
            )
            .await;
            finish(
                &journal,
                Some(RunState::Destroyed),
                RunOutcome::Destroyed,
                0,
                "destroyed",
            )?;
            Report {
                deployment: deployment.clone(),
                run: Some(run.clone()),
                outcome: RunOutcome::Destroyed,
                exit_code: 0,
                message: format!(
                    "{deployment} destroyed: {} resources deleted",
                    deleted.len()
                ),
                urls: Vec::new(),
                changes: deleted.iter().map(|k| format!("{k}: delete")).collect(),
                next: Vec::new(),
            }
        }
        Err(e) => interrupted_or_failed(
            &journal,
            &deployment,
            &run,
            e,
            None,
            Vec::new(),
            &Stop {
                what: "destroy ".to_owned(),
                failed: "destroy ".to_owned(),
                retry: format!("fabrik destroy {deployment}"),
            },
        )?,
    };
    release(&journal, guard)?;
    Ok(report)
}

/// Deletes every resource of the deployment that exists (or may exist: a
/// create whose outcome was never recorded is looked up by its mark).
async fn destroy_all(ctx: &Ctx<'_>, world: &World) -> Result<Vec<ResourceKey>, EngineError> {
    let view = ctx
        .journal
        .lock()
        .map(|r| r.view().clone())
        .unwrap_or_else(|p| p.into_inner().view().clone());
    let mut targets: Vec<_> = view
        .resources
        .values()
        .filter(|r| {
            matches!(r.status, ResourceStatus::Present)
                || (r.status == ResourceStatus::Pending && r.pending.is_some())
        })
        .collect();
    targets.sort_by_key(|r| std::cmp::Reverse((r.kind.creation_rank(), r.key.clone())));
    let mut deleted = Vec::new();
    for r in targets {
        let mark = r
            .mark
            .clone()
            .or_else(|| r.pending.as_ref().and_then(|p| p.mark.clone()));
        let owner = mark.as_ref().map(|m| m.run.clone());
        match r.kind {
            ResourceKind::DnsRecord => {
                let d = r
                    .desired
                    .clone()
                    .and_then(|d| serde_json::from_value::<RecordState>(d).ok())
                    .map(|s| super::desired::record_from_state(&s));
                let lookup = d.as_ref().zip(mark.as_ref());
                steps::dns_delete(ctx, &r.key, r.remote_id.as_deref(), lookup).await?;
            }
            ResourceKind::Monitor => {
                let d = r
                    .desired
                    .clone()
                    .and_then(|d| serde_json::from_value::<MonitorState>(d).ok())
                    .map(|s| super::desired::monitor_from_state(&s));
                let lookup = d.as_ref().zip(mark.as_ref());
                steps::monitor_delete(ctx, &r.key, r.remote_id.as_deref(), lookup).await?;
            }
            ResourceKind::Application => {
                let state = r
                    .desired
                    .clone()
                    .and_then(|d| serde_json::from_value::<AppState>(d).ok());
                let kind = state.as_ref().map_or(world.app.source.kind(), |s| {
                    if matches!(
                        s.source,
                        super::desired::SourceState::Compose { .. }
                            | super::desired::SourceState::Service { .. }
                    ) {
                        AppKind::Service
                    } else {
                        AppKind::Application
                    }
                });
                let name = state
                    .as_ref()
                    .map_or(world.app.name.clone(), |s| s.name.clone());
                let lookup = owner.as_ref().map(|o| (name.as_str(), o));
                steps::app_delete(ctx, kind, r.remote_id.as_deref(), lookup).await?;
            }
        }
        deleted.push(r.key.clone());
    }
    Ok(deleted)
}

// ------------------------------------------------------------------ resume

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
        store.run(&id).map_err(store_err)?
    } else {
        match DeploymentId::new(target) {
            Ok(d) => store.runs(&d).map_err(store_err)?.pop(),
            Err(_) => None,
        }
    };
    let Some(run) = run.filter(|r| {
        r.command == RunCommand::Apply && r.state == RunState::Failed && r.options.no_rollback
    }) else {
        return Ok(None);
    };
    let latest = store
        .runs(&run.deployment)
        .map_err(store_err)?
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
        });
    }
    let loaded = spec_of(&failed)?;
    let env = Env::load(req.env_vars.iter().cloned(), &loaded.default_dotenv())?;
    let secrets = resolve_secrets(&loaded, &env)?;
    let digests = crate::spec::hash::desired_state(&loaded.spec, &secrets);
    if failed.spec_hash.is_some_and(|h| h != digests.total) {
        return Err(EngineError::Config {
            message: format!(
                "the spec (or a secret) changed since run {} started, so resuming it would not finish what it planned",
                failed.run
            ),
            hint: Some(format!(
                "apply the new spec with `fabrik apply {}`, or undo the run with `fabrik rollback {}`",
                loaded.path.display(),
                failed.run
            )),
        });
    }
    let mut report = super::apply::apply(super::apply::ApplyRequest {
        store: req.store,
        state: req.state,
        loaded,
        target: req.target,
        env,
        no_rollback: failed.options.no_rollback,
        refresh: failed.options.refresh,
        retries: None,
        lock_wait: req.lock_wait,
        clock: req.clock,
        interrupt: req.interrupt,
        observer: req.observer,
    })
    .await?;
    report.message = format!(
        "{} (finishing run {}, which failed with --no-rollback)",
        report.message, failed.run
    );
    Ok(report)
}

/// `fabrik resume RUN|DEPLOYMENT`: finishes an interrupted run (or one that
/// failed with `--no-rollback`).
pub async fn resume(mut req: Request, target: &str) -> Result<Report, EngineError> {
    if let Some((failed, latest)) = failed_without_rollback(req.store.as_ref(), target)? {
        return resume_failed(req, failed, latest).await;
    }
    if !RunId::looks_like(target)
        && let Ok(d) = DeploymentId::new(target)
        && let Some(v) = req.store.deployment(&d).map_err(store_err)?
    {
        let latest = match &v.latest_run {
            Some(r) => req.store.run(r).map_err(store_err)?,
            None => None,
        };
        if let Some(run) = latest.clone().filter(ended_unrecorded) {
            return finish_ended(&mut req, run);
        }
        if !latest.as_ref().is_some_and(RunView::is_open) {
            if v.lock.is_some() {
                clear_stale_lock(&req, &d)?;
            }
            return Ok(Report {
                deployment: d,
                run: latest.as_ref().map(|r| r.run.clone()),
                outcome: latest
                    .as_ref()
                    .and_then(|r| r.outcome)
                    .unwrap_or(RunOutcome::NoChanges),
                exit_code: 0,
                message: "nothing to resume: the deployment has no unfinished run".to_owned(),
                urls: Vec::new(),
                changes: Vec::new(),
                next: Vec::new(),
            });
        }
    }
    let run = find_run(
        req.store.as_ref(),
        target,
        RunView::is_open,
        "unfinished run",
    )?;
    if ended_unrecorded(&run) {
        return finish_ended(&mut req, run);
    }
    if !run.is_open() {
        return Err(EngineError::Config {
            message: format!(
                "run {} is not unfinished (it ended {})",
                run.run,
                run.outcome
                    .map_or_else(|| run.state.to_string(), |o| o.to_string())
            ),
            hint: Some(match run.state {
                RunState::Failed => format!("undo it with `fabrik rollback {}`", run.run),
                _ => "nothing to resume".to_owned(),
            }),
        });
    }
    let deployment = run.deployment.clone();
    let loaded = spec_of(&run)?;
    let prepared = prepare(loaded, &req.env_vars)?;
    if run.command == RunCommand::Apply
        && let Some(h) = run.spec_hash
        && h != prepared.world.digests.total
    {
        return Err(EngineError::Config {
            message: format!(
                "the spec (or a secret) changed since run {} started, so it cannot be finished as it was planned",
                run.run
            ),
            hint: Some(format!(
                "restore the spec as it was, or undo the run with `fabrik rollback {}`",
                run.run
            )),
        });
    }
    let me = holder(&run.run, "resume", &req.clock);
    let guard = take_lock(&req.state, &deployment, me.clone(), req.lock_wait)?;
    let observer = std::mem::replace(&mut req.observer, Box::new(super::recorder::Quiet));
    let recorder = Recorder::resume(req.store.clone(), run.clone(), req.clock.clone(), observer)?;
    let journal: Journal = Arc::new(Mutex::new(recorder));
    record(
        &journal,
        Event::RunResumed(RunResumed {
            pid: me.pid,
            host: me.host.clone(),
            user: me.user.clone(),
        }),
    )?;
    record(&journal, Event::LockAcquired(LockAcquired { holder: me }))?;
    let id = run.run.clone();
    let urls = prepared.world.app.domains.clone();
    let connected = match connect(&journal, &prepared, &req.target).await {
        Ok(c) => c,
        Err(e) => {
            // Nothing was changed by this attempt: leave the run open for
            // another resume.
            record(
                &journal,
                Event::RunInterrupted(crate::event::RunInterrupted {
                    reason: format!(
                        "resume could not connect: {}",
                        scrub(&journal, &super::apply::error_text(&e))
                    ),
                    resume_command: format!("fabrik resume {id}"),
                }),
            )?;
            release(&journal, guard)?;
            return Err(e);
        }
    };
    // How a resumed rollback or destroy ends when it fails or is stopped.
    let stopped = |e, urls| {
        interrupted_or_failed(
            &journal,
            &deployment,
            &id,
            e,
            Some(&req.interrupt),
            urls,
            &Stop::resumed(&id),
        )
    };
    let report = match run.command {
        RunCommand::Apply | RunCommand::Rollback if run.state == RunState::RollingBack => {
            let target_run = run.options.target_run.clone().unwrap_or_else(|| id.clone());
            let ctx = connected.ctx(&journal, &deployment, &id, &req.interrupt);
            let result = async {
                reconcile(&ctx, &prepared.world).await?;
                super::undo::roll_back_run(
                    &ctx,
                    Some(&prepared.secrets),
                    &target_run,
                    run.command == RunCommand::Rollback,
                )
                .await
            }
            .await;
            match result {
                Ok(out) if out.complete() => {
                    let code = if run.command == RunCommand::Rollback {
                        0
                    } else {
                        crate::error::exit::ROLLED_BACK
                    };
                    finish(
                        &journal,
                        Some(RunState::RolledBack),
                        RunOutcome::RolledBack,
                        code,
                        &out.summary(),
                    )?;
                    report(
                        &deployment,
                        &id,
                        RunOutcome::RolledBack,
                        code,
                        format!("rollback finished: {}", out.summary()),
                        urls,
                        Vec::new(),
                    )
                }
                Ok(out) => {
                    finish(
                        &journal,
                        Some(RunState::Failed),
                        RunOutcome::NeedsAttention,
                        6,
                        &out.summary(),
                    )?;
                    report(
                        &deployment,
                        &id,
                        RunOutcome::NeedsAttention,
                        6,
                        format!("rollback incomplete: {}", out.summary()),
                        urls,
                        vec![format!("fabrik rollback {target_run}")],
                    )
                }
                Err(e) => stopped(e, urls)?,
            }
        }
        RunCommand::Destroy => {
            let ctx = connected.ctx(&journal, &deployment, &id, &req.interrupt);
            let result = async {
                // Interrupted before it journaled DESTROYING.
                if run_of(&journal).1 == RunState::Pending {
                    advance(&journal, RunState::Destroying)?;
                }
                reconcile(&ctx, &prepared.world).await?;
                destroy_all(&ctx, &prepared.world).await
            }
            .await;
            match result {
                Ok(deleted) => {
                    finish(
                        &journal,
                        Some(RunState::Destroyed),
                        RunOutcome::Destroyed,
                        0,
                        "destroyed",
                    )?;
                    report(
                        &deployment,
                        &id,
                        RunOutcome::Destroyed,
                        0,
                        format!("{deployment} destroyed"),
                        Vec::new(),
                        deleted.iter().map(|k| format!("{k}: delete")).collect(),
                    )
                }
                Err(e) => stopped(e, urls)?,
            }
        }
        _ => {
            let result = async {
                let ctx = connected.ctx(&journal, &deployment, &id, &req.interrupt);
                reconcile(&ctx, &prepared.world).await?;
                if run_of(&journal).1 == RunState::Pending {
                    advance(&journal, RunState::Validating)?;
                }
                let view = journal
                    .lock()
                    .map(|r| r.view().clone())
                    .unwrap_or_else(|p| p.into_inner().view().clone());
                let plan = plan::plan(
                    &deployment,
                    prepared.world.digests.total,
                    &prepared.world.desired(),
                    Some(&view),
                    None,
                    prepared.world.policies,
                );
                let changes: Vec<String> = plan
                    .steps
                    .iter()
                    .filter(|s| s.action != StepAction::Noop)
                    .map(|s| format!("{}: {}", s.key, super::apply::step_word(s.action)))
                    .collect();
                let force_deploy = needs_deploy(&journal, &run);
                execute(
                    &ctx,
                    &prepared.world,
                    &plan,
                    &prepared.loaded.spec,
                    force_deploy,
                )
                .await?;
                Ok::<_, EngineError>(changes)
            }
            .await;
            let result = match result {
                Ok(changes) => Ok((connected, changes)),
                Err(e) => Err((e, Some(connected))),
            };
            conclude(
                &journal,
                result,
                &prepared.secrets,
                &deployment,
                &id,
                run.options.no_rollback,
                &req.interrupt,
                &req.clock,
                urls,
            )
            .await?
        }
    };
    release(&journal, guard)?;
    Ok(report)
}

/// The journal records a holder of the lock of a deployment
/// whose runs have all ended: its process died between `run_finished` and
/// `lock_released`. Taking the real lock proves no process holds it; the
/// record is then cleared with `lock_broken`. Left alone if a live process
/// holds the lock.
fn clear_stale_lock(req: &Request, deployment: &DeploymentId) -> Result<(), EngineError> {
    let me = holder(&RunId::generate(), "resume", &req.clock);
    let Ok(guard) = take_lock(&req.state, deployment, me, None) else {
        return Ok(());
    };
    let v = view(req.store.as_ref(), deployment)?;
    if let Some(previous) = v.lock {
        req.store
            .append(
                deployment,
                v.version,
                &[crate::event::NewEvent {
                    run: None,
                    at: (req.clock)(),
                    event: Event::LockBroken(crate::event::LockBroken {
                        previous,
                        reason: "holder process is gone".to_owned(),
                    }),
                }],
            )
            .map_err(store_err)?;
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
fn finish_ended(req: &mut Request, run: RunView) -> Result<Report, EngineError> {
    use crate::error::exit;
    let untouched = run.created.is_empty() && run.updated.is_empty() && run.deleted.is_empty();
    let (outcome, code, next) = match (run.state, run.command) {
        (RunState::Complete, _) if untouched => (RunOutcome::NoChanges, exit::OK, Vec::new()),
        (RunState::Complete, _) => (RunOutcome::Succeeded, exit::OK, Vec::new()),
        (RunState::Destroyed, _) => (RunOutcome::Destroyed, exit::OK, Vec::new()),
        (RunState::RolledBack, RunCommand::Rollback) => {
            (RunOutcome::RolledBack, exit::OK, Vec::new())
        }
        (RunState::RolledBack, _) => (RunOutcome::RolledBack, exit::ROLLED_BACK, Vec::new()),
        _ => (
            RunOutcome::NeedsAttention,
            exit::NEEDS_ATTENTION,
            vec![format!("fabrik rollback {}", run.run)],
        ),
    };
    let deployment = run.deployment.clone();
    let id = run.run.clone();
    let me = holder(&id, "resume", &req.clock);
    let guard = take_lock(&req.state, &deployment, me.clone(), req.lock_wait)?;
    let observer = std::mem::replace(&mut req.observer, Box::new(super::recorder::Quiet));
    let recorder = Recorder::resume(req.store.clone(), run, req.clock.clone(), observer)?;
    let journal: Journal = Arc::new(Mutex::new(recorder));
    record(
        &journal,
        Event::RunResumed(RunResumed {
            pid: me.pid,
            host: me.host.clone(),
            user: me.user.clone(),
        }),
    )?;
    record(&journal, Event::LockAcquired(LockAcquired { holder: me }))?;
    let message = format!("run {id} had ended ({outcome}); its end is now journaled");
    finish(&journal, None, outcome, code, &message)?;
    release(&journal, guard)?;
    Ok(report(
        &deployment,
        &id,
        outcome,
        code,
        message,
        Vec::new(),
        next,
    ))
}

fn report(
    deployment: &DeploymentId,
    run: &RunId,
    outcome: RunOutcome,
    exit_code: i32,
    message: String,
    urls: Vec<String>,
    next: Vec<String>,
) -> Report {
    Report {
        deployment: deployment.clone(),
        run: Some(run.clone()),
        outcome,
        exit_code,
        message,
        urls,
        changes: Vec::new(),
        next,
    }
}

/// How a run that stopped on `e` is told: interrupted (by Ctrl-C, or with
/// the interrupt set when `interrupt` is given), then `fabrik resume`
/// finishes it; or failed (exit 6), then `stop.retry` is the command.
fn interrupted_or_failed(
    journal: &Journal,
    deployment: &DeploymentId,
    run: &RunId,
    e: EngineError,
    interrupt: Option<&Interrupt>,
    urls: Vec<String>,
    stop: &Stop,
) -> Result<Report, EngineError> {
    if matches!(e, EngineError::Interrupted) || interrupt.is_some_and(Interrupt::is_set) {
        interrupted(journal, run)?;
        return Ok(report(
            deployment,
            run,
            RunOutcome::NeedsAttention,
            crate::error::exit::NEEDS_ATTENTION,
            format!("{}interrupted", stop.what),
            urls,
            vec![format!("fabrik resume {run}")],
        ));
    }
    let text = scrub(journal, &super::apply::error_text(&e));
    finish(
        journal,
        Some(RunState::Failed),
        RunOutcome::NeedsAttention,
        6,
        &text,
    )?;
    Ok(report(
        deployment,
        run,
        RunOutcome::NeedsAttention,
        crate::error::exit::NEEDS_ATTENTION,
        format!("{}failed: {text}", stop.failed),
        urls,
        vec![stop.retry.clone()],
    ))
}

/// The words and the command for a run that stopped (see
/// [`interrupted_or_failed`]): message prefixes (empty, or ending in a
/// space) and the command that retries after a failure.
struct Stop {
    what: String,
    failed: String,
    retry: String,
}

impl Stop {
    /// A resumed apply: a failure is rolled back by hand.
    fn resumed(run: &RunId) -> Self {
        Self {
            what: String::new(),
            failed: String::new(),
            retry: format!("fabrik rollback {run}"),
        }
    }
}

/// Whether the run changed the application without seeing its deployment
/// finish (it must deploy again when resumed).
fn needs_deploy(journal: &Journal, run: &RunView) -> bool {
    let r = journal.lock().unwrap_or_else(|p| p.into_inner());
    let current = r.run().cloned().unwrap_or_else(|| run.clone());
    let key = ResourceKey::new(APP_KEY);
    let touched = current.created.contains(&key) || current.updated.contains(&key);
    let finished = current.deploy.as_ref().and_then(|d| d.status.as_deref()) == Some("finished");
    touched && !finished
}

/// Looks up every resource whose intent has no outcome, by the run's
/// ownership mark: adopts what exists, marks absent what does not.
pub async fn reconcile(ctx: &Ctx<'_>, world: &World) -> Result<(), EngineError> {
    let view = ctx
        .journal
        .lock()
        .map(|r| r.view().clone())
        .unwrap_or_else(|p| p.into_inner().view().clone());
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
        let found: Option<String> = match r.kind {
            ResourceKind::DnsRecord => {
                let (Some(dns), Some(zone)) = (&ctx.session.providers.dns, ctx.zone) else {
                    continue;
                };
                let desired = r
                    .desired
                    .clone()
                    .and_then(|d| serde_json::from_value::<RecordState>(d).ok());
                match desired {
                    Some(s) => {
                        let d = super::desired::record_from_state(&s);
                        let listed =
                            dns.list_records(zone, d.kind, &d.name).await.map_err(|e| {
                                EngineError::provider(format!("looking up {}", r.key), e)
                            })?;
                        match p.action {
                            Action::Create => listed
                                .into_iter()
                                .find(|x| x.mark.as_ref() == Some(&mark) && x.content == d.content)
                                .map(|x| x.id),
                            _ => r
                                .remote_id
                                .clone()
                                .filter(|id| listed.iter().any(|x| &x.id == id)),
                        }
                    }
                    None => r.remote_id.clone(),
                }
            }
            ResourceKind::Application => {
                let name = r
                    .desired
                    .clone()
                    .and_then(|d| serde_json::from_value::<AppState>(d).ok())
                    .map_or(world.app.name.clone(), |s| s.name);
                let app = ctx
                    .session
                    .providers
                    .app
                    .find_app(
                        ctx.target.ok_or_else(|| EngineError::Config {
                            message: "no Coolify target".to_owned(),
                            hint: None,
                        })?,
                        &crate::provider::AppLookup {
                            kind: world.app.source.kind(),
                            uuid: match p.action {
                                Action::Create => None,
                                _ => r.remote_id.clone(),
                            },
                            name,
                            deployment: ctx.deployment.clone(),
                        },
                    )
                    .await
                    .map_err(|e| EngineError::provider("looking up the application", e))?;
                match p.action {
                    Action::Create => app
                        .filter(|a| a.mark.as_ref().is_some_and(|m| m.run == mark.run))
                        .map(|a| a.uuid),
                    _ => app.map(|a| a.uuid),
                }
            }
            ResourceKind::Monitor => {
                let Some(m) = &ctx.session.providers.monitors else {
                    continue;
                };
                let owned = m
                    .find_owned(ctx.deployment)
                    .await
                    .map_err(|e| EngineError::provider("looking up monitors", e))?;
                let name = r
                    .desired
                    .clone()
                    .and_then(|d| serde_json::from_value::<MonitorState>(d).ok())
                    .map(|s| s.name);
                match p.action {
                    Action::Create => owned
                        .into_iter()
                        .find(|x| x.mark.as_ref() == Some(&mark) && Some(&x.name) == name.as_ref())
                        .map(|x| x.id.to_string()),
                    _ => r
                        .remote_id
                        .clone()
                        .filter(|id| owned.iter().any(|x| &x.id.to_string() == id)),
                }
            }
        };
        if p.action == Action::Delete
            && let Some(id) = &found
        {
            // The delete did not happen: no finding describes "still
            // there" (`absent` folds to deleted), so the step is made
            // again now, with its own intent and outcome. Deletes are
            // idempotent, and it was the step in progress.
            redo_delete(ctx, world, r, id).await?;
            continue;
        }
        let finding = match (p.action, &found) {
            (Action::Create, Some(_)) => Finding::Adopted,
            (Action::Create, None) => Finding::Absent,
            (Action::Delete, None) => Finding::Applied,
            // An update or restore is simply made again (it is idempotent).
            (_, Some(_)) => Finding::Absent,
            (_, None) => Finding::Absent,
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

/// Deletes a resource whose delete intent was found not carried out.
async fn redo_delete(
    ctx: &Ctx<'_>,
    world: &World,
    r: &crate::projection::ResourceView,
    id: &str,
) -> Result<(), EngineError> {
    match r.kind {
        ResourceKind::DnsRecord => steps::dns_delete(ctx, &r.key, Some(id), None).await,
        ResourceKind::Monitor => steps::monitor_delete(ctx, &r.key, Some(id), None).await,
        ResourceKind::Application => {
            let kind = r
                .desired
                .clone()
                .and_then(|d| serde_json::from_value::<AppState>(d).ok())
                .map_or(world.app.source.kind(), |s| super::undo::app_kind(&s));
            steps::app_delete(ctx, kind, Some(id), None).await
        }
    }
}

// ---------------------------------------------------------------------- gc

/// A remote resource carrying Fabrik's mark that no deployment of this
/// journal owns.
#[derive(Debug, Clone, Serialize)]
pub struct Orphan {
    /// `application`, `service`, `dns_record`, `monitor`.
    pub kind: String,
    /// Its remote id.
    pub remote_id: String,
    /// Its name.
    pub name: String,
    /// The zone, for DNS records.
    pub zone: Option<String>,
    /// The mark it carries.
    pub mark: OwnershipMark,
    /// Whether `--delete` removed it.
    pub deleted: bool,
}

/// `fabrik gc [--delete]`: finds (and deletes) orphans.
pub async fn gc(
    store: &dyn EventStore,
    target: &Target,
    env_vars: &[(String, String)],
    dotenv: &Path,
    zones: &[String],
    delete: bool,
) -> Result<Vec<Orphan>, EngineError> {
    let env = Env::load(env_vars.iter().cloned(), dotenv)?;
    // What the journal owns: every remote id of a live (or pending)
    // resource, and the deployments with an unfinished run (skipped: their
    // outcome may not be journaled yet).
    let mut owned: BTreeSet<String> = BTreeSet::new();
    let mut busy: BTreeSet<DeploymentId> = BTreeSet::new();
    let mut all_zones: BTreeSet<String> = zones.iter().cloned().collect();
    for d in store.deployments().map_err(store_err)? {
        let v = view(store, &d)?;
        if let Some(l) = &v.latest_run
            && store
                .run(l)
                .map_err(store_err)?
                .is_some_and(|r| r.is_open())
        {
            busy.insert(d.clone());
        }
        for r in v.resources.values() {
            if let Some(id) = &r.remote_id
                && matches!(r.status, ResourceStatus::Present | ResourceStatus::Pending)
            {
                owned.insert(id.clone());
            }
            if r.kind == ResourceKind::DnsRecord
                && let Some(s) = r
                    .desired
                    .clone()
                    .and_then(|d| serde_json::from_value::<RecordState>(d).ok())
            {
                all_zones.insert(s.zone);
            }
        }
    }
    let (endpoints, sandbox) = super::connect::endpoints(target, &env, false, false).await?;
    let http = crate::provider::HttpConfig::default();
    let coolify = crate::provider::CoolifyClient::new(
        crate::provider::CoolifyConfig {
            base_url: endpoints.coolify_url.clone(),
            token: endpoints.coolify_token.clone(),
        },
        http.clone(),
    )
    .map_err(|e| EngineError::provider("setting up coolify", e))?;
    let mut orphans = Vec::new();
    use crate::provider::{AppHost as _, Dns as _, Monitors as _};
    for a in coolify
        .list_owned()
        .await
        .map_err(|e| EngineError::provider("listing Coolify resources", e))?
    {
        if owned.contains(&a.uuid) || busy.contains(&a.mark.deployment) {
            continue;
        }
        let mut o = Orphan {
            kind: match a.kind {
                AppKind::Application => "application",
                AppKind::Service => "service",
            }
            .to_owned(),
            remote_id: a.uuid.clone(),
            name: a.name.clone(),
            zone: None,
            mark: a.mark.clone(),
            deleted: false,
        };
        if delete {
            // Coolify deletes in the background: wait until it is gone, as
            // destroy does, so that "deleted" is true when it is printed.
            let wait = crate::provider::WaitOptions {
                timeout: Duration::from_secs(300),
                poll_interval: if sandbox.is_some() {
                    Duration::from_millis(100)
                } else {
                    Duration::from_secs(3)
                },
            };
            coolify
                .delete_app(a.kind, &a.uuid, Some(wait))
                .await
                .map_err(|e| EngineError::provider(format!("deleting {}", a.uuid), e))?;
            o.deleted = true;
        }
        orphans.push(o);
    }
    if let Some(token) = &endpoints.cloudflare_token {
        let cf = crate::provider::CloudflareClient::new(
            crate::provider::CloudflareConfig {
                api_url: endpoints.cloudflare_url.clone(),
                token: token.clone(),
                use_tags: false,
            },
            http.clone(),
        )
        .map_err(|e| EngineError::provider("setting up cloudflare", e))?;
        for z in &all_zones {
            let zone = cf
                .find_zone(z)
                .await
                .map_err(|e| EngineError::provider(format!("finding zone {z}"), e))?;
            for r in cf
                .list_owned(&zone)
                .await
                .map_err(|e| EngineError::provider(format!("listing records of {z}"), e))?
            {
                let Some(mark) = r.mark.clone() else { continue };
                if owned.contains(&r.id) || busy.contains(&mark.deployment) {
                    continue;
                }
                let mut o = Orphan {
                    kind: "dns_record".to_owned(),
                    remote_id: r.id.clone(),
                    name: format!("{} {}", r.kind, r.name),
                    zone: Some(z.clone()),
                    mark,
                    deleted: false,
                };
                if delete {
                    cf.delete_record(&zone, &r.id)
                        .await
                        .map_err(|e| EngineError::provider(format!("deleting {}", r.id), e))?;
                    o.deleted = true;
                }
                orphans.push(o);
            }
        }
    }
    if let (Some(url), Some(user), Some(pw)) = (
        &endpoints.kuma_url,
        &endpoints.kuma_username,
        &endpoints.kuma_password,
    ) {
        let kuma = crate::provider::KumaClient::new(
            crate::provider::KumaConfig {
                url: url.clone(),
                username: user.clone(),
                password: pw.clone(),
            },
            http,
        );
        for m in kuma
            .list_owned()
            .await
            .map_err(|e| EngineError::provider("listing monitors", e))?
        {
            let Some(mark) = m.mark.clone() else { continue };
            let id = m.id.to_string();
            if owned.contains(&id) || busy.contains(&mark.deployment) {
                continue;
            }
            let mut o = Orphan {
                kind: "monitor".to_owned(),
                remote_id: id,
                name: m.name.clone(),
                zone: None,
                mark,
                deleted: false,
            };
            if delete {
                kuma.delete(m.id)
                    .await
                    .map_err(|e| EngineError::provider(format!("deleting monitor {}", m.id), e))?;
                o.deleted = true;
            }
            orphans.push(o);
        }
    }
    drop(sandbox);
    Ok(orphans)
}
