//! The Uptime Kuma client against a socketioxide fake that behaves like
//! Kuma 2.5.3 (or 1.23): handlers registered late, login, version in the
//! `info` pushed after login, `conditions` required on 2.x only.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabrik::id::DeploymentId;
use fabrik::ownership::OwnershipMark;
use fabrik::provider::*;
use fabrik::secret::SecretValue;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event, SocketRef, TryData};

use super::fake::{Retries, snapshots};

const PASSWORD: &str = "kuma-pa55word-secret";
const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.fake-jwt-value";

#[derive(Default)]
struct World {
    version: String,
    /// Every event the server received, with its arguments.
    received: Vec<(String, Value)>,
    monitors: BTreeMap<u64, Value>,
    tags: Vec<Value>,
    logged_in: HashSet<String>,
    next_id: u64,
    /// Drop the connection after acking this event once.
    kick_after: Option<String>,
    /// Answer "not logged in" once to this event.
    forget_login_on: Option<String>,
    /// Never ack this event.
    swallow: Option<String>,
}

type Shared = Arc<Mutex<World>>;

fn monitor_list(w: &World) -> Value {
    let m: serde_json::Map<String, Value> = w
        .monitors
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Value::Object(m)
}

async fn serve(version: &str) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(World {
        version: version.into(),
        next_id: 1,
        ..World::default()
    }));
    let (layer, io) = SocketIo::new_layer();
    let st = shared.clone();
    io.ns("/", async move |s: SocketRef| {
        let _ = s.emit("info", &json!({"version": null, "primaryBaseURL": null}));
        // Kuma registers its handlers only after sendInfo: events sent
        // before that are lost.
        tokio::time::sleep(Duration::from_millis(30)).await;
        let st3 = st.clone();
        s.on(
            "addMonitorTag",
            async move |s: SocketRef,
                        TryData(args): TryData<(Value, Value, Value)>,
                        ack: AckSender| {
                let args = args
                    .map(|(a, b, c)| Value::Array(vec![a, b, c]))
                    .unwrap_or(Value::Null);
                handle(&st3, s, "addMonitorTag".into(), args, ack);
            },
        );
        let st2 = st.clone();
        s.on_fallback(
            async move |s: SocketRef,
                        Event(event): Event,
                        TryData(args): TryData<Value>,
                        ack: AckSender| {
                handle(&st2, s, event.to_string(), args.unwrap_or(Value::Null), ack);
            },
        );
        let _ = s.emit("loginRequired", &[(); 0]);
    });
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), shared)
}

