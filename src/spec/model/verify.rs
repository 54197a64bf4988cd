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

/// What a DNS check compares the answers with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsExpectation {
    /// The check's `expect:` values (canonical): each must be among the
    /// answers.
    Listed(Vec<String>),
    /// The contents of the spec's records of this name and type
    /// (canonical, sorted): for A, AAAA and CNAME the answers must be
    /// exactly these (a resolver hands out every address, so one more
    /// sends visitors elsewhere); for TXT each must be among the answers
    /// (a name's TXT records serve unrelated purposes, such as SPF and
    /// site verification, so others may stand beside them).
    Records(Vec<String>),
    /// The name is proxied and the question is A or AAAA: every answer
    /// must be one of Cloudflare's edge addresses, never the origin
    /// (see [`super::dns::cloudflare_edge`]).
    CloudflareEdge,
    /// Nothing to compare with: the check lists no values and the spec
    /// has no record of this name and type. Any answer passes.
    Any,
}

impl DnsCheck {
    /// What this check compares the answers with, given the spec's
    /// `dns` section.
    pub fn expectation(&self, dns: Option<&super::Dns>) -> DnsExpectation {
        let canonical = |c: &str| super::canonical_content(self.kind, c);
        if !self.expect.is_empty() {
            return DnsExpectation::Listed(self.expect.iter().map(|e| canonical(e)).collect());
        }
        let Some(dns) = dns else {
            return DnsExpectation::Any;
        };
        let name = super::dns::canonical_name(&self.name);
        if matches!(self.kind, RecordType::A | RecordType::Aaaa) && dns.proxied(&name) {
            return DnsExpectation::CloudflareEdge;
        }
        let mut contents: Vec<String> = dns
            .records
            .iter()
            .filter(|r| r.kind == self.kind && dns.fqdn(r) == name)
            .map(|r| canonical(&r.content))
            .collect();
        contents.sort();
        contents.dedup();
        if contents.is_empty() {
            DnsExpectation::Any
        } else {
            DnsExpectation::Records(contents)
        }
    }
}
