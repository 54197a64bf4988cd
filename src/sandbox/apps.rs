//! The deployed apps: HTTP and HTTPS for the domains of applications and
//! services, routed by `Host` (and SNI for the certificate), answering as a
//! reverse proxy in front of the deployed containers would.
//!
//! Once an application's latest successful deployment has finished, its
//! health check path answers 200 `OK` (503 under the `health_fail` fault)
//! and every other path answers 200 with a line naming the app and what was
//! deployed, so a test can tell versions apart. A known domain with nothing
//! running answers 503; an unknown one 404.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::SandboxError;
use super::ca::{DEFAULT_NAME, leaf_days};
use super::faults::{Injected, Service};
use super::reply::Reply;
use super::server::Shared;
use super::world;

/// The host a request is for: the `Host` header (or the URI authority),
/// without port, lower-case.
pub(crate) fn host_of(req: &Request) -> Option<String> {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()))?;
    let host = if let Some(rest) = raw.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default().to_owned()
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_owned(),
            _ => raw,
        }
    };
    let host = host.trim_end_matches('.').to_lowercase();
    (!host.is_empty()).then_some(host)
}

/// Entry point of the app listeners.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    match host_of(&req) {
        Some(host) => serve_host(shared, host, req).await,
        None => proxy_not_found().into_response(),
    }
}

fn proxy_not_found() -> Reply {
    Reply::text(404, "text/plain; charset=utf-8", "404 page not found\n")
}

/// Answers a request for `host` as the deployed app would.
pub(crate) async fn serve_host(shared: Arc<Shared>, host: String, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    let verdict = shared.faults.roll(Service::Apps, &path, false, false);
    if !verdict.latency.is_zero() {
        tokio::time::sleep(verdict.latency).await;
    }
    match verdict.injected {
        Some(Injected::ServerError) => {
            return Reply::text(502, "text/plain; charset=utf-8", "Bad Gateway").into_response();
        }
        Some(Injected::RateLimited { retry_after_s }) => {
            return Reply::text(429, "text/plain; charset=utf-8", "Too Many Requests")
                .with_header("retry-after", retry_after_s.to_string())
                .into_response();
        }
        _ => {}
    }
    let health_fail = shared.faults.config().health_fail;
    let now = shared.now();
    let site = shared
        .store
        .read(now, move |tx| world::site_for(tx, &host))
        .await;
    let reply = match site {
        Err(_) => Reply::text(500, "text/plain; charset=utf-8", "Internal Server Error"),
        Ok(None) => proxy_not_found(),
        Ok(Some(site)) => match site.serving {
            None => Reply::text(503, "text/plain; charset=utf-8", "no available server\n"),
            Some(artifact) => {
                let reply = if path == site.health_path {
                    if health_fail {
                        Reply::text(503, "text/plain; charset=utf-8", "Service Unavailable")
                    } else {
                        Reply::text(200, "text/plain; charset=utf-8", "OK")
                    }
                } else {
                    Reply::text(
                        200,
                        "text/plain; charset=utf-8",
                        format!("{} serves {artifact}\n", site.label),
                    )
                };
                reply.with_header("x-sandbox-deployed", artifact)
            }
        },
    };
    reply.into_response()
}

/// The HTTPS listener: accepts TCP, completes the TLS handshake with a
/// certificate for the SNI name, and hands finished streams to axum.
/// Handshakes run in their own tasks so a slow client delays nobody.
pub(crate) struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener` until `stop` turns true.
    pub(crate) fn spawn(
        listener: TcpListener,
        shared: Arc<Shared>,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, SandboxError> {
        let local = listener.local_addr().map_err(SandboxError::Serve)?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(accept_loop(listener, shared, tx, stop));
        Ok(Self { rx, local })
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = async { let _ = stop.wait_for(|s| *s).await; } => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    tokio::spawn(handshake(tcp, addr, shared.clone(), tx.clone()));
                }
                // Out of descriptors and the like: back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn handshake(
    tcp: TcpStream,
    addr: SocketAddr,
    shared: Arc<Shared>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
    let Ok(Ok(start)) = tokio::time::timeout(Duration::from_secs(10), acceptor).await else {
        return;
    };
    let sni = start
        .client_hello()
        .server_name()
        .map(|s| s.trim_end_matches('.').to_lowercase());
    let known = match sni.clone() {
        Some(name) => {
            let now = shared.now();
            shared
                .store
                .read(now, move |tx| Ok(world::site_for(tx, &name)?.is_some()))
                .await
                .unwrap_or(false)
        }
        None => false,
    };
    // Like a proxy's default certificate: unknown names get one that
    // matches nothing they asked for.
    let name = match sni {
        Some(name) if known => name,
        _ => DEFAULT_NAME.to_owned(),
    };
    let days = leaf_days(shared.faults.config().cert_days);
    let issuing = shared.clone();
    let config = tokio::task::spawn_blocking(move || issuing.ca.server_config(&name, days)).await;
    let Ok(Ok(config)) = config else {
        return;
    };
    if let Ok(stream) = start.into_stream(config).await {
        let _ = tx.send((stream, addr)).await;
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop stopped; graceful shutdown ends the server.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn req(host: &str) -> Request {
        Request::builder()
            .uri("/x")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap()
    }

    #[test]
    fn hosts_lose_their_port_and_case() {
        assert_eq!(
            host_of(&req("App.Example.com:8443")).as_deref(),
            Some("app.example.com")
        );
        assert_eq!(
            host_of(&req("app.example.com.")).as_deref(),
            Some("app.example.com")
        );
        assert_eq!(host_of(&req("[::1]:80")).as_deref(), Some("::1"));
        assert_eq!(host_of(&req("127.0.0.1")).as_deref(), Some("127.0.0.1"));
    }
}
