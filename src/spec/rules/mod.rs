//! Rules that need more than one field: references between sections,
//! records and their zone, URLs and the domains the app serves.
//!
//! They run on a [`Draft`]: every section that passed the schema check,
//! deserialised on its own. A broken section is left out (its problems are
//! already reported), so one typo does not hide the problems elsewhere.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::credential;
use super::diagnostic::Issue;
use super::host::{self, HostProblem};
use super::model::{
    App, CoolifyTarget, Dns, Monitor, Notifications, RetryPolicy, RollbackPolicy, SecretDecl,
    TemplateUse, Timeouts, Verify,
};
use super::path::FieldPath;
use crate::id::DeploymentId;

pub(crate) mod app;
mod dns;
mod monitor;
mod notify;
mod policy;
mod secrets;
mod verify;

pub(crate) use app::check_forms;
pub(crate) use secrets::unused_secrets;

/// The sections of a spec that passed the schema check. `None` means the
/// section is absent or broken.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Draft {
    pub name: Option<DeploymentId>,
    pub coolify: Option<CoolifyTarget>,
    pub app: Option<App>,
    pub template: Option<TemplateUse>,
    pub secrets: Option<BTreeMap<String, SecretDecl>>,
    pub dns: Option<Dns>,
    pub verify: Option<Verify>,
    pub monitors: Option<Vec<Monitor>>,
    pub notifications: Option<Notifications>,
    pub rollback: Option<RollbackPolicy>,
    pub retry: Option<RetryPolicy>,
    pub timeouts: Option<Timeouts>,
}

impl Draft {
    /// The declared secret names, when the `secrets` section is readable
    /// (absent counts as none declared).
    pub fn declared(&self, secrets_broken: bool) -> Option<BTreeSet<String>> {
        if secrets_broken {
            return None;
        }
        Some(
            self.secrets
                .iter()
                .flat_map(|s| s.keys().cloned())
                .collect(),
        )
    }
}

/// What the rules know about the draft beyond its sections.
pub(crate) struct Context {
    /// Declared secret names, or `None` when `secrets` is broken (then no
    /// reference is reported as undeclared).
    pub declared: Option<BTreeSet<String>>,
    /// Whether `dns.records` is complete (no record was left out for a
    /// problem already reported); rules that look for a record only run
    /// when it is.
    pub records_complete: bool,
}

/// Runs every cross-field rule.
pub(crate) fn check(draft: &Draft, ctx: &Context) -> Vec<Issue> {
    let mut out = Vec::new();
    if let Some(c) = &draft.coolify {
        app::check_target(c, &mut out);
    }
    if let Some(a) = &draft.app {
        app::check(a, ctx, &mut out);
    }
    if let Some(s) = &draft.secrets {
        secrets::check(s, &mut out);
    }
    if let Some(d) = &draft.dns {
        dns::check(
            d,
            draft.app.as_ref().filter(|_| ctx.records_complete),
            &mut out,
        );
        if let Some(name) = &draft.name {
            dns::check_mark_fits(name, d, &mut out);
        }
    }
    if let Some(v) = &draft.verify {
        verify::check(
            v,
            draft.app.as_ref(),
            draft.dns.as_ref(),
            ctx.records_complete,
            &mut out,
        );
    }
    if let Some(m) = &draft.monitors {
        monitor::check(m, &mut out);
    }
    if let Some(n) = &draft.notifications {
        notify::check(n, ctx, &mut out);
    }
    if let Some(r) = &draft.retry {
        policy::check_retry(r, &mut out);
    }
    if let Some(t) = &draft.timeouts {
        policy::check_timeouts(t, &mut out);
    }
    out
}

/// Checks a DNS host name (see [`crate::spec::host`]); returns its ASCII
/// form, or why it is refused.
pub(crate) fn check_hostname(name: &str, wildcard: bool) -> Result<String, HostProblem> {
    host::ascii_host(name, wildcard)
}

/// An issue for a host name that [`check_hostname`] refused: `what` names
/// the value ("a valid host name", "a zone name").
pub(crate) fn host_issue(path: FieldPath, written: &str, what: &str, p: &HostProblem) -> Issue {
    Issue::error(path, format!("`{written}` is not {what}: {}", p.reason())).maybe_hint(p.hint())
}

/// Why a URL was refused, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlProblem {
    /// To follow "`<url>` ".
    pub reason: String,
    pub hint: Option<String>,
}

