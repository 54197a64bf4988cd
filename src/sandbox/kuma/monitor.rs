//! Monitors and tags as Uptime Kuma 2.x stores them, with the payload
//! checks of its `add` and `editMonitor` handlers (notes §4–§6).

use std::sync::LazyLock;

use rusqlite::{OptionalExtension, params};
use serde_json::{Map, Value, json};

use crate::sandbox::store::Tx;

/// The monitor columns and the value a fresh row has in each, taken from
/// the monitor a real 2.5.3 returned (`sample-http-monitor-2.5.3.json`).
static COLUMNS: LazyLock<Map<String, Value>> =
    LazyLock::new(
        || match serde_json::from_str(include_str!("columns.json")) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
    );

/// Keys the monitor JSON has that are not columns (computed on read).
const COMPUTED: &[&str] = &[
    "id",
    "tags",
    "path",
    "pathName",
    "childrenIDs",
    "includeSensitiveData",
    "forceInactive",
    "maintenance",
    "notificationIDList",
];

/// Columns `add` rejects when missing: NOT NULL without a default.
const NOT_NULL: &[&str] = &["name", "type"];

/// The message a JavaScript `TypeError` gives for `.every` on undefined.
const NO_STATUS_CODES: &str = "Cannot read properties of undefined (reading 'every')";

fn load(tx: &Tx<'_>, id: i64) -> rusqlite::Result<Option<Map<String, Value>>> {
    let attrs: Option<String> = tx
        .prepare_cached("SELECT attrs FROM monitor WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(attrs.map(|a| match serde_json::from_str(&a) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }))
}

fn store(tx: &Tx<'_>, id: i64, attrs: &Map<String, Value>) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE monitor SET attrs = ?2 WHERE id = ?1",
        params![id, Value::Object(attrs.clone()).to_string()],
    )?;
    Ok(())
}

fn check_status_codes(value: Option<&Value>) -> Result<(), String> {
    match value {
        None | Some(Value::Null) => Err(NO_STATUS_CODES.to_owned()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(Value::Array(_)) => Err("Accepted status codes are not all strings".to_owned()),
        Some(_) => Err("monitor.accepted_statuscodes.every is not a function".to_owned()),
    }
}

fn check_intervals(attrs: &Map<String, Value>) -> Result<(), String> {
    let number = |k: &str| attrs.get(k).and_then(Value::as_f64);
    if number("interval").is_some_and(|i| i < 1.0) {
        return Err("Interval cannot be less than 1 seconds".to_owned());
    }
    if number("retryInterval").is_some_and(|i| i < 1.0) {
        return Err("Retry interval cannot be less than 1 seconds".to_owned());
    }
    Ok(())
}

/// The keys `updateMonitorNotification` visits (`server/server.js:1793-1805`,
/// 2.5.3): `for…in` over the list, integer-like keys first in ascending
/// order (as JavaScript orders them), only entries that are `true`; an
/// array gives its indexes.
fn notification_keys(value: Option<&Value>) -> Vec<String> {
    let mut keys: Vec<String> = match value {
        Some(Value::Object(map)) => map
            .iter()
            .filter(|(_, v)| v.as_bool().unwrap_or(false))
            .map(|(k, _)| k.clone())
            .collect(),
        Some(Value::Array(items)) => (0..items.len()).map(|i| i.to_string()).collect(),
        _ => Vec::new(),
    };
    keys.sort_by_key(|k| (k.parse::<u64>().map_or(u64::MAX, |n| n), k.clone()));
    keys
}

/// Links the notifications of `value` to monitor `id` as 2.5.3 does: one
/// insert per key, in `for…in` order, without a transaction, each checked
/// by the foreign key to `notification.id` (`PRAGMA foreign_keys = ON`,
/// `server/database.js:468`). The first unknown id stops it with the
/// SQLite error, after the row and the links before it were written (kuma
/// notes §2): the links made, and the error if any.
fn link_notifications(
    tx: &Tx<'_>,
    id: i64,
    value: Option<&Value>,
) -> rusqlite::Result<(Value, Option<String>)> {
    let mut linked = Map::new();
    for key in notification_keys(value) {
        let exists: bool = match key.parse::<i64>() {
            Ok(n) => tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM kuma_notification WHERE id = ?1)",
                [n],
                |r| r.get(0),
            )?,
            Err(_) => false,
        };
        if !exists {
            return Ok((
                Value::Object(linked),
                Some(format!(
                    "insert into `monitor_notification` (`monitor_id`, `notification_id`) values ({id}, '{key}') - SQLITE_CONSTRAINT: FOREIGN KEY constraint failed"
                )),
            ));
        }
        linked.insert(key, json!(true));
    }
    Ok((Value::Object(linked), None))
}

