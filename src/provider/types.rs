//! Domain types the capability traits speak. No vendor JSON here: each
//! client maps these to and from its service's wire format privately.

use std::fmt;
use std::time::Duration;

use crate::id::{DeploymentId, RunId};
use crate::ownership::OwnershipMark;
use crate::secret::SecretValue;

// ---------------------------------------------------------------- app host

/// Where an application goes, as the user names it (name or uuid each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Project name or uuid.
    pub project: String,
    /// Environment name or uuid inside the project (e.g. `production`).
    pub environment: String,
    /// Server name or uuid.
    pub server: String,
    /// Destination (Docker network) name or uuid; needed only when the
    /// server has several.
    pub destination: Option<String>,
}

/// A Coolify release, parsed from `GET /api/v1/version` (`4.3.11`,
/// `v4.0.0`, `4.0.0-beta.474`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
    /// Patch number.
    pub patch: u32,
    /// Pre-release suffix (`beta.474`), which sorts before the release.
    pub pre: Option<String>,
}

impl ServerVersion {
    /// Parses the plain-text version; `None` when it is not `X.Y.Z[-pre]`.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim().trim_matches('"');
        let t = t.strip_prefix('v').unwrap_or(t);
        let (core, pre) = match t.split_once('-') {
            Some((c, p)) => (c, Some(p.to_owned())),
            None => (t, None),
        };
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().unwrap_or("0").parse().ok()?;
        let patch = parts.next().unwrap_or("0").parse().ok()?;
        Some(Self {
            major,
            minor,
            patch,
            pre,
        })
    }

    /// Whether this release is at least `major.minor.patch` (a pre-release
    /// of that exact version is not).
    pub fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        let ord = (self.major, self.minor, self.patch).cmp(&(major, minor, patch));
        ord.is_gt() || (ord.is_eq() && self.pre.is_none())
    }

    /// Tags on create, `/tags` sub-resources and `/destinations` (4.2.0).
    pub fn supports_tags(&self) -> bool {
        self.at_least(4, 2, 0)
    }

    /// The `railpack` build pack (`App\Enums\BuildPackTypes`, from 4.1.0).
    pub fn supports_railpack(&self) -> bool {
        self.at_least(4, 1, 0)
    }

    /// `is_runtime` and `is_buildtime` on env vars: from 4.0.0-beta.435
    /// (before, `is_build_time` or nothing; every release since has them).
    pub fn supports_env_scopes(&self) -> bool {
        if self.at_least(4, 0, 0) {
            return true;
        }
        (self.major, self.minor, self.patch) == (4, 0, 0)
            && self
                .pre
                .as_deref()
                .and_then(|p| p.strip_prefix("beta."))
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| n >= 435)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if let Some(p) = &self.pre {
            write!(f, "-{p}")?;
        }
        Ok(())
    }
}

/// A [`Target`] resolved and checked against the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedTarget {
    /// The server's release; gates features.
    pub version: ServerVersion,
    /// Project uuid.
    pub project_uuid: String,
    /// Project name.
    pub project_name: String,
    /// Environment uuid.
    pub environment_uuid: String,
    /// Environment name.
    pub environment_name: String,
    /// Server uuid.
    pub server_uuid: String,
    /// Server name.
    pub server_name: String,
    /// Destination uuid, sent only when known to be needed or given.
    pub destination_uuid: Option<String>,
}

/// A git build pack (Coolify's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildPack {
    /// Nixpacks.
    Nixpacks,
    /// Railpack.
    Railpack,
    /// Static files.
    Static,
    /// A Dockerfile in the repository.
    Dockerfile,
    /// A compose file in the repository.
    DockerCompose,
}

impl BuildPack {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nixpacks => "nixpacks",
            Self::Railpack => "railpack",
            Self::Static => "static",
            Self::Dockerfile => "dockerfile",
            Self::DockerCompose => "dockercompose",
        }
    }
}

