//! The simulated Cloudflare API under `/client/v4` (contract:
//! `contracts/cloudflare`): zones and DNS records, the response envelope,
//! pagination, list filters and the error codes that matter for
//! idempotency (81058 duplicate, 81053/81054 CNAME conflicts, 81044 gone).
//!
//! Error codes beyond those in the notes (validation 9xxx, 10429 rate limit)
//! are as observed in the field, not contractual: clients match on the ones
//! the notes list.

use std::cmp::Ordering;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Map, Value, json};

use super::reply::{Fail, Outcome, Reply, settle};
use super::server::Shared;
use super::store::{Tx, timestamp};

/// The sandbox account owning every zone.
const ACCOUNT_ID: &str = "0f0a5d0b0c0d0e0f1a1b1c1d1e1f2a2b";

/// Comment length limit of a Free zone (notes §4).
const COMMENT_LIMIT: usize = 100;

/// Record types the sandbox stores with a plain `content`.
const TYPES: &[&str] = &["A", "AAAA", "CAA", "CNAME", "MX", "NS", "PTR", "TXT"];

/// Types that can be proxied.
pub(crate) const PROXIABLE: &[&str] = &["A", "AAAA", "CNAME"];

/// A success envelope.
fn ok(result: Value) -> Reply {
    Reply::json(
        200,
        json!({"success": true, "errors": [], "messages": [], "result": result}),
    )
}

/// A failure envelope.
fn fail(status: u16, errors: &[(i64, &str)]) -> Reply {
    let errors: Vec<Value> = errors
        .iter()
        .map(|(code, message)| json!({"code": code, "message": message}))
        .collect();
    Reply::json(
        status,
        json!({"success": false, "errors": errors, "messages": [], "result": null}),
    )
}

fn fail_one(status: u16, code: i64, message: &str) -> Fail {
    Fail::Reply(fail(status, &[(code, message)]))
}

/// The injected 5xx.
pub(crate) fn server_error() -> Reply {
    fail(500, &[(1000, "An unknown error has occurred")])
}

/// The injected 429; `retry-after` is sent only on 429 (notes §7). The
/// contracts give no error code for it and the schema wants one of at least
/// 1000: clients decide on the status and `retry-after`, not on the code.
pub(crate) fn rate_limited(retry_after_s: u64) -> Reply {
    fail(
        429,
        &[(
            10429,
            "Rate limited. Please wait and consider throttling your request speed",
        )],
    )
    .with_header("retry-after", retry_after_s.to_string())
}

fn no_route(path: &str) -> Reply {
    fail(
        400,
        &[
            (
                7003,
                &format!("Could not route to {path}, perhaps your object identifier is invalid?"),
            ),
            (7000, "No route for that URI"),
        ],
    )
}

/// What the handlers need from the request.
#[derive(Debug)]
struct Call {
    method: Method,
    path: String,
    segs: Vec<String>,
    query: Vec<(String, String)>,
    body: axum::body::Bytes,
    comment_limit: usize,
    echo_422: bool,
}

impl Call {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn body(&self) -> Result<Map<String, Value>, Fail> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(fail_one(400, 9207, "Request body is invalid.")),
        }
    }
}

/// Entry point for everything under `/client/v4`.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let legacy =
        parts.headers.contains_key("x-auth-key") || parts.headers.contains_key("x-auth-email");
    match auth.and_then(|a| a.strip_prefix("Bearer ")).map(str::trim) {
        Some(token) if token == shared.config.credentials.cloudflare_token.expose() => {}
        None if auth.is_none() && !legacy => {
            return fail(
                400,
                &[(
                    9106,
                    "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
                )],
            )
            .into_response();
        }
        _ => return fail(403, &[(10000, "Authentication error")]).into_response(),
    }
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return fail(413, &[(9207, "Request body is too large.")]).into_response();
    };
    let path = parts.uri.path().to_owned();
    let call = Call {
        method: parts.method.clone(),
        segs: path
            .trim_start_matches("/client/v4")
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        path,
        query: url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        body,
        comment_limit: COMMENT_LIMIT,
        echo_422: shared.faults.config().echo_422,
    };
    let now = shared.now();
    let writes = !matches!(call.method, Method::GET | Method::HEAD);
    let work = move |tx: &Tx<'_>| settle(route(tx, &call));
    let result = if writes {
        shared.store.write(now, work).await
    } else {
        shared.store.read(now, work).await
    };
    match result {
        Ok(reply) => reply.into_response(),
        Err(_) => server_error().into_response(),
    }
}

