//! Rules for `app` and `coolify`.

use std::collections::BTreeMap;

use super::{Context, http_url_host};
use crate::spec::diagnostic::Issue;
use crate::spec::model::app::APP_FORMS;
use crate::spec::model::interpolated::is_variable_name;
use crate::spec::model::{App, AppSource, BuildPack, CoolifyTarget, Domain, RemoteRef};
use crate::spec::path::FieldPath;
use crate::spec::suggest;
use crate::spec::yaml::Node;

/// Checks on the tree, before deserialisation: exactly one application
/// form, and `file` or `content` (not both) for file-based forms. Returns
/// the problems; any problem makes `app` unreadable as a model.
pub(crate) fn check_forms(app: &Node) -> Vec<Issue> {
    let mut out = Vec::new();
    let Some(entries) = app.entries() else {
        return out;
    };
    let path = FieldPath::of("app");
    for e in entries {
        if APP_FORMS.contains(&e.key.as_str()) && e.value.is_null() {
            out.push(
                Issue::error(path.key(&e.key), format!("`{}` has no value", e.key))
                    .at(e.key_mark)
                    .hint(format!("give the `{}` to deploy, or remove the key", e.key)),
            );
        }
    }
    let present: Vec<&crate::spec::yaml::Entry> = entries
        .iter()
        .filter(|e| APP_FORMS.contains(&e.key.as_str()))
        .collect();
    match present.as_slice() {
        [] => out.push(
            Issue::error(path.clone(), "`app` does not say what to run")
                .at(app.key_mark.unwrap_or(app.mark))
                .hint("add one of `image`, `dockerfile`, `git`, `compose` or `service`"),
        ),
        [first, rest @ ..] => {
            for e in rest {
                out.push(
                    Issue::error(
                        path.key(&e.key),
                        format!(
                            "`app` has both `{}` and `{}`; an application has exactly one form",
                            first.key, e.key
                        ),
                    )
                    .at_key()
                    .at(e.key_mark)
                    .hint("keep one of them; for a second application, write a second spec"),
                );
            }
        }
    }
    for form in ["dockerfile", "compose"] {
        let Some(node) = app.get(form) else { continue };
        if node.entries().is_none() {
            continue;
        }
        let file = node.entry("file");
        let content = node.entry("content");
        match (file, content) {
            (Some(_), Some(c)) => out.push(
                Issue::error(
                    path.key(form).key("content"),
                    format!("`app.{form}` has both `file` and `content`"),
                )
                .at_key()
                .at(c.key_mark)
                .hint("give the file's path or its text, not both"),
            ),
            (None, None) => out.push(
                Issue::error(
                    path.key(form),
                    format!("`app.{form}` needs `file` or `content`"),
                )
                .at(node.key_mark.unwrap_or(node.mark))
                .hint(format!(
                    "e.g. `file: {}`",
                    if form == "compose" {
                        "docker-compose.yml"
                    } else {
                        "Dockerfile"
                    }
                )),
            ),
            _ => {}
        }
    }
    out
}

pub(crate) fn check_target(c: &CoolifyTarget, out: &mut Vec<Issue>) {
    let base = FieldPath::of("coolify");
    let fields = [
        ("project", Some(&c.project)),
        ("environment", Some(&c.environment)),
        ("server", Some(&c.server)),
        ("destination", c.destination.as_ref()),
    ];
    for (key, r) in fields {
        let Some(r) = r else { continue };
        let path = match r {
            RemoteRef::Name(_) => base.key(key),
            RemoteRef::Uuid(_) => base.key(key).key("uuid"),
        };
        if r.text().trim().is_empty() {
            out.push(Issue::error(path, format!("`coolify.{key}` is empty")));
        }
    }
}

pub(crate) fn check(app: &App, ctx: &Context, out: &mut Vec<Issue>) {
    let base = FieldPath::of("app");
    if let Some(name) = &app.name
        && (name.trim().is_empty() || name.len() > 255)
    {
        out.push(Issue::error(
            base.key("name"),
            "`app.name` must be 1 to 255 characters",
        ));
    }
    check_source(app, out);
    check_domains(app, out);
    check_health(app, out);
    check_env(&app.env, ctx, out);
}

