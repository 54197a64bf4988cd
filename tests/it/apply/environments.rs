//! Environments: one spec declares `staging` and `production`, each
//! applied as its own deployment (`web@staging`, `web@production`) with
//! its own stream, lock, history, `.env` and remote resources.

use serde_json::Value;

use super::{Project, ok};
use crate::support::{stderr, stdout};

const SPEC: &str = "name: web
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:v1.10
  port: 80
  domains:
    - https://web.example.com
  env:
    API_TOKEN: ${secret.API_TOKEN}
  health_check:
    path: /health
secrets:
  API_TOKEN:
    generate: true
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
monitors:
  - name: web
    url: https://web.example.com/health
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
    monitors:
      - name: web-staging
        url: https://staging.example.com/health
  production:
";

fn apps(dump: &Value) -> Vec<Value> {
    dump["coolify"]["applications"].as_array().unwrap().clone()
}

fn records(dump: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = dump["cloudflare"]["zones"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|z| z["records"].as_array().unwrap().clone())
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn monitor_names(dump: &Value) -> Vec<String> {
    let mut out: Vec<String> = dump["uptime_kuma"]["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

fn environment_of(dump: &Value, app: &Value) -> String {
    let id = app["environment_id"].as_i64().unwrap();
    dump["coolify"]["projects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["environments"].as_array().unwrap().clone())
        .find(|e| e["id"].as_i64() == Some(id))
        .and_then(|e| e["name"].as_str().map(str::to_owned))
        .unwrap()
}

#[test]
fn two_environments_of_one_spec_never_touch_each_other() {
    let p = Project::with_spec(SPEC, &[]);
    ok(&p.run(&["--env", "staging", "apply", "spec.yaml", "--sandbox"]));
    let staging_only = p.dump();
    ok(&p.run(&["-e", "production", "apply", "spec.yaml", "--sandbox"]));
    let both = p.dump();

    // Each environment has its own application, in its Coolify
    // environment, its own record and its own monitor.
    let mut placed: Vec<(String, String, String)> = apps(&both)
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                environment_of(&both, a),
                a["fqdn"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        vec![
            (
                "web@production".to_owned(),
                "production".to_owned(),
                "https://web.example.com".to_owned()
            ),
            (
                "web@staging".to_owned(),
                "staging".to_owned(),
                "https://staging.example.com".to_owned()
            ),
        ]
    );
    assert_eq!(
        records(&both),
        vec![
            ("staging.example.com".to_owned(), "203.0.113.11".to_owned()),
            ("web.example.com".to_owned(), "203.0.113.10".to_owned()),
        ]
    );
    assert_eq!(
        monitor_names(&both),
        vec![
            "web@production/web".to_owned(),
            "web@staging/web-staging".to_owned()
        ]
    );
    // Applying production left staging's resources exactly as they were.
    let staging_app = apps(&staging_only)[0].clone();
    let same = apps(&both)
        .into_iter()
        .find(|a| a["uuid"] == staging_app["uuid"])
        .unwrap();
    assert_eq!(
        same, staging_app,
        "applying production changed staging's app"
    );

    // Each environment keeps its generated secrets in its own file, and
    // its own stream, status and history.
    let token = |env: &str| {
        std::fs::read_to_string(p.path().join(format!(".env.{env}")))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("API_TOKEN=").map(str::to_owned))
            .unwrap()
    };
    assert_ne!(token("staging"), token("production"));
    assert!(
        !p.path().join(".env").exists(),
        "no shared .env was written"
    );
    let status = stdout(&p.run(&["status", "web"]));
    assert!(
        status.contains("web@production") && status.contains("web@staging"),
        "status shows both environments side by side:\n{status}"
    );
    // With what each runs and who ran it.
    let header = status.lines().next().unwrap();
    assert!(
        header.contains("RELEASE") && header.contains("BY"),
        "{status}"
    );
    assert_eq!(
        status.matches("traefik/whoami:v1.10").count(),
        2,
        "{status}"
    );
    let history = p.json(&["history", "web"]);
    assert_eq!(history["environments"].as_array().unwrap().len(), 2);
    assert_eq!(p.runs("web@staging").len(), 1);
    assert_eq!(p.runs("web@production").len(), 1);
    // A deployment name given with --env names that environment's.
    let one = p.json(&["--env", "staging", "status", "web"]);
    assert_eq!(one["deployment"]["deployment"], "web@staging");
    assert_eq!(
        p.json(&["-e", "staging", "history", "web"])["deployment"],
        "web@staging"
    );

    // Re-applying either is no change; destroying staging leaves
    // production whole.
    let again = p.run(&["-e", "staging", "apply", "spec.yaml", "--sandbox"]);
    ok(&again);
    assert!(stdout(&again).contains("no changes"), "{}", stdout(&again));
    ok(&p.run(&["-e", "staging", "destroy", "web", "--sandbox"]));
    let after = p.dump();
    assert_eq!(
        apps(&after)
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["web@production"]
    );
    assert_eq!(
        records(&after),
        vec![("web.example.com".to_owned(), "203.0.113.10".to_owned())]
    );
    assert_eq!(monitor_names(&after), vec!["web@production/web".to_owned()]);
    let prod = p.run(&["-e", "production", "apply", "spec.yaml", "--sandbox"]);
    ok(&prod);
    assert!(stdout(&prod).contains("no changes"), "{}", stdout(&prod));
}

#[test]
fn an_environment_s_env_file_is_read_over_the_project_s() {
    // The sandbox shows a keyed fingerprint of each value, never the value:
    // equal fingerprints are equal values.
    let spec = SPEC
        .replace(
            "    API_TOKEN: ${secret.API_TOKEN}\n",
            "    API_TOKEN: ${secret.API_TOKEN}\n    SHARED: ${secret.SHARED}\n",
        )
        .replace(
            "  API_TOKEN:\n    generate: true\n",
            "  API_TOKEN: {}\n  SHARED: {}\n",
        );
    let p = Project::with_spec(
        &spec,
        &[
            (
                ".env",
                "API_TOKEN=shared-value-0123456789\nSHARED=only-in-the-project-env-file\n",
            ),
            (".env.staging", "API_TOKEN=staging-value-0123456789\n"),
        ],
    );
    ok(&p.run(&["-e", "staging", "apply", "spec.yaml", "--sandbox"]));
    ok(&p.run(&["-e", "production", "apply", "spec.yaml", "--sandbox"]));
    let fingerprint = |dump: &Value, app: &str, key: &str| -> String {
        let app = apps(dump).into_iter().find(|a| a["name"] == app).unwrap();
        app["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["key"] == key && e["is_preview"] == false)
            .and_then(|e| e["value_fingerprint"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("no {key}: {}", app["env"]))
    };
    let dump = p.dump();
    assert_ne!(
        fingerprint(&dump, "web@staging", "API_TOKEN"),
        fingerprint(&dump, "web@production", "API_TOKEN"),
        "staging took API_TOKEN from .env.staging"
    );
    assert_eq!(
        fingerprint(&dump, "web@staging", "SHARED"),
        fingerprint(&dump, "web@production", "SHARED"),
        "a name .env.staging lacks comes from .env"
    );
    std::fs::write(
        p.path().join(".env.staging"),
        "API_TOKEN=shared-value-0123456789\n",
    )
    .unwrap();
    ok(&p.run(&["-e", "staging", "apply", "spec.yaml", "--sandbox"]));
    let dump = p.dump();
    assert_eq!(
        fingerprint(&dump, "web@staging", "API_TOKEN"),
        fingerprint(&dump, "web@production", "API_TOKEN"),
        "the same value in .env.staging gives the same fingerprint"
    );
}

#[test]
fn choosing_an_environment_is_required_checked_and_refused_where_none_exist() {
    let p = Project::with_spec(SPEC, &[]);
    // A spec with environments needs one.
    let o = p.run(&["apply", "spec.yaml", "--sandbox"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "spec.yaml:{}:1: error: this spec declares environments (staging, production): choose one with --env NAME",
            SPEC.lines().position(|l| l == "environments:").unwrap() + 1
        )),
        "{}",
        stderr(&o)
    );
    // An environment it does not declare, with the closest one suggested.
    let o = p.run(&["--env", "stagin", "plan", "spec.yaml", "--sandbox"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("environment `stagin` (--env or FABRIK_ENV) is not declared here")
            && stderr(&o).contains("did you mean `staging`?"),
        "{}",
        stderr(&o)
    );
    // FABRIK_ENV chooses too.
    let o = crate::support::run(p.cmd().env("FABRIK_ENV", "staging").args([
        "plan",
        "spec.yaml",
        "--sandbox",
    ]));
    ok(&o);
    assert!(stdout(&o).contains("web@staging"), "{}", stdout(&o));

    // A spec without environments refuses --env.
    let plain = Project::example("quickstart", &[]);
    let o = plain.run(&["-e", "staging", "plan", "spec.yaml", "--sandbox"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("environment `staging` was chosen (--env or FABRIK_ENV), but this spec declares no `environments`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn validate_checks_every_environment_where_its_values_were_written() {
    let spec = SPEC
        .replace(
            "    coolify:\n      environment: staging\n",
            "    name: other\n    coolify:\n      environment: staging\n",
        )
        .replace(
            "  production:\n",
            "  production:\n    app:\n      port: 70000\n",
        );
    let p = Project::with_spec(&spec, &[]);
    let o = p.run(&["validate", "spec.yaml"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    let line_of = |needle: &str| {
        spec.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .unwrap()
    };
    // The override of `name` is refused where it is written, in the
    // environment that has it.
    assert!(
        err.contains(&format!(
            "spec.yaml:{}:5: error: an environment cannot override `name`\n",
            line_of("name: other")
        )),
        "{err}"
    );
    // The bad port is reported at the override, for production only.
    let port = line_of("port: 70000");
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("spec.yaml:{port}:"))
                && l.contains("error:")
                && l.ends_with("(environment production)")),
        "{err}"
    );
    // One environment at a time with --env: its problems, not marked as
    // one environment's among several (a malformed declaration is the
    // file's, whichever environment is chosen).
    let o = p.run(&["--env", "production", "validate", "spec.yaml"]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.lines()
            .any(|l| l.starts_with(&format!("spec.yaml:{port}:")) && l.contains("error:")),
        "{err}"
    );
    assert!(!err.contains("(environment "), "{err}");
    assert!(
        err.contains("an environment cannot override `name`"),
        "{err}"
    );
}

/// `redeploy web@staging` deploys the staging deployment again, as
/// `-e staging redeploy web` does; a run id of staging without `--env`
/// is refused naming the deployment to redeploy.
#[test]
fn a_deployment_of_an_environment_is_redeployed_by_its_name() {
    let p = Project::with_spec(SPEC, &[]);
    ok(&p.run(&["-e", "staging", "apply", "spec.yaml", "--sandbox"]));
    let o = p.run(&["redeploy", "web@staging", "--sandbox"]);
    ok(&o);
    assert!(
        stdout(&o).starts_with("web@staging is deployed and verified"),
        "{}",
        stdout(&o)
    );
    let history = stdout(&p.run(&["history", "web@staging", "--output", "json"]));
    let runs: Value = serde_json::from_str(history.lines().next().unwrap()).unwrap();
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{history}");
    let run = runs[1]["run"].as_str().unwrap();

    let o = p.run(&["redeploy", run, "--sandbox"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("`fabrik redeploy web@staging`"),
        "{}",
        stderr(&o)
    );
    ok(&p.run(&["-e", "staging", "redeploy", run, "--sandbox"]));
}
