//! Views across the whole world: which site answers a host name, the DNS
//! answer for a name, and the JSON dump of everything.

use std::net::{Ipv4Addr, Ipv6Addr};

use rusqlite::TransactionBehavior;
use serde_json::{Map, Value, json};

use super::SandboxError;
use super::cloudflare;
use super::coolify::{self, AppRow, DeploymentRow, ServiceRow};
use super::kuma;
use super::store::{Store, Tx, timestamp};
use crate::ownership::OwnershipMark;
use crate::spec::model::{RecordType, canonical_content, txt_encode};

/// The lower-case host names in a comma-separated list of URLs (or bare
/// host names).
pub(crate) fn hosts_of(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter_map(|d| {
            let with_scheme = if d.contains("://") {
                d.to_owned()
            } else {
                format!("http://{d}")
            };
            url::Url::parse(&with_scheme)
                .ok()
                .and_then(|u| u.host_str().map(str::to_lowercase))
        })
        .collect()
}

/// What answers on a host name.
#[derive(Debug, Clone)]
pub(crate) struct Site {
    /// `application NAME (UUID)` or `service NAME (UUID)`.
    pub(crate) label: String,
    /// The path that answers the health check.
    pub(crate) health_path: String,
    /// What is deployed and running, if anything.
    pub(crate) serving: Option<String>,
}

/// The application or service that owns `host`, if any.
pub(crate) fn site_for(tx: &Tx<'_>, host: &str) -> rusqlite::Result<Option<Site>> {
    for app in coolify::live_app_rows(tx)? {
        if app.hosts().iter().any(|h| h == host) {
            let serving = if app.stopped || app.gone_at.is_some() {
                None
            } else {
                serving_app(tx, &app)?.map(|d| d.artifact)
            };
            let health_path = app
                .attr("health_check_path")
                .filter(|p| p.starts_with('/'))
                .unwrap_or("/")
                .to_owned();
            return Ok(Some(Site {
                label: format!("application {} ({})", app.name(), app.uuid),
                health_path,
                serving,
            }));
        }
    }
    for svc in coolify::live_service_rows(tx)? {
        if svc.hosts().iter().any(|h| h == host) {
            return Ok(Some(Site {
                label: format!("service {} ({})", svc.name(), svc.uuid),
                health_path: "/".to_owned(),
                serving: svc.running(tx.now).then(|| svc.artifact()),
            }));
        }
    }
    Ok(None)
}

fn serving_app(tx: &Tx<'_>, app: &AppRow) -> rusqlite::Result<Option<DeploymentRow>> {
    coolify::serving_deployment(tx, app)
}

fn mark_of<'a>(texts: impl IntoIterator<Item = &'a str>) -> Value {
    for text in texts {
        let candidates = [Some(text), text.split_once(':').map(|(_, v)| v)];
        for candidate in candidates.into_iter().flatten() {
            if let Some(mark) = OwnershipMark::parse(candidate) {
                return serde_json::to_value(mark).unwrap_or(Value::Null);
            }
        }
    }
    Value::Null
}

/// A keyed fingerprint of an env value, so a dump shows whether a value
/// changed without showing the value.
pub(crate) fn fingerprint(tx: &Tx<'_>, value: &str) -> String {
    let key = tx.derived_secret("dump-fingerprint");
    blake3::keyed_hash(&key, value.as_bytes()).to_hex()[..16].to_owned()
}

