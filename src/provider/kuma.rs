//! [`Monitors`] on Uptime Kuma 1.23 and 2.x over Socket.IO, true to
//! `contracts/uptime-kuma/NOTES.md`.
//!
//! - The first emit waits for `loginRequired` (or `autoLogin`): the server
//!   registers its handlers only then, and an earlier emit is lost (§2).
//! - Login by password once, then by the JWT on every reconnect (§3); a
//!   "not logged in" ack triggers one re-login.
//! - The version comes from the `info` event pushed after login; 2.x needs
//!   `conditions: []` on add, 1.x must not get it (§5, §7).
//! - Edits send the full object: `getMonitor` → merge → `editMonitor` (§5).
//! - No uniqueness anywhere: monitors are found by the mark in their
//!   description (or the `fabrik` tag value earlier versions wrote). New
//!   monitors get no tag: Uptime Kuma 2.5.3 builds its Prometheus label set
//!   from the tag names at start-up (`server/prometheus.js:38-97`), so a
//!   tag created later makes every monitor carrying it vanish from
//!   `/metrics` until a restart, and a per-run value would be a new label
//!   value per run (kuma notes §6).
//! - The notifications the server has come with the login
//!   (`notificationList`, `server/client.js:18-36`): ids are checked
//!   against them before any change, since an unknown id makes `add` and
//!   `editMonitor` save the monitor and then fail on a foreign key
//!   (`server/server.js:1793-1805`, no transaction; kuma notes §2).
//! - `add` is never repeated after it may have reached the server: the error
//!   says the outcome is unknown and the caller looks the monitor up.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use super::Monitors;
use super::error::{ErrorKind, ProviderError, ProviderName};
use super::http::{HttpConfig, RetryEvent};
use super::socketio::{SocketIoClient, SocketIoError};
use super::types::*;
use crate::id::DeploymentId;
use crate::ownership::{OWNER_TAG, OwnershipMark};
use crate::secret::{Scrubber, SecretValue};

const P: ProviderName = ProviderName::UptimeKuma;

/// Where Uptime Kuma is and how to log in.
#[derive(Debug, Clone)]
pub struct KumaConfig {
    /// The instance URL, e.g. `https://status.example.com`.
    pub url: String,
    /// User name.
    pub username: String,
    /// Password (accounts with 2FA are not supported).
    pub password: SecretValue,
}

struct Session {
    sio: SocketIoClient,
    /// Whether the server is 2.x (payload differences).
    v2: bool,
    /// The notification ids pushed at login, when they were.
    notifications: Option<Vec<u64>>,
}

/// The Uptime Kuma client. One websocket, opened on first use.
pub struct KumaClient {
    config: KumaConfig,
    http: HttpConfig,
    session: Mutex<Option<Session>>,
    /// The JWT from the last password login, for `loginByToken`.
    jwt: std::sync::Mutex<Option<SecretValue>>,
    /// The monitor list as last read, until this client changes a monitor.
    listed: std::sync::Mutex<Listed>,
}

/// The monitor list this process last read: a run reads it in preflight
/// and again before it creates or looks monitors up, and needs to ask once
/// (it holds the deployment's lock). Forgotten at each change this client
/// makes; a read that overlapped a change is not kept.
#[derive(Debug, Default)]
struct Listed {
    changes: u64,
    monitors: Option<Vec<Value>>,
}

/// The events that only read.
const READS: &[&str] = &["getMonitorList", "getMonitor"];

impl std::fmt::Debug for KumaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KumaClient")
            .field("url", &self.config.url)
            .field("username", &self.config.username)
            .finish_non_exhaustive()
    }
}

/// A transport failure of one call, before it is turned into an error.
enum CallFailure {
    /// The request may have reached the server (ack timeout, closed after
    /// sending).
    AfterSend(ProviderError),
    /// Nothing was sent (connect, login).
    Before(ProviderError),
    /// Not logged in any more: log in again and repeat.
    LoggedOut,
}

impl KumaClient {
    /// A client; does no I/O. `http` gives the timeouts (connect, and each
    /// ack) and the retry policy for reconnects.
    pub fn new(config: KumaConfig, http: HttpConfig) -> Self {
        Self {
            config,
            http,
            session: Mutex::new(None),
            jwt: std::sync::Mutex::new(None),
            listed: std::sync::Mutex::default(),
        }
    }

