//! From credentials (the process environment, then the project's `.env`)
//! or the built-in sandbox to a [`Connection`]: the only place the vendor
//! clients are built.
//!
//! The engine never builds a client: the CLI hands it something that
//! implements [`Connect`] (a [`Registry`] here, or
//! [`super::fake::FakeWorld`] in the engine's own tests), and the engine
//! asks it for a connection only when a run needs the remote side (a
//! no-change apply never does).
//!
//! Adding a provider of an existing capability (another DNS service, say)
//! means a client module beside the others and a branch in
//! [`Registry::build`] choosing it from its credentials; nothing in the
//! engine changes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    CloudflareClient, CloudflareConfig, Connection, CoolifyClient, CoolifyConfig, HttpConfig,
    KumaClient, KumaConfig, NotifierEntry, OciClient, OciConfig, Pace, ProviderError, Providers,
    RetryObserver, RetryPolicy, WebhookConfig, WebhookFormat, WebhookNotifier,
};
use crate::secret::{Scrubber, SecretValue};
use crate::spec::model::{self, Spec};
use crate::spec::secrets::ResolvedSecrets;
use crate::verify::{Routing, Verifier};

/// The environment variables that configure the real services.
pub const CREDENTIAL_VARS: &[&str] = &[
    "COOLIFY_URL",
    "COOLIFY_TOKEN",
    "CLOUDFLARE_API_TOKEN",
    "CLOUDFLARE_API_URL",
    "UPTIME_KUMA_URL",
    "UPTIME_KUMA_USERNAME",
    "UPTIME_KUMA_PASSWORD",
];

/// How to configure a provider of `capability` (`DNS`, `monitors`): the
/// variables the registry reads for it.
pub fn credentials_hint(capability: &str) -> String {
    match capability {
        "DNS" => "set CLOUDFLARE_API_TOKEN".to_owned(),
        "monitors" => {
            "set UPTIME_KUMA_URL, UPTIME_KUMA_USERNAME and UPTIME_KUMA_PASSWORD".to_owned()
        }
        _ => "set COOLIFY_URL and COOLIFY_TOKEN".to_owned(),
    }
}

/// Whether a run needs a provider of a capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// It has resources of that kind: missing credentials are an error.
    Required,
    /// Built when its credentials are there (`gc` looks everywhere it can).
    IfConfigured,
    /// Not built.
    No,
}

/// What a run asks of [`Connect::connect`].
pub struct ConnectRequest<'a> {
    /// The spec, for its timeouts, retry policy and webhooks; `None` for
    /// commands that work without one (`gc`).
    pub spec: Option<&'a Spec>,
    /// Resolved secrets, for webhook URLs and signing secrets.
    pub secrets: Option<&'a ResolvedSecrets>,
    /// Where credentials come from.
    pub env: &'a Env,
    /// DNS.
    pub dns: Need,
    /// Monitors.
    pub monitors: Need,
    /// Told about every retry of a provider call (the engine journals
    /// them).
    pub retries: Option<Arc<dyn RetryObserver>>,
}

impl std::fmt::Debug for ConnectRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("dns", &self.dns)
            .field("monitors", &self.monitors)
            .finish_non_exhaustive()
    }
}

