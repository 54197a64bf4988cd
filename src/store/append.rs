//! Turning new events into stored rows: sequence numbers, stream versions,
//! canonical payloads and the hash chain. Shared by every backend.

use crate::event::{NewEvent, RecordedEvent, format_timestamp};
use crate::id::{DeploymentId, Digest, Seq, StreamVersion};

use super::StoredEvent;

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
    let mut rows = Vec::with_capacity(events.len());
    let mut recorded = Vec::with_capacity(events.len());
    let mut prev = tail.hash;
    let mut scratch = Vec::with_capacity(512);
    for (i, e) in events.iter().enumerate() {
        let seq = tail.seq + 1 + i as u64;
        let stream_version = version.0 + 1 + i as u64;
        let at = format_timestamp(e.at);
        let mut row = StoredEvent {
            seq,
            deployment: deployment.as_str().to_owned(),
            stream_version,
            run: e.run.as_ref().map(|r| r.as_str().to_owned()),
            at,
            type_name: e.event.type_name().to_owned(),
            version: crate::event::EVENT_VERSION,
            payload: e.event.canonical_payload(),
            prev_hash: prev,
            hash: Digest::GENESIS,
        };
        row.hash = row.canonical().hash(&prev, &mut scratch);
        prev = row.hash;
        recorded.push(RecordedEvent {
            seq: Seq(seq),
            deployment: deployment.clone(),
            stream_version: StreamVersion(stream_version),
            run: e.run.clone(),
            at: jiff::Timestamp::from_microsecond(e.at.as_microsecond()).unwrap_or(e.at),
            event: e.event.clone(),
            prev_hash: row.prev_hash,
            hash: row.hash,
        });
        rows.push(row);
    }
    (rows, recorded)
}
