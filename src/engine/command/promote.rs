//! `fabrik promote NAME --from ENV --to ENV`: deploy to one environment
//! the image another one verified.
//!
//! What the source environment verified is the image digest its last run
//! journaled (`image_resolved`), when that run was an apply that
//! succeeded. The target environment is applied from the same spec file,
//! with its own overrides, and its image pinned to that digest; the run
//! journals where the release came from (`run_started.options.promoted_from`).
//! Refused, before anything is written, when the release was never
//! verified there: the source never applied, its last run did not
//! succeed, its digest is unknown, the spec changed since beyond
//! environment overrides (the hash of its shared part), or the target
//! deploys another image.

use super::{Prepared, load_spec};
use crate::engine::{EngineError, LookupError};
use crate::event::{Promotion, RunCommand, RunOutcome};
use crate::id::{DeploymentId, ImageRef};
use crate::projection::RunView;
use crate::spec::model::AppSource;
use crate::store::EventStore;

/// A promotion ready to be applied.
#[derive(Debug)]
pub struct Promoted {
    /// Where the release was verified.
    pub promotion: Promotion,
    /// The image the source run resolved (`ghcr.io/acme/web:1.4.2`).
    pub image: String,
    /// The spec in the target environment, its image pinned to the digest.
    pub prepared: Prepared,
}

fn refused(message: String, hint: String) -> EngineError {
    EngineError::Refused { message, hint }
}

/// Finds what `name@from` verified last and prepares `name@to` with it.
pub fn promotion(
    store: &dyn EventStore,
    name: &str,
    from: &str,
    to: &str,
    env_vars: &[(String, String)],
) -> Result<Promoted, EngineError> {
    let base = DeploymentId::new(name).map_err(|_| LookupError::BadTarget(name.to_owned()))?;
    if base.environment().is_some() {
        return Err(refused(
            format!("{name} names one environment's deployment; promote takes the spec's name"),
            format!("`fabrik promote {} --from {from} --to {to}`", base.base()),
        ));
    }
    let at = |env: &str| {
        base.in_environment(env).map_err(|e| {
            refused(
                e.to_string(),
                "environment names are lower-case letters, digits and hyphens".to_owned(),
            )
        })
    };
    let (source, target) = (at(from)?, at(to)?);
    if from == to {
        return Err(refused(
            format!(
                "--from and --to are both {from}: a promotion goes from one environment to another"
            ),
            format!("to deploy {source} again, `fabrik -e {from} redeploy {name}`"),
        ));
    }
    let runs = store.runs(&source)?;
    let apply_source = "apply it there first, e.g. `fabrik -e ".to_owned() + from + " apply SPEC`";
    // A run that found nothing to do changed nothing: the one before it
    // made what the source runs.
    let Some(last) = runs
        .iter()
        .rev()
        .find(|r| !(r.command == RunCommand::Apply && r.outcome == Some(RunOutcome::NoChanges)))
    else {
        return Err(refused(
            format!("{source} was never applied: the release was never in {from}"),
            apply_source,
        ));
    };
    verified(last, &source, from)?;
    let spec_path = last
        .spec_path
        .as_deref()
        .ok_or_else(|| LookupError::NoSpec(last.run.clone()))?;
    let mut loaded = load_spec(std::path::Path::new(spec_path), Some(to))?;
    if loaded.spec.name != target {
        return Err(refused(
            format!(
                "{spec_path} names deployment {} in {to}, not {target}",
                loaded.spec.name
            ),
            format!("promote the deployment the spec names, or apply {from} from this spec first"),
        ));
    }
    match last.options.shared_hash {
        Some(h) if h == loaded.shared_hash => {}
        Some(_) => {
            return Err(refused(
                format!(
                    "{spec_path} changed since run {} of {source} verified it, beyond what `environments` overrides: {to} would not get what {from} verified",
                    last.run
                ),
                format!(
                    "apply {from} with the spec as it is now (`fabrik -e {from} apply {spec_path}`), then promote"
                ),
            ));
        }
        None => {
            return Err(refused(
                format!(
                    "run {} of {source} journaled no hash of its spec, so fabrik cannot tell that the spec is still the one it verified",
                    last.run
                ),
                format!("apply {from} again (`fabrik -e {from} apply {spec_path}`), then promote"),
            ));
        }
    }
    let wanted = match &loaded.spec.app.source {
        AppSource::Image(image) => image.clone(),
        AppSource::Git(_) => {
            return Err(refused(
                format!(
                    "{target} builds from git: promotion deploys a verified image, and a git application's commit is not journaled yet"
                ),
                format!("pin the commit in the spec (`app.git.commit`) and apply {to} with it"),
            ));
        }
        other => {
            return Err(refused(
                format!(
                    "{target} is a {} application: only images can be promoted",
                    other.key()
                ),
                format!("apply {to} with its spec (`fabrik -e {to} apply {spec_path}`)"),
            ));
        }
    };
    let image = last.image.as_ref().ok_or_else(|| {
        refused(
            format!(
                "run {} of {source} journaled no image digest: its application is not an image, or it was made by an earlier fabrik",
                last.run
            ),
            format!("apply {from} again so that it journals the digest it deploys, then promote"),
        )
    })?;
    let digest = image.digest.clone().ok_or_else(|| {
        refused(
            format!(
                "run {} of {source} could not learn the digest of {}: {}",
                last.run,
                image.image,
                image.error.as_deref().unwrap_or("no reason journaled")
            ),
            format!("make the image readable in its registry and apply {from} again, then promote"),
        )
    })?;
    let same_image = match (ImageRef::parse(&wanted), ImageRef::parse(&image.image)) {
        (Some(w), Some(v)) => w.name() == v.name(),
        _ => false,
    };
    if !same_image {
        return Err(refused(
            format!(
                "{target} deploys {wanted}, but run {} of {source} verified {}: that release was never in {from}",
                last.run, image.image
            ),
            format!(
                "give {from} and {to} the same image (only its tag may differ) and apply {from} first"
            ),
        ));
    }
    // The name as the spec writes it, its tag replaced by the digest.
    let (written, _) = crate::engine::resource::app::state::split_image(&wanted);
    let written = written.trim_end_matches("@sha256");
    loaded.spec.app.source = AppSource::Image(format!("{written}@{digest}"));
    let prepared = Prepared::new(loaded, env_vars)?;
    Ok(Promoted {
        promotion: Promotion {
            deployment: source,
            run: last.run.clone(),
            digest,
        },
        image: image.image.clone(),
        prepared,
    })
}

/// Refuses a source run that is not an apply that succeeded.
fn verified(last: &RunView, source: &DeploymentId, from: &str) -> Result<(), EngineError> {
    if last.command == RunCommand::Apply && last.outcome == Some(RunOutcome::Succeeded) {
        return Ok(());
    }
    let article = match last.command {
        RunCommand::Apply | RunCommand::Admin => "an",
        RunCommand::Destroy | RunCommand::Rollback => "a",
    };
    let what = match last.outcome {
        Some(o) => format!("{article} {} that ended {o}", last.command),
        None => format!("{article} {} that has not ended", last.command),
    };
    Err(refused(
        format!(
            "the last run of {source} ({}) is {what}: what {from} runs now was not verified",
            last.run
        ),
        format!(
            "apply {from} until it succeeds (`fabrik history {source}` shows what happened), then promote"
        ),
    ))
}
