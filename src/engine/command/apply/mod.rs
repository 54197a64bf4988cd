//! `fabrik apply`: walk the run state machine from a spec to a verified,
//! monitored deployment, and undo by policy what the run created when it
//! fails. Also the planning half of `fabrik plan`.

use std::collections::BTreeMap;

mod refusals;

pub use refusals::refusals;
use refusals::undeployed_app;

use super::execute::execute;
use super::plan::{Approved, Observations};
use super::{Prepared, spec_path_text, step_word};
use crate::engine::desired::World;
use crate::engine::preflight;
use crate::engine::recorder::RecordError;
use crate::engine::run::{End, Locked, Run, Started, detailed, transition};
use crate::engine::{Connected, EngineError, Interrupt, Report, Request, record, scrub, with};
use crate::event::{
    Event, Policy, ResourceKey, RunCommand, RunFinished, RunOptions, RunOutcome, RunState,
    RunStateChanged, SecretResolved, SpecValidated,
};
use crate::plan::{self, Plan, StepAction};
use crate::spec::Loaded;
use crate::store::EventStore;
use crate::text::count;

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
    /// A plan a person approved: carried out exactly, or refused when the
    /// spec or the journal moved since.
    pub approved: Option<Approved>,
    /// Deploy the application even when nothing differs (`fabrik
    /// redeploy`).
    pub redeploy: bool,
    /// `--take-over`: bind the deployment to this spec although another
    /// spec applied it last.
    pub take_over: bool,
    /// `--rotate NAME`: generate a new value for these secrets although
    /// an earlier run had one (journaled as a rotation).
    pub rotate: Vec<String>,
}

/// Plans an apply without running it (`fabrik plan`): needs no lock and no
/// provider unless `observed` drift is supplied.
pub fn plan_only(
    store: &dyn EventStore,
    world: &World,
    observed: Option<&BTreeMap<ResourceKey, plan::Observed>>,
) -> Result<Plan, EngineError> {
    let view = store.deployment(&world.deployment)?;
    let mut world = world.clone();
    world.align_keys(view.as_ref());
    Ok(plan::plan(
        &world.deployment,
        world.digests.total,
        &world.desired(),
        view.as_ref(),
        observed,
        world.policies,
    ))
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
        base,
        mut loaded,
        no_rollback,
        refresh,
        retries,
        approved,
        redeploy,
        take_over,
        rotate,
    } = req;
    if let Some(n) = retries {
        // Not part of the desired state: the hash and the plan ignore it.
        loaded.spec.retry.attempts = n;
    }
    refusals(&base, &loaded, take_over, &rotate)?;
    let prepared = Prepared::new(loaded, &base.env_vars)?;
    let how = How {
        no_rollback,
        refresh,
        approved,
        redeploy,
        take_over,
        rotate,
        release: None,
        promotion: None,
    };
    carry_out(base, prepared, how).await
}

/// How an apply runs, beyond its spec.
#[derive(Debug, Default)]
pub struct How {
    /// `--no-rollback`.
    pub no_rollback: bool,
    /// Refresh before planning.
    pub refresh: bool,
    /// A plan a person approved.
    pub approved: Option<Approved>,
    /// Deploy even when nothing differs.
    pub redeploy: bool,
    /// Bind the deployment to this spec.
    pub take_over: bool,
    /// Secrets rotated on purpose.
    pub rotate: Vec<String>,
    /// The earlier run whose desired state this apply restores (`fabrik
    /// rollback NAME --to RUN`): `prepared.world` is that state.
    pub release: Option<crate::id::RunId>,
    /// The verified run of another environment whose image this apply
    /// deploys (`fabrik promote`): `prepared.world` pins its digest.
    pub promotion: Option<crate::event::Promotion>,
}

