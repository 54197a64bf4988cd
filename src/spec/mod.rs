//! The spec file (`spec.yaml`): the user's whole interface to Fabrik.
//!
//! [`load`] reads a spec, expands its template, validates it and lints the
//! compose file it names, and reports every problem at once as a located
//! [`Diagnostic`] (`FILE:LINE:COL: error: message`, the field path, a
//! hint). [`secrets::resolve`] then finds each secret's value, and
//! [`hash::desired_state`] digests what the spec asks for.
//!
//! # Layout
//!
//! - [`model`]: the data model; the JSON Schema and deserialisation both
//!   come from it. No secret value ever lives in it.
//! - `yaml`: the located YAML tree (positions for every key and value;
//!   caps on size, depth and alias expansion).
//! - `conform`: checks the tree against the generated schema and turns it
//!   into JSON for deserialisation, with human messages and "did you mean".
//! - `rules`: cross-field rules (undeclared secrets, records outside their
//!   zone, URLs the app does not serve, conflicting app forms, ...).
//! - [`template`]: the built-in templates (`wordpress`, `static-site`).
//! - `compose`: the docker-compose lint.
//! - [`files`]: reading files the spec names, confined to its directory.
//! - [`schema`]: the JSON Schema (`fabrik schema`).
//! - [`dotenv`], [`secrets`]: the `.env` file and secret resolution.
//! - [`hash`]: the desired-state digests.
//! - [`init`]: `fabrik init`.
//! - [`diagnostic`], [`path`]: located problems and field paths;
//!   `excerpt`: the line a problem is on, quoted under it (secrets
//!   masked).
//!
//! # Invariants
//!
//! - Parsing, validation and hashing take bytes and return data; only
//!   [`load`], [`secrets::resolve`] and [`init::scaffold`] touch the file
//!   system, and nothing here reads the process environment.
//! - No `Debug` or `Display` of a spec, diagnostic or secret type shows a
//!   secret value: specs hold `${secret.NAME}` references, values live in
//!   [`crate::secret::SecretValue`].
//! - Hostile input (huge, deeply nested, alias bombs, invalid UTF-8) gives
//!   a diagnostic, never a panic or unbounded memory.

pub mod diagnostic;
pub mod dotenv;
pub mod files;
pub mod hash;
pub mod init;
pub mod model;
pub mod path;
pub mod schema;
pub mod secrets;
pub mod services;
pub mod template;

mod compose;
mod conform;
mod credential;
mod environments;
mod excerpt;
mod host;
mod load;
pub mod patterns;
mod rules;
mod suggest;
mod yaml;

pub use diagnostic::{Diagnostic, Severity};
pub use files::{DiskFiles, FileProblem, MemoryFiles, ProjectFiles};
pub use load::{Checked, LoadOptions, Loaded, SpecError, check, declared_environments, load};
pub use model::Spec;
pub use yaml::Limits;

/// A compose file as data (YAML 1.2 core types: numbers, booleans and
/// nulls typed, mapping keys as text, entries in file order), or `None`
/// when it does not parse. Two files with the same meaning give the same
/// value whatever their comments, quoting or layout, which is how a
/// compose file Coolify stored (re-serialised) is compared with the spec's.
pub fn compose_document(text: &str) -> Option<serde_json::Value> {
    fn value(node: &yaml::Node) -> serde_json::Value {
        use serde_json::Value;
        match &node.kind {
            yaml::Kind::Scalar(s) => match s.typed() {
                yaml::Typed::Null => Value::Null,
                yaml::Typed::Bool(b) => Value::Bool(b),
                yaml::Typed::Int(i) => Value::from(i),
                yaml::Typed::Float(f) => {
                    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                }
                yaml::Typed::Str(t) => Value::String(t.to_owned()),
            },
            yaml::Kind::Seq(items) => Value::Array(items.iter().map(value).collect()),
            yaml::Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), value(&e.value)))
                    .collect(),
            ),
        }
    }
    yaml::parse(text.as_bytes(), &Limits::default())
        .ok()
        .map(|(root, _)| value(&root))
}

/// The service names of a compose file, in file order; empty when it does
/// not parse (validation reports that with its location).
pub fn compose_services(text: &str) -> Vec<String> {
    match yaml::parse(text.as_bytes(), &Limits::default()) {
        Ok((root, _)) => root
            .get("services")
            .and_then(yaml::Node::entries)
            .map(|entries| entries.iter().map(|e| e.key.clone()).collect())
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}
