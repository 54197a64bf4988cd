//! [`AppHost`] on Coolify v4 (`/api/v1`), true to what the controllers do
//! (read at coollabsio/coolify 379abb25 = 4.3.11, and at v4.0.0-beta.474,
//! 4.1.0, 4.2.0 and 4.3.10 where they differ), not only to the OpenAPI file.
//!
//! Quirks this client handles (the file and line each follows is cited
//! where the code does it; `AC` is `ApplicationsController.php`, `SC`
//! `ServicesController.php`, `ADJ` `ApplicationDeploymentJob.php`):
//! - every create goes out without `instant_deploy` effects (`false`) and is
//!   read back, because a 201 can precede a 404;
//! - the OpenAPI demands `environment_name` *and* `environment_uuid`, the
//!   server one of them: both are sent, resolved in preflight, where a
//!   name is matched as Coolify stores it (lower-cased);
//! - a github.com repository is stored as `owner/repo` on create and as
//!   sent on PATCH: it is compared and PATCHed in that form
//!   ([`body::stored_repository`]);
//! - an inline Dockerfile app gets port 80 whatever is sent, and its
//!   Dockerfile can never be PATCHed: the port is PATCHed after the create,
//!   the Dockerfile compared with the last apply (the engine replaces the
//!   app when it changed);
//! - a one-click service's domains go to the template's public container
//!   with its port; compose files are compared as data (Coolify
//!   re-serialises them); a service's domains are read from its containers;
//! - env vars are reconciled with list + bulk upsert + delete ([`env`]):
//!   values compared trimmed, preview copies kept in step, secrets kept out
//!   of builds, generated `SERVICE_*` variables never deleted;
//! - deploys use POST (GET is 405 from 4.2); an "already queued" reply names
//!   the app's queued or running deployment, and says whether it had
//!   started (then it deploys the old configuration);
//! - a service start is done when its containers, checked after the start,
//!   run (`starting:*`, stale statuses and `running:unhealthy` are not);
//! - 422 `errors` may be an object or a list;
//! - deletes are asynchronous: poll until 404.

