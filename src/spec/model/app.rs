//! The application: what Coolify runs, in one of the forms its API offers.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::Duration;
use super::interpolated::Interpolated;

/// The application, in exactly one form: `image`, `dockerfile`, `git`,
/// `compose` or `service`.
///
/// In the file the form is a key of `app` (flat, so specs read naturally);
/// in code it is the [`AppSource`] enum, so the engine matches on it and
/// can never see two forms at once.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(try_from = "AppDoc", into = "AppDoc")]
#[schemars(
    description = "The application, in exactly one form: `image`, `dockerfile`, `git`, `compose` or `service`."
)]
pub struct App {
    /// The Coolify resource name; the deployment name when absent.
    pub name: Option<String>,
    /// The Coolify resource description.
    pub description: Option<String>,
    /// What to run.
    pub source: AppSource,
    /// The port the container listens on.
    pub port: Option<u16>,
    /// The domains the application serves, as written.
    pub domains: Vec<String>,
    /// The container health check Coolify runs.
    pub health_check: Option<HealthCheck>,
    /// Environment variables; values may reference secrets.
    pub env: BTreeMap<String, Interpolated>,
    /// Variables the build receives too (Docker build arguments).
    pub build_env: BTreeMap<String, Interpolated>,
}

/// The forms of application Coolify's API can create.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppSource {
    /// A Docker image from a registry (`POST /applications/dockerimage`).
    Image(String),
    /// A Dockerfile built on the server (`POST /applications/dockerfile`).
    Dockerfile(FileSource),
    /// A public git repository built with a build pack
    /// (`POST /applications/public`).
    Git(GitSource),
    /// A docker-compose file, deployed as a Coolify service with raw
    /// compose (`POST /services` with `docker_compose_raw`).
    Compose(ComposeSource),
    /// A one-click service such as `wordpress-with-mysql`
    /// (`POST /services` with `type`).
    Service(String),
}

impl AppSource {
    /// The key that selects this form in the file.
    pub fn key(&self) -> &'static str {
        match self {
            Self::Image(_) => "image",
            Self::Dockerfile(_) => "dockerfile",
            Self::Git(_) => "git",
            Self::Compose(_) => "compose",
            Self::Service(_) => "service",
        }
    }
}

/// The keys that select an application form.
pub const APP_FORMS: [&str; 5] = ["image", "dockerfile", "git", "compose", "service"];

/// The application as written in the file: every form is an optional key,
/// and validation checks that exactly one is present.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppDoc {
    /// The Coolify resource name. Defaults to the deployment name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The Coolify resource description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A Docker image with its tag, e.g. `traefik/whoami:v1.10` or
    /// `ghcr.io/acme/api@sha256:...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// A Dockerfile, from a file beside the spec (`file`) or inline
    /// (`content`); Coolify builds it on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<FileSource>,
    /// A public git repository built with a Coolify build pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitSource>,
    /// A docker-compose file, deployed as a Coolify service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<ComposeSource>,
    /// A Coolify one-click service type, e.g. `wordpress-with-mysql`,
    /// `ghost`, `uptime-kuma`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The port the container listens on (`ports_exposes`). Required for
    /// `image` and `git`; for `dockerfile`, the Dockerfile's first `EXPOSE`
    /// when absent (80 without one); compose and one-click services declare
    /// their own ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// Domains the application serves: host names (`app.example.com`,
    /// served over https) or URLs (`http://app.example.com:8080`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// The container health check Coolify runs before it switches traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Environment variables of the running container. Values may
    /// reference declared secrets as `${secret.NAME}`; a value that does is
    /// never given to the build (Coolify would pass it as a Docker build
    /// argument, readable in the image's history).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Interpolated>,
    /// Environment variables the build receives as well as the running
    /// container (Docker build arguments; `dockerfile` and `git` only).
    /// A secret here ends up in the image's layer history.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub build_env: BTreeMap<String, Interpolated>,
}

