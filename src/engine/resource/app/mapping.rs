//! The mapping between the spec, the application's journal form
//! ([`AppState`]) and the provider request: an env var that uses secrets
//! is journaled as its `${secret.NAME}` template plus a keyed fingerprint
//! of the values, and rebuilt from the secrets of the moment.

use std::collections::BTreeMap;

use super::state::{AppState, EnvState, HealthState, SourceState, TargetState};
use crate::engine::desired::DesiredError;
use crate::id::Digest;
use crate::provider::{
    AppDesired, AppSource, BuildPack, EnvValue, EnvVarDesired, GitBuild, HealthCheck,
};
use crate::spec::model::{self, Interpolated, Spec};
use crate::spec::secrets::ResolvedSecrets;

/// Splits `registry/name:tag` into the name and tag Coolify keeps.
///
/// A digest reference (`name[:tag]@sha256:HEX`) becomes Coolify's own
/// form of it: the name with `@sha256` appended and the 64 hex digits as
/// the tag. Its API stores a digest that way when an application is
/// created (`DockerImageParser::parse`, `app/Services/DockerImageParser.php:17-22`,
/// then `app/Http/Controllers/Api/ApplicationsController.php:2210-2224`
/// @379abb2), its name pattern allows the suffix
/// (`app/Support/ValidationPatterns.php:138`), a PATCH stores both fields
/// as sent, and a deployment pulls `NAME@sha256:HEX`
/// (`app/Jobs/ApplicationDeploymentJob.php:1186-1192`: `{$dockerImage}:{$dockerImageTag}`).
/// A tag written before the digest is left out: the name pattern has no
/// room for it, and the digest names the image alone.
pub fn split_image(image: &str) -> (String, Option<String>) {
    if let Some((name, hex)) = image.split_once("@sha256:") {
        let (name, _) = split_tag(name);
        return (format!("{name}@sha256"), Some(hex.to_owned()));
    }
    split_tag(image)
}

/// The image reference an application's name and tag deploy
/// (`name:tag`, or `name@sha256:HEX` for Coolify's digest form).
pub fn image_reference(image: &str, tag: Option<&str>) -> String {
    match tag {
        Some(t) => format!("{image}:{t}"),
        None => image.to_owned(),
    }
}

fn split_tag(image: &str) -> (String, Option<String>) {
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

/// The port of a Dockerfile's first `EXPOSE` line (as Coolify's UI reads
/// it, `app/Livewire/Project/New/SimpleDockerfile.php:50`; its API reads
/// the base64 text instead and always finds none).
pub fn exposed_port(dockerfile: &str) -> Option<u16> {
    dockerfile.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("EXPOSE")?;
        let first = rest.split_whitespace().next()?;
        first.split('/').next()?.parse().ok()
    })
}

