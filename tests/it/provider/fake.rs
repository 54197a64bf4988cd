//! A scripted HTTP server on 127.0.0.1:0 that records every request.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: v.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub fn text(status: u16, s: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: s.as_bytes().to_vec(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn after(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl Hit {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    /// `METHOD /path?query`
    pub fn line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, self.query)
        }
    }
}

struct Route {
    method: String,
    path: String,
    replies: VecDeque<Reply>,
}

#[derive(Default)]
struct Inner {
    routes: Mutex<Vec<Route>>,
    hits: Mutex<Vec<Hit>>,
}

/// The server.
#[derive(Clone)]
pub struct Fake {
    pub base: String,
    inner: Arc<Inner>,
}

impl Fake {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            inner,
        }
    }

    /// Scripts the answers to `method path` (path may include `?query` to
    /// match that query exactly). The last answer repeats.
    pub fn on(&self, method: &str, path: &str, replies: Vec<Reply>) {
        let mut routes = self.inner.routes.lock().unwrap();
        routes.retain(|r| !(r.method == method && r.path == path));
        routes.push(Route {
            method: method.into(),
            path: path.into(),
            replies: replies.into(),
        });
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.inner.hits.lock().unwrap().clone()
    }

    /// Requests to `method path` (any query).
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.hits()
            .iter()
            .filter(|h| h.method == method && h.path == path)
            .count()
    }

    pub fn lines(&self) -> Vec<String> {
        self.hits().iter().map(Hit::line).collect()
    }

    /// The hits to `method path`.
    pub fn find(&self, method: &str, path: &str) -> Vec<Hit> {
        self.hits()
            .into_iter()
            .filter(|h| h.method == method && h.path == path)
            .collect()
    }
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    inner.hits.lock().unwrap().push(Hit {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let full = format!("{path}?{query}");
    let reply = {
        let mut routes = inner.routes.lock().unwrap();
        let idx = routes
            .iter()
            .position(|r| r.method == method.as_str() && r.path == full)
            .or_else(|| {
                routes
                    .iter()
                    .position(|r| r.method == method.as_str() && r.path == path)
            });
        idx.and_then(|i| {
            let r = &mut routes[i];
            if r.replies.len() > 1 {
                r.replies.pop_front()
            } else {
                r.replies.front().cloned()
            }
        })
    };
    let Some(reply) = reply else {
        return (
            StatusCode::from_u16(599).unwrap(),
            format!("fake: no route for {method} {path}"),
        )
            .into_response();
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = Response::builder().status(reply.status);
    for (k, v) in &reply.headers {
        resp = resp.header(k, v);
    }
    resp.body(axum::body::Body::from(reply.body)).unwrap()
}

/// Snapshot settings for this module.
pub fn snapshots() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots/provider"));
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[port]");
    s
}

/// A retry observer that records every event.
#[derive(Default)]
pub struct Retries(pub Mutex<Vec<fabrik::provider::RetryEvent>>);

impl fabrik::provider::RetryObserver for Retries {
    fn on_retry(&self, event: &fabrik::provider::RetryEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Retries {
    pub fn delays(&self) -> Vec<Duration> {
        self.0.lock().unwrap().iter().map(|e| e.delay).collect()
    }
}

/// HTTP settings for tests: real retry counts, no jitter, an observer.
pub fn http(observer: Arc<Retries>) -> fabrik::provider::HttpConfig {
    fabrik::provider::HttpConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        retry: fabrik::provider::RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            jitter: 0.0,
            max_retry_after: Duration::from_secs(120),
        },
        max_body_bytes: 64 * 1024,
        observer: Some(observer),
    }
}