impl UrlProblem {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            hint: None,
        }
    }

    /// The error at `path` about `url`.
    pub fn issue(self, path: FieldPath, url: &str) -> Issue {
        Issue::error(path, format!("`{url}` {}", self.reason)).maybe_hint(self.hint)
    }
}

/// A URL's host in ASCII form, when `url` is an http(s) URL with a valid
/// host name or IP address; otherwise why not.
pub(crate) fn http_url_host(url: &str) -> Result<String, UrlProblem> {
    let u = match url::Url::parse(url) {
        Ok(u) => u,
        Err(e) => {
            return Err(UrlProblem {
                reason: format!("is not a URL ({e})"),
                hint: url_hint(url),
            });
        }
    };
    if !matches!(u.scheme(), "http" | "https") {
        return Err(UrlProblem {
            reason: "must use http or https".to_owned(),
            hint: url_hint(url),
        });
    }
    match u.host() {
        Some(url::Host::Domain(_)) => {
            // The host as written: `url` turns any Unicode into punycode
            // without a word, which would hide a look-alike name.
            let written = raw_host(url).unwrap_or_default();
            check_hostname(written, false).map_err(|p| UrlProblem {
                reason: format!("has an invalid host: {}", p.reason()),
                hint: p.hint(),
            })
        }
        Some(h) => Ok(h.to_string()),
        None => Err(UrlProblem::new("has no host")),
    }
}

/// The host of `url` as written (between `://` and the userinfo, port,
/// path, query or fragment).
fn raw_host(url: &str) -> Option<&str> {
    let after = &url[url.find("://")? + 3..];
    let authority = after.split(['/', '?', '#', '\\']).next().unwrap_or(after);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.starts_with('[') {
        return host_port.split_inclusive(']').next();
    }
    Some(host_port.rsplit_once(':').map_or(host_port, |(h, _)| h))
}

/// A hint for a URL refused by [`http_url_host`]: the full URL, when
/// putting `https://` in front gives one with a valid host.
pub(crate) fn url_hint(url: &str) -> Option<String> {
    if url.contains("://") {
        return None;
    }
    let full = format!("https://{url}");
    let u = url::Url::parse(&full).ok()?;
    // `mailto:a@b.c` would read as user `mailto`, password `a`.
    if !u.username().is_empty() || u.password().is_some() {
        return None;
    }
    let ok = match u.host()? {
        url::Host::Domain(_) => {
            check_hostname(raw_host(&full)?, false).is_ok() && raw_host(&full)?.contains('.')
        }
        _ => true,
    };
    ok.then(|| format!("write the full URL: `{full}`"))
}

/// Refuses a URL that carries a credential written out (`user:pass@`),
/// in a field where `instead` says where credentials go.
pub(crate) fn no_credentials(url: &str, path: &FieldPath, instead: &str, out: &mut Vec<Issue>) {
    if credential::userinfos(url).iter().any(|u| u.is_literal()) {
        out.push(
            Issue::error(
                path.clone(),
                format!(
                    "`{url}` carries credentials; they would be stored and shown with the spec"
                ),
            )
            .hint(instead.to_owned()),
        );
    }
}

/// Warns about a URL that reaches only inside one machine or network.
pub(crate) fn internal_url(host: &str, path: &FieldPath, who: &str, out: &mut Vec<Issue>) {
    if let Some(kind) = host::internal_target(host) {
        out.push(
            Issue::warning(path.clone(), format!("`{host}` is a {kind} address: {who}"))
                .hint("use a public name or address, unless that is what you mean"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts_are_read_as_written() {
        assert_eq!(
            http_url_host("https://Bücher.example.com/x").as_deref(),
            Ok("xn--bcher-kva.example.com")
        );
        let e = http_url_host("https://shоp.example.com/").unwrap_err();
        assert!(e.reason.contains("mixes"), "{e:?}");
        assert!(e.hint.unwrap_or_default().contains("xn--shp-ted"));
        assert_eq!(http_url_host("http://[::1]:8080/").as_deref(), Ok("[::1]"));
        assert_eq!(
            http_url_host("https://u:p@h.example.com:1/").as_deref(),
            Ok("h.example.com")
        );
    }

    #[test]
    fn url_hints_only_propose_real_urls() {
        assert_eq!(
            url_hint("app.example.com/health").as_deref(),
            Some("write the full URL: `https://app.example.com/health`")
        );
        assert_eq!(url_hint("javascript:alert(1)"), None);
        assert_eq!(url_hint("mailto:a@b.c"), None);
        assert_eq!(url_hint("https://x"), None);
    }
}
