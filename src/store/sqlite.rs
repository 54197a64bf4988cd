//! The SQLite journal.
//!
//! One file (default `.fabrik/state.db`, mode 0600) in WAL mode with
//! `synchronous=FULL`: every committed append is fsynced to the WAL before
//! `append` returns, so it survives `kill -9` and power loss (see
//! `docs/storage.md`). Writers serialise on SQLite's write lock
//! (`BEGIN IMMEDIATE`, with a generous busy timeout so that concurrent
//! processes wait instead of failing with "database is locked"); readers
//! never block. A deployment's cached views are written when an append
//! leaves it at rest or every 1024 events, and readers fold the
//! events after them.

use std::collections::BTreeMap;
use std::fs;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::append::sealed_len;
use super::seal::{self, BesideRecord, TailSource};
use super::{
    Encoder, EventStore, HeadRecord, IndexDigest, IndexKeys, JournalKey, Scan, Seal, StoreError,
    StoredEvent, Tail, encode_sealed,
};
use crate::event::{NewEvent, RecordedEvent};
use crate::id::{DeploymentId, Digest, JournalId, RunId, Seq, StreamVersion};
use crate::projection::{DeploymentView, RunView, apply_to};

/// One migration: its version, name, SQL, and whether the cached
/// projections are rebuilt from the events in its transaction (the fold
/// changed, so views written by an older Fabrik may say what the events
/// do not).
struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
    refold: bool,
}

/// The migrations, in order. Never edit one that has shipped.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "journal",
        sql: include_str!("../../schema/sqlite/0001_journal.sql"),
        refold: false,
    },
    Migration {
        version: 2,
        name: "journal_id",
        sql: include_str!("../../schema/sqlite/0002_journal_id.sql"),
        refold: false,
    },
    Migration {
        version: 3,
        name: "refold: a failed create leaves a resource absent",
        sql: include_str!("../../schema/sqlite/0003_refold.sql"),
        refold: true,
    },
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = 3;

/// How long a writer waits for another process's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(120);

/// A journal in an SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// How appends are checked and sealed.
    seal: Seal,
    /// The record of the last head committed, beside the database.
    beside: BesideRecord,
    /// The views this connection last appended to, per deployment, so that
    /// a run appending event after event does not re-read and re-fold its
    /// projections each time. An entry is used only while the stream is at
    /// the version it was cached at (checked inside the write transaction),
    /// so a write by another process simply makes it miss.
    cache: Mutex<BTreeMap<DeploymentId, Cached>>,
}

/// Most events a deployment's stored views may lag behind its stream. They
/// are stored whenever an append leaves the deployment at rest (its lock
/// released, as journaled), and otherwise once the events after them reach
/// this many, so that a reader never folds a longer tail.
const STORE_EVERY: u64 = 1024;

/// Appends of at least this many events encode and fold beside their
/// inserts, on a second thread (below it, handing the work over costs more
/// than it saves).
const PIPELINE_FROM: usize = 64;

/// Rows handed from the encoding thread to the inserting one at a time.
const PIPELINE_CHUNK: usize = 16;

/// Whether this machine can run the two halves of a large append at once.
static PARALLEL: std::sync::LazyLock<bool> =
    std::sync::LazyLock::new(|| std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2));

/// A deployment's views as readers see them: the stored views brought up to
/// date by the events after them.
#[derive(Debug, Clone)]
struct Cached {
    /// The deployment, up to date.
    view: DeploymentView,
    /// The stream version the stored views reflect.
    stored: StreamVersion,
    /// The runs with events after `stored`, up to date. Every other run's
    /// stored view is current.
    runs: BTreeMap<RunId, RunView>,
}

impl Cached {
    fn empty(deployment: &DeploymentId) -> Self {
        Self {
            view: DeploymentView::new(deployment.clone()),
            stored: StreamVersion(0),
            runs: BTreeMap::new(),
        }
    }
}

/// Most deployments whose views are cached at once.
const CACHE_DEPLOYMENTS: usize = 16;

