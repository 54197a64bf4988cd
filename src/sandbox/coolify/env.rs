//! Environment variables of applications and services, with Coolify's
//! semantics (`AC:3312-3975`, `SC:1451-1880 @4.3.11`):
//!
//! - values arrive trimmed, an empty one as `null` (the input middleware,
//!   see [`super::laravel_input`]);
//! - application variables are identified by key and `is_preview`; a new
//!   non-preview one gets a preview copy with the same value and flags
//!   (`app/Models/EnvironmentVariable.php:95-119`); services have neither
//!   (their key alone identifies a variable);
//! - POST is not an upsert (409); PATCH and bulk items overwrite `value`
//!   (a missing one becomes null), reset `is_literal` when it is missing,
//!   set `is_multiline` and `is_shown_once` to what was sent, and change
//!   `is_runtime`, `is_buildtime` and `comment` only when sent
//!   (`AC:3365-3390`, `:3594-3670`); new ones default `is_runtime` and
//!   `is_buildtime` to true;
//! - bulk without `data` is a 400 (`AC:3557-3560`, `SC:1612-1613`), stops
//!   at the first bad item keeping the ones before it;
//! - values hidden without `read:sensitive`.
//!
//! Not simulated: a bulk request naming one key twice creates duplicates
//! on the real server (the relations are cached for the request).

use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Map, Value, json};

use super::fields::{Field, Kind};
use super::{Call, Ctx, Owner, check_fields, echo, invalid, message};
use crate::sandbox::reply::{Fail, Outcome, Reply};
use crate::sandbox::store::{Tx, timestamp};

/// Fields of the single create and update calls. `is_build_time` is not
/// among them: the server rejects it there (notes §13.5).
const FIELDS: &[Field] = &[
    ("key", Kind::Str),
    ("value", Kind::Str),
    ("is_preview", Kind::Bool),
    ("is_literal", Kind::Bool),
    ("is_multiline", Kind::Bool),
    ("is_shown_once", Kind::Bool),
    ("is_runtime", Kind::Bool),
    ("is_buildtime", Kind::Bool),
    ("comment", Kind::Str),
];

/// One `env_var` row.
#[derive(Debug, Clone)]
pub(crate) struct EnvRow {
    pub(crate) id: i64,
    pub(crate) uuid: String,
    pub(crate) resource_id: i64,
    pub(crate) key: String,
    pub(crate) value: Option<String>,
    pub(crate) is_preview: bool,
    pub(crate) is_literal: bool,
    pub(crate) is_multiline: bool,
    pub(crate) is_shown_once: bool,
    pub(crate) is_runtime: bool,
    pub(crate) is_buildtime: bool,
    pub(crate) comment: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

const COLUMNS: &str = "id, uuid, resource_id, key, value, is_preview, is_literal, is_multiline, is_shown_once, is_runtime, is_buildtime, comment, created_at, updated_at";

impl EnvRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            uuid: row.get(1)?,
            resource_id: row.get(2)?,
            key: row.get(3)?,
            value: row.get(4)?,
            is_preview: row.get(5)?,
            is_literal: row.get(6)?,
            is_multiline: row.get(7)?,
            is_shown_once: row.get(8)?,
            is_runtime: row.get(9)?,
            is_buildtime: row.get(10)?,
            comment: row.get(11)?,
            created_at: row.get(12)?,
            updated_at: row.get(13)?,
        })
    }
}

/// The variables of one resource: normal ones, then preview ones.
pub(crate) fn of_resource(tx: &Tx<'_>, owner: Owner, id: i64) -> rusqlite::Result<Vec<EnvRow>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM env_var WHERE resource = ?1 AND resource_id = ?2 ORDER BY is_preview, id"
    ))?;
    let rows = stmt.query_map(params![owner.column(), id], EnvRow::from_row)?;
    rows.collect()
}

/// A service's variable named `key`.
pub(crate) fn find_service_key(
    tx: &Tx<'_>,
    id: i64,
    key: &str,
) -> rusqlite::Result<Option<EnvRow>> {
    find_by_key(tx, Owner::Service, id, key, false)
}

/// Creates a service variable (a generated one: `firstOrCreate`).
pub(crate) fn insert_service_key(
    tx: &Tx<'_>,
    id: i64,
    key: &str,
    value: Option<&str>,
) -> rusqlite::Result<()> {
    let mut item = Map::new();
    item.insert("value".into(), json!(value));
    insert(tx, Owner::Service, id, key, &item)?;
    Ok(())
}

