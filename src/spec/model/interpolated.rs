//! Text that may reference declared secrets: `${secret.NAME}`.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::secret::SecretValue;

/// A value that may embed secrets, written `${secret.NAME}` anywhere in
/// the text (`postgres://app:${secret.DB_PASSWORD}@db/app`). `$${` writes a
/// literal `${`; any other `${...}` is an error, so a typo such as
/// `${secrets.X}` can not slip through as text.
///
/// The spec only ever holds the reference; the value is filled in by
/// [`Interpolated::render`] from resolved secrets, into a [`SecretValue`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Interpolated(pub String);

/// One piece of an [`Interpolated`] value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<'a> {
    /// Literal text (with `$${` already turned into `${`).
    Text(Cow<'a, str>),
    /// A reference to the secret of this name.
    Secret(&'a str),
}

/// Why an interpolated value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolationError {
    /// `${` without a closing `}`.
    #[error("`{fragment}` is not closed by `}}`")]
    Unclosed {
        /// The text from the `${` on (at most 40 characters).
        fragment: String,
    },
    /// `${...}` that is not `${secret.NAME}`.
    #[error("`${{{reference}}}` is not a secret reference")]
    UnknownReference {
        /// What was inside the braces.
        reference: String,
    },
    /// `${secret.}` with an empty or malformed name.
    #[error("`{name}` is not a valid secret name")]
    BadName {
        /// The name as written.
        name: String,
    },
}

impl InterpolationError {
    /// How to fix it.
    pub fn hint(&self) -> String {
        match self {
            Self::UnknownReference { reference } => {
                let tail = reference
                    .split_once('.')
                    .map_or(reference.as_str(), |(_, t)| t);
                format!(
                    "secret references are written `${{secret.{tail}}}`; write `$${{` for a literal `${{`"
                )
            }
            Self::Unclosed { .. } => {
                "close it with `}`, or write `$${` for a literal `${`".to_owned()
            }
            Self::BadName { .. } => {
                "secret names use letters, digits and `_`, and do not start with a digit".to_owned()
            }
        }
    }
}

/// Whether `s` is a valid secret (and environment variable) name.
pub fn is_variable_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Interpolated {
    /// A value with no references.
    pub fn literal(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Splits the text into literal pieces and secret references.
    pub fn parts(&self) -> Result<Vec<Part<'_>>, InterpolationError> {
        let s = self.0.as_str();
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(pos) = rest.find('$') {
            text.push_str(&rest[..pos]);
            let after = &rest[pos..];
            if let Some(tail) = after.strip_prefix("$${") {
                text.push_str("${");
                rest = tail;
            } else if let Some(inner_start) = after.strip_prefix("${") {
                let Some(end) = inner_start.find('}') else {
                    return Err(InterpolationError::Unclosed {
                        fragment: after.chars().take(40).collect(),
                    });
                };
                let inner = &inner_start[..end];
                let Some(name) = inner.strip_prefix("secret.") else {
                    return Err(InterpolationError::UnknownReference {
                        reference: inner.to_owned(),
                    });
                };
                if !is_variable_name(name) {
                    return Err(InterpolationError::BadName {
                        name: name.to_owned(),
                    });
                }
                if !text.is_empty() {
                    parts.push(Part::Text(Cow::Owned(std::mem::take(&mut text))));
                }
                parts.push(Part::Secret(name));
                rest = &inner_start[end + 1..];
            } else {
                text.push('$');
                rest = &after[1..];
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(Cow::Owned(text)));
        }
        Ok(parts)
    }

    /// The names of the secrets referenced (empty when the value does not
    /// parse; validation reports that).
    pub fn secret_refs(&self) -> Vec<&str> {
        self.parts()
            .map(|p| {
                p.into_iter()
                    .filter_map(|p| match p {
                        Part::Secret(n) => Some(n),
                        Part::Text(_) => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether the value references any secret.
    pub fn has_secrets(&self) -> bool {
        !self.secret_refs().is_empty()
    }

    /// The value with every reference replaced by the secret's value.
    /// Returns the name of the first secret `lookup` does not know.
    pub fn render<'s>(
        &self,
        lookup: impl Fn(&str) -> Option<&'s SecretValue>,
    ) -> Result<SecretValue, RenderError> {
        let parts = self.parts().map_err(RenderError::Syntax)?;
        let mut out = String::new();
        for p in parts {
            match p {
                Part::Text(t) => out.push_str(&t),
                Part::Secret(name) => match lookup(name) {
                    Some(v) => out.push_str(v.expose()),
                    None => {
                        return Err(RenderError::Unresolved {
                            name: name.to_owned(),
                        });
                    }
                },
            }
        }
        Ok(SecretValue::new(out))
    }
}

/// Why a value could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The text does not parse (validation should have caught it).
    #[error("invalid secret reference")]
    Syntax(#[source] InterpolationError),
    /// A referenced secret was not resolved.
    #[error("secret `{name}` is not resolved")]
    Unresolved {
        /// The secret's name.
        name: String,
    },
}

impl fmt::Display for Interpolated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The text holds references, never values, so it may be shown.
        f.write_str(&self.0)
    }
}

impl JsonSchema for Interpolated {
    fn schema_name() -> Cow<'static, str> {
        "Interpolated".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = Schema::default();
        s.insert("type".into(), "string".into());
        s.insert(
            "description".into(),
            "Text that may reference declared secrets as `${secret.NAME}`; `$${` is a literal `${`.".into(),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_and_references() {
        let v = Interpolated::literal("postgres://app:${secret.DB_PASSWORD}@db/${secret.DB}x");
        assert_eq!(
            v.parts(),
            Ok(vec![
                Part::Text("postgres://app:".into()),
                Part::Secret("DB_PASSWORD"),
                Part::Text("@db/".into()),
                Part::Secret("DB"),
                Part::Text("x".into()),
            ])
        );
        assert_eq!(v.secret_refs(), vec!["DB_PASSWORD", "DB"]);
    }

    #[test]
    fn escapes_and_lone_dollars_are_text() {
        let v = Interpolated::literal("cost $5, literal $${HOME}");
        assert_eq!(
            v.parts(),
            Ok(vec![Part::Text("cost $5, literal ${HOME}".into())])
        );
    }

    #[test]
    fn refuses_near_misses() {
        for (s, want) in [
            ("${secrets.X}", "not a secret reference"),
            ("${HOME}", "not a secret reference"),
            ("${secret.X", "not closed"),
            ("${secret.1X}", "not a valid secret name"),
            ("${secret.}", "not a valid secret name"),
        ] {
            let e = Interpolated::literal(s)
                .parts()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(want), "{s}: {e}");
        }
        let hint = Interpolated::literal("${secrets.X}")
            .parts()
            .err()
            .map(|e| e.hint());
        assert!(hint.unwrap_or_default().contains("`${secret.X}`"));
    }

    #[test]
    fn renders_with_values() {
        let pw = SecretValue::new("s3cret-value");
        let v = Interpolated::literal("u:${secret.PW}@h");
        let r = v.render(|n| (n == "PW").then_some(&pw));
        assert_eq!(
            r.map(|s| s.expose().to_owned()),
            Ok("u:s3cret-value@h".to_owned())
        );
        assert!(matches!(
            Interpolated::literal("${secret.NO}").render(|_| None),
            Err(RenderError::Unresolved { .. })
        ));
    }
}
