//! What a name already holds, looked at before a record is created: the
//! identical record that is ours is used, one of no one is adopted when
//! the spec says so, and anything else that would change what the name
//! answers is refused, naming its owner and how to get it out of the way.

use futures_util::StreamExt as _;

use super::{KIND, RecordWant, dns, want_of, zone};
use crate::engine::desired::World;
use crate::engine::{Ctx, EngineError, with};
use crate::plan::StepAction;
use crate::provider::{RecordType, RemoteRecord};

/// The remote ids of the records this journal knows (that exist, or may).
pub(super) fn known_ids(ctx: &Ctx<'_>) -> Vec<String> {
    ctx.view()
        .resources
        .values()
        .filter(|r| r.kind == KIND)
        .filter_map(|r| r.remote_id.clone())
        .collect()
}

/// Whether a record of `theirs` beside a new record of `ours` at one name
/// changes what the name answers: another content in the same set (a
/// second A splits traffic, a second SPF TXT breaks SPF), or the CNAME
/// rule Cloudflare enforces (81053/81054, cloudflare notes §1).
pub(super) fn clashes(ours: RecordType, theirs: &str) -> bool {
    let theirs = RecordType::parse(theirs);
    theirs == Some(ours)
        || matches!(
            (ours, theirs),
            (RecordType::Cname, Some(RecordType::A | RecordType::Aaaa))
                | (RecordType::A | RecordType::Aaaa, Some(RecordType::Cname))
        )
}

/// How a record that already exists is described.
pub(super) fn describe(r: &RemoteRecord) -> String {
    format!(
        "{} {} {}",
        r.kind,
        r.name,
        crate::text::printable_line(&r.content)
    )
}

/// Who a record belongs to, for a refusal.
fn whose(r: &RemoteRecord) -> String {
    match &r.mark {
        Some(m) => m.owner(),
        None => "no one: it has no Fabrik mark (made by hand?)".to_owned(),
    }
}

/// How to get a record marked by another owner out of the way: another
/// deployment of this journal (the spec's `name` changed?) is destroyed
/// by name; another journal's is removed from there.
fn owner_hint(ctx: &Ctx<'_>, r: &RemoteRecord) -> String {
    let Some(m) = &r.mark else {
        return "delete it in Cloudflare, or add it to the spec with `adopt: true` (and remove it from the spec to have fabrik delete it)".to_owned();
    };
    let this_journal = match (&m.journal, ctx.journal_tag) {
        (Some(j), Some(ours)) => j == ours,
        (None, _) => true,
        (Some(_), None) => false,
    };
    let known = with(ctx.journal, |rec| {
        rec.store()
            .deployments()
            .map(|ds| ds.contains(&m.deployment))
            .unwrap_or(false)
    });
    if m.deployment != *ctx.deployment && this_journal && known {
        format!(
            "deployment {} in this journal made it; if the spec's `name` was {} before, `fabrik destroy {}` removes the old deployment first (or put the old name back)",
            m.deployment, m.deployment, m.deployment
        )
    } else {
        "it is managed from another journal or deployment: remove it there first".to_owned()
    }
}

/// What to do with a record to create, after looking at what the name
/// already holds.
pub(super) enum Before {
    /// Nothing in the way: create it.
    Create,
    /// The identical record is this deployment's in this journal: use it.
    Found(RemoteRecord),
    /// The identical record is no one's and the spec adopts it.
    Adopt(RemoteRecord),
}

/// Looks at the records at the name before a create: an identical record
/// that is ours is used, one of no one is adopted when the spec says so,
/// anything else that would change what the name answers is refused with
/// its owner named.
pub(super) async fn look_before(ctx: &Ctx<'_>, want: &RecordWant) -> Result<Before, EngineError> {
    let (dns, zone) = (dns(ctx)?, zone(ctx)?);
    let d = &want.desired;
    let at_name = dns
        .records_at(zone, &d.name)
        .await
        .map_err(|e| EngineError::provider(format!("looking up {}", d.name), e))?;
    let known = known_ids(ctx);
    let ours = |r: &RemoteRecord| ctx.is_ours(r.mark.as_ref()) || known.contains(&r.id);
    let same = at_name
        .iter()
        .find(|r| r.kind == d.kind.as_str() && d.kind.same(&r.content, &d.content));
    if let Some(r) = same {
        if ours(r) {
            return Ok(Before::Found(r.clone()));
        }
        if r.mark.is_none() && d.adopt {
            return Ok(Before::Adopt(r.clone()));
        }
        let hint = if r.mark.is_none() {
            "set `adopt: true` on this record in the spec to take it over (an adopted record is never deleted by a rollback, and `fabrik destroy` leaves it), or delete it in Cloudflare".to_owned()
        } else {
            owner_hint(ctx, r)
        };
        return Err(EngineError::Refused {
            message: format!(
                "{}: the record {} ({}) already exists and belongs to {}",
                want.key,
                describe(r),
                r.id,
                whose(r)
            ),
            hint,
        });
    }
    if let Some(r) = at_name
        .iter()
        .find(|r| !ours(r) && clashes(d.kind, &r.kind))
    {
        return Err(EngineError::Refused {
            message: format!(
                "{}: {} already holds {} ({}), which belongs to {}; both would answer",
                want.key,
                d.name,
                describe(r),
                r.id,
                whose(r)
            ),
            hint: owner_hint(ctx, r),
        });
    }
    Ok(Before::Create)
}

/// Before any change of a run: every record the plan creates is looked at
/// as its create will (see [`create`]), so that a record in the way stops
/// the run before it changes anything.
pub async fn check_creates(
    ctx: &Ctx<'_>,
    world: &World,
    plan: &crate::plan::Plan,
) -> Result<(), EngineError> {
    if ctx.remote.providers.dns.is_none() || ctx.zone.is_none() {
        return Ok(());
    }
    // A record the plan deletes first (a type change) is not in the way.
    let doomed: Vec<String> = plan
        .steps_of(KIND)
        .filter(|s| s.action == StepAction::Delete)
        .filter_map(|s| s.remote_id.clone())
        .collect();
    let wants = plan
        .steps_of(KIND)
        .filter(|s| s.action == StepAction::Create)
        .map(|step| want_of(world, &step.key))
        .collect::<Result<Vec<_>, _>>()?;
    // The names are independent: looked at side by side (the provider
    // keeps what each held for the create that follows).
    let looked: Vec<_> = futures_util::stream::iter(&wants)
        .map(|want| look_before(ctx, want))
        .buffered(ctx.remote.pace.parallel.max(1))
        .collect()
        .await;
    for result in looked {
        match result {
            Err(EngineError::Refused { message, .. })
                if doomed.iter().any(|id| message.contains(id.as_str())) => {}
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    Ok(())
}
