//! The application (a Coolify application or service): everything the
//! engine does with it. Its journal form is in [`state`], its deployment
//! in [`deploy`].

pub mod deploy;
mod mapping;
pub mod state;

use std::time::Duration;

use async_trait::async_trait;

use super::{Doomed, Kind, Phase, decode, decode_value, state_value};
use crate::engine::bracket::{self, Creation, Subject};
use crate::engine::desired::{APP_KEY, World};
use crate::engine::{Ctx, EngineError, note};
use crate::event::{Action, ResourceKey, ResourceKind};
use crate::failpoint;
use crate::id::Digest;
use crate::ownership::OwnershipMark;
use crate::plan::{Observed, Step, StepAction};
use crate::projection::{PendingIntent, ResourceView};
use crate::provider::{
    AppDesired, AppKind, AppLookup, AppSource, RemoteApp, ResolvedTarget, WaitOptions,
};
use crate::spec::secrets::ResolvedSecrets;
use state::AppState;

const KIND: ResourceKind = ResourceKind::Application;

/// The application kind.
#[derive(Debug)]
pub struct Apps;

/// The key of the application resource.
pub fn key() -> ResourceKey {
    ResourceKey::new(APP_KEY)
}

fn target<'a>(ctx: &'a Ctx<'_>) -> Result<&'a ResolvedTarget, EngineError> {
    ctx.target.ok_or_else(|| EngineError::Unresolved {
        what: "the Coolify target".to_owned(),
    })
}

/// Finds the application by remote id (or, without one, by name and this
/// deployment's mark).
pub async fn find(
    ctx: &Ctx<'_>,
    kind: AppKind,
    name: &str,
    uuid: Option<&str>,
) -> Result<Option<RemoteApp>, EngineError> {
    ctx.remote
        .providers
        .app
        .find_app(
            target(ctx)?,
            &AppLookup {
                kind,
                uuid: uuid.map(str::to_owned),
                name: name.to_owned(),
                deployment: ctx.deployment.clone(),
            },
        )
        .await
        .map_err(|e| EngineError::provider("looking up the application", e))
}

/// Creates the application (without deploying it) and sets its env.
pub async fn create(
    ctx: &Ctx<'_>,
    desired: &AppDesired,
    state: &serde_json::Value,
    hash: Digest,
) -> Result<RemoteApp, EngineError> {
    let key = key();
    let mark = ctx.mark();
    let (host, target, mark) = (&ctx.remote.providers.app, target(ctx)?, &mark);
    let app = bracket::create(
        ctx,
        Creation {
            subject: Subject {
                key: &key,
                kind: KIND,
            },
            desired: Some(state.clone()),
            hash: Some(hash),
            doing: "creating the application".to_owned(),
        },
        |a: &RemoteApp| a.uuid.clone(),
        || async move { host.create_app(target, desired, mark).await },
        || async move {
            let found = find(ctx, desired.source.kind(), &desired.name, None).await?;
            Ok(found.filter(|a| a.mark.as_ref() == Some(mark)))
        },
    )
    .await?;
    reconcile_env(ctx, &app, desired, false).await?;
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
    changed_before: bool,
) -> Result<bool, EngineError> {
    if !desired.reconciles_env() {
        return Ok(false);
    }
    ctx.check_interrupt()?;
    match ctx
        .remote
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
            let key = key();
            Subject {
                key: &key,
                kind: KIND,
            }
            .failed(
                ctx,
                Action::Update,
                &e,
                e.outcome_unknown() || changed_before || e.status.is_some(),
            )?;
            Err(EngineError::provider(
                "setting the application's env vars",
                e,
            ))
        }
    }
}

/// What the journal knows the application is now: the state of its last
/// change when that change succeeded (`known`), and the state of the last
/// completed apply (`committed`).
struct Prior {
    known: Option<AppState>,
    committed: Option<AppState>,
}

fn prior(ctx: &Ctx<'_>) -> Result<Prior, EngineError> {
    let view = ctx.view();
    let Some(r) = view.resources.get(&key()) else {
        return Ok(Prior {
            known: None,
            committed: None,
        });
    };
    let clean = r.pending.is_none()
        && r.last_error.is_none()
        && r.status == crate::projection::ResourceStatus::Present;
    let known = if clean { decode::<AppState>(r)? } else { None };
    let committed = match r.committed.as_ref().and_then(|c| c.desired.as_ref()) {
        Some(v) => Some(decode_value::<AppState>(
            r.key.clone(),
            KIND,
            r.committed.as_ref().map(|c| c.run.clone()),
            v,
        )?),
        None => None,
    };
    Ok(Prior { known, committed })
}

