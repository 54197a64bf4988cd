//! Every failure mode maps to a typed error with a hint, recorded as a
//! snapshot; retries run on paused time; secrets never leak.

use std::sync::Arc;
use std::time::Duration;

use fabrik::provider::*;
use fabrik::secret::SecretValue;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::coolify::{TOKEN, image_app, mark, resolved, target, world};
use super::fake::{Fake, Reply, Retries, http, snapshots};

fn snap(name: &str, err: &ProviderError) {
    let text = err.report();
    assert!(!text.contains(TOKEN), "token leaked in {name}");
    assert!(
        !format!("{err:?}").contains(TOKEN),
        "token leaked in Debug of {name}"
    );
    snapshots().bind(|| insta::assert_snapshot!(name, text));
}

async fn preflight_with_version_reply(reply: Reply) -> ProviderError {
    let (fake, client, _) = world("4.3.11").await;
    fake.on("GET", "/api/v1/version", vec![reply]);
    client.preflight(&target()).await.unwrap_err()
}

#[tokio::test]
async fn coolify_401_unauthenticated() {
    let e =
        preflight_with_version_reply(Reply::json(401, json!({"message":"Unauthenticated."}))).await;
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert_eq!(e.attempts, 1);
    snap("coolify_401", &e);
}

#[tokio::test]
async fn coolify_400_invalid_token() {
    let e = preflight_with_version_reply(Reply::json(
        400,
        json!({"message":"Invalid token.","docs":"https://coolify.io/docs/api-reference/authorization"}),
    ))
    .await;
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    snap("coolify_400_invalid_token", &e);
}

#[tokio::test]
async fn coolify_403_api_disabled() {
    let e = preflight_with_version_reply(Reply::json(
        403,
        json!({"success":true,"message":"API is disabled."}),
    ))
    .await;
    assert_eq!(e.kind, ErrorKind::Forbidden(ForbiddenReason::ApiDisabled));
    assert!(e.hint.as_deref().unwrap().contains("Settings → Advanced"));
    snap("coolify_403_api_disabled", &e);
}

#[tokio::test]
async fn coolify_403_ip_not_allowed() {
    let e = preflight_with_version_reply(Reply::json(
        403,
        json!({"success":true,"message":"You are not allowed to access the API."}),
    ))
    .await;
    assert_eq!(e.kind, ErrorKind::Forbidden(ForbiddenReason::IpNotAllowed));
    snap("coolify_403_ip_not_allowed", &e);
}

#[tokio::test]
async fn coolify_403_missing_permission() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/applications/dockerimage",
        vec![Reply::json(
            403,
            json!({"message":"Missing required permissions: write"}),
        )],
    );
    let e = client
        .create_app(&resolved("4.3.11"), &image_app(), &mark())
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Forbidden(ForbiddenReason::MissingPermission {
            ability: Some("write".into())
        })
    );
    assert!(!e.outcome_unknown());
    snap("coolify_403_missing_permission", &e);
}

#[tokio::test]
async fn coolify_404_project_not_found() {
    let (_fake, client, _) = world("4.3.11").await;
    let mut t = target();
    t.project = "nope".into();
    let e = client.preflight(&t).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    snap("coolify_404_project_not_found", &e);
}

#[tokio::test]
async fn coolify_404_server_not_found() {
    let (_fake, client, _) = world("4.3.11").await;
    let mut t = target();
    t.server = "gone".into();
    let e = client.preflight(&t).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    snap("coolify_404_server_not_found", &e);
}

#[tokio::test]
async fn coolify_404_response() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/deployments/d",
        vec![Reply::json(404, json!({"message":"Deployment not found."}))],
    );
    fake.on(
        "GET",
        "/api/v1/deployments/applications/a",
        vec![Reply::json(200, json!({"count":0,"deployments":[]}))],
    );
    let r = DeploymentRef {
        kind: AppKind::Application,
        app_uuid: "a".into(),
        deployment_uuid: Some("d".into()),
        already_queued: false,
        started: false,
    };
    let e = client.deployment_status(&r).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    snap("coolify_404_deployment", &e);
}

#[tokio::test]
async fn coolify_409_domain_conflict() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/applications/dockerimage",
        vec![Reply::json(409, json!({
            "message":"Domain conflicts detected. Use force_domain_override=true to proceed.",
            "conflicts":[{"domain":"blog.example.com","resource_name":"old-blog","resource_uuid":"x","resource_type":"application","message":"in use"}],
            "warning":"…"}))],
    );
    let e = client
        .create_app(&resolved("4.3.11"), &image_app(), &mark())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict);
    assert!(e.message.contains("blog.example.com (used by old-blog)"));
    assert_eq!(fake.count("POST", "/api/v1/applications/dockerimage"), 1);
    snap("coolify_409_domain_conflict", &e);
}