/// What an application is built from. Each form maps to one create call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppSource {
    /// A registry image (`POST /applications/dockerimage`).
    DockerImage {
        /// Image name, e.g. `ghcr.io/acme/web`.
        image: String,
        /// Tag; `latest` when absent.
        tag: Option<String>,
    },
    /// An inline Dockerfile (`POST /applications/dockerfile`, base64 on the wire).
    Dockerfile {
        /// The Dockerfile text.
        dockerfile: String,
    },
    /// A public git repository (`POST /applications/public`).
    Git {
        /// Repository URL.
        repository: String,
        /// Branch.
        branch: String,
        /// How to build it.
        build_pack: BuildPack,
        /// The rest of the build.
        build: GitBuild,
    },
    /// A raw compose file: a Coolify *service* (`POST /services`,
    /// `docker_compose_raw` base64).
    Compose {
        /// The compose YAML.
        compose: String,
        /// The compose service the domains route to (sent as
        /// `urls: [{name, url}]`); `None` only when there are no domains
        /// to route.
        public_service: Option<String>,
    },
    /// A one-click service template (`POST /services` with `type`); its
    /// domains go to the template's public container
    /// ([`crate::spec::services::template`]).
    OneClick {
        /// Template key, e.g. `ghost`.
        service_type: String,
    },
}

impl AppSource {
    /// Whether this form lives under `/services` rather than `/applications`.
    pub fn kind(&self) -> AppKind {
        match self {
            Self::Compose { .. } | Self::OneClick { .. } => AppKind::Service,
            _ => AppKind::Application,
        }
    }
}

/// How a git application is built, beyond its build pack. `None` leaves
/// Coolify's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitBuild {
    /// The commit to build (`git_commit_sha`); the branch head when absent.
    pub commit: Option<String>,
    /// The directory to build from (`base_directory`, default `/`).
    pub base_directory: Option<String>,
    /// The built files, for the static build pack (`publish_directory`).
    pub publish_directory: Option<String>,
    /// Install command override.
    pub install_command: Option<String>,
    /// Build command override.
    pub build_command: Option<String>,
    /// Start command override.
    pub start_command: Option<String>,
    /// The Dockerfile's path in the repository (`dockerfile_location`,
    /// default `/Dockerfile`).
    pub dockerfile_location: Option<String>,
}

/// The container health check (Coolify's `health_check_*` fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// HTTP path, e.g. `/health`.
    pub path: String,
    /// Port inside the container; the first exposed port when absent.
    pub port: Option<u16>,
    /// Seconds between checks.
    pub interval: Option<u32>,
    /// `GET`, `HEAD`, `POST` or `OPTIONS`.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The status that counts as healthy (Coolify stores it; its generated
    /// check only looks at curl's exit status).
    pub return_code: u16,
    /// Text the body must contain (stored, not checked by Coolify).
    pub response_text: Option<String>,
    /// Seconds one check may take.
    pub timeout: u32,
    /// Failed checks before the container is unhealthy.
    pub retries: u32,
    /// Seconds after start before failures count.
    pub start_period: u32,
}

impl HealthCheck {
    /// A check of `path` with Fabrik's defaults for the rest (the spec's).
    pub fn of_path(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            port: None,
            interval: Some(30),
            method: "GET".into(),
            scheme: "http".into(),
            return_code: 200,
            response_text: None,
            timeout: 5,
            retries: 3,
            start_period: 10,
        }
    }
}

/// A value of an environment variable.
#[derive(Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A plain value; may be shown.
    Plain(String),
    /// A secret; never shown, logged or quoted in errors.
    Secret(SecretValue),
}

impl EnvValue {
    /// The value to send.
    pub fn expose(&self) -> &str {
        match self {
            Self::Plain(v) => v,
            Self::Secret(s) => s.expose(),
        }
    }
}

impl fmt::Debug for EnvValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain(v) => write!(f, "Plain({v:?})"),
            Self::Secret(_) => f.write_str("Secret([redacted])"),
        }
    }
}

/// One desired environment variable. Identity is `key` + `is_preview`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVarDesired {
    /// Name (`^[A-Za-z_][A-Za-z0-9_.]*$`).
    pub key: String,
    /// Value.
    pub value: EnvValue,
    /// Whether it belongs to preview deployments.
    pub is_preview: bool,
    /// Used as-is, without `$VAR` interpolation.
    pub is_literal: bool,
    /// Spans several lines.
    pub is_multiline: bool,
    /// Also passed to the build (a Docker build argument, readable in the
    /// image's history); otherwise the running container only.
    pub is_buildtime: bool,
}

