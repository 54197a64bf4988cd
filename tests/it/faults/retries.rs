//! Transient errors: the apply still succeeds, every retry is journaled
//! with its reason and delay, and nothing is created twice.
//!
//! The sandbox's fault dice are a pure function of the seed and of how
//! many requests a service has seen, so a fixed seed gives the same faults
//! to the same requests. What can vary between runs is the number of
//! deployment status reads (they are paced by the wall clock), which shifts
//! the dice of the Coolify requests after them. The tests therefore allow
//! 10 attempts per call: a call fails for good only after ten faults in a
//! row, a chance of 0.3^10 ≈ 6·10⁻⁶ per call at a 30 % error rate, whatever
//! the shift. Delays are 10 to 50 ms so that the retries cost little time.

use std::collections::BTreeSet;

use fabrik::sandbox::FaultConfig;
use serde_json::Value;

use super::{LiveSandbox, Project, Ran, Spec, of_type, shop_resources};
use crate::support::run;

fn full_world(spec: &Spec) -> BTreeSet<String> {
    shop_resources(spec).into_iter().map(|(_, l)| l).collect()
}

/// Runs `fabrik ARGS` pointed at `sandbox` through the environment (no
/// `--sandbox`: the dice and their counters live in the test).
fn against(p: &Project, sandbox: &LiveSandbox, args: &[&str]) -> Ran {
    let mut cmd = p.command(None);
    cmd.envs(sandbox.env()).args(args);
    Ran::of(run(&mut cmd))
}

