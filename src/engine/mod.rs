//! The engine: the effectful shell that runs commands against providers and
//! writes the journal.
//!
//! - [`apply`]: `fabrik apply` (and the planning half of `fabrik plan`).
//! - [`steps`]: one resource change, bracketed by intent and outcome events.
//! - [`undo`]: executing rollback plans (after a failed apply, or for
//!   `fabrik rollback`), and `fabrik destroy`.
//! - [`connect`]: building providers from credentials or the sandbox.
//! - [`desired`]: spec → provider requests and their journal form.
//! - [`recorder`]: how a run writes the journal.

pub mod apply;
pub mod connect;
pub mod desired;
pub mod host;
pub mod lifecycle;
pub mod recorder;
pub mod steps;
pub mod undo;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::event::{Event, RecordedEvent, RunOutcome};
use crate::id::{DeploymentId, RunId};
use crate::provider::{AppHost, Dns, Monitors, Notifier, ProviderError};
use crate::verify::Verifier;
use recorder::{RecordError, Recorder};

/// A run's recorder, shared by the steps that run concurrently. The lock is
/// only ever held for one synchronous append, never across an `.await`.
pub type Journal = Arc<Mutex<Recorder>>;

/// Appends an event through a shared recorder.
pub fn record(j: &Journal, event: Event) -> Result<RecordedEvent, EngineError> {
    let mut r = j.lock().unwrap_or_else(|p| p.into_inner());
    Ok(r.record(event)?)
}

/// Passes a transient progress note to the observer.
pub fn note(j: &Journal, text: &str) {
    let mut r = j.lock().unwrap_or_else(|p| p.into_inner());
    r.note(text);
}

/// Scrubs known secrets from a text (error messages from providers).
pub fn scrub(j: &Journal, text: &str) -> String {
    let r = j.lock().unwrap_or_else(|p| p.into_inner());
    r.scrubber().scrub(text)
}

/// A notification channel.
pub struct NotifierEntry {
    /// Its name in the spec.
    pub name: String,
    /// The events it wants (`succeeded`, `failed`, ...).
    pub events: Vec<String>,
    /// The client.
    pub notifier: Arc<dyn Notifier>,
}

impl std::fmt::Debug for NotifierEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotifierEntry")
            .field("name", &self.name)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// The remote services a run talks to.
#[derive(Clone)]
pub struct Providers {
    /// Coolify.
    pub app: Arc<dyn AppHost>,
    /// Cloudflare, when the spec has DNS records.
    pub dns: Option<Arc<dyn Dns>>,
    /// Uptime Kuma, when the spec has monitors.
    pub monitors: Option<Arc<dyn Monitors>>,
    /// Webhooks.
    pub notifiers: Arc<Vec<NotifierEntry>>,
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

/// How often to poll and retry (shorter against the sandbox).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Between deployment status reads.
    pub poll: Duration,
    /// Between verification attempts.
    pub verify_interval: Duration,
    /// Parallel DNS changes at most.
    pub dns_concurrency: usize,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(3),
            verify_interval: Duration::from_secs(2),
            dns_concurrency: 16,
        }
    }
}

/// A connection to the remote world for one run.
pub struct Session {
    /// The providers.
    pub providers: Providers,
    /// The verifier.
    pub verifier: Verifier,
    /// Polling and retry pace.
    pub timing: Timing,
    /// The retry limit and backoff, also for creates and deploys whose
    /// outcome was unknown and that were not found (the HTTP layer does
    /// not repeat those itself).
    pub retry: crate::provider::RetryPolicy,
    /// Credential values, to scrub from everything kept or shown.
    pub scrubber: crate::secret::Scrubber,
    /// Keeps an in-process sandbox alive for the session.
    pub sandbox: Option<crate::sandbox::SandboxHandle>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("providers", &self.providers)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

/// Set by the first Ctrl-C; checked at every step boundary.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets it.
    pub fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How a command ended, for the CLI.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The deployment.
    pub deployment: DeploymentId,
    /// The run, when one was journaled.
    pub run: Option<RunId>,
    /// The outcome.
    pub outcome: RunOutcome,
    /// The process exit code.
    pub exit_code: i32,
    /// A one-line summary.
    pub message: String,
    /// The URLs the deployment serves.
    pub urls: Vec<String>,
    /// `resource: action` for every change made.
    pub changes: Vec<String>,
    /// Commands that finish what is left (resume, rollback).
    pub next: Vec<String>,
}

/// Why a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The journal.
    #[error("journal")]
    Record(#[from] RecordError),
    /// A provider failed.
    #[error("{resource}")]
    Provider {
        /// What was being done.
        resource: String,
        /// Why.
        #[source]
        source: Box<ProviderError>,
    },
    /// Configuration is missing or wrong (credentials, URLs).
    #[error("{message}")]
    Config {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// The lock is held.
    #[error("lock")]
    Locked(#[from] crate::lock::LockError),
    /// The deployment has an unfinished run.
    #[error("deployment {deployment} has an unfinished run {run} ({state})")]
    OpenRun {
        /// The deployment.
        deployment: DeploymentId,
        /// The run.
        run: RunId,
        /// Its state.
        state: crate::projection::RunState,
    },
    /// The spec cannot be mapped to provider requests.
    #[error("spec")]
    Desired(#[from] desired::DesiredError),
    /// The sandbox could not start.
    #[error("sandbox")]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// Verification failed.
    #[error("{0}")]
    Verification(String),
    /// The deployment did not finish.
    #[error("the deployment ended {status}{}", url.as_deref().map(|u| format!(" (see {u})")).unwrap_or_default())]
    DeployFailed {
        /// How it ended.
        status: String,
        /// Where to look at it in Coolify.
        url: Option<String>,
    },
    /// The run was interrupted.
    #[error("interrupted")]
    Interrupted,
}

impl EngineError {
    /// Wraps a provider error with what was being done.
    pub fn provider(resource: impl Into<String>, e: ProviderError) -> Self {
        Self::Provider {
            resource: resource.into(),
            source: Box::new(e),
        }
    }

    /// The hint to show, if any.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Provider { source, .. } => source.hint.clone(),
            Self::Config { hint, .. } => hint.clone(),
            Self::OpenRun { run, .. } => Some(format!(
                "finish it with `fabrik resume {run}` (or undo it with `fabrik rollback {run}`)"
            )),
            _ => None,
        }
    }
}