fn remote() -> RemoteApp {
    RemoteApp {
        kind: AppKind::Application,
        uuid: "app".into(),
        name: "blog".into(),
        description: None,
        domains: vec![],
        status: None,
        mark: Some(mark()),
    }
}

async fn update_with(reply: Reply) -> ProviderError {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/applications/app",
        vec![Reply::json(
            200,
            json!({"uuid":"app","name":"old","build_pack":"dockerimage"}),
        )],
    );
    fake.on("PATCH", "/api/v1/applications/app", vec![reply]);
    client
        .update_app(&remote(), &image_app(), None)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn coolify_422_errors_as_lists() {
    let e = update_with(Reply::json(
        422,
        json!({"message":"Validation failed.","errors":{"ports_exposes":["The ports exposes field must be a string."],"tags":["This field is not allowed."]}}),
    ))
    .await;
    let ErrorKind::Validation { fields } = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(fields.len(), 2);
    assert_eq!(fields[1].field, "tags");
    snap("coolify_422_list", &e);
}

#[tokio::test]
async fn coolify_422_errors_as_string() {
    let e = update_with(Reply::json(
        422,
        json!({"message":"Validation failed.","errors":{"domains":"Domain blog.example.com is invalid."}}),
    ))
    .await;
    let ErrorKind::Validation { fields } = &e.kind else {
        panic!("{e:?}")
    };
    assert_eq!(
        fields[0].messages,
        vec!["Domain blog.example.com is invalid."]
    );
    snap("coolify_422_string", &e);
}

#[tokio::test]
async fn coolify_422_message_only() {
    let e = update_with(Reply::json(
        422,
        json!({"message":"You need to provide at least one of environment_name or environment_uuid."}),
    ))
    .await;
    assert_eq!(e.kind, ErrorKind::Validation { fields: vec![] });
    snap("coolify_422_message_only", &e);
}

#[tokio::test(start_paused = true)]
async fn coolify_429_retry_after_is_honoured_then_gives_up() {
    let (fake, client, retries) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/version",
        vec![Reply::json(429, json!({"message":"Too Many Attempts."})).header("retry-after", "7")],
    );
    let start = tokio::time::Instant::now();
    let e = client.preflight(&target()).await.unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(e.attempts, 3);
    assert_eq!(fake.count("GET", "/api/v1/version"), 3);
    assert_eq!(
        retries.delays(),
        vec![Duration::from_secs(7), Duration::from_secs(7)]
    );
    assert!(start.elapsed() >= Duration::from_secs(14));
    let ev = &retries.0.lock().unwrap()[0];
    assert_eq!(
        (ev.provider, ev.operation.as_str(), ev.attempt),
        (ProviderName::Coolify, "read server version", 1)
    );
    assert_eq!(ev.reason, "rate limited (HTTP 429)");
    snap("coolify_429", &e);
}

#[tokio::test(start_paused = true)]
async fn coolify_429_on_a_create_is_retried_because_nothing_was_created() {
    let (fake, client, retries) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/applications/dockerimage",
        vec![
            Reply::json(429, json!({"message":"Too Many Attempts."})).header("retry-after", "2"),
            Reply::json(201, json!({"uuid":"a"})),
        ],
    );
    fake.on(
        "GET",
        "/api/v1/applications/a",
        vec![Reply::json(200, json!({"uuid":"a","name":"blog"}))],
    );
    fake.on(
        "GET",
        "/api/v1/applications/a/envs",
        vec![Reply::json(200, json!([]))],
    );
    client
        .create_app(&resolved("4.3.11"), &image_app(), &mark())
        .await
        .unwrap();
    assert_eq!(fake.count("POST", "/api/v1/applications/dockerimage"), 2);
    assert_eq!(retries.delays(), vec![Duration::from_secs(2)]);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_limit_is_not_waited_for() {
    let (fake, client, retries) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/deploy",
        vec![
            Reply::json(
                429,
                json!({"message":"Deployment queue is full. Please try again later."}),
            )
            .header("retry-after", "600"),
        ],
    );
    let app = RemoteApp {
        kind: AppKind::Application,
        uuid: "app".into(),
        name: "blog".into(),
        description: None,
        domains: vec![],
        status: None,
        mark: None,
    };
    let e = client.deploy(&app, false).await.unwrap_err();
    assert_eq!(e.attempts, 1);
    assert!(retries.delays().is_empty());
    assert!(e.is_transient());
    snap("coolify_429_queue_full", &e);
}

