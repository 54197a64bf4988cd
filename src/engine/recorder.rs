//! The recorder: how a run writes the journal.
//!
//! It appends one event at a time at the stream version it last saw (so a
//! concurrent writer is detected, never merged), checks state transitions
//! with [`crate::decide`] before appending them, scrubs every string of
//! every payload of known secret values, folds what it appended into its own
//! copy of the views, and reports each durable event to an observer (live
//! progress, `--output json`) and to the crash-injection hook.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::JournalHead;
use crate::decide::{self, DecisionError};
use crate::event::{Event, NewEvent, RecordedEvent, RunOutcome, RunStarted};
use crate::id::{DeploymentId, RunId, StreamVersion};
use crate::projection::{DeploymentView, RunState, RunView, apply_to};
use crate::secret::Scrubber;
use crate::store::{EventStore, StoreError};

/// The source of time for events (the core never reads a clock).
pub type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// The wall clock.
pub fn wall_clock() -> Clock {
    Arc::new(jiff::Timestamp::now)
}

/// Receives every event once it is durable.
pub trait Observer: Send {
    /// Called after the append returned.
    fn event(&mut self, event: &RecordedEvent, run: &RunView);

    /// A transient note on what is being waited for ("deployment
    /// in_progress, 41 s"); not journaled.
    fn note(&mut self, _text: &str) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&mut self, _: &RecordedEvent, _: &RunView) {}
}

/// Errors of recording.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The store failed (including a conflict with another writer).
    #[error("cannot write the journal")]
    Store(#[from] StoreError),
    /// A decision refused the event.
    #[error("refused by the run state machine")]
    Decision(#[from] DecisionError),
    /// The storage under the journal failed while a run was open: the run
    /// stops where its journal ends, for `fabrik resume` to finish once the
    /// journal can be written again.
    #[error("run {run} stopped after its last journaled step")]
    Cut {
        /// The run.
        run: RunId,
        /// Why.
        #[source]
        source: StoreError,
    },
}

impl RecordError {
    /// The run's journal could not be written because its disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Store(e) | Self::Cut { source: e, .. } => e.is_disk_full(),
            Self::Decision(_) => false,
        }
    }
}

/// Writes one run's events.
pub struct Recorder {
    store: Arc<dyn EventStore>,
    deployment: DeploymentId,
    run: RunId,
    version: StreamVersion,
    view: DeploymentView,
    runs: BTreeMap<RunId, RunView>,
    clock: Clock,
    scrubber: Scrubber,
    observer: Box<dyn Observer>,
    /// The last event this recorder appended.
    head: Option<JournalHead>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("deployment", &self.deployment)
            .field("run", &self.run)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts a new run: refuses while another run of the deployment is
    /// unfinished, then appends `run_started`.
    pub fn start(
        store: Arc<dyn EventStore>,
        deployment: DeploymentId,
        run: RunId,
        started: RunStarted,
        clock: Clock,
        observer: Box<dyn Observer>,
    ) -> Result<Self, RecordError> {
        let view = store
            .deployment(&deployment)?
            .unwrap_or_else(|| DeploymentView::new(deployment.clone()));
        let latest = match &view.latest_run {
            Some(r) => store.run(r)?,
            None => None,
        };
        decide::may_start(latest.as_ref())?;
        let mut rec = Self {
            store,
            version: view.version,
            deployment,
            run,
            view,
            runs: BTreeMap::new(),
            clock,
            scrubber: Scrubber::new(),
            observer,
            head: None,
        };
        rec.record(Event::RunStarted(started))?;
        Ok(rec)
    }

    /// Starts a run and appends `then` with it, all in one atomic append
    /// (one fsync): for runs that decide everything up front, such as a
    /// no-change apply. Transitions and the finish in `then` are checked
    /// against the state machine before anything is written.
    pub fn start_with(
        store: Arc<dyn EventStore>,
        deployment: DeploymentId,
        run: RunId,
        started: RunStarted,
        then: Vec<Event>,
        clock: Clock,
        observer: Box<dyn Observer>,
    ) -> Result<Self, RecordError> {
        let view = store
            .deployment(&deployment)?
            .unwrap_or_else(|| DeploymentView::new(deployment.clone()));
        let latest = match &view.latest_run {
            Some(r) => store.run(r)?,
            None => None,
        };
        decide::may_start(latest.as_ref())?;
        let mut rec = Self {
            store,
            version: view.version,
            deployment,
            run,
            view,
            runs: BTreeMap::new(),
            clock,
            scrubber: Scrubber::new(),
            observer,
            head: None,
        };
        let mut events = vec![Event::RunStarted(started)];
        events.extend(then);
        rec.record_all(events)?;
        Ok(rec)
    }

