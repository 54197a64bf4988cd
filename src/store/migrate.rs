//! Copying a journal from one backend to another (`fabrik state migrate
//! --to URL`): SQLite to PostgreSQL, back, or between two files.
//!
//! The rows are copied exactly as stored (sequence numbers, times,
//! payloads, hashes): nothing is re-encoded, so the destination's hash
//! chain is the source's, and an export of either verifies against the
//! other. The copy
//!
//! 1. verifies the source (chain and fold) and remembers how far it goes;
//! 2. refuses a destination that holds anything but a prefix of the source
//!    (a copy that was interrupted is resumed where it stopped);
//! 3. imports the rows in chunks, each chunk one transaction that checks it
//!    continues the destination's chain;
//! 4. writes the destination's cached projections from the source's fold;
//! 5. verifies the destination (chain and projections) and checks it ends
//!    with the same hash as the source.

use std::ops::ControlFlow;
use std::time::Duration;

use serde::Serialize;

use super::memory::MemoryStore;
use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::{
    ChainChecker, ChainError, EventStore, Scan, StateLocation, StoreError, StoredEvent,
    verify_store,
};
use crate::id::{Digest, Seq};
use crate::projection::Projection;

/// Rows per import transaction.
const CHUNK: usize = 5000;

/// A journal that can take rows as they are stored elsewhere.
pub trait Destination: EventStore {
    /// Stores `rows` exactly as given, after checking that the first
    /// continues this journal's chain. Cached projections are left alone.
    fn import(&self, rows: Vec<StoredEvent>) -> Result<(), StoreError>;

    /// Makes the cached projections those of `projection`, the fold of
    /// every event now in the journal.
    fn replace_projections(&self, projection: &Projection) -> Result<(), StoreError>;
}

impl Destination for PgStore {
    fn import(&self, rows: Vec<StoredEvent>) -> Result<(), StoreError> {
        PgStore::import(self, rows)
    }

    fn replace_projections(&self, projection: &Projection) -> Result<(), StoreError> {
        PgStore::replace_projections(self, projection)
    }
}

impl Destination for MemoryStore {
    fn import(&self, rows: Vec<StoredEvent>) -> Result<(), StoreError> {
        let tail = last_row(self)?;
        if let Some(first) = rows.first() {
            check_continues(&tail, first, "memory")?;
        }
        // The in-memory journal folds its projections as it imports.
        MemoryStore::import(self, rows)
    }

    fn replace_projections(&self, _projection: &Projection) -> Result<(), StoreError> {
        Ok(())
    }
}

impl Destination for SqliteStore {
    fn import(&self, rows: Vec<StoredEvent>) -> Result<(), StoreError> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let path = self.path();
        let err = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        // A connection of our own: the store's connection is private to it.
        // It writes only `events`, in the store's file and WAL mode, with
        // the same durability.
        let mut conn = rusqlite::Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(120)).map_err(err)?;
        conn.execute_batch("PRAGMA synchronous=FULL").map_err(err)?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        let tail: Option<(u64, Vec<u8>)> = {
            let mut s = tx
                .prepare("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
                .map_err(err)?;
            let mut rows = s.query([]).map_err(err)?;
            match rows.next().map_err(err)? {
                Some(r) => Some((r.get(0).map_err(err)?, r.get(1).map_err(err)?)),
                None => None,
            }
        };
        let tail = tail.map(|(seq, hash)| (seq, <[u8; 32]>::try_from(hash.as_slice()).ok()));
        let tail = match tail {
            None => None,
            Some((seq, Some(h))) => Some((seq, Digest(h))),
            Some((seq, None)) => {
                return Err(StoreError::Corrupt {
                    seq: Seq(seq),
                    what: "hash is not 32 bytes".to_owned(),
                });
            }
        };
        check_continues(&tail, first, &path.display().to_string())?;
        super::sqlite::insert_events(&tx, &rows).map_err(err)?;
        tx.commit().map_err(err)
    }

    fn replace_projections(&self, _projection: &Projection) -> Result<(), StoreError> {
        // The SQLite store writes its own projection rows; it folds the
        // events it now holds, which are the source's.
        self.rebuild_projections()
    }
}

