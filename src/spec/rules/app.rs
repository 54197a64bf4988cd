//! Rules for `app` and `coolify`.

use std::collections::BTreeMap;

use super::{Context, http_url_host};
use crate::spec::credential;
use crate::spec::diagnostic::Issue;
use crate::spec::model::app::APP_FORMS;
use crate::spec::model::interpolated::is_variable_name;
use crate::spec::model::{App, AppSource, BuildPack, CoolifyTarget, Domain, RemoteRef};
use crate::spec::path::FieldPath;
use crate::spec::patterns;
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
    // Coolify counts characters (`max:255` on a string), not bytes.
    if let Some(name) = &app.name
        && (name.trim().is_empty() || name.chars().count() > 255)
    {
        out.push(Issue::error(
            base.key("name"),
            format!(
                "`app.name` must be 1 to 255 characters, found {}",
                name.chars().count()
            ),
        ));
    }
    check_source(app, out);
    check_domains(app, out);
    check_health(app, out);
    check_env(app, ctx, out);
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
            super::no_credentials(
                &g.repository,
                &p.key("repository"),
                "only public repositories are supported: remove `user:password@`",
                out,
            );
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
            // `ValidGitRepositoryUrl` (`app/Rules/ValidGitRepositoryUrl.php:31-36
            // @4.3.11`) refuses these anywhere in the URL.
            if let Some(c) = g
                .repository
                .chars()
                .find(|c| patterns::REPOSITORY_FORBIDDEN.contains(c))
            {
                out.push(
                    Issue::error(
                        p.key("repository"),
                        format!("Coolify refuses `{}` in a repository URL", c.escape_debug()),
                    )
                    .hint("write the repository's plain https URL, without a query, fragment or credentials"),
                );
            }
            for (key, value, ok, what) in [
                (
                    "base_directory",
                    &g.base_directory,
                    patterns::is_directory_path as fn(&str) -> bool,
                    "a path starting with `/` of letters, digits and `._-/~@+`",
                ),
                (
                    "publish_directory",
                    &g.publish_directory,
                    patterns::is_directory_path,
                    "a path starting with `/` of letters, digits and `._-/~@+`",
                ),
                (
                    "dockerfile_location",
                    &g.dockerfile_location,
                    patterns::is_file_path,
                    "a file path starting with `/` of letters, digits and `._-/~@+`",
                ),
                (
                    "install_command",
                    &g.install_command,
                    patterns::is_shell_safe_command,
                    "words, quoted strings, `&&` and `||`, without `;`, `|`, `$`, `<`, `>` or a backtick (at most 1000 characters)",
                ),
                (
                    "build_command",
                    &g.build_command,
                    patterns::is_shell_safe_command,
                    "words, quoted strings, `&&` and `||`, without `;`, `|`, `$`, `<`, `>` or a backtick (at most 1000 characters)",
                ),
                (
                    "start_command",
                    &g.start_command,
                    patterns::is_shell_safe_command,
                    "words, quoted strings, `&&` and `||`, without `;`, `|`, `$`, `<`, `>` or a backtick (at most 1000 characters)",
                ),
            ] {
                // Coolify's rules (`app/Support/ValidationPatterns.php`,
                // `sharedDataApplications()` @4.3.11).
                if let Some(v) = value
                    && !ok(v)
                {
                    out.push(
                        Issue::error(p.key(key), format!("Coolify refuses `{v}` as `{key}`"))
                            .hint(format!("`{key}` must be {what}")),
                    );
                }
            }
            if let Some(why) = branch_problem(&g.branch) {
                out.push(
                    Issue::error(
                        p.key("branch"),
                        format!("`{}` is not a branch name: {why}", g.branch),
                    )
                    .hint("branch names use letters, digits, `-`, `_`, `.` and `/`, as git and Coolify allow them, e.g. `main` or `release/1.2`"),
                );
            }
            if let Some(c) = &g.commit
                && !is_object_name(c)
            {
                out.push(
                    Issue::error(
                        p.key("commit"),
                        format!("`{c}` is not a commit id"),
                    )
                    .hint("write the commit's hexadecimal id, 4 to 64 digits (`git rev-parse HEAD` prints it)"),
                );
            }
            if g.build_pack == BuildPack::Static {
                if app.port.is_some_and(|p| p != 80) {
                    out.push(
                        Issue::error(
                            base.key("port"),
                            "the `static` build pack serves on port 80",
                        )
                        .reads(p.key("build_pack"))
                        .hint("remove `port` or set it to 80"),
                    );
                }
            } else {
                let before = out.len();
                port_required("application", out);
                for i in &mut out[before..] {
                    i.inputs.push(p.key("build_pack"));
                }
                if g.publish_directory.is_some() {
                    out.push(
                        Issue::error(
                            p.key("publish_directory"),
                            "`publish_directory` applies to the `static` build pack only",
                        )
                        .reads(p.key("build_pack"))
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
                    .reads(p.key("build_pack"))
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
            if crate::spec::services::template(kind).is_none() {
                let types: Vec<&str> = crate::spec::services::types().collect();
                let hint = match suggest::closest(kind, types.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => format!(
                        "Coolify {} has {} one-click services, e.g. `ghost`, `plausible`, `wordpress-with-mysql`; see `docs/spec.md`",
                        crate::spec::services::coolify_version(),
                        types.len()
                    ),
                };
                out.push(
                    Issue::error(
                        base.key("service"),
                        format!("`{kind}` is not a Coolify one-click service"),
                    )
                    .hint(hint),
                );
            }
            if let Some(t) = crate::spec::services::template(kind)
                && t.default_service.is_none()
                && !app.domains.is_empty()
            {
                out.push(
                    Issue::error(
                        base.key("domains"),
                        format!("the one-click service `{kind}` has no container that takes a domain"),
                    )
                    .reads(base.key("service"))
                    .hint(format!(
                        "remove `domains`: none of {}'s containers ({}) serves a URL in Coolify {}'s template",
                        kind,
                        t.services.join(", "),
                        crate::spec::services::coolify_version()
                    )),
                );
            }
            port_refused("one-click services declare their own ports", out);
            health_refused("one-click services define their own health checks", out);
        }
    }
}

