//! The application's journal form (the mapping between it, the spec and
//! the provider request is in `mapping.rs`).
//!
//! The journal form ([`AppState`]) holds everything needed to rebuild the
//! provider request later (a rollback restores an updated application from
//! it), except secret values: an env var that uses secrets is kept as its
//! `${secret.NAME}` template plus a keyed fingerprint of the values, and
//! rebuilt from the secrets of the moment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::provider::{AppKind, HealthCheck};
use crate::spec::model;

/// An env var as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvState {
    /// A plain value.
    Plain(String),
    /// A value built from secrets: its template and a fingerprint of the
    /// values it used (shown as "changed"/"unchanged", never as a value).
    Secret {
        /// The secrets it uses (comma-separated names).
        secret: String,
        /// Keyed fingerprint of their values.
        fingerprint: String,
        /// The `${secret.NAME}` template.
        template: String,
    },
}

/// How the application is built, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceState {
    /// A registry image.
    Image {
        /// Image name.
        image: String,
        /// Tag, if separate.
        tag: Option<String>,
    },
    /// A Dockerfile.
    Dockerfile {
        /// Its text.
        dockerfile: String,
    },
    /// A public git repository.
    Git {
        /// Repository URL.
        repository: String,
        /// Branch.
        branch: String,
        /// Build pack.
        build_pack: String,
        /// Pinned commit (absent in states journaled before it was kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commit: Option<String>,
        /// Directory built from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base_directory: Option<String>,
        /// Where the built files are (static).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        publish_directory: Option<String>,
        /// Install command.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        install_command: Option<String>,
        /// Build command.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        build_command: Option<String>,
        /// Start command.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_command: Option<String>,
        /// Dockerfile path in the repository.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dockerfile_location: Option<String>,
    },
    /// A compose file (a Coolify service).
    Compose {
        /// Its text.
        compose: String,
        /// The service its domains go to (absent in states journaled
        /// before it was kept, and when the file has one service).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        public_service: Option<String>,
    },
    /// A one-click service type.
    Service {
        /// The type.
        service_type: String,
    },
}

/// The application as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppState {
    /// Coolify resource name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Source.
    pub source: SourceState,
    /// Domain URLs.
    pub domains: Vec<String>,
    /// Exposed ports.
    pub ports: Vec<u16>,
    /// Health check.
    pub health: Option<HealthState>,
    /// Env vars by key (the running container's; one built from secrets
    /// is never given to the build).
    pub env: BTreeMap<String, EnvState>,
    /// Env vars the build receives too (absent in states journaled before
    /// there were any).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_env: BTreeMap<String, EnvState>,
    /// Where on Coolify it lives, as the spec names it (absent in states
    /// journaled before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetState>,
}

/// The Coolify project, environment, server and destination, each as the
/// spec names it (a name or a uuid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    /// Project.
    pub project: String,
    /// Environment.
    pub environment: String,
    /// Server.
    pub server: String,
    /// Destination, when named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

impl TargetState {
    /// The spec's target.
    pub fn of(t: &model::CoolifyTarget) -> Self {
        Self {
            project: t.project.text().to_owned(),
            environment: t.environment.text().to_owned(),
            server: t.server.text().to_owned(),
            destination: t.destination.as_ref().map(|d| d.text().to_owned()),
        }
    }

    /// `project/environment on server` (`, destination d`), escaped.
    pub fn describe(&self) -> String {
        let place = format!("{}/{} on {}", self.project, self.environment, self.server);
        let place = match &self.destination {
            Some(d) => format!("{place}, destination {d}"),
            None => place,
        };
        crate::text::printable_line(&place).into_owned()
    }

    /// As the app host takes it.
    pub fn target(&self) -> crate::provider::Target {
        crate::provider::Target {
            project: self.project.clone(),
            environment: self.environment.clone(),
            server: self.server.clone(),
            destination: self.destination.clone(),
        }
    }
}

