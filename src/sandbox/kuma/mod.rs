//! The simulated Uptime Kuma 2.x: Socket.IO v4 (Engine.IO 4, Socket.IO
//! protocol 5) at `/socket.io/` (contract: `contracts/uptime-kuma`).
//!
//! On connect the server sends `info` (version hidden) and `loginRequired`,
//! as the real one does. Requests are events with an acknowledgement; lists
//! are pushed as events (`monitorList`, `updateMonitorIntoList`,
//! `deleteMonitorFromList`) to every socket of the logged-in user.

mod monitor;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde_json::{Value, json};
use sha2::Sha256;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};
use socketioxide::socket::Sid;

use super::faults::{Injected, Service};
use super::server::Shared;
use super::store::Tx;

pub(crate) use self::monitor::for_dump as monitors_for_dump;

/// The room of the (single) user's logged-in sockets.
const USER_ROOM: &str = "user-1";

/// Login attempts allowed per minute (`loginRateLimiter`).
const LOGIN_LIMIT: usize = 20;

/// Per-instance session state: which sockets are logged in, and recent
/// login attempts for the rate limiter.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    logged_in: Mutex<HashSet<Sid>>,
    attempts: Mutex<VecDeque<i64>>,
}

impl Sessions {
    fn is_logged_in(&self, sid: Sid) -> bool {
        self.logged_in
            .lock()
            .map(|s| s.contains(&sid))
            .unwrap_or(false)
    }

    fn set_logged_in(&self, sid: Sid, on: bool) {
        if let Ok(mut s) = self.logged_in.lock() {
            if on {
                s.insert(sid);
            } else {
                s.remove(&sid);
            }
        }
    }

    /// Records an attempt; false when over the limit.
    fn allow_login(&self, now: i64) -> bool {
        let Ok(mut attempts) = self.attempts.lock() else {
            return true;
        };
        while attempts.front().is_some_and(|t| now - t >= 60_000) {
            attempts.pop_front();
        }
        if attempts.len() >= LOGIN_LIMIT {
            return false;
        }
        attempts.push_back(now);
        true
    }
}

/// All the arguments of an event, however many the client sent.
#[derive(Debug, Default)]
struct Args(Vec<Value>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Args;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("event arguments")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Args, S::Error> {
                let mut args = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    args.push(v);
                }
                Ok(Args(args))
            }
        }
        // A "tuple" of any length: the parser then hands over every
        // argument instead of only the first.
        deserializer.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

impl Args {
    fn get(&self, i: usize) -> &Value {
        self.0.get(i).unwrap_or(&Value::Null)
    }

    fn id(&self, i: usize) -> Option<i64> {
        let v = self.get(i);
        v.as_i64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    }
}

/// Registers the default namespace on `io`.
pub(crate) fn install(io: &SocketIo, shared: Arc<Shared>) {
    io.ns("/", move |socket: SocketRef| {
        let shared = shared.clone();
        async move { on_connect(socket, shared) }
    });
}

fn on_connect(socket: SocketRef, shared: Arc<Shared>) {
    let for_events = shared.clone();
    socket.on_fallback(
        move |socket: SocketRef,
              Event(event): Event,
              TryData(args): TryData<Args>,
              ack: AckSender| {
            let shared = for_events.clone();
            async move {
                let args = args.unwrap_or_default();
                dispatch(shared, socket, event, args, ack).await;
            }
        },
    );
    let for_disconnect = shared.clone();
    socket.on_disconnect(move |socket: SocketRef| {
        let shared = for_disconnect.clone();
        async move { shared.sessions.set_logged_in(socket.id, false) }
    });
    // `sendInfo(socket, true)`: the version stays hidden until login.
    let _ = socket.emit("info", &info(&shared, false));
    let _ = socket.emit("loginRequired", &[(); 0]);
}

