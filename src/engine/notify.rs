//! Notifications about a run: sent to every channel that wants the event,
//! journaled as sent or failed; a failed notification never fails a run.
//! Each carries the journal's head (`journal_head`, `journal_seq` in its
//! details).

use super::recorder::Clock;
use super::{Journal, record, scrub, with};
use crate::event::{Event, NotificationFailed, NotificationSent};
use crate::id::{DeploymentId, RunId};
use crate::provider::{Notification, NotifierEntry};

/// Sends `event` to every channel of `notifiers` that wants it.
pub async fn send(
    journal: &Journal,
    notifiers: &[NotifierEntry],
    deployment: &DeploymentId,
    run: &RunId,
    event: &str,
    summary: &str,
    clock: &Clock,
) {
    for n in notifiers {
        if !n.events.iter().any(|e| e == event) {
            continue;
        }
        // The journal's head as it is now: whoever receives this can
        // later prove with `fabrik replay --verify --expect-head` that
        // nothing up to it changed.
        let details = with(journal, |r| r.head())
            .map(|h| {
                vec![
                    ("journal_head".to_owned(), h.hash.to_string()),
                    ("journal_seq".to_owned(), h.seq.to_string()),
                ]
            })
            .unwrap_or_default();
        let msg = Notification {
            event: event.to_owned(),
            deployment: deployment.clone(),
            run: Some(run.clone()),
            summary: format!("{deployment}: {summary}"),
            at: clock(),
            details,
        };
        let e = match n.notifier.send(&msg).await {
            Ok(()) => Event::NotificationSent(NotificationSent {
                channel: n.name.clone(),
                event: event.to_owned(),
            }),
            Err(err) => Event::NotificationFailed(NotificationFailed {
                channel: n.name.clone(),
                event: event.to_owned(),
                error: scrub(journal, &err.to_string()),
            }),
        };
        let _ = record(journal, e);
    }
}
