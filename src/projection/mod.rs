//! Projections: what the journal says about deployments, runs and resources.
//!
//! A projection is a pure fold over events ([`Projection::apply`]): no I/O,
//! no clock, no randomness. The fold is total: it accepts any sequence of
//! events, so replaying a journal can never fail half-way; the legality of
//! what gets appended is checked *before* the append, by [`crate::decide`].
//!
//! Two views are kept per deployment so that reading one deployment never
//! costs more as its history grows: the [`DeploymentView`] (resources, lock,
//! latest run; bounded by the spec's size) and one [`RunView`] per run.

mod fold;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::event::RunState;
pub use fold::apply_to;

use crate::event::{
    Action, ImageResolved, LockHolder, Policy, RecordedEvent, ResourceKey, ResourceKind,
    RollbackStep, RunCommand, RunOptions, RunOutcome,
};
use crate::id::{DeploymentId, Digest, RunId, Seq, StreamVersion};
use crate::ownership::OwnershipMark;
use crate::secret::SecretSource;

/// Where a resource stands, according to the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    /// An intent was recorded but its outcome was not (yet).
    Pending,
    /// Exists remotely.
    Present,
    /// Never created (a create failed), or known not to exist.
    Absent,
    /// Deleted.
    Deleted,
}

/// An intent whose outcome is not recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingIntent {
    /// The run that recorded it.
    pub run: Option<RunId>,
    /// The change.
    pub action: Action,
    /// Sequence number of the intent.
    pub seq: Seq,
    /// The remote id, for updates and deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The mark the resource would carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<OwnershipMark>,
    /// Digest of the desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_hash: Option<Digest>,
    /// True when the provider call returned an error whose outcome is
    /// unknown (the change may have been applied).
    #[serde(default)]
    pub outcome_unknown: bool,
}

/// The state of a resource as of the last completed run, for restores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Committed {
    /// The completed run.
    pub run: RunId,
    /// Its desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<serde_json::Value>,
    /// Digest of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_hash: Option<Digest>,
}

/// One resource of a deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceView {
    /// The key.
    pub key: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// Where it stands.
    pub status: ResourceStatus,
    /// The remote id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The run that created (or adopted) it; rollback only ever deletes
    /// resources whose owner is the failed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_run: Option<RunId>,
    /// Its ownership mark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<OwnershipMark>,
    /// Digest of the desired state it was last made to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_hash: Option<Digest>,
    /// The desired state of the latest intent (no secrets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<serde_json::Value>,
    /// The last run that changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunId>,
    /// The last error recorded for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// An intent without an outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingIntent>,
    /// Its state as of the last completed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<Committed>,
}

impl ResourceView {
    fn new(key: ResourceKey, kind: ResourceKind) -> Self {
        Self {
            key,
            kind,
            status: ResourceStatus::Absent,
            remote_id: None,
            owner_run: None,
            mark: None,
            desired_hash: None,
            desired: None,
            last_run: None,
            last_error: None,
            pending: None,
            committed: None,
        }
    }

    /// Whether it exists remotely as far as the journal knows: the last
    /// definite event about it made or kept it present. (A pending create
    /// does not count: what it made, if anything, is found by its mark.)
    pub fn exists(&self) -> bool {
        self.status == ResourceStatus::Present
    }
}

/// The state of one deployment (its resources, lock and latest run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentView {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Number of events in its stream.
    pub version: StreamVersion,
    /// Sequence number of its latest event.
    pub last_seq: Seq,
    /// Its resources, by key.
    pub resources: BTreeMap<ResourceKey, ResourceView>,
    /// Who holds its lock, as journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockHolder>,
    /// The most recent run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_run: Option<RunId>,
    /// The state of the most recent run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_state: Option<RunState>,
    /// The most recent apply that reached COMPLETE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_complete_run: Option<RunId>,
    /// Desired-state hash of that apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_hash: Option<Digest>,
    /// Number of runs.
    pub run_count: u64,
    /// Events the fold could not place (an outcome for an unknown run, an
    /// illegal transition written by a foreign tool). Always 0 in a journal
    /// written by Fabrik.
    #[serde(default)]
    pub anomalies: u64,
}

impl DeploymentView {
    /// An empty view.
    pub fn new(deployment: DeploymentId) -> Self {
        Self {
            deployment,
            version: StreamVersion(0),
            last_seq: Seq(0),
            resources: BTreeMap::new(),
            lock: None,
            latest_run: None,
            latest_state: None,
            last_complete_run: None,
            desired_hash: None,
            run_count: 0,
            anomalies: 0,
        }
    }

    /// Resources that exist remotely, in creation order (kind, then key).
    pub fn live_resources(&self) -> Vec<&ResourceView> {
        let mut out: Vec<_> = self.resources.values().filter(|r| r.exists()).collect();
        out.sort_by(|a, b| (a.kind.creation_rank(), &a.key).cmp(&(b.kind.creation_rank(), &b.key)));
        out
    }