/// Builds the providers of a run.
#[async_trait]
pub trait Connect: Send + Sync {
    /// The connection for one run.
    async fn connect(&self, request: ConnectRequest<'_>) -> Result<Connection, ConnectError>;

    /// Whether the providers are the built-in sandbox (journaled with the
    /// run, so that `resume` and `rollback` find the same world).
    fn is_sandbox(&self) -> bool {
        false
    }
}

/// Why no connection could be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Credentials are missing (every one of them, named).
    #[error("{}", missing_text(missing))]
    Missing {
        /// The variables, with what each is for.
        missing: Vec<(&'static str, &'static str)>,
        /// The `.env` they were looked for in.
        dotenv: PathBuf,
    },
    /// The project's `.env` could not be read (its causes on one line:
    /// the file and why).
    #[error("{}", crate::text::error_chain(.0))]
    Dotenv(crate::spec::dotenv::DotenvError),
    /// The sandbox could not start.
    #[error("the sandbox could not start")]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// `FABRIK_SANDBOX_URL` does not lead to a sandbox.
    #[error("FABRIK_SANDBOX_URL={url}: {message}")]
    SandboxUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// A client could not be set up (an invalid URL, say).
    #[error("setting up {what}")]
    Client {
        /// Which client.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<ProviderError>,
    },
    /// A webhook of the spec cannot be configured.
    #[error("webhook {name}: {message}")]
    Webhook {
        /// The webhook's name in the spec.
        name: String,
        /// What is wrong (never a value).
        message: String,
    },
    /// A provider URL would send credentials over plain http to another
    /// machine.
    #[error(
        "{variable} is plain http to {host}: its credentials would cross the network unencrypted"
    )]
    PlainHttp {
        /// The variable that holds the URL.
        variable: &'static str,
        /// The host it names.
        host: String,
    },
    /// The verifier could not be set up.
    #[error("setting up verification: {0}")]
    Verifier(String),
}

fn missing_text(missing: &[(&'static str, &'static str)]) -> String {
    match missing {
        [(name, why)] => format!("{name} is not set ({why})"),
        many => format!(
            "{} credentials are not set: {}",
            many.len(),
            many.iter()
                .map(|(name, why)| format!("{name} ({why})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl ConnectError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Missing { missing, dotenv } => Some(format!(
                "set {} in the environment or in {}; or try the simulator with --sandbox",
                missing
                    .iter()
                    .map(|(name, _)| *name)
                    .collect::<Vec<_>>()
                    .join(", "),
                dotenv.display()
            )),
            Self::SandboxUrl { .. } => Some("point it at a running `fabrik sandbox serve`".into()),
            Self::PlainHttp { variable, .. } => Some(format!(
                "use an https URL in {variable}; if the network to it is trusted, pass --allow-insecure-http (or set FABRIK_ALLOW_INSECURE_HTTP=1); plain http to this machine (localhost, 127.0.0.1, ::1) is always allowed"
            )),
            Self::Client { source, .. } => source.hint.clone(),
            _ => None,
        }
    }
}

/// Looks up configuration: the process environment, then the project's
/// `.env` file.
pub struct Env {
    vars: std::collections::BTreeMap<String, String>,
    dotenv: crate::spec::dotenv::Entries,
    dotenv_path: PathBuf,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("dotenv_path", &self.dotenv_path)
            .finish_non_exhaustive()
    }
}

impl Env {
    /// The process environment and the `.env` at `dotenv_path` (absent is
    /// fine).
    pub fn load(
        vars: impl IntoIterator<Item = (String, String)>,
        dotenv_path: &Path,
    ) -> Result<Self, ConnectError> {
        let dotenv = crate::spec::dotenv::read(dotenv_path).map_err(ConnectError::Dotenv)?;
        Ok(Self {
            vars: vars.into_iter().collect(),
            dotenv,
            dotenv_path: dotenv_path.to_owned(),
        })
    }

    /// A variable's value (environment first), as a secret.
    pub fn get(&self, name: &str) -> Option<SecretValue> {
        self.vars
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| SecretValue::new(v.clone()))
            .or_else(|| {
                self.dotenv
                    .get(name)
                    .filter(|v| !v.expose().is_empty())
                    .cloned()
            })
    }

    /// A plain variable from the environment only.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The `.env` file consulted.
    pub fn dotenv_path(&self) -> &Path {
        &self.dotenv_path
    }
}

/// Where the providers point.
#[derive(Debug, Clone)]
pub enum Target {
    /// The real services, configured by credentials.
    Real,
    /// The built-in sandbox, run in this process on a data file.
    Sandbox(Box<crate::sandbox::SandboxConfig>),
}

