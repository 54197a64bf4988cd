//! The run driver: how every command opens a run and how it ends.
//!
//! [`Run::start`] takes the deployment's lock, refuses while another run is
//! unfinished, and journals `run_started` and `lock_acquired`;
//! [`Run::resume`] takes over an unfinished run (`run_resumed`,
//! `lock_acquired`). [`Run::finish`] ends it through one table
//! ([`ending`]): the outcome gives the final state and the exit code; the
//! notifications of that outcome are sent, `run_finished` (or
//! `run_interrupted`) and `lock_released` are journaled, the lock is
//! released, and a [`Report`] is returned.

mod end;
mod owner;

use std::sync::{Arc, Mutex};

use super::recorder::{Clock, Recorder};
use super::{EngineError, Interrupt, Journal, Report, Request, record, with};
use crate::event::{
    Event, LockAcquired, LockHolder, LockReleased, RunCommand, RunInterrupted, RunOptions,
    RunOutcome, RunResumed, RunStarted, RunState,
};
use crate::exit;
use crate::id::{DeploymentId, Digest, RunId};
use crate::projection::RunView;
use crate::provider::NotifierEntry;
use crate::store::lock::HeldLock;

use super::notify::Dispatch;
use end::notifications;
pub use end::{End, Stop, detailed, ending};
pub use owner::{holder, refuse_open_run, take_lock, who};

/// What a new run journals about itself in `run_started` (who runs it is
/// filled in by [`Run::start`]).
#[derive(Debug, Clone)]
pub struct Started {
    /// The command.
    pub command: RunCommand,
    /// The verb its lock record shows (`apply`, `destroy`, ...).
    pub verb: &'static str,
    /// The spec, as an absolute path.
    pub spec_path: Option<String>,
    /// The spec's desired-state hash.
    pub spec_hash: Option<Digest>,
    /// Its options.
    pub options: RunOptions,
}

impl Started {
    fn event(self, me: &LockHolder) -> RunStarted {
        RunStarted {
            command: self.command,
            spec_path: self.spec_path,
            spec_hash: self.spec_hash,
            user: me.user.clone(),
            host: me.host.clone(),
            pid: me.pid,
            fabrik_version: env!("CARGO_PKG_VERSION").to_owned(),
            options: self.options,
        }
    }
}

/// A run in progress, holding its deployment's lock.
pub struct Run {
    /// Its journal.
    pub journal: Journal,
    /// Its id.
    pub id: RunId,
    /// Its deployment.
    pub deployment: DeploymentId,
    guard: Option<HeldLock>,
    asked: bool,
    dispatch: Option<Dispatch>,
    urls: Vec<String>,
    clock: Clock,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("id", &self.id)
            .field("deployment", &self.deployment)
            .finish_non_exhaustive()
    }
}

/// A new run's lock, taken before it is journaled (a command may decide
/// how to run it under the lock: a no-change apply is one atomic append).
pub struct Locked {
    id: RunId,
    me: LockHolder,
    guard: HeldLock,
    deployment: DeploymentId,
}

impl std::fmt::Debug for Locked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Locked")
            .field("id", &self.id)
            .field("deployment", &self.deployment)
            .finish_non_exhaustive()
    }
}

impl Locked {
    /// Takes the deployment's lock for a new run of `verb`, and refuses
    /// while another run of it is unfinished.
    pub fn take(req: &Request, deployment: &DeploymentId, verb: &str) -> Result<Self, EngineError> {
        let id = RunId::generate();
        let me = holder(&id, verb, &req.clock);
        let guard = take_lock(req, deployment, me.clone())?;
        refuse_open_run(req.store.as_ref(), deployment)?;
        Ok(Self {
            id,
            me,
            guard,
            deployment: deployment.clone(),
        })
    }

    /// Journals `run_started` and `lock_acquired`.
    pub fn start(self, req: &mut Request, started: Started) -> Result<Run, EngineError> {
        let asked = started.command == RunCommand::Rollback;
        let recorder = Recorder::start(
            req.store.clone(),
            self.deployment.clone(),
            self.id.clone(),
            started.event(&self.me),
            req.clock.clone(),
            req.take_observer(),
        )?;
        let run = Run::open(req, recorder, self.id, &self.deployment, self.guard, asked);
        record(
            &run.journal,
            Event::LockAcquired(LockAcquired { holder: self.me }),
        )?;
        Ok(run)
    }

