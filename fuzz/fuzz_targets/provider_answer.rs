//! Hostile answers of the services (status, content type and body from
//! the fuzzer) to the calls a run makes first: an error or a value, never
//! a panic, bodies beyond the limit refused unread, and the token never
//! quoted in an error.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use fabrik::provider::{AppHost as _, Dns as _};
use libfuzzer_sys::fuzz_target;

const TOKEN: &str = "fuzz-token-9Qe3vXb7Lm2Tz8Rk";

struct Service {
    rt: tokio::runtime::Runtime,
    base: String,
    answer: Arc<Mutex<(u16, Option<&'static str>, Vec<u8>)>>,
}

fn service() -> &'static Service {
    static SERVICE: OnceLock<Service> = OnceLock::new();
    SERVICE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let answer = Arc::new(Mutex::new((200, None, Vec::new())));
        let shared = answer.clone();
        let base = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let app = axum::Router::new().fallback(move || {
                let (status, ct, body) = shared.lock().expect("answer").clone();
                async move {
                    let mut r = axum::http::Response::builder().status(status);
                    if let Some(ct) = ct {
                        r = r.header("content-type", ct);
                    }
                    r.body(axum::body::Body::from(body)).expect("response")
                }
            });
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            format!("http://{addr}")
        });
        Service { rt, base, answer }
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
    let ct = match data[2] % 3 {
        0 => Some("application/json"),
        1 => Some("text/html"),
        _ => None,
    };
    let s = service();
    *s.answer.lock().expect("answer") = (status, ct, data[3..].to_vec());
    let http = fabrik::provider::HttpConfig {
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        retry: fabrik::provider::RetryPolicy::none(),
        max_body_bytes: 64 * 1024,
        observer: None,
    };
    let coolify = fabrik::provider::CoolifyClient::new(
        fabrik::provider::CoolifyConfig {
            base_url: s.base.clone(),
            token: fabrik::secret::SecretValue::new(TOKEN),
        },
        http.clone(),
    )
    .expect("client");
    let cloudflare = fabrik::provider::CloudflareClient::new(
        fabrik::provider::CloudflareConfig {
            api_url: format!("{}/client/v4", s.base),
            token: fabrik::secret::SecretValue::new(TOKEN),
            use_tags: false,
        },
        http,
    )
    .expect("client");
    let target = fabrik::provider::Target {
        project: "default".into(),
        environment: "production".into(),
        server: "localhost".into(),
        destination: None,
    };
    let zone = fabrik::provider::Zone {
        id: "z1".into(),
        name: "example.com".into(),
    };
    let errors = s.rt.block_on(async {
        let mut errors = Vec::new();
        let mut keep = |r: Result<(), fabrik::provider::ProviderError>| {
            if let Err(e) = r {
                errors.push(format!(
                    "{}\n{}",
                    fabrik::error::chain_text(&e),
                    e.hint.clone().unwrap_or_default()
                ));
            }
        };
        keep(coolify.server_version().await.map(|_| ()));
        keep(coolify.preflight(&target).await.map(|_| ()));
        keep(fabrik::provider::AppHost::list_owned(&coolify).await.map(|_| ()));
        keep(cloudflare.find_zone("example.com").await.map(|_| ()));
        keep(fabrik::provider::Dns::list_owned(&cloudflare, &zone).await.map(|_| ()));
        errors
    });
    for text in errors {
        assert!(!text.trim().is_empty());
        assert!(text.len() < 4_000, "an error of {} bytes", text.len());
        assert!(!text.contains(TOKEN), "the token leaked: {text}");
    }
});