fn route(tx: &Tx<'_>, call: &Call) -> Outcome {
    let segs: Vec<&str> = call.segs.iter().map(String::as_str).collect();
    let m = &call.method;
    match segs.as_slice() {
        ["user", "tokens", "verify"] if *m == Method::GET => Ok(Reply::json(
            200,
            json!({
                "success": true,
                "errors": [],
                "messages": [{"code": 10000, "message": "This API Token is valid and active", "type": null}],
                "result": {"id": "ed17574386854bf78a67040be0a770b0", "status": "active"},
            }),
        )),
        ["zones"] if *m == Method::GET => list_zones(tx, call),
        ["zones", zone] if *m == Method::GET => {
            let zone = find_zone(tx, zone, &call.path)?;
            Ok(ok(zone.json()))
        }
        ["zones", zone, "dns_records"] => {
            let zone = find_zone(tx, zone, &call.path)?;
            match *m {
                Method::GET => list_records(tx, call, &zone),
                Method::POST => create_record(tx, call, &zone),
                _ => Ok(fail(405, &[(10000, "Method not allowed")])),
            }
        }
        ["zones", zone, "dns_records", id] => {
            let zone = find_zone(tx, zone, &call.path)?;
            if !is_identifier(id) {
                return Ok(no_route(&call.path));
            }
            let Some(record) = find_record(tx, &zone, id)? else {
                return Ok(fail(404, &[(81044, "Record does not exist.")]));
            };
            match *m {
                Method::GET => Ok(ok(record.json(&zone))),
                Method::PATCH => update_record(tx, call, &zone, record, false),
                Method::PUT => update_record(tx, call, &zone, record, true),
                Method::DELETE => {
                    tx.execute("DELETE FROM dns_record WHERE id = ?1", [&record.id])?;
                    Ok(ok(json!({"id": record.id})))
                }
                _ => Ok(fail(405, &[(10000, "Method not allowed")])),
            }
        }
        _ => Ok(fail(400, &[(7000, "No route for that URI")])),
    }
}