    /// A whole run decided up front (a no-change apply): `run_started` and
    /// `then` in one atomic append, without lock events.
    pub fn complete_at_once(
        self,
        req: &mut Request,
        started: Started,
        then: Vec<Event>,
    ) -> Result<(RunId, Option<super::JournalHead>), EngineError> {
        let recorder = Recorder::start_with(
            req.store.clone(),
            self.deployment.clone(),
            self.id.clone(),
            started.event(&self.me),
            then,
            req.clock.clone(),
            req.take_observer(),
        )?;
        self.guard.release();
        Ok((self.id, recorder.head()))
    }
}

impl Run {
    /// Opens a new run: the lock, then `run_started` and `lock_acquired`.
    pub fn start(
        req: &mut Request,
        deployment: &DeploymentId,
        started: Started,
    ) -> Result<Self, EngineError> {
        Locked::take(req, deployment, started.verb)?.start(req, started)
    }

    /// Takes over an unfinished run: the lock, then `run_resumed` and
    /// `lock_acquired`. `asked` when a person asked for its rollback.
    pub fn resume(
        req: &mut Request,
        run: RunView,
        verb: &str,
        asked: bool,
    ) -> Result<Self, EngineError> {
        let me = holder(&run.run, verb, &req.clock);
        let deployment = run.deployment.clone();
        let guard = take_lock(req, &deployment, me.clone())?;
        let asked = asked || run.command == RunCommand::Rollback;
        let id = run.run.clone();
        let recorder = Recorder::resume(
            req.store.clone(),
            run,
            req.clock.clone(),
            req.take_observer(),
        )?;
        let run = Self::open(req, recorder, id, &deployment, guard, asked);
        record(
            &run.journal,
            Event::RunResumed(RunResumed {
                pid: me.pid,
                host: me.host.clone(),
                user: me.user.clone(),
            }),
        )?;
        record(
            &run.journal,
            Event::LockAcquired(LockAcquired { holder: me }),
        )?;
        Ok(run)
    }

    fn open(
        req: &Request,
        recorder: Recorder,
        id: RunId,
        deployment: &DeploymentId,
        guard: HeldLock,
        asked: bool,
    ) -> Self {
        Self {
            journal: Arc::new(Mutex::new(recorder)),
            id,
            deployment: deployment.clone(),
            guard: Some(guard),
            asked,
            dispatch: None,
            urls: Vec::new(),
            clock: req.clock.clone(),
        }
    }

    /// The run's state.
    pub fn state(&self) -> RunState {
        with(&self.journal, |r| r.state())
    }

    /// Moves the run to `to` unless it is already there (a resumed run
    /// continues from the state it was interrupted in).
    pub fn advance(&self, to: RunState) -> Result<(), EngineError> {
        advance(&self.journal, to)
    }

    /// The notification channels its ending is sent to (once connected).
    pub fn notify_to(&mut self, notifiers: Arc<Vec<NotifierEntry>>) {
        self.dispatch = Some(Dispatch::new(
            notifiers,
            self.deployment.clone(),
            self.id.clone(),
            self.clock.clone(),
        ));
    }

    /// The URLs the deployment serves, for the report.
    pub fn serving(&mut self, urls: Vec<String>) {
        self.urls = urls;
    }

    /// Starts sending a notification about the run to the channels that
    /// want it, beside the run: returns at once.
    pub fn notify(&self, event: &str, summary: &str) {
        if let Some(d) = &self.dispatch {
            d.send(
                &[event],
                summary,
                &super::notify::head_details(&self.journal),
            );
        }
    }

    /// Sends the notifications of an ending and waits for every delivery
    /// still on its way (each bounded by its channel's timeout), then
    /// journals them.
    async fn notify_end(&self, stop: Stop, summary: &str) {
        if let Some(d) = &self.dispatch {
            d.send(
                notifications(stop, self.asked),
                summary,
                &super::notify::head_details(&self.journal),
            );
            d.settle(&self.journal).await;
        }
    }

