//! The built-in template library.
//!
//! A template is a YAML file (beside this one) with a description, its
//! parameters (with optional defaults) and what it `provides`: the `app`
//! section and the `secrets` it needs. Expansion happens on the located
//! tree, before validation, so an expanded spec is checked exactly like a
//! hand-written one. Parameters are substituted into scalar values, never
//! into YAML text, so a parameter can not change the document's structure.
//! Missing and unknown parameters, and placeholders left unresolved, are
//! errors: they are caught before anything touches a remote service.
//!
//! An embedded file (a `|` literal block, such as a compose file) is YAML
//! text itself: there a placeholder must stand alone as a value, and is
//! rendered as a double-quoted YAML string, so no value can add a key or
//! a line to the file. Every parameter also has a type (`host`, `image`,
//! `identifier`, ...) that its value must fit, so a value with a newline
//! or a quote is refused before it is rendered at all.

use std::collections::BTreeMap;

use super::diagnostic::{Issue, Mark};
use super::model::TemplateName;
use super::path::FieldPath;
use super::suggest;
use super::yaml::{self, Entry, Kind, Limits, Node, Origin, Style};

/// One parameter of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// Its default; a parameter without one is required.
    pub default: Option<String>,
    /// What its value must be.
    pub kind: ParamType,
}

/// What a template parameter's value must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    /// A host name (`blog.example.com`).
    Host,
    /// A Docker image reference with its tag (`mariadb:11.8`).
    Image,
    /// Letters, digits and `_` (a table prefix).
    Identifier,
    /// An https URL without credentials.
    HttpsUrl,
    /// A git branch name.
    Branch,
    /// An absolute directory path inside a repository (`/dist`).
    Directory,
}

impl ParamType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "host" => Self::Host,
            "image" => Self::Image,
            "identifier" => Self::Identifier,
            "https_url" => Self::HttpsUrl,
            "branch" => Self::Branch,
            "directory" => Self::Directory,
            _ => return None,
        })
    }

    /// Why `value` does not fit, with how to write it.
    pub fn problem(self, value: &str) -> Option<(String, String)> {
        use crate::spec::rules::app::{branch_problem, image_problem};
        let (why, how) = match self {
            Self::Host => (
                crate::spec::host::ascii_host(value, false)
                    .err()
                    .map(|p| format!("is not a host name: {}", p.reason())),
                "a host name, e.g. `blog.example.com`",
            ),
            Self::Image => (
                image_problem(value).map(|p| format!("is not an image reference: {p}")),
                "an image and its tag, e.g. `mariadb:11.8`",
            ),
            Self::Identifier => (
                (value.is_empty()
                    || value.len() > 64
                    || !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
                .then(|| "is not an identifier".to_owned()),
                "1 to 64 letters, digits and `_`, e.g. `wp_`",
            ),
            Self::HttpsUrl => (
                match crate::spec::rules::http_url_host(value) {
                    _ if !value.starts_with("https://") => Some("is not an https URL".to_owned()),
                    _ if crate::spec::credential::userinfos(value)
                        .iter()
                        .any(|u| u.is_literal()) =>
                    {
                        Some("carries credentials".to_owned())
                    }
                    Err(p) => Some(p.reason),
                    Ok(_) => None,
                },
                "an https URL without credentials, e.g. `https://github.com/acme/site`",
            ),
            Self::Branch => (
                branch_problem(value).map(|p| format!("is not a branch name: {p}")),
                "a branch name, e.g. `main`",
            ),
            Self::Directory => (
                // Coolify's DIRECTORY_PATH_PATTERN (app/Support/ValidationPatterns.php, 4.3.11).
                (!value.starts_with('/')
                    || !value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-/~@+".contains(&b))
                    || value.contains(".."))
                .then(|| "is not a directory path".to_owned()),
                "an absolute path of letters, digits and `._-/~@+`, e.g. `/dist`",
            ),
        };
        why.map(|w| (w, how.to_owned()))
    }
}

/// A template's description and parameters, for documentation and
/// `fabrik init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    /// The template.
    pub name: TemplateName,
    /// One line about it.
    pub description: String,
    /// Its parameters, in definition order.
    pub params: Vec<Param>,
}

fn source(name: TemplateName) -> &'static str {
    match name {
        TemplateName::Wordpress => include_str!("wordpress.yaml"),
        TemplateName::StaticSite => include_str!("static-site.yaml"),
    }
}

