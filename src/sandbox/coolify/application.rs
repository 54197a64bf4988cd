//! Applications: create (every variant), read, update, delete (asynchronous),
//! start, stop, restart.

use std::sync::LazyLock;

use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Map, Value, json};

use super::deploy::{self, Queued};
use super::fields::{self, Field, Kind};
use super::project;
use super::{
    Call, Ctx, Owner, bool_field, check_fields, decode_base64, echo, invalid, invalid_field,
    invalid_list, message, str_field,
};
use crate::sandbox::reply::{Fail, Outcome, Reply};
use crate::sandbox::store::{Tx, timestamp};
use crate::sandbox::world;
use crate::spec::patterns;

/// The create endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppKind {
    Public,
    GithubApp,
    DeployKey,
    Dockerfile,
    DockerImage,
    /// `POST /applications/dockercompose`, removed in 4.1.0.
    Compose,
}

/// Fields of the compose create endpoint before 4.1 (not in the current
/// OpenAPI file, which comes from after its removal).
const CREATE_COMPOSE: &[Field] = &[
    ("project_uuid", Kind::Str),
    ("server_uuid", Kind::Str),
    ("environment_name", Kind::Str),
    ("environment_uuid", Kind::Str),
    ("docker_compose_raw", Kind::Str),
    ("destination_uuid", Kind::Str),
    ("name", Kind::Str),
    ("description", Kind::Str),
    ("instant_deploy", Kind::Bool),
];

/// Build packs the git variants and PATCH accept (`App\Enums\BuildPackTypes`;
/// `railpack` from v4.1.0, commit 793077d74f).
fn build_pack_known(ctx: &Ctx, pack: &str) -> bool {
    match pack {
        "nixpacks" | "static" | "dockerfile" | "dockercompose" => true,
        "railpack" => ctx.at_least(4, 1, 0),
        _ => false,
    }
}

/// The value of `source_type` for the public GitHub source, which makes the
/// clone URL `https://github.com/{git_repository}` (`app/Models/Application.php:1749`).
const GITHUB_SOURCE: &str = "App\\Models\\GithubApp";

/// Request keys that steer the call instead of becoming attributes.
const CONSUMED: &[&str] = &[
    "project_uuid",
    "server_uuid",
    "environment_name",
    "environment_uuid",
    "destination_uuid",
    "instant_deploy",
    "force_domain_override",
    "autogenerate_domain",
    "tags",
    "github_app_uuid",
    "private_key_uuid",
    "domains",
    "docker_compose_domains",
    "use_build_server",
    "dockerfile",
    "docker_compose_raw",
];

/// Fields hidden from tokens without `read:sensitive`: `Application::$hidden`
/// (`app/Models/Application.php:236-247 @4.3.11`).
const SENSITIVE: &[&str] = &[
    "http_basic_auth_password",
    "manual_webhook_secret_github",
    "manual_webhook_secret_gitlab",
    "manual_webhook_secret_bitbucket",
    "manual_webhook_secret_gitea",
    "dockerfile",
    "docker_compose",
    "docker_compose_raw",
    "custom_labels",
    "custom_nginx_configuration",
];

impl AppKind {
    pub(crate) fn from_path(segment: &str, ctx: &Ctx) -> Option<Self> {
        Some(match segment {
            "public" => Self::Public,
            "private-github-app" => Self::GithubApp,
            "private-deploy-key" => Self::DeployKey,
            "dockerfile" => Self::Dockerfile,
            "dockerimage" => Self::DockerImage,
            "dockercompose" if !ctx.at_least(4, 1, 0) => Self::Compose,
            _ => return None,
        })
    }

    /// Every variant checks one shared list (`AC:1194 @4.3.11`), except
    /// the compose variant of old versions.
    fn fields(self, ctx: &Ctx) -> Vec<Field> {
        match self {
            Self::Compose => CREATE_COMPOSE.to_vec(),
            _ => fields::create_application(ctx.version),
        }
    }

