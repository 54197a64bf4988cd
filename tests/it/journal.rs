//! The journal through the real binary: status, history, export, replay,
//! and what happens when the database is tampered with.

use std::path::{Path, PathBuf};

use fabrik::generate::Shape;
use fabrik::store::sqlite::SqliteStore;

use crate::support::{fabrik, fill, insta_settings, run, stderr, stdout};

const SMALL: Shape = Shape {
    deployments: 2,
    runs: 3,
    records: 1,
    seed: 7,
};

/// A project directory with a journal at the default place.
fn project(shape: Shape) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(".fabrik").join("state.db");
    let store = SqliteStore::open(&db).unwrap();
    fill(&store, shape);
    drop(store);
    (dir, db)
}

fn sql(db: &Path, statements: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch(statements).unwrap();
}

fn drop_triggers(db: &Path) {
    sql(
        db,
        "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;",
    );
}

fn verify(dir: &Path) -> std::process::Output {
    run(fabrik(dir).args(["replay", "--verify"]))
}

#[test]
fn status_history_and_export_read_like_this() {
    let (dir, _) = project(SMALL);
    let settings = insta_settings("journal");
    settings.bind(|| {
        let all = run(fabrik(dir.path()).arg("status"));
        assert!(all.status.success(), "{}", stderr(&all));
        insta::assert_snapshot!("status_all", stdout(&all));

        let one = run(fabrik(dir.path()).args(["status", "svc-00000"]));
        assert!(one.status.success(), "{}", stderr(&one));
        insta::assert_snapshot!("status_one", stdout(&one));

        let hist = run(fabrik(dir.path()).args(["history", "svc-00001"]));
        assert!(hist.status.success(), "{}", stderr(&hist));
        insta::assert_snapshot!("history", stdout(&hist));

        let nd = run(fabrik(dir.path()).args([
            "journal",
            "export",
            "--format",
            "ndjson",
            "--deployment",
            "svc-00000",
        ]));
        assert!(nd.status.success(), "{}", stderr(&nd));
        let text = stdout(&nd);
        let first_lines: Vec<&str> = text.lines().take(4).collect();
        insta::assert_snapshot!("export_ndjson_head", first_lines.join("\n"));
    });
}

#[test]
fn status_of_an_unknown_deployment_is_a_usage_error() {
    let (dir, _) = project(SMALL);
    let o = run(fabrik(dir.path()).args(["status", "nope"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no deployment named nope"),
        "{}",
        stderr(&o)
    );
    let bad = run(fabrik(dir.path()).args(["status", "Not_A_Name"]));
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn reading_commands_refuse_a_missing_journal_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(fabrik(dir.path()).arg("status"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no journal here"), "{}", stderr(&o));
    assert!(
        !dir.path().join(".fabrik").exists(),
        "a read must not create state"
    );
}

#[test]
fn json_output_is_one_document_per_query() {
    let (dir, _) = project(SMALL);
    let o = run(fabrik(dir.path()).args(["--output", "json", "status", "svc-00000"]));
    assert!(o.status.success());
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["deployment"]["deployment"], "svc-00000");
    assert!(v["latest_run"]["run"].is_string());
}

#[test]
fn an_intact_journal_verifies() {
    let (dir, _) = project(SMALL);
    let o = verify(dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("hash chain intact"), "{}", stderr(&o));
}

#[test]
fn triggers_refuse_update_and_delete() {
    let (_dir, db) = project(SMALL);
    let c = rusqlite::Connection::open(&db).unwrap();
    let u = c.execute("UPDATE events SET payload = '{}' WHERE seq = 1", []);
    assert!(u.unwrap_err().to_string().contains("append-only"));
    let d = c.execute("DELETE FROM events WHERE seq = 1", []);
    assert!(d.unwrap_err().to_string().contains("append-only"));
}

#[test]
fn a_changed_byte_in_a_payload_is_found_and_named() {
    let (dir, db) = project(SMALL);
    drop_triggers(&db);
    sql(
        &db,
        "UPDATE events SET payload = substr(payload, 1, 5) || char(unicode(substr(payload, 6, 1)) + 1) || substr(payload, 7) WHERE seq = 5",
    );
    let o = verify(dir.path());
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("at event 5"), "{}", stderr(&o));
}

#[test]
fn a_deleted_row_is_found_and_named() {
    let (dir, db) = project(SMALL);
    drop_triggers(&db);
    sql(&db, "DELETE FROM events WHERE seq = 9");
    let o = verify(dir.path());
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("at event 9"), "{}", stderr(&o));
}

#[test]
fn swapped_rows_are_found_and_named() {
    let (dir, db) = project(SMALL);
    drop_triggers(&db);
    // Swap the contents of events 12 and 13 (keeping their positions).
    sql(
        &db,
        "CREATE TEMP TABLE t AS SELECT * FROM events WHERE seq IN (12, 13);
         UPDATE events SET deployment = (SELECT deployment FROM t WHERE seq = 13),
                           run = (SELECT run FROM t WHERE seq = 13),
                           type = (SELECT type FROM t WHERE seq = 13),
                           payload = (SELECT payload FROM t WHERE seq = 13)
                     WHERE seq = 12;
         UPDATE events SET deployment = (SELECT deployment FROM t WHERE seq = 12),
                           run = (SELECT run FROM t WHERE seq = 12),
                           type = (SELECT type FROM t WHERE seq = 12),
                           payload = (SELECT payload FROM t WHERE seq = 12)
                     WHERE seq = 13;",
    );
    let o = verify(dir.path());
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("at event 12"), "{}", stderr(&o));
}

