//! Webhook notifications about runs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::interpolated::Interpolated;

/// Where to report runs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// The longest one delivery may take, retries included (whole
    /// seconds). Deliveries run beside the run and never delay a step; the
    /// end of a run waits for its last notifications at most this long.
    #[serde(
        default = "default_timeout",
        skip_serializing_if = "is_default_timeout"
    )]
    pub timeout: Duration,
    /// Webhooks called when a run reaches one of their events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhooks: Vec<Webhook>,
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            timeout: default_timeout(),
            webhooks: Vec::new(),
        }
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn is_default_timeout(d: &Duration) -> bool {
    *d == default_timeout()
}

/// A webhook.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// A name for messages and the journal, unique in the spec.
    pub name: String,
    /// The URL (http or https). Slack URLs carry a token: write them as
    /// `${secret.SLACK_WEBHOOK_URL}`.
    pub url: Interpolated,
    /// The body's shape.
    #[serde(default)]
    pub format: WebhookFormat,
    /// A declared secret whose value signs `json` bodies as Standard
    /// Webhooks do (`webhook-id`, `webhook-timestamp`, `webhook-signature`
    /// headers); best written `whsec_<base64>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// The events to send. All of them when absent.
    #[serde(default = "NotifyEvent::all")]
    pub events: Vec<NotifyEvent>,
}

/// The body a webhook receives.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// A JSON document describing the event, optionally signed (the default).
    #[default]
    Json,
    /// A Slack-compatible `{"text": ...}` message.
    Slack,
    /// A Discord `{"content": ...}` message.
    Discord,
}

/// Run events a webhook can receive.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A run started.
    Started,
    /// A run completed.
    Succeeded,
    /// A run failed.
    Failed,
    /// A failed run's owned resources were rolled back.
    RolledBack,
    /// A run stopped and needs a person (manual rollback, interruption).
    NeedsAttention,
    /// A deployment was destroyed.
    Destroyed,
}

impl NotifyEvent {
    /// Every event.
    pub fn all() -> Vec<Self> {
        vec![
            Self::Started,
            Self::Succeeded,
            Self::Failed,
            Self::RolledBack,
            Self::NeedsAttention,
            Self::Destroyed,
        ]
    }
}
