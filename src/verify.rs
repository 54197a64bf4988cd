//! Verification: does the deployed service answer, with a valid
//! certificate, under the names the spec gives it?
//!
//! Each check makes a real connection: TCP, a TLS handshake verified against
//! the trusted roots (the system's, plus the sandbox CA in sandbox mode),
//! an HTTP/1.1 request with the right `Host`. The only thing sandbox mode
//! changes is *where* a name connects to ([`Routing`]): the sandbox's app
//! listeners instead of the address DNS gives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Largest response body read from a checked URL.
const MAX_BODY: usize = 1024 * 1024;

/// Where names connect to.
#[derive(Debug, Clone)]
pub enum Routing {
    /// Real DNS.
    System,
    /// Every name goes to the sandbox's app listeners; DNS questions go to
    /// its resolver endpoint.
    Sandbox {
        /// Plain HTTP listener.
        http: SocketAddr,
        /// HTTPS listener.
        https: SocketAddr,
        /// `http://127.0.0.1:PORT/_sandbox/resolve`.
        resolve_url: String,
    },
}

/// Why a check failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

/// What an HTTP check saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpEvidence {
    /// The URL.
    pub url: String,
    /// The status code.
    pub status: u16,
    /// Time to the response, in milliseconds.
    pub elapsed_ms: u64,
    /// The first 200 characters of the body.
    pub body_start: String,
}

/// What a TLS check saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsEvidence {
    /// The host.
    pub host: String,
    /// The certificate's subject.
    pub subject: String,
    /// Its issuer.
    pub issuer: String,
    /// Its expiry (RFC 3339).
    pub not_after: String,
    /// Whole days left.
    pub days_left: i64,
}

/// What a DNS check saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsEvidence {
    /// The name.
    pub name: String,
    /// The addresses or values it resolved to.
    pub answers: Vec<String>,
}

/// What a check returns: the evidence, or why it failed (with what was
/// seen, when something answered).
pub type CheckResult<T> = Result<T, (CheckError, Option<T>)>;

/// The checks the engine runs after a deployment, behind a trait so that
/// the engine's own tests can answer them in memory.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    /// `url` answers `expect_status` and, if given, its body contains
    /// `expect_body`.
    async fn http(
        &self,
        url: &str,
        expect_status: u16,
        expect_body: Option<&str>,
    ) -> CheckResult<HttpEvidence>;

    /// The certificate `host:port` presents is valid for it and has at
    /// least `min_days` left at `now`.
    async fn tls(
        &self,
        host: &str,
        port: u16,
        min_days: i64,
        now: jiff::Timestamp,
    ) -> CheckResult<TlsEvidence>;

    /// `name` has `kind` answers and, if `expect` is given, one of them is
    /// it.
    async fn dns(&self, name: &str, kind: &str, expect: Option<&str>) -> CheckResult<DnsEvidence>;
}

#[async_trait::async_trait]
impl Probe for Verifier {
    async fn http(
        &self,
        url: &str,
        expect_status: u16,
        expect_body: Option<&str>,
    ) -> CheckResult<HttpEvidence> {
        Verifier::http(self, url, expect_status, expect_body).await
    }

    async fn tls(
        &self,
        host: &str,
        port: u16,
        min_days: i64,
        now: jiff::Timestamp,
    ) -> CheckResult<TlsEvidence> {
        Verifier::tls(self, host, port, min_days, now).await
    }

    async fn dns(&self, name: &str, kind: &str, expect: Option<&str>) -> CheckResult<DnsEvidence> {
        Verifier::dns(self, name, kind, expect).await
    }
}

