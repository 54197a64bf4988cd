//! Coolify as it really behaves, through the binary against the sandbox:
//! one test per behaviour of its controllers that the OpenAPI file does not
//! describe (read at coollabsio/coolify 379abb25 = 4.3.11; the sandbox
//! cites the lines it follows). Each fails on a client that trusted the
//! OpenAPI file alone, and passes on one that does what the controllers do.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Project, ok};
use crate::support::{run, stderr, stdout};

const HEAD: &str = "coolify:\n  project: default\n  environment: production\n  server: localhost\n";

/// The one application (or service) of the world.
fn app_of(dump: &Value) -> Value {
    let mut all: Vec<&Value> = ["applications", "services"]
        .iter()
        .flat_map(|k| dump["coolify"][k].as_array().unwrap())
        .filter(|a| a["deleting"] != true)
        .collect();
    assert_eq!(all.len(), 1, "one application in {dump:#}");
    all.remove(0).clone()
}

/// The application's deployments, oldest first.
fn deployments(app: &Value) -> Vec<Value> {
    app["deployments"].as_array().unwrap().clone()
}

/// The env var `key` (`preview`: its preview copy) of an application.
fn env<'a>(app: &'a Value, key: &str, preview: bool) -> Option<&'a Value> {
    app["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == key && e["is_preview"] == preview)
}

