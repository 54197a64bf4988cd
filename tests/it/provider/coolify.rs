//! The Coolify client against a scripted fake: exact requests and call counts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use fabrik::id::DeploymentId;
use fabrik::ownership::OwnershipMark;
use fabrik::provider::*;
use fabrik::secret::SecretValue;
use serde_json::{Value, json};

use super::fake::{Fake, Reply, Retries, http};

pub const TOKEN: &str = "12|coolify-test-token-s3cret";

pub fn mark() -> OwnershipMark {
    OwnershipMark::new(
        DeploymentId::new("blog").unwrap(),
        "01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap(),
    )
}

pub fn target() -> Target {
    Target {
        project: "blog-project".into(),
        environment: "production".into(),
        server: "localhost".into(),
        destination: None,
    }
}

pub fn resolved(version: &str) -> ResolvedTarget {
    ResolvedTarget {
        version: ServerVersion::parse(version).unwrap(),
        project_uuid: "proj-uuid".into(),
        project_name: "blog-project".into(),
        environment_uuid: "env-uuid".into(),
        environment_name: "production".into(),
        server_uuid: "srv-uuid".into(),
        server_name: "localhost".into(),
        destination_uuid: None,
    }
}

/// A fake Coolify with one project, environment, server and destination.
pub async fn world(version: &str) -> (Fake, CoolifyClient, Arc<Retries>) {
    let fake = Fake::start().await;
    fake.on("GET", "/api/v1/version", vec![Reply::text(200, version)]);
    fake.on(
        "GET",
        "/api/v1/projects",
        vec![Reply::json(
            200,
            json!([{"id":1,"uuid":"proj-uuid","name":"blog-project","description":null},
                   {"id":2,"uuid":"other-uuid","name":"other","description":null}]),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/projects/proj-uuid/environments",
        vec![Reply::json(
            200,
            json!([{"id":1,"uuid":"env-uuid","name":"production"},{"id":2,"uuid":"stg-uuid","name":"staging"}]),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/servers",
        vec![Reply::json(
            200,
            json!([{"uuid":"srv-uuid","name":"localhost","ip":"host.docker.internal"}]),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/destinations",
        vec![Reply::json(
            200,
            json!([{"uuid":"dst-uuid","name":"coolify","network":"coolify","server_uuid":"srv-uuid"},
                   {"uuid":"dst-other","name":"elsewhere","network":"x","server_uuid":"srv-other"}]),
        )],
    );
    // The permission probes of the preflight: a write and a deploy aimed
    // at an application that does not exist (Coolify checks the ability
    // first, then answers 404).
    fake.on(
        "PATCH",
        "/api/v1/applications/fabrik-permission-probe",
        vec![Reply::json(
            404,
            json!({"message":"Application not found."}),
        )],
    );
    fake.on(
        "POST",
        "/api/v1/deploy",
        vec![Reply::json(404, json!({"message":"No resources found."}))],
    );
    let retries = Arc::new(Retries::default());
    let client = client_of(&fake, retries.clone());
    (fake, client, retries)
}

/// A client of `fake` (a new one knows nothing another one read).
pub fn client_of(fake: &Fake, retries: Arc<Retries>) -> CoolifyClient {
    CoolifyClient::new(
        CoolifyConfig {
            base_url: fake.base.clone(),
            token: SecretValue::new(TOKEN),
        },
        http(retries),
    )
    .unwrap()
}

pub fn image_app() -> AppDesired {
    AppDesired {
        name: "blog".into(),
        description: Some("The blog".into()),
        source: AppSource::DockerImage {
            image: "ghcr.io/acme/blog".into(),
            tag: Some("1.2.0".into()),
        },
        domains: vec!["blog.example.com".into()],
        ports: vec![3000],
        health: Some(HealthCheck {
            port: None,
            interval: Some(30),
            ..HealthCheck::of_path("/health")
        }),
        env: vec![],
    }
}

pub fn app_json(uuid: &str, name: &str, description: &str) -> Value {
    json!({
        "uuid": uuid, "name": name, "description": description,
        "build_pack": "dockerimage",
        "docker_registry_image_name": "ghcr.io/acme/blog",
        "docker_registry_image_tag": "1.2.0",
        "fqdn": "https://blog.example.com",
        "ports_exposes": "3000",
        "health_check_enabled": true,
        "health_check_path": "/health",
        "health_check_interval": 30,
        "health_check_method": "GET",
        "health_check_scheme": "http",
        "health_check_return_code": 200,
        "health_check_timeout": 5,
        "health_check_retries": 3,
        "health_check_start_period": 10,
        "status": "running:healthy",
    })
}

fn owned_description() -> String {
    format!("The blog | {}", mark().to_text())
}

fn remote(uuid: &str) -> RemoteApp {
    RemoteApp {
        kind: AppKind::Application,
        uuid: uuid.into(),
        name: "blog".into(),
        description: Some(owned_description()),
        domains: vec![],
        status: None,
        mark: Some(mark()),
    }
}

#[tokio::test]
async fn preflight_resolves_names_and_sends_token_and_user_agent() {
    let (fake, client, _) = world("4.3.11").await;
    let t = client.preflight(&target()).await.unwrap();
    assert_eq!(
        t,
        ResolvedTarget {
            destination_uuid: None,
            ..resolved("4.3.11")
        }
    );
    // The same seven requests as one after another, in two rounds: what
    // needs nothing first, at once; then what needs the project, the
    // version and the server.
    let lines = fake.lines();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec![
            "GET /api/v1/destinations",
            "GET /api/v1/projects",
            "GET /api/v1/projects/proj-uuid/environments",
            "GET /api/v1/servers",
            "GET /api/v1/version",
            "PATCH /api/v1/applications/fabrik-permission-probe",
            "POST /api/v1/deploy?uuid=fabrik-permission-probe",
        ]
    );
    let at = |l: &str| lines.iter().position(|x| x == l).unwrap();
    for first in [
        "GET /api/v1/version",
        "GET /api/v1/projects",
        "GET /api/v1/servers",
    ] {
        for then in [
            "GET /api/v1/projects/proj-uuid/environments",
            "GET /api/v1/destinations",
        ] {
            assert!(at(first) < at(then), "{first} after {then}: {lines:?}");
        }
    }
    for hit in fake.hits().into_iter().filter(|h| h.method == "GET") {
        assert_eq!(
            hit.header("authorization").unwrap(),
            format!("Bearer {TOKEN}")
        );
        assert_eq!(
            hit.header("user-agent").unwrap(),
            format!("fabrik/{}", env!("CARGO_PKG_VERSION"))
        );
        let accept = if hit.path == "/api/v1/version" {
            "text/plain, */*;q=0.5"
        } else {
            "application/json"
        };
        assert_eq!(hit.header("accept").unwrap(), accept);
        assert!(hit.body.is_empty());
    }
}

#[tokio::test]
async fn preflight_by_uuid_and_named_destination() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/destinations",
        vec![Reply::json(
            200,
            json!([{"uuid":"dst-uuid","name":"coolify","server_uuid":"srv-uuid"},
                   {"uuid":"dst-2","name":"second","server_uuid":"srv-uuid"}]),
        )],
    );
    let mut t = target();
    t.project = "proj-uuid".into();
    t.environment = "env-uuid".into();
    let err = client.preflight(&t).await.unwrap_err();
    assert!(
        matches!(err.kind, ErrorKind::AmbiguousMatch { ref candidates } if candidates.len() == 2)
    );
    assert!(err.hint.unwrap().contains("coolify, second"));
    t.destination = Some("second".into());
    let r = client.preflight(&t).await.unwrap();
    assert_eq!(r.destination_uuid.as_deref(), Some("dst-2"));
    assert_eq!(r.project_name, "blog-project");
}

#[tokio::test]
async fn preflight_finds_a_token_that_may_not_write_or_deploy() {
    for (path, method, ability) in [
        (
            "/api/v1/applications/fabrik-permission-probe",
            "PATCH",
            "write",
        ),
        ("/api/v1/deploy", "POST", "deploy"),
    ] {
        let (fake, client, _) = world("4.3.11").await;
        fake.on(
            method,
            path,
            vec![Reply::json(
                403,
                json!({"message": format!("Missing required permissions: {ability}")}),
            )],
        );
        let err = client.preflight(&target()).await.unwrap_err();
        assert!(
            matches!(
                err.kind,
                ErrorKind::Forbidden(ForbiddenReason::MissingPermission { ref ability })
                    if ability.as_deref() == Some(ability_name(path))
            ),
            "{err:?}"
        );
        assert!(err.hint.is_some());
        // Nothing was created or deployed: only reads and the two probes.
        assert!(fake.hits().iter().all(|h| h.method == "GET"
            || h.path.ends_with("fabrik-permission-probe")
            || h.path == "/api/v1/deploy"));
    }
}

fn ability_name(path: &str) -> &'static str {
    if path.ends_with("deploy") {
        "deploy"
    } else {
        "write"
    }
}

#[tokio::test]
async fn preflight_before_4_2_skips_destinations() {
    let (fake, client, _) = world("4.1.2").await;
    let r = client.preflight(&target()).await.unwrap();
    assert!(!r.version.supports_tags());
    assert_eq!(fake.count("GET", "/api/v1/destinations"), 0);
}

#[tokio::test]
async fn create_image_app_sends_the_exact_body_with_tags_and_reads_back() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/applications/dockerimage",
        vec![Reply::json(
            201,
            json!({"uuid":"app-uuid","domains":"https://blog.example.com"}),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/applications/app-uuid",
        vec![Reply::json(
            200,
            app_json("app-uuid", "blog", &owned_description()),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/applications/app-uuid/envs",
        vec![Reply::json(200, json!([]))],
    );
    let app = client
        .create_app(&resolved("4.3.11"), &image_app(), &mark())
        .await
        .unwrap();
    assert_eq!(app.uuid, "app-uuid");
    assert_eq!(app.mark, Some(mark()));
    assert_eq!(app.domains, vec!["https://blog.example.com"]);
    let post = &fake.find("POST", "/api/v1/applications/dockerimage")[0];
    assert_eq!(post.header("content-type").unwrap(), "application/json");
    assert_eq!(
        post.json(),
        json!({
            "project_uuid": "proj-uuid",
            "server_uuid": "srv-uuid",
            "environment_name": "production",
            "environment_uuid": "env-uuid",
            "name": "blog",
            "description": owned_description(),
            "instant_deploy": false,
            "tags": ["fabrik", "fabrik-blog"],
            "docker_registry_image_name": "ghcr.io/acme/blog",
            "docker_registry_image_tag": "1.2.0",
            "ports_exposes": "3000",
            "domains": "https://blog.example.com",
            "health_check_enabled": true,
            "health_check_path": "/health",
            "health_check_interval": 30,
            "health_check_method": "GET",
            "health_check_scheme": "http",
            "health_check_return_code": 200,
            "health_check_timeout": 5,
            "health_check_retries": 3,
            "health_check_start_period": 10,
        })
    );
    assert_eq!(
        fake.lines(),
        vec![
            "POST /api/v1/applications/dockerimage",
            // Read back, and its env vars beside (for the env reconcile).
            "GET /api/v1/applications/app-uuid",
            "GET /api/v1/applications/app-uuid/envs",
        ]
    );
}

#[tokio::test]
async fn create_before_4_2_marks_the_description_only() {
    let (fake, client, _) = world("4.1.2").await;
    fake.on(
        "POST",
        "/api/v1/applications/dockerimage",
        vec![Reply::json(201, json!({"uuid":"a1"}))],
    );
    fake.on(
        "GET",
        "/api/v1/applications/a1",
        vec![Reply::json(
            200,
            app_json("a1", "blog", &owned_description()),
        )],
    );
    client
        .create_app(&resolved("4.1.2"), &image_app(), &mark())
        .await
        .unwrap();
    let body = fake.find("POST", "/api/v1/applications/dockerimage")[0].json();
    assert!(body.get("tags").is_none());
    assert_eq!(
        OwnershipMark::parse(body["description"].as_str().unwrap()),
        Some(mark())
    );
}

#[tokio::test]
async fn every_form_goes_to_its_endpoint_with_base64_where_required() {
    let (fake, client, _) = world("4.3.11").await;
    for (path, uuid) in [
        ("/api/v1/applications/dockerfile", "df"),
        ("/api/v1/applications/public", "git"),
        ("/api/v1/services", "svc"),
    ] {
        fake.on("POST", path, vec![Reply::json(201, json!({"uuid": uuid}))]);
    }
    fake.on(
        "GET",
        "/api/v1/applications/df",
        vec![Reply::json(200, json!({"uuid":"df","name":"blog"}))],
    );
    fake.on(
        "PATCH",
        "/api/v1/applications/df",
        vec![Reply::json(200, json!({"uuid":"df"}))],
    );
    fake.on(
        "GET",
        "/api/v1/applications/git",
        vec![Reply::json(200, json!({"uuid":"git","name":"blog"}))],
    );
    fake.on(
        "GET",
        "/api/v1/services/svc",
        vec![Reply::json(200, json!({"uuid":"svc","name":"blog"}))],
    );
    let t = resolved("4.3.11");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);

    let dockerfile = "FROM nginx:1.27\nEXPOSE 80\n";
    let mut d = image_app();
    d.source = AppSource::Dockerfile {
        dockerfile: dockerfile.into(),
    };
    client.create_app(&t, &d, &mark()).await.unwrap();
    let body = fake.find("POST", "/api/v1/applications/dockerfile")[0].json();
    assert_eq!(body["dockerfile"], b64(dockerfile));
    assert!(body.get("ports_exposes").is_none());
    assert!(body.get("build_pack").is_none());
    // Coolify ignores the port of a Dockerfile create and stores 80
    // (`AC:2090-2098 @4.3.11`): it is PATCHed right after.
    assert_eq!(
        fake.find("PATCH", "/api/v1/applications/df")[0].json(),
        json!({"ports_exposes": "3000"})
    );

    d.source = AppSource::Git {
        repository: "https://github.com/acme/blog".into(),
        branch: "main".into(),
        build_pack: BuildPack::Nixpacks,
        build: Default::default(),
    };
    client.create_app(&t, &d, &mark()).await.unwrap();
    let body = fake.find("POST", "/api/v1/applications/public")[0].json();
    assert_eq!(body["git_repository"], "https://github.com/acme/blog");
    assert_eq!(body["git_branch"], "main");
    assert_eq!(body["build_pack"], "nixpacks");
    assert_eq!(body["ports_exposes"], "3000");

    let compose = "services:\n  web:\n    image: nginx\n";
    d.source = AppSource::Compose {
        compose: compose.into(),
        public_service: Some("web".into()),
    };
    let app = client.create_app(&t, &d, &mark()).await.unwrap();
    assert_eq!(app.kind, AppKind::Service);
    let body = fake.find("POST", "/api/v1/services")[0].json();
    assert_eq!(body["docker_compose_raw"], b64(compose));
    assert!(body.get("type").is_none());
    assert!(body.get("domains").is_none());
    // A service takes its domains per compose service, with the port the
    // proxy sends them to (`parsers.php:1839-1848 @4.3.11`).
    assert_eq!(
        body["urls"],
        json!([{"name": "web", "url": "https://blog.example.com:3000"}])
    );
    assert_eq!(body["instant_deploy"], false);

    d.source = AppSource::OneClick {
        service_type: "ghost".into(),
    };
    client.create_app(&t, &d, &mark()).await.unwrap();
    let body = fake.find("POST", "/api/v1/services")[1].json();
    assert_eq!(body["type"], "ghost");
    assert!(body.get("docker_compose_raw").is_none());
    assert_eq!(
        body["urls"],
        json!([{"name": "ghost", "url": "https://blog.example.com:2368"}])
    );
    assert_eq!(body["tags"], json!(["fabrik", "fabrik-blog"]));

    // Without domains there is nothing to route.
    d.domains.clear();
    client.create_app(&t, &d, &mark()).await.unwrap();
    let body = fake.find("POST", "/api/v1/services")[2].json();
    assert!(body.get("urls").is_none());
}

#[tokio::test]
async fn a_created_app_that_cannot_be_read_back_is_a_failure() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/applications/dockerimage",
        vec![Reply::json(201, json!({"uuid":"ghost"}))],
    );
    fake.on(
        "GET",
        "/api/v1/applications/ghost",
        vec![Reply::json(404, json!({"message":"Application not found"}))],
    );
    let err = client
        .create_app(&resolved("4.3.11"), &image_app(), &mark())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NotFound);
    assert!(err.message.contains("ghost"));
}

