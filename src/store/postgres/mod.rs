//! The PostgreSQL journal, for teams that deploy from several machines.
//!
//! The same journal as the SQLite one (see `docs/storage.md`): the same
//! columns and rows, byte for byte, so the hash chain of a journal copied
//! from one backend to the other still verifies. What PostgreSQL changes:
//!
//! - **Writers serialise on an advisory transaction lock.** Every append
//!   takes `pg_advisory_xact_lock` on one key per journal, then reads the
//!   stream's version and the chain's tail, inserts and commits: of two
//!   writers at the same expected version exactly one wins, the other gets
//!   [`StoreError::Conflict`]. Readers are never blocked. No table lock is
//!   taken, so the role Fabrik uses needs only `SELECT`/`INSERT` on
//!   `events`.
//! - **Append-only is enforced by triggers** that refuse `UPDATE`, `DELETE`
//!   and `TRUNCATE` on `events`.
//! - **Durable on return.** A commit returns once the server has flushed
//!   it (`synchronous_commit` is forced back `on` for Fabrik's session if
//!   the server turned it off).
//! - **Migrations** are numbered files under `schema/postgres/`, applied in
//!   one transaction under an advisory lock and recorded in
//!   `fabrik_schema`; a database from a newer Fabrik is refused.
//! - **Run locks** are session-scoped advisory locks held on a connection of
//!   their own (see [`PgLocks`]).
//!
//! Each [`PgStore`] owns one connection, on a thread of its own (see
//! `worker.rs`), so it works the same from plain threads and from inside a
//! tokio runtime. The journal lives in the connection's current schema
//! (`search_path`; choose another with `?options=-csearch_path%3Dname`).

mod address;
mod lock;
mod tls;
mod worker;

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Arc, mpsc};

use ::postgres::types::ToSql;
use ::postgres::{Client, NoTls, Statement, Transaction};

pub use address::{PgUrl, UrlError, is_postgres_url};
pub use lock::{AdvisoryGuard, PgLocks};
pub use tls::SslMode;

use super::seal::{self, TailSource};
use super::{
    EventStore, HeadRecord, JournalKey, Scan, Seal, StoreError, StoredEvent, Tail, encode_sealed,
};
use super::{parse_run, parse_view};
use crate::event::{NewEvent, RecordedEvent};
use crate::id::{DeploymentId, Digest, JournalId, RunId, Seq, StreamVersion};
use crate::projection::{DeploymentView, Projection, RunView, apply_to};
use worker::Worker;

/// The migrations, in order: version, name, SQL, and whether the cached
/// projections are rebuilt from the events in the migration's transaction
/// (the fold changed). Never edit one that has shipped.
const MIGRATIONS: &[(i64, &str, &str, bool)] = &[
    (
        1,
        "journal",
        include_str!("../../../schema/postgres/0001_journal.sql"),
        false,
    ),
    (
        2,
        "lock_holders",
        include_str!("../../../schema/postgres/0002_lock_holders.sql"),
        false,
    ),
    (
        3,
        "journal_id",
        include_str!("../../../schema/postgres/0003_journal_id.sql"),
        false,
    ),
    (
        4,
        "refold: a failed create leaves a resource absent",
        include_str!("../../../schema/postgres/0004_refold.sql"),
        true,
    ),
];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i64 = 4;

/// Rows fetched per round trip when scanning.
const SCAN_CHUNK: i32 = 2048;

/// Rows inserted per statement when importing or rewriting projections.
const WRITE_CHUNK: usize = 1000;

/// A journal in a PostgreSQL database.
#[derive(Debug)]
pub struct PgStore {
    url: PgUrl,
    worker: Worker<Conn>,
    /// How appends are checked and sealed (shared with the connection's
    /// thread).
    seal: Arc<Seal>,
}

/// The connection and what was prepared on it.
struct Conn {
    client: Client,
    target: String,
    keys: Keys,
    stmts: Statements,
    seal: Arc<Seal>,
}

/// Advisory lock keys of this journal (one journal per schema).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Keys {
    /// Serialises appends.
    append: i64,
    /// Serialises migrations.
    migrate: i64,
}

/// A stable 64-bit advisory lock key for `what` in `schema`.
pub(crate) fn advisory_key(schema: &str, what: &str) -> i64 {
    let h = blake3::hash(format!("fabrik-advisory-v1\n{schema}\n{what}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    i64::from_le_bytes(b)
}

struct Statements {
    lock_append: Statement,
    head: Statement,
    tail: Statement,
    stream_version: Statement,
    insert: Statement,
    load_view: Statement,
    load_run: Statement,
    load_runs: Statement,
    runs_of: Statement,
    save_deployments: Statement,
    save_runs: Statement,
}

fn pg(target: &str) -> impl Fn(::postgres::Error) -> StoreError + '_ {
    move |source| StoreError::Postgres {
        target: target.to_owned(),
        source,
    }
}

fn int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{v} is too large to store")))
}

