//! One change to one remote resource, bracketed in the journal: an intent
//! event is durable before the provider call, an outcome event (with the
//! remote id) after it.
//!
//! A create or deploy whose outcome is unknown (the request may have reached
//! the server) is never blindly repeated: the resource is looked up by this
//! run's ownership mark first, adopted if it is there, and created again
//! only if it is not, within the run's retry limit; each such attempt is
//! journaled as `attempt_failed`, like the HTTP layer's retries.

use std::sync::Mutex;
use std::time::Duration;

use super::desired::{APP_KEY, MonitorWant, RecordWant};
use super::{EngineError, Interrupt, Journal, Session, note, record, scrub};
use crate::event::{
    Action, AttemptFailed, DeployRequested, DeployTriggered, DeploymentObserved, Event,
    ResourceCreated, ResourceDeleted, ResourceFailed, ResourceIntent, ResourceKey, ResourceKind,
    ResourceUpdated,
};
use crate::failpoint;
use crate::id::{DeploymentId, Digest, RunId};
use crate::ownership::OwnershipMark;
use crate::provider::{
    AppDesired, AppKind, AppLookup, DeploymentRef, DeploymentState, DeploymentStatus,
    MonitorDesired, ProviderError, RecordDesired, RemoteApp, ResolvedTarget, WaitOptions, Zone,
};

/// What every step needs.
pub struct Ctx<'a> {
    /// The run's journal.
    pub journal: &'a Journal,
    /// The providers.
    pub session: &'a Session,
    /// The deployment.
    pub deployment: &'a DeploymentId,
    /// The run.
    pub run: &'a RunId,
    /// The resolved Coolify target (after preflight).
    pub target: Option<&'a ResolvedTarget>,
    /// The DNS zone (after preflight).
    pub zone: Option<&'a Zone>,
    /// Ctrl-C.
    pub interrupt: &'a Interrupt,
}

impl Ctx<'_> {
    fn mark(&self) -> OwnershipMark {
        OwnershipMark::new(self.deployment.clone(), self.run.clone())
    }

    fn check_interrupt(&self) -> Result<(), EngineError> {
        if self.interrupt.is_set() {
            Err(EngineError::Interrupted)
        } else {
            Ok(())
        }
    }

    fn failed(
        &self,
        key: &ResourceKey,
        kind: ResourceKind,
        action: Action,
        e: &ProviderError,
        outcome_unknown: bool,
    ) -> Result<(), EngineError> {
        let text = scrub(self.journal, &e.to_string());
        record(
            self.journal,
            Event::ResourceFailed(ResourceFailed {
                resource: key.clone(),
                kind,
                action,
                error: text,
                outcome_unknown,
            }),
        )?;
        Ok(())
    }

    fn zone(&self) -> Result<&Zone, EngineError> {
        self.zone.ok_or_else(|| EngineError::Config {
            message: "the spec has DNS records but no zone was resolved".to_owned(),
            hint: None,
        })
    }

    fn target(&self) -> Result<&ResolvedTarget, EngineError> {
        self.target.ok_or_else(|| EngineError::Config {
            message: "the Coolify target was not resolved".to_owned(),
            hint: None,
        })
    }

    fn dns(&self) -> Result<&dyn crate::provider::Dns, EngineError> {
        self.session
            .providers
            .dns
            .as_deref()
            .ok_or_else(|| EngineError::Config {
                message: "no Cloudflare credentials for the spec's DNS records".to_owned(),
                hint: Some("set CLOUDFLARE_API_TOKEN".to_owned()),
            })
    }

    fn monitors(&self) -> Result<&dyn crate::provider::Monitors, EngineError> {
        self.session
            .providers
            .monitors
            .as_deref()
            .ok_or_else(|| EngineError::Config {
                message: "no Uptime Kuma credentials for the spec's monitors".to_owned(),
                hint: Some(
                    "set UPTIME_KUMA_URL, UPTIME_KUMA_USERNAME and UPTIME_KUMA_PASSWORD".to_owned(),
                ),
            })
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "an intent event has this many fields; a builder would only rename them"
    )]
    fn intent(
        &self,
        key: &ResourceKey,
        kind: ResourceKind,
        action: Action,
        remote_id: Option<String>,
        desired: Option<serde_json::Value>,
        hash: Option<Digest>,
        mark: Option<OwnershipMark>,
    ) -> Result<(), EngineError> {
        self.check_interrupt()?;
        record(
            self.journal,
            Event::ResourceIntent(ResourceIntent {
                resource: key.clone(),
                kind,
                action,
                remote_id,
                desired,
                desired_hash: hash,
                mark,
            }),
        )?;
        Ok(())
    }

    fn created(
        &self,
        key: &ResourceKey,
        kind: ResourceKind,
        remote_id: String,
        hash: Option<Digest>,
        adopted: bool,
    ) -> Result<(), EngineError> {
        record(
            self.journal,
            Event::ResourceCreated(ResourceCreated {
                resource: key.clone(),
                kind,
                remote_id,
                mark: self.mark(),
                desired_hash: hash,
                adopted,
            }),
        )?;
        Ok(())
    }
}

