//! DNS records in a Cloudflare zone.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    /// Take over an identical record that exists without Fabrik's mark
    /// (made by hand). An adopted record is never deleted by a rollback,
    /// and `fabrik destroy` leaves it in place while the spec adopts it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
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

    /// Every record with its content key.
    ///
    /// The records of one type at one name are a set of contents: an A,
    /// AAAA or TXT record's content key carries its canonical content,
    /// `dns:<TYPE>:<name>:<content>`, and a change of the set is adds and
    /// removes of contents. A name has at most one CNAME, whose key is
    /// `dns:CNAME:<name>` (a new target is an update in place). The key a
    /// run uses is the one its journal knows the record by, or
    /// `dns:<TYPE>:<name>` for a record that is alone under it (see
    /// `engine::desired::World::align_keys`): a key never changes while
    /// its record stays.
    pub fn keyed_records(&self) -> Vec<(String, &DnsRecord)> {
        self.records
            .iter()
            .map(|r| (record_key(r.kind, &self.fqdn(r), &r.content), r))
            .collect()
    }

    /// Whether Cloudflare proxies `fqdn`: one of its A, AAAA or CNAME
    /// records is proxied. "If any one of them is proxied, all A/AAAA
    /// records on that name are treated as proxied" (cloudflare-docs
    /// `dns/proxy-status/index.mdx`, "Mix proxied and unproxied").
    pub fn proxied(&self, fqdn: &str) -> bool {
        self.records
            .iter()
            .any(|r| r.proxied && r.kind.proxiable() && self.fqdn(r) == fqdn)
    }
}

/// The ranges Cloudflare answers proxied names with, as published at
/// <https://www.cloudflare.com/ips-v4> and <https://www.cloudflare.com/ips-v6>
/// (cloudflare-docs `fundamentals/concepts/cloudflare-ip-addresses.mdx`:
/// "shared by all proxied hostnames"). "A DNS query to the proxied record
/// `blog.example.com` will be answered with a Cloudflare anycast IP address
/// instead of `192.0.2.1`" (cloudflare-docs `dns/proxy-status/index.mdx`).
const CLOUDFLARE_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(173, 245, 48, 0), 20),
    (Ipv4Addr::new(103, 21, 244, 0), 22),
    (Ipv4Addr::new(103, 22, 200, 0), 22),
    (Ipv4Addr::new(103, 31, 4, 0), 22),
    (Ipv4Addr::new(141, 101, 64, 0), 18),
    (Ipv4Addr::new(108, 162, 192, 0), 18),
    (Ipv4Addr::new(190, 93, 240, 0), 20),
    (Ipv4Addr::new(188, 114, 96, 0), 20),
    (Ipv4Addr::new(197, 234, 240, 0), 22),
    (Ipv4Addr::new(198, 41, 128, 0), 17),
    (Ipv4Addr::new(162, 158, 0, 0), 15),
    (Ipv4Addr::new(104, 16, 0, 0), 13),
    (Ipv4Addr::new(104, 24, 0, 0), 14),
    (Ipv4Addr::new(172, 64, 0, 0), 13),
    (Ipv4Addr::new(131, 0, 72, 0), 22),
];

/// The IPv6 half of [`CLOUDFLARE_V4`]'s list.
const CLOUDFLARE_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2400, 0xcb00, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x2606, 0x4700, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x2803, 0xf800, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x2405, 0xb500, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x2405, 0x8100, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x2a06, 0x98c0, 0, 0, 0, 0, 0, 0), 29),
    (Ipv6Addr::new(0x2c0f, 0xf248, 0, 0, 0, 0, 0, 0), 32),
];

/// Whether `ip` is one of Cloudflare's edge addresses (what a proxied
/// name resolves to).
pub fn cloudflare_edge(ip: IpAddr) -> bool {
    fn within(addr: u128, net: u128, prefix: u8, bits: u8) -> bool {
        let shift = u32::from(bits - prefix);
        addr >> shift == net >> shift
    }
    match ip {
        IpAddr::V4(a) => CLOUDFLARE_V4
            .iter()
            .any(|(net, p)| within(u32::from(a).into(), u32::from(*net).into(), *p, 32)),
        IpAddr::V6(a) => CLOUDFLARE_V6
            .iter()
            .any(|(net, p)| within(u128::from(a), u128::from(*net), *p, 128)),
    }
}

/// Longest content a key carries as it is; longer ones are shortened,
/// with a digest of the whole.
const KEY_CONTENT_MAX: usize = 48;

/// The key of a record of `kind` at `fqdn` with `content`.
pub fn record_key(kind: RecordType, fqdn: &str, content: &str) -> String {
    if kind == RecordType::Cname {
        return format!("dns:{kind}:{fqdn}");
    }
    let c = canonical_content(kind, content);
    let c = if c.chars().count() > KEY_CONTENT_MAX || c.chars().any(char::is_control) {
        let head: String = c.chars().filter(|ch| !ch.is_control()).take(24).collect();
        let digest = blake3::hash(c.as_bytes()).to_hex();
        format!("{head}…{}", &digest[..12])
    } else {
        c
    };
    format!("dns:{kind}:{fqdn}:{c}")
}

