//! [`Dns`] on Cloudflare's v4 API, true to `contracts/cloudflare/NOTES.md`.
//!
//! - Every answer is an envelope `{success, errors, messages, result,
//!   result_info}`; failure is decided on the status *and* `success`, and
//!   matched on `errors[].code`, never on message text (§2).
//! - Lists are paginated until a short page or `total_count` (§2).
//! - Ownership is the compact mark in the record comment (fits the
//!   100-character limit of free zones), optionally also a tag (§4, §8).
//! - A POST is not idempotent: 81057/81058 ("identical record exists") make
//!   the client re-list and return the record when it carries this very
//!   run's mark (a lost answer), and fail naming the record's owner
//!   otherwise (§6).
//! - Contents are compared as Cloudflare stores them (AAAA compressed, CNAME
//!   lower case without the dot, TXT decoded; cloudflare notes §3), and TXT
//!   is sent as quoted character-strings of at most 255 bytes.
//! - 81044 and 404 on delete mean "already gone" (§4).
//! - A record without Fabrik's mark is never modified unless the spec adopts
//!   it explicitly (§9, §10.5); an adopted record keeps its comment.
//! - PATCH bodies carry `type`, `name` and `content` (the schema requires
//!   them) plus only the other fields that differ.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Dns;
use super::error::{ErrorKind, ForbiddenReason, ProviderError, ProviderName};
use super::http::{self, Failure, Http, HttpConfig, Request, Response};
use super::types::*;
use crate::ownership::OwnershipMark;
use crate::secret::{Scrubber, SecretValue};

const P: ProviderName = ProviderName::Cloudflare;

/// Records per page when listing (the API allows up to 5,000).
const PER_PAGE: u32 = 500;

/// Where Cloudflare is and how to authenticate.
#[derive(Debug, Clone)]
pub struct CloudflareConfig {
    /// API root; [`CloudflareConfig::DEFAULT_API_URL`] unless pointed
    /// elsewhere (the sandbox).
    pub api_url: String,
    /// An API token with Zone:Read and DNS:Edit on the zones used.
    pub token: SecretValue,
    /// Also write the mark as a record tag (not every plan allows tags).
    pub use_tags: bool,
}

impl CloudflareConfig {
    /// Cloudflare's public API.
    pub const DEFAULT_API_URL: &'static str = "https://api.cloudflare.com/client/v4";

    /// The public API with `token`, comments only.
    pub fn new(token: SecretValue) -> Self {
        Self {
            api_url: Self::DEFAULT_API_URL.to_owned(),
            token,
            use_tags: false,
        }
    }
}

/// The Cloudflare DNS client.
#[derive(Debug)]
pub struct CloudflareClient {
    http: Http,
    use_tags: bool,
    seen: Mutex<Seen>,
}

/// What this process has read: the zones found by name, and what names
/// held when it last listed them ([`Dns::records_at`]), kept until one of
/// this client's own writes touches the name. A run looks at a name before
/// it creates there, and again in the create itself, and needs to ask only
/// once (it holds the deployment's lock). A listing that overlapped a
/// write is not kept.
#[derive(Debug, Default)]
struct Seen {
    /// The zones found by name (lower case).
    zones: HashMap<String, Vec<VZone>>,
    writes: u64,
    /// By zone id and lower-case name.
    listed: HashMap<(String, String), Vec<RemoteRecord>>,
}

impl Seen {
    /// A write to `name` (or, by id, to whatever name holds record `id`)
    /// begins or ends.
    fn wrote(&mut self, zone: &Zone, name: Option<&str>, id: Option<&str>) {
        self.writes += 1;
        self.listed.retain(|(z, n), records| {
            *z != zone.id
                || !(name.is_some_and(|w| w.eq_ignore_ascii_case(n))
                    || id.is_some_and(|id| records.iter().any(|r| r.id == id)))
        });
    }
}

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    result: Value,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

#[derive(Debug, Deserialize)]
struct ResultInfo {
    #[serde(default)]
    page: Option<u32>,
    #[serde(default)]
    per_page: Option<u32>,
    #[serde(default)]
    total_count: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    code: u64,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Clone, Deserialize)]
