//! The event model: what the journal records, and how an event is encoded
//! and hashed.
//!
//! Every event has a stable snake_case type name and a version. The payload
//! of a version only ever gains optional fields (`#[serde(default)]`); a
//! change that is not additive gets a new version, and [`Event::decode`]
//! keeps reading the old one. The catalogue with every field is in
//! `docs/events.md`.
//!
//! # Canonical bytes and the hash chain
//!
//! An event's hash is `blake3(prev_hash ‖ canonical_bytes)`, where
//! `prev_hash` is the 32 raw bytes of the previous event's hash (all zero
//! for the first event) and the canonical bytes are the UTF-8 text
//!
//! ```text
//! fabrik-event-v1\n<seq>\n<deployment>\n<stream_version>\n<run or empty>\n<at>\n<type>\n<version>\n<payload>
//! ```
//!
//! with the numbers in decimal, `at` as RFC 3339 UTC with microseconds, and
//! `payload` as compact JSON with object keys sorted. None of the fields
//! before the payload can contain a newline, so the encoding is unambiguous,
//! and an auditor can recompute it from an export alone.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{DeploymentId, Digest, ImageDigest, RunId, Seq, StreamVersion};
use crate::ownership::OwnershipMark;
mod state;

use crate::secret::SecretSource;
pub use state::RunState;

/// Prefix of the canonical encoding; bumped only if the encoding changes.
pub const CANONICAL_PREFIX: &str = "fabrik-event-v1";

/// The stable key of one resource within a deployment, derived from the
/// spec: `app`, `dns:A:blog.example.com`, `monitor:health`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResourceKey(pub String);

impl ResourceKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of remote resource an event is about. The rollback policy of
/// the spec is set per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A Cloudflare DNS record.
    DnsRecord,
    /// A Coolify application or service (with its environment variables).
    Application,
    /// An Uptime Kuma monitor.
    Monitor,
}

impl ResourceKind {
    /// Order in which kinds are created; deletion runs in reverse.
    pub fn creation_rank(self) -> u8 {
        match self {
            Self::DnsRecord => 0,
            Self::Application => 1,
            Self::Monitor => 2,
        }
    }

    /// The name used in the spec's rollback policy.
    pub fn policy_name(self) -> &'static str {
        match self {
            Self::DnsRecord => "dns",
            Self::Application => "coolify",
            Self::Monitor => "monitors",
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DnsRecord => "dns_record",
            Self::Application => "application",
            Self::Monitor => "monitor",
        })
    }
}

/// A change to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Create a resource that does not exist.
    Create,
    /// Change a resource in place.
    Update,
    /// Delete a resource.
    Delete,
    /// Put an updated resource back to the state of the last completed run.
    Restore,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Restore => "restore",
        })
    }
}

/// The rollback policy of one resource kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Undo at once when the run fails.
    #[default]
    Auto,
    /// Record as pending; a person runs `fabrik rollback`.
    Manual,
    /// Leave in place.
    Never,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Manual => "manual",
            Self::Never => "never",
        })
    }
}

/// The command a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunCommand {
    /// `fabrik apply`.
    Apply,
    /// `fabrik destroy`.
    Destroy,
    /// `fabrik rollback` of an earlier run.
    Rollback,
    /// `fabrik lock release --force` and other operator actions.
    Admin,
}

impl fmt::Display for RunCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Apply => "apply",
            Self::Destroy => "destroy",
            Self::Rollback => "rollback",
            Self::Admin => "admin",
        })
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Everything the spec asks for is in place and verified.
    Succeeded,
    /// Nothing differed from the spec; no provider was called.
    NoChanges,
    /// The run failed and everything it owned was rolled back.
    RolledBack,
    /// The run failed and a person must act (manual rollback pending,
    /// rollback incomplete, or rollback disabled).
    NeedsAttention,
    /// The run failed before changing anything.
    Failed,
    /// Everything the deployment owned was deleted.
    Destroyed,
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Succeeded => "succeeded",
            Self::NoChanges => "no_changes",
            Self::RolledBack => "rolled_back",
            Self::NeedsAttention => "needs_attention",
            Self::Failed => "failed",
            Self::Destroyed => "destroyed",
        })
    }
}

/// Who holds (or held) a deployment's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// The run holding the lock.
    pub run: RunId,
    /// Process id of the holder.
    pub pid: u32,
    /// Host name of the holder.
    pub host: String,
    /// User name of the holder.
    pub user: String,
    /// The command line verb (`apply`, `destroy`, ...).
    pub command: String,
    /// When the lock was taken (RFC 3339).
    pub since: String,
}