/// Whether the application must be replaced to become `desired`: its
/// inline Dockerfile changed, and `dockerfile` is in no PATCH allow-list
/// (`ApplicationsController.php:2801 @4.3.11`, every version), so a new
/// application is the only way to carry the new text.
fn needs_replacing(prior: &Prior, desired: &AppDesired) -> bool {
    let AppSource::Dockerfile { dockerfile } = &desired.source else {
        return false;
    };
    let before = prior.known.as_ref().or(prior.committed.as_ref());
    matches!(
        before.map(|s| &s.source),
        Some(state::SourceState::Dockerfile { dockerfile: old }) if old != dockerfile
    )
}

/// What the application is, as far as Coolify can never change it: an
/// application or a service, and a service's form (a compose file, or
/// the one-click type).
fn form(s: &state::SourceState) -> String {
    match s {
        state::SourceState::Compose { .. } => "a compose service".to_owned(),
        state::SourceState::Service { service_type } => {
            format!("the one-click service {service_type:?}")
        }
        _ => "an application".to_owned(),
    }
}

/// Refuses, before anything changes, a spec that asks Coolify for what it
/// cannot do to the application the journal knows: move it to another
/// project, environment, server or destination (no API moves one), or turn
/// it into another kind or one-click type (no PATCH field holds them,
/// `ServicesController.php:1177 @4.3.11`). Deleting it to create it anew
/// would lose its volumes, so that is left to the user. Naming the same
/// place otherwise (a uuid for its name) is no move.
pub async fn refuse_unchangeable(ctx: &Ctx<'_>, world: &World) -> Result<(), EngineError> {
    let view = ctx.view();
    let Some(r) = view.resources.get(&key()).filter(|r| r.exists()) else {
        return Ok(());
    };
    let Some(before) = decode::<AppState>(r)? else {
        return Ok(());
    };
    let hint = "put the spec back as it was; to have it anyway, `fabrik destroy` the deployment (the application's volumes go with it) and apply the spec again";
    let (was, wants) = (form(&before.source), form(&world.app_state.source));
    if was != wants {
        return Err(EngineError::Refused {
            message: format!(
                "the deployment runs {was} on Coolify, the spec asks for {wants}; Coolify cannot turn one into the other"
            ),
            hint: hint.to_owned(),
        });
    }
    let (Some(from), Some(to)) = (&before.target, &world.app_state.target) else {
        return Ok(());
    };
    if from == to {
        return Ok(());
    }
    let now = target(ctx)?;
    let then = ctx
        .remote
        .providers
        .app
        .preflight(&from.target())
        .await
        .map_err(|e| EngineError::provider("resolving where the application is", e))?;
    let same = (
        &then.project_uuid,
        &then.environment_uuid,
        &then.server_uuid,
    ) == (&now.project_uuid, &now.environment_uuid, &now.server_uuid)
        && (to.destination.is_none() || then.destination_uuid == now.destination_uuid);
    if same {
        return Ok(());
    }
    Err(EngineError::Refused {
        message: format!(
            "the spec moves the application from {} to {}; Coolify cannot move an application",
            from.describe(),
            to.describe()
        ),
        hint: hint.to_owned(),
    })
}

/// Updates the application in place (fields that differ, then env vars;
/// re-created when it vanished, replaced when only a new application can
/// be what is wanted). Returns the app and whether anything changed.
pub async fn update(
    ctx: &Ctx<'_>,
    desired: &AppDesired,
    state: &serde_json::Value,
    hash: Digest,
    remote_id: &str,
    restore: bool,
) -> Result<(RemoteApp, bool), EngineError> {
    let key = key();
    let s = Subject {
        key: &key,
        kind: KIND,
    };
    let action = if restore {
        Action::Restore
    } else {
        Action::Update
    };
    let prior = prior(ctx)?;
    s.intent(
        ctx,
        action,
        Some(remote_id.to_owned()),
        Some(state.clone()),
        Some(hash),
        None,
    )?;
    let Some(app) = find(ctx, desired.source.kind(), &desired.name, Some(remote_id)).await? else {
        s.deleted(ctx, remote_id.to_owned(), true)?;
        let app = create(ctx, desired, state, hash).await?;
        return Ok((app, true));
    };
    if needs_replacing(&prior, desired) {
        note(
            ctx.journal,
            "the Dockerfile changed, which Coolify cannot update: replacing the application",
        );
        delete(ctx, app.kind, Some(app.uuid.clone())).await?;
        let app = create(ctx, desired, state, hash).await?;
        return Ok((app, true));
    }
    let previous = prior.known.as_ref().map(state::without_env);
    let mut fields = match ctx
        .remote
        .providers
        .app
        .update_app(&app, desired, previous.as_ref())
        .await
    {
        Ok(c) => {
            if !c.is_empty() {
                failpoint::effect_done();
            }
            c
        }
        Err(e) => return Err(s.fail(ctx, action, e, "updating the application".to_owned())),
    };
    if reconcile_env(ctx, &app, desired, !fields.is_empty()).await? {
        fields.push("env".to_owned());
    }
    let any = !fields.is_empty();
    s.updated(ctx, app.uuid.clone(), Some(hash), fields, restore)?;
    Ok((app, any))
}

