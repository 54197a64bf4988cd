//! Run locks in PostgreSQL: one session-scoped advisory lock per
//! deployment.
//!
//! The lock is `pg_try_advisory_lock(key)` on a connection of its own that
//! lives exactly as long as the [`AdvisoryGuard`]. The server releases a
//! session's advisory locks when the session ends, however it ends: a
//! holder that is killed, crashes or loses its machine leaves no lock
//! behind (once the server notices the connection is gone; the lock
//! session asks the server to probe an idle client with TCP keepalives
//! after a minute). The `lock_holder` table describes the holder (run, pid,
//! host, user, command, since) so that a refused run can name it; a row is
//! believed only while `pg_locks` shows its session holding the lock.

use std::time::{Duration, Instant};

use ::postgres::Client;

use super::worker::Worker;
use super::{PgUrl, advisory_key, connect, pg, session_setup};
use crate::event::LockHolder;
use crate::id::{DeploymentId, RunId};
use crate::store::StoreError;
use crate::store::lock::LockError;

/// How often a waiting acquirer tries again.
const POLL: Duration = Duration::from_millis(100);

/// Holder rows whose session still holds the advisory lock they name.
const LIVE_HOLDERS: &str = "
    SELECT h.deployment, h.run, h.pid, h.host, h.user_name, h.command, h.since,
           EXISTS (
               SELECT 1 FROM pg_locks l
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                 AND l.pid = h.backend_pid
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND l.classid = ((h.lock_key >> 32) & 4294967295)::oid
                 AND l.objid = (h.lock_key & 4294967295)::oid
           ) AS live
    FROM lock_holder h";

/// The run locks of one PostgreSQL journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgLocks {
    url: PgUrl,
}

/// A connection used for locks, and the journal's schema on it.
struct LockConn {
    client: Client,
    target: String,
    schema: String,
}

impl LockConn {
    fn open(url: &PgUrl) -> Result<Self, StoreError> {
        let target = url.redacted();
        let mut client = connect(url)?;
        let schema = session_setup(&mut client, &target)?;
        Ok(Self {
            client,
            target,
            schema,
        })
    }

    fn key(&self, deployment: &DeploymentId) -> i64 {
        advisory_key(&self.schema, &format!("deployment {deployment}"))
    }

    fn try_lock(&mut self, key: i64) -> Result<bool, StoreError> {
        self.client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .and_then(|r| r.try_get(0))
            .map_err(pg(&self.target))
    }

    fn holders(&mut self, only: Option<&DeploymentId>) -> Result<Vec<Row>, StoreError> {
        let e = pg(&self.target);
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass('lock_holder') IS NOT NULL", &[])
            .and_then(|r| r.try_get(0))
            .map_err(&e)?;
        if !exists {
            return Ok(Vec::new());
        }
        let rows = match only {
            Some(d) => self.client.query(
                &format!("{LIVE_HOLDERS} WHERE h.deployment = $1"),
                &[&d.as_str()],
            ),
            None => self
                .client
                .query(&format!("{LIVE_HOLDERS} ORDER BY h.deployment"), &[]),
        }
        .map_err(&e)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let run: String = r.try_get(1).map_err(&e)?;
            let pid: i64 = r.try_get(2).map_err(&e)?;
            out.push(Row {
                deployment: r.try_get(0).map_err(&e)?,
                holder: LockHolder {
                    run: run.parse().unwrap_or_else(|_| RunId::from_u128(0)),
                    pid: u32::try_from(pid).unwrap_or(0),
                    host: r.try_get(3).map_err(&e)?,
                    user: r.try_get(4).map_err(&e)?,
                    command: r.try_get(5).map_err(&e)?,
                    since: r.try_get(6).map_err(&e)?,
                },
                live: r.try_get(7).map_err(&e)?,
            });
        }
        Ok(out)
    }

    fn live_holder(&mut self, d: &DeploymentId) -> Result<Option<LockHolder>, StoreError> {
        Ok(self
            .holders(Some(d))?
            .into_iter()
            .find(|r| r.live)
            .map(|r| r.holder))
    }

    /// Keeps the lock session alive while idle, and makes the server notice
    /// a vanished holder within minutes instead of hours.
    fn keep_alive(&mut self) {
        for setting in [
            "SET idle_session_timeout = 0",
            "SET tcp_keepalives_idle = 60",
            "SET tcp_keepalives_interval = 10",
            "SET tcp_keepalives_count = 6",
        ] {
            // Older servers lack some settings, Unix sockets ignore the TCP
            // ones: neither is a reason to refuse the lock.
            let _ = self.client.batch_execute(setting);
        }
    }

    fn record(
        &mut self,
        deployment: &DeploymentId,
        key: i64,
        h: &LockHolder,
    ) -> Result<(), StoreError> {
        self.client
            .execute(
                "INSERT INTO lock_holder (deployment, lock_key, backend_pid, run, pid, host, user_name, command, since)
                 VALUES ($1, $2, pg_backend_pid(), $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (deployment) DO UPDATE SET
                     lock_key = excluded.lock_key, backend_pid = excluded.backend_pid,
                     run = excluded.run, pid = excluded.pid, host = excluded.host,
                     user_name = excluded.user_name, command = excluded.command,
                     since = excluded.since",
                &[
                    &deployment.as_str(),
                    &key,
                    &h.run.as_str(),
                    &i64::from(h.pid),
                    &h.host,
                    &h.user,
                    &h.command,
                    &h.since,
                ],
            )
            .map_err(pg(&self.target))?;
        Ok(())
    }

    fn unlock(&mut self, deployment: &DeploymentId, key: i64) -> Result<(), StoreError> {
        let e = pg(&self.target);
        // The description goes first, so that nobody sees a free lock
        // described as held.
        self.client
            .execute(
                "DELETE FROM lock_holder WHERE deployment = $1 AND backend_pid = pg_backend_pid()",
                &[&deployment.as_str()],
            )
            .map_err(&e)?;
        self.client
            .execute("SELECT pg_advisory_unlock($1)", &[&key])
            .map_err(&e)?;
        Ok(())
    }
}

