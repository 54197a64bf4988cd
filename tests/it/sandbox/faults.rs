//! Fault injection, set by config or at runtime through the admin API.

use std::time::{Duration, Instant};

use fabrik::sandbox::FaultConfig;
use reqwest::Method;
use serde_json::json;

use super::support::{Kuma, Sandbox, monitor_payload};

#[tokio::test]
async fn server_errors_and_rate_limits_have_each_service_shape() {
    let sb = Sandbox::with(|c| c.faults = FaultConfig::from_cli("error_rate=1").unwrap()).await;
    let coolify = sb.coolify(Method::GET, "/applications", None).await;
    assert_eq!(
        (coolify.status, coolify.body),
        (500, json!({"message": "Server Error"}))
    );
    let cf = sb.cf(Method::GET, "/zones", None).await;
    assert_eq!(cf.status, 500);
    assert_eq!(cf.body["success"], false);

    // Changed mid-run through the admin API.
    let set = sb
        .admin(
            Method::PUT,
            "/faults",
            Some(json!({"rate_limit_rate": 1.0, "retry_after_s": 7})),
        )
        .await;
    assert_eq!(set.status, 200, "{set:?}");
    assert_eq!(
        sb.admin(Method::GET, "/faults", None).await.body["retry_after_s"],
        7
    );
    let limited = sb.coolify(Method::GET, "/applications", None).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers["retry-after"], "7");
    assert_eq!(limited.body, json!({"message": "Too Many Attempts."}));
    let cf = sb.cf(Method::GET, "/zones", None).await;
    assert_eq!(cf.status, 429);
    assert_eq!(cf.headers["retry-after"], "7");
    assert_eq!(cf.body["errors"][0]["code"], 10429);
    let bad = sb
        .admin(Method::PUT, "/faults", Some(json!({"error_rate": 3})))
        .await;
    assert_eq!(bad.status, 400);

    // A target limits where rates apply.
    sb.admin(
        Method::PUT,
        "/faults",
        Some(json!({"error_rate": 1.0, "target": "/client/v4"})),
    )
    .await;
    assert_eq!(
        sb.coolify(Method::GET, "/applications", None).await.status,
        200
    );
    assert_eq!(sb.cf(Method::GET, "/zones", None).await.status, 500);
}

#[tokio::test]
async fn latency_delays_every_request() {
    let sb = Sandbox::start().await;
    sb.handle.set_faults(FaultConfig {
        latency_ms: 150,
        target: Some("coolify".into()),
        ..FaultConfig::default()
    });
    let started = Instant::now();
    assert_eq!(sb.coolify(Method::GET, "/projects", None).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn a_lost_response_leaves_the_change_committed() {
    let sb = Sandbox::start().await;
    let (project, server) = sb.place().await;
    sb.handle.set_faults(FaultConfig {
        lost_response_rate: 1.0,
        ..FaultConfig::default()
    });
    let url = format!("{}/api/v1/applications/dockerimage", sb.handle.coolify_url);
    let result = sb
        .http
        .post(url)
        .bearer_auth(sb.coolify_token())
        .json(&json!({"project_uuid": project, "server_uuid": server, "environment_name": "production",
                      "docker_registry_image_name": "nginx", "name": "ambiguous", "autogenerate_domain": false}))
        .send()
        .await;
    let outcome = match result {
        Err(e) => Err(e),
        Ok(resp) => resp.bytes().await.map(|_| ()),
    };
    assert!(outcome.is_err(), "the client cannot learn the outcome");
    // Reads are not lost, and the create happened.
    let apps = sb.coolify(Method::GET, "/applications", None).await;
    assert_eq!(apps.status, 200);
    assert_eq!(apps.body[0]["name"], "ambiguous");

    // Same over Socket.IO: committed, then the connection drops.
    sb.handle.set_faults(FaultConfig::default());
    let mut kuma = Kuma::logged_in(&sb).await;
    sb.handle.set_faults(FaultConfig {
        lost_response_rate: 1.0,
        ..FaultConfig::default()
    });
    let lost = kuma
        .try_call(
            "add",
            vec![monitor_payload("fabrik:lost", "https://x.example.com")],
        )
        .await;
    assert!(lost.is_none(), "{lost:?}");
    sb.handle.set_faults(FaultConfig::default());
    let mut again = Kuma::logged_in(&sb).await;
    assert_eq!(again.ack("getMonitorList", vec![]).await["ok"], true);
    let list = again.event("monitorList").await;
    assert_eq!(list[0]["1"]["name"], "fabrik:lost");
}

#[tokio::test]
async fn echo_422_quotes_the_submitted_secret() {
    let sb = Sandbox::start().await;
    let app = sb
        .image_app("a", "https://app.example.com", "nginx", "1")
        .await;
    sb.handle.set_faults(FaultConfig {
        echo_422: true,
        ..FaultConfig::default()
    });
    let secret = "hunter2-very-secret";
    let resp = sb
        .coolify(
            Method::PATCH,
            &format!("/applications/{app}/envs/bulk"),
            Some(json!({"data": [{"key": "API_KEY", "value": secret}]})),
        )
        .await;
    assert_eq!(resp.status, 422);
    assert!(
        resp.body["message"].as_str().unwrap().contains(secret),
        "{resp:?}"
    );
    assert!(resp.text.contains(secret));
    // Nothing was saved.
    sb.handle.set_faults(FaultConfig::default());
    let envs = sb
        .coolify(Method::GET, &format!("/applications/{app}/envs"), None)
        .await;
    assert_eq!(envs.body, json!([]));

    sb.handle.set_faults(FaultConfig {
        echo_422: true,
        ..FaultConfig::default()
    });
    let zone = sb.zone_id().await;
    let cf = sb
        .cf(
            Method::POST,
            &format!("/zones/{zone}/dns_records"),
            Some(json!({"type": "TXT", "name": "k", "content": secret})),
        )
        .await;
    assert_eq!(cf.status, 400);
    assert!(
        cf.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(secret)
    );
}