/// Every remote id the journal recorded for a created resource is the id
/// of a resource in the world.
fn assert_ids_match(events: &[Value], dump: &Value) {
    let mut remote: BTreeSet<String> = BTreeSet::new();
    for z in dump["cloudflare"]["zones"].as_array().unwrap() {
        for r in z["records"].as_array().unwrap() {
            remote.insert(r["id"].as_str().unwrap().to_owned());
        }
    }
    for a in dump["coolify"]["applications"].as_array().unwrap() {
        remote.insert(a["uuid"].as_str().unwrap().to_owned());
    }
    for m in dump["uptime_kuma"]["monitors"].as_array().unwrap() {
        remote.insert(m["id"].to_string());
    }
    let created: BTreeSet<String> = of_type(events, "resource_created")
        .iter()
        .map(|e| e["payload"]["remote_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(created.len(), 4, "four resources created");
    assert_eq!(created, remote, "journaled ids are the world's ids");
}

/// 30 % of the requests to Coolify, Cloudflare and Uptime Kuma fail with a
/// server error. The apply succeeds; each fault the sandbox injected is one
/// `attempt_failed` event of the same provider (retried by the HTTP layer,
/// or, for a create that may have gone through, looked up by its mark and
/// then repeated); the world holds exactly one of each resource.
#[test]
fn thirty_percent_transient_errors_on_every_provider() {
    let spec = Spec {
        attempts: 10,
        ..Spec::default()
    };
    let p = Project::new(&spec);
    let sandbox = LiveSandbox::start(
        &p.data(),
        FaultConfig {
            seed: 9,
            error_rate: 0.3,
            ..FaultConfig::default()
        },
    );
    let ran = against(&p, &sandbox, &["apply", "spec.yaml"]);
    ran.expect(0);
    assert!(ran.out.contains("deployed and verified"), "{}", ran.out);

    let injected = sandbox.handle().injected();
    let events = p.events();
    let attempts = of_type(&events, "attempt_failed");
    for (service, prefix) in [
        ("coolify", "coolify "),
        ("cloudflare", "cloudflare "),
        ("kuma", "uptime kuma "),
    ] {
        let faults = injected.get(service).copied().unwrap_or_default();
        assert!(faults.server_errors > 0, "{service} had no fault");
        assert_eq!(faults.rate_limited + faults.lost_responses, 0);
        let journaled = attempts
            .iter()
            .filter(|e| {
                e["payload"]["operation"]
                    .as_str()
                    .unwrap()
                    .starts_with(prefix)
            })
            .count() as u64;
        assert_eq!(
            journaled, faults.server_errors,
            "{service}: every injected fault is one attempt_failed event"
        );
    }
    for e in &attempts {
        let a = &e["payload"];
        assert!(
            a["reason"].as_str().unwrap().contains("server error"),
            "{a}"
        );
        let delay = a["delay_ms"].as_u64().unwrap();
        assert!(delay <= 50, "the spec caps delays at 50 ms: {a}");
        let n = a["attempt"].as_u64().unwrap();
        assert!((1..10).contains(&n), "{a}");
    }
    // Creates that got a 5xx may have gone through: they were looked up
    // before being repeated, and those attempts are journaled too.
    assert!(
        attempts.iter().any(|e| e["payload"]["reason"]
            .as_str()
            .unwrap()
            .contains("outcome unknown")),
        "seed 7 makes at least one create fail: {attempts:?}"
    );
    // The history counts them too.
    let h = p.run(None, &["--output", "json", "history", "shop"]);
    h.expect(0);
    let history: Value = serde_json::from_str(&h.out).unwrap();
    assert_eq!(
        history["runs"][0]["retries"].as_u64(),
        Some(attempts.len() as u64)
    );

    // The credentials passed in the environment appear nowhere.
    let export = p.run(None, &["journal", "export"]);
    for (name, value) in sandbox.env() {
        if name.ends_with("_TOKEN") || name.ends_with("_PASSWORD") {
            for text in [&export.out, &ran.out, &ran.err] {
                assert!(!text.contains(&value), "{name} leaked");
            }
        }
    }

    let dump = p.dump();
    assert_eq!(
        super::world(&dump),
        full_world(&spec),
        "exactly one of each"
    );
    assert_ids_match(&events, &dump);
    p.assert_journal_verifies();
}

/// 429s with `Retry-After: 1` from Cloudflare: waited out as asked, each
/// one journaled with the delay actually waited.
#[test]
fn rate_limits_are_waited_out_as_the_server_asks() {
    let spec = Spec {
        attempts: 10,
        ..Spec::default()
    };
    let p = Project::new(&spec);
    let sandbox = LiveSandbox::start(
        &p.data(),
        FaultConfig {
            seed: 11,
            rate_limit_rate: 0.3,
            retry_after_s: 1,
            target: Some("cloudflare".to_owned()),
            ..FaultConfig::default()
        },
    );
    against(&p, &sandbox, &["apply", "spec.yaml"]).expect(0);
    let limited = sandbox.handle().injected()["cloudflare"].rate_limited;
    assert!(limited > 0, "no 429 was injected");
    let events = p.events();
    let attempts = of_type(&events, "attempt_failed");
    assert_eq!(attempts.len() as u64, limited);
    for e in attempts {
        let a = &e["payload"];
        assert!(a["operation"].as_str().unwrap().starts_with("cloudflare "));
        assert!(
            a["reason"].as_str().unwrap().contains("rate limited"),
            "{a}"
        );
        assert!(a["delay_ms"].as_u64().unwrap() >= 1000, "{a}");
    }
    assert_eq!(p.world(), full_world(&spec));
}

/// Responses lost after the change was committed, on each service in
/// turn: every Coolify application create and every Cloudflare record
/// create loses its response (the target is the create's path), and on
/// Uptime Kuma half the changes do (the seed is chosen so that the monitor
/// create is one of them). Each lost create is looked up by its ownership
/// mark and adopted, never made twice, and without waiting for a request
/// timeout (30 s).
#[test]
fn lost_responses_are_adopted_not_duplicated() {
    for (target, rate, seed, adopted_kind) in [
        ("/api/v1/applications/dockerimage", 1.0, 1, "application"),
        ("/client/v4/zones", 1.0, 2, "dns_record"),
        ("kuma", 0.5, 7, "monitor"),
    ] {
        let spec = Spec::default();
        let p = Project::new(&spec);
        let faults = format!("lost_response_rate={rate},seed={seed},target={target}");
        let started = std::time::Instant::now();
        let ran = p.apply(Some(&faults), &["--retries", "10"]);
        ran.expect(0);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{target}: a lost response was waited for until a timeout\n{}",
            ran.err
        );
        assert_eq!(p.world(), full_world(&spec), "{target}: one of each");
        let events = p.events();
        let adopted: Vec<&str> = of_type(&events, "resource_created")
            .into_iter()
            .filter(|e| e["payload"]["adopted"] == true)
            .map(|e| e["payload"]["kind"].as_str().unwrap())
            .collect();
        assert!(
            adopted.contains(&adopted_kind),
            "{target}: a {adopted_kind} was adopted: {adopted:?}\n{}",
            ran.err
        );
        assert_ids_match(&events, &p.dump());
        p.assert_journal_verifies();
    }
}

/// `--retries` overrides the spec's `retry.attempts`: with one attempt the
/// first fault fails the run and nothing is retried; with ten the same
/// faults are retried and the run succeeds.
#[test]
fn the_retry_limit_is_set_by_the_spec_and_by_flag() {
    let spec = Spec {
        attempts: 1,
        ..Spec::default()
    };
    let faults = || FaultConfig {
        seed: 7,
        error_rate: 0.3,
        ..FaultConfig::default()
    };

    let once = Project::new(&spec);
    let sandbox = LiveSandbox::start(&once.data(), faults());
    let ran = against(&once, &sandbox, &["apply", "spec.yaml"]);
    assert_ne!(ran.code, 0, "one attempt cannot get through 30 % errors");
    assert!(
        format!("{}{}", ran.out, ran.err).contains("server error"),
        "{}\n{}",
        ran.out,
        ran.err
    );
    assert!(of_type(&once.events(), "attempt_failed").is_empty());
    drop(sandbox);

    let flagged = Project::new(&spec);
    let sandbox = LiveSandbox::start(&flagged.data(), faults());
    against(
        &flagged,
        &sandbox,
        &["apply", "spec.yaml", "--retries", "10"],
    )
    .expect(0);
    assert!(!of_type(&flagged.events(), "attempt_failed").is_empty());
    assert_eq!(flagged.world(), full_world(&spec));

    for bad in ["0", "11", "many"] {
        flagged
            .run(None, &["apply", "spec.yaml", "--sandbox", "--retries", bad])
            .expect(2);
    }
}
