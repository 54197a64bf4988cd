//! Reading a spec: parse, expand the template, check against the schema,
//! run the cross-field rules, read and lint referenced files, and report
//! every problem at once.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use super::compose::{self, ComposeReport};
use super::conform::conform;
use super::diagnostic::{self, Anchor, Diagnostic, Issue, Mark};
use super::excerpt::{self, Source};
use super::files::{DiskFiles, ProjectFiles};
use super::model::{AppSource, Spec};
use super::path::{FieldPath, Segment};
use super::rules::{self, Context, Draft};
use super::schema::json_schema;
use super::suggest;
use super::template;
use super::yaml::{self, Kind, Limits, Node, Origin, Style};
use crate::id::Digest;

/// How to read a spec.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Caps on the size and shape of the spec and of the files it names.
    pub limits: Limits,
    /// The environment to load (`--env`), for a spec that declares
    /// `environments`.
    pub environment: Option<String>,
}

impl LoadOptions {
    /// The defaults, in `environment` when one is given.
    pub fn in_environment(environment: Option<&str>) -> Self {
        Self {
            environment: environment.map(str::to_owned),
            ..Self::default()
        }
    }
}

/// A valid spec and what came with it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The spec, template expanded and referenced files read.
    pub spec: Spec,
    /// Problems that do not block (untagged images, unused secrets, ...).
    pub warnings: Vec<Diagnostic>,
    /// The spec file as given.
    pub path: PathBuf,
    /// The project directory: the spec's directory, where `.env` lives and
    /// relative paths start.
    pub dir: PathBuf,
    /// blake3 of the spec file's bytes, to record which text a run used.
    pub source_hash: Digest,
    /// Hash of the spec's shared part: what every environment has in
    /// common, journaled with each run so that a promotion can tell that
    /// nothing but environment overrides changed since.
    pub shared_hash: Digest,
}

impl Loaded {
    /// The project's `.env`, beside the spec; for a spec's environment,
    /// `.env.<environment>` beside it, read over `.env` (where generated
    /// secrets of that environment are kept).
    pub fn default_dotenv(&self) -> PathBuf {
        match self.spec.name.environment() {
            Some(env) => self.dir.join(format!(".env.{env}")),
            None => self.dir.join(".env"),
        }
    }
}

/// A spec that was checked without touching the disk.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The spec.
    pub spec: Spec,
    /// Problems that do not block.
    pub warnings: Vec<Diagnostic>,
    /// Hash of the spec's shared part: the file without `environments`
    /// (see [`super::environments::shared_hash`]).
    pub shared_hash: Digest,
}

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The spec file could not be read.
    #[error("cannot read spec {}", path.display())]
    Read {
        /// The spec file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The spec has errors (all of them are here, sorted by position).
    #[error("{} is not a valid spec: {}", path.display(), crate::text::count(errors.len(), "error"))]
    Invalid {
        /// The spec file.
        path: PathBuf,
        /// Every error.
        errors: Vec<Diagnostic>,
        /// The warnings found along the way.
        warnings: Vec<Diagnostic>,
    },
}

impl SpecError {
    /// Every diagnostic, errors and warnings, in file order.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            Self::Read { .. } => Vec::new(),
            Self::Invalid {
                errors, warnings, ..
            } => {
                let mut all: Vec<Diagnostic> = errors.iter().chain(warnings).cloned().collect();
                diagnostic::sort(&mut all);
                all
            }
        }
    }
}

/// The environments the spec at `path` declares (empty when it declares
/// none, or cannot be read or parsed: loading it then says why).
pub fn declared_environments(path: &Path, opts: &LoadOptions) -> Vec<String> {
    std::fs::read(path)
        .ok()
        .filter(|b| b.len() <= opts.limits.max_bytes)
        .and_then(|b| yaml::parse(&b, &opts.limits).ok())
        .map(|(tree, _)| super::environments::declared(&tree))
        .unwrap_or_default()
}