struct VZone {
    id: String,
    name: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    name_servers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct VRecord {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    ttl: u32,
    #[serde(default)]
    proxied: bool,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

impl From<VRecord> for RemoteRecord {
    fn from(r: VRecord) -> Self {
        let mark = r
            .comment
            .as_deref()
            .and_then(OwnershipMark::parse)
            .or_else(|| r.tags.iter().find_map(|t| OwnershipMark::parse(t)));
        Self {
            id: r.id,
            kind: r.kind,
            name: r.name,
            content: r.content,
            ttl: r.ttl,
            proxied: r.proxied,
            comment: r.comment,
            tags: r.tags,
            mark,
        }
    }
}

fn proxiable(kind: RecordType) -> bool {
    matches!(kind, RecordType::A | RecordType::Aaaa | RecordType::Cname)
}

/// The TTL Cloudflare stores: 1 (automatic) for proxied records.
fn effective_ttl(d: &RecordDesired) -> u32 {
    if d.proxied && proxiable(d.kind) {
        1
    } else {
        d.ttl
    }
}

/// The content as sent: TXT as quoted character-strings (the form
/// Cloudflare documents, TS `records.ts:6294-6300`), the rest canonical.
fn wire_content(desired: &RecordDesired) -> String {
    let c = desired.kind.canonical(&desired.content);
    match desired.kind {
        RecordType::Txt => crate::spec::model::txt_encode(&c),
        _ => c,
    }
}

/// The body of a create call.
pub(crate) fn create_body(desired: &RecordDesired, mark: &OwnershipMark, tags: bool) -> Value {
    let mut b = Map::new();
    b.insert("type".into(), json!(desired.kind.as_str()));
    b.insert("name".into(), json!(desired.name));
    b.insert("content".into(), json!(wire_content(desired)));
    b.insert("ttl".into(), json!(effective_ttl(desired)));
    if proxiable(desired.kind) {
        b.insert("proxied".into(), json!(desired.proxied));
    }
    b.insert("comment".into(), json!(mark.to_compact()));
    if tags {
        b.insert("tags".into(), json!([mark.to_compact()]));
    }
    Value::Object(b)
}

/// The body of a PATCH turning `remote` into `desired`; `None` when nothing
/// differs.
pub(crate) fn patch_body(remote: &RemoteRecord, desired: &RecordDesired) -> Option<Value> {
    let mut changed = false;
    let mut b = Map::new();
    b.insert("type".into(), json!(desired.kind.as_str()));
    b.insert("name".into(), json!(desired.name));
    b.insert("content".into(), json!(wire_content(desired)));
    if !desired.kind.same(&remote.content, &desired.content) {
        changed = true;
    }
    let ttl = effective_ttl(desired);
    if remote.ttl != ttl {
        b.insert("ttl".into(), json!(ttl));
        changed = true;
    }
    if proxiable(desired.kind) && remote.proxied != desired.proxied {
        b.insert("proxied".into(), json!(desired.proxied));
        changed = true;
    }
    changed.then_some(Value::Object(b))
}

impl CloudflareClient {
    /// A client; does no I/O.
    pub fn new(config: CloudflareConfig, http: HttpConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            http: Http::new(P, &config.api_url, Some(config.token), http, classify)?,
            use_tags: config.use_tags,
            seen: Mutex::default(),
        })
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `write` to a record at `name` (or of id `id`), forgetting what
    /// that name held before and after it.
    async fn writing<T>(
        &self,
        zone: &Zone,
        name: Option<&str>,
        id: Option<&str>,
        write: impl Future<Output = T>,
    ) -> T {
        self.seen().wrote(zone, name, id);
        let out = write.await;
        self.seen().wrote(zone, name, id);
        out
    }

    async fn call(&self, req: &Request) -> Result<(Value, Option<ResultInfo>), ProviderError> {
        let resp = self.http.send(req).await?;
        let env: Envelope = resp.json(&self.http, req)?;
        if !env.success {
            let f = classify(&resp, &self.http.scrubber(req));
            let mut e = self.http.error(req, f.kind, Some(resp.status.as_u16()));
            e.message = f.message;
            e.hint = f.hint;
            e.code = f.code;
            return Err(e);
        }
        Ok((env.result, env.result_info))
    }

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        req: &Request,
        v: Value,
    ) -> Result<T, ProviderError> {
        serde_json::from_value(v).map_err(|e| {
            // The parser's message quotes the value it choked on, which
            // may be an echoed secret.
            let text = self
                .http
                .scrubber(req)
                .scrub(&format!("unexpected result: {e}"));
            self.http
                .error(req, ErrorKind::MalformedResponse, Some(200))
                .with_message(text)
        })
    }