#[tokio::test(start_paused = true)]
async fn a_create_that_timed_out_is_not_repeated_and_is_found_by_its_mark() {
    let (fake, client, retries) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/applications/dockerimage",
        vec![Reply::json(201, json!({"uuid":"late"})).after(Duration::from_secs(60))],
    );
    let err = client
        .create_app(&resolved("4.3.11"), &image_app(), &mark())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Timeout { request_sent: true });
    assert!(err.outcome_unknown());
    assert!(!err.is_transient());
    assert_eq!(fake.count("POST", "/api/v1/applications/dockerimage"), 1);
    assert!(retries.delays().is_empty());

    // The caller looks it up instead: the app exists, carrying the mark.
    fake.on(
        "GET",
        "/api/v1/projects/proj-uuid/env-uuid",
        vec![Reply::json(
            200,
            json!({"uuid":"env-uuid","name":"production","applications":[
            app_json("late", "blog", &owned_description()),
            app_json("foreign", "blog", "made by hand"),
        ],"services":[]}),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/applications/late",
        vec![Reply::json(
            200,
            app_json("late", "blog", &owned_description()),
        )],
    );
    let lookup = AppLookup {
        kind: AppKind::Application,
        uuid: None,
        name: "blog".into(),
        deployment: mark().deployment,
    };
    let found = client
        .find_app(&resolved("4.3.11"), &lookup)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.uuid, "late");
    assert_eq!(fake.count("POST", "/api/v1/applications/dockerimage"), 1);
}