    /// Appends several events of this run atomically, after checking every
    /// transition and finish among them against the state machine.
    pub fn record_all(&mut self, events: Vec<Event>) -> Result<Vec<RecordedEvent>, RecordError> {
        let at = (self.clock)();
        let news: Vec<NewEvent> = events
            .into_iter()
            .map(|event| NewEvent {
                run: Some(self.run.clone()),
                at,
                event: scrub_event(event, &self.scrubber),
            })
            .collect();
        // Check the decisions on a scratch fold of what would be appended.
        let mut view = self.view.clone();
        let mut runs = self.runs.clone();
        let preview = crate::store::encode(
            &self.deployment,
            self.version,
            crate::store::Tail::EMPTY,
            &news,
        )
        .1;
        for e in &preview {
            if let Some(run) = runs.get(&self.run) {
                match &e.event {
                    Event::RunStateChanged(c) => {
                        decide::transition(run, c.to, c.reason.clone())?;
                    }
                    Event::RunFinished(f) => {
                        decide::finish(run, f.outcome, f.exit_code, f.message.clone())?;
                    }
                    _ => {}
                }
            }
            apply_to(&mut view, &mut runs, e);
        }
        let recorded = tokio_safe(|| self.store.append(&self.deployment, self.version, &news))
            .map_err(|e| self.failed(e))?;
        for rec in &recorded {
            self.head = Some(JournalHead {
                seq: rec.seq,
                hash: rec.hash,
            });
            self.version = rec.stream_version;
            apply_to(&mut self.view, &mut self.runs, rec);
            if let Some(run) = self.runs.get(&self.run) {
                self.observer.event(rec, run);
            }
        }
        crate::failpoint::event_appended(recorded.len() as u64);
        Ok(recorded)
    }

    /// Continues an existing, unfinished run (`fabrik resume`).
    pub fn resume(
        store: Arc<dyn EventStore>,
        run: RunView,
        clock: Clock,
        observer: Box<dyn Observer>,
    ) -> Result<Self, RecordError> {
        let deployment = run.deployment.clone();
        let view = store
            .deployment(&deployment)?
            .unwrap_or_else(|| DeploymentView::new(deployment.clone()));
        let mut runs = BTreeMap::new();
        let id = run.run.clone();
        runs.insert(id.clone(), run);
        Ok(Self {
            store,
            version: view.version,
            deployment,
            run: id,
            view,
            runs,
            clock,
            scrubber: Scrubber::new(),
            observer,
            head: None,
        })
    }

    /// A recorder that belongs to no run and keeps nothing: for work done
    /// outside a run that still reads the deployment's view and reports
    /// progress (the refresh of `fabrik plan`). Nothing is ever appended
    /// to `view`'s journal through it.
    pub fn scratch(view: DeploymentView, clock: Clock, observer: Box<dyn Observer>) -> Self {
        Self {
            store: Arc::new(crate::store::memory::MemoryStore::new()),
            version: view.version,
            deployment: view.deployment.clone(),
            run: RunId::generate(),
            view,
            runs: BTreeMap::new(),
            clock,
            scrubber: Scrubber::new(),
            observer,
            head: None,
        }
    }

    /// Adds secret values to scrub from every later payload.
    pub fn scrub(&mut self, scrubber: &Scrubber) {
        self.scrubber.extend(scrubber);
    }

    /// The scrubber in use (for error texts built outside events).
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// The journal store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The deployment.
    pub fn deployment(&self) -> &DeploymentId {
        &self.deployment
    }

    /// The run.
    pub fn run_id(&self) -> &RunId {
        &self.run
    }

    /// The run's view, as of the last append.
    pub fn run(&self) -> Option<&RunView> {
        self.runs.get(&self.run)
    }

