//! `fabrik apply`: walk the run state machine from a spec to a verified,
//! monitored deployment, and undo by policy what the run created when it
//! fails. Also the planning half of `fabrik plan`.

use std::collections::BTreeMap;

use super::execute::execute;
use super::{Prepared, spec_path_text, step_word};
use crate::engine::desired::{APP_KEY, World};
use crate::engine::preflight;
use crate::engine::run::{End, Locked, Run, Started, transition};
use crate::engine::{Connected, EngineError, Interrupt, Report, Request, record, scrub, with};
use crate::event::{
    Event, Policy, ResourceKey, RunCommand, RunFinished, RunOptions, RunOutcome, RunState,
    RunStateChanged, SecretResolved, SpecValidated,
};
use crate::id::DeploymentId;
use crate::plan::{self, Plan, StepAction};
use crate::projection::ResourceStatus;
use crate::spec::Loaded;
use crate::store::EventStore;

/// What `fabrik apply` is asked to do.
#[derive(Debug)]
pub struct ApplyRequest {
    /// The journal, the providers and the rest every command gets.
    pub base: Request,
    /// The validated spec.
    pub loaded: Loaded,
    /// `--no-rollback`.
    pub no_rollback: bool,
    /// `--refresh`.
    pub refresh: bool,
    /// `--retries`: attempts per provider call, instead of the spec's
    /// `retry.attempts`.
    pub retries: Option<u8>,
}

/// Plans an apply without running it (`fabrik plan`): needs no lock and no
/// provider unless `observed` drift is supplied.
pub fn plan_only(
    store: &dyn EventStore,
    world: &World,
    observed: Option<&BTreeMap<ResourceKey, plan::Observed>>,
) -> Result<Plan, EngineError> {
    let view = store.deployment(&world.deployment)?;
    Ok(plan::plan(
        &world.deployment,
        world.digests.total,
        &world.desired(),
        view.as_ref(),
        observed,
        world.policies,
    ))
}

/// Whether the last run that changed (or deployed) the application did not
/// see a deployment of it finish, and the application is still there: the
/// run failed with `--no-rollback`, or its policy kept the application. It
/// must be deployed again even when nothing in the spec differs.
fn undeployed_app(store: &dyn EventStore, deployment: &DeploymentId) -> Result<bool, EngineError> {
    let Some(view) = store.deployment(deployment)? else {
        return Ok(false);
    };
    let key = ResourceKey::new(APP_KEY);
    let present = view
        .resources
        .get(&key)
        .is_some_and(|r| r.status == ResourceStatus::Present);
    if !present {
        return Ok(false);
    }
    let runs = store.runs(deployment)?;
    let last = runs
        .iter()
        .rev()
        .find(|r| r.created.contains(&key) || r.updated.contains(&key) || r.deploy.is_some());
    Ok(last
        .is_some_and(|r| r.deploy.as_ref().and_then(|d| d.status.as_deref()) != Some("finished")))
}

fn policies_map(world: &World) -> BTreeMap<String, Policy> {
    [
        ("coolify".to_owned(), world.policies.coolify),
        ("dns".to_owned(), world.policies.dns),
        ("monitors".to_owned(), world.policies.monitors),
    ]
    .into_iter()
    .collect()
}

fn warnings(loaded: &Loaded) -> Vec<String> {
    loaded.warnings.iter().map(|w| w.to_string()).collect()
}

