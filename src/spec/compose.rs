//! Lint of docker-compose files for compose-based applications.
//!
//! Errors: the file does not parse; a service has neither `image` nor
//! `build`; a `${VAR}` is provided neither by `app.env` nor by a declared
//! secret (nor by Coolify itself) and has no default; a host port is
//! published twice; a file reference leaves the project directory; a bind
//! mount of an absolute host path (the Docker socket above all); a
//! password written out in a URL.
//! Warnings: an image without a tag or on `latest`; a service without a
//! `healthcheck`; the risky settings of [`ComposeRisk`], unless the spec
//! allows them for that service.

use std::collections::{BTreeMap, BTreeSet};

use super::credential;
use super::diagnostic::{Issue, Mark};
use super::files::{FileProblem, confine};
use super::model::ComposeRisk;
use super::path::FieldPath;
use super::rules::app::check_image;
use super::suggest;
use super::yaml::{self, Limits, Node, Style};

/// Variable prefixes Coolify fills in for compose services
/// (`SERVICE_FQDN_APP`, `SERVICE_PASSWORD_DB`, `COOLIFY_URL`, ...).
const COOLIFY_PREFIXES: [&str; 2] = ["SERVICE_", "COOLIFY_"];

/// What the lint learned about a compose file.
#[derive(Debug, Default)]
pub(crate) struct ComposeReport {
    /// Problems, with marks inside the compose text.
    pub issues: Vec<Issue>,
    /// The services, in file order.
    pub services: Vec<String>,
    /// Every variable the file references.
    pub referenced: BTreeSet<String>,
    /// The risky settings found, by service (whether allowed or not).
    pub risks: BTreeSet<(String, ComposeRisk)>,
}

/// Risky settings the spec allows, by compose service.
pub(crate) type Allowed = BTreeMap<String, Vec<ComposeRisk>>;

