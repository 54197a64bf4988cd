//! How a run ends: one table from its outcome to its final state and exit
//! code, and what the ending says.

use crate::event::{RunOutcome, RunState};
use crate::exit;
use crate::id::RunId;

/// How a run ends: its final state and the process exit code, from its
/// outcome and whether a person asked for this ending (`fabrik rollback`:
/// a rollback that succeeds, or finds nothing to undo, is a success).
pub fn ending(outcome: RunOutcome, asked: bool) -> (RunState, i32) {
    use RunOutcome as O;
    match (outcome, asked) {
        (O::Succeeded | O::NoChanges, _) => (RunState::Complete, exit::OK),
        (O::Destroyed, _) => (RunState::Destroyed, exit::OK),
        (O::RolledBack, true) => (RunState::RolledBack, exit::OK),
        (O::RolledBack, false) => (RunState::RolledBack, exit::ROLLED_BACK),
        (O::NeedsAttention, _) => (RunState::Failed, exit::NEEDS_ATTENTION),
        (O::Failed, true) => (RunState::Failed, exit::OK),
        (O::Failed, false) => (RunState::Failed, exit::UNEXPECTED),
    }
}

/// The notification events of a run's ending, most specific first: a
/// channel receives the first of them it wants. Every ending that is a
/// failure also goes by `failed` (a run that failed and was rolled back,
/// or that needs a person); the ending a person asked for (`fabrik
/// rollback`) does not, and neither does a Ctrl-C.
pub(super) fn notifications(stop: Stop, asked: bool) -> &'static [&'static str] {
    use RunOutcome as O;
    match stop {
        Stop::Interrupted => &["needs_attention"],
        Stop::Ended(O::Succeeded) => &["succeeded"],
        Stop::Ended(O::Destroyed) => &["destroyed"],
        Stop::Ended(O::NoChanges) => &[],
        Stop::Ended(O::RolledBack) if asked => &["rolled_back"],
        Stop::Ended(O::RolledBack) => &["rolled_back", "failed"],
        Stop::Ended(O::NeedsAttention) => &["needs_attention", "failed"],
        Stop::Ended(O::Failed) => &["failed"],
    }
}

/// How a run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It ended with this outcome.
    Ended(RunOutcome),
    /// Ctrl-C: journaled as interrupted, left open for `fabrik resume`.
    Interrupted,
}

/// Everything [`Run::finish`] needs to end a run.
#[derive(Debug, Clone)]
pub struct End {
    /// How it stops.
    pub stop: Stop,
    /// The one-line summary for people.
    pub message: String,
    /// What `run_finished` keeps as its message (the reason of a failure,
    /// a rollback's summary); the summary when `None`.
    pub journaled: Option<String>,
    /// The reason journaled with the move to the final state.
    pub reason: Option<String>,
    /// What the notification says; the journaled message when `None`.
    pub notice: Option<String>,
    /// `resource: action` for every change made.
    pub changes: Vec<String>,
    /// The commands that finish what is left.
    pub next: Vec<String>,
}

impl End {
    /// An ending with `outcome` and `message`, nothing else.
    pub fn new(outcome: RunOutcome, message: impl Into<String>) -> Self {
        Self {
            stop: Stop::Ended(outcome),
            message: message.into(),
            journaled: None,
            reason: None,
            notice: None,
            changes: Vec::new(),
            next: Vec::new(),
        }
    }

    /// Stopped by Ctrl-C; `fabrik resume` finishes it.
    pub fn interrupted(message: impl Into<String>, run: &RunId) -> Self {
        Self {
            stop: Stop::Interrupted,
            message: message.into(),
            journaled: None,
            reason: None,
            notice: None,
            changes: Vec::new(),
            next: vec![format!("fabrik resume {run}")],
        }
    }

    /// What `run_finished` keeps.
    pub fn journaling(mut self, text: impl Into<String>) -> Self {
        self.journaled = Some(text.into());
        self
    }

    /// A failure's reason: journaled with the move to the final state, in
    /// `run_finished`, and sent as the notification.
    pub fn because(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self.journaled = Some(reason.to_owned());
        self.notice = Some(reason.to_owned());
        self
    }

    /// What the notification says.
    pub fn notice(mut self, text: impl Into<String>) -> Self {
        self.notice = Some(text.into());
        self
    }

    /// The changes made.
    pub fn with_changes(mut self, changes: Vec<String>) -> Self {
        self.changes = changes;
        self
    }

    /// The commands that finish what is left.
    pub fn then(mut self, next: Vec<String>) -> Self {
        self.next = next;
        self
    }
}

/// A message with the lines that detail its reason (a failed
/// deployment's build log, [`crate::engine::EngineError::details`]) below
/// it.
pub fn detailed(message: String, details: &Option<String>) -> String {
    match details {
        Some(d) => format!("{message}\n{d}"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_one_final_state_and_exit_code() {
        use RunOutcome as O;
        let all = [
            O::Succeeded,
            O::NoChanges,
            O::RolledBack,
            O::NeedsAttention,
            O::Failed,
            O::Destroyed,
        ];
        for o in all {
            for asked in [false, true] {
                let (state, code) = ending(o, asked);
                assert!(state.is_terminal(), "{o}: {state}");
                assert!((0..=7).contains(&code));
            }
        }
        assert_eq!(ending(O::RolledBack, false).1, exit::ROLLED_BACK);
        assert_eq!(ending(O::RolledBack, true).1, exit::OK);
        assert_eq!(ending(O::NeedsAttention, true).1, exit::NEEDS_ATTENTION);
    }

    #[test]
    fn every_failure_goes_by_failed_too() {
        use RunOutcome as O;
        for o in [O::RolledBack, O::NeedsAttention, O::Failed] {
            assert!(
                notifications(Stop::Ended(o), false).contains(&"failed"),
                "{o}"
            );
        }
        assert_eq!(
            notifications(Stop::Ended(O::RolledBack), true),
            &["rolled_back"]
        );
        assert_eq!(
            notifications(Stop::Ended(O::Succeeded), false),
            &["succeeded"]
        );
        assert!(notifications(Stop::Ended(O::NoChanges), false).is_empty());
    }
}