    async fn list_pages(&self, base: Request) -> Result<Vec<RemoteRecord>, ProviderError> {
        let mut out = Vec::new();
        let mut page = 1u32;
        loop {
            let req = base
                .clone()
                .query("per_page", PER_PAGE.to_string())
                .query("page", page.to_string());
            let (result, info) = self.call(&req).await?;
            let records: Vec<VRecord> = self.decode(&req, result)?;
            let n = records.len();
            out.extend(records.into_iter().map(RemoteRecord::from));
            let per_page = info.as_ref().and_then(|i| i.per_page).unwrap_or(PER_PAGE);
            let total = info.as_ref().and_then(|i| i.total_count);
            let current = info.as_ref().and_then(|i| i.page).unwrap_or(page);
            let done = n == 0
                || (n as u32) < per_page
                || total.is_some_and(|t| u64::from(current) * u64::from(per_page) >= t);
            if done {
                return Ok(out);
            }
            page += 1;
        }
    }

    async fn zones_named(&self, name: &str) -> Result<Vec<VZone>, ProviderError> {
        let name = name.to_ascii_lowercase();
        if let Some(known) = self.seen().zones.get(&name) {
            return Ok(known.clone());
        }
        let req = Request::new(Method::GET, "find zone", &["zones"]).query("name", name.clone());
        let (result, _) = self.call(&req).await?;
        let zones: Vec<VZone> = self.decode(&req, result)?;
        let zones: Vec<VZone> = zones
            .into_iter()
            .filter(|z| z.name.eq_ignore_ascii_case(&name))
            .collect();
        // A run's writes are to records, never to zones: kept for the run.
        self.seen().zones.insert(name, zones.clone());
        Ok(zones)
    }
}

#[async_trait]
impl Dns for CloudflareClient {
    async fn find_zone(&self, name: &str) -> Result<Zone, ProviderError> {
        let zones = self.zones_named(name).await?;
        match zones.as_slice() {
            [z] => Ok(Zone {
                id: z.id.clone(),
                name: z.name.clone(),
            }),
            // Zones of one name in several accounts (one moved away): the
            // active one is the one that answers.
            many if many
                .iter()
                .filter(|z| z.status.as_deref() == Some("active"))
                .count()
                == 1 =>
            {
                let z = many
                    .iter()
                    .find(|z| z.status.as_deref() == Some("active"))
                    .ok_or_else(|| ProviderError::new(P, "find zone", ErrorKind::NotFound))?;
                Ok(Zone {
                    id: z.id.clone(),
                    name: z.name.clone(),
                })
            }
            [] => Err(ProviderError::new(P, "find zone", ErrorKind::NotFound)
                .with_message(format!("no zone named {name:?}"))
                .with_hint(
                    "check the zone name, and that CLOUDFLARE_API_TOKEN has Zone:Read on it",
                )),
            many => Err(ProviderError::new(
                P,
                "find zone",
                ErrorKind::AmbiguousMatch {
                    candidates: many.iter().map(|z| z.id.clone()).collect(),
                },
            )
            .with_message(format!("{} zones are named {name:?}", many.len()))
            .with_hint("restrict the token to one account")),
        }
    }

    async fn zone_for(&self, fqdn: &str) -> Result<Zone, ProviderError> {
        let fqdn = fqdn.trim_end_matches('.');
        let labels: Vec<&str> = fqdn.split('.').collect();
        for start in 0..labels.len().saturating_sub(1) {
            let candidate = labels[start..].join(".");
            if !self.zones_named(&candidate).await?.is_empty() {
                return self.find_zone(&candidate).await;
            }
        }
        Err(ProviderError::new(P, "find zone", ErrorKind::NotFound)
            .with_message(format!("no zone holds {fqdn:?}"))
            .with_hint(
                "add the domain to Cloudflare, or give CLOUDFLARE_API_TOKEN Zone:Read on it",
            ))
    }

