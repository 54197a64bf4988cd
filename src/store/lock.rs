//! Per-deployment run locks that cannot go stale.
//!
//! Beside an SQLite journal, a lock is an advisory `flock` on
//! `locks/<deployment>.lock` next to the state database. The operating
//! system releases it when the holding process dies, however it dies, so a
//! crashed run never leaves a lock behind. The file also holds the holder's
//! description (run, pid, host, user, command, since) so that a refused run
//! can name who holds it; the journal records the same as `lock_acquired` /
//! `lock_released`.
//!
//! In a PostgreSQL journal, shared by several machines, a lock is a
//! session-scoped advisory lock in the database, released by the server
//! when the holder's connection ends (see
//! [`crate::store::postgres::PgLocks`]). [`LockSpace`] and [`HeldLock`]
//! cover both, so callers need not care which journal they run on.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::event::LockHolder;
use crate::id::DeploymentId;

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("deployment {deployment} is locked by {}", describe(holder.as_deref()))]
    Held {
        /// The deployment.
        deployment: DeploymentId,
        /// Who holds it, if the lock file says (boxed: errors stay small).
        holder: Option<Box<LockHolder>>,
    },
    /// The lock file could not be used.
    #[error("cannot use lock file {path}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database holding the locks could not be used (boxed: errors
    /// stay small).
    #[error("cannot use the run locks in the state database")]
    Database(#[source] Box<crate::store::StoreError>),
}

/// Where a journal keeps its run locks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockSpace {
    /// Lock files in this directory (beside an SQLite journal; see
    /// [`lock_dir`]).
    Files(PathBuf),
    /// Advisory locks in a PostgreSQL journal's database.
    Advisory(crate::store::postgres::PgLocks),
}

impl LockSpace {
    /// The locks that go with the journal at `location`.
    pub fn for_state(location: &crate::store::StateLocation) -> Self {
        match location {
            crate::store::StateLocation::Sqlite(path) => Self::Files(lock_dir(path)),
            crate::store::StateLocation::Postgres(url) => {
                Self::Advisory(crate::store::postgres::PgLocks::new(url.clone()))
            }
        }
    }

    /// Takes `deployment`'s lock for `holder`. Without `wait`, fails at once
    /// when it is held; with `wait`, retries until the deadline.
    pub fn acquire(
        &self,
        deployment: &DeploymentId,
        holder: LockHolder,
        wait: Option<Duration>,
    ) -> Result<HeldLock, LockError> {
        match self {
            Self::Files(dir) => acquire(dir, deployment, holder, wait).map(HeldLock::File),
            Self::Advisory(locks) => locks
                .acquire(deployment, holder, wait)
                .map(HeldLock::Advisory),
        }
    }

    /// Who holds `deployment`'s lock right now (`None` when it is free).
    pub fn holder(&self, deployment: &DeploymentId) -> Result<Option<LockHolder>, LockError> {
        match self {
            Self::Files(dir) => holder(dir, deployment),
            Self::Advisory(locks) => locks.holder(deployment),
        }
    }

    /// Every deployment whose lock has been taken, and its holder while
    /// held.
    pub fn list(&self) -> Result<Vec<(DeploymentId, Option<LockHolder>)>, LockError> {
        match self {
            Self::Files(dir) => list(dir),
            Self::Advisory(locks) => locks.list(),
        }
    }
}

/// A held lock of either kind; dropping it releases it.
#[derive(Debug)]
pub enum HeldLock {
    /// A lock file.
    File(LockGuard),
    /// A PostgreSQL advisory lock (and the connection holding it).
    Advisory(crate::store::postgres::AdvisoryGuard),
}

impl HeldLock {
    /// Who holds it (this process).
    pub fn holder(&self) -> &LockHolder {
        match self {
            Self::File(g) => g.holder(),
            Self::Advisory(g) => g.holder(),
        }
    }

    /// Releases the lock now (dropping does the same).
    pub fn release(self) {
        match self {
            Self::File(g) => g.release(),
            Self::Advisory(g) => g.release(),
        }
    }
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    path: PathBuf,
    holder: LockHolder,
}

