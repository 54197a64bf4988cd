//! `fabrik apply`: walk the run state machine from a spec to a verified,
//! monitored deployment, and undo by policy what the run created when it
//! fails.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;

use super::connect::{self, Env, Target};
use super::desired::{APP_KEY, World};
use super::recorder::{Clock, Observer, Recorder};
use super::steps::{self, Ctx};
use super::{EngineError, Interrupt, Journal, Report, Session, note, record, scrub};
use crate::event::{
    Event, LockAcquired, LockHolder, LockReleased, NotificationFailed, NotificationSent, Policy,
    ResourceKey, ResourceKind, RunCommand, RunInterrupted, RunOptions, RunOutcome, RunStarted,
    SecretResolved, SpecValidated, VerificationFailed, VerificationPassed, format_timestamp,
};
use crate::id::{DeploymentId, RunId};
use crate::plan::{self, Plan, StepAction};
use crate::projection::RunState;
use crate::provider::{Notification, Target as CoolifyTarget};
use crate::spec::Loaded;
use crate::spec::secrets::ResolvedSecrets;
use crate::store::EventStore;

/// What `fabrik apply` is asked to do.
pub struct ApplyRequest {
    /// The journal.
    pub store: Arc<dyn EventStore>,
    /// Where the journal lives (and so where its locks are).
    pub state: crate::store::StateLocation,
    /// The validated spec.
    pub loaded: Loaded,
    /// Real services or the sandbox.
    pub target: Target,
    /// Environment and `.env`.
    pub env: Env,
    /// `--no-rollback`.
    pub no_rollback: bool,
    /// `--refresh`.
    pub refresh: bool,
    /// `--retries`: attempts per provider call, instead of the spec's
    /// `retry.attempts`.
    pub retries: Option<u8>,
    /// `--lock-timeout`.
    pub lock_wait: Option<Duration>,
    /// The clock.
    pub clock: Clock,
    /// Ctrl-C.
    pub interrupt: Interrupt,
    /// Where progress goes.
    pub observer: Box<dyn Observer>,
}

/// Resolves the spec's secrets (environment, then `.env`, then generated).
pub fn resolve_secrets(loaded: &Loaded, env: &Env) -> Result<ResolvedSecrets, EngineError> {
    crate::spec::secrets::resolve(
        &loaded.spec,
        &|k| env.var(k).map(str::to_owned),
        &loaded.default_dotenv(),
    )
    .map_err(|e| EngineError::Config {
        message: crate::error::chain_text(&e),
        hint: e.hint(),
    })
}

/// The run's identity for journal and lock.
pub(crate) fn holder(run: &RunId, command: &str, clock: &Clock) -> LockHolder {
    let (user, host, pid) = super::host::who();
    LockHolder {
        run: run.clone(),
        pid,
        host,
        user,
        command: command.to_owned(),
        since: format_timestamp(clock()),
    }
}

/// Takes the deployment's lock (waiting up to `wait`).
pub(crate) fn take_lock(
    state: &crate::store::StateLocation,
    deployment: &DeploymentId,
    holder: LockHolder,
    wait: Option<Duration>,
) -> Result<crate::lock::HeldLock, EngineError> {
    let space = crate::lock::LockSpace::for_state(state);
    let f = || space.acquire(deployment, holder, wait);
    let guard = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    };
    Ok(guard?)
}

/// Refuses to start while the deployment has an unfinished run.
pub(crate) fn refuse_open_run(
    store: &dyn EventStore,
    deployment: &DeploymentId,
) -> Result<(), EngineError> {
    if let Some(view) = store
        .deployment(deployment)
        .map_err(super::recorder::RecordError::from)?
        && let Some(latest) = &view.latest_run
        && let Some(run) = store
            .run(latest)
            .map_err(super::recorder::RecordError::from)?
        && run.is_open()
    {
        return Err(EngineError::OpenRun {
            deployment: deployment.clone(),
            run: run.run,
            state: run.state,
        });
    }
    Ok(())
}

