//! Providers: capability traits and the clients of the remote services.
//!
//! The engine holds `Arc<dyn AppHost>`, `Arc<dyn Dns>`, `Arc<dyn Monitors>`
//! and `Arc<dyn Notifier>`; it never sees vendor JSON, which stays private to
//! each client.
//!
//! # Layout
//!
//! - [`types`]: the domain types the traits speak.
//! - [`error`]: [`ProviderError`], the one error of this layer.
//! - [`http`]: the one HTTP layer (timeouts, user agent, retries,
//!   classification, scrubbing) under Coolify, Cloudflare and webhooks.
//! - [`coolify`]: [`AppHost`] on Coolify v4 (`/api/v1`).
//! - [`cloudflare`]: [`Dns`] on Cloudflare's v4 API.
//! - [`socketio`]: a small Socket.IO v5 / Engine.IO v4 client over
//!   websockets, for Uptime Kuma.
//! - [`kuma`]: [`Monitors`] on Uptime Kuma 1.23 and 2.x.
//! - [`webhook`]: [`Notifier`] for signed JSON (Standard Webhooks), Slack
//!   and Discord.
//! - [`oci`]: [`Images`] on the OCI distribution API (which manifest a
//!   tag names).
//! - [`registry`]: credentials (or the sandbox) → a [`Connection`]: the
//!   only place the vendor clients above are built.
//! - [`fake`]: in-memory providers behind the same traits, for the
//!   engine's own tests.
//!
//! # Invariants
//!
//! - A request that may create something (create, deploy) is never repeated
//!   once it may have reached the server; the error says
//!   [`ProviderError::outcome_unknown`] and the caller looks the resource up
//!   by its ownership mark first.
//! - Tokens, passwords and secret values never appear in errors, `Debug`
//!   output or anything returned; quoted answers are scrubbed.
//! - Configuration is passed in; nothing here reads the process environment.
#![allow(
    clippy::result_large_err,
    reason = "ProviderError carries its context (endpoint, code, hint) by value so the engine can journal it; failures are rare and never on a hot path"
)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::id::DeploymentId;
use crate::ownership::OwnershipMark;

pub mod cloudflare;
pub mod coolify;
pub mod error;
pub mod fake;
pub mod http;
pub mod kuma;
pub mod oci;
pub mod registry;
pub mod socketio;
pub mod types;
pub mod webhook;

pub use cloudflare::{CloudflareClient, CloudflareConfig};
pub use coolify::{CoolifyClient, CoolifyConfig};
pub use error::{ErrorKind, FieldError, ForbiddenReason, ProviderError, ProviderName};
pub use http::{HttpConfig, RetryEvent, RetryObserver, RetryPolicy};
pub use kuma::{KumaClient, KumaConfig};
pub use oci::{OciClient, OciConfig};
pub use registry::{Connect, ConnectError, ConnectRequest};
pub use types::*;
pub use webhook::{WebhookConfig, WebhookFormat, WebhookNotifier};

/// A notification channel of the spec.
pub struct NotifierEntry {
    /// Its name in the spec.
    pub name: String,
    /// The events it wants (`succeeded`, `failed`, ...).
    pub events: Vec<String>,
    /// The longest one delivery may take, retries included.
    pub timeout: Duration,
    /// The client.
    pub notifier: Arc<dyn Notifier>,
}

impl std::fmt::Debug for NotifierEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifierEntry")
            .field("name", &self.name)
            .field("events", &self.events)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The remote services of a run, by capability.
#[derive(Clone)]
pub struct Providers {
    /// The application host (Coolify).
    pub app: Arc<dyn AppHost>,
    /// DNS (Cloudflare), when the run has records to manage.
    pub dns: Option<Arc<dyn Dns>>,
    /// Monitors (Uptime Kuma), when the run has monitors to manage.
    pub monitors: Option<Arc<dyn Monitors>>,
    /// Notification channels.
    pub notifiers: Arc<Vec<NotifierEntry>>,
    /// The checks run after a deployment.
    pub probe: Arc<dyn crate::verify::Probe>,
    /// Image registries, for the digest an image's tag names.
    pub images: Arc<dyn Images>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("dns", &self.dns.is_some())
            .field("monitors", &self.monitors.is_some())
            .field("notifiers", &self.notifiers)
            .finish_non_exhaustive()
    }
}