/// Options a run was started with (no secrets, ever).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunOptions {
    /// `--no-rollback` was given.
    #[serde(default)]
    pub no_rollback: bool,
    /// `--sandbox` was given.
    #[serde(default)]
    pub sandbox: bool,
    /// `--refresh` was given.
    #[serde(default)]
    pub refresh: bool,
    /// For `rollback`: the run whose changes are undone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_run: Option<RunId>,
    /// The spec's rollback policy per kind (`coolify`, `dns`, `monitors`),
    /// so that a later `fabrik rollback` follows it without the spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, Policy>,
    /// The spec's identity, which binds a deployment to one spec: its path
    /// inside its git work tree (`deploy/prod/spec.yaml`), or its absolute
    /// path outside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_id: Option<String>,
    /// For `apply --take-over`: the deployment was bound to another spec.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub take_over: bool,
    /// For `rollback NAME --to RUN`: the earlier run whose desired state
    /// this apply restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores: Option<RunId>,
    /// Hash of the spec's shared part (the file without `environments`):
    /// a promotion of this run compares it with today's file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_hash: Option<Digest>,
    /// For `promote`: the run of another environment whose verified image
    /// this apply deploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_from: Option<Promotion>,
}

/// Where a promoted release was verified: a successful apply of the same
/// spec in another environment, and the image digest it journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// The deployment of the source environment (`web@staging`).
    pub deployment: DeploymentId,
    /// Its run that verified the release.
    pub run: RunId,
    /// The image digest that run journaled, deployed by this one.
    pub digest: ImageDigest,
}

impl fmt::Display for Promotion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "promoted from {} run {} ({})",
            self.deployment, self.run, self.digest
        )
    }
}

/// One step of a rollback plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackStep {
    /// The resource.
    pub resource: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// Delete (created by the run) or restore (updated by the run).
    pub action: Action,
    /// The remote id, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The policy that applies.
    pub policy: Policy,
    /// For a restore: the desired state of the last completed run.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub restore_to: Option<serde_json::Value>,
}

/// Reads an optional JSON value that is left out when absent: a `null`
/// that is there is the value `null` (`Some(Null)`), not an absence, so
/// that decoding and encoding again gives the same bytes (and hash).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// `run_started`: a command began a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    /// The command.
    pub command: RunCommand,
    /// Path of the spec, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_path: Option<String>,
    /// Desired-state hash of the spec, when one was loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<Digest>,
    /// User name: `$USER`, else the passwd entry of the process's uid (CI,
    /// containers), else `uid N`.
    pub user: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Fabrik version.
    pub fabrik_version: String,
    /// Options.
    #[serde(default)]
    pub options: RunOptions,
}

/// `run_state_changed`: the run moved to another state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStateChanged {
    /// Previous state.
    pub from: RunState,
    /// New state.
    pub to: RunState,
    /// Why, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `run_finished`: the command finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    /// How it ended.
    pub outcome: RunOutcome,
    /// The process exit code.
    pub exit_code: i32,
    /// A one-line summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `run_resumed`: `fabrik resume` took over an interrupted run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResumed {
    /// Process id of the resuming process.
    pub pid: u32,
    /// Host of the resuming process.
    pub host: String,
    /// User of the resuming process.
    pub user: String,
}

/// `run_interrupted`: the run stopped before finishing (signal, or a holder
/// found dead).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInterrupted {
    /// Why.
    pub reason: String,
    /// The command that finishes the run.
    pub resume_command: String,
}

/// `spec_validated`: the spec passed validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecValidated {
    /// Desired-state hash.
    pub spec_hash: Digest,
    /// Warnings (`FILE:LINE:COL: message`).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `spec_rejected`: the spec failed validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpecRejected {
    /// Every problem (`FILE:LINE:COL: message`).
    pub problems: Vec<String>,
}

/// `secret_resolved`: a secret was found. Name and source only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretResolved {
    /// The secret's name.
    pub name: String,
    /// Where it came from.
    pub source: SecretSource,
    /// Keyed fingerprint (change detection only; the key is never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Digest>,
    /// A new value generated on purpose (`apply --rotate NAME`) for a
    /// secret an earlier run had.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotated: bool,
}