/// Lints compose `text`. `provided` holds the variables the spec gives the
/// service (its env keys and secret names).
pub(crate) fn lint(
    text: &str,
    provided: &BTreeSet<String>,
    allowed: &Allowed,
    limits: &Limits,
) -> ComposeReport {
    let mut report = ComposeReport::default();
    let root = match yaml::parse(text.as_bytes(), limits) {
        Ok((root, issues)) => {
            report.issues.extend(issues);
            root
        }
        Err(issues) => {
            report.issues.extend(issues.into_iter().map(|mut i| {
                i.message = format!("compose file: {}", i.message);
                i
            }));
            return report;
        }
    };
    if root.entries().is_none() {
        report.issues.push(
            Issue::error(
                FieldPath::root(),
                "a compose file is a mapping with a `services` key",
            )
            .at(root.mark),
        );
        return report;
    }
    let services_path = FieldPath::of("services");
    match root.get("services").and_then(Node::entries) {
        Some(entries) if !entries.is_empty() => {
            let mut published: BTreeMap<(u16, String), (String, Option<String>)> = BTreeMap::new();
            for e in entries {
                report.services.push(e.key.clone());
                lint_service(
                    &e.key,
                    &e.value,
                    &services_path.key(&e.key),
                    e.key_mark,
                    &mut published,
                    &mut report,
                );
                lint_risks(
                    &e.key,
                    &e.value,
                    &services_path.key(&e.key),
                    allowed,
                    &mut report,
                );
            }
        }
        _ => report.issues.push(
            Issue::error(services_path, "the compose file defines no services")
                .at(root.entry("services").map_or(root.mark, |e| e.key_mark))
                .hint("add `services:` with at least one service"),
        ),
    }
    for section in ["configs", "secrets"] {
        let Some(entries) = root.get(section).and_then(Node::entries) else {
            continue;
        };
        for e in entries {
            if let Some(f) = e.value.get("file") {
                check_file_ref(
                    f,
                    &FieldPath::of(section).key(&e.key).key("file"),
                    false,
                    &mut report.issues,
                );
            }
        }
    }
    if let Some(items) = root.get("include").and_then(Node::items) {
        for (i, item) in items.iter().enumerate() {
            let path = FieldPath::of("include").index(i);
            if item.as_text().is_some() {
                check_file_ref(item, &path, false, &mut report.issues);
            } else if let Some(p) = item.get("path") {
                check_file_ref(p, &path.key("path"), false, &mut report.issues);
            }
        }
    }
    let mut path = FieldPath::root();
    let mut refs: Vec<(FieldPath, Mark, Var)> = Vec::new();
    let mut passwords: Vec<(FieldPath, Mark)> = Vec::new();
    root.visit_scalars(&mut path, &mut |p, node, scalar| {
        if credential::userinfos(&scalar.text)
            .iter()
            .any(credential::Userinfo::has_literal_password)
        {
            passwords.push((p.clone(), node.value_mark()));
        }
        if matches!(scalar.typed(), yaml::Typed::Str(_)) {
            for v in variables(&scalar.text) {
                let mark = occurrence_mark(node, scalar.style, &scalar.text, v.offset);
                refs.push((p.clone(), mark, v));
            }
        }
    });
    for (p, mark) in passwords {
        report.issues.push(
            Issue::error(
                p,
                "a password is written out in this URL; the compose file is stored in the journal and shown by `plan`",
            )
            .at(mark)
            .hint("use a variable for it (`user:${DB_PASSWORD}@`) and declare a secret of that name"),
        );
    }
    for (p, mark, v) in refs {
        report.referenced.insert(v.name.clone());
        if let Some(problem) = v.problem {
            report.issues.push(Issue::error(p, problem).at(mark));
            continue;
        }
        let coolify = COOLIFY_PREFIXES.iter().any(|pre| v.name.starts_with(pre));
        if !v.has_default && !coolify && !provided.contains(&v.name) {
            let hint = match suggest::closest(&v.name, provided.iter().map(String::as_str)) {
                Some(c) => format!("did you mean `${{{c}}}`?"),
                None => format!(
                    "declare a secret `{0}`, add `{0}` to `app.env`, or give a default: `${{{0}:-value}}`",
                    v.name
                ),
            };
            report.issues.push(
                Issue::error(
                    p,
                    format!(
                        "`${{{}}}` is provided neither by `app.env` nor by a declared secret",
                        v.name
                    ),
                )
                .at(mark)
                .hint(hint),
            );
        }
    }
    report
}