// ------------------------------------------------------------------ DNS

/// Creates a DNS record (adopting it when a lost response already made it).
pub async fn dns_create(ctx: &Ctx<'_>, want: &RecordWant, hash: Digest) -> Result<(), EngineError> {
    let kind = ResourceKind::DnsRecord;
    let state = serde_json::to_value(&want.state).ok();
    let mark = ctx.mark();
    ctx.intent(
        &want.key,
        kind,
        Action::Create,
        None,
        state,
        Some(hash),
        Some(mark.clone()),
    )?;
    let dns = ctx.dns()?;
    let zone = ctx.zone()?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match dns.create_record(zone, &want.desired, &mark).await {
            Ok(remote) => {
                failpoint::effect_done();
                return ctx.created(&want.key, kind, remote.id, Some(hash), false);
            }
            Err(e) if e.outcome_unknown() => {
                note(
                    ctx.journal,
                    &format!("{}: outcome unknown, looking it up", want.key),
                );
                if let Some(found) = find_record(ctx, &want.desired, &mark).await? {
                    return ctx.created(&want.key, kind, found, Some(hash), true);
                }
                if !retry_unknown(ctx, attempt, &e).await? {
                    ctx.failed(&want.key, kind, Action::Create, &e, false)?;
                    return Err(EngineError::provider(format!("creating {}", want.key), e));
                }
            }
            Err(e) => {
                ctx.failed(&want.key, kind, Action::Create, &e, false)?;
                return Err(EngineError::provider(format!("creating {}", want.key), e));
            }
        }
    }
}

/// After a create or deploy whose outcome is unknown and that the lookup
/// did not find (so it did not take effect): journals the failed attempt
/// and waits before the next one, with the same limit and backoff as the
/// HTTP layer's retries. Returns `false` when the attempts are used up.
async fn retry_unknown(
    ctx: &Ctx<'_>,
    attempt: u32,
    e: &ProviderError,
) -> Result<bool, EngineError> {
    let policy = &ctx.session.retry;
    if attempt >= policy.attempts.max(1) {
        return Ok(false);
    }
    ctx.check_interrupt()?;
    let delay = policy.backoff(attempt, rand::random_range(0.0..1.0));
    let mut reason = e.kind.to_string();
    if let Some(s) = e.status {
        reason.push_str(&format!(" (HTTP {s})"));
    }
    reason.push_str("; outcome unknown, and not found by its ownership mark");
    record(
        ctx.journal,
        Event::AttemptFailed(AttemptFailed {
            operation: format!("{} {}", e.provider, e.operation),
            attempt,
            reason: scrub(ctx.journal, &reason),
            delay_ms: delay.as_millis() as u64,
        }),
    )?;
    note(
        ctx.journal,
        &format!(
            "{} {}: {reason}; retrying in {} ms (attempt {})",
            e.provider,
            e.operation,
            delay.as_millis(),
            attempt + 1
        ),
    );
    tokio::time::sleep(delay).await;
    Ok(true)
}

async fn find_record(
    ctx: &Ctx<'_>,
    desired: &RecordDesired,
    mark: &OwnershipMark,
) -> Result<Option<String>, EngineError> {
    let dns = ctx.dns()?;
    let zone = ctx.zone()?;
    let found = dns
        .list_records(zone, desired.kind, &desired.name)
        .await
        .map_err(|e| EngineError::provider(format!("looking up {}", desired.name), e))?;
    Ok(found
        .into_iter()
        .find(|r| r.mark.as_ref() == Some(mark) && r.content == desired.content)
        .map(|r| r.id))
}