/// Sets a service variable, creating it if needed (`updateOrCreate`).
pub(crate) fn upsert_service_key(
    tx: &Tx<'_>,
    id: i64,
    key: &str,
    value: Option<&str>,
) -> rusqlite::Result<()> {
    match find_service_key(tx, id, key)? {
        Some(env) if env.value.as_deref() == value => Ok(()),
        Some(env) => {
            tx.execute(
                "UPDATE env_var SET value = ?2, updated_at = ?3 WHERE id = ?1",
                params![env.id, value, tx.now],
            )?;
            Ok(())
        }
        None => insert_service_key(tx, id, key, value),
    }
}

fn find_by_key(
    tx: &Tx<'_>,
    owner: Owner,
    id: i64,
    key: &str,
    preview: bool,
) -> rusqlite::Result<Option<EnvRow>> {
    // A service variable has no preview twin: the key alone identifies it.
    let preview = preview && owner == Owner::Application;
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM env_var WHERE resource = ?1 AND resource_id = ?2 AND key = ?3 AND is_preview = ?4"
    ))?
    .query_row(params![owner.column(), id, key, preview], EnvRow::from_row)
    .optional()
}

/// The EnvironmentVariable object.
fn render(ctx: &Ctx, owner: Owner, env: &EnvRow) -> Value {
    let mut out = json!({
        "id": env.id,
        "uuid": env.uuid,
        "resourceable_type": match owner {
            Owner::Application => "App\\Models\\Application",
            Owner::Service => "App\\Models\\Service",
        },
        "resourceable_id": env.resource_id,
        "key": env.key,
        "is_preview": env.is_preview,
        "is_literal": env.is_literal,
        "is_multiline": env.is_multiline,
        "is_shown_once": env.is_shown_once,
        "is_runtime": env.is_runtime,
        "is_buildtime": env.is_buildtime,
        "is_shared": false,
        "is_really_required": false,
        "comment": env.comment,
        "version": format!("{}.{}.{}", ctx.version.0, ctx.version.1, ctx.version.2),
        "created_at": timestamp(env.created_at),
        "updated_at": timestamp(env.updated_at),
    });
    if ctx.sensitive
        && !env.is_shown_once
        && let Value::Object(map) = &mut out
    {
        map.insert("value".into(), json!(env.value));
        map.insert("real_value".into(), json!(env.value));
    }
    out
}

/// Why a key is refused, if it is.
fn key_problem(key: &str) -> Option<&'static str> {
    let mut chars = key.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    if key.is_empty() {
        Some("The key field is required.")
    } else if key.len() > 255 {
        Some("The key field must not be greater than 255 characters.")
    } else if !first_ok || !rest_ok {
        Some("The key field format is invalid.")
    } else {
        None
    }
}

/// Checks one item's key and comment; the error reply names the field.
fn check_item(item: &Map<String, Value>) -> Result<String, Fail> {
    let key = item
        .get("key")
        .and_then(Value::as_str)
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let mut errors = Map::new();
    if let Some(problem) = key_problem(&key) {
        errors.insert("key".into(), json!([problem]));
    }
    if let Some(value) = item.get("value")
        && !(value.is_string() || value.is_null())
    {
        errors.insert("value".into(), json!(["The value field must be a string."]));
    }
    if item
        .get("comment")
        .and_then(Value::as_str)
        .is_some_and(|c| c.chars().count() > 256)
    {
        errors.insert(
            "comment".into(),
            json!(["The comment field must not be greater than 256 characters."]),
        );
    }
    if errors.is_empty() {
        Ok(key)
    } else {
        Err(invalid(errors).into())
    }
}

fn flag(item: &Map<String, Value>, key: &str) -> Option<bool> {
    item.get(key).and_then(Value::as_bool)
}