fn is_identifier(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One zone.
#[derive(Debug, Clone)]
pub(crate) struct Zone {
    pub(crate) id: String,
    pub(crate) name: String,
    created_at: i64,
    /// `initializing`, `pending`, `active` or `moved` (TS
    /// `src/resources/zones/zones.ts:383-385`); set through
    /// `PUT /_sandbox/zone`.
    pub(crate) status: String,
}

const ZONE_COLUMNS: &str = "id, name, created_at, status";

fn zone_row(r: &Row<'_>) -> rusqlite::Result<Zone> {
    Ok(Zone {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        status: r.get(3)?,
    })
}

/// Sets a zone's status (`PUT /_sandbox/zone`); false when there is no
/// such zone.
pub(crate) fn set_zone_status(tx: &Tx<'_>, name: &str, status: &str) -> rusqlite::Result<bool> {
    Ok(tx.execute(
        "UPDATE zone SET status = ?2 WHERE name = ?1",
        params![
            name.trim().trim_end_matches('.').to_ascii_lowercase(),
            status
        ],
    )? > 0)
}

impl Zone {
    fn json(&self) -> Value {
        let at = timestamp(self.created_at);
        let active = self.status == "active";
        json!({
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "paused": false,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": null,
            "original_registrar": null,
            "original_dnshost": null,
            "created_on": at,
            "modified_on": at,
            "activated_on": if active { json!(at) } else { Value::Null },
            "meta": {
                "step": 2,
                "custom_certificate_quota": 0,
                "page_rule_quota": 3,
                "phishing_detected": false,
                "cdn_only": false,
                "dns_only": false,
                "foundation_dns": false,
            },
            "owner": {"id": ACCOUNT_ID, "name": "Sandbox", "type": "user"},
            "account": {"id": ACCOUNT_ID, "name": "Sandbox account"},
            "vanity_name_servers": [],
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
            "plan": {
                "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                "name": "Free Website",
                "price": 0,
                "currency": "USD",
                "is_subscribed": false,
                "can_subscribe": false,
                "legacy_id": "free",
            },
        })
    }
}

/// All zones, by name.
pub(crate) fn zones(tx: &Tx<'_>) -> rusqlite::Result<Vec<Zone>> {
    let mut stmt = tx.prepare_cached(&format!("SELECT {ZONE_COLUMNS} FROM zone ORDER BY name"))?;
    let rows = stmt.query_map([], zone_row)?;
    rows.collect()
}

fn find_zone(tx: &Tx<'_>, id: &str, path: &str) -> Result<Zone, Fail> {
    if !is_identifier(id) {
        return Err(no_route(path).into());
    }
    tx.prepare_cached(&format!("SELECT {ZONE_COLUMNS} FROM zone WHERE id = ?1"))?
        .query_row([id], zone_row)
        .optional()?
        .ok_or_else(|| no_route(path).into())
}

/// `name` filter of `GET /zones`: exact, or an operator prefix
/// (`contains:`, `starts_with:`, `ends_with:`, `not_equal:`, `equal:`, each
/// also with `_case_sensitive`).
fn zone_name_matches(filter: &str, name: &str) -> bool {
    const OPS: &[&str] = &["contains", "starts_with", "ends_with", "not_equal", "equal"];
    let (op, value) = filter
        .split_once(':')
        .filter(|(op, _)| OPS.contains(&op.trim_end_matches("_case_sensitive")))
        .unwrap_or(("equal", filter));
    let (name, value) = if op.ends_with("_case_sensitive") {
        (name.to_owned(), value.to_owned())
    } else {
        (name.to_lowercase(), value.to_lowercase())
    };
    match op.trim_end_matches("_case_sensitive") {
        "contains" => name.contains(&value),
        "starts_with" => name.starts_with(&value),
        "ends_with" => name.ends_with(&value),
        "not_equal" => name != value,
        _ => name == value,
    }
}

fn page_params(call: &Call, default: usize, min: usize, max: usize) -> (usize, usize) {
    let page = call
        .param("page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let per_page = call
        .param("per_page")
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(default)
        .clamp(min, max);
    (page, per_page)
}

/// One page of `items` in the list envelope; only the page is rendered.
fn paged<T>(items: &[T], page: usize, per_page: usize, render: impl Fn(&T) -> Value) -> Reply {
    let total = items.len();
    let shown: Vec<Value> = items
        .iter()
        .skip((page - 1).saturating_mul(per_page))
        .take(per_page)
        .map(render)
        .collect();
    Reply::json(
        200,
        json!({
            "success": true,
            "errors": [],
            "messages": [],
            "result_info": {
                "page": page,
                "per_page": per_page,
                "count": shown.len(),
                "total_count": total,
                "total_pages": total.div_ceil(per_page),
            },
            "result": shown,
        }),
    )
}

/// Filter results combined as `match=all|any` says (no filter: match).
fn combine(checks: &[bool], any: bool) -> bool {
    checks.is_empty()
        || if any {
            checks.iter().any(|c| *c)
        } else {
            checks.iter().all(|c| *c)
        }
}

/// The results of the filters of `GET /zones` on one zone.
fn zone_checks(call: &Call, zone: &Zone) -> Vec<bool> {
    let mut checks = Vec::new();
    if let Some(name) = call.param("name") {
        checks.push(zone_name_matches(name, &zone.name));
    }
    if let Some(status) = call.param("status") {
        checks.push(status == zone.status);
    }
    if let Some(account) = call.param("account.id") {
        checks.push(account == ACCOUNT_ID);
    }
    if let Some(account) = call.param("account.name") {
        checks.push(zone_name_matches(account, "Sandbox account"));
    }
    checks
}

/// `GET /zones`.
fn list_zones(tx: &Tx<'_>, call: &Call) -> Outcome {
    let (page, per_page) = page_params(call, 20, 5, 50);
    let any = call.param("match") == Some("any");
    let mut found: Vec<Zone> = zones(tx)?
        .into_iter()
        .filter(|z| combine(&zone_checks(call, z), any))
        .collect();
    if call.param("direction") == Some("desc") {
        found.reverse();
    }
    Ok(paged(&found, page, per_page, Zone::json))
}

/// One DNS record.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) record_type: String,
    pub(crate) name: String,
    pub(crate) content: String,
    pub(crate) ttl: i64,
    pub(crate) proxied: bool,
    pub(crate) priority: Option<i64>,
    pub(crate) comment: Option<String>,
    pub(crate) tags: Vec<String>,
    created_at: i64,
    modified_at: i64,
    comment_modified_at: Option<i64>,
    tags_modified_at: Option<i64>,
}

const RECORD_COLUMNS: &str = "id, type, name, content, ttl, proxied, priority, comment, tags, created_at, modified_at, comment_modified_at, tags_modified_at";

impl Record {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let tags: String = row.get(8)?;
        Ok(Self {
            id: row.get(0)?,
            record_type: row.get(1)?,
            name: row.get(2)?,
            content: row.get(3)?,
            ttl: row.get(4)?,
            proxied: row.get(5)?,
            priority: row.get(6)?,
            comment: row.get(7)?,
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            created_at: row.get(9)?,
            modified_at: row.get(10)?,
            comment_modified_at: row.get(11)?,
            tags_modified_at: row.get(12)?,
        })
    }

    /// The record object of the API.
    pub(crate) fn json(&self, zone: &Zone) -> Value {
        let mut out = json!({
            "id": self.id,
            "zone_id": zone.id,
            "zone_name": zone.name,
            "name": self.name,
            "type": self.record_type,
            "content": self.content,
            "proxiable": PROXIABLE.contains(&self.record_type.as_str()),
            "proxied": self.proxied,
            "ttl": self.ttl,
            "settings": {},
            "meta": {
                "auto_added": false,
                "managed_by_apps": false,
                "managed_by_argo_tunnel": false,
                "source": "primary",
            },
            "tags": self.tags,
            "created_on": timestamp(self.created_at),
            "modified_on": timestamp(self.modified_at),
        });
        if let Value::Object(map) = &mut out {
            // A record without a comment has no `comment` key: the schema
            // types it as a string.
            if let Some(comment) = &self.comment {
                map.insert("comment".into(), json!(comment));
            }
            if let Some(p) = self.priority {
                map.insert("priority".into(), json!(p));
            }
            if let Some(t) = self.comment_modified_at {
                map.insert("comment_modified_on".into(), json!(timestamp(t)));
            }
            if let Some(t) = self.tags_modified_at {
                map.insert("tags_modified_on".into(), json!(timestamp(t)));
            }
        }
        out
    }
}

