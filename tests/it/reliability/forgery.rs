//! Forging the journal with write access to its file but without the
//! journal key: a tail event with a correct hash, a history rewritten with
//! every hash recomputed (with and without its checkpoints), a deleted
//! run, an edited payload, a deleted head. Issue: the chain was unkeyed
//! and nothing outside the file anchored it, so all of these passed
//! `replay --verify` once an ordinary apply had rewritten the cached
//! views, apply appended to an edited chain, and a deleted last event made
//! apply exit 3 ("locked").
//!
//! Each forgery is made the way an attacker would finish it: hashes
//! recomputed, the cached projections rebuilt from the forged events, the
//! head record beside the database deleted. What stays out of reach is
//! the journal key and what lives beside it in the user's configuration
//! directory.

use std::path::{Path, PathBuf};

use fabrik::id::Digest;
use fabrik::store::StoredEvent;

use crate::support::{expect_exit, fabrik, run, stderr, stdout};

/// A project whose journal three runs wrote through the binary (with the
/// key in the project's configuration directory): an apply, a no-op apply
/// and an apply of a second deployment.
fn sealed() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), super::spec("sealed")).unwrap();
    std::fs::write(dir.path().join("b.yaml"), super::spec("other")).unwrap();
    for spec in ["a.yaml", "a.yaml", "b.yaml"] {
        let args = ["apply", spec, "--sandbox"];
        expect_exit(&run(fabrik(dir.path()).args(args)), 0, &args);
    }
    let db = dir.path().join(".fabrik").join("state.db");
    (dir, db)
}

/// Every row, in order.
fn rows(db: &Path) -> Vec<StoredEvent> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c
        .prepare("SELECT seq, deployment, stream_version, run, at, type, version, payload, prev_hash, hash FROM events ORDER BY seq")
        .unwrap();
    s.query_map([], |r| {
        let blob = |i: usize| -> rusqlite::Result<Digest> {
            Ok(Digest(r.get::<_, Vec<u8>>(i)?.try_into().unwrap()))
        };
        Ok(StoredEvent {
            seq: r.get(0)?,
            deployment: r.get(1)?,
            stream_version: r.get(2)?,
            run: r.get(3)?,
            at: r.get(4)?,
            type_name: r.get(5)?,
            version: r.get(6)?,
            payload: r.get(7)?,
            prev_hash: blob(8)?,
            hash: blob(9)?,
        })
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// Replaces the journal with `rows`, numbered again from 1 (sequence and
/// stream versions) and hash-chained again from genesis, each checkpoint
/// pointed at the event it now follows, as a forger with the file would:
/// then rebuilds the cached projections from them and removes the head
/// record beside the database.
fn forge(db: &Path, rows: Vec<StoredEvent>) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(
        "DROP TRIGGER IF EXISTS events_no_update; DROP TRIGGER IF EXISTS events_no_delete; DELETE FROM events;",
    )
    .unwrap();
    let mut prev = Digest::GENESIS;
    let mut versions = std::collections::HashMap::<String, u64>::new();
    let mut scratch = Vec::new();
    for (i, mut row) in rows.into_iter().enumerate() {
        row.seq = i as u64 + 1;
        let v = versions.entry(row.deployment.clone()).or_insert(0);
        *v += 1;
        row.stream_version = *v;
        row.prev_hash = prev;
        if row.type_name == "journal_checkpoint" {
            // Pointed at what it now follows; its seal cannot be remade.
            let mut cp: serde_json::Value = serde_json::from_str(&row.payload).unwrap();
            cp["seq"] = serde_json::json!(row.seq - 1);
            cp["head"] = serde_json::json!(prev.to_string());
            row.payload = fabrik::event::canonical_json(&cp);
        }
        row.hash = row.canonical().hash(&prev, &mut scratch);
        prev = row.hash;
        c.execute(
            "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                row.seq,
                row.deployment,
                row.stream_version,
                row.run,
                row.at,
                row.type_name,
                row.version,
                row.payload,
                &row.prev_hash.0[..],
                &row.hash.0[..]
            ],
        )
        .unwrap();
    }
    drop(c);
    fabrik::store::sqlite::SqliteStore::open(db)
        .unwrap()
        .rebuild_projections()
        .unwrap();
    let _ = std::fs::remove_file(format!("{}-head", db.display()));
}