struct Row {
    deployment: String,
    holder: LockHolder,
    live: bool,
}

/// A lock connection being opened ahead of use (see [`PgLocks::warm_up`]).
type Warm = (PgUrl, std::thread::JoinHandle<Option<Worker<LockConn>>>);

static WARM: std::sync::Mutex<Option<Warm>> = std::sync::Mutex::new(None);

/// The warmed-up connection to `url`, once open, if there is one.
fn take_warm(url: &PgUrl) -> Option<Worker<LockConn>> {
    let (for_url, pending) = WARM.lock().unwrap_or_else(|p| p.into_inner()).take()?;
    let worker = pending.join().ok().flatten()?;
    (&for_url == url).then_some(worker)
}

fn db(e: StoreError) -> LockError {
    LockError::Database(Box::new(e))
}

impl PgLocks {
    /// The run locks of the journal at `url`.
    pub fn new(url: PgUrl) -> Self {
        Self { url }
    }

    fn session(&self) -> Result<Worker<LockConn>, LockError> {
        if let Some(worker) = take_warm(&self.url) {
            return Ok(worker);
        }
        let url = self.url.clone();
        Worker::spawn(self.url.redacted(), move || LockConn::open(&url)).map_err(db)
    }

    /// Starts opening the lock connection in the background, so that its
    /// handshake (TCP, TLS, authentication) overlaps the journal's own
    /// instead of following it. The next [`PgLocks::acquire`] on the same
    /// URL in this process uses it; if it failed, that call connects
    /// afresh and reports its own error.
    pub fn warm_up(url: &PgUrl) {
        let target = url.redacted();
        let for_thread = url.clone();
        let pending = std::thread::Builder::new()
            .name("fabrik-postgres-warm".to_owned())
            .spawn(move || Worker::spawn(target, move || LockConn::open(&for_thread)).ok());
        if let Ok(pending) = pending {
            *WARM.lock().unwrap_or_else(|p| p.into_inner()) = Some((url.clone(), pending));
        }
    }

    /// Takes `deployment`'s lock for `holder`, on a new connection that the
    /// returned guard keeps open. Without `wait`, fails at once when another
    /// session holds it; with `wait`, tries again until the deadline.
    pub fn acquire(
        &self,
        deployment: &DeploymentId,
        holder: LockHolder,
        wait: Option<Duration>,
    ) -> Result<AdvisoryGuard, LockError> {
        let worker = self.session()?;
        let deadline = wait.map(|w| Instant::now() + w);
        let d = deployment.clone();
        let key = worker.call(move |c| c.key(&d)).map_err(db)?;
        loop {
            let got = worker
                .call(move |c| c.try_lock(key))
                .map_err(db)?
                .map_err(db)?;
            if got {
                let d = deployment.clone();
                let h = holder.clone();
                worker
                    .call(move |c| {
                        c.keep_alive();
                        c.record(&d, key, &h)
                    })
                    .map_err(db)?
                    .map_err(db)?;
                return Ok(AdvisoryGuard {
                    worker: Some(worker),
                    deployment: deployment.clone(),
                    key,
                    holder,
                });
            }
            if let Some(d) = deadline
                && Instant::now() < d
            {
                std::thread::sleep(POLL.min(d.saturating_duration_since(Instant::now())));
                continue;
            }
            let d = deployment.clone();
            let current = worker
                .call(move |c| c.live_holder(&d))
                .map_err(db)?
                .map_err(db)?;
            return Err(LockError::Held {
                deployment: deployment.clone(),
                holder: current.map(Box::new),
            });
        }
    }

