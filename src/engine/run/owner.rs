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
    let from_env = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok();
    let user = account(from_env, || whoami::username().ok(), uid);
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    (user, host, std::process::id())
}

/// Who runs: `$USER` when set; else the name in the passwd entry of the
/// process's uid (CI runners and containers often leave `USER` unset);
/// else `uid N`; `unknown` only where there is no uid to name.
fn account(
    from_env: Option<String>,
    passwd: impl FnOnce() -> Option<String>,
    uid: impl FnOnce() -> Option<u32>,
) -> String {
    from_env
        .filter(|u| !u.is_empty())
        .or_else(|| passwd().filter(|u| !u.is_empty()))
        .or_else(|| uid().map(|n| format!("uid {n}")))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The process's uid: the owner of `/proc/self` (Linux; no `unsafe` call
/// needed).
fn uid() -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
    #[cfg(not(unix))]
    {
        None
    }
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

#[cfg(test)]
mod tests {
    use super::account;

    #[test]
    fn the_account_falls_back_from_user_to_passwd_to_uid() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(account(some("ana"), || some("root"), || Some(0)), "ana");
        assert_eq!(account(None, || some("runner"), || Some(1001)), "runner");
        assert_eq!(
            account(some(""), || some("runner"), || Some(1001)),
            "runner"
        );
        assert_eq!(account(None, || None, || Some(1001)), "uid 1001");
        assert_eq!(account(None, || None, || None), "unknown");
    }
}