#[tokio::test]
async fn find_app_prefers_the_stored_uuid_and_refuses_to_guess() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/applications/stored",
        vec![Reply::json(
            200,
            app_json("stored", "blog", &owned_description()),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/applications/stored/envs",
        vec![Reply::json(200, json!([]))],
    );
    let mut lookup = AppLookup {
        kind: AppKind::Application,
        uuid: Some("stored".into()),
        name: "blog".into(),
        deployment: mark().deployment,
    };
    let t = resolved("4.3.11");
    assert_eq!(
        client.find_app(&t, &lookup).await.unwrap().unwrap().uuid,
        "stored"
    );
    // The env vars are read beside: a lookup by uuid is for a drift check
    // or an update, which compares them next.
    let mut lines = fake.lines();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "GET /api/v1/applications/stored",
            "GET /api/v1/applications/stored/envs"
        ]
    );

    // Stored uuid gone (for a new run: a run reads an app once), two
    // owned apps with the name: ambiguous.
    let client = client_of(&fake, Arc::default());
    fake.on(
        "GET",
        "/api/v1/applications/stored",
        vec![Reply::json(
            404,
            json!({"message":"Application not found."}),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/projects/proj-uuid/env-uuid",
        vec![Reply::json(
            200,
            json!({"applications":[
                app_json("one", "blog", &owned_description()),
                app_json("two", "blog", &mark().to_text()),
            ]}),
        )],
    );
    let err = client.find_app(&t, &lookup).await.unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::AmbiguousMatch {
            candidates: vec!["one".into(), "two".into()]
        }
    );

    // Only foreign apps with the name: none is Fabrik's.
    fake.on(
        "GET",
        "/api/v1/projects/proj-uuid/env-uuid",
        vec![Reply::json(
            200,
            json!({"applications":[app_json("x", "blog", "hand made")]}),
        )],
    );
    lookup.uuid = None;
    assert_eq!(client.find_app(&t, &lookup).await.unwrap(), None);
}

