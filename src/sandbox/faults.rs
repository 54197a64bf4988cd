//! Fault injection: what can go wrong, how often, and the seeded dice.
//!
//! A [`FaultConfig`] says which faults are on. [`Faults`] holds the current
//! config (the admin endpoint replaces it at runtime) and rolls the dice for
//! each request. The dice are not a random generator with hidden state: the
//! n-th request to a service gets the numbers `blake3(seed, service, n, i)`,
//! so the same seed and the same calls give the same faults, in this process
//! or any other, with any version of any random crate.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which faults the sandbox injects. Every field defaults to "no fault".
///
/// Parsed from `--faults` and `FABRIK_SANDBOX_FAULTS`, either as JSON
/// (`{"error_rate":0.1,"seed":7}`) or as `key=value` pairs separated by
/// commas (`error_rate=0.1,seed=7`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the dice, and of the identifiers of a fresh world.
    pub seed: u64,
    /// Delay added before every request is handled, in milliseconds.
    pub latency_ms: u64,
    /// Fraction (0 to 1) of requests answered with a server error (5xx).
    pub error_rate: f64,
    /// Fraction of requests answered with 429 and a `Retry-After` header.
    pub rate_limit_rate: f64,
    /// The `Retry-After` value sent with injected 429s, in seconds.
    pub retry_after_s: u64,
    /// Fraction of changing requests (POST, PUT, PATCH, DELETE and Uptime
    /// Kuma writes) whose change is committed but whose response is lost:
    /// the connection fails, so the client cannot know the outcome.
    pub lost_response_rate: f64,
    /// After this many creates (HTTP POSTs and Uptime Kuma `add`s, where
    /// the faults apply), every further create is answered with a server
    /// error, while deletes still work: a run that fails part-way through a
    /// phase, at a known step, and can be rolled back.
    pub creates_before_error: Option<u64>,
    /// Every deployment queued while this is on ends `failed`.
    pub deploy_fail: bool,
    /// Deployed apps answer their health check path with 503.
    pub health_fail: bool,
    /// Creates are refused with a validation error whose message quotes the
    /// submitted values (secrets included), to test that Fabrik scrubs them.
    pub echo_422: bool,
    /// Validity of the app certificates in days from now (90 when unset).
    /// Zero or negative issues certificates that have already expired.
    pub cert_days: Option<i64>,
    /// Where the rates and the latency apply: a service (`coolify`,
    /// `cloudflare`, `kuma`, `apps`) or a path prefix starting with `/`
    /// (an Uptime Kuma event counts as `/socket.io/EVENT`). When unset they
    /// apply to the three APIs, not to the deployed apps.
    pub target: Option<String>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            latency_ms: 0,
            error_rate: 0.0,
            rate_limit_rate: 0.0,
            retry_after_s: 1,
            lost_response_rate: 0.0,
            creates_before_error: None,
            deploy_fail: false,
            health_fail: false,
            echo_422: false,
            cert_days: None,
            target: None,
        }
    }
}

/// Why a fault description was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid sandbox faults: {reason}")]
pub struct FaultParseError {
    /// What is wrong, naming the key.
    pub reason: String,
}

impl FaultConfig {
    /// Parses the value of `FABRIK_SANDBOX_FAULTS`; empty means no faults.
    pub fn from_env_str(value: &str) -> Result<Self, FaultParseError> {
        Self::parse(value)
    }

    /// Parses the value of `--faults`.
    pub fn from_cli(value: &str) -> Result<Self, FaultParseError> {
        Self::parse(value)
    }

