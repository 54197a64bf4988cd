//! The simulated Coolify API behaves as `contracts/coolify/NOTES.md` says.

use reqwest::Method;
use serde_json::json;

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

use super::support::Sandbox;

#[tokio::test]
async fn the_seeded_world_has_what_the_quickstart_needs() {
    let sb = Sandbox::start().await;
    let projects = sb.coolify(Method::GET, "/projects", None).await;
    assert_eq!(projects.status, 200);
    assert_eq!(projects.body[0]["name"], "default");
    let project = projects.body[0]["uuid"].as_str().unwrap();
    let env = sb
        .coolify(
            Method::GET,
            &format!("/projects/{project}/production"),
            None,
        )
        .await;
    assert_eq!(env.status, 200, "{env:?}");
    assert_eq!(env.body["name"], "production");
    assert_eq!(env.body["applications"], json!([]));
    let servers = sb.coolify(Method::GET, "/servers", None).await;
    assert_eq!(servers.body[0]["name"], "localhost");
    let server = servers.body[0]["uuid"].as_str().unwrap();
    let destinations = sb
        .coolify(
            Method::GET,
            &format!("/servers/{server}/destinations"),
            None,
        )
        .await;
    assert_eq!(destinations.body.as_array().unwrap().len(), 1);
    let version = sb.coolify(Method::GET, "/version", None).await;
    assert_eq!(version.text, "4.3.11");
    // Health needs no token, on both paths.
    for path in ["/api/health", "/api/v1/health"] {
        let health = sb
            .http
            .get(format!("{}{path}", sb.handle.coolify_url))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        assert_eq!(health.text().await.unwrap(), "OK");
    }
}

#[tokio::test]
async fn auth_errors_have_the_real_shapes() {
    let sb = Sandbox::start().await;
    let none = sb
        .coolify_as(Method::GET, "/applications", None, None)
        .await;
    assert_eq!(
        (none.status, none.body.clone()),
        (401, json!({"message": "Unauthenticated."}))
    );
    let wrong = sb
        .coolify_as(Method::GET, "/applications", Some("12|nope"), None)
        .await;
    assert_eq!(wrong.status, 401);

    let mut settings = sb.handle.settings();
    settings.coolify_api_enabled = false;
    sb.handle.set_settings(settings.clone());
    let disabled = sb.coolify(Method::GET, "/applications", None).await;
    assert_eq!(
        (disabled.status, disabled.body.clone()),
        (403, json!({"success": true, "message": "API is disabled."}))
    );
    // The version stays readable, and a root token can switch the API on.
    assert_eq!(sb.coolify(Method::GET, "/version", None).await.status, 200);
    assert_eq!(sb.coolify(Method::POST, "/enable", None).await.status, 200);
    assert_eq!(
        sb.coolify(Method::GET, "/applications", None).await.status,
        200
    );

    // The same switch through the admin API, as a test in another process
    // would flip it.
    let ip = sb
        .admin(
            Method::PUT,
            "/settings",
            Some(json!({"coolify_ip_allowed": false})),
        )
        .await;
    assert_eq!(ip.status, 200, "{ip:?}");
    let refused = sb.coolify(Method::GET, "/applications", None).await;
    assert_eq!(
        refused.body,
        json!({"success": true, "message": "You are not allowed to access the API."})
    );
    sb.admin(
        Method::PUT,
        "/settings",
        Some(json!({"coolify_ip_allowed": true, "coolify_abilities": ["read"]})),
    )
    .await;
    assert_eq!(
        sb.coolify(Method::GET, "/applications", None).await.status,
        200
    );
    let write = sb
        .coolify(Method::POST, "/projects", Some(json!({"name": "x"})))
        .await;
    assert_eq!(
        (write.status, write.body),
        (
            403,
            json!({"message": "Missing required permissions: write"})
        )
    );
    let deploy = sb.coolify(Method::POST, "/deploy?uuid=x", None).await;
    assert_eq!(
        deploy.body,
        json!({"message": "Missing required permissions: deploy"})
    );
}