/// The hash of the journal's last event, as a webhook receiver would
/// have recorded it.
fn head(db: &Path) -> String {
    rows(db).last().unwrap().hash.to_string()
}

/// `fabrik replay --verify ARGS`, with the project's key (`keyed`) or with
/// a configuration directory that holds none.
fn verify(dir: &Path, keyed: bool, args: &[&str]) -> std::process::Output {
    let mut c = fabrik(dir);
    c.args(["replay", "--verify"]).args(args);
    if !keyed {
        c.env("XDG_CONFIG_HOME", dir.join("elsewhere"));
    }
    run(&mut c)
}

#[track_caller]
fn refused(o: &std::process::Output, what: &str, words: &str) {
    assert_eq!(
        o.status.code(),
        Some(7),
        "{what}: expected exit 7\n{}{}",
        stdout(o),
        stderr(o)
    );
    assert!(
        stderr(o).contains(words),
        "{what}: {words:?} not in\n{}",
        stderr(o)
    );
    assert!(stderr(o).contains("hint:"), "{what}: {}", stderr(o));
}

#[test]
fn an_intact_sealed_journal_verifies_with_its_key_and_its_head() {
    let (dir, db) = sealed();
    let h = head(&db);
    let o = verify(dir.path(), true, &["--expect-head", &h]);
    expect_exit(&o, 0, &["replay", "--verify"]);
    let e = stderr(&o);
    assert!(
        e.contains("3 checkpoints signed by this journal key")
            && e.contains(&format!("head {h} found")),
        "{e}"
    );
    // Each run's final append carries its checkpoint, in the run.
    let checkpoints: Vec<StoredEvent> = rows(&db)
        .into_iter()
        .filter(|r| r.type_name == "journal_checkpoint")
        .collect();
    assert_eq!(checkpoints.len(), 3);
    // The key is the user's, private, and not in the journal.
    let key = dir.path().join(".config/fabrik/journal.key");
    let text = std::fs::read_to_string(&key).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let all: String = rows(&db).iter().map(|r| r.payload.clone()).collect();
    assert!(!all.contains(text.trim()));
    // Without the key, the checkpoints cannot be checked and it says so.
    let o = verify(dir.path(), false, &[]);
    expect_exit(&o, 0, &["replay", "--verify"]);
    assert!(
        stderr(&o).contains("not checked: no journal key here"),
        "{}",
        stderr(&o)
    );
}

/// A forged event appended after the last one, with a correct hash: it
/// belongs to a run that finished and was sealed, so it cannot be Fabrik's.
#[test]
fn a_forged_tail_event_with_a_correct_hash_is_found() {
    let (dir, db) = sealed();
    let mut all = rows(&db);
    let created = all
        .iter()
        .find(|r| r.type_name == "resource_created" && r.deployment == "sealed")
        .unwrap()
        .clone();
    let payload: serde_json::Value = serde_json::from_str(&created.payload).unwrap();
    let forged = StoredEvent {
        type_name: "resource_deleted".into(),
        payload: serde_json::json!({
            "resource": payload["resource"],
            "kind": payload["kind"],
            "remote_id": payload["remote_id"],
            "already_gone": false,
        })
        .to_string(),
        ..all
            .iter()
            .rev()
            .find(|r| r.deployment == "sealed")
            .unwrap()
            .clone()
    };
    all.push(forged);
    forge(&db, all);
    let n = rows(&db).len();
    let o = verify(dir.path(), true, &[]);
    refused(&o, "forged tail", &format!("event {n}"));
    // The next command refuses to seal it into the history.
    let o = run(fabrik(dir.path()).args(["apply", "a.yaml", "--sandbox"]));
    refused(&o, "apply after a forged tail", &format!("event {n}"));
    let o = verify(dir.path(), true, &[]);
    refused(
        &o,
        "forged tail, after the refused apply",
        &format!("event {n}"),
    );
}