/// Endpoints and credentials of the three services.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Coolify URL.
    pub coolify_url: String,
    /// Coolify token.
    pub coolify_token: SecretValue,
    /// Cloudflare API root.
    pub cloudflare_url: String,
    /// Cloudflare token.
    pub cloudflare_token: Option<SecretValue>,
    /// Uptime Kuma URL.
    pub kuma_url: Option<String>,
    /// Uptime Kuma user.
    pub kuma_username: Option<String>,
    /// Uptime Kuma password.
    pub kuma_password: Option<SecretValue>,
    /// Where names connect to and which extra CA to trust.
    pub routing: Routing,
    /// The sandbox CA, in sandbox mode.
    pub ca_pem: Option<String>,
    /// Where every image registry is asked instead of at its own host: the
    /// sandbox, which simulates them all.
    pub registry_route: Option<String>,
}

impl Endpoints {
    /// Every credential value (for scrubbing).
    pub fn scrubber(&self) -> Scrubber {
        let mut s = Scrubber::new();
        s.add(&self.coolify_token);
        for v in [&self.cloudflare_token, &self.kuma_password]
            .into_iter()
            .flatten()
        {
            s.add(v);
        }
        s
    }
}

/// The providers from credentials or the sandbox.
#[derive(Debug, Clone)]
pub struct Registry {
    target: Target,
    /// Whether credentials may go over plain http to another machine
    /// (`--allow-insecure-http`).
    insecure_http: bool,
}