/// What an env reconciliation did, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvDiff {
    /// Keys that did not exist.
    pub created: Vec<String>,
    /// Keys whose value or flags differed.
    pub updated: Vec<String>,
    /// Keys whose value the token may not read (no `read:sensitive`); sent
    /// again because equality could not be checked.
    pub unverified: Vec<String>,
    /// Keys removed because the spec no longer has them.
    pub deleted: Vec<String>,
    /// Keys already right.
    pub unchanged: Vec<String>,
}

impl EnvDiff {
    /// Whether anything was written.
    pub fn changed(&self) -> bool {
        !(self.created.is_empty()
            && self.updated.is_empty()
            && self.deleted.is_empty()
            && self.unverified.is_empty())
    }
}

/// The desired state of one application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppDesired {
    /// Name shown in Coolify; Fabrik finds the app by it (plus ownership).
    pub name: String,
    /// Human description; Fabrik appends its ownership mark.
    pub description: Option<String>,
    /// What to build or run.
    pub source: AppSource,
    /// Public URLs (`https://app.example.com`); a bare host gets `https://`.
    pub domains: Vec<String>,
    /// Container ports exposed to the proxy.
    pub ports: Vec<u16>,
    /// Health check.
    pub health: Option<HealthCheck>,
    /// Environment variables, applied by [`super::AppHost::reconcile_env`]
    /// (never by create or update, so secret values travel in one place).
    pub env: Vec<EnvVarDesired>,
}

/// Whether a remote app is a Coolify application or service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppKind {
    /// `/applications`.
    Application,
    /// `/services` (compose and one-click).
    Service,
}

impl AppKind {
    /// The API collection.
    pub fn collection(self) -> &'static str {
        match self {
            Self::Application => "applications",
            Self::Service => "services",
        }
    }
}

/// An application as found on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteApp {
    /// Application or service.
    pub kind: AppKind,
    /// Coolify uuid.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// Description as stored.
    pub description: Option<String>,
    /// Public URLs as stored (`fqdn`, comma-separated in Coolify).
    pub domains: Vec<String>,
    /// `<state>:<health>`, e.g. `running:healthy`.
    pub status: Option<String>,
    /// Fabrik's mark, read from the description.
    pub mark: Option<OwnershipMark>,
}

impl AppDesired {
    /// Whether its env vars are reconciled: not for a service whose spec
    /// sets none (Coolify makes a service's `SERVICE_*` variables itself).
    pub fn reconciles_env(&self) -> bool {
        !(self.env.is_empty() && self.source.kind() == AppKind::Service)
    }
}

impl RemoteApp {
    /// An application known only by its kind and uuid (from the journal):
    /// enough to read its deployments and logs.
    pub fn known(kind: AppKind, uuid: &str) -> Self {
        Self {
            kind,
            uuid: uuid.to_owned(),
            name: String::new(),
            description: None,
            domains: Vec::new(),
            status: None,
            mark: None,
        }
    }
}

/// How to find an application that may already exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppLookup {
    /// Application or service.
    pub kind: AppKind,
    /// The uuid stored in the journal, preferred when present.
    pub uuid: Option<String>,
    /// The name in the spec.
    pub name: String,
    /// The owning deployment; only apps carrying its mark match by name.
    pub deployment: DeploymentId,
}

/// A deployment that was queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentRef {
    /// Application or service deployed.
    pub kind: AppKind,
    /// The app's uuid.
    pub app_uuid: String,
    /// The deployment's uuid; `None` for services (Coolify keeps no row).
    pub deployment_uuid: Option<String>,
    /// Whether Coolify said a deployment for this commit was already
    /// queued (the uuid was then taken from the app's deployment list).
    pub already_queued: bool,
    /// For an `already_queued` deployment: it had already started, so it
    /// deploys the application as it was before this request.
    pub started: bool,
}

/// The phase of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeploymentState {
    /// Waiting for a build slot.
    Queued,
    /// Building or starting.
    InProgress,
    /// Done and healthy.
    Finished,
    /// Failed (Coolify rolled back to the previous container).
    Failed,
    /// Cancelled in the UI or via the API.
    CancelledByUser,
    /// A value this client does not know.
    Other(String),
}

impl DeploymentState {
    /// Parses Coolify's status string.
    pub fn parse(s: &str) -> Self {
        match s {
            "queued" => Self::Queued,
            "in_progress" => Self::InProgress,
            "finished" => Self::Finished,
            "failed" | "error" => Self::Failed,
            "cancelled-by-user" => Self::CancelledByUser,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether the deployment will not change any more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Finished | Self::Failed | Self::CancelledByUser)
    }
}

