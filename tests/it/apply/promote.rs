//! `fabrik promote web --from staging --to production`: production gets
//! the image digest staging's last successful run journaled, whatever the
//! tag names since, and nothing when staging did not verify it.

use serde_json::{Value, json};

use super::{Project, ok};
use crate::faults::LiveSandbox;
use crate::support::{journal_events, stderr, stdout};

const SPEC: &str = "name: web
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: ghcr.io/acme/web:1.4.2
  port: 80
  domains:
    - https://web.example.com
  health_check:
    path: /health
dns:
  zone: example.com
  records:
    - type: A
      name: web.example.com
      content: 203.0.113.10
verify:
  http:
    - url: https://web.example.com/health
      status: 200
environments:
  staging:
    coolify:
      environment: staging
    app:
      domains:
        - https://staging.example.com
    dns:
      records:
        - type: A
          name: staging.example.com
          content: 203.0.113.11
    verify:
      http:
        - url: https://staging.example.com/health
          status: 200
  production:
";

fn project() -> Project {
    Project::with_spec(SPEC, &[])
}

/// `fabrik -e ENV apply spec.yaml --sandbox`, which must succeed.
fn apply_in(p: &Project, env: &str) {
    ok(&p.run(&["-e", env, "apply", "spec.yaml", "--sandbox"]));
}

/// `fabrik promote web --from staging --to production` (`--yes` comes
/// from the test environment).
fn promote(p: &Project) -> std::process::Output {
    p.run(&["promote", "web", "--from", "staging", "--to", "production"])
}

/// Calls the sandbox's admin API on the project's world: `POST` or `PUT`
/// `path` with `body`; returns the answer.
fn admin(p: &Project, method: reqwest::Method, path: &str, body: Value) -> Value {
    let sandbox = LiveSandbox::start(&p.sandbox_data(), fabrik::sandbox::FaultConfig::default());
    let url = format!("{}/_sandbox/{path}", sandbox.handle().api_url);
    sandbox.block_on(async {
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .request(method, url)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} {body}");
        resp.json().await.unwrap()
    })
}

/// Moves the tag to a new manifest; returns the digest it names now.
fn push(p: &Project, image: &str) -> String {
    let answer = admin(
        p,
        reqwest::Method::POST,
        "registry/push",
        json!({ "image": image }),
    );
    answer["digest"].as_str().unwrap().to_owned()
}

/// The `image_resolved` payloads of `deployment`, oldest first.
fn resolved(p: &Project, deployment: &str) -> Vec<Value> {
    journal_events(p.path())
        .into_iter()
        .filter(|e| e["type"] == "image_resolved" && e["deployment"] == deployment)
        .map(|e| e["payload"].clone())
        .collect()
}

/// The application of `name` in the simulated Coolify.
fn app(p: &Project, name: &str) -> Value {
    p.dump()["coolify"]["applications"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no application {name}"))
}

/// Asserts that `o` was refused (exit 2) saying `why`, and that nothing
/// was deployed to production.
#[track_caller]
fn refused(p: &Project, o: &std::process::Output, why: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(stderr(o).contains(why), "{}", stderr(o));
    assert!(stderr(o).contains("hint:"), "{}", stderr(o));
    let apps = p.dump()["coolify"]["applications"].clone();
    assert!(
        !apps
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "web@production"),
        "{apps}"
    );
}

