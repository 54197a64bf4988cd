//! Decisions: checks made *before* an event is appended, so that nothing
//! illegal ever reaches the journal.
//!
//! Pure functions of the current projection; the fold itself never refuses
//! an event (it must replay any journal), so this is where the run state
//! machine is enforced.

use crate::event::{Event, RunFinished, RunOutcome, RunStateChanged};
use crate::id::RunId;
use crate::projection::{DeploymentView, RunState, RunView};

/// Why a decision refused to produce an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecisionError {
    /// The state machine does not allow this transition.
    #[error("run {run} cannot go from {from} to {to}")]
    IllegalTransition {
        /// The run.
        run: RunId,
        /// Its state.
        from: RunState,
        /// The refused target.
        to: RunState,
    },
    /// The run already finished.
    #[error("run {run} has already finished")]
    AlreadyFinished {
        /// The run.
        run: RunId,
    },
    /// Another run of the deployment is unfinished.
    #[error("run {run} of this deployment is unfinished ({state})")]
    OpenRun {
        /// The unfinished run.
        run: RunId,
        /// Its state.
        state: RunState,
    },
}

/// Whether a new run may start on this deployment: refused while its latest
/// run is unfinished (that run must be resumed or rolled back first, so
/// there is only ever one timeline).
pub fn may_start(latest: Option<&RunView>) -> Result<(), DecisionError> {
    match latest {
        Some(r) if r.is_open() => Err(DecisionError::OpenRun {
            run: r.run.clone(),
            state: r.state,
        }),
        _ => Ok(()),
    }
}

/// The event that moves `run` to `to`, if the state machine allows it.
pub fn transition(
    run: &RunView,
    to: RunState,
    reason: Option<String>,
) -> Result<Event, DecisionError> {
    if run.outcome.is_some() {
        return Err(DecisionError::AlreadyFinished {
            run: run.run.clone(),
        });
    }
    if !run.state.can_go_to(to) {
        return Err(DecisionError::IllegalTransition {
            run: run.run.clone(),
            from: run.state,
            to,
        });
    }
    Ok(Event::RunStateChanged(RunStateChanged {
        from: run.state,
        to,
        reason,
    }))
}

/// The event that finishes `run`.
pub fn finish(
    run: &RunView,
    outcome: RunOutcome,
    exit_code: i32,
    message: Option<String>,
) -> Result<Event, DecisionError> {
    if run.outcome.is_some() {
        return Err(DecisionError::AlreadyFinished {
            run: run.run.clone(),
        });
    }
    Ok(Event::RunFinished(RunFinished {
        outcome,
        exit_code,
        message,
    }))
}

/// The latest run of a deployment, if the view names one and `lookup` finds
/// it.
pub fn latest_run<'a>(
    view: &DeploymentView,
    lookup: impl Fn(&RunId) -> Option<&'a RunView>,
) -> Option<&'a RunView> {
    view.latest_run.as_ref().and_then(lookup)
}