/// Plans an apply without running it (`fabrik plan`): needs no lock and no
/// provider unless `observed` drift is supplied.
pub fn plan_only(
    store: &dyn EventStore,
    world: &World,
    observed: Option<&BTreeMap<ResourceKey, plan::Observed>>,
) -> Result<Plan, EngineError> {
    let view = store
        .deployment(&world.deployment)
        .map_err(super::recorder::RecordError::from)?;
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
    let lift = super::recorder::RecordError::from;
    let Some(view) = store.deployment(deployment).map_err(lift)? else {
        return Ok(false);
    };
    let key = ResourceKey::new(APP_KEY);
    let present = view
        .resources
        .get(&key)
        .is_some_and(|r| r.status == crate::projection::ResourceStatus::Present);
    if !present {
        return Ok(false);
    }
    let runs = store.runs(deployment).map_err(lift)?;
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

/// Runs `fabrik apply`.
pub async fn apply(req: ApplyRequest) -> Result<Report, EngineError> {
    let ApplyRequest {
        store,
        state,
        loaded,
        target,
        env,
        no_rollback,
        refresh,
        retries,
        lock_wait,
        clock,
        interrupt,
        observer,
    } = req;
    let mut loaded = loaded;
    if let Some(n) = retries {
        // Not part of the desired state: the hash and the plan ignore it.
        loaded.spec.retry.attempts = n;
    }
    let spec = &loaded.spec;
    let deployment = spec.name.clone();
    let secrets = resolve_secrets(&loaded, &env)?;
    let digests = crate::spec::hash::desired_state(spec, &secrets);
    let spec_hash = digests.total;
    let world = World::from_spec(spec, &secrets, digests)?;
    let run = RunId::generate();
    let me = holder(&run, "apply", &clock);
    let guard = take_lock(&state, &deployment, me.clone(), lock_wait)?;
    refuse_open_run(store.as_ref(), &deployment)?;
    let redeploy = undeployed_app(store.as_ref(), &deployment)?;
    let urls: Vec<String> = world.app.domains.clone();

    let plan0 = plan_only(store.as_ref(), &world, None)?;
    let started = RunStarted {
        command: RunCommand::Apply,
        spec_path: Some(spec_path_text(&loaded.path)),
        spec_hash: Some(spec_hash),
        user: me.user.clone(),
        host: me.host.clone(),
        pid: me.pid,
        fabrik_version: env!("CARGO_PKG_VERSION").to_owned(),
        options: RunOptions {
            no_rollback,
            sandbox: matches!(target, Target::Sandbox(_)),
            refresh,
            target_run: None,
            policies: policies_map(&world),
        },
    };
    // The fast path: nothing differs and nothing needs a provider. The
    // whole run is one atomic append (one fsync).
    if plan0.no_changes && !refresh && !redeploy {
        let from = |f, t| {
            Event::RunStateChanged(crate::event::RunStateChanged {
                from: f,
                to: t,
                reason: None,
            })
        };
        Recorder::start_with(
            store.clone(),
            deployment.clone(),
            run.clone(),
            started,
            vec![
                from(RunState::Pending, RunState::Validating),
                Event::SpecValidated(SpecValidated {
                    spec_hash,
                    warnings: warnings(&loaded),
                }),
                from(RunState::Validating, RunState::Complete),
                Event::RunFinished(crate::event::RunFinished {
                    outcome: RunOutcome::NoChanges,
                    exit_code: 0,
                    message: Some("no changes".to_owned()),
                }),
            ],
            clock.clone(),
            observer,
        )?;
        guard.release();
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
    let mut recorder = Recorder::start(
        store.clone(),
        deployment.clone(),
        run.clone(),
        started,
        clock.clone(),
        observer,
    )?;
    recorder.scrub(&secrets.scrubber());
    let journal: Journal = Arc::new(Mutex::new(recorder));
    record(
        &journal,
        Event::LockAcquired(LockAcquired { holder: me.clone() }),
    )?;
    let result = run_apply(
        &journal, &loaded, &secrets, &world, &target, &env, refresh, redeploy, &interrupt, &clock,
    )
    .await;
    let report = conclude(
        &journal,
        result,
        &secrets,
        &deployment,
        &run,
        no_rollback,
        &interrupt,
        &clock,
        urls,
    )
    .await?;
    record(
        &journal,
        Event::LockReleased(LockReleased { run: run.clone() }),
    )?;
    guard.release();
    Ok(report)
}

/// Ends a run after its steps: success (COMPLETE), or the failure path.
#[expect(
    clippy::too_many_arguments,
    reason = "everything a run's end needs; bundling it would only move the list"
)]
pub(crate) async fn conclude(
    journal: &Journal,
    result: Result<(Connected, Vec<String>), (EngineError, Option<Connected>)>,
    secrets: &ResolvedSecrets,
    deployment: &DeploymentId,
    run: &RunId,
    no_rollback: bool,
    interrupt: &Interrupt,
    clock: &Clock,
    urls: Vec<String>,
) -> Result<Report, EngineError> {
    match result {
        Ok((connected, changes)) => {
            notify(
                journal,
                Some(&connected.session),
                deployment,
                run,
                "succeeded",
                "deployed and verified",
                clock,
            )
            .await;
            {
                let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
                r.transition(RunState::Complete, None)?;
                r.finish(
                    RunOutcome::Succeeded,
                    0,
                    Some(format!("{} changes", changes.len())),
                )?;
            }
            Ok(Report {
                deployment: deployment.clone(),
                run: Some(run.clone()),
                outcome: RunOutcome::Succeeded,
                exit_code: 0,
                message: format!("{deployment} is deployed and verified"),
                urls,
                changes,
                next: Vec::new(),
            })
        }
        Err((err, connected)) => {
            fail(
                journal,
                connected.as_ref(),
                secrets,
                deployment,
                run,
                err,
                no_rollback,
                interrupt,
                clock,
                urls,
            )
            .await
        }
    }
}