fn check_source(app: &App, out: &mut Vec<Issue>) {
    let base = FieldPath::of("app");
    let port_required = |what: &str, out: &mut Vec<Issue>| {
        if app.port.is_none() {
            out.push(
                Issue::error(
                    base.key("port"),
                    format!("missing `port`: the port the {what} listens on"),
                )
                .hint("e.g. `port: 80`"),
            );
        }
    };
    let port_refused = |why: &str, out: &mut Vec<Issue>| {
        if app.port.is_some() {
            out.push(
                Issue::error(
                    base.key("port"),
                    format!("`port` does not apply here: {why}"),
                )
                .at_key(),
            );
        }
    };
    let health_refused = |why: &str, out: &mut Vec<Issue>| {
        if app.health_check.is_some() {
            out.push(
                Issue::error(
                    base.key("health_check"),
                    format!("`health_check` does not apply here: {why}"),
                )
                .at_key(),
            );
        }
    };
    match &app.source {
        AppSource::Image(image) => {
            check_image(image, &base.key("image"), out);
            port_required("container", out);
        }
        AppSource::Dockerfile(f) => {
            port_refused("Coolify takes the port from the Dockerfile's `EXPOSE`", out);
            if let Some(c) = &f.content
                && c.trim().is_empty()
            {
                out.push(Issue::error(
                    base.key("dockerfile").key("content"),
                    "the Dockerfile is empty",
                ));
            }
        }
        AppSource::Git(g) => {
            let p = base.key("git");
            match url::Url::parse(&g.repository) {
                Ok(u) if u.scheme() == "https" && u.host_str().is_some() && u.path().len() > 1 => {}
                Ok(u) if u.scheme() == "http" => out.push(
                    Issue::error(p.key("repository"), format!("`{}` uses http", g.repository))
                        .hint("use the https URL of the repository"),
                ),
                _ => out.push(
                    Issue::error(
                        p.key("repository"),
                        format!("`{}` is not an https repository URL", g.repository),
                    )
                    .hint("e.g. `https://github.com/acme/site`; only public repositories are supported"),
                ),
            }
            if g.branch.trim().is_empty() {
                out.push(Issue::error(p.key("branch"), "`branch` is empty"));
            }
            if g.build_pack == BuildPack::Static {
                if app.port.is_some_and(|p| p != 80) {
                    out.push(
                        Issue::error(
                            base.key("port"),
                            "the `static` build pack serves on port 80",
                        )
                        .hint("remove `port` or set it to 80"),
                    );
                }
            } else {
                port_required("application", out);
                if g.publish_directory.is_some() {
                    out.push(
                        Issue::error(
                            p.key("publish_directory"),
                            "`publish_directory` applies to the `static` build pack only",
                        )
                        .at_key()
                        .hint("set `build_pack: static`, or remove `publish_directory`"),
                    );
                }
            }
            if g.dockerfile_location.is_some() && g.build_pack != BuildPack::Dockerfile {
                out.push(
                    Issue::error(
                        p.key("dockerfile_location"),
                        "`dockerfile_location` applies to the `dockerfile` build pack only",
                    )
                    .at_key()
                    .hint("set `build_pack: dockerfile`"),
                );
            }
        }
        AppSource::Compose(_) => {
            port_refused(
                "compose services declare their ports in the compose file",
                out,
            );
            health_refused("give the services a `healthcheck` in the compose file", out);
        }
        AppSource::Service(kind) => {
            let ok = !kind.is_empty()
                && kind.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                })
                && kind.as_bytes()[0].is_ascii_alphanumeric();
            if !ok {
                out.push(
                    Issue::error(
                        base.key("service"),
                        format!("`{kind}` is not a Coolify service type"),
                    )
                    .hint("service types are lower case with hyphens, e.g. `wordpress-with-mysql`, `ghost`"),
                );
            }
            port_refused("one-click services declare their own ports", out);
            health_refused("one-click services define their own health checks", out);
        }
    }
}

/// Checks a Docker image reference, and warns about one that is not pinned.
pub(crate) fn check_image(image: &str, path: &FieldPath, out: &mut Vec<Issue>) {
    if image.trim().is_empty() || image.chars().any(char::is_whitespace) {
        out.push(Issue::error(
            path.clone(),
            format!("`{image}` is not an image reference"),
        ));
        return;
    }
    let (name, pinned) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo_last, tag) = match last.split_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (last, None),
    };
    let repo = &name[..name.len() - last.len() + repo_last.len()];
    let path_part = repo.split_once('/').map_or(repo, |(first, rest)| {
        if first.contains('.') || first.contains(':') || first == "localhost" {
            rest
        } else {
            repo
        }
    });
    if path_part.chars().any(|c| c.is_ascii_uppercase()) {
        out.push(
            Issue::error(
                path.clone(),
                format!("image name `{repo}` has upper-case letters"),
            )
            .hint(format!(
                "Docker image names are lower case: `{}`",
                image.to_ascii_lowercase()
            )),
        );
        return;
    }
    if tag == Some("") {
        out.push(Issue::error(
            path.clone(),
            format!("image `{image}` has an empty tag"),
        ));
        return;
    }
    if !pinned {
        match tag {
            None => out.push(
                Issue::warning(
                    path.clone(),
                    format!("image `{image}` has no tag, so it means `latest`"),
                )
                .hint(format!(
                    "pin a version, e.g. `{image}:1.2.3`, so that re-deploys are repeatable"
                )),
            ),
            Some("latest") => out.push(
                Issue::warning(
                    path.clone(),
                    format!("image `{image}` uses the moving tag `latest`"),
                )
                .hint("pin a version so that re-deploys are repeatable"),
            ),
            Some(_) => {}
        }
    }
}

