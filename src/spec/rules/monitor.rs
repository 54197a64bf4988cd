//! Rules for `monitors`.

use std::collections::BTreeMap;

use super::http_url_host;
use crate::spec::diagnostic::Issue;
use crate::spec::model::{Monitor, MonitorType};
use crate::spec::path::FieldPath;

/// Uptime Kuma's shortest interval.
const MIN_INTERVAL_SECS: u64 = 20;

pub(crate) fn check(monitors: &[Monitor], out: &mut Vec<Issue>) {
    let base = FieldPath::of("monitors");
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, m) in monitors.iter().enumerate() {
        let path = base.index(i);
        if m.name.trim().is_empty() || m.name.chars().count() > 150 {
            out.push(Issue::error(
                path.key("name"),
                "a monitor name must be 1 to 150 characters",
            ));
        } else if let Some(first) = names.insert(m.name.as_str(), i) {
            out.push(
                Issue::error(
                    path.key("name"),
                    format!("two monitors are named `{}`", m.name),
                )
                .hint(format!(
                    "monitor names are their keys and must be unique (see `monitors[{first}]`)"
                )),
            );
        }
        super::no_credentials(
            &m.url,
            &path.key("url"),
            "Fabrik does not manage Uptime Kuma's authentication settings: monitor an endpoint that needs no credentials, or set HTTP basic auth on the monitor in Uptime Kuma",
            out,
        );
        match http_url_host(&m.url) {
            Ok(host) => super::internal_url(
                &host,
                &path.key("url"),
                "the monitor checks the machine or network Uptime Kuma runs in, not the application",
                out,
            ),
            Err(p) => out.push(p.issue(path.key("url"), &m.url)),
        }
        match (m.kind, &m.keyword) {
            (MonitorType::Keyword, None) => out.push(
                Issue::error(path.key("keyword"), "a `keyword` monitor needs `keyword`")
                    .reads(path.key("type"))
                    .hint("add `keyword:` with the text the page must contain"),
            ),
            (MonitorType::Keyword, Some(k)) if k.is_empty() => {
                out.push(Issue::error(path.key("keyword"), "`keyword` is empty"));
            }
            (MonitorType::Http, Some(_)) => out.push(
                Issue::error(
                    path.key("keyword"),
                    "`keyword` applies to `type: keyword` monitors only",
                )
                .reads(path.key("type"))
                .at_key()
                .hint("set `type: keyword`, or remove `keyword`"),
            ),
            _ => {}
        }
        for (key, d) in [
            ("interval", m.interval),
            ("retry_interval", m.retry_interval),
        ] {
            match d.whole_secs() {
                Some(s) if s >= MIN_INTERVAL_SECS => {}
                Some(_) => out.push(
                    Issue::error(
                        path.key(key),
                        format!("`{key}` must be at least {MIN_INTERVAL_SECS}s, found `{d}`"),
                    )
                    .hint("Uptime Kuma checks at most every 20 seconds"),
                ),
                None => out.push(Issue::error(
                    path.key(key),
                    format!("`{key}` must be whole seconds, found `{d}`"),
                )),
            }
        }
        if m.accepted_status.is_empty() {
            out.push(
                Issue::error(path.key("accepted_status"), "`accepted_status` is empty")
                    .hint("remove it to accept `200-299`"),
            );
        }
        for (j, s) in m.accepted_status.iter().enumerate() {
            if !status_range_ok(s) {
                out.push(
                    Issue::error(
                        path.key("accepted_status").index(j),
                        format!("`{s}` is not a status code or range"),
                    )
                    .hint("write a code (`301`) or a range (`200-299`)"),
                );
            }
        }
        let mut ids: BTreeMap<u32, usize> = BTreeMap::new();
        for (j, id) in m.notifications.iter().enumerate() {
            if *id == 0 {
                out.push(Issue::error(
                    path.key("notifications").index(j),
                    "Uptime Kuma notification ids start at 1",
                ));
            } else if ids.insert(*id, j).is_some() {
                out.push(Issue::error(
                    path.key("notifications").index(j),
                    format!("notification {id} is listed twice"),
                ));
            }
        }
    }
}

fn status_range_ok(s: &str) -> bool {
    let code = |c: &str| {
        c.len() == 3
            && c.bytes().all(|b| b.is_ascii_digit())
            && (100..=599).contains(&c.parse::<u16>().unwrap_or(0))
    };
    match s.split_once('-') {
        Some((a, b)) => code(a) && code(b) && a <= b,
        None => code(s),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_ranges() {
        assert!(super::status_range_ok("200-299"));
        assert!(super::status_range_ok("301"));
        assert!(!super::status_range_ok("299-200"));
        assert!(!super::status_range_ok("2xx"));
        assert!(!super::status_range_ok("700"));
    }
}
