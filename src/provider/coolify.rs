//! [`AppHost`] on Coolify v4 (`/api/v1`), true to
//! `contracts/coolify/NOTES.md`.
//!
//! Quirks this client handles (section numbers of the notes):
//! - every create goes out without `instant_deploy` effects (`false`) and is
//!   read back, because a 201 can precede a 404 (§13.8);
//! - the OpenAPI demands `environment_name` *and* `environment_uuid`, the
//!   server one of them: both are sent, resolved in preflight (§14);
//! - `build_pack` is never sent for image apps (stored as `dockerimage`,
//!   which the PATCH check rejects, §4);
//! - env vars are reconciled with list + bulk upsert + delete, identity
//!   `(key, is_preview)`; single `POST …/envs` would 409 on an existing key
//!   and is never used; `is_build_time` is never sent (§5, §13.5, §13.10);
//! - deploys use POST (GET is 405 from 4.2), and the "already queued" reply
//!   whose uuid was never saved falls back to the app's newest queued or
//!   running deployment (§6, §13.2);
//! - polling stops on `finished`, `failed` and `cancelled-by-user`, with a
//!   client-side deadline (§7, §13.3, §13.11);
//! - deletes are asynchronous: poll until 404 (§4).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::{ErrorKind, FieldError, ForbiddenReason, ProviderError, ProviderName};
use super::http::{self, Failure, Http, HttpConfig, Request, Response};
use super::types::*;
use super::{AppHost, Progress};
use crate::ownership::{OWNER_TAG, OwnershipMark};
use crate::secret::{Scrubber, SecretValue};

const P: ProviderName = ProviderName::Coolify;

/// Where Coolify is and how to authenticate.
#[derive(Debug, Clone)]
pub struct CoolifyConfig {
    /// The instance URL, e.g. `https://coolify.example.com` (with or without
    /// the `/api/v1` suffix).
    pub base_url: String,
    /// An API token (`12|abc…`, the whole string) with `root`, or `read`,
    /// `write` and `deploy` (plus `read:sensitive` to compare env values).
    pub token: SecretValue,
}

/// The Coolify client.
#[derive(Debug)]
pub struct CoolifyClient {
    http: Http,
    /// `scheme://host:port` of the instance, to make UI paths absolute.
    origin: String,
    /// The server version, once read.
    version: Mutex<Option<ServerVersion>>,
}

impl CoolifyClient {
    /// A client; does no I/O.
    pub fn new(config: CoolifyConfig, http: HttpConfig) -> Result<Self, ProviderError> {
        let trimmed = config.base_url.trim().trim_end_matches('/');
        let root = trimmed
            .strip_suffix("/api/v1")
            .unwrap_or(trimmed)
            .to_owned();
        let http = Http::new(
            P,
            &format!("{root}/api/v1"),
            Some(config.token),
            http,
            classify,
        )?;
        let origin = http::origin(http.base());
        Ok(Self {
            http,
            origin,
            version: Mutex::new(None),
        })
    }

    async fn send(&self, req: Request) -> Result<(Response, Request), ProviderError> {
        let resp = self.http.send(&req).await?;
        Ok((resp, req))
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        operation: &str,
        segments: &[&str],
    ) -> Result<T, ProviderError> {
        let (resp, req) = self
            .send(Request::new(Method::GET, operation, segments))
            .await?;
        resp.json(&self.http, &req)
    }

    /// Reads `GET /version` and remembers it.
    pub async fn server_version(&self) -> Result<ServerVersion, ProviderError> {
        if let Ok(guard) = self.version.lock()
            && let Some(v) = guard.as_ref()
        {
            return Ok(v.clone());
        }
        let mut req = Request::new(Method::GET, "read server version", &["version"]);
        // Plain text, not JSON.
        req.accept = "text/plain, */*;q=0.5";
        let resp = self.http.send(&req).await?;
        let text = resp.text();
        let version = ServerVersion::parse(&text).ok_or_else(|| {
            self.http
                .error(
                    &req,
                    ErrorKind::MalformedResponse,
                    Some(resp.status.as_u16()),
                )
                .with_message(format!(
                    "expected a version like 4.3.11, got: {}",
                    http::excerpt(&self.http.scrubber(&req), &resp.body)
                ))
                .with_hint("check that COOLIFY_URL points at the Coolify instance itself")
        })?;
        if let Ok(mut guard) = self.version.lock() {
            *guard = Some(version.clone());
        }
        Ok(version)
    }

