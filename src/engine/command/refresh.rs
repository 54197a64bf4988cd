//! `--refresh`: what the remote side shows of every resource the journal
//! says exists, for the planner to see drift.

use std::collections::BTreeMap;

use crate::engine::desired::World;
use crate::engine::resource;
use crate::engine::{Ctx, EngineError};
use crate::event::ResourceKey;
use crate::plan::Observed;
use crate::projection::ResourceStatus;

/// Looks at every resource the journal says exists and reports what the
/// remote side shows of it (gone, in sync, or drifted).
pub async fn observe(
    ctx: &Ctx<'_>,
    world: &World,
) -> Result<BTreeMap<ResourceKey, Observed>, EngineError> {
    let view = ctx.view();
    let mut out = BTreeMap::new();
    for r in view.live_resources() {
        if r.remote_id.is_none() || r.status != ResourceStatus::Present {
            continue;
        }
        if let Some(seen) = resource::of(r.kind).observe(ctx, world, r).await? {
            out.insert(r.key.clone(), seen);
        }
    }
    Ok(out)
}