/// All records of a zone, in storage order.
pub(crate) fn records(tx: &Tx<'_>, zone: &Zone) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM dns_record WHERE zone_id = ?1 ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([&zone.id], Record::from_row)?;
    rows.collect()
}

/// The records of a zone at one name (names are stored lower-case).
pub(crate) fn records_named(tx: &Tx<'_>, zone: &Zone, name: &str) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM dns_record WHERE zone_id = ?1 AND name = ?2 ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map(params![zone.id, name.to_lowercase()], Record::from_row)?;
    rows.collect()
}

fn find_record(tx: &Tx<'_>, zone: &Zone, id: &str) -> rusqlite::Result<Option<Record>> {
    tx.prepare_cached(&format!(
        "SELECT {RECORD_COLUMNS} FROM dns_record WHERE zone_id = ?1 AND id = ?2"
    ))?
    .query_row(params![zone.id, id], Record::from_row)
    .optional()
}

/// A string filter with the `.exact/.contains/.startswith/.endswith`
/// operators, case-insensitive.
fn text_matches(op: &str, field: &str, value: &str) -> bool {
    let (field, value) = (field.to_lowercase(), value.to_lowercase());
    match op {
        "contains" => field.contains(&value),
        "startswith" => field.starts_with(&value),
        "endswith" => field.ends_with(&value),
        _ => field == value,
    }
}