/// `image_resolved`: the manifest digest the spec's image tag named when
/// the run resolved it, before deploying; or why it could not be learnt
/// (the run goes on without it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageResolved {
    /// The image as the run deploys it (`ghcr.io/acme/web:1.4.2`).
    pub image: String,
    /// The digest of the manifest it named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<ImageDigest>,
    /// Why the digest is unknown (scrubbed), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `resource_intent`: Fabrik is about to change a resource. Durable before
/// the provider call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceIntent {
    /// The resource.
    pub resource: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// The change.
    pub action: Action,
    /// The remote id, for updates and deletes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The desired state (no secret values).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub desired: Option<serde_json::Value>,
    /// Digest of the desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_hash: Option<Digest>,
    /// The ownership mark a created resource will carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark: Option<OwnershipMark>,
}

/// `resource_created`: a resource now exists remotely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceCreated {
    /// The resource.
    pub resource: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// The remote id.
    pub remote_id: String,
    /// The mark it carries.
    pub mark: OwnershipMark,
    /// Digest of its desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_hash: Option<Digest>,
    /// True when an existing remote resource carrying this run's mark was
    /// adopted instead of created (resume after a lost outcome).
    #[serde(default)]
    pub adopted: bool,
    /// Set when the create took several calls and one after the first
    /// failed: the resource exists (owned, and undone by a rollback) but is
    /// not yet as desired. The error of the call that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

/// `resource_updated`: a resource was changed in place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceUpdated {
    /// The resource.
    pub resource: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// The remote id.
    pub remote_id: String,
    /// Digest of its new desired state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_hash: Option<Digest>,
    /// Names of the fields that changed.
    #[serde(default)]
    pub changed: Vec<String>,
    /// True for a rollback restore rather than a forward update.
    #[serde(default)]
    pub restored: bool,
}

/// `resource_deleted`: a resource no longer exists remotely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceDeleted {
    /// The resource.
    pub resource: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// The remote id.
    pub remote_id: String,
    /// True when it was already gone.
    #[serde(default)]
    pub already_gone: bool,
}

/// `resource_failed`: a change to a resource failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceFailed {
    /// The resource.
    pub resource: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// The change that failed.
    pub action: Action,
    /// The error (scrubbed of secrets).
    pub error: String,
    /// True when the outcome is unknown (the request may have been applied).
    #[serde(default)]
    pub outcome_unknown: bool,
}

/// What resume found for an intent without an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// The remote resource exists with this run's mark; adopted.
    Adopted,
    /// The remote resource does not exist; the step will be redone.
    Absent,
    /// The change was found applied.
    Applied,
}

/// `resource_reconciled`: resume looked up a resource whose outcome was lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceReconciled {
    /// The resource.
    pub resource: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// The action whose outcome was lost.
    pub action: Action,
    /// What was found.
    pub finding: Finding,
    /// The remote id, when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
}

/// `attempt_failed`: a provider call failed and will be retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptFailed {
    /// The operation (`cloudflare create_record`, ...).
    pub operation: String,
    /// Which attempt failed (1-based).
    pub attempt: u32,
    /// Why (scrubbed).
    pub reason: String,
    /// Delay before the next attempt, in milliseconds.
    pub delay_ms: u64,
}

/// `deploy_requested`: Fabrik is about to ask Coolify for a deployment.
/// Durable before the call (the intent of a deploy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployRequested {
    /// The application resource.
    pub resource: ResourceKey,
    /// The application's remote id.
    pub remote_id: String,
    /// Whether the deploy is forced.
    #[serde(default)]
    pub force: bool,
    /// Whether the application's newest deployment was looked up just
    /// before the request (false in journals written before Fabrik did):
    /// then any deployment newer than `previous` is the one this request
    /// queued, whatever its status when a resumed run looks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub baseline: bool,
    /// That newest deployment, if the application had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// `deploy_triggered`: a Coolify deployment was requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeployTriggered {
    /// The application resource.
    pub resource: ResourceKey,
    /// The application's remote id.
    pub remote_id: String,
    /// The deployment's id, when Coolify returned a saved one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_uuid: Option<String>,
    /// Whether the deploy was forced.
    #[serde(default)]
    pub force: bool,
}

