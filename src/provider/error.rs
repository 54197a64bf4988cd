//! The one error type of the provider layer.
//!
//! Every failure of a remote call becomes a [`ProviderError`]: which service,
//! which operation, the HTTP status if there was one, a typed [`ErrorKind`],
//! the server's own message (scrubbed of every secret the request carried)
//! and a hint that tells the user what to do. The engine decides what to do
//! next from two questions only: [`ProviderError::is_transient`] (try again
//! later) and [`ProviderError::outcome_unknown`] (the request may have taken
//! effect: look the resource up by its ownership mark before anything else).

use std::fmt;
use std::time::Duration;

/// The remote service an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderName {
    /// Coolify's HTTP API.
    Coolify,
    /// Cloudflare's DNS API.
    Cloudflare,
    /// Uptime Kuma over Socket.IO.
    UptimeKuma,
    /// A webhook endpoint.
    Webhook,
    /// An image registry (the OCI distribution API).
    Registry,
}

impl fmt::Display for ProviderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Coolify => "coolify",
            Self::Cloudflare => "cloudflare",
            Self::UptimeKuma => "uptime kuma",
            Self::Webhook => "webhook",
            Self::Registry => "image registry",
        })
    }
}

impl ProviderName {
    /// Its name in a sentence.
    pub fn title(self) -> &'static str {
        match self {
            Self::Coolify => "Coolify",
            Self::Cloudflare => "Cloudflare",
            Self::UptimeKuma => "Uptime Kuma",
            Self::Webhook => "webhook",
            Self::Registry => "the image registry",
        }
    }

    /// The variable its URL is configured in (webhooks are in the spec).
    pub fn url_variable(self) -> Option<&'static str> {
        match self {
            Self::Coolify => Some("COOLIFY_URL"),
            Self::Cloudflare => Some("CLOUDFLARE_API_URL"),
            Self::UptimeKuma => Some("UPTIME_KUMA_URL"),
            Self::Webhook | Self::Registry => None,
        }
    }
}

/// Why the service refused a request it understood (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForbiddenReason {
    /// Coolify's API is switched off (the default on a fresh install).
    ApiDisabled,
    /// The caller's IP address is not on the service's allow-list.
    IpNotAllowed,
    /// The token lacks a permission (`ability` names it when the service said).
    MissingPermission {
        /// The permission the service asked for, e.g. `write` or `deploy`.
        ability: Option<String>,
    },
    /// A policy denied the action for another reason.
    Denied,
}

/// One field the service rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field name as the service spelt it.
    pub field: String,
    /// What is wrong with it (scrubbed).
    pub messages: Vec<String>,
}

/// What went wrong, as far as the client can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The credentials were missing, wrong or expired (HTTP 401).
    Unauthorized,
    /// The request was understood and refused (HTTP 403).
    Forbidden(ForbiddenReason),
    /// The resource does not exist, or not for this token.
    NotFound,
    /// The request conflicts with existing state (HTTP 409, Cloudflare 81053).
    Conflict,
    /// The service rejected the request's content (HTTP 422, or 400).
    Validation {
        /// Per-field complaints, when the service listed them.
        fields: Vec<FieldError>,
    },
    /// Too many requests (HTTP 429).
    RateLimited {
        /// How long the service asked to wait, from `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// The service failed (HTTP 5xx).
    Server,
    /// No answer in time.
    Timeout {
        /// Whether the request may have reached the service (false only for
        /// a connect timeout).
        request_sent: bool,
    },
    /// The connection could not be opened.
    Connect,
    /// The connection broke after the request was sent.
    Reset,
    /// The answer was not what the contract promises.
    MalformedResponse,
    /// The answer was larger than the configured cap.
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// A lookup by name matched several resources and Fabrik refuses to guess.
    AmbiguousMatch {
        /// Identifiers of the candidates.
        candidates: Vec<String>,
    },
    /// A resource exists that Fabrik does not own and the spec did not adopt.
    NotOwned,
    /// The service answered "not ok" with a message (Uptime Kuma acks).
    Rejected,
    /// A deployment did not reach a final state within the client-side limit.
    DeadlineExceeded {
        /// The limit that ran out.
        after: Duration,
    },
    /// The service does not offer what the request needs (version too old).
    Unsupported,
    /// The request could not be built (bad URL, bad configuration).
    InvalidRequest,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unauthorized => f.write_str("unauthorized"),
            Self::Forbidden(ForbiddenReason::ApiDisabled) => f.write_str("forbidden: API disabled"),
            Self::Forbidden(ForbiddenReason::IpNotAllowed) => {
                f.write_str("forbidden: IP address not allowed")
            }
            Self::Forbidden(ForbiddenReason::MissingPermission { ability: Some(a) }) => {
                write!(f, "forbidden: token lacks the {a} permission")
            }
            Self::Forbidden(ForbiddenReason::MissingPermission { ability: None }) => {
                f.write_str("forbidden: token lacks a permission")
            }
            Self::Forbidden(ForbiddenReason::Denied) => f.write_str("forbidden"),
            Self::NotFound => f.write_str("not found"),
            Self::Conflict => f.write_str("conflict"),
            Self::Validation { .. } => f.write_str("rejected as invalid"),
            Self::RateLimited { .. } => f.write_str("rate limited"),
            Self::Server => f.write_str("server error"),
            Self::Timeout {
                request_sent: false,
            } => f.write_str("timed out connecting"),
            Self::Timeout { request_sent: true } => f.write_str("timed out waiting for the answer"),
            Self::Connect => f.write_str("could not connect"),
            Self::Reset => f.write_str("connection reset after sending"),
            Self::MalformedResponse => f.write_str("malformed response"),
            Self::TooLarge { limit } => write!(f, "response larger than {limit} bytes"),
            Self::AmbiguousMatch { candidates } => {
                write!(f, "ambiguous: {} resources match", candidates.len())
            }
            Self::NotOwned => f.write_str("resource not owned by fabrik"),
            Self::Rejected => f.write_str("rejected"),
            Self::DeadlineExceeded { after } => {
                write!(f, "not finished after {}s", after.as_secs())
            }
            Self::Unsupported => f.write_str("not supported by this server"),
            Self::InvalidRequest => f.write_str("invalid request"),
        }
    }
}

