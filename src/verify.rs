//! Verification: does the deployed service answer, with a valid
//! certificate, under the names the spec gives it?
//!
//! Each check makes a real connection: TCP, a TLS handshake verified against
//! the trusted roots (the system's, plus the sandbox CA in sandbox mode),
//! an HTTP/1.1 request with the right `Host`. Names are resolved with a
//! real DNS resolver (the system's configuration), and HTTP and TLS checks
//! try every address a name resolves to. The only thing sandbox mode
//! changes is *where* a name connects to ([`Routing`]): the sandbox's app
//! listeners instead of the addresses DNS gives, and its resolver endpoint
//! for DNS questions.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::rr::{RData, RecordType as Rr};
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::spec::model::{DnsExpectation, RecordType, canonical_content, cloudflare_edge};

/// Largest response body read from a checked URL.
const MAX_BODY: usize = 1024 * 1024;

/// Where names connect to.
#[derive(Debug, Clone)]
pub enum Routing {
    /// Real DNS, as the system's resolver configuration says (Google's
    /// public resolvers when it cannot be read).
    System,
    /// Real DNS, asking this one name server (a resolver of one's own; a
    /// stub server in tests).
    Nameserver(SocketAddr),
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
    /// The addresses that answered (real DNS only: in the sandbox every
    /// name goes to its listener).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// The addresses of the name that took no connection, each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
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
    /// The addresses that presented a certificate (real DNS only); the
    /// one above is the one that expires first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// The addresses of the name that took no connection, each with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
}

/// What a DNS check saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsEvidence {
    /// The name.
    pub name: String,
    /// The record type asked for.
    #[serde(rename = "type")]
    pub kind: RecordType,
    /// The answers of that type, in canonical form (TXT character-strings
    /// joined, CNAME targets lower case without the trailing dot).
    pub answers: Vec<String>,
    /// What they were compared with.
    pub compared_with: String,
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

    /// `name`'s `kind` answers are what `expected` says.
    async fn dns(
        &self,
        name: &str,
        kind: RecordType,
        expected: &DnsExpectation,
    ) -> CheckResult<DnsEvidence>;
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

    async fn dns(
        &self,
        name: &str,
        kind: RecordType,
        expected: &DnsExpectation,
    ) -> CheckResult<DnsEvidence> {
        Verifier::dns(self, name, kind, expected).await
    }
}

/// Runs checks over real connections.
#[derive(Clone)]
pub struct Verifier {
    routing: Routing,
    tls: TlsConnector,
    /// The resolver of real DNS (`None` under the sandbox's routing).
    resolver: Option<TokioResolver>,
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

/// One address a host name connects to, and how messages name it.
#[derive(Debug, Clone, Copy)]
struct Dial {
    addr: SocketAddr,
    /// Whether the address came from DNS (then messages name it; the
    /// sandbox's listener is no news to anyone).
    resolved: bool,
}

impl Dial {
    /// ` at ADDRESS`, for a resolved address.
    fn at(&self) -> String {
        if self.resolved {
            format!(" at {}", self.addr.ip())
        } else {
            String::new()
        }
    }
}

/// How an exchange with one address failed: before a connection was
/// made (the name's other addresses may still answer), or after.
enum Failure {
    Connect(CheckError),
    Exchange(CheckError),
}

/// The parts of a checked URL.
struct Target {
    host: String,
    port: u16,
    https: bool,
    path: String,
}

impl Target {
    fn parse(url: &str) -> Result<Self, CheckError> {
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
        Ok(Self {
            host,
            port,
            https,
            path,
        })
    }
}

/// What the addresses of a name did, sorted into those that answered and
/// those that took no connection.
struct Spread<T> {
    answered: Vec<(Dial, Result<T, CheckError>)>,
    unreachable: Vec<String>,
}

impl<T> Spread<T> {
    fn of(results: Vec<(Dial, Result<T, Failure>)>) -> Self {
        let mut answered = Vec::new();
        let mut unreachable = Vec::new();
        for (dial, r) in results {
            match r {
                Ok(v) => answered.push((dial, Ok(v))),
                Err(Failure::Exchange(e)) => answered.push((dial, Err(e))),
                Err(Failure::Connect(e)) => unreachable.push(e.0),
            }
        }
        Self {
            answered,
            unreachable,
        }
    }

