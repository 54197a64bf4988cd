//! One change to one remote resource, bracketed in the journal: an intent
//! event is durable before the provider call, an outcome event (with the
//! remote id) after it. Written once here for every resource kind.
//!
//! A create whose outcome is unknown (the request may have reached the
//! server) is never blindly repeated: the resource is looked up by this
//! run's ownership mark first, adopted if it is there, and created again
//! only if it is not, within the run's retry limit; each such attempt is
//! journaled as `attempt_failed`, like the HTTP layer's retries. A delete
//! of something already gone is journaled as such. A create of several
//! calls that fails after the first one made the resource (a monitor
//! added, then not tagged) is journaled as created, incomplete: it is
//! owned by the run and undone by its rollback, never taken for absent.

use std::future::Future;

use super::{Ctx, EngineError, note, record, scrub};
use crate::event::{
    Action, AttemptFailed, Event, ResourceCreated, ResourceDeleted, ResourceFailed, ResourceIntent,
    ResourceKey, ResourceKind, ResourceUpdated,
};
use crate::failpoint;
use crate::id::Digest;
use crate::ownership::OwnershipMark;
use crate::provider::{DeleteOutcome, ProviderError};

/// The resource a bracket is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// Its key.
    pub key: &'a ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
}

impl Subject<'_> {
    /// Journals an intent, after a last check for Ctrl-C.
    pub fn intent(
        &self,
        ctx: &Ctx<'_>,
        action: Action,
        remote_id: Option<String>,
        desired: Option<serde_json::Value>,
        hash: Option<Digest>,
        mark: Option<OwnershipMark>,
    ) -> Result<(), EngineError> {
        ctx.check_interrupt()?;
        record(
            ctx.journal,
            Event::ResourceIntent(ResourceIntent {
                resource: self.key.clone(),
                kind: self.kind,
                action,
                remote_id,
                desired,
                desired_hash: hash,
                mark,
            }),
        )?;
        Ok(())
    }

    /// Journals a create's outcome.
    pub fn created(
        &self,
        ctx: &Ctx<'_>,
        remote_id: String,
        hash: Option<Digest>,
        adopted: bool,
    ) -> Result<(), EngineError> {
        self.made(ctx, remote_id, hash, adopted, None)
    }

    /// Journals a create of several calls that made the resource and then
    /// failed (`e`): it exists, owned by this run, not yet as desired.
    pub fn created_incomplete(
        &self,
        ctx: &Ctx<'_>,
        remote_id: String,
        e: &ProviderError,
    ) -> Result<(), EngineError> {
        let error = scrub(ctx.journal, &e.to_string());
        self.made(ctx, remote_id, None, false, Some(error))
    }

    fn made(
        &self,
        ctx: &Ctx<'_>,
        remote_id: String,
        hash: Option<Digest>,
        adopted: bool,
        incomplete: Option<String>,
    ) -> Result<(), EngineError> {
        record(
            ctx.journal,
            Event::ResourceCreated(ResourceCreated {
                resource: self.key.clone(),
                kind: self.kind,
                remote_id,
                mark: ctx.mark(),
                desired_hash: hash,
                adopted,
                incomplete,
            }),
        )?;
        Ok(())
    }

    /// Journals that a create found the resource already there, made by
    /// another run of this deployment in this journal (`mark`): it is used,
    /// and its owner stays that run, so a rollback of this run never
    /// deletes it.
    pub fn found(
        &self,
        ctx: &Ctx<'_>,
        remote_id: String,
        hash: Option<Digest>,
        mark: OwnershipMark,
    ) -> Result<(), EngineError> {
        record(
            ctx.journal,
            Event::ResourceCreated(ResourceCreated {
                resource: self.key.clone(),
                kind: self.kind,
                remote_id,
                mark,
                desired_hash: hash,
                adopted: true,
                incomplete: None,
            }),
        )?;
        Ok(())
    }

    /// Journals an update's (or restore's) outcome.
    pub fn updated(
        &self,
        ctx: &Ctx<'_>,
        remote_id: String,
        hash: Option<Digest>,
        changed: Vec<String>,
        restored: bool,
    ) -> Result<(), EngineError> {
        record(
            ctx.journal,
            Event::ResourceUpdated(ResourceUpdated {
                resource: self.key.clone(),
                kind: self.kind,
                remote_id,
                desired_hash: hash,
                changed,
                restored,
            }),
        )?;
        Ok(())
    }

    /// Journals that it is gone (`already_gone`: not by this call).
    pub fn deleted(
        &self,
        ctx: &Ctx<'_>,
        remote_id: String,
        already_gone: bool,
    ) -> Result<(), EngineError> {
        record(
            ctx.journal,
            Event::ResourceDeleted(ResourceDeleted {
                resource: self.key.clone(),
                kind: self.kind,
                remote_id,
                already_gone,
            }),
        )?;
        Ok(())
    }

    /// Journals a failed change.
    pub fn failed(
        &self,
        ctx: &Ctx<'_>,
        action: Action,
        e: &ProviderError,
        outcome_unknown: bool,
    ) -> Result<(), EngineError> {
        record(
            ctx.journal,
            Event::ResourceFailed(ResourceFailed {
                resource: self.key.clone(),
                kind: self.kind,
                action,
                error: scrub(ctx.journal, &e.to_string()),
                outcome_unknown,
            }),
        )?;
        Ok(())
    }

    /// Journals a failed change and returns the error that ends the step.
    pub fn fail(
        &self,
        ctx: &Ctx<'_>,
        action: Action,
        e: ProviderError,
        doing: String,
    ) -> EngineError {
        match self.failed(ctx, action, &e, e.outcome_unknown()) {
            Ok(()) => EngineError::provider(doing, e),
            Err(journal) => journal,
        }
    }
}