/// Applies `prepared` (its world is what the run converges to).
pub async fn carry_out(
    mut base: Request,
    prepared: Prepared,
    how: How,
) -> Result<Report, EngineError> {
    let How {
        no_rollback,
        refresh,
        approved,
        redeploy,
        take_over,
        rotate,
        release,
        promotion,
    } = how;
    let mut prepared = prepared;
    let deployment = prepared.world.deployment.clone();
    let spec_hash = prepared.world.digests.total;
    let locked = Locked::take(&base, &deployment, "apply")?;
    let spec_id = super::spec_identity(&prepared.loaded.path);
    let redeploy = redeploy || undeployed_app(base.store.as_ref(), &deployment)?;
    let view = super::view(base.store.as_ref(), &deployment)?;
    prepared.world.align_keys(Some(&view));
    let world = &prepared.world;
    // What the remote side shows: as approved, or looked at now (before
    // the run starts, so that a run with nothing to do stays one append).
    let (observed, connected) = match &approved {
        Some(a) => {
            a.check(spec_hash, view.version, &prepared.loaded.path)?;
            (a.observed.clone(), None)
        }
        None if refresh && view.resources.values().any(|r| r.exists()) => {
            let (o, c) = super::plan::refresh(&base, &prepared, world, &view).await?;
            (Some(o), Some(c))
        }
        None => (None, None),
    };
    let plan0 = plan::plan(
        &deployment,
        spec_hash,
        &world.desired(),
        Some(&view),
        observed.as_ref(),
        world.policies,
    );
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
            spec_id: Some(spec_id),
            take_over,
            // A release's world is an earlier run's, not today's file's.
            shared_hash: release.is_none().then_some(prepared.loaded.shared_hash),
            restores: release.clone(),
            promoted_from: promotion,
        },
    };
    let urls = world.app.domains.clone();
    // Nothing differs: the whole run is one atomic append (one fsync).
    if plan0.no_changes && !redeploy {
        let to = |from, to| {
            Event::RunStateChanged(RunStateChanged {
                from,
                to,
                reason: None,
            })
        };
        let (run, journal_head) = locked.complete_at_once(
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
            journal_head,
        });
    }
    let mut run = locked.start(&mut base, started)?;
    with(&run.journal, |r| r.scrub(&prepared.secrets.scrubber()));
    run.serving(urls);
    let result = run_apply(
        &mut run, &base, &prepared, connected, observed, redeploy, &rotate,
    )
    .await;
    conclude(run, result, &prepared, no_rollback, &base.interrupt).await
}

/// Validation, preflight (unless the refresh already connected), then the
/// plan's steps.
async fn run_apply(
    run: &mut Run,
    base: &Request,
    prepared: &Prepared,
    connected: Option<Connected>,
    observed: Option<Observations>,
    redeploy: bool,
    rotate: &[String],
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
                rotated: rotate.iter().any(|r| r == name),
            }),
        )
        .map_err(lift)?;
    }
    let connected = match connected {
        Some(c) => {
            c.hand_to(&run.journal);
            Ok(c)
        }
        None => {
            let view = with(&run.journal, |r| r.view().clone());
            preflight::connect(&run.journal, base.connect.as_ref(), prepared.scope(&view)).await
        }
    };
    if let Ok(c) | Err((_, Some(c))) = &connected {
        run.notify_to(c.remote.providers.notifiers.clone());
    }
    let connected = connected?;
    if let Err(e) = resolve_image(run, &connected, world).await {
        return Err((e, Some(connected)));
    }
    run.notify("started", "deployment started");
    let out = steps(run, &connected, base, prepared, observed, redeploy).await;
    match out {
        Ok(changes) => Ok((connected, changes)),
        Err(e) => Err((e, Some(connected))),
    }
}

/// Journals the digest of the manifest the application's image names now,
/// once, before anything is deployed: what a later `fabrik promote` of
/// this run deploys elsewhere. A registry that cannot be read does not
/// fail the run: the digest is journaled as unknown, with why.
async fn resolve_image(run: &Run, connected: &Connected, world: &World) -> Result<(), EngineError> {
    let crate::provider::AppSource::DockerImage { image, tag } = &world.app.source else {
        return Ok(());
    };
    let reference = crate::engine::resource::app::state::image_reference(image, tag.as_deref());
    let resolved = match crate::id::ImageRef::parse(&reference) {
        Some(r) => connected
            .remote
            .providers
            .images
            .digest(&r)
            .await
            .map_err(|e| {
                let hint = e.hint.clone().map(|h| format!("; {h}")).unwrap_or_default();
                format!("{e}{hint}")
            }),
        None => Err(format!("{reference} is not an image reference")),
    };
    let (digest, error) = match resolved {
        Ok(d) => (Some(d), None),
        Err(e) => (None, Some(crate::text::printable_line(&e).into_owned())),
    };
    record(
        &run.journal,
        Event::ImageResolved(crate::event::ImageResolved {
            image: reference,
            digest,
            error,
        }),
    )?;
    Ok(())
}