#[tokio::test(start_paused = true)]
async fn coolify_5xx_on_a_read_is_retried_with_backoff() {
    let (fake, client, retries) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/version",
        vec![Reply::json(503, json!({"message":"Server Error"}))],
    );
    let e = client.preflight(&target()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(fake.count("GET", "/api/v1/version"), 3);
    assert_eq!(
        retries.delays(),
        vec![Duration::from_millis(200), Duration::from_millis(400)]
    );
    assert!(e.is_transient());
    snap("coolify_5xx_read", &e);

    fake.on(
        "GET",
        "/api/v1/version",
        vec![
            Reply::json(502, json!({"message":"Bad Gateway"})),
            Reply::text(200, "4.3.11"),
        ],
    );
    client.preflight(&target()).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn coolify_5xx_on_a_create_is_not_repeated() {
    let (fake, client, retries) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/applications/dockerimage",
        vec![Reply::json(500, json!({"message":"Server Error"}))],
    );
    let e = client
        .create_app(&resolved("4.3.11"), &image_app(), &mark())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Server);
    assert!(e.outcome_unknown());
    assert_eq!(fake.count("POST", "/api/v1/applications/dockerimage"), 1);
    assert!(retries.delays().is_empty());
    snap("coolify_5xx_create", &e);
}

#[tokio::test(start_paused = true)]
async fn coolify_deploy_timeout_after_sending_is_not_repeated() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/deploy",
        vec![Reply::json(200, json!({"deployments":[]})).after(Duration::from_secs(30))],
    );
    let app = RemoteApp {
        kind: AppKind::Application,
        uuid: "app".into(),
        name: "blog".into(),
        description: None,
        domains: vec![],
        status: None,
        mark: None,
    };
    let e = client.deploy(&app, false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout { request_sent: true });
    assert!(e.outcome_unknown());
    assert_eq!(fake.count("POST", "/api/v1/deploy"), 1);
    snap("coolify_timeout_after_sending_deploy", &e);
}

#[tokio::test(start_paused = true)]
async fn coolify_read_timeout_is_retried() {
    let (fake, client, retries) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/version",
        vec![Reply::text(200, "4.3.11").after(Duration::from_secs(30))],
    );
    let e = client.preflight(&target()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout { request_sent: true });
    assert!(!e.outcome_unknown());
    assert_eq!(fake.count("GET", "/api/v1/version"), 3);
    assert_eq!(retries.delays().len(), 2);
    snap("coolify_timeout_after_sending_read", &e);
}

fn client_for(base: &str, retries: Arc<Retries>) -> CoolifyClient {
    CoolifyClient::new(
        CoolifyConfig {
            base_url: base.into(),
            token: SecretValue::new(TOKEN),
        },
        http(retries),
    )
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn coolify_timeout_before_sending_is_retried_even_for_a_create() {
    // A listener whose accept queue is full drops new SYNs: connects hang.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..2 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            Duration::from_millis(50),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let retries = Arc::new(Retries::default());
    let client = client_for(&format!("http://{addr}"), retries.clone());
    let e = client
        .create_app(&resolved("4.3.11"), &image_app(), &mark())
        .await
        .unwrap_err();
    assert_eq!(
        e.kind,
        ErrorKind::Timeout {
            request_sent: false
        }
    );
    assert!(!e.outcome_unknown());
    assert_eq!(e.attempts, 3);
    assert_eq!(retries.delays().len(), 2);
    snap("coolify_timeout_before_sending", &e);
    drop(listener);
}

#[tokio::test(start_paused = true)]
async fn coolify_connection_refused_is_retried() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let retries = Arc::new(Retries::default());
    let e = client_for(&format!("http://{addr}"), retries.clone())
        .preflight(&target())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect);
    assert_eq!(e.attempts, 3);
    snap("coolify_connect_refused", &e);
}

/// A server that reads one request and closes the connection unanswered.
async fn closing_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut got = Vec::new();
                while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.set_zero_linger();
                drop(s);
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn coolify_connection_reset_after_sending_a_create_is_ambiguous() {
    let base = closing_server().await;
    let retries = Arc::new(Retries::default());
    let e = client_for(&base, retries.clone())
        .create_app(&resolved("4.3.11"), &image_app(), &mark())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Reset);
    assert!(e.outcome_unknown());
    assert_eq!(e.attempts, 1);
    snap("coolify_reset_create", &e);
}

