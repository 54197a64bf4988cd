//! Secret resolution: environment variable, then the project's `.env`,
//! then (where the spec allows it) a generated value written back to
//! `.env`.
//!
//! The process environment is passed in as a lookup function, so callers
//! decide what the environment is (tests pass a map; nothing here reads
//! `std::env`). Values only ever live in [`SecretValue`]s. What may be
//! journaled is a secret's name, its [`SecretSource`] and its keyed
//! fingerprint: blake3 keyed by `FABRIK_FINGERPRINT_KEY`, a key that is
//! resolved like a secret and never stored in the journal, so a
//! fingerprint can neither be reversed nor tested against guesses by
//! anyone who only has the journal.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rand::RngExt as _;

use super::dotenv::{self, DotenvError};
use super::model::interpolated::RenderError;
use super::model::{Interpolated, Spec};
use crate::id::Digest;
use crate::secret::{Scrubber, SecretSource, SecretValue};

/// The variable that holds the fingerprint key (64 hex digits).
pub const FINGERPRINT_KEY_VAR: &str = "FABRIK_FINGERPRINT_KEY";

/// The key of secret fingerprints. `Debug` shows nothing of it and it has
/// no `Display`, no `Serialize`: it can not end up in a log or the journal
/// by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct FingerprintKey([u8; 32]);

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey([redacted])")
    }
}

impl FingerprintKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from 64 hex digits (the `.env` form).
    pub fn from_hex(hex_text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_text.trim(), &mut out).ok()?;
        Some(Self(out))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut out = [0u8; 32];
        rand::fill(&mut out);
        Self(out)
    }

    /// The fingerprint of secret `name` holding `value`: blake3 keyed by
    /// this key over the length-prefixed name and the value (the prefix
    /// keeps `("AB", "C")` and `("A", "BC")` apart).
    pub fn fingerprint(&self, name: &str, value: &SecretValue) -> Digest {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update(value.expose().as_bytes());
        Digest(*h.finalize().as_bytes())
    }

    fn to_hex_value(&self) -> SecretValue {
        SecretValue::new(hex::encode(self.0))
    }
}

/// One resolved secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedSecret {
    /// The value (never printed).
    pub value: SecretValue,
    /// Where it was found.
    pub source: SecretSource,
    /// Its keyed fingerprint, for change detection and the journal.
    pub fingerprint: Digest,
}

/// Every declared secret of a spec, resolved.
#[derive(Debug, Clone)]
pub struct ResolvedSecrets {
    entries: BTreeMap<String, ResolvedSecret>,
    key: FingerprintKey,
    key_source: SecretSource,
    generated: Vec<String>,
}

impl ResolvedSecrets {
    /// Resolved secrets from known values (for callers and tests that
    /// already hold them).
    pub fn from_values(
        key: FingerprintKey,
        key_source: SecretSource,
        values: impl IntoIterator<Item = (String, SecretValue, SecretSource)>,
    ) -> Self {
        let mut entries = BTreeMap::new();
        let mut generated = Vec::new();
        for (name, value, source) in values {
            let fingerprint = key.fingerprint(&name, &value);
            if source == SecretSource::Generated {
                generated.push(name.clone());
            }
            entries.insert(
                name,
                ResolvedSecret {
                    value,
                    source,
                    fingerprint,
                },
            );
        }
        Self {
            entries,
            key,
            key_source,
            generated,
        }
    }

    /// The secret called `name`.
    pub fn get(&self, name: &str) -> Option<&ResolvedSecret> {
        self.entries.get(name)
    }

    /// The value of the secret called `name`.
    pub fn value(&self, name: &str) -> Option<&SecretValue> {
        self.entries.get(name).map(|r| &r.value)
    }