fn info(shared: &Shared, with_version: bool) -> Value {
    let mut info = json!({
        "latestVersion": shared.config.kuma_version,
        "isContainer": true,
        "dbType": "sqlite",
        "primaryBaseURL": null,
        "serverTimezone": "UTC",
        "serverTimezoneOffset": "+00:00",
    });
    if with_version && let Value::Object(map) = &mut info {
        map.insert("version".into(), json!(shared.config.kuma_version));
    }
    info
}

/// An event to push after the acknowledgement.
struct Push {
    event: &'static str,
    data: Value,
    /// To every socket of the user rather than only this one.
    to_user: bool,
}

/// What an event handler decided.
struct Answer {
    ack: Option<Value>,
    pushes: Vec<Push>,
    /// Join (true) or leave (false) the user's room.
    login: Option<bool>,
}

impl Answer {
    fn ack(ack: Value) -> Self {
        Self {
            ack: Some(ack),
            pushes: Vec::new(),
            login: None,
        }
    }

    fn push(mut self, event: &'static str, data: Value) -> Self {
        self.pushes.push(Push {
            event,
            data,
            to_user: true,
        });
        self
    }
}

fn failed(msg: impl Into<String>) -> Value {
    json!({"ok": false, "msg": msg.into()})
}

/// Events that change the world (the only ones that can lose their answer).
fn mutating(event: &str) -> bool {
    matches!(
        event,
        "add"
            | "editMonitor"
            | "deleteMonitor"
            | "pauseMonitor"
            | "resumeMonitor"
            | "addTag"
            | "editTag"
            | "deleteTag"
            | "addMonitorTag"
            | "editMonitorTag"
            | "deleteMonitorTag"
    )
}

async fn dispatch(
    shared: Arc<Shared>,
    socket: SocketRef,
    event: String,
    args: Args,
    ack: AckSender,
) {
    // The event's name stands for the path: `target=/socket.io/add`
    // puts faults on that event alone.
    let verdict = shared.faults.roll(
        Service::Kuma,
        &format!("/socket.io/{event}"),
        mutating(&event),
        matches!(event.as_str(), "add" | "addTag"),
    );
    if !verdict.latency.is_zero() {
        tokio::time::sleep(verdict.latency).await;
    }
    match verdict.injected {
        Some(Injected::ServerError) => {
            let _ = ack.send(&failed("SQLITE_BUSY: database is locked"));
            return;
        }
        Some(Injected::RateLimited { .. }) => {
            let _ = ack.send(&failed("Too frequently, try again later."));
            return;
        }
        _ => {}
    }
    let answer = handle(&shared, &socket, &event, args).await;
    if verdict.injected == Some(Injected::LoseResponse) {
        // The change is committed; the client never hears back.
        shared.faults.lost(Service::Kuma);
        let _ = socket.disconnect();
        return;
    }
    match answer.login {
        Some(true) => {
            shared.sessions.set_logged_in(socket.id, true);
            socket.join(USER_ROOM);
        }
        Some(false) => {
            shared.sessions.set_logged_in(socket.id, false);
            socket.leave(USER_ROOM);
        }
        None => {}
    }
    match &answer.ack {
        // `logout` acknowledges with no argument.
        Some(Value::Null) => {
            let _ = ack.send(&[(); 0]);
        }
        Some(value) => {
            let _ = ack.send(value);
        }
        None => {}
    }
    for push in answer.pushes {
        if push.to_user && shared.sessions.is_logged_in(socket.id) {
            let _ = socket.within(USER_ROOM).emit(push.event, &push.data).await;
        } else {
            let _ = socket.emit(push.event, &push.data);
        }
    }
}

/// Runs `f` in a read transaction; a storage failure becomes the error
/// acknowledgement the real server would send.
async fn read<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, Value> {
    let now = shared.now();
    shared
        .store
        .read(now, f)
        .await
        .map_err(|_| failed("SQLITE_BUSY: database is locked"))
}

/// Runs `f` in a write transaction; a storage failure becomes the error
/// acknowledgement the real server would send.
async fn write<T: Send + 'static>(
    shared: &Shared,
    f: impl FnOnce(&Tx<'_>) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, Value> {
    let now = shared.now();
    shared
        .store
        .write(now, f)
        .await
        .map_err(|_| failed("SQLITE_BUSY: database is locked"))
}

