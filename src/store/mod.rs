//! The journal store: an append-only, hash-chained log of events with cached
//! projections.
//!
//! [`EventStore`] is the contract every backend fulfils (SQLite in
//! [`sqlite`], PostgreSQL in [`postgres`], in memory in [`memory`]; one
//! contract test suite runs against each). The trait is synchronous: the
//! async engine calls it from a blocking thread, never holding a connection
//! across an `.await`. [`open`] picks the backend from `--state`;
//! [`migrate`] copies a journal from one backend to another.

mod append;
pub mod discover;
pub mod lock;
pub mod memory;
pub mod migrate;
pub mod postgres;
pub mod seal;
pub mod sqlite;
mod verify;

use std::ops::ControlFlow;
use std::path::PathBuf;

use crate::event::{DecodeError, Event, NewEvent, RecordedEvent, parse_timestamp};
use crate::id::{DeploymentId, Digest, JournalId, RunId, Seq, StreamVersion};
use crate::projection::{DeploymentView, RunView};

pub use append::{Encoder, Tail, encode, encode_sealed};
pub use seal::{HeadRecord, JournalKey, Seal};
pub use verify::{
    ChainChecker, ChainError, IndexDigest, IndexKeys, VerifyOptions, VerifyReport, verify_store,
    verify_store_keyed, verify_store_with,
};

/// An event exactly as stored: the text that was hashed, and the hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Global sequence.
    pub seq: u64,
    /// Deployment name (not re-validated: stored text is reported as is).
    pub deployment: String,
    /// Position in the deployment's stream.
    pub stream_version: u64,
    /// Run id, if any.
    pub run: Option<String>,
    /// Timestamp text.
    pub at: String,
    /// Event type name.
    pub type_name: String,
    /// Event version.
    pub version: u32,
    /// Canonical payload JSON text.
    pub payload: String,
    /// Previous hash.
    pub prev_hash: Digest,
    /// Hash.
    pub hash: Digest,
}

impl StoredEvent {
    /// The fields that enter the hash.
    pub fn canonical(&self) -> crate::event::CanonicalFields<'_> {
        crate::event::CanonicalFields {
            seq: self.seq,
            deployment: &self.deployment,
            stream_version: self.stream_version,
            run: self.run.as_deref().unwrap_or(""),
            at: &self.at,
            type_name: &self.type_name,
            version: self.version,
            payload: &self.payload,
        }
    }

    /// Decodes into a typed event, consuming the row (no copies of its
    /// strings; what replaying a large journal does a million times).
    pub fn into_recorded(self) -> Result<RecordedEvent, StoreError> {
        let seq = Seq(self.seq);
        let bad = |what: String| StoreError::Corrupt { seq, what };
        let deployment = DeploymentId::new(self.deployment).map_err(|e| bad(e.to_string()))?;
        let run = match self.run {
            Some(r) => Some(RunId::try_from(r).map_err(|e| bad(e.to_string()))?),
            None => None,
        };
        let at = parse_timestamp(&self.at).map_err(|e| bad(format!("bad timestamp: {e}")))?;
        let event = Event::decode(&self.type_name, self.version, &self.payload)
            .map_err(|e| StoreError::Decode { seq, source: e })?;
        Ok(RecordedEvent {
            seq,
            deployment,
            stream_version: StreamVersion(self.stream_version),
            run,
            at,
            event,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }

    /// Decodes into a typed event, leaving the row as it is.
    pub fn decode(&self) -> Result<RecordedEvent, StoreError> {
        self.clone().into_recorded()
    }
}

/// Which events a scan visits (all of them by default), in sequence order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Only this deployment's events.
    pub deployment: Option<DeploymentId>,
    /// Only this run's events.
    pub run: Option<RunId>,
    /// Only events with a sequence number up to this one.
    pub until_seq: Option<Seq>,
}