/// Updates a DNS record in place (re-creating it if it is gone).
pub async fn dns_update(
    ctx: &Ctx<'_>,
    want: &RecordWant,
    hash: Digest,
    remote_id: &str,
    restore: bool,
) -> Result<(), EngineError> {
    let kind = ResourceKind::DnsRecord;
    let state = serde_json::to_value(&want.state).ok();
    let action = if restore {
        Action::Restore
    } else {
        Action::Update
    };
    ctx.intent(
        &want.key,
        kind,
        action,
        Some(remote_id.to_owned()),
        state,
        Some(hash),
        None,
    )?;
    let dns = ctx.dns()?;
    let zone = ctx.zone()?;
    let listed = dns
        .list_records(zone, want.desired.kind, &want.desired.name)
        .await
        .map_err(|e| EngineError::provider(format!("reading {}", want.key), e))?;
    let Some(remote) = listed.into_iter().find(|r| r.id == remote_id) else {
        // Gone (deleted by hand, or its name changed): record that and
        // create it afresh.
        record(
            ctx.journal,
            Event::ResourceDeleted(ResourceDeleted {
                resource: want.key.clone(),
                kind,
                remote_id: remote_id.to_owned(),
                already_gone: true,
            }),
        )?;
        return dns_create(ctx, want, hash).await;
    };
    let owner = remote.mark.clone().unwrap_or_else(|| ctx.mark());
    match dns
        .update_record(zone, &remote, &want.desired, &owner)
        .await
    {
        Ok(r) => {
            failpoint::effect_done();
            record(
                ctx.journal,
                Event::ResourceUpdated(ResourceUpdated {
                    resource: want.key.clone(),
                    kind,
                    remote_id: r.id,
                    desired_hash: Some(hash),
                    changed: changed_fields(&remote, &want.desired),
                    restored: restore,
                }),
            )?;
            Ok(())
        }
        Err(e) => {
            ctx.failed(&want.key, kind, action, &e, e.outcome_unknown())?;
            Err(EngineError::provider(format!("updating {}", want.key), e))
        }
    }
}

fn changed_fields(r: &crate::provider::RemoteRecord, d: &RecordDesired) -> Vec<String> {
    let mut c = Vec::new();
    if r.content != d.content {
        c.push("content".to_owned());
    }
    if r.ttl != d.ttl {
        c.push("ttl".to_owned());
    }
    if r.proxied != d.proxied {
        c.push("proxied".to_owned());
    }
    c
}

/// Deletes a DNS record. Without a remote id (a create whose outcome was
/// lost), looks it up by this run's mark first.
pub async fn dns_delete(
    ctx: &Ctx<'_>,
    key: &ResourceKey,
    remote_id: Option<&str>,
    lookup: Option<(&RecordDesired, &OwnershipMark)>,
) -> Result<(), EngineError> {
    let kind = ResourceKind::DnsRecord;
    let id = match (remote_id, lookup) {
        (Some(id), _) => Some(id.to_owned()),
        (None, Some((d, m))) => find_record(ctx, d, m).await?,
        (None, None) => None,
    };
    ctx.intent(key, kind, Action::Delete, id.clone(), None, None, None)?;
    let Some(id) = id else {
        record(
            ctx.journal,
            Event::ResourceDeleted(ResourceDeleted {
                resource: key.clone(),
                kind,
                remote_id: String::new(),
                already_gone: true,
            }),
        )?;
        return Ok(());
    };
    match ctx.dns()?.delete_record(ctx.zone()?, &id).await {
        Ok(outcome) => {
            failpoint::effect_done();
            record(
                ctx.journal,
                Event::ResourceDeleted(ResourceDeleted {
                    resource: key.clone(),
                    kind,
                    remote_id: id,
                    already_gone: outcome.already_gone,
                }),
            )?;
            Ok(())
        }
        Err(e) => {
            ctx.failed(key, kind, Action::Delete, &e, e.outcome_unknown())?;
            Err(EngineError::provider(format!("deleting {key}"), e))
        }
    }
}

