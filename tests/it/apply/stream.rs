//! `fabrik --output json apply` against its documented schema,
//! `schema/progress.schema.json` (which borrows the journal export's
//! definitions), and against the journal it reports on.

use std::path::Path;

use serde_json::{Value, json};

use super::{Project, ok};
use crate::support::{run, stderr, stdout};

/// Where the journal export schema is known to the progress schema.
const JOURNAL_EXPORT_ID: &str = "https://fabrik.dev/schema/journal-export.schema.json";

fn schema_file(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A validator for one line of the stream, or (with `def`) for one of the
/// schema's definitions.
fn validator(def: Option<&str>) -> jsonschema::Validator {
    let journal = schema_file("journal-export.schema.json");
    let mut progress = schema_file("progress.schema.json");
    jsonschema::meta::validate(&progress).unwrap();
    if let Some(def) = def {
        let o = progress.as_object_mut().unwrap();
        o.remove("oneOf");
        o.insert("$ref".into(), json!(format!("#/$defs/{def}")));
    }
    let registry = jsonschema::Registry::new()
        .add(JOURNAL_EXPORT_ID, &journal)
        .unwrap()
        .prepare()
        .unwrap();
    jsonschema::options()
        .with_registry(&registry)
        .build(&progress)
        .unwrap()
}

/// The schema's complaints about `line`, one per line.
fn problems(v: &jsonschema::Validator, line: &Value) -> Vec<String> {
    v.iter_errors(line)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Checks every line of a stream against the schema and against the
/// journal, and returns its lines. Events come first, in journal order and
/// exactly as journaled; the last line is the result or the error.
fn check_stream(p: &Project, o: &std::process::Output) -> Vec<Value> {
    let v = validator(None);
    let text = stdout(o);
    assert!(text.ends_with('\n'), "{text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| {
            let line: Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {e}: {l}"));
            let errors = problems(&v, &line);
            assert!(errors.is_empty(), "{l}\n{}", errors.join("\n"));
            line
        })
        .collect();
    let (last, events) = lines.split_last().expect("a stream has a last line");
    assert!(events.iter().all(|e| e["kind"] == "event"), "{text}");
    assert_ne!(last["kind"], "event", "the stream ends with its outcome");
    assert_eq!(
        last["exit_code"],
        json!(o.status.code().unwrap()),
        "the last line carries the exit code"
    );
    if events.is_empty() {
        // Stopped before a run was journaled.
        assert!(last.get("error").is_some(), "{text}");
        return lines;
    }
    let run = events[0]["run"].as_str().unwrap();
    assert!(events.iter().all(|e| e["run"] == run), "{text}");
    if last["kind"] == "result" {
        assert_eq!(last["run"], run);
    }
    let export = p.export(run);
    let journaled: Vec<Value> = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!([e["seq"], e["at"], e["type"], e["payload"]]))
        .collect();
    let streamed: Vec<Value> = events
        .iter()
        .map(|e| json!([e["seq"], e["at"], e["type"], e["payload"]]))
        .collect();
    assert_eq!(streamed, journaled, "the stream is the run's journal");
    lines
}

fn types(lines: &[Value]) -> Vec<&str> {
    lines.iter().filter_map(|l| l["type"].as_str()).collect()
}

fn apply_json(p: &Project) -> std::process::Output {
    p.run(&["--output", "json", "apply", "spec.yaml", "--sandbox"])
}

#[test]
fn an_apply_then_a_re_apply() {
    let p = Project::example("quickstart", &[]);
    let first = apply_json(&p);
    ok(&first);
    let lines = check_stream(&p, &first);
    let t = types(&lines);
    for expected in [
        "run_started",
        "lock_acquired",
        "spec_validated",
        "secret_resolved",
        "resource_intent",
        "resource_created",
        "deploy_requested",
        "deploy_triggered",
        "deployment_observed",
        "verification_passed",
        "run_finished",
        "lock_released",
    ] {
        assert!(t.contains(&expected), "no {expected} in {t:?}");
    }
    let result = lines.last().unwrap();
    assert_eq!(result["kind"], "result");
    assert_eq!(result["outcome"], "succeeded");
    assert_eq!(result["urls"], json!(["https://quickstart.example.com"]));
    // Progress is data here: nothing of it on stderr.
    assert!(stderr(&first).is_empty(), "{}", stderr(&first));

    let again = apply_json(&p);
    ok(&again);
    let lines = check_stream(&p, &again);
    assert_eq!(
        types(&lines),
        [
            "run_started",
            "run_state_changed",
            "spec_validated",
            "run_state_changed",
            "run_finished",
            "journal_checkpoint"
        ]
    );
    assert_eq!(lines.last().unwrap()["outcome"], "no_changes");
}

