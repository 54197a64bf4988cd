//! Rules for `dns`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{check_hostname, host_issue};
use crate::spec::diagnostic::Issue;
use crate::spec::model::{App, Dns, RecordType, Ttl};
use crate::spec::path::FieldPath;

/// Cloudflare's limit on TXT content.
const TXT_MAX: usize = 2048;

pub(crate) fn check(dns: &Dns, app: Option<&App>, out: &mut Vec<Issue>) {
    let base = FieldPath::of("dns");
    let zone = dns.zone_name();
    let zone_ok = match check_hostname(&dns.zone, false) {
        Err(p) => {
            out.push(host_issue(base.key("zone"), &dns.zone, "a zone name", &p));
            false
        }
        Ok(_) if !zone.contains('.') => {
            out.push(
                Issue::error(
                    base.key("zone"),
                    format!("`{}` is not a zone name", dns.zone),
                )
                .hint("a zone is a registered domain, e.g. `example.com`"),
            );
            false
        }
        Ok(_) => true,
    };
    let mut seen: BTreeMap<(RecordType, String, String), usize> = BTreeMap::new();
    let mut names: BTreeMap<String, Vec<(usize, RecordType)>> = BTreeMap::new();
    for (i, r) in dns.records.iter().enumerate() {
        let path = base.key("records").index(i);
        let fqdn = dns.fqdn(r);
        if r.name.trim() != "@" {
            if let Err(p) = check_hostname(&r.name, true) {
                out.push(host_issue(
                    path.key("name"),
                    &r.name,
                    "a valid record name",
                    &p,
                ));
                continue;
            }
            if zone_ok && fqdn != zone && !fqdn.ends_with(&format!(".{zone}")) {
                let hint = if fqdn.contains('.') {
                    let first = fqdn.split('.').next().unwrap_or(&fqdn);
                    format!("records must lie in zone `{zone}`; did you mean `{first}.{zone}`?")
                } else {
                    format!("write the full name: `{fqdn}.{zone}` (or `@` for the zone itself)")
                };
                out.push(
                    Issue::error(
                        path.key("name"),
                        format!("record `{}` is outside zone `{zone}`", r.name),
                    )
                    .reads(base.key("zone"))
                    .hint(hint),
                );
            }
        }
        let before = out.len();
        check_content(r.kind, &r.content, &fqdn, &path.key("content"), out);
        for i in &mut out[before..] {
            i.inputs.extend([path.key("type"), path.key("name")]);
        }
        if r.proxied && !r.kind.proxiable() {
            out.push(
                Issue::error(
                    path.key("proxied"),
                    format!("{} records can not be proxied", r.kind),
                )
                .reads(path.key("type"))
                .hint("only A, AAAA and CNAME records can be proxied; remove `proxied`"),
            );
        }
        if r.proxied && matches!(r.ttl, Ttl::Seconds(_)) {
            out.push(
                Issue::error(path.key("ttl"), "proxied records have an automatic TTL")
                    .reads(path.key("proxied"))
                    .hint("write `ttl: auto` or remove `ttl`"),
            );
        }
        if r.proxied
            && matches!(r.kind, RecordType::A | RecordType::Aaaa)
            && let Some(kind) = crate::spec::host::internal_target(r.content.trim())
        {
            out.push(
                Issue::warning(
                    path.key("content"),
                    format!(
                        "`{}` is a {kind} address: Cloudflare's proxy can not reach it and answers with error 1002",
                        r.content.trim()
                    ),
                )
                .reads(path.key("proxied"))
                .hint("point the record at the server's public address, or remove `proxied`"),
            );
        }
        let key = (
            r.kind,
            fqdn.clone(),
            crate::spec::model::canonical_content(r.kind, &r.content),
        );
        if let Some(first) = seen.insert(key, i) {
            out.push(
                Issue::error(
                    path.clone(),
                    format!("duplicate {} record for `{fqdn}`", r.kind),
                )
                .hint(format!("it repeats `dns.records[{first}]`; remove one")),
            );
            continue;
        }
        names.entry(fqdn).or_default().push((i, r.kind));
    }
    for (name, recs) in &names {
        let cname = recs.iter().find(|(_, k)| *k == RecordType::Cname);
        if let Some((ci, _)) = cname
            && recs.len() > 1
        {
            let last = recs.iter().map(|(i, _)| *i).max().unwrap_or(*ci);
            let other = recs
                .iter()
                .map(|(i, _)| *i)
                .find(|i| *i != last)
                .unwrap_or(*ci);
            out.push(
                Issue::error(
                    base.key("records").index(last),
                    format!("`{name}` has a CNAME record and another record"),
                )
                .reads(base.key("records").index(other))
                .hint(format!(
                    "a CNAME must be the only record of its name (see `dns.records[{other}]`)"
                )),
            );
        }
    }
    if let (Some(app), true) = (app, zone_ok) {
        for (i, d) in app.domains.iter().enumerate() {
            let Ok(d) = crate::spec::model::Domain::parse(d) else {
                continue;
            };
            let inside = d.host == zone || d.host.ends_with(&format!(".{zone}"));
            let served = names.get(&d.host).is_some_and(|recs| {
                recs.iter()
                    .any(|(_, k)| matches!(k, RecordType::A | RecordType::Aaaa | RecordType::Cname))
            });
            if inside && !served {
                out.push(
                    Issue::warning(
                        FieldPath::of("app.domains").index(i),
                        format!("`{}` is in zone `{zone}` but `dns.records` has no A, AAAA or CNAME record for it", d.host),
                    )
                    .hint("add a record, unless the name is managed elsewhere"),
                );
            }
        }
    }
}