    fn required(self, ctx: &Ctx) -> Vec<&'static str> {
        let mut required = vec!["project_uuid", "server_uuid"];
        let git = ["git_repository", "git_branch", "build_pack"];
        match self {
            Self::Public => required.extend(git),
            Self::GithubApp => {
                required.push("github_app_uuid");
                required.extend(git);
            }
            Self::DeployKey => {
                required.push("private_key_uuid");
                required.extend(git);
            }
            Self::Dockerfile => required.push("dockerfile"),
            Self::DockerImage => required.push("docker_registry_image_name"),
            Self::Compose => required.push("docker_compose_raw"),
        }
        let git_like = matches!(self, Self::Public | Self::GithubApp | Self::DeployKey);
        if (git_like || self == Self::DockerImage) && !ctx.at_least(4, 1, 2) {
            required.push("ports_exposes");
        }
        required
    }
}

/// One `application` row.
#[derive(Debug, Clone)]
pub(crate) struct AppRow {
    pub(crate) id: i64,
    pub(crate) uuid: String,
    pub(crate) environment_id: i64,
    pub(crate) destination_id: i64,
    pub(crate) attrs: Map<String, Value>,
    pub(crate) stopped: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) gone_at: Option<i64>,
}

const COLUMNS: &str =
    "id, uuid, environment_id, destination_id, attrs, stopped, created_at, updated_at, gone_at";

impl AppRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let attrs: String = row.get(4)?;
        Ok(Self {
            id: row.get(0)?,
            uuid: row.get(1)?,
            environment_id: row.get(2)?,
            destination_id: row.get(3)?,
            attrs: serde_json::from_str(&attrs).unwrap_or_default(),
            stopped: row.get(5)?,
            created_at: row.get(6)?,
            updated_at: row.get(7)?,
            gone_at: row.get(8)?,
        })
    }

    /// An attribute as text.
    pub(crate) fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }

    /// The application's name.
    pub(crate) fn name(&self) -> &str {
        self.attr("name").unwrap_or_default()
    }

    /// The build pack (`dockerimage` for image apps).
    pub(crate) fn build_pack(&self) -> &str {
        self.attr("build_pack").unwrap_or("nixpacks")
    }

    /// The host names the app answers on (from `fqdn` and the compose
    /// domains), lower-case.
    pub(crate) fn hosts(&self) -> Vec<String> {
        let mut hosts = world::hosts_of(self.attr("fqdn").unwrap_or_default());
        if let Some(compose) = self.attr("docker_compose_domains")
            && let Ok(Value::Array(items)) = serde_json::from_str::<Value>(compose)
        {
            for item in items {
                if let Some(domain) = item.get("domain").and_then(Value::as_str) {
                    hosts.extend(world::hosts_of(domain));
                }
            }
        }
        hosts
    }

    fn save(&self, tx: &Tx<'_>) -> rusqlite::Result<()> {
        tx.execute(
            "UPDATE application SET attrs = ?2, stopped = ?3, updated_at = ?4, gone_at = ?5 WHERE id = ?1",
            params![
                self.id,
                Value::Object(self.attrs.clone()).to_string(),
                self.stopped,
                self.updated_at,
                self.gone_at
            ],
        )?;
        Ok(())
    }
}

/// Applications visible now (an asynchronous delete has not completed).
pub(crate) fn live_app_rows(tx: &Tx<'_>) -> rusqlite::Result<Vec<AppRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM application WHERE gone_at IS NULL OR gone_at > ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([tx.now], AppRow::from_row)?;
    rows.collect()
}

/// The visible application with this uuid, or Coolify's 404.
pub(crate) fn find(tx: &Tx<'_>, uuid: &str) -> Result<AppRow, Fail> {
    find_optional(tx, uuid)?.ok_or_else(|| message(404, "Application not found.").into())
}

pub(crate) fn find_optional(tx: &Tx<'_>, uuid: &str) -> rusqlite::Result<Option<AppRow>> {
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM application WHERE uuid = ?1 AND (gone_at IS NULL OR gone_at > ?2)"
    ))?
    .query_row(params![uuid, tx.now], AppRow::from_row)
    .optional()
}

/// The application row with this id, deleted or not.
pub(crate) fn by_id(tx: &Tx<'_>, id: i64) -> rusqlite::Result<Option<AppRow>> {
    tx.prepare_cached(&format!("SELECT {COLUMNS} FROM application WHERE id = ?1"))?
        .query_row([id], AppRow::from_row)
        .optional()
}

