//! `fabrik replay`: fold the journal (or an export) to a point; verify it.

use std::fs::File;
use std::io::BufReader;
use std::ops::ControlFlow;

use serde_json::json;

use super::{Cli, ReplayArgs, deployment_arg, open_existing};
use crate::error::{Error, exit};
use crate::event::{RecordedEvent, parse_timestamp};
use crate::export::{self, ExportError};
use crate::id::Digest;
use crate::id::{DeploymentId, Seq};
use crate::output::Output;
use crate::projection::Projection;
use crate::store::seal::{ExpectedHead, SealReport, load_key};
use crate::store::{
    ChainChecker, ChainError, Scan, StateLocation, StoreError, StoredEvent, VerifyOptions,
    verify_store_with,
};
use crate::text::count;

/// Where replay stops.
#[derive(Debug, Clone, Copy)]
enum Until {
    Everything,
    Seq(Seq),
    Time(jiff::Timestamp),
}

impl Until {
    fn parse(text: Option<&str>) -> Result<Self, Error> {
        let Some(t) = text else {
            return Ok(Self::Everything);
        };
        if let Ok(n) = t.parse::<u64>() {
            return Ok(Self::Seq(Seq(n)));
        }
        parse_timestamp(t)
            .map(Self::Time)
            .map_err(|e| Error::Usage {
                message: format!("--until {t:?} is neither a sequence number nor a timestamp: {e}"),
                hint: Some("use e.g. --until 42 or --until 2026-11-27T11:00:00Z".to_owned()),
            })
    }

    /// Whether the event lies beyond the stopping point.
    fn is_past(&self, e: &RecordedEvent) -> bool {
        match self {
            Self::Everything => false,
            Self::Seq(s) => e.seq > *s,
            Self::Time(t) => e.at > *t,
        }
    }
}

/// Runs `fabrik replay`.
pub fn run(cli: &Cli, args: &ReplayArgs, out: &mut Output) -> Result<i32, Error> {
    let until = Until::parse(args.until.as_deref())?;
    let only = args.deployment.as_deref().map(deployment_arg).transpose()?;
    let projection = match &args.input {
        Some(path) => replay_export(path, until, out)?,
        None => replay_store(cli, args, until, out)?,
    };
    print(&projection, only.as_ref(), until, cli.wide, out)?;
    Ok(exit::OK)
}

/// The heads `replay --verify` must find: those given with
/// `--expect-head`, and those recorded beside the database and beside the
/// journal key.
fn expected_heads(cli: &Cli, given: &[String]) -> Result<Vec<ExpectedHead>, Error> {
    let mut out = Vec::new();
    for text in given {
        let hash = Digest::from_hex(text.trim()).map_err(|_| Error::Usage {
            message: format!("--expect-head {text:?} is not a hash of 64 hex digits"),
            hint: Some(
                "give the full hash of an event, as a run's webhook or summary reported it"
                    .to_owned(),
            ),
        })?;
        out.push(ExpectedHead {
            what: "--expect-head".to_owned(),
            seq: None,
            hash,
        });
    }
    let location = super::state_location(cli)?;
    let journal = match &location {
        StateLocation::Sqlite(path) => crate::store::sqlite::SqliteStore::open_existing(path)
            .ok()
            .and_then(|store| crate::store::EventStore::journal_id(&store).ok()),
        StateLocation::Postgres(_) => None,
    };
    out.extend(recorded_heads(&location, journal.as_ref()));
    Ok(out)
}

/// The heads recorded for the journal at `location` with id `journal`:
/// beside its database (SQLite) and beside the key.
fn recorded_heads(
    location: &StateLocation,
    journal: Option<&crate::id::JournalId>,
) -> Vec<ExpectedHead> {
    let database = match location {
        StateLocation::Sqlite(path) => Some(path.as_path()),
        StateLocation::Postgres(_) => None,
    };
    ExpectedHead::recorded(database, &crate::store::seal_identity(location, journal))
}

/// Committed history the journal no longer holds, said in words: a head
/// recorded beside the database or the key names an event past the
/// journal's end (a WAL cut or a restored older copy). A cheap check for
/// commands that only read; `replay --verify` also checks the hashes.
pub(super) fn history_gone(
    cli: &Cli,
    store: &dyn crate::store::EventStore,
) -> Result<Option<String>, Error> {
    let len = store.len()?;
    // The store is open already: its id, not a second connection's.
    let journal = store.journal_id().ok();
    Ok(recorded_heads(&super::state_location(cli)?, journal.as_ref())
        .into_iter()
        .find_map(|head| match head.seq {
            Some(seq) if seq > len => Some(format!(
                "the journal ends at event {len}, but {} names event {seq} (hash {}): committed history is gone; `fabrik replay --verify` checks the rest, and a backup of the journal brings it back",
                head.what,
                head.hash.short()
            )),
            _ => None,
        }))
}