    /// The addresses that answered, as evidence (resolved ones only).
    fn addresses(&self) -> Vec<String> {
        self.answered
            .iter()
            .filter(|(d, _)| d.resolved)
            .map(|(d, _)| d.addr.ip().to_string())
            .collect()
    }

    /// The error when no address took a connection.
    fn none_answered(&self, host: &str, port: u16) -> Option<CheckError> {
        self.answered
            .is_empty()
            .then(|| unreachable(host, port, &self.unreachable))
    }
}

/// The error when none of `host`'s addresses took a connection.
fn unreachable(host: &str, port: u16, why: &[String]) -> CheckError {
    CheckError(match why {
        [one] => one.clone(),
        all => format!(
            "cannot connect to {host}:{port} at any of its addresses: {}",
            all.join("; ")
        ),
    })
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
            resolver: resolver(&routing, attempt_timeout),
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

    /// Every address `host` connects to: the sandbox's listener, an
    /// address written as the host, or what DNS answers for A and AAAA.
    async fn dials(&self, host: &str, port: u16, https: bool) -> Result<Vec<Dial>, CheckError> {
        let literal = host.trim_matches(['[', ']']).parse::<IpAddr>().ok();
        let resolver = match (&self.routing, &self.resolver, literal) {
            (_, _, Some(ip)) => {
                // An address names itself (the sandbox's own API, say).
                return Ok(vec![Dial {
                    addr: SocketAddr::new(ip, port),
                    resolved: false,
                }]);
            }
            (Routing::Sandbox { http, https: s, .. }, _, None) => {
                let addr = if https { *s } else { *http };
                return Ok(vec![Dial {
                    addr,
                    resolved: false,
                }]);
            }
            (_, Some(resolver), None) => resolver,
            (_, None, None) => return Err(CheckError(format!("no resolver for {host}"))),
        };
        let ips = tokio::time::timeout(self.attempt_timeout, resolver.lookup_ip(host))
            .await
            .map_err(|_| CheckError(format!("resolving {host} timed out")))?
            .map_err(|e| CheckError(format!("cannot resolve {host}: {e}")))?;
        let mut dials: Vec<Dial> = Vec::new();
        for ip in ips.iter() {
            if !dials.iter().any(|d| d.addr.ip() == ip) {
                dials.push(Dial {
                    addr: SocketAddr::new(ip, port),
                    resolved: true,
                });
            }
        }
        if dials.is_empty() {
            return Err(CheckError(format!("{host} resolves to no address")));
        }
        Ok(dials)
    }

    /// A TCP connection to one address, within the attempt's time.
    async fn connect(&self, dial: Dial, host: &str, port: u16) -> Result<TcpStream, Failure> {
        let at = dial.at();
        match tokio::time::timeout(self.attempt_timeout, TcpStream::connect(dial.addr)).await {
            Ok(Ok(tcp)) => Ok(tcp),
            Ok(Err(e)) => Err(Failure::Connect(CheckError(format!(
                "cannot connect to {host}:{port}{at}: {e}"
            )))),
            Err(_) => Err(Failure::Connect(CheckError(format!(
                "cannot connect to {host}:{port}{at} within {} s",
                self.attempt_timeout.as_secs()
            )))),
        }
    }

    /// One GET of `target` at one address: connects, handshakes (for
    /// https), sends the request and reads the response (status and at
    /// most 1 MiB of body).
    async fn exchange(
        &self,
        url: &str,
        target: &Target,
        dial: Dial,
    ) -> Result<(HttpEvidence, String), Failure> {
        let Target {
            host,
            port,
            https,
            path,
        } = target;
        let start = Instant::now();
        let tcp = self.connect(dial, host, *port).await?;
        let at = dial.at();
        let fut = async {
            let req = hyper::Request::get(path.as_str())
                .header(hyper::header::HOST, host_header(host, *port, *https))
                .header(hyper::header::USER_AGENT, &self.user_agent)
                .header(hyper::header::CONNECTION, "close")
                .body(Empty::<Bytes>::new())
                .map_err(|e| CheckError(format!("bad request for {url}: {e}")))?;
            if *https {
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| CheckError(format!("bad host {host}: {e}")))?;
                let tls = self.tls.connect(name, tcp).await.map_err(|e| {
                    CheckError(format!("TLS handshake with {host}{at} failed: {e}"))
                })?;
                send(tls, req).await
            } else {
                send(tcp, req).await
            }
        };
        let (status, body) = tokio::time::timeout(self.attempt_timeout, fut)
            .await
            .map_err(|_| {
                Failure::Exchange(CheckError(format!(
                    "no response from {url}{at} within {} s",
                    self.attempt_timeout.as_secs()
                )))
            })?
            .map_err(Failure::Exchange)?;
        let text = String::from_utf8_lossy(&body).into_owned();
        Ok((
            HttpEvidence {
                url: url.to_owned(),
                status,
                elapsed_ms: start.elapsed().as_millis() as u64,
                body_start: text.chars().take(200).collect(),
                addresses: Vec::new(),
                unreachable: Vec::new(),
            },
            text,
        ))
    }

