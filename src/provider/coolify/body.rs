//! The request bodies of the application and service calls: what a create
//! sends, and what differs between an app as Coolify shows it and as it is
//! wanted (the PATCH, and the drift `--refresh` reports).
//!
//! Read from `app/Http/Controllers/Api/ApplicationsController.php` (`AC`)
//! and `ServicesController.php` (`SC`) at 379abb25 (4.3.11); where older
//! versions differ, the gate says so.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::super::types::*;
use crate::ownership::{OWNER_TAG, OwnershipMark};

/// One field that differs: its name on the wire, the value wanted and the
/// one found (`None`: absent or hidden).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct FieldChange {
    pub(super) field: String,
    pub(super) want: Value,
    pub(super) have: Option<Value>,
}

/// Why an app cannot be made what is wanted by a PATCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// It is built another way (image, Dockerfile, git, compose).
    OtherBuild(String),
    /// Its inline Dockerfile changed: `dockerfile` is in no PATCH
    /// allow-list (`AC:2801 @4.3.11`, every version), so only a new
    /// application carries the new text.
    DockerfileChanged,
    /// Something this server version cannot do.
    Unsupported(String),
}

pub(super) fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// The description Fabrik stores: the user's text, then the mark.
pub(super) fn describe(desc: Option<&str>, mark: Option<&OwnershipMark>) -> String {
    match (desc.map(str::trim).filter(|d| !d.is_empty()), mark) {
        (Some(d), Some(m)) => format!("{d} | {}", m.to_text()),
        (None, Some(m)) => m.to_text(),
        (Some(d), None) => d.to_owned(),
        (None, None) => String::new(),
    }
}

pub(super) fn str_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(super) fn split_domains(fqdn: &str) -> Vec<String> {
    fqdn.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `https://` in front of a bare host; trailing slashes removed.
pub(super) fn normalize_domain(d: &str) -> String {
    let d = d.trim().trim_end_matches('/');
    if d.contains("://") {
        d.to_owned()
    } else {
        format!("https://{d}")
    }
}

/// A URL without its port (how a service container's URL compares with a
/// domain: the port there is the container's, `docker.php:656-658`).
pub(super) fn without_port(url: &str) -> String {
    match url::Url::parse(&normalize_domain(url)) {
        Ok(mut u) => {
            let _ = u.set_port(None);
            u.as_str().trim_end_matches('/').to_owned()
        }
        Err(_) => normalize_domain(url),
    }
}

/// The form Coolify stores a repository URL in on create: for github.com,
/// `owner/repo` (path segments 1 and 2, `AC:1459-1465 @4.3.11`; the same
/// at `AC:1238 @b474`, `:1140 @4.1.0`, `:1384 @4.2.0`); any other host
/// keeps the URL. The PATCH stores what it is sent, and the clone URL is
/// `{html_url}/{git_repository}` (`app/Models/Application.php:1749`), so
/// this is also the only form a PATCH may send.
pub(super) fn stored_repository(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(u) if u.host_str() == Some("github.com") => {
            let mut segs = u.path_segments().into_iter().flatten();
            let owner = segs.next().unwrap_or_default();
            let repo = segs.next().unwrap_or_default();
            format!("{owner}/{repo}").trim().to_owned()
        }
        _ => url.trim().to_owned(),
    }
}

/// Whether a stored repository is the one wanted, in whichever form each
/// is written (`owner/repo` or a URL, with or without `.git` or a slash).
pub(super) fn same_repository(stored: &str, wanted: &str) -> bool {
    fn key(s: &str) -> String {
        let s = stored_repository(s).to_ascii_lowercase();
        let s = s.trim_end_matches('/');
        s.strip_suffix(".git").unwrap_or(s).to_owned()
    }
    key(stored) == key(wanted)
}

