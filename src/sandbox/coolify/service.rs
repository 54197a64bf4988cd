//! Services (one-click templates or raw compose): create, read, update,
//! delete (asynchronous), start, stop, restart. Services get no deployment
//! rows; their status is read off `running_from`.
//!
//! Read from `app/Http/Controllers/Api/ServicesController.php` (`SC`),
//! `bootstrap/helpers/parsers.php` and `app/Models/Service.php` at 379abb25
//! (4.3.11). What the sandbox does differently is listed in
//! `docs/sandbox.md`:
//!
//! - a service is made of containers (`ServiceApplication` or
//!   `ServiceDatabase`), each with its own `fqdn`; a Service has no `urls`
//!   (`SC:233-253`). A one-click template's containers are the template's
//!   compose services (`crate::spec::services`, from the 4.3.11 list); the
//!   sandbox classes a container as a database by its name or image, as
//!   `isDatabaseImage` does by image;
//! - `urls[].name` must name an application container, else the create is
//!   undone and answered with a *list* of errors (`SC:117-207`, `:545-554`);
//! - every parse (create, PATCH, start) re-serialises the compose file
//!   (`SC:696`, `:1230`; `parsers.php:1516-1537`) and creates the
//!   generated `SERVICE_*` variables it references that do not exist yet,
//!   with new random values (`firstOrCreate`, `parsers.php:2006-2016`),
//!   while declared `SERVICE_FQDN_*`/`SERVICE_URL_*` keys follow their
//!   container's URL (`updateOrCreate`, `:1860-1904`);
//! - a declared `SERVICE_URL_<NAME>_<PORT>` gives its container the
//!   generated URL `http://<name>-<uuid>.127.0.0.1.sslip.io:<PORT>`
//!   (`parsers.php:1839-1857`);
//! - while a start runs, the service reads `starting:unhealthy`
//!   (`app/Models/Service.php:151-161`); the containers keep the status of
//!   the last status check (stale) until the next one, a little after the
//!   start ([`CHECK_LAG_MS`]), which also sets their `last_online_at`.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Map, Value, json};

use super::fields::{self, Field};
use super::project;
use super::{
    Call, Ctx, Owner, bool_field, check_fields, decode_base64, echo, env, invalid, invalid_field,
    invalid_list, message, short_digest, str_field,
};
use crate::sandbox::reply::{Fail, Outcome, Reply};
use crate::sandbox::store::{Tx, timestamp};
use crate::sandbox::world;

/// How long after a start has finished the next status check runs (the
/// real one runs every minute, or when Sentinel pushes).
pub(crate) const CHECK_LAG_MS: i64 = 100;

/// Image or container names `isDatabaseImage` classes as databases
/// (`bootstrap/helpers/docker.php`, approximated by name).
const DATABASE_NAMES: &[&str] = &[
    "postgres",
    "postgresql",
    "postgis",
    "mysql",
    "mariadb",
    "redis",
    "mongo",
    "mongodb",
    "keydb",
    "dragonfly",
    "clickhouse",
    "db",
    "database",
    "valkey",
];

/// One container of a service.
#[derive(Debug, Clone, PartialEq)]
struct Container {
    name: String,
    image: String,
    /// `ServiceDatabase` (no URL) rather than `ServiceApplication`.
    database: bool,
    /// Comma-separated URLs, each possibly with the container port.
    fqdn: Option<String>,
    /// The port of a declared `SERVICE_URL_<NAME>_<PORT>`, if any.
    port: Option<u16>,
    /// Whether the compose file declares a URL for it.
    declared: bool,
}

impl Container {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "image": self.image,
            "database": self.database,
            "fqdn": self.fqdn,
            "port": self.port,
            "declared": self.declared,
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            name: v.get("name")?.as_str()?.to_owned(),
            image: v
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            database: v.get("database").and_then(Value::as_bool).unwrap_or(false),
            fqdn: v.get("fqdn").and_then(Value::as_str).map(str::to_owned),
            port: v
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok()),
            declared: v.get("declared").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// One `service` row.
#[derive(Debug, Clone)]
pub(crate) struct ServiceRow {
    pub(crate) id: i64,
    pub(crate) uuid: String,
    pub(crate) environment_id: i64,
    pub(crate) destination_id: i64,
    pub(crate) attrs: Map<String, Value>,
    pub(crate) running_from: Option<i64>,
    pub(crate) stopped: bool,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
    pub(crate) gone_at: Option<i64>,
}

const COLUMNS: &str = "id, uuid, environment_id, destination_id, attrs, running_from, stopped, created_at, updated_at, gone_at";

