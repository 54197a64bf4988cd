//! Rules for `notifications`.

use std::collections::BTreeMap;

use super::Context;
use super::app::{check_url_with_refs, undeclared_refs};
use crate::spec::credential;
use crate::spec::diagnostic::Issue;
use crate::spec::model::{Notifications, WebhookFormat};
use crate::spec::path::FieldPath;

pub(crate) fn check(n: &Notifications, ctx: &Context, out: &mut Vec<Issue>) {
    let base = FieldPath::of("notifications").key("webhooks");
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, w) in n.webhooks.iter().enumerate() {
        let path = base.index(i);
        if w.name.trim().is_empty() {
            out.push(Issue::error(path.key("name"), "the webhook name is empty"));
        } else if let Some(first) = names.insert(w.name.as_str(), i) {
            out.push(
                Issue::error(
                    path.key("name"),
                    format!("two webhooks are named `{}`", w.name),
                )
                .hint(format!("see `notifications.webhooks[{first}]`")),
            );
        }
        let url_path = path.key("url");
        super::no_credentials(
            w.url.as_str(),
            &url_path,
            "keep the credentials in a secret: `https://user:${secret.WEBHOOK_PASSWORD}@host/...`, or the whole URL: `${secret.WEBHOOK_URL}`",
            out,
        );
        if let Some((scheme, host)) = check_url_with_refs(&w.url, &url_path, ctx, out) {
            if scheme == "http" {
                out.push(
                    Issue::warning(
                        url_path.clone(),
                        "this webhook is called over plain http: its body (and signature) can be read and changed on the way",
                    )
                    .hint("use an https URL"),
                );
            }
            super::internal_url(
                &host,
                &url_path,
                "a webhook there is only reachable from the machine or network Fabrik runs in",
                out,
            );
        }
        if !w.url.has_secrets() && credential::carries_token(w.url.as_str()) {
            out.push(
                Issue::warning(path.key("url"), "this webhook URL carries its token in plain text")
                    .hint("declare a secret and write `url: ${secret.WEBHOOK_URL}`, so the token stays out of the spec"),
            );
        }
        if let Some(s) = &w.signing_secret {
            undeclared_refs(vec![s.as_str()], &path.key("signing_secret"), ctx, out);
            if w.format == WebhookFormat::Slack {
                out.push(
                    Issue::error(
                        path.key("signing_secret"),
                        "Slack-compatible webhooks are not signed",
                    )
                    .reads(path.key("format"))
                    .at_key()
                    .hint("remove `signing_secret`, or use `format: json`"),
                );
            }
        }
        if w.events.is_empty() {
            out.push(
                Issue::error(
                    path.key("events"),
                    "`events` is empty, so this webhook is never called",
                )
                .hint("remove `events` to receive every event"),
            );
        }
    }
}