impl LockGuard {
    /// Who holds it (this process).
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }

    /// Releases the lock now (dropping does the same).
    pub fn release(self) {
        // Clear the description first so that `lock status` never shows a
        // released lock as held by us.
        let mut f = &self.file;
        let _ = f.set_len(0);
        let _ = f.flush();
        let _ = self.file.unlock();
        drop(self.path);
    }
}

/// Renders a holder for messages.
pub fn describe(holder: Option<&LockHolder>) -> String {
    match holder {
        Some(h) => format!(
            "run {} ({} by {}@{}, pid {}, since {})",
            h.run, h.command, h.user, h.host, h.pid, h.since
        ),
        None => "another process".to_owned(),
    }
}

/// The directory of lock files for a state database: `locks` beside the
/// file the path leads to (symbolic links resolved), so that every path to
/// one journal takes the same locks.
pub fn lock_dir(state: &Path) -> PathBuf {
    let state = crate::store::canonical(state);
    state
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .join("locks")
}

fn lock_path(dir: &Path, deployment: &DeploymentId) -> PathBuf {
    dir.join(format!("{deployment}.lock"))
}

fn open(path: &Path) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            b.mode(0o700);
        }
        b.create(dir).map_err(io)?;
    }
    let mut o = OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path).map_err(io)
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// The description of a held lock. A process that has just taken the lock
/// writes it right after, so an empty (or half-written) file is read again
/// for a moment before giving up on naming the holder.
fn read_held_holder(file: &mut File) -> Option<LockHolder> {
    for _ in 0..HOLDER_READS {
        if let Some(h) = read_holder(file) {
            return Some(h);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    read_holder(file)
}

/// How many times (10 ms apart) a held lock's description is read before
/// the holder is reported unknown.
const HOLDER_READS: u32 = 50;

/// Takes `deployment`'s lock for `holder`. Without `wait`, fails at once
/// when it is held; with `wait`, retries until the deadline.
pub fn acquire(
    dir: &Path,
    deployment: &DeploymentId,
    holder: LockHolder,
    wait: Option<Duration>,
) -> Result<LockGuard, LockError> {
    let path = lock_path(dir, deployment);
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        let mut file = open(&path)?;
        match file.try_lock() {
            Ok(()) => {
                let text = serde_json::to_string(&holder).unwrap_or_default();
                let io = |source| LockError::Io {
                    path: path.clone(),
                    source,
                };
                file.set_len(0).map_err(io)?;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                file.write_all(text.as_bytes()).map_err(io)?;
                file.flush().map_err(io)?;
                return Ok(LockGuard { file, path, holder });
            }
            Err(TryLockError::WouldBlock) => {
                if let Some(d) = deadline
                    && Instant::now() < d
                {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                return Err(LockError::Held {
                    deployment: deployment.clone(),
                    holder: read_held_holder(&mut file).map(Box::new),
                });
            }
            Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
        }
    }
}

/// Who holds `deployment`'s lock right now, as far as this machine can
/// tell: `None` when it is free.
pub fn holder(dir: &Path, deployment: &DeploymentId) -> Result<Option<LockHolder>, LockError> {
    let path = lock_path(dir, deployment);
    if !path.exists() {
        return Ok(None);
    }
    // Asking needs no write access: a lock file that cannot be written
    // (a read-only state directory) is asked through a read-only handle.
    let mut file = match open(&path) {
        Err(LockError::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            File::open(&path).map_err(|source| LockError::Io {
                path: path.clone(),
                source,
            })?
        }
        other => other?,
    };
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(None)
        }
        Err(TryLockError::WouldBlock) => {
            Ok(Some(read_held_holder(&mut file).unwrap_or(LockHolder {
                run: crate::id::RunId::from_u128(0),
                pid: 0,
                host: "unknown".to_owned(),
                user: "unknown".to_owned(),
                command: "unknown".to_owned(),
                since: String::new(),
            })))
        }
        Err(TryLockError::Error(source)) => Err(LockError::Io { path, source }),
    }
}

