//! The PostgreSQL journal: the store contract, the database's own guards,
//! tamper detection, migration between backends, advisory run locks, TLS,
//! and the password kept out of every message.
//!
//! These tests need a server: `scripts/test` starts one and exports
//! `FABRIK_TEST_POSTGRES_URL` (a role that may create databases). Without
//! it they print a note and pass, unless `FABRIK_REQUIRE_POSTGRES=1` (CI),
//! where they fail. Each test works in a database of its own, so they run
//! in parallel.

use std::io::{BufRead as _, BufReader};
use std::ops::ControlFlow;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fabrik::event::{
    Event, LockHolder, LockReleased, NewEvent, RunCommand, RunOptions, RunStarted,
};
use fabrik::export::{self, ExportHeader};
use fabrik::generate::Shape;
use fabrik::id::{DeploymentId, RunId, Seq, StreamVersion};
use fabrik::store::lock::{LockError, LockSpace};
use fabrik::store::memory::MemoryStore;
use fabrik::store::migrate::{self, Destination, MigrateError};
use fabrik::store::postgres::{PgLocks, PgStore, PgUrl, SslMode};
use fabrik::store::sqlite::SqliteStore;
use fabrik::store::{EventStore, Scan, StateLocation, StoreError, StoredEvent, verify_store};

use crate::store::{Backend, Reopen, contract};
use crate::support::fill;

const SMALL: Shape = Shape {
    deployments: 2,
    runs: 3,
    records: 1,
    seed: 7,
};

/// The server's admin URL, or `None` (with a note) when there is none.
fn server() -> Option<String> {
    match std::env::var("FABRIK_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("FABRIK_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "FABRIK_REQUIRE_POSTGRES=1 but FABRIK_TEST_POSTGRES_URL is unset: start one with scripts/pg-test-server"
            );
            eprintln!(
                "note: skipping a PostgreSQL test: FABRIK_TEST_POSTGRES_URL is unset (scripts/test sets it)"
            );
            None
        }
    }
}

/// The password in a URL (for searching output for it).
fn password_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .password()
        .unwrap_or_default()
        .to_owned()
}

/// A database of its own for one test, dropped afterwards.
struct TestDb {
    admin: String,
    name: String,
    /// The URL with its password, as a user would write it.
    raw: String,
}

impl TestDb {
    fn new() -> Option<Self> {
        let admin = server()?;
        let name = format!("fabrik_t_{}", RunId::generate());
        let mut c = ::postgres::Client::connect(&admin, ::postgres::NoTls).unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let mut u = url::Url::parse(&admin).unwrap();
        u.set_path(&format!("/{name}"));
        Some(Self {
            admin,
            name,
            raw: u.to_string(),
        })
    }

    fn url(&self) -> PgUrl {
        PgUrl::parse(&self.raw).unwrap()
    }

    /// The URL with extra query parameters.
    fn url_with(&self, query: &str) -> String {
        format!("{}?{query}", self.raw)
    }

    fn store(&self) -> PgStore {
        PgStore::open(&self.url()).unwrap()
    }

    fn client(&self) -> ::postgres::Client {
        ::postgres::Client::connect(&self.raw, ::postgres::NoTls).unwrap()
    }

    fn sql(&self, statements: &str) {
        self.client().batch_execute(statements).unwrap();
    }

