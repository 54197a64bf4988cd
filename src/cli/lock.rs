//! `fabrik lock status` and `fabrik lock release DEPLOYMENT --force`.

use serde_json::json;

use super::column::Columns;
use super::{Cli, deployment_arg, open_existing, state_location};
use crate::error::{Error, exit};
use crate::event::{Event, LockBroken, NewEvent};
use crate::output::{Output, table};
use crate::store::lock;

/// Shows every deployment's lock: held by a live process, or recorded as
/// held in the journal by a process that is gone.
pub fn status(cli: &Cli, out: &mut Output) -> Result<i32, Error> {
    let store = open_existing(cli)?;
    let space = lock::LockSpace::for_state(&state_location(cli)?);
    let live = space.list().map_err(lock_err)?;
    let mut found = Vec::new();
    for d in store.deployments()? {
        let journal = store.deployment(&d)?.and_then(|v| v.lock);
        let held = live
            .iter()
            .find(|(n, _)| n == &d)
            .and_then(|(_, h)| h.clone());
        found.push((d, held, journal));
    }
    let columns = Columns::new(
        cli.wide,
        jiff::Timestamp::now(),
        found
            .iter()
            .flat_map(|(_, held, journal)| held.iter().chain(journal.iter()).map(|h| &h.run)),
    );
    let mut rows = Vec::new();
    let mut docs = Vec::new();
    for (d, held, journal) in found {
        let state = match (&held, &journal) {
            (Some(_), _) => "held",
            (None, Some(_)) => "stale (holder gone; `fabrik resume` or `lock release --force`)",
            (None, None) => "free",
        };
        let holder = held.as_ref().or(journal.as_ref());
        rows.push(vec![
            d.to_string(),
            state.to_owned(),
            // A free lock has no holder to name.
            holder.map_or_else(String::new, |h| columns.holder(h)),
        ]);
        docs.push(json!({ "deployment": d, "state": state.split(' ').next(), "holder": held, "journal": journal }));
    }
    if out.is_json() {
        out.json(&json!({ "locks": docs }))?;
    } else if rows.is_empty() {
        out.diag("no deployments in the journal yet");
    } else {
        out.raw(table(&["DEPLOYMENT", "LOCK", "HOLDER"], &rows).as_bytes())?;
    }
    Ok(exit::OK)
}

/// Clears a lock recorded in the journal whose holder is gone (a process on
/// another machine, a lost CI runner). A lock held by a live process on
/// this machine is never broken: stop that process instead.
pub fn release(cli: &Cli, deployment: &str, force: bool, out: &mut Output) -> Result<i32, Error> {
    let d = deployment_arg(deployment)?;
    if !force {
        return Err(Error::Usage {
            message: "releasing a lock needs --force".to_owned(),
            hint: Some(
                "only release a lock whose holder is really gone; a running deploy would be left unguarded"
                    .to_owned(),
            ),
        });
    }
    let store = open_existing(cli)?;
    let space = lock::LockSpace::for_state(&state_location(cli)?);
    // With PostgreSQL the holder may be a process on another machine:
    // end its database session, which frees its advisory lock.
    if let lock::LockSpace::Advisory(locks) = &space
        && let Some(h) = locks.terminate_holder(&d).map_err(lock_err)?
    {
        out.diag(&format!(
            "ended the database session of {}",
            lock::describe(Some(&h))
        ));
    }
    if let Some(h) = space.holder(&d).map_err(lock_err)? {
        return Err(Error::Locked {
            message: format!(
                "deployment {d} is locked by a live process: {}",
                lock::describe(Some(&h))
            ),
            hint: Some(format!(
                "stop that process (kill {}) or wait for it; its lock is released when it exits",
                h.pid
            )),
        });
    }
    let view = store.deployment(&d)?.ok_or_else(|| Error::Usage {
        message: format!("no deployment named {d} in the journal"),
        hint: None,
    })?;
    let Some(previous) = view.lock.clone() else {
        if out.is_json() {
            out.json(&json!({ "kind": "lock_release", "deployment": d, "released": null }))?;
        } else {
            out.diag(&format!("deployment {d} is not locked"));
        }
        return Ok(exit::OK);
    };
    let (user, host, _) = crate::engine::run::who();
    store.append(
        &d,
        view.version,
        &[NewEvent {
            run: None,
            at: jiff::Timestamp::now(),
            event: Event::LockBroken(LockBroken {
                previous: previous.clone(),
                reason: format!("released with --force by {user}@{host}"),
            }),
        }],
    )?;
    let unfinished = match &view.latest_run {
        Some(run) => store.run(run)?.filter(|r| r.is_open()).map(|r| r.run),
        None => None,
    };
    if out.is_json() {
        out.json(&json!({
            "kind": "lock_release",
            "deployment": d,
            "released": previous,
            "unfinished_run": unfinished,
        }))?;
        return Ok(exit::OK);
    }
    out.diag(&format!(
        "released the lock of {d} (was {})",
        lock::describe(Some(&previous))
    ));
    if let Some(run) = unfinished {
        out.diag(&format!(
            "hint: run {run} is unfinished; finish it with `fabrik resume {run}`"
        ));
    }
    Ok(exit::OK)
}

fn lock_err(e: lock::LockError) -> Error {
    Error::Other(crate::error::chain_text(&e))
}