/// Inserts or updates one variable from a request item.
fn upsert(
    tx: &Tx<'_>,
    owner: Owner,
    id: i64,
    key: &str,
    item: &Map<String, Value>,
) -> rusqlite::Result<EnvRow> {
    let preview = flag(item, "is_preview").unwrap_or(false);
    let value = item.get("value").and_then(Value::as_str).map(str::to_owned);
    let comment = item
        .get("comment")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match find_by_key(tx, owner, id, key, preview)? {
        Some(mut env) if owner == Owner::Service => {
            // `updateOrCreate(['key'], $item)` (`SC:1638-1641`): what is sent.
            if item.contains_key("value") {
                env.value = value;
            }
            if item.contains_key("comment") {
                env.comment = comment;
            }
            env.is_literal = flag(item, "is_literal").unwrap_or(env.is_literal);
            env.is_multiline = flag(item, "is_multiline").unwrap_or(env.is_multiline);
            env.is_shown_once = flag(item, "is_shown_once").unwrap_or(env.is_shown_once);
            save(tx, &env)?;
            Ok(env)
        }
        Some(mut env) => {
            env.value = value;
            if item.contains_key("comment") {
                env.comment = comment;
            }
            env.is_literal = flag(item, "is_literal").unwrap_or(false);
            env.is_multiline = flag(item, "is_multiline").unwrap_or(false);
            env.is_shown_once = flag(item, "is_shown_once").unwrap_or(false);
            env.is_runtime = flag(item, "is_runtime").unwrap_or(env.is_runtime);
            env.is_buildtime = flag(item, "is_buildtime").unwrap_or(env.is_buildtime);
            save(tx, &env)?;
            Ok(env)
        }
        None => insert(tx, owner, id, key, item),
    }
}

fn save(tx: &Tx<'_>, env: &EnvRow) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE env_var SET value = ?2, comment = ?3, is_literal = ?4, is_multiline = ?5, is_shown_once = ?6, is_runtime = ?7, is_buildtime = ?8, updated_at = ?9 WHERE id = ?1",
        params![
            env.id,
            env.value,
            env.comment,
            env.is_literal,
            env.is_multiline,
            env.is_shown_once,
            env.is_runtime,
            env.is_buildtime,
            tx.now
        ],
    )?;
    Ok(())
}

fn insert(
    tx: &Tx<'_>,
    owner: Owner,
    id: i64,
    key: &str,
    item: &Map<String, Value>,
) -> rusqlite::Result<EnvRow> {
    let env = EnvRow {
        id: 0,
        uuid: tx.uuid()?,
        resource_id: id,
        key: key.to_owned(),
        value: item.get("value").and_then(Value::as_str).map(str::to_owned),
        is_preview: owner == Owner::Application && flag(item, "is_preview").unwrap_or(false),
        is_literal: flag(item, "is_literal").unwrap_or(false),
        is_multiline: flag(item, "is_multiline").unwrap_or(false),
        is_shown_once: flag(item, "is_shown_once").unwrap_or(false),
        is_runtime: flag(item, "is_runtime").unwrap_or(true),
        is_buildtime: flag(item, "is_buildtime").unwrap_or(true),
        comment: item
            .get("comment")
            .and_then(Value::as_str)
            .map(str::to_owned),
        created_at: tx.now,
        updated_at: tx.now,
    };
    tx.execute(
        "INSERT INTO env_var (uuid, resource, resource_id, key, value, is_preview, is_literal, is_multiline, is_shown_once, is_runtime, is_buildtime, comment, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?13)",
        params![
            env.uuid,
            owner.column(),
            id,
            env.key,
            env.value,
            env.is_preview,
            env.is_literal,
            env.is_multiline,
            env.is_shown_once,
            env.is_runtime,
            env.is_buildtime,
            env.comment,
            tx.now
        ],
    )?;
    let env = EnvRow {
        id: tx.last_insert_rowid(),
        ..env
    };
    // The `created` hook: a non-preview application variable gets a
    // preview copy when none exists (`EnvironmentVariable.php:95-119`).
    if owner == Owner::Application
        && !env.is_preview
        && find_by_key(tx, owner, id, key, true)?.is_none()
    {
        let mut copy = Map::new();
        copy.insert("value".into(), json!(env.value));
        copy.insert("is_preview".into(), json!(true));
        copy.insert("is_literal".into(), json!(env.is_literal));
        copy.insert("is_multiline".into(), json!(env.is_multiline));
        copy.insert("is_runtime".into(), json!(env.is_runtime));
        copy.insert("is_buildtime".into(), json!(env.is_buildtime));
        copy.insert("comment".into(), json!(env.comment));
        insert(tx, owner, id, key, &copy)?;
    }
    Ok(env)
}

/// `GET /{applications|services}/{uuid}/envs`.
pub(super) fn list(tx: &Tx<'_>, ctx: &Ctx, owner: Owner, uuid: &str) -> Outcome {
    let id = owner.find_id(tx, uuid)?;
    let envs = of_resource(tx, owner, id)?;
    Ok(Reply::json(
        200,
        Value::Array(envs.iter().map(|e| render(ctx, owner, e)).collect()),
    ))
}

