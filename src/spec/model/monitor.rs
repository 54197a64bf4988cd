//! Uptime Kuma monitors.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;

/// An Uptime Kuma monitor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// The monitor's name, unique in the spec; also its key (`monitor:<name>`).
    pub name: String,
    /// What the monitor checks.
    #[serde(rename = "type", default)]
    pub kind: MonitorType,
    /// The URL requested.
    pub url: String,
    /// For `keyword` monitors: text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// Time between checks (whole seconds, at least 20s).
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Failed checks before the monitor reports down.
    #[serde(default)]
    #[schemars(range(max = 10))]
    pub retries: u8,
    /// Time between checks while retrying (whole seconds, at least 20s).
    #[serde(default = "default_interval")]
    pub retry_interval: Duration,
    /// Status codes that count as up, as Uptime Kuma writes them (`200-299`, `301`).
    #[serde(default = "default_accepted")]
    pub accepted_status: Vec<String>,
    /// Ids of Uptime Kuma notifications to alert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<u32>,
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

fn default_accepted() -> Vec<String> {
    vec!["200-299".to_owned()]
}

/// The kinds of monitor Fabrik creates.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MonitorType {
    /// Up when the status code is accepted (the default).
    #[default]
    Http,
    /// Up when the status code is accepted and the body contains `keyword`.
    Keyword,
}

impl Monitor {
    /// The monitor's stable key.
    pub fn key(&self) -> String {
        format!("monitor:{}", self.name)
    }
}
