//! The store contract: every backend must pass these.

use std::ops::ControlFlow;
use std::sync::{Arc, Barrier};

use fabrik::event::{
    Event, LockAcquired, LockHolder, LockReleased, NewEvent, RunCommand, RunOptions, RunResumed,
    RunStarted, RunStateChanged,
};
use fabrik::generate::Shape;
use fabrik::id::{DeploymentId, RunId, Seq, StreamVersion};
use fabrik::projection::{Projection, RunState};
use fabrik::store::memory::MemoryStore;
use fabrik::store::sqlite::SqliteStore;
use fabrik::store::{EventStore, Scan, StoreError, verify_store};

use crate::support::fill;

/// Opens another handle on the same journal.
pub type Reopen = Box<dyn Fn() -> Arc<dyn EventStore> + Send + Sync>;

/// A backend under test: how to open a fresh store, and a second handle on
/// the same journal (another connection or the same instance).
pub trait Backend {
    fn fresh(&self) -> (Arc<dyn EventStore>, Reopen);
}

struct Memory;
impl Backend for Memory {
    fn fresh(&self) -> (Arc<dyn EventStore>, Reopen) {
        let s: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
        let again = s.clone();
        (s, Box::new(move || again.clone()))
    }
}

struct Sqlite(tempfile::TempDir);
impl Backend for Sqlite {
    fn fresh(&self) -> (Arc<dyn EventStore>, Reopen) {
        let path = self.0.path().join(format!("{}.db", RunId::generate()));
        let s: Arc<dyn EventStore> = Arc::new(SqliteStore::open(&path).unwrap());
        (
            s,
            Box::new(move || Arc::new(SqliteStore::open(&path).unwrap()) as Arc<dyn EventStore>),
        )
    }
}

fn dep(name: &str) -> DeploymentId {
    DeploymentId::new(name).unwrap()
}

fn at(micros: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(1_767_225_600_000_000 + micros).unwrap()
}

fn started(run: &RunId) -> NewEvent {
    NewEvent {
        run: Some(run.clone()),
        at: at(1),
        event: Event::RunStarted(RunStarted {
            command: RunCommand::Apply,
            spec_path: Some("spec.yaml".into()),
            spec_hash: None,
            user: "u".into(),
            host: "h".into(),
            pid: 1,
            fabrik_version: "0".into(),
            options: RunOptions::default(),
        }),
    }
}

fn moved(run: &RunId, from: RunState, to: RunState) -> NewEvent {
    NewEvent {
        run: Some(run.clone()),
        at: at(2),
        event: Event::RunStateChanged(RunStateChanged {
            from,
            to,
            reason: None,
        }),
    }
}

/// Every contract check, against one backend.
pub fn contract(b: &dyn Backend) {
    appends_extend_the_chain_and_the_stream(b);
    a_stale_expected_version_is_a_conflict_and_appends_nothing(b);
    streams_are_independent_but_share_one_chain(b);
    two_writers_at_the_same_version_exactly_one_wins(b);
    cached_projections_equal_a_fresh_fold(b);
    scans_filter_by_deployment_run_and_sequence(b);
}

fn appends_extend_the_chain_and_the_stream(b: &dyn Backend) {
    let (s, _) = b.fresh();
    assert_eq!(s.len().unwrap(), 0);
    assert_eq!(s.stream_version(&dep("a")).unwrap(), StreamVersion(0));
    let run = RunId::generate();
    let rec = s
        .append(
            &dep("a"),
            StreamVersion(0),
            &[
                started(&run),
                moved(&run, RunState::Pending, RunState::Validating),
            ],
        )
        .unwrap();
    assert_eq!(rec.len(), 2);
    assert_eq!(rec[0].seq, Seq(1));
    assert_eq!(rec[1].seq, Seq(2));
    assert_eq!(rec[1].stream_version, StreamVersion(2));
    assert_eq!(rec[1].prev_hash, rec[0].hash);
    assert_eq!(s.stream_version(&dep("a")).unwrap(), StreamVersion(2));
    let back = s.read_stream(&dep("a"), StreamVersion(0)).unwrap();
    assert_eq!(back, rec, "what is read back equals what was appended");
    let view = s.deployment(&dep("a")).unwrap().unwrap();
    assert_eq!(view.latest_state, Some(RunState::Validating));
    assert_eq!(s.run(&run).unwrap().unwrap().state, RunState::Validating);
}