async fn handle(shared: &Arc<Shared>, socket: &SocketRef, event: &str, args: Args) -> Answer {
    match event {
        "needSetup" => return Answer::ack(json!(false)),
        "setup" => {
            return Answer::ack(failed(
                "Uptime Kuma has been initialized. If you want to run setup again, please delete the database.",
            ));
        }
        "login" => return login(shared, &args).await,
        "loginByToken" => return login_by_token(shared, &args).await,
        "logout" => {
            return Answer {
                ack: Some(Value::Null),
                pushes: Vec::new(),
                login: Some(false),
            };
        }
        _ => {}
    }
    if !shared.sessions.is_logged_in(socket.id) {
        return Answer::ack(failed("You are not logged in."));
    }
    match authenticated(shared, event, args).await {
        Ok(answer) => answer,
        Err(ack) => Answer::ack(ack),
    }
}

async fn authenticated(shared: &Arc<Shared>, event: &str, args: Args) -> Result<Answer, Value> {
    Ok(match event {
        "add" => {
            let payload = args.get(0).clone();
            let (result, pushed) = write(shared, move |tx| {
                let result = monitor::add(tx, &payload)?;
                let pushed = match &result {
                    Ok(id) => monitor::get(tx, *id)?,
                    Err(_) => None,
                };
                Ok((result, pushed))
            })
            .await?;
            match result {
                Ok(id) => with_update(
                    Answer::ack(
                        json!({"ok": true, "msg": "successAdded", "msgi18n": true, "monitorID": id}),
                    ),
                    id,
                    pushed,
                ),
                Err(msg) => Answer::ack(failed(msg)),
            }
        }
        "editMonitor" => {
            let payload = args.get(0).clone();
            let (result, pushed) = write(shared, move |tx| {
                let result = monitor::edit(tx, &payload)?;
                let pushed = match &result {
                    Ok(id) => monitor::get(tx, *id)?,
                    Err(_) => None,
                };
                Ok((result, pushed))
            })
            .await?;
            match result {
                Ok(id) => with_update(
                    Answer::ack(
                        json!({"ok": true, "msg": "Saved.", "msgi18n": true, "monitorID": id}),
                    ),
                    id,
                    pushed,
                ),
                Err(msg) => Answer::ack(failed(msg)),
            }
        }
        "getMonitor" => {
            let id = args.id(0).unwrap_or(-1);
            match read(shared, move |tx| monitor::get(tx, id)).await? {
                Some(m) => Answer::ack(json!({"ok": true, "monitor": m})),
                None => Answer::ack(failed("Cannot read properties of null (reading 'id')")),
            }
        }
        "getMonitorList" => {
            let list = read(shared, monitor::list).await?;
            let mut answer = Answer::ack(json!({"ok": true}));
            answer.pushes.push(Push {
                event: "monitorList",
                data: list,
                to_user: false,
            });
            answer
        }
        "pauseMonitor" | "resumeMonitor" => {
            let active = event == "resumeMonitor";
            let id = args.id(0).unwrap_or(-1);
            let pushed = write(shared, move |tx| {
                Ok(if monitor::set_active(tx, id, active)? {
                    monitor::get(tx, id)?
                } else {
                    None
                })
            })
            .await?;
            let msg = if active {
                "successResumed"
            } else {
                "successPaused"
            };
            with_update(
                Answer::ack(json!({"ok": true, "msg": msg, "msgi18n": true})),
                id,
                pushed,
            )
        }
        "deleteMonitor" => {
            let id = args.id(0).unwrap_or(-1);
            let children = args.get(1).as_bool().unwrap_or(false);
            write(shared, move |tx| monitor::delete(tx, id, children)).await?;
            Answer::ack(json!({"ok": true, "msg": "successDeleted", "msgi18n": true}))
                .push("deleteMonitorFromList", json!(id))
        }
        "getTags" => {
            let tags = read(shared, monitor::tags).await?;
            Answer::ack(json!({"ok": true, "tags": tags}))
        }
        "addTag" => {
            let payload = args.get(0).clone();
            match write(shared, move |tx| monitor::add_tag(tx, &payload)).await? {
                Ok(tag) => Answer::ack(json!({"ok": true, "tag": tag})),
                Err(msg) => Answer::ack(failed(msg)),
            }
        }
        "editTag" => {
            let payload = args.get(0).clone();
            match write(shared, move |tx| monitor::edit_tag(tx, &payload)).await? {
                Some(tag) => Answer::ack(json!({"ok": true, "msg": "Saved.", "tag": tag})),
                None => Answer::ack(failed("tagNotFound")),
            }
        }
        "deleteTag" => {
            let id = args.id(0).unwrap_or(-1);
            write(shared, move |tx| monitor::delete_tag(tx, id)).await?;
            Answer::ack(json!({"ok": true, "msg": "successDeleted"}))
        }
        "addMonitorTag" | "editMonitorTag" | "deleteMonitorTag" => {
            let (Some(tag_id), Some(monitor_id)) = (args.id(0), args.id(1)) else {
                return Err(failed("Cannot read properties of null (reading 'id')"));
            };
            let value = match args.get(2) {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            let event_name = event.to_owned();
            let pushed = write(shared, move |tx| {
                match event_name.as_str() {
                    "addMonitorTag" => monitor::add_monitor_tag(tx, tag_id, monitor_id, &value)?,
                    "editMonitorTag" => monitor::edit_monitor_tag(tx, tag_id, monitor_id, &value)?,
                    _ => monitor::delete_monitor_tag(tx, tag_id, monitor_id, &value)?,
                }
                monitor::get(tx, monitor_id)
            })
            .await?;
            let msg = match event {
                "addMonitorTag" => "successAdded",
                "editMonitorTag" => "successEdited",
                _ => "successDeleted",
            };
            with_update(
                Answer::ack(json!({"ok": true, "msg": msg})),
                monitor_id,
                pushed,
            )
        }
        // Handlers Fabrik does not use: acknowledged as a server with
        // nothing configured would.
        "getSettings" => Answer::ack(json!({"ok": true, "data": {}})),
        "getMonitorBeats" => Answer::ack(json!({"ok": true, "data": []})),
        _ => Answer {
            ack: None,
            pushes: Vec::new(),
            login: None,
        },
    })
}

fn with_update(answer: Answer, id: i64, monitor: Option<Value>) -> Answer {
    match monitor {
        Some(m) => answer.push("updateMonitorIntoList", json!({ id.to_string(): m })),
        None => answer,
    }
}

type HmacSha256 = Hmac<Sha256>;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A short hash of the password, so a token dies when the password changes.
fn password_hash(shared: &Shared) -> String {
    blake3::hash(shared.config.credentials.kuma_password.expose().as_bytes()).to_hex()[..16]
        .to_owned()
}

/// An HS256 JSON Web Token `{username, h}` signed with the world's secret.
fn make_token(secret: &[u8], username: &str, h: &str) -> Option<String> {
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64(json!({"username": username, "h": h}).to_string().as_bytes());
    let signing_input = format!("{header}.{payload}");
    let mut mac = HmacSha256::new_from_slice(secret).ok()?;
    mac.update(signing_input.as_bytes());
    let signature = b64(&mac.finalize().into_bytes());
    Some(format!("{signing_input}.{signature}"))
}

fn check_token(secret: &[u8], token: &str, username: &str, h: &str) -> bool {
    let mut parts = token.rsplitn(2, '.');
    let (Some(signature), Some(signing_input)) = (parts.next(), parts.next()) else {
        return false;
    };
    let Ok(signature) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(signing_input.as_bytes());
    if mac.verify_slice(&signature).is_err() {
        return false;
    }
    let Some(payload) = signing_input.split('.').nth(1) else {
        return false;
    };
    let Ok(payload) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return false;
    };
    let Ok(claims) = serde_json::from_slice::<Value>(&payload) else {
        return false;
    };
    claims["username"] == username && claims["h"] == h
}

