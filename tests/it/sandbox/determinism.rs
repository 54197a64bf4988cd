//! The same seed and the same calls give the same world and the same
//! faults.

use fabrik::sandbox::FaultConfig;
use reqwest::Method;
use serde_json::{Value, json};

use super::support::{Kuma, Sandbox, into_resp, monitor_payload};

/// Runs a fixed script of calls under faults; returns what each call saw
/// (a status, or "lost") and the world afterwards.
async fn script(seed: u64) -> (Vec<String>, Value) {
    let sb = Sandbox::with(|c| c.faults.seed = seed).await;
    let (project, server) = sb.place().await;
    let zone = sb.zone_id().await;
    sb.handle.set_faults(FaultConfig {
        seed,
        error_rate: 0.2,
        rate_limit_rate: 0.2,
        lost_response_rate: 0.5,
        ..FaultConfig::default()
    });
    let mut seen = Vec::new();
    let call = |method: Method, url: String, token: String, body: Option<Value>| {
        let mut req = sb.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        async move {
            match req.send().await {
                Ok(resp) => {
                    let resp = into_resp(resp).await;
                    resp.status.to_string()
                }
                Err(_) => "lost".to_owned(),
            }
        }
    };
    let coolify = |path: &str| format!("{}/api/v1{path}", sb.handle.coolify_url);
    for i in 0..10 {
        seen.push(
            call(
                Method::POST,
                coolify("/applications/dockerimage"),
                sb.coolify_token(),
                Some(json!({"project_uuid": project, "server_uuid": server, "environment_name": "production",
                            "docker_registry_image_name": "nginx", "name": format!("app{i}"),
                            "domains": format!("https://app{i}.example.com")})),
            )
            .await,
        );
        seen.push(
            call(
                Method::POST,
                format!("{}/zones/{zone}/dns_records", sb.handle.cloudflare_url),
                sb.cloudflare_token(),
                Some(json!({"type": "A", "name": format!("app{i}"), "content": "127.0.0.1"})),
            )
            .await,
        );
        seen.push(
            call(
                Method::GET,
                coolify("/applications"),
                sb.coolify_token(),
                None,
            )
            .await,
        );
    }
    sb.handle.set_faults(FaultConfig::default());
    let apps = sb.coolify(Method::GET, "/applications", None).await;
    for app in apps.body.as_array().unwrap() {
        let uuid = app["uuid"].as_str().unwrap();
        sb.coolify(Method::POST, &format!("/deploy?uuid={uuid}"), None)
            .await;
        sb.coolify(
            Method::POST,
            &format!("/applications/{uuid}/envs"),
            Some(json!({"key": "TOKEN", "value": format!("t-{uuid}")})),
        )
        .await;
    }
    sb.finish_deploys();
    let mut kuma = Kuma::logged_in(&sb).await;
    kuma.ack(
        "add",
        vec![monitor_payload("fabrik:web", "https://app0.example.com")],
    )
    .await;
    (seen, sb.handle.dump().await.unwrap())
}

#[tokio::test]
async fn same_seed_same_world_same_faults() {
    let (seen_a, world_a) = script(42).await;
    let (seen_b, world_b) = script(42).await;
    assert_eq!(seen_a, seen_b);
    assert_eq!(world_a, world_b);
    // The faults did happen, and some calls went through.
    assert!(seen_a.iter().any(|s| s == "lost"), "{seen_a:?}");
    assert!(seen_a.iter().any(|s| s == "500"), "{seen_a:?}");
    assert!(seen_a.iter().any(|s| s == "429"), "{seen_a:?}");
    assert!(seen_a.iter().any(|s| s == "201"), "{seen_a:?}");

    let (seen_c, world_c) = script(7).await;
    assert_ne!(seen_a, seen_c, "another seed, other faults");
    assert_ne!(world_a, world_c);
}