/// One tag filter on a record's tags.
fn tag_matches(op: &str, tags: &[String], value: &str) -> bool {
    let split = |t: &str| -> (String, String) {
        match t.split_once(':') {
            Some((n, v)) => (n.to_lowercase(), v.to_lowercase()),
            None => (t.to_lowercase(), String::new()),
        }
    };
    let (want_name, want_value) = split(value);
    tags.iter().any(|t| {
        let (name, v) = split(t);
        match op {
            "present" => name == want_name,
            "contains" => name == want_name && v.contains(&want_value),
            "startswith" => name == want_name && v.starts_with(&want_value),
            "endswith" => name == want_name && v.ends_with(&want_value),
            // `tag=name` (any value) or `tag=name:value`; `.exact` needs both.
            "" if !value.contains(':') => name == want_name,
            _ => name == want_name && v == want_value,
        }
    })
}

/// `GET /zones/{zone}/dns_records`.
fn list_records(tx: &Tx<'_>, call: &Call, zone: &Zone) -> Outcome {
    let (page, per_page) = page_params(call, 100, 5, 5_000_000);
    let any = call.param("match") == Some("any");
    let tag_any = call.param("tag_match") == Some("any");
    // An exact name that every match needs narrows the scan (the index is
    // on zone and name); the filters below still decide.
    let exact_name = call.param("name.exact").or_else(|| call.param("name"));
    let all = match exact_name {
        Some(name) if !any => records_named(tx, zone, name)?,
        _ => records(tx, zone)?,
    };
    let mut found = Vec::new();
    for record in all {
        if let Some(t) = call.param("type")
            && !t.eq_ignore_ascii_case(&record.record_type)
        {
            continue;
        }
        let mut checks: Vec<bool> = Vec::new();
        let mut tag_checks: Vec<bool> = Vec::new();
        for (key, value) in &call.query {
            let (field, op) = key.split_once('.').unwrap_or((key.as_str(), ""));
            match field {
                "name" => checks.push(text_matches(op, &record.name, value)),
                "content" => checks.push(text_matches(op, &record.content, value)),
                "proxied" => checks.push(value.eq_ignore_ascii_case(&record.proxied.to_string())),
                "comment" => {
                    let comment = record.comment.as_deref();
                    checks.push(match op {
                        "present" => comment.is_some(),
                        "absent" => comment.is_none(),
                        _ => comment.is_some_and(|c| text_matches(op, c, value)),
                    });
                }
                "tag" => tag_checks.push(match op {
                    "absent" => !tag_matches("present", &record.tags, value),
                    _ => tag_matches(op, &record.tags, value),
                }),
                "search" => {
                    let v = value.to_lowercase();
                    checks.push(
                        record.name.to_lowercase().contains(&v)
                            || record.content.to_lowercase().contains(&v)
                            || record
                                .comment
                                .as_deref()
                                .is_some_and(|c| c.to_lowercase().contains(&v)),
                    );
                }
                _ => {}
            }
        }
        if combine(&checks, any) && combine(&tag_checks, tag_any) {
            found.push(record);
        }
    }
    let order = call.param("order").unwrap_or("type");
    let cmp = |a: &Record, b: &Record| -> Ordering {
        let primary = match order {
            "name" => a.name.cmp(&b.name),
            "content" => a.content.cmp(&b.content),
            "ttl" => a.ttl.cmp(&b.ttl),
            "proxied" => a.proxied.cmp(&b.proxied),
            _ => a.record_type.cmp(&b.record_type),
        };
        primary
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.content.cmp(&b.content))
            .then_with(|| a.created_at.cmp(&b.created_at))
            .then_with(|| a.id.cmp(&b.id))
    };
    found.sort_by(cmp);
    if call.param("direction") == Some("desc") {
        found.reverse();
    }
    Ok(paged(&found, page, per_page, |r| r.json(zone)))
}

/// The FQDN of a record name: `@` is the apex, a name outside the zone is
/// relative to it, lower-case, no trailing dot.
fn fqdn(name: &str, zone: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_lowercase();
    if name == "@" || name.is_empty() || name == zone {
        zone.to_owned()
    } else if name.ends_with(&format!(".{zone}")) {
        name
    } else {
        format!("{name}.{zone}")
    }
}

fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*')
        })
}