impl SqliteStore {
    /// Opens (creating if needed, with mode 0600 and a 0700 parent directory
    /// when Fabrik creates it) and migrates the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if create_private(path)? {
            // A new journal: a head record left by one that was deleted
            // says nothing about it.
            let _ = fs::remove_file(seal::beside(path));
        }
        // Switching a new database to WAL and creating the schema table
        // need a lock that SQLite does not always wait for through the busy
        // handler (a journal-mode change answers SQLITE_BUSY at once when
        // another connection is opening the same new file). Retry those
        // steps for as long as a writer would wait.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            let conn = Connection::open(path).map_err(|e| sql(path, e))?;
            let setup = Self::configure(path, &conn).and_then(|()| migrate(path, &conn));
            match setup {
                Ok(()) => {
                    return Ok(Self {
                        path: path.to_owned(),
                        conn: Mutex::new(conn),
                        seal: Seal::none(),
                        beside: BesideRecord::default(),
                        cache: Mutex::new(BTreeMap::new()),
                    });
                }
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => {
                    drop(conn);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Opens an existing journal, refusing to create one (for commands that
    /// mostly read, on a path that must already exist). One that cannot be
    /// written (a read-only directory, file or mount) is opened read-only:
    /// everything but an append works.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no journal here (run `fabrik apply` first, or pass --state)",
                ),
            });
        }
        match Self::open(path) {
            Err(e) if cannot_write(&e) => Self::open_read_only(path),
            other => other,
        }
    }

    /// Opens a journal that cannot be written, read-only: its schema must
    /// be this Fabrik's (an older one needs a migration, which writes).
    fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql(path, e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| sql(path, e))?;
        let version: i64 = conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM fabrik_schema",
                [],
                |r| r.get(0),
            )
            .map_err(|e| sql(path, e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: path.to_owned(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version < SCHEMA_VERSION {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "this journal (schema version {version}) must be upgraded to version {SCHEMA_VERSION} once, which writes to it; run a command that writes with write access to it"
                    ),
                ),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            conn: Mutex::new(conn),
            seal: Seal::none(),
            beside: BesideRecord::default(),
            cache: Mutex::new(BTreeMap::new()),
        })
    }

    /// The store, checking and sealing its appends as `seal` says.
    pub fn sealed(mut self, seal: Seal) -> Self {
        self.seal = seal;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn configure(path: &Path, conn: &Connection) -> Result<(), StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| sql(path, e))?;
        // journal_mode returns a row; query it rather than execute. On a
        // new file it needs an exclusive lock and SQLite answers
        // SQLITE_BUSY at once, without the busy handler, when another
        // process opens the same new journal at that moment: retry.
        let mode: String =
            retry_busy(|| conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)))
                .map_err(|e| sql(path, e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "state database {}: cannot switch to WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
            .map_err(|e| sql(path, e))?;
        // Leave the WAL in place when the connection closes: checkpointing
        // on every process exit costs two extra fsyncs per command, and
        // SQLite checkpoints on its own once the WAL holds 1000 pages.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(|e| sql(path, e))?;
        // Plan each statement once, whatever its parameters. Otherwise a
        // cached statement whose parameter meets an index (`deployment =
        // ?1`) is compiled again on every use after its bindings are
        // cleared, in case another value would suggest another plan; the
        // journal has no statistics that could.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(|e| sql(path, e))?;
        if let Some(room) = crate::failpoint::journal_page_room() {
            let pages: u64 = conn
                .query_row("PRAGMA page_count", [], |r| r.get(0))
                .map_err(|e| sql(path, e))?;
            let _: u64 = conn
                .query_row(
                    &format!("PRAGMA max_page_count = {}", pages + room),
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| sql(path, e))?;
        }
        Ok(())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // rusqlite rolls back an unfinished transaction when it is dropped,
        // so a panic elsewhere cannot leave the connection mid-transaction.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        sql(&self.path, e)
    }

    /// Rebuilds every cached projection from the events.
    pub fn rebuild_projections(&self) -> Result<(), StoreError> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        refold(&self.path, &tx)?;
        tx.commit().map_err(|e| self.err(e))
    }

    /// One append inside an open transaction, starting from `cached` views
    /// when they are still current; returns the views after it. `expected`
    /// is the stream version the append expects and the chain's tail as
    /// read in this transaction (`None`: bulk loads, at whatever version).
    fn append_cached(
        &self,
        tx: &Connection,
        deployment: &DeploymentId,
        expected: Option<(StreamVersion, Tail)>,
        events: &[NewEvent],
        cached: Option<Cached>,
        key: Option<&JournalKey>,
    ) -> Result<(Vec<RecordedEvent>, Cached), StoreError> {
        // The chain's tail, when the caller read it already in this
        // transaction.
        let known_tail = expected.map(|(_, t)| t);
        let expected = expected.map(|(v, _)| v);
        let actual: u64 = tx
            .prepare_cached(
                "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE deployment = ?1",
            )
            .and_then(|mut s| s.query_row([deployment.as_str()], |r| r.get(0)))
            .map_err(|e| self.err(e))?;
        if let Some(expected) = expected
            && actual < expected.0
        {
            // Another writer only ever makes a stream longer: one that got
            // shorter lost events.
            let written = self.load_view(tx, deployment)?.map(|v| v.last_seq);
            return Err(seal::shorter_stream(deployment, expected, actual, written));
        }
        if let Some(expected) = expected
            && actual != expected.0
        {
            return Err(StoreError::Conflict {
                deployment: deployment.clone(),
                expected,
                actual: StreamVersion(actual),
            });
        }
        let expected = StreamVersion(actual);
        // The views before this append: from the cache while it is current,
        // else the stored views brought up to date (read before the new
        // rows exist, so that the tail is the events already there).
        let mut current = match cached.filter(|c| c.view.version == expected) {
            Some(c) => c,
            None => self
                .load_current(tx, deployment)?
                .unwrap_or_else(|| Cached::empty(deployment)),
        };
        let tail = match known_tail {
            Some(t) => t,
            None => self.tail(tx)?,
        };
        // The stored views of the runs the fold will touch, read now: the
        // fold of a large append runs beside its inserts.
        for e in events {
            if let Some(id) = &e.run
                && !current.runs.contains_key(id)
                && let Some(rv) = self.load_run(tx, id.as_str())?
            {
                current.runs.insert(id.clone(), rv);
            }
        }
        let (recorded, mut current) = if events.len() >= PIPELINE_FROM && *PARALLEL {
            self.encode_beside_inserts(tx, deployment, expected, tail, events, current, key)?
        } else {
            let (rows, recorded) = encode_sealed(deployment, expected, tail, events, key);
            self.insert_rows(tx, &rows)?;
            for r in &recorded {
                apply_to(&mut current.view, &mut current.runs, r);
            }
            (recorded, current)
        };
        // Store the views when the deployment is at rest, or when readers
        // would otherwise fold a long tail. In between, the new rows alone
        // are written: the views are a cache of the events, brought up to
        // date by whoever reads them.
        let at_rest = current.view.lock.is_none();
        if at_rest || current.view.version.0 - current.stored.0 >= STORE_EVERY {
            save_deployment(tx, &current.view).map_err(|e| self.err(e))?;
            for run in current.runs.values() {
                save_run(tx, run).map_err(|e| self.err(e))?;
            }
            current.stored = current.view.version;
            current.runs.clear();
        }
        Ok((recorded, current))
    }

    /// The last event of the journal.
    fn tail(&self, tx: &Connection) -> Result<Tail, StoreError> {
        let tail = tx
            .prepare_cached("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
            .and_then(|mut s| {
                s.query_row([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                    .optional()
            })
            .map_err(|e| self.err(e))?;
        Ok(match tail {
            None => Tail::EMPTY,
            Some((seq, hash)) => Tail {
                seq,
                hash: digest(&hash).ok_or_else(|| StoreError::Corrupt {
                    seq: Seq(seq),
                    what: "hash is not 32 bytes".to_owned(),
                })?,
            },
        })
    }

    /// The rows of a query (in the column order of [`StoredEvent`]).
    fn query_rows(
        &self,
        tx: &Connection,
        sql_text: &str,
        params: impl rusqlite::Params,
        visit: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = tx.prepare_cached(sql_text).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            visit(self.stored_event(row)?)?;
        }
        Ok(())
    }

    /// Inserts encoded rows.
    fn insert_rows(&self, tx: &Connection, rows: &[StoredEvent]) -> Result<(), StoreError> {
        insert_events(tx, rows).map_err(|e| self.err(e))
    }

    /// Encodes and folds a large append on a pool thread while this one
    /// inserts the rows already encoded: the two halves take about as long,
    /// so the append takes about as long as its inserts. The result is the
    /// same as encoding, inserting and folding in turn (the rows are the
    /// same bytes, in the same order, in the same transaction). This thread
    /// polls for rows rather than sleeping between chunks: waking a sleeping
    /// thread costs tens of microseconds on a virtual machine, as long as
    /// inserting a chunk. If an insert fails, the encoder is told to stop
    /// and the error is returned; the transaction is rolled back by the
    /// caller as for any failed append.
    #[expect(
        clippy::too_many_arguments,
        reason = "the append's parts, handed over as they are"
    )]
    fn encode_beside_inserts(
        &self,
        tx: &Connection,
        deployment: &DeploymentId,
        version: StreamVersion,
        tail: Tail,
        events: &[NewEvent],
        mut current: Cached,
        key: Option<&JournalKey>,
    ) -> Result<(Vec<RecordedEvent>, Cached), StoreError> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = AtomicBool::new(false);
        let finished: std::sync::Mutex<Option<(Vec<RecordedEvent>, Cached)>> =
            std::sync::Mutex::new(None);
        let (send, receive) = std::sync::mpsc::channel::<Vec<StoredEvent>>();
        let mut inserted = Ok(());
        rayon::in_place_scope(|scope| {
            let stop = &stop;
            let finished = &finished;
            scope.spawn(move |_| {
                let mut encoder = Encoder::new(deployment, version, tail);
                let mut recorded = Vec::with_capacity(events.len());
                for chunk in events.chunks(PIPELINE_CHUNK) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let start = recorded.len();
                    let mut rows = Vec::with_capacity(chunk.len());
                    for e in chunk {
                        let (row, rec) = encoder.next(e);
                        rows.push(row);
                        recorded.push(rec);
                        if let Some((row, rec)) = encoder.seal(e, key) {
                            rows.push(row);
                            recorded.push(rec);
                        }
                    }
                    if send.send(rows).is_err() {
                        break;
                    }
                    for r in &recorded[start..] {
                        apply_to(&mut current.view, &mut current.runs, r);
                    }
                }
                drop(send);
                *finished.lock().unwrap_or_else(|p| p.into_inner()) = Some((recorded, current));
            });
            let mut idle = 0u32;
            loop {
                match receive.try_recv() {
                    Ok(rows) => {
                        inserted = self.insert_rows(tx, &rows);
                        if inserted.is_err() {
                            stop.store(true, Ordering::Relaxed);
                            break;
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => {
                        idle += 1;
                        if idle.is_multiple_of(1024) {
                            // The encoder is not running (a busy machine):
                            // let it have this core.
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
                }
            }
        });
        inserted?;
        let (recorded, current) = finished
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .ok_or_else(|| StoreError::Backend("the journal's encoder failed".to_owned()))?;
        if recorded.len() != sealed_len(events, key.is_some()) {
            return Err(StoreError::Backend(
                "the journal's encoder stopped early".to_owned(),
            ));
        }
        Ok((recorded, current))
    }

    /// Appends many runs' events in one transaction each `per_commit`
    /// batches, extending each stream at its current version. For loading
    /// large journals (benchmarks, migration): one fsync per commit instead
    /// of one per batch. Returns the number of events appended.
    pub fn bulk_append(
        &self,
        batches: impl IntoIterator<Item = (DeploymentId, Vec<NewEvent>)>,
        per_commit: usize,
    ) -> Result<u64, StoreError> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut conn = self.conn();
        let mut n = 0u64;
        let mut in_tx = 0usize;
        // Views of this load only: dropped with it if a commit fails.
        let mut views: BTreeMap<DeploymentId, Cached> = BTreeMap::new();
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        for (deployment, events) in batches {
            let cached = views.remove(&deployment);
            let (recorded, fresh) =
                self.append_cached(&tx, &deployment, None, &events, cached, None)?;
            n += recorded.len() as u64;
            if views.len() >= CACHE_DEPLOYMENTS * 64 {
                views.clear();
            }
            views.insert(deployment, fresh);
            in_tx += 1;
            if in_tx >= per_commit.max(1) {
                tx.commit().map_err(|e| self.err(e))?;
                tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(|e| self.err(e))?;
                in_tx = 0;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(n)
    }

    fn load_view(
        &self,
        conn: &Connection,
        deployment: &DeploymentId,
    ) -> Result<Option<DeploymentView>, StoreError> {
        let body: Option<String> = conn
            .prepare_cached("SELECT body FROM deployment_projection WHERE deployment = ?1")
            .and_then(|mut s| s.query_row([deployment.as_str()], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))?;
        body.map(|b| super::parse_view(deployment.as_str(), &b))
            .transpose()
    }

    fn load_run(&self, conn: &Connection, run: &str) -> Result<Option<RunView>, StoreError> {
        let body: Option<String> = conn
            .prepare_cached("SELECT body FROM run_projection WHERE run = ?1")
            .and_then(|mut s| s.query_row([run], |r| r.get(0)).optional())
            .map_err(|e| self.err(e))?;
        body.map(|b| super::parse_run(run, &b)).transpose()
    }

    /// A deployment's views as readers see them (`None` when it has neither
    /// stored views nor events): the stored views, and the events after
    /// them folded on top. Call inside one transaction, so that the views
    /// and the events come from the same snapshot.
    fn load_current(
        &self,
        conn: &Connection,
        deployment: &DeploymentId,
    ) -> Result<Option<Cached>, StoreError> {
        let stored = self.load_view(conn, deployment)?;
        let found = stored.is_some();
        let view = stored.unwrap_or_else(|| DeploymentView::new(deployment.clone()));
        let current = self.bring_up_to_date(conn, view)?;
        Ok((found || current.view.version.0 > 0).then_some(current))
    }

    /// Folds the events after a stored deployment view on top of it.
    fn bring_up_to_date(
        &self,
        conn: &Connection,
        view: DeploymentView,
    ) -> Result<Cached, StoreError> {
        let mut current = Cached {
            stored: view.version,
            view,
            runs: BTreeMap::new(),
        };
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash
                 FROM events WHERE deployment = ?1 AND stream_version > ?2 ORDER BY stream_version",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![current.view.deployment.as_str(), current.stored.0])
            .map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let event = self.stored_event(row)?.into_recorded()?;
            if let Some(id) = &event.run
                && !current.runs.contains_key(id)
                && let Some(rv) = self.load_run(conn, id.as_str())?
            {
                current.runs.insert(id.clone(), rv);
            }
            apply_to(&mut current.view, &mut current.runs, &event);
        }
        Ok(current)
    }

    /// Runs `read` in one read transaction: one snapshot of the journal.
    fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let out = read(&tx)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Every deployment with events, by name.
    fn deployment_names(&self, conn: &Connection) -> Result<Vec<DeploymentId>, StoreError> {
        let mut stmt = conn
            .prepare_cached("SELECT DISTINCT deployment FROM events ORDER BY deployment")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let name = row.map_err(|e| self.err(e))?;
            if let Ok(id) = DeploymentId::new(name) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The first two columns of a row, as text borrowed from it.
    fn text_pair<'r>(&self, row: &'r rusqlite::Row<'_>) -> Result<(&'r str, &'r str), StoreError> {
        let text = |i: usize| {
            row.get_ref(i)
                .and_then(|v| Ok(v.as_str()?))
                .map_err(|e| self.err(e))
        };
        Ok((text(0)?, text(1)?))
    }

    /// A run view from a `(run, body)` row of `run_projection`.
    fn run_body(&self, row: &rusqlite::Row<'_>) -> Result<RunView, StoreError> {
        let (run, body) = self.text_pair(row)?;
        super::parse_run(run, body)
    }

    /// One row of `events`, selected in the column order of [`StoredEvent`].
    fn stored_event(&self, row: &rusqlite::Row<'_>) -> Result<StoredEvent, StoreError> {
        stored_event(&self.path, row)
    }
}

impl EventStore for SqliteStore {
    fn append(
        &self,
        deployment: &DeploymentId,
        expected: StreamVersion,
        events: &[NewEvent],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // Loaded (or created) before the transaction, at the first append.
        let key = self.seal.key()?;
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let head = self.tail(&tx)?;
        let checked = self.seal.check(
            &mut Rows {
                store: self,
                tx: &tx,
            },
            head,
            Some(&self.path),
        );
        if let Err(e) = checked {
            self.seal.forget();
            return Err(e);
        }
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(deployment);
        let appended = self.append_cached(
            &tx,
            deployment,
            Some((expected, head)),
            events,
            cached,
            key.as_ref(),
        );
        let (recorded, fresh) = match appended.and_then(|r| {
            tx.commit().map_err(|e| self.err(e))?;
            Ok(r)
        }) {
            Ok(r) => r,
            Err(e) => {
                self.seal.forget();
                return Err(e);
            }
        };
        if let Some(last) = recorded.last() {
            self.beside.write(
                &self.path,
                HeadRecord {
                    seq: last.seq.0,
                    hash: last.hash,
                },
            );
        }
        self.seal.appended(&recorded);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_DEPLOYMENTS {
            cache.clear();
        }
        cache.insert(deployment.clone(), fresh);
        Ok(recorded)
    }

    fn sealed_head(&self) -> Option<HeadRecord> {
        self.seal.sealed_head()
    }

    fn stream_version(&self, deployment: &DeploymentId) -> Result<StreamVersion, StoreError> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT COALESCE(MAX(stream_version), 0) FROM events WHERE deployment = ?1",
        )
        .and_then(|mut s| s.query_row([deployment.as_str()], |r| r.get(0)))
        .map(StreamVersion)
        .map_err(|e| self.err(e))
    }

    fn deployment(&self, deployment: &DeploymentId) -> Result<Option<DeploymentView>, StoreError> {
        self.read(|conn| Ok(self.load_current(conn, deployment)?.map(|c| c.view)))
    }

    fn run(&self, run: &RunId) -> Result<Option<RunView>, StoreError> {
        self.read(|conn| {
            let stored = self.load_run(conn, run.as_str())?;
            let deployment = match &stored {
                Some(view) => Some(view.deployment.clone()),
                None => conn
                    .prepare_cached("SELECT deployment FROM events WHERE run = ?1 LIMIT 1")
                    .and_then(|mut s| {
                        s.query_row([run.as_str()], |r| r.get::<_, String>(0))
                            .optional()
                    })
                    .map_err(|e| self.err(e))?
                    .and_then(|d| DeploymentId::new(d).ok()),
            };
            let Some(deployment) = deployment else {
                return Ok(stored);
            };
            let newer = self
                .load_current(conn, &deployment)?
                .and_then(|mut c| c.runs.remove(run));
            Ok(newer.or(stored))
        })
    }

    fn runs(&self, deployment: &DeploymentId) -> Result<Vec<RunView>, StoreError> {
        self.read(|conn| {
            let mut out = Vec::new();
            {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT run, body FROM run_projection WHERE deployment = ?1 ORDER BY first_seq",
                    )
                    .map_err(|e| self.err(e))?;
                let mut rows = stmt
                    .query([deployment.as_str()])
                    .map_err(|e| self.err(e))?;
                while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                    out.push(self.run_body(row)?);
                }
            }
            if let Some(current) = self.load_current(conn, deployment)? {
                overlay(&mut out, current.runs);
            }
            Ok(out)
        })
    }

    fn deployments(&self) -> Result<Vec<DeploymentId>, StoreError> {
        let conn = self.conn();
        self.deployment_names(&conn)
    }

    fn scan(
        &self,
        scan: &Scan,
        visit: &mut dyn FnMut(StoredEvent) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        let mut sql = String::from(
            "SELECT seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash FROM events WHERE 1=1",
        );
        let mut args: Vec<Box<dyn rusqlite::ToSql>> = Vec::new();
        if let Some(d) = &scan.deployment {
            args.push(Box::new(d.as_str().to_owned()));
            sql.push_str(&format!(" AND deployment = ?{}", args.len()));
        }
        if let Some(r) = &scan.run {
            args.push(Box::new(r.as_str().to_owned()));
            sql.push_str(&format!(" AND run = ?{}", args.len()));
        }
        if let Some(s) = scan.until_seq {
            args.push(Box::new(s.0));
            sql.push_str(&format!(" AND seq <= ?{}", args.len()));
        }
        // Within one stream, stream order is sequence order; ordering by it
        // lets SQLite walk the (deployment, stream_version) index.
        if scan.deployment.is_some() && scan.run.is_none() {
            sql.push_str(" ORDER BY stream_version");
        } else {
            sql.push_str(" ORDER BY seq");
        }
        let mut stmt = conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(args.iter()))
            .map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let event = self.stored_event(row)?;
            if visit(event).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn cached_deployments(&self) -> Result<Vec<DeploymentView>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("SELECT deployment, body FROM deployment_projection ORDER BY deployment")
                .map_err(|e| self.err(e))?;
            let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                let (name, body) = self.text_pair(row)?;
                let view: DeploymentView =
                    serde_json::from_str(body).map_err(|source| StoreError::Projection {
                        what: format!("deployment {name}"),
                        source,
                    })?;
                out.push(self.bring_up_to_date(conn, view)?.view);
            }
            Ok(out)
        })
    }

    fn visit_cached_run_bodies(&self, visit: &mut dyn FnMut(&str, &str)) -> Result<(), StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT run, body FROM run_projection")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let (run, body) = self.text_pair(row)?;
            visit(run, body);
        }
        Ok(())
    }

    fn cached_runs(&self) -> Result<Vec<RunView>, StoreError> {
        self.read(|conn| {
            let deployments = self.deployment_names(conn)?;
            let mut out = Vec::new();
            {
                let mut stmt = conn
                    .prepare("SELECT run, body FROM run_projection ORDER BY run")
                    .map_err(|e| self.err(e))?;
                let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
                while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                    out.push(self.run_body(row)?);
                }
            }
            for d in &deployments {
                if let Some(current) = self.load_current(conn, d)? {
                    overlay(&mut out, current.runs);
                }
            }
            out.sort_by(|a, b| a.run.cmp(&b.run));
            Ok(out)
        })
    }

    fn len(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn journal_id(&self) -> Result<JournalId, StoreError> {
        let conn = self.conn();
        let text: String = conn
            .query_row(
                "SELECT value FROM journal_meta WHERE key = 'journal_id'",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        JournalId::parse(&text)
            .ok_or_else(|| StoreError::Backend(format!("journal id {text:?} is not an id")))
    }

    fn check_storage(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.checking_connection()?;
        let mut problems = Vec::new();
        self.pragma_check(&conn, "PRAGMA integrity_check(20)", &mut problems)?;
        Ok(problems)
    }

    fn check_storage_keyed(
        &self,
        keys: &IndexKeys,
    ) -> Result<Option<(Vec<String>, IndexDigest)>, StoreError> {
        let conn = self.checking_connection()?;
        let mut problems = Vec::new();
        // Every page's structure; then the small tables with their indexes
        // in full. The events table's indexes are read below instead.
        self.pragma_check(&conn, "PRAGMA quick_check(20)", &mut problems)?;
        for table in ["deployment_projection", "run_projection", "fabrik_schema"] {
            self.pragma_check(
                &conn,
                &format!("PRAGMA integrity_check({table})"),
                &mut problems,
            )?;
        }
        let mut digest = IndexDigest::default();
        if let Err(e) = stream_index(&conn, keys, &mut digest, &mut problems) {
            problems.push(format!("index sqlite_autoindex_events_1: {e}"));
        }
        if let Err(e) = run_index(&conn, keys, &mut digest, &mut problems) {
            problems.push(format!("index events_by_run: {e}"));
        }
        Ok(Some((problems, digest)))
    }
}

impl SqliteStore {
    /// A read-only connection of its own, so a check can run beside a scan
    /// of this store on another thread (as `replay --verify` does).
    fn checking_connection(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| self.err(e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.err(e))?;
        Ok(conn)
    }

    /// Runs an integrity pragma, adding what it reports to `problems`.
    fn pragma_check(
        &self,
        conn: &Connection,
        pragma: &str,
        problems: &mut Vec<String>,
    ) -> Result<(), StoreError> {
        let mut stmt = conn.prepare(pragma).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let text = row.map_err(|e| self.err(e))?;
            // A header line names the database before its problems.
            if text != "ok" && !text.starts_with("*** in database") {
                problems.push(text);
            }
        }
        Ok(())
    }
}