    fn parse(value: &str) -> Result<Self, FaultParseError> {
        let value = value.trim();
        let config: Self = if value.is_empty() {
            Self::default()
        } else if value.starts_with('{') {
            serde_json::from_str(value).map_err(|e| FaultParseError {
                reason: e.to_string(),
            })?
        } else {
            let mut map = serde_json::Map::new();
            for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((key, raw)) = pair.split_once('=') else {
                    return Err(FaultParseError {
                        reason: format!("expected key=value, found {pair:?}"),
                    });
                };
                let raw = raw.trim();
                // Numbers and booleans keep their type; anything else is a string.
                let parsed = match serde_json::from_str::<serde_json::Value>(raw) {
                    Ok(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v,
                    _ => serde_json::Value::String(raw.to_owned()),
                };
                map.insert(key.trim().to_owned(), parsed);
            }
            serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| FaultParseError {
                reason: e.to_string(),
            })?
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks ranges that serde cannot express.
    pub fn validate(&self) -> Result<(), FaultParseError> {
        for (key, rate) in [
            ("error_rate", self.error_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("lost_response_rate", self.lost_response_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(FaultParseError {
                    reason: format!("{key} must be between 0 and 1, found {rate}"),
                });
            }
        }
        if let Some(target) = &self.target
            && !target.starts_with('/')
            && Service::from_name(target).is_none()
        {
            return Err(FaultParseError {
                reason: format!(
                    "target must be coolify, cloudflare, kuma, apps or a path starting with /, found {target:?}"
                ),
            });
        }
        Ok(())
    }
}

/// How many faults one service injected since the config was last set, so
/// a test can check that the client saw (and journaled) every one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injections {
    /// Server errors: 5xx answers, or Uptime Kuma's `SQLITE_BUSY` acks.
    pub server_errors: u64,
    /// Rate limiting: 429 answers, or Uptime Kuma's "Too frequently" acks.
    pub rate_limited: u64,
    /// Changes committed whose response was then lost.
    pub lost_responses: u64,
}

/// The simulated services, for fault targeting and the dice streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Service {
    Coolify,
    Cloudflare,
    Kuma,
    Apps,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Self::Coolify => "coolify",
            Self::Cloudflare => "cloudflare",
            Self::Kuma => "kuma",
            Self::Apps => "apps",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [Self::Coolify, Self::Cloudflare, Self::Kuma, Self::Apps]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Injected {
    /// Answer with a server error instead of handling the request.
    ServerError,
    /// Answer 429 with `Retry-After` (seconds) instead of handling it.
    RateLimited { retry_after_s: u64 },
    /// Handle the request, commit, then fail the connection.
    LoseResponse,
}

/// The verdict for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) latency: Duration,
    pub(crate) injected: Option<Injected>,
}

impl Verdict {
    const CLEAN: Self = Self {
        latency: Duration::ZERO,
        injected: None,
    };
}

/// The live fault state of one sandbox instance.
#[derive(Debug)]
pub(crate) struct Faults {
    inner: Mutex<FaultState>,
}

#[derive(Debug)]
struct FaultState {
    config: FaultConfig,
    /// Requests seen per service since the config was last set.
    counters: HashMap<Service, u64>,
    /// Creates seen (where the faults apply) since then.
    creates: u64,
    /// Faults injected per service since the config was last set.
    injected: BTreeMap<&'static str, Injections>,
}

impl Faults {
    pub(crate) fn new(config: FaultConfig) -> Self {
        Self {
            inner: Mutex::new(FaultState {
                config,
                counters: HashMap::new(),
                creates: 0,
                injected: BTreeMap::new(),
            }),
        }
    }

    /// The current config.
    pub(crate) fn config(&self) -> FaultConfig {
        match self.inner.lock() {
            Ok(state) => state.config.clone(),
            Err(poisoned) => poisoned.into_inner().config.clone(),
        }
    }

    /// Replaces the config and restarts the dice, so a test that sets faults
    /// mid-run gets the same faults on every run.
    pub(crate) fn set(&self, config: FaultConfig) {
        let mut state = match self.inner.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.config = config;
        state.counters.clear();
        state.creates = 0;
        state.injected.clear();
    }

    /// The faults injected so far, by service name (`coolify`,
    /// `cloudflare`, `kuma`, `apps`).
    pub(crate) fn injected(&self) -> BTreeMap<String, Injections> {
        let state = match self.inner.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state
            .injected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect()
    }

    /// Counts a response that was actually lost (the change committed and
    /// the connection cut).
    pub(crate) fn lost(&self, service: Service) {
        let mut state = match self.inner.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state
            .injected
            .entry(service.name())
            .or_default()
            .lost_responses += 1;
    }

