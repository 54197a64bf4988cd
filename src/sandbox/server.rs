//! Listeners, routing and the lifecycle of one sandbox instance.
//!
//! Three listeners: the API listener (Coolify under `/api`, Cloudflare under
//! `/client/v4`, Uptime Kuma's Socket.IO under `/socket.io/`, the container
//! registry under `/v2`, the admin API under `/_sandbox`, and deployed apps
//! for any other `Host`), the app HTTP
//! listener and the app HTTPS listener (deployed apps only, routed by `Host`
//! and SNI).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Serialize;
use socketioxide::SocketIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::ca::Ca;
use super::config::{Credentials, SandboxConfig, Settings};
use super::conn::{CuttableListener, KillSwitch};
use super::faults::{FaultConfig, Faults, Injected, Injections, Service};
use super::kuma::Sessions;
use super::reply::Reply;
use super::store::{Store, WorldInit};
use super::{SandboxError, admin, apps, cloudflare, coolify, kuma, registry, world};

/// Where a running sandbox can be reached, and what to trust.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxInfo {
    /// Base URL of the API listener, e.g. `http://127.0.0.1:41234`.
    pub api_url: String,
    /// The Coolify instance URL (`COOLIFY_URL`); the API is under `/api/v1`.
    pub coolify_url: String,
    /// The Cloudflare API base (`CLOUDFLARE_API_URL`), ending in `/client/v4`.
    pub cloudflare_url: String,
    /// The Uptime Kuma URL (`UPTIME_KUMA_URL`); Socket.IO is at `/socket.io/`.
    pub kuma_url: String,
    /// Where deployed apps answer plain HTTP.
    pub app_http: SocketAddr,
    /// Where deployed apps answer HTTPS (certificates by SNI).
    pub app_https: SocketAddr,
    /// The sandbox CA certificate (PEM) that signs the app certificates.
    pub ca_pem: String,
}

/// The state every handler shares.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) config: SandboxConfig,
    pub(crate) settings: RwLock<Settings>,
    pub(crate) faults: Faults,
    pub(crate) ca: Ca,
    pub(crate) sessions: Sessions,
    pub(crate) info: SandboxInfo,
}

impl Shared {
    /// "Now" for a request.
    pub(crate) fn now(&self) -> i64 {
        self.config.clock.now_ms()
    }

    /// A copy of the current switches.
    pub(crate) fn settings(&self) -> Settings {
        match self.settings.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the switches.
    pub(crate) fn set_settings(&self, settings: Settings) {
        match self.settings.write() {
            Ok(mut s) => *s = settings,
            Err(poisoned) => *poisoned.into_inner() = settings,
        }
    }
}

/// A sandbox whose listeners are bound but not yet serving; the CLI prints
/// [`BoundSandbox::info`] and then calls [`BoundSandbox::run`].
pub struct BoundSandbox {
    shared: Arc<Shared>,
    api: TcpListener,
    app_http: TcpListener,
    app_https: TcpListener,
}

impl std::fmt::Debug for BoundSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundSandbox")
            .field("info", &self.info())
            .finish_non_exhaustive()
    }
}

/// Opens the world and binds the API listener on `addr` and the two app
/// listeners on the same IP (ephemeral ports).
pub async fn bind(addr: SocketAddr, config: SandboxConfig) -> Result<BoundSandbox, SandboxError> {
    let init = WorldInit {
        seed: config.faults.seed,
        zones: config.all_zones(),
        servers: config.servers.clone(),
        now: config.clock.now_ms(),
    };
    let path = config.data.clone();
    let (store, ca) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&path, &init)?;
        let ca = Ca::load_or_create(&store)?;
        Ok::<_, SandboxError>((store, ca))
    })
    .await
    .map_err(|_| SandboxError::Worker)??;
    let bind = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind { addr, source })
    };
    let api = bind(addr).await?;
    let app_addr = SocketAddr::new(addr.ip(), 0);
    let app_http = bind(app_addr).await?;
    let app_https = bind(app_addr).await?;
    let local = |l: &TcpListener, addr: SocketAddr| {
        l.local_addr()
            .map_err(|source| SandboxError::Bind { addr, source })
    };
    let api_addr = local(&api, addr)?;
    let api_url = format!("http://{api_addr}");
    let info = SandboxInfo {
        coolify_url: api_url.clone(),
        cloudflare_url: format!("{api_url}/client/v4"),
        kuma_url: api_url.clone(),
        api_url,
        app_http: local(&app_http, app_addr)?,
        app_https: local(&app_https, app_addr)?,
        ca_pem: ca.pem().to_owned(),
    };
    let shared = Arc::new(Shared {
        store,
        settings: RwLock::new(config.settings.clone()),
        faults: Faults::new(config.faults.clone()),
        config,
        ca,
        sessions: Sessions::default(),
        info,
    });
    Ok(BoundSandbox {
        shared,
        api,
        app_http,
        app_https,
    })
}