impl Registry {
    /// A registry for `target`.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            insecure_http: false,
        }
    }

    /// Lets credentials go to provider URLs over plain http on hosts other
    /// than this machine.
    pub fn allowing_insecure_http(mut self, allow: bool) -> Self {
        self.insecure_http = allow;
        self
    }

    /// Every credential a run of the real services would need and lacks,
    /// and every provider URL that would send one over plain http to
    /// another machine, checked without touching anything (the sandbox
    /// needs none).
    pub fn check(&self, env: &Env, dns: Need, monitors: Need) -> Result<(), ConnectError> {
        match self.target {
            Target::Sandbox(_) => Ok(()),
            Target::Real => {
                missing(env, dns, monitors)?;
                self.refuse_plain_http(env)
            }
        }
    }

    /// Refuses a provider URL that would send its credentials over plain
    /// http to a host other than this machine, unless allowed.
    fn refuse_plain_http(&self, env: &Env) -> Result<(), ConnectError> {
        if self.insecure_http {
            return Ok(());
        }
        for variable in ["COOLIFY_URL", "CLOUDFLARE_API_URL", "UPTIME_KUMA_URL"] {
            let Some(value) = env.get(variable) else {
                continue;
            };
            if let Some(host) = plain_http_host(value.expose()) {
                return Err(ConnectError::PlainHttp { variable, host });
            }
        }
        Ok(())
    }

    /// The endpoints of the target (starting the sandbox for
    /// [`Target::Sandbox`]), with credentials from `env`.
    pub async fn endpoints(
        &self,
        env: &Env,
        dns: Need,
        monitors: Need,
    ) -> Result<(Endpoints, Option<crate::sandbox::SandboxHandle>), ConnectError> {
        match &self.target {
            Target::Sandbox(config) => {
                let handle = crate::sandbox::start((**config).clone()).await?;
                let resolve_url = format!("{}/_sandbox/resolve", handle.api_url);
                let e = Endpoints {
                    coolify_url: handle.coolify_url.clone(),
                    coolify_token: handle.credentials.coolify_token.clone(),
                    cloudflare_url: handle.cloudflare_url.clone(),
                    cloudflare_token: Some(handle.credentials.cloudflare_token.clone()),
                    kuma_url: Some(handle.kuma_url.clone()),
                    kuma_username: Some(handle.credentials.kuma_username.clone()),
                    kuma_password: Some(handle.credentials.kuma_password.clone()),
                    routing: Routing::Sandbox {
                        http: handle.app_http,
                        https: handle.app_https,
                        resolve_url,
                    },
                    ca_pem: Some(handle.ca_pem.clone()),
                    registry_route: Some(handle.api_url.clone()),
                };
                Ok((e, Some(handle)))
            }
            Target::Real => {
                self.refuse_plain_http(env)?;
                Ok((real_endpoints(env, dns, monitors).await?, None))
            }
        }
    }
    /// Builds the providers for `request` on `endpoints`.
    pub fn build(
        request: &ConnectRequest<'_>,
        endpoints: &Endpoints,
    ) -> Result<Connection, ConnectError> {
        let spec = request.spec;
        let http = || http_config(spec, request.retries.clone());
        let client = |what: &'static str| {
            move |e: ProviderError| ConnectError::Client {
                what,
                source: Box::new(e),
            }
        };
        let app: Arc<dyn super::AppHost> = Arc::new(
            CoolifyClient::new(
                CoolifyConfig {
                    base_url: endpoints.coolify_url.clone(),
                    token: endpoints.coolify_token.clone(),
                },
                http(),
            )
            .map_err(client("coolify"))?,
        );
        let dns: Option<Arc<dyn super::Dns>> = match (request.dns, &endpoints.cloudflare_token) {
            (Need::No, _) | (_, None) => None,
            (_, Some(token)) => Some(Arc::new(
                CloudflareClient::new(
                    CloudflareConfig {
                        api_url: endpoints.cloudflare_url.clone(),
                        token: token.clone(),
                        use_tags: false,
                    },
                    http(),
                )
                .map_err(client("cloudflare"))?,
            )),
        };
        let monitors: Option<Arc<dyn super::Monitors>> = match (
            request.monitors,
            &endpoints.kuma_url,
            &endpoints.kuma_username,
            &endpoints.kuma_password,
        ) {
            (Need::No, ..) => None,
            (_, Some(url), Some(user), Some(pw)) => Some(Arc::new(KumaClient::new(
                KumaConfig {
                    url: url.clone(),
                    username: user.clone(),
                    password: pw.clone(),
                },
                http(),
            ))),
            _ => None,
        };
        let mut scrubber = endpoints.scrubber();
        let notifiers = match (spec, request.secrets) {
            (Some(spec), Some(secrets)) => webhooks(spec, secrets, &mut scrubber, http)?,
            _ => Vec::new(),
        };
        let verifier = Verifier::new(
            endpoints.routing.clone(),
            endpoints.ca_pem.as_deref(),
            Duration::from_secs(10),
        )
        .map_err(|e| ConnectError::Verifier(e.0))?;
        let pace = match endpoints.routing {
            Routing::Sandbox { .. } => Pace::local(),
            Routing::System | Routing::Nameserver(_) => Pace::default(),
        };
        Ok(Connection {
            retry: http_config(spec, None).retry,
            providers: Providers {
                app,
                dns,
                monitors,
                notifiers: Arc::new(notifiers),
                probe: Arc::new(verifier),
                images: Arc::new(OciClient::new(
                    OciConfig {
                        route: endpoints.registry_route.clone(),
                    },
                    http(),
                )),
            },
            pace,
            scrubber,
            keep_alive: None,
        })
    }
}

#[async_trait]
impl Connect for Registry {
    async fn connect(&self, request: ConnectRequest<'_>) -> Result<Connection, ConnectError> {
        let (endpoints, sandbox) = self
            .endpoints(request.env, request.dns, request.monitors)
            .await?;
        let mut connection = Self::build(&request, &endpoints)?;
        if let Some(handle) = sandbox {
            connection.keep_alive = Some(Box::new(handle));
        }
        Ok(connection)
    }

    fn is_sandbox(&self) -> bool {
        matches!(self.target, Target::Sandbox(_))
    }
}