fn a_stale_expected_version_is_a_conflict_and_appends_nothing(b: &dyn Backend) {
    let (s, _) = b.fresh();
    let run = RunId::generate();
    s.append(&dep("a"), StreamVersion(0), &[started(&run)])
        .unwrap();
    let err = s
        .append(&dep("a"), StreamVersion(0), &[started(&RunId::generate())])
        .unwrap_err();
    match err {
        StoreError::Conflict {
            expected, actual, ..
        } => {
            assert_eq!(expected, StreamVersion(0));
            assert_eq!(actual, StreamVersion(1));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.len().unwrap(), 1);
}

fn streams_are_independent_but_share_one_chain(b: &dyn Backend) {
    let (s, _) = b.fresh();
    let (r1, r2) = (RunId::generate(), RunId::generate());
    let a = s
        .append(&dep("a"), StreamVersion(0), &[started(&r1)])
        .unwrap();
    let bb = s
        .append(&dep("b"), StreamVersion(0), &[started(&r2)])
        .unwrap();
    assert_eq!(bb[0].seq, Seq(2));
    assert_eq!(bb[0].stream_version, StreamVersion(1));
    assert_eq!(bb[0].prev_hash, a[0].hash);
    assert_eq!(s.deployments().unwrap(), vec![dep("a"), dep("b")]);
    assert_eq!(s.runs(&dep("b")).unwrap().len(), 1);
}

fn two_writers_at_the_same_version_exactly_one_wins(b: &dyn Backend) {
    let (s, reopen) = b.fresh();
    let run = RunId::generate();
    s.append(&dep("a"), StreamVersion(0), &[started(&run)])
        .unwrap();
    for round in 0..5 {
        let barrier = Arc::new(Barrier::new(2));
        let version = s.stream_version(&dep("a")).unwrap();
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let store = reopen();
                let barrier = barrier.clone();
                let run = run.clone();
                std::thread::spawn(move || {
                    let e = NewEvent {
                        run: Some(run),
                        at: at(100 + i),
                        event: Event::LockReleased(LockReleased {
                            run: RunId::generate(),
                        }),
                    };
                    barrier.wait();
                    store.append(&dep("a"), version, &[e])
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let wins = results.iter().filter(|r| r.is_ok()).count();
        let conflicts = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Conflict { .. })))
            .count();
        assert_eq!((wins, conflicts), (1, 1), "round {round}: {results:?}");
    }
    assert_eq!(s.len().unwrap(), 6);
    let (report, _) = verify_store(s.as_ref()).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

fn cached_projections_equal_a_fresh_fold(b: &dyn Backend) {
    let (s, _) = b.fresh();
    let n = fill(
        s.as_ref(),
        Shape {
            deployments: 4,
            runs: 6,
            records: 2,
            seed: 9,
        },
    );
    assert_eq!(s.len().unwrap(), n);
    let (report, fold) = verify_store(s.as_ref()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, n);
    for d in s.deployments().unwrap() {
        assert_eq!(s.deployment(&d).unwrap().as_ref(), fold.deployments.get(&d));
        let runs = s.runs(&d).unwrap();
        assert_eq!(runs.len(), 6);
        assert!(runs.windows(2).all(|w| w[0].first_seq < w[1].first_seq));
    }
}

fn scans_filter_by_deployment_run_and_sequence(b: &dyn Backend) {
    let (s, _) = b.fresh();
    fill(
        s.as_ref(),
        Shape {
            deployments: 3,
            runs: 2,
            records: 1,
            seed: 1,
        },
    );
    let collect = |scan: Scan| {
        let mut v = Vec::new();
        s.scan(&scan, &mut |e| {
            v.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
        v
    };
    let d = dep("svc-00001");
    let only_d = collect(Scan {
        deployment: Some(d.clone()),
        ..Scan::default()
    });
    assert!(!only_d.is_empty());
    assert!(only_d.iter().all(|e| e.deployment == d.as_str()));
    assert!(only_d.windows(2).all(|w| w[0].seq < w[1].seq));
    let run: RunId = only_d[0].run.clone().unwrap().parse().unwrap();
    let only_run = collect(Scan {
        run: Some(run.clone()),
        ..Scan::default()
    });
    assert!(
        only_run
            .iter()
            .all(|e| e.run.as_deref() == Some(run.as_str()))
    );
    let until = collect(Scan {
        until_seq: Some(Seq(10)),
        ..Scan::default()
    });
    assert_eq!(until.len(), 10);
    // Folding the stored rows gives the cached view.
    let p = Projection::fold(
        &collect(Scan::default())
            .iter()
            .map(|e| e.decode().unwrap())
            .collect::<Vec<_>>(),
    );
    assert_eq!(p.deployments.get(&d), s.deployment(&d).unwrap().as_ref());
}

#[test]
fn memory_store_fulfils_the_contract() {
    contract(&Memory);
}

#[test]
fn sqlite_store_fulfils_the_contract() {
    contract(&Sqlite(tempfile::tempdir().unwrap()));
}

#[test]
fn many_processes_opening_a_new_journal_at_once_all_succeed() {
    // Threads stand in for processes: each opens its own connection to a
    // journal that does not exist yet, so they race on creating the file,
    // switching it to WAL and creating the schema.
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteStore::open(&path).map(|_| ())
                })
            })
            .collect();
        for h in handles {
            let r = h.join().unwrap();
            assert!(r.is_ok(), "round {round}: {:?}", r.err());
        }
    }
}