/// A failed provider call.
///
/// `message` is the service's own explanation, already scrubbed of every
/// secret value the request carried; the token never appears anywhere.
#[derive(Debug, thiserror::Error)]
pub struct ProviderError {
    /// The service.
    pub provider: ProviderName,
    /// What Fabrik was doing, e.g. `create application`.
    pub operation: String,
    /// `METHOD /path` of the failing request, without query or credentials.
    pub endpoint: Option<String>,
    /// The HTTP status, when an answer arrived.
    pub status: Option<u16>,
    /// The service's own error code, when it has them (Cloudflare `81057`).
    pub code: Option<String>,
    /// The classified failure.
    pub kind: ErrorKind,
    /// The service's message (scrubbed), or a description of the transport
    /// failure. May be empty.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// How many attempts were made (1 when nothing was retried).
    pub attempts: u32,
    /// Whether the request may have taken effect although no success arrived:
    /// a create or deploy that timed out or broke after sending, or that got a
    /// 5xx. Never retried blindly.
    pub ambiguous: bool,
    /// The remote id of what an operation of several calls made before a
    /// later call failed: it exists, though not as desired (a monitor
    /// created, then not tagged). The engine journals it as created,
    /// incomplete, never as a failed create.
    pub created: Option<String>,
    /// The underlying transport error, when there was one.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} failed: {}",
            self.provider,
            self.operation,
            self.reason()
        )
    }
}

impl ProviderError {
    /// What went wrong, without which provider and operation: the kind,
    /// the status and the provider's message (`server error (HTTP 500):
    /// ...`), for a line that names the operation itself.
    pub fn reason(&self) -> String {
        let mut out = self.kind.to_string();
        if let Some(status) = self.status {
            out.push_str(&format!(" (HTTP {status})"));
        }
        if !self.message.is_empty() {
            out.push_str(": ");
            out.push_str(&self.message);
        }
        out
    }

    /// A new error with no status, message, hint or source.
    pub fn new(provider: ProviderName, operation: impl Into<String>, kind: ErrorKind) -> Self {
        Self {
            provider,
            operation: operation.into(),
            endpoint: None,
            status: None,
            code: None,
            kind,
            message: String::new(),
            hint: None,
            attempts: 1,
            ambiguous: false,
            created: None,
            source: None,
        }
    }

    /// Says that the first call of the operation made `remote_id`, which
    /// exists although a later call failed.
    pub fn with_created(mut self, remote_id: impl Into<String>) -> Self {
        self.created = Some(remote_id.into());
        self
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Sets the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Whether trying again later may succeed and cannot duplicate anything:
    /// connect failures, timeouts, resets and 5xx of requests that are safe
    /// to repeat, and rate limiting.
    pub fn is_transient(&self) -> bool {
        if self.ambiguous {
            return false;
        }
        matches!(
            self.kind,
            ErrorKind::RateLimited { .. }
                | ErrorKind::Server
                | ErrorKind::Timeout { .. }
                | ErrorKind::Connect
                | ErrorKind::Reset
        )
    }

    /// Whether the request may have taken effect on the remote side although
    /// no success arrived. The caller must look the resource up (by stored id
    /// or ownership mark) before repeating it.
    pub fn outcome_unknown(&self) -> bool {
        self.ambiguous
    }

    /// The server's message, hint and everything else, one per line; the
    /// form the snapshot tests record and the CLI may print under `hint:`.
    pub fn report(&self) -> String {
        let mut out = format!("error: {self}\n");
        if let Some(e) = &self.endpoint {
            out.push_str(&format!("endpoint: {e}\n"));
        }
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(&format!("caused by: {c}\n"));
            cause = c.source();
        }
        out.push_str(&format!("kind: {:?}\n", self.kind));
        out.push_str(&format!(
            "attempts: {}  transient: {}  outcome_unknown: {}\n",
            self.attempts,
            self.is_transient(),
            self.outcome_unknown()
        ));
        if let Some(h) = &self.hint {
            out.push_str(&format!("hint: {h}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_failures_are_never_transient() {
        let mut e = ProviderError::new(
            ProviderName::Coolify,
            "create application",
            ErrorKind::Timeout { request_sent: true },
        );
        assert!(e.is_transient());
        e.ambiguous = true;
        assert!(!e.is_transient());
        assert!(e.outcome_unknown());
    }

    #[test]
    fn display_is_lowercase_and_carries_status_and_message() {
        let e = ProviderError::new(ProviderName::Coolify, "get version", ErrorKind::NotFound)
            .with_status(404)
            .with_message("Not found.");
        assert_eq!(
            e.to_string(),
            "coolify get version failed: not found (HTTP 404): Not found."
        );
    }
}