/// `deployment_observed`: a Coolify deployment's status was read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentObserved {
    /// The application resource.
    pub resource: ResourceKey,
    /// The deployment's id.
    pub deployment_uuid: String,
    /// Its status (`queued`, `in_progress`, `finished`, `failed`, ...).
    pub status: String,
    /// Time since the deploy was triggered, in milliseconds.
    pub elapsed_ms: u64,
    /// Where to look at it in Coolify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// `verification_passed`: a check succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationPassed {
    /// The check (`http https://blog.example.com/health`, `tls blog.example.com`).
    pub check: String,
    /// What was observed (status, days left, addresses, attempts).
    pub evidence: serde_json::Value,
}

/// `verification_failed`: a check failed for good.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerificationFailed {
    /// The check.
    pub check: String,
    /// What was observed.
    pub evidence: serde_json::Value,
    /// Why it failed.
    pub error: String,
}

/// `rollback_planned`: the steps that will undo a run, derived from the
/// journal alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackPlanned {
    /// The run being undone.
    pub target_run: RunId,
    /// Steps in execution order.
    pub steps: Vec<RollbackStep>,
}

/// `rollback_step_done`: one step was executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackStepDone {
    /// The resource.
    pub resource: ResourceKey,
    /// The action taken.
    pub action: Action,
}

/// `rollback_step_skipped`: one step was not executed because of its policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackStepSkipped {
    /// The resource.
    pub resource: ResourceKey,
    /// The policy.
    pub policy: Policy,
    /// Why.
    pub reason: String,
    /// The command that executes it later, for `manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// `rollback_step_failed`: one step failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackStepFailed {
    /// The resource.
    pub resource: ResourceKey,
    /// The action attempted.
    pub action: Action,
    /// Why (scrubbed).
    pub error: String,
}

/// `notification_sent`: a webhook was delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationSent {
    /// The notification channel's name.
    pub channel: String,
    /// The event it announced.
    pub event: String,
}

/// `notification_failed`: a webhook could not be delivered (never fails the run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationFailed {
    /// The notification channel's name.
    pub channel: String,
    /// The event it announced.
    pub event: String,
    /// Why (scrubbed).
    pub error: String,
}

/// `lock_acquired`: a run took the deployment's lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockAcquired {
    /// The holder.
    pub holder: LockHolder,
}

/// `lock_released`: the holder let go of the lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockReleased {
    /// The run that held it.
    pub run: RunId,
}

/// `lock_broken`: a lock was taken away from its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockBroken {
    /// The holder that lost it.
    pub previous: LockHolder,
    /// Why (`released with --force by user@host`, `holder process is gone`).
    pub reason: String,
}

/// `journal_checkpoint`: the journal's head, sealed with the journal key
/// (kept outside the journal) in the append that finishes a run. It seals
/// the event right before it, and through the hash chain every event
/// before that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalCheckpoint {
    /// Sequence number of the sealed event (the one before this).
    pub seq: Seq,
    /// Its hash.
    pub head: Digest,
    /// Id of the journal key that sealed it (derived from the key; not the
    /// key).
    pub key: String,
    /// The seal: blake3 keyed by the key over `fabrik-checkpoint-v1\n<seq>\n<head>`.
    pub mac: Digest,
}

macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident($payload:ty) = $name:literal ),* $(,)?) => {
        /// Every event the journal can hold.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $( $(#[$doc])* $variant($payload), )*
        }

        /// Every event type name, in catalogue order.
        pub const EVENT_TYPES: &[&str] = &[ $( $name, )* ];

        impl Event {
            /// The stable type name.
            pub fn type_name(&self) -> &'static str {
                match self { $( Self::$variant(_) => $name, )* }
            }

            /// The payload as JSON (keys sorted: serde_json's map is ordered).
            pub fn payload(&self) -> serde_json::Value {
                let v = match self { $( Self::$variant(p) => serde_json::to_value(p), )* };
                // Serialising these plain structs cannot fail (no maps with
                // non-string keys, no custom serialisers that error).
                v.unwrap_or(serde_json::Value::Null)
            }

            /// The payload as canonical JSON: the text the journal stores and
            /// hashes, equal to `canonical_json(&self.payload())` but written
            /// without building the JSON value first.
            pub fn canonical_payload(&self) -> String {
                let text = match self { $( Self::$variant(p) => crate::canonical::to_canonical_json(p), )* };
                // As with `payload`: these plain structs always serialise.
                text.unwrap_or_else(|_| canonical_json(&self.payload()))
            }

            /// Decodes a stored event.
            pub fn decode(type_name: &str, version: u32, payload: &str) -> Result<Self, DecodeError> {
                if version != EVENT_VERSION {
                    return Err(DecodeError::UnknownVersion { type_name: type_name.to_owned(), version });
                }
                match type_name {
                    $( $name => serde_json::from_str(payload).map(Self::$variant).map_err(|source| DecodeError::Payload { type_name: type_name.to_owned(), source }), )*
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }

            /// Decodes an event from an already parsed payload.
            pub fn from_value(type_name: &str, version: u32, payload: serde_json::Value) -> Result<Self, DecodeError> {
                if version != EVENT_VERSION {
                    return Err(DecodeError::UnknownVersion { type_name: type_name.to_owned(), version });
                }
                match type_name {
                    $( $name => serde_json::from_value(payload).map(Self::$variant).map_err(|source| DecodeError::Payload { type_name: type_name.to_owned(), source }), )*
                    other => Err(DecodeError::UnknownType(other.to_owned())),
                }
            }
        }
    };
}

