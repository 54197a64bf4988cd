//! Rules for `retry` and `timeouts`.

use crate::spec::diagnostic::Issue;
use crate::spec::model::{RetryPolicy, Timeouts};
use crate::spec::path::FieldPath;

pub(crate) fn check_retry(r: &RetryPolicy, out: &mut Vec<Issue>) {
    let base = FieldPath::of("retry");
    if r.initial_delay > r.max_delay {
        out.push(
            Issue::error(
                base.key("initial_delay"),
                "`initial_delay` is longer than `max_delay`",
            )
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
            .hint("one request should take less time than a whole deployment"),
        );
    }
}