impl fmt::Display for DeploymentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::CancelledByUser => "cancelled-by-user",
            Self::Other(s) => s,
        })
    }
}

/// A deployment's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentStatus {
    /// The phase.
    pub state: DeploymentState,
    /// Absolute URL of the deployment page in Coolify's UI, when known.
    pub url: Option<String>,
    /// The commit deployed, when known.
    pub commit: Option<String>,
}

/// Which stream a build log line was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of a deployment's build log, as the service sent it (neither
/// scrubbed nor escaped: the caller does both before showing or keeping it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Its stream.
    pub stream: LogStream,
    /// Its text, without the line break.
    pub text: String,
}

/// A deployment's build log, as far as the token may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildLog {
    /// Its lines, oldest first, without the service's command noise.
    Lines(Vec<LogLine>),
    /// The token may not read it (Coolify shows it only to tokens with
    /// `read:sensitive`); where to read it instead.
    Hidden {
        /// The deployment's page in the service's UI.
        url: Option<String>,
    },
}

/// How long and how often to poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up after this long (client side; Coolify never reaps stuck rows).
    pub timeout: Duration,
    /// The longest pause between polls (see [`WaitOptions::pauses`]).
    pub poll_interval: Duration,
}

impl WaitOptions {
    /// The pauses before each poll: half of `poll_interval` first, so that
    /// what ends quickly is seen quickly, then half as long again each
    /// time up to `poll_interval`, so that a long wait does not hammer the
    /// server (Coolify allows 200 requests a minute). A wait of a few
    /// intervals takes no more polls than at a fixed interval.
    pub fn pauses(&self) -> impl Iterator<Item = Duration> + use<> {
        let max = self.poll_interval;
        std::iter::successors(Some(max / 2), move |d| Some((*d * 3 / 2).min(max)))
    }
}

impl Default for WaitOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(5),
        }
    }
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// The resource did not exist any more (nothing was deleted now).
    pub already_gone: bool,
}

/// A remote resource carrying Fabrik's mark, for `gc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRemote {
    /// Application or service.
    pub kind: AppKind,
    /// Coolify uuid.
    pub uuid: String,
    /// Name.
    pub name: String,
    /// The mark.
    pub mark: OwnershipMark,
}

// --------------------------------------------------------------------- dns

/// A DNS zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// Cloudflare zone id.
    pub id: String,
    /// Zone apex, e.g. `example.com`.
    pub name: String,
}

/// Where a zone stands with Cloudflare (`status`: `initializing`,
/// `pending`, `active` or `moved`; TS `src/resources/zones/zones.ts:383-385`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneStatus {
    /// The status.
    pub status: String,
    /// The nameservers Cloudflare assigned, to be set at the registrar.
    pub name_servers: Vec<String>,
}

impl ZoneStatus {
    /// Whether the zone answers on the public internet with Cloudflare's
    /// records.
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

/// A DNS record type Fabrik manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Alias.
    Cname,
    /// Text.
    Txt,
}

impl RecordType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A => "A",
            Self::Aaaa => "AAAA",
            Self::Cname => "CNAME",
            Self::Txt => "TXT",
        }
    }

    /// `content` in the form every comparison uses (see
    /// [`crate::spec::model::canonical_content`]).
    pub fn canonical(self, content: &str) -> String {
        use crate::spec::model::RecordType as M;
        let kind = match self {
            Self::A => M::A,
            Self::Aaaa => M::Aaaa,
            Self::Cname => M::Cname,
            Self::Txt => M::Txt,
        };
        crate::spec::model::canonical_content(kind, content)
    }

    /// Whether two contents are the same record content.
    pub fn same(self, a: &str, b: &str) -> bool {
        self.canonical(a) == self.canonical(b)
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "A" => Some(Self::A),
            "AAAA" => Some(Self::Aaaa),
            "CNAME" => Some(Self::Cname),
            "TXT" => Some(Self::Txt),
            _ => None,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The desired state of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDesired {
    /// Type.
    pub kind: RecordType,
    /// Fully qualified name.
    pub name: String,
    /// Address, target host or text.
    pub content: String,
    /// Seconds; 1 means automatic (forced when proxied).
    pub ttl: u32,
    /// Through Cloudflare's proxy (A, AAAA, CNAME only).
    pub proxied: bool,
    /// Take over an existing record Fabrik does not own.
    pub adopt: bool,
}

/// A record as found in the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRecord {
    /// Record id.
    pub id: String,
    /// Type as the API spells it (may be one Fabrik does not manage).
    pub kind: String,
    /// Fully qualified name.
    pub name: String,
    /// Content.
    pub content: String,
    /// TTL (1 = automatic).
    pub ttl: u32,
    /// Proxied.
    pub proxied: bool,
    /// Comment.
    pub comment: Option<String>,
    /// Tags (`name:value`).
    pub tags: Vec<String>,
    /// Fabrik's mark, read from the comment or tags.
    pub mark: Option<OwnershipMark>,
}