/// Deletes the application (and waits until Coolify has removed it).
async fn delete(ctx: &Ctx<'_>, kind: AppKind, id: Option<String>) -> Result<(), EngineError> {
    let key = key();
    let wait = WaitOptions {
        timeout: Duration::from_secs(300),
        poll_interval: ctx.remote.pace.poll,
    };
    let host = &ctx.remote.providers.app;
    bracket::delete(
        ctx,
        Subject {
            key: &key,
            kind: KIND,
        },
        id,
        |id| async move { host.delete_app(kind, &id, Some(wait)).await },
    )
    .await
}

/// An application provisioned and waiting for its deployment: the second
/// half of [`Apps::converge`], which an apply runs after the DNS records
/// are made (a certificate is asked for as the deployment starts, and
/// its challenge needs the name to answer).
#[derive(Debug)]
pub struct ToDeploy {
    app: RemoteApp,
    /// A resumed run with nothing left to change: the deployment it queued
    /// before it stopped (if any) is its own.
    resumed: bool,
    baseline: deploy::Baseline,
    timeout: Duration,
}

impl ToDeploy {
    /// Deploys it and waits for the deployment's end.
    pub async fn deploy(self, ctx: &Ctx<'_>) -> Result<(), EngineError> {
        if self.resumed {
            deploy::deploy_resumed(ctx, &self.app, self.timeout).await
        } else {
            deploy::deploy(ctx, &self.app, self.timeout, self.baseline).await
        }
    }
}

/// The first half of [`Apps::converge`]: creates or updates the
/// application (fields, then env vars) as `step` says; what is left is its
/// deployment, `None` when there is nothing to deploy. The application's
/// newest deployment, which the deploy needs first, is read side by side
/// with the update.
pub async fn provision(
    ctx: &Ctx<'_>,
    world: &World,
    step: &Step,
    redeploy: bool,
) -> Result<Option<ToDeploy>, EngineError> {
    let state = state_value(&world.app_state);
    let hash = world.digests.app;
    let to_deploy = |app, resumed, baseline| ToDeploy {
        app,
        resumed,
        baseline,
        timeout: world.deploy_timeout,
    };
    let ahead = |id: &str| {
        let known = RemoteApp::known(world.app.source.kind(), id);
        async move { deploy::baseline(ctx, &known).await }
    };
    Ok(Some(match (step.action, &step.remote_id) {
        (StepAction::Create, _) | (StepAction::Update, None) => to_deploy(
            create(ctx, &world.app, &state, hash).await?,
            false,
            deploy::Baseline::Fresh,
        ),
        (StepAction::Update, Some(id)) => {
            let (updated, previous) =
                tokio::join!(update(ctx, &world.app, &state, hash, id, false), ahead(id));
            let (app, _) = updated?;
            // Re-created or replaced: a new application, with no deployment.
            let baseline = if app.uuid == *id {
                deploy::Baseline::Read(previous?)
            } else {
                deploy::Baseline::Fresh
            };
            to_deploy(app, false, baseline)
        }
        // A resumed run that changed the application without seeing
        // its deployment finish: the change may have stopped half-way
        // (created, but its env never set), so it is made again (it is
        // idempotent) before deploying. With nothing left to change,
        // the deployment the run queued before it stopped (if any)
        // deploys what is wanted.
        (_, Some(id)) if redeploy => {
            let (app, changed) = update(ctx, &world.app, &state, hash, id, false).await?;
            to_deploy(app, !changed, deploy::Baseline::Ask)
        }
        _ => return Ok(None),
    }))
}

/// The application's kind and name from its journaled state, or from the
/// spec when none was journaled.
fn identity(r: Option<&ResourceView>, world: &World) -> Result<(AppKind, String), EngineError> {
    let state = match r {
        Some(r) => decode::<AppState>(r)?,
        None => None,
    };
    Ok(state.map_or_else(
        || (world.app.source.kind(), world.app.name.clone()),
        |s| (s.app_kind(), s.name),
    ))
}

