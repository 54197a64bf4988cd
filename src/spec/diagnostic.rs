//! Diagnostics: one located problem in a spec or in a file it references.
//!
//! Checks produce issues, which name a field path; the loader turns
//! them into [`Diagnostic`]s by looking the path up in the located YAML tree,
//! so every check can stay a plain function of the model.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::path::FieldPath;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Blocks: the spec is invalid and nothing may touch a remote service.
    Error,
    /// Reported, but the spec is still valid (an untagged image, a service
    /// without a health check).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Error => "error",
            Self::Warning => "warning",
        })
    }
}

/// A line and column in a file, both counted from 1, columns in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mark {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, in characters.
    pub column: u32,
}

impl Mark {
    /// The first character of a file.
    pub const START: Mark = Mark { line: 1, column: 1 };

    /// A mark from 1-based line and column.
    pub fn new(line: u32, column: u32) -> Self {
        Self { line, column }
    }
}

/// One problem, located.
///
/// `Display` renders the compiler-style form
/// `FILE:LINE:COL: error: message`, then the field path and an optional
/// hint on indented lines. Messages never contain a secret value: checks
/// only ever see secret names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// The file the problem is in (the spec, or a compose file it names).
    pub file: PathBuf,
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1, in characters.
    pub column: u32,
    /// The field the problem concerns (`dns.records[2].name`); empty for
    /// problems with the file as a whole. In a compose file, the path inside
    /// that file.
    pub path: String,
    /// What is wrong, in one lowercase sentence without a trailing period.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Whether it blocks.
    pub severity: Severity,
    /// The line the problem is on, as shown under the message (when the
    /// file's text was at hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<Excerpt>,
}

/// A line of a file quoted under a diagnostic, and where in it to point.
///
/// The text is safe to show: values that are secrets are masked
/// (`********`), credentials in URLs hidden (`user:***@`), and control,
/// bidirectional and zero-width characters, tabs included, escaped
/// (`\t`). `caret` and `width` count characters of that text, so that an
/// escape or a multi-byte character before the location does not move
/// the carets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excerpt {
    /// The line as shown.
    pub text: String,
    /// Characters of `text` before the first one pointed at.
    pub caret: u32,
    /// Characters pointed at: the whole value or key when its extent is
    /// known, else 1.
    pub width: u32,
}

/// What a part of a rendered diagnostic is, for colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Text.
    Text,
    /// The margin before a quoted line (`  7 | `).
    Margin,
    /// The carets under the location.
    Pointer,
}

impl Diagnostic {
    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The diagnostic as `fabrik validate` shows it: the first line of
    /// its `Display`, then the quoted line with carets under the location
    /// (when there is an excerpt), then the field and the hint; in parts,
    /// so that the margin and the carets can be coloured. Joined, the
    /// parts are the text without colour, without a final line break.
    pub fn parts(&self) -> Vec<(Part, String)> {
        let mut parts = vec![(Part::Text, self.headline())];
        if let Some(e) = &self.excerpt {
            let number = self.line.to_string();
            let width = number.len().max(4);
            parts.extend([
                (Part::Text, "\n".to_owned()),
                (Part::Margin, format!("{number:>width$} | ")),
                (Part::Text, e.text.clone()),
                (Part::Text, "\n".to_owned()),
                (Part::Margin, format!("{:>width$} | ", "")),
                (Part::Text, " ".repeat(e.caret as usize)),
                (Part::Pointer, "^".repeat(e.width.max(1) as usize)),
            ]);
        }
        parts.push((Part::Text, self.notes()));
        parts
    }

    /// [`Diagnostic::parts`] joined: the text without colour.
    pub fn report(&self) -> String {
        self.parts().into_iter().map(|(_, text)| text).collect()
    }

    /// `FILE:LINE:COL: error: message`.
    fn headline(&self) -> String {
        format!(
            "{}:{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.severity,
            self.message
        )
    }

    /// The field and the hint, each on a line of its own (with the line
    /// break before it).
    fn notes(&self) -> String {
        let mut out = String::new();
        if !self.path.is_empty() {
            out.push_str("\n  field: ");
            out.push_str(&self.path);
        }
        if let Some(hint) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(hint);
        }
        out
    }

    pub(crate) fn sort_key(&self) -> (PathBuf, u32, u32, Severity, String) {
        (
            self.file.clone(),
            self.line,
            self.column,
            self.severity,
            self.message.clone(),
        )
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.headline(), self.notes())
    }
}

