//! The run state machine.
//!
//! ```text
//! PENDING → VALIDATING → PROVISIONING → DEPLOYING → VERIFYING → COMPLETE
//!              │              │             │           │
//!              └──────────────┴─────┬───────┴───────────┘
//!                                   ├──→ FAILED
//!                                   └──→ ROLLING_BACK → ROLLED_BACK
//! ```
//!
//! Besides the apply path of the brief, a destroy run goes
//! `PENDING → DESTROYING → DESTROYED`, and a rollback run (`fabrik
//! rollback` of a failed run) goes `PENDING → ROLLING_BACK → ROLLED_BACK`.
//! A run that FAILED may still be rolled back (`FAILED → ROLLING_BACK`), and
//! a rollback or destroy that itself fails ends FAILED. `VALIDATING →
//! COMPLETE` is the "no changes" path.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunState {
    /// Started, nothing checked yet.
    Pending,
    /// Spec, secrets and provider preflight.
    Validating,
    /// DNS records.
    Provisioning,
    /// Application, env vars, deploy.
    Deploying,
    /// HTTP, TLS and DNS checks; monitors; notifications.
    Verifying,
    /// Done and verified.
    Complete,
    /// Failed; nothing (more) is being undone.
    Failed,
    /// Undoing what the run created.
    RollingBack,
    /// Undone.
    RolledBack,
    /// Deleting everything the deployment owns.
    Destroying,
    /// Everything deleted.
    Destroyed,
}

impl RunState {
    /// Every state, for tests and docs.
    pub const ALL: [RunState; 11] = [
        Self::Pending,
        Self::Validating,
        Self::Provisioning,
        Self::Deploying,
        Self::Verifying,
        Self::Complete,
        Self::Failed,
        Self::RollingBack,
        Self::RolledBack,
        Self::Destroying,
        Self::Destroyed,
    ];

    /// Whether a run in this state is finished.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::Failed | Self::RolledBack | Self::Destroyed
        )
    }

    /// Whether `self → to` is a legal transition.
    pub fn can_go_to(self, to: RunState) -> bool {
        use RunState::*;
        matches!(
            (self, to),
            (Pending, Validating | Destroying | RollingBack | Failed)
                | (Validating, Provisioning | Complete | Failed)
                | (Provisioning, Deploying | Failed | RollingBack)
                | (Deploying, Verifying | Failed | RollingBack)
                | (Verifying, Complete | Failed | RollingBack)
                | (Failed, RollingBack)
                | (RollingBack, RolledBack | Failed)
                | (Destroying, Destroyed | Failed)
        )
    }

    /// The name as written in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Validating => "VALIDATING",
            Self::Provisioning => "PROVISIONING",
            Self::Deploying => "DEPLOYING",
            Self::Verifying => "VERIFYING",
            Self::Complete => "COMPLETE",
            Self::Failed => "FAILED",
            Self::RollingBack => "ROLLING_BACK",
            Self::RolledBack => "ROLLED_BACK",
            Self::Destroying => "DESTROYING",
            Self::Destroyed => "DESTROYED",
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_happy_path_is_legal() {
        use RunState::*;
        let path = [
            Pending,
            Validating,
            Provisioning,
            Deploying,
            Verifying,
            Complete,
        ];
        for w in path.windows(2) {
            assert!(w[0].can_go_to(w[1]), "{} → {}", w[0], w[1]);
        }
    }

    #[test]
    fn terminal_states_only_lead_to_rollback() {
        for from in RunState::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RunState::ALL {
                let legal = from.can_go_to(to);
                assert_eq!(
                    legal,
                    from == RunState::Failed && to == RunState::RollingBack,
                    "{from} → {to}"
                );
            }
        }
    }

    #[test]
    fn no_state_goes_to_itself_or_back_to_pending() {
        for s in RunState::ALL {
            assert!(!s.can_go_to(s));
            assert!(!s.can_go_to(RunState::Pending));
        }
    }
}