/// Errors of the journal store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to the stream first.
    #[error(
        "concurrent write to deployment {deployment}: expected stream version {expected}, found {actual}"
    )]
    Conflict {
        /// The stream.
        deployment: DeploymentId,
        /// The version the append expected.
        expected: StreamVersion,
        /// The version found.
        actual: StreamVersion,
    },
    /// The database was written by a newer Fabrik.
    #[error(
        "state database {path} has schema version {found}, newer than this fabrik knows ({known}); upgrade fabrik"
    )]
    NewerSchema {
        /// The database.
        path: PathBuf,
        /// Its version.
        found: i64,
        /// The newest this binary knows.
        known: i64,
    },
    /// A stored event could not be decoded.
    #[error("event {seq} cannot be read")]
    Decode {
        /// Where.
        seq: Seq,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// A stored row is not what Fabrik writes.
    #[error("event {seq} is corrupt: {what}")]
    Corrupt {
        /// Where.
        seq: Seq,
        /// What is wrong.
        what: String,
    },
    /// A cached projection could not be read.
    #[error("cached projection of {what} is unreadable")]
    Projection {
        /// Which one.
        what: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The database failed.
    #[error("cannot use the journal {path}")]
    Sqlite {
        /// The database.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The PostgreSQL database failed.
    #[error("cannot use the journal {target}")]
    Postgres {
        /// The database, as a URL without its password.
        target: String,
        /// Why.
        #[source]
        source: ::postgres::Error,
    },
    /// The file system failed.
    #[error("cannot open the journal {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The journal failed the check made before an append (a changed or
    /// missing event, a forged checkpoint): nothing was appended.
    #[error("journal integrity check failed at event {}: {}", .0.seq, .0.problem)]
    Chain(ChainError),
    /// The journal key cannot be used.
    #[error("cannot seal the journal")]
    Key(#[source] seal::KeyError),
    /// A store-specific failure with a message (other backends).
    #[error("{0}")]
    Backend(String),
}

impl StoreError {
    /// The storage under the journal failed (the database or the file
    /// system), as opposed to a conflict with another writer or a journal
    /// that fails its checks.
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            Self::Sqlite { .. } | Self::Postgres { .. } | Self::Io { .. }
        )
    }

    /// The journal's disk is full: SQLite's `SQLITE_FULL`, the file
    /// system's `ENOSPC`, or PostgreSQL's `disk_full` (SQLSTATE 53100).
    pub fn is_disk_full(&self) -> bool {
        const ENOSPC: i32 = 28;
        match self {
            Self::Sqlite {
                source: rusqlite::Error::SqliteFailure(f, _),
                ..
            } => f.code == rusqlite::ErrorCode::DiskFull,
            Self::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
                    || source.raw_os_error() == Some(ENOSPC)
            }
            Self::Postgres { source, .. } => {
                source.code() == Some(&::postgres::error::SqlState::DISK_FULL)
            }
            _ => false,
        }
    }
}

