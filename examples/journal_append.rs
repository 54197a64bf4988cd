//! Durable append throughput of the SQLite journal beside a raw rusqlite
//! INSERT of the same rows with the same settings, measured in alternating
//! rounds so that both see the same machine noise. Prints medians and the
//! ratio.
//!
//! ```text
//! cargo run --release --example journal_append -- [ROUNDS]
//! ```
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::time::Instant;

use fabrik::event::NewEvent;
use fabrik::generate::{Shape, generate};
use fabrik::id::{DeploymentId, StreamVersion};
use fabrik::store::sqlite::SqliteStore;
use fabrik::store::{EventStore, StoredEvent, Tail, encode};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One deployment's events, in order, as a run appends them.
fn events(n: usize) -> (DeploymentId, Vec<NewEvent>) {
    let mut out: Vec<NewEvent> = Vec::new();
    let mut name = None;
    generate(
        Shape {
            deployments: 1,
            runs: n / 10 + 2,
            records: 3,
            seed: 11,
        },
        |b| {
            name.get_or_insert(b.deployment.clone());
            out.extend(b.events);
        },
    );
    out.truncate(n);
    (name.expect("a deployment"), out)
}

fn raw(path: &std::path::Path, chunks: &[Vec<StoredEvent>]) -> f64 {
    drop(SqliteStore::open(path).unwrap());
    let mut c = rusqlite::Connection::open(path).unwrap();
    c.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))
        .unwrap();
    c.execute_batch("PRAGMA synchronous=FULL").unwrap();
    let start = Instant::now();
    for rows in chunks {
        let tx = c
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        {
            let mut s = tx
                .prepare_cached(
                    "INSERT INTO events (seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .unwrap();
            for r in rows {
                s.execute(rusqlite::params![
                    r.seq,
                    r.deployment,
                    r.stream_version,
                    r.run,
                    r.at,
                    r.type_name,
                    r.version,
                    r.payload,
                    &r.prev_hash.0[..],
                    &r.hash.0[..]
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    start.elapsed().as_secs_f64()
}

fn fabrik(path: &std::path::Path, d: &DeploymentId, chunks: &[&[NewEvent]]) -> f64 {
    let store = SqliteStore::open(path).unwrap();
    let start = Instant::now();
    let mut v = StreamVersion(0);
    for chunk in chunks {
        let rec = store.append(d, v, chunk).unwrap();
        v = rec.last().unwrap().stream_version;
    }
    start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(7);
    // Each batched run is long enough for both sides to pass through
    // several of SQLite's automatic checkpoints (one per 1000 WAL pages), so
    // that the figures are the steady state: a run of 5,000 events writes
    // just under 1000 pages with the raw INSERT and just over with Fabrik,
    // and would measure one checkpoint against none.
    for (label, per, n) in [
        ("single", 1usize, 400usize),
        ("batched (10 per append)", 10, 10_000),
        ("batched (100 per append)", 100, 20_000),
        ("batched (1000 per append)", 1000, 20_000),
    ] {
        let (d, evs) = events(n);
        let chunks: Vec<&[NewEvent]> = evs.chunks(per).collect();
        // The same rows, encoded once, for the floor.
        let mut tail = Tail::EMPTY;
        let mut v = 0u64;
        let rows: Vec<Vec<StoredEvent>> = chunks
            .iter()
            .map(|c| {
                let (r, _) = encode(&d, StreamVersion(v), tail, c);
                v += r.len() as u64;
                let last = r.last().unwrap();
                tail = Tail {
                    seq: last.seq,
                    hash: last.hash,
                };
                r
            })
            .collect();
        let (mut f, mut r) = (Vec::new(), Vec::new());
        for i in 0..rounds {
            let dir = tempfile::tempdir().unwrap();
            // Alternate which goes first.
            if i % 2 == 0 {
                f.push(fabrik(&dir.path().join("f.db"), &d, &chunks));
                r.push(raw(&dir.path().join("r.db"), &rows));
            } else {
                r.push(raw(&dir.path().join("r.db"), &rows));
                f.push(fabrik(&dir.path().join("f.db"), &d, &chunks));
            }
        }
        let (f, r) = (n as f64 / median(f), n as f64 / median(r));
        println!(
            "{label}: fabrik {f:.0} events/s, raw INSERT {r:.0} events/s, ratio {:.2} ({rounds} rounds, {per} per append)",
            f / r
        );
    }
}