/// The deployment's name must leave room for Fabrik's mark in a record
/// comment: Cloudflare takes at most 100 characters on a free zone
/// (9313, cloudflare notes §2), and the mark is `fabrik:<name>:<run>:<journal>`.
pub(crate) fn check_mark_fits(name: &crate::id::DeploymentId, dns: &Dns, out: &mut Vec<Issue>) {
    let max = crate::ownership::MAX_COMPACT_DEPLOYMENT;
    if !dns.records.is_empty() && name.as_str().len() > max {
        out.push(
            Issue::error(
                FieldPath::of("name"),
                format!(
                    "`{name}` is longer than {max} characters: Fabrik's mark on its DNS records would not fit a Cloudflare comment (100 characters)"
                ),
            )
            .reads(FieldPath::of("dns.records"))
            .hint(format!("use a name of at most {max} characters")),
        );
    }
}

/// Checks a record's (or an expected answer's) content for its type.
pub(crate) fn check_content(
    kind: RecordType,
    content: &str,
    name: &str,
    path: &FieldPath,
    out: &mut Vec<Issue>,
) {
    let c = content.trim();
    let problem = match kind {
        RecordType::A => c.parse::<Ipv4Addr>().err().map(|_| {
            let hint = if c.parse::<Ipv6Addr>().is_ok() {
                "that is an IPv6 address: use `type: AAAA`".to_owned()
            } else {
                "an A record holds an IPv4 address, e.g. `203.0.113.10`".to_owned()
            };
            (format!("`{c}` is not an IPv4 address"), Some(hint))
        }),
        RecordType::Aaaa => c.parse::<Ipv6Addr>().err().map(|_| {
            let hint = if c.parse::<Ipv4Addr>().is_ok() {
                "that is an IPv4 address: use `type: A`".to_owned()
            } else {
                "an AAAA record holds an IPv6 address, e.g. `2001:db8::10`".to_owned()
            };
            (format!("`{c}` is not an IPv6 address"), Some(hint))
        }),
        RecordType::Cname => match check_hostname(c, false) {
            _ if c.parse::<std::net::IpAddr>().is_ok() => Some((
                format!("`{c}` is an IP address, and a CNAME record points to a host name"),
                Some(format!(
                    "use `type: {}` for an address",
                    if c.contains(':') { "AAAA" } else { "A" }
                )),
            )),
            Err(p) => Some((
                format!("`{c}` is not a host name: {}", p.reason()),
                Some(
                    p.hint()
                        .unwrap_or_else(|| "a CNAME record points to another host name".to_owned()),
                ),
            )),
            Ok(target) if target == name => {
                Some((format!("CNAME `{name}` points to itself"), None))
            }
            Ok(_) => None,
        },
        RecordType::Txt => {
            if c.is_empty() {
                Some(("TXT content is empty".to_owned(), None))
            } else if content.chars().count() > TXT_MAX {
                Some((
                    format!("TXT content is longer than {TXT_MAX} characters"),
                    None,
                ))
            } else {
                None
            }
        }
    };
    if let Some((message, hint)) = problem {
        out.push(Issue::error(path.clone(), message).maybe_hint(hint));
    }
}
