//! DNS records: everything the engine does with them, and the state the
//! journal keeps of each.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Doomed, Kind, Phase, decode, decode_value, state_value};
use crate::engine::bracket::{self, Creation, Subject};
use crate::engine::desired::World;
use crate::engine::{Ctx, EngineError, note};
use crate::event::{Action, ResourceKey, ResourceKind};
use crate::failpoint;
use crate::id::Digest;
use crate::ownership::OwnershipMark;
use crate::plan::{Drift, Observed, Step, StepAction};
use crate::projection::{PendingIntent, ResourceView};
use crate::provider::{Dns, RecordDesired, RecordType, RemoteRecord, Zone};
use crate::spec::secrets::ResolvedSecrets;

mod existing;

pub use existing::check_creates;
use existing::{Before, look_before};

const KIND: ResourceKind = ResourceKind::DnsRecord;

/// A DNS record as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordState {
    /// The zone.
    pub zone: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// FQDN.
    pub name: String,
    /// Content.
    pub content: String,
    /// TTL (1 = automatic).
    pub ttl: u32,
    /// Proxied through Cloudflare.
    pub proxied: bool,
    /// The spec adopts the record (made by hand): a rollback never deletes
    /// it, and `destroy` leaves it in place.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
}

impl RecordState {
    /// The provider request it describes.
    pub fn desired(&self) -> RecordDesired {
        RecordDesired {
            kind: self.record_type(),
            name: self.name.clone(),
            content: self.content.clone(),
            ttl: self.ttl,
            proxied: self.proxied,
            adopt: self.adopt,
        }
    }

    /// Its type.
    pub fn record_type(&self) -> RecordType {
        RecordType::parse(&self.kind).unwrap_or(RecordType::A)
    }

    /// What makes it the same record whatever its key: type, name and
    /// canonical content (a CNAME is alone at its name: type and name).
    pub fn identity(&self) -> (String, String, String) {
        let kind = self.record_type();
        let content = if kind == RecordType::Cname {
            String::new()
        } else {
            kind.canonical(&self.content)
        };
        (
            kind.as_str().to_owned(),
            crate::spec::model::dns::canonical_name(&self.name),
            content,
        )
    }

    /// The fields of `remote` that differ from this state, with both
    /// values.
    pub fn drift(&self, remote: &RemoteRecord) -> Vec<Drift> {
        let mut diff = Vec::new();
        let mut differs = |field: &str, journal: serde_json::Value, seen: serde_json::Value| {
            if journal != seen {
                diff.push(Drift {
                    field: field.to_owned(),
                    journal: Some(journal),
                    remote: Some(seen),
                });
            }
        };
        let kind = self.record_type();
        if !kind.same(&self.content, &remote.content) {
            differs(
                "content",
                kind.canonical(&self.content).into(),
                kind.canonical(&remote.content).into(),
            );
        }
        differs("proxied", self.proxied.into(), remote.proxied.into());
        if !self.proxied {
            differs("ttl", self.ttl.into(), remote.ttl.into());
        }
        diff
    }
}

/// One DNS record to converge.
#[derive(Debug, Clone)]
pub struct RecordWant {
    /// Its key.
    pub key: ResourceKey,
    /// The request.
    pub desired: RecordDesired,
    /// The journal form.
    pub state: RecordState,
}

impl RecordWant {
    /// The want a journaled state describes.
    pub fn from_state(key: ResourceKey, state: RecordState) -> Self {
        Self {
            key,
            desired: state.desired(),
            state,
        }
    }
}

/// The DNS record kind.
#[derive(Debug)]
pub struct Records;

fn dns<'a>(ctx: &'a Ctx<'_>) -> Result<&'a dyn Dns, EngineError> {
    ctx.remote
        .providers
        .dns
        .as_deref()
        .ok_or(EngineError::NoProvider { capability: "DNS" })
}

fn zone<'a>(ctx: &'a Ctx<'_>) -> Result<&'a Zone, EngineError> {
    ctx.zone.ok_or_else(|| EngineError::Unresolved {
        what: "the DNS zone".to_owned(),
    })
}

