//! Journal benchmarks: fold throughput, and verification beside a raw
//! SELECT + blake3 floor. Durable appends beside their raw INSERT floor are
//! measured by `examples/journal_append.rs` (run by `scripts/bench.py`).
//!
//! `cargo bench --bench journal`; figures go in docs/PERFORMANCE.md.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::ops::ControlFlow;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// The allocator the `fabrik` binary uses, so the library is measured as it
/// runs (and the raw floors under the same allocator).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use fabrik::event::{NewEvent, RecordedEvent};
use fabrik::generate::{Shape, generate};
use fabrik::id::DeploymentId;
use fabrik::projection::Projection;
use fabrik::store::sqlite::SqliteStore;
use fabrik::store::{ChainChecker, EventStore, Scan};

fn batches(n_events: usize) -> Vec<(DeploymentId, Vec<NewEvent>)> {
    let mut out = Vec::new();
    let mut count = 0;
    generate(
        Shape {
            deployments: 50,
            runs: n_events / 500 + 2,
            records: 3,
            seed: 3,
        },
        |b| {
            if count < n_events {
                count += b.events.len();
                out.push((b.deployment, b.events));
            }
        },
    );
    out
}

fn recorded(n_events: usize) -> Vec<RecordedEvent> {
    let store = fabrik::store::memory::MemoryStore::new();
    for (d, e) in batches(n_events) {
        let v = store.stream_version(&d).unwrap();
        store.append(&d, v, &e).unwrap();
    }
    let mut out = Vec::new();
    store
        .scan(&Scan::default(), &mut |e| {
            out.push(e.decode().unwrap());
            ControlFlow::Continue(())
        })
        .unwrap();
    out
}

fn fold(c: &mut Criterion) {
    let events = recorded(200_000);
    let mut g = c.benchmark_group("fold");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);
    g.bench_function("200k_events", |b| b.iter(|| Projection::fold(&events)));
    g.finish();
}

/// Chain verification over a stored journal beside reading the same rows
/// and hashing the same bytes.
fn verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let store = SqliteStore::open(&path).unwrap();
    let n = store.bulk_append(batches(100_000), 1000).unwrap();
    let mut g = c.benchmark_group("verify");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n));
    g.bench_function("fabrik_verify_store", |b| {
        b.iter(|| {
            let (report, _) = fabrik::store::verify_store(&store).unwrap();
            assert!(report.is_ok());
        })
    });
    g.bench_function("chain_only", |b| {
        b.iter(|| {
            let mut checker = ChainChecker::whole();
            store
                .scan(&Scan::default(), &mut |e| {
                    checker.check(&e).unwrap();
                    ControlFlow::Continue(())
                })
                .unwrap();
        })
    });
    g.bench_function("floor_select_and_blake3", |b| {
        let conn = rusqlite::Connection::open(&path).unwrap();
        b.iter(|| {
            let mut s = conn
                .prepare_cached(
                    "SELECT seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash FROM events ORDER BY seq",
                )
                .unwrap();
            let mut rows = s.query([]).unwrap();
            let mut buf = Vec::with_capacity(512);
            let mut acc = 0u8;
            while let Some(r) = rows.next().unwrap() {
                use std::io::Write as _;
                buf.clear();
                let prev = r.get_ref(8).unwrap().as_blob().unwrap();
                write!(
                    buf,
                    "fabrik-event-v1\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
                    r.get_ref(0).unwrap().as_i64().unwrap(),
                    r.get_ref(1).unwrap().as_str().unwrap(),
                    r.get_ref(2).unwrap().as_i64().unwrap(),
                    r.get_ref(3).unwrap().as_str_or_null().unwrap().unwrap_or(""),
                    r.get_ref(4).unwrap().as_str().unwrap(),
                    r.get_ref(5).unwrap().as_str().unwrap(),
                    r.get_ref(6).unwrap().as_i64().unwrap()
                )
                .unwrap();
                buf.extend_from_slice(r.get_ref(7).unwrap().as_bytes().unwrap());
                let mut h = blake3::Hasher::new();
                h.update(prev);
                h.update(&buf);
                acc ^= h.finalize().as_bytes()[0];
            }
            acc
        })
    });
    g.finish();
}

criterion_group!(benches, fold, verify);
criterion_main!(benches);