    fn admin(&self) -> ::postgres::Client {
        ::postgres::Client::connect(&self.admin, ::postgres::NoTls).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = ::postgres::Client::connect(&self.admin, ::postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

macro_rules! test_db {
    () => {
        match TestDb::new() {
            Some(db) => db,
            None => return,
        }
    };
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

fn released(i: i64) -> NewEvent {
    NewEvent {
        run: None,
        at: at(100 + i),
        event: Event::LockReleased(LockReleased {
            run: RunId::generate(),
        }),
    }
}

fn holder(command: &str, pid: u32) -> LockHolder {
    LockHolder {
        run: RunId::generate(),
        pid,
        host: "runner-1".into(),
        user: "ci".into(),
        command: command.into(),
        since: "2026-01-01T00:00:00Z".into(),
    }
}

fn rows(store: &dyn EventStore) -> Vec<StoredEvent> {
    let mut v = Vec::new();
    store
        .scan(&Scan::default(), &mut |e| {
            v.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
    v
}

fn ndjson(store: &dyn EventStore) -> String {
    let header = ExportHeader {
        format: export::FORMAT.to_owned(),
        format_version: export::FORMAT_VERSION,
        fabrik_version: "test".to_owned(),
        exported_at: "2026-01-01T00:00:00Z".to_owned(),
        deployment: None,
        run: None,
        complete: true,
    };
    let mut out = Vec::new();
    export::write_ndjson(store, &Scan::default(), &header, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn chain_error_at(store: &dyn EventStore) -> Option<Seq> {
    verify_store(store).unwrap().0.chain_error.map(|e| e.seq)
}

// ---------------------------------------------------------------- contract

/// Fresh databases on the test server; each `fresh` makes another.
struct Postgres(Mutex<Vec<TestDb>>);

impl Backend for Postgres {
    fn fresh(&self) -> (Arc<dyn EventStore>, Reopen) {
        let db = TestDb::new().unwrap();
        let url = db.url();
        self.0.lock().unwrap().push(db);
        let s: Arc<dyn EventStore> = Arc::new(PgStore::open(&url).unwrap());
        (
            s,
            Box::new(move || Arc::new(PgStore::open(&url).unwrap()) as Arc<dyn EventStore>),
        )
    }
}

#[test]
fn postgres_store_fulfils_the_contract() {
    if server().is_none() {
        return;
    }
    contract(&Postgres(Mutex::new(Vec::new())));
}

#[test]
fn many_writers_on_many_connections_keep_one_gap_free_chain() {
    let db = test_db!();
    let _first = db.store();
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let url = db.url();
            std::thread::spawn(move || {
                let s = PgStore::open(&url).unwrap();
                let d = dep(&format!("svc-{w}"));
                for i in 0..25 {
                    let v = s.stream_version(&d).unwrap();
                    s.append(&d, v, &[released(i)]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let s = db.store();
    assert_eq!(s.len().unwrap(), 100);
    let all = rows(&s);
    assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
    let (report, _) = verify_store(&s).unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[test]
fn scans_stream_in_chunks_and_can_stop_early() {
    let db = test_db!();
    let s = db.store();
    // More rows than one fetch (2048) brings.
    let n = s
        .bulk_append(
            (0..500).map(|i| {
                (
                    dep(&format!("svc-{}", i % 7)),
                    (0..10).map(|j| released(i * 10 + j)).collect(),
                )
            }),
            100,
        )
        .unwrap();
    assert_eq!(n, 5000);
    assert_eq!(rows(&s).len(), 5000);
    let mut seen = 0;
    s.scan(&Scan::default(), &mut |_| {
        seen += 1;
        if seen == 10 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(seen, 10);
    // The connection is free again after a scan that stopped early.
    assert_eq!(s.len().unwrap(), 5000);
    let (report, _) = verify_store(&s).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 5000);
}

// ------------------------------------------------------ the database's guards

#[test]
fn update_delete_and_truncate_are_refused() {
    let db = test_db!();
    fill(&db.store(), SMALL);
    let mut c = db.client();
    for statement in [
        "UPDATE events SET payload = '{}' WHERE seq = 1",
        "DELETE FROM events WHERE seq = 1",
        "TRUNCATE events",
    ] {
        let e = c.batch_execute(statement).unwrap_err();
        let text = e.as_db_error().map(|d| d.message().to_owned()).unwrap();
        assert!(text.contains("append-only"), "{statement}: {text}");
    }
    assert!(verify_store(&db.store()).unwrap().0.is_ok());
}

fn drop_triggers(db: &TestDb) {
    db.sql(
        "DROP TRIGGER events_no_update ON events;
         DROP TRIGGER events_no_delete ON events;",
    );
}

#[test]
fn a_changed_byte_in_a_payload_is_found_and_named() {
    let db = test_db!();
    fill(&db.store(), SMALL);
    drop_triggers(&db);
    db.sql(
        "UPDATE events SET payload = substr(payload, 1, 5) || chr(ascii(substr(payload, 6, 1)) + 1) || substr(payload, 7) WHERE seq = 5",
    );
    assert_eq!(chain_error_at(&db.store()), Some(Seq(5)));
}

#[test]
fn a_deleted_row_is_found_and_named() {
    let db = test_db!();
    fill(&db.store(), SMALL);
    drop_triggers(&db);
    db.sql("DELETE FROM events WHERE seq = 9");
    assert_eq!(chain_error_at(&db.store()), Some(Seq(9)));
}

#[test]
fn swapped_rows_are_found_and_named() {
    let db = test_db!();
    fill(&db.store(), SMALL);
    drop_triggers(&db);
    db.sql(
        "UPDATE events AS e SET deployment = o.deployment, run = o.run, type = o.type, payload = o.payload
         FROM events AS o
         WHERE (e.seq, o.seq) IN ((12, 13), (13, 12))",
    );
    assert_eq!(chain_error_at(&db.store()), Some(Seq(12)));
}

#[test]
fn a_tampered_cached_projection_is_found_and_rebuilt() {
    let db = test_db!();
    fill(&db.store(), SMALL);
    db.sql(
        "UPDATE deployment_projection SET body = replace(body, '\"run_count\":3', '\"run_count\":4') WHERE deployment = 'svc-00001'",
    );
    let s = db.store();
    let (report, _) = verify_store(&s).unwrap();
    assert!(report.chain_error.is_none());
    assert_eq!(report.projection_mismatches.len(), 1, "{report:?}");
    assert!(report.projection_mismatches[0].contains("svc-00001"));
    s.rebuild_projections().unwrap();
    assert!(verify_store(&s).unwrap().0.is_ok());
}

#[test]
fn a_database_from_a_newer_fabrik_is_refused() {
    let db = test_db!();
    drop(db.store());
    db.sql("INSERT INTO fabrik_schema (version, name, applied_at) VALUES (99, 'future', 'x')");
    let e = PgStore::open(&db.url()).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::NewerSchema {
                found: 99,
                known: fabrik::store::postgres::SCHEMA_VERSION,
                ..
            }
        ),
        "{e:?}"
    );
    let text = fabrik::error::chain_text(&e);
    assert!(text.contains("schema version 99"), "{text}");
    assert!(text.contains("upgrade fabrik"), "{text}");
    assert!(!text.contains(&password_of(&db.raw)), "{text}");
}

#[test]
fn migrations_are_recorded_and_not_run_twice() {
    let db = test_db!();
    let stores: Vec<_> = (0..3)
        .map(|_| {
            let url = db.url();
            std::thread::spawn(move || PgStore::open(&url).map(drop))
        })
        .collect();
    for s in stores {
        s.join().unwrap().unwrap();
    }
    let versions: Vec<i64> = db
        .client()
        .query("SELECT version FROM fabrik_schema ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let all: Vec<i64> = (1..=fabrik::store::postgres::SCHEMA_VERSION).collect();
    assert_eq!(versions, all);
}

/// A journal written before the fold changed (schema 3) holds cached
/// views the new fold would not write: the migration to schema 4 rebuilds
/// them from the events, so what readers see is the fold of today.
#[test]
fn an_older_journal_is_refolded_when_it_is_upgraded() {
    let db = test_db!();
    let store = PgStore::open(&db.url()).unwrap();
    fill(
        &store,
        Shape {
            deployments: 2,
            runs: 3,
            records: 1,
            seed: 3,
        },
    );
    drop(store);
    let mut c = db.client();
    let present: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM deployment_projection WHERE body LIKE '%\"present\"%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(present > 0, "the views hold present resources to damage");
    c.batch_execute(
        "DELETE FROM fabrik_schema WHERE version = 4;
         UPDATE deployment_projection SET body = replace(body, '\"present\"', '\"pending\"');",
    )
    .unwrap();
    let store = PgStore::open(&db.url()).unwrap();
    let (report, _) = verify_store(&store).unwrap();
    assert!(report.is_ok(), "{report:?}");
    let versions: i64 = c
        .query_one("SELECT COUNT(*) FROM fabrik_schema WHERE version = 4", &[])
        .unwrap()
        .get(0);
    assert_eq!(versions, 1);
}

#[test]
fn reading_an_empty_database_creates_nothing() {
    let db = test_db!();
    let e = PgStore::open_existing(&db.url()).unwrap_err();
    assert!(
        fabrik::error::chain_text(&e).contains("no journal here"),
        "{e}"
    );
    let tables: i64 = db
        .client()
        .query_one(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
    // Through the backend-neutral entry points too.
    let loc = StateLocation::parse(&db.raw).unwrap();
    assert!(fabrik::store::open_existing(&loc).is_err());
    let opened = fabrik::store::open(&loc).unwrap();
    assert!(opened.is_empty().unwrap());
}

// --------------------------------------------------------------- migration

#[test]
fn a_journal_copies_from_sqlite_to_postgres_and_back_byte_for_byte() {
    let db = test_db!();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("a.db")).unwrap();
    let n = fill(&sqlite, SMALL);

    let pg = db.store();
    let mut seen = Vec::new();
    let report = migrate::copy(&sqlite, &pg, |k| seen.push(k)).unwrap();
    assert_eq!(report.events, n);
    assert_eq!(report.copied, n);
    assert_eq!(report.already_present, 0);
    assert_eq!(seen.last(), Some(&n));
    assert_eq!(
        ndjson(&pg),
        ndjson(&sqlite),
        "the same rows, hashes and all"
    );
    assert_eq!(
        pg.cached_deployments().unwrap(),
        sqlite.cached_deployments().unwrap()
    );
    assert_eq!(pg.cached_runs().unwrap(), sqlite.cached_runs().unwrap());

    // The copy is a working journal: appends continue its chain.
    let d = dep("svc-00000");
    let v = pg.stream_version(&d).unwrap();
    pg.append(&d, v, &[released(1)]).unwrap();
    assert!(verify_store(&pg).unwrap().0.is_ok());

    // And back into a new SQLite file.
    let back = SqliteStore::open(&dir.path().join("b.db")).unwrap();
    let r = migrate::copy(&pg, &back, |_| {}).unwrap();
    assert_eq!(r.events, n + 1);
    assert_eq!(ndjson(&back), ndjson(&pg));
    assert!(verify_store(&back).unwrap().0.is_ok());

    // SQLite to SQLite, through the backend-neutral destination.
    let third = dir.path().join("c.db");
    let dest = migrate::open_destination(&StateLocation::Sqlite(third.clone())).unwrap();
    migrate::copy(&back, dest.as_ref(), |_| {}).unwrap();
    assert_eq!(ndjson(&SqliteStore::open(&third).unwrap()), ndjson(&back));
}

#[test]
fn an_interrupted_copy_resumes_and_a_foreign_destination_is_refused() {
    let db = test_db!();
    let source = MemoryStore::new();
    let n = fill(&source, SMALL);
    let all = rows(&source);
    let pg = db.store();
    // A copy that stopped after 10 events.
    Destination::import(&pg, all[..10].to_vec()).unwrap();
    let r = migrate::copy(&source, &pg, |_| {}).unwrap();
    assert_eq!((r.already_present, r.copied, r.events), (10, n - 10, n));
    assert_eq!(ndjson(&pg), ndjson(&source));
    // Copying again finds everything there.
    let again = migrate::copy(&source, &pg, |_| {}).unwrap();
    assert_eq!((again.already_present, again.copied), (n, 0));

    // A destination holding another journal is left alone.
    let other = test_db!();
    let foreign = other.store();
    fill(
        &foreign,
        Shape {
            seed: 99,
            runs: 1,
            ..SMALL
        },
    );
    let before = ndjson(&foreign);
    match migrate::copy(&source, &foreign, |_| {}) {
        Err(MigrateError::DestinationDiverges { seq, .. }) => assert_eq!(seq, Seq(1)),
        other => panic!("{other:?}"),
    }
    assert_eq!(ndjson(&foreign), before);
    // Rows that do not continue the chain are refused by the import itself.
    let e = Destination::import(&foreign, all[20..25].to_vec()).unwrap_err();
    assert!(e.to_string().contains("continue"), "{e}");
}

#[test]
fn a_broken_source_is_not_copied() {
    let db = test_db!();
    let src = db.store();
    fill(&src, SMALL);
    drop_triggers(&db);
    db.sql("DELETE FROM events WHERE seq = 4");
    let dir = tempfile::tempdir().unwrap();
    let dest = SqliteStore::open(&dir.path().join("d.db")).unwrap();
    match migrate::copy(&src, &dest, |_| {}) {
        Err(MigrateError::SourceBroken(e)) => assert_eq!(e.seq, Seq(4)),
        other => panic!("{other:?}"),
    }
    assert_eq!(dest.len().unwrap(), 0);
}

/// Reads an export into a store of another backend and checks it folds to
/// the same cached projections as the one it came from.
fn replay_export(from: &dyn EventStore, into: &dyn Destination) {
    let text = ndjson(from);
    let mut imported = Vec::new();
    export::read(text.as_bytes(), &mut |e| {
        imported.push(e);
        Ok(())
    })
    .unwrap();
    into.import(imported).unwrap();
    let (report, fold) = verify_store(into).unwrap();
    assert!(report.chain_error.is_none(), "{report:?}");
    into.replace_projections(&fold).unwrap();
    assert!(verify_store(into).unwrap().0.is_ok());
    assert_eq!(
        into.cached_deployments().unwrap(),
        from.cached_deployments().unwrap()
    );
    assert_eq!(into.cached_runs().unwrap(), from.cached_runs().unwrap());
}

#[test]
fn an_export_from_one_backend_replays_on_the_other() {
    let db = test_db!();
    let dir = tempfile::tempdir().unwrap();
    let pg = db.store();
    fill(&pg, SMALL);
    replay_export(&pg, &SqliteStore::open(&dir.path().join("x.db")).unwrap());

    let other = test_db!();
    let sqlite = SqliteStore::open(&dir.path().join("y.db")).unwrap();
    fill(&sqlite, Shape { seed: 3, ..SMALL });
    replay_export(&sqlite, &other.store());
}

// ------------------------------------------------------------- run locks

#[test]
fn a_held_lock_refuses_a_second_holder_and_names_the_first() {
    let db = test_db!();
    drop(db.store());
    let locks = PgLocks::new(db.url());
    let d = dep("blog");
    let first = holder("apply", 4242);
    let g = locks.acquire(&d, first.clone(), None).unwrap();
    assert_eq!(g.holder(), &first);
    assert!(g.is_held());
    // Another process, another connection: refused, and told who holds it.
    let other = PgLocks::new(db.url());
    match other.acquire(&d, holder("destroy", 1), None) {
        Err(LockError::Held {
            deployment,
            holder: Some(h),
        }) => {
            assert_eq!(deployment, d);
            assert_eq!(*h, first);
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(other.holder(&d).unwrap(), Some(first.clone()));
    assert_eq!(other.list().unwrap(), vec![(d.clone(), Some(first))]);
    // Another deployment is not blocked.
    let g2 = other
        .acquire(&dep("shop"), holder("apply", 2), None)
        .unwrap();
    g.release();
    assert_eq!(other.holder(&d).unwrap(), None);
    // A released lock leaves no description behind.
    assert_eq!(
        other.list().unwrap(),
        vec![(dep("shop"), Some(g2.holder().clone()))]
    );
    assert!(other.acquire(&d, holder("apply", 3), None).is_ok());
}

#[test]
fn waiting_for_a_lock_gives_up_at_the_deadline_or_gets_it_when_freed() {
    let db = test_db!();
    drop(db.store());
    let space = LockSpace::for_state(&StateLocation::parse(&db.raw).unwrap());
    let d = dep("blog");
    let g = space.acquire(&d, holder("apply", 1), None).unwrap();
    let start = Instant::now();
    let r = space.acquire(&d, holder("apply", 2), Some(Duration::from_millis(300)));
    assert!(matches!(r, Err(LockError::Held { .. })), "{r:?}");
    assert!(start.elapsed() >= Duration::from_millis(300));
    let waiter = {
        let space = space.clone();
        let d = d.clone();
        std::thread::spawn(move || {
            space.acquire(&d, holder("apply", 3), Some(Duration::from_secs(30)))
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    g.release();
    let got = waiter.join().unwrap().unwrap();
    assert_eq!(got.holder().pid, 3);
}

#[test]
fn a_lock_whose_connection_dies_is_free() {
    let db = test_db!();
    drop(db.store());
    let locks = PgLocks::new(db.url());
    let d = dep("blog");
    let g = locks.acquire(&d, holder("apply", 7), None).unwrap();
    // The server ends the holder's session (a crash, a network cut).
    let ended: i64 = db
        .client()
        .query_one(
            "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(backend_pid, 5000) FROM lock_holder) t",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(ended, 1);
    assert!(!g.is_held());
    assert_eq!(
        locks.holder(&d).unwrap(),
        None,
        "a stale description is not believed"
    );
    let again = locks.acquire(&d, holder("apply", 8), None).unwrap();
    assert_eq!(locks.holder(&d).unwrap(), Some(again.holder().clone()));
    drop(g);
    // Dropping the dead guard does not disturb the new holder.
    assert_eq!(locks.holder(&d).unwrap(), Some(again.holder().clone()));
}

#[test]
fn a_lingering_holder_can_be_ended_by_force() {
    let db = test_db!();
    drop(db.store());
    let locks = PgLocks::new(db.url());
    let d = dep("blog");
    assert_eq!(locks.terminate_holder(&d).unwrap(), None, "nothing to end");
    let first = holder("apply", 9);
    let g = locks.acquire(&d, first.clone(), None).unwrap();
    assert_eq!(locks.terminate_holder(&d).unwrap(), Some(first));
    assert!(!g.is_held());
    let again = locks.acquire(&d, holder("apply", 10), None);
    assert!(again.is_ok(), "{again:?}");
}

/// Kills the child on drop, so a failing test leaves no process behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn killing_the_process_that_holds_a_lock_frees_it() {
    let db = test_db!();
    drop(db.store());
    let mut child = Reaper(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "postgres::lock_holder_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("FABRIK_TEST_LOCK_CHILD_URL", &db.raw)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    let out = child.0.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    assert!(
        lines.any(|l| l.map(|l| l.contains("LOCKED")).unwrap_or(false)),
        "the child never took the lock"
    );
    let locks = PgLocks::new(db.url());
    let d = dep("blog");
    match locks.acquire(&d, holder("apply", 1), None) {
        Err(LockError::Held {
            holder: Some(h), ..
        }) => {
            assert_eq!(h.pid, pid);
            assert_eq!(h.command, "child");
        }
        r => panic!("{r:?}"),
    }
    // kill -9: no destructor runs, the connection just drops.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let g = locks
        .acquire(&d, holder("apply", 2), Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(g.holder().pid, 2);
}

/// Run by `killing_the_process_that_holds_a_lock_frees_it` in a child
/// process: takes the lock, says so, and waits to be killed.
#[test]
#[ignore = "a helper process for killing_the_process_that_holds_a_lock_frees_it"]
fn lock_holder_child() {
    use std::io::Write as _;
    let Ok(url) = std::env::var("FABRIK_TEST_LOCK_CHILD_URL") else {
        return;
    };
    let locks = PgLocks::new(PgUrl::parse(&url).unwrap());
    let _g = locks
        .acquire(&dep("blog"), holder("child", std::process::id()), None)
        .unwrap();
    println!("LOCKED");
    std::io::stdout().flush().unwrap();
    // Killed long before this; the bound only stops an orphan.
    std::thread::sleep(Duration::from_secs(120));
}

// ------------------------------------------------------ inside and outside tokio

#[test]
fn the_store_and_locks_work_inside_a_multi_threaded_runtime() {
    let db = test_db!();
    let url = db.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // As the engine calls it: through block_in_place.
        let store = tokio::task::block_in_place(|| PgStore::open(&url)).unwrap();
        let d = dep("blog");
        let run = RunId::generate();
        tokio::task::block_in_place(|| store.append(&d, StreamVersion(0), &[started(&run)]))
            .unwrap();
        let store = Arc::new(store);
        let s2 = store.clone();
        let n = tokio::spawn(async move {
            tokio::task::block_in_place(|| {
                let v = s2.stream_version(&d)?;
                s2.append(&d, v, &[released(1)])?;
                s2.len()
            })
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(n, 2);
        let locks = store.locks();
        let g =
            tokio::task::block_in_place(|| locks.acquire(&dep("blog"), holder("apply", 1), None))
                .unwrap();
        // Dropped in async code, off any blocking section.
        drop(g);
        drop(store);
        tokio::time::sleep(Duration::from_millis(1)).await;
    });
    // The lock was released by the drop.
    assert_eq!(PgLocks::new(db.url()).holder(&dep("blog")).unwrap(), None);
}

#[test]
fn the_store_works_on_a_current_thread_runtime_called_directly() {
    // The test database is made outside the runtime: the test's own use of
    // the synchronous client would panic inside it, which is the point.
    let db = test_db!();
    let url = db.url();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // No block_in_place here (this runtime does not allow it): the
        // connection's own thread keeps the client library's runtime apart.
        let store = PgStore::open(&url).unwrap();
        fill(&store, SMALL);
        let (report, _) = verify_store(&store).unwrap();
        assert!(report.is_ok());
        let g = store
            .locks()
            .acquire(&dep("svc-00000"), holder("apply", 1), None)
            .unwrap();
        drop(g);
        drop(store);
    });
}

#[test]
fn the_store_works_from_plain_threads() {
    let db = test_db!();
    let store = Arc::new(db.store());
    let handles: Vec<_> = (0..3)
        .map(|i| {
            let s = store.clone();
            std::thread::spawn(move || {
                let d = dep(&format!("t{i}"));
                s.append(&d, StreamVersion(0), &[started(&RunId::generate())])
                    .map(|r| r.len())
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap().unwrap(), 1);
    }
    assert_eq!(store.len().unwrap(), 3);
}

// ----------------------------------------------------------------- TLS

fn ssl_in_use(db: &TestDb, application: &str) -> bool {
    db.admin()
        .query_one(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1",
            &[&application],
        )
        .unwrap()
        .get(0)
}

#[test]
fn tls_modes_encrypt_and_verify_as_libpq_does() {
    let db = test_db!();
    let Ok(ca) = std::env::var("FABRIK_TEST_POSTGRES_CA") else {
        eprintln!("note: skipping the TLS checks: FABRIK_TEST_POSTGRES_CA is unset");
        return;
    };
    let verified = db.url_with(&format!(
        "sslmode=verify-full&sslrootcert={ca}&application_name=fabrik-verify-full"
    ));
    let u = PgUrl::parse(&verified).unwrap();
    assert_eq!(u.ssl_mode(), SslMode::VerifyFull);
    let s = PgStore::open(&u).unwrap();
    fill(&s, SMALL);
    assert!(ssl_in_use(&db, "fabrik-verify-full"));
    drop(s);

    // The name in the certificate is checked: "localhost" is in it too.
    let by_name = verified.replace("127.0.0.1", "localhost");
    assert!(PgStore::open(&PgUrl::parse(&by_name).unwrap()).is_ok());

    // require: encrypted, the certificate is not checked.
    let s = PgStore::open(
        &PgUrl::parse(&db.url_with("sslmode=require&application_name=fabrik-require")).unwrap(),
    )
    .unwrap();
    assert!(ssl_in_use(&db, "fabrik-require"));
    drop(s);

    // disable: plain text.
    let s = PgStore::open(
        &PgUrl::parse(&db.url_with("sslmode=disable&application_name=fabrik-plain")).unwrap(),
    )
    .unwrap();
    assert!(!ssl_in_use(&db, "fabrik-plain"));
    drop(s);

    // verify-full against the system's roots: this CA is not one of them.
    let e = PgStore::open(&PgUrl::parse(&db.url_with("sslmode=verify-full")).unwrap()).unwrap_err();
    let text = fabrik::error::chain_text(&e);
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(!text.contains(&password_of(&db.raw)), "{text}");

    // verify-ca against a CA that did not sign the server's certificate.
    let dir = tempfile::tempdir().unwrap();
    let stranger = dir.path().join("other-ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&stranger, params.self_signed(&key).unwrap().pem()).unwrap();
    let e = PgStore::open(
        &PgUrl::parse(&db.url_with(&format!(
            "sslmode=verify-ca&sslrootcert={}",
            stranger.display()
        )))
        .unwrap(),
    )
    .unwrap_err();
    assert!(
        fabrik::error::chain_text(&e)
            .to_lowercase()
            .contains("certificate"),
        "{e:?}"
    );
}

// ------------------------------------------------------- the password

#[test]
fn the_password_never_appears_in_errors_or_debug_output() {
    let db = test_db!();
    let password = password_of(&db.raw);
    assert!(password.len() >= 8, "the test server uses a real password");
    let store = db.store();
    fill(&store, SMALL);
    let mut texts = vec![
        format!("{store:?}"),
        format!("{:?}", store.url()),
        store.url().to_string(),
        format!("{:?}", store.locks()),
        StateLocation::parse(&db.raw).unwrap().to_string(),
        format!("{:?}", StateLocation::parse(&db.raw).unwrap()),
    ];
    // A conflict.
    let e = store
        .append(&dep("svc-00000"), StreamVersion(0), &[released(1)])
        .unwrap_err();
    texts.push(fabrik::error::chain_text(&e));
    texts.push(format!("{e:?}"));
    // A lock refusal.
    let locks = store.locks();
    let _g = locks
        .acquire(&dep("blog"), holder("apply", 1), None)
        .unwrap();
    let e = locks
        .acquire(&dep("blog"), holder("apply", 2), None)
        .unwrap_err();
    texts.push(fabrik::error::chain_text(&e));
    texts.push(format!("{e:?}"));
    // A database that does not exist.
    let missing = PgUrl::parse(&db.raw.replace(&db.name, "fabrik_no_such_db")).unwrap();
    let e = PgStore::open(&missing).unwrap_err();
    texts.push(fabrik::error::chain_text(&e));
    texts.push(format!("{e:?}"));
    // Nobody listening.
    let mut closed = url::Url::parse(&db.raw).unwrap();
    closed.set_port(Some(1)).unwrap();
    let e = PgStore::open(&PgUrl::parse(closed.as_str()).unwrap()).unwrap_err();
    texts.push(fabrik::error::chain_text(&e));
    texts.push(format!("{e:?}"));
    let e = PgLocks::new(PgUrl::parse(closed.as_str()).unwrap())
        .holder(&dep("blog"))
        .unwrap_err();
    texts.push(fabrik::error::chain_text(&e));
    texts.push(format!("{e:?}"));
    for t in &texts {
        assert!(!t.contains(&password), "the password leaked: {t}");
    }
    assert!(texts.iter().any(|t| t.contains(":***@")), "{texts:#?}");

    // A wrong password is refused without being repeated.
    let wrong = "wrong-Zq8xK2mP9vL4";
    let mut bad = url::Url::parse(&db.raw).unwrap();
    bad.set_password(Some(wrong)).unwrap();
    let e = PgStore::open(&PgUrl::parse(bad.as_str()).unwrap()).unwrap_err();
    let text = fabrik::error::chain_text(&e);
    assert!(text.contains("password authentication failed"), "{text}");
    for t in [text, format!("{e:?}")] {
        assert!(!t.contains(wrong), "{t}");
        assert!(!t.contains(&password), "{t}");
    }
}

/// The sandbox world of the project in `dir`, normalised as the crash
/// harness does, with the journal's run ids (from `store`) replaced by
/// their position in the history.
#[cfg(feature = "failpoints")]
fn normalised_world(dir: &std::path::Path, store: &dyn EventStore) -> serde_json::Value {
    let runs = store.runs(&dep(crate::crash::project::NAME)).unwrap();
    let dump = crate::support::run(crate::support::fabrik(dir).args(["sandbox", "dump"]));
    assert!(dump.status.success(), "{}", crate::support::stderr(&dump));
    let text = crate::crash::world::anonymised(
        crate::support::stdout(&dump),
        &runs,
        &store.journal_id().unwrap(),
    );
    let mut world: serde_json::Value = serde_json::from_str(&text).unwrap();
    crate::crash::world::normalise(&mut world);
    world
}

/// One scenario of the crash harness, run on PostgreSQL.
#[cfg(feature = "failpoints")]
struct PgScenario {
    name: &'static str,
    /// Whether the first version is applied before the command.
    applied_first: bool,
    spec: fn() -> String,
    args: &'static [&'static str],
    faults: &'static str,
    /// The exit code of the uncrashed command, and of `fabrik resume`
    /// after a crash that left its run unfinished.
    code: i32,
}

/// A project and a database of its own, set up for `s` (with the first
/// version applied when the scenario starts from it) and holding its spec.
#[cfg(feature = "failpoints")]
fn pg_prepared(s: &PgScenario) -> (TestDb, tempfile::TempDir) {
    use crate::crash::project::{self, SPEC_V1};
    let db = TestDb::new().unwrap();
    let dir = project::new(SPEC_V1);
    if s.applied_first {
        let o = crate::support::run(
            crate::support::fabrik(dir.path())
                .env("FABRIK_STATE", &db.raw)
                .args(["apply", "spec.yaml", "--sandbox"]),
        );
        assert_eq!(o.status.code(), Some(0), "{}", crate::support::stderr(&o));
    }
    project::write(dir.path(), &(s.spec)());
    (db, dir)
}

/// The crash harness's scenarios (apply, an apply that fails verification
/// and rolls back, an update, a destroy) on a PostgreSQL journal: each
/// command killed right after each event it appends, then `fabrik resume`,
/// each point in a working directory and a database of its own. Every
/// resume ends as the uncrashed command did, the remote world equals the
/// uncrashed one's, and the chain verifies.
#[cfg(feature = "failpoints")]
#[test]
fn commands_killed_after_any_event_resume_on_postgres() {
    use std::os::unix::process::ExitStatusExt as _;

    use crate::crash::project::{self, NAME, SPEC_V1, SPEC_V2};
    use crate::support::{fabrik, run, stderr, stdout};

    if server().is_none() {
        return;
    }
    const APPLY: &[&str] = &["apply", "spec.yaml", "--sandbox"];
    let scenarios = [
        PgScenario {
            name: "apply",
            applied_first: false,
            spec: || SPEC_V1.to_owned(),
            args: APPLY,
            faults: "",
            code: 0,
        },
        PgScenario {
            name: "apply that fails verification and rolls back",
            applied_first: false,
            spec: project::spec_v1_failing,
            args: APPLY,
            faults: "health_fail=true",
            code: 5,
        },
        PgScenario {
            name: "update",
            applied_first: true,
            spec: || SPEC_V2.to_owned(),
            args: APPLY,
            faults: "",
            code: 0,
        },
        PgScenario {
            name: "destroy",
            applied_first: true,
            spec: || SPEC_V1.to_owned(),
            args: &["destroy", "spec.yaml", "--sandbox", "--yes"],
            faults: "",
            code: 0,
        },
    ];
    let mut total = 0;
    for s in &scenarios {
        let cmd = |dir: &std::path::Path, db: &TestDb, args: &[&str]| {
            let mut c = fabrik(dir);
            c.env("FABRIK_STATE", &db.raw).args(args);
            if !s.faults.is_empty() {
                c.env("FABRIK_SANDBOX_FAULTS", s.faults);
            }
            c
        };
        // The uncrashed command: what it leaves behind, and how many
        // events it appends.
        let (base_db, base) = pg_prepared(s);
        let before = base_db.store().len().unwrap();
        let o = run(&mut cmd(base.path(), &base_db, s.args));
        assert_eq!(o.status.code(), Some(s.code), "{}: {}", s.name, stderr(&o));
        let expected = normalised_world(base.path(), &base_db.store());
        let events = base_db.store().len().unwrap() - before;
        assert!(events > 5, "{}: {events}", s.name);

        let next = Mutex::new(1u64);
        let failures = Mutex::new(Vec::<String>::new());
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    loop {
                        let n = {
                            let mut next = next.lock().unwrap();
                            let n = *next;
                            *next += 1;
                            n
                        };
                        if n >= events {
                            return;
                        }
                        let (db, dir) = pg_prepared(s);
                        let crashed = run(cmd(dir.path(), &db, s.args)
                            .env("FABRIK_CRASH_AFTER_EVENT", n.to_string()));
                        let problem = if crashed.status.signal() != Some(6) {
                            Some(format!("did not crash: {}", stderr(&crashed)))
                        } else {
                            let finished = db
                                .store()
                                .runs(&dep(NAME))
                                .unwrap()
                                .last()
                                .is_some_and(|r| r.outcome.is_some());
                            let resumed =
                                run(&mut cmd(dir.path(), &db, &["resume", NAME, "--sandbox"]));
                            let verified = run(&mut cmd(dir.path(), &db, &["replay", "--verify"]));
                            let code = if finished { 0 } else { s.code };
                            if resumed.status.code() != Some(code) {
                                Some(format!(
                                    "resume should exit {code}: {}{}",
                                    stdout(&resumed),
                                    stderr(&resumed)
                                ))
                            } else if verified.status.code() != Some(0) {
                                Some(format!("replay --verify: {}", stderr(&verified)))
                            } else if normalised_world(dir.path(), &db.store()) != expected {
                                Some(
                                    "the remote world differs from the uncrashed command's"
                                        .to_owned(),
                                )
                            } else {
                                None
                            }
                        };
                        if let Some(p) = problem {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{}: crash after event {n}: {p}", s.name));
                        }
                    }
                });
            }
        });
        let failures = failures.into_inner().unwrap();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        eprintln!("postgres: {}: {} crash points resumed", s.name, events - 1);
        total += events - 1;
    }
    eprintln!("postgres: {total} crash points resumed in all");
}

/// The end-to-end path on a PostgreSQL journal through the binary: apply,
/// a second apply that changes nothing, status, history, an export that
/// replays without the database, plan, destroy, and a journal that
/// verifies, all with `FABRIK_STATE` naming the database.
#[test]
fn the_whole_lifecycle_runs_on_postgres() {
    use crate::support::{fabrik, run, stderr, stdout};

    let db = test_db!();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spec.yaml"),
        crate::reliability::spec("pg-e2e"),
    )
    .unwrap();
    let fab = |args: &[&str]| {
        let o = run(fabrik(dir.path()).env("FABRIK_STATE", &db.raw).args(args));
        crate::support::expect_exit(&o, 0, args);
        format!("{}{}", stdout(&o), stderr(&o))
    };
    assert!(fab(&["apply", "spec.yaml", "--sandbox"]).contains("deployed and verified"));
    assert!(fab(&["apply", "spec.yaml", "--sandbox"]).contains("no changes"));
    assert!(fab(&["status", "pg-e2e"]).contains("COMPLETE"));
    assert_eq!(fab(&["history", "pg-e2e"]).matches("apply").count(), 2);
    fab(&[
        "journal",
        "export",
        "--format",
        "ndjson",
        "-o",
        "journal.ndjson",
    ]);
    fab(&["plan", "spec.yaml"]);
    fab(&["destroy", "pg-e2e", "--sandbox", "--yes"]);
    assert!(fab(&["replay", "--verify"]).contains("hash chain intact"));
    // The export replays with no database at all.
    let o = run(fabrik(dir.path()).args(["replay", "--input", "journal.ndjson"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Nothing of the journal was written beside the project.
    assert!(!dir.path().join(".fabrik").join("state.db").exists());
}

/// The journal in PostgreSQL is sealed too: each run's end carries its
/// checkpoint, `replay --verify` checks them with the key, and an event
/// forged after the last one (with a correct hash: an INSERT, which the
/// append-only triggers allow) makes the next command refuse to append and
/// the verification fail.
#[test]
fn a_postgres_journal_is_sealed_and_a_forged_tail_refused() {
    use crate::support::{fabrik, run, stderr};

    let db = test_db!();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spec.yaml"),
        crate::reliability::spec("pg-sealed"),
    )
    .unwrap();
    let fab = |args: &[&str]| run(fabrik(dir.path()).env("FABRIK_STATE", &db.raw).args(args));
    for _ in 0..2 {
        let args = ["apply", "spec.yaml", "--sandbox"];
        crate::support::expect_exit(&fab(&args), 0, &args);
    }
    let o = fab(&["replay", "--verify"]);
    crate::support::expect_exit(&o, 0, &["replay", "--verify"]);
    assert!(
        stderr(&o).contains("2 checkpoints signed by this journal key"),
        "{}",
        stderr(&o)
    );
    // Forge: a copy of the last event of the deployment, chained after it.
    let mut c = db.client();
    let last = c
        .query_one(
            "SELECT seq, deployment, stream_version, run, at, type, version, payload, hash FROM events ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .unwrap();
    let mut forged = StoredEvent {
        seq: u64::try_from(last.get::<_, i64>(0)).unwrap() + 1,
        deployment: last.get(1),
        stream_version: u64::try_from(last.get::<_, i64>(2)).unwrap() + 1,
        run: last.get(3),
        at: last.get(4),
        type_name: "resource_deleted".into(),
        version: 1,
        payload: r#"{"already_gone":false,"kind":"application","remote_id":"x","resource":"app"}"#
            .into(),
        prev_hash: fabrik::id::Digest(last.get::<_, Vec<u8>>(8).try_into().unwrap()),
        hash: fabrik::id::Digest::GENESIS,
    };
    forged.hash = forged.canonical().hash(&forged.prev_hash, &mut Vec::new());
    c.execute(
        "INSERT INTO events VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &i64::try_from(forged.seq).unwrap(),
            &forged.deployment,
            &i64::try_from(forged.stream_version).unwrap(),
            &forged.run,
            &forged.at,
            &forged.type_name,
            &1i32,
            &forged.payload,
            &&forged.prev_hash.0[..],
            &&forged.hash.0[..],
        ],
    )
    .unwrap();
    let seq = forged.seq;
    for args in [
        &["apply", "spec.yaml", "--sandbox"][..],
        &["replay", "--verify"][..],
    ] {
        let o = fab(args);
        assert_eq!(o.status.code(), Some(7), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("event {seq}")),
            "{}",
            stderr(&o)
        );
    }
}
