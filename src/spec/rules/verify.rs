//! Rules for `verify`.

use std::net::IpAddr;

use super::{check_hostname, host_issue, http_url_host};
use crate::spec::diagnostic::Issue;
use crate::spec::model::{App, Dns, RecordType, Verify, cloudflare_edge};
use crate::spec::path::FieldPath;
use crate::spec::suggest;

pub(crate) fn check(
    v: &Verify,
    app: Option<&App>,
    dns: Option<&Dns>,
    records_complete: bool,
    out: &mut Vec<Issue>,
) {
    let base = FieldPath::of("verify");
    if v.timeout.get().is_zero() {
        out.push(Issue::error(
            base.key("timeout"),
            "`verify.timeout` must be longer than 0s",
        ));
    }
    let domains = app.map(App::parsed_domains);
    let hosts: Option<Vec<String>> = domains
        .as_ref()
        .map(|d| d.iter().map(|d| d.host.clone()).collect());
    let not_served = |host: &str, path: FieldPath, what: &str, out: &mut Vec<Issue>| {
        let Some(hosts) = &hosts else { return };
        if hosts.iter().any(|h| h == host) {
            return;
        }
        let list: Vec<&str> = hosts.iter().map(String::as_str).collect();
        let hint = if list.is_empty() {
            format!("the application serves no domain; add `{host}` to `app.domains`")
        } else if let Some(c) = suggest::closest(host, list.iter().copied()) {
            format!("did you mean `{c}`?")
        } else {
            format!(
                "the application serves {}",
                list.iter()
                    .map(|h| format!("`{h}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        out.push(
            Issue::error(
                path,
                format!("{what} `{host}`, which is not one of the application's domains"),
            )
            .hint(hint),
        );
    };
    for (i, c) in v.http.iter().enumerate() {
        let path = base.key("http").index(i).key("url");
        super::no_credentials(
            &c.url,
            &path,
            "verification requests carry no credentials: check an endpoint that answers without them (a health path)",
            out,
        );
        match http_url_host(&c.url) {
            Ok(host) => not_served(&host, path, "checks", out),
            Err(p) => out.push(p.issue(path, &c.url)),
        }
    }
    for (i, c) in v.tls.iter().enumerate() {
        let path = base.key("tls").index(i).key("host");
        if c.host.contains("://") || c.host.contains('/') {
            out.push(
                Issue::error(path, format!("`{}` is not a host name", c.host))
                    .hint("write the host alone, e.g. `app.example.com`"),
            );
            continue;
        }
        let host = match check_hostname(&c.host, false) {
            Ok(h) => h,
            Err(p) => {
                out.push(host_issue(path, &c.host, "a host name", &p));
                continue;
            }
        };
        not_served(&host, path.clone(), "checks the certificate of", out);
        if let Some(domains) = &domains {
            let https = domains
                .iter()
                .any(|d| d.host == host && d.scheme == "https");
            let http_only = domains.iter().any(|d| d.host == host) && !https;
            if http_only {
                out.push(
                    Issue::error(
                        path,
                        format!(
                            "`{host}` is served over http only, so it has no certificate to check"
                        ),
                    )
                    .hint("serve it over https in `app.domains`, or remove this check"),
                );
            }
        }
    }
    for (i, c) in v.dns.iter().enumerate() {
        let path = base.key("dns").index(i);
        let name = match check_hostname(&c.name, false) {
            Ok(n) => n,
            Err(p) => {
                out.push(host_issue(path.key("name"), &c.name, "a host name", &p));
                continue;
            }
        };
        for (j, e) in c.expect.iter().enumerate() {
            super::dns::check_content(c.kind, e, &name, &path.key("expect").index(j), out);
        }
        let proxied = dns.is_some_and(|d| d.proxied(&name));
        let addressed = matches!(c.kind, RecordType::A | RecordType::Aaaa);
        if proxied && addressed {
            // Resolvers get Cloudflare's addresses for a proxied name,
            // never the origin (cloudflare-docs `dns/proxy-status/index.mdx`):
            // any other value can never be an answer.
            for (j, e) in c.expect.iter().enumerate() {
                if e.trim()
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| !cloudflare_edge(ip))
                {
                    out.push(
                        Issue::error(
                            path.key("expect").index(j),
                            format!("`{}` can never be an answer: `{name}` is proxied, so resolvers get Cloudflare's addresses", e.trim()),
                        )
                        .reads(FieldPath::of("dns.records"))
                        .hint("remove `expect` (the check then accepts Cloudflare's addresses only), or set `proxied: false` on the record"),
                    );
                }
            }
        }
        if proxied && c.kind == RecordType::Cname {
            // "Proxied CNAME records are flattened by default, as they
            // return Cloudflare anycast IPs" (cloudflare-docs
            // `dns/proxy-status/index.mdx`): no resolver sees the CNAME.
            out.push(
                Issue::error(
                    path.key("type"),
                    format!("`{name}` is proxied, so Cloudflare flattens its CNAME: resolvers never see it"),
                )
                .reads(FieldPath::of("dns.records"))
                .hint("check `type: A` (Cloudflare's addresses), or set `proxied: false` on the record"),
            );
        }
        if c.expect.is_empty() && records_complete && !(proxied && addressed) {
            let declared = dns.is_some_and(|d| {
                d.records
                    .iter()
                    .any(|r| r.kind == c.kind && d.fqdn(r) == name)
            });
            if !declared {
                out.push(
                    Issue::error(
                        path.clone(),
                        format!("nothing to compare: `dns.records` has no {} record for `{name}` and `expect` is empty", c.kind),
                    )
                    .hint("add `expect:` with the values the name must resolve to"),
                );
            }
        }
    }
}