async fn jwt_secret(shared: &Shared) -> Option<[u8; 32]> {
    let now = shared.now();
    shared
        .store
        .read(now, |tx| Ok(tx.derived_secret("kuma-jwt")))
        .await
        .ok()
}

/// The pushes after a successful login (notes §3).
async fn after_login(shared: &Shared, answer: Answer) -> Answer {
    let now = shared.now();
    let list = shared
        .store
        .read(now, monitor::list)
        .await
        .unwrap_or(json!({}));
    let notifications = shared
        .store
        .read(now, monitor::notifications)
        .await
        .unwrap_or(json!([]));
    let mut answer = answer;
    answer.login = Some(true);
    let own = |event, data| Push {
        event,
        data,
        to_user: false,
    };
    answer.pushes.extend([
        own("monitorList", list),
        own("info", info(shared, true)),
        own("maintenanceList", json!({})),
        own("notificationList", notifications),
        own("proxyList", json!([])),
        own("dockerHostList", json!([])),
        own("apiKeyList", json!([])),
        own("remoteBrowserList", json!([])),
        own("statusPageList", json!({})),
        own("initServerTimezone", json!(true)),
    ]);
    answer
}

async fn login(shared: &Arc<Shared>, args: &Args) -> Answer {
    if !shared.sessions.allow_login(shared.now()) {
        return Answer::ack(failed("Too frequently, try again later."));
    }
    let data = args.get(0);
    let credentials = &shared.config.credentials;
    let username = data.get("username").and_then(Value::as_str);
    let password = data.get("password").and_then(Value::as_str);
    if username != Some(credentials.kuma_username.as_str())
        || password != Some(credentials.kuma_password.expose())
    {
        return Answer::ack(json!({"ok": false, "msg": "authIncorrectCreds", "msgi18n": true}));
    }
    let token = match jwt_secret(shared).await {
        Some(secret) => make_token(&secret, &credentials.kuma_username, &password_hash(shared)),
        None => None,
    };
    match token {
        Some(token) => after_login(shared, Answer::ack(json!({"ok": true, "token": token}))).await,
        None => Answer::ack(failed("SQLITE_BUSY: database is locked")),
    }
}