    /// One GET of `url`, as a client makes it: the first address that
    /// takes a connection answers.
    pub async fn get(&self, url: &str) -> Result<(HttpEvidence, String), CheckError> {
        let target = Target::parse(url)?;
        let mut why = Vec::new();
        for dial in self.dials(&target.host, target.port, target.https).await? {
            match self.exchange(url, &target, dial).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Exchange(e)) => return Err(e),
                Err(Failure::Connect(e)) => why.push(e.0),
            }
        }
        Err(unreachable(&target.host, target.port, &why))
    }

    /// An HTTP check: every address of the URL's host that takes a
    /// connection answers `expect_status` and, if given, a body containing
    /// `expect_body`; at least one does. Addresses that take no connection
    /// are named in the evidence (a client moves on to the next address).
    pub async fn http(
        &self,
        url: &str,
        expect_status: u16,
        expect_body: Option<&str>,
    ) -> Result<HttpEvidence, (CheckError, Option<HttpEvidence>)> {
        let target = Target::parse(url).map_err(|e| (e, None))?;
        let dials = self
            .dials(&target.host, target.port, target.https)
            .await
            .map_err(|e| (e, None))?;
        let results = futures_util::future::join_all(
            dials
                .iter()
                .map(|d| async { (*d, self.exchange(url, &target, *d).await) }),
        )
        .await;
        let spread = Spread::of(results);
        if let Some(e) = spread.none_answered(&target.host, target.port) {
            return Err((e, None));
        }
        let addresses = spread.addresses();
        let mut first = None;
        for (dial, answer) in spread.answered {
            let (mut ev, body) = answer.map_err(|e| (e, None))?;
            ev.addresses.clone_from(&addresses);
            ev.unreachable.clone_from(&spread.unreachable);
            let at = dial.at();
            if ev.status != expect_status {
                return Err((
                    CheckError(format!(
                        "{url} answered {}{at}, expected {expect_status}",
                        ev.status
                    )),
                    Some(ev),
                ));
            }
            if let Some(want) = expect_body
                && !body.contains(want)
            {
                return Err((
                    CheckError(format!("the body of {url}{at} does not contain {want:?}")),
                    Some(ev),
                ));
            }
            first.get_or_insert(ev);
        }
        first.ok_or_else(|| (CheckError(format!("{url} has no address")), None))
    }

    /// The certificate one address presents for `host`.
    async fn certificate(
        &self,
        host: &str,
        port: u16,
        dial: Dial,
        now: jiff::Timestamp,
    ) -> Result<TlsEvidence, Failure> {
        let tcp = self.connect(dial, host, port).await?;
        let at = dial.at();
        let fut = async {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| CheckError(format!("bad host {host}: {e}")))?;
            let tls =
                self.tls.connect(name, tcp).await.map_err(|e| {
                    CheckError(format!("TLS handshake with {host}{at} failed: {e}"))
                })?;
            let (_, conn) = tls.get_ref();
            let cert = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .ok_or_else(|| CheckError(format!("{host}{at} presented no certificate")))?;
            certificate_evidence(host, cert, now)
        };
        tokio::time::timeout(self.attempt_timeout, fut)
            .await
            .map_err(|_| {
                Failure::Exchange(CheckError(format!(
                    "no TLS handshake with {host}{at} in time"
                )))
            })?
            .map_err(Failure::Exchange)
    }

    /// A TLS check: the certificate every address of `host` presents is
    /// valid for it (the handshake verifies chain and name) and has at
    /// least `min_days` left.
    pub async fn tls(
        &self,
        host: &str,
        port: u16,
        min_days: i64,
        now: jiff::Timestamp,
    ) -> Result<TlsEvidence, (CheckError, Option<TlsEvidence>)> {
        let dials = self.dials(host, port, true).await.map_err(|e| (e, None))?;
        let results = futures_util::future::join_all(
            dials
                .iter()
                .map(|d| async { (*d, self.certificate(host, port, *d, now).await) }),
        )
        .await;
        let spread = Spread::of(results);
        if let Some(e) = spread.none_answered(host, port) {
            return Err((e, None));
        }
        let addresses = spread.addresses();
        let mut soonest: Option<(Dial, TlsEvidence)> = None;
        for (dial, answer) in spread.answered {
            let ev = answer.map_err(|e| (e, None))?;
            if soonest
                .as_ref()
                .is_none_or(|(_, s)| ev.days_left < s.days_left)
            {
                soonest = Some((dial, ev));
            }
        }
        let Some((dial, mut ev)) = soonest else {
            return Err((CheckError(format!("{host} has no address")), None));
        };
        ev.addresses = addresses;
        ev.unreachable = spread.unreachable;
        if ev.days_left < min_days {
            return Err((
                CheckError(format!(
                    "the certificate of {host}{} expires in {} (at {}), fewer than the {min_days} required",
                    dial.at(),
                    crate::text::count(ev.days_left, "day"),
                    ev.not_after
                )),
                Some(ev),
            ));
        }
        Ok(ev)
    }

    /// A DNS check: asks for `name`'s `kind` records and compares the
    /// answers with `expected`.
    pub async fn dns(
        &self,
        name: &str,
        kind: RecordType,
        expected: &DnsExpectation,
    ) -> Result<DnsEvidence, (CheckError, Option<DnsEvidence>)> {
        let answers = match (&self.routing, &self.resolver) {
            (Routing::Sandbox { resolve_url, .. }, _) => {
                self.ask_sandbox(resolve_url, name, kind).await
            }
            (_, Some(resolver)) => self.ask(resolver, name, kind).await,
            (_, None) => Err(CheckError(format!("no resolver for {name}"))),
        }
        .map_err(|e| (e, None))?;
        judge(name, kind, expected, answers.values, &answers.status)
    }

    /// `name`'s `kind` answers from real DNS.
    async fn ask(
        &self,
        resolver: &TokioResolver,
        name: &str,
        kind: RecordType,
    ) -> Result<Answers, CheckError> {
        let rr = match kind {
            RecordType::A => Rr::A,
            RecordType::Aaaa => Rr::AAAA,
            RecordType::Cname => Rr::CNAME,
            RecordType::Txt => Rr::TXT,
        };
        // Fully qualified: no search domain is tried.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        let lookup = tokio::time::timeout(self.attempt_timeout, resolver.lookup(fqdn, rr))
            .await
            .map_err(|_| CheckError(format!("resolving {name} {kind} timed out")))?;
        let lookup = match lookup {
            Ok(l) => l,
            Err(e) if e.is_nx_domain() => return Ok(Answers::none("NXDOMAIN")),
            Err(e) if e.is_no_records_found() => return Ok(Answers::none("NOERROR")),
            Err(e) => return Err(CheckError(format!("cannot resolve {name} {kind}: {e}"))),
        };
        let values = lookup
            .record_iter()
            .filter(|r| r.record_type() == rr)
            .filter_map(|r| match r.data() {
                RData::A(a) => Some(a.0.to_string()),
                RData::AAAA(a) => Some(a.0.to_string()),
                RData::CNAME(c) => Some(canonical_content(kind, &c.0.to_ascii())),
                // The character-strings of one record are one text
                // (RFC 7208 §3.3 joins them the same way).
                RData::TXT(t) => Some(
                    t.txt_data()
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect(),
                ),
                _ => None,
            })
            .collect();
        Ok(Answers {
            values,
            status: "NOERROR".to_owned(),
        })
    }

    /// `name`'s `kind` answers from the sandbox's resolver endpoint.
    async fn ask_sandbox(
        &self,
        resolve_url: &str,
        name: &str,
        kind: RecordType,
    ) -> Result<Answers, CheckError> {
        let (ev, body) = self
            .get(&format!("{resolve_url}?name={name}&type={kind}"))
            .await?;
        if ev.status != 200 {
            return Err(CheckError(format!(
                "the sandbox resolver answered {}",
                ev.status
            )));
        }
        Ok(Answers::from_sandbox(&body, kind))
    }
}

