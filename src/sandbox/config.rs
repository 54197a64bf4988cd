//! How a sandbox is set up: data file, timings, versions, credentials,
//! runtime switches and the clock.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::SandboxError;
use super::faults::FaultConfig;
use crate::secret::SecretValue;

/// Environment variable naming the data file of the in-process sandbox.
pub const DATA_ENV: &str = "FABRIK_SANDBOX_DATA";
/// Environment variable holding the fault config (JSON or `key=value,...`).
pub const FAULTS_ENV: &str = "FABRIK_SANDBOX_FAULTS";
/// Environment variable naming the Coolify version the in-process sandbox
/// simulates (`4.3.11` when unset).
pub const COOLIFY_VERSION_ENV: &str = "FABRIK_SANDBOX_COOLIFY_VERSION";

/// Everything a sandbox needs to start.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The SQLite file holding the remote world (created, mode 0600).
    pub data: PathBuf,
    /// Faults injected from the start (changeable at runtime).
    pub faults: FaultConfig,
    /// How long a deployment stays `queued` before it starts.
    pub deploy_queue_time: Duration,
    /// How long a deployment stays `in_progress` before it ends.
    pub deploy_duration: Duration,
    /// How long a deleted application or service stays visible (Coolify
    /// deletes asynchronously).
    pub delete_delay: Duration,
    /// The Coolify version served by `/api/v1/version`; older versions lose
    /// the features they lacked (tags before 4.2, POST-only deploy from 4.2).
    pub coolify_version: String,
    /// The Uptime Kuma version pushed in `info` after login.
    pub kuma_version: String,
    /// Cloudflare zones besides `example.com`.
    pub zones: Vec<String>,
    /// Coolify servers besides `localhost`, each with one destination
    /// (`<name>-coolify`).
    pub servers: Vec<String>,
    /// The credentials the simulated services accept.
    pub credentials: Credentials,
    /// Runtime switches (API disabled, IP not allowed, token abilities).
    pub settings: Settings,
    /// Where "now" comes from; tests use a manual clock to step deployments.
    pub clock: Clock,
}

impl SandboxConfig {
    /// A sandbox on `data` with the defaults: no faults, 50 ms queued,
    /// 200 ms in progress, deletes gone after 300 ms, Coolify 4.3.11,
    /// Uptime Kuma 2.5.3, zone `example.com`, the default credentials.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            faults: FaultConfig::default(),
            deploy_queue_time: Duration::from_millis(50),
            deploy_duration: Duration::from_millis(200),
            delete_delay: Duration::from_millis(300),
            coolify_version: "4.3.11".to_owned(),
            kuma_version: "2.5.3".to_owned(),
            zones: Vec::new(),
            servers: Vec::new(),
            credentials: Credentials::default(),
            settings: Settings::default(),
            clock: Clock::System,
        }
    }

    /// The config of the in-process sandbox of a Fabrik run whose journal is
    /// `state`: data in `sandbox.db` beside it unless `FABRIK_SANDBOX_DATA`
    /// says otherwise, faults from `FABRIK_SANDBOX_FAULTS`, the Coolify
    /// version from `FABRIK_SANDBOX_COOLIFY_VERSION`.
    pub fn for_state(state: &Path) -> Result<Self, SandboxError> {
        let mut config = Self::from_vars(
            state,
            std::env::var_os(DATA_ENV),
            std::env::var(FAULTS_ENV).ok(),
        )?;
        if let Ok(version) = std::env::var(COOLIFY_VERSION_ENV)
            && !version.trim().is_empty()
        {
            config.coolify_version = version.trim().to_owned();
        }
        Ok(config)
    }

    /// [`SandboxConfig::for_state`] with the two variables given.
    fn from_vars(
        state: &Path,
        data: Option<std::ffi::OsString>,
        faults: Option<String>,
    ) -> Result<Self, SandboxError> {
        let data = match data {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => state
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join("sandbox.db"),
        };
        let mut config = Self::new(data);
        if let Some(faults) = faults {
            config.faults = FaultConfig::from_env_str(&faults)?;
        }
        Ok(config)
    }

    /// The zones the world has: `example.com` and the configured ones.
    pub fn all_zones(&self) -> Vec<String> {
        let mut zones = vec!["example.com".to_owned()];
        for zone in &self.zones {
            let zone = zone.trim().trim_end_matches('.').to_ascii_lowercase();
            if !zone.is_empty() && !zones.contains(&zone) {
                zones.push(zone);
            }
        }
        zones
    }

    /// The configured Coolify version as `(major, minor, patch)`.
    pub(crate) fn coolify_semver(&self) -> (u32, u32, u32) {
        parse_version(&self.coolify_version)
    }
}

