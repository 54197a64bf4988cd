//! What an env reconciliation sends, decided from the variables Coolify
//! lists and the ones wanted (pure: no I/O).
//!
//! Coolify's semantics it follows (379abb25, 4.3.11):
//! - values arrive trimmed and an empty one as null (`TrimStrings`,
//!   `ConvertEmptyStringsToNull`, `app/Http/Kernel.php:60-61`; the model
//!   trims again, `app/Models/EnvironmentVariable.php:358-379`): values
//!   compare trimmed, `""` equal to null;
//! - a new non-preview application variable gets a preview copy
//!   (`EnvironmentVariable.php:95-119`): the copy of a wanted variable is
//!   kept in step with it (never deleted, updated when it differs, and not
//!   sent in the request that creates its variable, where Coolify makes it);
//! - `is_buildtime` defaults to true (`:39-42`): every variable is sent
//!   with `is_runtime`/`is_buildtime`, so that a secret never becomes a
//!   Docker build argument unless the spec asks (from 4.0.0-beta.435; the
//!   older `is_build_time` is never sent);
//! - generated variables (`SERVICE_PASSWORD_*`, `SERVICE_USER_*`, ...) of
//!   services and compose applications are re-created with *new* values
//!   when missing (`firstOrCreate`, `bootstrap/helpers/parsers.php:2006-2016`),
//!   which breaks a database initialised with the old ones: no `SERVICE_*`
//!   variable is ever deleted there, nor changed unless the spec names it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};

use super::super::types::{AppKind, EnvDiff, EnvValue, EnvVarDesired};
use crate::secret::Scrubber;

/// A variable as Coolify lists it.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct VEnvVar {
    pub(super) uuid: String,
    pub(super) key: String,
    /// Absent when hidden (no `read:sensitive`); `null` when empty.
    #[serde(default, deserialize_with = "present")]
    pub(super) value: Option<Value>,
    #[serde(default)]
    pub(super) is_preview: bool,
    #[serde(default)]
    pub(super) is_literal: bool,
    #[serde(default)]
    pub(super) is_multiline: bool,
    /// Absent before 4.0.0-beta.435.
    #[serde(default)]
    pub(super) is_buildtime: Option<bool>,
    #[serde(default)]
    pub(super) is_runtime: Option<bool>,
}

/// A field that is there, even as `null` (`Some(Value::Null)`); `None`
/// only when it is absent (through `#[serde(default)]`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// What to send.
#[derive(Debug, Default)]
pub(super) struct EnvPlan {
    /// Bulk items (`PATCH …/envs/bulk`), in order.
    pub(super) upsert: Vec<Value>,
    /// Variables to delete: (uuid, label).
    pub(super) delete: Vec<(String, String)>,
    /// The report.
    pub(super) diff: EnvDiff,
    /// The secret values sent, to scrub from errors.
    pub(super) secrets: Scrubber,
}

/// Where the variables live and what the server takes.
#[derive(Debug, Clone, Copy)]
pub(super) struct EnvTarget {
    /// Application or service.
    pub(super) kind: AppKind,
    /// A compose application or a service: Coolify generates `SERVICE_*`.
    pub(super) generates: bool,
    /// The server takes `is_runtime`/`is_buildtime`.
    pub(super) scopes: bool,
}

fn same_value(remote: &Value, wanted: &str) -> bool {
    remote.as_str().unwrap_or_default().trim() == wanted.trim()
}

