//! The world's storage: one SQLite file, one transaction per request.
//!
//! The database is the source of truth. Several sandboxes in different
//! processes may share one file (every `fabrik --sandbox` process runs its
//! own), so nothing about the world is cached in memory: each request runs
//! in one `BEGIN IMMEDIATE` transaction that commits before the response is
//! written, and waits (busy timeout) while another process holds the lock.
//! rusqlite is synchronous, so transactions run on the blocking pool.

use std::fs::OpenOptions;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};

use super::SandboxError;

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 4;

/// The schema, applied once to a fresh file.
const SCHEMA: &str = include_str!("schema.sql");

/// From version 1 to 2 (fresh files too, after [`SCHEMA`]).
const SCHEMA_2: &str = include_str!("schema_2.sql");

/// From version 2 to 3 (fresh files too, after [`SCHEMA_2`]).
const SCHEMA_3: &str = include_str!("schema_3.sql");

/// From version 3 to 4 (fresh files too, after [`SCHEMA_3`]).
const SCHEMA_4: &str = include_str!("schema_4.sql");

/// What a fresh world is seeded with.
#[derive(Debug, Clone)]
pub(crate) struct WorldInit {
    /// Seed of the identifiers, kept in the file so the world stays the
    /// same world whatever seed later configs carry.
    pub(crate) seed: u64,
    /// Cloudflare zones that must exist (added on every open).
    pub(crate) zones: Vec<String>,
    /// Coolify servers besides `localhost` that must exist (each with one
    /// destination).
    pub(crate) servers: Vec<String>,
    /// Creation time of the seeded resources.
    pub(crate) now: i64,
}

/// Connections kept for read transactions: WAL lets them read while the
/// writer writes, so GETs do not queue behind each other.
const READERS: usize = 4;

/// A handle on the data file; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    /// The connection of write transactions (one writer at a time anyway).
    writer: Arc<Mutex<Connection>>,
    /// Connections of read transactions.
    readers: Arc<[Mutex<Connection>]>,
    /// Where the next read starts looking for a free connection.
    next_reader: Arc<AtomicUsize>,
    seed: u64,
}

/// One transaction, with the request's "now" and the world's id generator.
pub(crate) struct Tx<'c> {
    tx: Transaction<'c>,
    /// The request's time, in milliseconds since the Unix epoch.
    pub(crate) now: i64,
    seed: u64,
}

impl Deref for Tx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.tx
    }
}