/// A record's content in the one form every comparison uses, as
/// Cloudflare stores it (cloudflare notes §3, "Normalisation rules"):
///
/// - A: the dotted quad (`Ipv4Addr`);
/// - AAAA: RFC 5952, lower case, the longest zero run compressed, as
///   Cloudflare stores and returns it (`fe80::0:0:1` → `fe80::1`);
/// - CNAME: lower case, without the trailing dot;
/// - TXT: the text itself: quoted RFC 1035 character-strings (`"a" "b"`,
///   as Cloudflare may return long values) are decoded and joined.
///
/// Content that does not parse is only trimmed.
pub fn canonical_content(kind: RecordType, content: &str) -> String {
    let c = content.trim();
    match kind {
        RecordType::A => c
            .parse::<std::net::Ipv4Addr>()
            .map_or_else(|_| c.to_owned(), |a| a.to_string()),
        RecordType::Aaaa => c
            .parse::<std::net::Ipv6Addr>()
            .map_or_else(|_| c.to_owned(), |a| a.to_string()),
        RecordType::Cname => c.strip_suffix('.').unwrap_or(c).to_ascii_lowercase(),
        RecordType::Txt => txt_decode(c).unwrap_or_else(|| c.to_owned()),
    }
}

/// Decodes TXT content written as quoted character-strings (`"abc" "def"`
/// → `abcdef`, `\"` and `\\` unescaped, `\DDD` a byte). `None` when
/// it is not quoted, or its quotes do not balance.
pub fn txt_decode(content: &str) -> Option<String> {
    let c = content.trim();
    if !c.starts_with('"') {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    let bytes = c.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b' ' | b'\t' => i += 1,
            b'"' => {
                i += 1;
                loop {
                    match bytes.get(i)? {
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\\' => {
                            let next = *bytes.get(i + 1)?;
                            if next.is_ascii_digit() {
                                let digits = c.get(i + 1..i + 4)?;
                                out.push(digits.parse::<u8>().ok()?);
                                i += 4;
                            } else {
                                out.push(next);
                                i += 2;
                            }
                        }
                        b => {
                            out.push(*b);
                            i += 1;
                        }
                    }
                }
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// TXT content as Fabrik sends it: quoted character-strings of at most
/// 255 bytes each (split between characters), `"` and `\\` escaped, the
/// form Cloudflare documents (TS `records.ts:6294-6300`).
pub fn txt_encode(text: &str) -> String {
    let mut parts = Vec::new();
    let mut chunk = String::new();
    for ch in text.chars() {
        let esc = match ch {
            '"' => "\\\"".to_owned(),
            '\\' => "\\\\".to_owned(),
            c => c.to_string(),
        };
        if chunk.len() + ch.len_utf8() > 255 && !chunk.is_empty() {
            parts.push(format!("\"{chunk}\""));
            chunk.clear();
        }
        chunk.push_str(&esc);
    }
    parts.push(format!("\"{chunk}\""));
    parts.join(" ")
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
            adopt: false,
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
                "dns:A:app.example.com:203.0.113.10",
                "dns:TXT:example.com:a",
                "dns:TXT:example.com:b"
            ]
        );
        // A CNAME is alone at its name: its key has no content.
        assert_eq!(
            record_key(RecordType::Cname, "www.example.com", "App.Example.com."),
            "dns:CNAME:www.example.com"
        );
        // Two spellings of one address are one key.
        assert_eq!(
            record_key(RecordType::Aaaa, "x.example.com", "2001:DB8:0:0:0:0:0:1"),
            record_key(RecordType::Aaaa, "x.example.com", "2001:db8::1")
        );
    }

    #[test]
    fn contents_are_compared_as_cloudflare_stores_them() {
        use RecordType as T;
        assert_eq!(canonical_content(T::Aaaa, "fe80::0:0:1"), "fe80::1");
        assert_eq!(
            canonical_content(T::Aaaa, "2001:DB8:0:1:0:0:0:1"),
            "2001:db8:0:1::1"
        );
        assert_eq!(canonical_content(T::A, " 203.0.113.10 "), "203.0.113.10");
        assert_eq!(
            canonical_content(T::Cname, "Target.Example.NET."),
            "target.example.net"
        );
        assert_eq!(canonical_content(T::Txt, "\"v=spf1 -all\""), "v=spf1 -all");
        assert_eq!(canonical_content(T::Txt, "v=spf1 -all"), "v=spf1 -all");
        assert_eq!(canonical_content(T::Txt, "\"abc\" \"def\""), "abcdef");
        assert_eq!(canonical_content(T::Txt, "\"a\\\"b\""), "a\"b");
        for n in [0, 255, 256, 600] {
            let text: String = "é".repeat(n / 2) + &"x".repeat(n % 2);
            assert_eq!(canonical_content(T::Txt, &txt_encode(&text)), text, "{n}");
            assert!(txt_encode(&text).split("\" \"").all(|p| p.len() <= 257));
        }
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
