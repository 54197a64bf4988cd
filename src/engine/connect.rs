//! Building the providers of a run: from credentials (environment first,
//! then the project's `.env`), or from the built-in sandbox.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{EngineError, Journal, NotifierEntry, Providers, Session, Timing};
use crate::event::{AttemptFailed, Event};
use crate::provider::{
    CloudflareClient, CloudflareConfig, CoolifyClient, CoolifyConfig, HttpConfig, KumaClient,
    KumaConfig, RetryEvent, RetryObserver, RetryPolicy, WebhookConfig, WebhookFormat,
    WebhookNotifier,
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

/// Where the providers point.
#[derive(Debug, Clone)]
pub enum Target {
    /// The real services, configured by credentials.
    Real,
    /// The built-in sandbox, run in this process on a data file.
    Sandbox(Box<crate::sandbox::SandboxConfig>),
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
    ) -> Result<Self, EngineError> {
        let dotenv = crate::spec::dotenv::read(dotenv_path).map_err(|e| EngineError::Config {
            message: crate::error::chain_text(&e),
            hint: None,
        })?;
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

    fn require(&self, name: &str, why: &str) -> Result<SecretValue, EngineError> {
        self.get(name).ok_or_else(|| EngineError::Config {
            message: format!("{name} is not set ({why})"),
            hint: Some(format!(
                "set {name} in the environment or in {}; or try the simulator with --sandbox",
                self.dotenv_path.display()
            )),
        })
    }
}

/// Journals every retry of a provider call as `attempt_failed`.
struct JournalRetries(Journal);

impl RetryObserver for JournalRetries {
    fn on_retry(&self, e: &RetryEvent) {
        let reason = super::scrub(&self.0, &e.reason);
        let _ = super::record(
            &self.0,
            Event::AttemptFailed(AttemptFailed {
                operation: format!("{} {}", e.provider, e.operation),
                attempt: e.attempt,
                reason: reason.clone(),
                delay_ms: e.delay.as_millis() as u64,
            }),
        );
        super::note(
            &self.0,
            &format!(
                "{} {}: {reason}; retrying in {} ms (attempt {})",
                e.provider,
                e.operation,
                e.delay.as_millis(),
                e.attempt + 1
            ),
        );
    }
}

fn http_config(spec: Option<&Spec>, journal: Option<&Journal>) -> HttpConfig {
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
    if let Some(j) = journal {
        http.observer = Some(Arc::new(JournalRetries(j.clone())));
    }
    http
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

/// Starts (or reaches) the remote world of a run.
pub async fn endpoints(
    target: &Target,
    env: &Env,
    needs_dns: bool,
    needs_monitors: bool,
) -> Result<(Endpoints, Option<crate::sandbox::SandboxHandle>), EngineError> {
    match target {
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
            };
            Ok((e, Some(handle)))
        }
        Target::Real => {
            let coolify_url = env
                .require(
                    "COOLIFY_URL",
                    "the Coolify instance, e.g. https://coolify.example.com",
                )?
                .expose()
                .to_owned();
            let coolify_token = env.require("COOLIFY_TOKEN", "a Coolify API token")?;
            let cloudflare_token = if needs_dns {
                Some(env.require(
                    "CLOUDFLARE_API_TOKEN",
                    "a Cloudflare API token with Zone:Read and DNS:Edit, for the spec's dns records",
                )?)
            } else {
                env.get("CLOUDFLARE_API_TOKEN")
            };
            let cloudflare_url = env
                .get("CLOUDFLARE_API_URL")
                .map(|v| v.expose().to_owned())
                .unwrap_or_else(|| CloudflareConfig::DEFAULT_API_URL.to_owned());
            let (kuma_url, kuma_username, kuma_password) = if needs_monitors {
                (
                    Some(
                        env.require(
                            "UPTIME_KUMA_URL",
                            "the Uptime Kuma instance, for the spec's monitors",
                        )?
                        .expose()
                        .to_owned(),
                    ),
                    Some(
                        env.require("UPTIME_KUMA_USERNAME", "the Uptime Kuma user")?
                            .expose()
                            .to_owned(),
                    ),
                    Some(env.require("UPTIME_KUMA_PASSWORD", "the Uptime Kuma password")?),
                )
            } else {
                (
                    env.get("UPTIME_KUMA_URL").map(|v| v.expose().to_owned()),
                    env.get("UPTIME_KUMA_USERNAME")
                        .map(|v| v.expose().to_owned()),
                    env.get("UPTIME_KUMA_PASSWORD"),
                )
            };
            // A sandbox served by another process (`fabrik sandbox serve`):
            // route the spec's names to it and trust its CA.
            let (routing, ca_pem) = match env.var("FABRIK_SANDBOX_URL") {
                Some(url) => sandbox_routing(url).await?,
                None => (Routing::System, None),
            };
            Ok((
                Endpoints {
                    coolify_url,
                    coolify_token,
                    cloudflare_url,
                    cloudflare_token,
                    kuma_url,
                    kuma_username,
                    kuma_password,
                    routing,
                    ca_pem,
                },
                None,
            ))
        }
    }
}

