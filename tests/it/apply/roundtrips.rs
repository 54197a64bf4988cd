//! Requests a command makes, read from the sandbox's request trace
//! (`FABRIK_SANDBOX_TRACE`): what it needs, not more.

use super::{Project, ok};

fn traced(p: &Project, args: &[&str]) -> Vec<serde_json::Value> {
    let trace = p.path().join("trace.ndjson");
    let _ = std::fs::remove_file(&trace);
    ok(&crate::support::run(
        p.cmd().env("FABRIK_SANDBOX_TRACE", &trace).args(args),
    ));
    std::fs::read_to_string(&trace)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn count(trace: &[serde_json::Value], path: &str) -> usize {
    trace
        .iter()
        .filter(|r| r["path"].as_str().unwrap().starts_with(path))
        .count()
}

/// An application this run created has no deployment yet (it is created
/// with `instant_deploy` false): its deploy does not read the list of its
/// deployments first. One that existed before does (the baseline that
/// makes a resumed deploy happen exactly once).
#[test]
fn a_new_application_is_deployed_without_reading_its_deployments_first() {
    let p = Project::example("quickstart", &[]);
    let first = traced(&p, &["apply", "spec.yaml", "--sandbox"]);
    assert_eq!(
        count(&first, "/api/v1/deployments/applications/"),
        0,
        "{first:?}"
    );
    let deploys = first
        .iter()
        .filter(|r| r["path"] == "/api/v1/deploy")
        .count();
    assert_eq!(deploys, 2, "the permission probe and the deploy: {first:?}");
    p.edit("spec.yaml", "whoami:v1.10", "whoami:v1.9");
    let update = traced(&p, &["apply", "spec.yaml", "--sandbox"]);
    assert_eq!(
        count(&update, "/api/v1/deployments/applications/"),
        1,
        "{update:?}"
    );
}

/// Like [`traced`], with every provider request answered `latency_ms`
/// late: requests made side by side then arrive within one latency of
/// each other, and one that waited for another's answer a latency or more
/// after it.
fn traced_late(p: &Project, args: &[&str], latency_ms: u64) -> Vec<serde_json::Value> {
    let trace = p.path().join("trace.ndjson");
    let _ = std::fs::remove_file(&trace);
    ok(&crate::support::run(
        p.cmd()
            .env("FABRIK_SANDBOX_TRACE", &trace)
            .env("FABRIK_SANDBOX_FAULTS", format!("latency_ms={latency_ms}"))
            .args(args),
    ));
    std::fs::read_to_string(&trace)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// When the first request of `trace` that `is` matches arrived (ms).
fn arrival(trace: &[serde_json::Value], is: impl Fn(&str, bool) -> bool) -> u64 {
    trace
        .iter()
        .find(|r| is(r["path"].as_str().unwrap(), r["write"] == true))
        .unwrap_or_else(|| panic!("no such request: {trace:?}"))["ms"]
        .as_u64()
        .unwrap()
}

/// Reads (not writes) of exactly `path`.
fn reads_of(trace: &[serde_json::Value], path: &str) -> usize {
    trace
        .iter()
        .filter(|r| r["path"] == path && r["write"] == false)
        .count()
}

const LATE: u64 = 400;

/// The DNS record and the application do not wait for each other: their
/// creates go out together (the deployment, which asks for a certificate,
/// still waits for the record).
#[test]
fn the_record_and_the_application_are_created_side_by_side() {
    let p = Project::example("quickstart", &[]);
    let t = traced_late(&p, &["apply", "spec.yaml", "--sandbox"], LATE);
    let record = arrival(&t, |path, w| w && path.ends_with("/dns_records"));
    let app = arrival(&t, |path, w| {
        w && path == "/api/v1/applications/dockerimage"
    });
    // The last: the first is the preflight's permission probe.
    let deploy = t
        .iter()
        .filter(|r| r["write"] == true && r["path"] == "/api/v1/deploy")
        .filter_map(|r| r["ms"].as_u64())
        .max()
        .unwrap();
    assert!(
        record.abs_diff(app) < LATE,
        "record created at {record} ms, application at {app} ms: one waited for the other"
    );
    assert!(
        deploy >= record + LATE,
        "deployed before the record existed: {t:?}"
    );
}

/// A first apply looks at what the record's name holds beside the
/// preflight's second round (once the zone is known), not after it, and
/// only once.
#[test]
fn a_new_name_is_looked_at_once_beside_the_preflight() {
    let p = Project::example("quickstart", &[]);
    let t = traced_late(&p, &["apply", "spec.yaml", "--sandbox"], LATE);
    let look = arrival(&t, |path, w| !w && path.ends_with("/dns_records"));
    let environments = arrival(&t, |path, w| !w && path.ends_with("/environments"));
    assert!(
        look.abs_diff(environments) < LATE,
        "the name looked at {look} ms, the environments at {environments} ms"
    );
    let looks = t
        .iter()
        .filter(|r| r["write"] == false && r["path"].as_str().unwrap().ends_with("/dns_records"))
        .count();
    assert_eq!(looks, 1, "{t:?}");
}

/// An update reads the application, its env vars and the monitors once
/// each (the drift check, the update and the env reconcile share what was
/// read), and reads the application's deployments beside the change.
#[test]
fn an_update_reads_nothing_twice() {
    let p = Project::example("quickstart", &[]);
    ok(&p.apply());
    p.edit("spec.yaml", "whoami:v1.10", "whoami:v1.9");
    let t = traced_late(&p, &["apply", "spec.yaml", "--sandbox"], LATE);
    let patch = t
        .iter()
        .find(|r| {
            r["write"] == true
                && r["path"]
                    .as_str()
                    .unwrap()
                    .starts_with("/api/v1/applications/")
                && !r["path"].as_str().unwrap().contains("probe")
        })
        .unwrap_or_else(|| panic!("no update: {t:?}"));
    let app = patch["path"].as_str().unwrap();
    assert_eq!(reads_of(&t, app), 1, "{t:?}");
    assert_eq!(reads_of(&t, &format!("{app}/envs")), 1, "{t:?}");
    assert_eq!(reads_of(&t, "/socket.io/getMonitorList"), 1, "{t:?}");
    let uuid = app.rsplit('/').next().unwrap();
    let baseline = arrival(&t, |path, w| {
        !w && path == format!("/api/v1/deployments/applications/{uuid}")
    });
    assert!(
        baseline.abs_diff(patch["ms"].as_u64().unwrap()) < LATE,
        "the deployments were read after the change, not beside it: {t:?}"
    );
}

/// A destroy deletes the monitor, the application and the record at
/// once: nothing is left that one depends on.
#[test]
fn destroy_deletes_everything_at_once() {
    let p = Project::example("quickstart", &[]);
    ok(&p.apply());
    let t = traced_late(&p, &["destroy", "quickstart", "--sandbox"], LATE);
    let deletes: Vec<u64> = t
        .iter()
        .filter(|r| {
            r["write"] == true
                && !r["path"].as_str().unwrap().contains("probe")
                && r["path"] != "/api/v1/deploy"
        })
        .map(|r| r["ms"].as_u64().unwrap())
        .collect();
    assert_eq!(deletes.len(), 3, "{t:?}");
    let (first, last) = (deletes.iter().min().unwrap(), deletes.iter().max().unwrap());
    assert!(
        last - first < LATE,
        "the deletes waited for each other: {t:?}"
    );
}