/// Opens a connection to `url` (TLS as its `sslmode` says).
pub(crate) fn connect(url: &PgUrl) -> Result<Client, StoreError> {
    let target = url.redacted();
    let config = url.config();
    let tls = tls::client_config(url.ssl_mode(), url.ssl_root_cert())
        .map_err(|e| StoreError::Backend(format!("state database {target}: {e}")))?;
    match tls {
        None => config.connect(NoTls),
        Some(tls) => config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls)),
    }
    .map_err(pg(&target))
}

/// The connection's schema, making sure commits are durable.
fn session_setup(client: &mut Client, target: &str) -> Result<String, StoreError> {
    let row = client
        .query_one(
            "SELECT current_schema(), current_setting('synchronous_commit')",
            &[],
        )
        .map_err(pg(target))?;
    let schema: Option<String> = row.try_get(0).map_err(pg(target))?;
    let sync: String = row.try_get(1).map_err(pg(target))?;
    if sync == "off" {
        // An append that returned must survive a server crash.
        client
            .batch_execute("SET synchronous_commit = on")
            .map_err(pg(target))?;
    }
    schema.ok_or_else(|| {
        StoreError::Backend(format!(
            "state database {target}: no schema to keep the journal in (the search_path names none that exists)"
        ))
    })
}

fn schema_version(client: &mut Client, target: &str) -> Result<i64, StoreError> {
    let row = client
        .query_one("SELECT to_regclass('fabrik_schema') IS NOT NULL", &[])
        .map_err(pg(target))?;
    let exists: bool = row.try_get(0).map_err(pg(target))?;
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM fabrik_schema",
            &[],
        )
        .map_err(pg(target))?;
    row.try_get(0).map_err(pg(target))
}

fn newer(target: &str, found: i64) -> StoreError {
    StoreError::NewerSchema {
        path: target.into(),
        found,
        known: SCHEMA_VERSION,
    }
}

/// Applies the migrations this database lacks, in one transaction under an
/// advisory lock so that processes opening a new journal at once wait for
/// each other.
fn migrate(client: &mut Client, target: &str, keys: Keys) -> Result<(), StoreError> {
    let current = schema_version(client, target)?;
    if current > SCHEMA_VERSION {
        return Err(newer(target, current));
    }
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    let e = pg(target);
    let mut tx = client.transaction().map_err(&e)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&keys.migrate])
        .map_err(&e)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS fabrik_schema (
             version    bigint PRIMARY KEY,
             name       text   NOT NULL,
             applied_at text   NOT NULL
         )",
    )
    .map_err(&e)?;
    // Another process may have migrated while we waited for the lock.
    let current: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::bigint FROM fabrik_schema",
            &[],
        )
        .and_then(|r| r.try_get(0))
        .map_err(&e)?;
    if current > SCHEMA_VERSION {
        return Err(newer(target, current));
    }
    let mut rebuild = false;
    for (version, name, sql, rebuilds) in MIGRATIONS {
        if *version <= current {
            continue;
        }
        tx.batch_execute(sql).map_err(&e)?;
        tx.execute(
            "INSERT INTO fabrik_schema (version, name, applied_at) VALUES ($1, $2, $3)",
            &[
                version,
                name,
                &crate::event::format_timestamp(jiff::Timestamp::now()),
            ],
        )
        .map_err(&e)?;
        rebuild |= *rebuilds && current > 0;
    }
    if rebuild {
        refold(&mut tx, target)?;
    }
    tx.commit().map_err(&e)
}

/// Rebuilds every cached projection from the events, in `tx`.
fn refold(tx: &mut Transaction<'_>, target: &str) -> Result<(), StoreError> {
    let e = pg(target);
    let mut projection = Projection::new();
    let portal = tx
        .bind(
            "SELECT seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash FROM events ORDER BY seq",
            &[],
        )
        .map_err(&e)?;
    loop {
        let rows = tx.query_portal(&portal, SCAN_CHUNK).map_err(&e)?;
        for row in &rows {
            projection.apply(&stored(row, target)?.into_recorded()?);
        }
        if rows.len() < SCAN_CHUNK as usize {
            break;
        }
    }
    tx.batch_execute("DELETE FROM deployment_projection; DELETE FROM run_projection;")
        .map_err(&e)?;
    let deployments = tx
        .prepare(
            "INSERT INTO deployment_projection (deployment, version, last_seq, body)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[])",
        )
        .map_err(&e)?;
    save_deployments(tx, &deployments, target, projection.deployments.values())?;
    let runs = tx
        .prepare(
            "INSERT INTO run_projection (run, deployment, first_seq, body)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[])",
        )
        .map_err(&e)?;
    save_runs(tx, &runs, target, projection.runs.values())
}

