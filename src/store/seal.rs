//! Sealing the journal: checkpoints signed with a key kept outside it, and
//! records of its head kept outside the database.
//!
//! The hash chain proves the order of the events, not who wrote them:
//! anyone who can write the file can rewrite it and recompute every hash.
//! So the append that finishes a run also appends a `journal_checkpoint`
//! that seals the event before it with the *journal key*, a 32-byte key
//! that lives in the user's configuration directory (or, in CI, in
//! `FABRIK_JOURNAL_KEY`), never in the journal. Beside the key, Fabrik
//! keeps the last head it sealed for each journal; beside an SQLite
//! database, the last head it committed. `docs/events.md` says exactly
//! what this proves and what it cannot.
//!
//! Before a command appends for the first time it checks the journal from
//! its last checkpoint to its head (and that the recorded heads are still
//! there), and refuses to append to a journal that fails (`Seal::check`).
//! `replay --verify` checks every checkpoint ([`SealChecker`]).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{
    DirBuilderExt as _, FileExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{ChainChecker, ChainError, StoreError, StoredEvent, Tail};
use crate::event::{Event, JournalCheckpoint, RecordedEvent};
use crate::id::{DeploymentId, Digest, Seq, StreamVersion};

/// The variable that holds the journal key (64 hex digits), for CI.
pub const KEY_VAR: &str = "FABRIK_JOURNAL_KEY";

/// The key's file name in the configuration directory.
const KEY_FILE: &str = "journal.key";

/// The type name of a checkpoint.
pub const CHECKPOINT: &str = "journal_checkpoint";

/// The journal key: seals checkpoints. `Debug` shows its id only.
#[derive(Clone)]
pub struct JournalKey {
    /// The key checkpoints are sealed with (derived from the stored key).
    mac_key: [u8; 32],
    /// A public name of the key (derived too): which key sealed what.
    id: String,
}

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JournalKey({})", self.id)
    }
}

impl JournalKey {
    /// The key of 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let id = blake3::derive_key("fabrik journal key id v1", bytes);
        Self {
            mac_key: blake3::derive_key("fabrik journal checkpoint v1", bytes),
            id: hex::encode(&id[..8]),
        }
    }

    /// The key from its 64 hex digits (the file's and the variable's form).
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(Self::from_bytes(&bytes))
    }

    /// Its id (16 hex digits): safe to journal and to print.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, seq: Seq, head: &Digest) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.mac_key);
        h.update(format!("fabrik-checkpoint-v1\n{seq}\n{head}").as_bytes());
        h.finalize()
    }

    /// The checkpoint sealing event `seq` whose hash is `head`.
    pub fn seal(&self, seq: Seq, head: Digest) -> JournalCheckpoint {
        JournalCheckpoint {
            seq,
            head,
            key: self.id.clone(),
            mac: Digest(*self.mac(seq, &head).as_bytes()),
        }
    }

    /// Whether this key sealed `cp` (compared in constant time).
    pub fn sealed(&self, cp: &JournalCheckpoint) -> bool {
        cp.key == self.id && self.mac(cp.seq, &cp.head) == blake3::Hash::from(cp.mac.0)
    }
}

/// Why the journal key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The variable holds something else than a key.
    #[error("{KEY_VAR} is not 64 hex digits")]
    BadVariable,
    /// There is no configuration directory to keep a key in.
    #[error("no place for the journal key: neither {KEY_VAR}, XDG_CONFIG_HOME nor HOME is set")]
    NoPlace,
    /// The file holds something else than a key.
    #[error("journal key {path} is not 64 hex digits")]
    Invalid {
        /// The file.
        path: PathBuf,
    },
    /// Others may read (or write) the key.
    #[error("journal key {path} is open to others (mode {mode:o})")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The file system failed.
    #[error("cannot use the journal key {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl KeyError {
    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            Self::BadVariable => format!(
                "set {KEY_VAR} to the 64 hex digits of the journal key (`openssl rand -hex 32` makes one; keep it in your CI's secrets)"
            ),
            Self::NoPlace => format!(
                "set {KEY_VAR} to a journal key (64 hex digits), or HOME, so that fabrik can keep one in ~/.config/fabrik"
            ),
            Self::Invalid { path } => format!(
                "the journal key is 64 hex digits on one line; if {} was damaged, put back a copy (without it, earlier checkpoints cannot be checked)",
                path.display()
            ),
            Self::TooOpen { path, .. } => format!("chmod 600 {}", path.display()),
            Self::Io { path, .. } => format!(
                "fabrik keeps the journal key in {}; make that directory writable, or set {KEY_VAR}",
                path.parent().unwrap_or(path).display()
            ),
        }
    }
}