#[test]
fn a_tampered_cached_projection_is_found() {
    let (dir, db) = project(SMALL);
    sql(
        &db,
        "UPDATE deployment_projection SET body = replace(body, '\"run_count\":3', '\"run_count\":4') WHERE deployment = 'svc-00001'",
    );
    let o = verify(dir.path());
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    assert!(stderr(&o).contains("svc-00001"), "{}", stderr(&o));
}

#[test]
fn a_database_from_a_newer_fabrik_is_refused() {
    let (dir, db) = project(SMALL);
    sql(
        &db,
        "INSERT INTO fabrik_schema (version, name, applied_at) VALUES (99, 'future', 'x')",
    );
    let o = run(fabrik(dir.path()).arg("status"));
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("schema version 99"), "{e}");
    assert!(e.contains("upgrade fabrik"), "{e}");
}

#[cfg(unix)]
#[test]
fn the_state_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_dir, db) = project(SMALL);
    // Keep a connection open so the WAL and shared-memory files exist.
    let store = SqliteStore::open(&db).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if p.exists() {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }
    let dir_mode = std::fs::metadata(db.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    drop(store);
}

#[test]
fn an_export_replays_to_the_same_state_as_the_database() {
    let (dir, _) = project(SMALL);
    for format in ["json", "ndjson"] {
        let file = dir.path().join(format!("export.{format}"));
        let o = run(fabrik(dir.path()).args([
            "journal",
            "export",
            "--format",
            format,
            "-o",
            file.to_str().unwrap(),
        ]));
        assert!(o.status.success(), "{}", stderr(&o));
        let from_db = run(fabrik(dir.path()).args(["--output", "json", "replay"]));
        let from_file = run(fabrik(dir.path()).args([
            "--output",
            "json",
            "replay",
            "--input",
            file.to_str().unwrap(),
        ]));
        assert!(from_file.status.success(), "{}", stderr(&from_file));
        assert_eq!(stdout(&from_db), stdout(&from_file), "{format}");
    }
}