impl BoundSandbox {
    /// The addresses and the CA.
    pub fn info(&self) -> &SandboxInfo {
        &self.shared.info
    }

    /// Serves until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), SandboxError> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let signal = |mut rx: watch::Receiver<bool>| async move {
            // Err: the sender is gone, which also means stop.
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let (layer, io) = SocketIo::builder().build_layer();
        kuma::install(&io, self.shared.clone());
        let api_router = Router::new()
            .route("/api", any(coolify::handle))
            .route("/api/{*rest}", any(coolify::handle))
            .route("/client/v4", any(cloudflare::handle))
            .route("/client/v4/{*rest}", any(cloudflare::handle))
            .route("/_sandbox/{*rest}", any(admin::handle))
            .route("/v2", any(registry::handle))
            .route("/v2/{*rest}", any(registry::handle))
            .fallback(not_found)
            .layer(layer)
            .layer(axum::middleware::from_fn_with_state(
                self.shared.clone(),
                inject_faults,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.shared.clone(),
                route_app_hosts,
            ))
            .with_state(self.shared.clone());
        let app_router = Router::new()
            .fallback(apps::handle)
            .with_state(self.shared.clone());
        let api = axum::serve(
            CuttableListener(self.api),
            api_router.into_make_service_with_connect_info::<KillSwitch>(),
        )
        .with_graceful_shutdown(signal(stop_rx.clone()));
        let http = axum::serve(self.app_http, app_router.clone())
            .with_graceful_shutdown(signal(stop_rx.clone()));
        let tls_listener =
            apps::TlsListener::spawn(self.app_https, self.shared.clone(), stop_rx.clone())?;
        let https = axum::serve(tls_listener, app_router).with_graceful_shutdown(signal(stop_rx));
        let stopper = tokio::spawn(async move {
            shutdown.await;
            io.close().await;
            let _ = stop_tx.send(true);
        });
        let result = tokio::try_join!(
            async { api.await.map_err(SandboxError::Serve) },
            async { http.await.map_err(SandboxError::Serve) },
            async { https.await.map_err(SandboxError::Serve) },
        );
        stopper.abort();
        result.map(|_| ())
    }
}

/// Runs a sandbox on `addr` until `shutdown` completes (`fabrik sandbox
/// serve`). Use [`bind`] then [`BoundSandbox::run`] to learn the addresses
/// before serving.
pub async fn serve(
    addr: SocketAddr,
    config: SandboxConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SandboxError> {
    bind(addr, config).await?.run(shutdown).await
}

/// Starts a sandbox on `127.0.0.1` (ephemeral ports) in the current tokio
/// runtime, for `--sandbox` runs, tests and benchmarks.
pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    let bound = bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), config).await?;
    let info = bound.info().clone();
    let shared = bound.shared.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.run(async move {
        let _ = rx.await;
    }));
    Ok(SandboxHandle {
        api_url: info.api_url,
        coolify_url: info.coolify_url,
        cloudflare_url: info.cloudflare_url,
        kuma_url: info.kuma_url,
        app_http: info.app_http,
        app_https: info.app_https,
        ca_pem: info.ca_pem,
        credentials: shared.config.credentials.clone(),
        shared,
        stop: Some(tx),
        task: Some(task),
    })
}

/// A running in-process sandbox. Dropping it stops the servers.
pub struct SandboxHandle {
    /// Base URL of the API listener.
    pub api_url: String,
    /// The Coolify instance URL (`COOLIFY_URL`).
    pub coolify_url: String,
    /// The Cloudflare API base (`CLOUDFLARE_API_URL`).
    pub cloudflare_url: String,
    /// The Uptime Kuma URL (`UPTIME_KUMA_URL`).
    pub kuma_url: String,
    /// Where deployed apps answer plain HTTP.
    pub app_http: SocketAddr,
    /// Where deployed apps answer HTTPS.
    pub app_https: SocketAddr,
    /// The sandbox CA certificate (PEM) to trust for the apps.
    pub ca_pem: String,
    /// The credentials the services accept.
    pub credentials: Credentials,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), SandboxError>>>,
}

