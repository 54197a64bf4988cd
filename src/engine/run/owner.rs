//! Who runs, and the deployment's lock.

use super::super::recorder::Clock;
use super::super::{EngineError, Request};
use crate::event::{LockHolder, format_timestamp};
use crate::id::{DeploymentId, RunId};
use crate::store::EventStore;
use crate::store::lock::HeldLock;

/// The run's identity for journal and lock.
pub fn holder(run: &RunId, command: &str, clock: &Clock) -> LockHolder {
    let (user, host, pid) = who();
    LockHolder {
        run: run.clone(),
        pid,
        host,
        user,
        command: command.to_owned(),
        since: format_timestamp(clock()),
    }
}

/// `(user, host, pid)` of this process.
pub fn who() -> (String, String, u32) {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    (user, host, std::process::id())
}

/// Takes the deployment's lock (waiting up to `req.lock_wait`).
pub fn take_lock(
    req: &Request,
    deployment: &DeploymentId,
    holder: LockHolder,
) -> Result<HeldLock, EngineError> {
    let space = crate::store::lock::LockSpace::for_state(&req.state);
    let f = || space.acquire(deployment, holder, req.lock_wait);
    let guard = match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    };
    Ok(guard?)
}

/// Refuses to start while the deployment has an unfinished run.
pub fn refuse_open_run(
    store: &dyn EventStore,
    deployment: &DeploymentId,
) -> Result<(), EngineError> {
    if let Some(view) = store.deployment(deployment)?
        && let Some(latest) = &view.latest_run
        && let Some(run) = store.run(latest)?
        && run.is_open()
    {
        return Err(EngineError::OpenRun {
            deployment: deployment.clone(),
            run: run.run,
            state: run.state,
        });
    }
    Ok(())
}