fn prepare(client: &mut Client, target: &str) -> Result<Statements, StoreError> {
    let e = pg(target);
    let mut p = |sql: &str| client.prepare(sql).map_err(&e);
    Ok(Statements {
        lock_append: p("SELECT pg_advisory_xact_lock($1)")?,
        head: p("SELECT (SELECT COALESCE(MAX(stream_version), 0)::bigint FROM events WHERE deployment = $1),
                        t.seq, t.hash,
                        (SELECT body FROM deployment_projection WHERE deployment = $1)
                 FROM (SELECT 1) AS one
                 LEFT JOIN LATERAL (SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1) AS t ON true")?,
        tail: p("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")?,
        stream_version: p(
            "SELECT COALESCE(MAX(stream_version), 0)::bigint FROM events WHERE deployment = $1",
        )?,
        insert: p(
            "INSERT INTO events (seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                                  $6::text[], $7::integer[], $8::text[], $9::bytea[], $10::bytea[])",
        )?,
        load_view: p("SELECT body FROM deployment_projection WHERE deployment = $1")?,
        load_run: p("SELECT body FROM run_projection WHERE run = $1")?,
        load_runs: p("SELECT run, body FROM run_projection WHERE run = ANY($1::text[])")?,
        runs_of: p(
            "SELECT run, body FROM run_projection WHERE deployment = $1 ORDER BY first_seq",
        )?,
        save_deployments: p(
            "INSERT INTO deployment_projection (deployment, version, last_seq, body)
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[])
             ON CONFLICT (deployment) DO UPDATE
                SET version = excluded.version, last_seq = excluded.last_seq, body = excluded.body",
        )?,
        save_runs: p("INSERT INTO run_projection (run, deployment, first_seq, body)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[])
             ON CONFLICT (run) DO UPDATE SET body = excluded.body")?,
    })
}

/// Whether the database holds a Fabrik journal at all.
fn has_journal(client: &mut Client, target: &str) -> Result<bool, StoreError> {
    client
        .query_one("SELECT to_regclass('fabrik_schema') IS NOT NULL", &[])
        .and_then(|r| r.try_get(0))
        .map_err(pg(target))
}

impl Conn {
    fn open(url: &PgUrl, must_exist: bool, seal: Arc<Seal>) -> Result<Self, StoreError> {
        let target = url.redacted();
        let mut client = connect(url)?;
        let schema = session_setup(&mut client, &target)?;
        let keys = Keys {
            append: advisory_key(&schema, "append"),
            migrate: advisory_key(&schema, "migrate"),
        };
        if must_exist && !has_journal(&mut client, &target)? {
            return Err(StoreError::Io {
                path: target.into(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no journal here (run `fabrik apply` first, or pass --state)",
                ),
            });
        }
        migrate(&mut client, &target, keys)?;
        let stmts = prepare(&mut client, &target)?;
        Ok(Self {
            client,
            target,
            keys,
            stmts,
            seal,
        })
    }
}

/// Inserts stored rows as they are, in chunks.
fn insert_rows(
    tx: &mut Transaction<'_>,
    stmt: &Statement,
    target: &str,
    rows: &[StoredEvent],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(WRITE_CHUNK) {
        let mut seq = Vec::with_capacity(chunk.len());
        let mut sv = Vec::with_capacity(chunk.len());
        let mut version = Vec::with_capacity(chunk.len());
        for r in chunk {
            seq.push(int(r.seq)?);
            sv.push(int(r.stream_version)?);
            version.push(i32::try_from(r.version).map_err(|_| {
                StoreError::Backend(format!("event version {} is too large", r.version))
            })?);
        }
        let deployment: Vec<&str> = chunk.iter().map(|r| r.deployment.as_str()).collect();
        let run: Vec<Option<&str>> = chunk.iter().map(|r| r.run.as_deref()).collect();
        let at: Vec<&str> = chunk.iter().map(|r| r.at.as_str()).collect();
        let type_name: Vec<&str> = chunk.iter().map(|r| r.type_name.as_str()).collect();
        let payload: Vec<&str> = chunk.iter().map(|r| r.payload.as_str()).collect();
        let prev: Vec<&[u8]> = chunk.iter().map(|r| &r.prev_hash.0[..]).collect();
        let hash: Vec<&[u8]> = chunk.iter().map(|r| &r.hash.0[..]).collect();
        let params: [&(dyn ToSql + Sync); 10] = [
            &seq,
            &deployment,
            &sv,
            &run,
            &at,
            &type_name,
            &version,
            &payload,
            &prev,
            &hash,
        ];
        tx.execute(stmt, &params).map_err(pg(target))?;
    }
    Ok(())
}

fn save_deployments<'a>(
    tx: &mut Transaction<'_>,
    stmt: &Statement,
    target: &str,
    views: impl Iterator<Item = &'a DeploymentView>,
) -> Result<(), StoreError> {
    let views: Vec<&DeploymentView> = views.collect();
    for chunk in views.chunks(WRITE_CHUNK) {
        let mut name = Vec::with_capacity(chunk.len());
        let mut version = Vec::with_capacity(chunk.len());
        let mut last = Vec::with_capacity(chunk.len());
        let mut body = Vec::with_capacity(chunk.len());
        for v in chunk {
            name.push(v.deployment.as_str());
            version.push(int(v.version.0)?);
            last.push(int(v.last_seq.0)?);
            body.push(
                serde_json::to_string(v).map_err(|source| StoreError::Projection {
                    what: format!("deployment {}", v.deployment),
                    source,
                })?,
            );
        }
        tx.execute(stmt, &[&name, &version, &last, &body])
            .map_err(pg(target))?;
    }
    Ok(())
}