/// The split storage check of `replay --verify`: over an intact journal the
/// digests of the two indexes of the events table equal those of the rows
/// read by the chain check; after a row is added behind the reader's back
/// they differ (so the full check decides), and neither finds a problem.
#[test]
fn the_index_digests_match_the_rows_until_the_journal_grows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let n = fill(
        &store,
        Shape {
            deployments: 5,
            runs: 60,
            records: 2,
            seed: 9,
        },
    );
    let keys = fabrik::store::IndexKeys::new();
    let (report, _) = fabrik::store::verify_store_keyed(&store, Some(&keys)).unwrap();
    let rows = report.rows_digest.expect("every row read");
    assert_eq!(rows.by_stream.0, n);
    assert_eq!(rows.by_run.0, n);
    let (problems, indexed) = store.check_storage_keyed(&keys).unwrap().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(indexed, rows);
    // Another key sums differently: the digest depends on it.
    let other = fabrik::store::IndexKeys::new();
    let (_, by_other) = store.check_storage_keyed(&other).unwrap().unwrap();
    assert_ne!(by_other, indexed);

    let d = dep("late");
    let run = RunId::from_u128(77);
    store
        .append(&d, StreamVersion(0), &[started(&run)])
        .unwrap();
    let (problems, grown) = store.check_storage_keyed(&keys).unwrap().unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_ne!(grown, rows);
    assert_eq!(grown.by_stream.0, n + 1);
    assert!(store.check_storage().unwrap().is_empty());
}

fn locked(run: &RunId) -> NewEvent {
    NewEvent {
        run: Some(run.clone()),
        at: at(2),
        event: Event::LockAcquired(LockAcquired {
            holder: LockHolder {
                run: run.clone(),
                pid: 1,
                host: "h".into(),
                user: "u".into(),
                command: "apply".into(),
                since: "2026-01-01T00:00:00Z".into(),
            },
        }),
    }
}

fn resumed(run: &RunId, i: u32) -> NewEvent {
    NewEvent {
        run: Some(run.clone()),
        at: at(3 + i64::from(i)),
        event: Event::RunResumed(RunResumed {
            pid: i,
            host: "h".into(),
            user: "u".into(),
        }),
    }
}

/// The stream version the SQLite journal's stored view of `d` reflects.
fn stored_version(path: &std::path::Path, d: &DeploymentId) -> Option<u64> {
    let c = rusqlite::Connection::open(path).unwrap();
    c.query_row(
        "SELECT version FROM deployment_projection WHERE deployment = ?1",
        [d.as_str()],
        |r| r.get(0),
    )
    .ok()
}

/// Runs `sql` on the journal from a connection of its own.
fn tamper(path: &std::path::Path, sql: &str) {
    let c = rusqlite::Connection::open(path).unwrap();
    assert_eq!(c.execute(sql, []).unwrap(), 1, "{sql}");
}