fn parse_definition(name: TemplateName) -> Result<Node, String> {
    yaml::parse(source(name).as_bytes(), &Limits::default())
        .map(|(n, _)| n)
        .map_err(|e| {
            format!(
                "built-in template `{}` does not parse: {}",
                name.as_str(),
                e.first().map(|i| i.message.as_str()).unwrap_or("")
            )
        })
}

/// A template's description and parameters.
pub fn info(name: TemplateName) -> Result<TemplateInfo, String> {
    let def = parse_definition(name)?;
    let description = def
        .get("description")
        .and_then(Node::as_text)
        .unwrap_or_default()
        .to_owned();
    let params = def
        .get("params")
        .and_then(Node::entries)
        .unwrap_or_default()
        .iter()
        .map(|e| Param {
            name: e.key.clone(),
            description: e
                .value
                .get("description")
                .and_then(Node::as_text)
                .unwrap_or_default()
                .to_owned(),
            default: e
                .value
                .get("default")
                .and_then(Node::as_text)
                .map(str::to_owned),
            kind: e
                .value
                .get("type")
                .and_then(Node::as_text)
                .and_then(ParamType::parse)
                .unwrap_or(ParamType::Identifier),
        })
        .collect();
    Ok(TemplateInfo {
        name,
        description,
        params,
    })
}

/// Expands the `template` of `root` in place: adds its `app` and the
/// secrets the spec does not declare itself. Returns the problems; a spec
/// without `template`, or whose `template` is malformed (the schema check
/// reports that), is left alone.
pub(crate) fn expand(root: &mut Node) -> Vec<Issue> {
    let mut issues = Vec::new();
    let Some(entry) = root.entry("template") else {
        return issues;
    };
    let tmark = entry.key_mark;
    let tnode = &entry.value;
    let Some(name_text) = tnode.get("name").and_then(Node::as_text) else {
        return issues;
    };
    let Some(name) = TemplateName::ALL
        .into_iter()
        .find(|t| t.as_str() == name_text)
    else {
        return issues;
    };
    let params_node = tnode.get("params");
    if params_node.is_some_and(|p| p.entries().is_none() && !p.is_null()) {
        return issues;
    }
    let info = match info(name) {
        Ok(i) => i,
        Err(e) => {
            issues.push(Issue::error(FieldPath::of("template.name"), e));
            return issues;
        }
    };
    let params_path = FieldPath::of("template.params");
    let given: &[Entry] = params_node.and_then(Node::entries).unwrap_or_default();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    for e in given {
        let path = params_path.key(&e.key);
        let Some(p) = info.params.iter().find(|p| p.name == e.key) else {
            let names: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
            issues.push(
                Issue::error(
                    path,
                    format!("template `{}` has no parameter `{}`", name.as_str(), e.key),
                )
                .at_key()
                .maybe_hint(suggest::hint_for(&e.key, &names)),
            );
            continue;
        };
        match e.value.scalar() {
            Some(_) if e.value.is_null() => issues.push(
                Issue::error(path, format!("parameter `{}` has no value", p.name))
                    .hint(format!("`{}`: {}", p.name, p.description)),
            ),
            Some(s) if s.text.contains("{{") => issues.push(
                Issue::error(path, format!("parameter `{}` contains `{{{{`", p.name))
                    .hint("parameter values are plain text; they can not hold placeholders"),
            ),
            Some(s) => match p.kind.problem(&s.text) {
                Some((why, how)) => issues.push(
                    Issue::error(path, format!("parameter `{}`: `{}` {why}", p.name, s.text))
                        .hint(format!("`{}` takes {how}", p.name)),
                ),
                None => {
                    values.insert(p.name.clone(), s.text.clone());
                }
            },
            None => issues.push(Issue::error(
                path,
                format!(
                    "parameter `{}` must be text, found {}",
                    p.name,
                    e.value.describe()
                ),
            )),
        }
    }
    for p in &info.params {
        if values.contains_key(&p.name) || given.iter().any(|e| e.key == p.name) {
            continue;
        }
        match &p.default {
            Some(d) => {
                values.insert(p.name.clone(), d.clone());
            }
            None => issues.push(
                Issue::error(
                    params_path.key(&p.name),
                    format!("template `{}` needs parameter `{}`", name.as_str(), p.name),
                )
                .hint(format!("`{}`: {}", p.name, p.description)),
            ),
        }
    }
    if !issues.is_empty() {
        return issues;
    }
    if let Some(app) = root.entry("app") {
        issues.push(
            Issue::error(
                FieldPath::of("app"),
                "`app` and `template` are both given; the template provides the application",
            )
            .at_key()
            .at(app.key_mark)
            .hint("remove `app`, or remove `template` and describe the application yourself"),
        );
        return issues;
    }
    let def = match parse_definition(name) {
        Ok(d) => d,
        Err(e) => {
            issues.push(Issue::error(FieldPath::of("template.name"), e));
            return issues;
        }
    };
    let Some(mut provides) = def.get("provides").cloned() else {
        return issues;
    };
    provides.map_scalars(&mut |s| substitute(s, &values));
    let mut path = FieldPath::root();
    let mut unresolved = Vec::new();
    provides.visit_scalars(&mut path, &mut |p, _, s| {
        if let Some(ph) = placeholder_in(&s.text) {
            unresolved.push((p.clone(), ph));
        }
    });
    for (p, ph) in unresolved {
        issues.push(
            Issue::error(
                FieldPath::of("template"),
                format!(
                    "template `{}` leaves placeholder `{ph}` unresolved (in `{p}`)",
                    name.as_str()
                ),
            )
            .at(tmark),
        );
    }
    if !issues.is_empty() {
        return issues;
    }
    provides.relocate(tmark, Origin::Template(name.as_str()));
    merge(root, provides, tmark);
    issues
}