fn save_runs<'a>(
    tx: &mut Transaction<'_>,
    stmt: &Statement,
    target: &str,
    runs: impl Iterator<Item = &'a RunView>,
) -> Result<(), StoreError> {
    let runs: Vec<&RunView> = runs.collect();
    for chunk in runs.chunks(WRITE_CHUNK) {
        let mut id = Vec::with_capacity(chunk.len());
        let mut deployment = Vec::with_capacity(chunk.len());
        let mut first = Vec::with_capacity(chunk.len());
        let mut body = Vec::with_capacity(chunk.len());
        for r in chunk {
            id.push(r.run.as_str());
            deployment.push(r.deployment.as_str());
            first.push(int(r.first_seq.0)?);
            body.push(
                serde_json::to_string(r).map_err(|source| StoreError::Projection {
                    what: format!("run {}", r.run),
                    source,
                })?,
            );
        }
        tx.execute(stmt, &[&id, &deployment, &first, &body])
            .map_err(pg(target))?;
    }
    Ok(())
}

fn digest(seq: u64, bytes: &[u8], what: &str) -> Result<Digest, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(Digest)
        .map_err(|_| StoreError::Corrupt {
            seq: Seq(seq),
            what: format!("{what} is not 32 bytes"),
        })
}

fn tail_of(seq: Option<i64>, hash: Option<Vec<u8>>) -> Result<Tail, StoreError> {
    match (seq, hash) {
        (Some(seq), Some(hash)) => {
            let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt {
                seq: Seq(0),
                what: format!("sequence number {seq} is negative"),
            })?;
            Ok(Tail {
                seq,
                hash: digest(seq, &hash, "hash")?,
            })
        }
        _ => Ok(Tail::EMPTY),
    }
}

fn stored(row: &::postgres::Row, target: &str) -> Result<StoredEvent, StoreError> {
    let e = pg(target);
    let seq: i64 = row.try_get(0).map_err(&e)?;
    let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt {
        seq: Seq(0),
        what: format!("sequence number {seq} is negative"),
    })?;
    let bad = |what: &str| StoreError::Corrupt {
        seq: Seq(seq),
        what: what.to_owned(),
    };
    let stream_version: i64 = row.try_get(2).map_err(&e)?;
    let version: i32 = row.try_get(6).map_err(&e)?;
    let prev: &[u8] = row.try_get(8).map_err(&e)?;
    let hash: &[u8] = row.try_get(9).map_err(&e)?;
    Ok(StoredEvent {
        seq,
        deployment: row.try_get(1).map_err(&e)?,
        stream_version: u64::try_from(stream_version)
            .map_err(|_| bad("stream version is negative"))?,
        run: row.try_get(3).map_err(&e)?,
        at: row.try_get(4).map_err(&e)?,
        type_name: row.try_get(5).map_err(&e)?,
        version: u32::try_from(version).map_err(|_| bad("event version is negative"))?,
        payload: row.try_get(7).map_err(&e)?,
        prev_hash: digest(seq, prev, "previous hash")?,
        hash: digest(seq, hash, "hash")?,
    })
}

