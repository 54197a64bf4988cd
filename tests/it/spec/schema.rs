//! The checked-in JSON Schema, and that editors' validators agree with
//! `fabrik validate` on the examples.

use std::path::PathBuf;

use fabrik::spec::schema::{json_schema, json_schema_text};
use serde_json::Value;

use super::{example_specs, root};

fn schema_file() -> PathBuf {
    root().join("schema/spec.schema.json")
}

/// Fails when `schema/spec.schema.json` differs from the schema generated
/// from the model. Run with `FABRIK_UPDATE_SCHEMA=1` to rewrite it.
#[test]
fn checked_in_schema_is_current() {
    let fresh = json_schema_text();
    if std::env::var_os("FABRIK_UPDATE_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(schema_file(), &fresh).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(schema_file()).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "schema/spec.schema.json is stale: run `FABRIK_UPDATE_SCHEMA=1 cargo test --test it spec::schema`"
    );
}

#[test]
fn schema_is_a_valid_draft_2020_12_schema() {
    let schema = json_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(&schema).unwrap();
}

#[test]
fn every_example_is_valid_for_editors_too() {
    let validator = jsonschema::validator_for(&json_schema()).unwrap();
    let specs = example_specs();
    assert!(specs.len() >= 7, "{specs:?}");
    for path in specs {
        let text = std::fs::read_to_string(&path).unwrap();
        let value: Value = serde_yaml::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

#[test]
fn editors_reject_what_validate_rejects_by_shape() {
    let validator = jsonschema::validator_for(&json_schema()).unwrap();
    for bad in [
        "name: x\ncoolify: {project: a, environment: b, server: c}\napp: {image: 'n:1', port: 80, domian: x}\n",
        "name: x\ncoolify: {project: a, environment: b, server: c}\napp: {image: 'n:1', port: 70000}\n",
        "name: x\ncoolify: {project: a, environment: b}\napp: {image: 'n:1', port: 80}\n",
        "name: x\ncoolify: {project: a, environment: b, server: c}\napp: {image: 'n:1', port: 80}\nrollback: {dns: sometimes}\n",
    ] {
        let value: Value = serde_yaml::from_str(bad).unwrap();
        assert!(!validator.is_valid(&value), "{bad}");
    }
}

/// Patterns in the schema are for editors; `fabrik validate` enforces
/// them through the Rust parser of the type, which it finds by the
/// definition's name. A pattern anywhere else would go unchecked.
#[test]
fn every_pattern_has_a_rust_check() {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k == "pattern" {
                        out.push(at.clone());
                    }
                    walk(v, format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(&json_schema(), String::new(), &mut found);
    found.sort();
    assert_eq!(found, vec!["/$defs/DeploymentName", "/$defs/Duration"]);
}

/// `docs/spec.md` documents every field of the schema and every template
/// parameter.
#[test]
fn every_field_is_documented() {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Object(props)) = m.get("properties") {
                    out.extend(props.keys().cloned());
                }
                for key in ["enum", "const"] {
                    match m.get(key) {
                        Some(Value::Array(a)) => {
                            out.extend(a.iter().filter_map(Value::as_str).map(str::to_owned))
                        }
                        Some(Value::String(s)) => out.push(s.clone()),
                        _ => {}
                    }
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let doc = std::fs::read_to_string(root().join("docs/spec.md")).unwrap();
    let mut names = Vec::new();
    walk(&json_schema(), &mut names);
    for t in fabrik::spec::model::TemplateName::ALL {
        let info = fabrik::spec::template::info(t).unwrap();
        names.extend(info.params.into_iter().map(|p| p.name));
    }
    names.sort();
    names.dedup();
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !doc.contains(&format!("`{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not documented in docs/spec.md: {missing:?}"
    );
}
