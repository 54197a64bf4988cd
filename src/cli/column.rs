//! How tables show run ids and times to people: run ids cut to their
//! first 8 characters (more when 8 do not tell two of them apart, as git
//! abbreviates commits) and times as how long ago (`3 min ago`) or, from a
//! day back, as a date and time in UTC (`2026-12-03 14:05 UTC`). `--wide`
//! shows both whole: the full id, the RFC 3339 timestamp the journal keeps.
//! `--output json` always carries the full values.

use crate::id::RunId;

/// The shortest a run id is shown.
pub const SHORT_RUN: usize = 8;

/// The way one table shows run ids and times.
#[derive(Debug, Clone)]
pub struct Columns {
    wide: bool,
    now: jiff::Timestamp,
    /// How many characters of a run id are shown.
    run_len: usize,
}

impl Columns {
    /// For a table that shows `runs` (their ids are cut so that no two of
    /// them look the same), at `now`.
    pub fn new<'a>(
        wide: bool,
        now: jiff::Timestamp,
        runs: impl IntoIterator<Item = &'a RunId>,
    ) -> Self {
        let mut ids: Vec<&str> = runs.into_iter().map(RunId::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let shared = ids
            .windows(2)
            .map(|w| common_prefix(w[0], w[1]))
            .max()
            .unwrap_or(0);
        Self {
            wide,
            now,
            run_len: (shared + 1).max(SHORT_RUN),
        }
    }

    /// A run id as the table shows it.
    pub fn run(&self, id: &RunId) -> String {
        let s = id.as_str();
        if self.wide {
            return s.to_owned();
        }
        s.get(..self.run_len).unwrap_or(s).to_owned()
    }

    /// A journal timestamp (RFC 3339) as the table shows it; as it is when
    /// it is not one.
    pub fn time(&self, rfc3339: &str) -> String {
        if self.wide {
            return rfc3339.to_owned();
        }
        match crate::event::parse_timestamp(rfc3339) {
            Ok(t) => self.at(t),
            Err(_) => rfc3339.to_owned(),
        }
    }

    /// A lock's holder: `run ID (COMMAND by USER@HOST, pid N, since TIME)`.
    pub fn holder(&self, h: &crate::event::LockHolder) -> String {
        format!(
            "run {} ({} by {}@{}, pid {}, since {})",
            self.run(&h.run),
            h.command,
            h.user,
            h.host,
            h.pid,
            self.time(&h.since)
        )
    }

    /// A moment as the table shows it.
    pub fn at(&self, t: jiff::Timestamp) -> String {
        if self.wide {
            return crate::event::format_timestamp(t);
        }
        ago(t, self.now)
    }
}

/// `then` for people, seen from `now`: `12 s ago`, `3 min ago`, `5 h ago`,
/// and from a day back the date and time in UTC (`2026-12-03 14:05 UTC`).
/// A time ahead of `now` (another machine's clock) is `just now`.
pub fn ago(then: jiff::Timestamp, now: jiff::Timestamp) -> String {
    let secs = now.as_second() - then.as_second();
    match secs {
        s if s < 0 => "just now".to_owned(),
        s if s < 60 => format!("{s} s ago"),
        s if s < 3_600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3_600),
        _ => then.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// How many leading characters `a` and `b` share.
fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn times_read_as_how_long_ago_then_as_a_date() {
        let now = ts("2026-12-03T14:05:30Z");
        assert_eq!(ago(ts("2026-12-03T14:05:18Z"), now), "12 s ago");
        assert_eq!(ago(ts("2026-12-03T14:02:00Z"), now), "3 min ago");
        assert_eq!(ago(ts("2026-12-03T09:00:00Z"), now), "5 h ago");
        assert_eq!(ago(ts("2026-12-01T08:07:09Z"), now), "2026-12-01 08:07 UTC");
        assert_eq!(ago(ts("2026-12-03T14:06:00Z"), now), "just now");
    }

    #[test]
    fn run_ids_are_cut_where_they_still_differ() {
        let a = RunId::from_u128(1 << 100);
        let b = RunId::from_u128((1 << 100) + 1);
        let now = ts("2026-12-03T14:05:30Z");
        let alone = Columns::new(false, now, [&a]);
        assert_eq!(alone.run(&a).len(), SHORT_RUN);
        // Two ids that differ in their last character only.
        let both = Columns::new(false, now, [&a, &b]);
        assert_eq!(both.run(&a), a.as_str());
        assert_ne!(both.run(&a), both.run(&b));
        let wide = Columns::new(true, now, [&a]);
        assert_eq!(wide.run(&a), a.as_str());
        assert_eq!(wide.time("2026-12-03T14:05:18Z"), "2026-12-03T14:05:18Z");
    }
}