    /// Who holds `deployment`'s lock right now (`None` when it is free).
    /// A lock held by a session that has not yet described itself shows as
    /// held by "unknown".
    pub fn holder(&self, deployment: &DeploymentId) -> Result<Option<LockHolder>, LockError> {
        let worker = self.session()?;
        let d = deployment.clone();
        worker
            .call(move |c| {
                if let Some(h) = c.live_holder(&d)? {
                    return Ok(Some(h));
                }
                // No description: is the lock free? Try it and let go.
                let key = c.key(&d);
                if c.try_lock(key)? {
                    c.client
                        .execute("SELECT pg_advisory_unlock($1)", &[&key])
                        .map_err(pg(&c.target))?;
                    Ok(None)
                } else {
                    Ok(Some(LockHolder {
                        run: RunId::from_u128(0),
                        pid: 0,
                        host: "unknown".to_owned(),
                        user: "unknown".to_owned(),
                        command: "unknown".to_owned(),
                        since: String::new(),
                    }))
                }
            })
            .map_err(db)?
            .map_err(db)
    }

    /// Every deployment whose lock has been taken in this journal, and its
    /// holder while held.
    pub fn list(&self) -> Result<Vec<(DeploymentId, Option<LockHolder>)>, LockError> {
        let worker = self.session()?;
        let rows = worker.call(|c| c.holders(None)).map_err(db)?.map_err(db)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let d = DeploymentId::new(r.deployment).ok()?;
                Some((d, r.live.then_some(r.holder)))
            })
            .collect())
    }

    /// Ends the session holding `deployment`'s lock
    /// (`pg_terminate_backend`), for `lock release --force` when the holder
    /// is known to be gone but its connection lingers on the server. Needs
    /// the right to signal that session (the same role, or
    /// `pg_signal_backend`). Returns the holder it removed, if any.
    pub fn terminate_holder(
        &self,
        deployment: &DeploymentId,
    ) -> Result<Option<LockHolder>, LockError> {
        let worker = self.session()?;
        let d = deployment.clone();
        worker
            .call(move |c| {
                let Some(holder) = c.live_holder(&d)? else {
                    return Ok(None);
                };
                let e = pg(&c.target);
                let row = c
                    .client
                    .query_opt(
                        "SELECT pg_terminate_backend(backend_pid, 5000) FROM lock_holder WHERE deployment = $1",
                        &[&d.as_str()],
                    )
                    .map_err(&e)?;
                let ended: bool = match row {
                    Some(r) => r.try_get(0).map_err(&e)?,
                    None => false,
                };
                if !ended {
                    return Err(StoreError::Backend(format!(
                        "state database {}: could not end the session holding the lock of {d}",
                        c.target
                    )));
                }
                Ok(Some(holder))
            })
            .map_err(db)?
            .map_err(db)
    }
}

/// A held advisory lock; dropping it releases the lock and closes its
/// connection.
#[derive(Debug)]
pub struct AdvisoryGuard {
    worker: Option<Worker<LockConn>>,
    deployment: DeploymentId,
    key: i64,
    holder: LockHolder,
}

impl AdvisoryGuard {
    /// Who holds it (this process).
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }

    /// Whether the lock's session is still alive (a server restart or an
    /// administrator ending the session loses the lock).
    pub fn is_held(&self) -> bool {
        let Some(w) = &self.worker else {
            return false;
        };
        w.call(|c| c.client.is_valid(Duration::from_secs(10)).is_ok())
            .unwrap_or(false)
    }

    /// Releases the lock now (dropping does the same).
    pub fn release(self) {
        drop(self);
    }
}

impl Drop for AdvisoryGuard {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            let d = self.deployment.clone();
            let key = self.key;
            // Whatever happens here, closing the connection (dropping the
            // worker) releases the lock on the server.
            let _ = w.call(move |c| c.unlock(&d, key));
            drop(w);
        }
    }
}