#[tokio::test]
async fn coolify_connection_reset_on_a_read_is_retried() {
    let base = closing_server().await;
    let retries = Arc::new(Retries::default());
    let mut config = http(retries.clone());
    config.retry.base_delay = Duration::from_millis(1);
    let client = CoolifyClient::new(
        CoolifyConfig {
            base_url: base,
            token: SecretValue::new(TOKEN),
        },
        config,
    )
    .unwrap();
    let e = client.preflight(&target()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Reset);
    assert_eq!(e.attempts, 3);
    assert!(e.is_transient());
}

#[tokio::test]
async fn coolify_malformed_json() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/projects",
        vec![Reply::text(200, "<html><body>Login</body></html>")],
    );
    let e = client.preflight(&target()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::MalformedResponse);
    snap("coolify_malformed_json", &e);
}

#[tokio::test]
async fn coolify_huge_json_is_refused() {
    let (fake, client, _) = world("4.3.11").await;
    let huge = format!("[{}]", vec![r#"{"uuid":"x","name":"y"}"#; 10_000].join(","));
    fake.on("GET", "/api/v1/projects", vec![Reply::text(200, &huge)]);
    let e = client.preflight(&target()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge { limit: 64 * 1024 });
    snap("coolify_huge_json", &e);
}

#[tokio::test]
async fn coolify_huge_streamed_json_is_refused() {
    // No Content-Length: the cap applies while reading.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n").await;
        let chunk = format!("{:x}\r\n{}\r\n", 16384, "x".repeat(16384));
        for _ in 0..8 {
            if s.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = s.write_all(b"0\r\n\r\n").await;
    });
    let e = client_for(&format!("http://{addr}"), Arc::new(Retries::default()))
        .preflight(&target())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge { limit: 64 * 1024 });
}

#[tokio::test]
async fn coolify_redirect_is_not_followed() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/version",
        vec![Reply::text(301, "").header("location", "https://coolify.example.com/api/v1/version")],
    );
    let e = client.preflight(&target()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    snap("coolify_redirect", &e);
}

#[tokio::test]
async fn coolify_405_get_deploy() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "POST",
        "/api/v1/deploy",
        vec![
            Reply::json(
                405,
                json!({"message":"This endpoint has changed to a POST request."}),
            )
            .header("allow", "POST"),
        ],
    );
    let app = RemoteApp {
        kind: AppKind::Application,
        uuid: "app".into(),
        name: "blog".into(),
        description: None,
        domains: vec![],
        status: None,
        mark: None,
    };
    let e = client.deploy(&app, false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    snap("coolify_405", &e);
}

#[tokio::test]
async fn secrets_echoed_by_the_server_are_scrubbed() {
    let (fake, client, _) = world("4.3.11").await;
    fake.on(
        "GET",
        "/api/v1/applications/app/envs",
        vec![Reply::json(200, json!([]))],
    );
    fake.on(
        "PATCH",
        "/api/v1/applications/app/envs/bulk",
        vec![Reply::json(
            422,
            json!({"message":"Validation failed.","errors":{"data.0.value":[
            "The value sup3r-s3cret-value is invalid; token 12|coolify-test-token-s3cret"]}}),
        )],
    );
    let env = vec![EnvVarDesired {
        key: "DB_PASSWORD".into(),
        value: EnvValue::Secret(SecretValue::new("sup3r-s3cret-value")),
        is_preview: false,
        is_literal: false,
        is_multiline: false,
        is_buildtime: true,
    }];
    let e = client.reconcile_env(&remote(), &env).await.unwrap_err();
    let all = format!("{e}\n{}\n{e:?}", e.report());
    assert!(!all.contains("sup3r-s3cret-value"), "{all}");
    assert!(!all.contains(TOKEN), "{all}");
    assert!(all.contains("[redacted]"));
    snap("coolify_secret_scrubbed", &e);
}

#[tokio::test]
async fn an_invalid_base_url_is_a_configuration_error() {
    let e = CoolifyClient::new(
        CoolifyConfig {
            base_url: "coolify.example.com".into(),
            token: SecretValue::new(TOKEN),
        },
        HttpConfig::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    snap("coolify_invalid_url", &e);
}

#[tokio::test]
async fn fake_is_reachable() {
    // Guards the fixtures: an unscripted route answers 599.
    let fake = Fake::start().await;
    let r = reqwest::get(format!("{}/x", fake.base)).await.unwrap();
    assert_eq!(r.status().as_u16(), 599);
}