/// Runs `fabrik apply`.
pub async fn apply(req: ApplyRequest) -> Result<Report, EngineError> {
    let ApplyRequest {
        mut base,
        mut loaded,
        no_rollback,
        refresh,
        retries,
    } = req;
    if let Some(n) = retries {
        // Not part of the desired state: the hash and the plan ignore it.
        loaded.spec.retry.attempts = n;
    }
    let prepared = Prepared::new(loaded, &base.env_vars)?;
    let world = &prepared.world;
    let deployment = world.deployment.clone();
    let spec_hash = world.digests.total;
    let locked = Locked::take(&base, &deployment, "apply")?;
    let redeploy = undeployed_app(base.store.as_ref(), &deployment)?;
    let plan0 = plan_only(base.store.as_ref(), world, None)?;
    let started = Started {
        command: RunCommand::Apply,
        verb: "apply",
        spec_path: Some(spec_path_text(&prepared.loaded.path)),
        spec_hash: Some(spec_hash),
        options: RunOptions {
            no_rollback,
            sandbox: base.connect.is_sandbox(),
            refresh,
            target_run: None,
            policies: policies_map(world),
        },
    };
    let urls = world.app.domains.clone();
    // The fast path: nothing differs and nothing needs a provider. The
    // whole run is one atomic append (one fsync).
    if plan0.no_changes && !refresh && !redeploy {
        let to = |from, to| {
            Event::RunStateChanged(RunStateChanged {
                from,
                to,
                reason: None,
            })
        };
        let run = locked.complete_at_once(
            &mut base,
            started,
            vec![
                to(RunState::Pending, RunState::Validating),
                Event::SpecValidated(SpecValidated {
                    spec_hash,
                    warnings: warnings(&prepared.loaded),
                }),
                to(RunState::Validating, RunState::Complete),
                Event::RunFinished(RunFinished {
                    outcome: RunOutcome::NoChanges,
                    exit_code: 0,
                    message: Some("no changes".to_owned()),
                }),
            ],
        )?;
        return Ok(Report {
            deployment,
            run: Some(run),
            outcome: RunOutcome::NoChanges,
            exit_code: 0,
            message: "no changes: the deployment matches the spec".to_owned(),
            urls,
            changes: Vec::new(),
            next: Vec::new(),
        });
    }
    let mut run = locked.start(&mut base, started)?;
    with(&run.journal, |r| r.scrub(&prepared.secrets.scrubber()));
    run.serving(urls);
    let result = run_apply(&mut run, &base, &prepared, refresh, redeploy).await;
    conclude(run, result, &prepared, no_rollback, &base.interrupt).await
}

/// Validation, preflight, then the plan's steps.
async fn run_apply(
    run: &mut Run,
    base: &Request,
    prepared: &Prepared,
    refresh: bool,
    redeploy: bool,
) -> Outcome {
    let world = &prepared.world;
    let lift = |e: EngineError| (e, None);
    transition(&run.journal, RunState::Validating, None).map_err(lift)?;
    record(
        &run.journal,
        Event::SpecValidated(SpecValidated {
            spec_hash: world.digests.total,
            warnings: warnings(&prepared.loaded),
        }),
    )
    .map_err(lift)?;
    for (name, s) in prepared.secrets.iter() {
        record(
            &run.journal,
            Event::SecretResolved(SecretResolved {
                name: name.to_owned(),
                source: s.source,
                fingerprint: Some(s.fingerprint),
            }),
        )
        .map_err(lift)?;
    }
    let view = with(&run.journal, |r| r.view().clone());
    let connected =
        preflight::connect(&run.journal, base.connect.as_ref(), prepared.scope(&view)).await;
    if let Ok(c) | Err((_, Some(c))) = &connected {
        run.notify_to(c.remote.providers.notifiers.clone());
    }
    let connected = connected?;
    run.notify("started", "deployment started").await;
    let out = steps(run, &connected, base, prepared, refresh, redeploy).await;
    match out {
        Ok(changes) => Ok((connected, changes)),
        Err(e) => Err((e, Some(connected))),
    }
}

/// Plans from the journal (and the remote side, with `--refresh`) and
/// executes the plan. Returns the changes made.
pub async fn steps(
    run: &Run,
    connected: &Connected,
    base: &Request,
    prepared: &Prepared,
    refresh: bool,
    redeploy: bool,
) -> Result<Vec<String>, EngineError> {
    let world = &prepared.world;
    let ctx = run.ctx(connected, &base.interrupt);
    crate::engine::resource::app::refuse_unchangeable(&ctx, world).await?;
    let observed = if refresh {
        Some(super::refresh::observe(&ctx, world).await?)
    } else {
        None
    };
    let view = ctx.view();
    let plan = plan::plan(
        &world.deployment,
        world.digests.total,
        &world.desired(),
        Some(&view),
        observed.as_ref(),
        world.policies,
    );
    let changes: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.action != StepAction::Noop)
        .map(|s| format!("{}: {}", s.key, step_word(s.action)))
        .collect();
    execute(&ctx, world, &plan, &prepared.loaded.spec, redeploy).await?;
    Ok(changes)
}