/// A history rewritten from an early event on, every hash recomputed:
/// the checkpoints no longer match what they sealed. Also with every
/// checkpoint removed, and for a whole run taken out.
#[test]
fn a_rewritten_history_with_recomputed_hashes_is_found_with_the_key_or_a_head() {
    type Change = fn(Vec<StoredEvent>) -> Vec<StoredEvent>;
    let changes: [(&str, Change); 4] = [
        ("an early payload changed", |mut all| {
            let r = all
                .iter_mut()
                .find(|r| r.type_name == "resource_created")
                .unwrap();
            r.payload = r
                .payload
                .replacen("\"remote_id\":\"", "\"remote_id\":\"x", 1);
            all
        }),
        ("an early payload changed, checkpoints removed", |all| {
            let mut all: Vec<StoredEvent> = all
                .into_iter()
                .filter(|r| r.type_name != "journal_checkpoint")
                .collect();
            let r = all
                .iter_mut()
                .find(|r| r.type_name == "resource_created")
                .unwrap();
            r.payload = r
                .payload
                .replacen("\"remote_id\":\"", "\"remote_id\":\"x", 1);
            all
        }),
        ("the second run deleted", |all| {
            let second = all
                .iter()
                .filter(|r| r.type_name == "run_started")
                .nth(1)
                .unwrap()
                .run
                .clone();
            all.into_iter().filter(|r| r.run != second).collect()
        }),
        ("the second run deleted, checkpoints removed", |all| {
            let second = all
                .iter()
                .filter(|r| r.type_name == "run_started")
                .nth(1)
                .unwrap()
                .run
                .clone();
            all.into_iter()
                .filter(|r| r.run != second && r.type_name != "journal_checkpoint")
                .collect()
        }),
    ];
    for (what, change) in changes {
        let (dir, db) = sealed();
        let h = head(&db);
        forge(&db, change(rows(&db)));
        refused(
            &verify(dir.path(), true, &[]),
            what,
            "integrity check failed",
        );
        refused(
            &verify(dir.path(), false, &["--expect-head", &h]),
            &format!("{what} (no key, a head)"),
            &format!("no event with hash {h}"),
        );
        // An ordinary apply does not seal the forgery.
        let o = run(fabrik(dir.path()).args(["apply", "a.yaml", "--sandbox"]));
        refused(
            &o,
            &format!("apply after: {what}"),
            "integrity check failed",
        );
        refused(
            &verify(dir.path(), true, &[]),
            &format!("{what}, then apply"),
            "integrity check failed",
        );
        // Without the key and without a head, a consistent rewrite is a
        // valid chain: the chain alone proves order, not authorship.
        let o = verify(dir.path(), false, &[]);
        expect_exit(&o, 0, &["replay", "--verify"]);
        // With the key, even where no head was recorded: finished runs
        // without their seals.
        if what.contains("checkpoints removed") {
            std::fs::remove_dir_all(dir.path().join(".config/fabrik/heads")).unwrap();
            refused(
                &verify(dir.path(), true, &[]),
                &format!("{what}, no head recorded"),
                "no checkpoint sealed with this journal key",
            );
        }
    }
}

/// A journal cut back to an earlier checkpoint is a valid, sealed
/// journal: the key alone cannot tell. The heads recorded outside it can
/// (beside the key here; the one beside the database the forger removed),
/// and so can a head sent out later.
#[test]
fn a_journal_cut_back_to_an_earlier_checkpoint_is_found_by_the_recorded_heads() {
    let (dir, db) = sealed();
    let h = head(&db);
    let all = rows(&db);
    let first = all
        .iter()
        .position(|r| r.type_name == "journal_checkpoint")
        .unwrap();
    forge(&db, all[..=first].to_vec());
    refused(
        &verify(dir.path(), true, &[]),
        "cut back",
        "committed history is gone",
    );
    let o = run(fabrik(dir.path()).args(["apply", "b.yaml", "--sandbox"]));
    refused(&o, "apply after a cut", "committed history is gone");
    refused(
        &verify(dir.path(), false, &["--expect-head", &h]),
        "cut back (no key, a head)",
        &format!("no event with hash {h}"),
    );
    std::fs::remove_dir_all(dir.path().join(".config/fabrik/heads")).unwrap();
    let o = verify(dir.path(), true, &[]);
    expect_exit(&o, 0, &["replay", "--verify"]);
}