/// The version every event type currently has.
pub const EVENT_VERSION: u32 = 1;

events! {
    /// A command began a run.
    RunStarted(RunStarted) = "run_started",
    /// The run moved to another state.
    RunStateChanged(RunStateChanged) = "run_state_changed",
    /// The command finished.
    RunFinished(RunFinished) = "run_finished",
    /// `fabrik resume` took over the run.
    RunResumed(RunResumed) = "run_resumed",
    /// The run stopped before finishing.
    RunInterrupted(RunInterrupted) = "run_interrupted",
    /// The spec passed validation.
    SpecValidated(SpecValidated) = "spec_validated",
    /// The spec failed validation.
    SpecRejected(SpecRejected) = "spec_rejected",
    /// A secret was found (name and source only).
    SecretResolved(SecretResolved) = "secret_resolved",
    /// The image tag's digest was resolved (or could not be).
    ImageResolved(ImageResolved) = "image_resolved",
    /// A change to a resource is about to be made.
    ResourceIntent(ResourceIntent) = "resource_intent",
    /// A resource was created (or adopted).
    ResourceCreated(ResourceCreated) = "resource_created",
    /// A resource was updated (or restored).
    ResourceUpdated(ResourceUpdated) = "resource_updated",
    /// A resource was deleted.
    ResourceDeleted(ResourceDeleted) = "resource_deleted",
    /// A change to a resource failed.
    ResourceFailed(ResourceFailed) = "resource_failed",
    /// Resume reconciled an intent whose outcome was lost.
    ResourceReconciled(ResourceReconciled) = "resource_reconciled",
    /// A provider call failed and will be retried.
    AttemptFailed(AttemptFailed) = "attempt_failed",
    /// A Coolify deployment is about to be requested.
    DeployRequested(DeployRequested) = "deploy_requested",
    /// A Coolify deployment was requested.
    DeployTriggered(DeployTriggered) = "deploy_triggered",
    /// A Coolify deployment's status was read.
    DeploymentObserved(DeploymentObserved) = "deployment_observed",
    /// A verification check passed.
    VerificationPassed(VerificationPassed) = "verification_passed",
    /// A verification check failed.
    VerificationFailed(VerificationFailed) = "verification_failed",
    /// The steps of a rollback.
    RollbackPlanned(RollbackPlanned) = "rollback_planned",
    /// A rollback step was executed.
    RollbackStepDone(RollbackStepDone) = "rollback_step_done",
    /// A rollback step was skipped by policy.
    RollbackStepSkipped(RollbackStepSkipped) = "rollback_step_skipped",
    /// A rollback step failed.
    RollbackStepFailed(RollbackStepFailed) = "rollback_step_failed",
    /// A notification was delivered.
    NotificationSent(NotificationSent) = "notification_sent",
    /// A notification could not be delivered.
    NotificationFailed(NotificationFailed) = "notification_failed",
    /// A run took the deployment's lock.
    LockAcquired(LockAcquired) = "lock_acquired",
    /// A run released the deployment's lock.
    LockReleased(LockReleased) = "lock_released",
    /// A lock was taken away from its holder.
    LockBroken(LockBroken) = "lock_broken",
    /// The journal's head, sealed with the journal key.
    JournalCheckpoint(JournalCheckpoint) = "journal_checkpoint",
}

