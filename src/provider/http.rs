//! The one HTTP layer every HTTP provider goes through.
//!
//! It owns what must be the same everywhere: rustls, connect and request
//! timeouts, the `fabrik/<version>` user agent, a cap on response sizes,
//! the classification of failures, the retry loop and the scrubbing of
//! secrets out of anything quoted in an error.
//!
//! Retry rules (the safe ones from the Coolify notes, §13.9):
//! - a connect failure never reached the server: retried for every method;
//! - 429 is retried for every method, after `Retry-After` when it is given;
//! - 5xx, a timeout after sending and a reset are retried only for requests
//!   marked idempotent (GET, PUT, PATCH, DELETE, and POSTs known to be safe);
//!   for a create or deploy they make the outcome *unknown*: the error says so
//!   ([`ProviderError::outcome_unknown`]) and the caller looks the resource up
//!   by its ownership mark instead of repeating the request;
//! - everything else (other 4xx, malformed answers) is permanent.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};

use super::error::{ErrorKind, ProviderError, ProviderName};
use crate::secret::{Scrubber, SecretValue};

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("fabrik/", env!("CARGO_PKG_VERSION"));

/// Default cap on a response body: anything larger is refused as
/// [`ErrorKind::TooLarge`] instead of being buffered.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How many characters of a response body an error quotes at most.
const EXCERPT_CHARS: usize = 300;

/// How transient failures are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 disables retries).
    pub attempts: u32,
    /// The delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// No backoff delay exceeds this.
    pub max_delay: Duration,
    /// Fraction of each delay that is randomised (0 = none, 1 = "full
    /// jitter"), so that many clients retrying at once spread out.
    pub jitter: f64,
    /// A `Retry-After` longer than this is not waited for: the error is
    /// returned instead (Cloudflare blocks for five minutes).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            jitter: 0.5,
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// No retries at all: one attempt.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The backoff before retry number `retry` (1-based), with `random` in
    /// `[0, 1)` choosing the jittered part.
    pub fn backoff(&self, retry: u32, random: f64) -> Duration {
        let exp = 2u32.saturating_pow(retry.saturating_sub(1));
        let full = self.base_delay.saturating_mul(exp).min(self.max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let kept = full.mul_f64(1.0 - jitter);
        kept + full.mul_f64(jitter * random.clamp(0.0, 1.0))
    }
}

/// One retry, reported to the [`RetryObserver`] before its delay starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryEvent {
    /// The service.
    pub provider: ProviderName,
    /// The operation being retried.
    pub operation: String,
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// Why it failed, e.g. `server error (HTTP 503)`.
    pub reason: String,
    /// How long the client waits before the next attempt.
    pub delay: Duration,
}

/// Sees every retry, so the engine can journal each attempt.
pub trait RetryObserver: Send + Sync {
    /// Called once per retry, before the delay.
    fn on_retry(&self, event: &RetryEvent);
}

/// Timeouts, retries and limits shared by every HTTP provider.
#[derive(Clone)]
pub struct HttpConfig {
    /// Limit for opening a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Limit for one request, from sending to the last byte of the answer.
    pub request_timeout: Duration,
    /// How transient failures are retried.
    pub retry: RetryPolicy,
    /// Responses larger than this are refused.
    pub max_body_bytes: usize,
    /// Told about every retry.
    pub observer: Option<Arc<dyn RetryObserver>>,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            observer: None,
        }
    }
}

/// A request as the providers describe it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// What Fabrik is doing, for errors and retry events.
    pub operation: String,
    pub method: Method,
    /// Path segments below the base URL, each percent-encoded on the wire.
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    /// The exact body bytes (JSON unless `content_type` says otherwise).
    pub body: Option<Vec<u8>>,
    pub content_type: &'static str,
    /// The `Accept` header (JSON unless the endpoint answers plain text).
    pub accept: &'static str,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Whether repeating the request after it may have reached the server
    /// is harmless.
    pub idempotent: bool,
    /// Secret values the request carries (env values, passwords); scrubbed
    /// from anything an error quotes.
    pub secrets: Scrubber,
    /// Error statuses answered to the caller as they came (a registry's
    /// 401, whose challenge says where to get a token), not classified as
    /// failures and not retried.
    pub pass: &'static [u16],
    /// A read whose answer the client may give again, without asking, until
    /// a write through it makes it stale ([`Request::reusable`]).
    pub reusable: bool,
    /// A write: the paths (as segments) whose reads it makes stale
    /// ([`Request::makes_stale`]); `None`, anything.
    pub stale: Option<Vec<Vec<String>>>,
}