fn dump_app(tx: &Tx<'_>, app: &AppRow) -> rusqlite::Result<Value> {
    let now = tx.now;
    let tags = coolify::tag_names_of(tx, coolify::Owner::Application, app.id)?;
    let envs: Vec<Value> = coolify::env_rows(tx, coolify::Owner::Application, app.id)?
        .iter()
        .map(|e| {
            json!({
                "key": e.key,
                "is_preview": e.is_preview,
                "is_literal": e.is_literal,
                "is_shown_once": e.is_shown_once,
                "is_buildtime": e.is_buildtime,
                "is_runtime": e.is_runtime,
                "value_fingerprint": e.value.as_deref().map(|v| fingerprint(tx, v)),
            })
        })
        .collect();
    let mut deployments = coolify::deployments_of(tx, app.id)?;
    deployments.reverse();
    let deployments: Vec<Value> = deployments
        .iter()
        .map(|d| {
            json!({
                "uuid": d.uuid,
                "status": d.status(now),
                "deployed": d.artifact,
                "commit": d.commit_sha,
                "created_at": timestamp(d.created_at),
                "finished_at": d.finished_at(now).map(timestamp),
            })
        })
        .collect();
    let serving = if app.stopped || app.gone_at.is_some() {
        None
    } else {
        serving_app(tx, app)?.map(|d| d.artifact)
    };
    let description = app.attr("description");
    Ok(json!({
        "uuid": app.uuid,
        "name": app.name(),
        "description": description,
        "build_pack": app.build_pack(),
        "fqdn": app.attr("fqdn"),
        "image": app.attr("docker_registry_image_name"),
        "image_tag": app.attr("docker_registry_image_tag"),
        "git_repository": app.attr("git_repository"),
        "git_branch": app.attr("git_branch"),
        "config": app_config(app),
        "environment_id": app.environment_id,
        "stopped": app.stopped,
        "deleting": app.gone_at.is_some(),
        "serving": serving,
        "tags": tags,
        "env": envs,
        "deployments": deployments,
        "ownership": mark_of(description.into_iter().chain(tags.iter().map(String::as_str))),
    }))
}