/// The `changed` fields of the `resource_updated` events of the latest run.
fn updated_fields(p: &Project, deployment: &str) -> Vec<String> {
    let runs = p.runs(deployment);
    let run = runs.last().unwrap()["run"].as_str().unwrap().to_owned();
    let export = p.export(&run);
    export["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "resource_updated")
        .flat_map(|e| e["payload"]["changed"].as_array().unwrap().clone())
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

/// Point 1: Coolify stores a github.com repository as `owner/repo` on
/// create and what it is sent on PATCH, and clones `github.com/{stored}`.
/// A client that compares its URL with the stored form PATCHes the URL on
/// the next apply, and the build clones
/// `https://github.com/https://github.com/...`.
#[test]
fn a_public_github_app_survives_its_second_apply_and_its_rollback() {
    let spec = format!(
        "name: site\n{HEAD}app:\n  git:\n    repository: https://github.com/acme/site\n    branch: main\n    build_command: npm run build\n  port: 3000\n  domains: [site.example.com]\n  health_check:\n    path: /\nverify:\n  timeout: 2s\n  http:\n    - url: https://site.example.com/\n      status: 200\n"
    );
    let p = Project::with_spec(&spec, &[]);
    ok(&p.apply());
    assert_eq!(app_of(&p.dump())["git_repository"], "acme/site");

    p.edit("spec.yaml", "npm run build", "npm run build:prod");
    ok(&p.apply());
    let app = app_of(&p.dump());
    assert_eq!(app["git_repository"], "acme/site");
    let last = deployments(&app).pop().unwrap();
    assert_eq!(last["status"], "finished", "{app:#}");
    assert!(
        app["serving"]
            .as_str()
            .unwrap()
            .starts_with("git https://github.com/acme/site@main"),
        "{app:#}"
    );

    // A failed verification rolls the change back with a PATCH too.
    p.edit("spec.yaml", "npm run build:prod", "npm run build:ci");
    let failed = run(p
        .cmd()
        .args(["apply", "spec.yaml", "--sandbox"])
        .env(fabrik::sandbox::FAULTS_ENV, "health_fail=true"));
    assert_eq!(failed.status.code(), Some(5), "{}", stderr(&failed));
    let app = app_of(&p.dump());
    assert_eq!(app["git_repository"], "acme/site", "{app:#}");
    assert_eq!(app["config"]["build_command"], "npm run build:prod");
    assert_eq!(deployments(&app).pop().unwrap()["status"], "finished");
    for r in p.requests() {
        let repo = r["body"]["git_repository"].as_str().unwrap_or_default();
        assert!(
            r["method"] != "PATCH" || !repo.contains("://"),
            "a PATCH sent a URL Coolify would clone as github.com/<URL>: {r}"
        );
    }
}

/// Point 2: an inline Dockerfile app gets port 80 whatever is sent (the
/// create reads `EXPOSE` from the base64 text), and `dockerfile` is in no
/// PATCH allow-list: the port is set after the create, and a changed
/// Dockerfile means a new application.
#[test]
fn an_inline_dockerfile_app_runs_on_its_port_updates_and_takes_a_new_dockerfile() {
    let spec = format!(
        "name: api\n{HEAD}app:\n  dockerfile:\n    file: Dockerfile\n  domains: [api.example.com]\n  env:\n    LOG_LEVEL: info\n"
    );
    let p = Project::with_spec(&spec, &[("Dockerfile", "FROM nginx:1.27\nEXPOSE 8080\n")]);
    ok(&p.apply());
    let first = app_of(&p.dump());
    assert_eq!(first["config"]["ports_exposes"], "8080", "{first:#}");

    // An update that does not touch the Dockerfile: no `dockerfile` sent.
    p.edit("spec.yaml", "LOG_LEVEL: info", "LOG_LEVEL: debug");
    ok(&p.apply());
    let app = app_of(&p.dump());
    assert_eq!(app["uuid"], first["uuid"]);
    assert!(
        p.requests()
            .iter()
            .all(|r| r["method"] != "PATCH" || r["body"].get("dockerfile").is_none()),
        "a PATCH sent `dockerfile`"
    );

    // A new Dockerfile: a new application, serving it.
    p.edit("Dockerfile", "EXPOSE 8080", "RUN echo v2\nEXPOSE 8081");
    let o = p.apply();
    ok(&o);
    let app = app_of(&p.dump());
    assert_ne!(app["uuid"], first["uuid"], "{app:#}");
    assert_eq!(app["config"]["ports_exposes"], "8081");
    assert_ne!(app["serving"], first["serving"]);
    assert_eq!(env(&app, "LOG_LEVEL", false).unwrap()["is_preview"], false);
    let status = p.json(&["status", "api"]);
    assert_eq!(
        status["deployment"]["resources"]["app"]["remote_id"],
        app["uuid"]
    );
}

/// Point 3: Coolify generates `SERVICE_PASSWORD_*` and the like for a
/// compose service and re-creates a missing one with a *new* value on the
/// next start; deleting it (as "not in the spec") changes the database
/// password the app gets, not the one the volume keeps.
#[test]
fn updating_a_compose_service_keeps_its_generated_passwords() {
    let compose = "services:\n  web:\n    image: nginx:1.27\n    environment:\n      DB_PASSWORD: ${SERVICE_PASSWORD_DB}\n      GREETING: ${GREETING}\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: ${SERVICE_PASSWORD_DB}\n";
    let spec = format!(
        "name: stack\n{HEAD}app:\n  compose:\n    file: docker-compose.yml\n    public_service: web\n  domains: [stack.example.com]\n  env:\n    GREETING: hello\n"
    );
    let p = Project::with_spec(&spec, &[("docker-compose.yml", compose)]);
    ok(&p.apply());
    let before = app_of(&p.dump());
    let password = env(&before, "SERVICE_PASSWORD_DB", false).unwrap()["value_fingerprint"].clone();
    assert!(password.is_string(), "{before:#}");

    p.edit("spec.yaml", "GREETING: hello", "GREETING: bonjour");
    ok(&p.apply());
    let after = app_of(&p.dump());
    assert_eq!(
        env(&after, "SERVICE_PASSWORD_DB", false).unwrap()["value_fingerprint"],
        password,
        "the generated password changed: {after:#}"
    );
    assert_ne!(
        env(&after, "GREETING", false).unwrap()["value_fingerprint"],
        env(&before, "GREETING", false).unwrap()["value_fingerprint"]
    );
}

/// Points 4 and 8: a one-click service's domain goes to the template's
/// public container (`wordpress`, not `wordpress-with-mysql`; else Coolify
/// deletes the service and answers 422), with the container port the
/// proxy sends it to (`ghost`: 2368).
#[test]
fn one_click_services_route_their_domain_to_the_public_container_and_port() {
    for (kind, container, url) in [
        (
            "wordpress-with-mysql",
            "wordpress",
            "https://blog.example.com",
        ),
        ("ghost", "ghost", "https://blog.example.com:2368"),
    ] {
        let spec =
            format!("name: blog\n{HEAD}app:\n  service: {kind}\n  domains: [blog.example.com]\n");
        let p = Project::with_spec(&spec, &[]);
        ok(&p.apply());
        let svc = app_of(&p.dump());
        let containers = svc["containers"].as_array().unwrap();
        let public = containers
            .iter()
            .find(|c| c["name"] == container)
            .unwrap_or_else(|| panic!("{kind}: no {container} in {svc:#}"));
        assert_eq!(public["fqdn"], url, "{kind}: {svc:#}");
        assert_eq!(svc["running"], true, "{kind}: {svc:#}");
    }
}

/// Point 5: Coolify skips a deploy while one of the same commit (`HEAD` for
/// an image) runs, and a running deployment deploys the application as it
/// was when it started. A client that adopts it reports success for the
/// old image.
#[tokio::test(flavor = "multi_thread")]
async fn a_change_made_while_a_deployment_runs_is_deployed() {
    let spec = format!(
        "name: web\n{HEAD}app:\n  image: traefik/whoami:v1.10\n  port: 80\n  domains: [web.example.com]\n"
    );
    let p = Project::with_spec(&spec, &[]);
    ok(&p.apply());
    let uuid = app_of(&p.dump())["uuid"].as_str().unwrap().to_owned();

    // Someone deploys the application outside Fabrik: a slow deployment.
    let mut config = fabrik::sandbox::SandboxConfig::new(p.sandbox_data());
    config.deploy_queue_time = Duration::ZERO;
    config.deploy_duration = Duration::from_secs(3);
    let sandbox = fabrik::sandbox::start(config).await.unwrap();
    let resp = crate::sandbox::support::client()
        .post(format!("{}/api/v1/deploy?uuid={uuid}", sandbox.coolify_url))
        .bearer_auth(sandbox.credentials.coolify_token.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    sandbox.shutdown().await.unwrap();

    p.edit("spec.yaml", "whoami:v1.10", "whoami:v1.11");
    let dir = p.path().to_owned();
    let o = tokio::task::spawn_blocking(move || {
        run(crate::support::fabrik(&dir).args(["apply", "spec.yaml", "--sandbox"]))
    })
    .await
    .unwrap();
    ok(&o);
    let app = app_of(&p.dump());
    assert_eq!(app["serving"], "image traefik/whoami:v1.11", "{app:#}");
    let all = deployments(&app);
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_eq!(all[1]["deployed"], "image traefik/whoami:v1.10");
    assert_eq!(all[2]["deployed"], "image traefik/whoami:v1.11");
}

/// Point 7: a service start is done when its containers, checked after
/// the start, run. A client that takes any `running*` status for done
/// reports success on the old containers' stale status; one that waits for
/// `running` never sees a failed start end.
#[test]
fn a_failed_service_start_fails_the_run_and_is_seen_at_once() {
    let compose = "services:\n  web:\n    image: nginx:1.27\n";
    let spec = format!(
        "name: stack\n{HEAD}app:\n  compose:\n    file: docker-compose.yml\n  domains: [stack.example.com]\n  env:\n    GREETING: hello\ntimeouts:\n  deploy: 30s\n"
    );
    let p = Project::with_spec(&spec, &[("docker-compose.yml", compose)]);
    ok(&p.apply());
    // The next start fails: the running containers' status is stale until
    // the next status check, which finds the new ones exited.
    p.edit("docker-compose.yml", "nginx:1.27", "nginx:1.28");
    let started = Instant::now();
    let o = run(p
        .cmd()
        .args(["apply", "spec.yaml", "--sandbox"])
        .env(fabrik::sandbox::FAULTS_ENV, "deploy_fail=true"));
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("ended failed") || stderr(&o).contains("ended failed"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a failed start was seen only at the deadline"
    );
}

/// Point 9: some controllers answer `errors` as a list, not an object; the
/// messages must reach the user.
#[test]
fn a_list_of_errors_reaches_the_user() {
    // `db` runs a database image: Coolify makes it a ServiceDatabase, which
    // takes no URL.
    let compose = "services:\n  web:\n    image: nginx:1.27\n  db:\n    image: postgres:16\n";
    let spec = format!(
        "name: stack\n{HEAD}app:\n  compose:\n    file: docker-compose.yml\n    public_service: db\n  domains: [stack.example.com]\n"
    );
    let p = Project::with_spec(&spec, &[("docker-compose.yml", compose)]);
    let o = p.apply();
    assert_ne!(o.status.code(), Some(0));
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(
        said.contains("Service container with 'db' not found."),
        "{said}"
    );
}

/// Point 10: Coolify trims values, stores "" as null, copies every new
/// variable for previews, and passes every variable to the build unless
/// told otherwise. Secrets stay out of the build; equal values, the
/// copies and the empty one are no change.
#[test]
fn env_vars_are_compared_as_coolify_stores_them_and_secrets_stay_out_of_builds() {
    let spec = format!(
        "name: web\n{HEAD}app:\n  git:\n    repository: https://github.com/acme/web\n    branch: main\n  port: 80\n  domains: [web.example.com]\n  env:\n    GREETING: \"  hello  \"\n    EMPTY: \"\"\n    CERT: |\n      -----BEGIN-----\n      abc\n    TOKEN: ${{secret.TOKEN}}\n  build_env:\n    NODE_ENV: production\nsecrets:\n  TOKEN:\n    generate: true\n"
    );
    let p = Project::with_spec(&spec, &[]);
    ok(&p.apply());
    let app = app_of(&p.dump());
    assert_eq!(env(&app, "TOKEN", false).unwrap()["is_buildtime"], false);
    assert_eq!(env(&app, "TOKEN", false).unwrap()["is_runtime"], true);
    assert_eq!(env(&app, "GREETING", false).unwrap()["is_buildtime"], true);
    assert_eq!(env(&app, "NODE_ENV", false).unwrap()["is_buildtime"], true);
    assert_eq!(env(&app, "TOKEN", true).unwrap()["is_buildtime"], false);

    p.edit("spec.yaml", "branch: main", "branch: release");
    ok(&p.apply());
    let fields = updated_fields(&p, "web");
    assert_eq!(fields, vec!["git_branch"], "{fields:?}");
    let app = app_of(&p.dump());
    for key in ["GREETING", "EMPTY", "CERT", "TOKEN", "NODE_ENV"] {
        assert!(
            env(&app, key, true).is_some(),
            "{key}'s preview copy: {app:#}"
        );
    }
}

/// Point 11: without domains, Coolify gives an application a public
/// sslip.io URL unless told not to.
#[test]
fn an_app_without_domains_gets_no_public_url() {
    let spec = format!("name: worker\n{HEAD}app:\n  image: traefik/whoami:v1.10\n  port: 80\n");
    let p = Project::with_spec(&spec, &[]);
    ok(&p.apply());
    let app = app_of(&p.dump());
    assert_eq!(app["fqdn"], Value::Null, "{app:#}");
}

/// Point 12: Coolify lower-cases environment names and looks them up
/// exactly; `railpack` exists from 4.1.0, refused before anything changes
/// on an older server.
#[test]
fn environment_names_and_version_gates() {
    let spec = "name: worker\ncoolify:\n  project: default\n  environment: Production\n  server: localhost\napp:\n  image: traefik/whoami:v1.10\n  port: 80\n";
    let p = Project::with_spec(spec, &[]);
    ok(&p.apply());

    let railpack = format!(
        "name: site\n{HEAD}app:\n  git:\n    repository: https://github.com/acme/site\n    build_pack: railpack\n  port: 3000\n  domains: [site.example.com]\ndns:\n  zone: example.com\n  records:\n    - type: A\n      name: site.example.com\n      content: 203.0.113.7\n"
    );
    let old = Project::with_spec(&railpack, &[]);
    let o = run(old
        .cmd()
        .args(["apply", "spec.yaml", "--sandbox"])
        .env(fabrik::sandbox::COOLIFY_VERSION_ENV, "4.0.0-beta.474"));
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("railpack"), "{}", stderr(&o));
    let world = old.dump();
    assert_eq!(world["coolify"]["applications"], json!([]), "{world:#}");
    let records: usize = world["cloudflare"]["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["records"].as_array().unwrap().len())
        .sum();
    assert_eq!(records, 0, "nothing is created before the refusal");

    let new = Project::with_spec(&railpack, &[]);
    ok(&run(new
        .cmd()
        .args(["apply", "spec.yaml", "--sandbox"])
        .env(fabrik::sandbox::COOLIFY_VERSION_ENV, "4.1.0")));
}

/// The uuid of the Coolify server named `name`, as the sandbox on the
/// project's data file lists it (starting it adds the `extra` servers).
async fn server_uuid(p: &Project, extra: &[&str], name: &str) -> String {
    let mut config = fabrik::sandbox::SandboxConfig::new(p.sandbox_data());
    config.servers = extra.iter().map(|s| (*s).to_owned()).collect();
    let sandbox = fabrik::sandbox::start(config).await.unwrap();
    let servers: Value = crate::sandbox::support::client()
        .get(format!("{}/api/v1/servers", sandbox.coolify_url))
        .bearer_auth(sandbox.credentials.coolify_token.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    sandbox.shutdown().await.unwrap();
    servers
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no server {name} in {servers:#}"))["uuid"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `fabrik apply` in a blocking task (the test runs a sandbox of its own
/// on the same data file in between).
async fn apply_blocking(p: &Project) -> std::process::Output {
    let dir = p.path().to_owned();
    tokio::task::spawn_blocking(move || {
        run(crate::support::fabrik(&dir).args(["apply", "spec.yaml", "--sandbox"]))
    })
    .await
    .unwrap()
}

/// No Coolify API moves an application to another server, project or
/// environment, or turns an application into a service or one one-click
/// type into another. A client that PATCHes the application it finds by
/// uuid reports it moved while it runs where it was; one that looks it up
/// as the new kind creates a second one beside it. Both are refused
/// before anything changes; naming the same server by its uuid is no move.
#[tokio::test(flavor = "multi_thread")]
async fn an_application_is_never_moved_or_turned_into_another_kind() {
    let spec = format!(
        "name: web\n{HEAD}app:\n  image: traefik/whoami:v1.10\n  port: 80\n  domains: [web.example.com]\n"
    );
    let p = Project::with_spec(&spec, &[]);
    ok(&apply_blocking(&p).await);
    let uuid = app_of(&p.dump())["uuid"].clone();
    let localhost = server_uuid(&p, &["edge"], "localhost").await;

    let refused = |o: &std::process::Output, said: &str, was: &Value| {
        assert_ne!(o.status.code(), Some(0), "{}", stdout(o));
        assert!(stderr(o).contains(said), "{}", stderr(o));
        let now = app_of(&p.dump());
        assert_eq!(now["uuid"], was["uuid"]);
        assert_eq!(deployments(&now).len(), deployments(was).len(), "{now:#}");
        assert_eq!(now["config"], was["config"], "{now:#}");
    };
    p.edit("spec.yaml", "server: localhost", "server: edge");
    let before = app_of(&p.dump());
    let plan = p.run(&["plan", "spec.yaml"]);
    refused(&plan, "Coolify cannot move an application", &before);
    let o = apply_blocking(&p).await;
    refused(&o, "Coolify cannot move an application", &before);
    p.edit(
        "spec.yaml",
        "server: edge",
        &format!("server: {{ uuid: {localhost} }}"),
    );
    ok(&apply_blocking(&p).await);
    let before = app_of(&p.dump());
    assert_eq!(before["uuid"], uuid);

    p.edit(
        "spec.yaml",
        "  image: traefik/whoami:v1.10\n  port: 80\n",
        "  service: ghost\n",
    );
    let o = apply_blocking(&p).await;
    refused(
        &o,
        "the deployment runs an application on Coolify, the spec asks for the one-click service \"ghost\"",
        &before,
    );
}

/// A one-click service stays the type it was created as.
#[test]
fn a_one_click_service_keeps_its_type() {
    let spec = format!("name: blog\n{HEAD}app:\n  service: ghost\n  domains: [blog.example.com]\n");
    let p = Project::with_spec(&spec, &[]);
    ok(&p.apply());
    let before = app_of(&p.dump());
    p.edit(
        "spec.yaml",
        "service: ghost",
        "service: wordpress-with-mysql",
    );
    let o = p.apply();
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("runs the one-click service \"ghost\" on Coolify, the spec asks for the one-click service \"wordpress-with-mysql\""),
        "{}",
        stderr(&o)
    );
    let after = app_of(&p.dump());
    assert_eq!(after["uuid"], before["uuid"]);
    assert_eq!(after["service_type"], before["service_type"], "{after:#}");
}

/// Point 6: every git build and health check field of the spec reaches
/// Coolify. Changing one plans an update of the application, and the
/// apply PATCHes the Coolify field with the new value; a client that drops
/// the field plans nothing and sends nothing.
#[test]
fn every_git_build_and_health_check_field_reaches_coolify() {
    let spec = format!(
        "name: site\n{HEAD}app:\n  git:\n    repository: https://github.com/acme/site\n    branch: main\n    commit: 0a1b2c3d\n    build_pack: nixpacks\n    base_directory: /\n    install_command: npm ci\n    build_command: npm run build\n    start_command: npm start\n  port: 80\n  domains: [site.example.com]\n  health_check:\n    path: /health\n    method: GET\n    scheme: http\n    interval: 10s\n    timeout: 5s\n    retries: 3\n    start_period: 5s\n"
    );
    let p = Project::with_spec(&spec, &[]);
    ok(&p.apply());
    let cases: &[(&str, &str, &str, Value)] = &[
        (
            "commit: 0a1b2c3d",
            "commit: 9f8e7d6c",
            "git_commit_sha",
            json!("9f8e7d6c"),
        ),
        (
            "base_directory: /",
            "base_directory: /web",
            "base_directory",
            json!("/web"),
        ),
        (
            "install_command: npm ci",
            "install_command: npm install",
            "install_command",
            json!("npm install"),
        ),
        (
            "build_command: npm run build",
            "build_command: npm run dist",
            "build_command",
            json!("npm run dist"),
        ),
        (
            "start_command: npm start",
            "start_command: node server.js",
            "start_command",
            json!("node server.js"),
        ),
        (
            "build_pack: nixpacks",
            "build_pack: static\n    publish_directory: /out",
            "publish_directory",
            json!("/out"),
        ),
        (
            "build_pack: static\n    publish_directory: /out",
            "build_pack: dockerfile\n    dockerfile_location: /docker/Dockerfile",
            "dockerfile_location",
            json!("/docker/Dockerfile"),
        ),
        (
            "method: GET",
            "method: HEAD",
            "health_check_method",
            json!("HEAD"),
        ),
        (
            "scheme: http",
            "scheme: https",
            "health_check_scheme",
            json!("https"),
        ),
        (
            "timeout: 5s",
            "timeout: 7s",
            "health_check_timeout",
            json!(7),
        ),
        ("retries: 3", "retries: 4", "health_check_retries", json!(4)),
        (
            "start_period: 5s",
            "start_period: 9s",
            "health_check_start_period",
            json!(9),
        ),
        (
            "interval: 10s",
            "interval: 20s",
            "health_check_interval",
            json!(20),
        ),
    ];
    for (from, to, field, value) in cases {
        p.edit("spec.yaml", from, to);
        let plan = p.json(&["plan", "spec.yaml"]);
        let app = plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "app")
            .unwrap();
        assert_eq!(app["action"], "update", "{to}: {plan:#}");
        let seen = p.requests().len();
        ok(&p.apply());
        let sent: Vec<Value> = p.requests()[seen..]
            .iter()
            .filter(|r| r["method"] == "PATCH")
            .filter_map(|r| r["body"].get(*field).cloned())
            .collect();
        assert!(
            sent.iter()
                .any(|v| v == value || v.as_str() == Some(value.to_string().as_str())),
            "{to}: no PATCH sent {field} = {value}: {sent:?}"
        );
    }
}