/// What a create needs besides the call: the intent's desired state and
/// digest, and the words for errors.
#[derive(Debug, Clone)]
pub struct Creation<'a> {
    /// The resource.
    pub subject: Subject<'a>,
    /// Its desired state, as journaled.
    pub desired: Option<serde_json::Value>,
    /// Its digest.
    pub hash: Option<Digest>,
    /// What is being done, for errors (`creating dns:www`).
    pub doing: String,
}

/// Creates a resource: intent, the call, outcome. When the outcome of the
/// call is unknown, `find` looks for the resource by this run's mark: what
/// it finds is adopted; otherwise the call is made again within the retry
/// limit. Returns what the call (or the lookup) gave.
pub async fn create<T, C, CF, F, FF>(
    ctx: &Ctx<'_>,
    what: Creation<'_>,
    id_of: impl Fn(&T) -> String,
    call: C,
    find: F,
) -> Result<T, EngineError>
where
    C: Fn() -> CF,
    CF: Future<Output = Result<T, ProviderError>>,
    F: Fn() -> FF,
    FF: Future<Output = Result<Option<T>, EngineError>>,
{
    let s = what.subject;
    let mark = ctx.mark();
    s.intent(
        ctx,
        Action::Create,
        None,
        what.desired.clone(),
        what.hash,
        Some(mark),
    )?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Ok(made) => {
                failpoint::effect_done();
                s.created(ctx, id_of(&made), what.hash, false)?;
                return Ok(made);
            }
            // Made by a first call, then a later one failed: it exists.
            Err(e) if e.created.is_some() => {
                let id = e.created.clone().unwrap_or_default();
                s.created_incomplete(ctx, id, &e)?;
                return Err(EngineError::provider(what.doing, e));
            }
            Err(e) if e.outcome_unknown() => {
                note(
                    ctx.journal,
                    &format!("{}: outcome unknown, looking it up", s.key),
                );
                if let Some(found) = find().await? {
                    s.created(ctx, id_of(&found), what.hash, true)?;
                    return Ok(found);
                }
                if !retry_unknown(ctx, attempt, &e).await? {
                    s.failed(ctx, Action::Create, &e, false)?;
                    return Err(EngineError::provider(what.doing, e));
                }
            }
            Err(e) => {
                s.failed(ctx, Action::Create, &e, false)?;
                return Err(EngineError::provider(what.doing, e));
            }
        }
    }
}

/// Deletes a resource: intent, the call, outcome. Without a remote id (a
/// create whose outcome was lost, and a lookup that found nothing) it is
/// journaled as already gone without a call.
pub async fn delete<C, CF>(
    ctx: &Ctx<'_>,
    s: Subject<'_>,
    id: Option<String>,
    call: C,
) -> Result<(), EngineError>
where
    C: FnOnce(String) -> CF,
    CF: Future<Output = Result<DeleteOutcome, ProviderError>>,
{
    s.intent(ctx, Action::Delete, id.clone(), None, None, None)?;
    let Some(id) = id else {
        return s.deleted(ctx, String::new(), true);
    };
    match call(id.clone()).await {
        Ok(outcome) => {
            failpoint::effect_done();
            s.deleted(ctx, id, outcome.already_gone)
        }
        Err(e) => Err(s.fail(ctx, Action::Delete, e, format!("deleting {}", s.key))),
    }
}

/// After a create or deploy whose outcome is unknown and that the lookup
/// did not find (so it did not take effect): journals the failed attempt
/// and waits before the next one, with the same limit and backoff as the
/// HTTP layer's retries. Returns `false` when the attempts are used up.
pub async fn retry_unknown(
    ctx: &Ctx<'_>,
    attempt: u32,
    e: &ProviderError,
) -> Result<bool, EngineError> {
    let policy = &ctx.remote.retry;
    if attempt >= policy.attempts.max(1) {
        return Ok(false);
    }
    ctx.check_interrupt()?;
    let delay = policy.backoff(attempt, rand::random_range(0.0..1.0));
    let mut reason = e.kind.to_string();
    if let Some(s) = e.status {
        reason.push_str(&format!(" (HTTP {s})"));
    }
    reason.push_str("; outcome unknown, and not found by its ownership mark");
    record(
        ctx.journal,
        Event::AttemptFailed(AttemptFailed {
            operation: format!("{} {}", e.provider, e.operation),
            attempt,
            reason: scrub(ctx.journal, &reason),
            delay_ms: delay.as_millis() as u64,
        }),
    )?;
    note(
        ctx.journal,
        &format!(
            "{} {}: {reason}; retrying in {} ms (attempt {})",
            e.provider,
            e.operation,
            delay.as_millis(),
            attempt + 1
        ),
    );
    tokio::time::sleep(delay).await;
    Ok(true)
}
