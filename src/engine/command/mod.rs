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
//! - [`logs`]: an application's runtime log and its latest build log.
//! - [`promote`]: what one environment verified, deployed to another.

pub mod apply;
pub mod destroy;
pub mod doctor;
pub mod execute;
pub mod gc;
pub mod logs;
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

/// The fewest characters of a run id taken as its prefix (as git takes
/// an abbreviated commit).
pub const MIN_RUN_PREFIX: usize = 4;

/// Whether `text` may be the start of a run id: [`MIN_RUN_PREFIX`] to 25
/// base-32 digits.
fn may_start_a_run_id(text: &str) -> bool {
    (MIN_RUN_PREFIX..26).contains(&text.len())
        && text.bytes().all(|c| {
            let c = c.to_ascii_lowercase();
            c.is_ascii_digit()
                || (c.is_ascii_lowercase() && !matches!(c, b'i' | b'l' | b'o' | b'u'))
        })
}

/// The run named by `text`, a whole run id or the unique start of one
/// (tables show the first 8 characters), among the runs of `within` or of
/// every deployment. `None` when no run has that id or prefix; refused,
/// naming the candidates, when several start with it.
pub fn run_by_id(
    store: &dyn EventStore,
    text: &str,
    within: Option<&DeploymentId>,
) -> Result<Option<RunView>, EngineError> {
    if RunId::looks_like(text) {
        let id: RunId = text
            .parse()
            .map_err(|_| LookupError::BadTarget(text.to_owned()))?;
        return Ok(store
            .run(&id)?
            .filter(|r| within.is_none_or(|d| &r.deployment == d)));
    }
    if !may_start_a_run_id(text) {
        return Ok(None);
    }
    let prefix = text.to_ascii_lowercase();
    let deployments = match within {
        Some(d) => vec![d.clone()],
        None => store.deployments()?,
    };
    let mut found = Vec::new();
    for d in deployments {
        found.extend(
            store
                .runs(&d)?
                .into_iter()
                .filter(|r| r.run.as_str().starts_with(&prefix)),
        );
    }
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(LookupError::AmbiguousRun {
            prefix,
            candidates: found.into_iter().map(|r| r.run).collect(),
        }
        .into()),
    }
}

/// A target on the command line (a run id, the start of one, or a
/// deployment name) with the start of a run id made whole: a name that is
/// a deployment in the journal stays the deployment.
pub fn whole_run_id(store: &dyn EventStore, target: &str) -> Result<String, EngineError> {
    if RunId::looks_like(target) || !may_start_a_run_id(target) {
        return Ok(target.to_owned());
    }
    if let Ok(d) = DeploymentId::new(target)
        && store.deployment(&d)?.is_some()
    {
        return Ok(target.to_owned());
    }
    Ok(run_by_id(store, target, None)?.map_or_else(|| target.to_owned(), |r| r.run.to_string()))
}

/// A run named on the command line: a run id (or the unique start of
/// one), or a deployment name (its latest run matching `pick`). A name
/// that is both a deployment and the start of a run id is the deployment.
pub fn find_run(
    store: &dyn EventStore,
    target: &str,
    pick: impl Fn(&RunView) -> bool,
    what: &'static str,
) -> Result<RunView, EngineError> {
    let target = &whole_run_id(store, target)?;
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

/// The latest run of the deployment `target` names (or the run it names)
/// that was started from a spec file.
pub fn run_with_spec(store: &dyn EventStore, target: &str) -> Result<RunView, EngineError> {
    find_run(store, target, |r| r.spec_path.is_some(), "run with a spec")
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
