//! `fabrik logs NAME`, and the build log in a failed deployment's
//! message: read from Coolify (the sandbox), scrubbed of the spec's
//! secrets, without Coolify's command noise, and saying where to look when
//! the token may not read build logs.

use serde_json::{Value, json};

use super::{Project, ok};
use crate::support::{SandboxServer, run, stderr, stdout};

/// The generated `API_TOKEN` of the quickstart, from its `.env`.
fn api_token(p: &Project) -> String {
    p.dotenv()
        .into_iter()
        .find(|(k, _)| k == "API_TOKEN")
        .map(|(_, v)| v)
        .expect("API_TOKEN in .env")
}

#[test]
fn logs_prints_the_runtime_log_then_the_build_log_without_secrets() {
    let p = Project::example("quickstart", &[]);
    ok(&p.apply());
    let secret = api_token(&p);
    let o = p.run(&["logs", "quickstart"]);
    ok(&o);
    let out = stdout(&o);
    // The runtime log: the container prints its environment, the
    // generated secret among it, which never reaches the terminal.
    assert!(out.contains("==> runtime log of quickstart"), "{out}");
    assert!(out.contains("Starting image traefik/whoami:v1.10"), "{out}");
    assert!(out.contains("env WHOAMI_NAME=quickstart"), "{out}");
    assert!(out.contains("env API_TOKEN=[redacted]"), "{out}");
    assert!(
        !out.contains(&secret),
        "a secret reached the terminal:\n{out}"
    );
    // Then the build log of the deployment, without the hidden entries
    // (the commands Coolify ran).
    let build = out
        .split("==> build log of deployment ")
        .nth(1)
        .expect(&out);
    assert!(
        build.contains("Starting deployment of quickstart (image traefik/whoami:v1.10)"),
        "{out}"
    );
    assert!(build.contains("Rolling update completed."), "{out}");
    assert!(
        !out.contains("Image is up to date"),
        "command noise:\n{out}"
    );

    // --lines: the runtime log's last N lines; --build: the build log only.
    let j = p.json(&["logs", "quickstart", "--lines", "1"]);
    assert_eq!(j["runtime"]["lines"], json!(["Listening on :80"]), "{j}");
    assert_eq!(j["problems"], 0, "{j}");
    let o = p.run(&["logs", "quickstart", "--build"]);
    ok(&o);
    let out = stdout(&o);
    assert!(!out.contains("==>") && !out.contains("env "), "{out}");
    assert!(out.contains("Rolling update completed."), "{out}");
}

#[test]
fn a_failed_deployment_says_why_from_its_build_log_and_journals_it() {
    let p = Project::example("quickstart", &[]);
    let o = run(p
        .cmd()
        .args(["apply", "spec.yaml", "--sandbox", "--no-rollback"])
        .env(fabrik::sandbox::FAULTS_ENV, "deploy_fail=true"));
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let out = stdout(&o);
    let why = "New container is not healthy, rolling back to the old container.";
    assert!(out.contains("build log (last lines):"), "{out}");
    assert!(out.contains(why), "{out}");
    assert!(
        !out.contains("Image is up to date"),
        "command noise:\n{out}"
    );
    // The journal keeps it with the run's outcome.
    let runs = p.runs("quickstart");
    let last = &runs[runs.len() - 1];
    assert!(
        last["message"].as_str().unwrap_or_default().contains(why),
        "{last:#}"
    );

    // The application was kept (--no-rollback), and nothing of it runs:
    // the runtime log says so, and how to learn why; the build log tells.
    let o = p.run(&["logs", "quickstart"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("Application is not running."), "{err}");
    assert!(err.contains("fabrik logs NAME --build"), "{err}");
    assert!(stdout(&o).contains(why), "{}", stdout(&o));
}

/// A token without `read:sensitive` reads no build log: `fabrik logs`
/// says where to read it, a failure says why it shows none, and the
/// runtime log (ability `read`) still comes.
#[test]
fn without_read_sensitive_the_build_log_is_pointed_to() {
    let p = Project::example("quickstart", &[]);
    let server = SandboxServer::start(p.path());
    server.put_settings(json!({"coolify_abilities": ["read", "write", "deploy"]}));
    let mut cmd = p.cmd();
    server.point(&mut cmd).args(["apply", "spec.yaml"]);
    ok(&run(&mut cmd));
    let mut cmd = p.cmd();
    server
        .point(&mut cmd)
        .args(["--output", "json", "logs", "quickstart"]);
    let o = run(&mut cmd);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let problem = j["build"]["problem"].as_str().unwrap_or_default();
    assert!(
        problem
            .starts_with("the build log needs a token with read:sensitive; see http://127.0.0.1:")
            && problem.contains("/deployment/"),
        "{j:#}"
    );
    assert!(
        j["runtime"]["lines"]
            .as_array()
            .is_some_and(|l| l.iter().any(|l| l == "Listening on :80")),
        "{j:#}"
    );

    server.put_faults(json!({"deploy_fail": true}));
    let mut cmd = p.cmd();
    server
        .point(&mut cmd)
        .args(["apply", "spec.yaml", "--redeploy"]);
    let o = run(&mut cmd);
    let out = stdout(&o);
    assert_ne!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("the build log needs a token with read:sensitive to be shown here"),
        "{out}"
    );
}