/// While a command holds a deployment's lock, the SQLite journal appends its
/// events without rewriting the stored views each time (they may lag by at
/// most about 1024 events); every reader, in this process or another, folds
/// the rest and sees the same views as a fold of the whole journal, and
/// verification still finds a damaged view. Once the lock is released the
/// stored views are current.
#[test]
fn sqlite_views_of_a_busy_deployment_lag_but_every_reader_sees_them_current() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let d = dep("svc-busy");
    let run = RunId::generate();
    let mut v = StreamVersion(0);
    let append = |v: &mut StreamVersion, events: &[NewEvent]| {
        let recorded = store.append(&d, *v, events).unwrap();
        *v = recorded.last().unwrap().stream_version;
    };
    append(&mut v, &[started(&run), locked(&run)]);
    for i in 0..10 {
        append(&mut v, &[resumed(&run, i)]);
    }
    assert_eq!(
        stored_version(&path, &d),
        None,
        "a run's first events are not followed by a write of the views"
    );
    let reader = SqliteStore::open(&path).unwrap();
    let (report, fold) = verify_store(&reader).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        reader.deployment(&d).unwrap().as_ref(),
        fold.deployments.get(&d)
    );

    let many: Vec<NewEvent> = (10..1510).map(|i| resumed(&run, i)).collect();
    for chunk in many.chunks(100) {
        append(&mut v, chunk);
    }
    let lag = v.0 - stored_version(&path, &d).unwrap_or(0);
    assert!(
        (1..1024 + 100).contains(&lag),
        "the stored views lag, by less than 1024 events and one append: {lag}"
    );
    let (report, fold) = verify_store(&reader).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let view = fold.deployments.get(&d).unwrap();
    assert_eq!(view.version, v);
    let run_view = fold.runs.get(&run).unwrap();
    assert_eq!(run_view.resumed, 1510);
    for r in [&store as &dyn EventStore, &reader] {
        assert_eq!(r.deployment(&d).unwrap().as_ref(), Some(view));
        assert_eq!(r.run(&run).unwrap().as_ref(), Some(run_view));
        assert_eq!(r.runs(&d).unwrap(), vec![run_view.clone()]);
        assert_eq!(r.cached_deployments().unwrap(), vec![view.clone()]);
        assert_eq!(r.cached_runs().unwrap(), vec![run_view.clone()]);
    }

    // A damaged view is found even while it lags.
    tamper(
        &path,
        "UPDATE deployment_projection SET body = replace(body, '\"run_count\":1', '\"run_count\":2')",
    );
    let (report, _) = verify_store(&reader).unwrap();
    assert!(
        report
            .projection_mismatches
            .iter()
            .any(|m| m.starts_with("deployment svc-busy: cached projection differs")),
        "{report:?}"
    );
    tamper(
        &path,
        "UPDATE deployment_projection SET body = replace(body, '\"run_count\":2', '\"run_count\":1')",
    );
    tamper(
        &path,
        &format!("DELETE FROM run_projection WHERE run = '{run}'"),
    );
    let (report, _) = verify_store(&reader).unwrap();
    assert!(
        report
            .projection_mismatches
            .iter()
            .any(|m| m.starts_with(&format!("run {run}: "))),
        "{report:?}"
    );

    // Released: at rest, the stored views are the fold, written in full.
    append(
        &mut v,
        &[NewEvent {
            run: Some(run.clone()),
            at: at(9_999),
            event: Event::LockReleased(LockReleased { run: run.clone() }),
        }],
    );
    assert_eq!(stored_version(&path, &d), Some(v.0));
    let (report, fold) = verify_store(&reader).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let c = rusqlite::Connection::open(&path).unwrap();
    let body: String = c
        .query_row(
            "SELECT body FROM run_projection WHERE run = ?1",
            [run.as_str()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(body, serde_json::to_string(&fold.runs[&run]).unwrap());
}

/// Every row of a journal, in order.
fn rows(store: &dyn EventStore) -> Vec<fabrik::store::StoredEvent> {
    let mut out = Vec::new();
    store
        .scan(&Scan::default(), &mut |row| {
            out.push(row);
            ControlFlow::Continue(())
        })
        .unwrap();
    out
}

/// A large append (encoded and folded beside its inserts) stores the same
/// rows as the same events appended one at a time; one whose inserts fail
/// part way (a trigger refuses a row) returns the error and writes
/// nothing, and the journal takes the same append afterwards.
#[test]
fn a_large_append_stores_what_single_appends_do_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    let d = dep("svc-big");
    let run = RunId::generate();
    let mut events = vec![started(&run), locked(&run)];
    events.extend((0..300).map(|i| resumed(&run, i)));

    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON events WHEN NEW.seq = 250
         BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;",
    )
    .unwrap();
    let err = store.append(&d, StreamVersion(0), &events).unwrap_err();
    assert!(
        format!("{err:?}").contains("refused for the test"),
        "{err:?}"
    );
    assert_eq!(store.len().unwrap(), 0);
    assert_eq!(store.deployment(&d).unwrap(), None);
    assert_eq!(stored_version(&path, &d), None);

    c.execute_batch("DROP TRIGGER refuse").unwrap();
    let recorded = store.append(&d, StreamVersion(0), &events).unwrap();
    assert_eq!(recorded.len(), events.len());
    let (report, fold) = verify_store(&store).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(
        store.deployment(&d).unwrap().as_ref(),
        fold.deployments.get(&d)
    );
    assert_eq!(store.run(&run).unwrap().as_ref(), fold.runs.get(&run));

    let one_by_one = SqliteStore::open(&dir.path().join("single.db")).unwrap();
    let mut v = StreamVersion(0);
    for e in &events {
        v = one_by_one.append(&d, v, std::slice::from_ref(e)).unwrap()[0].stream_version;
    }
    let stored = rows(&store);
    assert_eq!(stored.len(), events.len());
    assert_eq!(stored, rows(&one_by_one));
    assert_eq!(
        recorded.iter().map(|r| r.hash).collect::<Vec<_>>(),
        stored.iter().map(|r| r.hash).collect::<Vec<_>>()
    );
    assert_eq!(
        one_by_one.deployment(&d).unwrap(),
        store.deployment(&d).unwrap()
    );

    // The views the large append folded are the ones written at rest.
    let release = NewEvent {
        run: Some(run.clone()),
        at: at(9_999),
        event: Event::LockReleased(LockReleased { run: run.clone() }),
    };
    let v = recorded.last().unwrap().stream_version;
    store.append(&d, v, std::slice::from_ref(&release)).unwrap();
    assert_eq!(stored_version(&path, &d), Some(v.0 + 1));
    let (report, _) = verify_store(&store).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