/// Plans from the journal (and what refresh showed) and executes the plan.
/// Returns the changes made.
pub async fn steps(
    run: &Run,
    connected: &Connected,
    base: &Request,
    prepared: &Prepared,
    observed: Option<Observations>,
    redeploy: bool,
) -> Result<Vec<String>, EngineError> {
    let ctx = run.ctx(connected, &base.interrupt);
    // The journal's keys for record sets (the view may have moved since
    // the world was aligned, when a resumed run got here).
    let mut aligned = prepared.world.clone();
    aligned.align_keys(Some(&ctx.view()));
    let world = &aligned;
    crate::engine::resource::app::refuse_unchangeable(&ctx, world).await?;
    zone_ready(&ctx, world).await?;
    let view = ctx.view();
    let plan = plan::plan(
        &world.deployment,
        world.digests.total,
        &world.desired(),
        Some(&view),
        observed.as_ref(),
        world.policies,
    );
    crate::engine::resource::dns::check_creates(&ctx, world, &plan).await?;
    let changes: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.action != StepAction::Noop)
        .map(|s| format!("{}: {}", s.key, step_word(s.action)))
        .collect();
    execute(&ctx, world, &plan, &prepared.loaded.spec, redeploy).await?;
    Ok(changes)
}

/// Refuses to change records in a zone that is not active yet: its
/// nameservers are not Cloudflare's, so nothing it holds answers on the
/// public internet and verification could only fail (cloudflare notes §5).
async fn zone_ready(ctx: &crate::engine::Ctx<'_>, world: &World) -> Result<(), EngineError> {
    let (Some(dns), Some(zone)) = (&ctx.remote.providers.dns, ctx.zone) else {
        return Ok(());
    };
    if world.records.is_empty() {
        return Ok(());
    }
    let status = dns
        .zone_status(zone)
        .await
        .map_err(|e| EngineError::provider(format!("reading zone {}", zone.name), e))?;
    match status {
        Some(st) if !st.is_active() => Err(EngineError::Refused {
            message: format!(
                "zone {} is {} in Cloudflare: its records do not answer on the internet yet",
                zone.name, st.status
            ),
            hint: if st.name_servers.is_empty() {
                "finish the zone's setup in Cloudflare, then apply again".to_owned()
            } else {
                format!(
                    "set the nameservers at your registrar to {}, wait until Cloudflare shows the zone active, then apply again",
                    st.name_servers.join(" and ")
                )
            },
        }),
        _ => Ok(()),
    }
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
            // A spec without checks has nothing to verify: the summary
            // must not claim it was.
            let done = if prepared.loaded.spec.verify.checks() == 0 {
                "deployed (no checks configured)"
            } else {
                "deployed and verified"
            };
            let message = format!("{} is {done}", run.deployment);
            let end = End::new(RunOutcome::Succeeded, message)
                .journaling(count(changes.len(), "change"))
                .notice(done)
                .with_changes(changes);
            return run.finish(end).await;
        }
        Err(failure) => failure,
    };
    if matches!(err, EngineError::Record(RecordError::Cut { .. })) {
        // The journal cannot be written: nothing more can be done on the
        // record, so nothing more is done; `fabrik resume` goes on from
        // the last event once it can be.
        return Err(err);
    }
    let reason = scrub(&run.journal, &err.text());
    let details = err.details().map(|d| scrub(&run.journal, &d));
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
        return Err(run.fail_unchanged(err, &reason).await);
    }
    if no_rollback {
        let message = failed_in(state, &reason, "nothing was rolled back (--no-rollback)");
        let end = End::new(RunOutcome::NeedsAttention, detailed(message, &details))
            .because(&reason)
            .journaling(detailed(reason.clone(), &details))
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
            let message = failed_in(state, &reason, "interrupted while rolling back");
            let end = End::interrupted(detailed(message, &details), &run.id);
            return run.finish(end).await;
        }
        Err(e) => (
            false,
            format!("rollback failed: {}", scrub(&run.journal, &e.text())),
        ),
    };
    if all_done {
        let message = failed_in(state, &reason, &format!("rolled back: {summary}"));
        let mut end = End::new(RunOutcome::RolledBack, detailed(message, &details))
            .because(&reason)
            .journaling(detailed(reason.clone(), &details));
        end.reason = None;
        run.finish(end).await
    } else {
        let message = failed_in(state, &reason, &summary);
        let end = End::new(RunOutcome::NeedsAttention, detailed(message, &details))
            .because(&reason)
            .journaling(detailed(reason.clone(), &details))
            .then(vec![rollback]);
        run.finish(end).await
    }
}

/// `failed in STATE: REASON; WHAT FOLLOWED`.
fn failed_in(state: RunState, reason: &str, then: &str) -> String {
    format!("failed in {state}: {reason}; {then}")
}