/// Runs checks over real connections.
#[derive(Clone)]
pub struct Verifier {
    routing: Routing,
    tls: TlsConnector,
    /// Timeout of one attempt.
    attempt_timeout: Duration,
    user_agent: String,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("routing", &self.routing)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier trusting the system's roots plus `extra_roots_pem` (the
    /// sandbox CA).
    pub fn new(
        routing: Routing,
        extra_roots_pem: Option<&str>,
        attempt_timeout: Duration,
    ) -> Result<Self, CheckError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if let Some(pem) = extra_roots_pem {
            for cert in pem_certs(pem)? {
                roots
                    .add(cert)
                    .map_err(|e| CheckError(format!("cannot trust the sandbox CA: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CheckError(format!("tls setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            routing,
            tls: TlsConnector::from(Arc::new(config)),
            attempt_timeout,
            user_agent: format!("fabrik/{}", env!("CARGO_PKG_VERSION")),
        })
    }

    /// The routing in use.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    async fn connect(&self, host: &str, port: u16, https: bool) -> Result<TcpStream, CheckError> {
        let addr = match &self.routing {
            Routing::Sandbox { http, https: s, .. } => {
                // An address names the sandbox itself (its resolver); only
                // the apps' names go to the app listeners.
                match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
                    Ok(ip) => SocketAddr::new(ip, port),
                    Err(_) if https => *s,
                    Err(_) => *http,
                }
            }
            Routing::System => {
                let mut addrs = tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| CheckError(format!("cannot resolve {host}: {e}")))?;
                addrs
                    .next()
                    .ok_or_else(|| CheckError(format!("{host} resolves to no address")))?
            }
        };
        TcpStream::connect(addr)
            .await
            .map_err(|e| CheckError(format!("cannot connect to {host}:{port}: {e}")))
    }

    /// One GET of `url`: connects, handshakes (for https), sends the request
    /// and reads the response (status and at most 1 MiB of body).
    pub async fn get(&self, url: &str) -> Result<(HttpEvidence, String), CheckError> {
        let parsed = url::Url::parse(url).map_err(|e| CheckError(format!("bad url {url}: {e}")))?;
        let https = match parsed.scheme() {
            "https" => true,
            "http" => false,
            other => return Err(CheckError(format!("unsupported scheme {other} in {url}"))),
        };
        let host = parsed
            .host_str()
            .ok_or_else(|| CheckError(format!("no host in {url}")))?
            .to_owned();
        let port = parsed
            .port_or_known_default()
            .unwrap_or(if https { 443 } else { 80 });
        let path = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let start = Instant::now();
        let fut = async {
            let tcp = self.connect(&host, port, https).await?;
            let req = hyper::Request::get(path)
                .header(hyper::header::HOST, host_header(&host, port, https))
                .header(hyper::header::USER_AGENT, &self.user_agent)
                .header(hyper::header::CONNECTION, "close")
                .body(Empty::<Bytes>::new())
                .map_err(|e| CheckError(format!("bad request for {url}: {e}")))?;
            if https {
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| CheckError(format!("bad host {host}: {e}")))?;
                let tls =
                    self.tls.connect(name, tcp).await.map_err(|e| {
                        CheckError(format!("TLS handshake with {host} failed: {e}"))
                    })?;
                send(tls, req).await
            } else {
                send(tcp, req).await
            }
        };
        let (status, body) = tokio::time::timeout(self.attempt_timeout, fut)
            .await
            .map_err(|_| {
                CheckError(format!(
                    "no response from {url} within {} s",
                    self.attempt_timeout.as_secs()
                ))
            })??;
        let text = String::from_utf8_lossy(&body).into_owned();
        Ok((
            HttpEvidence {
                url: url.to_owned(),
                status,
                elapsed_ms: start.elapsed().as_millis() as u64,
                body_start: text.chars().take(200).collect(),
            },
            text,
        ))
    }

    /// An HTTP check: `url` answers `expect_status` and, if given, its body
    /// contains `expect_body`.
    pub async fn http(
        &self,
        url: &str,
        expect_status: u16,
        expect_body: Option<&str>,
    ) -> Result<HttpEvidence, (CheckError, Option<HttpEvidence>)> {
        let (ev, body) = self.get(url).await.map_err(|e| (e, None))?;
        if ev.status != expect_status {
            return Err((
                CheckError(format!(
                    "{url} answered {}, expected {expect_status}",
                    ev.status
                )),
                Some(ev),
            ));
        }
        if let Some(want) = expect_body
            && !body.contains(want)
        {
            return Err((
                CheckError(format!("the body of {url} does not contain {want:?}")),
                Some(ev),
            ));
        }
        Ok(ev)
    }

    /// A TLS check: the certificate `host` presents is valid for it (the
    /// handshake verifies chain and name) and has at least `min_days` left.
    pub async fn tls(
        &self,
        host: &str,
        port: u16,
        min_days: i64,
        now: jiff::Timestamp,
    ) -> Result<TlsEvidence, (CheckError, Option<TlsEvidence>)> {
        let fut = async {
            let tcp = self.connect(host, port, true).await?;
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| CheckError(format!("bad host {host}: {e}")))?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| CheckError(format!("TLS handshake with {host} failed: {e}")))?;
            let (_, conn) = tls.get_ref();
            let cert = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .ok_or_else(|| CheckError(format!("{host} presented no certificate")))?;
            certificate_evidence(host, cert, now)
        };
        let ev = tokio::time::timeout(self.attempt_timeout, fut)
            .await
            .map_err(|_| {
                (
                    CheckError(format!("no TLS handshake with {host} in time")),
                    None,
                )
            })?
            .map_err(|e| (e, None))?;
        if ev.days_left < min_days {
            return Err((
                CheckError(format!(
                    "the certificate of {host} expires in {} (at {}), fewer than the {min_days} required",
                    crate::text::count(ev.days_left, "day"),
                    ev.not_after
                )),
                Some(ev),
            ));
        }
        Ok(ev)
    }

    /// A DNS check: `name` resolves, and if `expect` is given, to it.
    pub async fn dns(
        &self,
        name: &str,
        kind: &str,
        expect: Option<&str>,
    ) -> Result<DnsEvidence, (CheckError, Option<DnsEvidence>)> {
        let answers = match &self.routing {
            Routing::System => {
                if kind != "A" && kind != "AAAA" {
                    return Err((
                        CheckError(format!(
                            "only A and AAAA names can be checked against the system resolver, not {kind}"
                        )),
                        None,
                    ));
                }
                let addrs = tokio::time::timeout(
                    self.attempt_timeout,
                    tokio::net::lookup_host((name, 443)),
                )
                .await
                .map_err(|_| (CheckError(format!("resolving {name} timed out")), None))?
                .map_err(|e| (CheckError(format!("cannot resolve {name}: {e}")), None))?;
                addrs
                    .filter(|a| (kind == "A") == a.is_ipv4())
                    .map(|a| a.ip().to_string())
                    .collect::<Vec<_>>()
            }
            Routing::Sandbox { resolve_url, .. } => {
                let (ev, body) = self
                    .get(&format!("{resolve_url}?name={name}&type={kind}"))
                    .await
                    .map_err(|e| (e, None))?;
                if ev.status != 200 {
                    return Err((
                        CheckError(format!("the sandbox resolver answered {}", ev.status)),
                        None,
                    ));
                }
                parse_answers(&body)
            }
        };
        let ev = DnsEvidence {
            name: name.to_owned(),
            answers,
        };
        if ev.answers.is_empty() {
            return Err((CheckError(format!("{name} has no {kind} answer")), Some(ev)));
        }
        if let Some(want) = expect
            && !ev.answers.iter().any(|a| a == want)
        {
            return Err((
                CheckError(format!(
                    "{name} resolves to {}, not {want}",
                    ev.answers.join(", ")
                )),
                Some(ev),
            ));
        }
        Ok(ev)
    }
}