    /// Resources with an intent but no outcome.
    pub fn pending_resources(&self) -> Vec<&ResourceView> {
        self.resources
            .values()
            .filter(|r| r.pending.is_some())
            .collect()
    }
}

/// Progress of a rollback executed by a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RollbackProgress {
    /// The run being undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_run: Option<RunId>,
    /// The planned steps.
    pub steps: Vec<RollbackStep>,
    /// Steps executed.
    pub done: Vec<ResourceKey>,
    /// Steps left to a person or to nobody: (resource, policy, command).
    pub skipped: Vec<SkippedStep>,
    /// Steps that failed.
    pub failed: Vec<ResourceKey>,
}

impl RollbackProgress {
    /// Steps neither done, skipped nor failed.
    pub fn remaining(&self) -> Vec<&RollbackStep> {
        self.steps
            .iter()
            .filter(|s| {
                !self.done.contains(&s.resource)
                    && !self.skipped.iter().any(|k| k.resource == s.resource)
                    && !self.failed.contains(&s.resource)
            })
            .collect()
    }
}

/// A rollback step left undone by policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedStep {
    /// The resource.
    pub resource: ResourceKey,
    /// The policy.
    pub policy: Policy,
    /// The command that finishes it (manual policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// The latest Coolify deployment a run triggered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployProgress {
    /// The deployment's id, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_uuid: Option<String>,
    /// Its last observed status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Where to see it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunView {
    /// The run.
    pub run: RunId,
    /// Its deployment.
    pub deployment: DeploymentId,
    /// The command.
    pub command: RunCommand,
    /// Its state.
    pub state: RunState,
    /// When it started.
    pub started_at: String,
    /// When its latest event happened.
    pub last_event_at: String,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Sequence number of its first event.
    pub first_seq: Seq,
    /// Sequence number of its latest event.
    pub last_seq: Seq,
    /// Number of its events.
    pub events: u64,
    /// User.
    pub user: String,
    /// Host.
    pub host: String,
    /// Process id of the process that started it.
    pub pid: u32,
    /// Fabrik version.
    pub fabrik_version: String,
    /// Spec path, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_path: Option<String>,
    /// Desired-state hash of its spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<Digest>,
    /// Options.
    pub options: RunOptions,
    /// How it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<RunOutcome>,
    /// Its exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Its summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The latest error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Resources it created, in order.
    pub created: Vec<ResourceKey>,
    /// Resources it updated, in order.
    pub updated: Vec<ResourceKey>,
    /// Resources it deleted, in order.
    pub deleted: Vec<ResourceKey>,
    /// Secrets it resolved: name → source.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Its latest Coolify deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<DeployProgress>,
    /// Verification checks passed.
    pub checks_passed: u64,
    /// Verification checks failed.
    pub checks_failed: u64,
    /// Retried provider calls.
    pub retries: u64,
    /// Notifications sent.
    pub notifications_sent: u64,
    /// Notifications that failed.
    pub notifications_failed: u64,
    /// Its rollback, if it executes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<RollbackProgress>,
    /// Why it was interrupted, while it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    /// How many times it was resumed.
    pub resumed: u32,
    /// The image it resolved before deploying, and its digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageResolved>,
}

impl RunView {
    /// Whether the run is unfinished (not terminal and no `run_finished`).
    pub fn is_open(&self) -> bool {
        self.outcome.is_none() && !self.state.is_terminal()
    }
}

/// All deployments and runs of a journal (or of the part folded so far).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Projection {
    /// Deployments by name.
    pub deployments: BTreeMap<DeploymentId, DeploymentView>,
    /// Runs by id.
    pub runs: BTreeMap<RunId, RunView>,
    /// Sequence number of the last folded event.
    pub last_seq: Seq,
}

impl Projection {
    /// An empty projection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one event in. Total: never fails.
    pub fn apply(&mut self, event: &RecordedEvent) {
        let view = self
            .deployments
            .entry(event.deployment.clone())
            .or_insert_with(|| DeploymentView::new(event.deployment.clone()));
        apply_to(view, &mut self.runs, event);
        self.last_seq = event.seq;
    }

    /// Folds every event of `events` in order.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a RecordedEvent>) -> Self {
        let mut p = Self::new();
        for e in events {
            p.apply(e);
        }
        p
    }

    /// Runs of one deployment, oldest first.
    pub fn runs_of(&self, deployment: &DeploymentId) -> Vec<&RunView> {
        let mut runs: Vec<_> = self
            .runs
            .values()
            .filter(|r| &r.deployment == deployment)
            .collect();
        runs.sort_by_key(|r| r.first_seq);
        runs
    }
}