impl TryFrom<AppDoc> for App {
    type Error = String;

    fn try_from(d: AppDoc) -> Result<Self, Self::Error> {
        let mut forms = Vec::new();
        if let Some(i) = d.image {
            forms.push(AppSource::Image(i));
        }
        if let Some(f) = d.dockerfile {
            forms.push(AppSource::Dockerfile(f));
        }
        if let Some(g) = d.git {
            forms.push(AppSource::Git(g));
        }
        if let Some(c) = d.compose {
            forms.push(AppSource::Compose(c));
        }
        if let Some(s) = d.service {
            forms.push(AppSource::Service(s));
        }
        if forms.len() != 1 {
            return Err(format!(
                "the application needs exactly one of {}",
                APP_FORMS.join(", ")
            ));
        }
        let source = forms.remove(0);
        Ok(App {
            name: d.name,
            description: d.description,
            source,
            port: d.port,
            domains: d.domains,
            health_check: d.health_check,
            env: d.env,
            build_env: d.build_env,
        })
    }
}

impl From<App> for AppDoc {
    fn from(a: App) -> Self {
        let mut d = AppDoc {
            name: a.name,
            description: a.description,
            image: None,
            dockerfile: None,
            git: None,
            compose: None,
            service: None,
            port: a.port,
            domains: a.domains,
            health_check: a.health_check,
            env: a.env,
            build_env: a.build_env,
        };
        match a.source {
            AppSource::Image(i) => d.image = Some(i),
            AppSource::Dockerfile(f) => d.dockerfile = Some(f),
            AppSource::Git(g) => d.git = Some(g),
            AppSource::Compose(c) => d.compose = Some(c),
            AppSource::Service(s) => d.service = Some(s),
        }
        d
    }
}

/// A file's text, from a path beside the spec or inline.
///
/// After [`crate::spec::load`], `content` always holds the text (read from
/// `file` when one is given), so the desired-state hash changes when the
/// file does; `file` is kept to say where it came from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// A path relative to the spec's directory. It may not leave that
    /// directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The text itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl FileSource {
    /// The text, once loaded.
    pub fn text(&self) -> Option<&str> {
        self.content.as_deref()
    }
}

/// A docker-compose file and the service that receives the domains.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComposeSource {
    /// A path relative to the spec's directory (`docker-compose.yml`). It
    /// may not leave that directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The compose file inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The compose service the domains route to. May be left out when the
    /// file has a single service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_service: Option<String>,
    /// Risky settings of the compose file that are meant, by service:
    /// `{ web: [privileged, host_network] }`. Each one otherwise gives a
    /// warning.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allow: BTreeMap<String, Vec<ComposeRisk>>,
}

/// A compose setting that weakens the isolation of a container, or that
/// Coolify can not honour; the lint warns about each unless `allow` lists
/// it for its service.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ComposeRisk {
    /// `privileged: true`: the container has every capability and device
    /// of the host.
    Privileged,
    /// `network_mode: host`: the container shares the host's network
    /// (and can reach what listens on its loopback).
    HostNetwork,
    /// `cap_add`: capabilities beyond Docker's default set.
    Capabilities,
    /// `build` with a local context: Coolify has no copy of the files
    /// beside the spec, so the build only works if the server has them.
    LocalBuild,
}

impl ComposeRisk {
    /// Every risk.
    pub const ALL: [ComposeRisk; 4] = [
        Self::Privileged,
        Self::HostNetwork,
        Self::Capabilities,
        Self::LocalBuild,
    ];

    /// The name as written in `allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::HostNetwork => "host_network",
            Self::Capabilities => "capabilities",
            Self::LocalBuild => "local_build",
        }
    }
}

impl ComposeSource {
    /// The compose text, once loaded.
    pub fn text(&self) -> Option<&str> {
        self.content.as_deref()
    }
}