/// What an apply's steps came to: the connection and the changes made, or
/// the error (with the connection, when there was one).
pub type Outcome = Result<(Connected, Vec<String>), (EngineError, Option<Connected>)>;

/// Ends an apply (or a resumed apply) after its steps: success (COMPLETE),
/// or the failure path: an interruption is journaled and left for `fabrik
/// resume`; a failure before any change fails the run; with
/// `--no-rollback` nothing is undone; otherwise what the run created is
/// rolled back by policy.
pub async fn conclude(
    run: Run,
    result: Outcome,
    prepared: &Prepared,
    no_rollback: bool,
    interrupt: &Interrupt,
) -> Result<Report, EngineError> {
    let (err, connected) = match result {
        Ok((_, changes)) => {
            let message = format!("{} is deployed and verified", run.deployment);
            let end = End::new(RunOutcome::Succeeded, message)
                .journaling(format!("{} changes", changes.len()))
                .notice("deployed and verified")
                .with_changes(changes);
            return run.finish(end).await;
        }
        Err(failure) => failure,
    };
    let reason = scrub(&run.journal, &err.text());
    let state = run.state();
    let resume = format!("fabrik resume {}", run.id);
    let rollback = format!("fabrik rollback {}", run.id);
    if matches!(err, EngineError::Interrupted) || interrupt.is_set() {
        let end = End::interrupted(
            format!("interrupted during {state}; nothing was undone"),
            &run.id,
        )
        .then(vec![resume, rollback]);
        return run.finish(end).await;
    }
    let changed_something = matches!(
        state,
        RunState::Provisioning | RunState::Deploying | RunState::Verifying
    );
    if !changed_something {
        return Err(run.fail_unchanged(err, &reason));
    }
    if no_rollback {
        let message =
            format!("failed in {state}: {reason}; nothing was rolled back (--no-rollback)");
        let end = End::new(RunOutcome::NeedsAttention, message)
            .because(&reason)
            .then(vec![resume, rollback]);
        return run.finish(end).await;
    }
    transition(&run.journal, RunState::RollingBack, Some(reason.clone()))?;
    let outcome = match &connected {
        Some(c) => {
            let ctx = run.ctx(c, interrupt);
            let secrets = Some(&prepared.secrets);
            super::rollback::roll_back_run(&ctx, &prepared.world, secrets, &run.id, false).await
        }
        None => Err(EngineError::Unresolved {
            what: "a connection to the providers".to_owned(),
        }),
    };
    let (all_done, summary) = match outcome {
        Ok(o) => (o.complete(), o.summary()),
        // Ctrl-C during the rollback: stop there, resumable (the run stays
        // ROLLING_BACK and `fabrik resume` finishes the rollback).
        Err(EngineError::Interrupted) => {
            let message = format!("failed in {state}: {reason}; interrupted while rolling back");
            let end = End::interrupted(message, &run.id);
            return run.finish(end).await;
        }
        Err(e) => (
            false,
            format!("rollback failed: {}", scrub(&run.journal, &e.text())),
        ),
    };
    if all_done {
        let message = format!("failed in {state}: {reason}; rolled back: {summary}");
        let mut end = End::new(RunOutcome::RolledBack, message).because(&reason);
        end.reason = None;
        run.finish(end).await
    } else {
        let message = format!("failed in {state}: {reason}; {summary}");
        let end = End::new(RunOutcome::NeedsAttention, message)
            .because(&reason)
            .then(vec![rollback]);
        run.finish(end).await
    }
}