/// The events of a run still open after the last checkpoint are not
/// sealed until it finishes: forged ones pass, and the verification
/// says how many events follow the last checkpoint.
#[test]
fn events_of_a_run_still_open_are_not_sealed_until_it_finishes() {
    let (dir, db) = sealed();
    let mut all = rows(&db);
    let started = all
        .iter()
        .find(|r| r.type_name == "run_started" && r.deployment == "sealed")
        .unwrap()
        .clone();
    let open = "01jdx3v5q6m7n8p9r0s1t2v3w4".to_owned();
    all.push(StoredEvent {
        run: Some(open.clone()),
        ..started
    });
    all.push(StoredEvent {
        run: Some(open),
        type_name: "resource_deleted".into(),
        payload: r#"{"already_gone":false,"kind":"application","remote_id":"x","resource":"app"}"#
            .into(),
        ..all.last().unwrap().clone()
    });
    forge(&db, all);
    let o = verify(dir.path(), true, &[]);
    expect_exit(&o, 0, &["replay", "--verify"]);
    assert!(
        stderr(&o).contains("3 events after it"),
        "the lock release of the last run and the open run's two: {}",
        stderr(&o)
    );
}

/// Issue: apply appended to a chain whose payload was edited (exit 0).
#[test]
fn apply_refuses_to_append_to_an_edited_tail_naming_the_event() {
    let (dir, db) = sealed();
    let last = rows(&db).last().unwrap().seq;
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("DROP TRIGGER events_no_update;").unwrap();
    c.execute(
        "UPDATE events SET payload = replace(payload, '\"', ' \"') WHERE seq = ?1",
        [last],
    )
    .unwrap();
    drop(c);
    let o = run(fabrik(dir.path()).args(["apply", "b.yaml", "--sandbox"]));
    refused(&o, "edited payload", &format!("event {last}"));
    assert_eq!(rows(&db).last().unwrap().seq, last, "nothing was appended");
}

/// Issue: a deleted last event made apply exit 3, the code for "locked".
#[test]
fn a_deleted_last_event_is_an_integrity_failure_not_a_lock() {
    for keep_head_record in [true, false] {
        let (dir, db) = sealed();
        let last = rows(&db).last().unwrap().seq;
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("DROP TRIGGER events_no_delete;").unwrap();
        c.execute("DELETE FROM events WHERE seq = ?1", [last])
            .unwrap();
        drop(c);
        if !keep_head_record {
            let _ = std::fs::remove_file(format!("{}-head", db.display()));
        }
        let o = run(fabrik(dir.path()).args(["apply", "b.yaml", "--sandbox"]));
        refused(&o, "deleted last event", &format!("event {last}"));
        assert_ne!(o.status.code(), Some(3));
    }
}

/// In CI the key comes from `FABRIK_JOURNAL_KEY`: runs seal with it, no
/// key file is written, and a verification with another key refuses the
/// journal's seals.
#[test]
fn a_key_from_the_environment_seals_and_no_key_file_is_written() {
    const KEY: &str = "7f3a9c1e5b2d4f6081a3c5e7092b4d6f8a1c3e5f7092b4d6e8f0a2c4e6081a3c";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), super::spec("ci")).unwrap();
    let with_key = |key: &str, args: &[&str]| {
        run(fabrik(dir.path()).env("FABRIK_JOURNAL_KEY", key).args(args))
    };
    let args = ["apply", "a.yaml", "--sandbox"];
    expect_exit(&with_key(KEY, &args), 0, &args);
    assert!(!dir.path().join(".config/fabrik/journal.key").exists());
    let o = with_key(KEY, &["replay", "--verify"]);
    expect_exit(&o, 0, &["replay", "--verify"]);
    assert!(
        stderr(&o).contains("1 checkpoint signed by this journal key"),
        "{}",
        stderr(&o)
    );
    let other = "0".repeat(64);
    refused(
        &with_key(&other, &["replay", "--verify"]),
        "another key",
        "sealed with another journal key",
    );
    refused(
        &with_key(&other, &["apply", "a.yaml", "--sandbox"]),
        "apply with another key",
        "sealed with another journal key",
    );
    let before = rows(&dir.path().join(".fabrik/state.db")).len();
    let o = with_key("not a key", &["apply", "a.yaml", "--sandbox"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("FABRIK_JOURNAL_KEY is not 64 hex digits"),
        "{}",
        stderr(&o)
    );
    let after = rows(&dir.path().join(".fabrik/state.db")).len();
    assert_eq!(after, before, "nothing was written");
}