/// Parses `4.3.11`, `v4.1.0` or `4.0.0-beta.474` leniently; missing parts
/// are zero.
pub(crate) fn parse_version(text: &str) -> (u32, u32, u32) {
    let core = text.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next().unwrap_or_default();
    let mut parts = core.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The credentials the simulated services accept. `Debug` redacts them.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Bearer token accepted by the Coolify API.
    pub coolify_token: SecretValue,
    /// Bearer token accepted by the Cloudflare API.
    pub cloudflare_token: SecretValue,
    /// The Uptime Kuma user that is already set up.
    pub kuma_username: String,
    /// That user's password.
    pub kuma_password: SecretValue,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            coolify_token: SecretValue::new("sandbox-coolify-token"),
            cloudflare_token: SecretValue::new("sandbox-cloudflare-token"),
            kuma_username: "admin".to_owned(),
            kuma_password: SecretValue::new("sandbox-kuma-password"),
        }
    }
}

/// Switches of the simulated Coolify instance, changeable at runtime through
/// `PUT /_sandbox/settings` (a partial JSON object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Off: every gated route answers 403 "API is disabled.".
    pub coolify_api_enabled: bool,
    /// Off: every gated route answers 403 "You are not allowed to access the API.".
    pub coolify_ip_allowed: bool,
    /// Abilities of the Coolify token: `root`, or any of `read`, `write`,
    /// `deploy`, `read:sensitive`.
    pub coolify_abilities: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            coolify_api_enabled: true,
            coolify_ip_allowed: true,
            coolify_abilities: vec!["root".to_owned()],
        }
    }
}

impl Settings {
    /// Whether the token has `ability` (root has them all).
    pub(crate) fn can(&self, ability: &str) -> bool {
        self.coolify_abilities
            .iter()
            .any(|a| a == "root" || a == ability)
    }
}

/// Where the sandbox reads "now" (milliseconds since the Unix epoch).
///
/// Deployment progress and asynchronous deletes are derived from stored
/// timestamps and this clock, so a test steps through `queued → in_progress
/// → finished` by advancing a [`ManualClock`] instead of sleeping.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that moves only when told.
    Manual(ManualClock),
}

impl Clock {
    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Self::System => system_now_ms(),
            Self::Manual(clock) => clock.now_ms(),
        }
    }
}

/// Current system time in milliseconds since the Unix epoch.
pub(crate) fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A shared clock that moves only when told; clones see the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `start_ms` milliseconds since the Unix epoch.
    pub fn new(start_ms: i64) -> Self {
        Self(Arc::new(AtomicI64::new(start_ms)))
    }

    /// The time shown.
    pub fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_leniently() {
        assert_eq!(parse_version("4.3.11"), (4, 3, 11));
        assert_eq!(parse_version("v4.1.0"), (4, 1, 0));
        assert_eq!(parse_version("4.0.0-beta.474"), (4, 0, 0));
        assert_eq!(parse_version("4.2"), (4, 2, 0));
    }

    #[test]
    fn credentials_do_not_leak_through_debug() {
        let config = SandboxConfig::new("x.db");
        let debug = format!("{config:?}");
        assert!(!debug.contains("sandbox-coolify-token"), "{debug}");
        assert!(!debug.contains("sandbox-kuma-password"), "{debug}");
    }

    #[test]
    fn zones_always_include_example_com_once() {
        let mut config = SandboxConfig::new("x.db");
        config.zones = vec!["Example.COM.".into(), "test.dev".into()];
        assert_eq!(config.all_zones(), vec!["example.com", "test.dev"]);
    }

    #[test]
    fn the_in_process_sandbox_lives_beside_the_state() {
        let state = Path::new(".fabrik/state.db");
        let config = SandboxConfig::from_vars(state, None, None).unwrap();
        assert_eq!(config.data, Path::new(".fabrik/sandbox.db"));
        assert_eq!(config.faults, FaultConfig::default());
        let config = SandboxConfig::from_vars(
            state,
            Some("/tmp/world.db".into()),
            Some("latency_ms=20,seed=3".into()),
        )
        .unwrap();
        assert_eq!(config.data, Path::new("/tmp/world.db"));
        assert_eq!((config.faults.latency_ms, config.faults.seed), (20, 3));
        let err = SandboxConfig::from_vars(state, None, Some("error_rate=9".into())).unwrap_err();
        assert!(err.to_string().contains("error_rate"), "{err}");
    }

    #[test]
    fn abilities() {
        let mut settings = Settings::default();
        assert!(settings.can("deploy"));
        settings.coolify_abilities = vec!["read".into()];
        assert!(settings.can("read"));
        assert!(!settings.can("write"));
    }
}