/// The spec path as journaled: absolute, so that `resume` and `rollback`
/// find it from any directory.
pub(crate) fn spec_path_text(path: &std::path::Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

fn warnings(loaded: &Loaded) -> Vec<String> {
    loaded.warnings.iter().map(|w| w.to_string()).collect()
}

/// A session whose preflight passed: the providers with the resolved
/// Coolify target and DNS zone.
pub struct Connected {
    /// The providers.
    pub session: Session,
    /// The Coolify project, environment and server.
    pub target: Option<crate::provider::ResolvedTarget>,
    /// The DNS zone.
    pub zone: Option<crate::provider::Zone>,
}

impl Connected {
    /// A step context over this connection.
    pub fn ctx<'a>(
        &'a self,
        journal: &'a Journal,
        deployment: &'a DeploymentId,
        run: &'a RunId,
        interrupt: &'a Interrupt,
    ) -> Ctx<'a> {
        Ctx {
            journal,
            session: &self.session,
            deployment,
            run,
            target: self.target.as_ref(),
            zone: self.zone.as_ref(),
            interrupt,
        }
    }
}

/// Connects, preflights and resolves the Coolify target and DNS zone.
pub(crate) async fn connect_and_preflight(
    journal: &Journal,
    spec: &crate::spec::Spec,
    secrets: &ResolvedSecrets,
    target: &Target,
    env: &Env,
) -> Result<Connected, (EngineError, Option<Connected>)> {
    let (endpoints, sandbox) =
        connect::endpoints(target, env, spec.dns.is_some(), !spec.monitors.is_empty())
            .await
            .map_err(|e| (e, None))?;
    {
        let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
        r.scrub(&endpoints.scrubber());
    }
    let session = connect::session(spec, secrets, endpoints, sandbox, Some(journal))
        .map_err(|e| (e, None))?;
    {
        let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
        r.scrub(&session.scrubber);
    }
    note(journal, "checking access to Coolify");
    let t = &spec.coolify;
    let resolved = match session
        .providers
        .app
        .preflight(&CoolifyTarget {
            project: t.project.text().to_owned(),
            environment: t.environment.text().to_owned(),
            server: t.server.text().to_owned(),
            destination: t.destination.as_ref().map(|d| d.text().to_owned()),
        })
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return Err((
                EngineError::provider("checking Coolify", e),
                Some(Connected {
                    session,
                    target: None,
                    zone: None,
                }),
            ));
        }
    };
    let zone = match (&spec.dns, &session.providers.dns) {
        (Some(dns), Some(client)) => {
            note(journal, "checking access to Cloudflare");
            match client.find_zone(&dns.zone_name()).await {
                Ok(z) => Some(z),
                Err(e) => {
                    return Err((
                        EngineError::provider(format!("finding zone {}", dns.zone_name()), e),
                        Some(Connected {
                            session,
                            target: Some(resolved),
                            zone: None,
                        }),
                    ));
                }
            }
        }
        _ => None,
    };
    if let Some(m) = &session.providers.monitors {
        note(journal, "checking access to Uptime Kuma");
        if let Err(e) = m.find_owned(&spec.name).await {
            return Err((
                EngineError::provider("checking Uptime Kuma", e),
                Some(Connected {
                    session,
                    target: Some(resolved),
                    zone,
                }),
            ));
        }
    }
    Ok(Connected {
        session,
        target: Some(resolved),
        zone,
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_apply(
    journal: &Journal,
    loaded: &Loaded,
    secrets: &ResolvedSecrets,
    world: &World,
    target: &Target,
    env: &Env,
    refresh: bool,
    redeploy: bool,
    interrupt: &Interrupt,
    clock: &Clock,
) -> Result<(Connected, Vec<String>), (EngineError, Option<Connected>)> {
    let spec = &loaded.spec;
    let run = journal
        .lock()
        .map(|r| r.run_id().clone())
        .unwrap_or_else(|p| p.into_inner().run_id().clone());
    let lift = |e: EngineError| (e, None);
    transition(journal, RunState::Validating, None).map_err(lift)?;
    record(
        journal,
        Event::SpecValidated(SpecValidated {
            spec_hash: world.digests.total,
            warnings: warnings(loaded),
        }),
    )
    .map_err(lift)?;
    for (name, s) in secrets.iter() {
        record(
            journal,
            Event::SecretResolved(SecretResolved {
                name: name.to_owned(),
                source: s.source,
                fingerprint: Some(s.fingerprint),
            }),
        )
        .map_err(lift)?;
    }
    let connected = connect_and_preflight(journal, spec, secrets, target, env).await?;
    let out = async {
        notify(
            journal,
            Some(&connected.session),
            &spec.name,
            &run,
            "started",
            "deployment started",
            clock,
        )
        .await;
        let ctx = connected.ctx(journal, &spec.name, &run, interrupt);
        let observed = if refresh {
            Some(super::undo::observe(&ctx, world).await?)
        } else {
            None
        };
        let view = journal
            .lock()
            .map(|r| r.view().clone())
            .unwrap_or_else(|p| p.into_inner().view().clone());
        let plan = plan::plan(
            &spec.name,
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
        execute(&ctx, world, &plan, spec, redeploy).await?;
        Ok::<_, EngineError>(changes)
    }
    .await;
    match out {
        Ok(changes) => Ok((connected, changes)),
        Err(e) => Err((e, Some(connected))),
    }
}

/// Order of the apply phases, for "already reached" checks.
fn phase(s: RunState) -> u8 {
    match s {
        RunState::Pending => 0,
        RunState::Validating => 1,
        RunState::Provisioning => 2,
        RunState::Deploying => 3,
        RunState::Verifying => 4,
        _ => 5,
    }
}

pub(crate) fn step_word(a: StepAction) -> &'static str {
    match a {
        StepAction::Create => "create",
        StepAction::Update => "update",
        StepAction::Delete => "delete",
        StepAction::Noop => "no change",
    }
}

/// Moves the run to `to` unless it is already there (a resumed run
/// continues from the state it was interrupted in).
pub(crate) fn advance(journal: &Journal, to: RunState) -> Result<(), EngineError> {
    let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
    if r.state() != to {
        r.transition(to, None)?;
    }
    Ok(())
}

fn transition(journal: &Journal, to: RunState, reason: Option<String>) -> Result<(), EngineError> {
    let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
    r.transition(to, reason)?;
    Ok(())
}

/// Executes a plan: DNS (in parallel), the application and its
/// deployment, verification, monitors, then deletions.
pub(crate) async fn execute(
    ctx: &Ctx<'_>,
    world: &World,
    plan: &Plan,
    spec: &crate::spec::Spec,
    force_deploy: bool,
) -> Result<(), EngineError> {
    let state = ctx
        .journal
        .lock()
        .map(|r| r.state())
        .unwrap_or_else(|p| p.into_inner().state());
    let reached = |s: RunState| phase(state) >= phase(s);
    // Entering a phase is a step boundary: after Ctrl-C, stop before it.
    let enter = |s: RunState| {
        if ctx.interrupt.is_set() {
            return Err(EngineError::Interrupted);
        }
        advance(ctx.journal, s)
    };
    if !reached(RunState::Provisioning) {
        enter(RunState::Provisioning)?;
    }
    let dns_steps: Vec<_> = plan
        .steps_of(ResourceKind::DnsRecord)
        .filter(|s| matches!(s.action, StepAction::Create | StepAction::Update))
        .collect();
    let results: Vec<Result<(), EngineError>> = futures_util::stream::iter(dns_steps)
        .map(|s| async move {
            let want = world.record(&s.key).ok_or_else(|| EngineError::Config {
                message: format!("{} is not in the spec", s.key),
                hint: None,
            })?;
            let hash = world
                .digests
                .records
                .get(s.key.as_str())
                .copied()
                .unwrap_or_default();
            match (&s.action, &s.remote_id) {
                (StepAction::Update, Some(id)) => {
                    steps::dns_update(ctx, want, hash, id, false).await
                }
                _ => steps::dns_create(ctx, want, hash).await,
            }
        })
        .buffer_unordered(ctx.session.timing.dns_concurrency.max(1))
        .collect()
        .await;
    for r in results {
        r?;
    }

    if !reached(RunState::Deploying) {
        enter(RunState::Deploying)?;
    }
    let app_step = plan
        .steps
        .iter()
        .find(|s| s.key.as_str() == APP_KEY)
        .cloned();
    let app_state = serde_json::to_value(&world.app_state).unwrap_or_default();
    if let Some(step) = app_step {
        let mut resumed_deploy = false;
        let app = match (&step.action, &step.remote_id) {
            (StepAction::Create, _) | (StepAction::Update, None) => {
                Some(steps::app_create(ctx, &world.app, &app_state, world.digests.app).await?)
            }
            (StepAction::Update, Some(id)) => {
                let (app, _) =
                    steps::app_update(ctx, &world.app, &app_state, world.digests.app, id, false)
                        .await?;
                Some(app)
            }
            // A resumed run that changed the application without seeing
            // its deployment finish: the change may have stopped half-way
            // (created, but its env never set), so it is made again (it is
            // idempotent) before deploying.
            (_, Some(id)) if force_deploy => {
                let (app, changed) =
                    steps::app_update(ctx, &world.app, &app_state, world.digests.app, id, false)
                        .await?;
                // Nothing left to change: the deployment the run queued
                // before it stopped (if any) deploys what is wanted.
                resumed_deploy = !changed;
                Some(app)
            }
            _ => None,
        };
        if let Some(app) = app {
            if resumed_deploy {
                steps::app_deploy_resumed(ctx, &app, spec.timeouts.deploy.get()).await?;
            } else {
                steps::app_deploy(ctx, &app, spec.timeouts.deploy.get()).await?;
            }
        }
    }

    if !reached(RunState::Verifying) {
        enter(RunState::Verifying)?;
    }
    verify(ctx, spec).await?;
    for s in plan.steps_of(ResourceKind::Monitor) {
        let Some(want) = world.monitor(&s.key) else {
            continue;
        };
        let hash = world
            .digests
            .monitors
            .get(s.key.as_str())
            .copied()
            .unwrap_or_default();
        match (&s.action, &s.remote_id) {
            (StepAction::Create, _) | (StepAction::Update, None) => {
                steps::monitor_create(ctx, want, hash).await?
            }
            (StepAction::Update, Some(id)) => {
                steps::monitor_update(ctx, want, hash, id, false).await?
            }
            _ => {}
        }
    }
    // Resources the spec no longer has, now that the new state is verified.
    for s in plan.steps.iter().filter(|s| s.action == StepAction::Delete) {
        match s.kind {
            ResourceKind::Monitor => {
                steps::monitor_delete(ctx, &s.key, s.remote_id.as_deref(), None).await?
            }
            ResourceKind::DnsRecord => {
                steps::dns_delete(ctx, &s.key, s.remote_id.as_deref(), None).await?
            }
            ResourceKind::Application => {
                steps::app_delete(ctx, world.app.source.kind(), s.remote_id.as_deref(), None)
                    .await?
            }
        }
    }
    Ok(())
}

/// Runs the spec's checks, retrying each until the verification timeout.
pub(crate) async fn verify(ctx: &Ctx<'_>, spec: &crate::spec::Spec) -> Result<(), EngineError> {
    let v = &spec.verify;
    let deadline = Instant::now() + v.timeout.get();
    let interval = ctx.session.timing.verify_interval;
    let max_attempts =
        (v.timeout.get().as_millis() / interval.as_millis().max(1)).max(1) as u64 + 1;
    let verifier = &ctx.session.verifier;
    for c in &v.http {
        let name = format!("http {}", c.url);
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            if ctx.interrupt.is_set() {
                return Err(EngineError::Interrupted);
            }
            match verifier
                .http(&c.url, c.status, c.body_contains.as_deref())
                .await
            {
                Ok(ev) => {
                    record(
                        ctx.journal,
                        Event::VerificationPassed(VerificationPassed {
                            check: name.clone(),
                            evidence: serde_json::json!({
                                "status": ev.status,
                                "attempts": attempt,
                                "elapsed_ms": ev.elapsed_ms,
                            }),
                        }),
                    )?;
                    break;
                }
                Err((err, ev)) => {
                    let text = scrub(ctx.journal, &err.0);
                    if Instant::now() + interval > deadline {
                        record(
                            ctx.journal,
                            Event::VerificationFailed(VerificationFailed {
                                check: name.clone(),
                                evidence: serde_json::json!({
                                    "status": ev.as_ref().map(|e| e.status),
                                    "attempts": attempt,
                                    "body_start": ev.as_ref().map(|e| scrub(ctx.journal, &e.body_start)),
                                }),
                                error: text.clone(),
                            }),
                        )?;
                        return Err(EngineError::Verification(text));
                    }
                    let seen = ev.map_or_else(|| text.clone(), |e| e.status.to_string());
                    note(
                        ctx.journal,
                        &format!("{} → {seen}, attempt {attempt} of {max_attempts}", c.url),
                    );
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }
    for c in &v.tls {
        let name = format!("tls {}", c.host);
        let mut attempt = 0u64;
        loop {
            attempt += 1;
            let now = jiff::Timestamp::now();
            match verifier.tls(&c.host, 443, i64::from(c.min_days), now).await {
                Ok(ev) => {
                    record(
                        ctx.journal,
                        Event::VerificationPassed(VerificationPassed {
                            check: name.clone(),
                            evidence: serde_json::to_value(&ev).unwrap_or_default(),
                        }),
                    )?;
                    break;
                }
                Err((err, ev)) => {
                    // An expiry too close will not improve by waiting.
                    if ev.is_some() || Instant::now() + interval > deadline {
                        record(
                            ctx.journal,
                            Event::VerificationFailed(VerificationFailed {
                                check: name.clone(),
                                evidence: serde_json::to_value(&ev).unwrap_or_default(),
                                error: err.0.clone(),
                            }),
                        )?;
                        return Err(EngineError::Verification(err.0));
                    }
                    note(
                        ctx.journal,
                        &format!("{name}: {}, attempt {attempt}", err.0),
                    );
                    tokio::time::sleep(interval).await;
                }
            }
        }
    }
    for c in &v.dns {
        let name = format!("dns {} {}", c.kind.as_str(), c.name);
        let expects: Vec<Option<&str>> = if c.expect.is_empty() {
            vec![None]
        } else {
            c.expect.iter().map(|e| Some(e.as_str())).collect()
        };
        for want in expects {
            let mut attempt = 0u64;
            loop {
                attempt += 1;
                match verifier.dns(&c.name, c.kind.as_str(), want).await {
                    Ok(ev) => {
                        record(
                            ctx.journal,
                            Event::VerificationPassed(VerificationPassed {
                                check: name.clone(),
                                evidence: serde_json::to_value(&ev).unwrap_or_default(),
                            }),
                        )?;
                        break;
                    }
                    Err((err, ev)) => {
                        if Instant::now() + interval > deadline {
                            record(
                                ctx.journal,
                                Event::VerificationFailed(VerificationFailed {
                                    check: name.clone(),
                                    evidence: serde_json::to_value(&ev).unwrap_or_default(),
                                    error: err.0.clone(),
                                }),
                            )?;
                            return Err(EngineError::Verification(err.0));
                        }
                        note(
                            ctx.journal,
                            &format!("{name}: {}, attempt {attempt}", err.0),
                        );
                        tokio::time::sleep(interval).await;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Sends a notification to every channel that wants `event`; journals the
/// result. Never fails the run.
pub(crate) async fn notify(
    journal: &Journal,
    session: Option<&Session>,
    deployment: &DeploymentId,
    run: &RunId,
    event: &str,
    summary: &str,
    clock: &Clock,
) {
    let Some(session) = session else { return };
    for n in session.providers.notifiers.iter() {
        if !n.events.iter().any(|e| e == event) {
            continue;
        }
        let msg = Notification {
            event: event.to_owned(),
            deployment: deployment.clone(),
            run: Some(run.clone()),
            summary: format!("{deployment}: {summary}"),
            at: clock(),
            details: Vec::new(),
        };
        let e = match n.notifier.send(&msg).await {
            Ok(()) => Event::NotificationSent(NotificationSent {
                channel: n.name.clone(),
                event: event.to_owned(),
            }),
            Err(err) => Event::NotificationFailed(NotificationFailed {
                channel: n.name.clone(),
                event: event.to_owned(),
                error: scrub(journal, &err.to_string()),
            }),
        };
        let _ = record(journal, e);
    }
}

/// Ends a failed run: journals an interruption, or fails it (with
/// `--no-rollback`), or rolls back what it created by policy.
#[allow(clippy::too_many_arguments)]
async fn fail(
    journal: &Journal,
    connected: Option<&Connected>,
    secrets: &ResolvedSecrets,
    deployment: &DeploymentId,
    run: &RunId,
    err: EngineError,
    no_rollback: bool,
    interrupt: &Interrupt,
    clock: &Clock,
    urls: Vec<String>,
) -> Result<Report, EngineError> {
    let reason = scrub(journal, &error_text(&err));
    let session = connected.map(|c| &c.session);
    let state = journal
        .lock()
        .map(|r| r.state())
        .unwrap_or_else(|p| p.into_inner().state());
    let resume = format!("fabrik resume {run}");
    let rollback = format!("fabrik rollback {run}");
    if matches!(err, EngineError::Interrupted) || interrupt.is_set() {
        record(
            journal,
            Event::RunInterrupted(RunInterrupted {
                reason: "interrupted by Ctrl-C".to_owned(),
                resume_command: resume.clone(),
            }),
        )?;
        return Ok(Report {
            deployment: deployment.clone(),
            run: Some(run.clone()),
            outcome: RunOutcome::NeedsAttention,
            exit_code: crate::error::exit::NEEDS_ATTENTION,
            message: format!("interrupted during {state}; nothing was undone"),
            urls,
            changes: Vec::new(),
            next: vec![resume, rollback],
        });
    }
    let changed_something = matches!(
        state,
        RunState::Provisioning | RunState::Deploying | RunState::Verifying
    );
    if !changed_something {
        transition(journal, RunState::Failed, Some(reason.clone()))?;
        let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
        r.finish(
            RunOutcome::Failed,
            crate::error::exit::UNEXPECTED,
            Some(reason.clone()),
        )?;
        drop(r);
        return Err(err);
    }
    if no_rollback {
        transition(journal, RunState::Failed, Some(reason.clone()))?;
        notify(
            journal,
            session,
            deployment,
            run,
            "needs_attention",
            &reason,
            clock,
        )
        .await;
        let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
        r.finish(
            RunOutcome::NeedsAttention,
            crate::error::exit::NEEDS_ATTENTION,
            Some(reason.clone()),
        )?;
        return Ok(Report {
            deployment: deployment.clone(),
            run: Some(run.clone()),
            outcome: RunOutcome::NeedsAttention,
            exit_code: crate::error::exit::NEEDS_ATTENTION,
            message: format!(
                "failed in {state}: {reason}; nothing was rolled back (--no-rollback)"
            ),
            urls,
            changes: Vec::new(),
            next: vec![resume, rollback],
        });
    }
    transition(journal, RunState::RollingBack, Some(reason.clone()))?;
    let outcome = match connected {
        Some(c) => {
            let ctx = c.ctx(journal, deployment, run, interrupt);
            super::undo::roll_back_run(&ctx, Some(secrets), run, false).await
        }
        None => Err(EngineError::Config {
            message: "no connection to the providers".to_owned(),
            hint: None,
        }),
    };
    let (all_done, summary) = match outcome {
        Ok(o) => (o.complete(), o.summary()),
        // Ctrl-C during the rollback: stop there, resumable (the run stays
        // ROLLING_BACK and `fabrik resume` finishes the rollback).
        Err(EngineError::Interrupted) => {
            record(
                journal,
                Event::RunInterrupted(RunInterrupted {
                    reason: "interrupted by Ctrl-C".to_owned(),
                    resume_command: resume.clone(),
                }),
            )?;
            return Ok(Report {
                deployment: deployment.clone(),
                run: Some(run.clone()),
                outcome: RunOutcome::NeedsAttention,
                exit_code: crate::error::exit::NEEDS_ATTENTION,
                message: format!("failed in {state}: {reason}; interrupted while rolling back"),
                urls,
                changes: Vec::new(),
                next: vec![resume],
            });
        }
        Err(e) => (
            false,
            format!("rollback failed: {}", scrub(journal, &error_text(&e))),
        ),
    };
    if all_done {
        transition(journal, RunState::RolledBack, None)?;
        notify(
            journal,
            session,
            deployment,
            run,
            "rolled_back",
            &reason,
            clock,
        )
        .await;
        let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
        r.finish(
            RunOutcome::RolledBack,
            crate::error::exit::ROLLED_BACK,
            Some(reason.clone()),
        )?;
        Ok(Report {
            deployment: deployment.clone(),
            run: Some(run.clone()),
            outcome: RunOutcome::RolledBack,
            exit_code: crate::error::exit::ROLLED_BACK,
            message: format!("failed in {state}: {reason}; rolled back: {summary}"),
            urls,
            changes: Vec::new(),
            next: Vec::new(),
        })
    } else {
        transition(journal, RunState::Failed, Some(reason.clone()))?;
        notify(
            journal,
            session,
            deployment,
            run,
            "needs_attention",
            &reason,
            clock,
        )
        .await;
        let mut r = journal.lock().unwrap_or_else(|p| p.into_inner());
        r.finish(
            RunOutcome::NeedsAttention,
            crate::error::exit::NEEDS_ATTENTION,
            Some(reason.clone()),
        )?;
        Ok(Report {
            deployment: deployment.clone(),
            run: Some(run.clone()),
            outcome: RunOutcome::NeedsAttention,
            exit_code: crate::error::exit::NEEDS_ATTENTION,
            message: format!("failed in {state}: {reason}; {summary}"),
            urls,
            changes: Vec::new(),
            next: vec![rollback],
        })
    }
}

/// An engine error and its causes on one line.
pub fn error_text(e: &EngineError) -> String {
    match e {
        EngineError::Provider { resource, source } => format!("{resource}: {source}"),
        other => crate::error::chain_text(other),
    }
}
