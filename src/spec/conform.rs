//! Checks the located tree against the generated JSON Schema and converts
//! it to JSON for deserialisation, collecting every problem on the way.
//!
//! This is a walker over the subset of JSON Schema that schemars produces
//! for the model (`$ref`, `type`, `properties`, `additionalProperties`,
//! `required`, `items`, `enum`, `const`, `anyOf`/`oneOf`, numeric bounds),
//! written here rather than taken from a general validator so that every
//! message can name the field in the user's words, suggest the key or value
//! that was probably meant, and point at the exact key or value. Types the
//! schema can only describe by a pattern (durations, deployment names,
//! secret references) are checked by their Rust parser, found by the name
//! of their schema definition.
//!
//! Scalars are typed by the YAML core schema, except that a field that
//! expects text takes an unquoted scalar's text as written (`tag: 1.10`
//! stays `"1.10"`), which is what people mean.

use serde_json::{Map, Number, Value};

use super::diagnostic::Issue;
use super::model::duration::{Duration, InvalidDuration};
use super::model::interpolated::Interpolated;
use super::path::FieldPath;
use super::suggest;
use super::yaml::{Kind, Node, Typed, short};
use crate::id::DeploymentId;

/// Converts `node` (at `path`) against `schema`, a subschema of `root`.
pub(crate) fn conform(
    root: &Value,
    schema: &Value,
    node: &Node,
    path: &FieldPath,
) -> (Value, Vec<Issue>) {
    let mut c = Conformer {
        root,
        issues: Vec::new(),
    };
    let v = c.visit(node, schema, path);
    (v, c.issues)
}

struct Conformer<'s> {
    root: &'s Value,
    issues: Vec<Issue>,
}

/// The JSON type a node has natively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Native {
    Null,
    Bool,
    Int,
    Float,
    Str,
    Seq,
    Map,
}

fn native(node: &Node) -> Native {
    match &node.kind {
        Kind::Map(_) => Native::Map,
        Kind::Seq(_) => Native::Seq,
        Kind::Scalar(s) => match s.typed() {
            Typed::Null => Native::Null,
            Typed::Bool(_) => Native::Bool,
            Typed::Int(_) => Native::Int,
            Typed::Float(_) => Native::Float,
            Typed::Str(_) => Native::Str,
        },
    }
}

/// How well a node fits a list of JSON types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    No,
    /// Only as text (an unquoted number where text is expected).
    AsText,
    Exact,
}

fn fit(kind: Native, types: &[&str]) -> Fit {
    let has = |t: &str| types.contains(&t);
    let exact = match kind {
        Native::Null => has("null"),
        Native::Bool => has("boolean"),
        Native::Int => has("integer") || has("number"),
        Native::Float => has("number"),
        Native::Str => has("string"),
        Native::Seq => has("array"),
        Native::Map => has("object"),
    };
    if exact {
        Fit::Exact
    } else if has("string") && matches!(kind, Native::Bool | Native::Int | Native::Float) {
        Fit::AsText
    } else {
        Fit::No
    }
}

fn types_of(schema: &Value) -> Option<Vec<&str>> {
    match schema.get("type")? {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).collect()),
        _ => None,
    }
}

fn describe_type(t: &str) -> &'static str {
    match t {
        "string" => "text",
        "integer" => "a whole number",
        "number" => "a number",
        "boolean" => "`true` or `false`",
        "object" => "a mapping",
        "array" => "a list",
        "null" => "empty",
        _ => "a value",
    }
}