fn subject(key: &ResourceKey) -> Subject<'_> {
    Subject { key, kind: KIND }
}

/// The record carrying `mark` with the desired content, if it exists.
async fn find_record(
    ctx: &Ctx<'_>,
    desired: &RecordDesired,
    mark: &OwnershipMark,
) -> Result<Option<RemoteRecord>, EngineError> {
    let found = dns(ctx)?
        .list_records(zone(ctx)?, desired.kind, &desired.name)
        .await
        .map_err(|e| EngineError::provider(format!("looking up {}", desired.name), e))?;
    Ok(found
        .into_iter()
        .find(|r| r.mark.as_ref() == Some(mark) && desired.kind.same(&r.content, &desired.content)))
}

/// Creates a record after looking at what the name holds: ours is used
/// (journaled as found, its owner the run that made it), no one's is
/// adopted when the spec says so (journaled as an adoption: an update,
/// never owned by this run), the rest is refused. A create whose answer
/// was lost is looked up by this run's mark.
pub async fn create(ctx: &Ctx<'_>, want: &RecordWant, hash: Digest) -> Result<(), EngineError> {
    let s = subject(&want.key);
    match look_before(ctx, want).await? {
        Before::Found(r) => {
            let mark = r.mark.clone().unwrap_or_else(|| ctx.mark());
            s.found(ctx, r.id.clone(), None, mark)?;
            return Box::pin(update(ctx, want, hash, &r.id, false)).await;
        }
        Before::Adopt(r) => return adopt(ctx, want, hash, &r).await,
        Before::Create => {}
    }
    let (dns, zone) = (dns(ctx)?, zone(ctx)?);
    let mark = ctx.mark();
    let mark = &mark;
    bracket::create(
        ctx,
        Creation {
            subject: subject(&want.key),
            desired: Some(state_value(&want.state)),
            hash: Some(hash),
            doing: format!("creating {}", want.key),
        },
        |r: &RemoteRecord| r.id.clone(),
        || async move { dns.create_record(zone, &want.desired, mark).await },
        || async move { find_record(ctx, &want.desired, mark).await },
    )
    .await?;
    Ok(())
}

/// Takes over a record of no one the spec adopts: journaled as an update
/// (its owner is no run, so no rollback deletes it) whose changed fields
/// start with `adopted`. Its comment is left as it is.
async fn adopt(
    ctx: &Ctx<'_>,
    want: &RecordWant,
    hash: Digest,
    remote: &RemoteRecord,
) -> Result<(), EngineError> {
    let s = subject(&want.key);
    note(
        ctx.journal,
        &format!("{}: adopting record {}", want.key, remote.id),
    );
    s.intent(
        ctx,
        Action::Update,
        Some(remote.id.clone()),
        Some(state_value(&want.state)),
        Some(hash),
        None,
    )?;
    let (dns, zone) = (dns(ctx)?, zone(ctx)?);
    match dns
        .update_record(zone, remote, &want.desired, &ctx.mark())
        .await
    {
        Ok(r) => {
            failpoint::effect_done();
            let mut changed = vec!["adopted".to_owned()];
            changed.extend(want.state.drift(remote).into_iter().map(|d| d.field));
            s.updated(ctx, r.id, Some(hash), changed, false)
        }
        Err(e) => Err(s.fail(ctx, Action::Update, e, format!("adopting {}", want.key))),
    }
}

