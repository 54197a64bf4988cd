//! `bind` + `run` (what `fabrik sandbox serve` calls) and the handle's
//! lifecycle.

use std::net::SocketAddr;

use fabrik::sandbox::{SandboxConfig, bind};
use serde_json::Value;

use super::support::{Kuma, client};

#[tokio::test]
async fn serve_binds_reports_its_addresses_and_stops_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let config = SandboxConfig::new(dir.path().join("served.db"));
    let token = config.credentials.coolify_token.expose().to_owned();
    let bound = bind("127.0.0.1:0".parse::<SocketAddr>().unwrap(), config)
        .await
        .unwrap();
    let info = bound.info().clone();
    assert!(info.api_url.starts_with("http://127.0.0.1:"));
    assert_eq!(info.cloudflare_url, format!("{}/client/v4", info.api_url));
    assert!(info.ca_pem.contains("BEGIN CERTIFICATE"));
    assert_ne!(info.app_http, info.app_https);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bound.run(async move {
        let _ = stopped.await;
    }));

    let http = client();
    let version = http
        .get(format!("{}/api/v1/version", info.coolify_url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(version, "4.3.11");
    let admin: Value = http
        .get(format!("{}/_sandbox/info", info.api_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin["app_https"], info.app_https.to_string());
    // An open Socket.IO session does not keep the server from stopping.
    let _kuma = Kuma::connect(&info.kuma_url).await;

    stop.send(()).unwrap();
    let result = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the server stops")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    assert!(
        http.get(format!("{}/api/health", info.api_url))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_handle_hides_credentials_and_shuts_down() {
    let dir = tempfile::tempdir().unwrap();
    let handle = fabrik::sandbox::start(SandboxConfig::new(dir.path().join("s.db")))
        .await
        .unwrap();
    let debug = format!("{handle:?}");
    assert!(
        !debug.contains(handle.credentials.coolify_token.expose()),
        "{debug}"
    );
    assert!(
        !debug.contains(handle.credentials.kuma_password.expose()),
        "{debug}"
    );
    let url = format!("{}/api/health", handle.api_url);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    handle.shutdown().await.unwrap();
    assert!(client().get(&url).send().await.is_err());
}

#[tokio::test]
async fn a_bad_address_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = bind(addr, SandboxConfig::new(dir.path().join("s.db")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}