mod body;
mod env;
mod log;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use self::body::{split_domains, str_field, without_port};
use super::error::{ErrorKind, FieldError, ForbiddenReason, ProviderError, ProviderName};
use super::http::{self, Failure, Http, HttpConfig, Request, Response};
use super::types::*;
use super::{AppHost, Progress};
use crate::ownership::OwnershipMark;
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
            // A website or login page that answers any path with 200.
            if let Some(form) = resp.non_json_form().filter(|f| *f == "an HTML page") {
                return self.http.not_the_service(
                    &req,
                    "COOLIFY_URL",
                    resp.status.as_u16(),
                    form,
                    "a version like 4.3.11 from /api/v1/version",
                );
            }
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
            .json(&serde_json::json!({ "description": "permission probe" }))
            .makes_stale(&[&["applications", PROBE]]),
            Request::new(Method::POST, "check the token may deploy", &["deploy"])
                .query("uuid", PROBE)
                .idempotent(true)
                .makes_stale(&[&["applications", PROBE]]),
        ];
        // Both at once: neither needs the other's answer.
        let [write, deploy] = probes.map(|req| async move { self.http.send(&req).await });
        let (write, deploy) = tokio::join!(write, deploy);
        for sent in [write, deploy] {
            match sent {
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
        // A Service has no `fqdn`: its domains are its containers' URLs,
        // shown (with the container port) by the single read only.
        let domains = match kind {
            AppKind::Application => str_field(v, "fqdn")
                .map(|f| split_domains(&f))
                .unwrap_or_default(),
            AppKind::Service => v
                .get("applications")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| str_field(c, "fqdn"))
                .flat_map(|f| split_domains(&f))
                .map(|u| without_port(&u))
                .collect(),
        };
        Some(RemoteApp {
            kind,
            name: str_field(v, "name").unwrap_or_default(),
            mark: description.as_deref().and_then(OwnershipMark::parse),
            description,
            domains,
            status: str_field(v, "status"),
            uuid,
        })
    }

    /// The app's env vars as Coolify lists them.
    /// The app's env vars; read once per run until something is written.
    async fn env_of(&self, app: &RemoteApp) -> Result<Vec<env::VEnvVar>, ProviderError> {
        let req = Request::new(
            Method::GET,
            "list environment variables",
            &[app.kind.collection(), &app.uuid, "envs"],
        )
        .reusable();
        let (resp, req) = self.send(req).await?;
        resp.json(&self.http, &req)
    }

    /// Where an app's env vars live. Coolify generates `SERVICE_*` variables
    /// for services and compose applications; Fabrik makes compose files
    /// services, never compose applications.
    fn env_target(&self, app: &RemoteApp) -> env::EnvTarget {
        env::EnvTarget {
            kind: app.kind,
            generates: app.kind == AppKind::Service,
            scopes: self.known_version().is_none_or(|v| v.supports_env_scopes()),
        }
    }

    /// The app as Coolify has it; read once per run until something is
    /// written (the lookup, the drift check and the update share it).
    async fn read_app(&self, kind: AppKind, uuid: &str) -> Result<Value, ProviderError> {
        self.read_app_as(kind, uuid, true).await
    }

    async fn read_app_as(
        &self,
        kind: AppKind,
        uuid: &str,
        reusable: bool,
    ) -> Result<Value, ProviderError> {
        let mut req = Request::new(
            Method::GET,
            format!("read {}", singular(kind)),
            &[kind.collection(), uuid],
        );
        if reusable {
            req = req.reusable();
        }
        let (resp, req) = self.send(req).await?;
        resp.json(&self.http, &req)
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
        let mut pauses = wait.pauses();
        // Coolify deletes in a background job: the app is still there the
        // moment the DELETE is answered, so the first look waits a little.
        tokio::time::sleep(pauses.next().unwrap_or(wait.poll_interval)).await;
        loop {
            // Asked anew each time.
            match self.read_app_as(kind, uuid, false).await {
                Err(e) if e.kind == ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            let pause = pauses.next().unwrap_or(wait.poll_interval);
            if start.elapsed() + pause > wait.timeout {
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
            tokio::time::sleep(pause).await;
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

/// An environment name as Coolify stores it: `Environment::customizeName()`
/// lower-cases and trims it and turns `/` into `-`
/// (`app/Models/Environment.php:143-146 @4.3.11`; lookups are exact,
/// `AC:1300`).
fn environment_name(name: &str) -> String {
    name.trim().to_lowercase().replace('/', "-")
}

/// Whether `s` looks like a Coolify uuid (cuid2-like: lower-case letters
/// and digits, at least 20 of them).
fn looks_like_uuid(s: &str) -> bool {
    s.len() >= 20
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
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

#[derive(Debug, Clone, Deserialize)]
struct VDeployment {
    deployment_uuid: String,
    status: String,
    #[serde(default)]
    deployment_url: Option<String>,
    #[serde(default)]
    commit: Option<String>,
    #[serde(default)]
    pull_request_id: Option<i64>,
}

/// What a service's status says about a start, read as Coolify computes it
/// (`app/Models/Service.php:151-276`, `ContainerStatusAggregator`): while
/// the start runs, `starting:*`; the containers' statuses are only as new
/// as the last status check, so one from before the start proves nothing.
#[derive(Debug, Default)]
struct ServiceWatch {
    /// The newest status check seen while the start ran (or at the first
    /// read): only checks after it count.
    before: Option<String>,
    /// Consecutive reads that found the service up after `before`.
    good: u32,
    /// When it was first seen `running:unhealthy` after `before`.
    unhealthy_since: Option<tokio::time::Instant>,
}

/// How long a service may stay `running:unhealthy` after its start before
/// the start counts as failed.
const UNHEALTHY_GRACE: Duration = Duration::from_secs(120);

impl CoolifyClient {
    /// The version read by preflight, if it ran.
    fn known_version(&self) -> Option<ServerVersion> {
        self.version.lock().ok().and_then(|v| v.clone())
    }

    fn refusal(&self, op: &str, r: body::Refusal) -> ProviderError {
        match r {
            body::Refusal::OtherBuild(msg) => {
                ProviderError::new(P, op.to_owned(), ErrorKind::Unsupported)
                    .with_message(msg)
                    .with_hint(
                        "coolify cannot change how an application is built; delete it and apply again",
                    )
            }
            body::Refusal::DockerfileChanged => {
                ProviderError::new(P, op.to_owned(), ErrorKind::Unsupported)
                    .with_message(
                        "coolify cannot change an inline Dockerfile: `dockerfile` is in no PATCH allow-list",
                    )
                    .with_hint("fabrik replaces the application to change its Dockerfile")
            }
            body::Refusal::Unsupported(msg) => {
                ProviderError::new(P, op.to_owned(), ErrorKind::Unsupported).with_message(msg)
            }
        }
    }

    /// The status of a service start (see [`ServiceWatch`]).
    async fn service_status(
        &self,
        deployment: &DeploymentRef,
        watch: &mut ServiceWatch,
    ) -> Result<DeploymentStatus, ProviderError> {
        // Polled: asked anew each time.
        let v = self
            .read_app_as(AppKind::Service, &deployment.app_uuid, false)
            .await?;
        let status = str_field(&v, "status").unwrap_or_default();
        let checked = v
            .get("applications")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .chain(
                v.get("databases")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            )
            .map(|c| {
                str_field(c, "last_online_at")
                    .or_else(|| str_field(c, "updated_at"))
                    .unwrap_or_default()
            })
            .collect::<Vec<String>>();
        let newest = checked.iter().max().cloned();
        let oldest = checked.iter().min().cloned();
        let in_progress = DeploymentStatus {
            state: DeploymentState::InProgress,
            url: None,
            commit: None,
        };
        if status.starts_with("starting") || watch.before.is_none() {
            if newest > watch.before {
                watch.before = newest;
            }
            watch.good = 0;
            return Ok(in_progress);
        }
        // Statuses from a check before the start are stale.
        if oldest <= watch.before {
            return Ok(in_progress);
        }
        let (state, health) = status.split_once(':').unwrap_or((status.as_str(), ""));
        let done = |state| DeploymentStatus {
            state,
            url: None,
            commit: None,
        };
        match (state, health) {
            ("running", "healthy" | "unknown") => {
                watch.good += 1;
                watch.unhealthy_since = None;
                Ok(if watch.good >= 2 {
                    done(DeploymentState::Finished)
                } else {
                    in_progress
                })
            }
            ("running", _) => {
                watch.good = 0;
                let since = *watch
                    .unhealthy_since
                    .get_or_insert_with(tokio::time::Instant::now);
                Ok(if since.elapsed() >= UNHEALTHY_GRACE {
                    done(DeploymentState::Failed)
                } else {
                    in_progress
                })
            }
            ("exited" | "degraded" | "restarting" | "dead", _) => Ok(done(DeploymentState::Failed)),
            _ => {
                watch.good = 0;
                Ok(in_progress)
            }
        }
    }
}

#[async_trait]
impl AppHost for CoolifyClient {
    /// The lookups that do not depend on each other go out at once, in two
    /// rounds (the version, projects, servers and the ability probes; then
    /// the project's environments and the destinations): the same requests
    /// as one after another, in two round trips instead of seven. What is
    /// wrong is reported in the order the lookups depend on each other.
    async fn preflight(&self, target: &Target) -> Result<ResolvedTarget, ProviderError> {
        let (version, projects, servers, abilities) = tokio::join!(
            self.server_version(),
            self.get::<Vec<VNamed>>("list projects", &["projects"]),
            self.get::<Vec<VNamed>>("list servers", &["servers"]),
            self.probe_abilities(),
        );
        let version = version?;
        let projects = projects?;
        let project = self.pick("project", &target.project, &projects, |p| {
            (p.uuid.as_str(), p.name.as_str())
        })?;
        let servers = servers?;
        let server = self.pick("server", &target.server, &servers, |s| {
            (s.uuid.as_str(), s.name.as_str())
        });
        let destinations = async {
            match (&server, version.supports_tags()) {
                (Ok(_), true) => Some(
                    self.get::<Vec<VDestination>>("list destinations", &["destinations"])
                        .await,
                ),
                _ => None,
            }
        };
        let envs_path = ["projects", project.uuid.as_str(), "environments"];
        let (envs, destinations) = tokio::join!(
            self.get::<Vec<VNamed>>("list environments", &envs_path),
            destinations
        );
        let envs = envs?;
        let env = match envs.iter().find(|e| e.uuid == target.environment) {
            Some(e) => e,
            None => self.pick(
                "environment",
                &environment_name(&target.environment),
                &envs,
                |e| (e.uuid.as_str(), e.name.as_str()),
            )?,
        };
        let server = server?;
        let destination_uuid = if let Some(all) = destinations {
            let all = all?;
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
            // Before 4.2 there is no route to list destinations, and the
            // create matches `destination_uuid` by uuid only
            // (`AC:1009-1020 @4.1.0`): a name would be refused half-way.
            match &target.destination {
                Some(d) if !looks_like_uuid(d) => {
                    return Err(ProviderError::new(
                        P,
                        "resolve destination",
                        ErrorKind::Unsupported,
                    )
                    .with_message(format!(
                        "coolify {version} cannot look a destination up by name ({d:?})"
                    ))
                    .with_hint(
                        "name the destination by its uuid (`destination: {uuid: ...}`), shown in Coolify under Servers → Destinations",
                    ));
                }
                other => other.clone(),
            }
        };
        abilities?;
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
            // Its env vars are read beside: what looks an application up
            // by uuid (a drift check, an update) compares them next.
            let known = RemoteApp::known(lookup.kind, uuid);
            let (read, _) = tokio::join!(self.read_app(lookup.kind, uuid), self.env_of(&known));
            match read {
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
        let op = format!("create {}", singular(kind));
        let (path, body) =
            body::create_body(target, desired, mark).map_err(|r| self.refusal(&op, r))?;
        // A new uuid: no read made before is about it.
        let req = Request::new(Method::POST, op.clone(), &path)
            .json(&Value::Object(body))
            .makes_stale(&[]);
        let (resp, req) = self.send(req).await?;
        let created: VCreated = resp.json(&self.http, &req)?;
        // The create is made: a failure after it leaves it existing. Read
        // back, and its env vars read beside (the env reconcile that
        // follows asks for them; Coolify may have made some).
        let fresh = RemoteApp::known(kind, &created.uuid);
        let envs = async {
            if desired.reconciles_env() {
                let _ = self.env_of(&fresh).await;
            }
        };
        let (current, ()) = tokio::join!(self.read_app(kind, &created.uuid), envs);
        let current = match current {
            Ok(v) => v,
            Err(e) if e.kind == ErrorKind::NotFound => {
                return Err(ProviderError::new(P, op, ErrorKind::NotFound)
                    .with_message(format!(
                        "coolify answered 201 with uuid {} but the {} cannot be read back",
                        created.uuid,
                        singular(kind)
                    ))
                    .with_hint("check the Coolify logs; the create failed after it was accepted"));
            }
            Err(e) => return Err(e.with_created(created.uuid)),
        };
        let app = Self::remote_app(kind, &current).ok_or_else(|| {
            ProviderError::new(P, op.clone(), ErrorKind::MalformedResponse)
                .with_message("the created resource has no uuid")
                .with_created(created.uuid.clone())
        })?;
        // What the create ignored (a Dockerfile app's port, forced to 80).
        let fix = body::after_create(&current, desired);
        if !fix.is_empty() {
            let req = Request::new(
                Method::PATCH,
                format!("set the port of the new {}", singular(kind)),
                &[kind.collection(), &app.uuid],
            )
            .json(&Value::Object(fix))
            .makes_stale(&[&[kind.collection(), &app.uuid]]);
            self.http
                .send(&req)
                .await
                .map_err(|e| e.with_created(app.uuid.clone()))?;
        }
        Ok(app)
    }

    async fn update_app(
        &self,
        app: &RemoteApp,
        desired: &AppDesired,
        previous: Option<&AppDesired>,
    ) -> Result<Vec<String>, ProviderError> {
        let op = format!("update {}", singular(app.kind));
        let current = self.read_app(app.kind, &app.uuid).await?;
        let changes = body::changes(app.kind, &current, desired, previous)
            .map_err(|r| self.refusal(&op, r))?;
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let changed: Vec<String> = changes.iter().map(|c| c.field.clone()).collect();
        // An application's PATCH leaves its env vars alone
        // (`ApplicationsController.php:2780`, `update_by_uuid`, writes no
        // environment variable); a service's compose is parsed again,
        // which makes its `SERVICE_*` variables anew.
        let (col, uuid) = (app.kind.collection(), app.uuid.as_str());
        let stale: &[&[&str]] = match app.kind {
            AppKind::Application => &[&[col, uuid]],
            AppKind::Service => &[&[col, uuid], &[col, uuid, "envs"]],
        };
        let req = Request::new(Method::PATCH, op, &[col, uuid])
            .makes_stale(stale)
            .json(&Value::Object(body::patch_of(&changes)));
        self.http.send(&req).await?;
        Ok(changed)
    }

    async fn app_drift(
        &self,
        app: &RemoteApp,
        desired: &AppDesired,
        previous: Option<&AppDesired>,
    ) -> Result<Vec<crate::plan::Drift>, ProviderError> {
        let op = format!("check {}", singular(app.kind));
        // Independent reads: side by side.
        let (current, remote) = tokio::join!(self.read_app(app.kind, &app.uuid), self.env_of(app));
        let (current, remote) = (current?, remote?);
        let mut out: Vec<crate::plan::Drift> = body::changes(app.kind, &current, desired, previous)
            .map_err(|r| self.refusal(&op, r))?
            .into_iter()
            .map(|c| crate::plan::Drift {
                field: c.field,
                journal: Some(c.want),
                remote: c.have,
            })
            .collect();
        let plan = env::plan(self.env_target(app), &remote, &desired.env);
        let secret: BTreeSet<&str> = desired
            .env
            .iter()
            .filter(|d| matches!(d.value, EnvValue::Secret(_)))
            .map(|d| d.key.as_str())
            .collect();
        let shown = |key: &str, v: Option<Value>| {
            let bare = key.trim_end_matches(" (preview)");
            if secret.contains(bare) {
                v.map(|_| json!("(secret)"))
            } else {
                v
            }
        };
        for label in plan.diff.created.iter().chain(&plan.diff.updated) {
            let bare = label.trim_end_matches(" (preview)");
            let want = desired
                .env
                .iter()
                .find(|d| d.key == bare)
                .map(|d| json!(d.value.expose()));
            let have = remote
                .iter()
                .find(|r| r.key == bare && r.is_preview == label.ends_with(" (preview)"))
                .and_then(|r| r.value.clone());
            out.push(crate::plan::Drift {
                field: format!("env.{label}"),
                journal: shown(label, want),
                remote: shown(label, have),
            });
        }
        for label in &plan.diff.deleted {
            out.push(crate::plan::Drift {
                field: format!("env.{label}"),
                journal: None,
                remote: Some(json!("(set outside fabrik)")),
            });
        }
        Ok(out)
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
        let remote = self.env_of(app).await?;
        let plan = env::plan(self.env_target(app), &remote, env);
        if !plan.upsert.is_empty() {
            // Bulk is an upsert (single POST would 409 on existing keys). It
            // is not transactional: a 422 leaves earlier items saved, and a
            // rerun converges.
            let req = Request::new(
                Method::PATCH,
                "update environment variables",
                &[col, &app.uuid, "envs", "bulk"],
            )
            .json(&json!({ "data": plan.upsert }))
            .secrets(plan.secrets)
            .makes_stale(&[&[col, &app.uuid, "envs"]]);
            self.http.send(&req).await?;
        }
        for (uuid, _) in &plan.delete {
            let req = Request::new(
                Method::DELETE,
                "delete environment variable",
                &[col, &app.uuid, "envs", uuid],
            )
            .makes_stale(&[&[col, &app.uuid, "envs"]]);
            match self.http.send(&req).await {
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(plan.diff)
    }

    async fn deploy(&self, app: &RemoteApp, force: bool) -> Result<DeploymentRef, ProviderError> {
        let req = Request::new(Method::POST, "deploy", &["deploy"])
            .makes_stale(&[&[app.kind.collection(), &app.uuid]])
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
        let reference = |uuid: Option<String>, already_queued: bool, started: bool| DeploymentRef {
            kind: app.kind,
            app_uuid: app.uuid.clone(),
            deployment_uuid: uuid,
            already_queued,
            started,
        };
        if app.kind == AppKind::Service {
            return Ok(reference(None, false, false));
        }
        // "Deployment already queued for this commit." (`applications.php:46-64`):
        // the uuid in the reply is a fresh one that was never saved
        // (`DC:539`, `:550-551`). The deployment that made it skip is the
        // app's queued or running one: a queued one reads the application
        // when it starts (`ADJ:43`, `:214-221`), so it deploys what was just
        // changed; one already in progress deploys what it read before.
        let already = item
            .message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("already queued"));
        if already {
            let list = self.deployments_of(&app.uuid).await?;
            return Ok(
                match list
                    .into_iter()
                    .find(|d| matches!(d.status.as_str(), "queued" | "in_progress"))
                {
                    Some(d) => reference(Some(d.deployment_uuid), true, d.status == "in_progress"),
                    // It ended in between: nothing deploys this change yet.
                    None => reference(None, true, true),
                },
            );
        }
        match &item.deployment_uuid {
            Some(uuid) => Ok(reference(Some(uuid.clone()), false, false)),
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
                started: d.status == "in_progress",
                deployment_uuid: Some(d.deployment_uuid),
                already_queued: false,
            }))
    }

    async fn latest_deployment(&self, app: &RemoteApp) -> Result<Option<String>, ProviderError> {
        if app.kind == AppKind::Service {
            return Ok(None);
        }
        Ok(self
            .deployments_of(&app.uuid)
            .await?
            .into_iter()
            .next()
            .map(|d| d.deployment_uuid))
    }

    async fn deployment_after(
        &self,
        app: &RemoteApp,
        after: Option<&str>,
    ) -> Result<Option<DeploymentRef>, ProviderError> {
        if app.kind == AppKind::Service {
            return Ok(None);
        }
        // Newest first (`created_at desc, id desc`, `app/Models/Application.php:1118-1222`).
        let list = self.deployments_of(&app.uuid).await?;
        let newer: Vec<VDeployment> = list
            .into_iter()
            .take_while(|d| Some(d.deployment_uuid.as_str()) != after)
            .filter(|d| d.pull_request_id.unwrap_or(0) == 0)
            .collect();
        Ok(newer.into_iter().next().map(|d| DeploymentRef {
            kind: app.kind,
            app_uuid: app.uuid.clone(),
            started: d.status != "queued",
            deployment_uuid: Some(d.deployment_uuid),
            already_queued: false,
        }))
    }

    async fn deployment_status(
        &self,
        deployment: &DeploymentRef,
    ) -> Result<DeploymentStatus, ProviderError> {
        let Some(uuid) = &deployment.deployment_uuid else {
            return self
                .service_status(deployment, &mut ServiceWatch::default())
                .await;
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
        let mut pauses = wait.pauses();
        let mut watch = ServiceWatch::default();
        // A deployment is queued when it is asked for (Coolify starts it
        // from its queue worker): the first look waits a little.
        tokio::time::sleep(pauses.next().unwrap_or(wait.poll_interval)).await;
        loop {
            let status = if deployment.deployment_uuid.is_none() {
                self.service_status(deployment, &mut watch).await?
            } else {
                self.deployment_status(deployment).await?
            };
            progress(&status, start.elapsed());
            if status.state.is_terminal() {
                return Ok(status);
            }
            let pause = pauses.next().unwrap_or(wait.poll_interval);
            if start.elapsed() + pause > wait.timeout {
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
            tokio::time::sleep(pause).await;
        }
    }

    /// `GET /applications/{uuid}/logs?lines=N` (ability `read`,
    /// `routes/api.php:246`): `{"logs": "..."}` from the app's first
    /// container, ANSI colours removed, or 400 "Application is not
    /// running." (`AC:2449-2488`); `lines` is capped at 10000
    /// (`bootstrap/helpers/docker.php:1480-1488`). A service's logs are
    /// per container (`SC:918-959` needs `sub_service_name`): not read.
    async fn runtime_logs(
        &self,
        kind: AppKind,
        uuid: &str,
        lines: u32,
    ) -> Result<String, ProviderError> {
        if kind == AppKind::Service {
            return Err(ProviderError::new(
                P,
                "read service logs",
                ErrorKind::Unsupported,
            )
            .with_message("coolify gives a service's logs container by container")
            .with_hint("read them in Coolify (the service's Logs tab); `fabrik logs` reads those of applications"));
        }
        let req = Request::new(
            Method::GET,
            "read application logs",
            &["applications", uuid, "logs"],
        )
        .query("lines", lines.min(10_000).to_string());
        let resp = match self.http.send(&req).await {
            Ok(resp) => resp,
            Err(e) if e.status == Some(400) && e.message.contains("not running") => {
                return Err(e.with_hint(
                    "the application has no running container: its deployment may have failed (`fabrik logs NAME --build` shows the build log) or it was stopped in Coolify",
                ));
            }
            Err(e) => return Err(e),
        };
        #[derive(Deserialize)]
        struct VLogs {
            #[serde(default)]
            logs: Option<String>,
        }
        let v: VLogs = resp.json(&self.http, &req)?;
        Ok(v.logs.unwrap_or_default())
    }

    /// The `logs` field of `GET /deployments/{uuid}` ([`log`]).
    async fn build_log(&self, deployment_uuid: &str) -> Result<BuildLog, ProviderError> {
        let req = Request::new(
            Method::GET,
            "read deployment",
            &["deployments", deployment_uuid],
        );
        let resp = self.http.send(&req).await?;
        let v: Value = resp.json(&self.http, &req)?;
        let url = self.absolute(str_field(&v, "deployment_url"));
        log::build_log(&v, url).map_err(|e| {
            self.http
                .error(
                    &req,
                    ErrorKind::MalformedResponse,
                    Some(resp.status.as_u16()),
                )
                .with_message(e.to_string())
        })
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
        404 if text.starts_with("Invalid service type") => Some(
            "this Coolify has no one-click service of that type (its list can differ from the one fabrik ships); pick a type from Coolify's catalogue".into(),
        ),
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
                    .map(|f| {
                        if f.field.is_empty() {
                            f.messages.join(" ")
                        } else {
                            format!("{}: {}", f.field, f.messages.join(" "))
                        }
                    })
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

/// `errors` is an object whose values are a list of strings or one string,
/// or a list of messages (the domain and service URL checks, `AC:2929-2936`,
/// `SC:549-554 @4.3.11`), kept under the field `""`.
fn field_errors(body: Option<&Value>, scrubber: &Scrubber) -> Vec<FieldError> {
    let errors = match body.and_then(|b| b.get("errors")) {
        Some(Value::Object(errors)) => errors,
        Some(Value::Array(list)) if !list.is_empty() => {
            return vec![FieldError {
                field: String::new(),
                messages: list
                    .iter()
                    .map(|m| scrubber.scrub(m.as_str().unwrap_or(&m.to_string())))
                    .collect(),
            }];
        }
        _ => return Vec::new(),
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

    #[test]
    fn version_gates() {
        let v = |s: &str| ServerVersion::parse(s).unwrap_or_else(|| panic!("{s}"));
        assert!(v("4.3.11").supports_tags());
        assert!(v("v4.2.0").supports_tags());
        assert!(!v("4.1.2").supports_tags());
        assert!(!v("4.2.0-beta.1").supports_tags());
        assert!(!v("4.0.0-beta.474").supports_tags());
        assert_eq!(ServerVersion::parse("nope"), None);
        assert!(v("4.1.0").supports_railpack());
        assert!(!v("4.0.0-beta.474").supports_railpack());
        assert!(v("4.0.0-beta.474").supports_env_scopes());
        assert!(v("4.0.0-beta.435").supports_env_scopes());
        assert!(!v("4.0.0-beta.434").supports_env_scopes());
        assert!(v("4.3.11").supports_env_scopes());
    }

    #[test]
    fn environment_names_are_matched_as_coolify_stores_them() {
        assert_eq!(environment_name(" Production "), "production");
        assert_eq!(environment_name("Staging/EU"), "staging-eu");
        assert!(looks_like_uuid("hg0ks8kw4wok04g8cwck8sgo"));
        assert!(!looks_like_uuid("localhost-coolify"));
    }

    #[test]
    fn list_shaped_errors_keep_their_messages() {
        let body = json!({"message": "Validation failed.", "errors": ["Service container with 'x' not found."]});
        let f = field_errors(Some(&body), &Scrubber::new());
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].messages, vec!["Service container with 'x' not found."]);
        let body = json!({"message": "Validation failed.", "errors": {"domains": "bad"}});
        assert_eq!(
            field_errors(Some(&body), &Scrubber::new())[0].field,
            "domains"
        );
    }
}