/// Reads the `(deployment, stream_version)` index of the events in its own
/// order, checking that order and adding each entry to `digest`.
fn stream_index(
    conn: &Connection,
    keys: &IndexKeys,
    digest: &mut IndexDigest,
    problems: &mut Vec<String>,
) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT deployment, stream_version, seq FROM events INDEXED BY sqlite_autoindex_events_1
         ORDER BY deployment, stream_version",
    )?;
    let mut rows = stmt.query([])?;
    let mut last: Option<(Vec<u8>, u64)> = None;
    while let Some(row) = rows.next()? {
        let deployment = row.get_ref(0)?.as_str()?;
        let version: u64 = row.get(1)?;
        let seq: u64 = row.get(2)?;
        if let Some((d, v)) = &last
            && (d.as_slice(), *v) >= (deployment.as_bytes(), version)
        {
            problems.push(format!(
                "index sqlite_autoindex_events_1 out of order at event {seq} (stream {deployment} version {version})"
            ));
            return Ok(());
        }
        keys.stream_entry(digest, deployment, version, seq);
        match &mut last {
            Some((d, v)) => {
                d.clear();
                d.extend_from_slice(deployment.as_bytes());
                *v = version;
            }
            None => last = Some((deployment.as_bytes().to_vec(), version)),
        }
    }
    Ok(())
}