impl Request {
    /// A request; idempotent unless the method is POST.
    pub fn new(method: Method, operation: impl Into<String>, segments: &[&str]) -> Self {
        let idempotent = method != Method::POST;
        Self {
            operation: operation.into(),
            method,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
            content_type: "application/json",
            accept: "application/json",
            headers: Vec::new(),
            idempotent,
            secrets: Scrubber::new(),
            pass: &[],
            reusable: false,
            stale: None,
        }
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_owned(), value.into()));
        self
    }

    /// Sets a JSON body.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    /// Marks a POST as safe to repeat.
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = yes;
        self
    }

    /// Marks a GET whose answer may be reused: the same read made again
    /// before a write through this client (by this process, which holds
    /// the deployment's lock) makes it stale is answered from the first, so
    /// a run never
    /// asks twice what it already knows. Never for a read that waits for
    /// the service to change something by itself (deployments, deletes in
    /// a background job).
    pub fn reusable(mut self) -> Self {
        self.reusable = self.method == Method::GET;
        self
    }

    /// Says which reads a write makes stale: those of exactly these paths
    /// (each as segments below the base; their query strings aside). A
    /// write that does not say makes every read stale.
    pub fn makes_stale(mut self, paths: &[&[&str]]) -> Self {
        self.stale = Some(
            paths
                .iter()
                .map(|p| p.iter().map(|s| (*s).to_owned()).collect())
                .collect(),
        );
        self
    }

    /// Declares secret values carried by the request.
    pub fn secrets(mut self, secrets: Scrubber) -> Self {
        self.secrets = secrets;
        self
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON of type `T`, or a malformed-response error.
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        http: &Http,
        req: &Request,
    ) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let mut err = http.error(req, ErrorKind::MalformedResponse, Some(self.status.as_u16()));
            // The parser's message quotes the value it choked on, which
            // may be an echoed secret: scrubbed like the excerpt.
            let scrubber = http.scrubber(req);
            err.message = scrubber.scrub(&format!(
                "{}; body starts with: {}",
                e,
                excerpt(&scrubber, &self.body)
            ));
            err.hint = Some(format!(
                "the {} answer does not match its API contract; check that the URL points at the service itself and not at a proxy or login page",
                http.provider
            ));
            err
        })
    }

    /// What the body is when it is not JSON: `an HTML page`, `an empty
    /// body` or `a non-JSON body`; `None` for JSON.
    pub fn non_json_form(&self) -> Option<&'static str> {
        if serde_json::from_slice::<serde_json::Value>(&self.body).is_ok() {
            return None;
        }
        let html = self
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains("html"))
            || String::from_utf8_lossy(&self.body[..self.body.len().min(512)])
                .to_ascii_lowercase()
                .contains("<html");
        Some(if self.body.iter().all(u8::is_ascii_whitespace) {
            "an empty body"
        } else if html {
            "an HTML page"
        } else {
            "a non-JSON body"
        })
    }

    /// The body as trimmed text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }
}

/// A failure a provider's classifier derived from an error answer.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub code: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

/// Turns an error answer (status ≥ 300) into a [`Failure`]; one per provider.
pub(crate) type Classifier = fn(&Response, &Scrubber) -> Failure;

/// The HTTP client of one provider.
#[derive(Clone)]
pub(crate) struct Http {
    client: reqwest::Client,
    pub provider: ProviderName,
    base: url::Url,
    token: Option<SecretValue>,
    config: HttpConfig,
    classify: Classifier,
    /// Answers of reusable reads, shared by the client's clones.
    answers: Arc<Mutex<Answers>>,
}

