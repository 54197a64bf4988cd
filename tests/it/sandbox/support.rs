//! Shared helpers: a sandbox per test, HTTP helpers for the two REST APIs,
//! and a minimal Socket.IO v5 / Engine.IO v4 client for Uptime Kuma.

use std::collections::VecDeque;
use std::time::Duration;

use fabrik::sandbox::{ManualClock, SandboxConfig, SandboxHandle, start};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// 2026-01-01T00:00:00Z: the manual clocks start here.
pub const START_MS: i64 = 1_767_225_600_000;

/// A running sandbox with its own data directory and manual clock.
pub struct Sandbox {
    pub handle: SandboxHandle,
    pub clock: ManualClock,
    pub config: SandboxConfig,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

/// A response, with the body parsed as JSON when it is JSON.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

impl Sandbox {
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    /// Starts a sandbox after `adjust` has changed its default config.
    pub async fn with(adjust: impl FnOnce(&mut SandboxConfig)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::in_dir(dir, adjust).await
    }

    pub async fn in_dir(dir: tempfile::TempDir, adjust: impl FnOnce(&mut SandboxConfig)) -> Self {
        let clock = ManualClock::new(START_MS);
        let mut config = SandboxConfig::new(dir.path().join("sandbox.db"));
        config.clock = fabrik::sandbox::Clock::Manual(clock.clone());
        adjust(&mut config);
        let handle = start(config.clone()).await.unwrap();
        Self {
            handle,
            clock,
            config,
            dir,
            http: client(),
        }
    }

    pub fn advance_ms(&self, ms: u64) {
        self.clock.advance(Duration::from_millis(ms));
    }

    /// Moves the clock past the end of a deployment queued now.
    pub fn finish_deploys(&self) {
        let total = self.config.deploy_queue_time + self.config.deploy_duration;
        self.clock.advance(total + Duration::from_millis(1));
    }

    pub fn coolify_token(&self) -> String {
        self.handle.credentials.coolify_token.expose().to_owned()
    }

    pub fn cloudflare_token(&self) -> String {
        self.handle.credentials.cloudflare_token.expose().to_owned()
    }

    /// A Coolify API call with the right token (`path` under `/api/v1`).
    pub async fn coolify(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let token = self.coolify_token();
        self.coolify_as(method, path, Some(&token), body).await
    }

    pub async fn coolify_as(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let url = format!("{}/api/v1{path}", self.handle.coolify_url);
        let mut req = self.http.request(method, url);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }

    /// A Cloudflare API call with the right token (`path` under `/client/v4`).
    pub async fn cf(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let url = format!("{}{path}", self.handle.cloudflare_url);
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.cloudflare_token());
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }

    /// The seeded project, environment name and server.
    pub async fn place(&self) -> (String, String) {
        let projects = self.coolify(Method::GET, "/projects", None).await;
        let servers = self.coolify(Method::GET, "/servers", None).await;
        (
            projects.body[0]["uuid"].as_str().unwrap().to_owned(),
            servers.body[0]["uuid"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a docker-image application; returns its uuid.
    pub async fn image_app(&self, name: &str, domain: &str, image: &str, tag: &str) -> String {
        let (project, server) = self.place().await;
        let resp = self
            .coolify(
                Method::POST,
                "/applications/dockerimage",
                Some(json!({
                    "project_uuid": project,
                    "server_uuid": server,
                    "environment_name": "production",
                    "docker_registry_image_name": image,
                    "docker_registry_image_tag": tag,
                    "ports_exposes": "80",
                    "name": name,
                    "domains": domain,
                })),
            )
            .await;
        assert_eq!(resp.status, 201, "{resp:?}");
        resp.body["uuid"].as_str().unwrap().to_owned()
    }

    /// The id of the `example.com` zone.
    pub async fn zone_id(&self) -> String {
        let zones = self.cf(Method::GET, "/zones?name=example.com", None).await;
        zones.body["result"][0]["id"].as_str().unwrap().to_owned()
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let url = format!("{}/_sandbox{path}", self.handle.api_url);
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        send(req).await
    }
}

pub async fn send(req: reqwest::RequestBuilder) -> Resp {
    let resp = req.send().await.expect("request failed");
    into_resp(resp).await
}

pub async fn into_resp(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.clone()));
    Resp {
        status,
        headers,
        body,
        text,
    }
}

/// A minimal Socket.IO client (protocol 5 over Engine.IO 4, websocket
/// transport), enough to drive Uptime Kuma's API.
pub struct Kuma {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_ack: u64,
    /// Events received and not yet taken: (name, arguments).
    pub events: VecDeque<(String, Vec<Value>)>,
}

const WAIT: Duration = Duration::from_secs(10);

impl Kuma {
    /// Connects to the default namespace and waits for `loginRequired`.
    pub async fn connect(base_url: &str) -> Self {
        let url = format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            base_url.replacen("http://", "ws://", 1)
        );
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let mut kuma = Self {
            ws,
            next_ack: 0,
            events: VecDeque::new(),
        };
        let open = kuma.frame().await;
        assert!(open.starts_with('0'), "engine.io open packet, got {open}");
        kuma.send("40").await;
        loop {
            let frame = kuma.frame().await;
            if frame.starts_with("40") {
                break;
            }
            kuma.absorb(&frame);
        }
        kuma.event("loginRequired").await;
        kuma
    }

