//! The data file is the remote world: it survives restarts, several
//! processes' sandboxes can share it, and `dump` reads it whole.

use reqwest::Method;
use serde_json::json;

use super::support::{Kuma, Sandbox, monitor_payload};

const RUN: &str = "01jdx3v5q6m7n8p9r0s1t2v3w4";

/// A small world: an app with env vars, tags and a deployment, a DNS record
/// and a monitor with a tag, all marked as Fabrik's.
async fn populate(sb: &Sandbox, secret: &str) {
    let (project, server) = sb.place().await;
    let app = sb
        .coolify(
            Method::POST,
            "/applications/dockerimage",
            Some(json!({"project_uuid": project, "server_uuid": server, "environment_name": "production",
                        "docker_registry_image_name": "nginx", "docker_registry_image_tag": "1.27",
                        "name": "blog", "domains": "https://blog.example.com",
                        "description": format!("managed-by=fabrik deployment=blog run={RUN}"),
                        "tags": ["fabrik", "fabrik-blog"]})),
        )
        .await;
    let app = app.body["uuid"].as_str().unwrap().to_owned();
    sb.coolify(
        Method::PATCH,
        &format!("/applications/{app}/envs/bulk"),
        Some(json!({"data": [{"key": "SECRET_KEY", "value": secret}, {"key": "PORT", "value": "80"}]})),
    )
    .await;
    sb.coolify(Method::POST, &format!("/deploy?uuid={app}"), None)
        .await;
    sb.finish_deploys();
    let zone = sb.zone_id().await;
    sb.cf(
        Method::POST,
        &format!("/zones/{zone}/dns_records"),
        Some(json!({"type": "A", "name": "blog", "content": "127.0.0.1", "comment": format!("fabrik:blog:{RUN}")})),
    )
    .await;
    let mut kuma = Kuma::logged_in(sb).await;
    let id = kuma
        .ack(
            "add",
            vec![monitor_payload(
                "fabrik:blog",
                "https://blog.example.com/health",
            )],
        )
        .await["monitorID"]
        .clone();
    let tag = kuma
        .ack(
            "addTag",
            vec![json!({"name": "managed-by", "color": "#059669"})],
        )
        .await;
    kuma.ack(
        "addMonitorTag",
        vec![
            tag["tag"]["id"].clone(),
            id,
            json!(format!("fabrik:blog:{RUN}")),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_world_survives_a_restart() {
    let sb = Sandbox::start().await;
    populate(&sb, "s3cr3t-value").await;
    let before = sb.handle.dump().await.unwrap();
    let ca = sb.handle.ca_pem.clone();
    let Sandbox { handle, dir, .. } = sb;
    handle.shutdown().await.unwrap();
    let again = Sandbox::in_dir(dir, |_| {}).await;
    // A new manual clock: bring it to the time the first one showed.
    again.finish_deploys();
    assert_eq!(again.handle.ca_pem, ca, "the CA is kept in the data file");
    let after = again.handle.dump().await.unwrap();
    assert_eq!(before, after);
    let apps = again.coolify(Method::GET, "/applications", None).await;
    assert_eq!(apps.body[0]["name"], "blog");
}

#[tokio::test]
async fn dump_shows_everything_with_ownership_and_no_secret() {
    let sb = Sandbox::start().await;
    let secret = "s3cr3t-value-never-printed";
    populate(&sb, secret).await;
    let path = sb.config.data.clone();
    let dump = fabrik::sandbox::dump(&path).unwrap();
    let text = serde_json::to_string_pretty(&dump).unwrap();
    assert!(!text.contains(secret), "{text}");
    assert!(!text.contains(sb.handle.credentials.coolify_token.expose()));
    let app = &dump["coolify"]["applications"][0];
    assert_eq!(app["ownership"], json!({"deployment": "blog", "run": RUN}));
    assert_eq!(app["tags"], json!(["fabrik", "fabrik-blog"]));
    // Two variables and their preview copies.
    assert_eq!(app["env"].as_array().unwrap().len(), 4);
    assert_eq!(app["deployments"][0]["status"], "finished");
    let record = &dump["cloudflare"]["zones"][0]["records"][0];
    assert_eq!(record["ownership"]["deployment"], "blog");
    let monitor = &dump["uptime_kuma"]["monitors"][0];
    assert_eq!(monitor["ownership"]["run"], RUN);
    assert_eq!(monitor["tags"][0]["name"], "managed-by");
    // The same through the admin API.
    let via_admin = sb.admin(Method::GET, "/dump", None).await;
    assert_eq!(
        via_admin.body["coolify"]["applications"][0]["uuid"],
        app["uuid"]
    );

    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/sandbox"),
        prepend_module_to_snapshot => false,
        filters => vec![
            (r#""[a-z][a-z0-9]{23}""#, r#""[uuid]""#),
            (r#""[0-9a-f]{32}""#, r#""[id]""#),
            (r#""[0-9a-f]{16}""#, r#""[fingerprint]""#),
            (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", "[time]"),
        ],
    }, {
        insta::assert_snapshot!("dump", text);
    });

    let err = fabrik::sandbox::dump(&sb.dir.path().join("missing.db")).unwrap_err();
    assert!(err.to_string().contains("missing.db"), "{err}");
}

#[tokio::test]
async fn two_instances_share_one_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let mut config = fabrik::sandbox::SandboxConfig::new(&path);
    config.deploy_queue_time = std::time::Duration::ZERO;
    let a = fabrik::sandbox::start(config.clone()).await.unwrap();
    let b = fabrik::sandbox::start(config).await.unwrap();
    let http = super::support::client();
    let token = a.credentials.coolify_token.expose().to_owned();
    let projects: serde_json::Value = http
        .get(format!("{}/api/v1/projects", b.coolify_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(projects.as_array().unwrap().len(), 1, "seeded once");
    let project = projects[0]["name"].clone();
    assert_eq!(project, "default");

    // Writes through both at once: all land, none fails.
    let mut tasks = Vec::new();
    for i in 0..30 {
        let url = if i % 2 == 0 {
            &a.coolify_url
        } else {
            &b.coolify_url
        };
        let req = http
            .post(format!("{url}/api/v1/projects"))
            .bearer_auth(&token)
            .json(&json!({"name": format!("p{i}")}));
        tasks.push(tokio::spawn(async move {
            req.send().await.unwrap().status().as_u16()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 201);
    }
    for url in [&a.coolify_url, &b.coolify_url] {
        let list: serde_json::Value = http
            .get(format!("{url}/api/v1/projects"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(list.as_array().unwrap().len(), 31);
    }
    assert_eq!(a.ca_pem, b.ca_pem);
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