/// Sorts diagnostics by file, position, severity and message, and drops
/// exact duplicates (two checks may notice the same thing).
pub(crate) fn sort(diags: &mut Vec<Diagnostic>) {
    diags.sort_by_key(Diagnostic::sort_key);
    diags.dedup();
}

/// Which part of a field a problem points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    /// The key (an unknown or duplicate key, a conflicting option).
    Key,
    /// The value (a bad value).
    Value,
}

/// A problem found by a check, named by field path rather than position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    pub path: FieldPath,
    pub anchor: Anchor,
    /// A position to use instead of looking the path up (parse errors, which
    /// happen where there is no tree yet).
    pub mark: Option<Mark>,
    pub message: String,
    pub hint: Option<String>,
    pub severity: Severity,
    /// Whether the value at `path` is unusable because of this problem
    /// (an unknown key, for one, leaves every value intact).
    pub affects_value: bool,
    /// Other fields the check read to find this problem: when one of them
    /// is already reported as wrong (and a stand-in took its place), the
    /// finding may be an artefact and is dropped.
    pub inputs: Vec<FieldPath>,
}

impl Issue {
    /// An error about the value at `path`.
    pub fn error(path: FieldPath, message: impl Into<String>) -> Self {
        Self {
            path,
            anchor: Anchor::Value,
            mark: None,
            message: message.into(),
            hint: None,
            severity: Severity::Error,
            affects_value: true,
            inputs: Vec::new(),
        }
    }

    /// A warning about the value at `path`.
    pub fn warning(path: FieldPath, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(path, message)
        }
    }

    /// Marks a problem that leaves the value usable.
    pub fn harmless_to_value(mut self) -> Self {
        self.affects_value = false;
        self
    }

    /// Points at the key rather than the value.
    pub fn at_key(mut self) -> Self {
        self.anchor = Anchor::Key;
        self
    }

    /// Records another field the finding depends on.
    pub fn reads(mut self, path: FieldPath) -> Self {
        self.inputs.push(path);
        self
    }

    /// Uses a known position.
    pub fn at(mut self, mark: Mark) -> Self {
        self.mark = Some(mark);
        self
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint when there is one.
    pub fn maybe_hint(mut self, hint: Option<String>) -> Self {
        if hint.is_some() {
            self.hint = hint;
        }
        self
    }

    /// Whether this blocks.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The diagnostic at `mark` in `file`. Messages quote what the user
    /// wrote, so every text is made safe to show here, once for all
    /// checks: control and bidirectional characters are escaped
    /// (`\u{202e}`), and credentials written into a URL are hidden
    /// (`user:***@`).
    pub fn into_diagnostic(self, file: &Path, mark: Mark) -> Diagnostic {
        Diagnostic {
            file: file.to_path_buf(),
            line: mark.line,
            column: mark.column,
            path: shown(&self.path.to_string()),
            message: shown(&self.message),
            hint: self.hint.as_deref().map(shown),
            severity: self.severity,
            excerpt: None,
        }
    }
}

/// `text` as a diagnostic may show it.
pub(crate) fn shown(text: &str) -> String {
    crate::text::printable_line(&super::credential::redacted(text)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_compiler_style_with_field_and_hint() {
        let d = Issue::error(FieldPath::of("app.domian"), "unknown key `domian` in `app`")
            .hint("did you mean `domains`?")
            .into_diagnostic(Path::new("spec.yaml"), Mark::new(12, 5));
        assert_eq!(
            d.to_string(),
            "spec.yaml:12:5: error: unknown key `domian` in `app`\n  field: app.domian\n  hint: did you mean `domains`?"
        );
        let d2 = Issue::error(
            FieldPath::of("app.image"),
            "`a\u{202e}b` and https://u:hunter2@h.example.com",
        )
        .hint("tab\there")
        .into_diagnostic(Path::new("s.yaml"), Mark::START);
        assert_eq!(d2.message, "`a\\u{202e}b` and https://u:***@h.example.com");
        assert_eq!(d2.hint.as_deref(), Some("tab\\there"));
        let json = serde_json::to_value(&d).unwrap_or_default();
        assert_eq!(json["line"], 12);
        assert_eq!(json["severity"], "error");
    }
}