/// Removes applications whose asynchronous delete has completed.
pub(crate) fn purge_gone(tx: &Tx<'_>) -> rusqlite::Result<()> {
    let gone = "SELECT id FROM application WHERE gone_at IS NOT NULL AND gone_at <= ?1";
    tx.execute(
        &format!("DELETE FROM env_var WHERE resource = 'application' AND resource_id IN ({gone})"),
        [tx.now],
    )?;
    tx.execute(
        &format!(
            "DELETE FROM resource_tag WHERE resource = 'application' AND resource_id IN ({gone})"
        ),
        [tx.now],
    )?;
    tx.execute(
        &format!("DELETE FROM deployment WHERE application_id IN ({gone})"),
        [tx.now],
    )?;
    tx.execute(
        "DELETE FROM application WHERE gone_at IS NOT NULL AND gone_at <= ?1",
        [tx.now],
    )?;
    Ok(())
}

/// Every attribute with the value a fresh Coolify application has
/// (`application.json`, fields of the OpenAPI `Application` schema).
static DEFAULTS: LazyLock<Map<String, Value>> =
    LazyLock::new(
        || match serde_json::from_str(include_str!("application.json")) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
    );

/// Whether a request key belongs in `settings`.
fn is_setting(key: &str) -> bool {
    matches!(DEFAULTS.get("settings"), Some(Value::Object(s)) if s.contains_key(key))
}

/// The Application object as the API shows it.
pub(crate) fn render(tx: &Tx<'_>, ctx: &Ctx, app: &AppRow) -> rusqlite::Result<Value> {
    let mut out = DEFAULTS.clone();
    for (key, value) in &app.attrs {
        if key == "settings" {
            if let (Some(Value::Object(into)), Value::Object(from)) =
                (out.get_mut("settings"), value)
            {
                for (k, v) in from {
                    into.insert(k.clone(), v.clone());
                }
            }
        } else {
            out.insert(key.clone(), value.clone());
        }
    }
    out.insert("uuid".into(), json!(app.uuid));
    out.insert("environment_id".into(), json!(app.environment_id));
    out.insert("destination_id".into(), json!(app.destination_id));
    out.insert("created_at".into(), json!(timestamp(app.created_at)));
    out.insert("updated_at".into(), json!(timestamp(app.updated_at)));
    out.insert("status".into(), json!(status(tx, ctx, app)?));
    if !ctx.sensitive {
        for key in SENSITIVE {
            out.remove(*key);
        }
    }
    Ok(Value::Object(out))
}

/// `<state>:<health>` as `GetContainersStatus` formats it
/// (`app/Actions/Docker/GetContainersStatus.php:108-118 @4.3.11`): `exited`
/// has no suffix; a container without a Docker healthcheck (health check
/// disabled) reports `running:unknown`.
pub(crate) fn status(tx: &Tx<'_>, ctx: &Ctx, app: &AppRow) -> rusqlite::Result<String> {
    if app.stopped || app.gone_at.is_some() {
        return Ok("exited".into());
    }
    let checked = app
        .attrs
        .get("health_check_enabled")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(match deploy::serving(tx, app)? {
        Some(_) if !checked => "running:unknown".into(),
        Some(_) if ctx.health_fail => "running:unhealthy".into(),
        Some(_) => "running:healthy".into(),
        None => "exited".into(),
    })
}

/// `GET /applications[?tag=]`.
pub(super) fn list(tx: &Tx<'_>, ctx: &Ctx, call: &Call) -> Outcome {
    let tag = call.query("tag");
    let mut out = Vec::new();
    for app in live_app_rows(tx)? {
        if let Some(tag) = tag
            && !project::has_tag(tx, Owner::Application, app.id, tag)?
        {
            continue;
        }
        out.push(render(tx, ctx, &app)?);
    }
    Ok(Reply::json(200, Value::Array(out)))
}

/// `GET /applications/{uuid}`.
pub(super) fn get(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    let app = find(tx, uuid)?;
    Ok(Reply::json(200, render(tx, ctx, &app)?))
}

