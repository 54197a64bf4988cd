//! Reading an export as `fabrik replay --input` does (format, hashes,
//! links, trailer) from hostile bytes: refused, or holding only events
//! that were really exported (those of the seed exports, all cut from one
//! journal); forging or changing one would take its hash. Never a panic.
#![no_main]

use std::collections::HashSet;
use std::io::Cursor;
use std::sync::OnceLock;

use fabrik::store::{ChainChecker, StoredEvent};
use libfuzzer_sys::fuzz_target;

/// Reads and checks an export; the events, or `None` when refused.
fn checked(data: &[u8]) -> Option<Vec<StoredEvent>> {
    let mut checker: Option<ChainChecker> = None;
    let mut broken = false;
    let mut events = Vec::new();
    let (_, trailer) = fabrik::export::read(Cursor::new(data), &mut |row| {
        let c = checker.get_or_insert_with(|| {
            if row.seq == 1 {
                ChainChecker::whole()
            } else {
                ChainChecker::filtered()
            }
        });
        if c.check(&row).is_err() || row.decode().is_err() {
            broken = true;
        }
        events.push(row);
        Ok(())
    })
    .ok()?;
    if broken {
        return None;
    }
    if let Some(c) = &checker
        && trailer.last_hash.is_some()
        && c.last_hash() != trailer.last_hash
    {
        return None;
    }
    Some(events)
}

/// Every event of the seed exports, by sequence number and hash.
fn genuine() -> &'static HashSet<(u64, [u8; 32])> {
    static GENUINE: OnceLock<HashSet<(u64, [u8; 32])>> = OnceLock::new();
    GENUINE.get_or_init(|| {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/seeds/export_read");
        let mut set = HashSet::new();
        for entry in std::fs::read_dir(dir).expect("seeds") {
            let bytes = std::fs::read(entry.expect("seed").path()).expect("seed");
            for e in checked(&bytes).expect("a seed export is valid") {
                set.insert((e.seq, e.hash.0));
            }
        }
        set
    })
}

fuzz_target!(|data: &[u8]| {
    if let Some(events) = checked(data) {
        for e in events {
            assert!(
                genuine().contains(&(e.seq, e.hash.0)),
                "event {} was accepted but never exported",
                e.seq
            );
        }
    }
});