/// The answers of [`Request::reusable`] reads, by URL, and for each path
/// a count of the writes that made it stale, begun or ended: a read that
/// overlapped such a write (its count changed while it was in flight) is
/// not kept, since it may show the state from before the write.
#[derive(Debug, Default)]
struct Answers {
    /// Writes that may have changed anything.
    all: u64,
    by_path: HashMap<String, u64>,
    by_url: HashMap<String, (String, Response)>,
}

impl Answers {
    fn lock(answers: &Mutex<Answers>) -> std::sync::MutexGuard<'_, Answers> {
        answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A write begins or ends: what it makes stale (`None`: anything) is
    /// not current.
    fn wrote(&mut self, stale: Option<&[String]>) {
        match stale {
            None => {
                self.all += 1;
                self.by_url.clear();
            }
            Some(paths) => {
                for p in paths {
                    *self.by_path.entry(p.clone()).or_default() += 1;
                }
                self.by_url.retain(|_, (path, _)| !paths.contains(path));
            }
        }
    }

    /// The counts a read of `path` is checked against.
    fn epoch(&self, path: &str) -> (u64, u64) {
        (self.all, self.by_path.get(path).copied().unwrap_or(0))
    }
}

impl fmt::Debug for Http {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http")
            .field("provider", &self.provider)
            // The path may be a credential (webhook URLs): origin only.
            .field("base", &origin(&self.base))
            .finish_non_exhaustive()
    }
}

