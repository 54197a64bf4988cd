//! PostgreSQL journal benchmarks: appends through the store beside a raw
//! INSERT of the same rows, and the journal work of a no-op apply.
//!
//! Needs a server: `eval "$(scripts/pg-test-server start)"`, then
//! `cargo bench --bench postgres`, then `scripts/pg-test-server stop`.
//! Without `FABRIK_TEST_POSTGRES_URL` it measures nothing. Both sides use
//! plain-text connections on loopback, so the difference is Fabrik's work
//! (the advisory lock, the version check, the projection fold and upsert,
//! the thread hand-off), not TLS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    missing_docs
)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fabrik::event::{LockHolder, NewEvent};
use fabrik::generate::{Shape, generate};
use fabrik::id::{DeploymentId, RunId, StreamVersion};
use fabrik::store::postgres::{PgLocks, PgStore, PgUrl};
use fabrik::store::{EventStore, StoredEvent, Tail, encode};

fn server() -> Option<String> {
    let url = std::env::var("FABRIK_TEST_POSTGRES_URL").ok();
    if url.is_none() {
        eprintln!("note: FABRIK_TEST_POSTGRES_URL is unset; no PostgreSQL benchmark runs");
    }
    url
}

/// A new, empty database; returns its URL (plain text on loopback).
fn fresh_db(admin: &str) -> (String, String) {
    let name = format!("fabrik_bench_{}", RunId::generate());
    let mut c = postgres::Client::connect(admin, postgres::NoTls).unwrap();
    c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let mut u = url::Url::parse(admin).unwrap();
    u.set_path(&format!("/{name}"));
    u.set_query(Some("sslmode=disable"));
    (name, u.to_string())
}

fn drop_db(admin: &str, name: &str) {
    let mut c = postgres::Client::connect(admin, postgres::NoTls).unwrap();
    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
}

fn events(n_events: usize) -> Vec<(DeploymentId, NewEvent)> {
    let mut out = Vec::new();
    generate(
        Shape {
            deployments: 50,
            runs: n_events / 500 + 2,
            records: 3,
            seed: 3,
        },
        |b| {
            if out.len() < n_events {
                out.extend(b.events.into_iter().map(|e| (b.deployment.clone(), e)));
            }
        },
    );
    out
}

/// The same INSERT the store makes, without anything around it.
fn raw_insert(c: &mut postgres::Client, stmt: &postgres::Statement, rows: &[StoredEvent]) {
    let seq: Vec<i64> = rows.iter().map(|r| r.seq as i64).collect();
    let dep: Vec<&str> = rows.iter().map(|r| r.deployment.as_str()).collect();
    let sv: Vec<i64> = rows.iter().map(|r| r.stream_version as i64).collect();
    let run: Vec<Option<&str>> = rows.iter().map(|r| r.run.as_deref()).collect();
    let at: Vec<&str> = rows.iter().map(|r| r.at.as_str()).collect();
    let ty: Vec<&str> = rows.iter().map(|r| r.type_name.as_str()).collect();
    let ver: Vec<i32> = rows.iter().map(|r| r.version as i32).collect();
    let payload: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
    let prev: Vec<&[u8]> = rows.iter().map(|r| &r.prev_hash.0[..]).collect();
    let hash: Vec<&[u8]> = rows.iter().map(|r| &r.hash.0[..]).collect();
    let mut tx = c.transaction().unwrap();
    tx.execute(
        stmt,
        &[
            &seq, &dep, &sv, &run, &at, &ty, &ver, &payload, &prev, &hash,
        ],
    )
    .unwrap();
    tx.commit().unwrap();
}