/// How often to poll and how many changes to make at once: a property of
/// where the providers are (the sandbox answers in milliseconds).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Between deployment status reads.
    pub poll: Duration,
    /// Before the second verification attempt; each later wait is half
    /// as long again, up to `verify_max` (a check that passes a moment
    /// after the deployment is seen at once, one that needs minutes is
    /// not polled five times a second).
    pub verify_first: Duration,
    /// The longest wait between verification attempts.
    pub verify_max: Duration,
    /// Requests about independent resources in flight at once, at most
    /// (DNS changes, lookups, deletes).
    pub parallel: usize,
}

impl Default for Pace {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(3),
            verify_first: Duration::from_millis(250),
            verify_max: Duration::from_secs(5),
            parallel: 16,
        }
    }
}

impl Pace {
    /// The pace against a simulator on loopback.
    pub fn local() -> Self {
        Self {
            poll: Duration::from_millis(100),
            verify_first: Duration::from_millis(50),
            verify_max: Duration::from_secs(1),
            parallel: 16,
        }
    }
}

/// The remote world of one run: providers, pace, retry policy and the
/// credential values to scrub from anything kept or shown.
pub struct Connection {
    /// The providers.
    pub providers: Providers,
    /// Polling pace.
    pub pace: Pace,
    /// The retry limit and backoff, also for creates and deploys whose
    /// outcome was unknown and that were not found (the HTTP layer does
    /// not repeat those itself).
    pub retry: RetryPolicy,
    /// Credential values (tokens, passwords, webhook URLs).
    pub scrubber: crate::secret::Scrubber,
    /// Keeps what serves the providers alive (an in-process sandbox).
    pub keep_alive: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("providers", &self.providers)
            .field("pace", &self.pace)
            .finish_non_exhaustive()
    }
}

/// Called while a deployment is polled: the latest status and the time
/// spent waiting so far.
pub type Progress<'a> = &'a (dyn Fn(&DeploymentStatus, Duration) + Send + Sync);

/// Hosts and deploys applications (Coolify).
#[async_trait]
pub trait AppHost: Send + Sync {
    /// Checks that the API answers and the token may read, reads the server
    /// version, and resolves project, environment, server and destination by
    /// name or uuid. Errors carry an actionable hint (API disabled, IP not
    /// allowed, permission missing, project or server not found).
    async fn preflight(&self, target: &Target) -> Result<ResolvedTarget, ProviderError>;

    /// Finds an existing app: by stored uuid first, else by name among the
    /// apps carrying `lookup.deployment`'s mark. Several owned matches are an
    /// [`ErrorKind::AmbiguousMatch`]; apps with the name but without the
    /// mark are not Fabrik's and are ignored.
    async fn find_app(
        &self,
        target: &ResolvedTarget,
        lookup: &AppLookup,
    ) -> Result<Option<RemoteApp>, ProviderError>;