// ---------------------------------------------------------- application

fn app_key() -> ResourceKey {
    ResourceKey::new(APP_KEY)
}

/// Finds the application by remote id (or, without one, by name and this
/// deployment's mark).
pub async fn find_app(
    ctx: &Ctx<'_>,
    desired: &AppDesired,
    uuid: Option<&str>,
) -> Result<Option<RemoteApp>, EngineError> {
    ctx.session
        .providers
        .app
        .find_app(
            ctx.target()?,
            &AppLookup {
                kind: desired.source.kind(),
                uuid: uuid.map(str::to_owned),
                name: desired.name.clone(),
                deployment: ctx.deployment.clone(),
            },
        )
        .await
        .map_err(|e| EngineError::provider("looking up the application", e))
}

/// Creates the application (without deploying it) and sets its env.
pub async fn app_create(
    ctx: &Ctx<'_>,
    desired: &AppDesired,
    state: &serde_json::Value,
    hash: Digest,
) -> Result<RemoteApp, EngineError> {
    let key = app_key();
    let kind = ResourceKind::Application;
    let mark = ctx.mark();
    ctx.intent(
        &key,
        kind,
        Action::Create,
        None,
        Some(state.clone()),
        Some(hash),
        Some(mark.clone()),
    )?;
    let host = &ctx.session.providers.app;
    let mut app = None;
    let mut attempt = 0;
    while app.is_none() {
        attempt += 1;
        match host.create_app(ctx.target()?, desired, &mark).await {
            Ok(a) => {
                failpoint::effect_done();
                ctx.created(&key, kind, a.uuid.clone(), Some(hash), false)?;
                app = Some(a);
                break;
            }
            Err(e) if e.outcome_unknown() => {
                note(
                    ctx.journal,
                    "application create: outcome unknown, looking it up",
                );
                if let Some(found) = find_app(ctx, desired, None).await?
                    && found.mark.as_ref() == Some(&mark)
                {
                    ctx.created(&key, kind, found.uuid.clone(), Some(hash), true)?;
                    app = Some(found);
                    break;
                }
                if !retry_unknown(ctx, attempt, &e).await? {
                    ctx.failed(&key, kind, Action::Create, &e, false)?;
                    return Err(EngineError::provider("creating the application", e));
                }
            }
            Err(e) => {
                ctx.failed(&key, kind, Action::Create, &e, false)?;
                return Err(EngineError::provider("creating the application", e));
            }
        }
    }
    let app = app.ok_or_else(|| EngineError::Config {
        message: "the application was not created".to_owned(),
        hint: None,
    })?;
    reconcile_env(ctx, &app, desired, hash, false).await?;
    Ok(app)
}

/// Sets the application's env vars. A failure after this step already
/// changed the application (`changed_before`: an update's fields), or one
/// the server answered (a bulk write keeps the items before a bad one),
/// leaves the application half-updated: it is journaled with its outcome
/// unknown, so that a rollback restores the application.
async fn reconcile_env(
    ctx: &Ctx<'_>,
    app: &RemoteApp,
    desired: &AppDesired,
    hash: Digest,
    changed_before: bool,
) -> Result<bool, EngineError> {
    if desired.env.is_empty() && app.kind == AppKind::Service {
        return Ok(false);
    }
    let key = app_key();
    ctx.check_interrupt()?;
    match ctx
        .session
        .providers
        .app
        .reconcile_env(app, &desired.env)
        .await
    {
        Ok(diff) => {
            if diff.changed() {
                failpoint::effect_done();
            }
            Ok(diff.changed())
        }
        Err(e) => {
            ctx.failed(
                &key,
                ResourceKind::Application,
                Action::Update,
                &e,
                e.outcome_unknown() || changed_before || e.status.is_some(),
            )?;
            let _ = hash;
            Err(EngineError::provider(
                "setting the application's env vars",
                e,
            ))
        }
    }
}