fn handle(st: &Shared, s: SocketRef, event: String, args: Value, ack: AckSender) {
    // Several arguments arrive as an array, one as itself, none as null.
    let list = match args {
        Value::Array(a) if event == "addMonitorTag" => a,
        Value::Null => vec![],
        other => vec![other],
    };
    let arg = |i: usize| list.get(i).cloned().unwrap_or(Value::Null);
    let sid = s.id.to_string();
    let mut w = st.lock().unwrap();
    w.received.push((event.clone(), Value::Array(list.clone())));
    if w.swallow.as_deref() == Some(event.as_str()) {
        return;
    }
    let v2 = w.version.starts_with('2');
    let reply: Value = match event.as_str() {
        "login" => {
            if arg(0)["password"] == PASSWORD && arg(0)["username"] == "admin" {
                w.logged_in.insert(sid.clone());
                let _ = s.emit("monitorList", &monitor_list(&w));
                let _ = s.emit(
                    "info",
                    &json!({"version": w.version, "latestVersion": w.version}),
                );
                json!({"ok": true, "token": JWT})
            } else {
                json!({"ok": false, "msg": "authIncorrectCreds", "msgi18n": true})
            }
        }
        "loginByToken" => {
            if arg(0) == JWT {
                w.logged_in.insert(sid.clone());
                let _ = s.emit("info", &json!({"version": w.version}));
                json!({"ok": true})
            } else {
                json!({"ok": false, "msg": "authInvalidToken", "msgi18n": true})
            }
        }
        _ if !w.logged_in.contains(&sid) => json!({"ok": false, "msg": "You are not logged in."}),
        e if w.forget_login_on.as_deref() == Some(e) => {
            w.forget_login_on = None;
            w.logged_in.remove(&sid);
            json!({"ok": false, "msg": "You are not logged in."})
        }
        "getMonitorList" => {
            let _ = s.emit("monitorList", &monitor_list(&w));
            json!({"ok": true})
        }
        "add" => {
            let mut m = arg(0);
            if v2 && m.get("conditions").is_none() {
                json!({"ok": false, "msg": "SQLITE_CONSTRAINT: NOT NULL constraint failed: monitor.conditions"})
            } else if !v2 && m.get("conditions").is_some() {
                json!({"ok": false, "msg": "SQLITE_ERROR: table monitor has no column named conditions"})
            } else if m
                .get("accepted_statuscodes")
                .and_then(Value::as_array)
                .is_none()
            {
                json!({"ok": false, "msg": "Cannot read properties of undefined (reading 'every')"})
            } else {
                let id = w.next_id;
                w.next_id += 1;
                m["id"] = json!(id);
                m["tags"] = json!([]);
                m["weight"] = json!(2000);
                w.monitors.insert(id, m);
                json!({"ok": true, "msg": "successAdded", "msgi18n": true, "monitorID": id})
            }
        }
        "getMonitor" => match w.monitors.get(&arg(0).as_u64().unwrap_or(0)) {
            Some(m) => json!({"ok": true, "monitor": m}),
            None => json!({"ok": false, "msg": "Cannot read properties of null (reading 'id')"}),
        },
        "editMonitor" => {
            let m = arg(0);
            let id = m["id"].as_u64().unwrap_or(0);
            if m["retryInterval"].as_u64().unwrap_or(0) < 1 {
                json!({"ok": false, "msg": "Retry interval cannot be less than 1 seconds"})
            } else if let Some(slot) = w.monitors.get_mut(&id) {
                *slot = m;
                json!({"ok": true, "msg": "Saved.", "msgi18n": true, "monitorID": id})
            } else {
                json!({"ok": false, "msg": "Cannot read properties of null"})
            }
        }
        "deleteMonitor" => {
            w.monitors.remove(&arg(0).as_u64().unwrap_or(0));
            json!({"ok": true, "msg": "successDeleted", "msgi18n": true})
        }
        "pauseMonitor" | "resumeMonitor" => {
            let active = event == "resumeMonitor";
            if let Some(m) = w.monitors.get_mut(&arg(0).as_u64().unwrap_or(0)) {
                m["active"] = json!(active);
            }
            json!({"ok": true})
        }
        "getTags" => json!({"ok": true, "tags": w.tags}),
        "addTag" => {
            let id = 100 + w.tags.len() as u64;
            let tag = json!({"id": id, "name": arg(0)["name"], "color": arg(0)["color"]});
            w.tags.push(tag.clone());
            json!({"ok": true, "tag": tag})
        }
        "addMonitorTag" => {
            let (tag_id, mid, value) = (arg(0).as_u64().unwrap(), arg(1).as_u64().unwrap(), arg(2));
            let name = w
                .tags
                .iter()
                .find(|t| t["id"] == tag_id)
                .map(|t| t["name"].clone());
            if let Some(m) = w.monitors.get_mut(&mid) {
                m["tags"].as_array_mut().unwrap().push(
                    json!({"tag_id": tag_id, "monitor_id": mid, "value": value, "name": name}),
                );
            }
            json!({"ok": true, "msg": "successAdded"})
        }
        _ => json!({"ok": false, "msg": "unknown event"}),
    };
    let kick = w.kick_after.as_deref() == Some(event.as_str());
    if kick {
        w.kick_after = None;
    }
    drop(w);
    let _ = ack.send(&reply);
    if kick {
        let s2 = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = s2.disconnect();
        });
    }
}

fn client(url: &str, password: &str) -> KumaClient {
    let mut http = super::fake::http(Arc::new(Retries::default()));
    http.request_timeout = Duration::from_secs(2);
    http.retry.base_delay = Duration::from_millis(10);
    KumaClient::new(
        KumaConfig {
            url: url.into(),
            username: "admin".into(),
            password: SecretValue::new(password),
        },
        http,
    )
}

fn mark() -> OwnershipMark {
    OwnershipMark::new(
        DeploymentId::new("web-prod").unwrap(),
        "01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap(),
    )
}

fn desired() -> MonitorDesired {
    MonitorDesired {
        name: "web-prod".into(),
        kind: MonitorKind::Http,
        url: "https://web.example.com/health".into(),
        keyword: None,
        interval: 60,
        retries: 2,
        retry_interval: 30,
        accepted_status: vec!["200-299".into(), "301".into()],
        notification_ids: vec![1],
    }
}