    /// Checks that the token may write and deploy, without changing
    /// anything: Coolify checks a route's ability before it looks for the
    /// resource, so a write (PATCH) and a deploy (POST) aimed at an
    /// application that does not exist answer 404 with the ability and 403
    /// without it. Found at preflight, a read-only token stops the run
    /// before the first DNS record is made instead of half-way.
    async fn probe_abilities(&self) -> Result<(), ProviderError> {
        const PROBE: &str = "fabrik-permission-probe";
        let probes = [
            Request::new(
                Method::PATCH,
                "check the token may write",
                &["applications", PROBE],
            )
            .json(&serde_json::json!({ "description": "permission probe" })),
            Request::new(Method::POST, "check the token may deploy", &["deploy"])
                .query("uuid", PROBE)
                .idempotent(true),
        ];
        for req in probes {
            match self.http.send(&req).await {
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e)
                    if matches!(
                        e.kind,
                        ErrorKind::Forbidden(ForbiddenReason::MissingPermission { .. })
                    ) =>
                {
                    return Err(e);
                }
                // Anything else (a 400 or 422 about the probe itself) means
                // the ability check passed.
                Err(e)
                    if matches!(
                        e.kind,
                        ErrorKind::Validation { .. }
                            | ErrorKind::InvalidRequest
                            | ErrorKind::Rejected
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn absolute(&self, path: Option<String>) -> Option<String> {
        path.filter(|p| !p.is_empty()).map(|p| {
            if p.starts_with("http://") || p.starts_with("https://") {
                p
            } else {
                format!("{}/{}", self.origin, p.trim_start_matches('/'))
            }
        })
    }

    fn remote_app(kind: AppKind, v: &Value) -> Option<RemoteApp> {
        let uuid = v.get("uuid")?.as_str()?.to_owned();
        let description = str_field(v, "description");
        Some(RemoteApp {
            kind,
            name: str_field(v, "name").unwrap_or_default(),
            mark: description.as_deref().and_then(OwnershipMark::parse),
            description,
            domains: str_field(v, "fqdn")
                .map(|f| split_domains(&f))
                .unwrap_or_default(),
            status: str_field(v, "status"),
            uuid,
        })
    }

    async fn read_app(&self, kind: AppKind, uuid: &str) -> Result<Value, ProviderError> {
        let op = format!("read {}", singular(kind));
        self.get(&op, &[kind.collection(), uuid]).await
    }

    async fn deployments_of(&self, app_uuid: &str) -> Result<Vec<VDeployment>, ProviderError> {
        let req = Request::new(
            Method::GET,
            "list deployments",
            &["deployments", "applications", app_uuid],
        )
        .query("skip", "0")
        .query("take", "10");
        let resp = self.http.send(&req).await?;
        // The reply is `{count, deployments}`; the OpenAPI says an array.
        let v: Value = resp.json(&self.http, &req)?;
        let list = match v {
            Value::Array(a) => a,
            Value::Object(mut o) => match o.remove("deployments") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        Ok(list
            .into_iter()
            .filter_map(|d| serde_json::from_value(d).ok())
            .collect())
    }

    fn status_of(&self, d: VDeployment) -> DeploymentStatus {
        DeploymentStatus {
            state: DeploymentState::parse(&d.status),
            url: self.absolute(d.deployment_url),
            commit: d.commit,
        }
    }

    async fn poll_gone(
        &self,
        kind: AppKind,
        uuid: &str,
        wait: WaitOptions,
    ) -> Result<(), ProviderError> {
        let start = tokio::time::Instant::now();
        loop {
            match self.read_app(kind, uuid).await {
                Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            if start.elapsed() + wait.poll_interval > wait.timeout {
                return Err(ProviderError::new(
                    P,
                    format!("delete {}", singular(kind)),
                    ErrorKind::DeadlineExceeded {
                        after: wait.timeout,
                    },
                )
                .with_message(format!("{} {uuid} still exists", singular(kind)))
                .with_hint(
                    "coolify deletes in a background job; check its queue worker, then run the command again",
                ));
            }
            tokio::time::sleep(wait.poll_interval).await;
        }
    }

    fn pick<'a, T>(
        &self,
        what: &str,
        wanted: &str,
        items: &'a [T],
        key: impl Fn(&T) -> (&str, &str),
    ) -> Result<&'a T, ProviderError> {
        if let Some(found) = items.iter().find(|i| key(i).0 == wanted) {
            return Ok(found);
        }
        let named: Vec<&T> = items.iter().filter(|i| key(i).1 == wanted).collect();
        match named.as_slice() {
            [one] => Ok(one),
            [] => {
                let names: Vec<&str> = items.iter().map(|i| key(i).1).collect();
                Err(
                    ProviderError::new(P, format!("resolve {what}"), ErrorKind::NotFound)
                        .with_message(format!("no {what} named {wanted:?} (nor with that uuid)"))
                        .with_hint(if names.is_empty() {
                            format!("this token's team has no {what}; create one in Coolify or use a token of the right team")
                        } else {
                            format!(
                                "{what}s visible to this token: {}; fix the spec or create it in Coolify",
                                names.join(", ")
                            )
                        }),
                )
            }
            many => Err(ProviderError::new(
                P,
                format!("resolve {what}"),
                ErrorKind::AmbiguousMatch {
                    candidates: many.iter().map(|i| key(i).0.to_owned()).collect(),
                },
            )
            .with_message(format!("several {what}s are named {wanted:?}"))
            .with_hint(format!("name the {what} by its uuid in the spec"))),
        }
    }
}

fn singular(kind: AppKind) -> &'static str {
    match kind {
        AppKind::Application => "application",
        AppKind::Service => "service",
    }
}

fn str_field(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn split_domains(fqdn: &str) -> Vec<String> {
    fqdn.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `https://` in front of a bare host; trailing slashes removed.
fn normalize_domain(d: &str) -> String {
    let d = d.trim().trim_end_matches('/');
    if d.contains("://") {
        d.to_owned()
    } else {
        format!("https://{d}")
    }
}

/// The description Fabrik stores: the user's text, then the mark.
fn describe(desc: Option<&str>, mark: Option<&OwnershipMark>) -> String {
    match (desc.map(str::trim).filter(|d| !d.is_empty()), mark) {
        (Some(d), Some(m)) => format!("{d} | {}", m.to_text()),
        (None, Some(m)) => m.to_text(),
        (Some(d), None) => d.to_owned(),
        (None, None) => String::new(),
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
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

/// The request body of the create call for `desired`, and its path.
fn create_body(
    target: &ResolvedTarget,
    desired: &AppDesired,
    mark: &OwnershipMark,
) -> (Vec<&'static str>, Map<String, Value>) {
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
        AppSource::Compose {
            compose,
            public_service,
        } => {
            b.insert("docker_compose_raw".into(), json!(b64(compose)));
            if let Some(urls) = service_urls(desired, public_service.as_deref()) {
                b.insert("urls".into(), urls);
            }
            return (vec!["services"], b);
        }
        AppSource::OneClick { service_type } => {
            b.insert("type".into(), json!(service_type));
            if let Some(urls) = service_urls(desired, Some(service_type)) {
                b.insert("urls".into(), urls);
            }
            return (vec!["services"], b);
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
            // Coolify takes ports_exposes from EXPOSE and ignores the field.
            b.insert("dockerfile".into(), json!(b64(dockerfile)));
            vec!["applications", "dockerfile"]
        }
        AppSource::Git {
            repository,
            branch,
            build_pack,
        } => {
            b.insert("git_repository".into(), json!(repository));
            b.insert("git_branch".into(), json!(branch));
            b.insert("build_pack".into(), json!(build_pack.as_str()));
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
    if !desired.domains.is_empty() && !compose_git {
        let d: Vec<String> = desired
            .domains
            .iter()
            .map(|d| normalize_domain(d))
            .collect();
        b.insert("domains".into(), json!(d.join(",")));
    }
    if let Some(h) = &desired.health {
        b.insert("health_check_enabled".into(), json!(true));
        b.insert("health_check_path".into(), json!(h.path));
        if let Some(p) = h.port {
            b.insert("health_check_port".into(), json!(p.to_string()));
        }
        if let Some(i) = h.interval {
            b.insert("health_check_interval".into(), json!(i));
        }
    }
    (path, b)
}

/// A service's domains, as `POST /services` takes them: `[{name, url}]`
/// where `name` is the compose service that receives them and `url` the
/// comma-separated list. `None` when there is nothing to route.
fn service_urls(desired: &AppDesired, service: Option<&str>) -> Option<Value> {
    let service = service?;
    if desired.domains.is_empty() {
        return None;
    }
    let url: Vec<String> = desired
        .domains
        .iter()
        .map(|d| normalize_domain(d))
        .collect();
    Some(json!([{"name": service, "url": url.join(",")}]))
}

/// The PATCH body that turns `current` into `desired`, and the names of the
/// changed fields.
fn update_body(
    kind: AppKind,
    current: &Value,
    desired: &AppDesired,
) -> Result<Map<String, Value>, String> {
    let mut p = Map::new();
    let cur = |k: &str| str_field(current, k);
    fn set(p: &mut Map<String, Value>, k: &str, want: Value, have: Option<Value>) {
        if have.as_ref() != Some(&want) {
            p.insert(k.to_owned(), want);
        }
    }
    set(
        &mut p,
        "name",
        json!(desired.name),
        cur("name").map(Value::String),
    );
    let current_desc = cur("description");
    let mark = current_desc.as_deref().and_then(OwnershipMark::parse);
    let want_desc = describe(desired.description.as_deref(), mark.as_ref());
    set(
        &mut p,
        "description",
        json!(want_desc),
        Some(json!(current_desc.unwrap_or_default())),
    );
    if kind == AppKind::Service {
        if let AppSource::Compose { compose, .. } = &desired.source
            && cur("docker_compose_raw").as_deref().map(str::trim) != Some(compose.trim())
        {
            p.insert("docker_compose_raw".into(), json!(b64(compose)));
        }
        // Domains of a service live on its containers (`urls`). Coolify's
        // read of a service does not always echo them back in that form, so
        // they are sent whenever they cannot be seen to match.
        let public = match &desired.source {
            AppSource::Compose { public_service, .. } => public_service.as_deref(),
            AppSource::OneClick { service_type } => Some(service_type.as_str()),
            _ => None,
        };
        if let Some(urls) = service_urls(desired, public)
            && current.get("urls") != Some(&urls)
        {
            p.insert("urls".into(), urls);
        }
        return Ok(p);
    }
    let build_pack = cur("build_pack").unwrap_or_default();
    match &desired.source {
        AppSource::DockerImage { image, tag } => {
            if build_pack != "dockerimage" && !build_pack.is_empty() {
                return Err(format!(
                    "the application is built with {build_pack:?}, the spec asks for a docker image"
                ));
            }
            set(
                &mut p,
                "docker_registry_image_name",
                json!(image),
                cur("docker_registry_image_name").map(Value::String),
            );
            set(
                &mut p,
                "docker_registry_image_tag",
                json!(tag.as_deref().unwrap_or("latest")),
                cur("docker_registry_image_tag").map(Value::String),
            );
        }
        AppSource::Dockerfile { dockerfile } => {
            if build_pack != "dockerfile" && !build_pack.is_empty() {
                return Err(format!(
                    "the application is built with {build_pack:?}, the spec asks for a Dockerfile"
                ));
            }
            // Hidden without read:sensitive: then it is always sent.
            if cur("dockerfile").as_deref().map(str::trim) != Some(dockerfile.trim()) {
                p.insert("dockerfile".into(), json!(b64(dockerfile)));
            }
        }
        AppSource::Git {
            repository,
            branch,
            build_pack: bp,
        } => {
            if build_pack == "dockerimage" {
                return Err(
                    "the application runs a docker image, the spec asks for a git build".into(),
                );
            }
            set(
                &mut p,
                "git_repository",
                json!(repository),
                cur("git_repository").map(Value::String),
            );
            set(
                &mut p,
                "git_branch",
                json!(branch),
                cur("git_branch").map(Value::String),
            );
            set(
                &mut p,
                "build_pack",
                json!(bp.as_str()),
                Some(json!(build_pack)),
            );
        }
        AppSource::Compose { .. } | AppSource::OneClick { .. } => {
            return Err("the spec asks for a service, the remote is an application".into());
        }
    }
    let compose_git = build_pack == "dockercompose";
    if !compose_git {
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
            p.insert("domains".into(), json!(list.join(",")));
        }
    }
    if let (Some(ports), false) = (
        ports(desired),
        matches!(desired.source, AppSource::Dockerfile { .. }),
    ) {
        set(
            &mut p,
            "ports_exposes",
            json!(ports),
            cur("ports_exposes").map(Value::String),
        );
    }
    if let Some(h) = &desired.health {
        set(
            &mut p,
            "health_check_enabled",
            json!(true),
            current.get("health_check_enabled").cloned(),
        );
        set(
            &mut p,
            "health_check_path",
            json!(h.path),
            cur("health_check_path").map(Value::String),
        );
        if let Some(port) = h.port {
            set(
                &mut p,
                "health_check_port",
                json!(port.to_string()),
                cur("health_check_port").map(Value::String),
            );
        }
        if let Some(i) = h.interval {
            set(
                &mut p,
                "health_check_interval",
                json!(i),
                current.get("health_check_interval").cloned(),
            );
        }
    }
    Ok(p)
}

#[derive(Debug, Deserialize)]
struct VNamed {
    uuid: String,
    name: String,
}

#[derive(Debug, Deserialize)]
struct VDestination {
    uuid: String,
    name: String,
    #[serde(default)]
    server_uuid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VCreated {
    uuid: String,
}

#[derive(Debug, Deserialize)]
struct VEnvVar {
    uuid: String,
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    is_preview: bool,
    #[serde(default)]
    is_literal: bool,
    #[serde(default)]
    is_multiline: bool,
}

#[derive(Debug, Deserialize)]
struct VDeployReply {
    #[serde(default)]
    deployments: Vec<VDeployItem>,
}

#[derive(Debug, Deserialize)]
struct VDeployItem {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    resource_uuid: Option<String>,
    #[serde(default)]
    deployment_uuid: Option<String>,
}

#[derive(Debug, Deserialize)]
struct VDeployment {
    deployment_uuid: String,
    status: String,
    #[serde(default)]
    deployment_url: Option<String>,
    #[serde(default)]
    commit: Option<String>,
}

#[async_trait]
impl AppHost for CoolifyClient {
    async fn preflight(&self, target: &Target) -> Result<ResolvedTarget, ProviderError> {
        let version = self.server_version().await?;
        let projects: Vec<VNamed> = self.get("list projects", &["projects"]).await?;
        let project = self.pick("project", &target.project, &projects, |p| {
            (p.uuid.as_str(), p.name.as_str())
        })?;
        let envs: Vec<VNamed> = self
            .get(
                "list environments",
                &["projects", &project.uuid, "environments"],
            )
            .await?;
        let env = self.pick("environment", &target.environment, &envs, |e| {
            (e.uuid.as_str(), e.name.as_str())
        })?;
        let servers: Vec<VNamed> = self.get("list servers", &["servers"]).await?;
        let server = self.pick("server", &target.server, &servers, |s| {
            (s.uuid.as_str(), s.name.as_str())
        })?;
        let destination_uuid = if version.supports_tags() {
            let all: Vec<VDestination> = self.get("list destinations", &["destinations"]).await?;
            let mine: Vec<VDestination> = all
                .into_iter()
                .filter(|d| d.server_uuid.as_deref().is_none_or(|s| s == server.uuid))
                .collect();
            match &target.destination {
                Some(wanted) => Some(
                    self.pick("destination", wanted, &mine, |d| {
                        (d.uuid.as_str(), d.name.as_str())
                    })?
                    .uuid
                    .clone(),
                ),
                None if mine.len() > 1 => {
                    return Err(ProviderError::new(
                        P,
                        "resolve destination",
                        ErrorKind::AmbiguousMatch {
                            candidates: mine.iter().map(|d| d.uuid.clone()).collect(),
                        },
                    )
                    .with_message(format!(
                        "server {:?} has {} destinations",
                        server.name,
                        mine.len()
                    ))
                    .with_hint(format!(
                        "name one in the spec: {}",
                        mine.iter()
                            .map(|d| d.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                None => None,
            }
        } else {
            target.destination.clone()
        };
        self.probe_abilities().await?;
        Ok(ResolvedTarget {
            version,
            project_uuid: project.uuid.clone(),
            project_name: project.name.clone(),
            environment_uuid: env.uuid.clone(),
            environment_name: env.name.clone(),
            server_uuid: server.uuid.clone(),
            server_name: server.name.clone(),
            destination_uuid,
        })
    }

    async fn find_app(
        &self,
        target: &ResolvedTarget,
        lookup: &AppLookup,
    ) -> Result<Option<RemoteApp>, ProviderError> {
        if let Some(uuid) = &lookup.uuid {
            match self.read_app(lookup.kind, uuid).await {
                Ok(v) => return Ok(Self::remote_app(lookup.kind, &v)),
                // Deleted outside Fabrik: look for it by name and mark.
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let env: Value = self
            .get(
                "list environment resources",
                &["projects", &target.project_uuid, &target.environment_uuid],
            )
            .await?;
        let key = match lookup.kind {
            AppKind::Application => "applications",
            AppKind::Service => "services",
        };
        let owned: Vec<RemoteApp> = env
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|v| Self::remote_app(lookup.kind, v))
            .filter(|a| {
                a.name == lookup.name
                    && a.mark
                        .as_ref()
                        .is_some_and(|m| m.deployment == lookup.deployment)
            })
            .collect();
        match owned.as_slice() {
            [] => Ok(None),
            [one] => {
                // Confirm with a direct read (the listing may lag a delete).
                match self.read_app(lookup.kind, &one.uuid).await {
                    Ok(v) => Ok(Self::remote_app(lookup.kind, &v)),
                    Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(e),
                }
            }
            many => Err(ProviderError::new(
                P,
                format!("find {}", singular(lookup.kind)),
                ErrorKind::AmbiguousMatch {
                    candidates: many.iter().map(|a| a.uuid.clone()).collect(),
                },
            )
            .with_message(format!(
                "{} {}s named {:?} carry the mark of deployment {}",
                many.len(),
                singular(lookup.kind),
                lookup.name,
                lookup.deployment
            ))
            .with_hint("delete the duplicates in Coolify (keep one), then run the command again")),
        }
    }

    async fn create_app(
        &self,
        target: &ResolvedTarget,
        desired: &AppDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteApp, ProviderError> {
        let kind = desired.source.kind();
        let (path, body) = create_body(target, desired, mark);
        let op = format!("create {}", singular(kind));
        let req = Request::new(Method::POST, op.clone(), &path).json(&Value::Object(body));
        let (resp, req) = self.send(req).await?;
        let created: VCreated = resp.json(&self.http, &req)?;
        // The create is made: a failure of the read-back leaves it existing.
        match self.read_app(kind, &created.uuid).await {
            Ok(v) => Self::remote_app(kind, &v).ok_or_else(|| {
                ProviderError::new(P, op.clone(), ErrorKind::MalformedResponse)
                    .with_message("the created resource has no uuid")
                    .with_created(created.uuid.clone())
            }),
            Err(e) if e.kind == ErrorKind::NotFound => {
                Err(ProviderError::new(P, op, ErrorKind::NotFound)
                    .with_message(format!(
                        "coolify answered 201 with uuid {} but the {} cannot be read back",
                        created.uuid,
                        singular(kind)
                    ))
                    .with_hint("check the Coolify logs; the create failed after it was accepted"))
            }
            Err(e) => Err(e.with_created(created.uuid)),
        }
    }

    async fn update_app(
        &self,
        app: &RemoteApp,
        desired: &AppDesired,
    ) -> Result<Vec<String>, ProviderError> {
        let current = self.read_app(app.kind, &app.uuid).await?;
        let patch = update_body(app.kind, &current, desired).map_err(|msg| {
            ProviderError::new(
                P,
                format!("update {}", singular(app.kind)),
                ErrorKind::Unsupported,
            )
            .with_message(msg)
            .with_hint(
                "coolify cannot change how an application is built; delete it and apply again",
            )
        })?;
        if patch.is_empty() {
            return Ok(Vec::new());
        }
        let changed: Vec<String> = patch.keys().cloned().collect();
        let req = Request::new(
            Method::PATCH,
            format!("update {}", singular(app.kind)),
            &[app.kind.collection(), &app.uuid],
        )
        .json(&Value::Object(patch));
        self.http.send(&req).await?;
        Ok(changed)
    }

    async fn reconcile_env(
        &self,
        app: &RemoteApp,
        env: &[EnvVarDesired],
    ) -> Result<EnvDiff, ProviderError> {
        let col = app.kind.collection();
        let mut seen = BTreeSet::new();
        for d in env {
            if !seen.insert((d.key.as_str(), d.is_preview)) {
                return Err(ProviderError::new(
                    P,
                    "reconcile environment variables",
                    ErrorKind::Validation {
                        fields: vec![FieldError {
                            field: d.key.clone(),
                            messages: vec!["declared twice".into()],
                        }],
                    },
                )
                .with_message(format!("{} is declared twice", d.key)));
            }
        }
        let remote: Vec<VEnvVar> = self
            .get("list environment variables", &[col, &app.uuid, "envs"])
            .await?;
        let by_id: HashMap<(String, bool), &VEnvVar> = remote
            .iter()
            .map(|r| ((r.key.clone(), r.is_preview), r))
            .collect();
        let mut diff = EnvDiff::default();
        let mut upsert = Vec::new();
        let mut secrets = Scrubber::new();
        for d in env {
            if let EnvValue::Secret(s) = &d.value {
                secrets.add(s);
            }
            let label = if d.is_preview {
                format!("{} (preview)", d.key)
            } else {
                d.key.clone()
            };
            match by_id.get(&(d.key.clone(), d.is_preview)) {
                None => diff.created.push(label),
                Some(r) => match &r.value {
                    None => diff.unverified.push(label),
                    Some(v)
                        if v == d.value.expose()
                            && r.is_literal == d.is_literal
                            && r.is_multiline == d.is_multiline =>
                    {
                        diff.unchanged.push(label);
                        continue;
                    }
                    Some(_) => diff.updated.push(label),
                },
            }
            upsert.push(json!({
                "key": d.key,
                "value": d.value.expose(),
                "is_preview": d.is_preview,
                "is_literal": d.is_literal,
                "is_multiline": d.is_multiline,
            }));
        }
        if !upsert.is_empty() {
            // Bulk is an upsert (single POST would 409 on existing keys). It
            // is not transactional: a 422 leaves earlier items saved, and a
            // rerun converges.
            let req = Request::new(
                Method::PATCH,
                "update environment variables",
                &[col, &app.uuid, "envs", "bulk"],
            )
            .json(&json!({ "data": upsert }))
            .secrets(secrets);
            self.http.send(&req).await?;
        }
        let wanted: BTreeSet<(&str, bool)> =
            env.iter().map(|d| (d.key.as_str(), d.is_preview)).collect();
        for r in &remote {
            if wanted.contains(&(r.key.as_str(), r.is_preview)) {
                continue;
            }
            // Coolify manages these for compose services and refuses to
            // delete them while the compose file references them.
            if app.kind == AppKind::Service
                && (r.key.starts_with("SERVICE_FQDN_") || r.key.starts_with("SERVICE_URL_"))
            {
                continue;
            }
            let req = Request::new(
                Method::DELETE,
                "delete environment variable",
                &[col, &app.uuid, "envs", &r.uuid],
            );
            match self.http.send(&req).await {
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            diff.deleted.push(if r.is_preview {
                format!("{} (preview)", r.key)
            } else {
                r.key.clone()
            });
        }
        Ok(diff)
    }

    async fn deploy(&self, app: &RemoteApp, force: bool) -> Result<DeploymentRef, ProviderError> {
        let req = Request::new(Method::POST, "deploy", &["deploy"])
            .query("uuid", app.uuid.clone())
            .query("force", if force { "true" } else { "false" });
        let (resp, req) = self.send(req).await?;
        let reply: VDeployReply = resp.json(&self.http, &req)?;
        let item = reply
            .deployments
            .iter()
            .find(|d| d.resource_uuid.as_deref() == Some(app.uuid.as_str()))
            .or(reply.deployments.first());
        let Some(item) = item else {
            return Err(self
                .http
                .error(
                    &req,
                    ErrorKind::MalformedResponse,
                    Some(resp.status.as_u16()),
                )
                .with_message("the reply lists no deployment"));
        };
        if app.kind == AppKind::Service {
            return Ok(DeploymentRef {
                kind: app.kind,
                app_uuid: app.uuid.clone(),
                deployment_uuid: None,
                already_queued: false,
            });
        }
        let already = item
            .message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("already queued"));
        if already {
            // The uuid in this reply was never saved (404): use the running one.
            if let Some(mut active) = self.active_deployment(app).await? {
                active.already_queued = true;
                return Ok(active);
            }
            // It finished in between: the newest one is the one we meant.
            let newest = self.deployments_of(&app.uuid).await?.into_iter().next();
            return Ok(DeploymentRef {
                kind: app.kind,
                app_uuid: app.uuid.clone(),
                deployment_uuid: newest.map(|d| d.deployment_uuid),
                already_queued: true,
            });
        }
        match &item.deployment_uuid {
            Some(uuid) => Ok(DeploymentRef {
                kind: app.kind,
                app_uuid: app.uuid.clone(),
                deployment_uuid: Some(uuid.clone()),
                already_queued: false,
            }),
            None => Err(self
                .http
                .error(
                    &req,
                    ErrorKind::MalformedResponse,
                    Some(resp.status.as_u16()),
                )
                .with_message(format!(
                    "no deployment uuid in the reply: {}",
                    item.message.as_deref().unwrap_or("")
                ))),
        }
    }

    async fn active_deployment(
        &self,
        app: &RemoteApp,
    ) -> Result<Option<DeploymentRef>, ProviderError> {
        if app.kind == AppKind::Service {
            return Ok(None);
        }
        let list = self.deployments_of(&app.uuid).await?;
        Ok(list
            .into_iter()
            .find(|d| matches!(d.status.as_str(), "queued" | "in_progress"))
            .map(|d| DeploymentRef {
                kind: app.kind,
                app_uuid: app.uuid.clone(),
                deployment_uuid: Some(d.deployment_uuid),
                already_queued: false,
            }))
    }

    async fn deployment_status(
        &self,
        deployment: &DeploymentRef,
    ) -> Result<DeploymentStatus, ProviderError> {
        let Some(uuid) = &deployment.deployment_uuid else {
            // Services and databases keep no deployment row: read the status.
            let v = self.read_app(deployment.kind, &deployment.app_uuid).await?;
            let status = str_field(&v, "status").unwrap_or_default();
            let state = if status.starts_with("running") {
                DeploymentState::Finished
            } else {
                DeploymentState::InProgress
            };
            return Ok(DeploymentStatus {
                state,
                url: None,
                commit: None,
            });
        };
        match self
            .get::<VDeployment>("read deployment", &["deployments", uuid])
            .await
        {
            Ok(d) => Ok(self.status_of(d)),
            Err(e) if e.kind == ErrorKind::NotFound => {
                // A reply uuid that was never saved: find it in the app's list.
                let list = self.deployments_of(&deployment.app_uuid).await?;
                match list.into_iter().find(|d| &d.deployment_uuid == uuid) {
                    Some(d) => Ok(self.status_of(d)),
                    None => Err(e.with_hint(
                        "coolify has no such deployment; it may have skipped a duplicate deploy — run the command again",
                    )),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn wait_deployment(
        &self,
        deployment: &DeploymentRef,
        wait: WaitOptions,
        progress: Progress<'_>,
    ) -> Result<DeploymentStatus, ProviderError> {
        let start = tokio::time::Instant::now();
        loop {
            let status = self.deployment_status(deployment).await?;
            progress(&status, start.elapsed());
            if status.state.is_terminal() {
                return Ok(status);
            }
            if start.elapsed() + wait.poll_interval > wait.timeout {
                let id = deployment
                    .deployment_uuid
                    .as_deref()
                    .unwrap_or(&deployment.app_uuid);
                let mut msg = format!(
                    "deployment {id} still {} after {}s",
                    status.state,
                    wait.timeout.as_secs()
                );
                if let Some(url) = &status.url {
                    msg.push_str(&format!(" ({url})"));
                }
                return Err(ProviderError::new(
                    P,
                    "wait for deployment",
                    ErrorKind::DeadlineExceeded {
                        after: wait.timeout,
                    },
                )
                .with_message(msg)
                .with_hint(
                    "coolify never times out stuck deployments: check the build server's load and queue, cancel the deployment in Coolify if it is stuck, then run fabrik resume",
                ));
            }
            tokio::time::sleep(wait.poll_interval).await;
        }
    }

    async fn delete_app(
        &self,
        kind: AppKind,
        uuid: &str,
        wait: Option<WaitOptions>,
    ) -> Result<DeleteOutcome, ProviderError> {
        let mut req = Request::new(
            Method::DELETE,
            format!("delete {}", singular(kind)),
            &[kind.collection(), uuid],
        );
        for flag in [
            "delete_configurations",
            "delete_volumes",
            "docker_cleanup",
            "delete_connected_networks",
        ] {
            req = req.query(flag, "true");
        }
        match self.http.send(&req).await {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Ok(DeleteOutcome { already_gone: true });
            }
            Err(e) => return Err(e),
        }
        if let Some(wait) = wait {
            self.poll_gone(kind, uuid, wait).await?;
        }
        Ok(DeleteOutcome {
            already_gone: false,
        })
    }

    async fn list_owned(&self) -> Result<Vec<OwnedRemote>, ProviderError> {
        let mut out = Vec::new();
        for kind in [AppKind::Application, AppKind::Service] {
            let list: Vec<Value> = self
                .get(&format!("list {}s", singular(kind)), &[kind.collection()])
                .await?;
            for v in &list {
                if let Some(app) = Self::remote_app(kind, v)
                    && let Some(mark) = app.mark
                {
                    out.push(OwnedRemote {
                        kind,
                        uuid: app.uuid,
                        name: app.name,
                        mark,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Coolify's error bodies: `{message, errors?, error?, conflicts?}`.
fn classify(resp: &Response, scrubber: &Scrubber) -> Failure {
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let message = body
        .as_ref()
        .and_then(|b| b.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let status = resp.status.as_u16();
    let text = message
        .clone()
        .unwrap_or_else(|| http::excerpt(scrubber, &resp.body));
    let mut kind = http::kind_for_status(resp.status, &resp.headers);
    let mut message_out = text.clone();
    let hint: Option<String> = match status {
        400 if text.starts_with("Invalid token") => {
            kind = ErrorKind::Unauthorized;
            Some(token_hint())
        }
        400 => {
            if let Some(e) = body.as_ref().and_then(|b| b.get("error")).and_then(Value::as_str) {
                message_out = format!("{text} {e}");
            }
            Some("coolify rejected the request; the message says which parameter".into())
        }
        401 => Some(token_hint()),
        403 => {
            let (reason, hint) = if text.contains("API is disabled") {
                (
                    ForbiddenReason::ApiDisabled,
                    "the Coolify API is off by default: enable it in Settings → Advanced (\"API Access\"), or call POST /api/v1/enable with a root token".to_owned(),
                )
            } else if text.contains("not allowed to access the API") {
                (
                    ForbiddenReason::IpNotAllowed,
                    "this machine's IP address is not in Coolify's allow-list: add it in Settings → Advanced (0.0.0.0 allows every address)".to_owned(),
                )
            } else if let Some(ab) = text.strip_prefix("Missing required permissions:") {
                let ability = ab.trim().trim_end_matches('.').to_owned();
                (
                    ForbiddenReason::MissingPermission {
                        ability: Some(ability.clone()),
                    },
                    format!(
                        "the token lacks the {ability} permission: create a token with root, or read + write + deploy, under Keys & Tokens → API tokens (write and deploy tokens must belong to a team admin or owner)"
                    ),
                )
            } else {
                (
                    ForbiddenReason::Denied,
                    "coolify's policy denied the action; the token's user must be an admin or owner of the team".to_owned(),
                )
            };
            kind = ErrorKind::Forbidden(reason);
            Some(hint)
        }
        404 => Some(
            "the resource does not exist in this token's team; check the name or uuid, and that the token belongs to the right team".into(),
        ),
        405 => Some(
            "coolify refused the method; POST became GET? use the https:// URL of Coolify so no redirect happens".into(),
        ),
        409 => {
            let conflicts: Vec<String> = body
                .as_ref()
                .and_then(|b| b.get("conflicts"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    let d = c.get("domain")?.as_str()?;
                    let r = c.get("resource_name").and_then(Value::as_str).unwrap_or("?");
                    Some(format!("{d} (used by {r})"))
                })
                .collect();
            if !conflicts.is_empty() {
                message_out = format!("{text} {}", conflicts.join(", "));
                Some("another resource already serves this domain: change the domains in the spec or remove them from the other resource".into())
            } else {
                Some("it already exists; fabrik updates existing resources instead of creating them".into())
            }
        }
        422 => {
            let fields = field_errors(body.as_ref(), scrubber);
            if !fields.is_empty() {
                let list: Vec<String> = fields
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.messages.join(" ")))
                    .collect();
                message_out = format!("{text} {}", list.join("; "));
            }
            kind = ErrorKind::Validation { fields };
            Some("coolify rejected a field: the messages name it; a field \"not allowed\" means this Coolify version does not know it".into())
        }
        429 => Some(if text.contains("queue is full") {
            "the server's deployment queue is full; wait for running deployments or raise the queue limit in the server settings".into()
        } else {
            "coolify's rate limit was hit (API_RATE_LIMIT, 200 per minute by default); wait and retry".into()
        }),
        300..=399 => {
            let to = resp
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url::Url::parse(l).ok())
                .map(|u| http::origin(&u))
                .unwrap_or_else(|| "another address".into());
            message_out = format!("redirected to {to}");
            Some(format!(
                "set COOLIFY_URL to the final address ({to}); a redirect can turn a POST into a GET"
            ))
        }
        s if s >= 500 => Some("coolify failed internally; check its logs (Laravel) if this persists".into()),
        _ => None,
    };
    Failure {
        kind,
        code: None,
        message: scrubber.scrub(&message_out),
        hint,
    }
}

fn token_hint() -> String {
    "check COOLIFY_TOKEN: send the whole token including its numeric prefix (12|…); it may have expired or belong to another team".into()
}

/// `errors` values may be a list of strings or one string.
fn field_errors(body: Option<&Value>, scrubber: &Scrubber) -> Vec<FieldError> {
    let Some(Value::Object(errors)) = body.and_then(|b| b.get("errors")) else {
        return Vec::new();
    };
    let sorted: BTreeMap<&String, &Value> = errors.iter().collect();
    sorted
        .into_iter()
        .map(|(field, v)| FieldError {
            field: field.clone(),
            messages: match v {
                Value::String(s) => vec![scrubber.scrub(s)],
                Value::Array(a) => a
                    .iter()
                    .map(|m| scrubber.scrub(m.as_str().unwrap_or(&m.to_string())))
                    .collect(),
                other => vec![scrubber.scrub(&other.to_string())],
            },
        })
        .collect()
}

/// What a deploy poll waits between reads by default.
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::DeploymentId;

    fn mark() -> OwnershipMark {
        OwnershipMark::new(
            DeploymentId::new("blog").unwrap(),
            "01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap(),
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
        let p = update_body(
            AppKind::Application,
            &current,
            &app(AppSource::DockerImage {
                image: "nginx".into(),
                tag: Some("2".into()),
            }),
        )
        .unwrap();
        assert_eq!(
            p.keys().collect::<Vec<_>>(),
            vec!["docker_registry_image_tag"]
        );
    }

    #[test]
    fn version_gates_tags() {
        assert!(ServerVersion::parse("4.3.11").unwrap().supports_tags());
        assert!(ServerVersion::parse("v4.2.0").unwrap().supports_tags());
        assert!(!ServerVersion::parse("4.1.2").unwrap().supports_tags());
        assert!(
            !ServerVersion::parse("4.2.0-beta.1")
                .unwrap()
                .supports_tags()
        );
        assert!(
            !ServerVersion::parse("4.0.0-beta.474")
                .unwrap()
                .supports_tags()
        );
        assert_eq!(ServerVersion::parse("nope"), None);
    }
}
