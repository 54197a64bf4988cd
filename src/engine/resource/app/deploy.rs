//! Deploying the application and watching the deployment to its end.

use std::sync::Mutex;
use std::time::Duration;

use super::key;
use crate::engine::bracket::retry_unknown;
use crate::engine::{Ctx, EngineError, note, record, with};
use crate::event::{DeployRequested, DeployTriggered, DeploymentObserved, Event};
use crate::failpoint;
use crate::provider::{DeploymentRef, DeploymentState, DeploymentStatus, RemoteApp, WaitOptions};

/// Deploys the application and waits until the deployment ends. Errors
/// unless it finished.
pub async fn deploy(ctx: &Ctx<'_>, app: &RemoteApp, timeout: Duration) -> Result<(), EngineError> {
    ctx.check_interrupt()?;
    record(
        ctx.journal,
        Event::DeployRequested(DeployRequested {
            resource: key(),
            remote_id: app.uuid.clone(),
            force: false,
        }),
    )?;
    let host = &ctx.remote.providers.app;
    let mut attempt = 0;
    let dref = loop {
        attempt += 1;
        match host.deploy(app, false).await {
            Ok(d) => {
                failpoint::effect_done();
                break d;
            }
            Err(e) if e.outcome_unknown() => {
                note(
                    ctx.journal,
                    "deploy: outcome unknown, looking for the deployment",
                );
                let active = host
                    .active_deployment(app)
                    .await
                    .map_err(|e| EngineError::provider("looking up the deployment", e))?;
                if let Some(d) = active {
                    break d;
                }
                if !retry_unknown(ctx, attempt, &e).await? {
                    return Err(EngineError::provider("deploying the application", e));
                }
            }
            Err(e) => return Err(EngineError::provider("deploying the application", e)),
        }
    };
    wait(ctx, app, dref, timeout, true).await
}

/// For a resumed run whose application was left as the run wanted it:
/// watches the deployment the run queued before it stopped instead of
/// queueing another. When the run had asked for one without learning
/// whether it was queued, Coolify's active deployment of the application
/// is taken; otherwise (and for services, whose deployments have no id)
/// the application is deployed as usual.
pub async fn deploy_resumed(
    ctx: &Ctx<'_>,
    app: &RemoteApp,
    timeout: Duration,
) -> Result<(), EngineError> {
    let earlier = with(ctx.journal, |r| r.run().and_then(|run| run.deploy.clone()));
    let Some(earlier) = earlier else {
        return deploy(ctx, app, timeout).await;
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
        };
        return wait(ctx, app, dref, timeout, false).await;
    }
    if earlier.status.as_deref() == Some("requested") {
        let active = ctx
            .remote
            .providers
            .app
            .active_deployment(app)
            .await
            .map_err(|e| EngineError::provider("looking up the deployment", e))?;
        if let Some(dref) = active.filter(|d| d.deployment_uuid.is_some()) {
            note(
                ctx.journal,
                "deploy: the deployment asked for before the run stopped is queued; watching it",
            );
            return wait(ctx, app, dref, timeout, true).await;
        }
    }
    deploy(ctx, app, timeout).await
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
            url: status.url,
        }),
    }
}
