//! Checking a journal: the hash chain, the sequence, the streams, and that
//! the cached projections equal a fresh fold.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::BuildHasher as _;
use std::ops::ControlFlow;

use serde::Serialize;

use super::seal::{ExpectedHead, JournalKey, SealChecker, SealReport};
use super::{EventStore, Scan, StoreError, StoredEvent};
use crate::id::{DeploymentId, Digest, RunId, Seq};
use crate::projection::{Projection, RunView};

/// The first thing found wrong with a journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("event {seq}: {problem}")]
pub struct ChainError {
    /// The first bad sequence number.
    pub seq: Seq,
    /// What is wrong with it.
    pub problem: String,
}

/// Walks a journal event by event, checking each against the one before.
#[derive(Debug)]
pub struct ChainChecker {
    /// The sequence number expected next (`None`: whatever comes first, for
    /// filtered exports).
    next_seq: Option<u64>,
    /// The hash the next event must name as its predecessor.
    prev: Option<Digest>,
    /// Stream versions seen per deployment.
    streams: HashMap<String, u64>,
    /// Whether gaps are allowed (a filtered export).
    gaps_allowed: bool,
    /// Whether a stream's first event may have any version (a check that
    /// starts in the middle of the journal).
    streams_from_first: bool,
    /// Scratch buffer for canonical bytes.
    scratch: Vec<u8>,
    /// Events checked.
    pub count: u64,
}

impl ChainChecker {
    /// A checker for a whole journal, which must start at sequence 1 with the
    /// genesis hash and have no gaps.
    pub fn whole() -> Self {
        Self::from_seq(1)
    }

    /// A checker for the part of a journal from sequence `seq` on, without
    /// gaps: the first event's own hash is checked, and its link only from
    /// the start of the journal.
    pub fn from_seq(seq: u64) -> Self {
        Self {
            next_seq: Some(seq),
            prev: (seq <= 1).then_some(Digest::GENESIS),
            streams: HashMap::new(),
            gaps_allowed: false,
            streams_from_first: seq > 1,
            scratch: Vec::with_capacity(512),
            count: 0,
        }
    }

    /// A checker for the events after `tail`, which the first must name
    /// as its predecessor.
    pub fn after(tail: super::Tail) -> Self {
        Self {
            prev: Some(tail.hash),
            ..Self::from_seq(tail.seq + 1)
        }
    }

    /// A checker for a filtered export: each event's hash must match its own
    /// content and its stated predecessor; links are checked only between
    /// consecutive sequence numbers.
    pub fn filtered() -> Self {
        Self {
            next_seq: None,
            prev: None,
            streams: HashMap::new(),
            gaps_allowed: true,
            streams_from_first: true,
            scratch: Vec::with_capacity(512),
            count: 0,
        }
    }

    /// Checks one event.
    pub fn check(&mut self, e: &StoredEvent) -> Result<(), ChainError> {
        let fail = |problem: String| ChainError {
            seq: Seq(e.seq),
            problem,
        };
        let consecutive = self.next_seq == Some(e.seq);
        if !self.gaps_allowed {
            match self.next_seq {
                Some(n) if n == e.seq => {}
                Some(n) if e.seq > n => {
                    return Err(ChainError {
                        seq: Seq(n),
                        problem: format!("missing: the next event stored is {}", e.seq),
                    });
                }
                Some(n) => {
                    return Err(fail(format!(
                        "out of order: expected sequence {n}, found {}",
                        e.seq
                    )));
                }
                None => {}
            }
        } else if let Some(n) = self.next_seq
            && e.seq < n
        {
            return Err(fail(format!("out of order: expected at least {n}")));
        }
        if (consecutive || !self.gaps_allowed)
            && let Some(prev) = self.prev
            && e.prev_hash != prev
        {
            return Err(fail(format!(
                "previous hash {} does not match the hash of event {} ({})",
                e.prev_hash.short(),
                e.seq.saturating_sub(1),
                prev.short()
            )));
        }
        let computed = e.canonical().hash(&e.prev_hash, &mut self.scratch);
        if computed != e.hash {
            return Err(fail(format!(
                "content does not match its hash (stored {}, computed {})",
                e.hash.short(),
                computed.short()
            )));
        }
        // Looked up before inserting: no copy of the name per event.
        let sv = match self.streams.get_mut(&e.deployment) {
            Some(sv) => sv,
            None => {
                let first = if self.streams_from_first {
                    e.stream_version.saturating_sub(1)
                } else {
                    0
                };
                self.streams.entry(e.deployment.clone()).or_insert(first)
            }
        };
        if !self.gaps_allowed && e.stream_version != *sv + 1 {
            return Err(fail(format!(
                "stream {} jumps from version {} to {}",
                e.deployment, sv, e.stream_version
            )));
        }
        *sv = e.stream_version;
        self.next_seq = Some(e.seq + 1);
        self.prev = Some(e.hash);
        self.count += 1;
        Ok(())
    }