/// `POST /{applications|services}/{uuid}/envs`: 409 when the key exists.
pub(super) fn create(tx: &Tx<'_>, ctx: &Ctx, call: &Call, owner: Owner, uuid: &str) -> Outcome {
    let body = call.json_object()?;
    let id = owner.find_id(tx, uuid)?;
    if ctx.echo_422 {
        return Err(echo(&Value::Object(body)).into());
    }
    check_fields(&body, FIELDS, &[], &["key"])?;
    let key = check_item(&body)?;
    let preview = flag(&body, "is_preview").unwrap_or(false);
    if find_by_key(tx, owner, id, &key, preview)?.is_some() {
        return Ok(message(
            409,
            "Environment variable already exists. Use PATCH request to update it.",
        ));
    }
    let env = insert(tx, owner, id, &key, &body)?;
    Ok(match owner {
        Owner::Application => Reply::json(201, json!({"uuid": env.uuid})),
        // A service answers with the whole variable (`SC:1785`).
        Owner::Service => Reply::json(201, render(ctx, owner, &env)),
    })
}

/// `PATCH /{applications|services}/{uuid}/envs`: finds the variable by key
/// and `is_preview`.
pub(super) fn update(tx: &Tx<'_>, ctx: &Ctx, call: &Call, owner: Owner, uuid: &str) -> Outcome {
    let body = call.json_object()?;
    let id = owner.find_id(tx, uuid)?;
    if ctx.echo_422 {
        return Err(echo(&Value::Object(body)).into());
    }
    check_fields(&body, FIELDS, &[], &["key", "value"])?;
    let key = check_item(&body)?;
    let preview = flag(&body, "is_preview").unwrap_or(false);
    if find_by_key(tx, owner, id, &key, preview)?.is_none() {
        return Ok(message(404, "Environment variable not found."));
    }
    let env = upsert(tx, owner, id, &key, &body)?;
    Ok(Reply::json(201, render(ctx, owner, &env)))
}

/// `PATCH /{applications|services}/{uuid}/envs/bulk`: upserts each item in
/// order; unknown item fields are dropped; the first bad item stops the
/// call with a 422 and the items before it stay saved.
pub(super) fn bulk(tx: &Tx<'_>, ctx: &Ctx, call: &Call, owner: Owner, uuid: &str) -> Outcome {
    let body = call.json_object()?;
    let id = owner.find_id(tx, uuid)?;
    if ctx.echo_422 {
        return Err(echo(&Value::Object(body)).into());
    }
    let items = match body.get("data") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        None | Some(Value::Null) | Some(Value::Array(_)) => {
            return Ok(message(400, "Bulk data is required."));
        }
        Some(_) => {
            return Err(invalid(Map::from_iter([(
                "data".to_owned(),
                json!(["The data field must be an array."]),
            )]))
            .into());
        }
    };
    let mut saved = Vec::new();
    for item in items {
        let Value::Object(item) = item else {
            return Err(invalid(Map::from_iter([(
                "data".to_owned(),
                json!(["Each item must be an object."]),
            )]))
            .into());
        };
        let known: Map<String, Value> = item
            .iter()
            .filter(|(k, _)| FIELDS.iter().any(|(name, _)| name == k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let key = check_item(&known)?;
        let env = upsert(tx, owner, id, &key, &known)?;
        saved.push(render(ctx, owner, &env));
    }
    Ok(Reply::json(201, Value::Array(saved)))
}

/// `DELETE /{applications|services}/{uuid}/envs/{env_uuid}`.
pub(super) fn delete(tx: &Tx<'_>, owner: Owner, uuid: &str, env_uuid: &str) -> Outcome {
    let id = owner.find_id(tx, uuid)?;
    let deleted = tx.execute(
        "DELETE FROM env_var WHERE resource = ?1 AND resource_id = ?2 AND uuid = ?3",
        params![owner.column(), id, env_uuid],
    )?;
    if deleted == 0 {
        return Ok(message(404, "Environment variable not found."));
    }
    Ok(message(200, "Environment variable deleted."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_server_rule() {
        assert_eq!(key_problem("DATABASE_URL"), None);
        assert_eq!(key_problem("_x.y"), None);
        assert!(key_problem("1ABC").is_some());
        assert!(key_problem("A-B").is_some());
        assert!(key_problem("").is_some());
        assert!(key_problem(&"A".repeat(256)).is_some());
    }
}
