//! DNS records in a Cloudflare zone.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// The Cloudflare zone and the records Fabrik manages in it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// The zone's name, e.g. `example.com`.
    pub zone: String,
    /// The records.
    #[serde(default)]
    pub records: Vec<DnsRecord>,
}

/// One DNS record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DnsRecord {
    /// The record type.
    #[serde(rename = "type")]
    pub kind: RecordType,
    /// The full name (`app.example.com`), or `@` for the zone apex. It must
    /// lie in the zone.
    pub name: String,
    /// An IPv4 address for `A`, IPv6 for `AAAA`, a host name for `CNAME`,
    /// text for `TXT`.
    pub content: String,
    /// Whether Cloudflare proxies the traffic (`A`, `AAAA` and `CNAME` only).
    #[serde(default)]
    pub proxied: bool,
    /// Time to live: `auto`, or 60 to 86400 seconds. Proxied records must
    /// use `auto`.
    #[serde(default)]
    pub ttl: Ttl,
}

/// The record types Fabrik manages.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    JsonSchema,
)]
pub enum RecordType {
    /// An IPv4 address.
    #[default]
    A,
    /// An IPv6 address.
    #[serde(rename = "AAAA")]
    Aaaa,
    /// An alias for another name.
    #[serde(rename = "CNAME")]
    Cname,
    /// Text.
    #[serde(rename = "TXT")]
    Txt,
}

impl RecordType {
    /// The type as Cloudflare writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Txt => "TXT",
        }
    }

    /// Whether Cloudflare can proxy records of this type.
    pub fn proxiable(self) -> bool {
        matches!(self, Self::A | Self::Aaaa | Self::Cname)
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record's time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Ttl {
    /// Cloudflare chooses (its value `1`); required for proxied records.
    #[default]
    Auto,
    /// This many seconds, 60 to 86400.
    Seconds(u32),
}

impl Ttl {
    /// The value Cloudflare's API takes (`1` means automatic).
    pub fn api_value(self) -> u32 {
        match self {
            Self::Auto => 1,
            Self::Seconds(s) => s,
        }
    }
}

impl Serialize for Ttl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Auto => s.serialize_str("auto"),
            Self::Seconds(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Self::Seconds(n)),
            Raw::S(s) if s == "auto" => Ok(Self::Auto),
            Raw::S(s) => Err(serde::de::Error::custom(format!("invalid ttl `{s}`"))),
        }
    }
}

impl JsonSchema for Ttl {
    fn schema_name() -> Cow<'static, str> {
        "Ttl".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = Schema::default();
        s.insert(
            "description".into(),
            "Time to live: `auto`, or 60 to 86400 seconds.".into(),
        );
        s.insert(
            "anyOf".into(),
            serde_json::json!([
                { "type": "string", "const": "auto" },
                { "type": "integer", "minimum": 60, "maximum": 86400 }
            ]),
        );
        s
    }
}

impl Dns {
    /// The zone in canonical form: lower case, no trailing dot.
    pub fn zone_name(&self) -> String {
        canonical_name(&self.zone)
    }

    /// A record's fully qualified name (`@` becomes the zone).
    pub fn fqdn(&self, record: &DnsRecord) -> String {
        if record.name.trim() == "@" {
            self.zone_name()
        } else {
            canonical_name(&record.name)
        }
    }

    /// Every record with its stable key.
    ///
    /// The key is `dns:<TYPE>:<name>`; when the spec has several records
    /// of one type and name (a multi-value A or TXT set), each key also
    /// carries the content, `dns:<TYPE>:<name>:<content>`, so that every
    /// record still has a key of its own.
    pub fn keyed_records(&self) -> Vec<(String, &DnsRecord)> {
        let mut counts: BTreeMap<(RecordType, String), usize> = BTreeMap::new();
        for r in &self.records {
            *counts.entry((r.kind, self.fqdn(r))).or_default() += 1;
        }
        self.records
            .iter()
            .map(|r| {
                let name = self.fqdn(r);
                let shared = counts.get(&(r.kind, name.clone())).copied().unwrap_or(0) > 1;
                let key = if shared {
                    format!("dns:{}:{}:{}", r.kind, name, r.content.trim())
                } else {
                    format!("dns:{}:{}", r.kind, name)
                };
                (key, r)
            })
            .collect()
    }
}

/// A DNS name in canonical form: trimmed, no trailing dot, in its ASCII
/// form (international names as punycode), lower case.
pub fn canonical_name(name: &str) -> String {
    crate::spec::host::ascii_or_self(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kind: RecordType, name: &str, content: &str) -> DnsRecord {
        DnsRecord {
            kind,
            name: name.into(),
            content: content.into(),
            proxied: false,
            ttl: Ttl::Auto,
        }
    }

    #[test]
    fn keys_are_stable_and_unique() {
        let dns = Dns {
            zone: "Example.com.".into(),
            records: vec![
                rec(RecordType::A, "App.example.com", "203.0.113.10"),
                rec(RecordType::Txt, "@", "a"),
                rec(RecordType::Txt, "example.com.", "b"),
            ],
        };
        let keys: Vec<String> = dns.keyed_records().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec![
                "dns:A:app.example.com",
                "dns:TXT:example.com:a",
                "dns:TXT:example.com:b"
            ]
        );
    }

    #[test]
    fn ttl_reads_auto_or_seconds() {
        let t: Ttl = serde_json::from_str("\"auto\"").unwrap_or(Ttl::Seconds(0));
        assert_eq!(t, Ttl::Auto);
        let t: Ttl = serde_json::from_str("300").unwrap_or(Ttl::Auto);
        assert_eq!(t, Ttl::Seconds(300));
        assert_eq!(Ttl::Auto.api_value(), 1);
    }
}
