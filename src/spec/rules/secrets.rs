//! Rules for `secrets`.

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::diagnostic::Issue;
use crate::spec::model::SecretDecl;
use crate::spec::model::interpolated::is_variable_name;
use crate::spec::path::FieldPath;

/// Fabrik's own credentials: a spec that declared one of them as a secret
/// would hand it to the application.
pub(crate) const CREDENTIALS: [&str; 7] = [
    "COOLIFY_URL",
    "COOLIFY_TOKEN",
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_URL",
    "UPTIME_KUMA_URL",
    "UPTIME_KUMA_USERNAME",
    "UPTIME_KUMA_PASSWORD",
];

pub(crate) fn check(secrets: &BTreeMap<String, SecretDecl>, out: &mut Vec<Issue>) {
    let base = FieldPath::of("secrets");
    for name in secrets.keys() {
        let path = base.key(name);
        if !is_variable_name(name) {
            out.push(
                Issue::error(path, format!("`{name}` is not a valid secret name"))
                    .at_key()
                    .hint("secret names are environment variable names: letters, digits and `_`, not starting with a digit"),
            );
        } else if name.to_ascii_uppercase().starts_with("FABRIK_") {
            out.push(
                Issue::error(path, format!("`{name}` uses the reserved prefix `FABRIK_`"))
                    .at_key()
                    .hint("choose another name"),
            );
        } else if CREDENTIALS.contains(&name.as_str()) {
            out.push(
                Issue::error(
                    path,
                    format!("`{name}` is Fabrik's own credential, not an application secret"),
                )
                .at_key()
                .hint("give the application a secret of its own"),
            );
        }
    }
}

/// Warns about declared secrets nothing uses.
pub(crate) fn unused_secrets(
    secrets: &BTreeMap<String, SecretDecl>,
    used: &BTreeSet<String>,
) -> Vec<Issue> {
    secrets
        .keys()
        .filter(|n| !used.contains(*n))
        .map(|n| {
            Issue::warning(
                FieldPath::of("secrets").key(n),
                format!("secret `{n}` is declared but never used"),
            )
            .at_key()
            .hint(format!("reference it as `${{secret.{n}}}`, or remove it"))
        })
        .collect()
}