/// Reads the `(run, seq)` index of the events in its own order, checking
/// that order (no run first) and adding each entry to `digest`.
fn run_index(
    conn: &Connection,
    keys: &IndexKeys,
    digest: &mut IndexDigest,
    problems: &mut Vec<String>,
) -> Result<(), rusqlite::Error> {
    let mut stmt =
        conn.prepare("SELECT run, seq FROM events INDEXED BY events_by_run ORDER BY run, seq")?;
    let mut rows = stmt.query([])?;
    let mut last: Option<(Option<Vec<u8>>, u64)> = None;
    while let Some(row) = rows.next()? {
        let run = match row.get_ref(0)? {
            rusqlite::types::ValueRef::Null => None,
            v => Some(v.as_str()?),
        };
        let seq: u64 = row.get(1)?;
        if let Some((r, s)) = &last
            && (r.as_deref(), *s) >= (run.map(str::as_bytes), seq)
        {
            problems.push(format!("index events_by_run out of order at event {seq}"));
            return Ok(());
        }
        keys.run_entry(digest, run, seq);
        last = Some((run.map(|r| r.as_bytes().to_vec()), seq));
    }
    Ok(())
}

/// The rows an append's check reads, in its transaction.
struct Rows<'a> {
    store: &'a SqliteStore,
    tx: &'a Connection,
}