fn ports(desired: &AppDesired) -> Option<String> {
    (!desired.ports.is_empty()).then(|| {
        desired
            .ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The container a service's domains go to, and the container port the
/// proxy sends them to: a one-click template's public container and port
/// (`crate::spec::services`, Coolify 4.3.11's list); a compose file's
/// public service and its first exposed port.
pub(super) fn public_container(desired: &AppDesired) -> Option<(String, Option<u16>)> {
    match &desired.source {
        AppSource::OneClick { service_type } => {
            let t = crate::spec::services::template(service_type)?;
            Some((t.default_service?.to_owned(), t.port))
        }
        AppSource::Compose {
            compose,
            public_service,
        } => {
            let name = public_service.clone()?;
            let port = compose_port(compose, &name).or_else(|| desired.ports.first().copied());
            Some((name, port))
        }
        _ => None,
    }
}

/// The first container port a compose service exposes (`expose`, or the
/// container side of `ports`).
fn compose_port(compose: &str, service: &str) -> Option<u16> {
    let doc = crate::spec::compose_document(compose)?;
    let svc = doc.get("services")?.get(service)?;
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o.get("target").map(|t| t.to_string()),
        _ => None,
    };
    let first = |key: &str| -> Option<u16> {
        let items = svc.get(key)?.as_array()?;
        items.iter().filter_map(text).find_map(|p| {
            let container = p.rsplit(':').next()?.split('/').next()?.to_owned();
            container.parse().ok()
        })
    };
    first("expose").or_else(|| first("ports"))
}

/// A service's domains as `POST /services` takes them: `[{name, url}]`,
/// `name` the public container and each URL with the container port
/// (`https://host:3000`: served on 443, proxied to 3000; `parsers.php:1839-1848`,
/// `docker.php:656-658`). `None` when there is nothing to route.
pub(super) fn service_urls(desired: &AppDesired) -> Result<Option<Value>, Refusal> {
    if desired.domains.is_empty() {
        return Ok(None);
    }
    let Some((name, port)) = public_container(desired) else {
        return Err(Refusal::Unsupported(
            "this service has no container that takes a domain".to_owned(),
        ));
    };
    Ok(Some(
        json!([{"name": name, "url": service_url_list(desired, port).join(",")}]),
    ))
}

fn service_url_list(desired: &AppDesired, port: Option<u16>) -> Vec<String> {
    desired
        .domains
        .iter()
        .map(|d| {
            let d = normalize_domain(d);
            match (url::Url::parse(&d).ok().and_then(|u| u.port()), port) {
                (None, Some(p)) => format!("{d}:{p}"),
                _ => d,
            }
        })
        .collect()
}

/// The health check fields of a create or PATCH.
fn health_fields(h: &HealthCheck) -> Vec<(&'static str, Value)> {
    let mut out = vec![
        ("health_check_enabled", json!(true)),
        ("health_check_path", json!(h.path)),
        ("health_check_method", json!(h.method)),
        ("health_check_scheme", json!(h.scheme)),
        ("health_check_return_code", json!(h.return_code)),
        ("health_check_timeout", json!(h.timeout)),
        ("health_check_retries", json!(h.retries)),
        ("health_check_start_period", json!(h.start_period)),
        // Coolify's default interval is 5 s, the spec's 30 s: always sent.
        ("health_check_interval", json!(h.interval.unwrap_or(30))),
    ];
    if let Some(p) = h.port {
        // Stored as a string; the `integer` rule takes a numeric string.
        out.push(("health_check_port", json!(p.to_string())));
    }
    if let Some(t) = &h.response_text {
        out.push(("health_check_response_text", json!(t)));
    }
    out
}

/// The git build fields with their Coolify defaults (what an absent spec
/// value resets to): `git_commit_sha` `HEAD` (an empty string would become
/// null and fail the `string` rule, `api.php:153`), `base_directory` `/`,
/// `dockerfile_location` `/Dockerfile`, the rest empty.
fn git_fields(b: &GitBuild) -> [(&'static str, Option<&String>, &'static str); 7] {
    [
        ("git_commit_sha", b.commit.as_ref(), "HEAD"),
        ("base_directory", b.base_directory.as_ref(), "/"),
        ("publish_directory", b.publish_directory.as_ref(), ""),
        ("install_command", b.install_command.as_ref(), ""),
        ("build_command", b.build_command.as_ref(), ""),
        ("start_command", b.start_command.as_ref(), ""),
        (
            "dockerfile_location",
            b.dockerfile_location.as_ref(),
            "/Dockerfile",
        ),
    ]
}

/// The request body of the create call for `desired`, and its path.
pub(super) fn create_body(
    target: &ResolvedTarget,
    desired: &AppDesired,
    mark: &OwnershipMark,
) -> Result<(Vec<&'static str>, Map<String, Value>), Refusal> {
    let mut b = Map::new();
    b.insert("project_uuid".into(), json!(target.project_uuid));
    b.insert("server_uuid".into(), json!(target.server_uuid));
    b.insert("environment_name".into(), json!(target.environment_name));
    b.insert("environment_uuid".into(), json!(target.environment_uuid));
    if let Some(d) = &target.destination_uuid {
        b.insert("destination_uuid".into(), json!(d));
    }
    b.insert("name".into(), json!(desired.name));
    b.insert(
        "description".into(),
        json!(describe(desired.description.as_deref(), Some(mark))),
    );
    b.insert("instant_deploy".into(), json!(false));
    if target.version.supports_tags() {
        b.insert("tags".into(), json!([OWNER_TAG, mark.deployment_tag()]));
    }
    let path: Vec<&'static str> = match &desired.source {
        AppSource::Compose { compose, .. } => {
            b.insert("docker_compose_raw".into(), json!(b64(compose)));
            if let Some(urls) = service_urls(desired)? {
                b.insert("urls".into(), urls);
            }
            return Ok((vec!["services"], b));
        }
        AppSource::OneClick { service_type } => {
            b.insert("type".into(), json!(service_type));
            if let Some(urls) = service_urls(desired)? {
                b.insert("urls".into(), urls);
            }
            return Ok((vec!["services"], b));
        }
        AppSource::DockerImage { image, tag } => {
            b.insert("docker_registry_image_name".into(), json!(image));
            b.insert(
                "docker_registry_image_tag".into(),
                json!(tag.as_deref().unwrap_or("latest")),
            );
            b.insert(
                "ports_exposes".into(),
                json!(ports(desired).unwrap_or_else(|| "80".into())),
            );
            vec!["applications", "dockerimage"]
        }
        AppSource::Dockerfile { dockerfile } => {
            // Coolify ignores `ports_exposes` here and stores 80
            // (`AC:2090-2098`): the port is PATCHed right after the create.
            b.insert("dockerfile".into(), json!(b64(dockerfile)));
            vec!["applications", "dockerfile"]
        }
        AppSource::Git {
            repository,
            branch,
            build_pack,
            build,
        } => {
            if *build_pack == BuildPack::Railpack && !target.version.supports_railpack() {
                return Err(Refusal::Unsupported(format!(
                    "the railpack build pack exists from Coolify 4.1.0; this server runs {}",
                    target.version
                )));
            }
            b.insert("git_repository".into(), json!(repository));
            b.insert("git_branch".into(), json!(branch));
            b.insert("build_pack".into(), json!(build_pack.as_str()));
            for (field, value, _) in git_fields(build) {
                if let Some(v) = value {
                    b.insert(field.into(), json!(v));
                }
            }
            // Required up to 4.1.0: always sent.
            b.insert(
                "ports_exposes".into(),
                json!(ports(desired).unwrap_or_else(|| "80".into())),
            );
            vec!["applications", "public"]
        }
    };
    let compose_git = matches!(
        desired.source,
        AppSource::Git {
            build_pack: BuildPack::DockerCompose,
            ..
        }
    );
    // `domains` is rejected for compose build packs (they take
    // `docker_compose_domains` per service, which the spec has no names for).
    if !compose_git {
        if desired.domains.is_empty() {
            // Without it, an app without domains gets a public sslip.io URL
            // (`autogenerate_domain` defaults to true, `AC:1245`, `:1514`).
            b.insert("autogenerate_domain".into(), json!(false));
        } else {
            let d: Vec<String> = desired
                .domains
                .iter()
                .map(|d| normalize_domain(d))
                .collect();
            b.insert("domains".into(), json!(d.join(",")));
        }
    }
    if let Some(h) = &desired.health {
        for (k, v) in health_fields(h) {
            b.insert(k.into(), v);
        }
    }
    Ok((path, b))
}

/// The fields to PATCH right after a create, for what the create ignored:
/// a Dockerfile app's port.
pub(super) fn after_create(current: &Value, desired: &AppDesired) -> Map<String, Value> {
    let mut p = Map::new();
    if let (AppSource::Dockerfile { .. }, Some(ports)) = (&desired.source, ports(desired))
        && str_field(current, "ports_exposes").as_deref() != Some(ports.as_str())
    {
        p.insert("ports_exposes".into(), json!(ports));
    }
    p
}

/// The URLs of a service's container named `name`, as `GET
/// /services/{uuid}` shows them in `applications[]`.
fn container_urls(current: &Value, name: &str) -> Option<Vec<String>> {
    current
        .get("applications")?
        .as_array()?
        .iter()
        .find(|a| a.get("name").and_then(Value::as_str) == Some(name))
        .map(|a| {
            str_field(a, "fqdn")
                .map(|f| split_domains(&f))
                .unwrap_or_default()
        })
}

/// What differs between `current` (the app as Coolify shows it) and
/// `desired`, field by field, as the PATCH would send it. `previous` is
/// what the last apply made the app (from the journal): hidden or
/// rewritten fields are compared with it.
pub(super) fn changes(
    kind: AppKind,
    current: &Value,
    desired: &AppDesired,
    previous: Option<&AppDesired>,
) -> Result<Vec<FieldChange>, Refusal> {
    let mut out = Vec::new();
    let cur = |k: &str| str_field(current, k);
    let mut set = |k: &str, want: Value, have: Option<Value>| {
        if have.as_ref() != Some(&want) {
            out.push(FieldChange {
                field: k.to_owned(),
                want,
                have,
            });
        }
    };
    set("name", json!(desired.name), cur("name").map(Value::String));
    let current_desc = cur("description");
    let mark = current_desc.as_deref().and_then(OwnershipMark::parse);
    let want_desc = describe(desired.description.as_deref(), mark.as_ref());
    set(
        "description",
        json!(want_desc),
        Some(json!(current_desc.unwrap_or_default())),
    );
    if kind == AppKind::Service {
        if let AppSource::Compose { compose, .. } = &desired.source {
            // Coolify re-serialises the file on every parse (`SC:696`,
            // `:1230`, `parsers.php:1516-1537`) and hides it without
            // `read:sensitive`: compared as data, or with the last apply.
            let want = crate::spec::compose_document(compose);
            let known = match (cur("docker_compose_raw"), previous) {
                (Some(remote), _) => crate::spec::compose_document(&remote) == want,
                (
                    None,
                    Some(AppDesired {
                        source:
                            AppSource::Compose {
                                compose: before, ..
                            },
                        ..
                    }),
                ) => crate::spec::compose_document(before) == want,
                (None, _) => false,
            };
            if !known {
                set("docker_compose_raw", json!(b64(compose)), None);
            }
        }
        // A service's domains are its containers' URLs (`applications[]`
        // of the single read); a Service has no `urls` (`SC:233-253`).
        if let Some((name, port)) = public_container(desired) {
            let want = service_url_list(desired, port);
            let have = container_urls(current, &name);
            let same = have.as_ref().is_some_and(|h| {
                let a: BTreeSet<String> = h.iter().map(|u| normalize_domain(u)).collect();
                let b: BTreeSet<String> = want.iter().cloned().collect();
                a == b
            });
            if !same {
                let urls = json!([{"name": name, "url": want.join(",")}]);
                set("urls", urls, have.map(|h| json!(h.join(","))));
            }
        }
        return Ok(out);
    }
    let build_pack = cur("build_pack").unwrap_or_default();
    match &desired.source {
        AppSource::DockerImage { image, tag } => {
            if build_pack != "dockerimage" && !build_pack.is_empty() {
                return Err(Refusal::OtherBuild(format!(
                    "the application is built with {build_pack:?}, the spec asks for a docker image"
                )));
            }
            set(
                "docker_registry_image_name",
                json!(image),
                cur("docker_registry_image_name").map(Value::String),
            );
            set(
                "docker_registry_image_tag",
                json!(tag.as_deref().unwrap_or("latest")),
                cur("docker_registry_image_tag").map(Value::String),
            );
        }
        AppSource::Dockerfile { dockerfile } => {
            if build_pack != "dockerfile" && !build_pack.is_empty() {
                return Err(Refusal::OtherBuild(format!(
                    "the application is built with {build_pack:?}, the spec asks for a Dockerfile"
                )));
            }
            // Hidden without read:sensitive (`Application::$hidden`,
            // `app/Models/Application.php:236-247`); stored as sent.
            let changed = match (cur("dockerfile"), previous) {
                (Some(remote), _) => remote != *dockerfile,
                (
                    None,
                    Some(AppDesired {
                        source: AppSource::Dockerfile { dockerfile: before },
                        ..
                    }),
                ) => before != dockerfile,
                (None, _) => false,
            };
            if changed {
                return Err(Refusal::DockerfileChanged);
            }
        }
        AppSource::Git {
            repository,
            branch,
            build_pack: bp,
            build,
        } => {
            if build_pack == "dockerimage" {
                return Err(Refusal::OtherBuild(
                    "the application runs a docker image, the spec asks for a git build".into(),
                ));
            }
            let stored = cur("git_repository").unwrap_or_default();
            if !same_repository(&stored, repository) {
                set(
                    "git_repository",
                    json!(stored_repository(repository)),
                    Some(json!(stored)),
                );
            }
            set(
                "git_branch",
                json!(branch),
                cur("git_branch").map(Value::String),
            );
            set("build_pack", json!(bp.as_str()), Some(json!(build_pack)));
            for (field, value, default) in git_fields(build) {
                let want = value.map_or(default, String::as_str);
                let have = cur(field).unwrap_or_default();
                let have_or_default = if have.is_empty() {
                    default
                } else {
                    have.as_str()
                };
                if want != have_or_default {
                    set(field, json!(want), Some(json!(have)));
                }
            }
        }
        AppSource::Compose { .. } | AppSource::OneClick { .. } => {
            return Err(Refusal::OtherBuild(
                "the spec asks for a service, the remote is an application".into(),
            ));
        }
    }
    if build_pack != "dockercompose" {
        let want: BTreeSet<String> = desired
            .domains
            .iter()
            .map(|d| normalize_domain(d))
            .collect();
        let have: BTreeSet<String> = cur("fqdn")
            .map(|f| {
                split_domains(&f)
                    .iter()
                    .map(|d| normalize_domain(d))
                    .collect()
            })
            .unwrap_or_default();
        if want != have {
            let list: Vec<String> = desired
                .domains
                .iter()
                .map(|d| normalize_domain(d))
                .collect();
            // An empty list clears the domains (null after Coolify's input
            // middleware), the generated sslip.io one too.
            set(
                "domains",
                json!(list.join(",")),
                cur("fqdn").map(Value::String),
            );
        }
    }
    if let Some(ports) = ports(desired) {
        set(
            "ports_exposes",
            json!(ports),
            cur("ports_exposes").map(Value::String),
        );
    }
    match &desired.health {
        Some(h) => {
            for (k, want) in health_fields(h) {
                let have = current.get(k).cloned().filter(|v| !v.is_null());
                // Numbers may come back as strings and the other way round.
                let same = have
                    .as_ref()
                    .is_some_and(|h| h == &want || plain(h) == plain(&want));
                if !same {
                    set(k, want, have);
                }
            }
        }
        None => {
            if current.get("health_check_enabled") == Some(&json!(true)) {
                set("health_check_enabled", json!(false), Some(json!(true)));
            }
        }
    }
    Ok(out)
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The PATCH body of `changes`.
pub(super) fn patch_of(changes: &[FieldChange]) -> Map<String, Value> {
    changes
        .iter()
        .map(|c| (c.field.clone(), c.want.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::DeploymentId;

    fn mark() -> OwnershipMark {
        OwnershipMark::new(
            DeploymentId::new("blog").unwrap_or_else(|e| panic!("{e}")),
            "01jdx3v5q6m7n8p9r0s1t2v3w4"
                .parse()
                .unwrap_or_else(|e| panic!("{e:?}")),
        )
    }

    fn app(source: AppSource) -> AppDesired {
        AppDesired {
            name: "blog".into(),
            description: Some("The blog".into()),
            source,
            domains: vec!["blog.example.com".into()],
            ports: vec![3000],
            health: None,
            env: vec![],
        }
    }

    #[test]
    fn describe_keeps_user_text_and_appends_the_mark() {
        let d = describe(Some("The blog"), Some(&mark()));
        assert_eq!(OwnershipMark::parse(&d), Some(mark()));
        assert!(d.starts_with("The blog | managed-by=fabrik"));
    }

    #[test]
    fn image_update_never_sends_build_pack() {
        let current = json!({"uuid":"a","name":"blog","build_pack":"dockerimage",
            "description": describe(Some("The blog"), Some(&mark())),
            "docker_registry_image_name":"nginx","docker_registry_image_tag":"1",
            "fqdn":"https://blog.example.com","ports_exposes":"3000"});
        let c = changes(
            AppKind::Application,
            &current,
            &app(AppSource::DockerImage {
                image: "nginx".into(),
                tag: Some("2".into()),
            }),
            None,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            patch_of(&c).keys().collect::<Vec<_>>(),
            vec!["docker_registry_image_tag"]
        );
    }

    #[test]
    fn github_repositories_compare_and_patch_in_coolify_form() {
        assert_eq!(
            stored_repository("https://github.com/acme/site"),
            "acme/site"
        );
        assert_eq!(
            stored_repository("https://github.com/acme/site.git"),
            "acme/site.git"
        );
        assert_eq!(
            stored_repository("https://gitlab.com/acme/site"),
            "https://gitlab.com/acme/site"
        );
        assert!(same_repository("acme/site", "https://github.com/acme/site"));
        assert!(same_repository(
            "Acme/Site.git",
            "https://github.com/acme/site/"
        ));
        assert!(!same_repository(
            "acme/other",
            "https://github.com/acme/site"
        ));
        assert!(same_repository(
            "https://gitlab.com/acme/site",
            "https://gitlab.com/acme/site.git"
        ));
    }

    #[test]
    fn service_urls_name_the_public_container_with_its_port() {
        let mut a = app(AppSource::OneClick {
            service_type: "wordpress-with-mysql".into(),
        });
        assert_eq!(
            service_urls(&a).unwrap_or_else(|e| panic!("{e:?}")),
            Some(json!([{"name": "wordpress", "url": "https://blog.example.com"}]))
        );
        a.source = AppSource::OneClick {
            service_type: "ghost".into(),
        };
        assert_eq!(
            service_urls(&a).unwrap_or_else(|e| panic!("{e:?}")),
            Some(json!([{"name": "ghost", "url": "https://blog.example.com:2368"}]))
        );
        a.source = AppSource::OneClick {
            service_type: "cloudflared".into(),
        };
        assert!(service_urls(&a).is_err());
        a.source = AppSource::Compose {
            compose: "services:\n  web:\n    image: x\n    expose: ['8080']\n".into(),
            public_service: Some("web".into()),
        };
        assert_eq!(
            service_urls(&a).unwrap_or_else(|e| panic!("{e:?}")),
            Some(json!([{"name": "web", "url": "https://blog.example.com:8080"}]))
        );
    }
}