/// An application's health check as the journal keeps it. The fields after
/// `interval` were added later: a state journaled before has the spec's
/// defaults, and a field at its default is not written (so states of
/// earlier runs and of this one compare equal when nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    /// Path probed.
    pub path: String,
    /// Port probed, when not the app's.
    pub port: Option<u16>,
    /// Seconds between probes.
    pub interval: Option<u32>,
    /// HTTP method.
    #[serde(default = "default_method", skip_serializing_if = "is_default_method")]
    pub method: String,
    /// Scheme inside the container.
    #[serde(default = "default_scheme", skip_serializing_if = "is_default_scheme")]
    pub scheme: String,
    /// Status that counts as healthy.
    #[serde(default = "default_status", skip_serializing_if = "is_default_status")]
    pub status: u16,
    /// Text the body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Seconds one probe may take.
    #[serde(
        default = "default_timeout",
        skip_serializing_if = "is_default_timeout"
    )]
    pub timeout: u32,
    /// Failed probes before the container is unhealthy.
    #[serde(
        default = "default_retries",
        skip_serializing_if = "is_default_retries"
    )]
    pub retries: u32,
    /// Seconds after start before failures count.
    #[serde(
        default = "default_start_period",
        skip_serializing_if = "is_default_start_period"
    )]
    pub start_period: u32,
}

// The spec's defaults (`spec::model::app::HealthCheck`).
fn default_method() -> String {
    "GET".to_owned()
}
fn is_default_method(m: &str) -> bool {
    m == "GET"
}
fn default_scheme() -> String {
    "http".to_owned()
}
fn is_default_scheme(s: &str) -> bool {
    s == "http"
}
fn default_status() -> u16 {
    200
}
fn is_default_status(s: &u16) -> bool {
    *s == 200
}
fn default_timeout() -> u32 {
    5
}
fn is_default_timeout(t: &u32) -> bool {
    *t == 5
}
fn default_retries() -> u32 {
    3
}
fn is_default_retries(r: &u32) -> bool {
    *r == 3
}
fn default_start_period() -> u32 {
    10
}
fn is_default_start_period(s: &u32) -> bool {
    *s == 10
}

impl HealthState {
    pub(super) fn of(h: &HealthCheck) -> Self {
        Self {
            path: h.path.clone(),
            port: h.port,
            interval: h.interval,
            method: h.method.clone(),
            scheme: h.scheme.clone(),
            status: h.return_code,
            body_contains: h.response_text.clone(),
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
        }
    }

    pub(super) fn check(&self) -> HealthCheck {
        HealthCheck {
            path: self.path.clone(),
            port: self.port,
            interval: self.interval,
            method: self.method.clone(),
            scheme: self.scheme.clone(),
            return_code: self.status,
            response_text: self.body_contains.clone(),
            timeout: self.timeout,
            retries: self.retries,
            start_period: self.start_period,
        }
    }
}

impl SourceState {
    /// What runs, for people: `image:tag`, `REPOSITORY branch BRANCH
    /// (commit SHA)`, `a Dockerfile`, `a compose file`, `the one-click
    /// service TYPE`.
    pub fn describe(&self) -> String {
        match self {
            Self::Image {
                image,
                tag: Some(tag),
            } => format!("{image}:{tag}"),
            Self::Image { image, tag: None } => image.clone(),
            Self::Dockerfile { .. } => "a Dockerfile".to_owned(),
            Self::Git {
                repository,
                branch,
                commit,
                ..
            } => match commit {
                Some(c) => format!("{repository} branch {branch} (commit {c})"),
                None => format!("{repository} branch {branch}"),
            },
            Self::Compose { .. } => "a compose file".to_owned(),
            Self::Service { service_type } => format!("the one-click service {service_type}"),
        }
    }
}

impl AppState {
    /// Whether it is a Coolify application or service.
    pub fn app_kind(&self) -> AppKind {
        match self.source {
            SourceState::Compose { .. } | SourceState::Service { .. } => AppKind::Service,
            _ => AppKind::Application,
        }
    }
}

pub use super::mapping::{
    exposed_port, from_spec, from_state, identity_from_spec, image_reference, split_image,
    without_env,
};
