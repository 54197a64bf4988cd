//! Turning new events into stored rows: sequence numbers, stream versions,
//! canonical payloads and the hash chain. Shared by every backend.

use crate::event::{Event, NewEvent, RecordedEvent, format_timestamp};
use crate::id::{DeploymentId, Digest, Seq, StreamVersion};

use super::StoredEvent;
use super::seal::JournalKey;

/// The end of the chain an append extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// Sequence number of the last event (0 for an empty journal).
    pub seq: u64,
    /// Its hash ([`Digest::GENESIS`] for an empty journal).
    pub hash: Digest,
}

impl Tail {
    /// The tail of an empty journal.
    pub const EMPTY: Tail = Tail {
        seq: 0,
        hash: Digest::GENESIS,
    };
}

/// Encodes `events` as the next rows after `tail`, in `deployment`'s stream
/// at version `version`. Returns the rows to store and the recorded events.
pub fn encode(
    deployment: &DeploymentId,
    version: StreamVersion,
    tail: Tail,
    events: &[NewEvent],
) -> (Vec<StoredEvent>, Vec<RecordedEvent>) {
    encode_sealed(deployment, version, tail, events, None)
}

/// [`encode`], with each `run_finished` followed by the checkpoint that
/// seals it with `key` (when given).
pub fn encode_sealed(
    deployment: &DeploymentId,
    version: StreamVersion,
    tail: Tail,
    events: &[NewEvent],
    key: Option<&JournalKey>,
) -> (Vec<StoredEvent>, Vec<RecordedEvent>) {
    let mut rows = Vec::with_capacity(events.len() + 1);
    let mut recorded = Vec::with_capacity(events.len() + 1);
    let mut encoder = Encoder::new(deployment, version, tail);
    for e in events {
        let (row, rec) = encoder.next(e);
        rows.push(row);
        recorded.push(rec);
        if let Some((row, rec)) = encoder.seal(e, key) {
            rows.push(row);
            recorded.push(rec);
        }
    }
    (rows, recorded)
}

/// How many rows appending `events` writes when sealing with a key: one
/// more for each `run_finished`.
pub fn sealed_len(events: &[NewEvent], sealing: bool) -> usize {
    let seals = if sealing {
        events.iter().filter(|e| finishes(e)).count()
    } else {
        0
    };
    events.len() + seals
}

/// Whether `e` finishes a run (and so is sealed).
fn finishes(e: &NewEvent) -> bool {
    matches!(e.event, Event::RunFinished(_))
}

/// Encodes new events one at a time, each extending the chain of the one
/// before (for appends that store rows while later ones are encoded).
#[derive(Debug)]
pub struct Encoder<'a> {
    deployment: &'a DeploymentId,
    /// The last row's sequence number, stream version and hash.
    seq: u64,
    version: u64,
    prev: Digest,
    scratch: Vec<u8>,
}

impl<'a> Encoder<'a> {
    /// An encoder of the rows after `tail`, in `deployment`'s stream at
    /// version `version`.
    pub fn new(deployment: &'a DeploymentId, version: StreamVersion, tail: Tail) -> Self {
        Self {
            deployment,
            seq: tail.seq,
            version: version.0,
            prev: tail.hash,
            scratch: Vec::with_capacity(512),
        }
    }

    /// The checkpoint that seals the row just encoded, when that row was
    /// `e`, a `run_finished`, and there is a `key`: in the same run, at the
    /// same time.
    pub fn seal(
        &mut self,
        e: &NewEvent,
        key: Option<&JournalKey>,
    ) -> Option<(StoredEvent, RecordedEvent)> {
        let key = key.filter(|_| finishes(e))?;
        let checkpoint = NewEvent {
            run: e.run.clone(),
            at: e.at,
            event: Event::JournalCheckpoint(key.seal(Seq(self.seq), self.prev)),
        };
        Some(self.next(&checkpoint))
    }

    /// The next row, and the event as recorded.
    pub fn next(&mut self, e: &NewEvent) -> (StoredEvent, RecordedEvent) {
        self.seq += 1;
        self.version += 1;
        let mut row = StoredEvent {
            seq: self.seq,
            deployment: self.deployment.as_str().to_owned(),
            stream_version: self.version,
            run: e.run.as_ref().map(|r| r.as_str().to_owned()),
            at: format_timestamp(e.at),
            type_name: e.event.type_name().to_owned(),
            version: crate::event::EVENT_VERSION,
            payload: e.event.canonical_payload(),
            prev_hash: self.prev,
            hash: Digest::GENESIS,
        };
        row.hash = row.canonical().hash(&self.prev, &mut self.scratch);
        self.prev = row.hash;
        let recorded = RecordedEvent {
            seq: Seq(self.seq),
            deployment: self.deployment.clone(),
            stream_version: StreamVersion(self.version),
            run: e.run.clone(),
            at: jiff::Timestamp::from_microsecond(e.at.as_microsecond()).unwrap_or(e.at),
            event: e.event.clone(),
            prev_hash: row.prev_hash,
            hash: row.hash,
        };
        (row, recorded)
    }
}
