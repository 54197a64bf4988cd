//! Where resources live (projects, environments, servers, destinations),
//! tags, the team, and the checks every create shares (placement, domain
//! conflicts).

use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value, json};

use super::fields::{Field, Kind};
use super::{
    Call, Ctx, Owner, application, check_fields, invalid_field, message, service, str_field,
};
use crate::sandbox::reply::{Fail, Outcome, Reply};
use crate::sandbox::store::{Tx, timestamp};

/// Where a new resource goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    pub(crate) environment_id: i64,
    pub(crate) destination_id: i64,
}

/// Resolves project, environment, server and destination of a create call,
/// with the server's 422/404/400 answers.
pub(crate) fn resolve_place(tx: &Tx<'_>, body: &Map<String, Value>) -> Result<Place, Fail> {
    let env_name = str_field(body, "environment_name");
    let env_uuid = str_field(body, "environment_uuid");
    if env_name.is_none() && env_uuid.is_none() {
        return Err(message(
            422,
            "You need to provide at least one of environment_name or environment_uuid.",
        )
        .into());
    }
    let project_uuid = str_field(body, "project_uuid").unwrap_or_default();
    let project: Option<i64> = tx
        .query_row(
            "SELECT id FROM project WHERE uuid = ?1",
            [project_uuid],
            |r| r.get(0),
        )
        .optional()?;
    let Some(project) = project else {
        return Err(message(404, "Project not found.").into());
    };
    // By exact name first, then by uuid (`AC:1300-1302 @4.3.11`); names are
    // stored lower-cased, so `Production` finds nothing.
    let by = |column: &str, value: Option<&str>| -> rusqlite::Result<Option<i64>> {
        tx.query_row(
            &format!("SELECT id FROM environment WHERE project_id = ?1 AND {column} = ?2"),
            params![project, value.unwrap_or("\u{0}")],
            |r| r.get(0),
        )
        .optional()
    };
    let environment = match by("name", env_name)? {
        Some(id) => Some(id),
        None => by("uuid", env_uuid)?,
    };
    let Some(environment_id) = environment else {
        return Err(message(404, "Environment not found.").into());
    };
    let server_uuid = str_field(body, "server_uuid").unwrap_or_default();
    let server: Option<i64> = tx
        .query_row(
            "SELECT id FROM server WHERE uuid = ?1",
            [server_uuid],
            |r| r.get(0),
        )
        .optional()?;
    let Some(server) = server else {
        return Err(message(404, "Server not found.").into());
    };
    let destinations: Vec<(i64, String)> = {
        let mut stmt =
            tx.prepare_cached("SELECT id, uuid FROM destination WHERE server_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map([server], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    // `AC:1316-1334 @4.3.11` (the same at `AC:1009-1020 @4.1.0`): with one
    // destination, `destination_uuid` is ignored; with several it must be
    // one of their uuids (a name is refused).
    let destination_id = match (destinations.as_slice(), str_field(body, "destination_uuid")) {
        ([], _) => return Err(message(400, "Server has no destinations.").into()),
        ([(id, _)], _) => *id,
        (_, None) => {
            return Err(message(
                400,
                "Server has multiple destinations and you do not set destination_uuid.",
            )
            .into());
        }
        (many, Some(uuid)) => match many.iter().find(|(_, u)| u == uuid) {
            Some((id, _)) => *id,
            None => {
                let mut errors = Map::new();
                errors.insert(
                    "destination_uuid".into(),
                    json!("Provided destination_uuid does not belong to the specified server."),
                );
                return Err(super::invalid(errors).into());
            }
        },
    };
    Ok(Place {
        environment_id,
        destination_id,
    })
}

/// 409 when another application or service already uses one of `hosts`.
pub(crate) fn check_domain_conflicts(
    tx: &Tx<'_>,
    hosts: &[String],
    except_uuid: Option<&str>,
) -> Result<(), Fail> {
    if hosts.is_empty() {
        return Ok(());
    }
    let mut conflicts = Vec::new();
    for app in application::live_app_rows(tx)? {
        if Some(app.uuid.as_str()) == except_uuid {
            continue;
        }
        for host in app.hosts() {
            if hosts.contains(&host) {
                conflicts.push(json!({
                    "domain": host,
                    "resource_name": app.name(),
                    "resource_uuid": app.uuid,
                    "resource_type": "application",
                    "message": format!("Domain {host} is already in use by application '{}'", app.name()),
                }));
            }
        }
    }
    for svc in service::live_service_rows(tx)? {
        if Some(svc.uuid.as_str()) == except_uuid {
            continue;
        }
        for host in svc.hosts() {
            if hosts.contains(&host) {
                conflicts.push(json!({
                    "domain": host,
                    "resource_name": svc.name(),
                    "resource_uuid": svc.uuid,
                    "resource_type": "service",
                    "message": format!("Domain {host} is already in use by service '{}'", svc.name()),
                }));
            }
        }
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    Err(Reply::json(
        409,
        json!({
            "message": "Domain conflicts detected. Use force_domain_override=true to proceed.",
            "conflicts": conflicts,
            "warning": "Using the same domain for multiple resources can cause routing conflicts and unpredictable behavior.",
        }),
    )
    .into())
}

fn server_json(tx: &Tx<'_>, id: i64) -> rusqlite::Result<Value> {
    let (mut server, created, updated) = tx.query_row(
        "SELECT id, uuid, name, description, ip, user, port, created_at, updated_at FROM server WHERE id = ?1",
        [id],
        |r| {
            let server = json!({
                "id": r.get::<_, i64>(0)?,
                "uuid": r.get::<_, String>(1)?,
                "name": r.get::<_, String>(2)?,
                "description": r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                "ip": r.get::<_, String>(4)?,
                "user": r.get::<_, String>(5)?,
                "port": r.get::<_, i64>(6)?,
                "proxy": {"type": "traefik", "status": "running"},
                "proxy_type": "traefik",
                "high_disk_usage_notification_sent": false,
                "unreachable_notification_sent": false,
                "unreachable_count": 0,
                "validation_logs": "",
                "log_drain_notification_sent": false,
                "swarm_cluster": "",
                "is_reachable": true,
                "is_usable": true,
            });
            Ok((server, r.get::<_, i64>(7)?, r.get::<_, i64>(8)?))
        },
    )?;
    let flags = [
        "force_disabled",
        "force_server_cleanup",
        "is_build_server",
        "is_cloudflare_tunnel",
        "is_jump_server",
        "is_logdrain_axiom_enabled",
        "is_logdrain_custom_enabled",
        "is_logdrain_highlight_enabled",
        "is_logdrain_newrelic_enabled",
        "is_metrics_enabled",
        "is_sentinel_enabled",
        "is_swarm_manager",
        "is_swarm_worker",
        "delete_unused_volumes",
        "delete_unused_networks",
    ];
    let mut settings = Map::new();
    for flag in flags {
        settings.insert(flag.into(), json!(false));
    }
    for (key, value) in [
        ("id", json!(id)),
        ("server_id", json!(id)),
        ("concurrent_builds", json!(2)),
        ("deployment_queue_limit", json!(25)),
        ("dynamic_timeout", json!(3600)),
        ("is_reachable", json!(true)),
        ("is_usable", json!(true)),
        ("is_terminal_enabled", json!(true)),
        ("sentinel_metrics_history_days", json!(7)),
        ("sentinel_metrics_refresh_rate_seconds", json!(10)),
        ("docker_cleanup_frequency", json!("0 0 * * *")),
        ("docker_cleanup_threshold", json!(80)),
        ("wildcard_domain", json!("")),
        ("connection_timeout", json!(10)),
        ("created_at", json!(timestamp(created))),
        ("updated_at", json!(timestamp(updated))),
    ] {
        settings.insert(key.into(), value);
    }
    if let Value::Object(map) = &mut server {
        map.insert("settings".into(), Value::Object(settings));
    }
    Ok(server)
}

fn server_id(tx: &Tx<'_>, uuid: &str) -> Result<i64, Fail> {
    tx.query_row("SELECT id FROM server WHERE uuid = ?1", [uuid], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| message(404, "Server not found.").into())
}

/// `GET /servers`.
pub(super) fn list_servers(tx: &Tx<'_>) -> Outcome {
    let ids: Vec<i64> = {
        let mut stmt = tx.prepare_cached("SELECT id FROM server ORDER BY id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let servers = ids
        .into_iter()
        .map(|id| server_json(tx, id))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Reply::json(200, Value::Array(servers)))
}

/// `GET /servers/{uuid}`.
pub(super) fn get_server(tx: &Tx<'_>, uuid: &str) -> Outcome {
    let id = server_id(tx, uuid)?;
    Ok(Reply::json(200, server_json(tx, id)?))
}

fn destinations(tx: &Tx<'_>, server: Option<i64>) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = tx.prepare_cached(
        "SELECT d.uuid, d.name, d.network, s.uuid, d.created_at, d.updated_at FROM destination d JOIN server s ON s.id = d.server_id WHERE ?1 IS NULL OR d.server_id = ?1 ORDER BY d.id",
    )?;
    let rows = stmt.query_map([server], |r| {
        Ok(json!({
            "uuid": r.get::<_, String>(0)?,
            "name": r.get::<_, String>(1)?,
            "network": r.get::<_, String>(2)?,
            "type": "standalone",
            "server_uuid": r.get::<_, String>(3)?,
            "created_at": timestamp(r.get(4)?),
            "updated_at": timestamp(r.get(5)?),
        }))
    })?;
    rows.collect()
}

/// `GET /servers/{uuid}/destinations`.
pub(super) fn server_destinations(tx: &Tx<'_>, uuid: &str) -> Outcome {
    let id = server_id(tx, uuid)?;
    Ok(Reply::json(200, Value::Array(destinations(tx, Some(id))?)))
}

/// `GET /destinations`.
pub(super) fn list_destinations(tx: &Tx<'_>) -> Outcome {
    Ok(Reply::json(200, Value::Array(destinations(tx, None)?)))
}

/// `GET /servers/{uuid}/domains`.
pub(super) fn server_domains(tx: &Tx<'_>, uuid: &str) -> Outcome {
    let id = server_id(tx, uuid)?;
    let ip: String = tx.query_row("SELECT ip FROM server WHERE id = ?1", [id], |r| r.get(0))?;
    let mut domains = Vec::new();
    for app in application::live_app_rows(tx)? {
        domains.extend(app.hosts());
    }
    for svc in service::live_service_rows(tx)? {
        domains.extend(svc.hosts());
    }
    Ok(Reply::json(200, json!([{"ip": ip, "domains": domains}])))
}

fn project_json(id: i64, uuid: String, name: String, description: Option<String>) -> Value {
    let mut out = json!({"id": id, "uuid": uuid, "name": name});
    if let (Some(d), Value::Object(map)) = (description, &mut out) {
        map.insert("description".into(), json!(d));
    }
    out
}

fn project_row(tx: &Tx<'_>, uuid: &str) -> Result<(i64, Value), Fail> {
    tx.query_row(
        "SELECT id, uuid, name, description FROM project WHERE uuid = ?1",
        [uuid],
        |r| {
            Ok((
                r.get(0)?,
                project_json(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
            ))
        },
    )
    .optional()?
    .ok_or_else(|| message(404, "Project not found.").into())
}

/// `GET /projects`.
pub(super) fn list_projects(tx: &Tx<'_>) -> Outcome {
    let mut stmt =
        tx.prepare_cached("SELECT id, uuid, name, description FROM project ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(project_json(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    let projects = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(Reply::json(200, Value::Array(projects)))
}

const PROJECT_FIELDS: &[Field] = &[("name", Kind::Str), ("description", Kind::Str)];

/// `POST /projects`.
pub(super) fn create_project(tx: &Tx<'_>, call: &Call) -> Outcome {
    let body = call.json_object()?;
    check_fields(&body, PROJECT_FIELDS, &[], &["name"])?;
    let uuid = tx.uuid()?;
    tx.execute(
        "INSERT INTO project (uuid, name, description, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![uuid, str_field(&body, "name"), str_field(&body, "description"), tx.now],
    )?;
    // Coolify gives every new project a `production` environment.
    let project = tx.last_insert_rowid();
    tx.execute(
        "INSERT INTO environment (uuid, project_id, name, created_at, updated_at) VALUES (?1, ?2, 'production', ?3, ?3)",
        params![tx.uuid()?, project, tx.now],
    )?;
    Ok(Reply::json(201, json!({"uuid": uuid})))
}

fn environments(tx: &Tx<'_>, project: i64) -> rusqlite::Result<Vec<(i64, Value)>> {
    let mut stmt = tx.prepare_cached(
        "SELECT id, uuid, name, project_id, description, created_at, updated_at FROM environment WHERE project_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([project], |r| {
        let mut env = json!({
            "id": r.get::<_, i64>(0)?,
            "uuid": r.get::<_, String>(1)?,
            "name": r.get::<_, String>(2)?,
            "project_id": r.get::<_, i64>(3)?,
            "created_at": timestamp(r.get(5)?),
            "updated_at": timestamp(r.get(6)?),
        });
        if let (Some(d), Value::Object(map)) = (r.get::<_, Option<String>>(4)?, &mut env) {
            map.insert("description".into(), json!(d));
        }
        Ok((r.get(0)?, env))
    })?;
    rows.collect()
}

/// `GET /projects/{uuid}`: the project with its environments.
pub(super) fn get_project(tx: &Tx<'_>, uuid: &str) -> Outcome {
    let (id, mut project) = project_row(tx, uuid)?;
    let envs: Vec<Value> = environments(tx, id)?.into_iter().map(|(_, v)| v).collect();
    if let Value::Object(map) = &mut project {
        map.insert("environments".into(), Value::Array(envs));
    }
    Ok(Reply::json(200, project))
}

/// `GET /projects/{uuid}/environments`.
pub(super) fn list_environments(tx: &Tx<'_>, uuid: &str) -> Outcome {
    let (id, _) = project_row(tx, uuid)?;
    let envs: Vec<Value> = environments(tx, id)?.into_iter().map(|(_, v)| v).collect();
    Ok(Reply::json(200, Value::Array(envs)))
}

/// `POST /projects/{uuid}/environments`.
pub(super) fn create_environment(tx: &Tx<'_>, call: &Call, uuid: &str) -> Outcome {
    let body = call.json_object()?;
    let (id, _) = project_row(tx, uuid)?;
    check_fields(&body, &[("name", Kind::Str)], &[], &["name"])?;
    // `Environment::customizeName()`: lower-cased, trimmed, `/` → `-`
    // (`app/Models/Environment.php:143-146 @4.3.11`, through
    // `HasSafeStringAttribute::setNameAttribute`).
    let name = str_field(&body, "name")
        .unwrap_or_default()
        .to_lowercase()
        .replace('/', "-");
    let exists: Option<i64> = tx
        .query_row(
            "SELECT id FROM environment WHERE project_id = ?1 AND name = ?2",
            params![id, name],
            |r| r.get(0),
        )
        .optional()?;
    if exists.is_some() {
        return Ok(message(409, "Environment with this name already exists."));
    }
    let env_uuid = tx.uuid()?;
    tx.execute(
        "INSERT INTO environment (uuid, project_id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)",
        params![env_uuid, id, name, tx.now],
    )?;
    Ok(Reply::json(201, json!({"uuid": env_uuid})))
}

/// `GET /projects/{uuid}/{environment_name_or_uuid}`: the environment with
/// the resources in it (the best call to find resources by name).
pub(super) fn get_environment(tx: &Tx<'_>, ctx: &Ctx, project: &str, env: &str) -> Outcome {
    let (project_id, _) = project_row(tx, project)?;
    let Some((env_id, mut out)) = environments(tx, project_id)?
        .into_iter()
        .find(|(_, v)| v["uuid"] == env || v["name"] == env)
    else {
        return Ok(message(404, "Environment not found."));
    };
    let mut apps = Vec::new();
    for app in application::live_app_rows(tx)? {
        if app.environment_id == env_id {
            apps.push(application::render(tx, ctx, &app)?);
        }
    }
    let mut services = Vec::new();
    for svc in service::live_service_rows(tx)? {
        if svc.environment_id == env_id {
            services.push(service::render(tx, ctx, &svc, false)?);
        }
    }
    if let Value::Object(map) = &mut out {
        map.insert("applications".into(), Value::Array(apps));
        map.insert("services".into(), Value::Array(services));
        for empty in [
            "postgresqls",
            "redis",
            "mongodbs",
            "mysqls",
            "mariadbs",
            "keydbs",
            "dragonflies",
            "clickhouses",
        ] {
            map.insert(empty.into(), json!([]));
        }
    }
    Ok(Reply::json(200, out))
}

/// `GET /resources`: every application and service with `type`.
pub(super) fn list_resources(tx: &Tx<'_>, ctx: &Ctx) -> Outcome {
    let mut out = Vec::new();
    for app in application::live_app_rows(tx)? {
        let mut v = application::render(tx, ctx, &app)?;
        if let Value::Object(map) = &mut v {
            map.insert("type".into(), json!("application"));
        }
        out.push(v);
    }
    for svc in service::live_service_rows(tx)? {
        let mut v = service::render(tx, ctx, &svc, false)?;
        if let Value::Object(map) = &mut v {
            map.insert("type".into(), json!("service"));
        }
        out.push(v);
    }
    Ok(Reply::json(200, Value::Array(out)))
}

/// `GET /team`.
pub(super) fn team(tx: &Tx<'_>) -> Outcome {
    let created: i64 = tx.query_row("SELECT min(created_at) FROM project", [], |r| r.get(0))?;
    Ok(Reply::json(
        200,
        json!({
            "id": 0,
            "name": "Root Team",
            "personal_team": false,
            "show_boarding": false,
            "created_at": timestamp(created),
            "updated_at": timestamp(created),
            "members": [],
        }),
    ))
}

fn tag_json(uuid: String, name: String, created: i64, updated: i64) -> Value {
    json!({
        "uuid": uuid,
        "name": name,
        "created_at": timestamp(created),
        "updated_at": timestamp(updated),
    })
}

/// `GET /tags`.
pub(super) fn list_tags(tx: &Tx<'_>) -> Outcome {
    let mut stmt =
        tx.prepare_cached("SELECT uuid, name, created_at, updated_at FROM tag ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(tag_json(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(Reply::json(
        200,
        Value::Array(rows.collect::<rusqlite::Result<_>>()?),
    ))
}

/// Tag names as Coolify stores them: trimmed, without HTML, lower-case,
/// at least two characters.
fn normalize_tag(name: &str) -> Option<String> {
    let mut plain = String::new();
    let mut in_tag = false;
    for c in name.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let tag = plain.trim().to_lowercase();
    (tag.chars().count() >= 2).then_some(tag)
}

fn tag_id(tx: &Tx<'_>, name: &str) -> rusqlite::Result<i64> {
    let existing: Option<i64> = tx
        .query_row("SELECT id FROM tag WHERE name = ?1", [name], |r| r.get(0))
        .optional()?;
    match existing {
        Some(id) => Ok(id),
        None => {
            tx.execute(
                "INSERT INTO tag (uuid, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                params![tx.uuid()?, name, tx.now],
            )?;
            Ok(tx.last_insert_rowid())
        }
    }
}

/// `POST /tags`.
pub(super) fn create_tag(tx: &Tx<'_>, call: &Call) -> Outcome {
    let body = call.json_object()?;
    check_fields(&body, &[("name", Kind::Str)], &[], &["name"])?;
    let Some(name) = normalize_tag(str_field(&body, "name").unwrap_or_default()) else {
        return Err(invalid_field("name", "The name field must be at least 2 characters.").into());
    };
    let exists: Option<i64> = tx
        .query_row("SELECT id FROM tag WHERE name = ?1", [&name], |r| r.get(0))
        .optional()?;
    if exists.is_some() {
        return Ok(message(409, "Tag with this name already exists."));
    }
    let id = tag_id(tx, &name)?;
    let tag = tx.query_row(
        "SELECT uuid, name, created_at, updated_at FROM tag WHERE id = ?1",
        [id],
        |r| Ok(tag_json(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(Reply::json(201, tag))
}

/// Adds tags (created when missing) to a resource.
pub(crate) fn attach_tags(
    tx: &Tx<'_>,
    owner: Owner,
    id: i64,
    names: &[&str],
) -> rusqlite::Result<()> {
    for name in names.iter().filter_map(|n| normalize_tag(n)) {
        let tag = tag_id(tx, &name)?;
        tx.execute(
            "INSERT OR IGNORE INTO resource_tag (resource, resource_id, tag_id) VALUES (?1, ?2, ?3)",
            params![owner.column(), id, tag],
        )?;
    }
    Ok(())
}

/// The tag names of a resource, sorted.
pub(crate) fn tag_names(tx: &Tx<'_>, owner: Owner, id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = tx.prepare_cached(
        "SELECT t.name FROM resource_tag rt JOIN tag t ON t.id = rt.tag_id WHERE rt.resource = ?1 AND rt.resource_id = ?2 ORDER BY t.name",
    )?;
    let rows = stmt.query_map(params![owner.column(), id], |r| r.get(0))?;
    rows.collect()
}

/// Whether a resource carries the tag named exactly `name`.
pub(crate) fn has_tag(tx: &Tx<'_>, owner: Owner, id: i64, name: &str) -> rusqlite::Result<bool> {
    Ok(tag_names(tx, owner, id)?.iter().any(|t| t == name))
}

/// The uuids of applications and services carrying a tag.
pub(crate) fn uuids_with_tag(tx: &Tx<'_>, name: &str) -> rusqlite::Result<Vec<String>> {
    let mut out = Vec::new();
    for app in application::live_app_rows(tx)? {
        if has_tag(tx, Owner::Application, app.id, name)? {
            out.push(app.uuid);
        }
    }
    for svc in service::live_service_rows(tx)? {
        if has_tag(tx, Owner::Service, svc.id, name)? {
            out.push(svc.uuid);
        }
    }
    Ok(out)
}

fn resource_tag_list(tx: &Tx<'_>, owner: Owner, id: i64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = tx.prepare_cached(
        "SELECT t.uuid, t.name, t.created_at, t.updated_at FROM resource_tag rt JOIN tag t ON t.id = rt.tag_id WHERE rt.resource = ?1 AND rt.resource_id = ?2 ORDER BY t.name",
    )?;
    let rows = stmt.query_map(params![owner.column(), id], |r| {
        Ok(tag_json(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    rows.collect()
}

/// `GET /{applications|services}/{uuid}/tags`.
pub(super) fn resource_tags(tx: &Tx<'_>, owner: Owner, uuid: &str) -> Outcome {
    let id = owner.find_id(tx, uuid)?;
    Ok(Reply::json(
        200,
        Value::Array(resource_tag_list(tx, owner, id)?),
    ))
}

/// `POST /{applications|services}/{uuid}/tags` with `tag_name` or
/// `tag_names`: adds without removing.
pub(super) fn add_resource_tags(tx: &Tx<'_>, call: &Call, owner: Owner, uuid: &str) -> Outcome {
    let body = call.json_object()?;
    let id = owner.find_id(tx, uuid)?;
    check_fields(
        &body,
        &[("tag_name", Kind::Str), ("tag_names", Kind::StrList)],
        &[],
        &[],
    )?;
    let mut names: Vec<String> = Vec::new();
    if let Some(name) = str_field(&body, "tag_name") {
        names.push(name.to_owned());
    }
    if let Some(list) = body.get("tag_names").and_then(Value::as_array) {
        names.extend(list.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    if names.is_empty() {
        return Err(invalid_field(
            "tag_name",
            "The tag name field is required when tag names is not present.",
        )
        .into());
    }
    if let Some(short) = names.iter().find(|n| normalize_tag(n).is_none()) {
        return Err(invalid_field(
            "tag_names",
            format!("The tag name '{short}' must be at least 2 characters."),
        )
        .into());
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    attach_tags(tx, owner, id, &refs)?;
    Ok(Reply::json(
        201,
        Value::Array(resource_tag_list(tx, owner, id)?),
    ))
}

/// `DELETE /{applications|services}/{uuid}/tags/{tag_uuid}`: an orphaned
/// tag is deleted.
pub(super) fn remove_resource_tag(
    tx: &Tx<'_>,
    owner: Owner,
    uuid: &str,
    tag_uuid: &str,
) -> Outcome {
    let id = owner.find_id(tx, uuid)?;
    let tag: Option<i64> = tx
        .query_row("SELECT id FROM tag WHERE uuid = ?1", [tag_uuid], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(tag) = tag else {
        return Ok(message(404, "Tag not found."));
    };
    let removed = tx.execute(
        "DELETE FROM resource_tag WHERE resource = ?1 AND resource_id = ?2 AND tag_id = ?3",
        params![owner.column(), id, tag],
    )?;
    if removed == 0 {
        return Ok(message(404, "Tag not found."));
    }
    tx.execute(
        "DELETE FROM tag WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM resource_tag WHERE tag_id = ?1)",
        [tag],
    )?;
    Ok(message(200, "Tag removed."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalised_like_coolify() {
        assert_eq!(normalize_tag("  Fabrik-Blog "), Some("fabrik-blog".into()));
        assert_eq!(normalize_tag("<b>Prod</b>"), Some("prod".into()));
        assert_eq!(normalize_tag("x"), None);
    }
}
