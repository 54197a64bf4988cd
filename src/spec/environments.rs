//! Environments: `environments:` names a spec's environments (`staging`,
//! `production`, ...), each a mapping that overrides any top-level field
//! but `name`. The spec of one environment is the file with that mapping
//! merged over it: mappings merge key by key, anything else (a list, a
//! value) is replaced whole. The merged nodes keep the positions they were
//! written at, so a problem in an override is reported where the override
//! is.

use super::diagnostic::Issue;
use super::path::FieldPath;
use super::suggest;
use super::yaml::{Entry, Kind, Node, Typed};
use crate::id::Digest;

/// Keys an environment may not override.
const FIXED: &[&str] = &["name", "environments"];

/// The environments a spec tree declares, in written order (empty when it
/// declares none, or when `environments` is not a mapping).
pub(crate) fn declared(tree: &Node) -> Vec<String> {
    tree.get("environments")
        .and_then(Node::entries)
        .map(|e| e.iter().map(|e| e.key.clone()).collect())
        .unwrap_or_default()
}

/// The hash of what every environment shares: the tree without
/// `environments`, as values (positions, comments, quoting and key order
/// do not count; `8080` and `"8080"` differ, as they do to the schema).
/// The same for every environment of the file, so that a run of one can
/// be compared with today's file loaded for another.
pub(crate) fn shared_hash(tree: &Node) -> Digest {
    fn value(node: &Node) -> serde_json::Value {
        use serde_json::Value;
        match &node.kind {
            Kind::Scalar(s) => match s.typed() {
                Typed::Null => Value::Null,
                Typed::Bool(b) => Value::Bool(b),
                Typed::Int(n) => Value::from(n),
                Typed::Float(f) => Value::from(f),
                Typed::Str(t) => Value::from(t),
            },
            Kind::Seq(items) => Value::Array(items.iter().map(value).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), value(&e.value)))
                    .collect(),
            ),
        }
    }
    let mut shared = value(tree);
    if let Some(map) = shared.as_object_mut() {
        map.remove("environments");
    }
    Digest::of(crate::event::canonical_json(&shared).as_bytes())
}

/// Takes `environments` out of `tree` and merges the chosen one over the
/// rest. Returns the problems: no environment chosen for a spec that has
/// them, one chosen that it does not declare, a malformed declaration.
pub(crate) fn select(tree: &mut Node, chosen: Option<&str>) -> Vec<Issue> {
    let mut issues = Vec::new();
    let Kind::Map(entries) = &mut tree.kind else {
        return issues;
    };
    let Some(at) = entries.iter().position(|e| e.key == "environments") else {
        if let Some(env) = chosen {
            issues.push(
                Issue::error(
                    FieldPath::root(),
                    format!("environment `{env}` was chosen (--env or FABRIK_ENV), but this spec declares no `environments`"),
                )
                .hint("leave out --env and unset FABRIK_ENV, or declare the environment under `environments:`"),
            );
        }
        return issues;
    };
    let declaration = entries.remove(at);
    let path = FieldPath::of("environments");
    let Some(envs) = declaration.value.entries() else {
        issues.push(
            Issue::error(
                path,
                format!(
                    "`environments` is a mapping of environment names to the fields they override, found {}",
                    declaration.value.describe()
                ),
            )
            .at(declaration.value.mark),
        );
        return issues;
    };
    let names: Vec<&str> = envs.iter().map(|e| e.key.as_str()).collect();
    for e in envs {
        let here = path.key(&e.key);
        if let Some(problem) = crate::id::environment_problem(&e.key) {
            issues.push(
                Issue::error(
                    here.clone(),
                    format!("invalid environment name `{}`: {problem}", e.key),
                )
                .at(e.key_mark),
            );
        }
        match e.value.entries() {
            Some(fields) => {
                for f in fields.iter().filter(|f| FIXED.contains(&f.key.as_str())) {
                    issues.push(
                        Issue::error(
                            here.key(&f.key),
                            format!("an environment cannot override `{}`", f.key),
                        )
                        .at(f.key_mark)
                        .hint("a deployment's name is the same in every environment; each environment is its own deployment (`name@environment`)"),
                    );
                }
            }
            None if e.value.is_null() => {}
            None => issues.push(
                Issue::error(
                    here,
                    format!(
                        "environment `{}` is a mapping of the fields it overrides, found {}",
                        e.key,
                        e.value.describe()
                    ),
                )
                .at(e.value.mark),
            ),
        }
    }
    let Some(env) = chosen else {
        issues.push(
            Issue::error(
                path,
                format!(
                    "this spec declares environments ({}): choose one with --env NAME (or FABRIK_ENV)",
                    names.join(", ")
                ),
            )
            .at(declaration.key_mark)
            .hint(format!("for example `--env {}`", names[0])),
        );
        return issues;
    };
    let Some(overrides) = envs.iter().find(|e| e.key == env) else {
        issues.push(
            Issue::error(
                path,
                format!(
                    "environment `{env}` (--env or FABRIK_ENV) is not declared here; this spec declares {}",
                    names.join(", ")
                ),
            )
            .at(declaration.key_mark)
            .maybe_hint(suggest::hint_for(env, &names)),
        );
        return issues;
    };
    if let Some(fields) = overrides.value.entries() {
        for f in fields.iter().filter(|f| !FIXED.contains(&f.key.as_str())) {
            merge_entry(entries, f.clone());
        }
    }
    issues
}

/// Merges `over` into `entries`: a mapping over a mapping merges key by
/// key; anything else replaces what was there (or is added).
fn merge_entry(entries: &mut Vec<Entry>, over: Entry) {
    match entries.iter_mut().find(|e| e.key == over.key) {
        Some(base) => match (&mut base.value.kind, over.value.kind) {
            (Kind::Map(inner), Kind::Map(fields)) => {
                for f in fields {
                    merge_entry(inner, f);
                }
            }
            (_, kind) => {
                base.value = Node { kind, ..over.value };
            }
        },
        None => entries.push(over),
    }
}

#[cfg(test)]
mod tests {
    use super::shared_hash;
    use crate::spec::yaml::{Limits, parse};

    fn hash(text: &str) -> crate::id::Digest {
        let (tree, issues) = parse(text.as_bytes(), &Limits::default()).unwrap();
        assert!(issues.is_empty(), "{issues:?}");
        shared_hash(&tree)
    }

    #[test]
    fn the_shared_part_ignores_environments_and_layout_but_not_values() {
        let base = hash("name: web\napp:\n  image: nginx:1\n  port: 80\n");
        // Environments, comments, quoting and key order are not the shared part.
        assert_eq!(
            base,
            hash(
                "# the web\nname: \"web\"\napp: {port: 80, image: 'nginx:1'}\nenvironments:\n  staging:\n    app:\n      port: 81\n"
            )
        );
        assert_eq!(
            hash("name: web\napp:\n  image: nginx:1\n  port: 80\nenvironments:\n  production:\n"),
            hash(
                "name: web\napp:\n  image: nginx:1\n  port: 80\nenvironments:\n  production:\n    app: {port: 8080}\n"
            )
        );
        // A value of the shared part is.
        assert_ne!(
            base,
            hash("name: web\napp:\n  image: nginx:2\n  port: 80\n")
        );
        assert_ne!(
            base,
            hash("name: web\napp:\n  image: nginx:1\n  port: \"80\"\n")
        );
    }
}