/// `GET /applications/{uuid}/logs?lines=N` (ability `read`,
/// `routes/api.php:246`; `AC:2449-2488 @4.3.11`): the last `lines` lines of
/// the first container's output, or 400 "Application is not running."
/// when there is none or it is not running (`:2463-2479`). `lines` is
/// read by `normalizeLogLines` (`bootstrap/helpers/docker.php:1480-1488`):
/// 100 unless a positive integer, at most 10000. The simulated container
/// prints what it runs, its environment (as many programs do at start,
/// values and all: what Fabrik shows must be scrubbed) and its port.
pub(super) fn logs(tx: &Tx<'_>, call: &Call, uuid: &str) -> Outcome {
    let app = find(tx, uuid)?;
    let serving = if app.stopped {
        None
    } else {
        deploy::serving(tx, &app)?
    };
    let Some(d) = serving else {
        return Ok(message(400, "Application is not running."));
    };
    let lines = match call
        .query("lines")
        .and_then(|l| l.trim().parse::<i64>().ok())
    {
        Some(n) if n > 0 => n.min(10_000) as usize,
        _ => 100,
    };
    let mut out = vec![format!("Starting {}", d.artifact)];
    for env in super::env::of_resource(tx, Owner::Application, app.id)? {
        if !env.is_preview && env.is_runtime {
            out.push(format!("env {}={}", env.key, env.value.unwrap_or_default()));
        }
    }
    let port = app.attr("ports_exposes").unwrap_or("80");
    out.push(format!("Listening on :{port}"));
    let from = out.len().saturating_sub(lines);
    Ok(Reply::json(200, json!({"logs": out[from..].join("\n")})))
}

/// The field rules of `sharedDataApplications()` (`bootstrap/helpers/api.php:113-205
/// @4.3.11`) that Fabrik's fields meet, with Laravel's messages.
fn check_rules(ctx: &Ctx, body: &Map<String, Value>) -> Result<(), Fail> {
    let mut errors = Map::new();
    let mut fail = |field: &str, message: String| {
        errors.insert(field.to_owned(), json!([message]));
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    if let Some(pack) = text("build_pack")
        && !build_pack_known(ctx, pack)
    {
        fail("build_pack", "The selected build pack is invalid.".into());
    }
    if let Some(sha) = text("git_commit_sha")
        && !patterns::is_commit(sha)
    {
        fail(
            "git_commit_sha",
            "The git commit sha field format is invalid.".into(),
        );
    }
    for key in ["base_directory", "publish_directory"] {
        if let Some(dir) = text(key)
            && !patterns::is_directory_path(dir)
        {
            fail(
                key,
                format!("The {} field format is invalid.", key.replace('_', " ")),
            );
        }
    }
    if let Some(path) = text("dockerfile_location")
        && !patterns::is_file_path(path)
    {
        fail(
            "dockerfile_location",
            "The dockerfile location field format is invalid.".into(),
        );
    }
    for key in ["install_command", "build_command", "start_command"] {
        if let Some(cmd) = text(key)
            && !patterns::is_shell_safe_command(cmd)
        {
            fail(
                key,
                format!("The {} field format is invalid.", key.replace('_', " ")),
            );
        }
    }
    if let Some(path) = text("health_check_path")
        && !patterns::is_health_path(path)
    {
        fail(
            "health_check_path",
            "The health check path field format is invalid.".into(),
        );
    }
    if let Some(host) = text("health_check_host")
        && !patterns::is_health_host(host)
    {
        fail(
            "health_check_host",
            "The health check host field format is invalid.".into(),
        );
    }
    if let Some(m) = text("health_check_method")
        && !matches!(m, "GET" | "HEAD" | "POST" | "OPTIONS")
    {
        fail(
            "health_check_method",
            "The selected health check method is invalid.".into(),
        );
    }
    if let Some(m) = text("health_check_scheme")
        && !matches!(m, "http" | "https")
    {
        fail(
            "health_check_scheme",
            "The selected health check scheme is invalid.".into(),
        );
    }
    if let Some(ports) = text("ports_exposes")
        && !valid_ports(ports)
    {
        fail(
            "ports_exposes",
            "The ports exposes field format is invalid.".into(),
        );
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(errors).into())
    }
}

