//! An update that fails is undone: what the run changed goes back to what
//! the last completed run recorded, and the app answers as before.

use fabrik::sandbox::FaultConfig;
use serde_json::Value;

use super::{LiveSandbox, Policies, Policy, Project, Spec, of_type};

/// The world without the application's deployment history (a restore is a
/// new deployment of the old version, so the history only grows).
fn without_history(dump: &Value) -> Value {
    let mut d = dump.clone();
    for a in d["coolify"]["applications"].as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("deployments");
    }
    d
}

/// What the app at `https://shop.example.com/` answers.
fn answer(p: &Project) -> (u16, String) {
    let sandbox = LiveSandbox::start(&p.data(), FaultConfig::default());
    sandbox.get("https://shop.example.com/")
}

fn deployed(dump: &Value) -> Vec<String> {
    dump["coolify"]["applications"][0]["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["deployed"].as_str().unwrap().to_owned())
        .collect()
}

/// v1 runs; v2 changes the image tag and an env var and fails its health
/// check. The application is restored to v1 (tag and env) and deployed
/// again, the run exits 5, the app answers exactly as before, and the spec
/// of v1 plans no changes.
#[test]
fn a_failed_update_restores_the_previous_version() {
    let v1 = Spec::default();
    let p = Project::new(&v1);
    p.apply(None, &[]).expect(0);
    let before = p.dump();
    let (status, body) = answer(&p);
    assert_eq!(status, 200);
    assert!(body.contains("traefik/whoami:v1.10"), "{body}");

    let v2 = Spec {
        tag: "v1.11",
        greeting: "bonjour",
        ..v1.clone()
    };
    p.write(&v2);
    let ran = p.apply(Some("health_fail=true"), &[]);
    ran.expect(5);
    assert!(ran.out.starts_with("failed in VERIFYING:"), "{}", ran.out);
    assert!(ran.next().is_empty(), "{}", ran.out);

    assert_eq!(answer(&p), (status, body), "the app answers as before");
    let after = p.dump();
    assert_eq!(
        without_history(&after),
        without_history(&before),
        "the world is v1's again"
    );
    assert_eq!(
        deployed(&after),
        [
            "image traefik/whoami:v1.10",
            "image traefik/whoami:v1.11",
            "image traefik/whoami:v1.10"
        ]
    );

    let events = p.events();
    let planned = of_type(&events, "rollback_planned");
    let steps = planned.last().unwrap()["payload"]["steps"]
        .as_array()
        .unwrap();
    assert_eq!(steps.len(), 1, "{steps:?}");
    assert_eq!(steps[0]["resource"], "app");
    assert_eq!(steps[0]["action"], "restore");
    assert!(
        steps[0]["restore_to"]["source"]
            .to_string()
            .contains("v1.10"),
        "{}",
        steps[0]
    );
    assert!(
        of_type(&events, "resource_updated")
            .iter()
            .any(|e| e["payload"]["restored"] == true)
    );

    // The journal knows it is v1 again.
    p.write(&v1);
    let plan = p.run(None, &["plan", "spec.yaml", "--detailed-exitcode"]);
    plan.expect(0);
    assert!(plan.out.contains("no changes"), "{}", plan.out);
    p.assert_journal_verifies();
}

/// v2 also changes the A record's address (in PROVISIONING, before the
/// app). With `dns: manual` the record's restore waits for a person (exit
/// 6); the printed `fabrik rollback` restores it and the world is v1's.
/// With `dns: auto` everything is restored at once (exit 5).
#[test]
fn a_failed_update_restores_records_by_policy() {
    for dns in [Policy::Manual, Policy::Auto] {
        let policies = Policies {
            dns,
            ..Policies::DEFAULT
        };
        let v1 = Spec::with_policies(policies);
        let p = Project::new(&v1);
        p.apply(None, &[]).expect(0);
        let before = p.dump();
        let (status, body) = answer(&p);

        let v2 = Spec {
            tag: "v1.11",
            address: "203.0.113.20",
            ..v1.clone()
        };
        p.write(&v2);
        let ran = p.apply(Some("health_fail=true"), &[]);
        assert_eq!(
            answer(&p),
            (status, body.clone()),
            "the app answers as before"
        );
        if dns == Policy::Manual {
            ran.expect(6);
            let world = p.world();
            assert!(
                world.contains("dns A shop.example.com 203.0.113.20 shop"),
                "the record keeps v2's address until a person decides: {world:?}"
            );
            let next = ran.next();
            assert_eq!(next, [format!("fabrik rollback {}", ran.run_id())]);
            p.run_printed(&next[0], &["--yes"]).expect(0);
        } else {
            ran.expect(5);
        }
        assert_eq!(
            without_history(&p.dump()),
            without_history(&before),
            "dns {dns:?}: the world is v1's again"
        );
        p.assert_journal_verifies();
    }
}
