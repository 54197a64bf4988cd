//! Declared secrets: names the spec may reference, and whether Fabrik may
//! create their values.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The shortest generated value allowed: below 16 alphanumeric characters
/// (about 95 bits) a password is guessable.
pub const MIN_LENGTH: u16 = 16;
/// The longest generated value allowed.
pub const MAX_LENGTH: u16 = 256;
/// The length of generated values unless the spec says otherwise.
pub const DEFAULT_LENGTH: u16 = 32;

/// One declared secret. Its value is looked up in the environment
/// variable of the same name, then in the project's `.env`; only when
/// `generate` is true may Fabrik create it (and write it to `.env`).
///
/// An entry with no options (`DB_PASSWORD:`) declares a secret that must
/// be provided.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(from = "Option<SecretOptions>", into = "SecretOptions")]
pub struct SecretDecl {
    /// Whether Fabrik may generate the value when it is found nowhere.
    pub generate: bool,
    /// Length of a generated value, in alphanumeric characters.
    pub length: u16,
    /// What the secret is for (shown in `.env.example`).
    pub description: Option<String>,
}

impl Default for SecretDecl {
    fn default() -> Self {
        Self {
            generate: false,
            length: DEFAULT_LENGTH,
            description: None,
        }
    }
}

/// A secret's options as written.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretOptions {
    /// Whether Fabrik may generate the value (32 random alphanumeric
    /// characters by default) when neither the environment nor `.env` has
    /// it. Off by default, so that a forgotten API key is an error rather
    /// than a random value.
    #[serde(default)]
    pub generate: bool,
    /// Length of a generated value.
    #[serde(default = "default_length")]
    #[schemars(range(min = 16, max = 256))]
    pub length: u16,
    /// What the secret is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

fn default_length() -> u16 {
    DEFAULT_LENGTH
}

impl From<Option<SecretOptions>> for SecretDecl {
    fn from(o: Option<SecretOptions>) -> Self {
        match o {
            None => Self::default(),
            Some(o) => Self {
                generate: o.generate,
                length: o.length,
                description: o.description,
            },
        }
    }
}

impl From<SecretDecl> for SecretOptions {
    fn from(d: SecretDecl) -> Self {
        Self {
            generate: d.generate,
            length: d.length,
            description: d.description,
        }
    }
}