/// Fabrik's directory in the user's configuration directory:
/// `$XDG_CONFIG_HOME/fabrik`, else `$HOME/.config/fabrik`.
pub fn config_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(x) = var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Some(x.join("fabrik"));
    }
    var("HOME").map(|h| h.join(".config").join("fabrik"))
}

/// The journal key of this environment: `FABRIK_JOURNAL_KEY`, else the
/// key file in the configuration directory. With `create`, a missing file
/// is created (mode 0600, in a 0700 directory) with a fresh random key.
pub fn load_key(create: bool) -> Result<Option<JournalKey>, KeyError> {
    if let Some(v) = std::env::var_os(KEY_VAR).filter(|v| !v.is_empty()) {
        return v
            .to_str()
            .and_then(JournalKey::from_hex)
            .map(Some)
            .ok_or(KeyError::BadVariable);
    }
    let Some(dir) = config_dir() else {
        return if create {
            Err(KeyError::NoPlace)
        } else {
            Ok(None)
        };
    };
    let path = dir.join(KEY_FILE);
    match read_key(&path)? {
        Some(k) => Ok(Some(k)),
        None if create => create_key(&dir, &path).map(Some),
        None => Ok(None),
    }
}

fn read_key(path: &Path) -> Result<Option<JournalKey>, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(io)?;
    JournalKey::from_hex(&text)
        .map(Some)
        .ok_or_else(|| KeyError::Invalid {
            path: path.to_owned(),
        })
}

/// Writes a fresh key to a file of its own and links it into place, so
/// that a reader never sees a half-written key and two processes creating
/// one at once end up with the same.
fn create_key(dir: &Path, path: &Path) -> Result<JournalKey, KeyError> {
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| KeyError::Io { path: p, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir))?;
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    let tmp = dir.join(format!(
        ".{KEY_FILE}.{}.{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())?;
        f.sync_all()?;
        match fs::hard_link(&tmp, path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            other => other.map(|()| true),
        }
    })();
    let _ = fs::remove_file(&tmp);
    match written.map_err(io(path))? {
        true => Ok(JournalKey::from_bytes(&bytes)),
        // Another process was first: use its key.
        false => read_key(path)?.ok_or_else(|| KeyError::Invalid {
            path: path.to_owned(),
        }),
    }
}

/// A record of a journal's head kept outside it: the sequence number and
/// hash of an event the journal held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadRecord {
    /// The event.
    pub seq: u64,
    /// Its hash.
    pub hash: Digest,
}

/// The first bytes of a head record.
const RECORD_PREFIX: &str = "fabrik-head-v1";

impl HeadRecord {
    /// The record's text: always the same length, so that writing it over
    /// an older one replaces it whole, and with a check of its own, so
    /// that a torn write is never read as a record.
    fn text(&self) -> String {
        let body = format!("{RECORD_PREFIX} {:020} {}", self.seq, self.hash);
        let check = blake3::hash(body.as_bytes()).to_hex();
        format!("{body} {}\n", &check[..16])
    }

    fn parse(text: &str) -> Option<Self> {
        let line = text.lines().next()?;
        let (body, check) = line.rsplit_once(' ')?;
        if blake3::hash(body.as_bytes()).to_hex().get(..16) != Some(check) {
            return None;
        }
        let mut parts = body.split(' ');
        if parts.next()? != RECORD_PREFIX {
            return None;
        }
        let seq = parts.next()?.parse().ok()?;
        let hash = Digest::from_hex(parts.next()?).ok()?;
        Some(Self { seq, hash })
    }

    /// The record in `path`, if there is a whole one.
    pub fn read(path: &Path) -> Option<Self> {
        Self::parse(&fs::read_to_string(path).ok()?)
    }

    /// Writes it over the record in `file` (opened with [`open_record`]).
    fn write_to(&self, file: &fs::File) -> std::io::Result<()> {
        file.write_all_at(self.text().as_bytes(), 0)
    }
}

