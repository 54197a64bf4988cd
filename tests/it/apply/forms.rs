//! Every app form through its whole first day: plan, apply, re-apply, change
//! one field, apply again.
//!
//! Each test copies an example, with the smallest edits that let it run
//! on the sandbox (each one says why), and checks:
//!
//! - the plan of a fresh project (snapshot), then `apply` exits 0 and the
//!   world holds the application (deployed and serving), every DNS record
//!   and every monitor, each carrying the ownership mark of the run, with
//!   the remote ids `fabrik status` reports as present;
//! - a re-apply exits 0 with "no changes" and calls no provider (see
//!   [`reapply_makes_no_provider_call`]);
//! - after one field is changed, the plan shows that one update (snapshot),
//!   and `apply` updates that resource and nothing else: in the journal
//!   (history and the run's intents and outcomes) and in the world (the
//!   dump is the same but for that resource);
//! - no secret value from the project's `.env` appears in any output, the
//!   journal export or the dump.

use serde_json::Value;

use super::{Project, find_resource, ok, without};
use crate::support::{insta_settings, run, stderr, stdout};

/// What a test changes, and what it expects.
struct Case {
    /// The example directory.
    example: &'static str,
    /// Its deployment name.
    deployment: &'static str,
    /// Edits to `spec.yaml` so that it runs on the sandbox.
    setup: &'static [(&'static str, &'static str)],
    /// Lines for the project's `.env`.
    dotenv: &'static str,
    /// The one change: file, from, to.
    change: (&'static str, &'static str, &'static str),
    /// The resource key the change must update, and nothing else.
    changed: &'static str,
}

/// Runs the whole story for one form; `check_change` looks at the changed
/// resource in the world before and after the second apply.
fn lifecycle(case: Case, check_change: impl FnOnce(&Value, &Value)) {
    let p = Project::example(case.example, case.setup);
    if !case.dotenv.is_empty() {
        std::fs::write(p.path().join(".env"), case.dotenv).unwrap();
    }
    let settings = insta_settings("apply");
    let mut outputs = Vec::new();

    // A fresh project: everything is to create.
    let plan = p.run(&["plan", "spec.yaml"]);
    ok(&plan);
    settings
        .bind(|| insta::assert_snapshot!(format!("{}_plan_create", case.example), stdout(&plan)));
    let planned = p.json(&["plan", "spec.yaml"]);
    let keys: Vec<(String, String)> = planned["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["action"], "create", "{s}");
            (
                s["key"].as_str().unwrap().to_owned(),
                s["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(keys.iter().any(|(k, _)| k == "app"), "{planned}");
    let has_secrets = planned["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["changes"].as_array().unwrap())
        .any(|c| c["secret"] == true);
    outputs.push(plan);

    // Apply.
    let first = p.apply();
    ok(&first);
    assert!(
        stdout(&first).contains(&format!("{} is deployed and verified", case.deployment)),
        "{}",
        stdout(&first)
    );
    let runs = p.runs(case.deployment);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outcome"], "succeeded");
    let run1 = runs[0]["run"].as_str().unwrap().to_owned();
    let world = p.dump();
    let status = p.json(&["status", case.deployment]);
    let resources = &status["deployment"]["resources"];
    assert_eq!(
        resources.as_object().unwrap().len(),
        keys.len(),
        "{resources}"
    );
    for (key, kind) in &keys {
        let r = &resources[key];
        assert_eq!(r["status"], "present", "{key}: {r}");
        assert_eq!(r["kind"], kind.as_str());
        let id = r["remote_id"].as_str().unwrap();
        let remote = find_resource(&world, kind, id)
            .unwrap_or_else(|| panic!("{key} ({kind} {id}) is not in the world:\n{world:#}"));
        assert_eq!(
            remote["ownership"]["deployment"], case.deployment,
            "{key}: {remote}"
        );
        assert_eq!(remote["ownership"]["run"], run1.as_str(), "{key}: {remote}");
        if kind == "application" {
            assert_serving(remote);
        }
    }
    let human = p.run(&["status", case.deployment]);
    ok(&human);
    for (key, _) in &keys {
        assert!(
            stdout(&human)
                .lines()
                .any(|l| l.contains(key.as_str()) && l.contains("present")),
            "{key} not present in:\n{}",
            stdout(&human)
        );
    }
    outputs.extend([first, human]);

    reapply_makes_no_provider_call(&p, case.deployment, &mut outputs);

    // Change one field.
    let (file, from, to) = case.change;
    p.edit(file, from, to);
    let plan = p.run(&[
        "plan",
        "spec.yaml",
        "--detailed-exitcode",
        "--refresh=false",
    ]);
    assert_eq!(plan.status.code(), Some(2), "{}", stderr(&plan));
    settings
        .bind(|| insta::assert_snapshot!(format!("{}_plan_change", case.example), stdout(&plan)));
    outputs.push(plan);
    let before = p.dump();
    let second = p.apply();
    ok(&second);
    assert!(
        stdout(&second).contains(&format!("changes: {}: update\n", case.changed)),
        "{}",
        stdout(&second)
    );
    let runs = p.runs(case.deployment);
    let last = runs.last().unwrap();
    assert_eq!(last["outcome"], "succeeded");
    assert_eq!(last["updated"], serde_json::json!([case.changed]), "{last}");
    assert_eq!(last["created"], serde_json::json!([]), "{last}");
    assert_eq!(last["deleted"], serde_json::json!([]), "{last}");
    let run3 = last["run"].as_str().unwrap();
    let export = p.export(run3);
    let touched: Vec<(&str, &str)> = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("resource_"))
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["payload"]["resource"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        touched,
        vec![
            ("resource_intent", case.changed),
            ("resource_updated", case.changed)
        ],
        "{export:#}"
    );
    let after = p.dump();
    let changed = &p.json(&["status", case.deployment])["deployment"]["resources"][case.changed];
    let (kind, id) = (
        changed["kind"].as_str().unwrap(),
        changed["remote_id"].as_str().unwrap(),
    );
    check_change(
        find_resource(&before, kind, id).unwrap(),
        find_resource(&after, kind, id).unwrap(),
    );
    assert_eq!(
        without(&before, kind, id),
        without(&after, kind, id),
        "something besides {} changed",
        case.changed
    );
    outputs.push(second);

    // No secret anywhere.
    let dotenv = p.dotenv();
    assert_eq!(
        dotenv.iter().any(|(k, _)| k != "FABRIK_FINGERPRINT_KEY"),
        has_secrets,
        "the spec's secrets are in .env"
    );
    let secrets: Vec<&str> = dotenv
        .iter()
        .map(|(_, v)| v.as_str())
        .filter(|v| v.len() >= 8)
        .collect();
    assert!(!secrets.is_empty(), "at least the fingerprint key");
    let export = p.run(&["journal", "export", "--format", "ndjson"]);
    ok(&export);
    outputs.push(export);
    let mut texts: Vec<String> = outputs
        .iter()
        .flat_map(|o| [stdout(o), stderr(o)])
        .collect();
    texts.push(after.to_string());
    for secret in &secrets {
        for text in &texts {
            assert!(!text.contains(secret), "a secret value leaked");
        }
    }

    // Destroy: nothing of the deployment is left.
    let live = p.json(&["status", case.deployment]);
    let ids: Vec<(String, String)> = keys
        .iter()
        .map(|(key, kind)| {
            let id = &live["deployment"]["resources"][key.as_str()]["remote_id"];
            (kind.clone(), id.as_str().unwrap().to_owned())
        })
        .collect();
    let gone = p.run(&["destroy", case.deployment, "--sandbox"]);
    ok(&gone);
    assert!(
        stdout(&gone).starts_with(&format!("{} destroyed", case.deployment)),
        "{}",
        stdout(&gone)
    );
    let world = p.dump();
    for (kind, id) in &ids {
        assert!(
            find_resource(&world, kind, id).is_none(),
            "{kind} {id} is still there after destroy:\n{world:#}"
        );
    }
}

/// A re-apply of an unchanged spec exits 0 and says "no changes": refreshed
/// (the default), the remote side matches; offline (`--refresh=false`), it
/// calls no provider.
///
/// How "no provider call" is proven: the in-process sandbox starts only
/// when a run connects to the providers, and every provider call of a
/// `--sandbox` run goes to it. The re-apply runs with `FABRIK_SANDBOX_DATA`
/// naming a file the sandbox cannot open, so a run that made even one call
/// could not succeed ([`the_no_call_probe_fails_a_run_that_calls_a_provider`]
/// shows it does fail one). The world is also compared before and after.
fn reapply_makes_no_provider_call(
    p: &Project,
    deployment: &str,
    outputs: &mut Vec<std::process::Output>,
) {
    let before = p.dump();
    let refreshed = run(p.cmd().args(["apply", "spec.yaml", "--sandbox"]));
    ok(&refreshed);
    assert!(
        stdout(&refreshed).starts_with("no changes: the deployment matches the spec"),
        "{}",
        stdout(&refreshed)
    );
    assert_eq!(p.dump(), before, "a refreshed re-apply changed the world");
    let again = run(p
        .cmd()
        .args(["apply", "spec.yaml", "--sandbox", "--refresh=false"])
        .env(fabrik::sandbox::DATA_ENV, p.unusable_sandbox_data()));
    ok(&again);
    assert!(
        stdout(&again).starts_with("no changes: the deployment matches the spec"),
        "{}",
        stdout(&again)
    );
    assert_eq!(p.dump(), before, "a re-apply changed the world");
    let runs = p.runs(deployment);
    let last = runs.last().unwrap();
    assert_eq!(last["outcome"], "no_changes", "{last}");
    for list in ["created", "updated", "deleted"] {
        assert_eq!(last[list], serde_json::json!([]), "{last}");
    }
    let plan = p.run(&[
        "plan",
        "spec.yaml",
        "--detailed-exitcode",
        "--refresh=false",
    ]);
    assert_eq!(plan.status.code(), Some(0), "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("no changes: the deployment matches the spec"),
        "{}",
        stdout(&plan)
    );
    outputs.push(again);
}

/// The application has a finished deployment and serves it (an
/// application), or runs with its URLs (a service).
fn assert_serving(app: &Value) {
    if let Some(deployments) = app["deployments"].as_array() {
        let latest = deployments.last().expect("a deployment");
        assert_eq!(latest["status"], "finished", "{app}");
        assert_eq!(app["serving"], latest["deployed"], "{app}");
    } else {
        assert_eq!(app["running"], true, "{app}");
        assert!(!app["urls"].as_array().unwrap().is_empty(), "{app}");
    }
}

/// An application's deployments.
fn deployments(app: &Value) -> &Vec<Value> {
    app["deployments"].as_array().unwrap()
}

/// The env var `key` of an application.
fn env<'a>(app: &'a Value, key: &str) -> &'a Value {
    app["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == key)
        .unwrap_or_else(|| panic!("no env {key} in {app}"))
}

#[test]
fn the_no_call_probe_fails_a_run_that_calls_a_provider() {
    let p = Project::example("quickstart", &[]);
    let o = run(p
        .cmd()
        .args(["apply", "spec.yaml", "--sandbox"])
        .env(fabrik::sandbox::DATA_ENV, p.unusable_sandbox_data()));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("sandbox"), "{}", stderr(&o));
}

#[test]
fn image() {
    lifecycle(
        Case {
            example: "quickstart",
            deployment: "quickstart",
            setup: &[],
            dotenv: "",
            change: ("spec.yaml", "traefik/whoami:v1.10", "traefik/whoami:v1.11"),
            changed: "app",
        },
        |before, after| {
            assert_eq!(after["image_tag"], "v1.11");
            assert_eq!(deployments(after).len(), deployments(before).len() + 1);
            assert_serving(after);
            assert_eq!(after["serving"], "image traefik/whoami:v1.11");
        },
    );
}

#[test]
fn dockerfile() {
    lifecycle(
        Case {
            example: "dockerfile",
            deployment: "status-api",
            // The sandbox's apps answer their health path with "OK".
            setup: &[("body_contains: ok", "body_contains: OK")],
            // The spec requires this secret from the environment or .env.
            dotenv: "SENTRY_DSN=https://public@sentry.example.com/1\n",
            change: ("spec.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug"),
            changed: "app",
        },
        |before, after| {
            assert_ne!(
                env(before, "LOG_LEVEL")["value_fingerprint"],
                env(after, "LOG_LEVEL")["value_fingerprint"]
            );
            assert_eq!(
                env(before, "DATABASE_URL")["value_fingerprint"],
                env(after, "DATABASE_URL")["value_fingerprint"]
            );
            assert_eq!(deployments(after).len(), deployments(before).len() + 1);
            assert_serving(after);
        },
    );
}

#[test]
fn git() {
    lifecycle(
        Case {
            example: "git",
            deployment: "shop-frontend",
            setup: &[
                // The sandbox's Coolify has the project `default` and the
                // server `localhost` only.
                ("project: shop", "project: default"),
                (
                    "server:\n    uuid: hg0ks8kw4wok04g8cwck8sgo",
                    "server: localhost",
                ),
                // Tests reach loopback only: no webhook to hooks.example.com.
                (
                    "notifications:\n  webhooks:\n    - name: deploys\n      url: https://hooks.example.com/fabrik\n      format: json\n      signing_secret: WEBHOOK_SIGNING_KEY\n      events: [succeeded, failed, rolled_back, needs_attention]\n",
                    "",
                ),
            ],
            dotenv: "",
            change: ("spec.yaml", "interval: 2m", "interval: 3m"),
            changed: "monitor:shop",
        },
        |before, after| {
            assert_eq!(before["interval"], 120);
            assert_eq!(after["interval"], 180);
            assert_eq!(after["url"], before["url"]);
        },
    );
}

#[test]
fn compose() {
    lifecycle(
        Case {
            example: "compose",
            deployment: "links",
            setup: &[],
            dotenv: "",
            change: ("spec.yaml", "content: team=platform", "content: team=web"),
            changed: "dns:TXT:_owner.links.example.com",
        },
        |before, after| {
            // Sent as a quoted character-string, as Cloudflare asks of TXT.
            assert_eq!(before["content"], "\"team=platform\"");
            assert_eq!(after["content"], "\"team=web\"");
            assert_eq!(after["comment"], before["comment"]);
        },
    );
}

#[test]
fn one_click_service() {
    lifecycle(
        Case {
            example: "one-click-service",
            deployment: "blog-ghost",
            setup: &[],
            dotenv: "",
            change: (
                "spec.yaml",
                "content: 203.0.113.40",
                "content: 203.0.113.41",
            ),
            changed: "dns:A:ghost.example.com",
        },
        |before, after| {
            assert_eq!(before["content"], "203.0.113.40");
            assert_eq!(after["content"], "203.0.113.41");
        },
    );
}

#[test]
fn wordpress_template() {
    lifecycle(
        Case {
            example: "wordpress",
            deployment: "blog",
            // The sandbox serves a one-line page, not WordPress's login form.
            setup: &[("      body_contains: wp-submit\n", "")],
            dotenv: "",
            change: ("spec.yaml", "interval: 5m", "interval: 10m"),
            changed: "monitor:blog",
        },
        |before, after| {
            assert_eq!(before["interval"], 300);
            assert_eq!(after["interval"], 600);
        },
    );
}

#[test]
fn static_site_template() {
    lifecycle(
        Case {
            example: "static-site",
            deployment: "docs-site",
            setup: &[],
            dotenv: "",
            change: ("spec.yaml", "branch: master", "branch: main"),
            changed: "app",
        },
        |before, after| {
            assert_eq!(before["git_branch"], "master");
            assert_eq!(after["git_branch"], "main");
            assert_eq!(deployments(after).len(), deployments(before).len() + 1);
            assert_serving(after);
        },
    );
}