/// The notifications as the login push `notificationList` carries them
/// (`server/client.js:18-36`): an array; `config` (the notification's own
/// settings and secrets) is an empty object here.
pub(crate) fn notifications(tx: &Tx<'_>) -> rusqlite::Result<Value> {
    let mut stmt = tx
        .prepare_cached("SELECT id, name, is_default, active FROM kuma_notification ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(json!({
            "id": r.get::<_, i64>(0)?,
            "name": r.get::<_, String>(1)?,
            "isDefault": r.get::<_, bool>(2)?,
            "active": r.get::<_, bool>(3)?,
            "userId": 1,
            "config": "{}",
        }))
    })?;
    Ok(Value::Array(rows.collect::<rusqlite::Result<Vec<_>>>()?))
}

/// The `add` handler: the new monitor's id, or the error message the real
/// server acknowledges with.
pub(crate) fn add(tx: &Tx<'_>, payload: &Value) -> rusqlite::Result<Result<i64, String>> {
    let Value::Object(payload) = payload else {
        return Ok(Err(NO_STATUS_CODES.to_owned()));
    };
    if let Err(e) = check_status_codes(payload.get("accepted_statuscodes")) {
        return Ok(Err(e));
    }
    let mut attrs = COLUMNS.clone();
    for (key, value) in payload {
        if COMPUTED.contains(&key.as_str()) {
            continue;
        }
        if !COLUMNS.contains_key(key) {
            return Ok(Err(format!(
                "SQLITE_ERROR: table monitor has no column named {key}"
            )));
        }
        attrs.insert(key.clone(), value.clone());
    }
    // `JSON.stringify(undefined)` leaves the NOT NULL column empty (2.x).
    if !payload.contains_key("conditions") {
        return Ok(Err(
            "SQLITE_CONSTRAINT: NOT NULL constraint failed: monitor.conditions".to_owned(),
        ));
    }
    for column in NOT_NULL {
        if attrs.get(*column).is_none_or(Value::is_null) {
            return Ok(Err(format!(
                "SQLITE_CONSTRAINT: NOT NULL constraint failed: monitor.{column}"
            )));
        }
    }
    // `undefined < 1` is false in JavaScript: only sent values are checked,
    // so a monitor added without `retryInterval` is stored with 0.
    if let Err(e) = check_intervals(payload) {
        return Ok(Err(e));
    }
    attrs.insert("notificationIDList".into(), json!({}));
    tx.execute(
        "INSERT INTO monitor (attrs, created_at) VALUES (?1, ?2)",
        params![Value::Object(attrs.clone()).to_string(), tx.now],
    )?;
    let id = tx.last_insert_rowid();
    // The row is stored before the links (`server/server.js:789-791`).
    let (linked, failure) = link_notifications(tx, id, payload.get("notificationIDList"))?;
    attrs.insert("notificationIDList".into(), linked);
    store(tx, id, &attrs)?;
    Ok(match failure {
        Some(msg) => Err(msg),
        None => Ok(id),
    })
}