#[tokio::test]
async fn unknown_paths_and_bodies_get_the_real_errors() {
    let sb = Sandbox::start().await;
    let missing = sb
        .coolify_as(Method::GET, "/nothing/here", None, None)
        .await;
    assert_eq!(
        (missing.status, missing.body),
        (
            404,
            json!({"message": "Not found.", "docs": "https://coolify.io/docs"})
        )
    );
    let app = sb.coolify(Method::GET, "/applications/nope", None).await;
    assert_eq!(
        (app.status, app.body),
        (404, json!({"message": "Application not found."}))
    );

    // Not JSON, empty JSON.
    let url = format!("{}/api/v1/projects", sb.handle.coolify_url);
    let form = sb
        .http
        .post(&url)
        .bearer_auth(sb.coolify_token())
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 400);
    let body: serde_json::Value = form.json().await.unwrap();
    assert_eq!(body["error"], "Content-Type must be application/json.");
    let empty = sb.coolify(Method::POST, "/projects", Some(json!({}))).await;
    assert_eq!(
        (empty.status, empty.body["error"].clone()),
        (400, json!("Empty JSON."))
    );

    // Unknown fields, required fields, environment rule.
    let (project, server) = sb.place().await;
    let unknown = sb
        .coolify(
            Method::POST,
            "/applications/dockerimage",
            Some(json!({"project_uuid": project, "server_uuid": server, "environment_name": "production",
                        "docker_registry_image_name": "nginx", "uuid": "mine"})),
        )
        .await;
    assert_eq!(unknown.status, 422);
    assert_eq!(
        unknown.body["errors"]["uuid"][0],
        "This field is not allowed."
    );
    let required = sb
        .coolify(
            Method::POST,
            "/applications/public",
            Some(json!({"project_uuid": project, "server_uuid": server, "environment_name": "production"})),
        )
        .await;
    assert_eq!(required.status, 422);
    assert_eq!(
        required.body["errors"]["git_repository"][0],
        "The git repository field is required."
    );
    let no_env = sb
        .coolify(
            Method::POST,
            "/applications/dockerimage",
            Some(json!({"project_uuid": project, "server_uuid": server, "docker_registry_image_name": "nginx"})),
        )
        .await;
    assert_eq!(
        no_env.body,
        json!({"message": "You need to provide at least one of environment_name or environment_uuid."})
    );
    let bad_project = sb
        .coolify(
            Method::POST,
            "/applications/dockerimage",
            Some(
                json!({"project_uuid": "x", "server_uuid": server, "environment_name": "production",
                        "docker_registry_image_name": "nginx"}),
            ),
        )
        .await;
    assert_eq!(
        (bad_project.status, bad_project.body),
        (404, json!({"message": "Project not found."}))
    );
}

