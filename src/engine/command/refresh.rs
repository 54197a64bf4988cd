//! `--refresh`: what the remote side shows of every resource the journal
//! says exists, for the planner to see drift.

use std::collections::BTreeMap;

use futures_util::StreamExt as _;

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
    let looked: Vec<_> = futures_util::stream::iter(
        view.live_resources()
            .into_iter()
            .filter(|r| r.remote_id.is_some() && r.status == ResourceStatus::Present),
    )
    // Independent reads: side by side, the first error in journal order.
    .map(|r| async move {
        let seen = resource::of(r.kind).observe(ctx, world, r).await?;
        Ok::<_, EngineError>(seen.map(|seen| (r.key.clone(), seen)))
    })
    .buffered(ctx.remote.pace.parallel.max(1))
    .collect()
    .await;
    let mut out = BTreeMap::new();
    for seen in looked {
        out.extend(seen?);
    }
    Ok(out)
}