/// Builds and checks a record from a request body over `base` (PATCH) or
/// over nothing (POST, PUT).
fn record_from_body(
    call: &Call,
    zone: &Zone,
    base: Option<&Record>,
    body: &Map<String, Value>,
) -> Result<Record, Fail> {
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    let record_type = text("type")
        .map(|t| t.to_uppercase())
        .or_else(|| base.map(|b| b.record_type.clone()));
    let Some(record_type) = record_type else {
        return Err(fail_one(400, 9020, "Invalid DNS record type"));
    };
    if !TYPES.contains(&record_type.as_str()) {
        return Err(fail_one(400, 9020, "Invalid DNS record type"));
    }
    let name = match text("name") {
        Some(n) => fqdn(&n, &zone.name),
        None => match base {
            Some(b) => b.name.clone(),
            None => return Err(fail_one(400, 9000, "DNS name is invalid.")),
        },
    };
    if !valid_hostname(&name) {
        return Err(fail_one(400, 9000, "DNS name is invalid."));
    }
    let content = match text("content") {
        Some(c) => c.trim().to_owned(),
        None => match base {
            Some(b) => b.content.clone(),
            None => return Err(fail_one(400, 9008, "Content is required.")),
        },
    };
    match record_type.as_str() {
        "A" if content.parse::<Ipv4Addr>().is_err() => {
            return Err(fail_one(
                400,
                9005,
                "Content for A record must be a valid IPv4 address.",
            ));
        }
        "AAAA" if content.parse::<Ipv6Addr>().is_err() => {
            return Err(fail_one(
                400,
                9006,
                "Content for AAAA record must be a valid IPv6 address.",
            ));
        }
        "CNAME" | "NS" | "PTR" | "MX"
            if !valid_hostname(content.trim_end_matches('.'))
                || (record_type == "CNAME"
                    && content.trim_end_matches('.').eq_ignore_ascii_case(&name)) =>
        {
            return Err(fail_one(
                400,
                9007,
                &format!("Content for {record_type} record is invalid."),
            ));
        }
        _ if content.is_empty() => return Err(fail_one(400, 9008, "Content is required.")),
        _ => {}
    }
    // Stored as Cloudflare stores it: AAAA in RFC 5952 form ("an AAAA
    // record with content `fe80::0:0:1` is stored and returned as
    // `fe80::1`", cloudflare-docs `dns/manage-dns-records/reference/
    // dns-record-types.mdx`), host names lower case without the dot
    // (cloudflare notes §3); TXT as sent.
    let content = match record_type.as_str() {
        "CNAME" | "NS" | "PTR" | "MX" => content.trim_end_matches('.').to_lowercase(),
        "AAAA" => content
            .parse::<Ipv6Addr>()
            .map_or(content.clone(), |a| a.to_string()),
        _ => content,
    };
    let proxied = match body.get("proxied") {
        Some(Value::Bool(p)) => *p,
        Some(Value::Null) | None => base.is_some_and(|b| b.proxied),
        Some(_) => return Err(fail_one(400, 9003, "Invalid 'proxied' setting.")),
    };
    if proxied && !PROXIABLE.contains(&record_type.as_str()) {
        return Err(fail_one(400, 9041, "This DNS record cannot be proxied."));
    }
    let ttl = match body.get("ttl") {
        Some(v) => v.as_i64().ok_or_else(|| {
            fail_one(
                400,
                9021,
                "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.",
            )
        })?,
        None => base.map_or(1, |b| b.ttl),
    };
    if !(ttl == 1 || (60..=86_400).contains(&ttl)) {
        return Err(fail_one(
            400,
            9021,
            "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.",
        ));
    }
    // A proxied record's TTL is automatic.
    let ttl = if proxied { 1 } else { ttl };
    let priority = match body.get("priority") {
        Some(v) => Some(
            v.as_i64()
                .filter(|p| (0..=65_535).contains(p))
                .ok_or_else(|| {
                    fail_one(400, 9004, "Invalid priority. Must be between 0 and 65535.")
                })?,
        ),
        None => base.and_then(|b| b.priority),
    };
    let priority = if record_type == "MX" {
        Some(priority.unwrap_or(10))
    } else {
        None
    };
    let comment = match body.get("comment") {
        Some(Value::String(c)) if c.is_empty() => None,
        Some(Value::String(c)) => Some(c.clone()),
        Some(Value::Null) => None,
        Some(_) => return Err(fail_one(400, 9109, "Invalid comment.")),
        None => base.and_then(|b| b.comment.clone()),
    };
    if let Some(c) = &comment {
        if c.contains('\n') {
            return Err(fail_one(
                400,
                9109,
                "DNS record comments cannot contain newlines.",
            ));
        }
        if c.chars().count() > call.comment_limit {
            return Err(fail_one(
                400,
                9109,
                &format!(
                    "DNS record comment is too long, the maximum on this zone's plan is {} characters.",
                    call.comment_limit
                ),
            ));
        }
    }
    let tags = match body.get("tags") {
        Some(Value::Array(items)) => {
            let mut tags = Vec::new();
            for item in items {
                let Some(tag) = item.as_str().filter(|t| valid_tag(t)) else {
                    return Err(fail_one(
                        400,
                        9108,
                        "Invalid tag, tags must be name:value with a name of letters, digits, _ or -.",
                    ));
                };
                tags.push(tag.to_owned());
            }
            tags.sort();
            tags.dedup();
            tags
        }
        Some(Value::Null) => Vec::new(),
        Some(_) => return Err(fail_one(400, 9108, "Invalid tags.")),
        None => base.map(|b| b.tags.clone()).unwrap_or_default(),
    };
    Ok(Record {
        id: base.map(|b| b.id.clone()).unwrap_or_default(),
        record_type,
        name,
        content,
        ttl,
        proxied,
        priority,
        comment,
        tags,
        created_at: base.map_or(0, |b| b.created_at),
        modified_at: 0,
        comment_modified_at: base.and_then(|b| b.comment_modified_at),
        tags_modified_at: base.and_then(|b| b.tags_modified_at),
    })
}