/// Reads, checks and lints the spec at `path`.
///
/// The project directory is the spec's directory: files the spec names
/// are read from there and may not leave it.
pub fn load(path: &Path, opts: &LoadOptions) -> Result<Loaded, SpecError> {
    let read_err = |source| SpecError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let limit = opts.limits.max_bytes as u64;
    // The size is known before reading (for a regular file): a huge spec
    // is refused without being read, and named by its real size.
    let size = file
        .metadata()
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    let mut bytes = Vec::new();
    if size.is_none_or(|s| s <= limit) {
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(read_err)?;
    }
    let too_large = match size {
        Some(s) if s > limit => Some(super::files::size_text(s)),
        _ if bytes.len() as u64 > limit => {
            Some(format!("more than {}", super::files::size_text(limit)))
        }
        _ => None,
    };
    if let Some(found) = too_large {
        let issue = Issue::error(
            FieldPath::root(),
            format!(
                "file is too large: {found}, the limit is {}",
                super::files::size_text(limit)
            ),
        )
        .hint("a spec is a few kilobytes; keep large files out of it");
        return Err(SpecError::Invalid {
            path: path.to_path_buf(),
            errors: vec![issue.into_diagnostic(path, Mark::START)],
            warnings: Vec::new(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let files = DiskFiles::new(
        path.parent().unwrap_or(Path::new("")),
        opts.limits.max_bytes,
    )
    .map_err(read_err)?;
    let source_hash = Digest::of(&bytes);
    match check(&bytes, path, &files, opts) {
        Ok(c) => Ok(Loaded {
            spec: c.spec,
            warnings: c.warnings,
            path: path.to_path_buf(),
            dir,
            source_hash,
            shared_hash: c.shared_hash,
        }),
        Err(all) => {
            let (errors, warnings) = all.into_iter().partition(Diagnostic::is_error);
            Err(SpecError::Invalid {
                path: path.to_path_buf(),
                errors,
                warnings,
            })
        }
    }
}

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(json_schema)
}

/// Checks spec text. `file` names it in diagnostics; `files` gives the
/// files it references. Returns the spec and its warnings, or every
/// diagnostic (errors and warnings) sorted by position.
pub fn check(
    source: &[u8],
    file: &Path,
    files: &dyn ProjectFiles,
    opts: &LoadOptions,
) -> Result<Checked, Vec<Diagnostic>> {
    let mut run = Run {
        file,
        issues: Vec::new(),
        located: Vec::new(),
        sources: vec![Source {
            file: file.to_path_buf(),
            text: String::from_utf8_lossy(source).into_owned(),
        }],
        limits: &opts.limits,
    };
    let mut tree = match yaml::parse(source, &opts.limits) {
        Ok((tree, issues)) => {
            run.issues.extend(issues);
            tree
        }
        Err(issues) => {
            run.issues.extend(issues);
            return Err(run.finish(None));
        }
    };
    if tree.entries().is_none() {
        run.issues.push(
            Issue::error(
                FieldPath::root(),
                format!(
                    "a spec is a mapping of keys such as `name`, `coolify` and `app`, found {}",
                    tree.describe()
                ),
            )
            .at(tree.mark),
        );
        return Err(run.finish(Some(&tree)));
    }
    let environment = opts
        .environment
        .as_deref()
        .filter(|_| !super::environments::declared(&tree).is_empty());
    let shared_hash = super::environments::shared_hash(&tree);
    run.issues.extend(super::environments::select(
        &mut tree,
        opts.environment.as_deref(),
    ));
    run.issues.extend(template::expand(&mut tree));
    let mut broken: BTreeSet<String> = BTreeSet::new();
    if tree.get("app").is_none() && tree.get("template").is_none() {
        run.issues.push(
            Issue::error(FieldPath::of("app"), "missing required top-level key `app`")
                .at(Mark::START)
                .hint("describe the application under `app:`, or use a `template:`"),
        );
    }
    if let Some(app) = tree.get("app") {
        let form_issues = rules::check_forms(app);
        if !form_issues.is_empty() {
            broken.insert("app".to_owned());
        }
        run.issues.extend(form_issues);
    }
    let (json, conform_issues) = conform(schema(), schema(), &tree, &FieldPath::root());
    run.issues.extend(conform_issues);
    run.issues.extend(placeholders(&tree));
    // Values that are already reported as wrong.
    let bad: Vec<FieldPath> = run
        .issues
        .iter()
        .filter(|i| i.is_error() && i.affects_value && !i.path.is_root())
        .map(|i| i.path.clone())
        .collect();

    let mut draft = draft(json, &broken, &bad, &mut run.issues);
    // The deployment of an environment is `name@environment`.
    if let (Some(env), Some(name)) = (environment, draft.name.as_mut())
        && let Ok(n) = name.in_environment(env)
    {
        *name = n;
    }
    let ctx = Context {
        records_complete: !bad
            .iter()
            .any(|p| p.starts_with(&FieldPath::of("dns.records")) || *p == FieldPath::of("dns")),
        declared: draft.declared(
            broken.contains("secrets")
                || bad
                    .iter()
                    .any(|p| p.section() == Some("secrets") && p.segments().len() <= 2),
        ),
    };
    run.issues.extend(
        rules::check(&draft, &ctx)
            .into_iter()
            .filter(|r| !follows_from(r, &bad)),
    );

    let mut compose_refs: Option<BTreeSet<String>> = None;
    if let Some(app) = draft.app.as_mut() {
        match &mut app.source {
            AppSource::Dockerfile(f) => {
                if let Some(rel) = f.file.clone() {
                    f.content = run.read(files, &rel, FieldPath::of("app.dockerfile.file"));
                }
            }
            AppSource::Compose(c) => {
                if let Some(rel) = c.file.clone() {
                    c.content = run.read(files, &rel, FieldPath::of("app.compose.file"));
                }
            }
            _ => {}
        }
    }
    if let Some(app) = &draft.app
        && let AppSource::Compose(c) = &app.source
        && let Some(text) = &c.content
    {
        let mut provided: BTreeSet<String> = app.env.keys().cloned().collect();
        if let Some(d) = &ctx.declared {
            provided.extend(d.iter().cloned());
        } else {
            // `secrets` is broken: do not report variables it may provide.
            provided.extend(referenced_names(text));
        }
        let report = compose::lint(text, &provided, &c.allow, &opts.limits);
        let place = match &c.file {
            Some(rel) => Placement::File(files.display_path(rel)),
            None => inline_placement(&tree),
        };
        run.compose_issues(&report, place);
        run.issues.extend(public_service(c, app, &report));
        run.issues.extend(unused_allowances(c, &report));
        compose_refs = Some(report.referenced);
    }
    // Which secrets are used is only known when every reference was read.
    let refs_unreadable = bad.iter().any(|p| {
        p.starts_with(&FieldPath::of("app.env"))
            || p.starts_with(&FieldPath::of("app.build_env"))
            || p.section() == Some("notifications")
            || *p == FieldPath::of("app")
    });
    if let (Some(secrets), Some(app), false) = (&draft.secrets, &draft.app, refs_unreadable) {
        let mut used: BTreeSet<String> = BTreeSet::new();
        for v in app.env.values().chain(app.build_env.values()) {
            used.extend(v.secret_refs().into_iter().map(str::to_owned));
        }
        if let Some(n) = &draft.notifications {
            for w in &n.webhooks {
                used.extend(w.url.secret_refs().into_iter().map(str::to_owned));
                used.extend(w.signing_secret.iter().cloned());
            }
        }
        used.extend(compose_refs.unwrap_or_default());
        run.issues.extend(
            rules::unused_secrets(secrets, &used)
                .into_iter()
                .filter(|r| !follows_from(r, &bad)),
        );
    }

    let diagnostics = run.finish(Some(&tree));
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    match assemble(draft) {
        Some(mut spec) => {
            ascii_names(&mut spec);
            Ok(Checked {
                spec,
                warnings: diagnostics,
                shared_hash,
            })
        }
        None => {
            let mut d = diagnostics;
            d.push(
                Issue::error(FieldPath::root(), "the spec is incomplete")
                    .into_diagnostic(file, Mark::START),
            );
            Err(d)
        }
    }
}

/// Deserialises each section on its own, leaving out what is already
/// reported as wrong, so that the rules can still check the rest.
///
/// For a section with bad values, it first drops just those values (the
/// field's default takes their place; a bad list item drops its list),
/// then every list that holds a bad value, and only then the section.
fn draft(
    json: Value,
    broken: &BTreeSet<String>,
    bad: &[FieldPath],
    issues: &mut Vec<Issue>,
) -> Draft {
    let Value::Object(map) = json else {
        return Draft::default();
    };
    let mut kept = serde_json::Map::new();
    for (key, value) in map {
        if broken.contains(&key) {
            continue;
        }
        let errors: Vec<&[Segment]> = bad
            .iter()
            .filter(|p| p.section() == Some(key.as_str()))
            .map(|p| &p.segments()[1..])
            .collect();
        let attempts: Vec<Option<Value>> = if errors.is_empty() {
            vec![Some(value.clone())]
        } else {
            vec![
                prune(&value, &errors, Prune::Field),
                stand_in(&value, &key, &errors),
                prune(&value, &errors, Prune::List),
            ]
        };
        let mut readable = None;
        let mut failure = None;
        for candidate in attempts.into_iter().flatten() {
            let mut one = serde_json::Map::new();
            one.insert(key.clone(), candidate.clone());
            match serde_json::from_value::<Draft>(Value::Object(one)) {
                Ok(_) => {
                    readable = Some(candidate);
                    break;
                }
                Err(e) => failure = Some(e),
            }
        }
        match (readable, failure) {
            (Some(v), _) => {
                kept.insert(key, v);
            }
            (None, Some(e)) if errors.is_empty() => {
                // The schema accepted what serde refused: a bug, but one
                // that must not hide the rest of the spec.
                issues.push(Issue::error(
                    FieldPath::of(&key),
                    format!("`{key}` can not be read: {e}"),
                ));
            }
            _ => {}
        }
    }
    serde_json::from_value(Value::Object(kept)).unwrap_or_default()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prune {
    /// Remove the innermost mapping field holding the bad value.
    Field,
    /// Remove the outermost list on the way to the bad value.
    List,
}

/// `value` without what `errors` (paths relative to it) point into, or
/// `None` when that is `value` itself.
fn prune(value: &Value, errors: &[&[Segment]], how: Prune) -> Option<Value> {
    let mut out = value.clone();
    for path in errors {
        let cut = match how {
            Prune::Field => path.iter().rposition(|s| matches!(s, Segment::Key(_))),
            Prune::List => path
                .iter()
                .position(|s| matches!(s, Segment::Index(_)))
                .and_then(|i| i.checked_sub(1))
                .filter(|i| matches!(path[*i], Segment::Key(_))),
        };
        let cut = cut?;
        let Segment::Key(field) = &path[cut] else {
            return None;
        };
        if let Some(obj) = out
            .pointer_mut(&pointer(&path[..cut]))
            .and_then(Value::as_object_mut)
        {
            obj.remove(field);
        }
    }
    Some(out)
}

/// The JSON pointer of `path`.
fn pointer(path: &[Segment]) -> String {
    path.iter()
        .map(|s| match s {
            Segment::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
            Segment::Index(i) => format!("/{i}"),
        })
        .collect()
}

/// `value` (section `section`) with each bad value replaced by a stand-in
/// of its type, taken from the schema: for a required field, which can not
/// just be left out, so that the rest of its list item is still checked.
fn stand_in(value: &Value, section: &str, errors: &[&[Segment]]) -> Option<Value> {
    let mut out = value.clone();
    let root = schema();
    for path in errors {
        let mut full = vec![Segment::Key(section.to_owned())];
        full.extend(path.iter().cloned());
        let replacement = schema_at(root, &full).and_then(|s| neutral(root, s, 0))?;
        *out.pointer_mut(&pointer(path))? = replacement;
    }
    Some(out)
}

/// Follows `$ref`s.
fn resolved<'a>(root: &'a Value, mut s: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match s
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| root.pointer(p))
        {
            Some(t) => s = t,
            None => break,
        }
    }
    s
}

fn alternatives(s: &Value) -> impl Iterator<Item = &Value> {
    s.get("anyOf")
        .or_else(|| s.get("oneOf"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The subschema of the value at `path`.
fn schema_at<'a>(root: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    let mut s = root;
    for seg in path {
        let here = resolved(root, s);
        let step = |h: &'a Value| -> Option<&'a Value> {
            match seg {
                Segment::Key(k) => h
                    .get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| h.get("additionalProperties").filter(|a| a.is_object())),
                Segment::Index(_) => h.get("items"),
            }
        };
        s = step(here).or_else(|| alternatives(here).find_map(|a| step(resolved(root, a))))?;
    }
    Some(resolved(root, s))
}

/// A value the schema `s` accepts, as plain as possible.
fn neutral(root: &Value, s: &Value, depth: usize) -> Option<Value> {
    let s = resolved(root, s);
    if depth > 8 {
        return None;
    }
    if let Some(c) = s.get("const") {
        return Some(c.clone());
    }
    let first = |k: &str| {
        s.get(k)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .cloned()
    };
    if let Some(v) = first("enum")
        .or_else(|| s.get("default").cloned())
        .or_else(|| first("examples"))
    {
        return Some(v);
    }
    if let Some(v) = alternatives(s).find_map(|a| neutral(root, a, depth + 1)) {
        return Some(v);
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).find(|t| *t != "null")?,
        _ => return None,
    };
    Some(match ty {
        "string" => Value::String(String::new()),
        "integer" | "number" => s.get("minimum").cloned().unwrap_or(Value::from(0)),
        "boolean" => Value::Bool(false),
        "array" => Value::Array(Vec::new()),
        _ => return None,
    })
}

/// Whether a rule's finding may just be a consequence of a value already
/// reported as wrong at one of `bad`, for which a default or a stand-in
/// took its place: a finding about that value or inside it, about the list
/// item holding it (a record, a monitor), or that read it.
fn follows_from(issue: &Issue, bad: &[FieldPath]) -> bool {
    let p = &issue.path;
    let item = matches!(p.segments().last(), Some(Segment::Index(_)));
    bad.iter().any(|b| {
        p.starts_with(b)
            || (item && b.starts_with(p))
            || issue
                .inputs
                .iter()
                .any(|i| i == b || b.starts_with(i) || i.starts_with(b))
    })
}

fn assemble(d: Draft) -> Option<Spec> {
    Some(Spec {
        name: d.name?,
        coolify: d.coolify?,
        app: d.app?,
        template: d.template,
        secrets: d.secrets.unwrap_or_default(),
        dns: d.dns,
        verify: d.verify.unwrap_or_default(),
        monitors: d.monitors.unwrap_or_default(),
        notifications: d.notifications.unwrap_or_default(),
        rollback: d.rollback.unwrap_or_default(),
        retry: d.retry.unwrap_or_default(),
        timeouts: d.timeouts.unwrap_or_default(),
        environments: std::collections::BTreeMap::new(),
    })
}

/// Writes the host names that providers receive as written into their
/// ASCII form (punycode for international names), as every rule read
/// them: CNAME targets and the hosts verification connects to. (Record
/// names and zones go through [`super::model::dns::canonical_name`], and
/// domains through [`super::model::Domain`].)
fn ascii_names(spec: &mut Spec) {
    use super::model::RecordType;
    let ascii = |n: &mut String| {
        if !n.is_ascii() {
            *n = super::host::ascii_or_self(n);
        }
    };
    if let Some(dns) = &mut spec.dns {
        for r in dns
            .records
            .iter_mut()
            .filter(|r| r.kind == RecordType::Cname)
        {
            ascii(&mut r.content);
        }
    }
    spec.verify.tls.iter_mut().for_each(|c| ascii(&mut c.host));
    spec.verify.dns.iter_mut().for_each(|c| ascii(&mut c.name));
}

/// Names a compose text references, used when the spec's secrets can not
/// be read (so that their absence is not blamed on the compose file).
fn referenced_names(text: &str) -> BTreeSet<String> {
    compose::lint(
        text,
        &BTreeSet::new(),
        &compose::Allowed::new(),
        &Limits::default(),
    )
    .referenced
}

/// Reports `{{ ... }}` left in the spec's own values (not in inline file
/// contents, which may use braces for their own purposes).
fn placeholders(tree: &Node) -> Vec<Issue> {
    let mut out = Vec::new();
    let mut path = FieldPath::root();
    tree.visit_scalars(&mut path, &mut |p, node, s| {
        let inline_file = *p == FieldPath::of("app.compose.content") || *p == FieldPath::of("app.dockerfile.content");
        if node.origin != Origin::File || inline_file {
            return;
        }
        if let Some(ph) = template::placeholder_in(&s.text) {
            out.push(
                Issue::error(p.clone(), format!("unresolved placeholder `{ph}`"))
                    .hint("placeholders are filled in only inside built-in templates; write the value itself"),
            );
        }
    });
    out
}

fn public_service(
    c: &super::model::ComposeSource,
    app: &super::model::App,
    report: &ComposeReport,
) -> Vec<Issue> {
    let mut out = Vec::new();
    if report.services.is_empty() {
        return out;
    }
    let names: Vec<&str> = report.services.iter().map(String::as_str).collect();
    match &c.public_service {
        Some(s) if !report.services.contains(s) => out.push(
            Issue::error(
                FieldPath::of("app.compose.public_service"),
                format!("the compose file has no service `{s}`"),
            )
            .maybe_hint(suggest::hint_for(s, &names)),
        ),
        None if report.services.len() > 1 && !app.domains.is_empty() => out.push(
            Issue::error(
                FieldPath::of("app.compose"),
                "the compose file has several services; say which one receives the domains",
            )
            .hint(format!(
                "add `public_service:` with one of {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ),
        _ => {}
    }
    out
}

/// Warns about `app.compose.allow` entries that allow nothing: a service
/// the file does not have, or a setting the service does not use (so that
/// an allowance does not outlive its reason and cover a later change).
fn unused_allowances(c: &super::model::ComposeSource, report: &ComposeReport) -> Vec<Issue> {
    let mut out = Vec::new();
    if report.services.is_empty() {
        return out;
    }
    let base = FieldPath::of("app.compose.allow");
    for (service, risks) in &c.allow {
        if !report.services.contains(service) {
            let names: Vec<&str> = report.services.iter().map(String::as_str).collect();
            out.push(
                Issue::warning(
                    base.key(service),
                    format!("the compose file has no service `{service}`"),
                )
                .at_key()
                .maybe_hint(suggest::hint_for(service, &names)),
            );
            continue;
        }
        for (i, risk) in risks.iter().enumerate() {
            if !report.risks.contains(&(service.clone(), *risk)) {
                out.push(
                    Issue::warning(
                        base.key(service).index(i),
                        format!(
                            "service `{service}` does not use `{}`; nothing to allow",
                            risk.as_str()
                        ),
                    )
                    .hint("remove it, so that it does not silence a later change"),
                );
            }
        }
    }
    out
}

/// Where compose diagnostics go.
enum Placement {
    /// A compose file of its own.
    File(PathBuf),
    /// Inline in a literal block of the spec: compose line `n` is spec
    /// line `first_line + n - 1`, columns shifted by `indent`.
    Inline { first_line: u32, indent: u32 },
    /// Somewhere without a usable position (a folded block, a template):
    /// everything points here.
    At(Mark),
}

fn inline_placement(tree: &Node) -> Placement {
    let (node, found) = tree.locate(&FieldPath::of("app.compose.content"));
    if !found {
        return Placement::At(Mark::START);
    }
    match &node.kind {
        // A literal block's mark is its first content character; its lines
        // keep their place and lose the same indentation.
        Kind::Scalar(s) if s.style == Style::Literal && node.origin == Origin::File => {
            Placement::Inline {
                first_line: node.mark.line,
                indent: node.mark.column.saturating_sub(1),
            }
        }
        _ => Placement::At(node.key_mark.unwrap_or(node.mark)),
    }
}

/// The problems found so far.
struct Run<'a> {
    file: &'a Path,
    /// Problems in the spec, by field path.
    issues: Vec<Issue>,
    /// Problems already located (in compose files).
    located: Vec<Diagnostic>,
    /// The texts diagnostics may quote: the spec and the files it read.
    sources: Vec<Source>,
    limits: &'a Limits,
}

impl Run<'_> {
    fn read(&mut self, files: &dyn ProjectFiles, rel: &str, path: FieldPath) -> Option<String> {
        match files.read(rel) {
            Ok(t) => {
                self.sources.push(Source {
                    file: files.display_path(rel),
                    text: t.clone(),
                });
                Some(t)
            }
            Err(p) => {
                self.issues.push(
                    Issue::error(path, p.to_string()).maybe_hint(p.hint().map(str::to_owned)),
                );
                None
            }
        }
    }

    fn compose_issues(&mut self, report: &ComposeReport, place: Placement) {
        for i in &report.issues {
            let mark = i.mark.unwrap_or(Mark::START);
            let d = match &place {
                Placement::File(p) => i.clone().into_diagnostic(p, mark),
                Placement::Inline { first_line, indent } => i.clone().into_diagnostic(
                    self.file,
                    Mark::new(first_line + mark.line - 1, indent + mark.column),
                ),
                Placement::At(m) => i.clone().into_diagnostic(self.file, *m),
            };
            self.located.push(d);
        }
    }

    fn finish(self, tree: Option<&Node>) -> Vec<Diagnostic> {
        let mut out = self.located;
        // A warning about a field that already has an error adds nothing.
        let errors: BTreeSet<FieldPath> = self
            .issues
            .iter()
            .filter(|i| i.is_error())
            .map(|i| i.path.clone())
            .collect();
        let issues = self
            .issues
            .into_iter()
            .filter(|i| i.is_error() || !errors.contains(&i.path));
        for issue in issues {
            let (mark, origin) = match (issue.mark, tree) {
                (Some(m), _) => (m, Origin::File),
                (None, Some(t)) => locate(t, &issue),
                (None, None) => (Mark::START, Origin::File),
            };
            let mut issue = issue;
            if let Origin::Template(name) = origin {
                let note = format!("this value comes from template `{name}`");
                issue.hint = Some(match issue.hint {
                    Some(h) => format!("{h} ({note})"),
                    None => note,
                });
            }
            out.push(issue.into_diagnostic(self.file, mark));
        }
        diagnostic::sort(&mut out);
        excerpt::attach(&mut out, &self.sources, self.limits);
        out
    }
}

fn locate(tree: &Node, issue: &Issue) -> (Mark, Origin) {
    let (node, found) = tree.locate(&issue.path);
    let mark = if !found {
        node.key_mark.unwrap_or(node.mark)
    } else {
        match issue.anchor {
            Anchor::Key => node.key_mark.unwrap_or(node.mark),
            Anchor::Value => node.value_mark(),
        }
    };
    (mark, node.origin)
}