/// Why a stored event could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The type name is not one this Fabrik knows (written by a newer one).
    #[error("unknown event type {0:?} (written by a newer fabrik?)")]
    UnknownType(String),
    /// The version is not one this Fabrik knows.
    #[error("unknown version {version} of event type {type_name:?} (written by a newer fabrik?)")]
    UnknownVersion {
        /// The type.
        type_name: String,
        /// The version.
        version: u32,
    },
    /// The payload does not match the type.
    #[error("malformed payload of event type {type_name:?}")]
    Payload {
        /// The type.
        type_name: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
}

/// An event to append: the caller supplies the time and the run; the store
/// assigns the sequence, the stream version and the hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The run it belongs to (none for operator actions outside a run).
    pub run: Option<RunId>,
    /// When it happened.
    pub at: jiff::Timestamp,
    /// The event.
    pub event: Event,
}

/// An event as stored in the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Global position.
    pub seq: Seq,
    /// The deployment (stream).
    pub deployment: DeploymentId,
    /// Position within the stream (1-based).
    pub stream_version: StreamVersion,
    /// The run.
    pub run: Option<RunId>,
    /// When it happened.
    pub at: jiff::Timestamp,
    /// The event.
    pub event: Event,
    /// Hash of the previous event in the journal.
    pub prev_hash: Digest,
    /// This event's hash.
    pub hash: Digest,
}

/// Renders a timestamp the one way the journal stores it: RFC 3339, UTC,
/// microsecond precision, `Z` suffix.
pub fn format_timestamp(at: jiff::Timestamp) -> String {
    // Truncate to microseconds so the text round-trips exactly. Formatted
    // by hand: the fold formats one timestamp per event, and a journal of a
    // million events spends measurable time in a general formatter.
    let micros = at.as_microsecond();
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    if !(0..=2_932_896).contains(&days) {
        // Outside years 1970..=9999: let jiff do it.
        let at = jiff::Timestamp::from_microsecond(micros).unwrap_or(at);
        return format!("{at:.6}");
    }
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    fn push(out: &mut String, n: i64, width: usize) {
        let mut digits = [b'0'; 6];
        let mut v = n;
        for i in (0..width).rev() {
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        for d in &digits[..width] {
            out.push(char::from(*d));
        }
    }
    let mut out = String::with_capacity(27);
    push(&mut out, year, 4);
    out.push('-');
    push(&mut out, month, 2);
    out.push('-');
    push(&mut out, day, 2);
    out.push('T');
    push(&mut out, sod / 3600, 2);
    out.push(':');
    push(&mut out, sod / 60 % 60, 2);
    out.push(':');
    push(&mut out, sod % 60, 2);
    out.push('.');
    push(&mut out, frac, 6);
    out.push('Z');
    out
}

/// Parses a stored timestamp: the journal's own form
/// (`YYYY-MM-DDTHH:MM:SS.ffffffZ`) by hand, anything else with jiff.
pub fn parse_timestamp(s: &str) -> Result<jiff::Timestamp, jiff::Error> {
    if let Some(t) = parse_canonical(s.as_bytes()) {
        return Ok(t);
    }
    parse_general(s)
}

/// The journal's fixed timestamp form, or `None` for anything else.
fn parse_canonical(b: &[u8]) -> Option<jiff::Timestamp> {
    if b.len() != 27
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[26] != b'Z'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, frac) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..26)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=month_days).contains(&d) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    // Days since 1970-01-01 from a civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let micros = ((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + frac;
    jiff::Timestamp::from_microsecond(micros).ok()
}

fn parse_general(s: &str) -> Result<jiff::Timestamp, jiff::Error> {
    s.parse()
}

/// Compact JSON with object keys sorted (by their UTF-8 bytes), whatever
/// map implementation serde_json was built with (written by
/// [`crate::canonical`]).
pub fn canonical_json(value: &serde_json::Value) -> String {
    // Every key of a JSON value is a string: this cannot fail.
    crate::canonical::to_canonical_json(value).unwrap_or_else(|_| value.to_string())
}

/// The canonical form built by hand, the reference the serializer is
/// tested against.
#[cfg(test)]
pub(crate) fn canonical_json_by_hand(value: &serde_json::Value) -> String {
    let mut out = String::with_capacity(128);
    write_canonical(value, &mut out);
    out
}

#[cfg(test)]
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(k, out);
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        Value::String(s) => write_json_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
fn write_json_string(s: &str, out: &mut String) {
    // serde_json's escaping is canonical (only what JSON requires, `\u00XX`
    // for other control characters), so reuse it for one string.
    out.push_str(&serde_json::Value::String(s.to_owned()).to_string());
}