fn events(st: &Shared) -> Vec<String> {
    st.lock()
        .unwrap()
        .received
        .iter()
        .map(|(e, _)| e.clone())
        .collect()
}

#[tokio::test]
async fn create_on_2x_waits_for_login_and_marks_the_monitor_in_its_description() {
    let (url, st) = serve("2.5.3").await;
    let c = client(&url, PASSWORD);
    let m = c.create(&desired(), &mark()).await.unwrap();
    assert_eq!(m.id.0, 1);
    assert_eq!(m.mark, Some(mark()));
    // No tag: the mark lives in the description alone.
    assert_eq!(events(&st), vec!["login", "add"]);
    let w = st.lock().unwrap();
    let login = &w.received[0].1[0];
    assert_eq!(
        login,
        &json!({"username": "admin", "password": PASSWORD, "token": ""})
    );
    let add = &w.received[1].1[0];
    assert_eq!(add["conditions"], json!([]));
    assert_eq!(add["type"], "http");
    // Every field of the spec reaches the server.
    assert_eq!(add["interval"], 60);
    assert_eq!(add["maxretries"], 2);
    assert_eq!(add["retryInterval"], 30);
    assert_eq!(add["accepted_statuscodes"], json!(["200-299", "301"]));
    assert_eq!(add["notificationIDList"], json!({"1": true}));
    assert_eq!(
        OwnershipMark::parse(add["description"].as_str().unwrap()),
        Some(mark())
    );
    assert!(w.tags.is_empty());
}

#[tokio::test]
async fn create_on_1_23_sends_no_conditions_and_reuses_the_tag() {
    let (url, st) = serve("1.23.17").await;
    st.lock()
        .unwrap()
        .tags
        .push(json!({"id": 7, "name": "fabrik", "color": "#000"}));
    let c = client(&url, PASSWORD);
    c.create(&desired(), &mark()).await.unwrap();
    let mut k = desired();
    k.kind = MonitorKind::Keyword;
    k.keyword = Some("ok".into());
    c.create(&k, &mark()).await.unwrap();
    let w = st.lock().unwrap();
    assert!(w.received.iter().all(|(e, _)| e != "addTag"));
    let adds: Vec<&Value> = w
        .received
        .iter()
        .filter(|(e, _)| e == "add")
        .map(|(_, a)| &a[0])
        .collect();
    assert!(adds.iter().all(|a| a.get("conditions").is_none()));
    assert_eq!(adds[1]["keyword"], "ok");
    assert_eq!(w.monitors.len(), 2);
    // One login for both calls: the session is reused.
    assert_eq!(w.received.iter().filter(|(e, _)| e == "login").count(), 1);
}

#[tokio::test]
async fn owned_monitors_are_found_by_tag_or_description() {
    let (url, st) = serve("2.5.3").await;
    {
        let mut w = st.lock().unwrap();
        w.monitors.insert(5, json!({"id":5,"name":"a","type":"http","active":true,"tags":[{"name":"fabrik","value":mark().to_compact()}]}));
        w.monitors.insert(6, json!({"id":6,"name":"b","type":"http","active":true,"description":mark().to_text(),"tags":[]}));
        let other = OwnershipMark::new(
            DeploymentId::new("other").unwrap(),
            "01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap(),
        );
        w.monitors.insert(
            7,
            json!({"id":7,"name":"c","type":"http","active":true,"description":other.to_text()}),
        );
        w.monitors.insert(
            8,
            json!({"id":8,"name":"d","type":"http","active":true,"description":"by hand"}),
        );
    }
    let c = client(&url, PASSWORD);
    let mine: Vec<u64> = c
        .find_owned(&mark().deployment)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id.0)
        .collect();
    assert_eq!(mine, vec![5, 6]);
    let all: Vec<u64> = c
        .list_owned()
        .await
        .unwrap()
        .iter()
        .map(|m| m.id.0)
        .collect();
    assert_eq!(all, vec![5, 6, 7]);
}