/// Opens (creating, mode 0600) a head record file for writing.
fn open_record(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

/// The head record beside an SQLite database: `<database>-head`.
pub fn beside(database: &Path) -> PathBuf {
    PathBuf::from(format!("{}-head", database.display()))
}

/// Where the head record of the journal at `location` (its canonical path,
/// or its URL without password) is kept beside the key.
pub fn record_beside_key(location: &str) -> Option<PathBuf> {
    let id = blake3::hash(format!("fabrik journal location v1\n{location}").as_bytes());
    Some(config_dir()?.join("heads").join(&id.to_hex()[..32]))
}

/// The rows an append's check reads, inside the append's transaction.
pub(crate) trait TailSource {
    /// The last checkpoint of the journal.
    fn last_checkpoint(&mut self) -> Result<Option<StoredEvent>, StoreError>;
    /// The event with sequence number `seq`.
    fn row(&mut self, seq: u64) -> Result<Option<StoredEvent>, StoreError>;
    /// Visits the events from `seq` on, in order.
    fn rows_from(
        &mut self,
        seq: u64,
        visit: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Whether `run` finished (has `run_finished`) before event `seq`.
    fn finished_before(&mut self, run: &str, seq: u64) -> Result<bool, StoreError>;
}

/// How a store seals what it appends, and what it checks first.
#[derive(Debug, Default)]
pub struct Seal {
    /// Whether the store seals (with the key of its environment) and makes
    /// the full check before its first append.
    enabled: bool,
    /// The journal's location, naming its record beside the key.
    location: Option<String>,
    /// The key, once loaded.
    key: Mutex<Option<JournalKey>>,
    /// The head this store last checked or appended: later appends check
    /// only what others appended since.
    verified: Mutex<Option<Tail>>,
    /// The head after the last checkpoint this store appended.
    sealed: Mutex<Option<HeadRecord>>,
}

impl Seal {
    /// No sealing (a store opened by a tool or a test): appends are still
    /// checked against the recorded heads and what this store saw.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sealing with `key` (for tools and tests that hold one): no head is
    /// recorded beside a key file.
    pub fn with_key(key: JournalKey) -> Self {
        Self {
            enabled: true,
            key: Mutex::new(Some(key)),
            ..Self::default()
        }
    }

    /// Sealing with the key of this environment (created at the first
    /// append when there is none), for the journal at `location`.
    pub fn from_environment(location: String) -> Self {
        Self {
            enabled: true,
            location: Some(location),
            ..Self::default()
        }
    }

    /// The key to seal with: loaded (or created) the first time.
    pub(crate) fn key(&self) -> Result<Option<JournalKey>, StoreError> {
        if !self.enabled {
            return Ok(None);
        }
        let mut key = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if key.is_none() {
            *key = load_key(true).map_err(StoreError::Key)?;
        }
        Ok(key.clone())
    }

    /// The head after the last checkpoint this store appended: what a run
    /// sends to those who hear from it (its webhooks, its summary), so that
    /// `replay --verify --expect-head` can later prove nothing before it
    /// changed.
    pub fn sealed_head(&self) -> Option<HeadRecord> {
        *self.sealed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the journal before an append, inside its transaction, given
    /// its current `head` and (for SQLite) the `database` file: the first
    /// time, that the recorded heads are still in the journal and (when
    /// sealing) the events from the last checkpoint on; later, only what
    /// others appended since.
    pub(crate) fn check(
        &self,
        src: &mut dyn TailSource,
        head: Tail,
        database: Option<&Path>,
    ) -> Result<(), StoreError> {
        let verified = *self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = verified {
            return continues(src, v, head);
        }
        if let Some(path) = database.map(beside)
            && let Some(record) = HeadRecord::read(&path)
        {
            anchored(
                src,
                head,
                record,
                &format!("the head record beside the database ({})", path.display()),
            )?;
        }
        if !self.enabled {
            return Ok(());
        }
        if let Some(path) = self.location.as_deref().and_then(record_beside_key)
            && let Some(record) = HeadRecord::read(&path)
        {
            anchored(
                src,
                head,
                record,
                &format!("the last checkpoint sealed here ({})", path.display()),
            )?;
        }
        let key = self.key()?;
        from_last_checkpoint(src, head, key.as_ref())
    }

    /// Notes a committed append (its events as recorded): its last event
    /// is the head later appends start from, and its last checkpoint is
    /// recorded beside the key.
    pub(crate) fn appended(&self, recorded: &[RecordedEvent]) {
        let Some(last) = recorded.last() else {
            return;
        };
        *self.verified.lock().unwrap_or_else(|p| p.into_inner()) = Some(Tail {
            seq: last.seq.0,
            hash: last.hash,
        });
        let Some(cp) = recorded
            .iter()
            .rev()
            .find(|r| matches!(r.event, Event::JournalCheckpoint(_)))
        else {
            return;
        };
        let record = HeadRecord {
            seq: cp.seq.0,
            hash: cp.hash,
        };
        *self.sealed.lock().unwrap_or_else(|p| p.into_inner()) = Some(record);
        // Best effort: the run is over and recorded; a record that cannot
        // be written only weakens a later check.
        if let Some(path) = self.location.as_deref().and_then(record_beside_key) {
            if let Some(dir) = path.parent() {
                let _ = fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir);
            }
            if let Ok(f) = open_record(&path) {
                let _ = record.write_to(&f);
            }
        }
    }

    /// Forgets what was checked (after a failed append: the next one
    /// checks again).
    pub(crate) fn forget(&self) {
        *self.verified.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// The head record file beside an SQLite database, kept open by its store.
#[derive(Debug, Default)]
pub(crate) struct BesideRecord {
    file: Mutex<Option<fs::File>>,
}

impl BesideRecord {
    /// Records `head` in the file beside `database` (without waiting for
    /// the disk: a record that is lost with a power cut only says less).
    pub(crate) fn write(&self, database: &Path, head: HeadRecord) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if file.is_none() {
            *file = open_record(&beside(database)).ok();
        }
        if let Some(f) = file.as_ref() {
            let _ = head.write_to(f);
        }
    }
}

fn integrity(seq: u64, problem: String) -> StoreError {
    StoreError::Chain(ChainError {
        seq: Seq(seq),
        problem,
    })
}

/// The journal still holds the event `record` names, unchanged.
fn anchored(
    src: &mut dyn TailSource,
    head: Tail,
    record: HeadRecord,
    what: &str,
) -> Result<(), StoreError> {
    let missing = || {
        integrity(
            record.seq,
            format!(
                "missing: the journal ends at event {}, but {what} names event {} (hash {}): committed history is gone",
                head.seq,
                record.seq,
                record.hash.short()
            ),
        )
    };
    if record.seq > head.seq {
        return Err(missing());
    }
    match src.row(record.seq)? {
        None => Err(missing()),
        Some(r) if r.hash != record.hash => Err(integrity(
            record.seq,
            format!(
                "hash {} differs from the one {what} names ({}): the history was rewritten",
                r.hash.short(),
                record.hash.short()
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// What was appended since `verified` extends it.
fn continues(src: &mut dyn TailSource, verified: Tail, head: Tail) -> Result<(), StoreError> {
    if head == verified {
        return Ok(());
    }
    if head.seq <= verified.seq {
        return Err(integrity(
            verified.seq,
            format!(
                "missing: the journal ends at event {} (hash {}), but it held event {} (hash {}) a moment ago",
                head.seq,
                head.hash.short(),
                verified.seq,
                verified.hash.short()
            ),
        ));
    }
    let mut checker = ChainChecker::after(verified);
    src.rows_from(verified.seq + 1, &mut |row| {
        checker.check(&row).map_err(StoreError::Chain)
    })?;
    ends_at(&checker, head)
}

fn ends_at(checker: &ChainChecker, head: Tail) -> Result<(), StoreError> {
    if checker.last_hash() != Some(head.hash) {
        return Err(integrity(
            head.seq,
            "the events read do not end at the journal's head".to_owned(),
        ));
    }
    Ok(())
}

/// Checks the events from the last checkpoint (the event it seals) to
/// the head: every hash and link; the checkpoint's seal when `key` is
/// given; and that nothing after it could only have been appended outside
/// Fabrik (see [`tail_rule`]). A journal without any checkpoint
/// (written before checkpoints existed) is checked whole.
fn from_last_checkpoint(
    src: &mut dyn TailSource,
    head: Tail,
    key: Option<&JournalKey>,
) -> Result<(), StoreError> {
    if head.seq == 0 {
        return Ok(());
    }
    let checkpoint = src.last_checkpoint()?;
    if let Some(row) = &checkpoint {
        checkpoint_of(row, key).map_err(StoreError::Chain)?;
    }
    let start = checkpoint
        .as_ref()
        .map_or(1, |c| c.seq.saturating_sub(1).max(1));
    let sealed_at = checkpoint.as_ref().map(|c| c.seq);
    let mut checker = ChainChecker::from_seq(start);
    let mut started: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut finished_runs: Vec<(u64, String)> = Vec::new();
    let mut problem: Option<StoreError> = None;
    src.rows_from(start, &mut |row| {
        checker.check(&row).map_err(StoreError::Chain)?;
        if row.type_name == CHECKPOINT {
            checkpoint_of(&row, None).map_err(StoreError::Chain)?;
        }
        if key.is_some() && sealed_at.is_some_and(|s| row.seq > s) && problem.is_none() {
            if row.type_name == "run_started"
                && let Some(r) = &row.run
            {
                started.insert(r.clone());
            }
            match tail_rule(row.run.as_deref(), &row.type_name, &started) {
                TailRule::Allowed => {}
                TailRule::IfOpen(run) => finished_runs.push((row.seq, run)),
                TailRule::Refused(why) => problem = Some(integrity(row.seq, why)),
            }
        }
        Ok(())
    })?;
    if let Some(p) = problem {
        return Err(p);
    }
    ends_at(&checker, head)?;
    for (seq, run) in finished_runs {
        if src.finished_before(&run, seq)? {
            return Err(integrity(seq, after_its_seal(&run)));
        }
    }
    Ok(())
}

/// What the rules say of an event after the last checkpoint.
enum TailRule {
    /// Fabrik writes such events between checkpoints.
    Allowed,
    /// Allowed if its run is still open (had not finished before it).
    IfOpen(String),
    /// Only an append outside Fabrik (or a removed checkpoint) leaves it.
    Refused(String),
}

/// The rules for an event (of `run`, of type `type_name`) after the
/// journal's last checkpoint. Fabrik seals every run's `run_finished` in
/// the same append, so after the last checkpoint come only the events of
/// runs still open (in progress, or interrupted), the lock releases of
/// finished ones, and locks broken by hand.
fn tail_rule(
    run: Option<&str>,
    type_name: &str,
    started_in_tail: &std::collections::HashSet<String>,
) -> TailRule {
    match (run, type_name) {
        (_, "run_finished") => TailRule::Refused(unsealed_finish(run)),
        (None, "lock_broken") => TailRule::Allowed,
        (None, other) => TailRule::Refused(format!(
            "a {other} event outside any run after the last checkpoint: fabrik writes none"
        )),
        (Some(_), "lock_released") => TailRule::Allowed,
        (Some(run), _) if started_in_tail.contains(run) => TailRule::Allowed,
        (Some(run), _) => TailRule::IfOpen(run.to_owned()),
    }
}

/// Why a `run_finished` without its checkpoint cannot be Fabrik's.
fn unsealed_finish(run: Option<&str>) -> String {
    format!(
        "run {} finished without the checkpoint that seals it: appended outside fabrik, or its checkpoint was removed",
        run.unwrap_or("-")
    )
}

/// Why an event of `run` after the last checkpoint cannot be Fabrik's.
fn after_its_seal(run: &str) -> String {
    format!(
        "the event belongs to run {run}, which had finished and been sealed: nothing of a finished run but its lock release comes after its checkpoint"
    )
}

/// The checkpoint in `row`, checked: it seals the event right before it,
/// and with `key`, it was sealed with that key and its seal verifies.
fn checkpoint_of(
    row: &StoredEvent,
    key: Option<&JournalKey>,
) -> Result<JournalCheckpoint, ChainError> {
    let fail = |problem: String| ChainError {
        seq: Seq(row.seq),
        problem,
    };
    let cp: JournalCheckpoint = serde_json::from_str(&row.payload)
        .map_err(|e| fail(format!("the checkpoint cannot be read: {e}")))?;
    if cp.seq.0 + 1 != row.seq || cp.head != row.prev_hash {
        return Err(fail(
            "the checkpoint does not seal the event before it".to_owned(),
        ));
    }
    if let Some(key) = key {
        if cp.key != key.id() {
            return Err(fail(format!(
                "the checkpoint was sealed with another journal key (id {}), not this fabrik's ({}): every writer of a journal shares one key",
                cp.key,
                key.id()
            )));
        }
        if !key.sealed(&cp) {
            return Err(fail(
                "the checkpoint's seal does not match what it seals: it was forged or altered"
                    .to_owned(),
            ));
        }
    }
    Ok(cp)
}

/// The error for a stream found shorter than the version an append
/// expects (read from its views, written when event `written` was
/// appended): events were deleted.
pub(crate) fn shorter_stream(
    deployment: &DeploymentId,
    expected: StreamVersion,
    actual: u64,
    written: Option<Seq>,
) -> StoreError {
    let seq = written.unwrap_or(Seq(0));
    StoreError::Chain(ChainError {
        seq,
        problem: format!(
            "missing: deployment {deployment}'s events end at version {actual}, but it was at version {expected} (when event {seq} was appended): events were deleted"
        ),
    })
}

/// A head a verification must find: given on the command line
/// (`--expect-head`), or recorded beside the database or the key.
#[derive(Debug, Clone)]
pub struct ExpectedHead {
    /// Where it comes from, for messages.
    pub what: String,
    /// Its sequence number, when known.
    pub seq: Option<u64>,
    /// Its hash.
    pub hash: Digest,
}

impl ExpectedHead {
    /// The heads recorded for the journal: beside its database (`database`,
    /// for SQLite) and beside the key (by its `location`).
    pub fn recorded(database: Option<&Path>, location: &str) -> Vec<Self> {
        let mut out = Vec::new();
        let mut add = |path: PathBuf, what: &str| {
            if let Some(r) = HeadRecord::read(&path) {
                out.push(Self {
                    what: format!("{what} ({})", path.display()),
                    seq: Some(r.seq),
                    hash: r.hash,
                });
            }
        };
        if let Some(db) = database {
            add(beside(db), "the head record beside the database");
        }
        if let Some(p) = record_beside_key(location) {
            add(p, "the last checkpoint sealed here");
        }
        out
    }
}

/// What the checkpoints of a verified journal show.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SealReport {
    /// Checkpoints found.
    pub checkpoints: u64,
    /// Those whose seal was checked with the key.
    pub checked: u64,
    /// The id of the key they were checked with (none: not checked).
    pub key: Option<String>,
    /// Sequence number of the last checkpoint.
    pub last_checkpoint: Option<u64>,
    /// Events after it (those of runs still open, and lock releases).
    pub unsealed: u64,
    /// The expected heads found: (where from, sequence number, hash).
    pub heads: Vec<(String, u64, String)>,
}

/// Checks the checkpoints of a journal read in order, event by event
/// (after the chain check of each), with the key when there is one, and
/// the expected heads.
#[derive(Debug)]
pub struct SealChecker {
    key: Option<JournalKey>,
    expected: Vec<(ExpectedHead, Option<u64>)>,
    report: SealReport,
    /// A `run_finished` not yet followed by its checkpoint.
    unsealed_finish: Option<(u64, Option<String>)>,
    /// Whether any run finished.
    any_finished: bool,
    /// After the last checkpoint: (sequence number, run, type) of the
    /// events the rules judge at the end, and runs started there.
    tail: Vec<(u64, Option<String>, String)>,
    /// Sequence number of the last event.
    last_seq: u64,
}

impl SealChecker {
    /// A checker with `key` (none: checkpoints counted, not checked) that
    /// must find the `expected` heads.
    pub fn new(key: Option<JournalKey>, expected: Vec<ExpectedHead>) -> Self {
        Self {
            report: SealReport {
                key: key.as_ref().map(|k| k.id().to_owned()),
                ..SealReport::default()
            },
            key,
            expected: expected.into_iter().map(|e| (e, None)).collect(),
            unsealed_finish: None,
            any_finished: false,
            tail: Vec::new(),
            last_seq: 0,
        }
    }

    /// Checks the next event (whose hash and link were checked).
    pub fn check(&mut self, e: &StoredEvent) -> Result<(), ChainError> {
        let fail = |seq: u64, problem: String| ChainError {
            seq: Seq(seq),
            problem,
        };
        self.last_seq = e.seq;
        for (exp, found) in &mut self.expected {
            if exp.hash == e.hash {
                *found = Some(e.seq);
            } else if exp.seq == Some(e.seq) {
                return Err(fail(
                    e.seq,
                    format!(
                        "hash {} differs from the one {} names ({}): the history was rewritten",
                        e.hash.short(),
                        exp.what,
                        exp.hash.short()
                    ),
                ));
            }
        }
        if e.type_name == CHECKPOINT {
            checkpoint_of(e, self.key.as_ref())?;
            if self.key.is_some() {
                self.report.checked += 1;
            }
            self.report.checkpoints += 1;
            self.report.last_checkpoint = Some(e.seq);
            self.unsealed_finish = None;
            self.tail.clear();
            return Ok(());
        }
        if self.key.is_some()
            && self.report.checkpoints > 0
            && let Some((seq, run)) = self.unsealed_finish.take()
        {
            return Err(fail(seq, unsealed_finish(run.as_deref())));
        }
        if e.type_name == "run_finished" {
            self.any_finished = true;
            self.unsealed_finish = Some((e.seq, e.run.clone()));
        }
        if self.key.is_some() && self.report.checkpoints > 0 {
            self.tail.push((e.seq, e.run.clone(), e.type_name.clone()));
        }
        Ok(())
    }

    /// The end of the journal: the expected heads were found, and with the
    /// key, the journal is sealed up to its last finished run and only the
    /// events of runs still open (`is_open`) come after its last
    /// checkpoint.
    pub fn finish(mut self, is_open: &dyn Fn(&str) -> bool) -> Result<SealReport, ChainError> {
        let fail = |seq: u64, problem: String| ChainError {
            seq: Seq(seq),
            problem,
        };
        for (exp, found) in &self.expected {
            match found {
                Some(seq) => self
                    .report
                    .heads
                    .push((exp.what.clone(), *seq, exp.hash.to_hex())),
                None => {
                    let seq = exp.seq.unwrap_or(self.last_seq + 1);
                    return Err(fail(
                        seq,
                        match exp.seq {
                            Some(s) if s > self.last_seq => format!(
                                "missing: the journal ends at event {}, but {} names event {s} (hash {}): committed history is gone",
                                self.last_seq,
                                exp.what,
                                exp.hash.short()
                            ),
                            _ => format!(
                                "the journal holds no event with hash {} ({}): it was cut or rewritten before that head",
                                exp.hash, exp.what
                            ),
                        },
                    ));
                }
            }
        }
        let Some(key) = &self.key else {
            return Ok(self.report);
        };
        if self.report.checkpoints == 0 {
            if self.any_finished {
                return Err(fail(
                    self.last_seq,
                    format!(
                        "no checkpoint sealed with this journal key (id {}): the journal was written before checkpoints existed, sealed with another key, or its checkpoints were removed",
                        key.id()
                    ),
                ));
            }
            return Ok(self.report);
        }
        if let Some((seq, run)) = self.unsealed_finish.take() {
            return Err(fail(seq, unsealed_finish(run.as_deref())));
        }
        let started: std::collections::HashSet<String> = self
            .tail
            .iter()
            .filter(|(_, _, t)| t == "run_started")
            .filter_map(|(_, r, _)| r.clone())
            .collect();
        for (seq, run, type_name) in &self.tail {
            match tail_rule(run.as_deref(), type_name, &started) {
                TailRule::Allowed => {}
                TailRule::IfOpen(r) if is_open(&r) => {}
                TailRule::IfOpen(r) => return Err(fail(*seq, after_its_seal(&r))),
                TailRule::Refused(why) => return Err(fail(*seq, why)),
            }
        }
        self.report.unsealed = self.tail.len() as u64;
        Ok(self.report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_sealed_by_its_key_only() {
        let k = JournalKey::from_bytes(&[7; 32]);
        let other = JournalKey::from_bytes(&[8; 32]);
        let cp = k.seal(Seq(41), Digest::of(b"head"));
        assert!(k.sealed(&cp));
        assert!(!other.sealed(&cp));
        let mut moved = cp.clone();
        moved.seq = Seq(40);
        assert!(!k.sealed(&moved));
        let mut changed = cp.clone();
        changed.head = Digest::of(b"other head");
        assert!(!k.sealed(&changed));
        assert_eq!(k.id().len(), 16);
        assert!(!format!("{k:?}").contains(&hex::encode([7u8; 32])));
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            read_key(&path),
            Err(KeyError::TooOpen { mode: 0o644, .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_key(&path).unwrap().is_some());
        fs::write(&path, "not a key\n").unwrap();
        assert!(matches!(read_key(&path), Err(KeyError::Invalid { .. })));
    }

    #[test]
    fn processes_creating_the_key_at_once_get_the_same_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("fabrik");
        let path = d.join(KEY_FILE);
        let keys: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| create_key(&d, &path).unwrap().id().to_owned()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(&d).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    /// A journal in memory, counting the rows the checks read.
    struct Journal {
        rows: Vec<StoredEvent>,
        read: usize,
    }

    impl TailSource for Journal {
        fn last_checkpoint(&mut self) -> Result<Option<StoredEvent>, StoreError> {
            Ok(self
                .rows
                .iter()
                .rev()
                .find(|r| r.type_name == CHECKPOINT)
                .cloned())
        }

        fn row(&mut self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
            self.read += 1;
            Ok(self.rows.iter().find(|r| r.seq == seq).cloned())
        }

        fn rows_from(
            &mut self,
            seq: u64,
            visit: &mut dyn FnMut(StoredEvent) -> Result<(), StoreError>,
        ) -> Result<(), StoreError> {
            for r in self.rows.iter().filter(|r| r.seq >= seq) {
                self.read += 1;
                visit(r.clone())?;
            }
            Ok(())
        }

        fn finished_before(&mut self, run: &str, seq: u64) -> Result<bool, StoreError> {
            Ok(self.rows.iter().any(|r| {
                r.run.as_deref() == Some(run) && r.seq < seq && r.type_name == "run_finished"
            }))
        }
    }

    fn sealing(key: &JournalKey) -> Seal {
        Seal::with_key(key.clone())
    }

    #[test]
    fn an_append_reads_the_tail_after_the_last_checkpoint_then_only_what_is_new() {
        let key = JournalKey::from_bytes(&[3; 32]);
        let d = crate::id::DeploymentId::new("blog").unwrap();
        let mut rows = Vec::new();
        let mut tail = Tail::EMPTY;
        let mut version = crate::id::StreamVersion(0);
        // Generated runs, each finished (and so sealed), one per append.
        crate::generate::generate(
            crate::generate::Shape {
                deployments: 1,
                runs: 50,
                records: 1,
                seed: 9,
            },
            |b| {
                let (new, rec) =
                    crate::store::encode_sealed(&d, version, tail, &b.events, Some(&key));
                if let Some(last) = rec.last() {
                    tail = Tail {
                        seq: last.seq.0,
                        hash: last.hash,
                    };
                    version = last.stream_version;
                }
                rows.extend(new);
            },
        );
        let checkpoints = rows.iter().filter(|r| r.type_name == CHECKPOINT).count();
        assert!(checkpoints >= 40, "{checkpoints} runs sealed");
        let last = rows
            .iter()
            .rposition(|r| r.type_name == CHECKPOINT)
            .unwrap();
        let after = rows.len() - last;
        let seal = sealing(&key);
        let mut j = Journal { rows, read: 0 };
        seal.check(&mut j, tail, None).unwrap();
        // The sealed event, the checkpoint and what follows it: the tail.
        assert_eq!(j.read, after + 1);
        *seal.verified.lock().unwrap() = Some(tail);
        j.read = 0;
        seal.check(&mut j, tail, None).unwrap();
        assert_eq!(j.read, 0, "nothing new: nothing read");
        // A forged event after the last one, with a correct hash, in a run
        // that finished: refused, and named.
        let mut forged = j
            .rows
            .iter()
            .rev()
            .find(|r| r.type_name == "resource_created")
            .unwrap()
            .clone();
        forged.seq = tail.seq + 1;
        forged.stream_version = version.0 + 1;
        forged.prev_hash = tail.hash;
        forged.hash = forged.canonical().hash(&tail.hash, &mut Vec::new());
        let head = Tail {
            seq: forged.seq,
            hash: forged.hash,
        };
        j.rows.push(forged);
        match sealing(&key).check(&mut j, head, None) {
            Err(StoreError::Chain(e)) => assert_eq!(e.seq, Seq(head.seq), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_head_record_reads_back_and_a_torn_one_is_no_record() {
        let r = HeadRecord {
            seq: 1234,
            hash: Digest::of(b"x"),
        };
        assert_eq!(HeadRecord::parse(&r.text()), Some(r));
        let text = r.text();
        for cut in 0..text.len() - 1 {
            assert_eq!(HeadRecord::parse(&text[..cut]), None, "cut at {cut}");
        }
        let flipped = text.replacen("1234", "1235", 1);
        assert_eq!(HeadRecord::parse(&flipped), None);
    }
}