    fn scrubber(&self) -> Scrubber {
        let mut s = Scrubber::with([&self.config.password]);
        if let Ok(j) = self.jwt.lock()
            && let Some(t) = j.as_ref()
        {
            s.add(t);
        }
        s
    }

    fn err(&self, op: &str, kind: ErrorKind) -> ProviderError {
        let mut e = ProviderError::new(P, op, kind);
        e.endpoint = super::socketio::endpoint(&self.config.url)
            .ok()
            .map(|u| format!("socket.io {}", u.origin().ascii_serialization()));
        e
    }

    fn sio_error(&self, op: &str, e: SocketIoError, sent: bool) -> ProviderError {
        let kind = match &e {
            SocketIoError::Timeout(_) => ErrorKind::Timeout { request_sent: sent },
            SocketIoError::Closed if sent => ErrorKind::Reset,
            SocketIoError::Closed | SocketIoError::Connect { .. } => ErrorKind::Connect,
            SocketIoError::Refused(_) => ErrorKind::Rejected,
            SocketIoError::InvalidUrl(_) => ErrorKind::InvalidRequest,
        };
        let mut err = self.err(op, kind);
        err.hint = Some(match &e {
            SocketIoError::InvalidUrl(_) => {
                "set UPTIME_KUMA_URL to the http(s) URL of Uptime Kuma".into()
            }
            _ => "check that UPTIME_KUMA_URL is reachable and is Uptime Kuma 1.23 or 2.x (Socket.IO at /socket.io/)".into(),
        });
        if let (SocketIoError::Connect { source, .. }, Ok(url)) =
            (&e, url::Url::parse(self.config.url.trim()))
        {
            let source: &(dyn std::error::Error + 'static) = source.as_ref();
            if let Some(u) = super::http::unreachable(&url, P.url_variable(), source, false) {
                err.message = u.message;
                err.hint = Some(u.hint);
            } else if let Some(answer) = not_socket_io(source) {
                err.message = format!(
                    "UPTIME_KUMA_URL {}: this server answered {answer}; it does not look like Uptime Kuma (expected a Socket.IO endpoint at /socket.io/)",
                    super::http::origin(&url)
                );
                err.hint = Some(
                    "set UPTIME_KUMA_URL to the address Uptime Kuma's web interface opens at"
                        .into(),
                );
            }
        }
        err.source = Some(Box::new(e));
        err
    }

    async fn login(&self, sio: &SocketIoClient) -> Result<(), ProviderError> {
        let t = self.http.request_timeout;
        let (first, _) = sio
            .wait_event(&["loginRequired", "autoLogin"], |_| true, t)
            .await
            .map_err(|e| self.sio_error("connect", e, false))?;
        if first == "autoLogin" {
            return Ok(());
        }
        let cached = self.jwt.lock().ok().and_then(|j| j.clone());
        if let Some(jwt) = cached {
            let ack = sio
                .emit_ack("loginByToken", vec![json!(jwt.expose())], t)
                .await
                .map_err(|e| self.sio_error("log in", e, false))?;
            if ack_ok(&ack) {
                return Ok(());
            }
            if let Ok(mut j) = self.jwt.lock() {
                *j = None;
            }
        }
        let ack = sio
            .emit_ack(
                "login",
                vec![json!({
                    "username": self.config.username,
                    "password": self.config.password.expose(),
                    "token": "",
                })],
                t,
            )
            .await
            .map_err(|e| self.sio_error("log in", e, false))?;
        let obj = ack.first().cloned().unwrap_or(Value::Null);
        if obj.get("ok").and_then(Value::as_bool) == Some(true) {
            if let Some(token) = obj.get("token").and_then(Value::as_str)
                && let Ok(mut j) = self.jwt.lock()
            {
                *j = Some(SecretValue::new(token));
            }
            return Ok(());
        }
        let msg = obj.get("msg").and_then(Value::as_str).unwrap_or("");
        let (kind, hint) = if busy(&obj) {
            (
                ErrorKind::Server,
                "uptime kuma's database was busy; try again",
            )
        } else if obj.get("tokenRequired").and_then(Value::as_bool) == Some(true) {
            (
                ErrorKind::Unauthorized,
                "this account has two-factor authentication; use an account without 2FA for fabrik",
            )
        } else if rate_limited(&obj) {
            (
                ErrorKind::RateLimited {
                    retry_after: Some(Duration::from_secs(60)),
                },
                "uptime kuma allows 20 logins per minute; wait a minute",
            )
        } else {
            (
                ErrorKind::Unauthorized,
                "check UPTIME_KUMA_USERNAME and UPTIME_KUMA_PASSWORD",
            )
        };
        Err(self
            .err("log in", kind)
            .with_message(self.scrubber().scrub(msg))
            .with_hint(hint))
    }

    async fn open(&self) -> Result<Session, ProviderError> {
        let sio = SocketIoClient::connect(&self.config.url, self.http.connect_timeout)
            .await
            .map_err(|e| self.sio_error("connect", e, false))?;
        self.login(&sio).await?;
        let (_, info) = sio
            .wait_event(
                &["info"],
                |a| {
                    a.first()
                        .and_then(|i| i.get("version"))
                        .is_some_and(|v| v.is_string())
                },
                self.http.request_timeout,
            )
            .await
            .map_err(|e| {
                let mut err = self.sio_error("read server version", e, false);
                err.kind = ErrorKind::Unsupported;
                err.hint = Some(
                    "uptime kuma sent no version after login; fabrik supports 1.23 and 2.x".into(),
                );
                err
            })?;
        let version = info
            .first()
            .and_then(|i| i.get("version"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        // Pushed with the login, before its ack (`afterLogin`,
        // `server/server.js:1828-1861`): already here. Only the ids are
        // kept; `config` holds the notification's own secrets.
        let notifications = sio
            .wait_event(&["notificationList"], |_| true, self.http.request_timeout)
            .await
            .ok()
            .map(|(_, args)| notification_list(args.first()));
        Ok(Session {
            sio,
            v2: major >= 2,
            notifications,
        })
    }

    /// Something the session learnt at login (opened on demand).
    async fn session_info<T>(&self, f: impl Fn(&Session) -> T) -> Result<T, ProviderError> {
        let mut guard = self.session.lock().await;
        if guard.as_ref().is_none_or(|s| s.sio.is_closed()) {
            *guard = None;
            *guard = Some(self.open().await?);
        }
        guard
            .as_ref()
            .map(f)
            .ok_or_else(|| self.err("connect", ErrorKind::Connect))
    }

    /// One emit on the current session (opened and logged in on demand).
    async fn emit_once(
        &self,
        op: &str,
        event: &str,
        args: &[Value],
    ) -> Result<(Value, bool), CallFailure> {
        let mut guard = self.session.lock().await;
        if guard.as_ref().is_none_or(|s| s.sio.is_closed()) {
            *guard = None;
            *guard = Some(self.open().await.map_err(CallFailure::Before)?);
        }
        let Some(session) = guard.as_ref() else {
            return Err(CallFailure::Before(self.err(op, ErrorKind::Connect)));
        };
        let v2 = session.v2;
        match session
            .sio
            .emit_ack(event, args.to_vec(), self.http.request_timeout)
            .await
        {
            Ok(ack) => {
                let obj = ack.into_iter().next().unwrap_or(Value::Null);
                if obj.get("ok") == Some(&Value::Bool(false))
                    && obj
                        .get("msg")
                        .and_then(Value::as_str)
                        .is_some_and(|m| m.contains("not logged in"))
                {
                    *guard = None;
                    return Err(CallFailure::LoggedOut);
                }
                Ok((obj, v2))
            }
            Err(e) => {
                *guard = None;
                Err(CallFailure::AfterSend(self.sio_error(op, e, true)))
            }
        }
    }

    /// Emits with retries: failures before sending are retried; failures
    /// after sending only when `idempotent` (else the outcome is unknown).
    async fn call(
        &self,
        op: &str,
        event: &str,
        args: Vec<Value>,
        idempotent: bool,
    ) -> Result<(Value, bool), ProviderError> {
        let policy = &self.http.retry;
        let attempts = policy.attempts.max(1);
        let mut relogged = false;
        let mut attempt = 1;
        loop {
            let mut err = match self.emit_once(op, event, &args).await {
                // The server said the call failed for a passing reason:
                // nothing was applied, so it is safe to repeat.
                Ok((obj, _)) if busy(&obj) => self
                    .err(op, ErrorKind::Server)
                    .with_message(self.scrubber().scrub(ack_msg(&obj)))
                    .with_hint("uptime kuma's database was busy; try again"),
                // Its rate limiter refused the call before doing anything:
                // waited out with backoff, like an HTTP 429.
                Ok((obj, _)) if rate_limited(&obj) => self
                    .err(op, ErrorKind::RateLimited { retry_after: None })
                    .with_message(self.scrubber().scrub(ack_msg(&obj)))
                    .with_hint("uptime kuma's rate limit was hit; wait and retry"),
                Ok(r) => return Ok(r),
                Err(CallFailure::LoggedOut) if !relogged => {
                    relogged = true;
                    continue;
                }
                Err(CallFailure::LoggedOut) => self
                    .err(op, ErrorKind::Unauthorized)
                    .with_message("not logged in after logging in again")
                    .with_hint("check UPTIME_KUMA_USERNAME and UPTIME_KUMA_PASSWORD"),
                Err(CallFailure::Before(e)) => e,
                Err(CallFailure::AfterSend(mut e)) => {
                    if !idempotent {
                        e.ambiguous = true;
                        e.hint = Some("the request may have reached uptime kuma; fabrik looks the monitor up by its fabrik tag before trying again".into());
                    }
                    e
                }
            };
            err.attempts = attempt;
            if !err.is_transient() || attempt >= attempts {
                return Err(err);
            }
            let delay = match &err.kind {
                ErrorKind::RateLimited {
                    retry_after: Some(d),
                } => *d,
                _ => policy.backoff(attempt, rand::random_range(0.0..1.0)),
            };
            if let Some(obs) = &self.http.observer {
                obs.on_retry(&RetryEvent {
                    provider: P,
                    operation: op.to_owned(),
                    attempt,
                    reason: err.kind.to_string(),
                    delay,
                });
            }
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// Like [`Self::call`], then requires `ok: true`.
    async fn call_ok(
        &self,
        op: &str,
        event: &str,
        args: Vec<Value>,
        idempotent: bool,
    ) -> Result<(Value, bool), ProviderError> {
        let change = !READS.contains(&event);
        // An add makes a monitor nothing read so far describes: what was
        // read stays true of every other while it is under way (monitors
        // are added side by side, each looked for by its name first).
        if change && event != "add" {
            self.changed();
        }
        let called = self.call(op, event, args, idempotent).await;
        if change {
            self.changed();
        }
        let (obj, v2) = called?;
        if obj.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok((obj, v2));
        }
        let msg = obj
            .get("msg")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        Err(self
            .err(op, ErrorKind::Rejected)
            .with_message(self.scrubber().scrub(msg))
            .with_hint(
                "uptime kuma refused the request; the message (an i18n key on 2.x) says why",
            ))
    }

    fn listed(&self) -> std::sync::MutexGuard<'_, Listed> {
        self.listed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A change begins or ends: the list read before is not current.
    fn changed(&self) {
        let mut l = self.listed();
        l.changes += 1;
        l.monitors = None;
    }

    /// Every monitor, read once until this client changes one.
    async fn monitors(&self) -> Result<Vec<Value>, ProviderError> {
        let before = {
            let l = self.listed();
            if let Some(known) = &l.monitors {
                return Ok(known.clone());
            }
            l.changes
        };
        let list = self.read_monitors().await?;
        let mut l = self.listed();
        if l.changes == before {
            l.monitors = Some(list.clone());
        }
        Ok(list)
    }

    async fn read_monitors(&self) -> Result<Vec<Value>, ProviderError> {
        let op = "list monitors";
        let mut attempt = 0;
        loop {
            attempt += 1;
            {
                let guard = self.session.lock().await;
                if let Some(s) = guard.as_ref() {
                    s.sio.forget("monitorList");
                }
            }
            self.call_ok(op, "getMonitorList", vec![], true).await?;
            let guard = self.session.lock().await;
            let Some(s) = guard.as_ref() else {
                if attempt >= self.http.retry.attempts.max(1) {
                    return Err(self.err(op, ErrorKind::Reset));
                }
                continue;
            };
            match s
                .sio
                .wait_event(&["monitorList"], |_| true, self.http.request_timeout)
                .await
            {
                Ok((_, args)) => {
                    let list = match args.into_iter().next() {
                        Some(Value::Object(m)) => m.into_iter().map(|(_, v)| v).collect(),
                        Some(Value::Array(a)) => a,
                        _ => Vec::new(),
                    };
                    return Ok(list);
                }
                Err(e) if attempt >= self.http.retry.attempts.max(1) => {
                    return Err(self.sio_error(op, e, true));
                }
                Err(_) => {}
            }
        }
    }
}

/// Whether an ack reports a transient storage failure: the handler caught
/// SQLite's "database is locked" and applied nothing (§4: on error, `msg` is
/// the raw exception text).
fn busy(obj: &Value) -> bool {
    obj.get("ok") == Some(&Value::Bool(false)) && {
        let msg = ack_msg(obj);
        msg.contains("SQLITE_BUSY") || msg.contains("database is locked")
    }
}

/// Whether an ack is Uptime Kuma's rate limiter refusing the call
/// (`KumaRateLimiter`, `server/rate-limiter.js`: "Too frequently, try again
/// later.").
fn rate_limited(obj: &Value) -> bool {
    obj.get("ok") == Some(&Value::Bool(false)) && ack_msg(obj).contains("Too frequently")
}

fn ack_msg(obj: &Value) -> &str {
    obj.get("msg").and_then(Value::as_str).unwrap_or("")
}

fn ack_ok(ack: &[Value]) -> bool {
    ack.first()
        .and_then(|o| o.get("ok"))
        .and_then(Value::as_bool)
        == Some(true)
}

/// The ids of a `notificationList` push (an array of notifications).
fn notification_list(v: Option<&Value>) -> Vec<u64> {
    let mut ids: Vec<u64> = v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|n| n.get("id").and_then(Value::as_u64))
        .collect();
    ids.sort_unstable();
    ids
}

/// The notification ids of a monitor (`{"<id>": true}`).
fn linked_notifications(v: Option<&Value>) -> Vec<u64> {
    let mut ids: Vec<u64> = v
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, on)| on.as_bool() == Some(true))
        .filter_map(|(id, _)| id.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

fn number(v: &Value, key: &str) -> Option<u32> {
    let f = v.get(key)?;
    f.as_u64()
        .or_else(|| f.as_f64().map(|x| x as u64))
        .or_else(|| f.as_str().and_then(|s| s.trim().parse().ok()))
        .and_then(|n| u32::try_from(n).ok())
}

fn remote_monitor(v: &Value) -> Option<RemoteMonitor> {
    let id = v.get("id")?.as_u64()?;
    let tag_mark = v
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("name").and_then(Value::as_str) == Some(OWNER_TAG))
        .find_map(|t| {
            t.get("value")
                .and_then(Value::as_str)
                .and_then(OwnershipMark::parse)
        });
    let desc_mark = v
        .get("description")
        .and_then(Value::as_str)
        .and_then(OwnershipMark::parse);
    let active = match v.get("active") {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_u64() != Some(0),
        _ => true,
    };
    Some(RemoteMonitor {
        id: MonitorId(id),
        name: v
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        kind: v
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        url: v.get("url").and_then(Value::as_str).map(str::to_owned),
        active,
        mark: desc_mark.or(tag_mark),
        fields: Some(MonitorFields {
            keyword: v
                .get("keyword")
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty())
                .map(str::to_owned),
            interval: number(v, "interval").unwrap_or(0),
            retry_interval: number(v, "retryInterval").unwrap_or(0),
            retries: number(v, "maxretries").unwrap_or(0),
            accepted_status: v
                .get("accepted_statuscodes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
            notification_ids: linked_notifications(v.get("notificationIDList")),
        }),
    })
}

fn kind_name(k: MonitorKind) -> &'static str {
    match k {
        MonitorKind::Http => "http",
        MonitorKind::Keyword => "keyword",
    }
}

fn notification_map(ids: &[u64]) -> Value {
    let m: Map<String, Value> = ids.iter().map(|i| (i.to_string(), json!(true))).collect();
    Value::Object(m)
}

/// The accepted status codes (`200-299` when the spec names none).
fn accepted(d: &MonitorDesired) -> Value {
    if d.accepted_status.is_empty() {
        json!(["200-299"])
    } else {
        json!(d.accepted_status)
    }
}

/// The request timeout Uptime Kuma's UI derives from the interval.
fn check_timeout(interval: u32) -> u32 {
    ((f64::from(interval) * 0.8) as u32).max(1)
}

/// The `add` payload (the 2.5.3 UI defaults, version-gated).
pub(crate) fn add_payload(d: &MonitorDesired, mark: &OwnershipMark, v2: bool) -> Value {
    let interval = d.interval.max(1);
    let mut m = json!({
        "type": kind_name(d.kind),
        "name": d.name,
        "description": mark.to_text(),
        "url": d.url,
        "method": "GET",
        "interval": interval,
        "retryInterval": d.retry_interval.max(1),
        "resendInterval": 0,
        "maxretries": d.retries,
        "timeout": check_timeout(interval),
        "upsideDown": false,
        "ignoreTls": false,
        "expiryNotification": false,
        "maxredirects": 10,
        "accepted_statuscodes": accepted(d),
        "notificationIDList": notification_map(&d.notification_ids),
        "httpBodyEncoding": "json",
        "authMethod": null,
        "parent": null,
        "kafkaProducerBrokers": [],
        "kafkaProducerSaslOptions": {"mechanism": "None"},
        "active": true,
    });
    if let Value::Object(o) = &mut m {
        if d.kind == MonitorKind::Keyword {
            o.insert(
                "keyword".into(),
                json!(d.keyword.clone().unwrap_or_default()),
            );
        }
        if v2 {
            o.insert("conditions".into(), json!([]));
            o.insert("rabbitmqNodes".into(), json!([]));
        }
    }
    m
}

/// The full object for `editMonitor`: what `getMonitor` returned with the
/// desired fields merged in.
pub(crate) fn merge_edit(current: &Value, d: &MonitorDesired, v2: bool) -> Value {
    let mut m = current.clone();
    if let Value::Object(o) = &mut m {
        let interval = d.interval.max(1);
        o.insert("type".into(), json!(kind_name(d.kind)));
        o.insert("name".into(), json!(d.name));
        o.insert("url".into(), json!(d.url));
        o.insert("interval".into(), json!(interval));
        o.insert("retryInterval".into(), json!(d.retry_interval.max(1)));
        o.insert("maxretries".into(), json!(d.retries));
        o.insert("timeout".into(), json!(check_timeout(interval)));
        o.insert(
            "notificationIDList".into(),
            notification_map(&d.notification_ids),
        );
        if d.kind == MonitorKind::Keyword {
            o.insert(
                "keyword".into(),
                json!(d.keyword.clone().unwrap_or_default()),
            );
        }
        if v2 && !o.contains_key("conditions") {
            o.insert("conditions".into(), json!([]));
        }
        o.insert("accepted_statuscodes".into(), accepted(d));
    }
    m
}

#[async_trait]
impl Monitors for KumaClient {
    async fn find_owned(
        &self,
        deployment: &DeploymentId,
    ) -> Result<Vec<RemoteMonitor>, ProviderError> {
        Ok(self
            .list_owned()
            .await?
            .into_iter()
            .filter(|m| m.mark.as_ref().is_some_and(|k| &k.deployment == deployment))
            .collect())
    }