impl std::fmt::Debug for SandboxHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHandle")
            .field("api_url", &self.api_url)
            .field("app_http", &self.app_http)
            .field("app_https", &self.app_https)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl SandboxHandle {
    /// The addresses and the CA.
    pub fn info(&self) -> SandboxInfo {
        self.shared.info.clone()
    }

    /// The faults in force.
    pub fn faults(&self) -> FaultConfig {
        self.shared.faults.config()
    }

    /// Replaces the faults (and restarts the dice).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.shared.faults.set(faults);
    }

    /// The faults injected since they were last set, by service (`coolify`,
    /// `cloudflare`, `kuma`, `apps`): what a client should have seen, and
    /// retried or reported.
    pub fn injected(&self) -> std::collections::BTreeMap<String, Injections> {
        self.shared.faults.injected()
    }

    /// The runtime switches in force.
    pub fn settings(&self) -> Settings {
        self.shared.settings()
    }

    /// Replaces the runtime switches.
    pub fn set_settings(&self, settings: Settings) {
        self.shared.set_settings(settings);
    }

    /// The whole world as JSON, as `fabrik sandbox dump` prints it.
    pub async fn dump(&self) -> Result<serde_json::Value, SandboxError> {
        let now = self.shared.now();
        self.shared.store.read(now, world::dump).await
    }

    /// Answers a DNS question from the Cloudflare records (see
    /// `GET /_sandbox/resolve`).
    pub async fn resolve(
        &self,
        name: &str,
        record_type: &str,
    ) -> Result<serde_json::Value, SandboxError> {
        let (name, record_type) = (name.to_owned(), record_type.to_owned());
        let now = self.shared.now();
        self.shared
            .store
            .read(now, move |tx| world::resolve(tx, &name, &record_type))
            .await
    }

    /// Stops the servers and waits for them.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|_| SandboxError::Worker)?,
            None => Ok(()),
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Which simulated service a path belongs to.
pub(crate) fn service_of(path: &str) -> Option<Service> {
    if path == "/api" || path.starts_with("/api/") {
        Some(Service::Coolify)
    } else if path == "/client/v4" || path.starts_with("/client/v4/") {
        Some(Service::Cloudflare)
    } else {
        None
    }
}

/// Latency, 5xx, 429 and lost responses for the HTTP APIs (Socket.IO
/// events get theirs in the Kuma module).
async fn inject_faults(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let Some(service) = service_of(&path) else {
        return next.run(req).await;
    };
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let creating = req.method() == Method::POST;
    let verdict = shared.faults.roll(service, &path, mutating, creating);
    if !verdict.latency.is_zero() {
        tokio::time::sleep(verdict.latency).await;
    }
    match verdict.injected {
        None => next.run(req).await,
        Some(Injected::ServerError) => match service {
            Service::Cloudflare => cloudflare::server_error().into_response(),
            _ => coolify::server_error().into_response(),
        },
        Some(Injected::RateLimited { retry_after_s }) => match service {
            Service::Cloudflare => cloudflare::rate_limited(retry_after_s).into_response(),
            _ => coolify::rate_limited(retry_after_s).into_response(),
        },
        Some(Injected::LoseResponse) => {
            let switch = req
                .extensions()
                .get::<ConnectInfo<KillSwitch>>()
                .map(|info| info.0.clone());
            let response = next.run(req).await;
            // Only a committed change makes the case ambiguous.
            if response.status().is_success()
                && let Some(switch) = switch
            {
                switch.cut();
                shared.faults.lost(service);
            }
            response
        }
    }
}

/// Sends requests for a deployed app's domain to the app, whatever
/// listener they arrived on.
async fn route_app_hosts(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    match apps::host_of(&req) {
        Some(host) if !is_local_host(&host) => apps::serve_host(shared, host, req).await,
        _ => next.run(req).await,
    }
}

/// Hosts that name the sandbox itself rather than an app.
fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host.parse::<IpAddr>().is_ok()
        || host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
}

async fn not_found() -> Reply {
    Reply::text(404, "text/plain; charset=utf-8", "404 page not found\n")
}