#[tokio::test]
async fn update_patches_only_what_differs() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/applications/app",
        vec![Reply::json(
            200,
            app_json("app", "blog", &owned_description()),
        )],
    );
    fake.on(
        "PATCH",
        "/api/v1/applications/app",
        vec![Reply::json(200, json!({"uuid":"app"}))],
    );
    // Same state: no PATCH at all (Coolify rejects an empty one).
    let changed = client
        .update_app(&remote("app"), &image_app(), None)
        .await
        .unwrap();
    assert!(changed.is_empty());
    assert_eq!(fake.count("PATCH", "/api/v1/applications/app"), 0);

    let mut d = image_app();
    d.source = AppSource::DockerImage {
        image: "ghcr.io/acme/blog".into(),
        tag: Some("1.3.0".into()),
    };
    d.domains = vec![
        "https://blog.example.com".into(),
        "www.blog.example.com".into(),
    ];
    let changed = client.update_app(&remote("app"), &d, None).await.unwrap();
    assert_eq!(changed, vec!["docker_registry_image_tag", "domains"]);
    let patch = fake.find("PATCH", "/api/v1/applications/app")[0].json();
    assert_eq!(
        patch,
        json!({"docker_registry_image_tag":"1.3.0","domains":"https://blog.example.com,https://www.blog.example.com"})
    );
}