/// The build and health settings of an application as stored (what the
/// dump shows besides image, repository and domains).
fn app_config(app: &AppRow) -> Value {
    const KEYS: &[&str] = &[
        "ports_exposes",
        "git_commit_sha",
        "base_directory",
        "publish_directory",
        "install_command",
        "build_command",
        "start_command",
        "dockerfile_location",
        "health_check_enabled",
        "health_check_path",
        "health_check_port",
        "health_check_method",
        "health_check_scheme",
        "health_check_return_code",
        "health_check_response_text",
        "health_check_interval",
        "health_check_timeout",
        "health_check_retries",
        "health_check_start_period",
    ];
    Value::Object(
        KEYS.iter()
            .filter_map(|k| app.attrs.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect(),
    )
}

fn dump_service(tx: &Tx<'_>, svc: &ServiceRow) -> rusqlite::Result<Value> {
    let tags = coolify::tag_names_of(tx, coolify::Owner::Service, svc.id)?;
    let envs: Vec<Value> = coolify::env_rows(tx, coolify::Owner::Service, svc.id)?
        .iter()
        .map(|e| {
            json!({
                "key": e.key,
                "is_preview": e.is_preview,
                "value_fingerprint": e.value.as_deref().map(|v| fingerprint(tx, v)),
            })
        })
        .collect();
    let description = svc.attr("description");
    Ok(json!({
        "uuid": svc.uuid,
        "name": svc.name(),
        "description": description,
        "service_type": svc.attr("service_type"),
        "urls": svc.urls(),
        "containers": svc.container_view(),
        "running": svc.running(tx.now),
        "deleting": svc.gone_at.is_some(),
        "tags": tags,
        "env": envs,
        "ownership": mark_of(description.into_iter().chain(tags.iter().map(String::as_str))),
    }))
}

/// The whole world as JSON, in a stable order: Coolify projects,
/// applications (with env vars, tags and deployments) and services;
/// Cloudflare zones with their records; Uptime Kuma monitors with their
/// tags. Each resource carries the ownership mark found on it, or null.
/// Env values appear only as keyed fingerprints.
pub(crate) fn dump(tx: &Tx<'_>) -> rusqlite::Result<Value> {
    let mut projects = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT p.uuid, p.name, e.uuid, e.name, e.id FROM project p JOIN environment e ON e.project_id = p.id ORDER BY p.id, e.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut current: Option<(String, Map<String, Value>)> = None;
        for row in rows {
            let (puuid, pname, euuid, ename, eid) = row?;
            if current.as_ref().is_none_or(|(u, _)| *u != puuid) {
                if let Some((_, p)) = current.take() {
                    projects.push(Value::Object(p));
                }
                let mut p = Map::new();
                p.insert("uuid".into(), json!(puuid));
                p.insert("name".into(), json!(pname));
                p.insert("environments".into(), json!([]));
                current = Some((puuid.clone(), p));
            }
            if let Some((_, p)) = &mut current
                && let Some(Value::Array(envs)) = p.get_mut("environments")
            {
                envs.push(json!({"id": eid, "uuid": euuid, "name": ename}));
            }
        }
        if let Some((_, p)) = current {
            projects.push(Value::Object(p));
        }
    }
    let applications = coolify::live_app_rows(tx)?
        .iter()
        .map(|app| dump_app(tx, app))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let services = coolify::live_service_rows(tx)?
        .iter()
        .map(|svc| dump_service(tx, svc))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut zones = Vec::new();
    for zone in cloudflare::zones(tx)? {
        let mut records = cloudflare::records(tx, &zone)?;
        records.sort_by(|a, b| {
            (&a.name, &a.record_type, &a.content, &a.id).cmp(&(
                &b.name,
                &b.record_type,
                &b.content,
                &b.id,
            ))
        });
        let records: Vec<Value> = records
            .iter()
            .map(|r| {
                json!({
                    "id": r.id,
                    "type": r.record_type,
                    "name": r.name,
                    "content": r.content,
                    "ttl": r.ttl,
                    "proxied": r.proxied,
                    "comment": r.comment,
                    "tags": r.tags,
                    "ownership": mark_of(r.comment.as_deref().into_iter().chain(r.tags.iter().map(String::as_str))),
                })
            })
            .collect();
        zones.push(json!({"id": zone.id, "name": zone.name, "records": records}));
    }
    let monitors: Vec<Value> = kuma::monitors_for_dump(tx)?
        .into_iter()
        .map(|(mut monitor, texts)| {
            if let Value::Object(map) = &mut monitor {
                map.insert(
                    "ownership".into(),
                    mark_of(texts.iter().map(String::as_str)),
                );
            }
            monitor
        })
        .collect();
    Ok(json!({
        "coolify": {
            "projects": projects,
            "applications": applications,
            "services": services,
        },
        "cloudflare": {"zones": zones},
        "uptime_kuma": {"monitors": monitors},
        "registry": super::registry::dump(tx)?,
    }))
}

/// Reads the world of a data file (`fabrik sandbox dump`).
pub(crate) fn dump_file(path: &std::path::Path, now: i64) -> Result<Value, SandboxError> {
    let store = Store::open_existing(path)?;
    store.run(TransactionBehavior::Deferred, now, dump)
}

/// The requests kept in `request_log`, oldest first: `{at, service,
/// method, path, query, body, status}` (env values as fingerprints).
pub(crate) fn requests_file(path: &std::path::Path, now: i64) -> Result<Value, SandboxError> {
    let store = Store::open_existing(path)?;
    store.run(TransactionBehavior::Deferred, now, |tx| {
        let mut stmt = tx.prepare(
            "SELECT at, service, method, path, query, body, status FROM request_log ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let query: String = r.get(4)?;
            let body: Option<String> = r.get(5)?;
            Ok(json!({
                "at": timestamp(r.get(0)?),
                "service": r.get::<_, String>(1)?,
                "method": r.get::<_, String>(2)?,
                "path": r.get::<_, String>(3)?,
                "query": serde_json::from_str::<Value>(&query).unwrap_or(Value::Null),
                "body": body.and_then(|b| serde_json::from_str::<Value>(&b).ok()),
                "status": r.get::<_, i64>(6)?,
            }))
        })?;
        Ok(Value::Array(rows.collect::<rusqlite::Result<Vec<_>>>()?))
    })
}