/// The `editMonitor` handler: copies the fields present, resets the
/// derived ones a partial object leaves out, validates the result.
pub(crate) fn edit(tx: &Tx<'_>, payload: &Value) -> rusqlite::Result<Result<i64, String>> {
    let id = payload.get("id").and_then(Value::as_i64);
    let Some((id, mut attrs)) = (match id {
        Some(id) => load(tx, id)?.map(|a| (id, a)),
        None => None,
    }) else {
        return Ok(Err(
            "Cannot read properties of null (reading 'user_id')".to_owned()
        ));
    };
    let Value::Object(payload) = payload else {
        return Ok(Err(NO_STATUS_CODES.to_owned()));
    };
    if payload.contains_key("accepted_statuscodes")
        && let Err(e) = check_status_codes(payload.get("accepted_statuscodes"))
    {
        return Ok(Err(e));
    }
    for (key, value) in payload {
        if COLUMNS.contains_key(key) {
            attrs.insert(key.clone(), value.clone());
        }
    }
    // Assigned unconditionally by the handler: absent means reset.
    if !payload.contains_key("retryOnlyOnStatusCodeFailure") {
        attrs.insert("retryOnlyOnStatusCodeFailure".into(), json!(false));
    }
    if !payload.contains_key("port") {
        attrs.insert("port".into(), Value::Null);
    }
    if let Err(e) = check_intervals(&attrs) {
        return Ok(Err(e));
    }
    // Stored first, then the links replaced, an absent list wiping them
    // (`server/server.js:966-972`, kuma notes §2 and §4).
    let (linked, failure) = link_notifications(tx, id, payload.get("notificationIDList"))?;
    attrs.insert("notificationIDList".into(), linked);
    store(tx, id, &attrs)?;
    Ok(match failure {
        Some(msg) => Err(msg),
        None => Ok(id),
    })
}

/// Every monitor's id and stored attributes, by id.
fn all(tx: &Tx<'_>) -> rusqlite::Result<Vec<(i64, Map<String, Value>)>> {
    let mut stmt = tx.prepare_cached("SELECT id, attrs FROM monitor ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, attrs) = row?;
        let attrs = match serde_json::from_str(&attrs) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        out.push((id, attrs));
    }
    Ok(out)
}

fn parent_of(attrs: &Map<String, Value>) -> Option<i64> {
    attrs.get("parent").and_then(Value::as_i64)
}

/// The monitor object as `getMonitor` and `monitorList` show it.
pub(crate) fn get(tx: &Tx<'_>, id: i64) -> rusqlite::Result<Option<Value>> {
    let monitors = all(tx)?;
    match monitors.iter().find(|(m, _)| *m == id) {
        Some((_, attrs)) => Ok(Some(render(tx, id, attrs, &monitors)?)),
        None => Ok(None),
    }
}

fn render(
    tx: &Tx<'_>,
    id: i64,
    attrs: &Map<String, Value>,
    monitors: &[(i64, Map<String, Value>)],
) -> rusqlite::Result<Value> {
    let mut out = COLUMNS.clone();
    out.extend(attrs.clone());
    out.insert("id".into(), json!(id));
    out.entry("notificationIDList").or_insert_with(|| json!({}));
    out.insert("tags".into(), Value::Array(tags_of(tx, id)?));
    let children: Vec<i64> = monitors
        .iter()
        .filter(|(_, a)| parent_of(a) == Some(id))
        .map(|(child, _)| *child)
        .collect();
    out.insert("childrenIDs".into(), json!(children));
    // As the verified 2.5.3 answer shows them for a top-level monitor.
    out.insert("path".into(), json!([null]));
    out.insert("pathName".into(), json!(""));
    out.insert("includeSensitiveData".into(), json!(true));
    out.insert("forceInactive".into(), json!(false));
    out.insert("maintenance".into(), json!(false));
    Ok(Value::Object(out))
}

fn tags_of(tx: &Tx<'_>, id: i64) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = tx.prepare_cached(
        "SELECT mt.id, mt.monitor_id, mt.tag_id, mt.value, t.name, t.color FROM monitor_tag mt JOIN kuma_tag t ON t.id = mt.tag_id WHERE mt.monitor_id = ?1 ORDER BY mt.id",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(json!({
            "id": r.get::<_, i64>(0)?,
            "monitor_id": r.get::<_, i64>(1)?,
            "tag_id": r.get::<_, i64>(2)?,
            "value": r.get::<_, String>(3)?,
            "name": r.get::<_, String>(4)?,
            "color": r.get::<_, String>(5)?,
        }))
    })?;
    rows.collect()
}