/// Every deployment with a lock file, and its holder if held.
pub fn list(dir: &Path) -> Result<Vec<(DeploymentId, Option<LockHolder>)>, LockError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(LockError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(stem) = name.strip_suffix(".lock")
            && let Ok(d) = DeploymentId::new(stem)
        {
            let h = holder(dir, &d)?;
            out.push((d, h));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::RunId;

    fn me(command: &str) -> LockHolder {
        LockHolder {
            run: RunId::generate(),
            pid: std::process::id(),
            host: "h".into(),
            user: "u".into(),
            command: command.into(),
            since: "t".into(),
        }
    }

    #[test]
    fn a_held_lock_refuses_a_second_holder_and_names_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let d = DeploymentId::new("blog").unwrap();
        let first = me("apply");
        let g = acquire(dir.path(), &d, first.clone(), None).unwrap();
        match acquire(dir.path(), &d, me("destroy"), None) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.as_deref(), Some(&first)),
            other => panic!("{other:?}"),
        }
        assert_eq!(holder(dir.path(), &d).unwrap(), Some(first));
        g.release();
        assert_eq!(holder(dir.path(), &d).unwrap(), None);
        let again = acquire(dir.path(), &d, me("apply"), None);
        assert!(again.is_ok());
    }

    #[test]
    fn a_refusal_names_a_holder_that_has_not_written_its_description_yet() {
        let dir = tempfile::tempdir().unwrap();
        let d = DeploymentId::new("blog").unwrap();
        // A process that has taken the lock and not yet described itself.
        let mut taken = open(&lock_path(dir.path(), &d)).unwrap();
        taken.try_lock().unwrap();
        let first = me("apply");
        let description = serde_json::to_string(&first).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            taken.write_all(description.as_bytes()).unwrap();
            taken
        });
        match acquire(dir.path(), &d, me("destroy"), None) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.as_deref(), Some(&first)),
            other => panic!("{other:?}"),
        }
        drop(writer.join().unwrap());
    }

    #[test]
    fn different_deployments_do_not_block_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let a = acquire(
            dir.path(),
            &DeploymentId::new("a").unwrap(),
            me("apply"),
            None,
        );
        let b = acquire(
            dir.path(),
            &DeploymentId::new("b").unwrap(),
            me("apply"),
            None,
        );
        assert!(a.is_ok() && b.is_ok());
        assert_eq!(list(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn waiting_gives_up_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let d = DeploymentId::new("blog").unwrap();
        let _g = acquire(dir.path(), &d, me("apply"), None).unwrap();
        let start = Instant::now();
        let r = acquire(
            dir.path(),
            &d,
            me("apply"),
            Some(Duration::from_millis(200)),
        );
        assert!(matches!(r, Err(LockError::Held { .. })));
        assert!(start.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn a_lock_space_of_files_behaves_like_the_file_functions() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".fabrik").join("state.db");
        let space = LockSpace::for_state(&crate::store::StateLocation::Sqlite(state.clone()));
        assert_eq!(space, LockSpace::Files(lock_dir(&state)));
        // Through a link to the same file, the same locks.
        std::fs::create_dir_all(state.parent().unwrap()).unwrap();
        std::fs::write(&state, b"").unwrap();
        std::os::unix::fs::symlink(&state, dir.path().join("link.db")).unwrap();
        assert_eq!(lock_dir(&dir.path().join("link.db")), lock_dir(&state));
        let d = DeploymentId::new("blog").unwrap();
        let first = me("apply");
        let g = space.acquire(&d, first.clone(), None).unwrap();
        assert_eq!(g.holder(), &first);
        match space.acquire(&d, me("destroy"), None) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder.as_deref(), Some(&first)),
            other => panic!("{other:?}"),
        }
        assert_eq!(space.list().unwrap(), vec![(d.clone(), Some(first))]);
        g.release();
        assert_eq!(space.holder(&d).unwrap(), None);
    }
}