fn lint_service(
    name: &str,
    svc: &Node,
    path: &FieldPath,
    key_mark: Mark,
    published: &mut BTreeMap<(u16, String), (String, Option<String>)>,
    report: &mut ComposeReport,
) {
    if svc.entries().is_none() {
        report.issues.push(
            Issue::error(path.clone(), format!("service `{name}` must be a mapping"))
                .at(svc.value_mark()),
        );
        return;
    }
    let image = svc.get("image");
    let build = svc.get("build");
    if image.is_none() && build.is_none() {
        report.issues.push(
            Issue::error(
                path.clone(),
                format!("service `{name}` has neither `image` nor `build`"),
            )
            .at(key_mark)
            .hint("add `image: <name>:<tag>`"),
        );
    }
    if let Some(img) = image.and_then(Node::as_text)
        && !img.contains('$')
    {
        let mut found = Vec::new();
        check_image(img, &path.key("image"), &mut found);
        report.issues.extend(
            found
                .into_iter()
                .map(|i| i.at(image.map_or(key_mark, |n| n.mark))),
        );
    }
    if let Some(b) = build {
        if b.as_text().is_some() {
            check_file_ref(b, &path.key("build"), true, &mut report.issues);
        } else {
            if let Some(c) = b.get("context") {
                check_file_ref(
                    c,
                    &path.key("build").key("context"),
                    true,
                    &mut report.issues,
                );
            }
            if let Some(d) = b.get("dockerfile") {
                check_file_ref(
                    d,
                    &path.key("build").key("dockerfile"),
                    false,
                    &mut report.issues,
                );
            }
        }
    }
    if let Some(ef) = svc.get("env_file") {
        let refs: Vec<(FieldPath, &Node)> = match ef.items() {
            Some(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| match n.get("path") {
                    Some(p) => (path.key("env_file").index(i).key("path"), p),
                    None => (path.key("env_file").index(i), n),
                })
                .collect(),
            None => vec![(path.key("env_file"), ef)],
        };
        for (p, n) in refs {
            check_file_ref(n, &p, false, &mut report.issues);
        }
    }
    if let Some(f) = svc.get("extends").and_then(|e| e.get("file")) {
        check_file_ref(
            f,
            &path.key("extends").key("file"),
            false,
            &mut report.issues,
        );
    }
    if let Some(items) = svc.get("volumes").and_then(Node::items) {
        for (i, v) in items.iter().enumerate() {
            let p = path.key("volumes").index(i);
            if let Some(text) = v.as_text() {
                let source = text.split(':').next().unwrap_or("");
                if source.starts_with('.') || source.starts_with('~') {
                    check_path_text(source, v, &p, true, &mut report.issues);
                } else if source.starts_with('/') {
                    report
                        .issues
                        .push(host_mount(source, &p).at(v.value_mark()));
                }
            } else if v.get("type").and_then(Node::as_text) == Some("bind")
                && let Some(s) = v.get("source")
                && let Some(text) = s.as_text()
            {
                if text.starts_with('/') {
                    report
                        .issues
                        .push(host_mount(text, &p.key("source")).at(s.value_mark()));
                } else {
                    check_path_text(text, s, &p.key("source"), true, &mut report.issues);
                }
            }
        }
    }
    match svc.get("healthcheck") {
        Some(_) => {}
        None => report.issues.push(
            Issue::warning(path.clone(), format!("service `{name}` has no healthcheck"))
                .at(key_mark)
                .hint("add a `healthcheck`, so that Coolify knows when the service is ready"),
        ),
    }
    if let Some(items) = svc.get("ports").and_then(Node::items) {
        for (i, p) in items.iter().enumerate() {
            for (port, proto, ip) in published_ports(p) {
                let key = (port, proto.clone());
                match published.get(&key) {
                    Some((other, other_ip))
                        if ip.is_none() || other_ip.is_none() || ip == *other_ip =>
                    {
                        let by = if other == name {
                            "this service".to_owned()
                        } else {
                            format!("service `{other}`")
                        };
                        report.issues.push(
                            Issue::error(
                                path.key("ports").index(i),
                                format!(
                                    "host port {port}/{proto} is published twice (also by {by})"
                                ),
                            )
                            .at(p.value_mark())
                            .hint("each host port can be published once; change one of them"),
                        );
                    }
                    _ => {
                        published.insert(key, (name.to_owned(), ip));
                    }
                }
            }
        }
    }
}

/// The error for a bind mount of absolute host path `source`: the
/// container would see (and could change) the server's own files.
fn host_mount(source: &str, path: &FieldPath) -> Issue {
    let socket = source.trim_end_matches('/').ends_with("docker.sock");
    let message = if socket {
        format!(
            "`{source}` mounts the Docker socket: the container could control every container on the server, and the server itself"
        )
    } else {
        format!("`{source}` mounts a directory of the server into the container")
    };
    Issue::error(path.clone(), message).hint(
        "use a named volume (`data:/path`) or a path inside the project (`./data:/path`); Coolify keeps named volumes with the service",
    )
}

