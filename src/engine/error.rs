//! Why a command could not run: one typed variant per reason, each with
//! its context in fields, its hint and its exit code, so the top-level
//! error maps to an exit code without reaching into the engine.

use crate::event::{ResourceKey, ResourceKind, RunState};
use crate::exit;
use crate::id::{DeploymentId, RunId};
use crate::provider::{ConnectError, ProviderError};
use crate::store::StoreError;

use super::recorder::RecordError;

/// Why a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The journal could not be written (or a decision refused an event).
    #[error("cannot write the journal")]
    Record(#[from] RecordError),
    /// The journal could not be read.
    #[error("cannot read the journal")]
    Store(#[from] StoreError),
    /// A provider failed.
    #[error("{doing}")]
    Provider {
        /// What was being done.
        doing: String,
        /// Why.
        #[source]
        source: Box<ProviderError>,
    },
    /// The providers could not be configured or reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// The lock is held.
    #[error("lock")]
    Locked(#[from] crate::store::lock::LockError),
    /// The deployment has an unfinished run.
    #[error("deployment {deployment} has an unfinished run {run} ({state})")]
    OpenRun {
        /// The deployment.
        deployment: DeploymentId,
        /// The run.
        run: RunId,
        /// Its state.
        state: RunState,
    },
    /// A spec file could not be loaded.
    #[error("{}", path.display())]
    Spec {
        /// The spec file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<crate::spec::SpecError>,
    },
    /// The spec's secrets could not be resolved.
    #[error("cannot resolve the spec's secrets")]
    Secrets(#[source] crate::spec::secrets::SecretError),
    /// The spec cannot be mapped to provider requests.
    #[error("spec")]
    Desired(#[from] super::desired::DesiredError),
    /// A journaled resource state cannot be read back.
    #[error("{0}")]
    State(#[from] StateError),
    /// What the command names is not in the journal.
    #[error("{0}")]
    Lookup(#[from] LookupError),
    /// The command does not apply to the run it names.
    #[error("{message}")]
    Refused {
        /// Why.
        message: String,
        /// What to do instead.
        hint: String,
    },
    /// No provider of a capability the run needs.
    #[error("no {capability} provider is configured")]
    NoProvider {
        /// `DNS` or `monitors`.
        capability: &'static str,
    },
    /// Something the step needs was not established before it (a bug, or
    /// a journal edited by hand).
    #[error("{what} was not established before this step")]
    Unresolved {
        /// What is missing.
        what: String,
    },
    /// Verification failed.
    #[error("{0}")]
    Verification(String),
    /// The deployment did not finish. Its build log's last lines follow
    /// the first line of the message, so that nobody has to open Coolify
    /// to learn why.
    #[error("the deployment ended {status}{}{log}", url.as_deref().map(|u| format!(" (see {u})")).unwrap_or_default())]
    DeployFailed {
        /// How it ended.
        status: String,
        /// Where to look at it in Coolify.
        url: Option<String>,
        /// The end of its build log.
        log: LogTail,
    },
    /// The run was interrupted.
    #[error("interrupted")]
    Interrupted,
    /// Several checks before any change failed: each one, on a line.
    #[error("{} problems found before changing anything:{}", problems.len(), listed(problems))]
    Preflight {
        /// What each check found, in the order of the services.
        problems: Vec<EngineError>,
    },
}

fn listed(problems: &[EngineError]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  - {}", p.text()))
        .collect()
}

/// The end of a failed deployment's build log, as a failure shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LogTail {
    /// Not read (a service keeps no build log, or reading it failed).
    #[default]
    Unread,
    /// Its last lines, scrubbed and escaped.
    Lines(Vec<String>),
    /// The token may not read build logs.
    Hidden,
}

/// On the error's line: only what stands in for the lines (their block
/// is [`EngineError::details`]).
impl std::fmt::Display for LogTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unread | Self::Lines(_) => Ok(()),
            Self::Hidden => {
                f.write_str("; the build log needs a token with read:sensitive to be shown here")
            }
        }
    }
}

/// A resource's journaled state that cannot be decoded: named by the
/// resource and the event that recorded it (the `resource_intent` of a
/// run), never silently dropped.
#[derive(Debug, thiserror::Error)]
#[error(
    "the journaled state of {kind} {resource} (in the resource_intent of run {}) cannot be read",
    run.as_ref().map_or_else(|| "?".to_owned(), RunId::to_string)
)]
pub struct StateError {
    /// The resource.
    pub resource: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// The run whose intent recorded the state.
    pub run: Option<RunId>,
    /// Why.
    #[source]
    pub source: serde_json::Error,
}

/// What a command names and the journal does not have.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No run with that id.
    #[error("no run {0} in the journal")]
    NoRun(RunId),
    /// No run id starts with that prefix.
    #[error("no run id in the journal starts with {0}")]
    NoRunPrefix(String),
    /// Several run ids start with that prefix.
    #[error("run id prefix {prefix} is ambiguous: it starts {}", candidates.iter().map(RunId::as_str).collect::<Vec<_>>().join(", "))]
    AmbiguousRun {
        /// What was given.
        prefix: String,
        /// Every run id it starts.
        candidates: Vec<RunId>,
    },
    /// Not a run id, and not a deployment name.
    #[error("{0:?} is neither a run id nor a deployment name")]
    BadTarget(String),
    /// No deployment of that name.
    #[error("no deployment named {0} in the journal")]
    NoDeployment(DeploymentId),
    /// The deployment has no run of the kind the command needs.
    #[error("deployment {deployment} has no {what}")]
    NoMatchingRun {
        /// The deployment.
        deployment: DeploymentId,
        /// What was looked for.
        what: &'static str,
    },
    /// The run names no spec file.
    #[error("run {0} names no spec file")]
    NoSpec(RunId),
}