fn replay_store(
    cli: &Cli,
    args: &ReplayArgs,
    until: Until,
    out: &mut Output,
) -> Result<Projection, Error> {
    // Read before the journal: what they name was committed before the
    // snapshot the verification reads.
    let expected = if args.verify {
        expected_heads(cli, &args.expect_head)?
    } else {
        Vec::new()
    };
    let store = open_existing(cli)?;
    if args.verify {
        let journal_key = load_key(false).map_err(|e| Error::Store(StoreError::Key(e)))?;
        let options = VerifyOptions {
            keys: None,
            journal_key,
            expected,
        };
        // The storage check and the chain run side by side; damaged
        // storage is reported first, since it can explain a broken chain.
        let keys = crate::store::IndexKeys::new();
        let (checked, verified) = std::thread::scope(|scope| {
            let check = scope.spawn(|| store.check_storage_keyed(&keys));
            let verified = verify_store_with(
                store.as_ref(),
                VerifyOptions {
                    keys: Some(&keys),
                    ..options
                },
            );
            let checked = check.join().unwrap_or_else(|_| {
                Err(crate::store::StoreError::Backend(
                    "the storage check failed".to_owned(),
                ))
            });
            (checked, verified)
        });
        let rows = verified.as_ref().ok().and_then(|(r, _)| r.rows_digest);
        let damage = match checked? {
            Some((problems, _)) if !problems.is_empty() => problems,
            // The indexes hold exactly the rows read (or the chain broke
            // first, which is reported below): intact.
            Some((_, indexed)) if verified.is_ok() && rows.is_none_or(|r| r == indexed) => {
                Vec::new()
            }
            // They differ (damage, or rows appended between the two reads),
            // the rows could not be read, or the backend has no split
            // check: the full check decides.
            _ => store.check_storage()?,
        };
        if let Some(first) = damage.first() {
            for d in &damage {
                out.diag(&format!("damage: {d}"));
            }
            return Err(Error::Damaged(first.clone()));
        }
        let (report, full) = verified?;
        if let Some(e) = report.chain_error {
            return Err(Error::Integrity(e));
        }
        if let Some(first) = report.projection_mismatches.first() {
            for m in &report.projection_mismatches {
                out.diag(&format!("mismatch: {m}"));
            }
            return Err(Error::ProjectionMismatch(first.clone()));
        }
        out.diag(&format!(
            "verified {} events: hash chain intact (last {}), cached projections of {} deployments and {} runs equal a fresh fold",
            report.events,
            report.last_hash.map_or("-".to_owned(), |h| h.short()),
            report.deployments,
            report.runs
        ));
        if let Some(seal) = &report.seal {
            print_seal(seal, out);
        }
        if matches!(until, Until::Everything) {
            return Ok(full);
        }
    }
    // The chain is checked on the way, so that a changed event is never
    // folded into a state shown as the journal's.
    let mut projection = Projection::new();
    let mut checker = ChainChecker::whole();
    let mut failure = None;
    store.scan(&Scan::default(), &mut |row| {
        if let Err(e) = checker.check(&row) {
            failure = Some(Error::Integrity(e));
            return ControlFlow::Break(());
        }
        match row.decode() {
            Ok(e) if until.is_past(&e) => ControlFlow::Break(()),
            Ok(e) => {
                projection.apply(&e);
                ControlFlow::Continue(())
            }
            Err(e) => {
                failure = Some(e.into());
                ControlFlow::Break(())
            }
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(projection),
    }
}

/// What the checkpoints and the expected heads showed.
fn print_seal(seal: &SealReport, out: &mut Output) {
    match &seal.key {
        Some(id) => out.diag(&format!(
            "{} signed by this journal key (id {id}){}; {} after it (of runs still open, and lock releases)",
            count(seal.checkpoints, "checkpoint"),
            seal.last_checkpoint
                .map_or(String::new(), |s| format!(", the last at event {s}")),
            count(seal.unsealed, "event")
        )),
        None => out.diag(&format!(
            "{} not checked: no journal key here (set {} or verify where the key is kept); without it the chain proves the order of the events, not who wrote them",
            count(seal.checkpoints, "checkpoint"),
            crate::store::seal::KEY_VAR
        )),
    }
    for (what, seq, hash) in &seal.heads {
        out.diag(&format!(
            "head {hash} found at event {seq} ({what}): nothing up to it changed"
        ));
    }
}

fn replay_export(
    path: &std::path::Path,
    until: Until,
    out: &mut Output,
) -> Result<Projection, Error> {
    let file = File::open(path).map_err(|source| Error::Io {
        action: "cannot read",
        path: path.to_owned(),
        source,
    })?;
    let mut projection = Projection::new();
    let mut checker: Option<ChainChecker> = None;
    let mut stopped = false;
    let mut chain_error: Option<ChainError> = None;
    // The first break in a stream's versions: a deployment's export holds
    // its whole stream, so one there means an event was taken out.
    let mut streams: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    let mut stream_gap: Option<ChainError> = None;
    let mut visit = |row: StoredEvent| -> Result<(), ExportError> {
        if chain_error.is_some() {
            return Ok(());
        }
        let last = streams.entry(row.deployment.clone()).or_insert(0);
        if stream_gap.is_none() && row.stream_version != *last + 1 {
            stream_gap = Some(ChainError {
                seq: Seq(row.seq),
                problem: format!(
                    "stream {} jumps from version {} to {}",
                    row.deployment, last, row.stream_version
                ),
            });
        }
        *last = row.stream_version;
        let c = checker.get_or_insert_with(|| {
            if row.seq == 1 {
                ChainChecker::whole()
            } else {
                ChainChecker::filtered()
            }
        });
        if let Err(e) = c.check(&row) {
            chain_error = Some(e);
            return Ok(());
        }
        let rec = match row.decode() {
            Ok(r) => r,
            Err(e) => {
                chain_error = Some(ChainError {
                    seq: Seq(row.seq),
                    problem: crate::error::chain_text(&e),
                });
                return Ok(());
            }
        };
        if stopped || until.is_past(&rec) {
            stopped = true;
            return Ok(());
        }
        projection.apply(&rec);
        Ok(())
    };
    let (header, trailer) =
        export::read(BufReader::new(file), &mut visit).map_err(|e| match e {
            ExportError::Invalid { line, message } => Error::BadExport {
                path: path.to_owned(),
                line,
                message,
            },
            other => Error::BadExport {
                path: path.to_owned(),
                line: 0,
                message: crate::error::chain_text(&other),
            },
        })?;
    if let Some(e) = chain_error {
        return Err(Error::Integrity(e));
    }
    if header.deployment.is_some()
        && header.run.is_none()
        && let Some(e) = stream_gap
    {
        return Err(Error::Integrity(e));
    }
    if let Some(c) = &checker
        && trailer.last_hash.is_some()
        && c.last_hash() != trailer.last_hash
    {
        return Err(Error::BadExport {
            path: path.to_owned(),
            line: 0,
            message: "the trailer's last hash does not match the last event".to_owned(),
        });
    }
    out.diag(&format!(
        "verified {} of {} export{}",
        count(trailer.count, "event"),
        if header.complete {
            "a complete"
        } else {
            "a filtered"
        },
        if header.complete {
            ": hash chain intact from genesis"
        } else {
            ": each event's hash and every consecutive link intact"
        }
    ));
    Ok(projection)
}

fn print(
    p: &Projection,
    only: Option<&DeploymentId>,
    until: Until,
    wide: bool,
    out: &mut Output,
) -> Result<(), Error> {
    let deployments: Vec<_> = p
        .deployments
        .values()
        .filter(|d| only.is_none_or(|o| o == &d.deployment))
        .collect();
    if let Some(o) = only
        && deployments.is_empty()
    {
        return Err(Error::Usage {
            message: format!("no events of deployment {o} up to that point"),
            hint: None,
        });
    }
    if out.is_json() {
        let runs: Vec<_> = p
            .runs
            .values()
            .filter(|r| only.is_none_or(|o| o == &r.deployment))
            .collect();
        out.json(&json!({
            "last_seq": p.last_seq,
            "until": match until {
                Until::Everything => serde_json::Value::Null,
                Until::Seq(s) => json!(s),
                Until::Time(t) => json!(crate::event::format_timestamp(t)),
            },
            "deployments": deployments,
            "runs": runs,
        }))?;
        return Ok(());
    }
    out.line(&format!("replayed up to event {}", p.last_seq))?;
    for d in deployments {
        let latest = d.latest_run.as_ref().and_then(|r| p.runs.get(r));
        out.line("")?;
        let columns = super::status::columns_of(wide, d);
        out.raw(super::status::render_deployment(d, latest, &columns).as_bytes())?;
    }
    Ok(())
}
