//! The engine: the effectful shell that runs commands against providers and
//! writes the journal.
//!
//! It is organised along its two axes:
//!
//! - **the run**: [`run`] opens a run (lock, recorder, `run_started` or
//!   `run_resumed`, `lock_acquired`) and ends it (one table from outcome to
//!   final state, exit code and next command; notifications; the lock
//!   released), once for every command;
//! - **the resource kind**: [`resource`] has one module per kind
//!   (application, DNS record, monitor), each holding everything about
//!   that kind (create, update, delete, find after a crash, refresh,
//!   restore, its journaled state), behind one trait and a registry.
//!
//! Around them: [`bracket`] (intent → effect → outcome, once), [`command`]
//! (apply, verify, resume, rollback, destroy, gc), [`preflight`] (the
//! providers handed in, checked before any change), [`desired`] (spec →
//! what each kind wants) and [`recorder`] (how a run appends).
//!
//! The engine never builds a vendor client: the caller passes a
//! [`crate::provider::Connect`] in ([`Request::connect`]).

pub mod bracket;
pub mod command;
pub mod desired;
mod error;
pub mod notify;
pub mod preflight;
pub mod recorder;
pub mod resource;
pub mod run;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

pub use error::{EngineError, LogTail, LookupError, StateError};

use crate::event::{Event, RecordedEvent, RunOutcome};
use crate::id::{DeploymentId, JournalTag, RunId};
use crate::ownership::OwnershipMark;
use crate::provider::{Connect, Connection, ResolvedTarget, Zone};
use recorder::{Clock, Observer, Recorder};

/// A run's recorder, shared by the steps that run concurrently. The lock is
/// only ever held for one synchronous append, never across an `.await`.
pub type Journal = Arc<Mutex<Recorder>>;

/// Runs `f` on the recorder behind a shared journal.
pub fn with<T>(j: &Journal, f: impl FnOnce(&mut Recorder) -> T) -> T {
    let mut r = j.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut r)
}

/// Appends an event through a shared recorder.
pub fn record(j: &Journal, event: Event) -> Result<RecordedEvent, EngineError> {
    Ok(with(j, |r| r.record(event))?)
}

/// Passes a transient progress note to the observer.
pub fn note(j: &Journal, text: &str) {
    with(j, |r| r.note(text));
}

/// Scrubs known secrets from a text (error messages from providers).
pub fn scrub(j: &Journal, text: &str) -> String {
    with(j, |r| r.scrubber().scrub(text))
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

/// What every command is handed: the journal, the providers (as a
/// [`Connect`]), the process environment, and the run's clock, interrupt
/// flag and observer.
pub struct Request {
    /// The journal.
    pub store: Arc<dyn crate::store::EventStore>,
    /// Where it lives (and so where its locks are).
    pub state: crate::store::StateLocation,
    /// The providers.
    pub connect: Arc<dyn Connect>,
    /// The process environment (credentials and secrets come from it, then
    /// from the spec's `.env`).
    pub env_vars: Vec<(String, String)>,
    /// The clock.
    pub clock: Clock,
    /// Ctrl-C.
    pub interrupt: Interrupt,
    /// Where progress goes (taken by the first run the command opens).
    pub observer: Box<dyn Observer>,
    /// `--lock-timeout`.
    pub lock_wait: Option<Duration>,
    /// `--env`: the environment of the spec files the command loads.
    pub environment: Option<String>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("state", &self.state)
            .field("lock_wait", &self.lock_wait)
            .finish_non_exhaustive()
    }
}

impl Request {
    /// The observer, leaving a quiet one behind.
    pub fn take_observer(&mut self) -> Box<dyn Observer> {
        std::mem::replace(&mut self.observer, Box::new(recorder::Quiet))
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
    /// The journal's last event when the run ended, for
    /// `fabrik replay --verify --expect-head` (no run, no head).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_head: Option<JournalHead>,
}

/// An event of the journal and its hash: what a run tells those who hear
/// from it (its summary, its webhooks), so that `fabrik replay --verify
/// --expect-head HASH` can later prove that nothing up to it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JournalHead {
    /// The event's number.
    pub seq: crate::id::Seq,
    /// Its hash.
    pub hash: crate::id::Digest,
}

/// A connection whose preflight passed: the providers with the resolved
/// Coolify target and DNS zone.
pub struct Connected {
    /// The providers.
    pub remote: Connection,
    /// The Coolify project, environment and server.
    pub target: Option<ResolvedTarget>,
    /// The DNS zone.
    pub zone: Option<Zone>,
    /// Where provider retries are journaled.
    pub retries: Arc<preflight::RetryLog>,
    /// The journal's tag, for the marks of what the run creates.
    pub journal: Option<JournalTag>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("target", &self.target)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

impl Connected {
    /// Hands a connection made before its run started to the run: retries
    /// are journaled in it, credential values scrubbed from it.
    pub fn hand_to(&self, journal: &Journal) {
        self.retries.to(journal);
        with(journal, |r| r.scrub(&self.remote.scrubber));
    }

    /// A step context over this connection.
    pub fn ctx<'a>(
        &'a self,
        journal: &'a Journal,
        deployment: &'a DeploymentId,
        run: &'a RunId,
        interrupt: &'a Interrupt,
    ) -> Ctx<'a> {
        Ctx {
            journal,
            remote: &self.remote,
            deployment,
            run,
            target: self.target.as_ref(),
            zone: self.zone.as_ref(),
            journal_tag: self.journal.as_ref(),
            interrupt,
        }
    }
}

/// What every step needs.
pub struct Ctx<'a> {
    /// The run's journal.
    pub journal: &'a Journal,
    /// The providers.
    pub remote: &'a Connection,
    /// The deployment.
    pub deployment: &'a DeploymentId,
    /// The run.
    pub run: &'a RunId,
    /// The resolved Coolify target (after preflight).
    pub target: Option<&'a ResolvedTarget>,
    /// The DNS zone (after preflight).
    pub zone: Option<&'a Zone>,
    /// The journal's tag.
    pub journal_tag: Option<&'a JournalTag>,
    /// Ctrl-C.
    pub interrupt: &'a Interrupt,
}

impl Ctx<'_> {
    /// Stops at a step boundary after Ctrl-C.
    pub fn check_interrupt(&self) -> Result<(), EngineError> {
        if self.interrupt.is_set() {
            Err(EngineError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// The deployment's view, as of the last append.
    pub fn view(&self) -> crate::projection::DeploymentView {
        with(self.journal, |r| r.view().clone())
    }

    /// The mark of what this run creates: its deployment, its run and its
    /// journal.
    pub fn mark(&self) -> OwnershipMark {
        let m = OwnershipMark::new(self.deployment.clone(), self.run.clone());
        match self.journal_tag {
            Some(j) => m.in_journal(j.clone()),
            None => m,
        }
    }

    /// Whether a mark found on a remote resource is this deployment's in
    /// this journal (any run).
    pub fn is_ours(&self, mark: Option<&OwnershipMark>) -> bool {
        mark.is_some_and(|m| m.is_of(self.deployment, self.journal_tag))
    }
}