/// The contract of a journal backend.
///
/// Appends are atomic (all events of one call or none), carry the expected
/// version of the stream (optimistic concurrency: of two writers at the same
/// expected version exactly one wins, the other gets
/// [`StoreError::Conflict`]), extend the global hash chain, and are durable
/// when they return. The cached projections are only ever written in the
/// transaction of an append; a backend may write them lazily (SQLite writes
/// a deployment's views when it comes to rest or every 1024 events), but
/// every read below returns the views of the whole journal as of the read.
pub trait EventStore: Send + Sync {
    /// Appends `events` to `deployment`'s stream, whose current version must
    /// be `expected`.
    fn append(
        &self,
        deployment: &DeploymentId,
        expected: StreamVersion,
        events: &[NewEvent],
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The current version of a stream (0 when it has no events).
    fn stream_version(&self, deployment: &DeploymentId) -> Result<StreamVersion, StoreError>;

    /// The view of one deployment, up to date (reads only that deployment:
    /// its cached view and the events after it).
    fn deployment(&self, deployment: &DeploymentId) -> Result<Option<DeploymentView>, StoreError>;

    /// The view of one run, up to date.
    fn run(&self, run: &RunId) -> Result<Option<RunView>, StoreError>;

    /// Every run of a deployment, oldest first.
    fn runs(&self, deployment: &DeploymentId) -> Result<Vec<RunView>, StoreError>;

    /// Every deployment with at least one event, by name.
    fn deployments(&self) -> Result<Vec<DeploymentId>, StoreError>;

    /// Visits stored events in sequence order, as stored (for export and
    /// verification), stopping when `visit` breaks.
    fn scan(
        &self,
        scan: &Scan,
        visit: &mut dyn FnMut(StoredEvent) -> ControlFlow<()>,
    ) -> Result<(), StoreError>;

    /// Every stored deployment view, brought up to date by the events after
    /// it, as readers see it (for verification). A deployment whose views
    /// were never stored is left out.
    fn cached_deployments(&self) -> Result<Vec<DeploymentView>, StoreError>;

    /// Every run view as readers see it (for verification).
    fn cached_runs(&self) -> Result<Vec<RunView>, StoreError>;

    /// Visits every stored run view as its stored JSON text (run id, body),
    /// one at a time, so verification never holds two copies of a large
    /// history. The default serialises [`EventStore::cached_runs`].
    ///
    /// A backend may store views lazily (SQLite does): while a deployment
    /// is in the middle of a command (its lock held, as journaled), its
    /// stored run views may lag its stream, and readers fold the rest (see
    /// [`EventStore::runs`]). At rest, every stored view is current.
    fn visit_cached_run_bodies(&self, visit: &mut dyn FnMut(&str, &str)) -> Result<(), StoreError> {
        for r in self.cached_runs()? {
            let body = serde_json::to_string(&r).unwrap_or_default();
            visit(r.run.as_str(), &body);
        }
        Ok(())
    }

    /// The number of events.
    fn len(&self) -> Result<u64, StoreError>;

    /// The journal's identity: made once with the journal and kept in its
    /// metadata (a copy made by `journal migrate` gets one of its own).
    /// Fabrik writes its short form into the ownership marks of what it
    /// creates, so "ours" means "this deployment, this journal".
    fn journal_id(&self) -> Result<JournalId, StoreError>;

    /// Checks the storage below the journal (for SQLite, `PRAGMA
    /// integrity_check`: every page, index and constraint of the file) and
    /// returns the problems found, none when it is intact. The hash chain
    /// cannot see a damaged index, which can make rows vanish or repeat in
    /// queries that use it. Backends without such a check find none.
    fn check_storage(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// A cheaper [`EventStore::check_storage`] that leaves one comparison
    /// to the caller: the structure of every page, the small tables with
    /// their indexes in full, each index of the events table read in its
    /// own order (which must be strictly ascending), and the
    /// [`IndexDigest`] of those index entries. The caller compares it with
    /// the digest of the rows it read itself (`verify_store_keyed`); when
    /// they differ (damage, or a writer that appended in between), the
    /// full check decides. `None` when the backend has no such check.
    fn check_storage_keyed(
        &self,
        keys: &IndexKeys,
    ) -> Result<Option<(Vec<String>, IndexDigest)>, StoreError> {
        let _ = keys;
        Ok(None)
    }

    /// The journal's head after the last checkpoint this store appended
    /// (the append that finished a run): what the run sends to those who
    /// hear from it, so that `replay --verify --expect-head` can later
    /// prove that nothing before it changed. `None` when it sealed nothing.
    fn sealed_head(&self) -> Option<HeadRecord> {
        None
    }

    /// Whether the journal is empty.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Events of one stream from a version on (decoded).
    fn read_stream(
        &self,
        deployment: &DeploymentId,
        after: StreamVersion,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut out = Vec::new();
        let mut err = None;
        self.scan(
            &Scan {
                deployment: Some(deployment.clone()),
                ..Scan::default()
            },
            &mut |e| {
                if e.stream_version <= after.0 {
                    return ControlFlow::Continue(());
                }
                match e.decode() {
                    Ok(r) => {
                        out.push(r);
                        ControlFlow::Continue(())
                    }
                    Err(e) => {
                        err = Some(e);
                        ControlFlow::Break(())
                    }
                }
            },
        )?;
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
}

/// Where a journal lives: `--state` / `FABRIK_STATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (shown without its password).
    Postgres(postgres::PgUrl),
}

impl StateLocation {
    /// `postgres://…` and `postgresql://…` name a PostgreSQL database;
    /// anything else is the path of an SQLite file.
    pub fn parse(text: &str) -> Result<Self, postgres::UrlError> {
        if postgres::is_postgres_url(text) {
            postgres::PgUrl::parse(text).map(Self::Postgres)
        } else {
            Ok(Self::Sqlite(PathBuf::from(text)))
        }
    }
}

impl StateLocation {
    /// What names this journal wherever it is reached from: the canonical
    /// path of an SQLite file (symbolic links resolved), or a PostgreSQL
    /// URL without its password. Its lock files and the record of its
    /// head beside the journal key are keyed by it.
    pub fn identity(&self) -> String {
        match self {
            Self::Sqlite(path) => canonical(path).display().to_string(),
            Self::Postgres(url) => url.redacted(),
        }
    }
}

/// `path` with every symbolic link resolved: the file itself when it
/// exists, else its directory (and the name as given), else as given.
pub fn canonical(path: &std::path::Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    match (
        dir.map_or_else(|| std::fs::canonicalize("."), std::fs::canonicalize),
        path.file_name(),
    ) {
        (Ok(d), Some(name)) => d.join(name),
        _ => path.to_owned(),
    }
}

impl std::fmt::Display for StateLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "{}", path.display()),
            Self::Postgres(url) => write!(f, "{url}"),
        }
    }
}