/// A journal written before the fold changed (schema 1) holds cached
/// views the new fold would not write (here, a resource left pending): the
/// migration to schema 3 rebuilds them from the events.
#[test]
fn an_older_sqlite_journal_is_refolded_when_it_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    crate::support::fill(
        &store,
        fabrik::generate::Shape {
            deployments: 2,
            runs: 3,
            records: 1,
            seed: 3,
        },
    );
    drop(store);
    let c = rusqlite::Connection::open(&path).unwrap();
    let present: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM deployment_projection WHERE body LIKE '%\"present\"%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(present > 0, "the views hold present resources to damage");
    c.execute_batch(
        "DELETE FROM fabrik_schema WHERE version = 3; PRAGMA user_version = 2;
         UPDATE deployment_projection SET body = replace(body, '\"present\"', '\"pending\"');",
    )
    .unwrap();
    let (report, _) =
        fabrik::store::verify_store(&SqliteStore::open_existing(&path).unwrap()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let upgraded: i64 = c
        .query_row("SELECT MAX(version) FROM fabrik_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(upgraded, fabrik::store::sqlite::SCHEMA_VERSION);
}

/// A run finished through the recorder on a store that seals: the
/// `run_finished` is followed, in the same append, by the checkpoint that
/// seals it, both are folded and reported, and the store names the sealed
/// head (what the run can send to its webhooks and summary).
#[test]
fn a_run_finished_on_a_sealing_store_is_sealed_and_its_head_named() {
    use fabrik::engine::recorder::{Quiet, Recorder, wall_clock};
    use fabrik::event::RunOutcome;
    use fabrik::store::{JournalKey, Seal};
    let dir = tempfile::tempdir().unwrap();
    let key = JournalKey::from_bytes(&[5; 32]);
    let store: std::sync::Arc<dyn EventStore> = std::sync::Arc::new(
        SqliteStore::open(&dir.path().join("state.db"))
            .unwrap()
            .sealed(Seal::with_key(key.clone())),
    );
    let mut rec = Recorder::start(
        store.clone(),
        dep("sealed"),
        RunId::generate(),
        RunStarted {
            command: RunCommand::Apply,
            spec_path: None,
            spec_hash: None,
            user: "u".into(),
            host: "h".into(),
            pid: 1,
            fabrik_version: "0".into(),
            options: RunOptions::default(),
        },
        wall_clock(),
        Box::new(Quiet),
    )
    .unwrap();
    assert_eq!(store.sealed_head(), None);
    rec.transition(RunState::Validating, None).unwrap();
    rec.transition(RunState::Complete, None).unwrap();
    let finished = rec.finish(RunOutcome::NoChanges, 0, None).unwrap();
    assert_eq!(finished.event.type_name(), "run_finished");
    let all = rows(store.as_ref());
    let last = all.last().unwrap();
    assert_eq!(last.type_name, "journal_checkpoint");
    assert_eq!(last.seq, finished.seq.0 + 1);
    let head = store.sealed_head().unwrap();
    assert_eq!((head.seq, head.hash), (last.seq, last.hash));
    // The recorder folded both: its next append extends the stream.
    assert_eq!(rec.view().version.0, all.len() as u64);
    let (report, _) = fabrik::store::verify_store_with(
        store.as_ref(),
        fabrik::store::VerifyOptions {
            journal_key: Some(key),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.seal.unwrap().checked, 1);
}