    /// The run's state.
    pub fn state(&self) -> RunState {
        self.run().map_or(RunState::Pending, |r| r.state)
    }

    /// The deployment's view, as of the last append.
    pub fn view(&self) -> &DeploymentView {
        &self.view
    }

    /// Passes a transient note to the observer.
    pub fn note(&mut self, text: &str) {
        let text = self.scrubber.scrub(text);
        self.observer.note(&text);
    }

    /// The last event this recorder appended (with a sealing store, the
    /// checkpoint after `run_finished` once the run is finished).
    pub fn head(&self) -> Option<JournalHead> {
        self.head
    }

    /// The current time, from the run's clock.
    pub fn now(&self) -> jiff::Timestamp {
        (self.clock)()
    }

    /// Why an append failed: a failure of the storage while this run is
    /// in the journal cuts the run there ([`RecordError::Cut`]).
    fn failed(&self, e: StoreError) -> RecordError {
        if e.is_storage() && self.runs.contains_key(&self.run) {
            RecordError::Cut {
                run: self.run.clone(),
                source: e,
            }
        } else {
            RecordError::Store(e)
        }
    }

    /// Appends one event of this run. Durable when it returns.
    pub fn record(&mut self, event: Event) -> Result<RecordedEvent, RecordError> {
        let event = scrub_event(event, &self.scrubber);
        let new = NewEvent {
            run: Some(self.run.clone()),
            at: (self.clock)(),
            event,
        };
        let mut recorded = tokio_safe(|| {
            self.store
                .append(&self.deployment, self.version, std::slice::from_ref(&new))
        })
        .map_err(|e| self.failed(e))?;
        let Some(rec) = recorded.pop() else {
            return Err(RecordError::Store(StoreError::Backend(
                "append returned no event".to_owned(),
            )));
        };
        self.version = rec.stream_version;
        self.head = Some(JournalHead {
            seq: rec.seq,
            hash: rec.hash,
        });
        apply_to(&mut self.view, &mut self.runs, &rec);
        if let Some(run) = self.runs.get(&self.run) {
            self.observer.event(&rec, run);
        }
        crate::failpoint::event_appended(1);
        Ok(rec)
    }

    /// Moves the run to `to`, if the state machine allows it.
    pub fn transition(
        &mut self,
        to: RunState,
        reason: Option<String>,
    ) -> Result<RecordedEvent, RecordError> {
        let event = match self.run() {
            Some(run) => decide::transition(run, to, reason)?,
            None => {
                return Err(RecordError::Store(StoreError::Backend(format!(
                    "run {} is not in the journal",
                    self.run
                ))));
            }
        };
        self.record(event)
    }

    /// Finishes the run. A store that seals appends the checkpoint of the
    /// journal's head with `run_finished`, in the same append: both are
    /// folded and reported, and [`EventStore::sealed_head`] then names the
    /// head (what the run's webhooks and summary can carry). Returns the
    /// `run_finished` event.
    pub fn finish(
        &mut self,
        outcome: RunOutcome,
        exit_code: i32,
        message: Option<String>,
    ) -> Result<RecordedEvent, RecordError> {
        let event = match self.run() {
            Some(run) => decide::finish(run, outcome, exit_code, message)?,
            None => {
                return Err(RecordError::Store(StoreError::Backend(format!(
                    "run {} is not in the journal",
                    self.run
                ))));
            }
        };
        self.record_all(vec![event])?
            .into_iter()
            .next()
            .ok_or_else(|| {
                RecordError::Store(StoreError::Backend("append returned no event".to_owned()))
            })
    }
}

/// Runs a blocking store call: on a multi-threaded tokio runtime the worker
/// is handed over first so other tasks keep running; elsewhere it just runs.
fn tokio_safe<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Makes an event's payload fit for the journal: every string loses the
/// known secret values (in any of their forms, see [`Scrubber`]), and what
/// would act on a terminal in it (control, bidirectional and zero-width
/// characters, from a provider's answer or a spec value) is written as a
/// visible escape ([`crate::text`]). The desired states (`desired` of an
/// intent, `restore_to` of a rollback step) are exempt from the escaping:
/// a restore writes them back as they are, so they must stay exactly what
/// the spec said; they are escaped when printed.
pub fn scrub_event(event: Event, scrubber: &Scrubber) -> Event {
    let mut payload = event.payload();
    if !scrub_value(&mut payload, scrubber, true) {
        return event;
    }
    Event::from_value(event.type_name(), crate::event::EVENT_VERSION, payload).unwrap_or(event)
}