    /// Creates the app without deploying it, carrying `mark` (tags from 4.2,
    /// description always), and reads it back. Compose and one-click forms
    /// become Coolify services. Never retried once sent: on
    /// [`ProviderError::outcome_unknown`] call [`AppHost::find_app`].
    async fn create_app(
        &self,
        target: &ResolvedTarget,
        desired: &AppDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteApp, ProviderError>;

    /// Reads the app, compares it with `desired` and PATCHes only the fields
    /// that differ. Returns the names of the changed fields (empty: no call).
    ///
    /// `previous` is what the last apply made the app (from the journal),
    /// when known: fields the server hides or rewrites (a compose file it
    /// re-serialises, a Dockerfile hidden without `read:sensitive`) are
    /// compared with it instead of the remote value. A Dockerfile that
    /// changed cannot be updated ([`ErrorKind::Unsupported`]): the engine
    /// replaces the app.
    async fn update_app(
        &self,
        app: &RemoteApp,
        desired: &AppDesired,
        previous: Option<&AppDesired>,
    ) -> Result<Vec<String>, ProviderError>;

    /// The fields of the app that differ from `desired` (what
    /// [`AppHost::update_app`] would change, env vars included, without
    /// changing anything), each with both values; secret values never.
    async fn app_drift(
        &self,
        app: &RemoteApp,
        desired: &AppDesired,
        previous: Option<&AppDesired>,
    ) -> Result<Vec<crate::plan::Drift>, ProviderError>;

    /// Makes the app's environment exactly `env`: list, bulk upsert what
    /// differs, delete extras. Identity is key plus preview flag.
    async fn reconcile_env(
        &self,
        app: &RemoteApp,
        env: &[EnvVarDesired],
    ) -> Result<EnvDiff, ProviderError>;

    /// Queues a deployment (POST). When Coolify answers that one is already
    /// queued for this commit, returns that one instead.
    async fn deploy(&self, app: &RemoteApp, force: bool) -> Result<DeploymentRef, ProviderError>;

    /// The newest queued or running deployment of an app: the lookup after a
    /// deploy whose outcome is unknown.
    async fn active_deployment(
        &self,
        app: &RemoteApp,
    ) -> Result<Option<DeploymentRef>, ProviderError>;

    /// The id of the app's newest deployment, whatever its status (`None`:
    /// none, or a service, which keeps no deployment rows): taken before a
    /// deploy, so that a resumed run can tell its own deployment from older
    /// ones.
    async fn latest_deployment(&self, app: &RemoteApp) -> Result<Option<String>, ProviderError>;

    /// The newest deployment of the app that is newer than `after` (any
    /// deployment when `after` is `None`), whatever its status: the one a
    /// deploy requested after [`AppHost::latest_deployment`] said `after`
    /// queued, if it did.
    async fn deployment_after(
        &self,
        app: &RemoteApp,
        after: Option<&str>,
    ) -> Result<Option<DeploymentRef>, ProviderError>;

    /// One status read.
    async fn deployment_status(
        &self,
        deployment: &DeploymentRef,
    ) -> Result<DeploymentStatus, ProviderError>;

    /// Polls until the deployment is finished, failed or cancelled (returned
    /// as `Ok`), or the timeout runs out ([`ErrorKind::DeadlineExceeded`],
    /// with the deployment URL in the message).
    async fn wait_deployment(
        &self,
        deployment: &DeploymentRef,
        wait: WaitOptions,
        progress: Progress<'_>,
    ) -> Result<DeploymentStatus, ProviderError>;

    /// The last `lines` lines the app's running container printed. An
    /// app with no running container is an error saying so.
    async fn runtime_logs(
        &self,
        kind: AppKind,
        uuid: &str,
        lines: u32,
    ) -> Result<String, ProviderError>;

    /// The build log of one deployment (see [`BuildLog`]).
    async fn build_log(&self, deployment_uuid: &str) -> Result<BuildLog, ProviderError>;

    /// Deletes an app (asynchronous in Coolify) and, with `wait`, polls until
    /// it is gone. A missing app is `already_gone`.
    async fn delete_app(
        &self,
        kind: AppKind,
        uuid: &str,
        wait: Option<WaitOptions>,
    ) -> Result<DeleteOutcome, ProviderError>;

    /// Every app and service carrying Fabrik's mark, for `gc`.
    async fn list_owned(&self) -> Result<Vec<OwnedRemote>, ProviderError>;
}

/// Manages DNS records (Cloudflare).
#[async_trait]
pub trait Dns: Send + Sync {
    /// The zone named exactly `name`.
    async fn find_zone(&self, name: &str) -> Result<Zone, ProviderError>;

    /// The zone that holds `fqdn`: the longest suffix that is a zone.
    async fn zone_for(&self, fqdn: &str) -> Result<Zone, ProviderError>;