impl Http {
    /// A client for `base` (the API root, e.g. `https://coolify.example/api/v1`)
    /// sending `token` as a bearer token when given.
    pub fn new(
        provider: ProviderName,
        base: &str,
        token: Option<SecretValue>,
        config: HttpConfig,
        classify: Classifier,
    ) -> Result<Self, ProviderError> {
        let base = url::Url::parse(base.trim_end_matches('/')).map_err(|e| {
            ProviderError::new(provider, "configure client", ErrorKind::InvalidRequest)
                .with_message(format!("invalid base URL: {e}"))
                .with_hint(
                    "give the full URL including the scheme, e.g. https://coolify.example.com",
                )
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(ProviderError::new(
                provider,
                "configure client",
                ErrorKind::InvalidRequest,
            )
            .with_message("the base URL must be http or https")
            .with_hint(
                "give the full URL including the scheme, e.g. https://coolify.example.com",
            ));
        }
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // A redirect can turn a POST into a GET (Coolify answers 405 to
            // GET /deploy): refuse to follow and report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                let mut err =
                    ProviderError::new(provider, "configure client", ErrorKind::InvalidRequest);
                err.source = Some(Box::new(e));
                err
            })?;
        Ok(Self {
            client,
            provider,
            base,
            token,
            config,
            classify,
            answers: Arc::default(),
        })
    }

    /// The base URL.
    pub fn base(&self) -> &url::Url {
        &self.base
    }

    /// The scrubber for one request: its secrets and the token.
    pub fn scrubber(&self, req: &Request) -> Scrubber {
        let mut s = req.secrets.clone();
        if let Some(t) = &self.token {
            s.add(t);
        }
        s
    }

    /// An error about `req` with the common fields filled in.
    pub fn error(&self, req: &Request, kind: ErrorKind, status: Option<u16>) -> ProviderError {
        let mut e = ProviderError::new(self.provider, req.operation.clone(), kind);
        e.status = status;
        e.endpoint = Some(format!("{} {}", req.method, self.path_of(req)));
        e
    }

    fn path_of(&self, req: &Request) -> String {
        self.path_below(&req.segments)
    }

    /// The URL path of `segments` below the base.
    fn path_below(&self, segments: &[String]) -> String {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().extend(segments.iter());
        }
        url.path().to_owned()
    }

    fn url_of(&self, req: &Request) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty().extend(req.segments.iter());
        }
        if !req.query.is_empty() {
            url.query_pairs_mut().extend_pairs(req.query.iter());
        }
        url
    }

    /// Sends `req`, retrying what is safe to retry; returns the 2xx answer or
    /// the classified failure of the last attempt. A reusable read already
    /// answered since the last write is answered again without asking.
    pub async fn send(&self, req: &Request) -> Result<Response, ProviderError> {
        if req.method != Method::GET {
            let stale = req.stale.as_ref().map(|paths| {
                paths
                    .iter()
                    .map(|segments| self.path_below(segments))
                    .collect::<Vec<_>>()
            });
            Answers::lock(&self.answers).wrote(stale.as_deref());
            let sent = self.exchange(req).await;
            Answers::lock(&self.answers).wrote(stale.as_deref());
            return sent;
        }
        if !req.reusable {
            return self.exchange(req).await;
        }
        let (url, path) = (self.url_of(req).to_string(), self.path_of(req));
        let before = {
            let a = Answers::lock(&self.answers);
            if let Some((_, known)) = a.by_url.get(&url) {
                return Ok(known.clone());
            }
            a.epoch(&path)
        };
        let resp = self.exchange(req).await?;
        let mut a = Answers::lock(&self.answers);
        if a.epoch(&path) == before {
            a.by_url.insert(url, (path, resp.clone()));
        }
        Ok(resp)
    }

    /// [`Http::send`] without reuse.
    async fn exchange(&self, req: &Request) -> Result<Response, ProviderError> {
        let policy = &self.config.retry;
        let attempts = policy.attempts.max(1);
        let mut attempt = 1;
        loop {
            let (mut err, delay) = match self.once(req).await {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            err.attempts = attempt;
            let retryable = match &err.kind {
                ErrorKind::RateLimited { retry_after } => {
                    retry_after.is_none_or(|d| d <= policy.max_retry_after)
                }
                ErrorKind::Connect
                | ErrorKind::Timeout {
                    request_sent: false,
                } => true,
                ErrorKind::Server
                | ErrorKind::Timeout { request_sent: true }
                | ErrorKind::Reset => {
                    if req.idempotent {
                        true
                    } else {
                        err.ambiguous = true;
                        false
                    }
                }
                _ => false,
            };
            if err.ambiguous {
                err.hint = Some(format!(
                    "the request may have reached {} and taken effect; fabrik looks the resource up by its ownership mark before trying again",
                    self.provider
                ));
            }
            if !retryable || attempt >= attempts {
                return Err(err);
            }
            let backoff = policy.backoff(attempt, rand::random_range(0.0..1.0));
            let delay = delay.map_or(backoff, |d| d.max(backoff));
            if let Some(obs) = &self.config.observer {
                let mut reason = err.kind.to_string();
                if let Some(s) = err.status {
                    reason.push_str(&format!(" (HTTP {s})"));
                }
                obs.on_retry(&super::http::RetryEvent {
                    provider: self.provider,
                    operation: req.operation.clone(),
                    attempt,
                    reason,
                    delay,
                });
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One attempt. On failure, also the delay the server asked for.
    async fn once(&self, req: &Request) -> Result<Response, (ProviderError, Option<Duration>)> {
        let mut builder = self
            .client
            .request(req.method.clone(), self.url_of(req))
            .header(reqwest::header::ACCEPT, req.accept);
        if let Some(t) = &self.token {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", t.expose())).map_err(|_| {
                    (
                        self.error(req, ErrorKind::InvalidRequest, None)
                            .with_message("the token contains characters not allowed in a header")
                            .with_hint("copy the token again, without spaces or line breaks"),
                        None,
                    )
                })?;
            value.set_sensitive(true);
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        for (k, v) in &req.headers {
            builder = builder.header(k.clone(), v.clone());
        }
        if let Some(body) = &req.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, req.content_type)
                .body(body.clone());
        }
        let mut resp = builder
            .send()
            .await
            .map_err(|e| (self.transport(req, e), None))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let limit = self.config.max_body_bytes;
        if resp.content_length().is_some_and(|n| n > limit as u64) {
            return Err((self.too_large(req, status), None));
        }
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err((self.too_large(req, status), None));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err((self.transport(req, e), None)),
            }
        }
        let response = Response {
            status,
            headers,
            body,
        };
        if status.is_success() || req.pass.contains(&status.as_u16()) {
            return Ok(response);
        }
        // An error answer that is not JSON does not come from a JSON API:
        // the URL leads elsewhere (a website, a proxy's page, a login).
        if let Some(variable) = self.provider.url_variable()
            && status.is_client_error()
            && status != StatusCode::TOO_MANY_REQUESTS
            && let Some(form) = response.non_json_form()
        {
            let expected = format!("JSON from {}", self.path_of(req));
            return Err((
                self.not_the_service(req, variable, status.as_u16(), form, &expected),
                None,
            ));
        }
        let scrubber = self.scrubber(req);
        let failure = (self.classify)(&response, &scrubber);
        let delay = match &failure.kind {
            ErrorKind::RateLimited { retry_after } => *retry_after,
            _ => None,
        };
        let mut err = self.error(req, failure.kind, Some(status.as_u16()));
        err.message = scrubber.scrub(&failure.message);
        err.hint = failure.hint;
        err.code = failure.code;
        Err((err, delay))
    }

    /// The answer to `req` (status, and its body's `form`) says that the
    /// URL in `variable` is not this service's API, which would have
    /// answered `expected`.
    pub fn not_the_service(
        &self,
        req: &Request,
        variable: &str,
        status: u16,
        form: &str,
        expected: &str,
    ) -> ProviderError {
        let name = self.provider.title();
        self.error(req, ErrorKind::MalformedResponse, Some(status))
            .with_message(format!(
                "{variable} {}: this server answered {status} with {form}; it does not look like a {name} API (expected {expected})",
                origin(&self.base)
            ))
            .with_hint(match self.provider {
                ProviderName::Coolify => format!(
                    "set {variable} to the address of the Coolify instance itself (not a website, proxy page or login in front of it)"
                ),
                _ => format!(
                    "set {variable} to the address of the {name} API, or unset it for the default"
                ),
            })
    }

    fn too_large(&self, req: &Request, status: StatusCode) -> ProviderError {
        let limit = self.config.max_body_bytes;
        self.error(req, ErrorKind::TooLarge { limit }, Some(status.as_u16()))
            .with_hint(format!(
                "the {} answer exceeded {limit} bytes and was not read; check that the URL points at the service's API",
                self.provider
            ))
    }

    fn transport(&self, req: &Request, e: reqwest::Error) -> ProviderError {
        let kind = if e.is_builder() {
            ErrorKind::InvalidRequest
        } else if e.is_connect() {
            if e.is_timeout() {
                ErrorKind::Timeout {
                    request_sent: false,
                }
            } else {
                ErrorKind::Connect
            }
        } else if e.is_timeout() {
            ErrorKind::Timeout { request_sent: true }
        } else {
            ErrorKind::Reset
        };
        let hint = match kind {
            ErrorKind::Connect
            | ErrorKind::Timeout {
                request_sent: false,
            } => Some(format!(
                "check that {} is reachable from this machine (URL, port, firewall, TLS)",
                origin(&self.base)
            )),
            ErrorKind::Timeout { request_sent: true } => Some(format!(
                "{} did not answer within {}s; it may be overloaded",
                origin(&self.base),
                self.config.request_timeout.as_secs()
            )),
            _ => None,
        };
        let timed_out = kind
            == ErrorKind::Timeout {
                request_sent: false,
            };
        let mut err = self.error(req, kind, None);
        err.hint = hint;
        if let Some(u) = unreachable(&self.base, self.provider.url_variable(), &e, timed_out) {
            err.message = u.message;
            err.hint = Some(u.hint);
        }
        err.source = Some(Box::new(e.without_url()));
        err
    }
}