fn valid_tag(tag: &str) -> bool {
    let name = tag.split_once(':').map_or(tag, |(n, _)| n);
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The duplicate and CNAME rules against the other records of the zone.
fn check_conflicts(tx: &Tx<'_>, zone: &Zone, record: &Record) -> Result<(), Fail> {
    for other in records_named(tx, zone, &record.name)? {
        if other.id == record.id {
            continue;
        }
        if other.record_type == record.record_type
            && same_content(&record.record_type, &other.content, &record.content)
        {
            return Err(fail_one(400, 81058, "An identical record already exists."));
        }
        // CNAME clashes only with A, AAAA and CNAME: CNAME beside TXT, MX or
        // HTTPS is accepted (cloudflare-docs#30376, DNSControl#4772;
        // cloudflare notes §1).
        let addressed = |t: &str| matches!(t, "A" | "AAAA" | "CNAME");
        if record.record_type == "CNAME" && addressed(&other.record_type) {
            return Err(fail_one(
                400,
                81053,
                "An A, AAAA, or CNAME record with that host already exists.",
            ));
        }
        if other.record_type == "CNAME" && addressed(&record.record_type) {
            return Err(fail_one(
                400,
                81054,
                "A CNAME record with that host already exists.",
            ));
        }
    }
    Ok(())
}

/// Whether two stored contents are the same record: TXT compared as the
/// text its quoted strings carry (Cloudflare serves `"abc"` and `abc`
/// alike, cloudflare notes §3).
fn same_content(record_type: &str, a: &str, b: &str) -> bool {
    if record_type == "TXT" {
        let text = |c: &str| crate::spec::model::txt_decode(c).unwrap_or_else(|| c.to_owned());
        text(a) == text(b)
    } else {
        a == b
    }
}

/// The `echo_422` fault, in Cloudflare's envelope: a validation error that
/// quotes the submitted values.
fn echo(body: &Map<String, Value>) -> Fail {
    let quoted: Vec<String> = body
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| format!("{k} '{s}'")))
        .collect();
    fail_one(
        400,
        1004,
        &format!("DNS Validation Error: {} is invalid", quoted.join(", ")),
    )
}