/// The columns of [`StoredEvent`], in order.
const COLUMNS: &str =
    "seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash";

impl TailSource for Rows<'_> {
    fn last_checkpoint(&mut self) -> Result<Option<StoredEvent>, StoreError> {
        let mut out = None;
        self.store.query_rows(
            self.tx,
            &format!(
                "SELECT {COLUMNS} FROM events WHERE type = '{}' ORDER BY seq DESC LIMIT 1",
                seal::CHECKPOINT
            ),
            [],
            &mut |r| {
                out = Some(r);
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn row(&mut self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        let mut out = None;
        self.store.query_rows(
            self.tx,
            &format!("SELECT {COLUMNS} FROM events WHERE seq = ?1"),
            [seq],
            &mut |r| {
                out = Some(r);
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn rows_from(
        &mut self,
        seq: u64,
        visit: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.store.query_rows(
            self.tx,
            &format!("SELECT {COLUMNS} FROM events WHERE seq >= ?1 ORDER BY seq"),
            [seq],
            visit,
        )
    }

    fn finished_before(&mut self, run: &str, seq: u64) -> Result<bool, StoreError> {
        self.tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM events WHERE run = ?1 AND seq < ?2 AND type = 'run_finished')",
            )
            .and_then(|mut s| s.query_row(params![run, seq], |r| r.get(0)))
            .map_err(|e| self.store.err(e))
    }
}

/// Whether opening failed because the journal cannot be written (a
/// read-only file, directory or mount).
fn cannot_write(e: &StoreError) -> bool {
    match e {
        StoreError::Io { source, .. } => matches!(
            source.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        ),
        StoreError::Sqlite {
            source: rusqlite::Error::SqliteFailure(f, _),
            ..
        } => matches!(
            f.code,
            rusqlite::ErrorCode::ReadOnly
                | rusqlite::ErrorCode::CannotOpen
                | rusqlite::ErrorCode::PermissionDenied
        ),
        _ => false,
    }
}

/// One row of `events` of the database at `path`, selected in the column
/// order of [`StoredEvent`].
fn stored_event(path: &Path, row: &rusqlite::Row<'_>) -> Result<StoredEvent, StoreError> {
    let err = |e| sql(path, e);
    let seq: u64 = row.get(0).map_err(err)?;
    // Borrowed: no copy of the two hashes per row.
    let blob = |i: usize| {
        row.get_ref(i)
            .and_then(|v| v.as_blob().map_err(Into::into))
            .map_err(err)
    };
    let (prev, hash) = (blob(8)?, blob(9)?);
    let bad = |what: &str| StoreError::Corrupt {
        seq: Seq(seq),
        what: what.to_owned(),
    };
    Ok(StoredEvent {
        seq,
        deployment: row.get(1).map_err(err)?,
        stream_version: row.get(2).map_err(err)?,
        run: row.get(3).map_err(err)?,
        at: row.get(4).map_err(err)?,
        type_name: row.get(5).map_err(err)?,
        version: row.get(6).map_err(err)?,
        payload: row.get(7).map_err(err)?,
        prev_hash: digest(prev).ok_or_else(|| bad("previous hash is not 32 bytes"))?,
        hash: digest(hash).ok_or_else(|| bad("hash is not 32 bytes"))?,
    })
}

/// Rebuilds every cached projection from the events, in the transaction
/// of `conn`.
fn refold(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    let err = |e| sql(path, e);
    let mut projection = crate::projection::Projection::new();
    {
        let mut stmt = conn
            .prepare(&format!("SELECT {COLUMNS} FROM events ORDER BY seq"))
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(row) = rows.next().map_err(err)? {
            let stored = stored_event(path, row)?;
            projection.apply(&stored.into_recorded()?);
        }
    }
    conn.execute_batch("DELETE FROM deployment_projection; DELETE FROM run_projection;")
        .map_err(err)?;
    for view in projection.deployments.values() {
        save_deployment(conn, view).map_err(err)?;
    }
    for run in projection.runs.values() {
        save_run(conn, run).map_err(err)?;
    }
    Ok(())
}

/// Replaces the stored run views in `runs` (in order of their first event)
/// with the newer views of the same runs, and adds the runs that have only
/// newer views, keeping that order.
fn overlay(runs: &mut Vec<RunView>, mut newer: BTreeMap<RunId, RunView>) {
    if newer.is_empty() {
        return;
    }
    for run in runs.iter_mut() {
        if let Some(view) = newer.remove(&run.run) {
            *run = view;
        }
    }
    runs.extend(newer.into_values());
    runs.sort_by_key(|r| r.first_seq);
}

/// Inserts encoded rows into `events`, as they are.
pub(crate) fn insert_events(
    conn: &Connection,
    rows: &[StoredEvent],
) -> Result<(), rusqlite::Error> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    for row in rows {
        insert.execute(params![
            row.seq,
            row.deployment,
            row.stream_version,
            row.run,
            row.at,
            row.type_name,
            row.version,
            row.payload,
            &row.prev_hash.0[..],
            &row.hash.0[..],
        ])?;
    }
    Ok(())
}

fn save_deployment(conn: &Connection, view: &DeploymentView) -> Result<(), rusqlite::Error> {
    let body = serde_json::to_string(view).unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO deployment_projection (deployment, version, last_seq, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (deployment) DO UPDATE SET version = excluded.version, last_seq = excluded.last_seq, body = excluded.body",
    )?
    .execute(params![
        view.deployment.as_str(),
        view.version.0,
        view.last_seq.0,
        body
    ])?;
    Ok(())
}

fn save_run(conn: &Connection, run: &RunView) -> Result<(), rusqlite::Error> {
    let body = serde_json::to_string(run).unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO run_projection (run, deployment, first_seq, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (run) DO UPDATE SET body = excluded.body",
    )?
    .execute(params![
        run.run.as_str(),
        run.deployment.as_str(),
        run.first_seq.0,
        body
    ])?;
    Ok(())
}

/// Whether an error is SQLite's "busy" or "locked" (another connection
/// holds the lock).
fn is_busy(e: &StoreError) -> bool {
    match e {
        StoreError::Sqlite {
            source: rusqlite::Error::SqliteFailure(f, _),
            ..
        } => matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        ),
        _ => false,
    }
}

fn digest(bytes: &[u8]) -> Option<Digest> {
    <[u8; 32]>::try_from(bytes).ok().map(Digest)
}

/// Runs `f` again while SQLite reports the database busy or locked
/// without having waited itself, for up to [`BUSY_TIMEOUT`], with short
/// randomised pauses so that processes starting together spread out.
pub(crate) fn retry_busy<T>(
    mut f: impl FnMut() -> Result<T, rusqlite::Error>,
) -> Result<T, rusqlite::Error> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause_ms = 1u64;
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(rand::random_range(1..=pause_ms)));
                pause_ms = (pause_ms * 2).min(50);
            }
            other => return other,
        }
    }
}

