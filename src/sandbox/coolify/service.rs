//! Services (one-click templates or raw compose): create, read, update,
//! delete (asynchronous), start, stop, restart. Services get no deployment
//! rows; their status is read off `running_from`.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Map, Value, json};

use super::fields::{self, Field};
use super::project;
use super::{
    Call, Ctx, Owner, bool_field, check_fields, decode_base64, echo, invalid_field, message,
    short_digest, str_field,
};
use crate::sandbox::reply::{Fail, Outcome, Reply};
use crate::sandbox::store::{Tx, timestamp};
use crate::sandbox::world;

/// The one-click templates the sandbox knows (a real server has about 340;
/// these cover the common ones).
const TEMPLATES: &[&str] = &[
    "ghost",
    "gitea",
    "minio",
    "n8n",
    "nocodb",
    "plausible",
    "umami",
    "uptime-kuma",
    "vaultwarden",
    "whoami",
    "wordpress-with-mariadb",
    "wordpress-with-mysql",
    "wordpress-without-database",
];

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

    /// The configured URLs.
    pub(crate) fn urls(&self) -> Vec<String> {
        self.attrs
            .get("urls")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.get("url").and_then(Value::as_str))
                    .flat_map(|u| u.split(','))
                    .map(|u| u.trim().to_owned())
                    .filter(|u| !u.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The host names it answers on.
    pub(crate) fn hosts(&self) -> Vec<String> {
        self.urls()
            .iter()
            .flat_map(|u| world::hosts_of(u))
            .collect()
    }

    /// Whether its containers run at `now`.
    pub(crate) fn running(&self, now: i64) -> bool {
        !self.stopped && self.gone_at.is_none() && self.running_from.is_some_and(|t| t <= now)
    }

    /// What it runs, as the app listener reports it.
    pub(crate) fn artifact(&self) -> String {
        match (self.attr("service_type"), self.attr("docker_compose_raw")) {
            (Some(t), _) => format!("service template {t}"),
            (None, Some(compose)) => format!("compose {}", short_digest(compose)),
            (None, None) => "compose (empty)".to_owned(),
        }
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

/// The Service object.
pub(crate) fn render(tx: &Tx<'_>, _ctx: &Ctx, svc: &ServiceRow) -> rusqlite::Result<Value> {
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
        "docker_compose_raw": compose,
        "docker_compose": compose,
        "connect_to_docker_network": svc.attrs.get("connect_to_docker_network").and_then(Value::as_bool).unwrap_or(false),
        "is_container_label_escape_enabled": svc.attrs.get("is_container_label_escape_enabled").and_then(Value::as_bool).unwrap_or(true),
        "is_container_label_readonly_enabled": true,
        "config_hash": short_digest(compose),
        "status": if svc.running(tx.now) { "running:healthy" } else { "exited:unhealthy" },
        "created_at": timestamp(svc.created_at),
        "updated_at": timestamp(svc.updated_at),
    });
    if let Value::Object(map) = &mut out {
        for key in ["description", "service_type"] {
            if let Some(v) = svc.attr(key) {
                map.insert(key.into(), json!(v));
            }
        }
        map.insert("urls".into(), json!(svc.urls()));
    }
    Ok(out)
}

/// `GET /services`.
pub(super) fn list(tx: &Tx<'_>, ctx: &Ctx) -> Outcome {
    let mut out = Vec::new();
    for svc in live_service_rows(tx)? {
        out.push(render(tx, ctx, &svc)?);
    }
    Ok(Reply::json(200, Value::Array(out)))
}

/// `GET /services/{uuid}`.
pub(super) fn get(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    let svc = find(tx, uuid)?;
    Ok(Reply::json(200, render(tx, ctx, &svc)?))
}

/// Copies the editable fields of a create or update body.
fn apply_fields(svc: &mut ServiceRow, body: &Map<String, Value>) -> Result<(), Fail> {
    for key in ["name", "description"] {
        if let Some(v) = body.get(key) {
            svc.attrs.insert(key.into(), v.clone());
        }
    }
    for key in [
        "connect_to_docker_network",
        "is_container_label_escape_enabled",
    ] {
        if let Some(v) = bool_field(body, key) {
            svc.attrs.insert(key.into(), json!(v));
        }
    }
    if let Some(text) = str_field(body, "docker_compose_raw") {
        let Some(compose) = decode_base64(text) else {
            return Err(invalid_field(
                "docker_compose_raw",
                "The docker_compose_raw should be base64 encoded.",
            )
            .into());
        };
        svc.attrs
            .insert("docker_compose_raw".into(), json!(compose));
    }
    if let Some(urls) = body.get("urls").and_then(Value::as_array) {
        for item in urls {
            if let Some(url) = item.get("url").and_then(Value::as_str) {
                for u in url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
                    let ok = url::Url::parse(u)
                        .ok()
                        .is_some_and(|p| matches!(p.scheme(), "http" | "https"));
                    if !ok {
                        return Err(invalid_field("urls", format!("Invalid URL: {u}")).into());
                    }
                }
            }
        }
        svc.attrs.insert("urls".into(), Value::Array(urls.clone()));
    }
    Ok(())
}

