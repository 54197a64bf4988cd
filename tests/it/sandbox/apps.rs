//! Deployed apps answer over HTTP and HTTPS with certificates from the
//! sandbox CA, so verification runs its real code path.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::support::{Sandbox, into_resp};

/// A client that sends `domain` to `addr` and trusts only the sandbox CA,
/// as Fabrik's verification does in sandbox mode.
fn app_client(sb: &Sandbox, domain: &str, addr: SocketAddr) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(sb.handle.ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([ca])
        .tls_info(true)
        .resolve(domain, addr)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn an_app_answers_once_its_deployment_finished_and_shows_its_version() {
    let sb = Sandbox::start().await;
    let domain = "blog.example.com";
    let app = sb
        .image_app("blog", "https://blog.example.com", "nginx", "1.27")
        .await;
    sb.coolify(
        Method::PATCH,
        &format!("/applications/{app}"),
        Some(json!({"health_check_path": "/health"})),
    )
    .await;
    let http = app_client(&sb, domain, sb.handle.app_http);
    let https = app_client(&sb, domain, sb.handle.app_https);
    let get = |client: &reqwest::Client, url: String| {
        let req = client.get(url);
        async move { into_resp(req.send().await.unwrap()).await }
    };
    // Known domain, nothing deployed yet: the proxy has no server.
    assert_eq!(get(&http, format!("http://{domain}/")).await.status, 503);
    // Unknown domain: 404.
    let other = app_client(&sb, "nothing.example.com", sb.handle.app_http);
    assert_eq!(
        get(&other, "http://nothing.example.com/".into())
            .await
            .status,
        404
    );

    sb.coolify(Method::POST, &format!("/deploy?uuid={app}"), None)
        .await;
    sb.advance_ms(60);
    assert_eq!(
        get(&http, format!("http://{domain}/")).await.status,
        503,
        "still in progress"
    );
    sb.finish_deploys();
    let health = get(&https, format!("https://{domain}/health")).await;
    assert_eq!((health.status, health.text.as_str()), (200, "OK"));
    let page = get(&https, format!("https://{domain}/")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("blog") && page.text.contains("image nginx:1.27"),
        "{}",
        page.text
    );

    // The same host on the API listener reaches the app too.
    let via_api = app_client(
        &sb,
        domain,
        sb.handle
            .api_url
            .trim_start_matches("http://")
            .parse()
            .unwrap(),
    );
    let api = get(&via_api, format!("http://{domain}/")).await;
    assert!(api.text.contains("image nginx:1.27"));

    // An update shows the new version only once its deployment finished,
    // and a rollback shows the old one again.
    sb.coolify(
        Method::PATCH,
        &format!("/applications/{app}"),
        Some(json!({"docker_registry_image_tag": "1.28"})),
    )
    .await;
    sb.coolify(Method::POST, &format!("/deploy?uuid={app}"), None)
        .await;
    assert!(
        get(&https, format!("https://{domain}/"))
            .await
            .text
            .contains("nginx:1.27")
    );
    sb.finish_deploys();
    let v2 = get(&https, format!("https://{domain}/")).await.text;
    assert!(v2.contains("nginx:1.28"), "{v2}");
    sb.coolify(
        Method::PATCH,
        &format!("/applications/{app}"),
        Some(json!({"docker_registry_image_tag": "1.27"})),
    )
    .await;
    sb.coolify(Method::POST, &format!("/deploy?uuid={app}"), None)
        .await;
    sb.finish_deploys();
    assert_eq!(
        get(&https, format!("https://{domain}/")).await.text,
        page.text
    );

    // Stopped or deleted: no more app.
    sb.coolify(Method::POST, &format!("/applications/{app}/stop"), None)
        .await;
    assert_eq!(get(&http, format!("http://{domain}/")).await.status, 503);
    sb.coolify(Method::DELETE, &format!("/applications/{app}"), None)
        .await;
    sb.advance_ms(1_000);
    assert_eq!(get(&http, format!("http://{domain}/")).await.status, 404);
}

#[tokio::test]
async fn a_failed_deployment_keeps_the_old_version_and_health_can_fail() {
    let sb = Sandbox::start().await;
    let domain = "app.example.com";
    let app = sb
        .image_app("app", "https://app.example.com", "nginx", "1")
        .await;
    sb.coolify(Method::POST, &format!("/deploy?uuid={app}"), None)
        .await;
    sb.finish_deploys();
    let client = app_client(&sb, domain, sb.handle.app_https);
    let fetch = |path: &str| {
        let req = client.get(format!("https://{domain}{path}"));
        async move { into_resp(req.send().await.unwrap()).await }
    };
    assert!(fetch("/about").await.text.contains("nginx:1"));

    let mut faults = sb.handle.faults();
    faults.deploy_fail = true;
    sb.handle.set_faults(faults.clone());
    sb.coolify(
        Method::PATCH,
        &format!("/applications/{app}"),
        Some(json!({"docker_registry_image_tag": "2"})),
    )
    .await;
    let deploy = sb
        .coolify(Method::POST, &format!("/deploy?uuid={app}"), None)
        .await;
    let d = deploy.body["deployments"][0]["deployment_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.finish_deploys();
    let failed = sb
        .coolify(Method::GET, &format!("/deployments/{d}"), None)
        .await;
    assert_eq!(failed.body["status"], "failed");
    assert!(
        fetch("/about").await.text.contains("nginx:1\n"),
        "rolled back to the old container"
    );

    faults.deploy_fail = false;
    faults.health_fail = true;
    sb.handle.set_faults(faults);
    // The default health check path is `/`: with health failing it is 503,
    // other paths still answer.
    assert_eq!(fetch("/").await.status, 503);
    assert_eq!(fetch("/about").await.status, 200);
    // Without a health check the container has no Docker healthcheck and
    // reports `running:unknown`; with one, the failing check shows.
    let got = sb
        .coolify(Method::GET, &format!("/applications/{app}"), None)
        .await;
    assert_eq!(got.body["status"], "running:unknown");
    sb.coolify(
        Method::PATCH,
        &format!("/applications/{app}"),
        Some(json!({"health_check_enabled": true})),
    )
    .await;
    let got = sb
        .coolify(Method::GET, &format!("/applications/{app}"), None)
        .await;
    assert_eq!(got.body["status"], "running:unhealthy");
}

#[tokio::test]
async fn certificates_chain_to_the_sandbox_ca_and_expire_on_demand() {
    let sb = Sandbox::start().await;
    let domain = "secure.example.com";
    let app = sb
        .image_app("secure", "https://secure.example.com", "nginx", "1")
        .await;
    sb.coolify(Method::POST, &format!("/deploy?uuid={app}"), None)
        .await;
    sb.finish_deploys();
    let client = app_client(&sb, domain, sb.handle.app_https);
    let not_after = |resp: &reqwest::Response| {
        let info = resp.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
        let der = info.peer_certificate().unwrap().to_vec();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert_eq!(
            cert.subject_alternative_name()
                .unwrap()
                .unwrap()
                .value
                .general_names[0]
                .to_string(),
            format!("DNSName({domain})")
        );
        cert.validity().not_after.timestamp()
    };
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    let resp = client
        .get(format!("https://{domain}/"))
        .send()
        .await
        .unwrap();
    let days = (not_after(&resp) - now()) as f64 / 86_400.0;
    assert!((89.9..=90.1).contains(&days), "{days} days");

    let mut faults = sb.handle.faults();
    faults.cert_days = Some(3);
    sb.handle.set_faults(faults.clone());
    let fresh = app_client(&sb, domain, sb.handle.app_https);
    let resp = fresh
        .get(format!("https://{domain}/"))
        .send()
        .await
        .unwrap();
    let days = (not_after(&resp) - now()) as f64 / 86_400.0;
    assert!((2.9..=3.1).contains(&days), "{days} days");

    faults.cert_days = Some(0);
    sb.handle.set_faults(faults);
    let expired = app_client(&sb, domain, sb.handle.app_https);
    let err = expired
        .get(format!("https://{domain}/"))
        .send()
        .await
        .unwrap_err();
    let chain = format!("{err:?}");
    assert!(chain.to_lowercase().contains("expired"), "{chain}");

    // A client that does not trust the sandbox CA refuses the certificate.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .resolve(domain, sb.handle.app_https)
        .build()
        .unwrap();
    assert!(
        untrusting
            .get(format!("https://{domain}/"))
            .send()
            .await
            .is_err()
    );
    // An unknown name gets a certificate for another name.
    let unknown = app_client(&sb, "unknown.example.com", sb.handle.app_https);
    assert!(
        unknown
            .get("https://unknown.example.com/")
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn dns_questions_are_answered_from_the_records() {
    let sb = Sandbox::start().await;
    let zone = sb.zone_id().await;
    let records = format!("/zones/{zone}/dns_records");
    sb.cf(
        Method::POST,
        &records,
        Some(json!({"type": "A", "name": "app", "content": "127.0.0.1"})),
    )
    .await;
    sb.cf(
        Method::POST,
        &records,
        Some(json!({"type": "CNAME", "name": "www", "content": "app.example.com"})),
    )
    .await;
    let answer = sb
        .admin(Method::GET, "/resolve?name=www.example.com&type=A", None)
        .await;
    assert_eq!(answer.body["status"], "NOERROR");
    let answers = answer.body["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["type"], "CNAME");
    assert_eq!(answers[1]["content"], "127.0.0.1");
    let missing = sb.handle.resolve("nope.example.com", "A").await.unwrap();
    assert_eq!(missing["status"], "NXDOMAIN");
    let foreign = sb.handle.resolve("example.org", "A").await.unwrap();
    assert_eq!(foreign["status"], "REFUSED");
    let no_aaaa = sb.handle.resolve("app.example.com", "AAAA").await.unwrap();
    assert_eq!(
        (no_aaaa["status"].clone(), no_aaaa["answers"].clone()),
        (json!("NOERROR"), json!([]))
    );
}

#[tokio::test]
async fn dns_answers_are_what_cloudflare_serves_not_what_it_stores() {
    let sb = Sandbox::start().await;
    let zone = sb.zone_id().await;
    let records = format!("/zones/{zone}/dns_records");
    let long = "k".repeat(300);
    for body in [
        json!({"type": "A", "name": "shop", "content": "203.0.113.10", "proxied": true}),
        json!({"type": "CNAME", "name": "www", "content": "origin.example.net", "proxied": true}),
        json!({"type": "AAAA", "name": "v6", "content": "2001:DB8:0:0:0:0:0:10"}),
        json!({"type": "TXT", "name": "txt", "content": "v=spf1 -all"}),
        json!({"type": "TXT", "name": "long", "content": long}),
    ] {
        let resp = sb.cf(Method::POST, &records, Some(body)).await;
        assert_eq!(resp.status, 200, "{resp:?}");
    }
    let ask = |name: &'static str, kind: &'static str| {
        let h = &sb.handle;
        async move { h.resolve(name, kind).await.unwrap() }
    };
    let contents = |answer: &serde_json::Value| -> Vec<String> {
        answer["answers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["content"].as_str().unwrap().to_owned())
            .collect()
    };
    let edge = |answer: &serde_json::Value, v6: bool| {
        let got = contents(answer);
        assert_eq!(got.len(), 2, "{answer}");
        for ip in got {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert_eq!(ip.is_ipv6(), v6, "{answer}");
            assert!(fabrik::spec::model::cloudflare_edge(ip), "{answer}");
        }
        for a in answer["answers"].as_array().unwrap() {
            assert_eq!(a["ttl"], 300, "{answer}");
        }
    };
    // A proxied record answers with Cloudflare's addresses, of both
    // families, never the origin.
    edge(&ask("shop.example.com", "A").await, false);
    edge(&ask("shop.example.com", "AAAA").await, true);
    assert_eq!(
        ask("shop.example.com", "A").await,
        ask("shop.example.com", "A").await
    );
    // A proxied CNAME is flattened: addresses, and no CNAME to be seen.
    let flat = ask("www.example.com", "A").await;
    edge(&flat, false);
    assert!(!flat.to_string().contains("origin.example.net"), "{flat}");
    let cname = ask("www.example.com", "CNAME").await;
    assert_eq!(
        (cname["status"].clone(), cname["answers"].clone()),
        (json!("NOERROR"), json!([]))
    );
    // AAAA as stored (compressed), TXT as it travels: quoted strings of
    // at most 255 bytes; an automatic TTL is 300 seconds.
    let v6 = ask("v6.example.com", "AAAA").await;
    assert_eq!(contents(&v6), vec!["2001:db8::10"]);
    assert_eq!(v6["answers"][0]["ttl"], 300);
    assert_eq!(
        contents(&ask("txt.example.com", "TXT").await),
        vec!["\"v=spf1 -all\""]
    );
    assert_eq!(
        contents(&ask("long.example.com", "TXT").await),
        vec![format!("\"{}\" \"{}\"", "k".repeat(255), "k".repeat(45))]
    );
    // A zone that is not active is not delegated to Cloudflare: no
    // resolver reaches its records.
    let resp = sb
        .admin(
            Method::PUT,
            "/zone",
            Some(json!({"name": "example.com", "status": "pending"})),
        )
        .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let pending = ask("v6.example.com", "AAAA").await;
    assert_eq!(pending["status"], "SERVFAIL", "{pending}");
    assert_eq!(pending["answers"], json!([]));
    assert!(
        pending["reason"]
            .as_str()
            .unwrap()
            .contains("zone example.com is pending"),
        "{pending}"
    );
}

#[tokio::test]
async fn faults_reach_the_apps_only_when_targeted() {
    let sb = Sandbox::start().await;
    let domain = "app.example.com";
    let app = sb
        .image_app("app", "https://app.example.com", "nginx", "1")
        .await;
    sb.coolify(Method::POST, &format!("/deploy?uuid={app}"), None)
        .await;
    sb.finish_deploys();
    let client = app_client(&sb, domain, sb.handle.app_http);
    let status = || {
        let req = client.get(format!("http://{domain}/about"));
        async move { req.send().await.unwrap().status().as_u16() }
    };
    sb.handle
        .set_faults(fabrik::sandbox::FaultConfig::from_cli("error_rate=1").unwrap());
    assert_eq!(status().await, 200, "untargeted rates spare the apps");
    sb.handle
        .set_faults(fabrik::sandbox::FaultConfig::from_cli("error_rate=1,target=apps").unwrap());
    assert_eq!(status().await, 502);
}
