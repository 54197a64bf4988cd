//! Deploying the application and watching the deployment to its end.
//!
//! A deploy is made exactly once, whenever a crashed run is resumed: the
//! application's newest deployment is read just before the request and
//! journaled with it (`deploy_requested`), so a resumed run that never
//! learnt what the request did takes any newer deployment as its own,
//! queued, running or long finished, instead of asking again.
//!
//! Coolify skips a deploy while one of the same commit is queued or running
//! (`bootstrap/helpers/applications.php:46-64 @4.3.11`; for an image the
//! commit is always `HEAD`). A queued one reads the application when it
//! starts, so it deploys what was just changed; one already running read it
//! before: it is waited for, and the application deployed again.

use std::ops::ControlFlow;
use std::sync::Mutex;
use std::time::Duration;

use super::key;
use crate::engine::bracket::retry_unknown;
use crate::engine::{Ctx, EngineError, LogTail, note, record, scrub, with};
use crate::event::{DeployRequested, DeployTriggered, DeploymentObserved, Event};
use crate::failpoint;
use crate::provider::{
    AppKind, BuildLog, DeploymentRef, DeploymentState, DeploymentStatus, RemoteApp, WaitOptions,
};
use crate::store::Scan;
use crate::text::printable_line;

/// How many times a deploy waits for a deployment that started before the
/// change and asks again, before it forces one (a rebuild without cache).
const STALE_WAITS: u32 = 2;

/// The application's newest deployment before a deploy: what tells a
/// resumed run its own deployment from older ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Baseline {
    /// The application was created by this run, so it has no deployment
    /// yet (Fabrik creates it with `instant_deploy` false): none, without
    /// asking.
    Fresh,
    /// Read already (side by side with the change before the deploy).
    Read(Option<String>),
    /// To be read just before the deploy.
    Ask,
}

/// Reads the application's newest deployment (none for a service, which
/// keeps no deployment rows).
pub async fn baseline(ctx: &Ctx<'_>, app: &RemoteApp) -> Result<Option<String>, EngineError> {
    if app.kind != AppKind::Application {
        return Ok(None);
    }
    ctx.remote
        .providers
        .app
        .latest_deployment(app)
        .await
        .map_err(|e| EngineError::provider("reading the application's deployments", e))
}

/// Deploys the application and waits until the deployment ends. Errors
/// unless it finished.
pub async fn deploy(
    ctx: &Ctx<'_>,
    app: &RemoteApp,
    timeout: Duration,
    known: Baseline,
) -> Result<(), EngineError> {
    ctx.check_interrupt()?;
    let baseline = app.kind == AppKind::Application;
    let previous = match known {
        _ if !baseline => None,
        Baseline::Fresh => None,
        Baseline::Read(previous) => previous,
        Baseline::Ask => self::baseline(ctx, app).await?,
    };
    record(
        ctx.journal,
        Event::DeployRequested(DeployRequested {
            resource: key(),
            remote_id: app.uuid.clone(),
            force: false,
            baseline,
            previous: previous.clone(),
        }),
    )?;
    let dref = request(ctx, app, previous.as_deref(), timeout).await?;
    wait(ctx, app, dref, timeout, true).await
}