impl Store {
    /// Opens (creating if needed, mode 0600) the data file and brings the
    /// world up to date: schema, seeded resources, configured zones.
    pub(crate) fn open(path: &Path, init: &WorldInit) -> Result<Self, SandboxError> {
        create_private_file(path)?;
        let conn = connect(path, OpenFlags::default())?;
        let open_err = |source| SandboxError::Open {
            path: path.to_owned(),
            source,
        };
        let mut conn = conn;
        {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(open_err)?;
            let version: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(open_err)?;
            if version > SCHEMA_VERSION {
                return Err(SandboxError::Schema {
                    path: path.to_owned(),
                    found: version,
                    known: SCHEMA_VERSION,
                });
            }
            if version == 0 {
                tx.execute_batch(SCHEMA).map_err(open_err)?;
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('seed', ?1), ('seq', '0')",
                    params![init.seed.to_string()],
                )
                .map_err(open_err)?;
            }
            if version < 2 {
                tx.execute_batch(SCHEMA_2).map_err(open_err)?;
            }
            if version < 3 {
                tx.execute_batch(SCHEMA_3).map_err(open_err)?;
            }
            if version < 4 {
                tx.execute_batch(SCHEMA_4).map_err(open_err)?;
            }
            if version < SCHEMA_VERSION {
                tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
                    .map_err(open_err)?;
            }
            let seed = read_seed(&tx).map_err(open_err)?;
            let world = Tx {
                tx,
                now: init.now,
                seed,
            };
            if version == 0 {
                seed_coolify(&world).map_err(open_err)?;
            }
            for zone in &init.zones {
                ensure_zone(&world, zone).map_err(open_err)?;
            }
            for server in &init.servers {
                ensure_server(&world, server).map_err(open_err)?;
            }
            world.tx.commit().map_err(open_err)?;
        }
        let seed = read_seed(&conn).map_err(open_err)?;
        Self::with_readers(path, conn, seed, READERS, OpenFlags::default())
    }

    fn with_readers(
        path: &Path,
        writer: Connection,
        seed: u64,
        readers: usize,
        flags: OpenFlags,
    ) -> Result<Self, SandboxError> {
        let readers = (0..readers)
            .map(|_| connect(path, flags).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers: readers.into(),
            next_reader: Arc::new(AtomicUsize::new(0)),
            seed,
        })
    }

    /// Opens an existing data file without changing the world (for `dump`).
    pub(crate) fn open_existing(path: &Path) -> Result<Self, SandboxError> {
        if !path.exists() {
            return Err(SandboxError::Missing {
                path: path.to_owned(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = connect(path, flags)?;
        let open_err = |source| SandboxError::Open {
            path: path.to_owned(),
            source,
        };
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if version != SCHEMA_VERSION {
            return Err(SandboxError::Schema {
                path: path.to_owned(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        let seed = read_seed(&conn).map_err(open_err)?;
        Self::with_readers(path, conn, seed, 1, flags)
    }

    /// Runs `f` in a write transaction on the blocking pool and commits when
    /// it returns `Ok` (whatever HTTP status it decided on: a bulk update
    /// that fails halfway keeps its first items, as Coolify does).
    pub(crate) async fn write<T, F>(&self, now: i64, f: F) -> Result<T, SandboxError>
    where
        F: FnOnce(&Tx<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.run(TransactionBehavior::Immediate, now, f))
            .await
            .map_err(|_| SandboxError::Worker)?
    }

    /// Runs `f` in a read transaction on the blocking pool.
    pub(crate) async fn read<T, F>(&self, now: i64, f: F) -> Result<T, SandboxError>
    where
        F: FnOnce(&Tx<'_>) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.run(TransactionBehavior::Deferred, now, f))
            .await
            .map_err(|_| SandboxError::Worker)?
    }

    /// Runs `f` in a transaction on the current thread.
    pub(crate) fn run<T>(
        &self,
        behavior: TransactionBehavior,
        now: i64,
        f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T>,
    ) -> Result<T, SandboxError> {
        let slot = match behavior {
            TransactionBehavior::Deferred => self.reader(),
            _ => &self.writer,
        };
        let mut conn = match slot.lock() {
            Ok(conn) => conn,
            // A panic mid-transaction rolled it back; the connection is fine.
            Err(poisoned) => poisoned.into_inner(),
        };
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(SandboxError::Query)?;
        let world = Tx {
            tx,
            now,
            seed: self.seed,
        };
        let out = f(&world).map_err(SandboxError::Query)?;
        world.tx.commit().map_err(SandboxError::Query)?;
        Ok(out)
    }
}

impl Store {
    /// A read connection, preferring one nobody holds.
    fn reader(&self) -> &Mutex<Connection> {
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        for k in 0..n {
            let slot = &self.readers[(start + k) % n];
            if slot.try_lock().is_ok() {
                return slot;
            }
        }
        &self.readers[start % n]
    }
}

fn create_private_file(path: &Path) -> Result<(), SandboxError> {
    let create_err = |source| SandboxError::Create {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(create_err)?;
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(create_err)?;
    Ok(())
}

fn connect(path: &Path, flags: OpenFlags) -> Result<Connection, SandboxError> {
    let open_err = |source| SandboxError::Open {
        path: PathBuf::from(path),
        source,
    };
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(open_err)?;
    // WAL lets readers in other processes work while one writes; NORMAL
    // sync keeps every commit across a killed process (not a power cut),
    // which is what "committed before the response" needs. Switching a new
    // file to WAL answers SQLITE_BUSY without waiting when another process
    // opens it at that moment: retried.
    crate::store::sqlite::retry_busy(|| conn.execute_batch("PRAGMA journal_mode = WAL"))
        .map_err(open_err)?;
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(open_err)?;
    Ok(conn)
}

fn read_seed(conn: &Connection) -> rusqlite::Result<u64> {
    let text: String = conn.query_row("SELECT value FROM meta WHERE key = 'seed'", [], |r| {
        r.get(0)
    })?;
    Ok(text.parse().unwrap_or(0))
}

/// The Coolify resources every world starts with: project `default` with
/// environments `production` (every new Coolify project has it) and
/// `staging` (for specs with environments), server `localhost` with one
/// destination.
fn seed_coolify(tx: &Tx<'_>) -> rusqlite::Result<()> {
    let now = tx.now;
    tx.execute(
        "INSERT INTO project (uuid, name, description, created_at, updated_at) VALUES (?1, 'default', NULL, ?2, ?2)",
        params![tx.uuid()?, now],
    )?;
    let project = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO environment (uuid, project_id, name, description, created_at, updated_at) VALUES (?1, ?2, 'production', NULL, ?3, ?3)",
        params![tx.uuid()?, project, now],
    )?;
    tx.execute(
        "INSERT INTO environment (uuid, project_id, name, description, created_at, updated_at) VALUES (?1, ?2, 'staging', NULL, ?3, ?3)",
        params![tx.uuid()?, project, now],
    )?;
    tx.execute(
        "INSERT INTO server (uuid, name, description, ip, user, port, created_at, updated_at) VALUES (?1, 'localhost', 'This is the server where Coolify is running on. Don''t delete this!', 'host.docker.internal', 'root', 22, ?2, ?2)",
        params![tx.uuid()?, now],
    )?;
    let server = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO destination (uuid, server_id, name, network, created_at, updated_at) VALUES (?1, ?2, 'localhost-coolify', 'coolify', ?3, ?3)",
        params![tx.uuid()?, server, now],
    )?;
    Ok(())
}

/// Adds the server `name` (with its destination `<name>-coolify`) unless
/// it exists.
fn ensure_server(tx: &Tx<'_>, name: &str) -> rusqlite::Result<()> {
    let exists: Option<i64> = tx
        .query_row("SELECT id FROM server WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?;
    if exists.is_none() {
        tx.execute(
            "INSERT INTO server (uuid, name, description, ip, user, port, created_at, updated_at) VALUES (?1, ?2, NULL, '127.0.0.1', 'root', 22, ?3, ?3)",
            params![tx.uuid()?, name, tx.now],
        )?;
        let server_id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO destination (uuid, server_id, name, network, created_at, updated_at) VALUES (?1, ?2, ?3, ?3, ?4, ?4)",
            params![tx.uuid()?, server_id, format!("{name}-coolify"), tx.now],
        )?;
    }
    Ok(())
}

fn ensure_zone(tx: &Tx<'_>, zone: &str) -> rusqlite::Result<()> {
    let exists: Option<String> = tx
        .query_row("SELECT id FROM zone WHERE name = ?1", [zone], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        tx.execute(
            "INSERT INTO zone (id, name, created_at) VALUES (?1, ?2, ?3)",
            params![tx.hex_id()?, zone, tx.now],
        )?;
    }
    Ok(())
}

impl Tx<'_> {
    /// The next value of the world's id counter.
    fn next_seq(&self) -> rusqlite::Result<u64> {
        let current: String =
            self.query_row("SELECT value FROM meta WHERE key = 'seq'", [], |r| r.get(0))?;
        let next = current.parse::<u64>().unwrap_or(0) + 1;
        self.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'seq'",
            [next.to_string()],
        )?;
        Ok(next)
    }

    fn id_bytes(&self, kind: &str) -> rusqlite::Result<[u8; 32]> {
        let n = self.next_seq()?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"fabrik-sandbox-ids");
        hasher.update(&self.seed.to_le_bytes());
        hasher.update(kind.as_bytes());
        hasher.update(&n.to_le_bytes());
        Ok(*hasher.finalize().as_bytes())
    }

    /// A Coolify-style uuid (24 lower-case letters and digits, starting with
    /// a letter), the same for the same seed and the same history.
    pub(crate) fn uuid(&self) -> rusqlite::Result<String> {
        const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let bytes = self.id_bytes("uuid")?;
        Ok(bytes
            .iter()
            .take(24)
            .enumerate()
            .map(|(i, b)| {
                let radix = if i == 0 { 26 } else { 36 };
                char::from(ALPHABET[usize::from(*b) % radix])
            })
            .collect())
    }

    /// A Cloudflare-style identifier: 32 lower-case hex digits.
    pub(crate) fn hex_id(&self) -> rusqlite::Result<String> {
        let bytes = self.id_bytes("hex")?;
        Ok(hex::encode(&bytes[..16]))
    }

    /// A secret derived from the world's seed (signing Uptime Kuma tokens).
    pub(crate) fn derived_secret(&self, purpose: &str) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"fabrik-sandbox-secret");
        hasher.update(&self.seed.to_le_bytes());
        hasher.update(purpose.as_bytes());
        *hasher.finalize().as_bytes()
    }

    /// A value of the `meta` table.
    pub(crate) fn meta(&self, key: &str) -> rusqlite::Result<Option<String>> {
        self.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
    }

    /// Sets a value of the `meta` table.
    pub(crate) fn set_meta(&self, key: &str, value: &str) -> rusqlite::Result<()> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

/// A timestamp as the services write them: RFC 3339 in UTC with
/// microseconds, which is Laravel's JSON format
/// (`2024-10-09T12:34:56.000000Z`) and a form Cloudflare uses.
pub(crate) fn timestamp(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> WorldInit {
        WorldInit {
            seed: 7,
            zones: vec!["example.com".into()],
            servers: vec![],
            now: 1_700_000_000_000,
        }
    }

    #[test]
    fn fresh_world_is_seeded_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/sandbox.db");
        let store = Store::open(&path, &init()).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let count = |store: &Store, table: &'static str| {
            store
                .run(TransactionBehavior::Deferred, 0, move |tx| {
                    tx.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .unwrap()
        };
        assert_eq!(count(&store, "project"), 1);
        assert_eq!(count(&store, "zone"), 1);
        drop(store);
        let mut again = init();
        again.zones.push("test.dev".into());
        let store = Store::open(&path, &again).unwrap();
        assert_eq!(count(&store, "project"), 1);
        assert_eq!(count(&store, "zone"), 2);
    }

    #[test]
    fn ids_are_deterministic_and_well_formed() {
        let ids = |seed| {
            let dir = tempfile::tempdir().unwrap();
            let store =
                Store::open(&dir.path().join("s.db"), &WorldInit { seed, ..init() }).unwrap();
            store
                .run(TransactionBehavior::Immediate, 0, |tx| {
                    Ok((tx.uuid()?, tx.hex_id()?))
                })
                .unwrap()
        };
        let (uuid, hex) = ids(1);
        assert_eq!((uuid.clone(), hex.clone()), ids(1));
        assert_ne!(uuid, ids(2).0);
        assert_eq!(uuid.len(), 24);
        assert!(uuid.starts_with(|c: char| c.is_ascii_lowercase()));
        assert!(
            uuid.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_eq!(hex.len(), 32);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn failed_closure_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db"), &init()).unwrap();
        let result: Result<(), _> = store.run(TransactionBehavior::Immediate, 0, |tx| {
            tx.set_meta("probe", "1")?;
            Err(rusqlite::Error::QueryReturnedNoRows)
        });
        assert!(result.is_err());
        let probe = store
            .run(TransactionBehavior::Deferred, 0, |tx| tx.meta("probe"))
            .unwrap();
        assert_eq!(probe, None);
    }

    #[test]
    fn timestamps_format_like_the_services() {
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123000Z");
        assert_eq!(timestamp(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn dump_of_a_missing_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let err = Store::open_existing(&dir.path().join("none.db")).unwrap_err();
        assert!(matches!(err, SandboxError::Missing { .. }), "{err:?}");
    }
}