/// `POST /applications/{variant}`.
pub(super) fn create(tx: &Tx<'_>, ctx: &Ctx, call: &Call, kind: AppKind) -> Outcome {
    let body = call.json_object()?;
    if ctx.echo_422 {
        return Err(echo(&Value::Object(body)).into());
    }
    check_fields(&body, &kind.fields(ctx), &[], &kind.required(ctx))?;
    check_rules(ctx, &body)?;
    let place = project::resolve_place(tx, &body)?;
    let uuid = tx.uuid()?;
    let mut attrs = Map::new();
    apply_fields(&mut attrs, &body);
    match kind {
        AppKind::Public | AppKind::GithubApp | AppKind::DeployKey => {
            let repository = str_field(&body, "git_repository").unwrap_or_default();
            if repository.contains(patterns::REPOSITORY_FORBIDDEN) {
                return Err(invalid_field(
                    "git_repository",
                    "The git repository contains invalid characters.",
                )
                .into());
            }
            let build_pack = str_field(&body, "build_pack").unwrap_or_default();
            if build_pack == "dockercompose" && body.contains_key("domains") {
                let mut errors = Map::new();
                errors.insert(
                    "domains".into(),
                    json!("The domains field cannot be used for dockercompose applications. Use docker_compose_domains instead to set domains for individual services."),
                );
                return Err(invalid(errors).into());
            }
            match kind {
                // A github.com URL is stored as `owner/repo` with the public
                // GitHub source (`AC:1459-1465 @4.3.11`, the same at
                // `AC:1238 @b474`); any other host keeps the URL.
                AppKind::Public => {
                    if let Ok(url) = url::Url::parse(repository)
                        && url.host_str() == Some("github.com")
                    {
                        let mut segs = url.path_segments().into_iter().flatten();
                        let short = format!(
                            "{}/{}",
                            segs.next().unwrap_or_default(),
                            segs.next().unwrap_or_default()
                        );
                        attrs.insert("git_repository".into(), json!(short.trim()));
                        attrs.insert("source_type".into(), json!(GITHUB_SOURCE));
                        attrs.insert("source_id".into(), json!(0));
                    }
                }
                // The private GitHub App variant strips the scheme and host
                // (`AC:1621-1624 @4.3.11`).
                AppKind::GithubApp => {
                    let short = repository
                        .replace("https://", "")
                        .replace("http://", "")
                        .replace("github.com/", "");
                    let short = short.trim_matches('/');
                    let short = short.strip_suffix(".git").unwrap_or(short);
                    attrs.insert("git_repository".into(), json!(short));
                    attrs.insert("source_type".into(), json!(GITHUB_SOURCE));
                    attrs.insert("source_id".into(), json!(1));
                }
                _ => {
                    attrs.insert("private_key_id".into(), json!(1));
                }
            }
        }
        AppKind::Dockerfile => {
            let text = str_field(&body, "dockerfile").unwrap_or_default();
            let Some(dockerfile) = decode_base64(text) else {
                let mut errors = Map::new();
                errors.insert(
                    "dockerfile".into(),
                    json!("The dockerfile should be base64 encoded."),
                );
                return Err(invalid(errors).into());
            };
            attrs.insert("build_pack".into(), json!("dockerfile"));
            // `get_port_from_dockerfile($request->dockerfile)` reads the
            // request's still-base64 text, finds no `EXPOSE` line, and the
            // port is forced to 80 whatever `ports_exposes` says
            // (`AC:2090-2098 @4.3.11`; the same at `AC:1787 @b474`).
            attrs.insert("ports_exposes".into(), json!(exposed_port(text)));
            attrs.insert("dockerfile".into(), json!(dockerfile));
            attrs.insert("git_repository".into(), json!("coollabsio/coolify"));
            attrs.insert("git_branch".into(), json!("main"));
        }
        AppKind::DockerImage => {
            let name = str_field(&body, "docker_registry_image_name").unwrap_or_default();
            let (image, tag) = split_image(name, str_field(&body, "docker_registry_image_tag"));
            attrs.insert("build_pack".into(), json!("dockerimage"));
            attrs.insert("docker_registry_image_name".into(), json!(image));
            attrs.insert("docker_registry_image_tag".into(), json!(tag));
            attrs.insert("git_repository".into(), json!("coollabsio/coolify"));
        }
        AppKind::Compose => {
            let text = str_field(&body, "docker_compose_raw").unwrap_or_default();
            let Some(compose) = decode_base64(text) else {
                return Err(invalid_field(
                    "docker_compose_raw",
                    "The docker_compose_raw should be base64 encoded.",
                )
                .into());
            };
            attrs.insert("build_pack".into(), json!("dockercompose"));
            attrs.insert("docker_compose_raw".into(), json!(compose));
        }
    }
    let name = str_field(&body, "name")
        .map(str::to_owned)
        .unwrap_or_else(|| generated_name(&attrs, kind, &uuid));
    attrs.insert("name".into(), json!(name));
    // Domains; without any, `autogenerate_domain` (true unless sent false,
    // `AC:1245`, applied at `:1514-1516 @4.3.11`) gives the application a
    // public sslip.io URL on the server's address.
    let fqdn = match str_field(&body, "domains") {
        Some(domains) => Some(normalize_domains(domains)?),
        None if bool_field(&body, "autogenerate_domain").unwrap_or(true)
            && attrs.get("build_pack").and_then(Value::as_str) != Some("dockercompose") =>
        {
            Some(format!("http://{uuid}.127.0.0.1.sslip.io"))
        }
        None => None,
    };
    if let Some(fqdn) = &fqdn {
        attrs.insert("fqdn".into(), json!(fqdn));
    }
    let row = AppRow {
        id: 0,
        uuid: uuid.clone(),
        environment_id: place.environment_id,
        destination_id: place.destination_id,
        attrs,
        stopped: false,
        created_at: tx.now,
        updated_at: tx.now,
        gone_at: None,
    };
    if !bool_field(&body, "force_domain_override").unwrap_or(false) {
        project::check_domain_conflicts(tx, &row.hosts(), None)?;
    }
    tx.execute(
        "INSERT INTO application (uuid, environment_id, destination_id, attrs, stopped, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
        params![
            row.uuid,
            row.environment_id,
            row.destination_id,
            Value::Object(row.attrs.clone()).to_string(),
            tx.now
        ],
    )?;
    let row = AppRow {
        id: tx.last_insert_rowid(),
        ..row
    };
    if let Some(tags) = body.get("tags").and_then(Value::as_array) {
        let names: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
        project::attach_tags(tx, Owner::Application, row.id, &names)?;
    }
    if bool_field(&body, "instant_deploy").unwrap_or(false) {
        // `no_questions_asked`: never skipped (`AC:1530-1534`); the
        // deployment uuid is not returned.
        deploy::queue(tx, ctx, &row, true, false)?;
    }
    Ok(Reply::json(201, json!({"uuid": uuid, "domains": fqdn})))
}