/// The answers of one type to one question.
#[derive(Debug)]
struct Answers {
    /// In canonical form.
    values: Vec<String>,
    /// The response code, with why when the resolver says (`NXDOMAIN`,
    /// `SERVFAIL: zone example.com is pending ...`).
    status: String,
}

impl Answers {
    fn none(status: &str) -> Self {
        Self {
            values: Vec::new(),
            status: status.to_owned(),
        }
    }

    /// Reads the sandbox resolver's reply: `{status, reason?, answers:
    /// [{type, content}]}`, contents in presentation form.
    fn from_sandbox(body: &str, kind: RecordType) -> Self {
        #[derive(serde::Deserialize)]
        struct Answer {
            #[serde(rename = "type")]
            kind: String,
            content: String,
        }
        #[derive(serde::Deserialize)]
        struct Reply {
            status: String,
            #[serde(default)]
            reason: Option<String>,
            #[serde(default)]
            answers: Vec<Answer>,
        }
        match serde_json::from_str::<Reply>(body) {
            Ok(r) => Self {
                values: r
                    .answers
                    .iter()
                    .filter(|a| a.kind == kind.as_str())
                    .map(|a| canonical_content(kind, &a.content))
                    .collect(),
                status: match r.reason {
                    Some(why) => format!("{}: {why}", r.status),
                    None => r.status,
                },
            },
            Err(e) => Self::none(&format!("unreadable answer: {e}")),
        }
    }
}