    async fn create(
        &self,
        desired: &MonitorDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteMonitor, ProviderError> {
        // The session's version decides the payload: open it first.
        let v2 = self.session_info(|s| s.v2).await?;
        let payload = add_payload(desired, mark, v2);
        let (ack, _) = self
            .call_ok("create monitor", "add", vec![payload], false)
            .await?;
        let id = ack
            .get("monitorID")
            .and_then(Value::as_u64)
            .ok_or_else(|| {
                let mut e = self
                    .err("create monitor", ErrorKind::MalformedResponse)
                    .with_message("the add ack has no monitorID");
                e.ambiguous = true;
                e
            })?;
        Ok(RemoteMonitor {
            id: MonitorId(id),
            name: desired.name.clone(),
            kind: kind_name(desired.kind).to_owned(),
            url: Some(desired.url.clone()),
            active: true,
            mark: Some(mark.clone()),
            fields: None,
        })
    }

    async fn update(&self, id: MonitorId, desired: &MonitorDesired) -> Result<(), ProviderError> {
        let (obj, v2) = self
            .call_ok("read monitor", "getMonitor", vec![json!(id.0)], true)
            .await
            .map_err(|mut e| {
                if e.message.contains("Cannot read properties of null") {
                    e.kind = ErrorKind::NotFound;
                    e.hint = Some(format!("monitor {id} does not exist any more"));
                }
                e
            })?;
        let current = obj.get("monitor").cloned().ok_or_else(|| {
            self.err("read monitor", ErrorKind::MalformedResponse)
                .with_message("the getMonitor ack has no monitor")
        })?;
        let merged = merge_edit(&current, desired, v2);
        self.call_ok("update monitor", "editMonitor", vec![merged], true)
            .await?;
        // `editMonitor` never changes `active` (`server/server.js:818-993`):
        // a paused monitor is resumed apart.
        if remote_monitor(&current).is_some_and(|m| !m.active) {
            self.resume(id).await?;
        }
        Ok(())
    }

    async fn delete(&self, id: MonitorId) -> Result<(), ProviderError> {
        self.call_ok("delete monitor", "deleteMonitor", vec![json!(id.0)], true)
            .await
            .map(|_| ())
    }

    async fn pause(&self, id: MonitorId) -> Result<(), ProviderError> {
        self.call_ok("pause monitor", "pauseMonitor", vec![json!(id.0)], true)
            .await
            .map(|_| ())
    }

    async fn resume(&self, id: MonitorId) -> Result<(), ProviderError> {
        self.call_ok("resume monitor", "resumeMonitor", vec![json!(id.0)], true)
            .await
            .map(|_| ())
    }

    async fn notification_ids(&self) -> Result<Option<Vec<u64>>, ProviderError> {
        self.session_info(|s| s.notifications.clone()).await
    }

    async fn list_owned(&self) -> Result<Vec<RemoteMonitor>, ProviderError> {
        let list = self.monitors().await?;
        let mut out: Vec<RemoteMonitor> = list
            .iter()
            .filter_map(remote_monitor)
            .filter(|m| m.mark.is_some())
            .collect();
        out.sort_by_key(|m| m.id);
        Ok(out)
    }
}

/// What a server said instead of opening the websocket: an HTTP answer
/// (`404 with an HTML page`), when that is why the handshake failed.
fn not_socket_io(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use tokio_tungstenite::tungstenite::Error as WsError;
    let mut source = Some(e);
    while let Some(s) = source {
        if let Some(WsError::Http(resp)) = s.downcast_ref::<WsError>() {
            let html = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|t| t.contains("html"));
            let what = if html { "an HTML page" } else { "no websocket" };
            return Some(format!("{} with {what}", resp.status().as_u16()));
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_database_is_transient_other_refusals_are_not() {
        assert!(busy(
            &json!({"ok": false, "msg": "SQLITE_BUSY: database is locked"})
        ));
        assert!(!busy(
            &json!({"ok": false, "msg": "SQLITE_CONSTRAINT: NOT NULL constraint failed: monitor.conditions"})
        ));
        assert!(!busy(&json!({"ok": true, "msg": "SQLITE_BUSY"})));
    }

    fn mark() -> OwnershipMark {
        OwnershipMark::new(
            DeploymentId::new("web-prod").unwrap(),
            "01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap(),
        )
    }

    fn desired() -> MonitorDesired {
        MonitorDesired {
            name: "fabrik:web-prod".into(),
            kind: MonitorKind::Http,
            url: "https://example.invalid/health".into(),
            keyword: None,
            interval: 60,
            retries: 2,
            retry_interval: 60,
            accepted_status: vec!["200-299".into()],
            notification_ids: vec![3],
        }
    }

    #[test]
    fn add_payload_matches_the_recorded_2_5_3_sample_and_gates_conditions() {
        let sample: Value = serde_json::from_str(include_str!(
            "../../tests/contract/uptime-kuma/sample-http-monitor-2.5.3.json"
        ))
        .unwrap();
        let sent = &sample["add_payload_sent"];
        let ours = add_payload(&desired(), &mark(), true);
        for (k, v) in sent.as_object().unwrap() {
            if matches!(k.as_str(), "description" | "active" | "notificationIDList") {
                continue;
            }
            assert_eq!(ours.get(k), Some(v), "field {k}");
        }
        assert_eq!(ours["notificationIDList"], json!({"3": true}));
        let v1 = add_payload(&desired(), &mark(), false);
        assert!(v1.get("conditions").is_none());
    }

    #[test]
    fn marks_are_read_from_tag_or_description() {
        let by_tag = json!({"id": 4, "name": "x", "type": "http", "active": 1,
            "tags": [{"name": "fabrik", "value": mark().to_compact()}]});
        assert_eq!(remote_monitor(&by_tag).unwrap().mark, Some(mark()));
        let by_desc =
            json!({"id": 5, "name": "x", "description": mark().to_text(), "active": false});
        let m = remote_monitor(&by_desc).unwrap();
        assert_eq!(m.mark, Some(mark()));
        assert!(!m.active);
        let foreign = json!({"id": 6, "name": "x", "description": "by hand"});
        assert_eq!(remote_monitor(&foreign).unwrap().mark, None);
    }
}