    /// Rolls the dice for one request to `service` at `path`. `mutating` is
    /// whether it changes the world (only those can lose their response),
    /// `creating` whether it creates something.
    pub(crate) fn roll(
        &self,
        service: Service,
        path: &str,
        mutating: bool,
        creating: bool,
    ) -> Verdict {
        let mut state = match self.inner.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        trace(service, path, mutating);
        let config = &state.config;
        let applies = match &config.target {
            None => service != Service::Apps,
            Some(t) if t.starts_with('/') => path.starts_with(t.as_str()),
            Some(t) => Service::from_name(t) == Some(service),
        };
        if !applies {
            return Verdict::CLEAN;
        }
        let (seed, latency_ms) = (config.seed, config.latency_ms);
        let (error_rate, rate_limit_rate, lost_rate, retry_after_s) = (
            config.error_rate,
            config.rate_limit_rate,
            config.lost_response_rate,
            config.retry_after_s,
        );
        let creates_allowed = config.creates_before_error;
        let counter = state.counters.entry(service).or_insert(0);
        let n = *counter;
        *counter += 1;
        let over_creates = creating
            && creates_allowed.is_some_and(|allowed| {
                state.creates += 1;
                state.creates > allowed
            });
        // Always three draws per request, so one fault's rate does not shift
        // the numbers another fault sees.
        let injected = if over_creates || dice(seed, service, n, 0) < error_rate {
            Some(Injected::ServerError)
        } else if dice(seed, service, n, 1) < rate_limit_rate {
            Some(Injected::RateLimited { retry_after_s })
        } else if mutating && dice(seed, service, n, 2) < lost_rate {
            Some(Injected::LoseResponse)
        } else {
            None
        };
        let counts = state.injected.entry(service.name()).or_default();
        match injected {
            Some(Injected::ServerError) => counts.server_errors += 1,
            Some(Injected::RateLimited { .. }) => counts.rate_limited += 1,
            // Counted when the connection is cut (see `lost`).
            Some(Injected::LoseResponse) | None => {}
        }
        Verdict {
            latency: Duration::from_millis(latency_ms),
            injected,
        }
    }
}