/// What the head record beside the journal key is kept under: the
/// journal's location and, for SQLite, its id. A new journal made where
/// another was (its `.fabrik/` deleted to start over) is another journal,
/// not the old one with its history lost; an older copy of the same
/// journal put back in its place is still caught.
pub fn seal_identity(location: &StateLocation, journal: Option<&JournalId>) -> String {
    match journal {
        Some(j) => format!("{}\njournal {}", location.identity(), j.as_str()),
        None => location.identity(),
    }
}

/// Opens (creating and migrating if needed) the journal at `location`, for
/// a command: its appends are checked first and sealed with the journal
/// key of the environment ([`Seal::from_environment`]).
pub fn open(location: &StateLocation) -> Result<Box<dyn EventStore>, StoreError> {
    Ok(match location {
        StateLocation::Sqlite(path) => {
            let store = sqlite::SqliteStore::open(path)?;
            let id = store.journal_id().ok();
            Box::new(store.sealed(Seal::from_environment(seal_identity(location, id.as_ref()))))
        }
        StateLocation::Postgres(url) => Box::new(postgres::PgStore::open_sealed(
            url,
            Seal::from_environment(location.identity()),
        )?),
    })
}

/// Opens the journal at `location`, refusing to create one (for commands
/// that mostly read; one that writes is checked and sealed as by
/// [`open`]). An SQLite journal that cannot be written (a read-only
/// directory or file) is opened read-only.
pub fn open_existing(location: &StateLocation) -> Result<Box<dyn EventStore>, StoreError> {
    Ok(match location {
        StateLocation::Sqlite(path) => {
            let store = sqlite::SqliteStore::open_existing(path)?;
            let id = store.journal_id().ok();
            Box::new(store.sealed(Seal::from_environment(seal_identity(location, id.as_ref()))))
        }
        StateLocation::Postgres(url) => Box::new(postgres::PgStore::open_existing_sealed(
            url,
            Seal::from_environment(location.identity()),
        )?),
    })
}

/// A cached deployment view, which must be the deployment its row is
/// keyed by: a damaged byte that still reads as JSON is caught here.
pub(crate) fn parse_view(
    deployment: &str,
    body: &str,
) -> Result<crate::projection::DeploymentView, StoreError> {
    let view: crate::projection::DeploymentView =
        serde_json::from_str(body).map_err(|source| StoreError::Projection {
            what: format!("deployment {deployment}"),
            source,
        })?;
    if view.deployment.as_str() != deployment {
        return Err(mismatch(format!("deployment {deployment}"), "deployment"));
    }
    Ok(view)
}

/// A cached run view, which must be the run its row is keyed by.
pub(crate) fn parse_run(run: &str, body: &str) -> Result<crate::projection::RunView, StoreError> {
    let view: crate::projection::RunView =
        serde_json::from_str(body).map_err(|source| StoreError::Projection {
            what: format!("run {run}"),
            source,
        })?;
    if view.run.as_str() != run {
        return Err(mismatch(format!("run {run}"), "run"));
    }
    Ok(view)
}

/// A cached view whose body names another key than its row's.
fn mismatch(what: String, field: &str) -> StoreError {
    StoreError::Projection {
        what,
        source: <serde_json::Error as serde::de::Error>::custom(format!(
            "its {field} is not the one it is stored under"
        )),
    }
}