/// Keys whose values are desired states, kept exactly.
const EXACT: [&str; 2] = ["desired", "restore_to"];

fn scrub_value(v: &mut serde_json::Value, scrubber: &Scrubber, escape: bool) -> bool {
    match v {
        serde_json::Value::String(s) => {
            let mut changed = false;
            if !scrubber.is_empty() && scrubber.finds_in(s) {
                *s = scrubber.scrub(s);
                changed = true;
            }
            if escape && let Cow::Owned(shown) = crate::text::printable_lines(s) {
                *s = shown;
                changed = true;
            }
            changed
        }
        serde_json::Value::Array(items) => {
            let mut changed = false;
            for i in items {
                changed |= scrub_value(i, scrubber, escape);
            }
            changed
        }
        serde_json::Value::Object(map) => {
            let mut changed = false;
            for (k, i) in map.iter_mut() {
                changed |= scrub_value(i, scrubber, escape && !EXACT.contains(&k.as_str()));
            }
            if escape
                && map
                    .keys()
                    .any(|k| crate::text::printable_lines(k).len() != k.len())
            {
                let old = std::mem::take(map);
                for (k, i) in old {
                    map.insert(crate::text::printable_lines(&k).into_owned(), i);
                }
                changed = true;
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{RunCommand, RunOptions, VerificationFailed};
    use crate::secret::SecretValue;
    use crate::store::memory::MemoryStore;

    fn started() -> RunStarted {
        RunStarted {
            command: RunCommand::Apply,
            spec_path: None,
            spec_hash: None,
            user: "u".into(),
            host: "h".into(),
            pid: 1,
            fabrik_version: "0".into(),
            options: RunOptions::default(),
        }
    }

    #[test]
    fn a_second_run_is_refused_while_the_first_is_open() {
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        let d = DeploymentId::new("blog").unwrap();
        let mut first = Recorder::start(
            store.clone(),
            d.clone(),
            RunId::generate(),
            started(),
            wall_clock(),
            Box::new(Quiet),
        )
        .unwrap();
        first.transition(RunState::Validating, None).unwrap();
        let second = Recorder::start(
            store.clone(),
            d.clone(),
            RunId::generate(),
            started(),
            wall_clock(),
            Box::new(Quiet),
        );
        assert!(matches!(
            second,
            Err(RecordError::Decision(DecisionError::OpenRun { .. }))
        ));
        assert!(matches!(
            first.transition(RunState::Destroyed, None),
            Err(RecordError::Decision(
                DecisionError::IllegalTransition { .. }
            ))
        ));
        first.transition(RunState::Complete, None).unwrap();
        first.finish(RunOutcome::NoChanges, 0, None).unwrap();
        assert!(
            Recorder::start(
                store,
                d,
                RunId::generate(),
                started(),
                wall_clock(),
                Box::new(Quiet)
            )
            .is_ok()
        );
    }

    #[test]
    fn secrets_are_scrubbed_from_every_payload() {
        let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        let d = DeploymentId::new("blog").unwrap();
        let mut rec = Recorder::start(
            store.clone(),
            d.clone(),
            RunId::generate(),
            started(),
            wall_clock(),
            Box::new(Quiet),
        )
        .unwrap();
        let secret = SecretValue::new("s3cr3t-Value-42");
        rec.scrub(&Scrubber::with([&secret]));
        rec.record(Event::VerificationFailed(VerificationFailed {
            check: "http".into(),
            evidence: serde_json::json!({"body": format!("echo {}", secret.expose())}),
            error: format!("bad password {}", secret.expose()),
        }))
        .unwrap();
        let mut all = String::new();
        store
            .scan(&crate::store::Scan::default(), &mut |e| {
                all.push_str(&e.payload);
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        assert!(!all.contains(secret.expose()), "{all}");
        assert!(all.contains("[redacted]"));
    }
}