/// Asks for the deployment until one deploys what the application is now.
async fn request(
    ctx: &Ctx<'_>,
    app: &RemoteApp,
    previous: Option<&str>,
    timeout: Duration,
) -> Result<DeploymentRef, EngineError> {
    let host = &ctx.remote.providers.app;
    let mut attempt = 0;
    let mut stale = 0;
    loop {
        attempt += 1;
        let force = stale >= STALE_WAITS;
        match host.deploy(app, force).await {
            Ok(d) => {
                failpoint::effect_done();
                if !(d.already_queued && d.started) {
                    return Ok(d);
                }
                stale += 1;
                // A deployment in progress read the application before the
                // change; or the one that made Coolify skip ended in between.
                if let Some(uuid) = &d.deployment_uuid {
                    note(
                        ctx.journal,
                        &format!(
                            "deploy: deployment {uuid} started before this change and deploys what came before it; waiting for it to end, then deploying again"
                        ),
                    );
                    host.wait_deployment(
                        &d,
                        WaitOptions {
                            timeout,
                            poll_interval: ctx.remote.pace.poll,
                        },
                        &|_, _| {},
                    )
                    .await
                    .map_err(|e| EngineError::provider("waiting for an earlier deployment", e))?;
                }
            }
            Err(e) if e.outcome_unknown() => {
                note(
                    ctx.journal,
                    "deploy: outcome unknown, looking for the deployment",
                );
                if let Some(d) = queued_since(ctx, app, previous).await? {
                    return Ok(d);
                }
                if !retry_unknown(ctx, attempt, &e).await? {
                    return Err(EngineError::provider("deploying the application", e));
                }
            }
            Err(e) => return Err(EngineError::provider("deploying the application", e)),
        }
    }
}

/// The deployment a request made after `previous` queued, if there is one
/// (whatever its status); `None` for services, which keep no rows.
async fn queued_since(
    ctx: &Ctx<'_>,
    app: &RemoteApp,
    previous: Option<&str>,
) -> Result<Option<DeploymentRef>, EngineError> {
    ctx.remote
        .providers
        .app
        .deployment_after(app, previous)
        .await
        .map_err(|e| EngineError::provider("looking up the deployment", e))
}