/// The credentials a run needs, with what each is for.
fn required(dns: Need, monitors: Need) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        (
            "COOLIFY_URL",
            "the Coolify instance, e.g. https://coolify.example.com",
        ),
        ("COOLIFY_TOKEN", "a Coolify API token"),
    ];
    if dns == Need::Required {
        out.push((
            "CLOUDFLARE_API_TOKEN",
            "a Cloudflare API token with Zone:Read and DNS:Edit, for the spec's dns records",
        ));
    }
    if monitors == Need::Required {
        out.extend([
            (
                "UPTIME_KUMA_URL",
                "the Uptime Kuma instance, for the spec's monitors",
            ),
            ("UPTIME_KUMA_USERNAME", "the Uptime Kuma user"),
            ("UPTIME_KUMA_PASSWORD", "the Uptime Kuma password"),
        ]);
    }
    out
}

/// Every credential a run needs that is set neither in the environment
/// nor in the `.env`, all at once.
pub fn missing(env: &Env, dns: Need, monitors: Need) -> Result<(), ConnectError> {
    let missing: Vec<(&'static str, &'static str)> = required(dns, monitors)
        .into_iter()
        .filter(|(name, _)| env.get(name).is_none())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ConnectError::Missing {
            missing,
            dotenv: env.dotenv_path.clone(),
        })
    }
}

async fn real_endpoints(env: &Env, dns: Need, monitors: Need) -> Result<Endpoints, ConnectError> {
    missing(env, dns, monitors)?;
    let value = |name: &'static str| {
        env.get(name)
            .unwrap_or_else(|| SecretValue::new(String::new()))
    };
    let coolify_url = value("COOLIFY_URL").expose().to_owned();
    let coolify_token = value("COOLIFY_TOKEN");
    let cloudflare_token = env.get("CLOUDFLARE_API_TOKEN");
    let cloudflare_url = env
        .get("CLOUDFLARE_API_URL")
        .map(|v| v.expose().to_owned())
        .unwrap_or_else(|| CloudflareConfig::DEFAULT_API_URL.to_owned());
    let kuma_url = env.get("UPTIME_KUMA_URL").map(|v| v.expose().to_owned());
    let kuma_username = env
        .get("UPTIME_KUMA_USERNAME")
        .map(|v| v.expose().to_owned());
    let kuma_password = env.get("UPTIME_KUMA_PASSWORD");
    // A sandbox served by another process (`fabrik sandbox serve`):
    // route the spec's names and image registries to it and trust its CA.
    let (routing, ca_pem, registry_route) = match env.var("FABRIK_SANDBOX_URL") {
        Some(url) => {
            let (routing, ca) = sandbox_routing(url).await?;
            (routing, ca, Some(url.trim_end_matches('/').to_owned()))
        }
        None => (Routing::System, None, None),
    };
    Ok(Endpoints {
        coolify_url,
        coolify_token,
        cloudflare_url,
        cloudflare_token,
        kuma_url,
        kuma_username,
        kuma_password,
        routing,
        ca_pem,
        registry_route,
    })
}

/// The HTTP settings of a run: the spec's request timeout and retry
/// policy, and the engine's retry observer.
fn http_config(spec: Option<&Spec>, observer: Option<Arc<dyn RetryObserver>>) -> HttpConfig {
    let mut http = HttpConfig::default();
    if let Some(spec) = spec {
        http.request_timeout = spec.timeouts.request.get();
        http.retry = RetryPolicy {
            attempts: u32::from(spec.retry.attempts.max(1)),
            base_delay: spec.retry.initial_delay.get(),
            max_delay: spec.retry.max_delay.get(),
            ..RetryPolicy::default()
        };
    }
    http.observer = observer;
    http
}