    async fn zone_status(&self, zone: &Zone) -> Result<Option<ZoneStatus>, ProviderError> {
        // The zone list that found the zone has its status and nameservers
        // (a zone object, as `GET /zones/{id}` answers: cloudflare-typescript
        // `src/resources/zones/zones.ts`, `Zone.status`, `Zone.name_servers`).
        let listed = self
            .zones_named(&zone.name)
            .await?
            .into_iter()
            .find(|z| z.id == zone.id && z.status.is_some());
        let z = match listed {
            Some(z) => z,
            None => {
                let req = Request::new(Method::GET, "read zone", &["zones", &zone.id]);
                let (result, _) = self.call(&req).await?;
                self.decode(&req, result)?
            }
        };
        Ok(z.status.map(|status| ZoneStatus {
            status,
            name_servers: z.name_servers,
        }))
    }

    async fn records_at(
        &self,
        zone: &Zone,
        name: &str,
    ) -> Result<Vec<RemoteRecord>, ProviderError> {
        let base = Request::new(
            Method::GET,
            "list records",
            &["zones", &zone.id, "dns_records"],
        )
        .query("name", name.to_ascii_lowercase());
        let key = (zone.id.clone(), name.to_ascii_lowercase());
        let before = {
            let known = self.seen();
            if let Some(records) = known.listed.get(&key) {
                return Ok(records.clone());
            }
            known.writes
        };
        let records = self.list_pages(base).await?;
        let mut known = self.seen();
        if known.writes == before {
            known.listed.insert(key, records.clone());
        }
        Ok(records)
    }

    async fn list_records(
        &self,
        zone: &Zone,
        kind: RecordType,
        name: &str,
    ) -> Result<Vec<RemoteRecord>, ProviderError> {
        let base = Request::new(
            Method::GET,
            "list records",
            &["zones", &zone.id, "dns_records"],
        )
        .query("type", kind.as_str())
        .query("name", name.to_ascii_lowercase());
        self.list_pages(base).await
    }