impl Conn {
    /// One append inside an open transaction whose append lock is held.
    /// `expected: None` appends at whatever the stream's version is (bulk
    /// loads of complete journals). Each `run_finished` is sealed with
    /// `key`, when given.
    fn append_in(
        tx: &mut Transaction<'_>,
        s: &Statements,
        target: &str,
        deployment: &DeploymentId,
        expected: Option<StreamVersion>,
        events: &[NewEvent],
        key: Option<&JournalKey>,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let e = pg(target);
        let head = tx.query_one(&s.head, &[&deployment.as_str()]).map_err(&e)?;
        let actual: i64 = head.try_get(0).map_err(&e)?;
        let actual = StreamVersion(u64::try_from(actual).unwrap_or(0));
        let body: Option<String> = head.try_get(3).map_err(&e)?;
        if let Some(expected) = expected
            && actual < expected
        {
            // Another writer only ever makes a stream longer.
            let written = body
                .as_deref()
                .and_then(|b| parse_view(deployment.as_str(), b).ok())
                .map(|v| v.last_seq);
            return Err(seal::shorter_stream(
                deployment, expected, actual.0, written,
            ));
        }
        if let Some(expected) = expected
            && actual != expected
        {
            return Err(StoreError::Conflict {
                deployment: deployment.clone(),
                expected,
                actual,
            });
        }
        let tail = tail_of(head.try_get(1).map_err(&e)?, head.try_get(2).map_err(&e)?)?;
        let (rows, recorded) = encode_sealed(deployment, actual, tail, events, key);
        insert_rows(tx, &s.insert, target, &rows)?;
        let mut view = match body {
            Some(b) => parse_view(deployment.as_str(), &b)?,
            None => DeploymentView::new(deployment.clone()),
        };
        let ids: Vec<&str> = {
            let mut ids: Vec<&str> = recorded
                .iter()
                .filter_map(|r| r.run.as_ref().map(RunId::as_str))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            ids
        };
        let mut runs = BTreeMap::new();
        if !ids.is_empty() {
            for row in tx.query(&s.load_runs, &[&ids]).map_err(&e)? {
                let id: String = row.try_get(0).map_err(&e)?;
                let body: String = row.try_get(1).map_err(&e)?;
                let run = parse_run(&id, &body)?;
                runs.insert(run.run.clone(), run);
            }
        }
        for r in &recorded {
            apply_to(&mut view, &mut runs, r);
        }
        save_deployments(tx, &s.save_deployments, target, std::iter::once(&view))?;
        save_runs(tx, &s.save_runs, target, runs.values())?;
        Ok(recorded)
    }

    fn append(
        &mut self,
        deployment: &DeploymentId,
        expected: StreamVersion,
        events: &[NewEvent],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let Self {
            client,
            target,
            keys,
            stmts,
            seal,
        } = self;
        let key = seal.key()?;
        let appended = (|| {
            let e = pg(target);
            let mut tx = client.transaction().map_err(&e)?;
            tx.execute(&stmts.lock_append, &[&keys.append])
                .map_err(&e)?;
            let head = match tx.query_opt(&stmts.tail, &[]).map_err(&e)? {
                Some(row) => tail_of(
                    Some(row.try_get(0).map_err(&e)?),
                    Some(row.try_get(1).map_err(&e)?),
                )?,
                None => Tail::EMPTY,
            };
            seal.check(
                &mut Rows {
                    tx: &mut tx,
                    target,
                },
                head,
                None,
            )?;
            let recorded = Self::append_in(
                &mut tx,
                stmts,
                target,
                deployment,
                Some(expected),
                events,
                key.as_ref(),
            )?;
            tx.commit().map_err(&e)?;
            Ok(recorded)
        })();
        match appended {
            Ok(recorded) => {
                seal.appended(&recorded);
                Ok(recorded)
            }
            Err(e) => {
                seal.forget();
                Err(e)
            }
        }
    }

    fn bulk_append(
        &mut self,
        batches: Vec<(DeploymentId, Vec<NewEvent>)>,
        per_commit: usize,
    ) -> Result<u64, StoreError> {
        let Self {
            client,
            target,
            keys,
            stmts,
            ..
        } = self;
        let mut n = 0u64;
        for group in batches.chunks(per_commit.max(1)) {
            let mut tx = client.transaction().map_err(pg(target))?;
            for (deployment, events) in group {
                tx.execute(&stmts.lock_append, &[&keys.append])
                    .map_err(pg(target))?;
                n += Self::append_in(&mut tx, stmts, target, deployment, None, events, None)?.len()
                    as u64;
            }
            tx.commit().map_err(pg(target))?;
        }
        Ok(n)
    }

    fn import(&mut self, rows: &[StoredEvent]) -> Result<(), StoreError> {
        let Some(first) = rows.first() else {
            return Ok(());
        };
        let Self {
            client,
            target,
            keys,
            stmts,
            ..
        } = self;
        let e = pg(target);
        let mut tx = client.transaction().map_err(&e)?;
        tx.execute(&stmts.lock_append, &[&keys.append])
            .map_err(&e)?;
        let tail = match tx.query_opt(&stmts.tail, &[]).map_err(&e)? {
            Some(row) => tail_of(
                Some(row.try_get(0).map_err(&e)?),
                Some(row.try_get(1).map_err(&e)?),
            )?,
            None => Tail::EMPTY,
        };
        if first.seq != tail.seq + 1 || first.prev_hash != tail.hash {
            return Err(StoreError::Backend(format!(
                "state database {target}: the journal ends at event {} ({}), the rows to import continue event {} ({})",
                tail.seq,
                tail.hash.short(),
                first.seq.saturating_sub(1),
                first.prev_hash.short()
            )));
        }
        insert_rows(&mut tx, &stmts.insert, target, rows)?;
        tx.commit().map_err(&e)
    }