/// `POST /services`.
pub(super) fn create(tx: &Tx<'_>, ctx: &Ctx, call: &Call) -> Outcome {
    let body = call.json_object()?;
    if ctx.echo_422 {
        return Err(echo(&Value::Object(body)).into());
    }
    let tags_allowed = ctx.at_least(4, 2, 0);
    let accepted: Vec<Field> = fields::CREATE_SERVICE
        .iter()
        .copied()
        .filter(|(name, _)| tags_allowed || *name != "tags")
        .collect();
    check_fields(&body, &accepted, &[], &["project_uuid", "server_uuid"])?;
    let service_type = str_field(&body, "type");
    match (service_type, str_field(&body, "docker_compose_raw")) {
        (Some(_), Some(_)) => {
            return Err(message(
                422,
                "You cannot provide both service type and docker_compose_raw. Use one or the other.",
            )
            .into());
        }
        (None, None) => {
            return Err(message(422, "No service type or docker_compose_raw provided.").into());
        }
        (Some(t), None) if !TEMPLATES.contains(&t) => {
            return Ok(Reply::json(
                404,
                json!({"message": "Service not found.", "valid_service_types": TEMPLATES}),
            ));
        }
        _ => {}
    }
    let place = project::resolve_place(tx, &body)?;
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
    apply_fields(&mut svc, &body)?;
    if let Some(t) = service_type {
        svc.attrs.insert("service_type".into(), json!(t));
    }
    if svc.attr("name").is_none() {
        let base = service_type.unwrap_or("service");
        svc.attrs
            .insert("name".into(), json!(format!("{base}-{uuid}")));
    }
    if !bool_field(&body, "force_domain_override").unwrap_or(false) {
        project::check_domain_conflicts(tx, &svc.hosts(), None)?;
    }
    if bool_field(&body, "instant_deploy").unwrap_or(false) {
        svc.running_from = Some(tx.now + ctx.queue_ms + ctx.deploy_ms);
    }
    tx.execute(
        "INSERT INTO service (uuid, environment_id, destination_id, attrs, running_from, stopped, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
        params![
            svc.uuid,
            svc.environment_id,
            svc.destination_id,
            Value::Object(svc.attrs.clone()).to_string(),
            svc.running_from,
            tx.now
        ],
    )?;
    let id = tx.last_insert_rowid();
    if let Some(tags) = body.get("tags").and_then(Value::as_array) {
        let names: Vec<&str> = tags.iter().filter_map(Value::as_str).collect();
        project::attach_tags(tx, Owner::Service, id, &names)?;
    }
    Ok(Reply::json(
        201,
        json!({"uuid": uuid, "domains": svc.urls()}),
    ))
}

/// `PATCH /services/{uuid}`.
pub(super) fn update(tx: &Tx<'_>, ctx: &Ctx, call: &Call, uuid: &str) -> Outcome {
    let body = call.json_object()?;
    let mut svc = find(tx, uuid)?;
    check_fields(&body, fields::UPDATE_SERVICE, &[], &[])?;
    apply_fields(&mut svc, &body)?;
    if body.contains_key("urls") && !bool_field(&body, "force_domain_override").unwrap_or(false) {
        project::check_domain_conflicts(tx, &svc.hosts(), Some(&svc.uuid))?;
    }
    if bool_field(&body, "instant_deploy").unwrap_or(false) {
        svc.stopped = false;
        svc.running_from = Some(tx.now + ctx.queue_ms + ctx.deploy_ms);
    }
    svc.updated_at = tx.now;
    svc.save(tx)?;
    Ok(Reply::json(
        200,
        json!({"uuid": svc.uuid, "domains": svc.urls()}),
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

/// Starts a service by uuid (also used by `/deploy`); its name, or `None`
/// when there is no such service.
pub(crate) fn start_by_uuid(
    tx: &Tx<'_>,
    ctx: &Ctx,
    uuid: &str,
) -> rusqlite::Result<Option<String>> {
    let Some(mut svc) = find_optional(tx, uuid)? else {
        return Ok(None);
    };
    svc.stopped = false;
    svc.running_from = Some(tx.now + ctx.queue_ms + ctx.deploy_ms);
    svc.updated_at = tx.now;
    svc.save(tx)?;
    Ok(Some(svc.name().to_owned()))
}

/// `POST /services/{uuid}/start`.
pub(super) fn start(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    find(tx, uuid)?;
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
