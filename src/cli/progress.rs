//! Live progress of a run.
//!
//! - On a terminal: one line per step as it completes, and a status line
//!   that is redrawn in place with what is being waited on.
//! - Piped: plain timestamped lines; waiting notes only when they change
//!   in substance (not every poll).
//! - `--output json`: one JSON object per journaled event on stdout,
//!   flushed as it happens (schema: `schema/progress.schema.json`).

use std::time::Instant;

use serde_json::json;

use crate::engine::recorder::Observer;
use crate::event::{Event, RecordedEvent, format_timestamp};
use crate::output::{Output, Style, Styled};
use crate::projection::RunView;
use crate::text::count;

/// Renders a run's events and notes.
pub struct Progress {
    out: Output,
    started: Instant,
    /// The note shown last, without its numbers (to avoid repeating "in
    /// progress, 3 s", "in progress, 4 s" when piped).
    last_stem: String,
    /// Whether a status line is on screen (terminal only).
    status_shown: bool,
    /// When the last line was printed (piped notes wait a little, so quick
    /// steps do not print their waiting notes at all).
    last_line: Instant,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress").finish_non_exhaustive()
    }
}

impl Progress {
    /// Progress on `out`.
    pub fn new(out: Output) -> Self {
        Self {
            out,
            started: Instant::now(),
            last_stem: String::new(),
            status_shown: false,
            last_line: Instant::now(),
        }
    }

    fn clear_status(&mut self) {
        if self.status_shown {
            self.out.diag_raw("\r\x1b[2K");
            self.status_shown = false;
        }
    }

    fn line(&mut self, text: &str) {
        self.line_styled(text, None);
    }

    fn line_styled(&mut self, text: &str, style: Option<Style>) {
        self.clear_status();
        let elapsed = self.started.elapsed().as_secs_f64();
        let mut line = Styled::new();
        line.push(format!("[{elapsed:6.1}s] "))
            .push_styled(style, text)
            .push("\n");
        self.out.diag_styled(&line);
        self.last_line = Instant::now();
    }
}

/// The colour of an event's line: run states and outcomes as in the
/// tables, failures red, passed checks green.
fn style_of(e: &Event) -> Option<Style> {
    match e {
        Event::RunStateChanged(c) => Style::of_state(&c.to.to_string()),
        Event::RunFinished(f) => Style::of_state(&f.outcome.to_string()),
        Event::RunInterrupted(_) => Some(Style::Warn),
        Event::VerificationPassed(_) => Some(Style::Good),
        Event::VerificationFailed(_)
        | Event::ResourceFailed(_)
        | Event::RollbackStepFailed(_)
        | Event::NotificationFailed(_) => Some(Style::Bad),
        _ => None,
    }
}

/// The human line for an event, if it deserves one.
pub fn describe(e: &Event) -> Option<String> {
    Some(match e {
        Event::RunStarted(s) => format!("{} started", s.command),
        Event::RunStateChanged(c) => match &c.reason {
            Some(r) => format!("{} ({r})", c.to),
            None => c.to.to_string(),
        },
        Event::RunFinished(f) => format!("finished: {}", f.outcome),
        // The reason says it already ("interrupted by Ctrl-C").
        Event::RunInterrupted(i) if i.reason.starts_with("interrupted") => i.reason.clone(),
        Event::RunInterrupted(i) => format!("interrupted: {}", i.reason),
        Event::RunResumed(_) => "resumed".to_owned(),
        Event::SpecValidated(_) => "spec valid".to_owned(),
        Event::SpecRejected(r) => format!("spec rejected: {}", count(r.problems.len(), "problem")),
        Event::SecretResolved(s) => format!("secret {} from {}", s.name, s.source),
        Event::ImageResolved(i) => match (&i.digest, &i.error) {
            (Some(d), _) => format!("image {} is {d}", i.image),
            (None, e) => format!(
                "image {}: digest unknown ({}); the run goes on, but cannot be promoted",
                i.image,
                e.as_deref().unwrap_or("no answer")
            ),
        },
        Event::ResourceIntent(_) => return None,
        Event::ResourceCreated(c) => format!(
            "{}: {} ({})",
            c.resource,
            if c.adopted { "adopted" } else { "created" },
            c.remote_id
        ),
        Event::ResourceUpdated(u) => format!(
            "{}: {}{}",
            u.resource,
            if u.restored { "restored" } else { "updated" },
            if u.changed.is_empty() {
                String::new()
            } else {
                format!(" ({})", u.changed.join(", "))
            }
        ),
        Event::ResourceDeleted(d) => format!(
            "{}: deleted{}",
            d.resource,
            if d.already_gone {
                " (was already gone)"
            } else {
                ""
            }
        ),
        Event::ResourceFailed(f) => format!("{}: {} failed: {}", f.resource, f.action, f.error),
        Event::ResourceReconciled(r) => format!("{}: {:?} on resume", r.resource, r.finding),
        Event::AttemptFailed(_) => return None,
        Event::DeployRequested(_) => return None,
        Event::DeployTriggered(t) => format!(
            "deployment queued{}",
            t.deployment_uuid
                .as_deref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default()
        ),
        Event::DeploymentObserved(o) if o.status == "queued" => return None,
        Event::DeploymentObserved(o) => format!("deployment {}", o.status),
        Event::VerificationPassed(v) => format!("check passed: {}", v.check),
        Event::VerificationFailed(v) => format!("check failed: {}: {}", v.check, v.error),
        Event::RollbackPlanned(p) => format!("rollback planned: {}", count(p.steps.len(), "step")),
        Event::RollbackStepDone(d) => format!("rollback: {} {}", d.action, d.resource),
        Event::RollbackStepSkipped(s) => format!("rollback: {} left ({})", s.resource, s.reason),
        Event::RollbackStepFailed(f) => format!("rollback of {} failed: {}", f.resource, f.error),
        Event::NotificationSent(n) => format!("notified {} ({})", n.channel, n.event),
        Event::NotificationFailed(n) => format!(
            "the {} notification to {} was not delivered: {}",
            n.event, n.channel, n.error
        ),
        Event::LockAcquired(_) | Event::LockReleased(_) | Event::JournalCheckpoint(_) => {
            return None;
        }
        Event::LockBroken(b) => format!("lock broken: {}", b.reason),
    })
}

/// The JSON object for one event in `--output json` streams.
pub fn event_json(e: &RecordedEvent) -> serde_json::Value {
    json!({
        "kind": "event",
        "seq": e.seq,
        "deployment": e.deployment,
        "run": e.run,
        "at": format_timestamp(e.at),
        "type": e.event.type_name(),
        "payload": e.event.payload(),
    })
}

impl Observer for Progress {
    fn event(&mut self, event: &RecordedEvent, _run: &RunView) {
        if self.out.is_json() {
            let _ = self.out.json(&event_json(event));
            return;
        }
        if let Some(text) = describe(&event.event) {
            self.line_styled(&text, style_of(&event.event));
        }
    }

    fn note(&mut self, text: &str) {
        if self.out.is_json() {
            return;
        }
        if self.out.is_live() {
            self.out.diag_raw(&format!("\r\x1b[2K  … {text}"));
            self.status_shown = true;
            return;
        }
        let stem: String = text.chars().filter(|c| !c.is_ascii_digit()).collect();
        let quiet_for = self.last_line.elapsed();
        let due = (stem != self.last_stem && quiet_for >= std::time::Duration::from_secs(2))
            || quiet_for >= std::time::Duration::from_secs(15);
        if due {
            self.last_stem = stem;
            self.line(&format!("… {text}"));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear_status();
    }
}