    async fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// The next text frame (answering pings on the way); panics after a
    /// timeout or if the server closed the connection.
    async fn frame(&mut self) -> String {
        self.try_frame().await.expect("connection closed")
    }

    /// The next text frame, or `None` when the server closed.
    pub async fn try_frame(&mut self) -> Option<String> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for the server");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    let t = t.to_string();
                    if t == "2" {
                        self.send("3").await;
                        continue;
                    }
                    if t.starts_with('1') || t.starts_with("41") {
                        return None;
                    }
                    return Some(t);
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Stores an event frame (`42[...]`).
    fn absorb(&mut self, frame: &str) {
        if let Some(rest) = frame.strip_prefix("42") {
            let json_start = rest.find('[').unwrap_or(0);
            let mut items: Vec<Value> = serde_json::from_str(&rest[json_start..]).unwrap();
            let name = items.remove(0).as_str().unwrap().to_owned();
            self.events.push_back((name, items));
        }
    }

    /// Emits an event and returns the acknowledgement's arguments.
    pub async fn call(&mut self, event: &str, args: Vec<Value>) -> Vec<Value> {
        self.try_call(event, args).await.expect("connection closed")
    }

    /// Emits an event; `None` if the server closed before acknowledging.
    pub async fn try_call(&mut self, event: &str, args: Vec<Value>) -> Option<Vec<Value>> {
        let id = self.next_ack;
        self.next_ack += 1;
        let mut packet = vec![json!(event)];
        packet.extend(args);
        self.send(&format!("42{id}{}", Value::Array(packet))).await;
        let prefix = format!("43{id}");
        loop {
            let frame = self.try_frame().await?;
            if let Some(rest) = frame.strip_prefix(&prefix)
                && rest.starts_with('[')
            {
                return Some(serde_json::from_str(rest).unwrap());
            }
            self.absorb(&frame);
        }
    }

    /// Emits and returns the first acknowledgement argument.
    pub async fn ack(&mut self, event: &str, args: Vec<Value>) -> Value {
        self.call(event, args)
            .await
            .into_iter()
            .next()
            .unwrap_or(Value::Null)
    }

    /// Waits for the next event named `name` and returns its arguments.
    pub async fn event(&mut self, name: &str) -> Vec<Value> {
        loop {
            if let Some(pos) = self.events.iter().position(|(n, _)| n == name) {
                return self.events.remove(pos).unwrap().1;
            }
            let frame = self.frame().await;
            self.absorb(&frame);
        }
    }

    /// Logs in with the given credentials; returns the acknowledgement.
    pub async fn login(&mut self, username: &str, password: &str) -> Value {
        self.ack(
            "login",
            vec![json!({"username": username, "password": password, "token": ""})],
        )
        .await
    }

    /// Connects and logs in with the sandbox's credentials.
    pub async fn logged_in(sandbox: &Sandbox) -> Self {
        let mut kuma = Self::connect(&sandbox.handle.kuma_url).await;
        let creds = &sandbox.handle.credentials;
        let ack = kuma
            .login(&creds.kuma_username, creds.kuma_password.expose())
            .await;
        assert_eq!(ack["ok"], true, "{ack}");
        kuma.event("monitorList").await;
        kuma
    }
}

/// The HTTP monitor payload the 2.5.3 UI sends (notes §5).
pub fn monitor_payload(name: &str, url: &str) -> Value {
    json!({
        "type": "http",
        "name": name,
        "description": "managed-by=fabrik deployment=blog run=01jdx3v5q6m7n8p9r0s1t2v3w4",
        "url": url,
        "method": "GET",
        "interval": 60,
        "retryInterval": 60,
        "resendInterval": 0,
        "maxretries": 0,
        "timeout": 48,
        "upsideDown": false,
        "ignoreTls": false,
        "expiryNotification": false,
        "maxredirects": 10,
        "accepted_statuscodes": ["200-299"],
        "notificationIDList": {},
        "httpBodyEncoding": "json",
        "authMethod": null,
        "parent": null,
        "conditions": [],
        "kafkaProducerBrokers": [],
        "kafkaProducerSaslOptions": {"mechanism": "None"},
        "rabbitmqNodes": [],
        "active": true
    })
}
