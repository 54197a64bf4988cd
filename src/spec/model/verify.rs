//! Verification after deploy: HTTP, TLS and DNS checks.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::app::default_status;
use super::dns::RecordType;
use super::duration::Duration;

/// Checks run after the deploy; if one still fails when `timeout` runs
/// out, the run fails and owned resources are rolled back by policy.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// How long all checks together may take to pass (they are retried
    /// until then).
    #[serde(default = "default_timeout")]
    pub timeout: Duration,
    /// HTTP requests and what they must answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpCheck>,
    /// TLS certificates and how long they must stay valid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<TlsCheck>,
    /// DNS names and what they must resolve to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<DnsCheck>,
}

impl Default for Verify {
    fn default() -> Self {
        Self {
            timeout: default_timeout(),
            http: Vec::new(),
            tls: Vec::new(),
            dns: Vec::new(),
        }
    }
}

impl Verify {
    /// How many checks there are (each `expect` of a DNS check counts as
    /// one).
    pub fn checks(&self) -> usize {
        self.http.len()
            + self.tls.len()
            + self
                .dns
                .iter()
                .map(|d| d.expect.len().max(1))
                .sum::<usize>()
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(300)
}

/// An HTTP request and its expected answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The URL; its host must be one of the application's domains.
    pub url: String,
    /// The expected status code.
    #[serde(default = "default_status")]
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
}

/// A TLS certificate check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsCheck {
    /// The host to connect to on port 443; one of the application's domains.
    pub host: String,
    /// Days the certificate must remain valid.
    #[serde(default = "default_min_days")]
    #[schemars(range(min = 1, max = 825))]
    pub min_days: u32,
}

fn default_min_days() -> u32 {
    14
}

/// A DNS resolution check.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsCheck {
    /// The name to resolve.
    pub name: String,
    /// The record type to ask for.
    #[serde(rename = "type", default)]
    pub kind: RecordType,
    /// Values the answer must contain. When empty, the contents of the
    /// spec's own records of this name and type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<String>,
}
