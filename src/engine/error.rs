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
            Self::Locked(_) => exit::LOCKED,
            Self::OpenRun { .. } => exit::NEEDS_ATTENTION,
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

    /// The error and its causes on one line (provider errors without the
    /// wrapper's own words repeated).
    pub fn text(&self) -> String {
        match self {
            Self::Provider { doing, source } => format!("{doing}: {source}"),
            other => crate::text::error_chain(other),
        }
    }
}