fn check_domains(app: &App, out: &mut Vec<Issue>) {
    let base = FieldPath::of("app").key("domains");
    let mut seen: BTreeMap<(String, Option<u16>), usize> = BTreeMap::new();
    for (i, entry) in app.domains.iter().enumerate() {
        match Domain::parse(entry) {
            Ok(d) => {
                if let Err(why) = super::check_hostname(&d.host, true) {
                    out.push(Issue::error(base.index(i), format!("`{entry}` is not a valid host name: {why}")));
                    continue;
                }
                if let Some(first) = seen.insert((d.host.clone(), d.port), i) {
                    out.push(
                        Issue::error(base.index(i), format!("domain `{}` is listed twice", d.host))
                            .hint(format!("it is already `app.domains[{first}]`")),
                    );
                }
            }
            Err(e) => out.push(
                Issue::error(base.index(i), e)
                    .hint("write a host name (`app.example.com`) or a URL without a path (`https://app.example.com`)"),
            ),
        }
    }
}

fn check_health(app: &App, out: &mut Vec<Issue>) {
    let Some(h) = &app.health_check else { return };
    let base = FieldPath::of("app").key("health_check");
    if !h.path.starts_with('/') {
        out.push(
            Issue::error(
                base.key("path"),
                format!("`{}` must start with `/`", h.path),
            )
            .hint(format!("write `/{}`", h.path)),
        );
    }
    if !(100..=599).contains(&h.status) {
        out.push(Issue::error(
            base.key("status"),
            format!("{} is not an HTTP status code", h.status),
        ));
    }
    for (key, d, min) in [
        ("interval", h.interval, 1),
        ("timeout", h.timeout, 1),
        ("start_period", h.start_period, 0),
    ] {
        match d.whole_secs() {
            None => out.push(
                Issue::error(
                    base.key(key),
                    format!("`{key}` must be whole seconds, found `{d}`"),
                )
                .hint("Coolify counts health check times in seconds"),
            ),
            Some(s) if s < min => out.push(Issue::error(
                base.key(key),
                format!("`{key}` must be at least {min}s"),
            )),
            Some(_) => {}
        }
    }
    if h.timeout > h.interval {
        out.push(
            Issue::error(
                base.key("timeout"),
                "the health check `timeout` is longer than its `interval`",
            )
            .hint("make `timeout` shorter than `interval`"),
        );
    }
}

fn check_env(
    env: &BTreeMap<String, crate::spec::model::Interpolated>,
    ctx: &Context,
    out: &mut Vec<Issue>,
) {
    let base = FieldPath::of("app").key("env");
    for (key, value) in env {
        let path = base.key(key);
        if !is_variable_name(key) {
            out.push(
                Issue::error(
                    path.clone(),
                    format!("`{key}` is not a valid environment variable name"),
                )
                .at_key()
                .hint("use letters, digits and `_`, not starting with a digit"),
            );
        }
        undeclared_refs(value.secret_refs(), &path, ctx, out);
    }
}

/// Reports secret references that name no declared secret.
pub(crate) fn undeclared_refs(
    refs: Vec<&str>,
    path: &FieldPath,
    ctx: &Context,
    out: &mut Vec<Issue>,
) {
    let Some(declared) = &ctx.declared else {
        return;
    };
    for name in refs {
        if declared.contains(name) {
            continue;
        }
        let hint = match suggest::closest(name, declared.iter().map(String::as_str)) {
            Some(c) => format!("did you mean `${{secret.{c}}}`?"),
            None => format!(
                "declare it under `secrets:` (`{name}: {{ generate: true }}` lets Fabrik create it)"
            ),
        };
        out.push(
            Issue::error(
                path.clone(),
                format!("secret `{name}` is referenced but not declared"),
            )
            .hint(hint),
        );
    }
}

/// Checks a URL that may embed secret references: the references must be
/// declared, and the URL with them filled in must be http(s).
pub(crate) fn check_url_with_refs(
    url: &crate::spec::model::Interpolated,
    path: &FieldPath,
    ctx: &Context,
    out: &mut Vec<Issue>,
) {
    undeclared_refs(url.secret_refs(), path, ctx, out);
    let Ok(parts) = url.parts() else { return };
    if let [crate::spec::model::interpolated::Part::Secret(_)] = parts.as_slice() {
        return;
    }
    let probe: String = parts
        .iter()
        .map(|p| match p {
            crate::spec::model::interpolated::Part::Text(t) => t.to_string(),
            crate::spec::model::interpolated::Part::Secret(_) => "secret".to_owned(),
        })
        .collect();
    if let Err(why) = http_url_host(&probe) {
        out.push(Issue::error(path.clone(), format!("`{url}` {why}")));
    }
}