    /// The hash of the last event checked.
    pub fn last_hash(&self) -> Option<Digest> {
        self.prev
    }
}

/// What `replay --verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// Deployments found.
    pub deployments: usize,
    /// Runs found.
    pub runs: usize,
    /// Hash of the last event.
    pub last_hash: Option<Digest>,
    /// The first broken link, bad hash or unreadable event.
    pub chain_error: Option<ChainError>,
    /// Cached projections that differ from a fresh fold.
    pub projection_mismatches: Vec<String>,
    /// The index digest of every row, when asked for and the chain held.
    #[serde(skip)]
    pub rows_digest: Option<IndexDigest>,
    /// What the checkpoints and the expected heads showed (when the chain
    /// held).
    pub seal: Option<SealReport>,
}

impl VerifyReport {
    /// Whether everything checked out.
    pub fn is_ok(&self) -> bool {
        self.chain_error.is_none() && self.projection_mismatches.is_empty()
    }
}

/// Order-independent digests of the keys of the events table's two
/// indexes: `(deployment, stream_version, seq)` and `(run, seq)`. Taken
/// over the table's rows and over each index's entries, they are equal
/// when every index holds exactly one entry per row (see
/// [`EventStore::check_storage_keyed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IndexDigest {
    /// Entries of the `(deployment, stream_version)` index, and the sum of
    /// their keyed hashes.
    pub by_stream: (u64, u64),
    /// Entries of the `(run, seq)` index, and the sum of their keyed
    /// hashes.
    pub by_run: (u64, u64),
}

/// The keyed hash of [`IndexDigest`], with a random key per process, so
/// that no index can be crafted in advance to sum like a table it does
/// not match.
#[derive(Debug, Clone, Default)]
pub struct IndexKeys(std::hash::RandomState);

impl IndexKeys {
    /// A fresh random key.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one entry of the `(deployment, stream_version)` index.
    pub fn stream_entry(
        &self,
        d: &mut IndexDigest,
        deployment: &str,
        stream_version: u64,
        seq: u64,
    ) {
        d.by_stream.0 += 1;
        d.by_stream.1 =
            d.by_stream
                .1
                .wrapping_add(self.0.hash_one((deployment, stream_version, seq)));
    }

    /// Adds one entry of the `(run, seq)` index.
    pub fn run_entry(&self, d: &mut IndexDigest, run: Option<&str>, seq: u64) {
        d.by_run.0 += 1;
        d.by_run.1 = d.by_run.1.wrapping_add(self.0.hash_one((run, seq)));
    }

    /// Adds what one row of the table puts in each index.
    pub fn row(&self, d: &mut IndexDigest, e: &StoredEvent) {
        self.stream_entry(d, &e.deployment, e.stream_version, e.seq);
        self.run_entry(d, e.run.as_deref(), e.seq);
    }
}

/// Re-checks the whole chain of `store` and compares its cached projections
/// with a fresh fold.
///
/// Two threads share the work: one reads the rows and checks the hash chain,
/// the other decodes and folds them, so a journal of a million events is
/// verified in about the time the slower half takes.
pub fn verify_store(store: &dyn EventStore) -> Result<(VerifyReport, Projection), StoreError> {
    verify_store_keyed(store, None)
}