/// Updates a record in place (re-creating it if it is gone).
pub async fn update(
    ctx: &Ctx<'_>,
    want: &RecordWant,
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
    s.intent(
        ctx,
        action,
        Some(remote_id.to_owned()),
        Some(state_value(&want.state)),
        Some(hash),
        None,
    )?;
    let (dns, zone) = (dns(ctx)?, zone(ctx)?);
    let listed = dns
        .list_records(zone, want.desired.kind, &want.desired.name)
        .await
        .map_err(|e| EngineError::provider(format!("reading {}", want.key), e))?;
    let Some(remote) = listed.into_iter().find(|r| r.id == remote_id) else {
        // Gone (deleted by hand, or its name changed): record that and
        // create it afresh.
        s.deleted(ctx, remote_id.to_owned(), true)?;
        return create(ctx, want, hash).await;
    };
    match dns
        .update_record(zone, &remote, &want.desired, &ctx.mark())
        .await
    {
        Ok(r) => {
            failpoint::effect_done();
            let changed = want.state.drift(&remote).into_iter().map(|d| d.field);
            s.updated(ctx, r.id, Some(hash), changed.collect(), restore)
        }
        Err(e) => Err(s.fail(ctx, action, e, format!("updating {}", want.key))),
    }
}

fn want_of(world: &World, key: &ResourceKey) -> Result<RecordWant, EngineError> {
    world
        .record(key)
        .cloned()
        .ok_or_else(|| EngineError::Unresolved {
            what: format!("{key} in the spec"),
        })
}

fn hash_of(world: &World, key: &ResourceKey) -> Digest {
    world
        .digests
        .records
        .get(key.as_str())
        .copied()
        .unwrap_or_default()
}

#[async_trait]
impl Kind for Records {
    fn kind(&self) -> ResourceKind {
        KIND
    }

    fn phase(&self) -> Phase {
        Phase::Provisioning
    }

    async fn converge(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        step: &Step,
        _redeploy: bool,
    ) -> Result<(), EngineError> {
        let hash = hash_of(world, &step.key);
        match (step.action, &step.remote_id) {
            (StepAction::Update, Some(id)) => {
                update(ctx, &want_of(world, &step.key)?, hash, id, false).await
            }
            (StepAction::Create | StepAction::Update, _) => {
                create(ctx, &want_of(world, &step.key)?, hash).await
            }
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
            (None, Some(mark), Some(view)) => match decode::<RecordState>(view)? {
                Some(state) => find_record(ctx, &state.desired(), mark)
                    .await?
                    .map(|r| r.id),
                None => None,
            },
            _ => None,
        };
        let (dns, zone) = (dns(ctx)?, zone(ctx)?);
        bracket::delete(ctx, subject(doomed.key), id, |id| async move {
            dns.delete_record(zone, &id).await
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
        let (dns, zone) = (dns(ctx)?, zone(ctx)?);
        let Some(state) = decode::<RecordState>(r)? else {
            return Ok(r.remote_id.clone());
        };
        let d = state.desired();
        let listed = dns
            .list_records(zone, d.kind, &d.name)
            .await
            .map_err(|e| EngineError::provider(format!("looking up {}", r.key), e))?;
        Ok(match pending.action {
            Action::Create => listed
                .into_iter()
                .find(|x| x.mark.as_ref() == Some(mark) && d.kind.same(&x.content, &d.content))
                .map(|x| x.id),
            _ => r
                .remote_id
                .clone()
                .filter(|id| listed.iter().any(|x| &x.id == id)),
        })
    }

    async fn observe(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        r: &ResourceView,
    ) -> Result<Option<Observed>, EngineError> {
        let (Some(dns), Some(zone), Some(id)) = (&ctx.remote.providers.dns, ctx.zone, &r.remote_id)
        else {
            return Ok(None);
        };
        let Some(want) = world.record(&r.key) else {
            return Ok(None);
        };
        let listed = dns
            .list_records(zone, want.desired.kind, &want.desired.name)
            .await
            .map_err(|e| EngineError::provider(format!("refreshing {}", r.key), e))?;
        let Some(remote) = listed.into_iter().find(|x| &x.id == id) else {
            return Ok(Some(Observed::Missing));
        };
        let diff = decode::<RecordState>(r)?
            .map(|c| c.drift(&remote))
            .unwrap_or_default();
        Ok(Some(Observed::of(diff)))
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
        let state: RecordState = decode_value(key.clone(), KIND, None, to)?;
        update(
            ctx,
            &RecordWant::from_state(key.clone(), state),
            hash,
            remote_id,
            true,
        )
        .await
    }
}