#[tokio::test]
async fn update_sends_the_full_object_with_changes_merged() {
    let (url, st) = serve("2.5.3").await;
    let c = client(&url, PASSWORD);
    let m = c.create(&desired(), &mark()).await.unwrap();
    let mut d = desired();
    d.url = "https://web.example.com/ready".into();
    d.interval = 30;
    c.update(m.id, &d).await.unwrap();
    let w = st.lock().unwrap();
    let (_, edit) = w.received.iter().find(|(e, _)| e == "editMonitor").unwrap();
    let edit = &edit[0];
    assert_eq!(edit["id"], m.id.0);
    assert_eq!(edit["url"], "https://web.example.com/ready");
    assert_eq!(edit["interval"], 30);
    assert_eq!(edit["retryInterval"], 30);
    assert_eq!(edit["timeout"], 24);
    // Fields the server added survive the round trip.
    assert_eq!(edit["weight"], 2000);
    assert_eq!(edit["description"], w.monitors[&m.id.0]["description"]);
    assert!(
        edit["description"]
            .as_str()
            .unwrap()
            .starts_with(&mark().to_text()),
        "{edit}"
    );
    assert_eq!(w.monitors[&m.id.0]["url"], "https://web.example.com/ready");
}

#[tokio::test]
async fn pause_resume_delete_and_a_missing_monitor() {
    let (url, st) = serve("2.5.3").await;
    let c = client(&url, PASSWORD);
    let m = c.create(&desired(), &mark()).await.unwrap();
    c.pause(m.id).await.unwrap();
    assert_eq!(st.lock().unwrap().monitors[&m.id.0]["active"], false);
    c.resume(m.id).await.unwrap();
    assert_eq!(st.lock().unwrap().monitors[&m.id.0]["active"], true);
    c.delete(m.id).await.unwrap();
    c.delete(m.id).await.unwrap();
    assert!(st.lock().unwrap().monitors.is_empty());
    let e = c.update(m.id, &desired()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn a_dropped_connection_logs_in_again_with_the_token() {
    let (url, st) = serve("2.5.3").await;
    st.lock().unwrap().kick_after = Some("add".into());
    let c = client(&url, PASSWORD);
    let m = c.create(&desired(), &mark()).await.unwrap();
    // The server closed the socket after its last ack.
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.pause(m.id).await.unwrap();
    let ev = events(&st);
    assert_eq!(ev.iter().filter(|e| *e == "login").count(), 1);
    assert!(ev.contains(&"loginByToken".to_owned()), "{ev:?}");
    assert_eq!(ev.iter().filter(|e| *e == "add").count(), 1);
    assert_eq!(ev.last().unwrap(), "pauseMonitor");
}

#[tokio::test]
async fn not_logged_in_triggers_one_relogin() {
    let (url, st) = serve("2.5.3").await;
    st.lock().unwrap().forget_login_on = Some("pauseMonitor".into());
    let c = client(&url, PASSWORD);
    let m = c.create(&desired(), &mark()).await.unwrap();
    c.pause(m.id).await.unwrap();
    let ev = events(&st);
    assert_eq!(ev.iter().filter(|e| *e == "pauseMonitor").count(), 2);
    assert!(ev.contains(&"loginByToken".to_owned()));
}

#[tokio::test]
async fn an_unanswered_add_is_not_repeated() {
    let (url, st) = serve("2.5.3").await;
    st.lock().unwrap().swallow = Some("add".into());
    let mut http = super::fake::http(Arc::new(Retries::default()));
    http.request_timeout = Duration::from_millis(500);
    let c = KumaClient::new(
        KumaConfig {
            url: url.clone(),
            username: "admin".into(),
            password: SecretValue::new(PASSWORD),
        },
        http,
    );
    let e = c.create(&desired(), &mark()).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout { request_sent: true });
    assert!(e.outcome_unknown());
    assert_eq!(events(&st).iter().filter(|e| *e == "add").count(), 1);
    snapshots().bind(|| insta::assert_snapshot!("kuma_add_timeout", e.report()));
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_and_never_echo_the_password() {
    let (url, _st) = serve("2.5.3").await;
    let c = client(&url, "wrong-pa55word-secret");
    let e = c.list_owned().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    let all = format!("{e}\n{}\n{e:?}\n{c:?}", e.report());
    assert!(!all.contains("wrong-pa55word-secret"));
    snapshots().bind(|| insta::assert_snapshot!("kuma_bad_credentials", e.report()));
}

#[tokio::test]
async fn an_unreachable_server_is_a_connect_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let c = client(&format!("http://{addr}"), PASSWORD);
    let e = c.list_owned().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect);
    assert_eq!(e.attempts, 3);
    snapshots().bind(|| insta::assert_snapshot!("kuma_unreachable", e.report()));
}