#[tokio::test]
async fn update_refuses_to_change_an_image_app_into_a_git_build() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/applications/app",
        vec![Reply::json(
            200,
            app_json("app", "blog", &owned_description()),
        )],
    );
    let mut d = image_app();
    d.source = AppSource::Git {
        repository: "r".into(),
        branch: "main".into(),
        build_pack: BuildPack::Static,
        build: Default::default(),
    };
    let err = client
        .update_app(&remote("app"), &d, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    assert_eq!(fake.count("PATCH", "/api/v1/applications/app"), 0);
}

/// An env var as the engine makes it: a secret is kept out of the build.
fn env(key: &str, value: EnvValue, preview: bool) -> EnvVarDesired {
    let is_buildtime = matches!(value, EnvValue::Plain(_));
    EnvVarDesired {
        key: key.into(),
        value,
        is_preview: preview,
        is_literal: false,
        is_multiline: false,
        is_buildtime,
    }
}

#[tokio::test]
async fn env_reconcile_upserts_the_difference_and_deletes_extras() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/applications/app/envs",
        vec![Reply::json(200, json!([
            {"uuid":"e1","key":"SAME","value":"1","is_preview":false,"is_literal":false,"is_multiline":false},
            {"uuid":"e2","key":"CHANGED","value":"old","is_preview":false},
            {"uuid":"e3","key":"HIDDEN","is_preview":false},
            {"uuid":"e4","key":"EXTRA","value":"x","is_preview":false},
            {"uuid":"e5","key":"SAME","value":"preview-value","is_preview":true},
        ]))],
    );
    fake.on(
        "PATCH",
        "/api/v1/applications/app/envs/bulk",
        vec![Reply::json(201, json!([]))],
    );
    fake.on(
        "DELETE",
        "/api/v1/applications/app/envs/e4",
        vec![Reply::json(
            200,
            json!({"message":"Environment variable deleted."}),
        )],
    );
    fake.on(
        "DELETE",
        "/api/v1/applications/app/envs/e5",
        vec![Reply::json(
            200,
            json!({"message":"Environment variable deleted."}),
        )],
    );
    let desired = vec![
        env("SAME", EnvValue::Plain("1".into()), false),
        env("CHANGED", EnvValue::Plain("new".into()), false),
        env(
            "HIDDEN",
            EnvValue::Secret(SecretValue::new("hidden-secret-value")),
            false,
        ),
        env(
            "NEW",
            EnvValue::Secret(SecretValue::new("brand-new-secret")),
            false,
        ),
    ];
    let diff = client
        .reconcile_env(&remote("app"), &desired)
        .await
        .unwrap();
    // The preview copies Coolify makes of every variable
    // (`EnvironmentVariable.php:95-119 @4.3.11`) are kept in step, never
    // deleted; a new variable's copy is Coolify's to make.
    assert_eq!(
        diff,
        EnvDiff {
            created: vec![
                "CHANGED (preview)".into(),
                "HIDDEN (preview)".into(),
                "NEW".into()
            ],
            updated: vec!["SAME (preview)".into(), "CHANGED".into()],
            unverified: vec!["HIDDEN".into()],
            deleted: vec!["EXTRA".into()],
            unchanged: vec!["SAME".into()],
        }
    );
    let bulk = fake.find("PATCH", "/api/v1/applications/app/envs/bulk");
    assert_eq!(bulk.len(), 1);
    let item = |key: &str, value: &str, preview: bool, build: bool| {
        json!({"key": key, "value": value, "is_preview": preview, "is_literal": false,
               "is_multiline": false, "is_runtime": true, "is_buildtime": build})
    };
    assert_eq!(
        bulk[0].json(),
        json!({"data":[
            item("SAME", "1", true, true),
            item("CHANGED", "new", false, true),
            item("CHANGED", "new", true, true),
            item("HIDDEN", "hidden-secret-value", false, false),
            item("HIDDEN", "hidden-secret-value", true, false),
            item("NEW", "brand-new-secret", false, false),
        ]})
    );
    assert!(!bulk[0].body.contains("is_build_time"));
    assert_eq!(fake.count("POST", "/api/v1/applications/app/envs"), 0);
    assert_eq!(fake.count("DELETE", "/api/v1/applications/app/envs/e4"), 1);
    assert_eq!(fake.count("DELETE", "/api/v1/applications/app/envs/e5"), 0);
    assert_eq!(fake.count("DELETE", "/api/v1/applications/app/envs/e1"), 0);
}