impl EngineError {
    /// Wraps a provider error with what was being done.
    pub fn provider(doing: impl Into<String>, e: ProviderError) -> Self {
        Self::Provider {
            doing: doing.into(),
            source: Box::new(e),
        }
    }

    /// `problems` as one error: none is `None`, one is itself, several
    /// are [`EngineError::Preflight`].
    pub fn all(mut problems: Vec<EngineError>) -> Option<Self> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(Self::Preflight { problems }),
        }
    }

    /// Every hint to show: each problem's for [`EngineError::Preflight`].
    pub fn hints(&self) -> Vec<String> {
        match self {
            Self::Preflight { problems } => {
                let mut hints: Vec<String> = Vec::new();
                for h in problems.iter().filter_map(Self::hint) {
                    if !hints.contains(&h) {
                        hints.push(h);
                    }
                }
                hints
            }
            other => other.hint().into_iter().collect(),
        }
    }

    /// The hint to show, if any.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Provider { source, .. } => source.hint.clone(),
            Self::Connect(e) => e.hint(),
            Self::OpenRun { run, .. } => Some(format!(
                "finish it with `fabrik resume {run}` (or undo it with `fabrik rollback {run}`)"
            )),
            Self::Spec { path, .. } => Some(format!(
                "the spec must be readable and valid (`fabrik validate {}`)",
                path.display()
            )),
            Self::Secrets(e) => e.hint(),
            Self::Refused { hint, .. } => Some(hint.clone()),
            Self::NoProvider { capability } => Some(match *capability {
                "DNS" => "set CLOUDFLARE_API_TOKEN".to_owned(),
                _ => {
                    "set UPTIME_KUMA_URL, UPTIME_KUMA_USERNAME and UPTIME_KUMA_PASSWORD".to_owned()
                }
            }),
            Self::Record(RecordError::Cut { run, .. }) => Some(if self.is_disk_full() {
                format!(
                    "the disk holding the journal is full: free space on it, then finish the run with `fabrik resume {run}` (everything journaled before this point is kept)"
                )
            } else {
                format!(
                    "once the journal can be written again, finish the run with `fabrik resume {run}`"
                )
            }),
            Self::Store(e) if e.is_disk_full() => Some(
                "the disk holding the journal is full: free space on it and run the command again"
                    .to_owned(),
            ),
            Self::Lookup(LookupError::NoRun(_) | LookupError::NoRunPrefix(_)) => {
                Some("`fabrik history DEPLOYMENT` lists the runs".to_owned())
            }
            Self::Lookup(LookupError::AmbiguousRun { .. }) => {
                Some("give more characters of the run id (`--wide` shows them whole)".to_owned())
            }
            Self::Lookup(LookupError::BadTarget(_)) => {
                Some("give a run id or a deployment name".to_owned())
            }
            Self::Lookup(LookupError::NoDeployment(_)) => {
                Some("`fabrik status` lists the deployments".to_owned())
            }
            Self::Lookup(LookupError::NoMatchingRun { deployment, .. }) => {
                Some(format!("`fabrik history {deployment}` lists its runs"))
            }
            _ => None,
        }
    }

    /// The process exit code this error ends a command with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Preflight { problems } => {
                problems.first().map_or(exit::UNEXPECTED, Self::exit_code)
            }
            Self::Locked(_) => exit::LOCKED,
            Self::OpenRun { .. } | Self::Record(RecordError::Cut { .. }) => exit::NEEDS_ATTENTION,
            Self::Record(RecordError::Store(StoreError::Conflict { .. })) => exit::LOCKED,
            Self::Record(RecordError::Store(
                StoreError::Corrupt { .. }
                | StoreError::Decode { .. }
                | StoreError::Projection { .. },
            ))
            | Self::Store(
                StoreError::Corrupt { .. }
                | StoreError::Decode { .. }
                | StoreError::Projection { .. },
            ) => exit::INTEGRITY,
            Self::State(_) => exit::INTEGRITY,
            Self::Lookup(LookupError::AmbiguousRun { .. }) => exit::USAGE,
            Self::Spec { source, .. } => match **source {
                crate::spec::SpecError::Invalid { .. } | crate::spec::SpecError::Read { .. } => {
                    exit::INVALID_SPEC
                }
            },
            _ => exit::UNEXPECTED,
        }
    }

    /// The journal's disk is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            Self::Record(e) => e.is_disk_full(),
            Self::Store(e) => e.is_disk_full(),
            _ => false,
        }
    }

    /// What the error's line details, below it: the end of a failed
    /// deployment's build log.
    pub fn details(&self) -> Option<String> {
        match self {
            Self::DeployFailed {
                log: LogTail::Lines(lines),
                ..
            } if !lines.is_empty() => {
                let mut out = "  build log (last lines):".to_owned();
                for l in lines {
                    out.push_str("\n    ");
                    out.push_str(l);
                }
                Some(out)
            }
            _ => None,
        }
    }

    /// The error and its causes on one line (provider errors without the
    /// wrapper's own words repeated).
    pub fn text(&self) -> String {
        match self {
            Self::Provider { doing, source } => format!("{doing}: {source}"),
            other => crate::text::error_chain(other),
        }
    }
}