/// The `monitorList` event payload: `{"<id>": monitor, ...}`.
pub(crate) fn list(tx: &Tx<'_>) -> rusqlite::Result<Value> {
    let monitors = all(tx)?;
    let mut out = Map::new();
    for (id, attrs) in &monitors {
        out.insert(id.to_string(), render(tx, *id, attrs, &monitors)?);
    }
    Ok(Value::Object(out))
}

/// Pauses or resumes; whether the monitor exists.
pub(crate) fn set_active(tx: &Tx<'_>, id: i64, active: bool) -> rusqlite::Result<bool> {
    let Some(mut attrs) = load(tx, id)? else {
        return Ok(false);
    };
    attrs.insert("active".into(), json!(active));
    store(tx, id, &attrs)?;
    Ok(true)
}

/// Deletes a monitor; its children go too, or are unlinked.
pub(crate) fn delete(tx: &Tx<'_>, id: i64, with_children: bool) -> rusqlite::Result<()> {
    for (child, mut attrs) in all(tx)? {
        if parent_of(&attrs) == Some(id) {
            if with_children {
                delete(tx, child, true)?;
            } else {
                attrs.insert("parent".into(), Value::Null);
                store(tx, child, &attrs)?;
            }
        }
    }
    tx.execute("DELETE FROM monitor_tag WHERE monitor_id = ?1", [id])?;
    tx.execute("DELETE FROM monitor WHERE id = ?1", [id])?;
    Ok(())
}

/// All tags.
pub(crate) fn tags(tx: &Tx<'_>) -> rusqlite::Result<Vec<Value>> {
    let mut stmt = tx.prepare_cached("SELECT id, name, color FROM kuma_tag ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(json!({"id": r.get::<_, i64>(0)?, "name": r.get::<_, String>(1)?, "color": r.get::<_, String>(2)?}))
    })?;
    rows.collect()
}

fn tag(tx: &Tx<'_>, id: i64) -> rusqlite::Result<Option<Value>> {
    tx.prepare_cached("SELECT id, name, color FROM kuma_tag WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(json!({"id": r.get::<_, i64>(0)?, "name": r.get::<_, String>(1)?, "color": r.get::<_, String>(2)?}))
        })
        .optional()
}

/// `addTag`: duplicates are allowed, as in the real server.
pub(crate) fn add_tag(tx: &Tx<'_>, payload: &Value) -> rusqlite::Result<Result<Value, String>> {
    let field = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(name), Some(color)) = (field("name"), field("color")) else {
        let missing = if field("name").is_none() {
            "name"
        } else {
            "color"
        };
        return Ok(Err(format!(
            "SQLITE_CONSTRAINT: NOT NULL constraint failed: tag.{missing}"
        )));
    };
    tx.execute(
        "INSERT INTO kuma_tag (name, color, created_at) VALUES (?1, ?2, ?3)",
        params![name, color, tx.now],
    )?;
    let id = tx.last_insert_rowid();
    Ok(Ok(json!({"id": id, "name": name, "color": color})))
}

/// `editTag`: the saved tag, or `None` when it does not exist.
pub(crate) fn edit_tag(tx: &Tx<'_>, payload: &Value) -> rusqlite::Result<Option<Value>> {
    let Some(id) = payload.get("id").and_then(Value::as_i64) else {
        return Ok(None);
    };
    let Some(current) = tag(tx, id)? else {
        return Ok(None);
    };
    let pick = |k: &str| {
        payload
            .get(k)
            .and_then(Value::as_str)
            .or_else(|| current.get(k).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned()
    };
    tx.execute(
        "UPDATE kuma_tag SET name = ?2, color = ?3 WHERE id = ?1",
        params![id, pick("name"), pick("color")],
    )?;
    tag(tx, id)
}

/// `deleteTag`, with its monitor links.
pub(crate) fn delete_tag(tx: &Tx<'_>, id: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM monitor_tag WHERE tag_id = ?1", [id])?;
    tx.execute("DELETE FROM kuma_tag WHERE id = ?1", [id])?;
    Ok(())
}

/// `addMonitorTag`.
pub(crate) fn add_monitor_tag(
    tx: &Tx<'_>,
    tag_id: i64,
    monitor_id: i64,
    value: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO monitor_tag (monitor_id, tag_id, value) VALUES (?1, ?2, ?3)",
        params![monitor_id, tag_id, value],
    )?;
    Ok(())
}

