//! The application's journal form, and the mapping between it, the spec
//! and the provider request.
//!
//! The journal form ([`AppState`]) holds everything needed to rebuild the
//! provider request later (a rollback restores an updated application from
//! it), except secret values: an env var that uses secrets is kept as its
//! `${secret.NAME}` template plus a keyed fingerprint of the values, and
//! rebuilt from the secrets of the moment.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::desired::DesiredError;
use crate::id::Digest;
use crate::provider::{
    AppDesired, AppKind, AppSource, BuildPack, EnvValue, EnvVarDesired, HealthCheck,
};
use crate::spec::model::{self, Interpolated, Spec};
use crate::spec::secrets::ResolvedSecrets;

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
    },
    /// A compose file (a Coolify service).
    Compose {
        /// Its text.
        compose: String,
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
    /// Env vars by key.
    pub env: BTreeMap<String, EnvState>,
}

/// An application's health check as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthState {
    /// Path probed.
    pub path: String,
    /// Port probed, when not the app's.
    pub port: Option<u16>,
    /// Seconds between probes.
    pub interval: Option<u32>,
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

/// Splits `registry/name:tag` into name and tag (a digest stays in the name).
pub fn split_image(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_owned(), None);
    }
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_owned(),
            Some(image[slash + i + 1..].to_owned()),
        ),
        None => (image.to_owned(), None),
    }
}

/// The name of the one service of a compose file, if it has exactly one.
fn only_compose_service(text: &str) -> Option<String> {
    match crate::spec::compose_services(text).as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    }
}

fn secs(d: model::Duration) -> u32 {
    u32::try_from(d.get().as_secs()).unwrap_or(u32::MAX)
}

/// The spec's application: the provider request and its journal form.
pub fn from_spec(
    spec: &Spec,
    secrets: &ResolvedSecrets,
) -> Result<(AppDesired, AppState), DesiredError> {
    map_spec(spec, secrets, false)
}

/// Like [`from_spec`], leaving out the env vars that use a secret not
/// resolved: what commands that only delete need (the application's
/// identity), without its secrets.
pub fn identity_from_spec(
    spec: &Spec,
    secrets: &ResolvedSecrets,
) -> Result<(AppDesired, AppState), DesiredError> {
    map_spec(spec, secrets, true)
}

fn map_spec(
    spec: &Spec,
    secrets: &ResolvedSecrets,
    skip_unresolved: bool,
) -> Result<(AppDesired, AppState), DesiredError> {
    let a = &spec.app;
    let (source, source_state) = match &a.source {
        model::AppSource::Image(image) => {
            let (image, tag) = split_image(image);
            (
                AppSource::DockerImage {
                    image: image.clone(),
                    tag: tag.clone(),
                },
                SourceState::Image { image, tag },
            )
        }
        model::AppSource::Dockerfile(f) => {
            let text = f.text().unwrap_or_default().to_owned();
            (
                AppSource::Dockerfile {
                    dockerfile: text.clone(),
                },
                SourceState::Dockerfile { dockerfile: text },
            )
        }
        model::AppSource::Git(g) => {
            let bp = match g.build_pack {
                model::BuildPack::Nixpacks => BuildPack::Nixpacks,
                model::BuildPack::Railpack => BuildPack::Railpack,
                model::BuildPack::Static => BuildPack::Static,
                model::BuildPack::Dockerfile => BuildPack::Dockerfile,
            };
            (
                AppSource::Git {
                    repository: g.repository.clone(),
                    branch: g.branch.clone(),
                    build_pack: bp,
                },
                SourceState::Git {
                    repository: g.repository.clone(),
                    branch: g.branch.clone(),
                    build_pack: bp.as_str().to_owned(),
                },
            )
        }
        model::AppSource::Compose(c) => {
            let text = c.text().unwrap_or_default().to_owned();
            // Validation made sure it names a service of the file, or that
            // the file has only one.
            let public_service = c
                .public_service
                .clone()
                .or_else(|| only_compose_service(&text));
            (
                AppSource::Compose {
                    compose: text.clone(),
                    public_service,
                },
                SourceState::Compose { compose: text },
            )
        }
        model::AppSource::Service(t) => (
            AppSource::OneClick {
                service_type: t.clone(),
            },
            SourceState::Service {
                service_type: t.clone(),
            },
        ),
    };
    let mut env = Vec::new();
    let mut env_state = BTreeMap::new();
    let mut push = |key: &str, value: &Interpolated| -> Result<(), DesiredError> {
        if skip_unresolved && value.secret_refs().iter().any(|n| secrets.get(n).is_none()) {
            return Ok(());
        }
        let (v, s) = env_value(key, value, secrets)?;
        env.push(env_var(key, v));
        env_state.insert(key.to_owned(), s);
        Ok(())
    };
    for (key, value) in &a.env {
        push(key, value)?;
    }
    // Compose files read every declared secret as `${NAME}`.
    if matches!(a.source, model::AppSource::Compose(_)) {
        for name in spec.secrets.keys() {
            if !a.env.contains_key(name) {
                push(name, &Interpolated(format!("${{secret.{name}}}")))?;
            }
        }
    }
    let domains: Vec<String> = a.parsed_domains().iter().map(|d| d.url()).collect();
    let ports: Vec<u16> = a.port.into_iter().collect();
    let health = a.health_check.as_ref().map(|h| HealthCheck {
        path: h.path.clone(),
        port: h.port,
        interval: Some(secs(h.interval)),
    });
    let name = a.resource_name(spec.name.as_str()).to_owned();
    let state = AppState {
        name: name.clone(),
        description: a.description.clone(),
        source: source_state,
        domains: domains.clone(),
        ports: ports.clone(),
        health: health.as_ref().map(|h| HealthState {
            path: h.path.clone(),
            port: h.port,
            interval: h.interval,
        }),
        env: env_state,
    };
    Ok((
        AppDesired {
            name,
            description: a.description.clone(),
            source,
            domains,
            ports,
            health,
            env,
        },
        state,
    ))
}