/// The fields that enter an event's hash, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalFields<'a> {
    /// Global sequence.
    pub seq: u64,
    /// Deployment name.
    pub deployment: &'a str,
    /// Stream version.
    pub stream_version: u64,
    /// Run id, or empty.
    pub run: &'a str,
    /// Timestamp text, as stored.
    pub at: &'a str,
    /// Type name.
    pub type_name: &'a str,
    /// Version.
    pub version: u32,
    /// Canonical payload JSON text.
    pub payload: &'a str,
}

impl CanonicalFields<'_> {
    /// Appends the canonical bytes to `out` (cleared first).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        self.write_header(out);
        out.extend_from_slice(self.payload.as_bytes());
    }

    /// The canonical bytes before the payload (`out` cleared first).
    fn write_header(&self, out: &mut Vec<u8>) {
        out.clear();
        for (i, part) in [
            Part::Text(CANONICAL_PREFIX),
            Part::Number(self.seq),
            Part::Text(self.deployment),
            Part::Number(self.stream_version),
            Part::Text(self.run),
            Part::Text(self.at),
            Part::Text(self.type_name),
            Part::Number(u64::from(self.version)),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                out.push(b'\n');
            }
            match part {
                Part::Text(t) => out.extend_from_slice(t.as_bytes()),
                Part::Number(n) => push_decimal(out, n),
            }
        }
        out.push(b'\n');
    }

    /// `blake3(prev ‖ canonical bytes)`, reusing `scratch` for the part
    /// before the payload (the payload is hashed where it lies).
    pub fn hash(&self, prev: &Digest, scratch: &mut Vec<u8>) -> Digest {
        self.write_header(scratch);
        let mut h = blake3::Hasher::new();
        h.update(&prev.0);
        h.update(scratch);
        h.update(self.payload.as_bytes());
        Digest(*h.finalize().as_bytes())
    }
}

