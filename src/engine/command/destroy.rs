//! `fabrik destroy`: deletes everything a deployment owns, side by side.
//! Running it again after a partial failure finishes the job.

use std::path::Path;

use futures_util::StreamExt as _;

use super::rollback::{Stopped, stopped};
use super::{Prepared, load_spec, run_with_spec, spec_of, spec_path_text, view};
use crate::engine::desired::World;
use crate::engine::preflight;
use crate::engine::resource::{self, Doomed};
use crate::engine::run::{End, Run, Started};
use crate::engine::{Ctx, EngineError, LookupError, Report, Request, with};
use crate::event::{ResourceKey, RunCommand, RunOptions, RunOutcome, RunState};
use crate::projection::ResourceStatus;

/// `fabrik destroy SPEC|DEPLOYMENT`.
pub async fn destroy(mut req: Request, target: &str) -> Result<Report, EngineError> {
    let path = Path::new(target);
    let loaded = if path.is_file() {
        load_spec(path, req.environment.as_deref())?
    } else {
        let run = run_with_spec(req.store.as_ref(), target)?;
        spec_of(&run)?
    };
    let deployment = loaded.spec.name.clone();
    if view(req.store.as_ref(), &deployment)?.run_count == 0 {
        return Err(LookupError::NoDeployment(deployment).into());
    }
    let prepared = Prepared::for_deletes(loaded, &req.env_vars)?;
    let started = Started {
        command: RunCommand::Destroy,
        verb: "destroy",
        spec_path: Some(spec_path_text(&prepared.loaded.path)),
        spec_hash: None,
        options: RunOptions {
            sandbox: req.connect.is_sandbox(),
            ..RunOptions::default()
        },
    };
    let mut run = Run::start(&mut req, &deployment, started)?;
    run.advance(RunState::Destroying)?;
    let view = with(&run.journal, |r| r.view().clone());
    let result = async {
        let connected =
            preflight::connect(&run.journal, req.connect.as_ref(), prepared.scope(&view))
                .await
                .map_err(|(e, _)| e)?;
        run.notify_to(connected.remote.providers.notifiers.clone());
        destroy_all(&run.ctx(&connected, &req.interrupt), &prepared.world).await
    }
    .await;
    let end = match result {
        Ok(deleted) => End::new(
            RunOutcome::Destroyed,
            format!(
                "{deployment} destroyed: {} deleted",
                crate::text::count(deleted.len(), "resource")
            ),
        )
        .journaling("destroyed")
        .with_changes(deleted.iter().map(|k| format!("{k}: delete")).collect()),
        Err(e) => stopped(
            &run,
            e,
            &req.interrupt,
            Stopped {
                what: "destroy ".to_owned(),
                failed: "destroy ".to_owned(),
                retry: format!("fabrik destroy {deployment}"),
            },
        ),
    };
    run.finish(end).await
}

/// Deletes every resource of the deployment that exists (or may exist: a
/// create whose outcome was never recorded is looked up by its mark),
/// except DNS records the spec adopts: those stay where they were found.
pub async fn destroy_all(ctx: &Ctx<'_>, world: &World) -> Result<Vec<ResourceKey>, EngineError> {
    let view = ctx.view();
    let adopted = |r: &crate::projection::ResourceView| {
        r.kind == crate::event::ResourceKind::DnsRecord
            && crate::engine::resource::decode::<crate::engine::resource::dns::RecordState>(r)
                .ok()
                .flatten()
                .is_some_and(|s| s.adopt)
    };
    let mut targets: Vec<_> = view
        .resources
        .values()
        .filter(|r| {
            matches!(r.status, ResourceStatus::Present)
                || (r.status == ResourceStatus::Pending && r.pending.is_some())
        })
        .filter(|r| !adopted(r))
        .collect();
    targets.sort_by_key(|r| std::cmp::Reverse((r.kind.creation_rank(), r.key.clone())));
    // Nothing left depends on anything: every delete at once (within the
    // pace's bound), each journaled as it ends; a failure stops none of
    // the others, and the first (in the order above) is reported.
    let results: Vec<Result<ResourceKey, EngineError>> = futures_util::stream::iter(targets)
        .map(|r| async move {
            let mark = r
                .mark
                .clone()
                .or_else(|| r.pending.as_ref().and_then(|p| p.mark.clone()));
            let doomed = Doomed {
                key: &r.key,
                view: Some(r),
                remote_id: r.remote_id.as_deref(),
                owner: mark.as_ref(),
            };
            resource::of(r.kind).delete(ctx, world, doomed).await?;
            Ok(r.key.clone())
        })
        .buffered(ctx.remote.pace.parallel.max(1))
        .collect()
        .await;
    results.into_iter().collect()
}