fn sql(path: &Path, source: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

/// Creates the database file with mode 0600 (and its directory with 0700)
/// before SQLite opens it, so it is never readable by others, not even for
/// an instant. SQLite gives the `-wal` and `-shm` files the mode of the
/// database file.
fn create_private(path: &Path) -> Result<bool, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            b.mode(0o700);
        }
        b.create(dir).map_err(io)?;
    }
    let mut o = fs::OpenOptions::new();
    o.create_new(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    match o.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Exists: it must be a file that can be written.
            fs::OpenOptions::new().append(true).open(path).map_err(io)?;
            Ok(false)
        }
        Err(e) => Err(io(e)),
    }
}

fn migrate(path: &Path, conn: &Connection) -> Result<(), StoreError> {
    let err = |e| sql(path, e);
    retry_busy(|| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS fabrik_schema (
                 version    INTEGER PRIMARY KEY,
                 name       TEXT NOT NULL,
                 applied_at TEXT NOT NULL
             )",
        )
    })
    .map_err(err)?;
    let current: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM fabrik_schema",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for m in MIGRATIONS {
        let Migration {
            version,
            name,
            sql: sql_text,
            refold: rebuild,
        } = m;
        if *version <= current {
            continue;
        }
        // IMMEDIATE: take the write lock before reading, so that two
        // processes opening a new journal at once wait for each other
        // instead of failing.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
        let step = || -> Result<bool, rusqlite::Error> {
            // Another process may have migrated while we waited for the lock.
            let done: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM fabrik_schema WHERE version = ?1)",
                [version],
                |r| r.get(0),
            )?;
            if !done {
                conn.execute_batch(sql_text)?;
                conn.execute(
                    "INSERT INTO fabrik_schema (version, name, applied_at) VALUES (?1, ?2, ?3)",
                    params![
                        version,
                        name,
                        crate::event::format_timestamp(jiff::Timestamp::now())
                    ],
                )?;
                conn.execute_batch(&format!("PRAGMA user_version = {version}"))?;
                return Ok(true);
            }
            Ok(false)
        };
        let stepped = step().map_err(err).and_then(|done| match done && *rebuild {
            true => refold(path, conn),
            false => Ok(()),
        });
        match stepped {
            Ok(()) => conn.execute_batch("COMMIT").map_err(err)?,
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(e);
            }
        }
    }
    Ok(())
}
