//! Failures found before anything changes.
//!
//! Before its first change, apply checks every credential, that the
//! Coolify API is on and lets this machine in, and that the project,
//! server and DNS zone exist. Each case runs the real binary against a
//! `fabrik sandbox serve` of its own (real mode: the settings of a served
//! sandbox can be switched at runtime, which `--sandbox` runs cannot do)
//! with one thing wrong, and checks the exit code (1: the run failed before
//! any change), the message and its hint (snapshot), that the journal
//! records a failed run, that no credential is echoed, and that the world
//! is exactly as before.

use serde_json::{Value, json};

use super::Project;
use crate::support::{SandboxServer, insta_settings, run, stderr, stdout};

/// A credential value that is wrong, and must never be echoed.
const WRONG: &str = "wrong-credential-5f2a9c";

/// What is wrong in one case.
#[derive(Default)]
struct Wrong {
    /// Edits to the quickstart spec.
    spec: &'static [(&'static str, &'static str)],
    /// Environment variables set to [`WRONG`].
    env: &'static [&'static str],
    /// A settings patch for the served sandbox.
    settings: Option<Value>,
}

/// Runs `apply` with `wrong`; returns its stderr, for the caller's own
/// checks, after the common ones.
fn fails_before_any_change(name: &str, wrong: Wrong) -> String {
    let p = Project::example("quickstart", wrong.spec);
    let server = SandboxServer::start(p.path());
    if let Some(patch) = wrong.settings {
        server.put_settings(patch);
    }
    let before = server.dump();
    let mut cmd = p.cmd();
    server.point(&mut cmd).args(["apply", "spec.yaml"]);
    for var in wrong.env {
        cmd.env(var, WRONG);
    }
    let o = run(&mut cmd);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(stdout(&o).is_empty(), "{}", stdout(&o));
    assert!(err.contains("\nerror: "), "{err}");
    assert!(err.contains("\n  hint: "), "no hint:\n{err}");
    assert!(!err.contains(WRONG), "a credential was echoed:\n{err}");

    // Nothing changed remotely: the world is the seeded one.
    let after = server.dump();
    assert_eq!(after, before, "the world changed");
    assert_eq!(after["coolify"]["applications"], json!([]));
    assert_eq!(after["coolify"]["services"], json!([]));
    for zone in after["cloudflare"]["zones"].as_array().unwrap() {
        assert_eq!(zone["records"], json!([]), "{zone}");
    }
    assert_eq!(after["uptime_kuma"]["monitors"], json!([]));

    // The journal says so.
    let runs = p.runs("quickstart");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outcome"], "failed", "{}", runs[0]);
    assert_eq!(runs[0]["exit_code"], 1);
    for list in ["created", "updated", "deleted"] {
        assert_eq!(runs[0][list], json!([]), "{}", runs[0]);
    }
    let status = p.json(&["status", "quickstart"]);
    assert_eq!(status["deployment"]["resources"], json!({}), "{status:#}");

    let mut settings = insta_settings("apply");
    settings.add_filter(r"\[\s*\d+\.\d+s\]", "[ELAPSED]");
    settings.bind(|| insta::assert_snapshot!(format!("preflight_{name}"), err));
    err
}

#[test]
fn a_wrong_coolify_token() {
    let err = fails_before_any_change(
        "coolify_token",
        Wrong {
            env: &["COOLIFY_TOKEN"],
            ..Wrong::default()
        },
    );
    assert!(err.contains("COOLIFY_TOKEN"), "{err}");
}

#[test]
fn the_coolify_api_disabled() {
    let err = fails_before_any_change(
        "api_disabled",
        Wrong {
            settings: Some(json!({"coolify_api_enabled": false})),
            ..Wrong::default()
        },
    );
    assert!(err.contains("API is disabled"), "{err}");
}

#[test]
fn an_ip_address_coolify_does_not_allow() {
    let err = fails_before_any_change(
        "ip_not_allowed",
        Wrong {
            settings: Some(json!({"coolify_ip_allowed": false})),
            ..Wrong::default()
        },
    );
    assert!(err.contains("allow-list"), "{err}");
}

#[test]
fn a_coolify_token_that_may_only_read() {
    let err = fails_before_any_change(
        "read_only_token",
        Wrong {
            settings: Some(json!({"coolify_abilities": ["read"]})),
            ..Wrong::default()
        },
    );
    assert!(err.contains("write"), "{err}");
}