/// With `FABRIK_SANDBOX_TRACE=FILE`, appends one JSON line per request
/// (an Uptime Kuma event counts as one) to FILE: when it arrived (`ms`
/// since the epoch, before any injected latency), the service, the path
/// and whether the request changes something (`write`).
/// The benchmarks count requests and sequential round trips from it.
fn trace(service: Service, path: &str, write: bool) {
    use std::io::Write as _;
    let Some(file) = std::env::var_os("FABRIK_SANDBOX_TRACE").filter(|f| !f.is_empty()) else {
        return;
    };
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let line = serde_json::json!({"ms": ms as u64, "service": service.name(), "path": path, "write": write});
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// A number in [0, 1) determined by the seed, the service, the request
/// number and the draw index.
fn dice(seed: u64, service: Service, n: u64, draw: u8) -> f64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"fabrik-sandbox-faults");
    hasher.update(&seed.to_le_bytes());
    hasher.update(service.name().as_bytes());
    hasher.update(&n.to_le_bytes());
    hasher.update(&[draw]);
    let bytes = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&bytes.as_bytes()[..8]);
    // 53 random bits: every value is exactly representable as an f64.
    (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_means_no_faults() {
        assert_eq!(
            FaultConfig::from_env_str("  ").unwrap(),
            FaultConfig::default()
        );
    }

    #[test]
    fn key_value_and_json_forms_agree() {
        let kv = FaultConfig::from_env_str("latency_ms=5, error_rate=0.25,seed=9,target=coolify")
            .unwrap();
        let json = FaultConfig::from_cli(
            r#"{"latency_ms":5,"error_rate":0.25,"seed":9,"target":"coolify"}"#,
        )
        .unwrap();
        assert_eq!(kv, json);
        assert_eq!(kv.latency_ms, 5);
        assert_eq!(kv.target.as_deref(), Some("coolify"));
        let flags =
            FaultConfig::from_cli("deploy_fail=true,cert_days=-1,target=/api/v1/deploy").unwrap();
        assert!(flags.deploy_fail);
        assert_eq!(flags.cert_days, Some(-1));
        assert_eq!(flags.target.as_deref(), Some("/api/v1/deploy"));
    }

    #[test]
    fn bad_input_names_the_problem() {
        let err = FaultConfig::from_cli("error_rate=2").unwrap_err();
        assert!(err.to_string().contains("error_rate"), "{err}");
        let err = FaultConfig::from_cli("bogus=1").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
        let err = FaultConfig::from_cli("latency_ms").unwrap_err();
        assert!(err.to_string().contains("key=value"), "{err}");
        let err = FaultConfig::from_cli("target=nowhere").unwrap_err();
        assert!(err.to_string().contains("nowhere"), "{err}");
    }

    fn verdicts(config: FaultConfig, n: usize) -> Vec<Option<Injected>> {
        let faults = Faults::new(config);
        (0..n)
            .map(|_| {
                faults
                    .roll(Service::Coolify, "/api/v1/x", true, false)
                    .injected
            })
            .collect()
    }

    #[test]
    fn same_seed_same_faults_other_seed_other_faults() {
        let config = FaultConfig {
            seed: 42,
            error_rate: 0.3,
            rate_limit_rate: 0.3,
            lost_response_rate: 0.3,
            ..FaultConfig::default()
        };
        let a = verdicts(config.clone(), 200);
        let b = verdicts(config.clone(), 200);
        assert_eq!(a, b);
        let c = verdicts(FaultConfig { seed: 43, ..config }, 200);
        assert_ne!(a, c);
        // Rates are roughly honoured.
        let errors = a
            .iter()
            .filter(|v| **v == Some(Injected::ServerError))
            .count();
        assert!(
            (30..=90).contains(&errors),
            "{errors} server errors out of 200"
        );
    }

    #[test]
    fn resetting_the_config_restarts_the_dice() {
        let config = FaultConfig {
            seed: 1,
            error_rate: 0.5,
            ..FaultConfig::default()
        };
        let faults = Faults::new(config.clone());
        let first: Vec<_> = (0..20)
            .map(|_| faults.roll(Service::Cloudflare, "/client/v4", false, false))
            .collect();
        faults.set(config);
        let again: Vec<_> = (0..20)
            .map(|_| faults.roll(Service::Cloudflare, "/client/v4", false, false))
            .collect();
        assert_eq!(first, again);
    }

    #[test]
    fn target_limits_where_faults_apply() {
        let faults = Faults::new(FaultConfig {
            error_rate: 1.0,
            latency_ms: 3,
            target: Some("/client/v4".into()),
            ..FaultConfig::default()
        });
        assert_eq!(
            faults.roll(Service::Coolify, "/api/v1/applications", false, false),
            Verdict::CLEAN
        );
        let hit = faults.roll(Service::Cloudflare, "/client/v4/zones", false, false);
        assert_eq!(hit.injected, Some(Injected::ServerError));
        assert_eq!(hit.latency, Duration::from_millis(3));
        // Apps are spared unless targeted by name.
        let untargeted = Faults::new(FaultConfig {
            error_rate: 1.0,
            ..FaultConfig::default()
        });
        assert_eq!(
            untargeted.roll(Service::Apps, "/", false, false),
            Verdict::CLEAN
        );
    }

    #[test]
    fn injected_faults_are_counted_per_service_until_reset() {
        let config = FaultConfig {
            seed: 3,
            error_rate: 0.3,
            rate_limit_rate: 0.2,
            ..FaultConfig::default()
        };
        let faults = Faults::new(config.clone());
        let verdicts: Vec<_> = (0..100)
            .map(|_| {
                faults
                    .roll(Service::Cloudflare, "/client/v4", false, false)
                    .injected
            })
            .collect();
        let count = |kind: Injected| verdicts.iter().filter(|v| **v == Some(kind)).count() as u64;
        faults.lost(Service::Coolify);
        let seen = faults.injected();
        assert_eq!(
            seen["cloudflare"],
            Injections {
                server_errors: count(Injected::ServerError),
                rate_limited: count(Injected::RateLimited { retry_after_s: 1 }),
                lost_responses: 0,
            }
        );
        assert!(seen["cloudflare"].server_errors > 0);
        assert_eq!(seen["coolify"].lost_responses, 1);
        faults.set(config);
        assert!(faults.injected().is_empty());
    }

    #[test]
    fn only_changes_lose_their_response() {
        let faults = Faults::new(FaultConfig {
            lost_response_rate: 1.0,
            ..FaultConfig::default()
        });
        assert_eq!(
            faults
                .roll(Service::Kuma, "/socket.io", false, false)
                .injected,
            None
        );
        assert_eq!(
            faults
                .roll(Service::Kuma, "/socket.io", true, false)
                .injected,
            Some(Injected::LoseResponse)
        );
    }
}
