//! Webhook notifications: signed generic JSON, Slack format, retries.

use std::sync::Arc;

use fabrik::id::DeploymentId;
use fabrik::provider::webhook::signature;
use fabrik::provider::*;
use fabrik::secret::SecretValue;
use hmac::{KeyInit, Mac};
use serde_json::json;

use super::fake::{Fake, Reply, Retries, http, snapshots};

const SECRET: &str = "whsec-test-s3cret";

fn note() -> Notification {
    Notification {
        event: "run.completed".into(),
        deployment: DeploymentId::new("blog").unwrap(),
        run: Some("01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap()),
        summary: "blog is live".into(),
        at: "2026-01-02T03:04:05Z".parse().unwrap(),
        details: vec![("url".into(), "https://blog.example.com".into())],
    }
}

fn notifier(url: String, format: WebhookFormat, secret: Option<&str>) -> WebhookNotifier {
    WebhookNotifier::new(
        WebhookConfig {
            url: SecretValue::new(url),
            format,
            secret: secret.map(SecretValue::new),
        },
        http(Arc::new(Retries::default())),
    )
    .unwrap()
}

#[tokio::test]
async fn generic_webhooks_are_signed_as_standard_webhooks() {
    let fake = Fake::start().await;
    fake.on("POST", "/hook", vec![Reply::text(204, "")]);
    notifier(
        format!("{}/hook", fake.base),
        WebhookFormat::Generic,
        Some(SECRET),
    )
    .send(&note())
    .await
    .unwrap();
    let hit = &fake.hits()[0];
    assert_eq!(hit.header("content-type").unwrap(), "application/json");
    let ts = hit.header("webhook-timestamp").unwrap();
    assert_eq!(ts, "1767323045");
    let id = hit.header("webhook-id").unwrap().to_owned();
    assert_eq!(id, "msg_01jdx3v5q6m7n8p9r0s1t2v3w4_run.completed");
    // Verify independently of the client's own signing code: a secret that
    // is not `whsec_<base64>` signs with its own bytes.
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{id}.{ts}.{}", hit.body).as_bytes());
    use base64::Engine as _;
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(hit.header("webhook-signature").unwrap(), expected);
    assert_eq!(
        expected,
        signature(
            &SecretValue::new(SECRET),
            &id,
            1_767_323_045,
            hit.body.as_bytes()
        )
    );
    assert_eq!(
        hit.json(),
        json!({"id": id, "event":"run.completed","deployment":"blog","run":"01jdx3v5q6m7n8p9r0s1t2v3w4",
               "summary":"blog is live","at":"2026-01-02T03:04:05Z","details":{"url":"https://blog.example.com"}})
    );
}

#[tokio::test]
async fn slack_text_is_escaped() {
    let fake = Fake::start().await;
    fake.on("POST", "/services/T0/B0/ESC", vec![Reply::text(200, "ok")]);
    let mut n = note();
    n.summary = "failed: <html> & co".into();
    notifier(
        format!("{}/services/T0/B0/ESC", fake.base),
        WebhookFormat::Slack,
        None,
    )
    .send(&n)
    .await
    .unwrap();
    let body = fake.hits()[0].json();
    let text = body["text"].as_str().unwrap();
    assert!(text.contains("failed: &lt;html&gt; &amp; co"), "{text}");
    assert!(!text.contains("<html>"), "{text}");
}

#[tokio::test]
async fn slack_webhooks_get_text_and_blocks_without_signature() {
    let fake = Fake::start().await;
    fake.on("POST", "/services/T0/B0/XYZ", vec![Reply::text(200, "ok")]);
    notifier(
        format!("{}/services/T0/B0/XYZ", fake.base),
        WebhookFormat::Slack,
        None,
    )
    .send(&note())
    .await
    .unwrap();
    let hit = &fake.hits()[0];
    assert!(hit.header("webhook-signature").is_none());
    let body = hit.json();
    assert_eq!(body["text"], "[blog] run.completed: blog is live");
    assert_eq!(body["blocks"][0]["type"], "section");
    assert!(
        body["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("https://blog.example.com")
    );
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_and_the_url_path_never_shows() {
    let fake = Fake::start().await;
    fake.on(
        "POST",
        "/services/T0/B0/secret-path-token",
        vec![Reply::text(503, "busy"), Reply::text(200, "ok")],
    );
    let n = notifier(
        format!("{}/services/T0/B0/secret-path-token", fake.base),
        WebhookFormat::Slack,
        None,
    );
    n.send(&note()).await.unwrap();
    assert_eq!(fake.count("POST", "/services/T0/B0/secret-path-token"), 2);

    fake.on(
        "POST",
        "/services/T0/B0/secret-path-token",
        vec![Reply::text(
            404,
            "no_service for /services/T0/B0/secret-path-token",
        )],
    );
    let e = n.send(&note()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let all = format!("{}{e:?}{n:?}", e.report());
    assert!(!all.contains("secret-path-token"), "{all}");
    snapshots().bind(|| insta::assert_snapshot!("webhook_404", e.report()));
}