/// Warns about each risky setting of service `name` that `allowed` does
/// not list for it, and records every one found.
fn lint_risks(
    name: &str,
    svc: &Node,
    path: &FieldPath,
    allowed: &Allowed,
    report: &mut ComposeReport,
) {
    let mut found: Vec<(ComposeRisk, &str, &Node, String)> = Vec::new();
    if let Some(n) = svc.get("privileged")
        && matches!(
            n.scalar().map(yaml::Scalar::typed),
            Some(yaml::Typed::Bool(true))
        )
    {
        found.push((
            ComposeRisk::Privileged,
            "privileged",
            n,
            format!(
                "service `{name}` is privileged: it has every capability and device of the server"
            ),
        ));
    }
    if let Some(n) = svc.get("network_mode")
        && n.as_text() == Some("host")
    {
        found.push((
            ComposeRisk::HostNetwork,
            "network_mode",
            n,
            format!("service `{name}` uses the server's network: it reaches whatever listens on the server's loopback, and Coolify's proxy can not route to it"),
        ));
    }
    if let Some(n) = svc.get("cap_add")
        && n.items().is_some_and(|i| !i.is_empty())
    {
        found.push((
            ComposeRisk::Capabilities,
            "cap_add",
            n,
            format!("service `{name}` adds Linux capabilities beyond Docker's default set"),
        ));
    }
    if let Some(b) = svc.get("build") {
        let context = b
            .as_text()
            .or_else(|| b.get("context").and_then(Node::as_text))
            .unwrap_or(".");
        let remote = context.contains("://") || context.starts_with("git@");
        if !remote {
            found.push((
                ComposeRisk::LocalBuild,
                "build",
                b,
                format!("service `{name}` builds from `{context}`, but Coolify deploys the compose file alone, without the files beside it"),
            ));
        }
    }
    for (risk, key, node, message) in found {
        report.risks.insert((name.to_owned(), risk));
        if allowed.get(name).is_some_and(|a| a.contains(&risk)) {
            continue;
        }
        report.issues.push(
            Issue::warning(path.key(key), message)
                .at(node.key_mark.unwrap_or(node.mark))
                .hint(format!(
                    "if this is meant, say so in the spec: `app.compose.allow: {{ {name}: [{}] }}`",
                    risk.as_str()
                )),
        );
    }
}

/// The host ports a `ports` entry publishes: `(port, protocol, host ip)`.
/// Entries that publish nothing (container port only) or whose host port
/// is a variable yield none.
fn published_ports(entry: &Node) -> Vec<(u16, String, Option<String>)> {
    if entry.entries().is_some() {
        let Some(published) = entry.get("published").and_then(Node::as_text) else {
            return Vec::new();
        };
        let proto = entry
            .get("protocol")
            .and_then(Node::as_text)
            .unwrap_or("tcp")
            .to_ascii_lowercase();
        let ip = entry
            .get("host_ip")
            .and_then(Node::as_text)
            .map(str::to_owned);
        return expand(published)
            .into_iter()
            .map(|p| (p, proto.clone(), ip.clone()))
            .collect();
    }
    let Some(text) = entry.as_text() else {
        return Vec::new();
    };
    if text.contains('$') {
        return Vec::new();
    }
    let (spec, proto) = match text.rsplit_once('/') {
        Some((s, p)) => (s, p.to_ascii_lowercase()),
        None => (text, "tcp".to_owned()),
    };
    let Some((rest, _container)) = spec.rsplit_once(':') else {
        return Vec::new();
    };
    let (ip, host) = if rest.ends_with(']') {
        (Some(rest.to_owned()), "")
    } else {
        match rest.rsplit_once(':') {
            Some((ip, host)) => (Some(ip.to_owned()), host),
            None => (None, rest),
        }
    };
    let ip = ip.filter(|i| !i.is_empty() && i != "0.0.0.0" && i != "[::]");
    expand(host)
        .into_iter()
        .map(|p| (p, proto.clone(), ip.clone()))
        .collect()
}

/// `8080` or a range `8000-8010` (ranges of more than 1000 ports are
/// taken by their first port only).
fn expand(host: &str) -> Vec<u16> {
    match host.split_once('-') {
        Some((a, b)) => match (a.trim().parse::<u16>(), b.trim().parse::<u16>()) {
            (Ok(a), Ok(b)) if a <= b && b - a <= 1000 => (a..=b).collect(),
            (Ok(a), _) => vec![a],
            _ => Vec::new(),
        },
        None => host
            .trim()
            .parse::<u16>()
            .map(|p| vec![p])
            .unwrap_or_default(),
    }
}