#[test]
fn a_run_that_rolls_back() {
    // Every health check fails: verification gives up after its timeout
    // and the run undoes what it created (DNS too, by this policy).
    let p = Project::example(
        "quickstart",
        &[
            ("timeout: 2m", "timeout: 1s"),
            ("monitors:\n", "rollback:\n  dns: auto\n\nmonitors:\n"),
        ],
    );
    let o = run(p
        .cmd()
        .args(["--output", "json", "apply", "spec.yaml", "--sandbox"])
        .env(fabrik::sandbox::FAULTS_ENV, "health_fail=true"));
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let lines = check_stream(&p, &o);
    let t = types(&lines);
    for expected in [
        "verification_failed",
        "rollback_planned",
        "resource_deleted",
        "rollback_step_done",
    ] {
        assert!(t.contains(&expected), "no {expected} in {t:?}");
    }
    let result = lines.last().unwrap();
    assert_eq!(result["outcome"], "rolled_back");
    assert!(
        result["message"].as_str().unwrap().contains("rolled back"),
        "{result}"
    );
    assert_eq!(p.dump()["coolify"]["applications"], json!([]));
}

#[test]
fn a_run_stopped_by_its_preflight_ends_with_an_error_line() {
    let p = Project::example("quickstart", &[("server: localhost", "server: nowhere")]);
    let o = apply_json(&p);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines = check_stream(&p, &o);
    let last = lines.last().unwrap();
    assert_eq!(last["kind"], "error", "{last}");
    assert!(
        last["error"].as_str().unwrap().contains("\"nowhere\""),
        "{last}"
    );
    assert!(!last["hints"].as_array().unwrap().is_empty(), "{last}");
    // The run ends failed, sealed by the checkpoint after its
    // `run_finished`, and its lock is released in the journal too.
    let finished = &lines[lines.len() - 4];
    assert_eq!(finished["type"], "run_finished");
    assert_eq!(finished["payload"]["outcome"], "failed");
    assert_eq!(lines[lines.len() - 3]["type"], "journal_checkpoint");
    assert_eq!(lines[lines.len() - 2]["type"], "lock_released");
    // The error is rendered for people on stderr as well.
    assert!(stderr(&o).contains("error: "), "{}", stderr(&o));
}

#[test]
fn an_invalid_spec_is_one_error_line() {
    let p = Project::example("quickstart", &[("port: 80", "port: 99999")]);
    let o = apply_json(&p);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let lines = check_stream(&p, &o);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0]["error"]
            .as_str()
            .unwrap()
            .contains("not a valid spec"),
        "{}",
        lines[0]
    );
    let diags = lines[0]["diagnostics"].as_array().unwrap();
    assert!(
        diags
            .iter()
            .any(|d| d["line"].as_u64().is_some() && d["message"].as_str().is_some()),
        "{diags:?}"
    );
    assert!(!p.path().join(".fabrik").exists(), "nothing was run");
}