/// Appends of `per_call` events per transaction, through the store and raw.
fn appends(c: &mut Criterion) {
    let Some(admin) = server() else {
        return;
    };
    let flat = events(20_000);
    let (store_db, store_url) = fresh_db(&admin);
    let (raw_db, raw_url) = fresh_db(&admin);
    let store = PgStore::open(&PgUrl::parse(&store_url).unwrap()).unwrap();
    // The raw side gets the same tables (and triggers) from the store's
    // migrations, then writes with a plain client.
    drop(PgStore::open(&PgUrl::parse(&raw_url).unwrap()).unwrap());
    let mut raw = postgres::Client::connect(&raw_url, postgres::NoTls).unwrap();
    let stmt = raw
        .prepare(
            "INSERT INTO events (seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                                  $6::text[], $7::integer[], $8::text[], $9::bytea[], $10::bytea[])",
        )
        .unwrap();

    let mut g = c.benchmark_group("pg_append");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    // Versions and the chain tail carry over from sample to sample: each
    // side keeps appending to its one journal.
    let mut store_versions: HashMap<DeploymentId, u64> = HashMap::new();
    let mut raw_versions: HashMap<DeploymentId, u64> = HashMap::new();
    let mut raw_tail = Tail::EMPTY;
    let mut i_store = 0usize;
    let mut i_raw = 0usize;
    for per_call in [1usize, 100] {
        g.throughput(Throughput::Elements(per_call as u64));
        g.bench_with_input(BenchmarkId::new("fabrik", per_call), &per_call, |b, &n| {
            b.iter_custom(|iters| {
                let mut calls = Vec::with_capacity(iters as usize);
                for _ in 0..iters {
                    let d = flat[i_store].0.clone();
                    let chunk: Vec<NewEvent> = flat[i_store..i_store + n]
                        .iter()
                        .map(|(_, e)| e.clone())
                        .collect();
                    calls.push((d, chunk));
                    i_store = (i_store + n) % (flat.len() - n);
                }
                let start = Instant::now();
                for (d, chunk) in &calls {
                    // The recorder knows its stream's version, as here.
                    let v = store_versions.entry(d.clone()).or_insert(0);
                    let rec = store.append(d, StreamVersion(*v), chunk).unwrap();
                    *v += rec.len() as u64;
                }
                start.elapsed()
            })
        });
        g.bench_with_input(
            BenchmarkId::new("raw_insert", per_call),
            &per_call,
            |b, &n| {
                b.iter_custom(|iters| {
                    // Encode the same rows outside the timed region: the
                    // floor is the cost of storing them.
                    let mut chunks = Vec::with_capacity(iters as usize);
                    for _ in 0..iters {
                        let d = &flat[i_raw].0;
                        let chunk: Vec<NewEvent> = flat[i_raw..i_raw + n]
                            .iter()
                            .map(|(_, e)| e.clone())
                            .collect();
                        let v = raw_versions.entry(d.clone()).or_insert(0);
                        let (rows, _) = encode(d, StreamVersion(*v), raw_tail, &chunk);
                        *v += rows.len() as u64;
                        let last = rows.last().unwrap();
                        raw_tail = Tail {
                            seq: last.seq,
                            hash: last.hash,
                        };
                        chunks.push(rows);
                        i_raw = (i_raw + n) % (flat.len() - n);
                    }
                    let start = Instant::now();
                    for rows in &chunks {
                        raw_insert(&mut raw, &stmt, rows);
                    }
                    start.elapsed()
                })
            },
        );
    }
    g.finish();
    assert!(fabrik::store::verify_store(&store).unwrap().0.is_ok());
    drop(store);
    drop(raw);
    drop_db(&admin, &store_db);
    drop_db(&admin, &raw_db);
}

/// The journal work of a no-op `apply` on PostgreSQL: connect and check
/// the schema, read the deployment's view and its latest run, take and
/// release the run lock.
fn noop_apply_journal(c: &mut Criterion) {
    let Some(admin) = server() else {
        return;
    };
    let (name, url) = fresh_db(&admin);
    let url = PgUrl::parse(&url).unwrap();
    let d = {
        let store = PgStore::open(&url).unwrap();
        let mut first = None;
        generate(
            Shape {
                deployments: 20,
                runs: 20,
                records: 3,
                seed: 5,
            },
            |b| {
                first.get_or_insert_with(|| b.deployment.clone());
                let v = store.stream_version(&b.deployment).unwrap();
                store.append(&b.deployment, v, &b.events).unwrap();
            },
        );
        first.unwrap()
    };
    let holder = LockHolder {
        run: RunId::generate(),
        pid: std::process::id(),
        host: "bench".into(),
        user: "bench".into(),
        command: "apply".into(),
        since: "2026-01-01T00:00:00Z".into(),
    };
    let mut g = c.benchmark_group("pg_noop_apply_journal");
    g.sample_size(20);
    g.bench_function("open_read_lock_release", |b| {
        b.iter(|| {
            let store = PgStore::open(&url).unwrap();
            let view = store.deployment(&d).unwrap().unwrap();
            let run = store.run(view.latest_run.as_ref().unwrap()).unwrap();
            assert!(run.is_some());
            let lock = PgLocks::new(url.clone())
                .acquire(&d, holder.clone(), None)
                .unwrap();
            lock.release();
        })
    });
    g.finish();
    drop_db(&admin, &name);
}

criterion_group!(benches, appends, noop_apply_journal);
criterion_main!(benches);