#[async_trait]
impl Kind for Apps {
    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn phase(&self) -> Phase {
        Phase::Deploying
    }

    async fn converge(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        step: &Step,
        redeploy: bool,
    ) -> Result<(), EngineError> {
        match provision(ctx, world, step, redeploy).await? {
            Some(d) => d.deploy(ctx).await,
            None => Ok(()),
        }
    }

    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        doomed: Doomed<'_>,
    ) -> Result<(), EngineError> {
        let (kind, name) = identity(doomed.view, world)?;
        let id = match (doomed.remote_id, doomed.owner) {
            (Some(id), _) => Some(id.to_owned()),
            (None, Some(mark)) => find(ctx, kind, &name, None)
                .await?
                .filter(|a| a.mark.as_ref().is_some_and(|m| m.run == mark.run))
                .map(|a| a.uuid),
            (None, None) => None,
        };
        delete(ctx, kind, id).await
    }

    async fn find(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        r: &ResourceView,
        pending: &PendingIntent,
        mark: &OwnershipMark,
    ) -> Result<Option<String>, EngineError> {
        let (_, name) = identity(Some(r), world)?;
        let uuid = match pending.action {
            Action::Create => None,
            _ => r.remote_id.as_deref(),
        };
        let app = find(ctx, world.app.source.kind(), &name, uuid).await?;
        Ok(match pending.action {
            Action::Create => app
                .filter(|a| a.mark.as_ref().is_some_and(|m| m.run == mark.run))
                .map(|a| a.uuid),
            _ => app.map(|a| a.uuid),
        })
    }

    async fn observe(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        r: &ResourceView,
    ) -> Result<Option<Observed>, EngineError> {
        let Some(id) = &r.remote_id else {
            return Ok(None);
        };
        let Some(app) = find(ctx, world.app.source.kind(), &world.app.name, Some(id)).await? else {
            return Ok(Some(Observed::Missing));
        };
        // What the journal says the application is. Its env values are
        // known where the spec's are the same (same text, or same secret
        // fingerprints); the rest cannot be compared.
        let Some(recorded) = decode::<AppState>(r)? else {
            return Ok(Some(Observed::InSync));
        };
        let mut journal = state::without_env(&recorded);
        let scoped = |s: &AppState, k: &str| {
            s.env
                .get(k)
                .map(|v| (v.clone(), false))
                .or_else(|| s.build_env.get(k).map(|v| (v.clone(), true)))
        };
        journal.env = world
            .app
            .env
            .iter()
            .filter(|e| {
                let now = scoped(&world.app_state, &e.key);
                now.is_some() && scoped(&recorded, &e.key) == now
            })
            .cloned()
            .collect();
        let drift = ctx
            .remote
            .providers
            .app
            .app_drift(&app, &journal, Some(&state::without_env(&recorded)))
            .await
            .map_err(|e| EngineError::provider("checking the application", e))?;
        // Variables whose journaled value cannot be compared are not drift.
        let unknown = |field: &str| {
            field.strip_prefix("env.").is_some_and(|k| {
                let k = k.trim_end_matches(" (preview)");
                scoped(&recorded, k).is_some() && !journal.env.iter().any(|e| e.key == k)
            })
        };
        let drift: Vec<_> = drift.into_iter().filter(|d| !unknown(&d.field)).collect();
        Ok(Some(Observed::of(drift)))
    }

    async fn restore(
        &self,
        ctx: &Ctx<'_>,
        key: &ResourceKey,
        to: &serde_json::Value,
        hash: Digest,
        remote_id: &str,
        secrets: Option<&ResolvedSecrets>,
    ) -> Result<(), EngineError> {
        let recorded: AppState = decode_value(key.clone(), KIND, None, to)?;
        let secrets = secrets.ok_or_else(|| EngineError::Unresolved {
            what: "the spec's secrets (restoring the application needs them)".to_owned(),
        })?;
        let (app, drifted) = state::from_state(&recorded, secrets)?;
        if !drifted.is_empty() {
            note(
                ctx.journal,
                &format!(
                    "secrets of {} changed since that version; restoring with today's values",
                    drifted.join(", ")
                ),
            );
        }
        let (remote, _) = update(ctx, &app, to, hash, remote_id, true).await?;
        deploy::deploy(
            ctx,
            &remote,
            Duration::from_secs(600),
            deploy::Baseline::Ask,
        )
        .await
    }
}