/// The last `deploy_requested` this run journaled.
fn last_request(ctx: &Ctx<'_>) -> Result<Option<DeployRequested>, EngineError> {
    let store = with(ctx.journal, |r| r.store().clone());
    let mut found = None;
    let mut bad = None;
    store.scan(
        &Scan {
            deployment: Some(ctx.deployment.clone()),
            run: Some(ctx.run.clone()),
            until_seq: None,
        },
        &mut |e| {
            if e.type_name == "deploy_requested" {
                match e.decode() {
                    Ok(r) => {
                        if let Event::DeployRequested(d) = r.event {
                            found = Some(d);
                        }
                    }
                    Err(err) => {
                        bad = Some(err);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        },
    )?;
    match bad {
        Some(e) => Err(e.into()),
        None => Ok(found),
    }
}

/// For a resumed run whose application was left as the run wanted it:
/// watches the deployment the run queued before it stopped instead of
/// queueing another. When the run had asked for one without learning what
/// came of it, the deployment newer than the one journaled with the
/// request is the run's (finished by now or not); otherwise (and for
/// services, whose deployments have no id) the application is deployed as
/// usual.
pub async fn deploy_resumed(
    ctx: &Ctx<'_>,
    app: &RemoteApp,
    timeout: Duration,
) -> Result<(), EngineError> {
    let earlier = with(ctx.journal, |r| r.run().and_then(|run| run.deploy.clone()));
    let Some(earlier) = earlier else {
        return deploy(ctx, app, timeout, Baseline::Ask).await;
    };
    if let Some(uuid) = earlier.deployment_uuid {
        note(
            ctx.journal,
            &format!("deploy: watching deployment {uuid}, queued before the run stopped"),
        );
        let dref = DeploymentRef {
            kind: app.kind,
            app_uuid: app.uuid.clone(),
            deployment_uuid: Some(uuid),
            already_queued: true,
            started: false,
        };
        return wait(ctx, app, dref, timeout, false).await;
    }
    if earlier.status.as_deref() == Some("requested") {
        let request = last_request(ctx)?.filter(|r| r.remote_id == app.uuid);
        let found = match &request {
            Some(r) if r.baseline => queued_since(ctx, app, r.previous.as_deref()).await?,
            // Journaled before the baseline was: the active deployment.
            _ => ctx
                .remote
                .providers
                .app
                .active_deployment(app)
                .await
                .map_err(|e| EngineError::provider("looking up the deployment", e))?,
        };
        if let Some(dref) = found.filter(|d| d.deployment_uuid.is_some()) {
            note(
                ctx.journal,
                "deploy: the deployment asked for before the run stopped was queued; watching it",
            );
            return wait(ctx, app, dref, timeout, true).await;
        }
    }
    deploy(ctx, app, timeout, Baseline::Ask).await
}

/// Records the deployment a deploy call queued (`announce`) and waits for
/// it to end.
pub async fn wait(
    ctx: &Ctx<'_>,
    app: &RemoteApp,
    dref: DeploymentRef,
    timeout: Duration,
    announce: bool,
) -> Result<(), EngineError> {
    if announce {
        record(
            ctx.journal,
            Event::DeployTriggered(DeployTriggered {
                resource: key(),
                remote_id: app.uuid.clone(),
                deployment_uuid: dref.deployment_uuid.clone(),
                force: false,
            }),
        )?;
    }
    let last: Mutex<Option<String>> = Mutex::new(None);
    let deployment_id = dref
        .deployment_uuid
        .clone()
        .unwrap_or_else(|| format!("{} (service)", app.uuid));
    let journal = ctx.journal.clone();
    let observed = |status: &DeploymentStatus, elapsed: Duration| {
        Event::DeploymentObserved(DeploymentObserved {
            resource: key(),
            deployment_uuid: deployment_id.clone(),
            status: status.state.to_string(),
            elapsed_ms: elapsed.as_millis() as u64,
            url: status.url.clone(),
        })
    };
    let progress = |s: &DeploymentStatus, elapsed: Duration| {
        let text = s.state.to_string();
        let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
        if l.as_deref() != Some(text.as_str()) {
            let _ = record(&journal, observed(s, elapsed));
            *l = Some(text.clone());
        }
        note(
            &journal,
            &format!("deployment {text}, {} s", elapsed.as_secs()),
        );
    };
    let status = ctx
        .remote
        .providers
        .app
        .wait_deployment(
            &dref,
            WaitOptions {
                timeout,
                poll_interval: ctx.remote.pace.poll,
            },
            &progress,
        )
        .await
        .map_err(|e| EngineError::provider("waiting for the deployment", e))?;
    let seen = last.lock().map(|l| l.clone()).unwrap_or(None);
    if seen.as_deref() != Some(status.state.to_string().as_str()) {
        record(ctx.journal, observed(&status, Duration::ZERO))?;
    }
    match status.state {
        DeploymentState::Finished => Ok(()),
        other => Err(EngineError::DeployFailed {
            status: other.to_string(),
            log: log_tail(ctx, &dref).await,
            url: status.url,
        }),
    }
}

/// How many lines of a failed deployment's build log its failure shows.
const TAIL_LINES: usize = 12;

/// The last lines of a deployment's build log, scrubbed of every secret
/// the run knows and escaped (a build log echoes what it runs). Reading it
/// is best effort: a failure to read it is noted, never the run's error.
async fn log_tail(ctx: &Ctx<'_>, dref: &DeploymentRef) -> LogTail {
    let Some(uuid) = &dref.deployment_uuid else {
        return LogTail::Unread;
    };
    match ctx.remote.providers.app.build_log(uuid).await {
        Ok(BuildLog::Lines(lines)) => {
            let from = lines.len().saturating_sub(TAIL_LINES);
            LogTail::Lines(
                lines[from..]
                    .iter()
                    .map(|l| printable_line(&scrub(ctx.journal, &l.text)).into_owned())
                    .collect(),
            )
        }
        Ok(BuildLog::Hidden { .. }) => LogTail::Hidden,
        Err(e) => {
            note(
                ctx.journal,
                &format!(
                    "the build log of deployment {uuid} could not be read: {}",
                    scrub(ctx.journal, &e.to_string())
                ),
            );
            LogTail::Unread
        }
    }
}