/// Why a connection to a service failed, in words: the sentence names the
/// URL, the hint says what to do. Found by walking the error's sources
/// (reqwest's, tungstenite's: both wrap rustls and I/O errors), so every
/// provider, and `fabrik doctor` through them, says the same thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreachable {
    /// What happened, naming the URL.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// What is known of a failed connection's cause.
enum Cause {
    PlainHttp,
    Certificate(rustls::CertificateError),
    Refused,
    NoSuchHost,
}

fn cause_of(e: &(dyn std::error::Error + 'static)) -> Option<Cause> {
    let mut source = Some(e);
    while let Some(s) = source {
        match s.downcast_ref::<rustls::Error>() {
            Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
                return Some(Cause::PlainHttp);
            }
            Some(rustls::Error::InvalidCertificate(why)) => {
                return Some(Cause::Certificate(why.clone()));
            }
            _ => {}
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return Some(Cause::Refused);
            }
            // An I/O error's source() skips the error it wraps: look inside.
            if let Some(inner) = io.get_ref() {
                source = Some(inner as &(dyn std::error::Error + 'static));
                continue;
            }
        }
        // hyper-util's resolver: "dns error" around getaddrinfo's failure.
        if s.to_string().starts_with("dns error") {
            return Some(Cause::NoSuchHost);
        }
        source = s.source();
    }
    None
}

/// `url` (an origin, `https://host:port`) could not be reached because of
/// `e`; `timed_out` when opening the connection took too long. `variable`
/// is where the URL was configured. `None` when the cause is not one of
/// those explained.
pub(crate) fn unreachable(
    url: &url::Url,
    variable: Option<&str>,
    e: &(dyn std::error::Error + 'static),
    timed_out: bool,
) -> Option<Unreachable> {
    let shown = origin(url);
    let host = url.host_str().unwrap_or_default().to_owned();
    let set = |what: String| match variable {
        Some(v) => format!("{what} in {v}"),
        None => what,
    };
    let (message, hint) = match cause_of(e) {
        Some(Cause::PlainHttp) => {
            let mut plain = url.clone();
            let _ = plain.set_scheme("http");
            (
                format!("{shown}: this port speaks plain HTTP, not TLS"),
                set(format!(
                    "use {} (or the port where the service serves HTTPS)",
                    origin(&plain)
                )),
            )
        }
        Some(Cause::Certificate(why)) => {
            let what = match &why {
                rustls::CertificateError::UnknownIssuer => {
                    "its certificate is signed by an authority this machine does not trust (self-signed, or a private CA)".to_owned()
                }
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. } => {
                    "its certificate has expired".to_owned()
                }
                rustls::CertificateError::NotValidYet
                | rustls::CertificateError::NotValidYetContext { .. } => {
                    "its certificate is not valid yet (is this machine's clock right?)".to_owned()
                }
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => {
                    format!("its certificate is not valid for the name {host}")
                }
                other => format!("its certificate is not accepted ({other:?})"),
            };
            let hint = match &why {
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. } => set(format!(
                    "use the name the certificate is issued for, or give the service a certificate for {host},"
                )),
                rustls::CertificateError::Expired
                | rustls::CertificateError::ExpiredContext { .. } => {
                    format!("renew the certificate of {shown};")
                }
                _ => format!(
                    "give {shown} a certificate from a public CA (Let's Encrypt), or add the CA that signed it to this machine's trust store;"
                ),
            };
            (
                format!("{shown}: {what}"),
                format!("{hint} fabrik always verifies certificates"),
            )
        }
        Some(Cause::Refused) => (
            format!("{shown}: nothing accepts connections on this port (connection refused)"),
            set("check that the service runs and listens there, and the port".to_owned()),
        ),
        Some(Cause::NoSuchHost) => (
            format!("{shown}: the name {host} does not resolve"),
            set("check the host name".to_owned()),
        ),
        None if timed_out => (
            format!("{shown}: no connection within the connect timeout"),
            format!("check that {shown} is reachable from this machine (address, port, firewall)"),
        ),
        None => return None,
    };
    Some(Unreachable { message, hint })
}