/// Updates the application in place (fields that differ, then env vars).
/// Returns the app and whether anything changed.
pub async fn app_update(
    ctx: &Ctx<'_>,
    desired: &AppDesired,
    state: &serde_json::Value,
    hash: Digest,
    remote_id: &str,
    restore: bool,
) -> Result<(RemoteApp, bool), EngineError> {
    let key = app_key();
    let kind = ResourceKind::Application;
    let action = if restore {
        Action::Restore
    } else {
        Action::Update
    };
    ctx.intent(
        &key,
        kind,
        action,
        Some(remote_id.to_owned()),
        Some(state.clone()),
        Some(hash),
        None,
    )?;
    let Some(app) = find_app(ctx, desired, Some(remote_id)).await? else {
        record(
            ctx.journal,
            Event::ResourceDeleted(ResourceDeleted {
                resource: key.clone(),
                kind,
                remote_id: remote_id.to_owned(),
                already_gone: true,
            }),
        )?;
        let app = app_create(ctx, desired, state, hash).await?;
        return Ok((app, true));
    };
    let changed = match ctx.session.providers.app.update_app(&app, desired).await {
        Ok(c) => {
            if !c.is_empty() {
                failpoint::effect_done();
            }
            c
        }
        Err(e) => {
            ctx.failed(&key, kind, action, &e, e.outcome_unknown())?;
            return Err(EngineError::provider("updating the application", e));
        }
    };
    let env_changed = reconcile_env(ctx, &app, desired, hash, !changed.is_empty()).await?;
    let mut fields = changed;
    if env_changed {
        fields.push("env".to_owned());
    }
    let any = !fields.is_empty();
    record(
        ctx.journal,
        Event::ResourceUpdated(ResourceUpdated {
            resource: key,
            kind,
            remote_id: app.uuid.clone(),
            desired_hash: Some(hash),
            changed: fields,
            restored: restore,
        }),
    )?;
    Ok((app, any))
}

/// Deploys the application and waits until the deployment ends. Errors
/// unless it finished.
pub async fn app_deploy(
    ctx: &Ctx<'_>,
    app: &RemoteApp,
    timeout: Duration,
) -> Result<(), EngineError> {
    let key = app_key();
    ctx.check_interrupt()?;
    record(
        ctx.journal,
        Event::DeployRequested(DeployRequested {
            resource: key.clone(),
            remote_id: app.uuid.clone(),
            force: false,
        }),
    )?;
    let host = &ctx.session.providers.app;
    let mut dref = None;
    let mut attempt = 0;
    while dref.is_none() {
        attempt += 1;
        match host.deploy(app, false).await {
            Ok(d) => {
                failpoint::effect_done();
                dref = Some(d);
                break;
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
                    dref = Some(d);
                    break;
                }
                if !retry_unknown(ctx, attempt, &e).await? {
                    return Err(EngineError::provider("deploying the application", e));
                }
            }
            Err(e) => return Err(EngineError::provider("deploying the application", e)),
        }
    }
    let dref = dref.ok_or_else(|| EngineError::Config {
        message: "no deployment was queued".to_owned(),
        hint: None,
    })?;
    wait(ctx, app, dref, timeout, true).await
}

