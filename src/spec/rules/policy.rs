//! Rules for `retry` and `timeouts`.

use crate::spec::diagnostic::Issue;
use crate::spec::model::{RetryPolicy, Timeouts};
use crate::spec::path::FieldPath;

/// The shortest delay between attempts: retrying at once (`0s`) turns a
/// provider's "slow down" (429) into a burst. Short delays stay possible
/// for providers on the same machine (a sandbox, a test double); the
/// `Retry-After` a provider sends is honoured whatever the delay.
const MIN_RETRY_DELAY: std::time::Duration = std::time::Duration::from_millis(10);

pub(crate) fn check_retry(r: &RetryPolicy, out: &mut Vec<Issue>) {
    let base = FieldPath::of("retry");
    for (key, d) in [
        ("initial_delay", r.initial_delay),
        ("max_delay", r.max_delay),
    ] {
        if d.get() < MIN_RETRY_DELAY {
            out.push(
                Issue::error(
                    base.key(key),
                    format!("`retry.{key}` must be at least 10ms, found `{d}`"),
                )
                .hint(
                    "a retry without a pause hits a rate-limited or failing provider again at once",
                ),
            );
        }
    }
    if r.initial_delay > r.max_delay {
        out.push(
            Issue::error(
                base.key("initial_delay"),
                "`initial_delay` is longer than `max_delay`",
            )
            .reads(base.key("max_delay"))
            .hint("make `max_delay` at least as long as `initial_delay`"),
        );
    }
}

pub(crate) fn check_timeouts(t: &Timeouts, out: &mut Vec<Issue>) {
    let base = FieldPath::of("timeouts");
    for (key, d) in [("request", t.request), ("deploy", t.deploy)] {
        if d.get().is_zero() {
            out.push(Issue::error(
                base.key(key),
                format!("`timeouts.{key}` must be longer than 0s"),
            ));
        }
    }
    if t.request > t.deploy {
        out.push(
            Issue::error(
                base.key("request"),
                "`timeouts.request` is longer than `timeouts.deploy`",
            )
            .reads(base.key("deploy"))
            .hint("one request should take less time than a whole deployment"),
        );
    }
}
