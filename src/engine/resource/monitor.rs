//! Uptime monitors: everything the engine does with them, and the state
//! the journal keeps of each.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Doomed, Kind, Phase, decode, decode_value, state_value};
use crate::engine::bracket::{self, Creation, Subject};
use crate::engine::desired::World;
use crate::engine::{Ctx, EngineError, StateError};
use crate::event::{Action, ResourceKey, ResourceKind};
use crate::failpoint;
use crate::id::Digest;
use crate::ownership::OwnershipMark;
use crate::plan::{Drift, Observed, Step, StepAction};
use crate::projection::{PendingIntent, ResourceView};
use crate::provider::{
    DeleteOutcome, ErrorKind, MonitorDesired, MonitorId, MonitorKind, Monitors as MonitorApi,
    RemoteMonitor,
};

/// The status codes a monitor accepts when the journal does not say
/// (journaled before the field reached Uptime Kuma, which then got these).
const DEFAULT_ACCEPTED: &str = "200-299";
use crate::spec::secrets::ResolvedSecrets;

const KIND: ResourceKind = ResourceKind::Monitor;

/// A monitor as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorState {
    /// Name in Uptime Kuma.
    pub name: String,
    /// `http` or `keyword`.
    pub kind: String,
    /// URL.
    pub url: String,
    /// Keyword.
    pub keyword: Option<String>,
    /// Interval in seconds.
    pub interval: u32,
    /// Retries.
    pub retries: u32,
    /// Seconds between checks while retrying (`None`: journaled before
    /// the field reached Uptime Kuma, which then got the interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<u32>,
    /// Accepted status codes (`None`: journaled before the field reached
    /// Uptime Kuma, which then got `200-299`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_status: Option<Vec<String>>,
    /// Notification ids.
    pub notifications: Vec<u64>,
}

impl MonitorState {
    /// The provider request it describes.
    pub fn desired(&self) -> MonitorDesired {
        MonitorDesired {
            name: self.name.clone(),
            kind: if self.kind == "keyword" {
                MonitorKind::Keyword
            } else {
                MonitorKind::Http
            },
            url: self.url.clone(),
            keyword: self.keyword.clone(),
            interval: self.interval,
            retries: self.retries,
            retry_interval: self.retry_interval.unwrap_or(self.interval),
            accepted_status: self.accepted(),
            notification_ids: self.notifications.clone(),
        }
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted_status
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_ACCEPTED.to_owned()])
    }

    /// The fields of `remote` that differ from this state, with both
    /// values (paused counts: a monitor is meant to run).
    pub fn drift(&self, remote: &RemoteMonitor) -> Vec<Drift> {
        let mut out = Vec::new();
        let mut differs = |field: &str, journal: serde_json::Value, seen: serde_json::Value| {
            if journal != seen {
                out.push(Drift {
                    field: field.to_owned(),
                    journal: Some(journal),
                    remote: Some(seen),
                });
            }
        };
        differs("active", true.into(), remote.active.into());
        differs("name", self.name.clone().into(), remote.name.clone().into());
        differs("kind", self.kind.clone().into(), remote.kind.clone().into());
        differs(
            "url",
            self.url.clone().into(),
            remote.url.clone().unwrap_or_default().into(),
        );
        if let Some(f) = &remote.fields {
            let d = self.desired();
            if self.kind == "keyword" {
                differs(
                    "keyword",
                    self.keyword.clone().into(),
                    f.keyword.clone().into(),
                );
            }
            differs("interval", d.interval.into(), f.interval.into());
            differs(
                "retry_interval",
                d.retry_interval.into(),
                f.retry_interval.into(),
            );
            differs("retries", d.retries.into(), f.retries.into());
            differs(
                "accepted_status",
                d.accepted_status.into(),
                f.accepted_status.clone().into(),
            );
            let mut want = d.notification_ids;
            want.sort_unstable();
            differs(
                "notifications",
                want.into(),
                f.notification_ids.clone().into(),
            );
        }
        out
    }
}

/// One monitor to converge.
#[derive(Debug, Clone)]
pub struct MonitorWant {
    /// Its key.
    pub key: ResourceKey,
    /// The request.
    pub desired: MonitorDesired,
    /// The journal form.
    pub state: MonitorState,
}

impl MonitorWant {
    /// The want a journaled state describes.
    pub fn from_state(key: ResourceKey, state: MonitorState) -> Self {
        Self {
            key,
            desired: state.desired(),
            state,
        }
    }
}

/// The monitor kind.
#[derive(Debug)]
pub struct Monitors;

fn api<'a>(ctx: &'a Ctx<'_>) -> Result<&'a dyn MonitorApi, EngineError> {
    ctx.remote
        .providers
        .monitors
        .as_deref()
        .ok_or(EngineError::NoProvider {
            capability: "monitors",
        })
}

