//! The commands: one module each, over the run driver
//! ([`crate::engine::run`]) and the resource kinds
//! ([`crate::engine::resource`]).
//!
//! - [`apply`]: `fabrik apply`;
//! - [`plan`]: `fabrik plan`, refreshed by default, and saved plans;
//! - [`execute`]: a plan's steps, phase by phase (shared by apply and
//!   resume);
//! - [`verify`]: the spec's checks after a deployment;
//! - [`refresh`]: what the remote side shows, for `--refresh`;
//! - [`resume`]: finishing an interrupted run;
//! - [`reconcile`]: after a crash, what intents without outcome left;
//! - [`rollback`]: undoing a failed run (after a failure, or asked for);
//! - [`destroy`]: deleting everything a deployment owns;
//! - [`gc`]: remote resources marked as Fabrik's that no deployment owns;
//! - [`promote`]: what one environment verified, deployed to another.

pub mod apply;
pub mod destroy;
pub mod doctor;
pub mod execute;
pub mod gc;
pub mod plan;
pub mod promote;
pub mod reconcile;
pub mod refresh;
pub mod release;
pub mod resume;
pub mod rollback;
pub mod verify;

use std::path::Path;

use super::desired::World;
use super::{EngineError, LookupError};
use crate::id::{DeploymentId, RunId};
use crate::plan::StepAction;
use crate::projection::{DeploymentView, RunView};
use crate::provider::registry::Env;
use crate::spec::secrets::ResolvedSecrets;
use crate::spec::{LoadOptions, Loaded};
use crate::store::EventStore;

/// A run named on the command line: a run id, or a deployment name (its
/// latest run matching `pick`).
pub fn find_run(
    store: &dyn EventStore,
    target: &str,
    pick: impl Fn(&RunView) -> bool,
    what: &'static str,
) -> Result<RunView, EngineError> {
    if RunId::looks_like(target) {
        let id: RunId = target
            .parse()
            .map_err(|_| LookupError::BadTarget(target.to_owned()))?;
        return store.run(&id)?.ok_or_else(|| LookupError::NoRun(id).into());
    }
    let d = DeploymentId::new(target).map_err(|_| LookupError::BadTarget(target.to_owned()))?;
    let runs = store.runs(&d)?;
    if runs.is_empty() {
        return Err(LookupError::NoDeployment(d).into());
    }
    runs.into_iter().rev().find(|r| pick(r)).ok_or_else(|| {
        LookupError::NoMatchingRun {
            deployment: d,
            what,
        }
        .into()
    })
}

/// Loads the spec a run was started with (its journaled absolute path),
/// for that run's deployment: when the file's `name` changed since (a
/// rename), it still describes how to reach the services, but the
/// deployment is the run's, never the one the file names now.
pub fn spec_of(run: &RunView) -> Result<Loaded, EngineError> {
    let path = run
        .spec_path
        .as_deref()
        .ok_or_else(|| LookupError::NoSpec(run.run.clone()))?;
    let mut loaded = load_spec(Path::new(path), run.deployment.environment())?;
    loaded.spec.name = run.deployment.clone();
    Ok(loaded)
}

/// Loads and validates a spec file (in `environment`, for a spec that
/// declares environments).
pub fn load_spec(path: &Path, environment: Option<&str>) -> Result<Loaded, EngineError> {
    crate::spec::load(path, &LoadOptions::in_environment(environment)).map_err(|e| {
        EngineError::Spec {
            path: path.to_owned(),
            source: Box::new(e),
        }
    })
}

/// The deployment's view (empty when it has none).
pub fn view(store: &dyn EventStore, d: &DeploymentId) -> Result<DeploymentView, EngineError> {
    Ok(store
        .deployment(d)?
        .unwrap_or_else(|| DeploymentView::new(d.clone())))
}

/// The spec path as journaled: absolute, so that `resume` and `rollback`
/// find it from any directory.
pub fn spec_path_text(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// A spec's identity (see [`crate::event::RunOptions::spec_id`]): its path
/// inside its git work tree, so that the same repository checked out on a
/// laptop and in CI gives the same identity; its absolute path outside
/// one.
pub fn spec_identity(path: &Path) -> String {
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let inside = crate::store::discover::work_tree_root(absolute.parent().unwrap_or(&absolute))
        .and_then(|root| absolute.strip_prefix(root).ok());
    inside
        .unwrap_or(&absolute)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The word for a step in reports.
pub fn step_word(a: StepAction) -> &'static str {
    match a {
        StepAction::Create => "create",
        StepAction::Update => "update",
        StepAction::Delete => "delete",
        StepAction::Noop => "no change",
    }
}

/// How [`Prepared`] resolves secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secrets {
    Persist,
    Preview,
    AtHand,
}

/// A spec made ready to talk to the providers: its credentials, secrets
/// and what each kind wants.
pub struct Prepared {
    /// The spec.
    pub loaded: Loaded,
    /// Its secrets.
    pub secrets: ResolvedSecrets,
    /// What it asks of the providers.
    pub world: World,
    /// Credentials and configuration.
    pub env: Env,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("spec", &self.loaded.path)
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// Loads credentials from `env_vars` and the spec's `.env`, resolves
    /// the secrets (generating, and keeping in `.env`, those the spec lets
    /// Fabrik create) and maps the spec.
    pub fn new(loaded: Loaded, env_vars: &[(String, String)]) -> Result<Self, EngineError> {
        Self::with(loaded, env_vars, Secrets::Persist)
    }

    /// Like [`Prepared::new`], writing nothing: secrets that would be
    /// generated are generated for this call only (`fabrik plan`).
    pub fn preview(loaded: Loaded, env_vars: &[(String, String)]) -> Result<Self, EngineError> {
        Self::with(loaded, env_vars, Secrets::Preview)
    }

    /// For commands that delete (`destroy`, `rollback`): the secrets that
    /// are at hand and no others (none generated, none required). A restore
    /// that needs one that is not fails then, naming it.
    pub fn for_deletes(loaded: Loaded, env_vars: &[(String, String)]) -> Result<Self, EngineError> {
        Self::with(loaded, env_vars, Secrets::AtHand)
    }

    fn with(
        loaded: Loaded,
        env_vars: &[(String, String)],
        mode: Secrets,
    ) -> Result<Self, EngineError> {
        use crate::spec::secrets::{resolve, resolve_available, resolve_preview};
        let env = Env::load(env_vars.iter().cloned(), &loaded.default_dotenv())?;
        let lookup = |k: &str| env.var(k).map(str::to_owned);
        let dotenv = loaded.default_dotenv();
        let secrets = match mode {
            Secrets::Persist => resolve(&loaded.spec, &lookup, &dotenv),
            Secrets::Preview => resolve_preview(&loaded.spec, &lookup, &dotenv),
            Secrets::AtHand => resolve_available(&loaded.spec, &lookup, &dotenv),
        }
        .map_err(EngineError::Secrets)?;
        let digests = crate::spec::hash::desired_state(&loaded.spec, &secrets);
        let world = match mode {
            Secrets::AtHand => World::for_deletes(&loaded.spec, &secrets, digests)?,
            _ => World::from_spec(&loaded.spec, &secrets, digests)?,
        };
        Ok(Self {
            loaded,
            secrets,
            world,
            env,
        })
    }

    /// What a connection for this spec needs, with the journal's view.
    pub fn scope<'a>(&'a self, view: &'a DeploymentView) -> super::preflight::Scope<'a> {
        super::preflight::Scope {
            spec: &self.loaded.spec,
            secrets: &self.secrets,
            env: &self.env,
            view,
        }
    }
}