    /// Every secret by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ResolvedSecret)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Where each secret came from (what the journal records).
    pub fn sources(&self) -> BTreeMap<String, SecretSource> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), v.source))
            .collect()
    }

    /// Each secret's keyed fingerprint (safe to journal).
    pub fn fingerprints(&self) -> BTreeMap<String, Digest> {
        self.entries
            .iter()
            .map(|(k, v)| (k.clone(), v.fingerprint))
            .collect()
    }

    /// The names generated by this resolution (and written to `.env`).
    pub fn generated(&self) -> &[String] {
        &self.generated
    }

    /// Where the fingerprint key came from. `Generated` on a CI runner
    /// means fingerprints (and so the desired-state hash) will differ on
    /// every run: set `FABRIK_FINGERPRINT_KEY` there.
    pub fn key_source(&self) -> SecretSource {
        self.key_source
    }

    /// The fingerprint key.
    pub fn fingerprint_key(&self) -> &FingerprintKey {
        &self.key
    }

    /// A scrubber for every value, and the fingerprint key.
    pub fn scrubber(&self) -> Scrubber {
        let mut s = Scrubber::with(self.entries.values().map(|r| &r.value));
        s.add(&self.key.to_hex_value());
        s
    }

    /// `value` with its `${secret.NAME}` references filled in.
    pub fn render(&self, value: &Interpolated) -> Result<SecretValue, RenderError> {
        value.render(|n| self.value(n))
    }
}

/// A secret found nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingSecret {
    /// The secret's (and environment variable's) name.
    pub name: String,
    /// Where it was looked for, in order.
    pub looked: Vec<String>,
}

impl fmt::Display for MissingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (looked in {})",
            self.name,
            self.looked.join(", then ")
        )
    }
}

/// Why secrets could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets that may not be generated were found nowhere.
    #[error("{} not found: {}", if missing.len() == 1 { "secret" } else { "secrets" }, missing.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Missing {
        /// Each missing secret with the places looked.
        missing: Vec<MissingSecret>,
    },
    /// The `.env` file could not be used.
    #[error("the project's .env file can not be used")]
    Dotenv(#[source] DotenvError),
    /// `FABRIK_FINGERPRINT_KEY` is not 64 hex digits.
    #[error("{FINGERPRINT_KEY_VAR} from {found_in} is not 64 hex digits")]
    BadKey {
        /// Where the bad value was found.
        found_in: SecretSource,
    },
}

impl SecretError {
    /// How to fix it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Missing { missing } => {
                let first = missing.first().map_or("NAME", |m| m.name.as_str());
                Some(format!(
                    "set the environment variable or add `{first}=...` to .env; or declare it with `generate: true` to let Fabrik create it"
                ))
            }
            Self::BadKey { .. } => Some(format!(
                "remove {FINGERPRINT_KEY_VAR} to let Fabrik create one, or set it to 64 hex digits"
            )),
            Self::Dotenv(_) => None,
        }
    }
}

/// 32 alphanumeric characters from a CSPRNG (the thread-local generator,
/// ChaCha seeded from the operating system), or `length` of them.
pub fn generate_value(length: usize) -> SecretValue {
    let s: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(length)
        .map(char::from)
        .collect();
    SecretValue::new(s)
}

/// Resolves every secret `spec` declares, and the fingerprint key.
///
/// Order per name: `env(name)`, then the `.env` at `dotenv` (in the spec's
/// directory), then, when the secret allows it (the key
/// always does), a generated value that is written to that `.env` (mode
/// 0600, atomically) so that every later run uses it. Empty values count
/// as absent. Nothing is generated or written unless every secret that
/// may not be generated was found.
pub fn resolve(
    spec: &Spec,
    env: &dyn Fn(&str) -> Option<String>,
    dotenv_path: &Path,
) -> Result<ResolvedSecrets, SecretError> {
    resolve_with(spec, env, dotenv_path, Mode::Persist)
}

/// [`resolve`] without writing anything: values that would be generated are
/// generated for this call only (`fabrik plan` must not change the project;
/// the plan shows such secrets as new).
pub fn resolve_preview(
    spec: &Spec,
    env: &dyn Fn(&str) -> Option<String>,
    dotenv_path: &Path,
) -> Result<ResolvedSecrets, SecretError> {
    resolve_with(spec, env, dotenv_path, Mode::Preview)
}