/// For a resumed run whose application was left as the run wanted it:
/// watches the deployment the run queued before it stopped instead of
/// queueing another. When the run had asked for one without learning
/// whether it was queued, Coolify's active deployment of the application
/// is taken; otherwise (and for services, whose deployments have no id)
/// the application is deployed as usual.
pub async fn app_deploy_resumed(
    ctx: &Ctx<'_>,
    app: &RemoteApp,
    timeout: Duration,
) -> Result<(), EngineError> {
    let earlier = ctx
        .journal
        .lock()
        .map(|r| r.run().and_then(|run| run.deploy.clone()))
        .unwrap_or_else(|p| p.into_inner().run().and_then(|run| run.deploy.clone()));
    let Some(earlier) = earlier else {
        return app_deploy(ctx, app, timeout).await;
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
            .session
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
    app_deploy(ctx, app, timeout).await
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
    let key = app_key();
    if announce {
        record(
            ctx.journal,
            Event::DeployTriggered(DeployTriggered {
                resource: key.clone(),
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
    let progress = |s: &DeploymentStatus, elapsed: Duration| {
        let text = s.state.to_string();
        let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
        if l.as_deref() != Some(text.as_str()) {
            let _ = record(
                &journal,
                Event::DeploymentObserved(DeploymentObserved {
                    resource: ResourceKey::new(APP_KEY),
                    deployment_uuid: deployment_id.clone(),
                    status: text.clone(),
                    elapsed_ms: elapsed.as_millis() as u64,
                    url: s.url.clone(),
                }),
            );
            *l = Some(text.clone());
        }
        note(
            &journal,
            &format!("deployment {text}, {} s", elapsed.as_secs()),
        );
    };
    let status = ctx
        .session
        .providers
        .app
        .wait_deployment(
            &dref,
            WaitOptions {
                timeout,
                poll_interval: ctx.session.timing.poll,
            },
            &progress,
        )
        .await
        .map_err(|e| EngineError::provider("waiting for the deployment", e))?;
    let final_text = status.state.to_string();
    let seen = last.lock().map(|l| l.clone()).unwrap_or(None);
    if seen.as_deref() != Some(final_text.as_str()) {
        record(
            ctx.journal,
            Event::DeploymentObserved(DeploymentObserved {
                resource: key,
                deployment_uuid: deployment_id,
                status: final_text.clone(),
                elapsed_ms: 0,
                url: status.url.clone(),
            }),
        )?;
    }
    match status.state {
        DeploymentState::Finished => Ok(()),
        other => Err(EngineError::DeployFailed {
            status: other.to_string(),
            url: status.url,
        }),
    }
}

/// Deletes the application (and waits until Coolify has removed it).
pub async fn app_delete(
    ctx: &Ctx<'_>,
    kind_hint: AppKind,
    remote_id: Option<&str>,
    lookup: Option<(&str, &RunId)>,
) -> Result<(), EngineError> {
    let key = app_key();
    let kind = ResourceKind::Application;
    let id = match (remote_id, lookup) {
        (Some(id), _) => Some(id.to_owned()),
        (None, Some((name, owner))) => {
            let found = ctx
                .session
                .providers
                .app
                .find_app(
                    ctx.target()?,
                    &AppLookup {
                        kind: kind_hint,
                        uuid: None,
                        name: name.to_owned(),
                        deployment: ctx.deployment.clone(),
                    },
                )
                .await
                .map_err(|e| EngineError::provider("looking up the application", e))?
                .filter(|a| a.mark.as_ref().is_some_and(|m| &m.run == owner));
            found.map(|a| a.uuid)
        }
        (None, None) => None,
    };
    let app_kind = kind_hint;
    ctx.intent(&key, kind, Action::Delete, id.clone(), None, None, None)?;
    let Some(id) = id else {
        record(
            ctx.journal,
            Event::ResourceDeleted(ResourceDeleted {
                resource: key,
                kind,
                remote_id: String::new(),
                already_gone: true,
            }),
        )?;
        return Ok(());
    };
    let wait = WaitOptions {
        timeout: Duration::from_secs(300),
        poll_interval: ctx.session.timing.poll,
    };
    match ctx
        .session
        .providers
        .app
        .delete_app(app_kind, &id, Some(wait))
        .await
    {
        Ok(outcome) => {
            failpoint::effect_done();
            record(
                ctx.journal,
                Event::ResourceDeleted(ResourceDeleted {
                    resource: key,
                    kind,
                    remote_id: id,
                    already_gone: outcome.already_gone,
                }),
            )?;
            Ok(())
        }
        Err(e) => {
            ctx.failed(&key, kind, Action::Delete, &e, e.outcome_unknown())?;
            Err(EngineError::provider("deleting the application", e))
        }
    }
}

// ------------------------------------------------------------- monitors

async fn find_monitor(
    ctx: &Ctx<'_>,
    desired: &MonitorDesired,
    mark: &OwnershipMark,
) -> Result<Option<u64>, EngineError> {
    let found = ctx
        .monitors()?
        .find_owned(ctx.deployment)
        .await
        .map_err(|e| EngineError::provider("looking up monitors", e))?;
    Ok(found
        .into_iter()
        .find(|m| m.name == desired.name && m.mark.as_ref() == Some(mark))
        .map(|m| m.id))
}

/// Creates a monitor (adopting it when a lost response already made it).
pub async fn monitor_create(
    ctx: &Ctx<'_>,
    want: &MonitorWant,
    hash: Digest,
) -> Result<(), EngineError> {
    let kind = ResourceKind::Monitor;
    let mark = ctx.mark();
    let state = serde_json::to_value(&want.state).ok();
    ctx.intent(
        &want.key,
        kind,
        Action::Create,
        None,
        state,
        Some(hash),
        Some(mark.clone()),
    )?;
    let monitors = ctx.monitors()?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match monitors.create(&want.desired, &mark).await {
            Ok(m) => {
                failpoint::effect_done();
                return ctx.created(&want.key, kind, m.id.to_string(), Some(hash), false);
            }
            Err(e) if e.outcome_unknown() => {
                if let Some(id) = find_monitor(ctx, &want.desired, &mark).await? {
                    return ctx.created(&want.key, kind, id.to_string(), Some(hash), true);
                }
                if !retry_unknown(ctx, attempt, &e).await? {
                    ctx.failed(&want.key, kind, Action::Create, &e, false)?;
                    return Err(EngineError::provider(format!("creating {}", want.key), e));
                }
            }
            Err(e) => {
                ctx.failed(&want.key, kind, Action::Create, &e, false)?;
                return Err(EngineError::provider(format!("creating {}", want.key), e));
            }
        }
    }
}

/// Updates a monitor in place.
pub async fn monitor_update(
    ctx: &Ctx<'_>,
    want: &MonitorWant,
    hash: Digest,
    remote_id: &str,
    restore: bool,
) -> Result<(), EngineError> {
    let kind = ResourceKind::Monitor;
    let action = if restore {
        Action::Restore
    } else {
        Action::Update
    };
    let state = serde_json::to_value(&want.state).ok();
    ctx.intent(
        &want.key,
        kind,
        action,
        Some(remote_id.to_owned()),
        state,
        Some(hash),
        None,
    )?;
    let id: u64 = remote_id.parse().unwrap_or(0);
    match ctx.monitors()?.update(id, &want.desired).await {
        Ok(()) => {
            failpoint::effect_done();
            record(
                ctx.journal,
                Event::ResourceUpdated(ResourceUpdated {
                    resource: want.key.clone(),
                    kind,
                    remote_id: remote_id.to_owned(),
                    desired_hash: Some(hash),
                    changed: Vec::new(),
                    restored: restore,
                }),
            )?;
            Ok(())
        }
        Err(e) if e.kind == crate::provider::ErrorKind::NotFound => {
            record(
                ctx.journal,
                Event::ResourceDeleted(ResourceDeleted {
                    resource: want.key.clone(),
                    kind,
                    remote_id: remote_id.to_owned(),
                    already_gone: true,
                }),
            )?;
            monitor_create(ctx, want, hash).await
        }
        Err(e) => {
            ctx.failed(&want.key, kind, action, &e, e.outcome_unknown())?;
            Err(EngineError::provider(format!("updating {}", want.key), e))
        }
    }
}

/// Deletes a monitor (looking it up by this run's mark without an id).
pub async fn monitor_delete(
    ctx: &Ctx<'_>,
    key: &ResourceKey,
    remote_id: Option<&str>,
    lookup: Option<(&MonitorDesired, &OwnershipMark)>,
) -> Result<(), EngineError> {
    let kind = ResourceKind::Monitor;
    let id = match (remote_id, lookup) {
        (Some(id), _) => Some(id.to_owned()),
        (None, Some((d, m))) => find_monitor(ctx, d, m).await?.map(|i| i.to_string()),
        (None, None) => None,
    };
    ctx.intent(key, kind, Action::Delete, id.clone(), None, None, None)?;
    let Some(id) = id else {
        record(
            ctx.journal,
            Event::ResourceDeleted(ResourceDeleted {
                resource: key.clone(),
                kind,
                remote_id: String::new(),
                already_gone: true,
            }),
        )?;
        return Ok(());
    };
    match ctx.monitors()?.delete(id.parse().unwrap_or(0)).await {
        Ok(()) => {
            failpoint::effect_done();
            record(
                ctx.journal,
                Event::ResourceDeleted(ResourceDeleted {
                    resource: key.clone(),
                    kind,
                    remote_id: id,
                    already_gone: false,
                }),
            )?;
            Ok(())
        }
        Err(e) => {
            ctx.failed(key, kind, Action::Delete, &e, e.outcome_unknown())?;
            Err(EngineError::provider(format!("deleting {key}"), e))
        }
    }
}