fn last_row(store: &dyn EventStore) -> Result<Option<(u64, Digest)>, StoreError> {
    let mut last = None;
    store.scan(&Scan::default(), &mut |e| {
        last = Some((e.seq, e.hash));
        ControlFlow::Continue(())
    })?;
    Ok(last)
}

fn check_continues(
    tail: &Option<(u64, Digest)>,
    first: &StoredEvent,
    target: &str,
) -> Result<(), StoreError> {
    let (seq, hash) = tail.unwrap_or((0, Digest::GENESIS));
    if first.seq != seq + 1 || first.prev_hash != hash {
        return Err(StoreError::Backend(format!(
            "state database {target}: the journal ends at event {seq} ({}), the rows to import continue event {} ({})",
            hash.short(),
            first.seq.saturating_sub(1),
            first.prev_hash.short()
        )));
    }
    Ok(())
}

/// Opens (creating if needed) the journal at `location` as a copy
/// destination.
pub fn open_destination(location: &StateLocation) -> Result<Box<dyn Destination>, StoreError> {
    Ok(match location {
        StateLocation::Sqlite(path) => Box::new(SqliteStore::open(path)?),
        StateLocation::Postgres(url) => Box::new(PgStore::open(url)?),
    })
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MigrateReport {
    /// Events in the destination now (all of the source's, as verified
    /// when the copy began).
    pub events: u64,
    /// Events this copy wrote.
    pub copied: u64,
    /// Events the destination already held (an earlier, interrupted copy).
    pub already_present: u64,
    /// Deployments in the journal.
    pub deployments: usize,
    /// Runs in the journal.
    pub runs: usize,
    /// Hash of the last event, the same on both sides.
    pub last_hash: Option<Digest>,
    /// Cached projections of the source that differed from its events
    /// (the destination's are written from the events, so they are right).
    pub source_projection_mismatches: Vec<String>,
}

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The source could not be read.
    #[error("cannot read the source journal")]
    Source(#[source] StoreError),
    /// The source's chain is broken: copying it would spread the damage.
    #[error("the source journal fails verification")]
    SourceBroken(#[source] ChainError),
    /// The destination holds a different journal.
    #[error(
        "the destination already holds {events} events that are not the start of this journal (first difference at event {seq})"
    )]
    DestinationDiverges {
        /// Events it holds.
        events: u64,
        /// Where they first differ.
        seq: Seq,
    },
    /// The destination holds more than the source.
    #[error(
        "the destination already holds {destination} events, more than the source's {source_events}"
    )]
    DestinationLonger {
        /// Events in the destination.
        destination: u64,
        /// Events in the source.
        source_events: u64,
    },
    /// Writing or reading the destination failed.
    #[error("cannot write the destination journal")]
    Destination(#[source] StoreError),
    /// The destination does not verify after the copy.
    #[error("the copied journal fails verification: {problem}")]
    DestinationBroken {
        /// What is wrong.
        problem: String,
    },
}

impl MigrateError {
    /// What to do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::SourceBroken(_) => Some(
                "run `fabrik replay --verify` on the source and restore it from an export or a backup first",
            ),
            Self::DestinationDiverges { .. } | Self::DestinationLonger { .. } => Some(
                "copy into an empty database or file; an interrupted copy into the same destination resumes",
            ),
            _ => None,
        }
    }
}

