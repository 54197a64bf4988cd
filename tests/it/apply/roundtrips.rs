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
