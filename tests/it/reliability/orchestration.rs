//! Behaviour of the orchestration (planner, engine, rollback, resume)
//! that the other suites left unchecked, found while measuring coverage or
//! sweeping for leaks.

use crate::faults::{Project, Spec};
use crate::support::{fabrik, run, stderr};

/// Regression: an update whose env write failed after the application's
/// fields were changed (image tag patched, then a 422 on the env vars)
/// was reported "rolled back: 0 undone" (exit 5) while Coolify kept the
/// new image tag. The half-updated application is now restored.
#[test]
fn an_update_that_fails_half_way_is_restored_by_the_rollback() {
    let v1 = Spec::default();
    let p = Project::new(&v1);
    p.apply(None, &[]).expect(0);
    let app = |p: &Project| p.dump()["coolify"]["applications"][0].clone();
    assert_eq!(app(&p)["image_tag"], "v1.10");

    let v2 = Spec {
        tag: "v1.11",
        greeting: "bonjour",
        ..Spec::default()
    };
    p.write(&v2);
    // The env write is refused (the sandbox's 422 quoting the values);
    // the image tag was patched just before.
    let ran = p.apply(Some("echo_422=true"), &[]);
    ran.expect(5);
    assert!(ran.out.contains("1 undone"), "{}", ran.out);
    assert_eq!(app(&p)["image_tag"], "v1.10", "the image tag is restored");
    let events = p.events();
    let failed = crate::faults::of_type(&events, "resource_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["payload"]["outcome_unknown"], true);
    let restored = crate::faults::of_type(&events, "resource_updated");
    assert!(
        restored
            .iter()
            .any(|e| e["payload"]["restored"] == true && e["payload"]["resource"] == "app"),
        "{restored:?}"
    );
    p.assert_journal_verifies();

    // Without the fault, the update goes through.
    p.apply(None, &[]).expect(0);
    assert_eq!(app(&p)["image_tag"], "v1.11");
}

/// A call to the in-process sandbox's Coolify or Cloudflare API, as an
/// operator's hand would make it.
fn by_hand(
    sandbox: &crate::faults::LiveSandbox,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> serde_json::Value {
    let token = token.to_owned();
    sandbox.block_on(async move {
        let mut r = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .request(method, url)
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.json().await.unwrap_or(serde_json::Value::Null)
    })
}

/// `apply --refresh` looks at the remote side: a DNS record changed by
/// hand and an application deleted by hand are found (a plain apply sees
/// nothing: the journal says all is well) and repaired; the journal
/// verifies afterwards.
#[test]
fn apply_refresh_finds_and_repairs_drift_made_by_hand() {
    use fabrik::sandbox::FaultConfig;
    let spec = Spec::default();
    let p = Project::new(&spec);
    p.apply(None, &[]).expect(0);
    let dump = p.dump();
    let app_uuid = dump["coolify"]["applications"][0]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    {
        let sandbox = crate::faults::LiveSandbox::start(&p.data(), FaultConfig::default());
        let h = sandbox.handle();
        let zone = sandbox.zone_id();
        let record = dump["cloudflare"]["zones"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|z| z["records"].as_array().unwrap().clone())
            .find(|r| r["type"] == "A")
            .unwrap();
        by_hand(
            &sandbox,
            reqwest::Method::PATCH,
            format!(
                "{}/zones/{zone}/dns_records/{}",
                h.cloudflare_url,
                record["id"].as_str().unwrap()
            ),
            h.credentials.cloudflare_token.expose(),
            Some(serde_json::json!({"content": "198.51.100.99"})),
        );
        by_hand(
            &sandbox,
            reqwest::Method::DELETE,
            format!("{}/api/v1/applications/{app_uuid}", h.coolify_url),
            h.credentials.coolify_token.expose(),
            None,
        );
    }
    // Coolify deletes asynchronously; wait until the application is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !p.dump()["coolify"]["applications"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the app was never deleted"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // Offline (`--refresh=false`): the journal says nothing changed.
    let plain = p.apply(None, &["--refresh=false"]);
    plain.expect(0);
    assert!(plain.out.contains("no changes"), "{}", plain.out);

    let refreshed = p.apply(None, &["--refresh"]);
    refreshed.expect(0);
    assert!(
        refreshed.out.contains("dns:A:shop.example.com: update")
            && refreshed.out.contains("app: create"),
        "{}",
        refreshed.out
    );
    let world = p.world();
    assert!(
        world.contains("dns A shop.example.com 203.0.113.10 shop"),
        "{world:?}"
    );
    assert!(world.contains("app shop shop"), "{world:?}");
    let apps = p.dump()["coolify"]["applications"].clone();
    assert_eq!(apps.as_array().unwrap().len(), 1);
    assert_ne!(apps[0]["uuid"], app_uuid.as_str(), "a new application");
    // And now everything is in sync: a refresh checks and changes nothing.
    let before = p.dump();
    let again = p.apply(None, &["--refresh"]);
    again.expect(0);
    assert!(again.out.starts_with("no changes"), "{}", again.out);
    assert_eq!(p.dump(), before);
    p.assert_journal_verifies();
}

/// A DNS record changed by a failed update stays changed under the
/// default `manual` policy (exit 6 naming the command), and `fabrik
/// rollback` as printed puts its old content back.
#[test]
fn a_dns_update_left_by_the_manual_policy_is_restored_by_fabrik_rollback() {
    let v1 = Spec::default();
    let p = Project::new(&v1);
    p.apply(None, &[]).expect(0);
    let v2 = Spec {
        address: "203.0.113.77",
        ..Spec::default()
    };
    p.write(&v2);
    let ran = p.apply(Some("health_fail=true"), &[]);
    ran.expect(6);
    assert!(
        p.world()
            .contains("dns A shop.example.com 203.0.113.77 shop")
    );
    let next = ran.next();
    let rollback = next
        .iter()
        .find(|c| c.starts_with("fabrik rollback "))
        .unwrap_or_else(|| panic!("{}", ran.out));
    p.run_printed(rollback, &["--yes"]).expect(0);
    let world = p.world();
    assert!(
        world.contains("dns A shop.example.com 203.0.113.10 shop"),
        "{world:?}"
    );
    let events = p.events();
    assert!(
        crate::faults::of_type(&events, "resource_updated")
            .iter()
            .any(|e| e["payload"]["restored"] == true
                && e["payload"]["resource"] == "dns:A:shop.example.com"),
        "the restore is journaled"
    );
    // Nothing is left to do.
    p.run_printed(rollback, &["--yes"]).expect(0);
    p.assert_journal_verifies();
}

/// Cached projections changed outside Fabrik are found by `replay
/// --verify` (exit 7), and `state migrate` to a new file rebuilds them
/// from the events: the copy verifies and shows the true state.
#[test]
fn damaged_projections_are_rebuilt_by_migrating_the_journal() {
    let p = Project::new(&Spec::default());
    p.apply(None, &[]).expect(0);
    let status = p.run(None, &["--output", "json", "status", "shop"]);
    status.expect(0);
    let db = p.path().join(".fabrik/state.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "UPDATE deployment_projection SET body = replace(body, '\"status\":\"present\"', '\"status\":\"deleted\"')",
    )
    .unwrap();
    drop(c);
    p.run(None, &["replay", "--verify"]).expect(7);
    let moved = p.run(None, &["state", "migrate", "--to", "repaired.db"]);
    moved.expect(0);
    let verified = p.run(None, &["--state", "repaired.db", "replay", "--verify"]);
    verified.expect(0);
    let repaired = p.run(
        None,
        &[
            "--state",
            "repaired.db",
            "--output",
            "json",
            "status",
            "shop",
        ],
    );
    repaired.expect(0);
    let a: serde_json::Value = serde_json::from_str(&status.out).unwrap();
    let b: serde_json::Value = serde_json::from_str(&repaired.out).unwrap();
    assert_eq!(a["deployment"]["resources"], b["deployment"]["resources"]);
}

/// Issue: Uptime Kuma's "Too frequently" answer to a call other than
/// login was taken as a refusal, so under 30% rate limiting half the
/// runs failed. Its rate limiter refuses before doing anything: the call
/// is retried with backoff, like an HTTP 429. Six seeded runs under 30%
/// rate limiting of Uptime Kuma (none of them hits the login, which waits
/// a minute) all succeed, and the journal shows the retries.
#[test]
fn uptime_kuma_rate_limits_are_waited_out() {
    let spec = super::spec("limited").replace(
        "    interval: 60s\n",
        "    interval: 60s\n  - name: limited-home\n    url: https://limited.example.com/\n    interval: 60s\nretry:\n  attempts: 6\n  initial_delay: 10ms\n  max_delay: 50ms\n",
    );
    let mut retried = 0;
    for seed in 1..=6 {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.yaml"), &spec).unwrap();
        let o = run(fabrik(dir.path())
            .args(["apply", "spec.yaml", "--sandbox"])
            .env(
                "FABRIK_SANDBOX_FAULTS",
                format!("rate_limit_rate=0.3,target=kuma,seed={seed}"),
            ));
        assert_eq!(o.status.code(), Some(0), "seed {seed}: {}", stderr(&o));
        retried += crate::support::journal_events(dir.path())
            .iter()
            .filter(|e| {
                e["type"] == "attempt_failed"
                    && e["payload"]["reason"] == "rate limited"
                    && e["payload"]["operation"]
                        .as_str()
                        .is_some_and(|op| op.starts_with("uptime kuma"))
            })
            .count();
    }
    assert!(retried > 0, "the rate limiter refused some calls");
    eprintln!("uptime kuma under 30% rate limiting: 6 runs succeeded, {retried} calls retried");
}

/// Issue: when tagging a monitor failed after Uptime Kuma had added it,
/// the error was journaled as a failed create: `status` said absent, the
/// rollback left the monitor in place (and said it undid the run), and
/// the next apply created a second one. A create of several calls that
/// fails after the first is journaled as created, incomplete: the monitor
/// is the run's, its rollback deletes it, and without a rollback the next
/// apply keeps (and updates) that one instead of creating another.
#[test]
fn a_monitor_added_but_not_tagged_is_owned_undone_and_never_duplicated() {
    let monitors = |dir: &std::path::Path| -> Vec<serde_json::Value> {
        crate::support::sandbox_dump(dir)["uptime_kuma"]["monitors"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let untagged = "error_rate=1,target=/socket.io/addMonitorTag";
    for rollback in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.yaml"), super::spec("tagless")).unwrap();
        let mut apply = fabrik(dir.path());
        apply
            .args(["apply", "spec.yaml", "--sandbox"])
            .env("FABRIK_SANDBOX_FAULTS", untagged);
        if !rollback {
            apply.arg("--no-rollback");
        }
        let o = run(&mut apply);
        assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
        let created: Vec<serde_json::Value> = crate::support::journal_events(dir.path())
            .into_iter()
            .filter(|e| e["type"] == "resource_created" && e["payload"]["kind"] == "monitor")
            .collect();
        assert_eq!(created.len(), 1, "the add is journaled: {created:?}");
        assert!(
            created[0]["payload"]["incomplete"]
                .as_str()
                .is_some_and(|e| e.contains("tag monitor")),
            "as incomplete, naming the call that failed: {}",
            created[0]
        );
        if rollback {
            assert!(
                monitors(dir.path()).is_empty(),
                "the rollback deleted the monitor: {:?}",
                monitors(dir.path())
            );
            continue;
        }
        let left = monitors(dir.path());
        assert_eq!(left.len(), 1, "{left:?}");
        let o = run(fabrik(dir.path()).args(["--output", "json", "status", "tagless"]));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let status: serde_json::Value =
            serde_json::from_str(crate::support::stdout(&o).trim()).unwrap();
        let monitor = status["deployment"]["resources"]
            .as_object()
            .unwrap()
            .values()
            .find(|r| r["kind"] == "monitor")
            .cloned()
            .unwrap();
        assert_eq!(monitor["status"], "present", "{monitor}");
        assert_eq!(
            monitor["remote_id"].as_str(),
            Some(left[0]["id"].to_string().as_str()),
            "{monitor}"
        );
        let o = run(fabrik(dir.path()).args(["apply", "spec.yaml", "--sandbox"]));
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let after = monitors(dir.path());
        assert_eq!(after.len(), 1, "no second monitor: {after:?}");
        assert_eq!(after[0]["id"], left[0]["id"]);
    }
}