/// Copies every event of `from` into `to`, calling `progress` with the
/// number of events copied so far after each chunk. See the module docs
/// for the steps and checks.
pub fn copy(
    from: &dyn EventStore,
    to: &dyn Destination,
    mut progress: impl FnMut(u64),
) -> Result<MigrateReport, MigrateError> {
    let (source, projection) = verify_store(from).map_err(MigrateError::Source)?;
    if let Some(e) = source.chain_error {
        return Err(MigrateError::SourceBroken(e));
    }
    let total = source.events;
    let present = destination_prefix(from, to, total)?;

    let mut copied = 0u64;
    let mut checker = ChainChecker::whole();
    let mut chunk: Vec<StoredEvent> = Vec::with_capacity(CHUNK);
    let mut failure: Option<MigrateError> = None;
    let mut flush = |chunk: &mut Vec<StoredEvent>, copied: &mut u64| -> Result<(), MigrateError> {
        let n = chunk.len() as u64;
        to.import(std::mem::replace(chunk, Vec::with_capacity(CHUNK)))
            .map_err(MigrateError::Destination)?;
        *copied += n;
        progress(*copied);
        Ok(())
    };
    from.scan(
        &Scan {
            until_seq: Some(Seq(total)),
            ..Scan::default()
        },
        &mut |e| {
            // The rows were verified a moment ago; checking them again as
            // they are copied costs one hash each and guards the copy.
            if let Err(err) = checker.check(&e) {
                failure = Some(MigrateError::SourceBroken(err));
                return ControlFlow::Break(());
            }
            if e.seq <= present {
                return ControlFlow::Continue(());
            }
            chunk.push(e);
            if chunk.len() >= CHUNK
                && let Err(err) = flush(&mut chunk, &mut copied)
            {
                failure = Some(err);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        },
    )
    .map_err(MigrateError::Source)?;
    if let Some(f) = failure {
        return Err(f);
    }
    if !chunk.is_empty() {
        flush(&mut chunk, &mut copied)?;
    }

    to.replace_projections(&projection)
        .map_err(MigrateError::Destination)?;
    let (check, _) = verify_store(to).map_err(MigrateError::Destination)?;
    if let Some(e) = &check.chain_error {
        return Err(MigrateError::DestinationBroken {
            problem: e.to_string(),
        });
    }
    if let Some(m) = check.projection_mismatches.first() {
        return Err(MigrateError::DestinationBroken { problem: m.clone() });
    }
    if check.events != total || check.last_hash != source.last_hash {
        return Err(MigrateError::DestinationBroken {
            problem: format!(
                "it holds {} events ending with {}, the source {} ending with {}",
                check.events,
                check.last_hash.map_or("nothing".to_owned(), |h| h.short()),
                total,
                source.last_hash.map_or("nothing".to_owned(), |h| h.short())
            ),
        });
    }
    Ok(MigrateReport {
        events: total,
        copied,
        already_present: present,
        deployments: source.deployments,
        runs: source.runs,
        last_hash: source.last_hash,
        source_projection_mismatches: source.projection_mismatches,
    })
}

/// How many of the source's events the destination already holds: 0 for
/// an empty one; refuses one that is not a prefix of the source.
fn destination_prefix(
    from: &dyn EventStore,
    to: &dyn Destination,
    total: u64,
) -> Result<u64, MigrateError> {
    let held = to.len().map_err(MigrateError::Destination)?;
    if held == 0 {
        return Ok(0);
    }
    if held > total {
        return Err(MigrateError::DestinationLonger {
            destination: held,
            source_events: total,
        });
    }
    // Walk both in step: the first row that differs is where they diverge.
    let mut theirs = Vec::with_capacity(held.min(CHUNK as u64) as usize);
    let mut diverges: Option<Seq> = None;
    let mut checker = ChainChecker::whole();
    let read_to = |start: u64| -> Result<Vec<StoredEvent>, MigrateError> {
        let mut rows = Vec::new();
        to.scan(
            &Scan {
                until_seq: Some(Seq(start + CHUNK as u64 - 1)),
                ..Scan::default()
            },
            &mut |e| {
                if e.seq >= start {
                    rows.push(e);
                }
                ControlFlow::Continue(())
            },
        )
        .map_err(MigrateError::Destination)?;
        Ok(rows)
    };
    let mut next = 1u64;
    let mut position = 0usize;
    let mut failure = None;
    from.scan(
        &Scan {
            until_seq: Some(Seq(held)),
            ..Scan::default()
        },
        &mut |mine| {
            if position == theirs.len() {
                match read_to(next) {
                    Ok(rows) => {
                        theirs = rows;
                        position = 0;
                    }
                    Err(e) => {
                        failure = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            let Some(other) = theirs.get(position) else {
                diverges = Some(Seq(mine.seq));
                return ControlFlow::Break(());
            };
            position += 1;
            next = mine.seq + 1;
            if other != &mine || checker.check(other).is_err() {
                diverges = Some(Seq(mine.seq));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        },
    )
    .map_err(MigrateError::Source)?;
    if let Some(f) = failure {
        return Err(f);
    }
    match diverges {
        Some(seq) => Err(MigrateError::DestinationDiverges { events: held, seq }),
        None => Ok(held),
    }
}
