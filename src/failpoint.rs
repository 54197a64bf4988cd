//! Crash injection for the crash harness (cargo feature `failpoints`).
//!
//! - `FABRIK_CRASH_AFTER_EVENT=N` aborts the process right after the N-th
//!   event this process appended is durable.
//! - `FABRIK_CRASH_AFTER_EFFECT=N` aborts right after the N-th provider call
//!   with a side effect returned success, before its outcome is journaled.
//! - `FABRIK_JOURNAL_PAGE_ROOM=N` lets a SQLite journal grow by at most N
//!   pages from the size it had when it was opened (`PRAGMA
//!   max_page_count`): SQLite then fails the append that needs one more page
//!   with `SQLITE_FULL`, the error a full disk gives, on SQLite's own path.
//!
//! The abort is `std::process::abort`: no unwinding, no destructors, no
//! flushing: as close to `kill -9` as a process can do to itself. Without
//! the feature both hooks compile to nothing.

#[cfg(feature = "failpoints")]
mod imp {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static EVENTS: AtomicU64 = AtomicU64::new(0);
    static EFFECTS: AtomicU64 = AtomicU64::new(0);

    fn limit(var: &'static str, cell: &'static OnceLock<Option<u64>>) -> Option<u64> {
        *cell.get_or_init(|| std::env::var(var).ok().and_then(|v| v.trim().parse().ok()))
    }

    pub fn event_appended(n: u64) {
        static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
        let total = EVENTS.fetch_add(n, Ordering::SeqCst) + n;
        if let Some(l) = limit("FABRIK_CRASH_AFTER_EVENT", &LIMIT)
            && total >= l
        {
            std::process::abort();
        }
    }

    pub fn effect_done() {
        static LIMIT: OnceLock<Option<u64>> = OnceLock::new();
        let total = EFFECTS.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(l) = limit("FABRIK_CRASH_AFTER_EFFECT", &LIMIT)
            && total >= l
        {
            std::process::abort();
        }
    }
}

/// How many pages a SQLite journal may grow by, when a test says so.
pub fn journal_page_room() -> Option<u64> {
    #[cfg(feature = "failpoints")]
    {
        std::env::var("FABRIK_JOURNAL_PAGE_ROOM")
            .ok()
            .and_then(|v| v.trim().parse().ok())
    }
    #[cfg(not(feature = "failpoints"))]
    None
}

/// Called after `n` events this process appended became durable.
#[inline]
pub fn event_appended(n: u64) {
    #[cfg(feature = "failpoints")]
    imp::event_appended(n);
    #[cfg(not(feature = "failpoints"))]
    let _ = n;
}

/// Called after a provider call with a side effect returned success, before
/// its outcome is journaled.
#[inline]
pub fn effect_done() {
    #[cfg(feature = "failpoints")]
    imp::effect_done();
}