// ---------------------------------------------------------------- monitors

/// What a monitor checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorKind {
    /// The URL answers 2xx.
    Http,
    /// The URL answers 2xx and its body contains a keyword.
    Keyword,
}

/// The desired state of one monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorDesired {
    /// Name shown in Uptime Kuma.
    pub name: String,
    /// Check type.
    pub kind: MonitorKind,
    /// URL checked.
    pub url: String,
    /// Keyword (for [`MonitorKind::Keyword`]).
    pub keyword: Option<String>,
    /// Seconds between checks (Uptime Kuma 2.x takes ≥ 1 in the UI and
    /// the API, 1.23 ≥ 20 in both; the spec asks ≥ 20, safe on both).
    pub interval: u32,
    /// Retries before the monitor reports down.
    pub retries: u32,
    /// Seconds between checks while retrying.
    pub retry_interval: u32,
    /// Status codes that count as up (`200-299`, `301`).
    pub accepted_status: Vec<String>,
    /// Uptime Kuma notification ids to alert.
    pub notification_ids: Vec<u64>,
}

/// An Uptime Kuma monitor's id: a positive number (the journal keeps it as
/// text; [`MonitorId::parse`] refuses anything else, so that no malformed
/// id can ever address another monitor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MonitorId(pub u64);

impl MonitorId {
    /// Parses a journaled id: digits of a number above 0.
    pub fn parse(text: &str) -> Option<Self> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().filter(|n| *n > 0).map(Self)
    }
}

impl fmt::Display for MonitorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A monitor as found on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMonitor {
    /// Monitor id.
    pub id: MonitorId,
    /// Name.
    pub name: String,
    /// Type as the server spells it.
    pub kind: String,
    /// URL, for HTTP-like monitors.
    pub url: Option<String>,
    /// Whether it is running (not paused).
    pub active: bool,
    /// Fabrik's mark, from the description (or the `fabrik` tag value that
    /// earlier versions wrote).
    pub mark: Option<OwnershipMark>,
    /// The fields Fabrik manages, as the server has them (`None` where it
    /// did not say).
    pub fields: Option<MonitorFields>,
}

/// The fields of a monitor Fabrik manages, as the server reports them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonitorFields {
    /// Keyword.
    pub keyword: Option<String>,
    /// Seconds between checks.
    pub interval: u32,
    /// Seconds between checks while retrying.
    pub retry_interval: u32,
    /// Retries.
    pub retries: u32,
    /// Accepted status codes.
    pub accepted_status: Vec<String>,
    /// Notification ids linked.
    pub notification_ids: Vec<u64>,
}

// ---------------------------------------------------------------- notifier

/// One notification about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// What happened, e.g. `run.completed`, `run.failed`, `run.rolled_back`.
    pub event: String,
    /// The deployment.
    pub deployment: DeploymentId,
    /// The run, when there is one.
    pub run: Option<RunId>,
    /// One-line summary for people.
    pub summary: String,
    /// When it happened; also the signed timestamp (the engine owns the clock).
    pub at: jiff::Timestamp,
    /// Extra key/value details (URLs, durations). Never secrets.
    pub details: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_start_at_half_the_interval_and_back_off_to_it() {
        let wait = WaitOptions {
            timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(4),
        };
        let pauses: Vec<u64> = wait
            .pauses()
            .take(6)
            .map(|d| d.as_millis() as u64)
            .collect();
        assert_eq!(pauses, [2000, 3000, 4000, 4000, 4000, 4000]);
    }
}