/// A webhook receiver on 127.0.0.1:0 that answers 200 and keeps the body
/// of every request.
fn webhook_receiver() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                keep.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&body).into_owned());
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (port, got)
}

/// Issue: nothing outside the file anchored the chain. Each run tells
/// those who hear from it the journal's head: its summary (for people and
/// in JSON) and its webhooks. `replay --verify --expect-head` with the
/// hash a webhook received passes on the journal as it is, and finds a
/// history rewritten before it, without the key.
#[test]
fn the_head_a_run_reports_and_sends_anchors_the_journal() {
    let (port, received) = webhook_receiver();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".fabrik").join("state.db");
    std::fs::write(
        dir.path().join("spec.yaml"),
        format!(
            "{}notifications:\n  webhooks:\n    - name: audit\n      url: http://127.0.0.1:{port}/hook\n",
            super::spec("anchored")
        ),
    )
    .unwrap();
    let o = run(fabrik(dir.path()).args(["--output", "json", "apply", "spec.yaml", "--sandbox"]));
    expect_exit(&o, 0, &["apply"]);
    let result: serde_json::Value =
        serde_json::from_str(stdout(&o).lines().last().unwrap()).unwrap();
    assert_eq!(result["kind"], "result", "{result}");
    let all = rows(&db);
    let last = all.last().unwrap();
    assert_eq!(
        (
            result["journal_head"]["seq"].as_u64(),
            result["journal_head"]["hash"].as_str()
        ),
        (Some(last.seq), Some(last.hash.to_string().as_str())),
        "the summary names the journal's last event: {result}"
    );
    // The webhook carries the head as it was when it was sent.
    let hooks = received.lock().unwrap().clone();
    assert_eq!(hooks.len(), 2, "started and succeeded: {hooks:?}");
    let hook: serde_json::Value = serde_json::from_str(&hooks[1]).unwrap();
    assert_eq!(hook["event"], "succeeded", "{hook}");
    let sent = hook["details"]["journal_head"].as_str().unwrap().to_owned();
    let seq: u64 = hook["details"]["journal_seq"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        all.iter()
            .find(|r| r.seq == seq)
            .map(|r| r.hash.to_string()),
        Some(sent.clone()),
        "{hook}"
    );
    // The summary for people names it too.
    let o = run(fabrik(dir.path()).args(["apply", "spec.yaml", "--sandbox"]));
    expect_exit(&o, 0, &["apply"]);
    let now = rows(&db).last().unwrap().hash.to_string();
    assert!(
        stdout(&o).contains("  journal: event ") && stdout(&o).contains(&now),
        "{}",
        stdout(&o)
    );
    let o = verify(dir.path(), false, &["--expect-head", &sent]);
    expect_exit(&o, 0, &["replay", "--verify", "--expect-head"]);
    assert!(
        stderr(&o).contains(&format!("head {sent} found at event {seq}")),
        "{}",
        stderr(&o)
    );
    // Rewritten before it, hashes recomputed: found, without the key.
    let mut forged = rows(&db);
    let r = forged
        .iter_mut()
        .find(|r| r.type_name == "resource_created")
        .unwrap();
    r.payload = r
        .payload
        .replacen("\"remote_id\":\"", "\"remote_id\":\"x", 1);
    forge(&db, forged);
    refused(
        &verify(dir.path(), false, &["--expect-head", &sent]),
        "a history rewritten before the webhook's head",
        &format!("no event with hash {sent}"),
    );
}