fn webhooks(
    spec: &Spec,
    secrets: &ResolvedSecrets,
    scrubber: &mut Scrubber,
    http: impl Fn() -> HttpConfig,
) -> Result<Vec<NotifierEntry>, ConnectError> {
    let mut notifiers = Vec::new();
    for w in &spec.notifications.webhooks {
        let bad = |message: String| ConnectError::Webhook {
            name: w.name.clone(),
            message,
        };
        let url = secrets
            .render(&w.url)
            .map_err(|e| bad(crate::text::error_chain(&e)))?;
        // A webhook URL often embeds a token (Slack): never show it.
        scrubber.add(&url);
        let secret = match &w.signing_secret {
            Some(name) => Some(
                secrets
                    .value(name)
                    .cloned()
                    .ok_or_else(|| bad(format!("signing secret {name} is not resolved")))?,
            ),
            None => None,
        };
        let format = match w.format {
            model::WebhookFormat::Json => WebhookFormat::Generic,
            model::WebhookFormat::Slack => WebhookFormat::Slack,
            model::WebhookFormat::Discord => WebhookFormat::Discord,
        };
        let notifier = WebhookNotifier::new(
            WebhookConfig {
                url,
                format,
                secret,
            },
            http(),
        )
        .map_err(|e| ConnectError::Client {
            what: "webhooks",
            source: Box::new(e),
        })?;
        notifiers.push(NotifierEntry {
            name: w.name.clone(),
            events: w
                .events
                .iter()
                .filter_map(|e| serde_json::to_value(e).ok())
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            timeout: spec.notifications.timeout.get(),
            notifier: Arc::new(notifier),
        });
    }
    Ok(notifiers)
}

/// The host of `url` when it is plain http to a host other than this
/// machine (loopback addresses and `localhost` are this machine).
fn plain_http_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    if parsed.scheme() != "http" {
        return None;
    }
    let local = match parsed.host()? {
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    (!local).then(|| parsed.host_str().unwrap_or_default().to_owned())
}

async fn sandbox_routing(url: &str) -> Result<(Routing, Option<String>), ConnectError> {
    let bad = |message: String| ConnectError::SandboxUrl {
        url: url.to_owned(),
        message,
    };
    let info_url = format!("{}/_sandbox/info", url.trim_end_matches('/'));
    let probe =
        Verifier::new(Routing::System, None, Duration::from_secs(10)).map_err(|e| bad(e.0))?;
    let (ev, body) = probe.get(&info_url).await.map_err(|e| bad(e.0))?;
    if ev.status != 200 {
        return Err(bad(format!("{info_url} answered {}", ev.status)));
    }
    let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| bad(e.to_string()))?;
    let addr = |k: &str| {
        v.get(k)
            .and_then(|a| a.as_str())
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| bad(format!("no {k} in the sandbox info")))
    };
    Ok((
        Routing::Sandbox {
            http: addr("app_http")?,
            https: addr("app_https")?,
            resolve_url: format!("{}/_sandbox/resolve", url.trim_end_matches('/')),
        },
        v.get("ca_pem").and_then(|c| c.as_str()).map(str::to_owned),
    ))
}

#[cfg(test)]
mod tests {
    use super::plain_http_host;

    #[test]
    fn plain_http_is_refused_only_to_other_machines() {
        for local in [
            "http://127.0.0.1:8000",
            "http://127.8.9.10",
            "http://[::1]:3001/",
            "http://localhost:8000",
            "http://LOCALHOST.",
            "http://coolify.localhost/",
            "https://192.0.2.2",
            "https://coolify.example.com",
            "not a url",
        ] {
            assert_eq!(plain_http_host(local), None, "{local}");
        }
        for (remote, host) in [
            ("http://192.0.2.2:8000", "192.0.2.2"),
            ("http://coolify.example.com/", "coolify.example.com"),
            ("HTTP://[2001:db8::1]:80", "[2001:db8::1]"),
            ("http://localhost.example.com", "localhost.example.com"),
            ("http://0.0.0.0:8000", "0.0.0.0"),
        ] {
            assert_eq!(plain_http_host(remote).as_deref(), Some(host), "{remote}");
        }
    }
}
