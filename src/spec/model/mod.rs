//! The spec's data model: what a valid `spec.yaml` means.
//!
//! These types are the single source of the JSON Schema (`fabrik schema`)
//! and of deserialisation. Every struct refuses unknown keys. Secret
//! values never live here: only secret names and `${secret.NAME}`
//! references do, so `Debug` of any of these types is safe to print.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::id::DeploymentId;

pub mod app;
pub mod dns;
pub mod duration;
pub mod interpolated;
pub mod monitor;
pub mod notify;
pub mod policy;
pub mod secrets;
pub mod target;
pub mod template;
pub mod verify;

pub use app::{
    App, AppSource, BuildPack, ComposeRisk, ComposeSource, Domain, DomainError, FileSource,
    GitSource, HealthCheck,
};
pub use dns::{
    Dns, DnsRecord, RecordType, Ttl, canonical_content, cloudflare_edge, record_key, txt_decode,
    txt_encode,
};
pub use duration::Duration;
pub use interpolated::Interpolated;
pub use monitor::{Monitor, MonitorType};
pub use notify::{Notifications, NotifyEvent, Webhook, WebhookFormat};
pub use policy::{RetryPolicy, Rollback, RollbackPolicy, Timeouts};
pub use secrets::SecretDecl;
pub use target::{CoolifyTarget, RemoteRef, UuidRef};
pub use template::{TemplateName, TemplateUse};
pub use verify::{DnsCheck, DnsExpectation, HttpCheck, TlsCheck, Verify};

/// One deployment: an application on Coolify with its DNS records,
/// verification, monitors and notifications.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Fabrik spec", transform = app_or_template)]
pub struct Spec {
    /// The deployment's name, its key in the journal: lower-case letters,
    /// digits and hyphens, at most 63 characters.
    #[schemars(with = "DeploymentName")]
    pub name: DeploymentId,
    /// Where the application lives on Coolify.
    pub coolify: CoolifyTarget,
    /// The application. Required unless a `template` provides it.
    pub app: App,
    /// A built-in template that provides `app` and its secrets. After
    /// loading, `app` holds the expansion; this records where it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateUse>,
    /// Secrets the spec may reference as `${secret.NAME}`, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretDecl>,
    /// DNS records in a Cloudflare zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Dns>,
    /// Checks that must pass after the deploy.
    #[serde(default)]
    pub verify: Verify,
    /// Uptime Kuma monitors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monitors: Vec<Monitor>,
    /// Where to report runs.
    #[serde(default)]
    pub notifications: Notifications,
    /// What to do with resources this run created when it fails.
    #[serde(default)]
    pub rollback: RollbackPolicy,
    /// Retries of transient provider errors.
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Time limits.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Environments (`staging`, `production`, ...), each a mapping of the
    /// top-level fields it overrides (any but `name`): mappings merge key
    /// by key, lists and values are replaced. A spec with environments is
    /// applied to one at a time (`--env NAME`), as deployment
    /// `name@environment`. A loaded spec is one environment's, with this
    /// left empty.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environments: BTreeMap<String, Option<serde_json::Map<String, serde_json::Value>>>,
}

impl Spec {
    /// The secrets the application receives: those its env references,
    /// and for compose applications every declared secret (each is set as
    /// a service variable of the same name, so the compose file can use it
    /// as `${NAME}`).
    pub fn app_secret_names(&self) -> std::collections::BTreeSet<&str> {
        let mut names: std::collections::BTreeSet<&str> = self
            .app
            .env
            .values()
            .chain(self.app.build_env.values())
            .flat_map(|v| v.secret_refs())
            .collect();
        if matches!(self.app.source, AppSource::Compose(_)) {
            names.extend(self.secrets.keys().map(String::as_str));
        }
        names
    }
}

/// The top-level keys of a spec.
pub const TOP_LEVEL_KEYS: [&str; 13] = [
    "name",
    "coolify",
    "app",
    "template",
    "secrets",
    "dns",
    "verify",
    "monitors",
    "notifications",
    "rollback",
    "retry",
    "timeouts",
    "environments",
];

/// `app` is required in the model but may come from a template, so the
/// schema editors see does not require it; validation reports a spec that
/// has neither.
fn app_or_template(schema: &mut Schema) {
    if let Some(serde_json::Value::Array(required)) = schema.get_mut("required") {
        required.retain(|v| v != "app");
    }
}

/// The JSON Schema of a deployment name (the rule of [`DeploymentId`]).
pub(crate) struct DeploymentName;

/// The pattern of a deployment name, for editors.
pub const DEPLOYMENT_NAME_PATTERN: &str = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";

impl JsonSchema for DeploymentName {
    fn schema_name() -> Cow<'static, str> {
        "DeploymentName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = Schema::default();
        s.insert("type".into(), "string".into());
        s.insert("pattern".into(), DEPLOYMENT_NAME_PATTERN.into());
        s.insert(
            "description".into(),
            "A deployment name: lower-case letters, digits and inner hyphens, 1 to 63 characters."
                .into(),
        );
        s
    }
}