/// The TTL Cloudflare serves for an automatic TTL (`1`) and for every
/// proxied record: "all proxied records have a TTL of Auto, which is set
/// to 300 seconds" (cloudflare-docs `dns/proxy-status/index.mdx`;
/// `dns/manage-dns-records/reference/ttl.mdx`).
const AUTO_TTL: i64 = 300;

/// Answers a DNS question as a resolver would get it from Cloudflare: the
/// records of `record_type` at `name`, following CNAMEs inside the sandbox
/// zones. `status` is `NOERROR`, `NXDOMAIN` (no record at all at the name),
/// `REFUSED` (the name is in no sandbox zone) or `SERVFAIL` (its zone is
/// not active; `reason` says why). As Cloudflare answers:
///
/// - an A or AAAA question about a proxied name gets Cloudflare's edge
///   addresses, never the origin ("A DNS query to the proxied record
///   `blog.example.com` will be answered with a Cloudflare anycast IP
///   address instead of `192.0.2.1`", cloudflare-docs
///   `dns/proxy-status/index.mdx`), of both families whatever the records'
///   family (IPv6 compatibility is on for every plan, cloudflare-docs
///   `src/content/plans/index.json` `network.ipv6`);
/// - a proxied CNAME is flattened: resolvers get the edge addresses and
///   never the CNAME ("Proxied CNAME records are flattened by default",
///   cloudflare-docs `dns/cname-flattening/set-up-cname-flattening.mdx`);
/// - TXT contents are quoted character-strings of at most 255 bytes, as
///   they travel in DNS (RFC 1035 §3.3.14), whether they were stored
///   quoted or not (cloudflare notes §3);
/// - an automatic TTL is served as 300 seconds.
pub(crate) fn resolve(tx: &Tx<'_>, name: &str, record_type: &str) -> rusqlite::Result<Value> {
    let question = name.trim().trim_end_matches('.').to_lowercase();
    let record_type = record_type.trim().to_uppercase();
    let reply = |status: &str, answers: Vec<Value>| {
        json!({
            "name": question,
            "type": record_type,
            "status": status,
            "answers": answers,
        })
    };
    let zones = cloudflare::zones(tx)?;
    let zone_of = |n: &str| {
        zones
            .iter()
            .filter(|z| n == z.name || n.ends_with(&format!(".{}", z.name)))
            .max_by_key(|z| z.name.len())
            .cloned()
    };
    let Some(zone) = zone_of(&question) else {
        return Ok(reply("REFUSED", Vec::new()));
    };
    if zone.status != "active" {
        // Not active: the registrar does not delegate the zone to
        // Cloudflare's nameservers yet (pending: "the nameservers are not
        // switched"), or no longer does (moved), or Cloudflare "does not
        // respond to any DNS queries" (initializing): cloudflare-docs
        // `dns/zone-setups/reference/domain-status.mdx`. Resolvers follow
        // the delegation, so no resolver reaches these records.
        let mut r = reply("SERVFAIL", Vec::new());
        r["reason"] = json!(format!(
            "zone {} is {}: the registrar does not delegate it to Cloudflare's nameservers, so resolvers do not reach its records",
            zone.name, zone.status
        ));
        return Ok(r);
    }
    let answer = |r: &cloudflare::Record| {
        let content = if r.record_type == "TXT" {
            txt_encode(&canonical_content(RecordType::Txt, &r.content))
        } else {
            r.content.clone()
        };
        let ttl = if r.ttl == 1 { AUTO_TTL } else { r.ttl };
        json!({"name": r.name, "type": r.record_type, "content": content, "ttl": ttl})
    };
    let mut answers = Vec::new();
    let mut current = question.clone();
    let mut current_zone = zone;
    let mut status = "NOERROR";
    for hop in 0..8 {
        let at_name = cloudflare::records_named(tx, &current_zone, &current)?;
        if at_name.is_empty() {
            if hop == 0 {
                status = "NXDOMAIN";
            }
            break;
        }
        let proxied = at_name
            .iter()
            .any(|r| r.proxied && cloudflare::PROXIABLE.contains(&r.record_type.as_str()));
        if proxied && matches!(record_type.as_str(), "A" | "AAAA") {
            answers.extend(edge_addresses(&current, &record_type).into_iter().map(
                |ip| json!({"name": current, "type": record_type, "content": ip, "ttl": AUTO_TTL}),
            ));
            break;
        }
        let visible = |r: &&cloudflare::Record| !(r.proxied && r.record_type == "CNAME");
        let exact: Vec<&cloudflare::Record> = at_name
            .iter()
            .filter(visible)
            .filter(|r| r.record_type == record_type)
            .collect();
        if !exact.is_empty() {
            answers.extend(exact.into_iter().map(answer));
            break;
        }
        match at_name
            .iter()
            .filter(visible)
            .find(|r| r.record_type == "CNAME")
        {
            Some(cname) => {
                answers.push(answer(cname));
                current = cname.content.clone();
                match zone_of(&current) {
                    Some(z) if z.status == "active" => current_zone = z,
                    _ => break,
                }
            }
            None => break,
        }
    }
    Ok(reply(status, answers))
}