/// `PATCH /applications/{uuid}`: the fields of the version's allow-list
/// (`AC:2801 @4.3.11`), stored as sent (`$request->only($allowedFields)`
/// then `fill()`, `AC:3112-3122`): no GitHub shortening, no Dockerfile.
pub(super) fn update(tx: &Tx<'_>, ctx: &Ctx, call: &Call, uuid: &str) -> Outcome {
    let body = call.json_object()?;
    let mut app = find(tx, uuid)?;
    check_fields(&body, &fields::update_application(ctx.version), &[], &[])?;
    check_rules(ctx, &body)?;
    let compose = app.build_pack() == "dockercompose";
    if body.contains_key("domains") {
        if compose {
            let mut errors = Map::new();
            errors.insert(
                "domains".into(),
                json!("The domains field cannot be used for dockercompose applications. Use docker_compose_domains instead to set domains for individual services."),
            );
            return Err(invalid(errors).into());
        }
        // `validateApplicationDomains` answers a list (`AC:2929-2936`); an
        // empty value (null after the middleware) clears the domains.
        let fqdn = match str_field(&body, "domains") {
            Some(domains) => Some(normalize_domains(domains).map_err(|_| {
                Fail::from(invalid_list(vec![format!("Invalid domain: {domains}")]))
            })?),
            None => None,
        };
        app.attrs.insert("fqdn".into(), json!(fqdn));
    }
    // A deployment that already started read the settings as they were.
    deploy::freeze(tx, ctx, &app)?;
    apply_fields(&mut app.attrs, &body);
    let domains_sent = body.contains_key("domains") || body.contains_key("docker_compose_domains");
    if domains_sent && !bool_field(&body, "force_domain_override").unwrap_or(false) {
        project::check_domain_conflicts(tx, &app.hosts(), Some(&app.uuid))?;
    }
    app.updated_at = tx.now;
    app.save(tx)?;
    if bool_field(&body, "instant_deploy").unwrap_or(false)
        && let Queued::Skipped(_) = deploy::queue(tx, ctx, &app, false, false)?
    {
        // `AC:3139-3151 @4.3.11`.
        return Ok(message(200, "Deployment already queued for this commit."));
    }
    Ok(Reply::json(200, json!({"uuid": app.uuid})))
}

