//! Rollback policy, retries and timeouts.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;

/// What happens to resources this run created when the run fails.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rollback {
    /// Remove them right away.
    Auto,
    /// Leave them, and name the `fabrik rollback` command that removes them.
    Manual,
    /// Leave them.
    Never,
}

/// The rollback policy per kind of resource.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicy {
    /// The Coolify application or service.
    #[serde(default = "auto")]
    pub coolify: Rollback,
    /// DNS records; manual by default, since removing a record that
    /// resolvers cached is slow to undo.
    #[serde(default = "manual")]
    pub dns: Rollback,
    /// Uptime Kuma monitors.
    #[serde(default = "auto")]
    pub monitors: Rollback,
}

fn auto() -> Rollback {
    Rollback::Auto
}
fn manual() -> Rollback {
    Rollback::Manual
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        Self {
            coolify: Rollback::Auto,
            dns: Rollback::Manual,
            monitors: Rollback::Auto,
        }
    }
}

/// How transient provider errors are retried.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1, max = 10))]
    pub attempts: u8,
    /// Delay before the first retry; it doubles each time, with jitter.
    #[serde(default = "default_initial")]
    pub initial_delay: Duration,
    /// The longest delay between attempts.
    #[serde(default = "default_max")]
    pub max_delay: Duration,
}

fn default_attempts() -> u8 {
    3
}
fn default_initial() -> Duration {
    Duration::from_secs(1)
}
fn default_max() -> Duration {
    Duration::from_secs(30)
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: default_attempts(),
            initial_delay: default_initial(),
            max_delay: default_max(),
        }
    }
}

/// Time limits.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// One HTTP request to a provider.
    #[serde(default = "default_request")]
    pub request: Duration,
    /// A Coolify deployment, from queued to finished.
    #[serde(default = "default_deploy")]
    pub deploy: Duration,
}

fn default_request() -> Duration {
    Duration::from_secs(30)
}
fn default_deploy() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            request: default_request(),
            deploy: default_deploy(),
        }
    }
}