    fn replace_projections(&mut self, projection: &Projection) -> Result<(), StoreError> {
        let Self {
            client,
            target,
            keys,
            stmts,
            ..
        } = self;
        let e = pg(target);
        let mut tx = client.transaction().map_err(&e)?;
        // Appends fold into the projections; keep them out meanwhile.
        tx.execute(&stmts.lock_append, &[&keys.append])
            .map_err(&e)?;
        tx.batch_execute("DELETE FROM deployment_projection; DELETE FROM run_projection;")
            .map_err(&e)?;
        save_deployments(
            &mut tx,
            &stmts.save_deployments,
            target,
            projection.deployments.values(),
        )?;
        save_runs(&mut tx, &stmts.save_runs, target, projection.runs.values())?;
        tx.commit().map_err(&e)
    }

    /// Streams the rows `scan` selects in chunks to `send`, in one
    /// read-only snapshot, until `send` returns false.
    fn scan(
        &mut self,
        scan: &Scan,
        send: &mut dyn FnMut(Vec<StoredEvent>) -> bool,
    ) -> Result<(), StoreError> {
        let e = pg(&self.target);
        let mut sql = String::from(
            "SELECT seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash FROM events WHERE true",
        );
        let deployment = scan.deployment.as_ref().map(|d| d.as_str().to_owned());
        let run = scan.run.as_ref().map(|r| r.as_str().to_owned());
        let until = scan.until_seq.map(|s| int(s.0)).transpose()?;
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        if let Some(d) = &deployment {
            params.push(d);
            sql.push_str(&format!(" AND deployment = ${}", params.len()));
        }
        if let Some(r) = &run {
            params.push(r);
            sql.push_str(&format!(" AND run = ${}", params.len()));
        }
        if let Some(s) = &until {
            params.push(s);
            sql.push_str(&format!(" AND seq <= ${}", params.len()));
        }
        // Within one stream, stream order is sequence order; ordering by it
        // walks the (deployment, stream_version) index.
        if scan.deployment.is_some() && scan.run.is_none() {
            sql.push_str(" ORDER BY stream_version");
        } else {
            sql.push_str(" ORDER BY seq");
        }
        let mut tx = self
            .client
            .build_transaction()
            .read_only(true)
            .isolation_level(::postgres::IsolationLevel::RepeatableRead)
            .start()
            .map_err(&e)?;
        let portal = tx.bind(sql.as_str(), &params).map_err(&e)?;
        loop {
            let rows = tx.query_portal(&portal, SCAN_CHUNK).map_err(&e)?;
            let done = rows.len() < SCAN_CHUNK as usize;
            let mut chunk = Vec::with_capacity(rows.len());
            for row in &rows {
                chunk.push(stored(row, &self.target)?);
            }
            if !chunk.is_empty() && !send(chunk) {
                break;
            }
            if done {
                break;
            }
        }
        tx.commit().map_err(&e)
    }

    fn query_bodies(&mut self, sql: &str) -> Result<Vec<(String, String)>, StoreError> {
        let e = pg(&self.target);
        let rows = self.client.query(sql, &[]).map_err(&e)?;
        rows.iter()
            .map(|r| Ok((r.try_get(0).map_err(&e)?, r.try_get(1).map_err(&e)?)))
            .collect()
    }
}

impl PgStore {
    /// Connects to the database at `url` and creates or migrates the
    /// journal there.
    pub fn open(url: &PgUrl) -> Result<Self, StoreError> {
        Self::start(url, false, Seal::none())
    }

    /// Connects to an existing journal, refusing a database that holds
    /// none (for read-only commands, which must not create state).
    pub fn open_existing(url: &PgUrl) -> Result<Self, StoreError> {
        Self::start(url, true, Seal::none())
    }

    /// [`Self::open`], checking and sealing appends as `seal` says.
    pub fn open_sealed(url: &PgUrl, seal: Seal) -> Result<Self, StoreError> {
        Self::start(url, false, seal)
    }

    /// [`Self::open_existing`], checking and sealing appends as `seal` says.
    pub fn open_existing_sealed(url: &PgUrl, seal: Seal) -> Result<Self, StoreError> {
        Self::start(url, true, seal)
    }

    fn start(url: &PgUrl, must_exist: bool, seal: Seal) -> Result<Self, StoreError> {
        let for_thread = url.clone();
        let seal = Arc::new(seal);
        let for_conn = seal.clone();
        let worker = Worker::spawn(url.redacted(), move || {
            Conn::open(&for_thread, must_exist, for_conn)
        })?;
        Ok(Self {
            url: url.clone(),
            worker,
            seal,
        })
    }

    /// Where the journal is.
    pub fn url(&self) -> &PgUrl {
        &self.url
    }

