//! Notifications about a run, delivered beside it: each one is sent on a
//! task of its own as soon as the run reaches its event, so no step ever
//! waits for a webhook. Each delivery (its retries included) is bounded by
//! its channel's timeout. When the run ends, what is still on its way is
//! awaited (at most that bound), and every delivery is journaled as sent
//! or failed, in the order they were made; a failed notification never
//! fails a run. Each carries the journal's head (`journal_head`,
//! `journal_seq` in its details).

use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

use super::recorder::Clock;
use super::{Journal, record, scrub, with};
use crate::event::{Event, NotificationFailed, NotificationSent};
use crate::id::{DeploymentId, RunId};
use crate::provider::{Notification, NotifierEntry};

/// The journal's head as it is now, for a notification's details: whoever
/// receives it can later prove with `fabrik replay --verify --expect-head`
/// that nothing up to it changed.
pub fn head_details(journal: &Journal) -> Vec<(String, String)> {
    with(journal, |r| r.head())
        .map(|h| {
            vec![
                ("journal_head".to_owned(), h.hash.to_string()),
                ("journal_seq".to_owned(), h.seq.to_string()),
            ]
        })
        .unwrap_or_default()
}

/// One delivery on its way.
struct Delivery {
    channel: String,
    event: String,
    task: JoinHandle<Result<(), String>>,
}

/// The deliveries of one run.
pub struct Dispatch {
    notifiers: Arc<Vec<NotifierEntry>>,
    deployment: DeploymentId,
    run: RunId,
    clock: Clock,
    pending: Mutex<Vec<Delivery>>,
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatch")
            .field("run", &self.run)
            .field("notifiers", &self.notifiers)
            .finish_non_exhaustive()
    }
}

impl Dispatch {
    /// Deliveries of `run` to `notifiers`.
    pub fn new(
        notifiers: Arc<Vec<NotifierEntry>>,
        deployment: DeploymentId,
        run: RunId,
        clock: Clock,
    ) -> Self {
        Self {
            notifiers,
            deployment,
            run,
            clock,
            pending: Mutex::new(Vec::new()),
        }
    }

    /// Starts the delivery of one notification to every channel that
    /// wants one of `events`: the first of them it wants (a channel hears
    /// of one moment of a run once, under its most specific name). Returns
    /// at once.
    pub fn send(&self, events: &[&str], summary: &str, details: &[(String, String)]) {
        let at = (self.clock)();
        for n in self.notifiers.iter() {
            let Some(event) = events.iter().find(|e| n.events.iter().any(|w| w == *e)) else {
                continue;
            };
            let msg = Notification {
                event: (*event).to_owned(),
                deployment: self.deployment.clone(),
                run: Some(self.run.clone()),
                summary: format!("{}: {summary}", self.deployment),
                at,
                details: details.to_vec(),
            };
            let notifier = n.notifier.clone();
            let timeout = n.timeout;
            let task = tokio::spawn(async move {
                match tokio::time::timeout(timeout, notifier.send(&msg)).await {
                    Ok(Ok(())) => Ok(()),
                    // The event names the channel and the notification.
                    Ok(Err(e)) => Err(e.reason()),
                    Err(_) => Err(format!(
                        "no answer within {} ms (notifications.timeout)",
                        timeout.as_millis()
                    )),
                }
            });
            if let Ok(mut p) = self.pending.lock() {
                p.push(Delivery {
                    channel: n.name.clone(),
                    event: (*event).to_owned(),
                    task,
                });
            }
        }
    }

    /// Waits for every delivery still on its way (each is bounded by its
    /// timeout) and journals each outcome.
    pub async fn settle(&self, journal: &Journal) {
        let done: Vec<Delivery> = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => Vec::new(),
        };
        for d in done {
            let outcome = match d.task.await {
                Ok(r) => r,
                Err(e) => Err(format!("the delivery stopped: {e}")),
            };
            let e = match outcome {
                Ok(()) => Event::NotificationSent(NotificationSent {
                    channel: d.channel,
                    event: d.event,
                }),
                Err(err) => Event::NotificationFailed(NotificationFailed {
                    channel: d.channel,
                    event: d.event,
                    error: scrub(journal, &err),
                }),
            };
            let _ = record(journal, e);
        }
    }
}