/// Compares `name`'s `kind` answers (canonical, see
/// [`canonical_content`]) with what was expected; `status` is the
/// resolver's response code, shown when nothing answered.
pub fn judge(
    name: &str,
    kind: RecordType,
    expected: &DnsExpectation,
    answers: Vec<String>,
    status: &str,
) -> CheckResult<DnsEvidence> {
    let list = |v: &[String]| v.join(", ");
    let compared_with = match expected {
        DnsExpectation::Listed(v) => format!("expect: {}", list(v)),
        DnsExpectation::Records(v) => format!("the spec's {kind} records: {}", list(v)),
        DnsExpectation::CloudflareEdge => {
            format!("Cloudflare's edge addresses ({name} is proxied)")
        }
        DnsExpectation::Any => {
            format!("any answer (the spec has no {kind} record for {name})")
        }
    };
    let ev = DnsEvidence {
        name: name.to_owned(),
        kind,
        answers,
        compared_with,
    };
    if ev.answers.is_empty() {
        let why = format!("{name} has no {kind} answer ({status})");
        return Err((
            CheckError(crate::text::printable_line(&why).into_owned()),
            Some(ev),
        ));
    }
    let seen = list(&ev.answers);
    let missing = |want: &[String]| -> Vec<String> {
        want.iter()
            .filter(|w| !ev.answers.contains(w))
            .cloned()
            .collect()
    };
    let problem = match expected {
        DnsExpectation::Listed(want) => {
            let gone = missing(want);
            (!gone.is_empty()).then(|| format!("{name} resolves to {seen}, not {}", list(&gone)))
        }
        DnsExpectation::Records(want) => {
            let gone = missing(want);
            let extra: Vec<String> = if kind == RecordType::Txt {
                Vec::new()
            } else {
                ev.answers
                    .iter()
                    .filter(|a| !want.contains(a))
                    .cloned()
                    .collect()
            };
            (!gone.is_empty() || !extra.is_empty()).then(|| {
                format!(
                    "{name} resolves to {seen} ({kind}), but the spec's records say {}",
                    list(want)
                )
            })
        }
        DnsExpectation::CloudflareEdge => {
            let foreign: Vec<String> = ev
                .answers
                .iter()
                .filter(|a| !a.parse::<IpAddr>().is_ok_and(cloudflare_edge))
                .cloned()
                .collect();
            (!foreign.is_empty()).then(|| {
                format!(
                    "{name} is proxied, but resolves to {} outside Cloudflare's edge addresses (the zone may not be active, or the record not proxied)",
                    list(&foreign)
                )
            })
        }
        DnsExpectation::Any => None,
    };
    // Answers are text from outside: escaped before they are shown or
    // journaled.
    let mut ev = ev;
    for a in &mut ev.answers {
        *a = crate::text::printable_line(a).into_owned();
    }
    match problem {
        Some(p) => Err((
            CheckError(crate::text::printable_line(&p).into_owned()),
            Some(ev),
        )),
        None => Ok(ev),
    }
}