    /// The zone's status (pending until its nameservers are switched);
    /// `None` when the service does not say.
    async fn zone_status(&self, zone: &Zone) -> Result<Option<ZoneStatus>, ProviderError> {
        let _ = zone;
        Ok(None)
    }

    /// Every record at `name`, of any type (all pages), each with its mark.
    async fn records_at(&self, zone: &Zone, name: &str)
    -> Result<Vec<RemoteRecord>, ProviderError>;

    /// Every record of `kind` named `name` (all pages), each with its mark.
    async fn list_records(
        &self,
        zone: &Zone,
        kind: RecordType,
        name: &str,
    ) -> Result<Vec<RemoteRecord>, ProviderError>;

    /// Creates a record carrying `mark` in its comment. When Cloudflare says
    /// an identical record exists (81057/81058), returns it when it carries
    /// exactly `mark` (this very run made it: a lost answer), and fails
    /// naming its owner otherwise.
    async fn create_record(
        &self,
        zone: &Zone,
        desired: &RecordDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteRecord, ProviderError>;

    /// PATCHes the fields of `remote` that differ from `desired`. Refuses a
    /// record without `mark`'s deployment unless `desired.adopt` is set (an
    /// adopted record keeps its own comment).
    async fn update_record(
        &self,
        zone: &Zone,
        remote: &RemoteRecord,
        desired: &RecordDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteRecord, ProviderError>;

    /// Deletes a record; a missing one is `already_gone`.
    async fn delete_record(&self, zone: &Zone, id: &str) -> Result<DeleteOutcome, ProviderError>;

    /// Every record of the zone carrying Fabrik's mark.
    async fn list_owned(&self, zone: &Zone) -> Result<Vec<RemoteRecord>, ProviderError>;
}

/// Manages uptime monitors (Uptime Kuma).
#[async_trait]
pub trait Monitors: Send + Sync {
    /// The monitors carrying `deployment`'s mark.
    async fn find_owned(
        &self,
        deployment: &DeploymentId,
    ) -> Result<Vec<RemoteMonitor>, ProviderError>;

    /// Creates a monitor carrying the mark in its description (no tag: a
    /// tag becomes a Prometheus label, see `docs/rollback.md`). Never
    /// repeated once sent.
    async fn create(
        &self,
        desired: &MonitorDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteMonitor, ProviderError>;

    /// Reads the full monitor, merges `desired` and saves the full object;
    /// resumes it when it is paused.
    async fn update(&self, id: MonitorId, desired: &MonitorDesired) -> Result<(), ProviderError>;

    /// Deletes a monitor (a missing one is fine).
    async fn delete(&self, id: MonitorId) -> Result<(), ProviderError>;

    /// Pauses a monitor.
    async fn pause(&self, id: MonitorId) -> Result<(), ProviderError>;

    /// Resumes a paused monitor.
    async fn resume(&self, id: MonitorId) -> Result<(), ProviderError>;

    /// Every monitor carrying Fabrik's mark.
    async fn list_owned(&self) -> Result<Vec<RemoteMonitor>, ProviderError>;

    /// The ids of the notifications the server has (Uptime Kuma sends them
    /// at login); `None` when the server did not say.
    async fn notification_ids(&self) -> Result<Option<Vec<u64>>, ProviderError>;
}

/// Tells which manifest an image reference names (container registries).
#[async_trait]
pub trait Images: Send + Sync {
    /// The digest of the manifest `image` names now. A reference that
    /// carries its digest (`name@sha256:…`) is answered without a call;
    /// one that cannot be read anonymously (a private image) is an error
    /// naming it.
    async fn digest(
        &self,
        image: &crate::id::ImageRef,
    ) -> Result<crate::id::ImageDigest, ProviderError>;
}

/// Sends notifications (webhooks). A failed notification is the engine's
/// to journal; it never fails a deployment.
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Sends one notification, retrying transient failures.
    async fn send(&self, notification: &Notification) -> Result<(), ProviderError>;
}
