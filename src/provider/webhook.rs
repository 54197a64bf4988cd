//! [`Notifier`] for webhooks: signed JSON (Standard Webhooks), Slack or
//! Discord.
//!
//! JSON bodies follow the Standard Webhooks specification
//! (standardwebhooks.com, `spec/standard-webhooks.md`) so that any of its
//! reference verifiers checks them:
//!
//! - `webhook-id`: one id per event of a run (`msg_<run>_<event>`), the
//!   same on every retry and every resend of that event, so a receiver
//!   drops duplicates by it;
//! - `webhook-timestamp`: unix seconds of the event;
//! - `webhook-signature`: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`
//!   when a signing secret is set. A secret written as `whsec_<base64>` (the
//!   form the reference libraries generate and take) signs with the bytes
//!   the base64 encodes; any other secret signs with its own bytes (give a
//!   verifier `whsec_` followed by the base64 of it).
//!
//! Slack bodies escape `&`, `<` and `>` as Slack's message formatting
//! requires; Discord bodies carry the text in `content` (at most 2,000
//! characters) and mention nobody. The webhook URL itself is treated as a
//! secret (Slack and Discord URLs carry their credential in the path) and
//! never appears in errors.

use async_trait::async_trait;
use base64::Engine as _;
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

/// The message id header.
pub const ID_HEADER: &str = "webhook-id";
/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// Discord's limit on a message's `content`.
const DISCORD_MAX: usize = 2000;

/// The body format a webhook expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// Fabrik's JSON document, signed when a secret is configured.
    Generic,
    /// Slack incoming webhooks (and compatible: Mattermost).
    Slack,
    /// Discord webhooks (`{"content": ...}`).
    Discord,
}

/// One webhook.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// The endpoint; a secret because it often carries a credential.
    pub url: SecretValue,
    /// Body format.
    pub format: WebhookFormat,
    /// Signing key (generic format only).
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
            WebhookFormat::Discord => discord_body(n),
        };
        v.to_string().into_bytes()
    }
}

/// The id of a notification: the same for every delivery of one event of
/// one run.
pub fn message_id(n: &Notification) -> String {
    match &n.run {
        Some(run) => format!("msg_{run}_{}", n.event),
        None => format!("msg_{}_{}_{}", n.deployment, n.event, n.at.as_second()),
    }
}

/// The HMAC key of a signing secret: the bytes of `whsec_<base64>`, or the
/// secret's own bytes.
fn signing_key(secret: &SecretValue) -> Vec<u8> {
    let text = secret.expose();
    text.strip_prefix("whsec_")
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .unwrap_or_else(|| text.as_bytes().to_vec())
}

/// `v1,<base64>` over `"<id>.<timestamp>.<body>"` (Standard Webhooks).
pub fn signature(secret: &SecretValue, id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(&signing_key(secret)) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn generic_body(n: &Notification) -> Value {
    let details: Map<String, Value> = n
        .details
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "id": message_id(n),
        "event": n.event,
        "deployment": n.deployment.as_str(),
        "run": n.run.as_ref().map(|r| r.as_str()),
        "summary": n.summary,
        "at": n.at.to_string(),
        "details": details,
    })
}

/// Escapes the three characters Slack's message formatting reserves
/// (api.slack.com/reference/surfaces/formatting#escaping).
pub fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn slack_body(n: &Notification) -> Value {
    let e = slack_escape;
    let mut fields = String::new();
    for (k, v) in &n.details {
        fields.push_str(&format!("\n*{}:* {}", e(k), e(v)));
    }
    let text = format!(
        "[{}] {}: {}",
        e(n.deployment.as_str()),
        e(&n.event),
        e(&n.summary)
    );
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}* — `{}`\n{}{}", e(n.deployment.as_str()), e(&n.event), e(&n.summary), fields)}}
        ]
    })
}

fn discord_body(n: &Notification) -> Value {
    let mut text = format!("**{}** — `{}`\n{}", n.deployment, n.event, n.summary);
    for (k, v) in &n.details {
        text.push_str(&format!("\n**{k}:** {v}"));
    }
    if text.chars().count() > DISCORD_MAX {
        text = text.chars().take(DISCORD_MAX - 1).collect::<String>() + "…";
    }
    json!({
        "content": text,
        // Text from outside (a summary quoting an error) must not ping
        // anyone.
        "allowed_mentions": {"parse": []},
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
            // A repeated notification carries the same id: the receiver
            // drops it; a lost one is worse.
            .idempotent(true)
            .secrets(secrets);
        if self.format == WebhookFormat::Generic {
            let id = message_id(n);
            let ts = n.at.as_second();
            let header = |v: &str| {
                HeaderValue::from_str(v).map_err(|_| {
                    ProviderError::new(P, "sign notification", ErrorKind::InvalidRequest)
                })
            };
            req.headers
                .push((HeaderName::from_static(ID_HEADER), header(&id)?));
            req.headers.push((
                HeaderName::from_static(TIMESTAMP_HEADER),
                HeaderValue::from(ts),
            ));
            if let Some(secret) = &self.secret {
                req.secrets.add(secret);
                let sig = signature(secret, &id, ts, &body);
                req.headers
                    .push((HeaderName::from_static(SIGNATURE_HEADER), header(&sig)?));
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
        ErrorKind::Validation { .. } => {
            Some("the webhook refused the body: check its `format` (json, slack or discord)".into())
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
    fn signature_matches_the_standard_webhooks_example() {
        // The example of spec/standard-webhooks.md ("Verifying webhooks"),
        // checked with the reference Python library as well.
        let secret = SecretValue::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let sig = signature(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn slack_text_is_escaped() {
        assert_eq!(slack_escape("a & <b> c"), "a &amp; &lt;b&gt; c");
    }
}