impl ServiceRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let attrs: String = row.get(4)?;
        Ok(Self {
            id: row.get(0)?,
            uuid: row.get(1)?,
            environment_id: row.get(2)?,
            destination_id: row.get(3)?,
            attrs: serde_json::from_str(&attrs).unwrap_or_default(),
            running_from: row.get(5)?,
            stopped: row.get(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
            gone_at: row.get(9)?,
        })
    }

    /// An attribute as text.
    pub(crate) fn attr(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }

    /// The service's name.
    pub(crate) fn name(&self) -> &str {
        self.attr("name").unwrap_or_default()
    }

    fn containers(&self) -> Vec<Container> {
        self.attrs
            .get("containers")
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Container::from_json).collect())
            .unwrap_or_default()
    }

    fn set_containers(&mut self, containers: &[Container]) {
        self.attrs.insert(
            "containers".into(),
            Value::Array(containers.iter().map(Container::to_json).collect()),
        );
    }

    /// The URLs of its containers, each as stored (with the container port
    /// when there is one).
    pub(crate) fn urls(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .containers()
            .iter()
            .filter_map(|c| c.fqdn.clone())
            .flat_map(|f| {
                f.split(',')
                    .map(|u| u.trim().to_owned())
                    .filter(|u| !u.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }

    /// Its containers as the dump shows them: name, URL, database or not.
    pub(crate) fn container_view(&self) -> Vec<Value> {
        self.containers()
            .iter()
            .map(|c| json!({"name": c.name, "fqdn": c.fqdn, "database": c.database}))
            .collect()
    }

    /// The host names it answers on (the container ports are where the
    /// proxy sends the traffic, not where it listens).
    pub(crate) fn hosts(&self) -> Vec<String> {
        self.urls()
            .iter()
            .flat_map(|u| world::hosts_of(u))
            .collect()
    }

    /// Whether its last start fails (the `deploy_fail` fault when it
    /// began): the containers exit right away.
    fn start_fails(&self) -> bool {
        self.attrs
            .get("start_fails")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Whether its containers run at `now`.
    pub(crate) fn running(&self, now: i64) -> bool {
        !self.stopped
            && self.gone_at.is_none()
            && !self.start_fails()
            && self.running_from.is_some_and(|t| t <= now)
    }

    /// What it runs, as the app listener reports it.
    pub(crate) fn artifact(&self) -> String {
        match (self.attr("service_type"), self.attr("docker_compose_raw")) {
            (Some(t), _) => format!("service template {t}"),
            (None, Some(compose)) => format!("compose {}", short_digest(compose)),
            (None, None) => "compose (empty)".to_owned(),
        }
    }

    /// The containers' status and the time of the status check it comes
    /// from, at `now` (see the module documentation).
    fn container_status(&self, ctx: &Ctx, now: i64) -> (String, i64) {
        let previous_check = self
            .attrs
            .get("previous_check")
            .and_then(Value::as_i64)
            .unwrap_or(self.created_at);
        match self.running_from {
            _ if self.stopped || self.gone_at.is_some() => ("exited".into(), previous_check),
            None => ("exited".into(), self.created_at),
            Some(t) if now < t + CHECK_LAG_MS => {
                let was_running = self
                    .attrs
                    .get("previous_running")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let stale = if was_running {
                    "running:healthy"
                } else {
                    "exited"
                };
                (stale.into(), previous_check)
            }
            Some(t) if self.start_fails() => ("exited".into(), t + CHECK_LAG_MS),
            Some(t) if ctx.health_fail => ("running:unhealthy".into(), t + CHECK_LAG_MS),
            Some(t) => ("running:healthy".into(), t + CHECK_LAG_MS),
        }
    }

    /// `Service::getStatusAttribute` (`app/Models/Service.php:151-276`):
    /// `starting:unhealthy` while a start runs, else the containers'
    /// statuses aggregated.
    fn status(&self, ctx: &Ctx, now: i64) -> String {
        if !self.stopped && self.gone_at.is_none() && self.running_from.is_some_and(|t| now < t) {
            return "starting:unhealthy".into();
        }
        self.container_status(ctx, now).0
    }

    fn save(&self, tx: &Tx<'_>) -> rusqlite::Result<()> {
        tx.execute(
            "UPDATE service SET attrs = ?2, running_from = ?3, stopped = ?4, updated_at = ?5, gone_at = ?6 WHERE id = ?1",
            params![
                self.id,
                Value::Object(self.attrs.clone()).to_string(),
                self.running_from,
                self.stopped,
                self.updated_at,
                self.gone_at
            ],
        )?;
        Ok(())
    }
}

/// Services visible now.
pub(crate) fn live_service_rows(tx: &Tx<'_>) -> rusqlite::Result<Vec<ServiceRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM service WHERE gone_at IS NULL OR gone_at > ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map([tx.now], ServiceRow::from_row)?;
    rows.collect()
}

fn find_optional(tx: &Tx<'_>, uuid: &str) -> rusqlite::Result<Option<ServiceRow>> {
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM service WHERE uuid = ?1 AND (gone_at IS NULL OR gone_at > ?2)"
    ))?
    .query_row(params![uuid, tx.now], ServiceRow::from_row)
    .optional()
}

/// The visible service with this uuid, or the 404.
pub(crate) fn find(tx: &Tx<'_>, uuid: &str) -> Result<ServiceRow, Fail> {
    find_optional(tx, uuid)?.ok_or_else(|| message(404, "Service not found.").into())
}

/// Removes services whose asynchronous delete has completed.
pub(crate) fn purge_gone(tx: &Tx<'_>) -> rusqlite::Result<()> {
    let gone = "SELECT id FROM service WHERE gone_at IS NOT NULL AND gone_at <= ?1";
    tx.execute(
        &format!("DELETE FROM env_var WHERE resource = 'service' AND resource_id IN ({gone})"),
        [tx.now],
    )?;
    tx.execute(
        &format!("DELETE FROM resource_tag WHERE resource = 'service' AND resource_id IN ({gone})"),
        [tx.now],
    )?;
    tx.execute(
        "DELETE FROM service WHERE gone_at IS NOT NULL AND gone_at <= ?1",
        [tx.now],
    )?;
    Ok(())
}

/// The Service object. Lists show no containers (no eager relation,
/// `SC:233-253`); the single read adds `applications` and `databases`
/// (`SC:832-837`). `docker_compose_raw` is hidden without sensitive access
/// (`Service::$hidden`, `app/Models/Service.php:75-78`).
pub(crate) fn render(
    tx: &Tx<'_>,
    ctx: &Ctx,
    svc: &ServiceRow,
    with_containers: bool,
) -> rusqlite::Result<Value> {
    let server_id: i64 = tx.query_row(
        "SELECT server_id FROM destination WHERE id = ?1",
        [svc.destination_id],
        |r| r.get(0),
    )?;
    let compose = svc.attr("docker_compose_raw").unwrap_or_default();
    let mut out = json!({
        "id": svc.id,
        "uuid": svc.uuid,
        "name": svc.name(),
        "environment_id": svc.environment_id,
        "server_id": server_id,
        "destination_id": svc.destination_id,
        "destination_type": "App\\Models\\StandaloneDocker",
        "connect_to_docker_network": svc.attrs.get("connect_to_docker_network").and_then(Value::as_bool).unwrap_or(false),
        "is_container_label_escape_enabled": svc.attrs.get("is_container_label_escape_enabled").and_then(Value::as_bool).unwrap_or(true),
        "is_container_label_readonly_enabled": true,
        "config_hash": short_digest(compose),
        "status": svc.status(ctx, tx.now),
        "created_at": timestamp(svc.created_at),
        "updated_at": timestamp(svc.updated_at),
    });
    if let Value::Object(map) = &mut out {
        for key in ["description", "service_type"] {
            if let Some(v) = svc.attr(key) {
                map.insert(key.into(), json!(v));
            }
        }
        if ctx.sensitive {
            map.insert("docker_compose_raw".into(), json!(compose));
            map.insert("docker_compose".into(), json!(compose));
        }
        if with_containers {
            let (status, checked) = svc.container_status(ctx, tx.now);
            let mut applications = Vec::new();
            let mut databases = Vec::new();
            for c in svc.containers() {
                let mut v = json!({
                    "name": c.name,
                    "human_name": null,
                    "image": c.image,
                    "status": status,
                    "exclude_from_status": false,
                    "last_online_at": timestamp(checked),
                    "updated_at": timestamp(checked.max(svc.updated_at)),
                });
                if c.database {
                    databases.push(v);
                } else {
                    if let Value::Object(m) = &mut v {
                        m.insert("fqdn".into(), json!(c.fqdn));
                    }
                    applications.push(v);
                }
            }
            map.insert("applications".into(), Value::Array(applications));
            map.insert("databases".into(), Value::Array(databases));
        }
    }
    Ok(out)
}

/// `GET /services`.
pub(super) fn list(tx: &Tx<'_>, ctx: &Ctx) -> Outcome {
    let mut out = Vec::new();
    for svc in live_service_rows(tx)? {
        out.push(render(tx, ctx, &svc, false)?);
    }
    Ok(Reply::json(200, Value::Array(out)))
}

/// `GET /services/{uuid}`.
pub(super) fn get(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    let svc = find(tx, uuid)?;
    Ok(Reply::json(200, render(tx, ctx, &svc, true)?))
}

/// A name as magic variables spell it: upper-case letters and digits.
fn magic_name(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn is_database(name: &str, image: &str) -> bool {
    let image = image.rsplit('/').next().unwrap_or(image);
    let image = image.split([':', '@']).next().unwrap_or(image);
    DATABASE_NAMES.contains(&image) || DATABASE_NAMES.contains(&name)
}

/// A compose service: its name, image and environment (keys and values as
/// text).
type ComposeService = (String, String, Vec<(String, String)>);

/// The compose services of a file.
fn compose_services(doc: &Value) -> Vec<ComposeService> {
    let Some(services) = doc.get("services").and_then(Value::as_object) else {
        return Vec::new();
    };
    services
        .iter()
        .map(|(name, s)| {
            let image = s
                .get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let env: Vec<(String, String)> = match s.get("environment") {
                Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|i| match i.split_once('=') {
                        Some((k, v)) => (k.to_owned(), v.to_owned()),
                        None => (i.to_owned(), String::new()),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            (name.clone(), image, env)
        })
        .collect()
}

/// `SERVICE_FQDN_<NAME>[_<PORT>]` or `SERVICE_URL_<NAME>[_<PORT>]`: the port.
fn declared_port(key: &str) -> Option<Option<u16>> {
    let rest = key
        .strip_prefix("SERVICE_FQDN_")
        .or_else(|| key.strip_prefix("SERVICE_URL_"))?;
    Some(
        rest.rsplit_once('_')
            .and_then(|(_, p)| p.parse::<u16>().ok()),
    )
}

/// The magic variables a text references: `${SERVICE_X}` or `$SERVICE_X`
/// (`parsers.php:1767-1771`).
fn referenced(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("$") {
        rest = &rest[i + 1..];
        let inner = rest.strip_prefix('{').unwrap_or(rest);
        let name: String = inner
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.starts_with("SERVICE_") {
            out.push(name);
        }
    }
    out
}

/// The value `generateEnvValue()` makes for a magic variable
/// (`bootstrap/helpers/shared.php:1754-1852 @4.3.11`), with the command
/// read as `parseCommandFromMagicEnvVariable()` does (`:1686-1711`): the
/// text between `SERVICE_` and the last `_` when the key has two or three
/// underscores; `None` (a null value) for anything else.
fn generated_value(tx: &Tx<'_>, key: &str) -> rusqlite::Result<Option<String>> {
    let underscores = key.matches('_').count();
    if !(2..=3).contains(&underscores) {
        return Ok(None);
    }
    let Some(rest) = key.strip_prefix("SERVICE_") else {
        return Ok(None);
    };
    let command = rest.rsplit_once('_').map_or(rest, |(c, _)| c);
    let random = |n: usize| -> rusqlite::Result<String> {
        let mut s = String::new();
        while s.len() < n {
            s.push_str(&tx.uuid()?);
        }
        s.truncate(n);
        Ok(s)
    };
    let mixed = |n: usize| -> rusqlite::Result<String> {
        Ok(random(n)?
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 3 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect())
    };
    Ok(Some(match command {
        "PASSWORD" | "BASE64" | "BASE64_32" => mixed(32)?,
        "PASSWORD_64" | "BASE64_64" => mixed(64)?,
        "BASE64_128" => mixed(128)?,
        "PASSWORDWITHSYMBOLS" => format!("{}!#", mixed(30)?),
        "PASSWORDWITHSYMBOLS_64" => format!("{}!#", mixed(62)?),
        "USER" => mixed(16)?,
        "LOWERCASEUSER" => random(16)?,
        "HEX_32" => hex::encode(random(16)?),
        "HEX_64" => hex::encode(random(32)?),
        "HEX_128" => hex::encode(random(64)?),
        "REALBASE64" | "REALBASE64_32" | "REALBASE64_64" | "REALBASE64_128" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(random(32)?)
        }
        _ => return Ok(None),
    }))
}

/// What a parse finds: the containers and the magic variables referenced.
struct Parsed {
    containers: Vec<Container>,
    referenced: Vec<String>,
}

/// Reads the containers of a compose file or of a one-click template.
fn parse_source(svc: &ServiceRow) -> Parsed {
    if let Some(kind) = svc.attr("service_type")
        && let Some(t) = crate::spec::services::template(kind)
    {
        let mut referenced = Vec::new();
        let containers = t
            .services
            .iter()
            .map(|name| {
                let database = is_database(name, name);
                if database {
                    referenced.push(format!("SERVICE_PASSWORD_{}", magic_name(name)));
                    referenced.push(format!("SERVICE_USER_{}", magic_name(name)));
                }
                let declared = t.default_service == Some(*name);
                Container {
                    name: (*name).to_owned(),
                    image: format!("{name}:latest"),
                    database,
                    fqdn: None,
                    port: if declared { t.port } else { None },
                    declared,
                }
            })
            .collect();
        return Parsed {
            containers,
            referenced,
        };
    }
    let doc = svc
        .attr("docker_compose_raw")
        .and_then(crate::spec::compose_document)
        .unwrap_or(Value::Null);
    let mut referenced_all = Vec::new();
    let containers = compose_services(&doc)
        .into_iter()
        .map(|(name, image, env)| {
            let mut declared = None;
            for (k, v) in &env {
                if let Some(port) = declared_port(k) {
                    declared = Some(declared.flatten().or(port));
                }
                referenced_all.extend(referenced(v));
            }
            Container {
                database: is_database(&name, &image),
                image,
                fqdn: None,
                port: declared.flatten(),
                declared: declared.is_some(),
                name,
            }
        })
        .collect();
    Parsed {
        containers,
        referenced: referenced_all,
    }
}

/// `$service->parse()`: containers (keeping the URLs of those that stay,
/// generating one for a declared container that has none), the compose
/// file re-serialised, and the magic variables.
fn parse(tx: &Tx<'_>, svc: &mut ServiceRow) -> rusqlite::Result<()> {
    if let Some(raw) = svc.attr("docker_compose_raw")
        && let Some(doc) = crate::spec::compose_document(raw)
    {
        let dumped = yaml_dump(&doc, 0);
        svc.attrs.insert("docker_compose_raw".into(), json!(dumped));
    }
    let before = svc.containers();
    let parsed = parse_source(svc);
    let mut containers = Vec::new();
    for mut c in parsed.containers {
        c.fqdn = before
            .iter()
            .find(|b| b.name == c.name)
            .and_then(|b| b.fqdn.clone());
        if c.fqdn.is_none() && c.declared && !c.database {
            let port = c.port.map(|p| format!(":{p}")).unwrap_or_default();
            c.fqdn = Some(format!(
                "http://{}-{}.127.0.0.1.sslip.io{port}",
                c.name, svc.uuid
            ));
        }
        containers.push(c);
    }
    svc.set_containers(&containers);
    for key in parsed.referenced {
        if env::find_service_key(tx, svc.id, &key)?.is_none() {
            let value = generated_value(tx, &key)?;
            env::insert_service_key(tx, svc.id, &key, value.as_deref())?;
        }
    }
    for c in containers.iter().filter(|c| c.declared) {
        let first = c
            .fqdn
            .as_deref()
            .and_then(|f| f.split(',').next())
            .unwrap_or_default();
        let without_port = match url::Url::parse(first) {
            Ok(mut u) => {
                let _ = u.set_port(None);
                u.to_string().trim_end_matches('/').to_owned()
            }
            Err(_) => first.to_owned(),
        };
        let host = world::hosts_of(first)
            .into_iter()
            .next()
            .unwrap_or_default();
        let name = magic_name(&c.name);
        let mut pairs = vec![
            (format!("SERVICE_URL_{name}"), without_port.clone()),
            (format!("SERVICE_FQDN_{name}"), host.clone()),
        ];
        if let Some(p) = c.port {
            pairs.push((
                format!("SERVICE_URL_{name}_{p}"),
                format!("{without_port}:{p}"),
            ));
            pairs.push((format!("SERVICE_FQDN_{name}_{p}"), format!("{host}:{p}")));
        }
        for (key, value) in pairs {
            env::upsert_service_key(tx, svc.id, &key, Some(&value))?;
        }
    }
    Ok(())
}

/// Symfony's `Yaml::dump` of a document, approximately: block style, two
/// spaces, strings that need it in double quotes. Never the bytes that
/// were sent.
fn yaml_dump(v: &Value, indent: usize) -> String {
    fn scalar(v: &Value) -> String {
        match v {
            Value::Null => "null".into(),
            Value::String(s) => {
                let plain = !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'))
                    && !matches!(
                        crate::spec::compose_document(s),
                        Some(Value::Number(_) | Value::Bool(_) | Value::Null)
                    );
                if plain {
                    s.clone()
                } else {
                    serde_json::to_string(s).unwrap_or_default()
                }
            }
            other => other.to_string(),
        }
    }
    let pad = " ".repeat(indent);
    let mut out = String::new();
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                let key = scalar(&Value::String(k.clone()));
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n{}", yaml_dump(item, indent + 2)));
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n{}", yaml_dump(item, indent + 2)));
                    }
                    Value::Object(_) => out.push_str(&format!("{pad}{key}: {{}}\n")),
                    Value::Array(_) => out.push_str(&format!("{pad}{key}: []\n")),
                    _ => out.push_str(&format!("{pad}{key}: {}\n", scalar(item))),
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::Object(m) if !m.is_empty() => {
                        let inner = yaml_dump(item, indent + 2);
                        out.push_str(&format!("{pad}- {}", inner.trim_start()));
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}-\n{}", yaml_dump(item, indent + 2)));
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
    out
}

/// `applyServiceUrls` (`SC:117-207`): every URL must be http(s) with a
/// host and appear once; each `name` must be an application container.
/// The errors, as the list Coolify answers with.
fn apply_urls(svc: &mut ServiceRow, urls: &[Value]) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let mut seen = Vec::new();
    for item in urls {
        let url = item.get("url").and_then(Value::as_str).unwrap_or_default();
        for u in url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let ok = url::Url::parse(u)
                .ok()
                .is_some_and(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some());
            if !ok {
                errors.push(format!("Invalid URL: {u}"));
            } else if seen.contains(&u.to_owned()) {
                errors.push(format!(
                    "The current request contains conflicting URLs across containers: {u}. Use force_domain_override=true to proceed."
                ));
            }
            seen.push(u.to_owned());
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut containers = svc.containers();
    for item in urls {
        let name = item.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            errors.push("Service container name is required to apply URLs.".into());
            continue;
        }
        // `$service->applications()->where('name', $name)` (`SC:155`): a
        // database container is no match.
        let Some(c) = containers
            .iter_mut()
            .find(|c| c.name == name && !c.database)
        else {
            errors.push(format!("Service container with '{name}' not found."));
            continue;
        };
        let url = item.get("url").and_then(Value::as_str).unwrap_or_default();
        let list: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .collect();
        c.fqdn = (!list.is_empty()).then(|| list.join(","));
    }
    svc.set_containers(&containers);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_urls_shape(body: &Map<String, Value>) -> Result<(), Fail> {
    if let Some(Value::Array(items)) = body.get("urls") {
        for item in items {
            let shape_ok = item
                .as_object()
                .is_some_and(|m| m.keys().all(|k| k == "name" || k == "url"));
            if !shape_ok {
                return Err(invalid_field(
                    "urls",
                    "An item in the urls array has invalid fields. Only name and url fields are supported.",
                )
                .into());
            }
        }
    }
    Ok(())
}

/// `POST /services` (`SC:360-775 @4.3.11`).
pub(super) fn create(tx: &Tx<'_>, ctx: &Ctx, call: &Call) -> Outcome {
    let body = call.json_object()?;
    if ctx.echo_422 {
        return Err(echo(&Value::Object(body)).into());
    }
    let accepted: Vec<Field> = fields::create_service(ctx.version);
    check_fields(&body, &accepted, &[], &["project_uuid", "server_uuid"])?;
    check_urls_shape(&body)?;
    let service_type = str_field(&body, "type");
    let raw = str_field(&body, "docker_compose_raw");
    if service_type.is_some() && raw.is_some() {
        return Err(message(
            422,
            "You cannot provide both service type and docker_compose_raw. Use one or the other.",
        )
        .into());
    }
    let place = project::resolve_place(tx, &body)?;
    match (service_type, raw) {
        (None, None) => {
            return Err(message(422, "No service type or docker_compose_raw provided.").into());
        }
        // `SC:769-774`: an unknown type without compose.
        (Some(t), None) if crate::spec::services::template(t).is_none() => {
            let valid: Vec<&str> = crate::spec::services::types().collect();
            return Ok(Reply::json(
                404,
                json!({"message": "Invalid service type.", "valid_service_types": valid}),
            ));
        }
        _ => {}
    }
    let uuid = tx.uuid()?;
    let mut svc = ServiceRow {
        id: 0,
        uuid: uuid.clone(),
        environment_id: place.environment_id,
        destination_id: place.destination_id,
        attrs: Map::new(),
        running_from: None,
        stopped: false,
        created_at: tx.now,
        updated_at: tx.now,
        gone_at: None,
    };
    for key in ["name", "description"] {
        if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
            svc.attrs.insert(key.into(), v.clone());
        }
    }
    if let Some(v) = bool_field(&body, "is_container_label_escape_enabled") {
        svc.attrs
            .insert("is_container_label_escape_enabled".into(), json!(v));
    }
    if let Some(text) = raw {
        let Some(compose) = decode_base64(text) else {
            let mut errors = Map::new();
            errors.insert(
                "docker_compose_raw".into(),
                json!("The docker_compose_raw should be base64 encoded."),
            );
            return Err(invalid(errors).into());
        };
        svc.attrs
            .insert("docker_compose_raw".into(), json!(compose));
    }
    if let Some(t) = service_type {
        svc.attrs.insert("service_type".into(), json!(t));
    }
    if svc.attr("name").is_none() {
        let base = service_type.unwrap_or("service");
        svc.attrs
            .insert("name".into(), json!(format!("{base}-{uuid}")));
    }
    tx.execute(
        "INSERT INTO service (uuid, environment_id, destination_id, attrs, running_from, stopped, created_at, updated_at) VALUES (?1, ?2, ?3, '{}', NULL, 0, ?4, ?4)",
        params![svc.uuid, svc.environment_id, svc.destination_id, tx.now],
    )?;
    svc.id = tx.last_insert_rowid();
    parse(tx, &mut svc)?;
    if let Some(Value::Array(urls)) = body.get("urls")
        && let Err(errors) = apply_urls(&mut svc, urls)
    {
        // The service is deleted, and the errors come back as a list
        // (`SC:545-554`).
        tx.execute(
            "DELETE FROM env_var WHERE resource = 'service' AND resource_id = ?1",
            [svc.id],
        )?;
        tx.execute("DELETE FROM service WHERE id = ?1", [svc.id])?;
        return Err(invalid_list(errors).into());
    }
    if !bool_field(&body, "force_domain_override").unwrap_or(false)
        && let Err(conflict) = project::check_domain_conflicts(tx, &svc.hosts(), Some(&svc.uuid))
    {
        tx.execute(
            "DELETE FROM env_var WHERE resource = 'service' AND resource_id = ?1",
            [svc.id],
        )?;
        tx.execute("DELETE FROM service WHERE id = ?1", [svc.id])?;
        return Err(conflict);
    }
    if bool_field(&body, "instant_deploy").unwrap_or(false) {
        begin_start(&mut svc, ctx, tx.now);
    }
    svc.save(tx)?;
    if let Some(tags) = body.get("tags").and_then(Value::as_array) {
        let names: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
        project::attach_tags(tx, Owner::Service, svc.id, &names)?;
    }
    // `domains`: the containers' fqdns, sorted; no `urls` (`SC:581-584`).
    Ok(Reply::json(
        201,
        json!({"uuid": uuid, "domains": domains(&svc)}),
    ))
}

/// The containers' fqdn values, sorted, as the replies list them.
fn domains(svc: &ServiceRow) -> Vec<String> {
    let mut out: Vec<String> = svc
        .containers()
        .into_iter()
        .filter_map(|c| c.fqdn)
        .collect();
    out.sort();
    out
}

/// `PATCH /services/{uuid}` (`SC:1175-1290`): the URLs of the containers
/// found are applied even when others are not (no undo).
pub(super) fn update(tx: &Tx<'_>, ctx: &Ctx, call: &Call, uuid: &str) -> Outcome {
    let body = call.json_object()?;
    let mut svc = find(tx, uuid)?;
    check_fields(&body, fields::UPDATE_SERVICE, &[], &[])?;
    check_urls_shape(&body)?;
    if body.contains_key("docker_compose_raw") {
        let Some(compose) = str_field(&body, "docker_compose_raw").and_then(decode_base64) else {
            let mut errors = Map::new();
            errors.insert(
                "docker_compose_raw".into(),
                json!("The docker_compose_raw should be base64 encoded."),
            );
            return Err(invalid(errors).into());
        };
        svc.attrs
            .insert("docker_compose_raw".into(), json!(compose));
    }
    for key in ["name", "description"] {
        if let Some(v) = body.get(key) {
            svc.attrs.insert(key.into(), v.clone());
        }
    }
    for key in [
        "connect_to_docker_network",
        "is_container_label_escape_enabled",
    ] {
        if let Some(v) = bool_field(&body, key) {
            svc.attrs.insert(key.into(), json!(v));
        }
    }
    svc.updated_at = tx.now;
    parse(tx, &mut svc)?;
    if let Some(Value::Array(urls)) = body.get("urls") {
        let result = apply_urls(&mut svc, urls);
        svc.save(tx)?;
        if let Err(errors) = result {
            return Err(invalid_list(errors).into());
        }
        if !bool_field(&body, "force_domain_override").unwrap_or(false) {
            project::check_domain_conflicts(tx, &svc.hosts(), Some(&svc.uuid))?;
        }
    }
    if bool_field(&body, "instant_deploy").unwrap_or(false) {
        begin_start(&mut svc, ctx, tx.now);
    }
    svc.save(tx)?;
    Ok(Reply::json(
        200,
        json!({"uuid": svc.uuid, "domains": domains(&svc)}),
    ))
}

/// `DELETE /services/{uuid}`.
pub(super) fn delete(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    let mut svc = find(tx, uuid)?;
    if svc.gone_at.is_none() {
        svc.gone_at = Some(tx.now + ctx.delete_ms);
        svc.stopped = true;
        svc.save(tx)?;
    }
    Ok(message(200, "Service deletion request queued."))
}

/// A start: the containers' state and last check before it are kept (the
/// stale status until the next check), and the containers are recreated
/// when it finishes.
fn begin_start(svc: &mut ServiceRow, ctx: &Ctx, now: i64) {
    let (_, checked) = svc.container_status(ctx, now);
    let was_running = svc.running(now);
    svc.attrs
        .insert("previous_running".into(), json!(was_running));
    svc.attrs.insert("previous_check".into(), json!(checked));
    svc.attrs
        .insert("start_fails".into(), json!(ctx.deploy_fail));
    svc.stopped = false;
    svc.running_from = Some(now + ctx.queue_ms + ctx.deploy_ms);
}

/// Starts a service by uuid (`StartService`, also `/deploy`): parses it
/// first (`app/Actions/Service/StartService.php:21`), so generated
/// variables that were deleted come back with new values. Its name, or
/// `None` when there is no such service.
pub(crate) fn start_by_uuid(
    tx: &Tx<'_>,
    ctx: &Ctx,
    uuid: &str,
) -> rusqlite::Result<Option<String>> {
    let Some(mut svc) = find_optional(tx, uuid)? else {
        return Ok(None);
    };
    parse(tx, &mut svc)?;
    begin_start(&mut svc, ctx, tx.now);
    svc.updated_at = tx.now;
    svc.save(tx)?;
    Ok(Some(svc.name().to_owned()))
}

/// `POST /services/{uuid}/start`: refused while running (`SC:2092-2094`).
pub(super) fn start(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    let svc = find(tx, uuid)?;
    if svc.status(ctx, tx.now).contains("running") {
        return Ok(message(400, "Service is already running."));
    }
    start_by_uuid(tx, ctx, uuid)?;
    Ok(message(200, "Service starting request queued."))
}

/// `POST /services/{uuid}/restart` (the message's typo is the server's).
pub(super) fn restart(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    find(tx, uuid)?;
    start_by_uuid(tx, ctx, uuid)?;
    Ok(message(200, "Service restaring request queued."))
}

/// `POST /services/{uuid}/stop`.
pub(super) fn stop(tx: &Tx<'_>, uuid: &str) -> Outcome {
    let mut svc = find(tx, uuid)?;
    svc.stopped = true;
    svc.updated_at = tx.now;
    svc.save(tx)?;
    Ok(message(200, "Service stopping request queued."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_references_are_found() {
        assert_eq!(
            referenced("postgres://u:${SERVICE_PASSWORD_DB}@db/$SERVICE_USER_DB"),
            vec!["SERVICE_PASSWORD_DB", "SERVICE_USER_DB"]
        );
        assert!(referenced("${OTHER}").is_empty());
    }

    #[test]
    fn declared_ports() {
        assert_eq!(declared_port("SERVICE_URL_GHOST_2368"), Some(Some(2368)));
        assert_eq!(declared_port("SERVICE_FQDN_APP"), Some(None));
        assert_eq!(declared_port("OTHER"), None);
    }

    #[test]
    fn a_dump_reads_back_as_the_same_document() {
        let text = "# c\nservices:\n  web:\n    image: 'nginx:1.27'\n    ports: [\"80\"]\n    environment:\n      A: \"1\"\n      B: yes\n      C: ''\n    command: [sh, -c, 'echo hi']\nvolumes:\n  data: {}\n";
        let doc = crate::spec::compose_document(text).unwrap();
        let dumped = yaml_dump(&doc, 0);
        assert_ne!(dumped, text);
        assert_eq!(crate::spec::compose_document(&dumped), Some(doc));
    }

    #[test]
    fn databases_by_name_or_image() {
        assert!(is_database("db", "mariadb:11"));
        assert!(is_database("x", "postgres:16-alpine"));
        assert!(!is_database("wordpress", "wordpress:6"));
    }
}