/// A public git repository and how Coolify builds it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitSource {
    /// The repository's https URL, e.g. `https://github.com/acme/site`.
    pub repository: String,
    /// The branch to build.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// A commit to pin instead of the branch head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The Coolify build pack.
    #[serde(default)]
    pub build_pack: BuildPack,
    /// The directory inside the repository to build from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_directory: Option<String>,
    /// Where the built files are, for the `static` build pack (e.g. `/dist`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_directory: Option<String>,
    /// Overrides the build pack's install command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_command: Option<String>,
    /// Overrides the build pack's build command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_command: Option<String>,
    /// Overrides the build pack's start command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_command: Option<String>,
    /// Where the Dockerfile is in the repository, for the `dockerfile`
    /// build pack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile_location: Option<String>,
}

fn default_branch() -> String {
    "main".to_owned()
}

/// How Coolify builds a git repository.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BuildPack {
    /// Detects the language and builds an image (the default).
    #[default]
    Nixpacks,
    /// Railway's successor to Nixpacks.
    Railpack,
    /// Serves files with nginx; see `publish_directory`.
    Static,
    /// Builds the repository's Dockerfile.
    Dockerfile,
}

impl BuildPack {
    /// The value Coolify's API expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nixpacks => "nixpacks",
            Self::Railpack => "railpack",
            Self::Static => "static",
            Self::Dockerfile => "dockerfile",
        }
    }
}

/// The container health check Coolify runs (its `health_check_*` fields).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// The path requested inside the container.
    #[serde(default = "default_hc_path")]
    pub path: String,
    /// The port inside the container; `app.port` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// The HTTP method.
    #[serde(default)]
    pub method: HealthMethod,
    /// The scheme inside the container.
    #[serde(default)]
    pub scheme: HealthScheme,
    /// The status code that counts as healthy.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Text the response body must contain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// Time between checks (whole seconds).
    #[serde(default = "default_hc_interval")]
    pub interval: Duration,
    /// Time one check may take (whole seconds).
    #[serde(default = "default_hc_timeout")]
    pub timeout: Duration,
    /// Failed checks before the container counts as unhealthy.
    #[serde(default = "default_hc_retries")]
    pub retries: u8,
    /// Grace time after start before failures count (whole seconds).
    #[serde(default = "default_hc_start")]
    pub start_period: Duration,
}

fn default_hc_path() -> String {
    "/".to_owned()
}
pub(crate) fn default_status() -> u16 {
    200
}
fn default_hc_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_hc_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_hc_retries() -> u8 {
    3
}
fn default_hc_start() -> Duration {
    Duration::from_secs(10)
}

/// The health check's HTTP method.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HealthMethod {
    /// GET (the default).
    #[default]
    Get,
    /// HEAD.
    Head,
    /// POST.
    Post,
}

/// The health check's scheme inside the container.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthScheme {
    /// Plain HTTP (the default: TLS ends at Coolify's proxy).
    #[default]
    Http,
    /// HTTPS.
    Https,
}

/// A domain of the application, read from what the spec says.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Domain {
    /// `https` unless the entry says otherwise.
    pub scheme: String,
    /// The host name, lower-cased.
    pub host: String,
    /// An explicit port.
    pub port: Option<u16>,
}

/// Why a `domains` entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DomainError {
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl DomainError {
    fn new(message: String, hint: &str) -> Self {
        Self {
            message,
            hint: Some(hint.to_owned()),
        }
    }
}

const DOMAIN_FORM: &str =
    "write a host name (`app.example.com`) or a URL without a path (`https://app.example.com`)";