/// Checks a Docker image reference, and warns about one that is not pinned.
pub(crate) fn check_image(image: &str, path: &FieldPath, out: &mut Vec<Issue>) {
    if let Some(why) = image_problem(image) {
        out.push(
            Issue::error(path.clone(), format!("`{image}` is not an image reference: {why}"))
                .hint("write `[registry/]name[:tag][@sha256:digest]`, e.g. `nginx:1.27` or `ghcr.io/acme/api:2.1`"),
        );
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
                if let Some(first) = seen.insert((d.host.clone(), d.port), i) {
                    out.push(
                        Issue::error(
                            base.index(i),
                            format!("domain `{}` is listed twice", d.host),
                        )
                        .hint(format!("it is already `app.domains[{first}]`")),
                    );
                }
            }
            Err(e) => out.push(Issue::error(base.index(i), e.message).maybe_hint(e.hint)),
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
    } else if let Some(c) = h.path.chars().find(|c| !health_path_char(*c)) {
        // Coolify's rule (app/Livewire/Project/Shared/HealthChecks.php,
        // 4.3.11): `^[a-zA-Z0-9/\-_.~%,;]+$`; the path ends up in a shell
        // command inside the container.
        out.push(
            Issue::error(
                base.key("path"),
                format!("the health check path may not contain `{}`", c.escape_debug()),
            )
            .hint("Coolify accepts letters, digits and `/-_.~%,;` in a health check path; percent-encode anything else (a query string is not supported)"),
        );
    }
    if !(100..=599).contains(&h.status) {
        out.push(Issue::error(
            base.key("status"),
            format!("{} is not an HTTP status code", h.status),
        ));
    }
    // Coolify stores both, but its generated check only runs
    // `curl -f <url> || wget ... || exit 1` (`app/Jobs/ApplicationDeploymentJob.php:3508-3558
    // @4.3.11`): any 2xx or 3xx passes, whatever the body.
    if h.status != crate::spec::model::app::default_status() {
        out.push(
            Issue::warning(
                base.key("status"),
                format!("Coolify's health check does not compare the status with {}: any 2xx or 3xx answer passes", h.status),
            )
            .hint("check the status with `verify.http` instead"),
        );
    }
    if h.body_contains.is_some() {
        out.push(
            Issue::warning(
                base.key("body_contains"),
                "Coolify's health check does not read the body",
            )
            .hint("check the body with `verify.http` instead"),
        );
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
            .reads(base.key("interval"))
            .hint("make `timeout` shorter than `interval`"),
        );
    }
}

fn check_env(app: &App, ctx: &Context, out: &mut Vec<Issue>) {
    check_env_map(app, &app.env, "env", ctx, out);
    check_env_map(app, &app.build_env, "build_env", ctx, out);
    let base = FieldPath::of("app").key("build_env");
    if !app.build_env.is_empty()
        && !matches!(app.source, AppSource::Dockerfile(_) | AppSource::Git(_))
    {
        out.push(
            Issue::error(
                base.clone(),
                format!(
                    "`build_env` applies to applications Coolify builds (`dockerfile`, `git`), not to `{}`",
                    app.source.key()
                ),
            )
            .at_key()
            .hint("move the variables to `env`"),
        );
    }
    for key in app.build_env.keys().filter(|k| app.env.contains_key(*k)) {
        out.push(
            Issue::error(
                base.key(key),
                format!("`{key}` is in both `env` and `build_env`"),
            )
            .at_key()
            .hint("keep it in `build_env` (the running container gets it too), or in `env` (the build does not)"),
        );
    }
}