#[tokio::test]
async fn env_reconcile_with_nothing_to_do_writes_nothing() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/applications/app/envs",
        vec![Reply::json(
            200,
            json!([{"uuid":"e1","key":"A","value":"1","is_preview":false},
                   {"uuid":"e2","key":"A","value":" 1\n","is_preview":true}]),
        )],
    );
    let diff = client
        .reconcile_env(
            &remote("app"),
            &[env("A", EnvValue::Plain("1".into()), false)],
        )
        .await
        .unwrap();
    assert!(!diff.changed());
    assert_eq!(fake.lines(), vec!["GET /api/v1/applications/app/envs"]);
}

#[tokio::test]
async fn deploy_posts_and_returns_the_deployment() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/deploy",
        vec![Reply::json(200, json!({"deployments":[{"message":"Application blog deployment queued.","resource_uuid":"app","deployment_uuid":"dep-1"}]}))],
    );
    let d = client.deploy(&remote("app"), false).await.unwrap();
    assert_eq!(d.deployment_uuid.as_deref(), Some("dep-1"));
    assert!(!d.already_queued);
    assert_eq!(
        fake.lines(),
        vec!["POST /api/v1/deploy?uuid=app&force=false"]
    );
    assert_eq!(fake.count("GET", "/api/v1/deploy"), 0);
}

