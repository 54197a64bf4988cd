//! [`Notifier`] for webhooks: generic signed JSON, or Slack's format.
//!
//! Generic bodies are signed so receivers can check they come from Fabrik
//! and are fresh: `X-Fabrik-Timestamp: <unix seconds>` and
//! `X-Fabrik-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
//! with the shared secret. Receivers should reject timestamps more than a
//! few minutes old. The webhook URL itself is treated as a secret (Slack
//! URLs carry their credential in the path) and never appears in errors.

use async_trait::async_trait;
use hmac::{KeyInit, Mac};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Map, Value, json};

use super::Notifier;
use super::error::{ErrorKind, ProviderError, ProviderName};
use super::http::{self, Failure, Http, HttpConfig, Request, Response};
use super::types::Notification;
use crate::secret::{Scrubber, SecretValue};

const P: ProviderName = ProviderName::Webhook;

/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "x-fabrik-timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-fabrik-signature";

/// The body format a webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// Fabrik's JSON document, signed when a secret is configured.
    Generic,
    /// Slack incoming webhooks (and compatible: Mattermost, Discord `/slack`).
    Slack,
}

/// One webhook.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The endpoint; a secret because it often carries a credential.
    pub url: SecretValue,
    /// Body format.
    pub format: WebhookFormat,
    /// HMAC key for the signature header (generic format only).
    pub secret: Option<SecretValue>,
}

/// Sends notifications to one webhook.
#[derive(Debug)]
pub struct WebhookNotifier {
    http: Http,
    format: WebhookFormat,
    secret: Option<SecretValue>,
    url: SecretValue,
}

impl WebhookNotifier {
    /// A notifier; does no I/O.
    pub fn new(config: WebhookConfig, http: HttpConfig) -> Result<Self, ProviderError> {
        let http = Http::new(P, config.url.expose(), None, http, classify).map_err(|mut e| {
            // The parse error could quote the URL.
            e.message = "invalid webhook URL".into();
            e
        })?;
        Ok(Self {
            http,
            format: config.format,
            secret: config.secret,
            url: config.url,
        })
    }

    /// The exact body bytes for `n`.
    pub fn body(&self, n: &Notification) -> Vec<u8> {
        let v = match self.format {
            WebhookFormat::Generic => generic_body(n),
            WebhookFormat::Slack => slack_body(n),
        };
        v.to_string().into_bytes()
    }
}

/// `sha256=<hex>` over `"<timestamp>.<body>"`.
pub fn signature(secret: &SecretValue, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn generic_body(n: &Notification) -> Value {
    let details: Map<String, Value> = n
        .details
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "event": n.event,
        "deployment": n.deployment.as_str(),
        "run": n.run.as_ref().map(|r| r.as_str()),
        "summary": n.summary,
        "at": n.at.to_string(),
        "details": details,
    })
}

fn slack_body(n: &Notification) -> Value {
    let mut fields = String::new();
    for (k, v) in &n.details {
        fields.push_str(&format!("\n*{k}:* {v}"));
    }
    let text = format!("[{}] {}: {}", n.deployment, n.event, n.summary);
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}* — `{}`\n{}{}", n.deployment, n.event, n.summary, fields)}}
        ]
    })
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn send(&self, n: &Notification) -> Result<(), ProviderError> {
        let body = self.body(n);
        // The whole URL, and its path and query alone (a server may echo them).
        let mut secrets = Scrubber::with([&self.url]);
        let base = self.http.base();
        secrets.add(&SecretValue::new(base.path()));
        if let Some(q) = base.query() {
            secrets.add(&SecretValue::new(q));
        }
        let mut req = Request::new(Method::POST, format!("send {}", n.event), &[])
            // A repeated notification is harmless; a lost one is worse.
            .idempotent(true)
            .secrets(secrets);
        if self.format == WebhookFormat::Generic {
            let ts = n.at.as_second();
            req.headers.push((
                HeaderName::from_static(TIMESTAMP_HEADER),
                HeaderValue::from(ts),
            ));
            if let Some(secret) = &self.secret {
                req.secrets.add(secret);
                let sig = signature(secret, ts, &body);
                let value = HeaderValue::from_str(&sig).map_err(|_| {
                    ProviderError::new(P, "sign notification", ErrorKind::InvalidRequest)
                })?;
                req.headers
                    .push((HeaderName::from_static(SIGNATURE_HEADER), value));
            }
        }
        req.body = Some(body);
        self.http.send(&req).await.map(|_| ()).map_err(|mut e| {
            // Never show the path of the URL: it may be the credential.
            e.endpoint = Some(format!("POST {}", http::origin(self.http.base())));
            e
        })
    }
}

fn classify(resp: &Response, scrubber: &Scrubber) -> Failure {
    let kind = http::kind_for_status(resp.status, &resp.headers);
    let hint = match &kind {
        ErrorKind::NotFound | ErrorKind::Forbidden(_) | ErrorKind::Unauthorized => {
            Some("check the webhook URL (it may have been revoked) and its secret".into())
        }
        _ => None,
    };
    Failure {
        kind,
        code: None,
        message: http::excerpt(scrubber, &resp.body),
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec-test'
        let sig = signature(
            &SecretValue::new("whsec-test"),
            1_700_000_000,
            br#"{"a":1}"#,
        );
        assert_eq!(
            sig,
            "sha256=fed7a1a6c799a6367d73724d76bc70c16678908a32a879cd1ded6565ac05cece"
        );
        let other = signature(
            &SecretValue::new("whsec-test"),
            1_700_000_001,
            br#"{"a":1}"#,
        );
        assert_ne!(sig, other);
    }
}