fn subject(key: &ResourceKey) -> Subject<'_> {
    Subject { key, kind: KIND }
}

/// A journaled monitor id; one that is not a monitor id is a damaged
/// journal, never monitor 0.
fn monitor_id(key: &ResourceKey, text: &str) -> Result<MonitorId, EngineError> {
    MonitorId::parse(text).ok_or_else(|| {
        EngineError::State(StateError {
            resource: key.clone(),
            kind: KIND,
            run: None,
            source: <serde_json::Error as serde::de::Error>::custom(format!(
                "{text:?} is not a monitor id"
            )),
        })
    })
}

/// The monitor named `desired.name` carrying `mark`, if it exists.
async fn find_monitor(
    ctx: &Ctx<'_>,
    name: &str,
    mark: &OwnershipMark,
) -> Result<Option<RemoteMonitor>, EngineError> {
    let found = api(ctx)?
        .find_owned(ctx.deployment)
        .await
        .map_err(|e| EngineError::provider("looking up monitors", e))?;
    Ok(found
        .into_iter()
        .find(|m| m.name == name && m.mark.as_ref() == Some(mark)))
}

/// Before a create: a monitor of this name already there that is this
/// deployment's in this journal is used (journaled as found, its owner
/// the run that made it); one of another journal or deployment is
/// refused, naming it. Uptime Kuma has no uniqueness (kuma notes §11), so
/// without this check a second journal duplicates every monitor.
async fn existing(ctx: &Ctx<'_>, want: &MonitorWant) -> Result<Option<RemoteMonitor>, EngineError> {
    let all = api(ctx)?
        .list_owned()
        .await
        .map_err(|e| EngineError::provider("looking up monitors", e))?;
    let known: Vec<String> = ctx
        .view()
        .resources
        .values()
        .filter(|r| r.kind == KIND)
        .filter_map(|r| r.remote_id.clone())
        .collect();
    for m in all.into_iter().filter(|m| m.name == want.desired.name) {
        if ctx.is_ours(m.mark.as_ref()) || known.contains(&m.id.to_string()) {
            return Ok(Some(m));
        }
        if let Some(owner) = &m.mark {
            return Err(EngineError::Refused {
                message: format!(
                    "monitor {} `{}` already exists and carries the mark of {}",
                    m.id,
                    m.name,
                    owner.owner()
                ),
                hint: "another journal of this deployment (or another deployment) manages it: apply from that journal, or delete the monitor in Uptime Kuma".to_owned(),
            });
        }
    }
    Ok(None)
}

/// Creates a monitor (adopting it when a lost response already made it).
/// After a refused `add` the monitor is looked up again: Uptime Kuma saves
/// it before it fails on a notification (kuma notes §2), and what exists is
/// journaled so that rollback, `status` and `destroy` see it.
pub async fn create(ctx: &Ctx<'_>, want: &MonitorWant, hash: Digest) -> Result<(), EngineError> {
    let s = subject(&want.key);
    if let Some(found) = existing(ctx, want).await? {
        let mark = found.mark.clone().unwrap_or_else(|| ctx.mark());
        s.found(ctx, found.id.to_string(), None, mark)?;
        return Box::pin(update(ctx, want, hash, &found.id.to_string(), false)).await;
    }
    let monitors = api(ctx)?;
    let mark = ctx.mark();
    let mark = &mark;
    let made = bracket::create(
        ctx,
        Creation {
            subject: s,
            desired: Some(state_value(&want.state)),
            hash: Some(hash),
            doing: format!("creating {}", want.key),
        },
        |m: &RemoteMonitor| m.id.to_string(),
        || async move { monitors.create(&want.desired, mark).await },
        || async move { find_monitor(ctx, &want.desired.name, mark).await },
    )
    .await;
    match made {
        Ok(_) => Ok(()),
        Err(e) => {
            if let Ok(Some(half)) = find_monitor(ctx, &want.desired.name, mark).await {
                // Saved though refused: it exists, and is this run's.
                s.created(ctx, half.id.to_string(), None, false)?;
            }
            Err(e)
        }
    }
}