fn check_env_map(
    app: &App,
    map: &BTreeMap<String, crate::spec::model::Interpolated>,
    section: &str,
    ctx: &Context,
    out: &mut Vec<Issue>,
) {
    let base = FieldPath::of("app").key(section);
    let compose = matches!(app.source, AppSource::Compose(_));
    for (key, value) in map {
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
        if credential::userinfos(value.as_str())
            .iter()
            .any(credential::Userinfo::has_literal_password)
        {
            out.push(
                Issue::error(
                    path.clone(),
                    format!(
                        "`{value}` holds a password written out in a URL; it would be stored in the journal and shown by `plan`"
                    ),
                )
                .hint(format!(
                    "declare a secret and reference it: `user:${{secret.{key}_PASSWORD}}@`"
                )),
            );
        }
        // A compose service receives every declared secret as a variable
        // of the same name; an env key of that name would replace it.
        let same_secret = value.as_str() == format!("${{secret.{key}}}");
        if compose && !same_secret && ctx.declared.as_ref().is_some_and(|d| d.contains(key)) {
            out.push(
                Issue::error(
                    path.clone(),
                    format!("`{key}` is also a declared secret, which the compose file receives as `${{{key}}}`; the env value would replace it"),
                )
                .at_key()
                .hint(format!("rename the env variable or the secret; to pass the secret, leave `{key}` out of `env`")),
            );
        }
    }
}

/// Why `branch` is not a branch name git and Coolify both accept
/// (`git check-ref-format --branch`, and Coolify's `ValidGitBranch`, which
/// allows only `[a-zA-Z0-9-_/.]`).
pub(crate) fn branch_problem(branch: &str) -> Option<String> {
    let b = branch;
    if b.trim().is_empty() {
        return Some("it is empty".to_owned());
    }
    if let Some(c) = b
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.')))
    {
        return Some(format!("it contains `{}`", c.escape_debug()));
    }
    if b.contains("..") {
        return Some("it contains `..`".to_owned());
    }
    if b.contains("//") {
        return Some("it contains `//`".to_owned());
    }
    if b.starts_with(['/', '.', '-']) || b.ends_with(['/', '.']) {
        return Some("it starts with `/`, `.` or `-`, or ends with `/` or `.`".to_owned());
    }
    if b.split('/')
        .any(|c| c.starts_with('.') || c.ends_with(".lock"))
    {
        return Some("a part starts with `.` or ends with `.lock`".to_owned());
    }
    if b == "HEAD" {
        return Some("`HEAD` is not a branch".to_owned());
    }
    None
}

/// Whether `s` is a git object name: 4 to 64 hexadecimal digits (an
/// abbreviated or full SHA-1 or SHA-256 id).
pub(crate) fn is_object_name(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Why `image` is not a Docker image reference
/// (`[registry[:port]/]path[:tag][@algorithm:digest]`), at the level of
/// its characters and parts; upper case and empty tags are reported by
/// [`check_image`] with their own hints.
pub(crate) fn image_problem(image: &str) -> Option<String> {
    if image.is_empty() {
        return Some("it is empty".to_owned());
    }
    if image.chars().count() > 255 {
        return Some("it is longer than 255 characters".to_owned());
    }
    if let Some(c) = image
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@')))
    {
        return Some(format!("it contains `{}`", c.escape_debug()));
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(algo, hex)| {
            !algo.is_empty()
                && algo
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && hex.len() >= 32
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !ok {
            return Some(format!("`@{d}` is not a digest"));
        }
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let registry = parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost");
    if registry {
        parts.remove(0);
    }
    let last = parts.len().saturating_sub(1);
    for (i, part) in parts.iter().enumerate() {
        let part = if i == last {
            part.split_once(':').map_or(*part, |(p, _)| p)
        } else {
            part
        };
        if part.is_empty()
            || part.contains(':')
            || part.starts_with(['.', '_', '-'])
            || part.ends_with(['.', '_', '-'])
        {
            return Some(format!("`{part}` is not a valid part of an image name"));
        }
    }
    None
}

fn health_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~' | '%' | ',' | ';')
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
/// declared, and the URL with them filled in must be http(s). Returns its
/// scheme and host when the host is written out (not a secret).
pub(crate) fn check_url_with_refs(
    url: &crate::spec::model::Interpolated,
    path: &FieldPath,
    ctx: &Context,
    out: &mut Vec<Issue>,
) -> Option<(String, String)> {
    use crate::spec::model::interpolated::Part;
    undeclared_refs(url.secret_refs(), path, ctx, out);
    let parts = url.parts().ok()?;
    if let [Part::Secret(_)] = parts.as_slice() {
        return None;
    }
    let probe: String = parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.to_string(),
            Part::Secret(_) => "secret".to_owned(),
        })
        .collect();
    match http_url_host(&probe) {
        Ok(host) => {
            // A host that comes from a secret reads as `secret`.
            let scheme = probe.split("://").next().unwrap_or_default();
            (host != "secret").then(|| (scheme.to_ascii_lowercase(), host))
        }
        Err(p) => {
            out.push(p.issue(path.clone(), url.as_str()));
            None
        }
    }
}
