//! What refuses an apply before anything is generated or journaled: a
//! deployment bound to another spec, a generated secret whose value
//! vanished; and whether the application must be deployed again although
//! nothing differs.

use crate::engine::command::Prepared;
use crate::engine::desired::APP_KEY;
use crate::engine::{EngineError, Request};
use crate::event::{ResourceKey, RunCommand};
use crate::id::DeploymentId;
use crate::projection::ResourceStatus;
use crate::spec::Loaded;
use crate::store::EventStore;

/// Whether the last run that changed (or deployed) the application did not
/// see a deployment of it finish, and the application is still there: the
/// run failed with `--no-rollback`, or its policy kept the application. It
/// must be deployed again even when nothing in the spec differs.
pub(super) fn undeployed_app(
    store: &dyn EventStore,
    deployment: &DeploymentId,
) -> Result<bool, EngineError> {
    let Some(view) = store.deployment(deployment)? else {
        return Ok(false);
    };
    let key = ResourceKey::new(APP_KEY);
    let present = view
        .resources
        .get(&key)
        .is_some_and(|r| r.status == ResourceStatus::Present);
    if !present {
        return Ok(false);
    }
    let runs = store.runs(deployment)?;
    let last = runs
        .iter()
        .rev()
        .find(|r| r.created.contains(&key) || r.updated.contains(&key) || r.deploy.is_some());
    Ok(last
        .is_some_and(|r| r.deploy.as_ref().and_then(|d| d.status.as_deref()) != Some("finished")))
}

/// Refuses to generate a new value for a secret an earlier run of the
/// deployment already had, unless `rotate` names it: its `.env` entry
/// vanished (a fresh checkout, a deleted file), and a new value would lock
/// the application out of what the old one opened (its database).
fn refuse_silent_rotation(
    store: &dyn EventStore,
    loaded: &Loaded,
    env_vars: &[(String, String)],
    rotate: &[String],
) -> Result<(), EngineError> {
    let preview = Prepared::preview(loaded.clone(), env_vars)?;
    let would_generate: Vec<&String> = preview
        .secrets
        .generated()
        .iter()
        .filter(|n| !rotate.contains(n))
        .collect();
    if would_generate.is_empty() {
        return Ok(());
    }
    let mut had = std::collections::BTreeSet::new();
    for run in store.runs(&loaded.spec.name)? {
        had.extend(run.secrets.into_keys());
    }
    let lost: Vec<&str> = would_generate
        .into_iter()
        .filter(|n| had.contains(*n))
        .map(String::as_str)
        .collect();
    if lost.is_empty() {
        return Ok(());
    }
    Err(EngineError::Refused {
        message: format!(
            "the value of {} is in neither the environment nor {}, but earlier runs of {} had one: a new value would replace it",
            lost.join(", "),
            loaded.default_dotenv().display(),
            loaded.spec.name
        ),
        hint: format!(
            "put the old value back (set it in the environment, or as `{}=...` in {}); to replace it on purpose, apply with {}",
            lost[0],
            loaded.default_dotenv().display(),
            lost.iter()
                .map(|n| format!("--rotate {n}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    })
}

/// Refuses to apply a spec to a deployment that another spec applied last
/// (two spec files with the same `name`): they would overwrite each
/// other's resources.
fn bound_elsewhere(
    store: &dyn EventStore,
    deployment: &DeploymentId,
    spec_id: &str,
) -> Result<(), EngineError> {
    let runs = store.runs(deployment)?;
    let Some(last) = runs
        .iter()
        .rev()
        .find(|r| r.command == RunCommand::Apply && r.options.spec_id.is_some())
    else {
        return Ok(());
    };
    let bound = last.options.spec_id.as_deref().unwrap_or_default();
    if bound == spec_id {
        return Ok(());
    }
    Err(EngineError::Refused {
        message: format!(
            "deployment {deployment} belongs to the spec {bound} (its last apply, run {}), not to {spec_id}: two specs with the same `name` would overwrite each other's resources",
            last.run
        ),
        hint: format!(
            "give each spec its own `name`, or declare `environments:` in one spec for staging and production (docs/environments.md); if {spec_id} is now the spec of {deployment} (it moved), apply it with `--take-over`"
        ),
    })
}

/// What refuses an apply before any secret is generated or any journal
/// entry made: another spec's deployment (unless `take_over`), and a
/// generated secret that vanished (unless rotated on purpose).
pub fn refusals(
    base: &Request,
    loaded: &Loaded,
    take_over: bool,
    rotate: &[String],
) -> Result<(), EngineError> {
    if !take_over {
        let spec_id = crate::engine::command::spec_identity(&loaded.path);
        bound_elsewhere(base.store.as_ref(), &loaded.spec.name, &spec_id)?;
    }
    refuse_silent_rotation(base.store.as_ref(), loaded, &base.env_vars, rotate)
}
