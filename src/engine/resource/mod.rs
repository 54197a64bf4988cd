//! The resource kinds: one module per kind, each holding everything about
//! it (create, update, delete, find after a crash, refresh, restore, and
//! the state the journal keeps of it), behind the [`Kind`] trait.
//!
//! [`of`] is the registry, and the only place that matches on
//! [`ResourceKind`]: commands ask it for the kind of a resource and call
//! the trait. Adding a kind is a module here, its variant in
//! [`ResourceKind`] (the journal's name for it), one line in [`of`] and
//! [`ALL`], and its provider trait.

pub mod app;
pub mod dns;
pub mod monitor;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use super::desired::World;
use super::{Ctx, EngineError, StateError};
use crate::event::{ResourceKey, ResourceKind};
use crate::id::Digest;
use crate::ownership::OwnershipMark;
use crate::plan::{Observed, Step};
use crate::projection::{PendingIntent, ResourceView};
use crate::spec::secrets::ResolvedSecrets;

/// When, in an apply, a kind's creates and updates run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Before the application (DNS), in parallel.
    Provisioning,
    /// The application and its deployment.
    Deploying,
    /// After verification passed (monitors).
    Watching,
}

/// A resource to delete.
#[derive(Debug, Clone, Copy)]
pub struct Doomed<'a> {
    /// Its key.
    pub key: &'a ResourceKey,
    /// What the journal says of it, if anything.
    pub view: Option<&'a ResourceView>,
    /// Its remote id, when known.
    pub remote_id: Option<&'a str>,
    /// Without a remote id: the mark it would carry, to look it up by.
    pub owner: Option<&'a OwnershipMark>,
}

/// Everything the engine does with one kind of resource.
#[async_trait]
pub trait Kind: Send + Sync {
    /// The kind.
    fn kind(&self) -> ResourceKind;

    /// When its creates and updates run in an apply.
    fn phase(&self) -> Phase;

    /// Makes the resource what `step` says: create or update (re-creating
    /// it when it vanished). A no-op step may still act when `redeploy`
    /// (the application is deployed again).
    async fn converge(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        step: &Step,
        redeploy: bool,
    ) -> Result<(), EngineError>;

    /// Deletes it (looking it up by its mark when no remote id is known).
    async fn delete(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        doomed: Doomed<'_>,
    ) -> Result<(), EngineError>;

    /// After a crash: what an intent without outcome left behind, by the
    /// intent's mark (creates) or remote id (the rest). The remote id of
    /// what is there, if anything.
    async fn find(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        r: &ResourceView,
        pending: &PendingIntent,
        mark: &OwnershipMark,
    ) -> Result<Option<String>, EngineError>;

    /// Compares the remote side with what the journal says (`--refresh`);
    /// `None` when this run cannot look (no provider).
    async fn observe(
        &self,
        ctx: &Ctx<'_>,
        world: &World,
        r: &ResourceView,
    ) -> Result<Option<Observed>, EngineError>;

    /// Puts the resource back in a journaled state (a rollback of an
    /// update).
    async fn restore(
        &self,
        ctx: &Ctx<'_>,
        key: &ResourceKey,
        to: &serde_json::Value,
        hash: Digest,
        remote_id: &str,
        secrets: Option<&ResolvedSecrets>,
    ) -> Result<(), EngineError>;
}

/// Every kind, in creation order.
pub const ALL: [ResourceKind; 3] = [
    ResourceKind::DnsRecord,
    ResourceKind::Application,
    ResourceKind::Monitor,
];

/// The registry: the kind of a resource.
pub fn of(kind: ResourceKind) -> &'static dyn Kind {
    match kind {
        ResourceKind::DnsRecord => &dns::Records,
        ResourceKind::Application => &app::Apps,
        ResourceKind::Monitor => &monitor::Monitors,
    }
}

/// The desired state a resource's latest intent journaled, decoded as the
/// kind's state type; `None` when none was journaled. A state that does
/// not decode is an error naming the resource and its run.
pub fn decode<S: DeserializeOwned>(r: &ResourceView) -> Result<Option<S>, StateError> {
    let run = r
        .pending
        .as_ref()
        .and_then(|p| p.run.clone())
        .or_else(|| r.last_run.clone());
    match &r.desired {
        None => Ok(None),
        Some(v) => decode_value(r.key.clone(), r.kind, run, v).map(Some),
    }
}

/// Decodes one journaled state value of `key`.
pub fn decode_value<S: DeserializeOwned>(
    resource: ResourceKey,
    kind: ResourceKind,
    run: Option<crate::id::RunId>,
    v: &serde_json::Value,
) -> Result<S, StateError> {
    S::deserialize(v).map_err(|source| StateError {
        resource,
        kind,
        run,
        source,
    })
}

/// The journal form of a resource's state, as a JSON value. The state
/// types are plain records with string keys, which always serialise.
pub fn state_value<S: serde::Serialize>(state: &S) -> serde_json::Value {
    serde_json::to_value(state).unwrap_or(serde_json::Value::Null)
}