#[tokio::test]
async fn an_already_queued_deploy_falls_back_to_the_running_deployment() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/deploy",
        vec![Reply::json(200, json!({"deployments":[{"message":"Deployment already queued for this commit.","resource_uuid":"app","deployment_uuid":"never-saved"}]}))],
    );
    fake.on(
        "GET",
        "/api/v1/deployments/applications/app",
        vec![Reply::json(200, json!({"count":3,"deployments":[
            {"deployment_uuid":"dep-new","status":"in_progress","deployment_url":"/project/p/environment/e/application/app/deployment/dep-new"},
            {"deployment_uuid":"dep-old","status":"finished"},
        ]}))],
    );
    let d = client.deploy(&remote("app"), true).await.unwrap();
    assert_eq!(d.deployment_uuid.as_deref(), Some("dep-new"));
    assert!(d.already_queued);
    assert_eq!(
        fake.lines(),
        vec![
            "POST /api/v1/deploy?uuid=app&force=true",
            "GET /api/v1/deployments/applications/app?skip=0&take=10",
        ]
    );
}

#[tokio::test]
async fn a_status_404_for_an_unsaved_uuid_is_looked_up_in_the_app_list() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/deployments/dep-x",
        vec![Reply::json(404, json!({"message":"Deployment not found."}))],
    );
    fake.on(
        "GET",
        "/api/v1/deployments/applications/app",
        vec![Reply::json(
            200,
            json!({"count":1,"deployments":[{"deployment_uuid":"dep-x","status":"queued"}]}),
        )],
    );
    let r = DeploymentRef {
        kind: AppKind::Application,
        app_uuid: "app".into(),
        deployment_uuid: Some("dep-x".into()),
        already_queued: false,
        started: false,
    };
    assert_eq!(
        client.deployment_status(&r).await.unwrap().state,
        DeploymentState::Queued
    );
}