/// The secrets that are there (environment, then `.env`), and nothing
/// else: none generated, none written, none missing. For commands that
/// only delete (`destroy`, and `rollback` of what a run created), which
/// must not need the application's secrets; rendering a value that uses a
/// secret not found fails there, by name.
pub fn resolve_available(
    spec: &Spec,
    env: &dyn Fn(&str) -> Option<String>,
    dotenv_path: &Path,
) -> Result<ResolvedSecrets, SecretError> {
    resolve_with(spec, env, dotenv_path, Mode::Available)
}

/// What [`resolve_with`] does with what it does not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Generate what may be, write it to `.env`; refuse what is missing.
    Persist,
    /// Generate what may be for this call only; refuse what is missing.
    Preview,
    /// Take what is there; generate and refuse nothing.
    Available,
}

fn resolve_with(
    spec: &Spec,
    env: &dyn Fn(&str) -> Option<String>,
    dotenv_path: &Path,
    mode: Mode,
) -> Result<ResolvedSecrets, SecretError> {
    let file = dotenv::read(dotenv_path).map_err(SecretError::Dotenv)?;
    let lookup = |name: &str| -> Option<(SecretValue, SecretSource)> {
        if let Some(v) = env(name).filter(|v| !v.is_empty()) {
            return Some((SecretValue::new(v), SecretSource::Env));
        }
        file.get(name)
            .filter(|v| !v.expose().is_empty())
            .map(|v| (v.clone(), SecretSource::Dotenv))
    };
    let mut found: Vec<(String, SecretValue, SecretSource)> = Vec::new();
    let mut to_generate: Vec<(String, SecretValue)> = Vec::new();
    let mut missing = Vec::new();
    for (name, decl) in &spec.secrets {
        match lookup(name) {
            Some((v, s)) => found.push((name.clone(), v, s)),
            None if mode == Mode::Available => {}
            None if decl.generate => {
                to_generate.push((name.clone(), generate_value(usize::from(decl.length))))
            }
            None => missing.push(MissingSecret {
                name: name.clone(),
                looked: looked(name, dotenv_path),
            }),
        }
    }
    if !missing.is_empty() {
        return Err(SecretError::Missing { missing });
    }
    let (mut key, mut key_source) = match lookup(FINGERPRINT_KEY_VAR) {
        Some((v, source)) => match FingerprintKey::from_hex(v.expose()) {
            Some(k) => (Some(k), source),
            None => return Err(SecretError::BadKey { found_in: source }),
        },
        None => (None, SecretSource::Generated),
    };
    let fresh_key = FingerprintKey::generate();
    if key.is_none() && mode != Mode::Available {
        to_generate.push((FINGERPRINT_KEY_VAR.to_owned(), fresh_key.to_hex_value()));
    }
    if !to_generate.is_empty() && mode == Mode::Preview {
        for (name, value) in to_generate {
            if name == FINGERPRINT_KEY_VAR {
                key = FingerprintKey::from_hex(value.expose());
            } else {
                found.push((name, value, SecretSource::Generated));
            }
        }
    } else if !to_generate.is_empty() {
        let written = dotenv::add(dotenv_path, &to_generate).map_err(SecretError::Dotenv)?;
        for (name, (value, ours)) in written {
            let source = if ours {
                SecretSource::Generated
            } else {
                SecretSource::Dotenv
            };
            if name == FINGERPRINT_KEY_VAR {
                key = FingerprintKey::from_hex(value.expose());
                key_source = source;
                if key.is_none() {
                    return Err(SecretError::BadKey { found_in: source });
                }
            } else {
                found.push((name, value, source));
            }
        }
    }
    let key = key.unwrap_or(fresh_key);
    Ok(ResolvedSecrets::from_values(key, key_source, found))
}

fn looked(name: &str, dotenv_path: &Path) -> Vec<String> {
    vec![
        format!("environment variable `{name}`"),
        dotenv_path.display().to_string(),
    ]
}