fn join_or(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// How a message names a field: its last key, with the index when the
/// path ends in one (`records[2]`).
pub(crate) fn field_name(path: &FieldPath) -> String {
    use super::path::Segment;
    match path.segments() {
        [] => "the spec".to_owned(),
        [.., Segment::Key(k)] => format!("`{k}`"),
        [.., Segment::Key(k), Segment::Index(i)] => format!("`{k}[{i}]`"),
        _ => format!("`{path}`"),
    }
}

/// The first sentence of a field's description, starting in lower case,
/// for a hint.
fn first_sentence(s: &str) -> String {
    let s = s.split("\n\n").next().unwrap_or(s).replace('\n', " ");
    let end = s
        .match_indices(". ")
        .find(|(i, _)| s[i + 2..].starts_with(|c: char| c.is_ascii_uppercase()))
        .map_or(s.len(), |(i, _)| i);
    let sentence = s[..end].trim_end_matches('.');
    let mut chars = sentence.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Conformer<'_> {
    fn deref(&self, schema: &Value) -> (Option<String>, Value) {
        let mut current = schema.clone();
        let mut name = None;
        for _ in 0..16 {
            let Some(r) = current.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let target = r
                .strip_prefix('#')
                .and_then(|p| self.root.pointer(p))
                .cloned()
                .unwrap_or(Value::Bool(true));
            name = r.strip_prefix("#/$defs/").map(str::to_owned);
            current = target;
        }
        (name, current)
    }

    fn visit(&mut self, node: &Node, schema: &Value, path: &FieldPath) -> Value {
        let (def, schema) = self.deref(schema);
        let before = self.issues.len();
        let value = self.visit_resolved(node, &schema, path);
        if self.issues.len() == before
            && let Some(def) = def
        {
            self.hook(&def, node, &value, path);
        }
        value
    }

    fn visit_resolved(&mut self, node: &Node, schema: &Value, path: &FieldPath) -> Value {
        if let Some(alts) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            return self.alternatives(node, alts, path);
        }
        let kind = native(node);
        let types = types_of(schema);
        let how = match &types {
            Some(t) => fit(kind, t),
            None => Fit::Exact,
        };
        if how == Fit::No {
            let expected: Vec<String> = types
                .unwrap_or_default()
                .iter()
                .filter(|t| **t != "null")
                .map(|t| describe_type(t).to_owned())
                .collect();
            self.type_error(node, &join_or(&expected), path, &expected);
            return Value::Null;
        }
        let value = match (&node.kind, how) {
            (Kind::Map(entries), _) => Value::Object(self.object(node, entries, schema, path)),
            (Kind::Seq(items), _) => {
                let item_schema = schema.get("items").cloned().unwrap_or(Value::Bool(true));
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.visit(item, &item_schema, &path.index(i)));
                }
                self.check_count(node, items.len(), schema, path);
                Value::Array(out)
            }
            (Kind::Scalar(s), Fit::AsText) => Value::String(s.text.clone()),
            (Kind::Scalar(s), _) => match s.typed() {
                Typed::Null => Value::Null,
                Typed::Bool(b) => Value::Bool(b),
                Typed::Int(n) => Value::Number(n.into()),
                Typed::Float(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
                Typed::Str(t) => Value::String(t.to_owned()),
            },
        };
        self.check_value(node, &value, schema, path);
        value
    }

    fn alternatives(&mut self, node: &Node, alts: &[Value], path: &FieldPath) -> Value {
        let kind = native(node);
        let resolved: Vec<Value> = alts.iter().map(|a| self.deref(a).1).collect();
        if kind == Native::Null
            && resolved
                .iter()
                .any(|r| types_of(r).is_some_and(|t| t.contains(&"null")))
        {
            return Value::Null;
        }
        // A list of constants (an enum whose variants carry descriptions).
        let constants: Option<Vec<Value>> = resolved
            .iter()
            .map(constants_of)
            .collect::<Option<Vec<Vec<Value>>>>()
            .map(|v| v.into_iter().flatten().collect());
        if let Some(constants) = constants {
            let value = self.visit_resolved(node, &serde_json::json!({"type": "string"}), path);
            if !value.is_null() {
                self.check_enum(node, &value, &constants, path);
            }
            return value;
        }
        let fits: Vec<Fit> = resolved
            .iter()
            .map(|r| types_of(r).map_or(Fit::Exact, |t| fit(kind, &t)))
            .collect();
        let best = fits.iter().copied().max().unwrap_or(Fit::No);
        if best == Fit::No {
            let mut expected: Vec<String> = Vec::new();
            for r in &resolved {
                for t in types_of(r).unwrap_or_default() {
                    let d = describe_type(t).to_owned();
                    if t != "null" && !expected.contains(&d) {
                        expected.push(d);
                    }
                }
            }
            self.type_error(node, &join_or(&expected), path, &expected);
            return Value::Null;
        }
        let candidates: Vec<usize> = (0..alts.len()).filter(|i| fits[*i] == best).collect();
        if let [only] = candidates[..] {
            return self.visit(node, &alts[only], path);
        }
        let mut best_try: Option<(Value, Vec<Issue>)> = None;
        for i in candidates {
            let mut trial = Conformer {
                root: self.root,
                issues: Vec::new(),
            };
            let v = trial.visit(node, &alts[i], path);
            if trial.issues.is_empty() {
                return v;
            }
            if best_try
                .as_ref()
                .is_none_or(|(_, issues)| trial.issues.len() < issues.len())
            {
                best_try = Some((v, trial.issues));
            }
        }
        match best_try {
            Some((v, issues)) => {
                self.issues.extend(issues);
                v
            }
            None => Value::Null,
        }
    }

    fn type_error(&mut self, node: &Node, expected: &str, path: &FieldPath, types: &[String]) {
        let name = field_name(path);
        let text = node.as_text().unwrap_or_default();
        let secret = !node.is_null() && super::credential::is_secret_value(path, text);
        let found = if secret {
            "a value (not shown: it may be a secret)".to_owned()
        } else {
            node.describe()
        };
        let message = if node.is_null() {
            format!("{name} has no value; it must be {expected}")
        } else {
            format!("{name} must be {expected}, found {found}")
        };
        let mut issue = Issue::error(path.clone(), message).at(node.value_mark());
        if secret {
            if super::credential::declares_secret(path) {
                issue = issue.hint(format!(
                    "a secret's value goes in the environment or `.env` (`{name}=...`), never in the spec; declare it with `{name}:` alone, or `{name}: {{generate: true}}`",
                    name = path.last_key().unwrap_or_default()
                ));
            }
        } else if types.iter().any(|t| t == "`true` or `false`")
            && matches!(
                text.to_ascii_lowercase().as_str(),
                "yes" | "no" | "on" | "off" | "y" | "n"
            )
        {
            issue = issue.hint(format!(
                "YAML 1.2 reads `{text}` as text; write `true` or `false`"
            ));
        } else if types.iter().any(|t| t == "a list") && node.scalar().is_some() && !node.is_null()
        {
            issue = issue.hint(format!("write a list: `[{}]`", short(text)));
        } else if types.iter().any(|t| t == "a whole number") && native(node) == Native::Float {
            issue = issue.hint("write a whole number, without a decimal point".to_owned());
        } else if types
            .iter()
            .any(|t| t == "a whole number" || t == "a number")
            && native(node) == Native::Str
            && text
                .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                .parse::<f64>()
                .is_ok()
        {
            issue = issue.hint("write the number alone, without a unit".to_owned());
        }
        self.issues.push(issue);
    }

    fn object(
        &mut self,
        node: &Node,
        entries: &[super::yaml::Entry],
        schema: &Value,
        path: &FieldPath,
    ) -> Map<String, Value> {
        let empty = Map::new();
        let props = schema
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let additional = schema.get("additionalProperties");
        let mut out = Map::new();
        for e in entries {
            let child = path.key(&e.key);
            if let Some(ps) = props.get(&e.key) {
                let v = self.visit(&e.value, ps, &child);
                out.insert(e.key.clone(), v);
                continue;
            }
            match additional {
                Some(Value::Bool(false)) => self.unknown_key(e, props, path),
                Some(s @ Value::Object(_)) => {
                    let v = self.visit(&e.value, s, &child);
                    out.insert(e.key.clone(), v);
                }
                _ => {
                    let v = self.visit(&e.value, &Value::Bool(true), &child);
                    out.insert(e.key.clone(), v);
                }
            }
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for r in required.iter().filter_map(Value::as_str) {
                if entries.iter().any(|e| e.key == r) {
                    continue;
                }
                let message = if path.is_root() {
                    format!("missing required top-level key `{r}`")
                } else {
                    format!("missing required key `{r}` in `{path}`")
                };
                let hint = props
                    .get(r)
                    .map(|p| self.deref(p).1)
                    .and_then(|p| {
                        props
                            .get(r)
                            .and_then(|o| o.get("description"))
                            .or_else(|| p.get("description"))
                            .and_then(Value::as_str)
                            .map(first_sentence)
                    })
                    .map(|d| format!("`{r}`: {d}"));
                self.issues.push(
                    Issue::error(path.key(r), message)
                        .at(node.key_mark.unwrap_or(node.mark))
                        .maybe_hint(hint),
                );
            }
        }
        out
    }

    fn unknown_key(
        &mut self,
        e: &super::yaml::Entry,
        props: &Map<String, Value>,
        path: &FieldPath,
    ) {
        let names: Vec<&str> = props.keys().map(String::as_str).collect();
        let message = if path.is_root() {
            format!("unknown top-level key `{}`", e.key)
        } else {
            format!("unknown key `{}` in `{path}`", e.key)
        };
        let hint = if e.key == "<<" {
            Some("YAML merge keys (`<<`) are not supported; write the keys out".to_owned())
        } else {
            suggest::hint_for(&e.key, &names)
        };
        self.issues.push(
            Issue::error(path.key(&e.key), message)
                .at_key()
                .at(e.key_mark)
                .maybe_hint(hint)
                .harmless_to_value(),
        );
    }

    fn check_count(&mut self, node: &Node, n: usize, schema: &Value, path: &FieldPath) {
        let name = field_name(path);
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
            && (n as u64) < min
        {
            self.issues.push(
                Issue::error(
                    path.clone(),
                    format!("{name} needs at least {}", crate::text::count(min, "item")),
                )
                .at(node.value_mark()),
            );
        }
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
            && (n as u64) > max
        {
            self.issues.push(
                Issue::error(
                    path.clone(),
                    format!(
                        "{name} takes at most {}, found {n}",
                        crate::text::count(max, "item")
                    ),
                )
                .at(node.value_mark()),
            );
        }
    }

    fn check_value(&mut self, node: &Node, value: &Value, schema: &Value, path: &FieldPath) {
        let name = field_name(path);
        if let Some(c) = schema.get("const") {
            self.check_enum(node, value, std::slice::from_ref(c), path);
        }
        if let Some(Value::Array(options)) = schema.get("enum") {
            self.check_enum(node, value, options, path);
        }
        if let Some(n) = value.as_f64() {
            let shown = node.as_text().unwrap_or_default();
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                && n < min
            {
                let message = if min == 0.0 {
                    format!("{name} must not be negative, found {shown}")
                } else {
                    format!("{name} must be at least {min}, found {shown}")
                };
                self.issues
                    .push(Issue::error(path.clone(), message).at(node.value_mark()));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                && n > max
            {
                self.issues.push(
                    Issue::error(
                        path.clone(),
                        format!("{name} must be at most {max}, found {shown}"),
                    )
                    .at(node.value_mark()),
                );
            }
        }
        if let Some(s) = value.as_str() {
            let len = s.chars().count() as u64;
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                self.issues.push(
                    Issue::error(path.clone(), format!("{name} must not be empty"))
                        .at(node.value_mark()),
                );
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                self.issues.push(
                    Issue::error(
                        path.clone(),
                        format!("{name} is longer than {max} characters"),
                    )
                    .at(node.value_mark()),
                );
            }
        }
    }

    fn check_enum(&mut self, node: &Node, value: &Value, options: &[Value], path: &FieldPath) {
        if options.contains(value) {
            return;
        }
        let names: Vec<&str> = options.iter().filter_map(Value::as_str).collect();
        let shown = match value {
            Value::String(s) => short(s),
            other => other.to_string(),
        };
        let message = match names[..] {
            [one] => format!("{} must be `{one}`, found `{shown}`", field_name(path)),
            _ => format!("`{shown}` is not a valid value for `{path}`"),
        };
        let hint = match value {
            Value::String(s) => suggest::hint_for(s, &names),
            _ => suggest::one_of(&names),
        };
        self.issues.push(
            Issue::error(path.clone(), message)
                .at(node.value_mark())
                .maybe_hint(hint),
        );
    }

    /// Checks a value by the Rust rule of its type.
    fn hook(&mut self, def: &str, node: &Node, value: &Value, path: &FieldPath) {
        let Some(text) = value.as_str() else {
            return;
        };
        let issue = match def {
            "Duration" => match text.parse::<Duration>() {
                Ok(_) => None,
                Err(e @ InvalidDuration::TooLong(_)) => {
                    Some(Issue::error(path.clone(), e.to_string()))
                }
                Err(e @ InvalidDuration::Syntax(_)) => {
                    let hint = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                        format!("add a unit: `{text}s`")
                    } else {
                        "write a number and a unit (`ms`, `s`, `m`, `h`), e.g. `30s`, `5m`, `1h30m`"
                            .to_owned()
                    };
                    Some(Issue::error(path.clone(), e.to_string()).hint(hint))
                }
            },
            "DeploymentName" => match DeploymentId::new(text) {
                Ok(_) => None,
                Err(e) => {
                    let fixed: String = text
                        .to_ascii_lowercase()
                        .chars()
                        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                        .collect();
                    let fixed = fixed.trim_matches('-').to_owned();
                    let hint = if DeploymentId::new(fixed.clone()).is_ok() {
                        format!("e.g. `{fixed}`")
                    } else {
                        "use lower-case letters, digits and hyphens, e.g. `my-blog`".to_owned()
                    };
                    Some(
                        Issue::error(
                            path.clone(),
                            format!("invalid deployment name `{}`: {}", short(text), e.reason),
                        )
                        .hint(hint),
                    )
                }
            },
            "Interpolated" => match Interpolated::literal(text).parts() {
                Ok(_) => None,
                Err(e) => Some(Issue::error(path.clone(), e.to_string()).hint(e.hint())),
            },
            _ => None,
        };
        if let Some(issue) = issue {
            self.issues.push(issue.at(node.value_mark()));
        }
    }
}

/// The constant string values a schema allows, when it is only a `const`
/// or an `enum` of strings.
fn constants_of(schema: &Value) -> Option<Vec<Value>> {
    let obj = schema.as_object()?;
    if let Some(c) = obj.get("const") {
        return Some(vec![c.clone()]);
    }
    if let Some(Value::Array(e)) = obj.get("enum")
        && !obj.contains_key("properties")
    {
        return Some(e.clone());
    }
    None
}