/// The resolver of real DNS for `routing`, its timeout that of one
/// attempt, without a cache (checks are retried until a change
/// propagates: a cached "no such name" would outlive it).
fn resolver(routing: &Routing, timeout: Duration) -> Option<TokioResolver> {
    let provider = TokioConnectionProvider::default();
    let mut builder = match routing {
        Routing::Sandbox { .. } => return None,
        Routing::System => TokioResolver::builder_tokio().unwrap_or_else(|_| {
            TokioResolver::builder_with_config(ResolverConfig::default(), provider)
        }),
        Routing::Nameserver(addr) => TokioResolver::builder_with_config(
            ResolverConfig::from_parts(
                None,
                Vec::new(),
                NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true),
            ),
            provider,
        ),
    };
    let options = builder.options_mut();
    options.timeout = timeout;
    options.attempts = 1;
    options.cache_size = 0;
    options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
    Some(builder.build())
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
        addresses: Vec::new(),
        unreachable: Vec::new(),
    })
}

fn pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, CheckError> {
    use rustls_pki_types::pem::PemObject as _;
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    certs.map_err(|e| CheckError(format!("cannot read the sandbox CA certificate: {e}")))
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
            r#"{"name":"app.test","type":"A","status":"NOERROR","answers":[{"type":"A","content":"203.0.113.10"}]}"#,
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
        let listed = DnsExpectation::Listed(vec!["203.0.113.10".into()]);
        let ev = v.dns("app.test", RecordType::A, &listed).await.unwrap();
        assert_eq!(ev.answers, vec!["203.0.113.10"]);
        // App names still go to the app listeners.
        let app = v.http("http://app.test/", 404, None).await.unwrap();
        assert_eq!(app.status, 404);
    }

    /// A DNS server on 127.0.0.1 (UDP) answering from `records`: a name
    /// it holds nothing for is NXDOMAIN.
    async fn stub_dns(records: Vec<(&'static str, RData)>) -> SocketAddr {
        use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
        use hickory_resolver::proto::rr::{Name, Record};
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, from)) = socket.recv_from(&mut buf).await {
                let query = Message::from_vec(&buf[..n]).unwrap();
                let q = query.queries()[0].clone();
                let mut reply = Message::new();
                reply
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(query.op_code())
                    .set_recursion_desired(query.recursion_desired())
                    .set_recursion_available(true)
                    .add_query(q.clone());
                let held: Vec<&(&str, RData)> = records
                    .iter()
                    .filter(|(n, _)| Name::from_ascii(n).unwrap() == *q.name())
                    .collect();
                if held.is_empty() {
                    reply.set_response_code(ResponseCode::NXDomain);
                }
                for (name, data) in held {
                    if data.record_type() == q.query_type() {
                        let name = Name::from_ascii(name).unwrap();
                        reply.add_answer(Record::from_rdata(name, 60, data.clone()));
                    }
                }
                let _ = socket.send_to(&reply.to_vec().unwrap(), from).await;
            }
        });
        addr
    }

    fn through(nameserver: SocketAddr, ca: Option<&str>) -> Verifier {
        Verifier::new(Routing::Nameserver(nameserver), ca, Duration::from_secs(5)).unwrap()
    }

    fn a(ip: &str) -> RData {
        RData::A(hickory_resolver::proto::rr::rdata::A(ip.parse().unwrap()))
    }

    #[tokio::test]
    async fn real_dns_answers_txt_cname_and_addresses_compared_canonically() {
        use hickory_resolver::proto::rr::Name;
        use hickory_resolver::proto::rr::rdata::{AAAA, CNAME, TXT};
        let ns = stub_dns(vec![
            // One TXT record of two character-strings, as long values
            // travel.
            (
                "shop.test.",
                RData::TXT(TXT::new(vec![
                    "v=spf1 include:_spf.".into(),
                    "example.net -all".into(),
                ])),
            ),
            (
                "www.shop.test.",
                RData::CNAME(CNAME(Name::from_ascii("Shop.Test.").unwrap())),
            ),
            ("shop.test.", a("203.0.113.10")),
            ("shop.test.", a("203.0.113.11")),
            (
                "shop.test.",
                RData::AAAA(AAAA("2001:db8::1".parse().unwrap())),
            ),
            // Another TXT record of the name, made for another purpose.
            (
                "shop.test.",
                RData::TXT(TXT::new(vec!["site-verification=abc".into()])),
            ),
        ])
        .await;
        let v = through(ns, None);
        let records = |v: &[&str]| DnsExpectation::Records(v.iter().map(|s| (*s).into()).collect());
        let txt = v
            .dns(
                "shop.test",
                RecordType::Txt,
                &records(&["v=spf1 include:_spf.example.net -all"]),
            )
            .await
            .unwrap();
        assert_eq!(
            txt.answers,
            vec![
                "v=spf1 include:_spf.example.net -all",
                "site-verification=abc"
            ]
        );
        let cname = v
            .dns("www.shop.test", RecordType::Cname, &records(&["shop.test"]))
            .await
            .unwrap();
        assert_eq!(cname.answers, vec!["shop.test"]);
        // AAAA compared as addresses: the spec may spell it long.
        let listed = DnsExpectation::Listed(vec![canonical_content(
            RecordType::Aaaa,
            "2001:DB8:0:0:0:0:0:1",
        )]);
        v.dns("shop.test", RecordType::Aaaa, &listed).await.unwrap();
        // Every listed value must be among the answers.
        let listed = DnsExpectation::Listed(vec!["203.0.113.10".into(), "203.0.113.99".into()]);
        let (err, _) = v
            .dns("shop.test", RecordType::A, &listed)
            .await
            .unwrap_err();
        assert_eq!(
            err.0,
            "shop.test resolves to 203.0.113.10, 203.0.113.11, not 203.0.113.99"
        );
        // The spec's records, as a set: one address missing fails, and
        // says what it saw.
        let (err, ev) = v
            .dns("shop.test", RecordType::A, &records(&["203.0.113.10"]))
            .await
            .unwrap_err();
        assert!(
            err.0.contains("the spec's records say 203.0.113.10"),
            "{err}"
        );
        assert_eq!(ev.unwrap().answers, vec!["203.0.113.10", "203.0.113.11"]);
        v.dns(
            "shop.test",
            RecordType::A,
            &records(&["203.0.113.10", "203.0.113.11"]),
        )
        .await
        .unwrap();
        // A name that does not exist says so.
        let (err, _) = v
            .dns("nope.test", RecordType::A, &DnsExpectation::Any)
            .await
            .unwrap_err();
        assert!(err.0.contains("NXDOMAIN"), "{err}");
        // A name with nothing to compare passes on any answer, and the
        // evidence says so.
        let any = v
            .dns("shop.test", RecordType::A, &DnsExpectation::Any)
            .await
            .unwrap();
        assert!(any.compared_with.starts_with("any answer"), "{any:?}");
    }

    #[test]
    fn the_system_routing_asks_the_system_s_name_servers() {
        // The system's configuration, or the defaults when it cannot be
        // read.
        let expected = hickory_resolver::system_conf::read_system_conf()
            .map_or_else(|_| ResolverConfig::default(), |(config, _)| config);
        let addrs = |c: &ResolverConfig| -> Vec<SocketAddr> {
            c.name_servers().iter().map(|n| n.socket_addr).collect()
        };
        let v = Verifier::new(Routing::System, None, Duration::from_secs(3)).unwrap();
        let resolver = v.resolver.unwrap();
        assert_eq!(addrs(resolver.config()), addrs(&expected));
        assert_eq!(resolver.options().timeout, Duration::from_secs(3));
        assert_eq!(resolver.options().cache_size, 0);
    }

    #[test]
    fn answers_are_escaped_before_they_are_shown() {
        let listed = DnsExpectation::Listed(vec!["x".into()]);
        let (err, ev) = judge(
            "t.test",
            RecordType::Txt,
            &listed,
            vec!["\u{1b}[31mred".into()],
            "NOERROR",
        )
        .unwrap_err();
        assert!(!err.0.contains('\u{1b}'), "{err}");
        assert!(!ev.unwrap().answers[0].contains('\u{1b}'));
    }

    #[tokio::test]
    async fn a_proxied_name_passes_with_cloudflare_addresses_only() {
        let ns = stub_dns(vec![
            ("edge.test.", a("104.16.132.229")),
            ("origin.test.", a("203.0.113.10")),
        ])
        .await;
        let v = through(ns, None);
        let edge = DnsExpectation::CloudflareEdge;
        v.dns("edge.test", RecordType::A, &edge).await.unwrap();
        let (err, _) = v
            .dns("origin.test", RecordType::A, &edge)
            .await
            .unwrap_err();
        assert!(
            err.0.contains("203.0.113.10 outside Cloudflare's edge"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn http_checks_try_every_address_and_name_the_one_that_failed() {
        let pki = pki("two.test", 90);
        let up = serve(&pki, "200 OK", "up").await;
        let port = up.0.port();
        // two.test is 127.0.0.2 (nothing listens there) and 127.0.0.1.
        let ns = stub_dns(vec![
            ("two.test.", a("127.0.0.2")),
            ("two.test.", a("127.0.0.1")),
        ])
        .await;
        let v = through(ns, None);
        let url = format!("http://two.test:{port}/");
        let ev = v.http(&url, 200, Some("up")).await.unwrap();
        assert_eq!(ev.addresses, vec!["127.0.0.1"]);
        assert_eq!(ev.unreachable.len(), 1, "{ev:?}");
        assert!(ev.unreachable[0].contains("at 127.0.0.2"), "{ev:?}");
        // Every address that takes a connection must answer as expected:
        // now 127.0.0.2 answers 503.
        let down = tokio::net::TcpListener::bind(("127.0.0.2", port))
            .await
            .unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = down.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        let (err, ev) = v.http(&url, 200, None).await.unwrap_err();
        assert!(err.0.contains("answered 503 at 127.0.0.2"), "{err}");
        assert_eq!(ev.unwrap().addresses, vec!["127.0.0.2", "127.0.0.1"]);
        // Nothing listens anywhere: every address is named.
        let ns = stub_dns(vec![
            ("gone.test.", a("127.0.0.3")),
            ("gone.test.", a("127.0.0.4")),
        ])
        .await;
        let (err, _) = through(ns, None)
            .http(&format!("http://gone.test:{port}/"), 200, None)
            .await
            .unwrap_err();
        assert!(err.0.contains("at any of its addresses"), "{err}");
        assert!(
            err.0.contains("127.0.0.3") && err.0.contains("127.0.0.4"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn tls_checks_handshake_with_every_address() {
        let good = pki("pair.test", 90);
        let other = pki("pair.test", 90);
        let up = serve(&good, "200 OK", "x").await;
        let port = up.1.port();
        // 127.0.0.2 presents a certificate of a CA nobody trusts.
        let rogue = tokio::net::TcpListener::bind(("127.0.0.2", port))
            .await
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(other.server.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = rogue.accept().await {
                let _ = acceptor.accept(s).await;
            }
        });
        let ns = stub_dns(vec![
            ("pair.test.", a("127.0.0.1")),
            ("pair.test.", a("127.0.0.2")),
        ])
        .await;
        let v = through(ns, Some(&good.ca_pem));
        let (err, _) = v
            .tls("pair.test", port, 14, jiff::Timestamp::now())
            .await
            .unwrap_err();
        assert!(
            err.0.contains("TLS handshake with pair.test at 127.0.0.2"),
            "{err}"
        );
        let ns = stub_dns(vec![("pair.test.", a("127.0.0.1"))]).await;
        let ok = through(ns, Some(&good.ca_pem))
            .tls("pair.test", port, 14, jiff::Timestamp::now())
            .await
            .unwrap();
        assert_eq!(ok.addresses, vec!["127.0.0.1"]);
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