async fn login_by_token(shared: &Arc<Shared>, args: &Args) -> Answer {
    let token = args.get(0).as_str().unwrap_or_default();
    let valid = match jwt_secret(shared).await {
        Some(secret) => check_token(
            &secret,
            token,
            &shared.config.credentials.kuma_username,
            &password_hash(shared),
        ),
        None => false,
    };
    if valid {
        after_login(shared, Answer::ack(json!({"ok": true}))).await
    } else {
        Answer::ack(json!({"ok": false, "msg": "authInvalidToken", "msgi18n": true}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_and_resist_tampering() {
        let secret = [7u8; 32];
        let token = make_token(&secret, "admin", "abc").unwrap();
        assert_eq!(token.split('.').count(), 3);
        assert!(check_token(&secret, &token, "admin", "abc"));
        assert!(!check_token(&secret, &token, "admin", "other-password"));
        assert!(!check_token(&[8u8; 32], &token, "admin", "abc"));
        let mut forged = token.clone();
        forged.push('x');
        assert!(!check_token(&secret, &forged, "admin", "abc"));
    }

    #[test]
    fn login_attempts_are_limited_per_minute() {
        let sessions = Sessions::default();
        for _ in 0..LOGIN_LIMIT {
            assert!(sessions.allow_login(1_000));
        }
        assert!(!sessions.allow_login(1_000));
        assert!(sessions.allow_login(61_000));
    }

    #[test]
    fn args_take_every_argument() {
        let args: Args = serde_json::from_str("[1, true, \"v\"]").unwrap();
        assert_eq!(args.id(0), Some(1));
        assert_eq!(args.get(1), &json!(true));
        assert_eq!(args.get(5), &Value::Null);
    }
}