/// One line of the canonical header.
enum Part<'a> {
    Text(&'a str),
    Number(u64),
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        // n % 10 < 10: the cast cannot truncate.
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Counts of events by type, for summaries.
pub fn count_by_type<'a>(
    events: impl IntoIterator<Item = &'a Event>,
) -> BTreeMap<&'static str, u64> {
    let mut out = BTreeMap::new();
    for e in events {
        *out.entry(e.type_name()).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_encoding_is_stable() {
        let f = CanonicalFields {
            seq: 7,
            deployment: "blog",
            stream_version: 3,
            run: "01jdx3v5q6m7n8p9r0s1t2v3w4",
            at: "2026-11-27T11:00:00.000000Z",
            type_name: "lock_released",
            version: 1,
            payload: r#"{"run":"01jdx3v5q6m7n8p9r0s1t2v3w4"}"#,
        };
        let mut buf = Vec::new();
        f.write_to(&mut buf);
        assert_eq!(
            String::from_utf8(buf.clone()).unwrap(),
            "fabrik-event-v1\n7\nblog\n3\n01jdx3v5q6m7n8p9r0s1t2v3w4\n2026-11-27T11:00:00.000000Z\nlock_released\n1\n{\"run\":\"01jdx3v5q6m7n8p9r0s1t2v3w4\"}"
        );
        let h1 = f.hash(&Digest::GENESIS, &mut buf);
        let h2 = f.hash(&Digest::GENESIS, &mut buf);
        assert_eq!(h1, h2);
        assert_ne!(h1, f.hash(&Digest::of(b"x"), &mut buf));
    }

    #[test]
    fn the_serialiser_gives_the_canonical_form() {
        let v = serde_json::json!({
            "zeta": [1, -2, 3.5, 1e300, null, true, "x"],
            "alpha": {"b": "tab\tquote\"nl\n\u{1}\u{7f}é\u{2028}", "a": {}},
            "Upper": [],
            "ünïcode": 18_446_744_073_709_551_615_u64,
            "neg": -9_223_372_036_854_775_808_i64,
        });
        let text = canonical_json(&v);
        assert_eq!(text, canonical_json_by_hand(&v));
        assert!(
            text.starts_with(r#"{"Upper":[],"alpha":{"a":{},"b":"#),
            "{text}"
        );
        // Every event payload of a generated journal, both ways.
        let mut seen = 0;
        crate::generate::generate(
            crate::generate::Shape {
                deployments: 3,
                runs: 40,
                records: 3,
                seed: 5,
            },
            |b| {
                for e in &b.events {
                    let p = e.event.payload();
                    assert_eq!(canonical_json(&p), canonical_json_by_hand(&p));
                    assert_eq!(e.event.canonical_payload(), canonical_json_by_hand(&p));
                    seen += 1;
                }
            },
        );
        assert!(seen > 100, "{seen}");
    }

    #[test]
    fn the_canonical_header_agrees_with_formatting() {
        for (seq, sv, version) in [
            (0, 0, 0),
            (1, 9, 1),
            (10, 99, 7),
            (u64::MAX, 1_000_000, u32::MAX),
        ] {
            let f = CanonicalFields {
                seq,
                deployment: "svc-00001",
                stream_version: sv,
                run: "",
                at: "2026-11-27T11:00:00.000000Z",
                type_name: "run_started",
                version,
                payload: "{}",
            };
            let mut buf = Vec::new();
            f.write_to(&mut buf);
            let expected = format!(
                "{CANONICAL_PREFIX}\n{seq}\nsvc-00001\n{sv}\n\n2026-11-27T11:00:00.000000Z\nrun_started\n{version}\n{{}}"
            );
            assert_eq!(String::from_utf8(buf.clone()).unwrap(), expected);
            let mut h = blake3::Hasher::new();
            h.update(&Digest::GENESIS.0);
            h.update(expected.as_bytes());
            assert_eq!(
                f.hash(&Digest::GENESIS, &mut buf),
                Digest(*h.finalize().as_bytes())
            );
        }
    }

    /// 20,000 pseudo-random instants (any microsecond between 1970 and
    /// 9999), the same for a given seed.
    fn instants(seed: u64) -> impl Iterator<Item = jiff::Timestamp> {
        let mut x = seed;
        (0..20_000).map(move |_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let micros = i64::try_from(x % 253_402_300_799_999_999).unwrap();
            jiff::Timestamp::from_microsecond(micros).unwrap()
        })
    }

    #[test]
    fn the_fast_formatter_agrees_with_jiff() {
        for at in instants(0x1234_5678_9abc_def0) {
            assert_eq!(format_timestamp(at), format!("{at:.6}"));
        }
        for s in [
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59.999999Z",
            "2024-12-31T12:00:00Z",
        ] {
            let at: jiff::Timestamp = s.parse().unwrap();
            assert_eq!(format_timestamp(at), format!("{at:.6}"));
        }
    }

    #[test]
    fn the_fast_parser_agrees_with_jiff() {
        for at in instants(0x9e37_79b9_7f4a_7c15) {
            let text = format_timestamp(at);
            assert_eq!(parse_canonical(text.as_bytes()), Some(at), "{text}");
        }
        for bad in [
            "2026-02-30T00:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
            "2026-01-01T24:00:00.000000Z",
            "2026-01-01 00:00:00.000000Z",
        ] {
            assert_eq!(parse_canonical(bad.as_bytes()), None, "{bad}");
        }
        assert!(parse_timestamp("2026-11-27T11:00:00Z").is_ok());
    }

    #[test]
    fn timestamps_have_microsecond_precision() {
        let at: jiff::Timestamp = "2026-11-27T11:00:00.123456789Z".parse().unwrap();
        assert_eq!(format_timestamp(at), "2026-11-27T11:00:00.123456Z");
        let whole: jiff::Timestamp = "2026-11-27T11:00:00Z".parse().unwrap();
        assert_eq!(format_timestamp(whole), "2026-11-27T11:00:00.000000Z");
    }

    #[test]
    fn a_null_value_is_kept_apart_from_an_absent_one() {
        let payload = r#"{"action":"create","desired":null,"kind":"application","resource":"app"}"#;
        let e = Event::decode("resource_intent", 1, payload).unwrap();
        assert_eq!(canonical_json(&e.payload()), payload);
        let absent = r#"{"action":"create","kind":"application","resource":"app"}"#;
        let e = Event::decode("resource_intent", 1, absent).unwrap();
        assert_eq!(canonical_json(&e.payload()), absent);
    }

    #[test]
    fn unknown_types_and_versions_are_refused() {
        assert!(matches!(
            Event::decode("from_the_future", 1, "{}"),
            Err(DecodeError::UnknownType(_))
        ));
        assert!(matches!(
            Event::decode("lock_released", 2, "{}"),
            Err(DecodeError::UnknownVersion { .. })
        ));
    }
}