#[test]
fn a_coolify_token_that_may_not_deploy() {
    let err = fails_before_any_change(
        "no_deploy_ability",
        Wrong {
            settings: Some(json!({"coolify_abilities": ["read", "write"]})),
            ..Wrong::default()
        },
    );
    assert!(err.contains("deploy"), "{err}");
}

#[test]
fn an_unknown_server() {
    let err = fails_before_any_change(
        "unknown_server",
        Wrong {
            spec: &[("server: localhost", "server: build-box")],
            ..Wrong::default()
        },
    );
    assert!(err.contains("build-box"), "{err}");
    assert!(
        err.contains("servers visible to this token: localhost"),
        "{err}"
    );
}

#[test]
fn an_unknown_project() {
    let err = fails_before_any_change(
        "unknown_project",
        Wrong {
            spec: &[("project: default", "project: shop")],
            ..Wrong::default()
        },
    );
    assert!(err.contains("\"shop\""), "{err}");
}

#[test]
fn an_unknown_zone() {
    let err = fails_before_any_change(
        "unknown_zone",
        Wrong {
            spec: &[
                ("zone: example.com", "zone: example.org"),
                (
                    "name: quickstart.example.com",
                    "name: quickstart.example.org",
                ),
            ],
            ..Wrong::default()
        },
    );
    assert!(err.contains("example.org"), "{err}");
}

#[test]
fn a_wrong_cloudflare_token() {
    let err = fails_before_any_change(
        "cloudflare_token",
        Wrong {
            env: &["CLOUDFLARE_API_TOKEN"],
            ..Wrong::default()
        },
    );
    assert!(err.contains("token"), "{err}");
}

#[test]
fn a_wrong_uptime_kuma_password() {
    let err = fails_before_any_change(
        "kuma_password",
        Wrong {
            env: &["UPTIME_KUMA_PASSWORD"],
            ..Wrong::default()
        },
    );
    assert!(err.contains("UPTIME_KUMA_PASSWORD"), "{err}");
}

/// Apply checks every service before it changes anything, and names every
/// problem it found in one error (as `fabrik doctor` does), not only the
/// first.
#[test]
fn every_problem_at_once() {
    let err = fails_before_any_change(
        "every_problem",
        Wrong {
            spec: &[
                ("server: localhost", "server: build-box"),
                (
                    "    interval: 60s",
                    "    interval: 60s\n    notifications: [99]",
                ),
            ],
            env: &["CLOUDFLARE_API_TOKEN"],
            ..Wrong::default()
        },
    );
    assert!(
        err.contains("error: 3 problems found before changing anything:"),
        "{err}"
    );
    for problem in [
        "no server named \"build-box\"",
        "finding zone example.com: cloudflare find zone failed: forbidden",
        "notification 99 does not exist in Uptime Kuma",
    ] {
        assert!(err.contains(problem), "{problem}\n{err}");
    }
    // Each problem's hint.
    assert!(
        err.contains("hint: servers visible to this token: localhost"),
        "{err}"
    );
    assert!(err.contains("hint: use the id of a notification"), "{err}");
}

/// The checks of the three services, and Coolify's own lookups, go out at
/// once: with every answer delayed, the whole check takes about as long as
/// the longest chain of lookups that depend on each other, not the sum of
/// all of them (seven Coolify requests, a Cloudflare one, the Uptime Kuma
/// login and its events one after another take at least ten delays).
#[test]
fn the_services_are_checked_at_once() {
    let p = Project::example("quickstart", &[]);
    let server = SandboxServer::start(p.path());
    let delay = std::time::Duration::from_millis(400);
    let mut cmd = p.cmd();
    server.point(&mut cmd).args(["doctor", "spec.yaml"]);
    let clean = std::time::Instant::now();
    let o = run(&mut cmd);
    let clean = clean.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    server.put_faults(json!({"latency_ms": delay.as_millis() as u64}));
    let mut cmd = p.cmd();
    server.point(&mut cmd).args(["doctor", "spec.yaml"]);
    let started = std::time::Instant::now();
    let o = run(&mut cmd);
    let slow = started.elapsed();
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        slow < clean + delay * 6,
        "{slow:?} with every answer {delay:?} late ({clean:?} without): the checks ran one after another"
    );
}