/// [`verify_store`], also taking the [`IndexDigest`] of the rows read with
/// `keys` (in [`VerifyReport::rows_digest`] when every row was read).
pub fn verify_store_keyed(
    store: &dyn EventStore,
    keys: Option<&IndexKeys>,
) -> Result<(VerifyReport, Projection), StoreError> {
    verify_store_with(
        store,
        VerifyOptions {
            keys,
            ..VerifyOptions::default()
        },
    )
}

/// What a verification checks beside the chain and the projections.
#[derive(Debug, Default)]
pub struct VerifyOptions<'a> {
    /// Take the [`IndexDigest`] of the rows with these keys.
    pub keys: Option<&'a IndexKeys>,
    /// Check every checkpoint's seal with this journal key.
    pub journal_key: Option<JournalKey>,
    /// Heads the journal must hold (given, or recorded outside it).
    pub expected: Vec<ExpectedHead>,
}

/// [`verify_store`] with `options`: the checkpoints are checked with the
/// journal key when one is given (and then the journal must be sealed up to
/// its last finished run), and every expected head must be in the journal.
pub fn verify_store_with(
    store: &dyn EventStore,
    options: VerifyOptions<'_>,
) -> Result<(VerifyReport, Projection), StoreError> {
    let VerifyOptions {
        keys,
        journal_key,
        expected,
    } = options;
    const CHUNK: usize = 2048;
    let (tx, rx) =
        std::sync::mpsc::sync_channel::<Result<Vec<crate::event::RecordedEvent>, ChainError>>(8);
    let (scan_result, fold_result) = std::thread::scope(|scope| {
        let reader = scope.spawn(move || {
            let mut checker = ChainChecker::whole();
            let mut seals = SealChecker::new(journal_key, expected);
            let mut chain_error = None;
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut digest = IndexDigest::default();
            let r = store.scan(&Scan::default(), &mut |e| {
                if let Some(keys) = keys {
                    keys.row(&mut digest, &e);
                }
                if let Err(err) = checker.check(&e).and_then(|()| seals.check(&e)) {
                    chain_error = Some(err);
                    return ControlFlow::Break(());
                }
                let seq = e.seq;
                match e.into_recorded() {
                    Ok(r) => chunk.push(r),
                    Err(err) => {
                        let _ = tx.send(Ok(std::mem::take(&mut chunk)));
                        let _ = tx.send(Err(ChainError {
                            seq: Seq(seq),
                            problem: crate::text::error_chain(&err),
                        }));
                        return ControlFlow::Break(());
                    }
                }
                if chunk.len() == CHUNK
                    && tx
                        .send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))))
                        .is_err()
                {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            });
            if !chunk.is_empty() {
                let _ = tx.send(Ok(chunk));
            }
            drop(tx);
            r.map(|()| (checker, chain_error, digest, seals))
        });
        let mut projection = Projection::new();
        let mut decode_error = None;
        for chunk in rx {
            match chunk {
                Ok(events) => {
                    for r in &events {
                        projection.apply(r);
                    }
                }
                Err(e) => {
                    decode_error = Some(e);
                    break;
                }
            }
        }
        let scanned = reader
            .join()
            .unwrap_or_else(|_| Err(StoreError::Backend("journal reader failed".to_owned())));
        (scanned, (projection, decode_error))
    });
    let (checker, chain_error, digest, seals) = scan_result?;
    let (projection, decode_error) = fold_result;
    // The first problem by sequence number wins.
    let mut chain_error = match (chain_error, decode_error) {
        (Some(a), Some(b)) => Some(if b.seq < a.seq { b } else { a }),
        (a, b) => a.or(b),
    };
    let mut seal = None;
    if chain_error.is_none() {
        let is_open = |run: &str| {
            run.parse::<RunId>()
                .ok()
                .and_then(|id| projection.runs.get(&id))
                .is_some_and(RunView::is_open)
        };
        match seals.finish(&is_open) {
            Ok(report) => seal = Some(report),
            Err(e) => chain_error = Some(e),
        }
    }
    let mut mismatches = Vec::new();
    if chain_error.is_none() {
        compare(store, &projection, &mut mismatches)?;
    }
    Ok((
        VerifyReport {
            events: checker.count,
            deployments: projection.deployments.len(),
            runs: projection.runs.len(),
            last_hash: checker.last_hash().filter(|_| checker.count > 0),
            rows_digest: keys.filter(|_| chain_error.is_none()).map(|_| digest),
            chain_error,
            projection_mismatches: mismatches,
            seal,
        },
        projection,
    ))
}