/// `editMonitorTag`: sets the value of the tag on the monitor.
pub(crate) fn edit_monitor_tag(
    tx: &Tx<'_>,
    tag_id: i64,
    monitor_id: i64,
    value: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE monitor_tag SET value = ?3 WHERE monitor_id = ?1 AND tag_id = ?2",
        params![monitor_id, tag_id, value],
    )?;
    Ok(())
}

/// `deleteMonitorTag`: removes the exact (tag, monitor, value) triple.
pub(crate) fn delete_monitor_tag(
    tx: &Tx<'_>,
    tag_id: i64,
    monitor_id: i64,
    value: &str,
) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM monitor_tag WHERE monitor_id = ?1 AND tag_id = ?2 AND value = ?3",
        params![monitor_id, tag_id, value],
    )?;
    Ok(())
}

/// Monitors for the dump, each with the texts that may carry an ownership
/// mark (description, tag values, `name:value`).
pub(crate) fn for_dump(tx: &Tx<'_>) -> rusqlite::Result<Vec<(Value, Vec<String>)>> {
    let mut out = Vec::new();
    for (id, attrs) in all(tx)? {
        let tags = tags_of(tx, id)?;
        let mut texts = Vec::new();
        if let Some(d) = attrs.get("description").and_then(Value::as_str) {
            texts.push(d.to_owned());
        }
        let mut tag_list = Vec::new();
        for t in &tags {
            let name = t["name"].as_str().unwrap_or_default();
            let value = t["value"].as_str().unwrap_or_default();
            texts.push(value.to_owned());
            texts.push(format!("{name}:{value}"));
            tag_list.push(json!({"name": name, "value": value, "color": t["color"]}));
        }
        let field = |k: &str| attrs.get(k).cloned().unwrap_or(Value::Null);
        out.push((
            json!({
                "id": id,
                "name": field("name"),
                "description": field("description"),
                "type": field("type"),
                "url": field("url"),
                "keyword": field("keyword"),
                "interval": field("interval"),
                "retryInterval": field("retryInterval"),
                "maxretries": field("maxretries"),
                "accepted_statuscodes": field("accepted_statuscodes"),
                "notificationIDList": field("notificationIDList"),
                "active": field("active"),
                "tags": tag_list,
            }),
            texts,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_list_matches_the_verified_monitor() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../../tests/contract/uptime-kuma/sample-http-monitor-2.5.3.json"
        ))
        .unwrap();
        let returned = sample["getMonitor_result"].as_object().unwrap();
        for key in returned.keys() {
            assert!(
                COLUMNS.contains_key(key) || COMPUTED.contains(&key.as_str()),
                "{key} is neither a column nor computed"
            );
        }
        assert_eq!(COLUMNS.len() + COMPUTED.len(), returned.len());
        // Everything the real client sent is accepted.
        for key in sample["add_payload_sent"].as_object().unwrap().keys() {
            assert!(
                COLUMNS.contains_key(key) || COMPUTED.contains(&key.as_str()),
                "{key}"
            );
        }
    }

    #[test]
    fn status_codes_must_be_an_array_of_strings() {
        assert_eq!(check_status_codes(None).unwrap_err(), NO_STATUS_CODES);
        assert!(check_status_codes(Some(&json!([200]))).is_err());
        assert!(check_status_codes(Some(&json!(["200-299"]))).is_ok());
    }

    #[test]
    fn notification_lists_are_read_like_for_in() {
        assert_eq!(
            notification_keys(Some(&json!({"10": true, "3": true, "4": false}))),
            vec!["3", "10"]
        );
        assert_eq!(notification_keys(Some(&json!([3]))), vec!["0"]);
    }
}