#[test]
fn the_plan_document_matches_its_definition() {
    let v = validator(Some("plan"));
    let p = Project::example("quickstart", &[]);
    let fresh = p.json(&["plan", "spec.yaml"]);
    assert!(
        problems(&v, &fresh).is_empty(),
        "{:?}",
        problems(&v, &fresh)
    );
    assert_eq!(fresh["kind"], "plan");
    ok(&apply_json(&p));
    p.edit("spec.yaml", "whoami:v1.10", "whoami:v1.11");
    let change = p.json(&["plan", "spec.yaml"]);
    assert!(
        problems(&v, &change).is_empty(),
        "{:?}",
        problems(&v, &change)
    );
    let app = change["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "app")
        .unwrap();
    assert_eq!(app["action"], "update");
    assert_eq!(
        app["changes"],
        json!([{"path": "source.tag", "from": "v1.10", "to": "v1.11", "secret": false}])
    );
    // The definition is not a stream line.
    assert!(!problems(&validator(None), &change).is_empty());
}

/// One payload of every event type, every optional field set, as the
/// journal's JSON form. A new event type fails this test until it has a
/// sample here and a payload definition in the schema.
fn samples() -> Vec<(&'static str, Value)> {
    let run = "01jdx3v5q6m7n8p9r0s1t2v3w4";
    let hash = "ab".repeat(32);
    let holder = json!({"run": run, "pid": 42, "host": "ci-7", "user": "deploy", "command": "apply", "since": "2026-11-27T11:00:00.000000Z"});
    let mark = json!({"deployment": "blog", "run": run});
    let step = json!({"resource": "app", "kind": "application", "action": "restore", "remote_id": "u1", "policy": "manual", "restore_to": {"name": "blog"}});
    vec![
        (
            "run_started",
            json!({"command": "apply", "spec_path": "spec.yaml", "spec_hash": hash, "user": "deploy", "host": "ci-7", "pid": 42, "fabrik_version": "0.1.0",
            "options": {"no_rollback": true, "sandbox": true, "refresh": true, "target_run": run, "policies": {"coolify": "auto", "dns": "manual", "monitors": "never"},
                "shared_hash": hash, "promoted_from": {"deployment": "blog@staging", "run": run, "digest": format!("sha256:{hash}")}}}),
        ),
        (
            "run_state_changed",
            json!({"from": "VERIFYING", "to": "ROLLING_BACK", "reason": "check failed"}),
        ),
        (
            "run_finished",
            json!({"outcome": "needs_attention", "exit_code": 6, "message": "1 pending"}),
        ),
        (
            "run_resumed",
            json!({"pid": 43, "host": "ci-8", "user": "deploy"}),
        ),
        (
            "run_interrupted",
            json!({"reason": "interrupted by Ctrl-C", "resume_command": format!("fabrik resume {run}")}),
        ),
        (
            "spec_validated",
            json!({"spec_hash": hash, "warnings": ["spec.yaml:3:1: warning: x"]}),
        ),
        (
            "spec_rejected",
            json!({"problems": ["spec.yaml:1:1: error: x"]}),
        ),
        (
            "secret_resolved",
            json!({"name": "API_TOKEN", "source": "dotenv", "fingerprint": hash}),
        ),
        (
            "image_resolved",
            json!({"image": "ghcr.io/acme/web:1.4.2", "digest": format!("sha256:{hash}")}),
        ),
        (
            "resource_intent",
            json!({"resource": "dns:A:blog.example.com", "kind": "dns_record", "action": "update", "remote_id": "r1", "desired": {"content": "203.0.113.1"}, "desired_hash": hash, "mark": mark}),
        ),
        (
            "resource_created",
            json!({"resource": "monitor:blog", "kind": "monitor", "remote_id": "7", "mark": mark, "desired_hash": hash, "adopted": true}),
        ),
        (
            "resource_updated",
            json!({"resource": "app", "kind": "application", "remote_id": "u1", "desired_hash": hash, "changed": ["fqdn"], "restored": true}),
        ),
        (
            "resource_deleted",
            json!({"resource": "app", "kind": "application", "remote_id": "u1", "already_gone": true}),
        ),
        (
            "resource_failed",
            json!({"resource": "app", "kind": "application", "action": "create", "error": "HTTP 500", "outcome_unknown": true}),
        ),
        (
            "resource_reconciled",
            json!({"resource": "app", "kind": "application", "action": "create", "finding": "adopted", "remote_id": "u1"}),
        ),
        (
            "attempt_failed",
            json!({"operation": "cloudflare create_record", "attempt": 1, "reason": "HTTP 502", "delay_ms": 250}),
        ),
        (
            "deploy_requested",
            json!({"resource": "app", "remote_id": "u1", "force": true}),
        ),
        (
            "deploy_triggered",
            json!({"resource": "app", "remote_id": "u1", "deployment_uuid": "d1", "force": true}),
        ),
        (
            "deployment_observed",
            json!({"resource": "app", "deployment_uuid": "d1", "status": "failed", "elapsed_ms": 1200, "url": "https://coolify.example.com/x"}),
        ),
        (
            "verification_passed",
            json!({"check": "tls blog.example.com", "evidence": {"days_left": 60}}),
        ),
        (
            "verification_failed",
            json!({"check": "http https://blog.example.com/", "evidence": {"status": 503}, "error": "answered 503"}),
        ),
        (
            "rollback_planned",
            json!({"target_run": run, "steps": [step]}),
        ),
        (
            "rollback_step_done",
            json!({"resource": "app", "action": "delete"}),
        ),
        (
            "rollback_step_skipped",
            json!({"resource": "dns:A:blog.example.com", "policy": "manual", "reason": "policy is manual", "command": format!("fabrik rollback {run}")}),
        ),
        (
            "rollback_step_failed",
            json!({"resource": "app", "action": "delete", "error": "HTTP 500"}),
        ),
        (
            "notification_sent",
            json!({"channel": "deploys", "event": "succeeded"}),
        ),
        (
            "notification_failed",
            json!({"channel": "deploys", "event": "failed", "error": "HTTP 404"}),
        ),
        ("lock_acquired", json!({"holder": holder})),
        ("lock_released", json!({"run": run})),
        (
            "lock_broken",
            json!({"previous": holder, "reason": "holder process is gone"}),
        ),
        (
            "journal_checkpoint",
            json!({"seq": 41, "head": hash, "key": "0123456789abcdef", "mac": hash}),
        ),
    ]
}

/// The line `fabrik --output json` prints for an event of `type_name`
/// with `payload` (decoded by the event model first, so the sample is one
/// the code accepts and the line is one the code writes).
fn line_for(type_name: &str, payload: Value) -> Value {
    use fabrik::event::{EVENT_VERSION, Event, RecordedEvent};
    use fabrik::id::{DeploymentId, Digest, Seq, StreamVersion};
    let event = Event::from_value(type_name, EVENT_VERSION, payload)
        .unwrap_or_else(|e| panic!("{type_name}: {e:?}"));
    fabrik::cli::progress::event_json(&RecordedEvent {
        seq: Seq(12),
        deployment: DeploymentId::new("blog").unwrap(),
        stream_version: StreamVersion(3),
        run: Some("01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap()),
        at: "2026-11-27T11:00:00.123456Z".parse().unwrap(),
        event,
        prev_hash: Digest::GENESIS,
        hash: Digest::GENESIS,
    })
}

#[test]
fn every_event_type_has_a_payload_definition() {
    let v = validator(None);
    let samples = samples();
    let mut sampled: Vec<&str> = samples.iter().map(|(t, _)| *t).collect();
    sampled.sort_unstable();
    let mut known = fabrik::event::EVENT_TYPES.to_vec();
    known.sort_unstable();
    assert_eq!(sampled, known, "one sample per event type");
    let defs = &schema_file("progress.schema.json")["$defs"];
    for (type_name, payload) in samples {
        assert!(
            defs.get(format!("payload_{type_name}")).is_some(),
            "no payload_{type_name} definition"
        );
        let line = line_for(type_name, payload);
        let errors = problems(&v, &line);
        assert!(errors.is_empty(), "{line}\n{}", errors.join("\n"));
    }
}

#[test]
fn the_check_rejects_broken_lines() {
    let v = validator(None);
    let good = line_for(
        "resource_created",
        json!({"resource": "app", "kind": "application", "remote_id": "u1",
               "mark": {"deployment": "blog", "run": "01jdx3v5q6m7n8p9r0s1t2v3w4"}}),
    );
    assert!(problems(&v, &good).is_empty(), "{good}");
    let result = json!({"kind": "result", "deployment": "blog", "run": null, "outcome": "succeeded",
                        "exit_code": 0, "message": "ok", "urls": [], "changes": ["app: create"], "next": []});
    assert!(problems(&v, &result).is_empty());

    let broken: Vec<(&str, Value)> = vec![
        ("no seq", {
            let mut l = good.clone();
            l.as_object_mut().unwrap().remove("seq");
            l
        }),
        ("unknown kind", {
            let mut l = good.clone();
            l["kind"] = json!("progress");
            l
        }),
        ("unknown event type", {
            let mut l = good.clone();
            l["type"] = json!("resource_teleported");
            l
        }),
        ("a timestamp with a zone offset", {
            let mut l = good.clone();
            l["at"] = json!("2026-11-27T12:00:00+01:00");
            l
        }),
        ("a payload field of the wrong type", {
            let mut l = good.clone();
            l["payload"]["adopted"] = json!("no");
            l
        }),
        ("a payload without a required field", {
            let mut l = good.clone();
            l["payload"].as_object_mut().unwrap().remove("remote_id");
            l
        }),
        ("an undocumented payload field", {
            let mut l = good.clone();
            l["payload"]["token"] = json!("s3cret");
            l
        }),
        ("the payload of another type", {
            let mut l = good.clone();
            l["type"] = json!("lock_released");
            l
        }),
        ("a bad run id", {
            let mut l = good.clone();
            l["run"] = json!("RUN-1");
            l
        }),
        ("an unknown outcome", {
            let mut l = result.clone();
            l["outcome"] = json!("partly");
            l
        }),
        ("an exit code outside the contract", {
            let mut l = result.clone();
            l["exit_code"] = json!(9);
            l
        }),
        ("a change without its action", {
            let mut l = result.clone();
            l["changes"] = json!(["app"]);
            l
        }),
    ];
    for (what, line) in broken {
        assert!(!problems(&v, &line).is_empty(), "{what} passed: {line}");
    }
}
