//! The process dies after every event of an apply (the journal keeps what
//! was durable, the remote world keeps every effect), then `resume`
//! finishes the run: the world ends as an uncrashed apply leaves it, with
//! no duplicate and one deployment, in process and in milliseconds.

use std::sync::Arc;

use fabrik::engine::Interrupt;
use fabrik::engine::command::resume;
use fabrik::engine::recorder::Quiet;
use fabrik::event::RunOutcome;
use fabrik::store::EventStore;
use fabrik::store::memory::MemoryStore;

use super::{Bench, Dying, SPEC};

#[tokio::test]
async fn an_apply_killed_after_every_event_is_finished_by_resume() {
    // The uncrashed apply: how many events it journals.
    let whole = Bench::new(SPEC);
    whole.apply().await;
    let total = whole.store.len().unwrap();
    assert!(total > 10, "{total} events");
    for point in 1..total {
        let inner: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        let b = Bench::with_store(SPEC, inner.clone());
        let dying: Arc<dyn EventStore> = Arc::new(Dying::new(inner.clone(), point));
        let base = b.request_on(dying, Box::new(Quiet), Interrupt::new());
        let crashed = b.apply_with(base, false).await;
        assert!(crashed.is_err(), "killed after event {point}: {crashed:?}");
        assert_eq!(inner.len().unwrap(), point, "what was durable");
        let r = resume::resume(b.request(), "shop")
            .await
            .unwrap_or_else(|e| panic!("resume after event {point}: {}", e.text()));
        let outcome = b.runs().last().and_then(|run| run.outcome);
        assert_eq!(
            outcome,
            Some(RunOutcome::Succeeded),
            "after event {point}: {}",
            r.message
        );
        assert_eq!(b.counts(), (1, 1, 1), "after event {point}: no duplicate");
        let deployments: usize = b
            .world
            .state()
            .apps
            .values()
            .map(|a| a.deployments.len())
            .sum();
        assert_eq!(deployments, 1, "after event {point}: one deployment");
        assert!(
            b.view().lock.is_none(),
            "after event {point}: lock released"
        );
    }
}