/// `POST /zones/{zone}/dns_records`.
fn create_record(tx: &Tx<'_>, call: &Call, zone: &Zone) -> Outcome {
    let body = call.body()?;
    if call.echo_422 {
        return Err(echo(&body));
    }
    let mut record = record_from_body(call, zone, None, &body)?;
    record.id = tx.hex_id()?;
    check_conflicts(tx, zone, &record)?;
    record.created_at = tx.now;
    record.modified_at = tx.now;
    if record.comment.is_some() {
        record.comment_modified_at = Some(tx.now);
    }
    if !record.tags.is_empty() {
        record.tags_modified_at = Some(tx.now);
    }
    save(tx, zone, &record, true)?;
    Ok(ok(record.json(zone)))
}

/// `PATCH` (partial) and `PUT` (overwrite) of one record.
fn update_record(tx: &Tx<'_>, call: &Call, zone: &Zone, old: Record, overwrite: bool) -> Outcome {
    let body = call.body()?;
    if call.echo_422 {
        return Err(echo(&body));
    }
    let mut record = if overwrite {
        for key in ["type", "name", "content"] {
            if !body.contains_key(key) {
                return Err(fail_one(
                    400,
                    9008,
                    &format!("A full record is required to overwrite; {key} is missing."),
                ));
            }
        }
        let mut fresh = record_from_body(call, zone, None, &body)?;
        fresh.id = old.id.clone();
        fresh.created_at = old.created_at;
        fresh
    } else {
        record_from_body(call, zone, Some(&old), &body)?
    };
    check_conflicts(tx, zone, &record)?;
    record.modified_at = tx.now;
    if record.comment != old.comment {
        record.comment_modified_at = Some(tx.now);
    }
    if record.tags != old.tags {
        record.tags_modified_at = Some(tx.now);
    }
    save(tx, zone, &record, false)?;
    Ok(ok(record.json(zone)))
}

fn save(tx: &Tx<'_>, zone: &Zone, r: &Record, insert: bool) -> rusqlite::Result<()> {
    let tags = Value::from(r.tags.clone()).to_string();
    if insert {
        tx.execute(
            "INSERT INTO dns_record (id, zone_id, type, name, content, ttl, proxied, priority, comment, tags, created_at, modified_at, comment_modified_at, tags_modified_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![r.id, zone.id, r.record_type, r.name, r.content, r.ttl, r.proxied, r.priority, r.comment, tags, r.created_at, r.modified_at, r.comment_modified_at, r.tags_modified_at],
        )?;
    } else {
        tx.execute(
            "UPDATE dns_record SET type = ?2, name = ?3, content = ?4, ttl = ?5, proxied = ?6, priority = ?7, comment = ?8, tags = ?9, modified_at = ?10, comment_modified_at = ?11, tags_modified_at = ?12 WHERE id = ?1",
            params![r.id, r.record_type, r.name, r.content, r.ttl, r.proxied, r.priority, r.comment, tags, r.modified_at, r.comment_modified_at, r.tags_modified_at],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_fqdns() {
        assert_eq!(fqdn("@", "example.com"), "example.com");
        assert_eq!(fqdn("App", "example.com"), "app.example.com");
        assert_eq!(fqdn("app.example.com.", "example.com"), "app.example.com");
        assert_eq!(
            fqdn("a.other.org", "example.com"),
            "a.other.org.example.com"
        );
    }

    #[test]
    fn zone_name_operators() {
        assert!(zone_name_matches("example.com", "Example.com"));
        assert!(zone_name_matches("ends_with:.com", "example.com"));
        assert!(zone_name_matches("contains:AMPL", "example.com"));
        assert!(!zone_name_matches(
            "contains_case_sensitive:AMPL",
            "example.com"
        ));
        assert!(zone_name_matches("not_equal:x.org", "example.com"));
    }

    #[test]
    fn tag_filters() {
        let tags = vec!["owner:fabrik".to_owned(), "env:prod".to_owned()];
        assert!(tag_matches("", &tags, "owner"));
        assert!(tag_matches("", &tags, "owner:fabrik"));
        assert!(!tag_matches("", &tags, "owner:other"));
        assert!(tag_matches("exact", &tags, "Owner:Fabrik"));
        assert!(tag_matches("present", &tags, "env"));
        assert!(tag_matches("startswith", &tags, "owner:fab"));
        assert!(!tag_matches("present", &tags, "team"));
        assert!(valid_tag("managed-by:fabrik"));
        assert!(!valid_tag("bad name:x"));
    }
}