fn host_header(host: &str, port: u16, https: bool) -> String {
    let default = if https { 443 } else { 80 };
    if port == default {
        host.to_owned()
    } else {
        format!("{host}:{port}")
    }
}

async fn send<S>(stream: S, req: hyper::Request<Empty<Bytes>>) -> Result<(u16, Vec<u8>), CheckError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| CheckError(format!("HTTP handshake failed: {e}")))?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| CheckError(format!("request failed: {e}")))?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| CheckError(format!("reading the response failed: {e}")))?
        .to_bytes()
        .to_vec();
    driver.abort();
    Ok((status, body))
}

fn certificate_evidence(
    host: &str,
    der: &CertificateDer<'_>,
    now: jiff::Timestamp,
) -> Result<TlsEvidence, CheckError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| CheckError(format!("cannot read the certificate of {host}: {e}")))?;
    let not_after = cert.validity().not_after.timestamp();
    let expiry = jiff::Timestamp::from_second(not_after)
        .map_err(|e| CheckError(format!("bad expiry in the certificate of {host}: {e}")))?;
    let days_left = (not_after - now.as_second()).div_euclid(86_400);
    Ok(TlsEvidence {
        host: host.to_owned(),
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_after: expiry.to_string(),
        days_left,
    })
}

fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, CheckError> {
    use rustls_pki_types::pem::PemObject as _;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    certs.map_err(|e| CheckError(format!("cannot read the sandbox CA certificate: {e}")))
}