/// The edge addresses the sandbox gives a proxied `name`: two, derived
/// from the name (so that answers are stable), in ranges Cloudflare
/// publishes (<https://www.cloudflare.com/ips-v4>: `104.16.0.0/13`,
/// `172.64.0.0/13`; <https://www.cloudflare.com/ips-v6>:
/// `2606:4700::/32`).
fn edge_addresses(name: &str, record_type: &str) -> Vec<String> {
    let h = blake3::hash(name.as_bytes());
    let b = h.as_bytes();
    let v4 = [
        Ipv4Addr::new(104, 16 | (b[0] & 7), b[1], b[2]),
        Ipv4Addr::new(172, 64 | (b[3] & 7), b[4], b[5]),
    ];
    if record_type == "AAAA" {
        v4.iter()
            .zip([0x3030u16, 0x3031])
            .map(|(a, net)| {
                let o = a.octets();
                Ipv6Addr::new(
                    0x2606,
                    0x4700,
                    net,
                    0,
                    0,
                    0,
                    u16::from_be_bytes([o[0], o[1]]),
                    u16::from_be_bytes([o[2], o[3]]),
                )
                .to_string()
            })
            .collect()
    } else {
        v4.iter().map(Ipv4Addr::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_urls_and_bare_names() {
        assert_eq!(
            hosts_of("https://App.Example.com, http://b.example.com:8080/x,c.example.com"),
            vec!["app.example.com", "b.example.com", "c.example.com"]
        );
        assert!(hosts_of("").is_empty());
    }

    #[test]
    fn edge_addresses_are_cloudflare_s_and_stable() {
        for (name, kind) in [("shop.example.com", "A"), ("www.example.com", "AAAA")] {
            let first = edge_addresses(name, kind);
            assert_eq!(first, edge_addresses(name, kind));
            assert_eq!(first.len(), 2);
            for ip in &first {
                let ip: std::net::IpAddr = ip.parse().unwrap();
                assert_eq!(ip.is_ipv6(), kind == "AAAA", "{ip}");
                assert!(crate::spec::model::cloudflare_edge(ip), "{ip}");
            }
        }
        assert_ne!(
            edge_addresses("a.example.com", "A"),
            edge_addresses("b.example.com", "A")
        );
    }

    #[test]
    fn marks_are_found_in_any_text() {
        let run = "01jdx3v5q6m7n8p9r0s1t2v3w4";
        let found = mark_of(["nothing here", &format!("owner:fabrik:blog:{run}") as &str]);
        assert_eq!(found["deployment"], "blog");
        assert_eq!(found["run"], run);
        assert_eq!(mark_of(["plain"]), Value::Null);
    }
}