/// Adds the template's `app`, and its secrets that the spec does not
/// declare itself (the spec's own declaration wins).
fn merge(root: &mut Node, provides: Node, mark: Mark) {
    let Kind::Map(root_entries) = &mut root.kind else {
        return;
    };
    let Kind::Map(entries) = provides.kind else {
        return;
    };
    for e in entries {
        match e.key.as_str() {
            "app" => root_entries.push(Entry {
                key: e.key,
                key_mark: mark,
                value: e.value,
            }),
            "secrets" => {
                let existing = root_entries.iter_mut().find(|r| r.key == "secrets");
                match existing {
                    Some(r) => {
                        if let (Kind::Map(mine), Kind::Map(theirs)) =
                            (&mut r.value.kind, e.value.kind)
                        {
                            for t in theirs {
                                if !mine.iter().any(|m| m.key == t.key) {
                                    mine.push(t);
                                }
                            }
                        }
                    }
                    None => root_entries.push(Entry {
                        key: e.key,
                        key_mark: mark,
                        value: e.value,
                    }),
                }
            }
            _ => {}
        }
    }
}

/// Replaces `{{ name }}` placeholders whose name has a value. A quoted
/// scalar that was exactly one placeholder becomes plain, so that it is
/// typed like any unquoted value (`port: "{{ port }}"` gives a number).
/// In a literal block (an embedded YAML file) each value is written as a
/// double-quoted YAML string, so that it stays one value of that file.
fn substitute(s: &mut yaml::Scalar, values: &BTreeMap<String, String>) {
    let embedded = s.style == Style::Literal;
    if !s.text.contains("{{") {
        return;
    }
    let whole = s.text.trim().starts_with("{{")
        && s.text.trim().ends_with("}}")
        && s.text.matches("{{").count() == 1;
    let mut out = String::with_capacity(s.text.len());
    let mut rest = s.text.as_str();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                let key = after[..end].trim();
                match values.get(key) {
                    Some(v) if embedded => out.push_str(&quoted(v)),
                    Some(v) => out.push_str(v),
                    None => {
                        out.push_str("{{");
                        out.push_str(&after[..end]);
                        out.push_str("}}");
                    }
                }
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    s.text = out;
    if whole && s.style == Style::Quoted && !s.text.contains("{{") {
        s.style = Style::Plain;
    }
}

/// `v` as one YAML text value: as written when that is already a plain
/// text scalar (`mariadb:11.8`, `wp_`), otherwise double-quoted (JSON's
/// string syntax is a subset of YAML's).
fn quoted(v: &str) -> String {
    let plain = v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._/@+-:".contains(&b))
        && v.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/')
        && !v.ends_with(':')
        && matches!(yaml::resolve_plain(v), yaml::Typed::Str(_));
    if plain {
        v.to_owned()
    } else {
        serde_json::to_string(v).unwrap_or_else(|_| "\"\"".to_owned())
    }
}