fn compare(
    store: &dyn EventStore,
    fresh: &Projection,
    out: &mut Vec<String>,
) -> Result<(), StoreError> {
    // A deployment in the middle of a command (its lock held, as
    // journaled) may have stored views that lag its stream: readers fold
    // the rest, so it is compared as they see it. At rest, every stored
    // view must be current.
    let busy: BTreeSet<&DeploymentId> = fresh
        .deployments
        .values()
        .filter(|v| v.lock.is_some())
        .map(|v| &v.deployment)
        .collect();
    let cached: BTreeMap<_, _> = store
        .cached_deployments()?
        .into_iter()
        .map(|d| (d.deployment.clone(), d))
        .collect();
    for (name, view) in &fresh.deployments {
        let read;
        let seen = match cached.get(name) {
            None if busy.contains(name) => {
                read = store.deployment(name)?;
                read.as_ref()
            }
            c => c,
        };
        match seen {
            None => out.push(format!("deployment {name}: no cached projection")),
            Some(c) if c != view => out.push(format!(
                "deployment {name}: cached projection differs from the fold (cached at version {}, fold at {})",
                c.version, view.version
            )),
            Some(_) => {}
        }
    }
    for name in cached.keys() {
        if !fresh.deployments.contains_key(name) {
            out.push(format!(
                "deployment {name}: cached projection without events"
            ));
        }
    }
    // Runs can number in the hundreds of thousands: compare each stored
    // body as it is read. The cache is written by serialising the same
    // views, so equal text means equal views; only when the text differs
    // is the body parsed and compared field by field. The runs of a busy
    // deployment are compared below, as readers see them.
    let is_busy = |run: &RunView| busy.contains(&run.deployment);
    let expected = fresh.runs.values().filter(|r| !is_busy(r)).count();
    let mut seen = 0usize;
    store.visit_cached_run_bodies(&mut |id, body| {
        let Some(run) = id.parse::<RunId>().ok().and_then(|id| fresh.runs.get(&id)) else {
            out.push(format!("run {id}: cached projection without events"));
            return;
        };
        if is_busy(run) {
            return;
        }
        seen += 1;
        if serde_json::to_string(run).is_ok_and(|text| text == body) {
            return;
        }
        match serde_json::from_str::<RunView>(body) {
            Ok(c) if &c == run => {}
            _ => out.push(format!("run {id}: cached projection differs from the fold")),
        }
    })?;
    if seen < expected {
        let mut cached = BTreeSet::new();
        store.visit_cached_run_bodies(&mut |id, _| {
            cached.insert(id.to_owned());
        })?;
        for (id, _) in fresh.runs.iter().filter(|(_, r)| !is_busy(r)) {
            if !cached.contains(id.as_str()) {
                out.push(format!("run {id}: no cached projection"));
            }
        }
    }
    for name in &busy {
        let read: BTreeMap<RunId, RunView> = store
            .runs(name)?
            .into_iter()
            .map(|r| (r.run.clone(), r))
            .collect();
        for (id, run) in fresh.runs.iter().filter(|(_, r)| &r.deployment == *name) {
            match read.get(id) {
                None => out.push(format!("run {id}: no cached projection")),
                Some(c) if c != run => {
                    out.push(format!("run {id}: cached projection differs from the fold"));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}
