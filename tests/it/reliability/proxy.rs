//! A proxy in front of the sandbox's HTTP APIs that rewrites their error
//! answers: how a server that encodes differently (Laravel's JSON, which
//! writes `/` as `\/`), or a hostile one (a body full of terminal escapes),
//! is played against the real binary without changing the simulator.

use std::sync::Arc;

use crate::faults::LiveSandbox;

/// Rewrites an error answer: `(status, body)` → the new body, or `None` to
/// pass it on unchanged.
pub type Rewrite = Arc<dyn Fn(u16, &[u8]) -> Option<Vec<u8>> + Send + Sync>;

/// A proxy on 127.0.0.1:0 in front of one origin.
pub struct Proxy {
    /// Its origin, `http://127.0.0.1:PORT`.
    pub origin: String,
    upstream: String,
}

impl Proxy {
    /// Starts a proxy to `upstream` (an origin, `http://host:port`) on the
    /// sandbox's runtime. Answers of 400 and above pass through `rewrite`.
    pub fn start(sandbox: &LiveSandbox, upstream: &str, rewrite: Rewrite) -> Self {
        let upstream = origin_of(upstream);
        let to = upstream.clone();
        let origin = sandbox.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            let app =
                axum::Router::new().fallback(move |req: axum::http::Request<axum::body::Body>| {
                    let (client, to, rewrite) = (client.clone(), to.clone(), rewrite.clone());
                    async move { forward(&client, &to, &rewrite, req).await }
                });
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            format!("http://127.0.0.1:{port}")
        });
        Self { origin, upstream }
    }

    /// `url` (of the upstream) as reached through the proxy.
    pub fn through(&self, url: &str) -> String {
        assert!(
            url.starts_with(&self.upstream),
            "{url} is not behind {}",
            self.upstream
        );
        format!("{}{}", self.origin, &url[self.upstream.len()..])
    }
}

/// `scheme://host:port` of a URL.
fn origin_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    u.origin().ascii_serialization()
}

async fn forward(
    client: &reqwest::Client,
    upstream: &str,
    rewrite: &Rewrite,
    req: axum::http::Request<axum::body::Body>,
) -> axum::response::Response {
    use axum::http::header;
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = client
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .body(body.to_vec());
    for (k, v) in &parts.headers {
        if k != header::HOST && k != header::CONTENT_LENGTH {
            out = out.header(k, v);
        }
    }
    let Ok(answer) = out.send().await else {
        return axum::response::Response::builder()
            .status(502)
            .body(axum::body::Body::empty())
            .unwrap();
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let mut bytes = answer.bytes().await.unwrap_or_default().to_vec();
    if status.as_u16() >= 400
        && let Some(new) = rewrite(status.as_u16(), &bytes)
    {
        bytes = new;
    }
    let mut built = axum::response::Response::builder().status(status);
    for (k, v) in &headers {
        if k != header::CONTENT_LENGTH && k != header::TRANSFER_ENCODING {
            built = built.header(k, v);
        }
    }
    built.body(axum::body::Body::from(bytes)).unwrap()
}

/// Every string of a JSON body's `errors` (field → messages) and
/// `message`, each replaced by what `encode` makes of it (one message
/// becoming several); the body unchanged when it is not such JSON.
pub fn reencode_errors(body: &[u8], encode: &dyn Fn(&str) -> Vec<String>) -> Option<Vec<u8>> {
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let map = v.as_object_mut()?;
    if let Some(serde_json::Value::Object(errors)) = map.get_mut("errors") {
        for (_, m) in errors.iter_mut() {
            let texts: Vec<String> = match m {
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                _ => continue,
            };
            let encoded: Vec<serde_json::Value> = texts
                .iter()
                .flat_map(|t| encode(t))
                .map(serde_json::Value::String)
                .collect();
            *m = serde_json::Value::Array(encoded);
        }
    }
    // Cloudflare's envelope: `errors` is a list of `{code, message}`.
    if let Some(serde_json::Value::Array(errors)) = map.get_mut("errors") {
        let mut out = Vec::new();
        for e in errors.iter() {
            if let Some(m) = e.get("message").and_then(|m| m.as_str()) {
                for t in encode(m) {
                    out.push(serde_json::json!({"code": e.get("code").cloned().unwrap_or_default(), "message": t}));
                }
            }
        }
        *errors = out;
    }
    if let Some(serde_json::Value::String(m)) = map.get_mut("message") {
        *m = encode(m).join(" ");
    }
    serde_json::to_vec(&v).ok()
}
