//! `fabrik rollback NAME --to RUN`: back to an earlier release.
//!
//! The journal already holds every release: each successful apply left the
//! state it made each resource match (no secret values, fingerprints
//! only). Folding the deployment's events up to the end of that run gives
//! the world it converged to; an apply towards that world, with today's
//! secrets, is the way back. The spec file is not touched: the next
//! `fabrik apply` of it brings the deployment forward again.

use std::ops::ControlFlow;

use super::{Prepared, spec_of};
use crate::engine::EngineError;
use crate::engine::LookupError;
use crate::engine::desired::{APP_KEY, World};
use crate::engine::resource::app::state::{self as app_state, AppState};
use crate::engine::resource::decode;
use crate::engine::resource::dns::{RecordState, RecordWant};
use crate::engine::resource::monitor::{MonitorState, MonitorWant};
use crate::event::{ResourceKind, RunCommand, RunOutcome};
use crate::id::{DeploymentId, RunId};
use crate::projection::{DeploymentView, RunView};
use crate::store::{EventStore, Scan};

/// An earlier release, ready to be applied.
#[derive(Debug)]
pub struct Release {
    /// The run whose result is restored.
    pub run: RunView,
    /// The spec (today's file: secrets, credentials, policies) with the
    /// release's world in place of the spec's.
    pub prepared: Prepared,
    /// Env vars whose secrets have other values today than in that run
    /// (rebuilt with today's values).
    pub changed_secrets: Vec<String>,
}

/// Finds run `to` of `deployment`, checks it is a release (an apply that
/// succeeded) and prepares its world.
pub fn release(
    store: &dyn EventStore,
    deployment: &str,
    to: &str,
    env_vars: &[(String, String)],
) -> Result<Release, EngineError> {
    let deployment =
        DeploymentId::new(deployment).map_err(|_| LookupError::BadTarget(deployment.to_owned()))?;
    // A prefix is looked for among this deployment's runs; a whole id
    // anywhere, so that a run of another deployment is named as such.
    let run = match to.parse::<RunId>() {
        Ok(id) => store
            .run(&id)?
            .ok_or_else(|| LookupError::NoRun(id.clone()))?,
        Err(_) => super::run_by_id(store, to, Some(&deployment))?
            .ok_or_else(|| LookupError::NoRunPrefix(to.to_owned()))?,
    };
    let id = run.run.clone();
    if run.deployment != deployment {
        return Err(EngineError::Refused {
            message: format!(
                "run {id} is a run of {}, not of {deployment}",
                run.deployment
            ),
            hint: format!("`fabrik history {deployment}` lists this deployment's runs"),
        });
    }
    if run.command != RunCommand::Apply || run.outcome != Some(RunOutcome::Succeeded) {
        let what = match run.outcome {
            Some(o) => format!("a {} that ended {o}", run.command),
            None => format!("a {} that has not ended", run.command),
        };
        return Err(EngineError::Refused {
            message: format!(
                "run {id} is {what}; only an apply that succeeded is a release to go back to"
            ),
            hint: format!(
                "`fabrik history {deployment}` lists the runs; pick one whose outcome is succeeded"
            ),
        });
    }
    let view = view_after(store, &run)?;
    let latest = store
        .runs(&deployment)?
        .into_iter()
        .rev()
        .find(|r| r.command == RunCommand::Apply && r.spec_path.is_some())
        .ok_or(LookupError::NoSpec(id.clone()))?;
    let loaded = spec_of(&latest)?;
    let mut prepared = Prepared::new(loaded, env_vars)?;
    let changed_secrets = restore_world(&mut prepared, &view, &run)?;
    Ok(Release {
        run,
        prepared,
        changed_secrets,
    })
}

/// The deployment as the journal saw it when `run` ended.
fn view_after(store: &dyn EventStore, run: &RunView) -> Result<DeploymentView, EngineError> {
    let mut view = DeploymentView::new(run.deployment.clone());
    let mut runs = std::collections::BTreeMap::new();
    let mut failed = None;
    store.scan(
        &Scan {
            deployment: Some(run.deployment.clone()),
            run: None,
            until_seq: Some(run.last_seq),
        },
        &mut |stored| match stored.into_recorded() {
            Ok(e) => {
                crate::projection::apply_to(&mut view, &mut runs, &e);
                ControlFlow::Continue(())
            }
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        },
    )?;
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(view),
    }
}

/// Puts the world `view` shows in `prepared` (what each live resource was
/// made to match, its digest, and the run's total), keeping today's
/// deployment settings (timeouts, policies). Returns the env vars whose
/// secrets changed since.
fn restore_world(
    prepared: &mut Prepared,
    view: &DeploymentView,
    run: &RunView,
) -> Result<Vec<String>, EngineError> {
    let current = &prepared.world;
    let mut digests = current.digests.clone();
    digests.records.clear();
    digests.monitors.clear();
    digests.total = run.spec_hash.unwrap_or(digests.total);
    let mut world = World {
        records: Vec::new(),
        monitors: Vec::new(),
        ..current.clone()
    };
    let mut changed = Vec::new();
    let mut app_found = false;
    for r in view.resources.values().filter(|r| r.exists()) {
        let hash = r.desired_hash.unwrap_or_default();
        match r.kind {
            ResourceKind::Application if r.key.as_str() == APP_KEY => {
                let Some(state) = decode::<AppState>(r)? else {
                    continue;
                };
                let (app, drifted) = app_state::from_state(&state, &prepared.secrets)?;
                world.app = app;
                world.app_state = state;
                digests.app = hash;
                changed = drifted;
                app_found = true;
            }
            ResourceKind::DnsRecord => {
                if let Some(state) = decode::<RecordState>(r)? {
                    digests.records.insert(r.key.as_str().to_owned(), hash);
                    world
                        .records
                        .push(RecordWant::from_state(r.key.clone(), state));
                }
            }
            ResourceKind::Monitor => {
                if let Some(state) = decode::<MonitorState>(r)? {
                    digests.monitors.insert(r.key.as_str().to_owned(), hash);
                    world
                        .monitors
                        .push(MonitorWant::from_state(r.key.clone(), state));
                }
            }
            _ => {}
        }
    }
    if !app_found {
        return Err(EngineError::Refused {
            message: format!("the journal holds no application state for run {}", run.run),
            hint: "pick a later run: `fabrik history` lists them".to_owned(),
        });
    }
    world.zone = world.records.first().map(|r| r.state.zone.clone());
    world.digests = digests;
    prepared.world = world;
    Ok(changed)
}