fn check_file_ref(node: &Node, path: &FieldPath, remote_ok: bool, out: &mut Vec<Issue>) {
    if let Some(text) = node.as_text() {
        check_path_text(text, node, path, remote_ok, out);
    }
}

fn check_path_text(
    text: &str,
    node: &Node,
    path: &FieldPath,
    remote_ok: bool,
    out: &mut Vec<Issue>,
) {
    if text.contains('$') {
        return;
    }
    if remote_ok && (text.contains("://") || text.starts_with("git@")) {
        return;
    }
    let problem = if text.starts_with('~') {
        Some(FileProblem::Escapes(text.to_owned()))
    } else if text == "." || text == "./" {
        None
    } else {
        match confine(text) {
            Err(e @ (FileProblem::Escapes(_) | FileProblem::Absolute(_))) => Some(e),
            _ => None,
        }
    };
    if let Some(p) = problem {
        out.push(
            Issue::error(path.clone(), format!("file reference {p}"))
                .at(node.value_mark())
                .maybe_hint(p.hint().map(str::to_owned)),
        );
    }
}

/// A `$VAR` or `${VAR...}` occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Var {
    name: String,
    /// Byte offset in the scalar.
    offset: usize,
    /// `${VAR:-x}`, `${VAR-x}`, `${VAR:+x}`, `${VAR+x}`.
    has_default: bool,
    /// A syntax problem.
    problem: Option<String>,
}

/// The variable references in compose text, following compose's
/// interpolation rules (`$$` is a literal `$`).
fn variables(text: &str) -> Vec<Var> {
    let mut out = Vec::new();
    scan(text, 0, &mut out, 0);
    out
}

fn scan(text: &str, base: usize, out: &mut Vec<Var>, depth: usize) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                let start = i;
                let name_start = i + 2;
                let mut j = name_start;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let name = &text[name_start..j];
                // Find the matching close brace.
                let mut level = 1;
                let mut k = j;
                while k < b.len() && level > 0 {
                    match b[k] {
                        b'{' => level += 1,
                        b'}' => level -= 1,
                        _ => {}
                    }
                    if level > 0 {
                        k += 1;
                    }
                }
                if k >= b.len() {
                    out.push(Var {
                        name: name.to_owned(),
                        offset: base + start,
                        has_default: false,
                        problem: Some("`${` is not closed by `}`".to_owned()),
                    });
                    return;
                }
                let op = &text[j..k];
                let valid_name = name
                    .bytes()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_');
                let (has_default, problem) = if !valid_name {
                    (
                        false,
                        Some(format!(
                            "`${{{}}}` is not a valid variable reference",
                            &text[name_start..k]
                        )),
                    )
                } else if op.is_empty() || op.starts_with(":?") || op.starts_with('?') {
                    (false, None)
                } else if op.starts_with(":-")
                    || op.starts_with('-')
                    || op.starts_with(":+")
                    || op.starts_with('+')
                {
                    if depth < 8 {
                        let skip = if op.starts_with(':') { 2 } else { 1 };
                        scan(&op[skip..], base + j + skip, out, depth + 1);
                    }
                    (true, None)
                } else {
                    (
                        false,
                        Some(format!(
                            "`${{{}}}` is not a valid variable reference",
                            &text[name_start..k]
                        )),
                    )
                };
                out.push(Var {
                    name: name.to_owned(),
                    offset: base + start,
                    has_default,
                    problem,
                });
                i = k + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let start = i;
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                out.push(Var {
                    name: text[i + 1..j].to_owned(),
                    offset: base + start,
                    has_default: false,
                    problem: None,
                });
                i = j;
            }
            _ => i += 1,
        }
    }
}

