//! The top-level error, its exit code, and how it is rendered.
//!
//! Exit codes (the contract in the README):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success, including "no changes" |
//! | 1 | unexpected error |
//! | 2 | usage error, or changes pending under `plan --detailed-exitcode` |
//! | 3 | another run holds the deployment's lock |
//! | 4 | invalid spec |
//! | 5 | run failed and its owned resources were rolled back |
//! | 6 | run failed and needs a person |
//! | 7 | journal integrity check failed |

use std::error::Error as StdError;
use std::path::PathBuf;

use crate::decide::DecisionError;
use crate::store::{ChainError, StoreError};
use crate::text::{printable_line, printable_lines};

pub use crate::exit;

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The journal store failed (its message says what failed).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The journal's integrity check failed.
    #[error("journal integrity check failed at event {}", .0.seq)]
    Integrity(ChainError),
    /// Cached projections differ from the fold.
    #[error("journal integrity check failed: {0}")]
    ProjectionMismatch(String),
    /// The database file itself is damaged (SQLite's integrity check).
    #[error("journal integrity check failed: the database file is damaged: {0}")]
    Damaged(String),
    /// A decision refused an event.
    #[error(transparent)]
    Decision(#[from] DecisionError),
    /// Bad arguments.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// A file could not be read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done (`cannot read`, `cannot write`).
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An export file is not a valid Fabrik export.
    #[error("{path}:{line}: {message}")]
    BadExport {
        /// The file.
        path: PathBuf,
        /// The line (1-based; 0 when unknown).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Another run holds the lock.
    #[error("{message}")]
    Locked {
        /// Who holds it.
        message: String,
        /// What to do.
        hint: Option<String>,
    },
    /// Anything else, already rendered.
    #[error("{0}")]
    Other(String),
    /// The spec is invalid (its diagnostics were printed), or unreadable.
    #[error("{0}")]
    Spec(Box<crate::spec::SpecError>),
    /// A run could not be carried out (its causes are rendered from the
    /// engine error's own sources).
    #[error("{}", engine_message(.0))]
    Engine(Box<crate::engine::EngineError>),
    /// The sandbox could not start or be read.
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// A command that later work implements.
    #[error("`fabrik {0}` is not available in this build yet")]
    NotImplemented(&'static str),
}

impl Error {
    /// A usage error without a hint.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage {
            message: message.into(),
            hint: None,
        }
    }

    /// Whether the error is stdout closed by its reader (`fabrik ... |
    /// head`): not a failure, the reader had enough.
    pub fn is_broken_pipe(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && io.kind() == std::io::ErrorKind::BrokenPipe
            {
                return true;
            }
            cause = e.source();
        }
        false
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        if self.damaged_database() {
            return exit::INTEGRITY;
        }
        // The check before an append found the journal changed, wherever
        // the refusal was wrapped.
        if let Some(StoreError::Chain(_)) = self.store_error() {
            return exit::INTEGRITY;
        }
        match self {
            Self::Store(StoreError::Corrupt { .. } | StoreError::Decode { .. }) => exit::INTEGRITY,
            Self::Store(StoreError::Projection { .. }) => exit::INTEGRITY,
            Self::Integrity(_) | Self::ProjectionMismatch(_) | Self::Damaged(_) => exit::INTEGRITY,
            Self::BadExport { .. } => exit::INTEGRITY,
            Self::Usage { .. } => exit::USAGE,
            Self::Spec(e) => match **e {
                crate::spec::SpecError::Invalid { .. } => exit::INVALID_SPEC,
                crate::spec::SpecError::Read { .. } => exit::INVALID_SPEC,
            },
            Self::Engine(e) => e.exit_code(),
            Self::Locked { .. } => exit::LOCKED,
            _ => exit::UNEXPECTED,
        }
    }

    /// The journal store's error behind this one, if any (the first in the
    /// chain of causes).
    fn store_error(&self) -> Option<&StoreError> {
        let mut source: Option<&(dyn StdError + 'static)> = match self {
            Self::Store(e) => return Some(e),
            Self::Engine(e) => Some(e.as_ref()),
            _ => None,
        };
        while let Some(e) = source {
            if let Some(e) = e.downcast_ref::<StoreError>() {
                return Some(e);
            }
            source = e.source();
        }
        None
    }

    /// Whether SQLite found the state database file damaged (a corrupt
    /// page, not a database at all, or a value of a type Fabrik never
    /// writes), anywhere in the chain of causes.
    fn damaged_database(&self) -> bool {
        let mut source: Option<&(dyn StdError + 'static)> = match self {
            Self::Store(e) => Some(e),
            Self::Engine(e) => Some(e.as_ref()),
            _ => None,
        };
        while let Some(e) = source {
            if let Some(e) = e.downcast_ref::<rusqlite::Error>() {
                return match e {
                    rusqlite::Error::SqliteFailure(f, _) => matches!(
                        f.code,
                        rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                    ),
                    rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
                    | rusqlite::Error::Utf8Error(..) => true,
                    _ => false,
                };
            }
            source = e.source();
        }
        false
    }

    /// Hints on how to fix it, one per line.
    pub fn hints(&self) -> Vec<String> {
        match self.store_error() {
            Some(StoreError::Chain(_)) => {
                return vec![
                    "the journal was changed outside fabrik, or lost committed events, and nothing was appended to it; `fabrik replay --verify` shows what, and `fabrik journal export` keeps a copy; restore the journal from a backup (if you restored or replaced it on purpose, remove the head record it names)".to_owned(),
                ];
            }
            Some(StoreError::Key(e)) => return vec![e.hint()],
            Some(e) if e.is_disk_full() && matches!(self, Self::Store(_)) => {
                return vec![
                    "the disk holding the journal is full: free space on it and run the command again (nothing was journaled)".to_owned(),
                ];
            }
            _ => {}
        }
        if let Self::Store(StoreError::Decode {
            source:
                crate::event::DecodeError::UnknownType(_)
                | crate::event::DecodeError::UnknownVersion { .. },
            ..
        }) = self
        {
            return vec![
                "this journal holds events written by a newer fabrik; use that version".to_owned(),
            ];
        }
        if self.damaged_database()
            || matches!(
                self,
                Self::Damaged(_)
                    | Self::Store(
                        StoreError::Projection { .. }
                            | StoreError::Corrupt { .. }
                            | StoreError::Decode { .. }
                    )
            )
        {
            return vec![
                "the state database file is damaged (a disk fault, or a change made outside fabrik); keep a copy of it, and restore it from a backup or replay an earlier export (`fabrik replay --input FILE`)".to_owned(),
            ];
        }
        match self {
            Self::Usage { hint: Some(h), .. } | Self::Locked { hint: Some(h), .. } => {
                vec![h.clone()]
            }
            Self::Store(StoreError::NewerSchema { .. }) => {
                vec!["this state was written by a newer fabrik; install that version".to_owned()]
            }
            Self::Store(StoreError::Conflict { .. }) => vec![
                "another process wrote to this deployment's journal; run `fabrik lock status`"
                    .to_owned(),
            ],
            Self::Engine(e) => e.hints(),
            Self::Spec(e) => match **e {
                crate::spec::SpecError::Invalid { .. } => {
                    vec!["`fabrik validate SPEC` lists every problem".to_owned()]
                }
                crate::spec::SpecError::Read { .. } => Vec::new(),
            },
            Self::Integrity(_) | Self::ProjectionMismatch(_) => vec![
                "the journal was modified outside fabrik; keep a copy of the file and compare it with an earlier export".to_owned(),
            ],
            _ => Vec::new(),
        }
    }

    /// The causes worth showing, outermost first.
    fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut last = self.to_string();
        let mut source = match self {
            Self::Engine(e) => e.source(),
            Self::Spec(e) => e.source(),
            _ => self.source(),
        };
        while let Some(s) = source {
            let text = s.to_string();
            // Layers that only name themselves ("journal", "lock") add
            // nothing to a line that already says it.
            if text != last && !last.contains(&text) {
                out.push(text.clone());
            }
            last = text;
            source = s.source();
        }
        if let Self::Integrity(e) = self {
            out.push(e.problem.clone());
        }
        out
    }

    /// The message and every cause, one per line, as shown to people:
    /// `error: ...`, then `  caused by: ...`, then `  hint: ...`. A message
    /// may quote text from outside (a provider's answer): what would act
    /// on a terminal in it is escaped, line breaks kept.
    pub fn render(&self) -> String {
        let mut out = format!("error: {}", printable_lines(&self.to_string()));
        for c in self.causes() {
            out.push_str(&format!("\n  caused by: {}", printable_lines(&c)));
        }
        for h in self.hints() {
            out.push_str(&format!("\n  hint: {}", printable_lines(&h)));
        }
        out
    }

    /// The message and the same causes as [`Error::render`], on one line
    /// (`a: b: c`, escaped, line breaks too), for JSON output.
    pub fn one_line(&self) -> String {
        let mut out = self.to_string();
        for c in self.causes() {
            out.push_str(": ");
            out.push_str(&c);
        }
        printable_line(&out).into_owned()
    }
}

fn engine_message(e: &crate::engine::EngineError) -> String {
    use crate::engine::EngineError as E;
    match e {
        E::Locked(l) => l.to_string(),
        E::Provider { doing, .. } => format!("{doing} failed"),
        E::Record(_) => "cannot write the journal".to_owned(),
        other => other.to_string(),
    }
}

pub use crate::text::error_chain as chain_text;