/// The first `{{ ... }}` left in `text`.
pub(crate) fn placeholder_in(text: &str) -> Option<String> {
    let start = text.find("{{")?;
    let end = text[start..].find("}}")?;
    Some(text[start..start + end + 2].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_documents_its_params() {
        for t in TemplateName::ALL {
            let i = info(t).unwrap_or_else(|e| panic!("{e}"));
            assert!(!i.description.is_empty());
            assert!(!i.params.is_empty());
            for p in &i.params {
                assert!(!p.description.is_empty(), "{}.{}", t.as_str(), p.name);
            }
        }
    }

    #[test]
    fn embedded_values_stay_one_yaml_value() {
        let mut s = yaml::Scalar {
            text: "services:\n  db:\n    image: {{ image }}\n".to_owned(),
            style: Style::Literal,
            forced: None,
        };
        let evil = "mariadb:11.8\n    privileged: true";
        substitute(&mut s, &[("image".to_owned(), evil.to_owned())].into());
        let (doc, _) = yaml::parse(s.text.as_bytes(), &Limits::default()).unwrap();
        let db = doc.get("services").and_then(|x| x.get("db")).unwrap();
        assert_eq!(db.get("image").and_then(Node::as_text), Some(evil));
        assert!(db.get("privileged").is_none());
    }

    #[test]
    fn parameters_are_typed() {
        assert!(ParamType::Image.problem("mariadb:11.8").is_none());
        assert!(
            ParamType::Image
                .problem("mariadb:11.8\n privileged: true")
                .is_some()
        );
        assert!(ParamType::Identifier.problem("wp_").is_none());
        assert!(ParamType::Identifier.problem("wp_\"x").is_some());
        assert!(ParamType::Host.problem("blog.example.com").is_none());
        assert!(ParamType::Host.problem("blog.example.com\nx: y").is_some());
        assert!(
            ParamType::HttpsUrl
                .problem("https://github.com/acme/site")
                .is_none()
        );
        assert!(
            ParamType::HttpsUrl
                .problem("https://u:p@github.com/acme/site")
                .is_some()
        );
        assert!(ParamType::Branch.problem("../../etc").is_some());
        assert!(ParamType::Directory.problem("/dist").is_none());
        assert!(ParamType::Directory.problem("/a\"b").is_some());
    }

    #[test]
    fn every_parameter_has_a_type_and_every_embedded_placeholder_is_a_whole_value() {
        for t in TemplateName::ALL {
            let def = parse_definition(t).unwrap();
            for e in def
                .get("params")
                .and_then(Node::entries)
                .unwrap_or_default()
            {
                let ty = e
                    .value
                    .get("type")
                    .and_then(Node::as_text)
                    .unwrap_or_default();
                assert!(
                    ParamType::parse(ty).is_some(),
                    "{}.{}: `{ty}`",
                    t.as_str(),
                    e.key
                );
            }
            let mut path = FieldPath::root();
            def.visit_scalars(&mut path, &mut |_, _, s| {
                if s.style != Style::Literal {
                    return;
                }
                for line in s.text.lines().filter(|l| l.contains("{{")) {
                    let value = line.split_once(": ").map_or(line, |(_, v)| v).trim();
                    let value = value.strip_prefix("- ").unwrap_or(value);
                    assert!(
                        value.starts_with("{{")
                            && value.ends_with("}}")
                            && value.matches("{{").count() == 1,
                        "{}: `{line}`",
                        t.as_str()
                    );
                }
            });
        }
    }

    #[test]
    fn substitutes_values_not_structure() {
        let mut s = yaml::Scalar::text("https://{{ domain }}/x");
        let values: BTreeMap<String, String> =
            [("domain".to_owned(), "a: b\n- c".to_owned())].into();
        substitute(&mut s, &values);
        assert_eq!(s.text, "https://a: b\n- c/x");
        let mut p = yaml::Scalar::text("{{ port }}");
        substitute(&mut p, &[("port".to_owned(), "80".to_owned())].into());
        assert_eq!(p.style, Style::Plain);
        let mut u = yaml::Scalar::text("{{ nope }}");
        substitute(&mut u, &values);
        assert_eq!(placeholder_in(&u.text).as_deref(), Some("{{ nope }}"));
    }
}