    async fn create_record(
        &self,
        zone: &Zone,
        desired: &RecordDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteRecord, ProviderError> {
        let req = Request::new(
            Method::POST,
            "create record",
            &["zones", &zone.id, "dns_records"],
        )
        .json(&create_body(desired, mark, self.use_tags));
        let sent = self
            .writing(zone, Some(&desired.name), None, self.call(&req))
            .await;
        match sent {
            Ok((result, _)) => Ok(self.decode::<VRecord>(&req, result)?.into()),
            Err(e) if matches!(e.code.as_deref(), Some("81057" | "81058")) => {
                let found = self.list_records(zone, desired.kind, &desired.name).await?;
                let same: Vec<RemoteRecord> = found
                    .into_iter()
                    .filter(|r| desired.kind.same(&r.content, &desired.content))
                    .collect();
                // Only this very run's record is taken: one of another
                // run, journal or deployment is never "created" here.
                if let Some(mine) = same.iter().find(|r| r.mark.as_ref() == Some(mark)) {
                    return Ok(mine.clone());
                }
                let mut e = e;
                e.kind = ErrorKind::NotOwned;
                e.hint = Some(match same.iter().find_map(|r| r.mark.as_ref()) {
                    Some(owner) => format!(
                        "an identical {} record for {} exists and belongs to {}; apply from that journal, or delete the record",
                        desired.kind,
                        desired.name,
                        owner.owner()
                    ),
                    None => format!(
                        "an identical {} record for {} exists but is not Fabrik's; set adopt: true on the record in the spec to take it over",
                        desired.kind, desired.name
                    ),
                });
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn update_record(
        &self,
        zone: &Zone,
        remote: &RemoteRecord,
        desired: &RecordDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteRecord, ProviderError> {
        let owned = remote
            .mark
            .as_ref()
            .is_some_and(|m| m.deployment == mark.deployment);
        if !owned && !desired.adopt {
            let whose = match &remote.mark {
                Some(m) => format!("it belongs to deployment {}", m.deployment),
                None => "it has no Fabrik mark".to_owned(),
            };
            return Err(ProviderError::new(P, "update record", ErrorKind::NotOwned)
                .with_message(format!(
                    "{} record {} ({}) was not created by this deployment: {whose}",
                    remote.kind, remote.name, remote.id
                ))
                .with_hint(
                    "fabrik never modifies a record it does not own; set adopt: true on the record in the spec to take it over",
                ));
        }
        let Some(body) = patch_body(remote, desired) else {
            return Ok(remote.clone());
        };
        let req = Request::new(
            Method::PATCH,
            "update record",
            &["zones", &zone.id, "dns_records", &remote.id],
        )
        .json(&body);
        let (result, _) = self
            .writing(zone, Some(&remote.name), Some(&remote.id), self.call(&req))
            .await?;
        Ok(self.decode::<VRecord>(&req, result)?.into())
    }

    async fn delete_record(&self, zone: &Zone, id: &str) -> Result<DeleteOutcome, ProviderError> {
        let req = Request::new(
            Method::DELETE,
            "delete record",
            &["zones", &zone.id, "dns_records", id],
        );
        match self.writing(zone, None, Some(id), self.call(&req)).await {
            Ok(_) => Ok(DeleteOutcome {
                already_gone: false,
            }),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(DeleteOutcome { already_gone: true }),
            Err(e) => Err(e),
        }
    }

    async fn list_owned(&self, zone: &Zone) -> Result<Vec<RemoteRecord>, ProviderError> {
        let base = Request::new(
            Method::GET,
            "list owned records",
            &["zones", &zone.id, "dns_records"],
        )
        .query("comment.startswith", "fabrik:");
        let all = self.list_pages(base).await?;
        Ok(all.into_iter().filter(|r| r.mark.is_some()).collect())
    }
}

/// Cloudflare error envelopes: classified by `errors[].code`, then status.
fn classify(resp: &Response, scrubber: &Scrubber) -> Failure {
    let body: Option<Value> = serde_json::from_slice(&resp.body).ok();
    let errors: Vec<ApiError> = body
        .as_ref()
        .and_then(|b| b.get("errors"))
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let codes: Vec<u64> = errors.iter().map(|e| e.code).collect();
    let message = if errors.is_empty() {
        http::excerpt(scrubber, &resp.body)
    } else {
        errors
            .iter()
            .map(|e| format!("{} ({})", e.message, e.code))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let has = |c: u64| codes.contains(&c);
    let status = resp.status.as_u16();
    let (kind, hint): (ErrorKind, Option<String>) = if has(81057) || has(81058) {
        (
            ErrorKind::Conflict,
            Some("an identical record already exists".into()),
        )
    } else if has(81053) || has(81054) {
        (
            ErrorKind::Conflict,
            Some("a record of another type (A, AAAA or CNAME) already uses this name; remove it or change the spec".into()),
        )
    } else if has(81044) || has(7003) {
        (
            ErrorKind::NotFound,
            Some("the record no longer exists".into()),
        )
    } else if has(9106) || has(6003) || has(6103) || status == 401 {
        (
            ErrorKind::Unauthorized,
            Some(
                "check CLOUDFLARE_API_TOKEN: it must be an API token sent as a bearer token".into(),
            ),
        )
    } else if has(10000) || status == 403 {
        (
            ErrorKind::Forbidden(ForbiddenReason::MissingPermission {
                ability: Some("Zone:Read and DNS:Edit".into()),
            }),
            Some("the token is invalid or lacks Zone:Read and DNS:Edit on this zone; create one under My Profile → API Tokens".into()),
        )
    } else {
        let kind = http::kind_for_status(resp.status, &resp.headers);
        let hint = match &kind {
            ErrorKind::RateLimited { .. } => Some(
                "cloudflare allows 1,200 requests per 5 minutes per user; wait and run again"
                    .into(),
            ),
            ErrorKind::Server => Some("cloudflare failed; retry later".into()),
            ErrorKind::NotFound => Some("the zone or record does not exist".into()),
            ErrorKind::Validation { .. } => {
                Some("cloudflare rejected the record; the message says why".into())
            }
            _ => None,
        };
        (kind, hint)
    };
    Failure {
        kind,
        code: codes.first().map(u64::to_string),
        message: scrubber.scrub(&message),
        hint,
    }
}