/// Updates a monitor in place (re-creating it when it is gone).
pub async fn update(
    ctx: &Ctx<'_>,
    want: &MonitorWant,
    hash: Digest,
    remote_id: &str,
    restore: bool,
) -> Result<(), EngineError> {
    let s = subject(&want.key);
    let action = if restore {
        Action::Restore
    } else {
        Action::Update
    };
    let id = monitor_id(&want.key, remote_id)?;
    s.intent(
        ctx,
        action,
        Some(remote_id.to_owned()),
        Some(state_value(&want.state)),
        Some(hash),
        None,
    )?;
    match api(ctx)?.update(id, &want.desired).await {
        Ok(()) => {
            failpoint::effect_done();
            s.updated(ctx, remote_id.to_owned(), Some(hash), Vec::new(), restore)
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            s.deleted(ctx, remote_id.to_owned(), true)?;
            create(ctx, want, hash).await
        }
        Err(e) if e.kind == ErrorKind::Rejected => {
            // `editMonitor` stores the row before it links notifications,
            // without a transaction (kuma notes §2): a refused edit may be
            // half applied. Journaled as possibly applied, so the rollback
            // restores the monitor.
            s.failed(ctx, action, &e, true)?;
            Err(EngineError::provider(format!("updating {}", want.key), e))
        }
        Err(e) => Err(s.fail(ctx, action, e, format!("updating {}", want.key))),
    }
}

fn want_of(world: &World, key: &ResourceKey) -> Option<(MonitorWant, Digest)> {
    let want = world.monitor(key)?.clone();
    let hash = world
        .digests
        .monitors
        .get(key.as_str())
        .copied()
        .unwrap_or_default();
    Some((want, hash))
}

#[async_trait]
impl Kind for Monitors {
    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn phase(&self) -> Phase {
        Phase::Watching
    }

    async fn converge(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        step: &Step,
        _redeploy: bool,
    ) -> Result<(), EngineError> {
        let Some((want, hash)) = want_of(world, &step.key) else {
            return Ok(());
        };
        match (step.action, &step.remote_id) {
            (StepAction::Update, Some(id)) => update(ctx, &want, hash, id, false).await,
            (StepAction::Create | StepAction::Update, _) => create(ctx, &want, hash).await,
            _ => Ok(()),
        }
    }

    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        _world: &World,
        doomed: Doomed<'_>,
    ) -> Result<(), EngineError> {
        let id = match (doomed.remote_id, doomed.owner, doomed.view) {
            (Some(id), _, _) => Some(id.to_owned()),
            (None, Some(mark), Some(view)) => match decode::<MonitorState>(view)? {
                Some(state) => find_monitor(ctx, &state.name, mark)
                    .await?
                    .map(|m| m.id.to_string()),
                None => None,
            },
            _ => None,
        };
        let parsed = id
            .as_deref()
            .map(|i| monitor_id(doomed.key, i))
            .transpose()?;
        let monitors = api(ctx)?;
        bracket::delete(ctx, subject(doomed.key), id, |_| async move {
            match parsed {
                Some(id) => monitors.delete(id).await.map(|()| DeleteOutcome {
                    already_gone: false,
                }),
                None => Ok(DeleteOutcome { already_gone: true }),
            }
        })
        .await
    }

    async fn find(
        &self,
        ctx: &Ctx<'_>,
        _world: &World,
        r: &ResourceView,
        pending: &PendingIntent,
        mark: &OwnershipMark,
    ) -> Result<Option<String>, EngineError> {
        let owned = api(ctx)?
            .find_owned(ctx.deployment)
            .await
            .map_err(|e| EngineError::provider("looking up monitors", e))?;
        let name = decode::<MonitorState>(r)?.map(|s| s.name);
        Ok(match pending.action {
            Action::Create => owned
                .into_iter()
                .find(|x| x.mark.as_ref() == Some(mark) && Some(&x.name) == name.as_ref())
                .map(|x| x.id.to_string()),
            _ => r
                .remote_id
                .clone()
                .filter(|id| owned.iter().any(|x| &x.id.to_string() == id)),
        })
    }

    async fn observe(
        &self,
        ctx: &Ctx<'_>,
        _world: &World,
        r: &ResourceView,
    ) -> Result<Option<Observed>, EngineError> {
        let (Some(m), Some(id)) = (&ctx.remote.providers.monitors, &r.remote_id) else {
            return Ok(None);
        };
        let owned = m
            .find_owned(ctx.deployment)
            .await
            .map_err(|e| EngineError::provider("refreshing monitors", e))?;
        let Some(remote) = owned.iter().find(|x| &x.id.to_string() == id) else {
            return Ok(Some(Observed::Missing));
        };
        let drift = decode::<MonitorState>(r)?
            .map(|state| state.drift(remote))
            .unwrap_or_default();
        Ok(Some(Observed::of(drift)))
    }

    async fn restore(
        &self,
        ctx: &Ctx<'_>,
        key: &ResourceKey,
        to: &serde_json::Value,
        hash: Digest,
        remote_id: &str,
        _secrets: Option<&ResolvedSecrets>,
    ) -> Result<(), EngineError> {
        let state: MonitorState = decode_value(key.clone(), KIND, None, to)?;
        update(
            ctx,
            &MonitorWant::from_state(key.clone(), state),
            hash,
            remote_id,
            true,
        )
        .await
    }
}
