//! Where on Coolify the application lives.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The Coolify project, environment, server and (optional) destination the
/// application is created in. Each is named, or given by uuid as
/// `{ uuid: ... }`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CoolifyTarget {
    /// The Coolify project, by name (`default`) or `{ uuid: ... }`.
    pub project: RemoteRef,
    /// The environment inside the project, by name (`production`) or
    /// `{ uuid: ... }`.
    pub environment: RemoteRef,
    /// The server to run on, by name (`localhost`) or `{ uuid: ... }`.
    pub server: RemoteRef,
    /// The Docker network on the server. Needed only when the server has
    /// more than one destination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<RemoteRef>,
}

/// A Coolify resource named by its name or by its uuid.
///
/// A plain string is always a name, never a uuid, so that a name can not
/// be mistaken for an id or the other way round.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(untagged)]
pub enum RemoteRef {
    /// By name, as shown in the Coolify dashboard.
    Name(String),
    /// By uuid, as shown in the resource's URL.
    Uuid(UuidRef),
}

/// A Coolify uuid.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UuidRef {
    /// The resource's uuid, as shown in its URL in the Coolify dashboard.
    pub uuid: String,
}

impl RemoteRef {
    /// A reference by name.
    pub fn name(name: impl Into<String>) -> Self {
        Self::Name(name.into())
    }

    /// The name, when referenced by name.
    pub fn as_name(&self) -> Option<&str> {
        match self {
            Self::Name(n) => Some(n),
            Self::Uuid(_) => None,
        }
    }

    /// The uuid, when referenced by uuid.
    pub fn as_uuid(&self) -> Option<&str> {
        match self {
            Self::Uuid(u) => Some(&u.uuid),
            Self::Name(_) => None,
        }
    }

    /// The name or uuid, whichever is given.
    pub fn text(&self) -> &str {
        match self {
            Self::Name(n) => n,
            Self::Uuid(u) => &u.uuid,
        }
    }
}

impl fmt::Display for RemoteRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Uuid(u) => write!(f, "uuid {}", u.uuid),
        }
    }
}