fn env_var(key: &str, value: EnvValue) -> EnvVarDesired {
    EnvVarDesired {
        key: key.to_owned(),
        value,
        is_preview: false,
        is_literal: true,
        is_multiline: false,
    }
}

fn env_value(
    key: &str,
    value: &Interpolated,
    secrets: &ResolvedSecrets,
) -> Result<(EnvValue, EnvState), DesiredError> {
    let err = |message: String| DesiredError {
        key: key.to_owned(),
        message,
    };
    let rendered = secrets
        .render(value)
        .map_err(|e| err(crate::text::error_chain(&e)))?;
    if !value.has_secrets() {
        return Ok((
            EnvValue::Plain(rendered.expose().to_owned()),
            EnvState::Plain(rendered.expose().to_owned()),
        ));
    }
    let names = value.secret_refs();
    let mut h = blake3::Hasher::new();
    for n in &names {
        let fp = secrets
            .get(n)
            .map(|s| s.fingerprint)
            .ok_or_else(|| err(format!("secret {n} is not resolved")))?;
        h.update(n.as_bytes());
        h.update(&fp.0);
    }
    Ok((
        EnvValue::Secret(rendered),
        EnvState::Secret {
            secret: names.join(","),
            fingerprint: Digest(*h.finalize().as_bytes()).to_hex(),
            template: value.as_str().to_owned(),
        },
    ))
}

/// Rebuilds an application request from its journal form (a restore),
/// with the secrets of the moment. Env vars whose secrets changed since
/// are rebuilt with today's values; the result says which.
pub fn from_state(
    state: &AppState,
    secrets: &ResolvedSecrets,
) -> Result<(AppDesired, Vec<String>), DesiredError> {
    let mut env = Vec::new();
    let mut drifted = Vec::new();
    for (key, v) in &state.env {
        let value = match v {
            EnvState::Plain(p) => EnvValue::Plain(p.clone()),
            EnvState::Secret {
                template,
                fingerprint,
                ..
            } => {
                let (value, now) = env_value(key, &Interpolated(template.clone()), secrets)?;
                if let EnvState::Secret { fingerprint: f, .. } = now
                    && &f != fingerprint
                {
                    drifted.push(key.clone());
                }
                value
            }
        };
        env.push(env_var(key, value));
    }
    let source = match &state.source {
        SourceState::Image { image, tag } => AppSource::DockerImage {
            image: image.clone(),
            tag: tag.clone(),
        },
        SourceState::Dockerfile { dockerfile } => AppSource::Dockerfile {
            dockerfile: dockerfile.clone(),
        },
        SourceState::Git {
            repository,
            branch,
            build_pack,
        } => AppSource::Git {
            repository: repository.clone(),
            branch: branch.clone(),
            build_pack: match build_pack.as_str() {
                "railpack" => BuildPack::Railpack,
                "static" => BuildPack::Static,
                "dockerfile" => BuildPack::Dockerfile,
                "dockercompose" => BuildPack::DockerCompose,
                _ => BuildPack::Nixpacks,
            },
        },
        // A restore goes through an update, which leaves a service's URLs
        // as they are; only a create needs the public service.
        SourceState::Compose { compose } => AppSource::Compose {
            compose: compose.clone(),
            public_service: None,
        },
        SourceState::Service { service_type } => AppSource::OneClick {
            service_type: service_type.clone(),
        },
    };
    Ok((
        AppDesired {
            name: state.name.clone(),
            description: state.description.clone(),
            source,
            domains: state.domains.clone(),
            ports: state.ports.clone(),
            health: state.health.as_ref().map(|h| HealthCheck {
                path: h.path.clone(),
                port: h.port,
                interval: h.interval,
            }),
            env,
        },
        drifted,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split_into_name_and_tag() {
        assert_eq!(split_image("nginx"), ("nginx".into(), None));
        assert_eq!(
            split_image("nginx:1.27"),
            ("nginx".into(), Some("1.27".into()))
        );
        assert_eq!(
            split_image("ghcr.io:443/acme/web:v2"),
            ("ghcr.io:443/acme/web".into(), Some("v2".into()))
        );
        assert_eq!(
            split_image("traefik/whoami@sha256:abc"),
            ("traefik/whoami@sha256:abc".into(), None)
        );
    }

    #[test]
    fn a_compose_file_with_one_service_names_its_public_service() {
        let one = "services:\n  web:\n    image: nginx:1.27\n";
        assert_eq!(only_compose_service(one).as_deref(), Some("web"));
        let two = "services:\n  web:\n    image: nginx:1.27\n  db:\n    image: redis:7\n";
        assert_eq!(only_compose_service(two), None);
        assert_eq!(only_compose_service("nothing: here\n"), None);
    }
}