#[tokio::test]
async fn applications_of_every_form_are_created_read_and_listed_by_tag() {
    let sb = Sandbox::start().await;
    let (project, server) = sb.place().await;
    let base =
        json!({"project_uuid": project, "server_uuid": server, "environment_name": "production"});
    let with = |extra: serde_json::Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Some(body)
    };
    let image = sb
        .coolify(
            Method::POST,
            "/applications/dockerimage",
            with(json!({"docker_registry_image_name": "ghcr.io/acme/blog:1.0", "ports_exposes": "8080",
                        "name": "blog", "description": "managed-by=fabrik deployment=blog run=01jdx3v5q6m7n8p9r0s1t2v3w4",
                        "domains": "https://blog.example.com", "tags": ["Fabrik", "fabrik-blog"]})),
        )
        .await;
    assert_eq!(image.status, 201, "{image:?}");
    assert_eq!(image.body["domains"], "https://blog.example.com");
    let uuid = image.body["uuid"].as_str().unwrap();
    assert_eq!(uuid.len(), 24);
    let got = sb
        .coolify(Method::GET, &format!("/applications/{uuid}"), None)
        .await;
    assert_eq!(got.body["build_pack"], "dockerimage");
    assert_eq!(got.body["docker_registry_image_name"], "ghcr.io/acme/blog");
    assert_eq!(got.body["docker_registry_image_tag"], "1.0");
    assert_eq!(got.body["fqdn"], "https://blog.example.com");
    assert_eq!(got.body["status"], "exited");
    assert!(got.body.get("id").is_none(), "applications hide id");

    let public = sb
        .coolify(
            Method::POST,
            "/applications/public",
            with(
                json!({"git_repository": "https://github.com/acme/site", "git_branch": "main",
                        "build_pack": "nixpacks", "ports_exposes": "3000"}),
            ),
        )
        .await;
    assert_eq!(public.status, 201, "{public:?}");
    // No domain given: Coolify generates one.
    assert!(
        public.body["domains"]
            .as_str()
            .unwrap()
            .ends_with(".127.0.0.1.sslip.io")
    );
    let dockerfile = sb
        .coolify(
            Method::POST,
            "/applications/dockerfile",
            with(json!({"dockerfile": "RlJPTSBuZ2lueApFWFBPU0UgODA4MQo=", "autogenerate_domain": false})),
        )
        .await;
    assert_eq!(dockerfile.status, 201, "{dockerfile:?}");
    let df = sb
        .coolify(
            Method::GET,
            &format!(
                "/applications/{}",
                dockerfile.body["uuid"].as_str().unwrap()
            ),
            None,
        )
        .await;
    // Coolify looks for `EXPOSE` in the request's base64 text, finds none
    // and forces 80 (`AC:2090-2098 @4.3.11`).
    assert_eq!(df.body["ports_exposes"], "80", "EXPOSE is never read");
    assert_eq!(df.body["fqdn"], serde_json::Value::Null);
    let not_base64 = sb
        .coolify(
            Method::POST,
            "/applications/dockerfile",
            with(json!({"dockerfile": "FROM nginx"})),
        )
        .await;
    assert_eq!(not_base64.status, 422);
    for kind in ["private-github-app", "private-deploy-key"] {
        let key = if kind == "private-github-app" {
            "github_app_uuid"
        } else {
            "private_key_uuid"
        };
        let resp = sb
            .coolify(
                Method::POST,
                &format!("/applications/{kind}"),
                with(
                    json!({key: "k", "git_repository": "acme/private", "git_branch": "main",
                            "build_pack": "dockerfile", "autogenerate_domain": false}),
                ),
            )
            .await;
        assert_eq!(resp.status, 201, "{kind}: {resp:?}");
    }

    let tagged = sb
        .coolify(Method::GET, "/applications?tag=fabrik-blog", None)
        .await;
    assert_eq!(tagged.body.as_array().unwrap().len(), 1);
    assert_eq!(tagged.body[0]["uuid"], uuid);
    // Tags are stored lower-case; the filter matches exactly.
    assert_eq!(
        sb.coolify(Method::GET, "/applications?tag=Fabrik", None)
            .await
            .body,
        json!([])
    );
    let tags = sb
        .coolify(Method::GET, &format!("/applications/{uuid}/tags"), None)
        .await;
    let names: Vec<_> = tags
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert_eq!(names, vec![json!("fabrik"), json!("fabrik-blog")]);
    let all = sb.coolify(Method::GET, "/applications", None).await;
    assert_eq!(all.body.as_array().unwrap().len(), 5);
    let env = sb
        .coolify(
            Method::GET,
            &format!("/projects/{project}/production"),
            None,
        )
        .await;
    assert_eq!(env.body["applications"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn domains_conflict_unless_forced_and_patch_updates() {
    let sb = Sandbox::start().await;
    let first = sb
        .image_app("a", "https://app.example.com", "nginx", "1")
        .await;
    let (project, server) = sb.place().await;
    let body = json!({"project_uuid": project, "server_uuid": server, "environment_name": "production",
                      "docker_registry_image_name": "nginx", "domains": "https://app.example.com"});
    let conflict = sb
        .coolify(
            Method::POST,
            "/applications/dockerimage",
            Some(body.clone()),
        )
        .await;
    assert_eq!(conflict.status, 409);
    assert_eq!(
        conflict.body["conflicts"][0]["resource_uuid"],
        first.as_str()
    );
    assert_eq!(conflict.body["conflicts"][0]["domain"], "app.example.com");
    let mut forced = body;
    forced["force_domain_override"] = json!(true);
    assert_eq!(
        sb.coolify(Method::POST, "/applications/dockerimage", Some(forced))
            .await
            .status,
        201
    );

    let patched = sb
        .coolify(
            Method::PATCH,
            &format!("/applications/{first}"),
            Some(json!({"docker_registry_image_tag": "2", "health_check_path": "/health"})),
        )
        .await;
    assert_eq!(
        (patched.status, patched.body.clone()),
        (200, json!({"uuid": first}))
    );
    let got = sb
        .coolify(Method::GET, &format!("/applications/{first}"), None)
        .await;
    assert_eq!(got.body["docker_registry_image_tag"], "2");
    assert_eq!(got.body["health_check_path"], "/health");
    // Fields PATCH does not take, and the build pack an image app has.
    for bad in [
        json!({"tags": ["x"]}),
        json!({"project_uuid": project}),
        json!({"build_pack": "dockerimage"}),
    ] {
        let resp = sb
            .coolify(
                Method::PATCH,
                &format!("/applications/{first}"),
                Some(bad.clone()),
            )
            .await;
        assert_eq!(resp.status, 422, "{bad}: {resp:?}");
    }
}

#[tokio::test]
async fn env_vars_follow_the_409_and_bulk_semantics() {
    let sb = Sandbox::start().await;
    let app = sb
        .image_app("a", "https://app.example.com", "nginx", "1")
        .await;
    let envs = format!("/applications/{app}/envs");
    let created = sb
        .coolify(
            Method::POST,
            &envs,
            Some(json!({"key": "DATABASE_URL", "value": "postgres://x"})),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert!(created.body["uuid"].is_string());
    let again = sb
        .coolify(
            Method::POST,
            &envs,
            Some(json!({"key": "DATABASE_URL", "value": "other"})),
        )
        .await;
    assert_eq!(
        (again.status, again.body),
        (
            409,
            json!({"message": "Environment variable already exists. Use PATCH request to update it."})
        )
    );
    // Same key in the preview set is another variable, which Coolify made
    // as a copy when the normal one was created
    // (`app/Models/EnvironmentVariable.php:95-119 @4.3.11`).
    let preview = sb
        .coolify(
            Method::POST,
            &envs,
            Some(json!({"key": "DATABASE_URL", "value": "p", "is_preview": true})),
        )
        .await;
    assert_eq!(preview.status, 409, "{preview:?}");
    let old_name = sb
        .coolify(
            Method::POST,
            &envs,
            Some(json!({"key": "X", "value": "1", "is_build_time": true})),
        )
        .await;
    assert_eq!(old_name.status, 422);
    assert_eq!(
        old_name.body["errors"]["is_build_time"][0],
        "This field is not allowed."
    );
    let bad_key = sb
        .coolify(
            Method::POST,
            &envs,
            Some(json!({"key": "1X", "value": "1"})),
        )
        .await;
    assert_eq!(bad_key.status, 422);

    let patched = sb
        .coolify(
            Method::PATCH,
            &envs,
            Some(json!({"key": "DATABASE_URL", "value": "postgres://y"})),
        )
        .await;
    assert_eq!(patched.status, 201);
    assert_eq!(patched.body["value"], "postgres://y");
    let missing = sb
        .coolify(
            Method::PATCH,
            &envs,
            Some(json!({"key": "NOPE", "value": "1"})),
        )
        .await;
    assert_eq!(missing.status, 404);

    // Bulk upserts, drops unknown item fields, stops at the first bad item
    // and keeps what came before.
    let bulk = sb
        .coolify(
            Method::PATCH,
            &format!("{envs}/bulk"),
            Some(json!({"data": [
                {"key": "A", "value": "1", "is_build_time": true},
                {"key": "DATABASE_URL", "value": "postgres://z"},
                {"key": "bad key", "value": "x"},
                {"key": "NEVER", "value": "x"}
            ]})),
        )
        .await;
    assert_eq!(bulk.status, 422, "{bulk:?}");
    let list = sb.coolify(Method::GET, &envs, None).await;
    let keys: Vec<_> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["key"].as_str().unwrap().to_owned(),
                e["is_preview"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        vec![
            ("DATABASE_URL".to_owned(), false),
            ("A".to_owned(), false),
            ("DATABASE_URL".to_owned(), true),
            ("A".to_owned(), true)
        ],
        "normal vars first, then their preview copies; NEVER not saved"
    );
    assert_eq!(list.body[0]["value"], "postgres://z");
    let ok = sb
        .coolify(
            Method::PATCH,
            &format!("{envs}/bulk"),
            Some(json!({"data": [{"key": "B", "value": "2"}]})),
        )
        .await;
    assert_eq!(ok.status, 201);
    assert_eq!(ok.body[0]["key"], "B");

    // Values are hidden from tokens without read:sensitive.
    let mut settings = sb.handle.settings();
    settings.coolify_abilities = vec!["read".into()];
    sb.handle.set_settings(settings);
    let hidden = sb.coolify(Method::GET, &envs, None).await;
    assert!(hidden.body[0].get("value").is_none());
    assert!(hidden.body[0].get("real_value").is_none());
    sb.handle.set_settings(fabrik::sandbox::Settings::default());

    let uuid = list.body[1]["uuid"].as_str().unwrap();
    let deleted = sb
        .coolify(Method::DELETE, &format!("{envs}/{uuid}"), None)
        .await;
    assert_eq!(
        deleted.body,
        json!({"message": "Environment variable deleted."})
    );
    assert_eq!(
        sb.coolify(Method::GET, &envs, None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn deployments_progress_with_the_clock_and_skip_while_one_runs() {
    let sb = Sandbox::start().await;
    let app = sb
        .image_app("blog", "https://blog.example.com", "nginx", "1.27")
        .await;
    let deploy = sb
        .coolify(Method::POST, &format!("/deploy?uuid={app}"), None)
        .await;
    assert_eq!(deploy.status, 200, "{deploy:?}");
    let entry = &deploy.body["deployments"][0];
    assert_eq!(entry["message"], "Application blog deployment queued.");
    assert_eq!(entry["resource_uuid"], app.as_str());
    let d = entry["deployment_uuid"].as_str().unwrap().to_owned();
    let status = |body: &serde_json::Value| body["status"].as_str().unwrap().to_owned();
    let path = format!("/deployments/{d}");
    let get = || sb.coolify(Method::GET, &path, None);
    assert_eq!(status(&get().await.body), "queued");
    sb.advance_ms(60);
    assert_eq!(status(&get().await.body), "in_progress");
    let active = sb.coolify(Method::GET, "/deployments", None).await;
    assert_eq!(active.body.as_array().unwrap().len(), 1);

    // The skipped-deploy quirk: same commit while one runs, even after the
    // tag changed; the returned uuid was never saved.
    sb.coolify(
        Method::PATCH,
        &format!("/applications/{app}"),
        Some(json!({"docker_registry_image_tag": "1.28"})),
    )
    .await;
    let skipped = sb
        .coolify(Method::POST, "/deploy", Some(json!({"uuid": app})))
        .await;
    assert_eq!(
        skipped.body["deployments"][0]["message"],
        "Deployment already queued for this commit."
    );
    let ghost = skipped.body["deployments"][0]["deployment_uuid"]
        .as_str()
        .unwrap();
    assert_ne!(ghost, d);
    assert_eq!(
        sb.coolify(Method::GET, &format!("/deployments/{ghost}"), None)
            .await
            .status,
        404
    );
    let start = sb
        .coolify(Method::POST, &format!("/applications/{app}/start"), None)
        .await;
    assert_eq!(
        start.body,
        json!({"message": "Deployment already queued for this commit."})
    );

    sb.finish_deploys();
    let done = get().await.body;
    assert_eq!(status(&done), "finished");
    assert!(done["finished_at"].is_string());
    assert!(
        done["logs"]
            .as_str()
            .unwrap()
            .contains("Rolling update completed.")
    );
    let got = sb
        .coolify(Method::GET, &format!("/applications/{app}"), None)
        .await;
    // No health check, no Docker healthcheck: Coolify cannot tell.
    assert_eq!(got.body["status"], "running:unknown");
    assert_eq!(
        sb.coolify(Method::GET, "/deployments", None).await.body,
        json!([])
    );

    // A forced deploy is never skipped; the per-app list is {count, deployments}.
    let forced = sb
        .coolify(
            Method::POST,
            &format!("/deploy?uuid={app}&force=true"),
            None,
        )
        .await;
    let second = forced.body["deployments"][0]["deployment_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let forced_again = sb
        .coolify(
            Method::POST,
            &format!("/deploy?uuid={app}&force=true"),
            None,
        )
        .await;
    let third = forced_again.body["deployments"][0]["deployment_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = sb
        .coolify(
            Method::GET,
            &format!("/deployments/applications/{app}?skip=0&take=10"),
            None,
        )
        .await;
    assert_eq!(list.body["count"], 3);
    assert_eq!(
        list.body["deployments"][0]["deployment_uuid"],
        third.as_str()
    );
    // One at a time: the third waits for the second.
    assert_eq!(list.body["deployments"][0]["status"], "queued");
    let page = sb
        .coolify(
            Method::GET,
            &format!("/deployments/applications/{app}?skip=1&take=1"),
            None,
        )
        .await;
    assert_eq!(page.body["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(
        page.body["deployments"][0]["deployment_uuid"],
        second.as_str()
    );

    // Cancel the queued one; cancelling a finished one is refused.
    let cancel = sb
        .coolify(Method::POST, &format!("/deployments/{third}/cancel"), None)
        .await;
    assert_eq!(cancel.status, 200);
    assert_eq!(cancel.body["status"], "cancelled-by-user");
    let refused = sb
        .coolify(Method::POST, &format!("/deployments/{d}/cancel"), None)
        .await;
    assert_eq!(
        (refused.status, refused.body),
        (
            400,
            json!({"message": "Deployment cannot be cancelled. Current status: finished"})
        )
    );
    sb.finish_deploys();
    sb.finish_deploys();
    let third_now = sb
        .coolify(Method::GET, &format!("/deployments/{third}"), None)
        .await;
    assert_eq!(third_now.body["status"], "cancelled-by-user");
    let second_now = sb
        .coolify(Method::GET, &format!("/deployments/{second}"), None)
        .await;
    assert_eq!(second_now.body["status"], "finished");
}

#[tokio::test]
async fn deploy_by_tag_and_the_version_gates() {
    let sb = Sandbox::start().await;
    let (project, server) = sb.place().await;
    let created = sb
        .coolify(
            Method::POST,
            "/applications/dockerimage",
            Some(json!({"project_uuid": project, "server_uuid": server, "environment_name": "production",
                        "docker_registry_image_name": "nginx", "tags": ["web"], "instant_deploy": true})),
        )
        .await;
    assert_eq!(created.status, 201);
    // instant_deploy queued one without returning its uuid.
    assert!(created.body.get("deployment_uuid").is_none());
    let uuid = created.body["uuid"].as_str().unwrap();
    let list = sb
        .coolify(
            Method::GET,
            &format!("/deployments/applications/{uuid}"),
            None,
        )
        .await;
    assert_eq!(list.body["count"], 1);
    sb.finish_deploys();
    let by_tag = sb.coolify(Method::POST, "/deploy?tag=web", None).await;
    assert_eq!(by_tag.status, 200, "{by_tag:?}");
    assert_eq!(by_tag.body["details"][0]["resource_uuid"], uuid);
    let none = sb.coolify(Method::POST, "/deploy?tag=nothing", None).await;
    assert_eq!(
        (none.status, none.body),
        (404, json!({"message": "No resources found."}))
    );
    let both = sb
        .coolify(Method::POST, "/deploy?tag=web&uuid=x", None)
        .await;
    assert_eq!(both.status, 400);
    let get = sb
        .coolify(Method::GET, &format!("/deploy?uuid={uuid}"), None)
        .await;
    assert_eq!(get.status, 405);
    assert_eq!(get.headers["allow"], "POST");
    assert_eq!(
        get.body,
        json!({"message": "This endpoint has changed to a POST request."})
    );

    // A 4.1 server: no tags, GET /deploy works.
    let old = Sandbox::with(|c| c.coolify_version = "4.1.2".into()).await;
    assert_eq!(
        old.coolify(Method::GET, "/version", None).await.text,
        "4.1.2"
    );
    let (project, server) = old.place().await;
    let tags = old
        .coolify(
            Method::POST,
            "/applications/dockerimage",
            Some(json!({"project_uuid": project, "server_uuid": server, "environment_name": "production",
                        "docker_registry_image_name": "nginx", "tags": ["web"]})),
        )
        .await;
    assert_eq!(tags.status, 422);
    assert_eq!(tags.body["errors"]["tags"][0], "This field is not allowed.");
    let app = old
        .image_app("a", "https://a.example.com", "nginx", "1")
        .await;
    assert_eq!(
        old.coolify(Method::GET, &format!("/applications/{app}/tags"), None)
            .await
            .status,
        404
    );
    let get = old
        .coolify(Method::GET, &format!("/deploy?uuid={app}"), None)
        .await;
    assert_eq!(get.status, 200, "{get:?}");
}

#[tokio::test]
async fn deletes_are_asynchronous() {
    let sb = Sandbox::start().await;
    let app = sb
        .image_app("a", "https://app.example.com", "nginx", "1")
        .await;
    let deleted = sb
        .coolify(Method::DELETE, &format!("/applications/{app}"), None)
        .await;
    assert_eq!(
        deleted.body,
        json!({"message": "Application deletion request queued."})
    );
    // Still there for a moment, holding its domain.
    let during = sb
        .coolify(Method::GET, &format!("/applications/{app}"), None)
        .await;
    assert_eq!(during.status, 200);
    assert_eq!(during.body["status"], "exited");
    let (project, server) = sb.place().await;
    let reuse = json!({"project_uuid": project, "server_uuid": server, "environment_name": "production",
                       "docker_registry_image_name": "nginx", "domains": "https://app.example.com"});
    assert_eq!(
        sb.coolify(
            Method::POST,
            "/applications/dockerimage",
            Some(reuse.clone())
        )
        .await
        .status,
        409
    );
    sb.advance_ms(sb.config.delete_delay.as_millis() as u64);
    assert_eq!(
        sb.coolify(Method::GET, &format!("/applications/{app}"), None)
            .await
            .status,
        404
    );
    assert_eq!(
        sb.coolify(Method::POST, "/applications/dockerimage", Some(reuse))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn services_are_created_started_and_deleted() {
    let sb = Sandbox::start().await;
    let (project, server) = sb.place().await;
    let base =
        json!({"project_uuid": project, "server_uuid": server, "environment_name": "production"});
    let mut unknown = base.clone();
    unknown["type"] = json!("no-such-template");
    let resp = sb.coolify(Method::POST, "/services", Some(unknown)).await;
    assert_eq!(resp.status, 404);
    assert!(
        resp.body["valid_service_types"]
            .as_array()
            .unwrap()
            .contains(&json!("ghost"))
    );
    let mut both = base.clone();
    both["type"] = json!("ghost");
    both["docker_compose_raw"] = json!("c2VydmljZXM6IHt9");
    assert_eq!(
        sb.coolify(Method::POST, "/services", Some(both))
            .await
            .status,
        422
    );
    let mut compose = base.clone();
    compose["docker_compose_raw"] = json!(b64("services:\n  web:\n    image: nginx:1.27\n"));
    compose["urls"] = json!([{"name": "web", "url": "https://svc.example.com"}]);
    compose["instant_deploy"] = json!(true);
    let created = sb.coolify(Method::POST, "/services", Some(compose)).await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["domains"], json!(["https://svc.example.com"]));
    let uuid = created.body["uuid"].as_str().unwrap();
    let envs = sb
        .coolify(
            Method::POST,
            &format!("/services/{uuid}/envs"),
            Some(json!({"key": "K", "value": "v"})),
        )
        .await;
    assert_eq!(envs.status, 201);
    assert_eq!(envs.body["key"], "K", "a service answers with the variable");
    sb.finish_deploys();
    // The containers' status comes from the next status check.
    sb.advance_ms(200);
    let got = sb
        .coolify(Method::GET, &format!("/services/{uuid}"), None)
        .await;
    assert_eq!(got.body["status"], "running:healthy");
    assert_eq!(
        got.body["applications"][0]["fqdn"],
        "https://svc.example.com"
    );
    let stop = sb
        .coolify(Method::POST, &format!("/services/{uuid}/stop"), None)
        .await;
    assert_eq!(
        stop.body,
        json!({"message": "Service stopping request queued."})
    );
    let del = sb
        .coolify(Method::DELETE, &format!("/services/{uuid}"), None)
        .await;
    assert_eq!(
        del.body,
        json!({"message": "Service deletion request queued."})
    );
    sb.advance_ms(1_000);
    assert_eq!(
        sb.coolify(Method::GET, &format!("/services/{uuid}"), None)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn tags_are_added_listed_and_removed() {
    let sb = Sandbox::start().await;
    let app = sb
        .image_app("a", "https://app.example.com", "nginx", "1")
        .await;
    let path = format!("/applications/{app}/tags");
    let added = sb
        .coolify(
            Method::POST,
            &path,
            Some(json!({"tag_names": ["Fabrik", "blog"]})),
        )
        .await;
    assert_eq!(added.status, 201, "{added:?}");
    assert_eq!(added.body.as_array().unwrap().len(), 2);
    let short = sb
        .coolify(Method::POST, &path, Some(json!({"tag_name": "x"})))
        .await;
    assert_eq!(short.status, 422);
    let tag_uuid = added.body[0]["uuid"].as_str().unwrap();
    let removed = sb
        .coolify(Method::DELETE, &format!("{path}/{tag_uuid}"), None)
        .await;
    assert_eq!(removed.status, 200);
    assert_eq!(
        sb.coolify(Method::GET, &path, None)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The orphaned tag is gone from the team's tags.
    let tags = sb.coolify(Method::GET, "/tags", None).await;
    assert_eq!(tags.body.as_array().unwrap().len(), 1);
    let dup = sb
        .coolify(Method::POST, "/tags", Some(json!({"name": "Fabrik"})))
        .await;
    assert_eq!(dup.status, 409);
    let fresh = sb
        .coolify(Method::POST, "/tags", Some(json!({"name": "blog"})))
        .await;
    assert_eq!(fresh.status, 201);
}

#[tokio::test]
async fn a_full_deployment_queue_answers_429() {
    let sb = Sandbox::start().await;
    let app = sb
        .image_app("a", "https://app.example.com", "nginx", "1")
        .await;
    for _ in 0..25 {
        let resp = sb
            .coolify(
                Method::POST,
                &format!("/deploy?uuid={app}&force=true"),
                None,
            )
            .await;
        assert_eq!(resp.status, 200, "{resp:?}");
    }
    let full = sb
        .coolify(
            Method::POST,
            &format!("/deploy?uuid={app}&force=true"),
            None,
        )
        .await;
    assert_eq!(full.status, 429);
    assert_eq!(full.headers["retry-after"], "60");
    assert!(
        full.body["message"]
            .as_str()
            .unwrap()
            .starts_with("Deployment queue is full.")
    );
}