#[tokio::test(start_paused = true)]
async fn wait_polls_until_a_terminal_state_and_reports_progress() {
    let (fake, client, _) = world("4.3.11").await;
    let dep = |s: &str| {
        Reply::json(
            200,
            json!({"deployment_uuid":"dep-1","status":s,"deployment_url":"/project/p/deployment/dep-1","commit":"HEAD"}),
        )
    };
    fake.on(
        "GET",
        "/api/v1/deployments/dep-1",
        vec![
            dep("queued"),
            dep("in_progress"),
            dep("in_progress"),
            dep("cancelled-by-user"),
        ],
    );
    let r = DeploymentRef {
        kind: AppKind::Application,
        app_uuid: "app".into(),
        deployment_uuid: Some("dep-1".into()),
        already_queued: false,
        started: false,
    };
    let seen = Mutex::new(Vec::new());
    let progress = |s: &DeploymentStatus, e: Duration| {
        seen.lock()
            .unwrap()
            .push((s.state.to_string(), e.as_secs()))
    };
    let wait = WaitOptions {
        timeout: Duration::from_secs(60),
        poll_interval: Duration::from_secs(5),
    };
    let st = client.wait_deployment(&r, wait, &progress).await.unwrap();
    assert_eq!(st.state, DeploymentState::CancelledByUser);
    assert_eq!(
        st.url.as_deref(),
        Some(format!("{}/project/p/deployment/dep-1", fake.base).as_str())
    );
    // Polled after 2.5 s, then 3.75 s later, then every 5 s (whole
    // seconds shown).
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("queued".into(), 2),
            ("in_progress".into(), 6),
            ("in_progress".into(), 11),
            ("cancelled-by-user".into(), 16)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn wait_gives_up_at_the_deadline_with_the_deployment_url() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/deployments/dep-1",
        vec![Reply::json(200, json!({"deployment_uuid":"dep-1","status":"queued","deployment_url":"/project/p/deployment/dep-1"}))],
    );
    let r = DeploymentRef {
        kind: AppKind::Application,
        app_uuid: "app".into(),
        deployment_uuid: Some("dep-1".into()),
        already_queued: false,
        started: false,
    };
    let wait = WaitOptions {
        timeout: Duration::from_secs(30),
        poll_interval: Duration::from_secs(5),
    };
    let err = client
        .wait_deployment(&r, wait, &|_, _| {})
        .await
        .unwrap_err();
    assert_eq!(
        err.kind,
        ErrorKind::DeadlineExceeded {
            after: Duration::from_secs(30)
        }
    );
    assert!(fake.count("GET", "/api/v1/deployments/dep-1") <= 7);
    super::fake::snapshots()
        .bind(|| insta::assert_snapshot!("coolify_deploy_deadline", err.report()));
}

#[tokio::test(start_paused = true)]
async fn delete_waits_until_the_app_is_gone_and_tolerates_a_missing_one() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "DELETE",
        "/api/v1/applications/app",
        vec![Reply::json(
            200,
            json!({"message":"Application deletion request queued."}),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/applications/app",
        vec![
            Reply::json(200, app_json("app", "blog", "")),
            Reply::json(200, app_json("app", "blog", "")),
            Reply::json(404, json!({"message":"Application not found."})),
        ],
    );
    let out = client
        .delete_app(
            AppKind::Application,
            "app",
            Some(WaitOptions {
                timeout: Duration::from_secs(60),
                poll_interval: Duration::from_secs(2),
            }),
        )
        .await
        .unwrap();
    assert!(!out.already_gone);
    let del = &fake.find("DELETE", "/api/v1/applications/app")[0];
    assert_eq!(
        del.query,
        "delete_configurations=true&delete_volumes=true&docker_cleanup=true&delete_connected_networks=true"
    );
    assert_eq!(fake.count("GET", "/api/v1/applications/app"), 3);

    fake.on(
        "DELETE",
        "/api/v1/applications/gone",
        vec![Reply::json(
            404,
            json!({"message":"Application not found."}),
        )],
    );
    let out = client
        .delete_app(AppKind::Application, "gone", None)
        .await
        .unwrap();
    assert!(out.already_gone);
}

#[tokio::test]
async fn list_owned_returns_only_marked_resources() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/applications",
        vec![Reply::json(
            200,
            json!([
                app_json("a", "blog", &owned_description()),
                app_json("b", "other", "hand made")
            ]),
        )],
    );
    fake.on(
        "GET",
        "/api/v1/services",
        vec![Reply::json(
            200,
            json!([{"uuid":"s","name":"ghost","description": mark().to_text()}]),
        )],
    );
    let owned = client.list_owned().await.unwrap();
    assert_eq!(
        owned,
        vec![
            OwnedRemote {
                kind: AppKind::Application,
                uuid: "a".into(),
                name: "blog".into(),
                mark: mark()
            },
            OwnedRemote {
                kind: AppKind::Service,
                uuid: "s".into(),
                name: "ghost".into(),
                mark: mark()
            },
        ]
    );
}