/// The plan that makes the remote variables `wanted`.
pub(super) fn plan(target: EnvTarget, remote: &[VEnvVar], wanted: &[EnvVarDesired]) -> EnvPlan {
    let mut out = EnvPlan::default();
    let by_id: BTreeMap<(&str, bool), &VEnvVar> = remote
        .iter()
        .map(|r| ((r.key.as_str(), r.is_preview), r))
        .collect();
    let app = target.kind == AppKind::Application;
    let item = |d: &EnvVarDesired, preview: bool| {
        let mut v = json!({
            "key": d.key,
            "value": d.value.expose(),
            "is_literal": d.is_literal,
            "is_multiline": d.is_multiline,
        });
        if app {
            v["is_preview"] = json!(preview);
            if target.scopes {
                v["is_runtime"] = json!(true);
                v["is_buildtime"] = json!(d.is_buildtime);
            }
        }
        v
    };
    // Whether a remote variable already is what `d` wants. A flag the
    // server does not show counts as right.
    let matches = |r: &VEnvVar, d: &EnvVarDesired| -> Option<bool> {
        let flags = r.is_literal == d.is_literal
            && r.is_multiline == d.is_multiline
            && (!app
                || !target.scopes
                || (r.is_buildtime.is_none_or(|b| b == d.is_buildtime)
                    && r.is_runtime.is_none_or(|b| b)));
        match &r.value {
            // Hidden without read:sensitive: the value cannot be told.
            None if flags => None,
            None => Some(false),
            Some(v) => Some(flags && same_value(v, d.value.expose())),
        }
    };
    for d in wanted {
        if let EnvValue::Secret(s) = &d.value {
            out.secrets.add(s);
        }
        let label = d.key.clone();
        let mine = by_id.get(&(d.key.as_str(), false));
        match mine {
            None => {
                out.diff.created.push(label);
                out.upsert.push(item(d, false));
                // Coolify makes the preview copy in this same request.
                continue;
            }
            Some(r) => match matches(r, d) {
                Some(true) => out.diff.unchanged.push(label),
                Some(false) => {
                    out.diff.updated.push(label);
                    out.upsert.push(item(d, false));
                }
                None => {
                    out.diff.unverified.push(label);
                    out.upsert.push(item(d, false));
                }
            },
        }
        if !app {
            continue;
        }
        // The preview copy, kept in step.
        let twin_label = format!("{} (preview)", d.key);
        match by_id.get(&(d.key.as_str(), true)) {
            None => {
                out.diff.created.push(twin_label);
                out.upsert.push(item(d, true));
            }
            Some(r) => match matches(r, d) {
                Some(true) => {}
                Some(false) => {
                    out.diff.updated.push(twin_label);
                    out.upsert.push(item(d, true));
                }
                // Hidden: sent along with its variable, not reported apart.
                None => out.upsert.push(item(d, true)),
            },
        }
    }
    let wanted_keys: BTreeSet<&str> = wanted.iter().map(|d| d.key.as_str()).collect();
    for r in remote {
        if wanted_keys.contains(r.key.as_str()) && (app || !r.is_preview) {
            continue;
        }
        if target.generates && r.key.starts_with("SERVICE_") {
            continue;
        }
        out.delete.push((
            r.uuid.clone(),
            if r.is_preview {
                format!("{} (preview)", r.key)
            } else {
                r.key.clone()
            },
        ));
    }
    out.diff.deleted = out.delete.iter().map(|(_, l)| l.clone()).collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;

    fn remote(key: &str, value: Option<&str>, preview: bool, buildtime: bool) -> VEnvVar {
        VEnvVar {
            uuid: format!("{key}-{preview}"),
            key: key.into(),
            value: Some(value.map_or(Value::Null, |v| json!(v))),
            is_preview: preview,
            is_literal: true,
            is_multiline: false,
            is_buildtime: Some(buildtime),
            is_runtime: Some(true),
        }
    }

    fn want(key: &str, value: EnvValue, buildtime: bool) -> EnvVarDesired {
        EnvVarDesired {
            key: key.into(),
            value,
            is_preview: false,
            is_literal: true,
            is_multiline: false,
            is_buildtime: buildtime,
        }
    }

    const APP: EnvTarget = EnvTarget {
        kind: AppKind::Application,
        generates: false,
        scopes: true,
    };

    #[test]
    fn trimmed_and_empty_values_are_the_same_and_twins_are_kept() {
        let r = [
            remote("PEM", Some("-----BEGIN-----"), false, true),
            remote("PEM", Some("-----BEGIN-----"), true, true),
            remote("EMPTY", None, false, true),
            remote("EMPTY", None, true, true),
        ];
        let w = [
            want("PEM", EnvValue::Plain("-----BEGIN-----\n".into()), true),
            want("EMPTY", EnvValue::Plain(String::new()), true),
        ];
        let p = plan(APP, &r, &w);
        assert!(p.upsert.is_empty(), "{:?}", p.upsert);
        assert!(p.delete.is_empty(), "{:?}", p.delete);
        assert!(!p.diff.changed());
    }

    #[test]
    fn secrets_stay_out_of_the_build_and_new_variables_leave_their_twin_to_coolify() {
        let w = [want(
            "TOKEN",
            EnvValue::Secret(SecretValue::new("s3cr3t")),
            false,
        )];
        let p = plan(APP, &[], &w);
        assert_eq!(p.upsert.len(), 1, "no twin in the creating request");
        assert_eq!(p.upsert[0]["is_buildtime"], false);
        assert_eq!(p.upsert[0]["is_runtime"], true);
        // An existing variable built into the image is moved out of it,
        // with its twin.
        let r = [
            remote("TOKEN", Some("s3cr3t"), false, true),
            remote("TOKEN", Some("s3cr3t"), true, true),
        ];
        let p = plan(APP, &r, &w);
        assert_eq!(p.upsert.len(), 2);
        assert_eq!(p.diff.updated, vec!["TOKEN", "TOKEN (preview)"]);
    }

    #[test]
    fn a_null_value_is_read_as_empty_and_a_missing_one_as_hidden() {
        let listed: Vec<VEnvVar> = serde_json::from_value(json!([
            {"uuid": "a", "key": "EMPTY", "value": null},
            {"uuid": "b", "key": "HIDDEN"},
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(listed[0].value, Some(Value::Null));
        assert_eq!(listed[1].value, None);
    }

    #[test]
    fn generated_service_variables_are_never_deleted() {
        let r = [
            remote("SERVICE_PASSWORD_DB", Some("x"), false, true),
            remote("OLD", Some("x"), false, true),
        ];
        let target = EnvTarget {
            kind: AppKind::Service,
            generates: true,
            scopes: true,
        };
        let p = plan(target, &r, &[]);
        assert_eq!(p.diff.deleted, vec!["OLD"]);
    }
}