/// `DELETE /applications/{uuid}`: containers stop now, the row goes after
/// the configured delay.
pub(super) fn delete(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    let mut app = find(tx, uuid)?;
    if app.gone_at.is_none() {
        app.gone_at = Some(tx.now + ctx.delete_ms);
        app.stopped = true;
        app.save(tx)?;
    }
    Ok(message(200, "Application deletion request queued."))
}

/// `POST /applications/{uuid}/start` (`AC:4042-4095 @4.3.11`).
pub(super) fn start(tx: &Tx<'_>, ctx: &Ctx, call: &Call, uuid: &str) -> Outcome {
    let mut app = find(tx, uuid)?;
    app.stopped = false;
    app.save(tx)?;
    let force = call.query_flag("force").unwrap_or(false);
    // `instant_deploy` sets `no_questions_asked`: no de-duplication.
    let instant = call.query_flag("instant_deploy").unwrap_or(false);
    Ok(
        match deploy::queue(tx, ctx, &app, force || instant, false)? {
            Queued::Saved(deployment) => Reply::json(
                200,
                json!({"message": "Deployment request queued.", "deployment_uuid": deployment}),
            ),
            // `queue_full` is not handled here (`AC:4070`): the reply says
            // queued, with a uuid that was never saved.
            Queued::Full(unsaved) => Reply::json(
                200,
                json!({"message": "Deployment request queued.", "deployment_uuid": unsaved}),
            ),
            // No uuid at all in this case.
            Queued::Skipped(_) => message(200, "Deployment already queued for this commit."),
        },
    )
}

/// `POST /applications/{uuid}/stop`.
pub(super) fn stop(tx: &Tx<'_>, uuid: &str) -> Outcome {
    let mut app = find(tx, uuid)?;
    app.stopped = true;
    app.save(tx)?;
    Ok(message(200, "Application stopping request queued."))
}

/// `POST /applications/{uuid}/restart`.
pub(super) fn restart(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    let mut app = find(tx, uuid)?;
    app.stopped = false;
    app.save(tx)?;
    Ok(match deploy::queue(tx, ctx, &app, false, true)? {
        Queued::Saved(deployment) | Queued::Full(deployment) => Reply::json(
            200,
            json!({"message": "Restart request queued.", "deployment_uuid": deployment}),
        ),
        Queued::Skipped(_) => message(200, "Deployment already queued for this commit."),
    })
}

/// Copies request fields onto the attributes (settings into `settings`).
fn apply_fields(attrs: &mut Map<String, Value>, body: &Map<String, Value>) {
    for (key, value) in body {
        if key == "docker_compose_domains" {
            attrs.insert(key.clone(), json!(value.to_string()));
            continue;
        }
        if CONSUMED.contains(&key.as_str()) && key != "use_build_server" {
            continue;
        }
        let key = if key == "use_build_server" {
            "is_build_server_enabled"
        } else {
            key.as_str()
        };
        if is_setting(key) {
            let settings = attrs
                .entry("settings")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(settings) = settings {
                settings.insert(key.to_owned(), value.clone());
            }
        } else {
            attrs.insert(key.to_owned(), value.clone());
        }
    }
}

/// Validates and normalises a comma-separated list of URLs.
fn normalize_domains(domains: &str) -> Result<String, Fail> {
    let mut out = Vec::new();
    for domain in domains.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let ok = url::Url::parse(domain)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        match ok {
            Some(_) => out.push(domain.to_owned()),
            None => {
                return Err(invalid_field("domains", format!("Invalid domain: {domain}")).into());
            }
        }
    }
    Ok(out.join(","))
}