    /// The run locks of this journal.
    pub fn locks(&self) -> PgLocks {
        PgLocks::new(self.url.clone())
    }

    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.worker.call(f)?
    }

    /// Appends many runs' events, `per_commit` batches per transaction,
    /// extending each stream at its current version. For loading large
    /// journals (benchmarks): one commit per `per_commit` batches instead of
    /// one per batch. Returns the number of events appended.
    pub fn bulk_append(
        &self,
        batches: impl IntoIterator<Item = (DeploymentId, Vec<NewEvent>)>,
        per_commit: usize,
    ) -> Result<u64, StoreError> {
        let batches: Vec<_> = batches.into_iter().collect();
        self.call(move |c| c.bulk_append(batches, per_commit))
    }

    /// Stores rows exactly as given (their sequence numbers, times,
    /// payloads and hashes), after checking that the first one continues
    /// the journal's chain; the rows must be a verified chain. Cached
    /// projections are not touched: call [`Self::replace_projections`] or
    /// [`Self::rebuild_projections`] afterwards. For copying a journal
    /// between backends.
    pub fn import(&self, rows: Vec<StoredEvent>) -> Result<(), StoreError> {
        self.call(move |c| c.import(&rows))
    }

    /// Replaces every cached projection with `projection` (a fold of all
    /// the events).
    pub fn replace_projections(&self, projection: &Projection) -> Result<(), StoreError> {
        let projection = projection.clone();
        self.call(move |c| c.replace_projections(&projection))
    }

    /// Rebuilds every cached projection from the events.
    pub fn rebuild_projections(&self) -> Result<(), StoreError> {
        let mut projection = Projection::new();
        let mut err = None;
        self.scan(&Scan::default(), &mut |row| match row.decode() {
            Ok(e) => {
                projection.apply(&e);
                ControlFlow::Continue(())
            }
            Err(e) => {
                err = Some(e);
                ControlFlow::Break(())
            }
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        self.replace_projections(&projection)
    }
}

/// The rows an append's check reads, in its transaction.
struct Rows<'a, 't> {
    tx: &'a mut Transaction<'t>,
    target: &'a str,
}

/// The columns of [`StoredEvent`], in order.
const COLUMNS: &str =
    "seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash";

impl Rows<'_, '_> {
    fn one(&mut self, sql: &str, seq: Option<i64>) -> Result<Option<StoredEvent>, StoreError> {
        let row = match &seq {
            Some(s) => self.tx.query_opt(sql, &[s]),
            None => self.tx.query_opt(sql, &[]),
        }
        .map_err(pg(self.target))?;
        row.map(|r| stored(&r, self.target)).transpose()
    }
}

impl TailSource for Rows<'_, '_> {
    fn last_checkpoint(&mut self) -> Result<Option<StoredEvent>, StoreError> {
        self.one(
            &format!(
                "SELECT {COLUMNS} FROM events WHERE type = '{}' ORDER BY seq DESC LIMIT 1",
                seal::CHECKPOINT
            ),
            None,
        )
    }

    fn row(&mut self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        self.one(
            &format!("SELECT {COLUMNS} FROM events WHERE seq = $1"),
            Some(int(seq)?),
        )
    }

    fn rows_from(
        &mut self,
        seq: u64,
        visit: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let e = pg(self.target);
        let from = int(seq)?;
        let portal = self
            .tx
            .bind(
                format!("SELECT {COLUMNS} FROM events WHERE seq >= $1 ORDER BY seq").as_str(),
                &[&from],
            )
            .map_err(&e)?;
        loop {
            let rows = self.tx.query_portal(&portal, SCAN_CHUNK).map_err(&e)?;
            for row in &rows {
                visit(stored(row, self.target)?)?;
            }
            if rows.len() < SCAN_CHUNK as usize {
                return Ok(());
            }
        }
    }

    fn finished_before(&mut self, run: &str, seq: u64) -> Result<bool, StoreError> {
        let seq = int(seq)?;
        self.tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM events WHERE run = $1 AND seq < $2 AND type = 'run_finished')",
                &[&run, &seq],
            )
            .and_then(|r| r.try_get(0))
            .map_err(pg(self.target))
    }
}

impl EventStore for PgStore {
    fn append(
        &self,
        deployment: &DeploymentId,
        expected: StreamVersion,
        events: &[NewEvent],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let deployment = deployment.clone();
        let events = events.to_vec();
        self.call(move |c| c.append(&deployment, expected, &events))
    }

    fn sealed_head(&self) -> Option<HeadRecord> {
        self.seal.sealed_head()
    }

    fn stream_version(&self, deployment: &DeploymentId) -> Result<StreamVersion, StoreError> {
        let deployment = deployment.clone();
        self.call(move |c| {
            let e = pg(&c.target);
            let v: i64 = c
                .client
                .query_one(&c.stmts.stream_version, &[&deployment.as_str()])
                .and_then(|r| r.try_get(0))
                .map_err(&e)?;
            Ok(StreamVersion(u64::try_from(v).unwrap_or(0)))
        })
    }

