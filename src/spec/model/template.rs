//! Which built-in template a spec uses.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A built-in template and its parameters. The template provides `app`
/// and the secrets it needs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateUse {
    /// The template.
    pub name: TemplateName,
    /// Its parameters (see `docs/spec.md` for each template's list).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

/// The built-in templates.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TemplateName {
    /// WordPress with a MariaDB database, as a compose service.
    Wordpress,
    /// A static site built from a public git repository.
    StaticSite,
}

impl TemplateName {
    /// Every template.
    pub const ALL: [TemplateName; 2] = [Self::Wordpress, Self::StaticSite];

    /// The name as written in a spec.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wordpress => "wordpress",
            Self::StaticSite => "static-site",
        }
    }
}