impl Domain {
    /// Reads one `domains` entry: a host name or an http(s) URL without
    /// a path. The host is read as written (see [`crate::spec::host`]):
    /// an international name becomes punycode, a look-alike is refused.
    pub fn parse(entry: &str) -> Result<Self, DomainError> {
        let shown = crate::spec::credential::redacted(entry);
        let text = if entry.contains("://") {
            entry.to_owned()
        } else {
            format!("https://{entry}")
        };
        if crate::spec::credential::userinfos(&text)
            .iter()
            .any(|u| !u.user.is_empty() || u.password.is_some())
        {
            return Err(DomainError::new(
                format!("`{shown}` carries credentials; a domain takes none"),
                "a domain is where the application is served: remove `user:password@`; to put the application behind a password, enable HTTP basic auth for it in Coolify (Fabrik does not manage it)",
            ));
        }
        let url = url::Url::parse(&text).map_err(|e| {
            DomainError::new(
                format!("`{shown}` is not a domain or URL: {e}"),
                DOMAIN_FORM,
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DomainError::new(
                format!("`{shown}` must use http or https"),
                DOMAIN_FORM,
            ));
        }
        let host = match url.host() {
            Some(url::Host::Domain(_)) => {
                let after = &text[text.find("://").map_or(0, |i| i + 3)..];
                let authority = after.split(['/', '?', '#']).next().unwrap_or(after);
                let written = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
                crate::spec::host::ascii_host(written, true).map_err(|p| DomainError {
                    message: format!("`{shown}` is not a valid host name: {}", p.reason()),
                    hint: p.hint(),
                })?
            }
            Some(_) => {
                return Err(DomainError::new(
                    format!("`{shown}` must name a host, not an IP address"),
                    "Coolify routes by host name; point a DNS record at the address and list its name",
                ));
            }
            None => {
                return Err(DomainError::new(
                    format!("`{shown}` has no host"),
                    DOMAIN_FORM,
                ));
            }
        };
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(DomainError::new(
                format!("`{shown}` must not have a path, query or fragment"),
                DOMAIN_FORM,
            ));
        }
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host,
            port: url.port(),
        })
    }

    /// The URL form Coolify's `domains` field takes.
    pub fn url(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }
}

impl App {
    /// The domains, parsed; entries that do not parse are skipped
    /// (validation reports them).
    pub fn parsed_domains(&self) -> Vec<Domain> {
        self.domains
            .iter()
            .filter_map(|d| Domain::parse(d).ok())
            .collect()
    }

    /// The host names the application serves.
    pub fn hosts(&self) -> Vec<String> {
        self.parsed_domains().into_iter().map(|d| d.host).collect()
    }

    /// The Coolify resource name.
    pub fn resource_name<'a>(&'a self, deployment: &'a str) -> &'a str {
        self.name.as_deref().unwrap_or(deployment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_accept_hosts_and_urls() {
        let d = Domain::parse("Quickstart.Example.com").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.url(), "https://quickstart.example.com");
        let d = Domain::parse("http://a.example.com:8080").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.url(), "http://a.example.com:8080");
        assert!(Domain::parse("https://a.example.com/path").is_err());
        assert!(Domain::parse("ftp://a.example.com").is_err());
        assert!(Domain::parse("203.0.113.1").is_err());
        let e = Domain::parse("https://u:hunter2@a.example.com").unwrap_err();
        assert!(
            e.message.contains("u:***@") && !e.message.contains("hunter2"),
            "{e}"
        );
        let d = Domain::parse("https://Bücher.example.com").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.host, "xn--bcher-kva.example.com");
        assert!(Domain::parse("shоp.example.com").is_err());
    }

    #[test]
    fn exactly_one_form() {
        let doc = AppDoc {
            name: None,
            description: None,
            image: Some("nginx:1".into()),
            dockerfile: None,
            git: None,
            compose: None,
            service: Some("ghost".into()),
            port: None,
            domains: vec![],
            health_check: None,
            env: BTreeMap::new(),
            build_env: BTreeMap::new(),
        };
        assert!(App::try_from(doc.clone()).is_err());
        let one = AppDoc {
            service: None,
            ..doc
        };
        let app = App::try_from(one).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(app.source.key(), "image");
        assert_eq!(AppDoc::from(app).image.as_deref(), Some("nginx:1"));
    }
}