    fn deployment(&self, deployment: &DeploymentId) -> Result<Option<DeploymentView>, StoreError> {
        let deployment = deployment.clone();
        self.call(move |c| {
            let e = pg(&c.target);
            let row = c
                .client
                .query_opt(&c.stmts.load_view, &[&deployment.as_str()])
                .map_err(&e)?;
            row.map(|r| {
                let body: String = r.try_get(0).map_err(&e)?;
                parse_view(deployment.as_str(), &body)
            })
            .transpose()
        })
    }

    fn run(&self, run: &RunId) -> Result<Option<RunView>, StoreError> {
        let run = run.clone();
        self.call(move |c| {
            let e = pg(&c.target);
            let row = c
                .client
                .query_opt(&c.stmts.load_run, &[&run.as_str()])
                .map_err(&e)?;
            row.map(|r| {
                let body: String = r.try_get(0).map_err(&e)?;
                parse_run(run.as_str(), &body)
            })
            .transpose()
        })
    }

    fn runs(&self, deployment: &DeploymentId) -> Result<Vec<RunView>, StoreError> {
        let deployment = deployment.clone();
        self.call(move |c| {
            let e = pg(&c.target);
            let rows = c
                .client
                .query(&c.stmts.runs_of, &[&deployment.as_str()])
                .map_err(&e)?;
            rows.iter()
                .map(|r| {
                    let id: String = r.try_get(0).map_err(&e)?;
                    let body: String = r.try_get(1).map_err(&e)?;
                    parse_run(&id, &body)
                })
                .collect()
        })
    }

    fn deployments(&self) -> Result<Vec<DeploymentId>, StoreError> {
        self.call(|c| {
            let e = pg(&c.target);
            let rows = c
                .client
                .query(
                    "SELECT DISTINCT deployment FROM events ORDER BY deployment",
                    &[],
                )
                .map_err(&e)?;
            let mut out = Vec::new();
            for r in &rows {
                let name: String = r.try_get(0).map_err(&e)?;
                if let Ok(id) = DeploymentId::new(name) {
                    out.push(id);
                }
            }
            Ok(out)
        })
    }

    fn scan(
        &self,
        scan: &Scan,
        visit: &mut dyn FnMut(StoredEvent) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        // The rows come from the connection's thread in chunks; `None`
        // marks the end, so a connection that dies midway is an error and
        // not a short journal.
        type Msg = Result<Option<Vec<StoredEvent>>, StoreError>;
        let (tx, rx) = mpsc::sync_channel::<Msg>(4);
        let scan = scan.clone();
        self.worker.submit(move |c| {
            let r = c.scan(&scan, &mut |chunk| tx.send(Ok(Some(chunk))).is_ok());
            let _ = tx.send(r.map(|()| None));
        })?;
        for msg in rx {
            match msg? {
                Some(chunk) => {
                    for e in chunk {
                        if visit(e).is_break() {
                            // Dropping the receiver stops the sender.
                            return Ok(());
                        }
                    }
                }
                None => return Ok(()),
            }
        }
        Err(StoreError::Backend(format!(
            "the connection to the state database {} stopped during a scan",
            self.worker.target()
        )))
    }

    fn cached_deployments(&self) -> Result<Vec<DeploymentView>, StoreError> {
        self.call(|c| {
            c.query_bodies(
                "SELECT deployment, body FROM deployment_projection ORDER BY deployment",
            )?
            .iter()
            .map(|(name, body)| parse_view(name, body))
            .collect()
        })
    }

    fn cached_runs(&self) -> Result<Vec<RunView>, StoreError> {
        self.call(|c| {
            c.query_bodies("SELECT run, body FROM run_projection ORDER BY run")?
                .iter()
                .map(|(run, body)| parse_run(run, body))
                .collect()
        })
    }

    fn len(&self) -> Result<u64, StoreError> {
        self.call(|c| {
            let n: i64 = c
                .client
                .query_one("SELECT COUNT(*) FROM events", &[])
                .and_then(|r| r.try_get(0))
                .map_err(pg(&c.target))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn journal_id(&self) -> Result<JournalId, StoreError> {
        self.call(|c| {
            let text: String = c
                .client
                .query_one(
                    "SELECT value FROM journal_meta WHERE key = 'journal_id'",
                    &[],
                )
                .and_then(|r| r.try_get(0))
                .map_err(pg(&c.target))?;
            JournalId::parse(&text)
                .ok_or_else(|| StoreError::Backend(format!("journal id {text:?} is not an id")))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisory_keys_are_stable_and_distinct() {
        // Stable across processes and releases: other Fabriks must agree.
        assert_eq!(
            advisory_key("public", "append"),
            advisory_key("public", "append")
        );
        assert_ne!(
            advisory_key("public", "append"),
            advisory_key("public", "migrate")
        );
        assert_ne!(
            advisory_key("public", "deployment blog"),
            advisory_key("team_b", "deployment blog")
        );
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, (v, _, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*v, i as i64 + 1);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
    }
}
