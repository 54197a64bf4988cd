//! Rules that need more than one field: references between sections,
//! records and their zone, URLs and the domains the app serves.
//!
//! They run on a [`Draft`]: every section that passed the schema check,
//! deserialised on its own. A broken section is left out (its problems are
//! already reported), so one typo does not hide the problems elsewhere.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::diagnostic::Issue;
use super::model::{
    App, CoolifyTarget, Dns, Monitor, Notifications, RetryPolicy, RollbackPolicy, SecretDecl,
    TemplateUse, Timeouts, Verify,
};
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

/// Checks a DNS host name: labels of letters, digits and inner hyphens (and
/// `_`, which service records use), at most 63 characters each and 253 in
/// all, optionally starting with a `*` label.
pub(crate) fn check_hostname(name: &str, wildcard: bool) -> Result<(), String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err("it is empty".to_owned());
    }
    if name.len() > 253 {
        return Err("it is longer than 253 characters".to_owned());
    }
    for (i, label) in name.split('.').enumerate() {
        if label == "*" && i == 0 && wildcard {
            continue;
        }
        if label.is_empty() {
            return Err("it has an empty label (`..`)".to_owned());
        }
        if label.len() > 63 {
            return Err(format!("label `{label}` is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "label `{label}` may only hold letters, digits, `-` and `_`"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with `-`"));
        }
    }
    Ok(())
}

/// A hint for a URL that [`http_url_host`] refused.
pub(crate) fn url_hint(url: &str) -> Option<String> {
    (!url.contains("://")).then(|| format!("write the full URL: `https://{url}`"))
}

/// A URL's host, lower-cased, when `url` is an http(s) URL with a host;
/// otherwise why not (to follow "`<url>` ...").
pub(crate) fn http_url_host(url: &str) -> Result<String, String> {
    let u = url::Url::parse(url).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("must use http or https".to_owned());
    }
    match u.host_str() {
        Some(h) if !h.is_empty() => Ok(h.to_ascii_lowercase()),
        _ => Err("has no host".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(check_hostname("quickstart.example.com", false).is_ok());
        assert!(check_hostname("_acme-challenge.example.com", false).is_ok());
        assert!(check_hostname("*.example.com", true).is_ok());
        assert!(check_hostname("*.example.com", false).is_err());
        assert!(check_hostname("a..b", false).is_err());
        assert!(check_hostname("-a.b", false).is_err());
        assert!(check_hostname("a b.c", false).is_err());
        assert!(check_hostname(&"a".repeat(64), false).is_err());
    }
}