#[test]
fn a_promotion_deploys_the_digest_staging_verified_after_the_tag_moved() {
    let p = project();
    apply_in(&p, "staging");
    let staging = resolved(&p, "web@staging");
    assert_eq!(staging.len(), 1, "{staging:?}");
    assert_eq!(staging[0]["image"], "ghcr.io/acme/web:1.4.2");
    let verified = staging[0]["digest"].as_str().unwrap().to_owned();
    let staging_run = p.runs("web@staging")[0]["run"].as_str().unwrap().to_owned();

    // The tag moves on; an override of production's own changes nothing
    // staging verified.
    let moved = push(&p, "ghcr.io/acme/web:1.4.2");
    assert_ne!(moved, verified);
    assert_eq!(
        p.dump()["registry"]["tags"],
        json!([{"repository": "ghcr.io/acme/web", "tag": "1.4.2", "pushes": 2, "digest": moved}])
    );
    p.edit(
        "spec.yaml",
        "  production:\n",
        "  production:\n    app:\n      env:\n        MODE: production\n",
    );

    let o = promote(&p);
    ok(&o);
    let promoted = format!("promoted from web@staging run {staging_run} ({verified})");
    assert!(stdout(&o).contains(&promoted), "{}", stdout(&o));

    // Coolify holds the digest staging verified, in its own form, not the
    // one the tag names now.
    let prod = app(&p, "web@production");
    let hex = verified.trim_start_matches("sha256:");
    assert_eq!(prod["image"], "ghcr.io/acme/web@sha256");
    assert_eq!(prod["image_tag"], hex);
    assert_eq!(
        prod["serving"],
        format!("image ghcr.io/acme/web@sha256:{hex}"),
        "{prod}"
    );
    assert_eq!(resolved(&p, "web@production")[0]["digest"], verified);

    // History and replay say where production's release was verified.
    let history = p.run(&["history", "web@production"]);
    ok(&history);
    assert!(stdout(&history).contains(&promoted), "{}", stdout(&history));
    let runs = p.runs("web@production");
    assert_eq!(
        runs[0]["options"]["promoted_from"],
        json!({"deployment": "web@staging", "run": staging_run, "digest": verified})
    );
    let replay = p.run(&["replay", "--deployment", "web@production"]);
    ok(&replay);
    assert!(
        stdout(&replay).contains(&format!("release     {promoted}")),
        "{}",
        stdout(&replay)
    );
    let replayed = p.json(&["replay", "--deployment", "web@production"]);
    assert_eq!(
        replayed["runs"][0]["options"]["promoted_from"]["digest"],
        verified
    );

    // The spec still names the tag: a plain apply of production shows the
    // image going back to it, field by field.
    let plan = p.run(&["-e", "production", "plan", "spec.yaml", "--sandbox"]);
    ok(&plan);
    let text = stdout(&plan);
    assert!(text.contains("~ app"), "{text}");
    assert!(
        text.contains(r#"source.image: "ghcr.io/acme/web@sha256" → "ghcr.io/acme/web""#),
        "{text}"
    );
    assert!(text.contains(r#"→ "1.4.2""#), "{text}");
}

#[test]
fn a_release_never_in_staging_is_not_promoted() {
    let p = project();
    // Production alone: staging never ran.
    apply_in(&p, "production");
    let o = promote(&p);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("web@staging was never applied: the release was never in staging"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn production_with_another_image_is_not_given_staging_s() {
    let p = project();
    apply_in(&p, "staging");
    p.edit(
        "spec.yaml",
        "  production:\n",
        "  production:\n    app:\n      image: ghcr.io/acme/other:1.4.2\n",
    );
    let o = promote(&p);
    refused(
        &p,
        &o,
        "web@production deploys ghcr.io/acme/other:1.4.2, but run",
    );
    assert!(
        stderr(&o).contains("that release was never in staging"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_staging_run_that_failed_verification_is_not_promoted() {
    let p = project();
    apply_in(&p, "staging");
    // Staging's next run fails its check (an override, not the shared
    // part) and is rolled back.
    p.edit(
        "spec.yaml",
        "    verify:\n      http:\n        - url: https://staging.example.com/health\n          status: 200\n",
        "    verify:\n      timeout: 1s\n      http:\n        - url: https://staging.example.com/health\n          status: 418\n",
    );
    p.edit(
        "spec.yaml",
        "        - https://staging.example.com\n",
        "        - https://staging.example.com\n      env:\n        MODE: staging\n",
    );
    let failed = p.run(&["-e", "staging", "apply", "spec.yaml", "--sandbox"]);
    assert_eq!(failed.status.code(), Some(5), "{}", stderr(&failed));
    let last = p.runs("web@staging")[1]["run"].as_str().unwrap().to_owned();
    let o = promote(&p);
    refused(
        &p,
        &o,
        &format!("the last run of web@staging ({last}) is an apply that ended rolled_back"),
    );
}

#[test]
fn a_spec_changed_beyond_overrides_since_staging_is_not_promoted() {
    let p = project();
    apply_in(&p, "staging");
    p.edit("spec.yaml", "  port: 80\n", "  port: 8080\n");
    let o = promote(&p);
    refused(&p, &o, "changed since run");
    assert!(
        stderr(&o).contains("beyond what `environments` overrides"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unreachable_registry_leaves_the_digest_unknown_and_the_run_unpromotable() {
    let p = project();
    admin(
        &p,
        reqwest::Method::PUT,
        "registry/repository",
        json!({"image": "ghcr.io/acme/web", "reachable": false}),
    );
    // The apply itself goes on.
    ok(&p.run(&[
        "-e",
        "staging",
        "apply",
        "spec.yaml",
        "--sandbox",
        "--retries",
        "1",
    ]));
    let staging = resolved(&p, "web@staging");
    assert_eq!(staging[0].get("digest"), None, "{staging:?}");
    let error = staging[0]["error"].as_str().unwrap();
    assert!(error.contains("ghcr.io/acme/web:1.4.2"), "{error}");
    let o = promote(&p);
    refused(
        &p,
        &o,
        "could not learn the digest of ghcr.io/acme/web:1.4.2",
    );
}

#[test]
fn a_private_image_is_named_and_not_promoted() {
    let p = project();
    admin(
        &p,
        reqwest::Method::PUT,
        "registry/repository",
        json!({"image": "ghcr.io/acme/web", "private": true}),
    );
    apply_in(&p, "staging");
    let error = resolved(&p, "web@staging")[0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        error.contains("ghcr.io/acme/web:1.4.2 cannot be read without credentials"),
        "{error}"
    );
    let o = promote(&p);
    refused(&p, &o, "cannot be read without credentials");
}

#[test]
fn promoting_an_environment_to_itself_is_refused() {
    let p = project();
    apply_in(&p, "staging");
    let o = p.run(&["promote", "web", "--from", "staging", "--to", "staging"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--from and --to are both staging"),
        "{}",
        stderr(&o)
    );
    assert_eq!(p.runs("web@staging").len(), 1);
}

#[test]
fn a_git_application_is_refused_with_what_to_do() {
    let spec = SPEC.replace(
        "  image: ghcr.io/acme/web:1.4.2\n",
        "  git:\n    repository: https://github.com/acme/web\n    branch: main\n",
    );
    let p = Project::with_spec(&spec, &[]);
    apply_in(&p, "staging");
    let o = promote(&p);
    refused(&p, &o, "web@production builds from git");
}
