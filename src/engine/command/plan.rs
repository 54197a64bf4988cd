//! `fabrik plan`: what apply would do, from the journal and, by default,
//! from what the remote side shows (drift). A plan saved to a file
//! ([`SavedPlan`]) is what `fabrik apply FILE` carries out, and nothing
//! else: it is refused when the spec or the journal moved since.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Prepared;
use super::refresh::observe;
use crate::engine::desired::World;
use crate::engine::recorder::{Quiet, Recorder};
use crate::engine::{Connected, EngineError, Journal, Request, preflight};
use crate::event::ResourceKey;
use crate::id::{DeploymentId, Digest, StreamVersion};
use crate::plan::{self, Observed, Plan};
use crate::projection::DeploymentView;

/// What the remote side showed, by resource.
pub type Observations = BTreeMap<ResourceKey, Observed>;

/// A plan and what it was made from.
#[derive(Debug)]
pub struct Planned {
    /// The plan.
    pub plan: Plan,
    /// What refresh found (`None`: not refreshed).
    pub observed: Option<Observations>,
    /// The deployment's stream version the plan was made at.
    pub version: StreamVersion,
    /// Whether the deployment has a journal at all.
    pub known: bool,
    /// The connection refresh made, kept for the run that follows.
    pub connected: Option<Connected>,
}

/// A plan as a person approved it (on a terminal, or as a saved file):
/// apply carries out exactly this, or refuses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approved {
    /// The spec's desired-state digest (secrets as fingerprints).
    pub spec_hash: Digest,
    /// The deployment's stream version when it was planned.
    pub version: StreamVersion,
    /// What refresh found then.
    pub observed: Option<Observations>,
}

/// `fabrik plan -o FILE`: the plan, and what apply needs to carry it out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Always `saved_plan`: how a file is told from a spec.
    pub kind: String,
    /// The format's version.
    pub format: u32,
    /// The spec, as an absolute path.
    pub spec: String,
    /// The deployment.
    pub deployment: DeploymentId,
    /// What apply checks and uses.
    pub approved: Approved,
    /// The plan, as `fabrik plan` showed it.
    pub plan: Plan,
}

impl SavedPlan {
    /// The `kind` of a saved plan file.
    pub const KIND: &'static str = "saved_plan";

    /// A saved form of `planned` for the spec at `spec`.
    pub fn new(spec: String, planned: &Planned) -> Self {
        Self {
            kind: Self::KIND.to_owned(),
            format: 1,
            spec,
            deployment: planned.plan.deployment.clone(),
            approved: planned.approved(),
            plan: planned.plan.clone(),
        }
    }

    /// Reads a saved plan; `None` when `text` is not one (a spec, say).
    pub fn parse(text: &str) -> Option<Result<Self, serde_json::Error>> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        if v.get("kind").and_then(|k| k.as_str()) != Some(Self::KIND) {
            return None;
        }
        Some(serde_json::from_value(v))
    }
}

impl Approved {
    /// Refuses when the spec (`spec_hash`, secrets included) or the
    /// deployment's journal (`version`) moved since the plan was made.
    pub fn check(
        &self,
        spec_hash: Digest,
        version: StreamVersion,
        spec: &std::path::Path,
    ) -> Result<(), EngineError> {
        if spec_hash != self.spec_hash {
            return Err(EngineError::Refused {
                message: format!(
                    "{} (or a secret it uses) changed since the plan was made",
                    spec.display()
                ),
                hint: "make the plan again (`fabrik plan SPEC -o FILE`) and review it".to_owned(),
            });
        }
        if version != self.version {
            return Err(EngineError::Refused {
                message: format!(
                    "the deployment's journal moved since the plan was made (event {} then, {} now): another run happened",
                    self.version.0, version.0
                ),
                hint: "make the plan again (`fabrik plan SPEC -o FILE`) and review it".to_owned(),
            });
        }
        Ok(())
    }
}

impl Planned {
    /// The approval of this plan.
    pub fn approved(&self) -> Approved {
        Approved {
            spec_hash: self.plan.spec_hash,
            version: self.version,
            observed: self.observed.clone(),
        }
    }
}

/// Whether refresh has anything to look at: resources the journal says
/// exist.
fn worth_refreshing(view: &DeploymentView) -> bool {
    view.resources.values().any(|r| r.exists())
}

/// A journal for work outside a run (nothing is appended through it).
fn scratch(req: &Request, view: &DeploymentView) -> Journal {
    std::sync::Arc::new(std::sync::Mutex::new(Recorder::scratch(
        view.clone(),
        req.clock.clone(),
        Box::new(Quiet),
    )))
}

/// Connects and looks at every resource the journal says exists, for
/// `world` (the spec's, its record keys aligned with `view`).
pub async fn refresh(
    req: &Request,
    prepared: &Prepared,
    world: &World,
    view: &DeploymentView,
) -> Result<(Observations, Connected), EngineError> {
    let journal = scratch(req, view);
    let mut connected = preflight::connect(&journal, req.connect.as_ref(), prepared.scope(view))
        .await
        .map_err(|(e, _)| e)?;
    // The scratch journal is not the journal: the marks of what a run
    // handed this connection creates name the real one.
    connected.journal = Some(req.store.journal_id()?.tag());
    let run = crate::id::RunId::generate();
    let ctx = connected.ctx(&journal, &view.deployment, &run, &req.interrupt);
    crate::engine::resource::app::refuse_unchangeable(&ctx, world).await?;
    let observed = observe(&ctx, world).await?;
    Ok((observed, connected))
}

/// Plans an apply of `prepared`: from the journal, and with `refresh`
/// from what the remote side shows.
pub async fn plan(
    req: &Request,
    prepared: &Prepared,
    refresh: bool,
) -> Result<Planned, EngineError> {
    let stored = req.store.deployment(&prepared.world.deployment)?;
    let known = stored.is_some();
    let view = stored.unwrap_or_else(|| DeploymentView::new(prepared.world.deployment.clone()));
    // Record sets keep the keys the journal gave them.
    let mut world = prepared.world.clone();
    world.align_keys(Some(&view));
    let world = &world;
    let (observed, connected) = if refresh && worth_refreshing(&view) {
        let (o, c) = self::refresh(req, prepared, world, &view).await?;
        (Some(o), Some(c))
    } else {
        (None, None)
    };
    let plan = plan::plan(
        &world.deployment,
        world.digests.total,
        &world.desired(),
        Some(&view),
        observed.as_ref(),
        world.policies,
    );
    Ok(Planned {
        plan,
        observed,
        version: view.version,
        known,
        connected,
    })
}