fn git_state(g: &model::GitSource, bp: BuildPack) -> SourceState {
    SourceState::Git {
        repository: g.repository.clone(),
        branch: g.branch.clone(),
        build_pack: bp.as_str().to_owned(),
        commit: g.commit.clone(),
        base_directory: g.base_directory.clone(),
        publish_directory: g.publish_directory.clone(),
        install_command: g.install_command.clone(),
        build_command: g.build_command.clone(),
        start_command: g.start_command.clone(),
        dockerfile_location: g.dockerfile_location.clone(),
    }
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
            let state = git_state(g, bp);
            (source_of(&state), state)
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
                    public_service: public_service.clone(),
                },
                SourceState::Compose {
                    compose: text,
                    public_service: c.public_service.clone(),
                },
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
    let mut build_env_state = BTreeMap::new();
    let mut push = |key: &str, value: &Interpolated, build: bool| -> Result<(), DesiredError> {
        if skip_unresolved && value.secret_refs().iter().any(|n| secrets.get(n).is_none()) {
            return Ok(());
        }
        let (v, s) = env_value(key, value, secrets)?;
        env.push(env_var(key, v, build));
        let scope = if build {
            &mut build_env_state
        } else {
            &mut env_state
        };
        scope.insert(key.to_owned(), s);
        Ok(())
    };
    for (key, value) in &a.env {
        push(key, value, false)?;
    }
    for (key, value) in &a.build_env {
        push(key, value, true)?;
    }
    // Compose files read every declared secret as `${NAME}`.
    if matches!(a.source, model::AppSource::Compose(_)) {
        for name in spec.secrets.keys() {
            if !a.env.contains_key(name) {
                push(name, &Interpolated(format!("${{secret.{name}}}")), false)?;
            }
        }
    }
    let domains: Vec<String> = a.parsed_domains().iter().map(|d| d.url()).collect();
    let ports: Vec<u16> = match (&a.source, a.port) {
        (_, Some(p)) => vec![p],
        (model::AppSource::Dockerfile(f), None) => {
            vec![f.text().and_then(exposed_port).unwrap_or(80)]
        }
        _ => Vec::new(),
    };
    let health = a.health_check.as_ref().map(|h| HealthCheck {
        path: h.path.clone(),
        port: h.port,
        interval: Some(secs(h.interval)),
        method: match h.method {
            model::app::HealthMethod::Get => "GET",
            model::app::HealthMethod::Head => "HEAD",
            model::app::HealthMethod::Post => "POST",
        }
        .to_owned(),
        scheme: match h.scheme {
            model::app::HealthScheme::Http => "http",
            model::app::HealthScheme::Https => "https",
        }
        .to_owned(),
        return_code: h.status,
        response_text: h.body_contains.clone(),
        timeout: secs(h.timeout),
        retries: u32::from(h.retries),
        start_period: secs(h.start_period),
    });
    let name = a.resource_name(spec.name.as_str()).to_owned();
    let state = AppState {
        name: name.clone(),
        description: a.description.clone(),
        source: source_state,
        domains: domains.clone(),
        ports: ports.clone(),
        health: health.as_ref().map(HealthState::of),
        env: env_state,
        build_env: build_env_state,
        target: Some(TargetState::of(&spec.coolify)),
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

/// An env var as sent: a value built from secrets never reaches the build
/// unless the spec asks (`build_env`).
fn env_var(key: &str, value: EnvValue, build: bool) -> EnvVarDesired {
    let is_buildtime = build || matches!(value, EnvValue::Plain(_));
    EnvVarDesired {
        key: key.to_owned(),
        value,
        is_preview: false,
        is_literal: true,
        is_multiline: false,
        is_buildtime,
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
    let scopes = state
        .env
        .iter()
        .map(|e| (e, false))
        .chain(state.build_env.iter().map(|e| (e, true)));
    for ((key, v), build) in scopes {
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
        env.push(env_var(key, value, build));
    }
    Ok((
        AppDesired {
            env,
            ..without_env(state)
        },
        drifted,
    ))
}

/// The git source of a journaled state.
fn source_of(state: &SourceState) -> AppSource {
    match state {
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
            commit,
            base_directory,
            publish_directory,
            install_command,
            build_command,
            start_command,
            dockerfile_location,
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
            build: GitBuild {
                commit: commit.clone(),
                base_directory: base_directory.clone(),
                publish_directory: publish_directory.clone(),
                install_command: install_command.clone(),
                build_command: build_command.clone(),
                start_command: start_command.clone(),
                dockerfile_location: dockerfile_location.clone(),
            },
        },
        SourceState::Compose {
            compose,
            public_service,
        } => AppSource::Compose {
            compose: compose.clone(),
            public_service: public_service
                .clone()
                .or_else(|| only_compose_service(compose)),
        },
        SourceState::Service { service_type } => AppSource::OneClick {
            service_type: service_type.clone(),
        },
    }
}

/// What a journaled state made the application, without its env (which
/// needs the secrets of the moment): what an update compares hidden or
/// rewritten fields with.
pub fn without_env(state: &AppState) -> AppDesired {
    AppDesired {
        name: state.name.clone(),
        description: state.description.clone(),
        source: source_of(&state.source),
        domains: state.domains.clone(),
        ports: state.ports.clone(),
        health: state.health.as_ref().map(HealthState::check),
        env: Vec::new(),
    }
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
        let hex = "ab".repeat(32);
        for pinned in [
            format!("traefik/whoami@sha256:{hex}"),
            format!("traefik/whoami:v1.10@sha256:{hex}"),
        ] {
            let (name, tag) = split_image(&pinned);
            assert_eq!(
                (name.as_str(), tag.as_deref()),
                ("traefik/whoami@sha256", Some(hex.as_str()))
            );
            assert_eq!(
                image_reference(&name, tag.as_deref()),
                format!("traefik/whoami@sha256:{hex}")
            );
        }
        assert_eq!(image_reference("nginx", Some("1.27")), "nginx:1.27");
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