fn valid_ports(ports: &str) -> bool {
    !ports.is_empty()
        && ports
            .split(',')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `get_port_from_dockerfile` (`bootstrap/helpers/docker.php:361-377
/// @4.3.11`): the first line (split on `\n`) that starts with `EXPOSE`,
/// cast to an integer; 80 when there is none (`AC:2091-2093`).
fn exposed_port(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .find_map(|line| line.strip_prefix("EXPOSE"))
        .map(|rest| {
            let digits: String = rest
                .trim()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u32>().unwrap_or(0)
        })
        .filter(|p| *p > 0)
        .unwrap_or(80)
        .to_string()
}

/// Splits `registry:5000/image:tag` into the image and tag Coolify
/// stores; an explicit tag wins; `latest` when there is none. A digest is
/// kept as the name with `@sha256` appended and the hex digits as the
/// tag: Coolify reads the name and tag as one reference
/// (`DockerImageParser::parse`, `app/Services/DockerImageParser.php:15-40`)
/// and stores a digest that way
/// (`app/Http/Controllers/Api/ApplicationsController.php:2199-2224`
/// @379abb2). (Coolify keeps `name:tag` as the name when a name carrying
/// a tag is sent with a tag too; Fabrik never sends both.)
fn split_image(name: &str, tag: Option<&str>) -> (String, String) {
    let whole = match tag {
        Some(t) if !t.is_empty() => format!("{name}:{t}"),
        _ => name.to_owned(),
    };
    let is_hash = |t: &str| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit());
    // `/^(.+)@sha256:([a-f0-9]{64})$/i` first (`DockerImageParser.php:18`).
    if let Some((main, hex)) = whole.rsplit_once("@sha256:")
        && is_hash(hex)
        && !main.is_empty()
    {
        return (format!("{main}@sha256"), hex.to_owned());
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (image, inline_tag) = match name[last_slash..].rfind(':') {
        Some(i) => (
            name[..last_slash + i].to_owned(),
            Some(name[last_slash + i + 1..].to_owned()),
        ),
        None => (name.to_owned(), None),
    };
    let tag = tag
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .or(inline_tag)
        .unwrap_or_else(|| "latest".to_owned());
    if is_hash(&tag) && !image.ends_with("@sha256") {
        return (format!("{image}@sha256"), tag);
    }
    (image, tag)
}

fn generated_name(attrs: &Map<String, Value>, kind: AppKind, uuid: &str) -> String {
    let base = match kind {
        AppKind::DockerImage => attrs
            .get("docker_registry_image_name")
            .and_then(Value::as_str)
            .unwrap_or("image")
            .rsplit('/')
            .next()
            .unwrap_or("image")
            .to_owned(),
        AppKind::Dockerfile => "dockerfile".to_owned(),
        AppKind::Compose => "docker-compose".to_owned(),
        _ => attrs
            .get("git_repository")
            .and_then(Value::as_str)
            .unwrap_or("app")
            .trim_end_matches(".git")
            .rsplit('/')
            .next()
            .unwrap_or("app")
            .to_owned(),
    };
    format!("{base}-{uuid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_like_docker() {
        assert_eq!(
            split_image("nginx", None),
            ("nginx".into(), "latest".into())
        );
        assert_eq!(
            split_image("nginx:1.27", None),
            ("nginx".into(), "1.27".into())
        );
        assert_eq!(
            split_image("registry:5000/team/app", Some("v2")),
            ("registry:5000/team/app".into(), "v2".into())
        );
        assert_eq!(
            split_image("ghcr.io/a/b:v1", Some("v2")),
            ("ghcr.io/a/b".into(), "v2".into())
        );
        // A digest, in any of the forms Coolify's parser reads, is kept as
        // the name with `@sha256` and the hex digits as the tag.
        let hex = "0f".repeat(32);
        for (name, tag) in [
            (format!("ghcr.io/a/b@sha256:{hex}"), None),
            ("ghcr.io/a/b@sha256".to_owned(), Some(hex.as_str())),
            ("ghcr.io/a/b".to_owned(), Some(hex.as_str())),
        ] {
            assert_eq!(
                split_image(&name, tag),
                ("ghcr.io/a/b@sha256".into(), hex.clone()),
                "{name} {tag:?}"
            );
        }
    }

    #[test]
    fn the_port_is_read_from_the_request_text() {
        use base64::Engine as _;
        assert_eq!(exposed_port("FROM x\nEXPOSE 3000/tcp\n"), "3000");
        assert_eq!(exposed_port("FROM x\n"), "80");
        let encoded = base64::engine::general_purpose::STANDARD.encode("FROM x\nEXPOSE 3000\n");
        assert_eq!(exposed_port(&encoded), "80");
    }

    #[test]
    fn domains_must_be_urls() {
        assert_eq!(
            normalize_domains(" https://a.example.com, http://b.example.com ").unwrap(),
            "https://a.example.com,http://b.example.com"
        );
        assert!(normalize_domains("a.example.com").is_err());
        assert!(valid_ports("80,443"));
        assert!(!valid_ports("80;443"));
    }

    #[test]
    fn settings_keys_are_recognised() {
        assert!(is_setting("is_static"));
        assert!(!is_setting("health_check_path"));
    }
}