/// The position of byte `offset` of a scalar's text: exact for plain and
/// quoted scalars on one line and for literal blocks, the scalar's start
/// otherwise.
fn occurrence_mark(node: &Node, style: Style, text: &str, offset: usize) -> Mark {
    let before = &text[..offset.min(text.len())];
    let newlines = before.matches('\n').count();
    let col_in_line = before.rsplit('\n').next().map_or(0, |l| l.chars().count());
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    match style {
        Style::Plain if newlines == 0 => {
            Mark::new(node.mark.line, node.mark.column + to_u32(col_in_line))
        }
        Style::Quoted if newlines == 0 => {
            Mark::new(node.mark.line, node.mark.column + 1 + to_u32(col_in_line))
        }
        // A literal block's mark is its first content character, and its
        // lines keep their place.
        Style::Literal => Mark::new(
            node.mark.line + to_u32(newlines),
            node.mark.column + to_u32(col_in_line),
        ),
        _ => node.mark,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, bool)> {
        variables(text)
            .into_iter()
            .map(|v| (v.name, v.has_default))
            .collect()
    }

    #[test]
    fn finds_variables_like_compose() {
        assert_eq!(
            names("a ${A} $B $$C ${D:-x} ${E-y} ${F:?err} ${G:-${H}}"),
            vec![
                ("A".into(), false),
                ("B".into(), false),
                ("D".into(), true),
                ("E".into(), true),
                ("F".into(), false),
                ("H".into(), false),
                ("G".into(), true),
            ]
        );
        assert!(
            variables("${A")
                .first()
                .and_then(|v| v.problem.clone())
                .is_some()
        );
        assert!(
            variables("${1A}")
                .first()
                .and_then(|v| v.problem.clone())
                .is_some()
        );
    }

    fn ports(src: &str) -> Vec<(u16, String, Option<String>)> {
        let (n, _) = yaml::parse(src.as_bytes(), &Limits::default()).unwrap();
        published_ports(&n)
    }

    #[test]
    fn reads_published_ports() {
        assert_eq!(ports("\"8080:80\""), vec![(8080, "tcp".into(), None)]);
        assert_eq!(
            ports("\"127.0.0.1:53:53/udp\""),
            vec![(53, "udp".into(), Some("127.0.0.1".into()))]
        );
        assert_eq!(ports("\"80\""), vec![]);
        assert_eq!(ports("80"), vec![]);
        assert_eq!(ports("\"127.0.0.1::80\""), vec![]);
        assert_eq!(ports("\"9000-9001:9000-9001\"").len(), 2);
        assert_eq!(
            ports("{target: 80, published: 8081}"),
            vec![(8081, "tcp".into(), None)]
        );
    }

    #[test]
    fn lints_the_documented_problems() {
        let text = "services:\n  web:\n    image: nginx\n    ports: [\"8080:80\"]\n    environment:\n      PW: ${DB_PASSWORD}\n      X: ${MISSING}\n      Y: ${SERVICE_FQDN_WEB}\n  api:\n    ports: [\"8080:81\"]\n    env_file: ../secrets.env\n    healthcheck: {test: [\"CMD\", \"true\"]}\n";
        let provided: BTreeSet<String> = ["DB_PASSWORD".to_owned()].into();
        let r = lint(text, &provided, &Allowed::new(), &Limits::default());
        let msgs: Vec<String> = r
            .issues
            .iter()
            .map(|i| {
                format!(
                    "{}:{} {}",
                    i.mark.unwrap().line,
                    i.mark.unwrap().column,
                    i.message
                )
            })
            .collect();
        assert!(msgs.iter().any(|m| m.contains("has no tag")), "{msgs:?}");
        assert!(
            msgs.iter()
                .any(|m| m.starts_with("7:10") && m.contains("${MISSING}")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m.contains("neither `image` nor `build`")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("published twice")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("outside the project")),
            "{msgs:?}"
        );
        assert!(
            msgs.iter().any(|m| m.contains("`web` has no healthcheck")),
            "{msgs:?}"
        );
        assert!(
            !msgs
                .iter()
                .any(|m| m.contains("DB_PASSWORD") || m.contains("SERVICE_FQDN")),
            "{msgs:?}"
        );
        assert_eq!(r.services, vec!["web", "api"]);
        assert!(r.referenced.contains("DB_PASSWORD"));
    }
}