/// `scheme://host:port` of a URL, never its credentials or path.
pub(crate) fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// The start of a body, scrubbed and shortened, for error messages.
pub(crate) fn excerpt(scrubber: &Scrubber, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let clean = scrubber.scrub(text.trim());
    let mut out: String = clean.chars().take(EXCERPT_CHARS).collect();
    if clean.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    if out.is_empty() {
        out.push_str("(empty)");
    }
    out
}

/// The `Retry-After` header as a duration: delta seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(raw).ok()?;
    let now = jiff::Timestamp::now();
    let secs = at.as_second().saturating_sub(now.as_second()).max(0);
    Some(Duration::from_secs(secs.unsigned_abs()))
}

/// The kind an HTTP status means when the body says nothing more specific.
pub(crate) fn kind_for_status(status: StatusCode, headers: &HeaderMap) -> ErrorKind {
    match status.as_u16() {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden(super::error::ForbiddenReason::Denied),
        404 | 410 => ErrorKind::NotFound,
        405 => ErrorKind::Unsupported,
        409 => ErrorKind::Conflict,
        429 => ErrorKind::RateLimited {
            retry_after: retry_after(headers),
        },
        s if s >= 500 => ErrorKind::Server,
        300..=399 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Validation { fields: Vec::new() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            jitter: 0.0,
            max_retry_after: Duration::from_secs(1),
        };
        assert_eq!(p.backoff(1, 0.9), Duration::from_millis(100));
        assert_eq!(p.backoff(2, 0.9), Duration::from_millis(200));
        assert_eq!(p.backoff(3, 0.9), Duration::from_millis(350));
    }

    #[test]
    fn a_write_makes_stale_only_the_reads_it_names() {
        let answer = Response {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: b"{}".to_vec(),
        };
        let mut a = Answers::default();
        for path in ["/api/v1/applications/u", "/api/v1/applications/u/envs"] {
            a.by_url.insert(
                format!("https://c{path}"),
                (path.to_owned(), answer.clone()),
            );
        }
        let (app, envs) = (
            a.epoch("/api/v1/applications/u"),
            a.epoch("/api/v1/applications/u/envs"),
        );
        a.wrote(Some(&["/api/v1/applications/u".to_owned()]));
        assert!(!a.by_url.contains_key("https://c/api/v1/applications/u"));
        assert!(
            a.by_url
                .contains_key("https://c/api/v1/applications/u/envs")
        );
        // A read of the app in flight across the write is not kept; one of
        // its env vars is.
        assert_ne!(a.epoch("/api/v1/applications/u"), app);
        assert_eq!(a.epoch("/api/v1/applications/u/envs"), envs);
        // A write that names nothing it makes stale makes everything stale.
        a.wrote(None);
        assert!(a.by_url.is_empty());
        assert_ne!(a.epoch("/api/v1/applications/u/envs"), envs);
    }

    #[test]
    fn jitter_stays_within_the_delay() {
        let p = RetryPolicy {
            jitter: 1.0,
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(1, 0.0), Duration::ZERO);
        assert!(p.backoff(1, 0.999) <= p.base_delay);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(
            reqwest::header::RETRY_AFTER,
            HeaderValue::from_static("soon"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn certificate_problems_are_said_in_words_naming_the_url() {
        let url = url::Url::parse("https://coolify.example.com/api/v1").unwrap();
        let said = |e: rustls::CertificateError| {
            let e = std::io::Error::other(rustls::Error::InvalidCertificate(e));
            unreachable(&url, Some("COOLIFY_URL"), &e, false).unwrap()
        };
        let expired = said(rustls::CertificateError::Expired);
        assert_eq!(
            expired.message,
            "https://coolify.example.com: its certificate has expired"
        );
        assert!(
            expired
                .hint
                .starts_with("renew the certificate of https://coolify.example.com")
        );
        let name = said(rustls::CertificateError::NotValidForName);
        assert_eq!(
            name.message,
            "https://coolify.example.com: its certificate is not valid for the name coolify.example.com"
        );
        assert!(name.hint.contains("in COOLIFY_URL"), "{}", name.hint);
        let ca = said(rustls::CertificateError::UnknownIssuer);
        assert!(
            ca.message
                .contains("an authority this machine does not trust")
        );
        let plain = std::io::Error::other(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        ));
        let plain = unreachable(&url, Some("COOLIFY_URL"), &plain, false).unwrap();
        assert_eq!(
            plain.hint,
            "use http://coolify.example.com (or the port where the service serves HTTPS) in COOLIFY_URL"
        );
        let other = std::io::Error::other("something else");
        assert_eq!(unreachable(&url, None, &other, false), None);
        let slow = unreachable(&url, None, &other, true).unwrap();
        assert!(
            slow.message
                .contains("no connection within the connect timeout")
        );
    }

    #[test]
    fn excerpts_are_scrubbed_and_short() {
        let s = Scrubber::with([&SecretValue::new("tok-secret-123")]);
        let body = format!("bad token tok-secret-123 {}", "x".repeat(1000));
        let e = excerpt(&s, body.as_bytes());
        assert!(!e.contains("tok-secret-123"));
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
    }
}