async fn sandbox_routing(url: &str) -> Result<(Routing, Option<String>), EngineError> {
    let bad = |m: String| EngineError::Config {
        message: format!("FABRIK_SANDBOX_URL={url}: {m}"),
        hint: Some("point it at a running `fabrik sandbox serve`".to_owned()),
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

/// Builds the providers and the verifier for a run of `spec`.
pub fn session(
    spec: &Spec,
    secrets: &ResolvedSecrets,
    endpoints: Endpoints,
    sandbox: Option<crate::sandbox::SandboxHandle>,
    journal: Option<&Journal>,
) -> Result<Session, EngineError> {
    let http = || http_config(Some(spec), journal);
    let provider = |what: &str, e| EngineError::provider(format!("setting up {what}"), e);
    let app: Arc<dyn crate::provider::AppHost> = Arc::new(
        CoolifyClient::new(
            CoolifyConfig {
                base_url: endpoints.coolify_url.clone(),
                token: endpoints.coolify_token.clone(),
            },
            http(),
        )
        .map_err(|e| provider("coolify", e))?,
    );
    let dns: Option<Arc<dyn crate::provider::Dns>> = match (&spec.dns, &endpoints.cloudflare_token)
    {
        (Some(_), Some(token)) => Some(Arc::new(
            CloudflareClient::new(
                CloudflareConfig {
                    api_url: endpoints.cloudflare_url.clone(),
                    token: token.clone(),
                    use_tags: false,
                },
                http(),
            )
            .map_err(|e| provider("cloudflare", e))?,
        )),
        _ => None,
    };
    let monitors: Option<Arc<dyn crate::provider::Monitors>> = match (
        spec.monitors.is_empty(),
        &endpoints.kuma_url,
        &endpoints.kuma_username,
        &endpoints.kuma_password,
    ) {
        (false, Some(url), Some(user), Some(pw)) => Some(Arc::new(KumaClient::new(
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
    let mut notifiers = Vec::new();
    for w in &spec.notifications.webhooks {
        let url = secrets.render(&w.url).map_err(|e| EngineError::Config {
            message: format!("webhook {}: {}", w.name, crate::error::chain_text(&e)),
            hint: None,
        })?;
        // A webhook URL often embeds a token (Slack): never show it.
        scrubber.add(&url);
        let secret = match &w.signing_secret {
            Some(name) => {
                Some(
                    secrets
                        .value(name)
                        .cloned()
                        .ok_or_else(|| EngineError::Config {
                            message: format!(
                                "webhook {}: signing secret {name} is not resolved",
                                w.name
                            ),
                            hint: None,
                        })?,
                )
            }
            None => None,
        };
        let format = match w.format {
            model::WebhookFormat::Json => WebhookFormat::Generic,
            model::WebhookFormat::Slack => WebhookFormat::Slack,
        };
        let notifier = WebhookNotifier::new(
            WebhookConfig {
                url,
                format,
                secret,
            },
            http(),
        )
        .map_err(|e| provider("webhooks", e))?;
        notifiers.push(NotifierEntry {
            name: w.name.clone(),
            events: w
                .events
                .iter()
                .map(|e| {
                    serde_json::to_value(e)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect(),
            notifier: Arc::new(notifier),
        });
    }
    let sandboxed = sandbox.is_some() || matches!(endpoints.routing, Routing::Sandbox { .. });
    let verifier = Verifier::new(
        endpoints.routing.clone(),
        endpoints.ca_pem.as_deref(),
        Duration::from_secs(10),
    )
    .map_err(|e| EngineError::Config {
        message: e.0,
        hint: None,
    })?;
    let timing = if sandboxed {
        Timing {
            poll: Duration::from_millis(100),
            verify_interval: Duration::from_millis(200),
            dns_concurrency: 16,
        }
    } else {
        Timing::default()
    };
    Ok(Session {
        retry: http_config(Some(spec), None).retry,
        providers: Providers {
            app,
            dns,
            monitors,
            notifiers: Arc::new(notifiers),
        },
        verifier,
        timing,
        scrubber,
        sandbox,
    })
}