#[test]
fn a_tampered_export_is_refused() {
    let (dir, _) = project(SMALL);
    let file = dir.path().join("export.ndjson");
    let o = run(fabrik(dir.path()).args([
        "journal",
        "export",
        "--format",
        "ndjson",
        "-o",
        file.to_str().unwrap(),
    ]));
    assert!(o.status.success());
    let text = std::fs::read_to_string(&file).unwrap();
    let tampered = text.replacen("\"user\":\"ci\"", "\"user\":\"mallory\"", 1);
    assert_ne!(text, tampered);
    std::fs::write(&file, tampered).unwrap();
    let r = run(fabrik(dir.path()).args(["replay", "--input", file.to_str().unwrap()]));
    assert_eq!(r.status.code(), Some(7), "{}", stderr(&r));
    assert!(
        stderr(&r).contains("does not match its hash"),
        "{}",
        stderr(&r)
    );
}

#[test]
fn a_filtered_export_replays_its_deployment() {
    let (dir, _) = project(SMALL);
    let file = dir.path().join("one.json");
    let o = run(fabrik(dir.path()).args([
        "journal",
        "export",
        "--deployment",
        "svc-00001",
        "-o",
        file.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let a =
        run(fabrik(dir.path()).args(["--output", "json", "replay", "--deployment", "svc-00001"]));
    let b = run(fabrik(dir.path()).args([
        "--output",
        "json",
        "replay",
        "--deployment",
        "svc-00001",
        "--input",
        file.to_str().unwrap(),
    ]));
    assert!(b.status.success(), "{}", stderr(&b));
    let va: serde_json::Value = serde_json::from_str(&stdout(&a)).unwrap();
    let vb: serde_json::Value = serde_json::from_str(&stdout(&b)).unwrap();
    assert_eq!(va["deployments"], vb["deployments"]);
    assert_eq!(va["runs"], vb["runs"]);
}

#[test]
fn replay_until_stops_at_a_sequence_number_or_a_time() {
    let (dir, _) = project(SMALL);
    let by_seq = run(fabrik(dir.path()).args(["--output", "json", "replay", "--until", "10"]));
    assert!(by_seq.status.success(), "{}", stderr(&by_seq));
    let v: serde_json::Value = serde_json::from_str(&stdout(&by_seq)).unwrap();
    assert_eq!(v["last_seq"], 10);
    // Generated events start at 2026-01-01T00:00:00Z, 1.5 s apart.
    let by_time = run(fabrik(dir.path()).args([
        "--output",
        "json",
        "replay",
        "--until",
        "2026-01-01T00:00:15Z",
    ]));
    let v: serde_json::Value = serde_json::from_str(&stdout(&by_time)).unwrap();
    assert_eq!(v["last_seq"], 10);
    let bad = run(fabrik(dir.path()).args(["replay", "--until", "yesterday"]));
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn the_export_matches_its_json_schema() {
    let (dir, _) = project(SMALL);
    let o = run(fabrik(dir.path()).args(["journal", "export"]));
    assert!(o.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/journal-export.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // Every event type the code knows is named in the schema.
    let names: Vec<&str> = schema["$defs"]["event"]["properties"]["type"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(names, fabrik::event::EVENT_TYPES);
    // A broken event is caught by the schema.
    let mut broken = doc.clone();
    broken["events"][0]["hash"] = serde_json::json!("not-a-hash");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn every_event_type_is_in_the_catalogue() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/events.md"))
        .unwrap();
    for name in fabrik::event::EVENT_TYPES {
        assert!(
            doc.contains(&format!("### `{name}`")),
            "docs/events.md does not describe {name}"
        );
    }
}

/// Issue: a destroyed resource came back as present. Apply, destroy, then
/// an apply whose create of the DNS record is refused for good (a 422):
/// `status` showed the deleted record's id as present, `plan` said "no
/// change" and the next apply skipped the create, reporting the service
/// deployed while the world held no record. The record is absent now, the
/// plan creates it, and the next apply does.
#[test]
fn a_create_refused_after_a_destroy_leaves_the_resource_absent() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spec.yaml"),
        crate::reliability::spec("phoenix"),
    )
    .unwrap();
    let go = |args: &[&str], faults: Option<&str>| {
        let mut c = fabrik(dir.path());
        c.args(args);
        if let Some(f) = faults {
            c.env("FABRIK_SANDBOX_FAULTS", f);
        }
        run(&mut c)
    };
    let expect = |o: &std::process::Output, codes: &[i32], what: &str| {
        assert!(
            codes.contains(&o.status.code().unwrap_or(-1)),
            "{what}: exit {:?}\n{}{}",
            o.status.code(),
            stdout(o),
            stderr(o)
        );
    };
    let records = || -> Vec<String> {
        let dump = crate::support::sandbox_dump(dir.path());
        dump["cloudflare"]["zones"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|z| z["records"].as_array().cloned().unwrap_or_default())
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let dns_status = || -> serde_json::Value {
        let o = go(&["--output", "json", "status", "phoenix"], None);
        expect(&o, &[0], "status");
        let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
        v["deployment"]["resources"]
            .as_object()
            .unwrap()
            .values()
            .find(|r| r["kind"] == "dns_record")
            .cloned()
            .unwrap()
    };
    expect(
        &go(&["apply", "spec.yaml", "--sandbox"], None),
        &[0],
        "apply",
    );
    let first = records();
    assert_eq!(first.len(), 1);
    expect(
        &go(&["destroy", "phoenix", "--sandbox", "--yes"], None),
        &[0],
        "destroy",
    );
    assert!(records().is_empty());
    let refused = go(&["apply", "spec.yaml", "--sandbox"], Some("echo_422=true"));
    expect(&refused, &[5, 6], "apply with the create refused");
    let r = dns_status();
    assert_ne!(r["status"], "present", "the refused create left {r}");
    assert!(
        r.get("remote_id").is_none(),
        "no id of a deleted record: {r}"
    );
    let plan = go(&["plan", "spec.yaml", "--detailed-exitcode"], None);
    expect(&plan, &[2], "plan");
    assert!(
        stdout(&plan).contains("dns:A:phoenix.example.com"),
        "{}",
        stdout(&plan)
    );
    expect(
        &go(&["apply", "spec.yaml", "--sandbox"], None),
        &[0],
        "apply again",
    );
    let again = records();
    assert_eq!(again.len(), 1, "the record exists again");
    assert_ne!(again, first);
    assert_eq!(dns_status()["remote_id"], again[0].as_str());
    expect(&go(&["replay", "--verify"], None), &[0], "verify");
}

/// Issue: after a kill that landed before a run's first event, `fabrik
/// resume NAME` exited 1 with "no deployment named …". Nothing was
/// journaled, so nothing was changed: there is nothing to resume, and
/// the answer says to apply the spec again.
#[test]
fn resuming_a_run_killed_before_its_first_event_names_the_next_command() {
    // The journal holds other deployments; this one never began.
    let (dir, _) = project(SMALL);
    let o = run(fabrik(dir.path()).args(["resume", "never-started"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("nothing to resume: no run of never-started is in the journal")
            && out.contains("next:    fabrik apply SPEC"),
        "{out}"
    );
}

/// `fabrik journal export | head -1` (and `status`, `history` piped to a
/// reader that stops early) ends quietly with success: the reader had
/// enough. The export is far larger than a pipe's buffer, so the writes
/// after the reader left do fail.
#[test]
fn a_reader_that_stops_early_ends_the_command_quietly() {
    use std::io::BufRead as _;
    let (dir, _) = project(Shape {
        deployments: 40,
        runs: 5,
        records: 2,
        seed: 3,
    });
    let mut child = fabrik(dir.path())
        .args(["journal", "export", "--format", "ndjson"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with('{'), "{first}");
    // The reader is gone (its end of the pipe dropped with it).
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "", "nothing said about the closed pipe");
}

/// An export of a deployment or run the journal does not have fails,
/// naming it, instead of writing an empty export.
#[test]
fn an_export_of_an_unknown_deployment_or_run_fails_naming_it() {
    let (dir, _) = project(SMALL);
    let o = run(fabrik(dir.path()).args(["journal", "export", "--deployment", "nope"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no deployment named nope"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");
    let o =
        run(fabrik(dir.path()).args(["journal", "export", "--run", "0000000000005g00000000zzzz"]));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("no run"), "{}", stderr(&o));
}