    /// Ends the run (see the module documentation).
    pub async fn finish(mut self, end: End) -> Result<Report, EngineError> {
        let (outcome, code) = match end.stop {
            Stop::Interrupted => {
                self.notify_end(end.stop, &end.message).await;
                record(
                    &self.journal,
                    Event::RunInterrupted(RunInterrupted {
                        reason: "interrupted by Ctrl-C".to_owned(),
                        resume_command: format!("fabrik resume {}", self.id),
                    }),
                )?;
                (RunOutcome::NeedsAttention, exit::NEEDS_ATTENTION)
            }
            Stop::Ended(outcome) => {
                let (to, code) = ending(outcome, self.asked);
                if self.state() != to {
                    transition(&self.journal, to, end.reason.clone())?;
                }
                let summary = end
                    .notice
                    .as_deref()
                    .or(end.journaled.as_deref())
                    .unwrap_or(&end.message);
                self.notify_end(end.stop, summary).await;
                let journaled = end.journaled.clone().unwrap_or_else(|| end.message.clone());
                with(&self.journal, |r| r.finish(outcome, code, Some(journaled)))?;
                (outcome, code)
            }
        };
        let mut next = end.next;
        if let Err(e) = self.release() {
            // How the run ended is on the record already: a journal whose
            // disk fills up now misses only the release of the lock, which
            // is let go all the same (the next run's `lock_acquired` takes
            // its place). There is nothing to resume.
            if !e.is_disk_full() {
                return Err(e);
            }
            if let Some(g) = self.guard.take() {
                g.release();
            }
            next.push(
                "the disk holding the journal is full: free space on it before the next run"
                    .to_owned(),
            );
        }
        let journal_head = with(&self.journal, |r| r.head());
        Ok(Report {
            deployment: self.deployment.clone(),
            run: Some(self.id.clone()),
            outcome,
            exit_code: code,
            message: end.message,
            urls: std::mem::take(&mut self.urls),
            changes: end.changes,
            next,
            journal_head,
        })
    }

    /// Ends the run as failed before it changed anything and returns the
    /// error that stopped it.
    pub async fn fail_unchanged(mut self, err: EngineError, reason: &str) -> EngineError {
        self.notify_end(Stop::Ended(RunOutcome::Failed), reason)
            .await;
        let (to, code) = ending(RunOutcome::Failed, false);
        let recorded = transition(&self.journal, to, Some(reason.to_owned())).and_then(|()| {
            with(&self.journal, |r| {
                r.finish(RunOutcome::Failed, code, Some(reason.to_owned()))
            })?;
            self.release()
        });
        match recorded {
            Ok(()) => err,
            Err(e) => e,
        }
    }

    /// Leaves the run open for another `fabrik resume` (nothing was
    /// changed by this attempt): journals why, and releases the lock.
    pub fn leave_open(mut self, reason: String) -> Result<(), EngineError> {
        record(
            &self.journal,
            Event::RunInterrupted(RunInterrupted {
                reason,
                resume_command: format!("fabrik resume {}", self.id),
            }),
        )?;
        self.release()
    }

    /// Journals `lock_released` and releases the lock.
    fn release(&mut self) -> Result<(), EngineError> {
        record(
            &self.journal,
            Event::LockReleased(LockReleased {
                run: self.id.clone(),
            }),
        )?;
        if let Some(g) = self.guard.take() {
            g.release();
        }
        Ok(())
    }

    /// A step context for this run over `connected`.
    pub fn ctx<'a>(
        &'a self,
        connected: &'a super::Connected,
        interrupt: &'a Interrupt,
    ) -> super::Ctx<'a> {
        connected.ctx(&self.journal, &self.deployment, &self.id, interrupt)
    }
}

/// Moves the run to `to` unless it is already there.
pub fn advance(journal: &Journal, to: RunState) -> Result<(), EngineError> {
    with(journal, |r| {
        if r.state() != to {
            r.transition(to, None)?;
        }
        Ok::<_, super::recorder::RecordError>(())
    })?;
    Ok(())
}

/// Moves the run to `to`, with a reason.
pub fn transition(
    journal: &Journal,
    to: RunState,
    reason: Option<String>,
) -> Result<(), EngineError> {
    with(journal, |r| r.transition(to, reason))?;
    Ok(())
}