fn parse_answers(body: &str) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(alias = "content", alias = "data")]
        value: String,
    }
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(default, alias = "Answer")]
        answers: Vec<Answer>,
    }
    serde_json::from_str::<Reply>(body)
        .map(|r| r.answers.into_iter().map(|a| a.value).collect())
        .or_else(|_| serde_json::from_str::<Vec<String>>(body))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    struct Pki {
        ca_pem: String,
        server: Arc<rustls::ServerConfig>,
    }

    /// A CA and a leaf for `host` valid until `days` from now.
    fn pki(host: &str, days: i64) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let mut leaf = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
        let end = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * days + 12))
            .unwrap()
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .date();
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after =
            rcgen::date_time_ymd(i32::from(end.year()), end.month() as u8, end.day() as u8);
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone()],
                rustls_pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap(),
            )
            .unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        }
    }

    /// Serves one fixed response on plain and TLS listeners; returns their
    /// addresses.
    async fn serve(
        pki: &Pki,
        status: &'static str,
        body: &'static str,
    ) -> (SocketAddr, SocketAddr) {
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = (plain.local_addr().unwrap(), tls.local_addr().unwrap());
        let reply = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let r1 = reply.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = plain.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(r1.as_bytes()).await;
            }
        });
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = tls.accept().await {
                if let Ok(mut s) = acceptor.accept(s).await {
                    let mut buf = vec![0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s.write_all(reply.as_bytes()).await;
                    let _ = s.shutdown().await;
                }
            }
        });
        addrs
    }

    fn verifier(addrs: (SocketAddr, SocketAddr), ca: Option<&str>) -> Verifier {
        Verifier::new(
            Routing::Sandbox {
                http: addrs.0,
                https: addrs.1,
                resolve_url: "http://127.0.0.1:9/_sandbox/resolve".into(),
            },
            ca,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn dns_questions_go_to_the_sandbox_resolver_not_to_the_apps() {
        let pki = pki("app.test", 90);
        let apps = serve(&pki, "404 Not Found", "404 page not found").await;
        let resolver = serve(
            &pki,
            "200 OK",
            r#"{"name":"app.test","type":"A","status":"NOERROR","answers":[{"content":"203.0.113.10"}]}"#,
        )
        .await;
        let v = Verifier::new(
            Routing::Sandbox {
                http: apps.0,
                https: apps.1,
                resolve_url: format!("http://{}/_sandbox/resolve", resolver.0),
            },
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        let ev = v.dns("app.test", "A", Some("203.0.113.10")).await.unwrap();
        assert_eq!(ev.answers, vec!["203.0.113.10"]);
        // App names still go to the app listeners.
        let app = v.http("http://app.test/", 404, None).await.unwrap();
        assert_eq!(app.status, 404);
    }

    #[tokio::test]
    async fn an_https_check_passes_with_the_right_status_and_body() {
        let pki = pki("app.test", 90);
        let addrs = serve(&pki, "200 OK", "hello from v2").await;
        let v = verifier(addrs, Some(&pki.ca_pem));
        let ev = v
            .http("https://app.test/health", 200, Some("v2"))
            .await
            .unwrap();
        assert_eq!(ev.status, 200);
        let (err, ev) = v
            .http("https://app.test/", 200, Some("v3"))
            .await
            .unwrap_err();
        assert!(err.0.contains("does not contain"), "{err}");
        assert_eq!(ev.unwrap().status, 200);
        let plain = v.http("http://app.test/", 200, None).await.unwrap();
        assert_eq!(plain.status, 200);
    }

    #[tokio::test]
    async fn a_wrong_status_fails_with_evidence() {
        let pki = pki("app.test", 90);
        let addrs = serve(&pki, "503 Service Unavailable", "down").await;
        let v = verifier(addrs, Some(&pki.ca_pem));
        let (err, ev) = v
            .http("https://app.test/health", 200, None)
            .await
            .unwrap_err();
        assert!(err.0.contains("answered 503"), "{err}");
        assert_eq!(ev.unwrap().status, 503);
    }

    #[tokio::test]
    async fn an_untrusted_certificate_fails_the_handshake() {
        let pki = pki("app.test", 90);
        let addrs = serve(&pki, "200 OK", "x").await;
        let v = verifier(addrs, None);
        let (err, _) = v.http("https://app.test/", 200, None).await.unwrap_err();
        assert!(err.0.contains("TLS handshake"), "{err}");
        // The name is checked too: a certificate for app.test is no good
        // for other.test even from a trusted CA.
        let v = verifier(addrs, Some(&pki.ca_pem));
        let (err, _) = v.http("https://other.test/", 200, None).await.unwrap_err();
        assert!(err.0.contains("TLS handshake"), "{err}");
    }

    #[tokio::test]
    async fn the_tls_check_counts_days_left() {
        let pki = pki("app.test", 5);
        let addrs = serve(&pki, "200 OK", "x").await;
        let v = verifier(addrs, Some(&pki.ca_pem));
        let now = jiff::Timestamp::now();
        let ok = v.tls("app.test", 443, 3, now).await.unwrap();
        assert!((4..=6).contains(&ok.days_left), "{ok:?}");
        let (err, ev) = v.tls("app.test", 443, 14, now).await.unwrap_err();
        assert!(err.0.contains("fewer than the 14 required"), "{err}");
        assert_eq!(ev.unwrap().days_left, ok.days_left);
    }
}
