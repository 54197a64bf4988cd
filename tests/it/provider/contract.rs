//! Contract tests: every Coolify request Fabrik can send goes through Prism
//! serving the Coolify OpenAPI (a violation fails the test), and is checked
//! for fields the OpenAPI does not declare (Coolify rejects unknown fields,
//! Prism does not); Cloudflare request bodies are validated against the
//! DNS record schemas with `jsonschema`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use fabrik::id::DeploymentId;
use fabrik::ownership::OwnershipMark;
use fabrik::provider::*;
use fabrik::secret::SecretValue;
use serde_json::{Value, json};

use super::coolify::{image_app, mark, resolved};
use super::fake::{Fake, Reply, Retries, http};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn load_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    serde_json::to_value(yaml).unwrap()
}

/// One request seen by the proxy, with Prism's verdict.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    body: String,
    status: u16,
    violations: Option<String>,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn forward(
    State(p): State<Proxy>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!(
        "{}{}",
        p.upstream,
        uri.path_and_query().map(|x| x.as_str()).unwrap_or("/")
    );
    let mut req = p.client.request(method.clone(), url);
    for name in ["authorization", "content-type", "accept"] {
        if let Some(v) = headers.get(name) {
            req = req.header(name, v.clone());
        }
    }
    let resp = req.body(body.clone()).send().await.unwrap();
    let status = resp.status().as_u16();
    let violations = resp
        .headers()
        .get("sl-violations")
        .map(|v| v.to_str().unwrap_or("?").to_owned());
    let ctype = resp.headers().get("content-type").cloned();
    let bytes = resp.bytes().await.unwrap_or_default();
    p.seen.lock().unwrap().push(Seen {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or("").to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
        violations,
    });
    let mut out = Response::builder().status(status);
    if let Some(c) = ctype {
        out = out.header("content-type", c);
    }
    out.body(axum::body::Body::from(bytes)).unwrap()
}

struct Prism {
    child: tokio::process::Child,
    base: String,
}

impl Drop for Prism {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn start_prism() -> Option<Prism> {
    let bin = root().join("node_modules/.bin/prism");
    if !bin.exists() {
        let msg = "prism is not installed (run `npm ci` at the repository root)";
        if std::env::var("FABRIK_REQUIRE_PRISM").as_deref() == Ok("1") {
            panic!("{msg}, and FABRIK_REQUIRE_PRISM=1");
        }
        println!("skipped: {msg}");
        return None;
    }
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = tokio::process::Command::new(bin)
        .args(["mock", "-h", "127.0.0.1", "-p", &port.to_string()])
        .arg(root().join("tests/contract/coolify/openapi.prism.yaml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let prism = Prism {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    for _ in 0..240 {
        if client
            .get(format!("{}/api/v1/health", prism.base))
            .send()
            .await
            .is_ok()
        {
            return Some(prism);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("prism did not start within 120 s");
}

/// Resolves `$ref`s inside the OpenAPI document.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.trim_start_matches('#');
            resolve(doc, doc.pointer(ptr).unwrap_or(&Value::Null))
        }
        None => v,
    }
}

/// The OpenAPI operation for a concrete path (`{param}` segments match anything).
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<&'a Value> {
    let segs: Vec<&str> = path.split('/').collect();
    let paths = doc["paths"].as_object()?;
    let mut best: Option<(&Value, usize)> = None;
    for (template, item) in paths {
        let t: Vec<&str> = template.split('/').collect();
        if t.len() != segs.len() {
            continue;
        }
        let mut literal = 0;
        let ok = t.iter().zip(&segs).all(|(a, b)| {
            if a.starts_with('{') {
                true
            } else {
                literal += 1;
                a == b
            }
        });
        if ok
            && let Some(op) = item.get(method.to_ascii_lowercase())
            && best.is_none_or(|(_, l)| literal > l)
        {
            best = Some((op, literal));
        }
    }
    best.map(|(op, _)| op)
}

/// Body fields the operation's schema does not declare.
/// Fields the controllers take that the OpenAPI file leaves out, each
/// checked in coollabsio/coolify 379abb25 (4.3.11): the bulk env endpoint
/// validates and stores `is_runtime` and `is_buildtime` per item
/// (`ApplicationsController.php:3314`, from 4.0.0-beta.435); Fabrik needs
/// `is_buildtime: false` to keep secrets out of builds.
const BEYOND_OPENAPI: &[(&str, &str)] = &[
    ("/envs/bulk", "data[].is_runtime"),
    ("/envs/bulk", "data[].is_buildtime"),
];

fn undeclared(doc: &Value, seen: &Seen) -> Vec<String> {
    if seen.body.is_empty() {
        return vec![];
    }
    let Some(op) = operation(doc, &seen.method, &seen.path) else {
        return vec![format!("no operation for {} {}", seen.method, seen.path)];
    };
    let schema = resolve(
        doc,
        &op["requestBody"]["content"]["application/json"]["schema"],
    );
    let props = &schema["properties"];
    let body: Value = serde_json::from_str(&seen.body).unwrap();
    let mut out = vec![];
    for (k, v) in body.as_object().unwrap() {
        if props.get(k).is_none() {
            out.push(k.clone());
        } else if k == "data" {
            let item = resolve(doc, &props["data"]["items"]);
            for entry in v.as_array().unwrap() {
                for ik in entry.as_object().unwrap().keys() {
                    if item["properties"].get(ik).is_none() {
                        out.push(format!("data[].{ik}"));
                    }
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_coolify_request_satisfies_the_openapi_contract() {
    let Some(prism) = start_prism().await else {
        return;
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let proxy = Proxy {
        upstream: prism.base.clone(),
        client: reqwest::Client::new(),
        seen: seen.clone(),
    };
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut cfg = http(Arc::new(Retries::default()));
    cfg.retry = RetryPolicy::none();
    cfg.max_body_bytes = 8 * 1024 * 1024;
    let client = CoolifyClient::new(
        CoolifyConfig {
            base_url: format!("http://{addr}"),
            token: SecretValue::new("1|contract-test-token"),
        },
        cfg,
    )
    .unwrap();

    // Drive every operation; the mock's canned answers may not satisfy the
    // client's lookups, so results are ignored: what counts is each request.
    let target = Target {
        project: "string".into(),
        environment: "string".into(),
        server: "string".into(),
        destination: None,
    };
    let _ = client.preflight(&target).await;
    let t = resolved("4.3.11");
    let mut d = image_app();
    let _ = client.create_app(&t, &d, &mark()).await;
    d.source = AppSource::Dockerfile {
        dockerfile: "FROM nginx\n".into(),
    };
    let _ = client.create_app(&t, &d, &mark()).await;
    for bp in [BuildPack::Nixpacks, BuildPack::DockerCompose] {
        d.source = AppSource::Git {
            repository: "https://github.com/acme/blog".into(),
            branch: "main".into(),
            build_pack: bp,
            build: Default::default(),
        };
        let _ = client.create_app(&t, &d, &mark()).await;
    }
    d.source = AppSource::Compose {
        compose: "services: {}\n".into(),
        public_service: Some("web".into()),
    };
    let _ = client.create_app(&t, &d, &mark()).await;
    d.source = AppSource::OneClick {
        service_type: "ghost".into(),
    };
    let _ = client.create_app(&t, &d, &mark()).await;
    let mut with_dest = resolved("4.3.11");
    with_dest.destination_uuid = Some("dst".into());
    let _ = client.create_app(&with_dest, &image_app(), &mark()).await;

    for kind in [AppKind::Application, AppKind::Service] {
        let lookup = AppLookup {
            kind,
            uuid: Some("app-uuid".into()),
            name: "blog".into(),
            deployment: DeploymentId::new("blog").unwrap(),
        };
        let _ = client.find_app(&t, &lookup).await;
        let _ = client
            .find_app(
                &t,
                &AppLookup {
                    uuid: None,
                    ..lookup
                },
            )
            .await;
        let app = RemoteApp {
            kind,
            uuid: "app-uuid".into(),
            name: "blog".into(),
            description: None,
            domains: vec![],
            status: None,
            mark: Some(mark()),
        };
        // The mock's application has build_pack "nixpacks": a git source
        // matches it, so the PATCH path is exercised.
        let mut desired = image_app();
        desired.source = AppSource::Git {
            repository: "https://github.com/acme/blog".into(),
            branch: "main".into(),
            build_pack: BuildPack::Static,
            build: Default::default(),
        };
        if kind == AppKind::Service {
            desired.source = AppSource::Compose {
                compose: "services: {}\n".into(),
                public_service: None,
            };
        }
        let _ = client.update_app(&app, &desired, None).await;
        let env = vec![EnvVarDesired {
            key: "DATABASE_URL".into(),
            value: EnvValue::Secret(SecretValue::new("postgres://x")),
            is_preview: false,
            is_literal: true,
            is_multiline: false,
            is_buildtime: true,
        }];
        let _ = client.reconcile_env(&app, &env).await;
        let _ = client.deploy(&app, false).await;
        let _ = client.active_deployment(&app).await;
        let _ = client.delete_app(kind, "app-uuid", None).await;
    }
    let dep = DeploymentRef {
        kind: AppKind::Application,
        app_uuid: "app-uuid".into(),
        deployment_uuid: Some("dep-uuid".into()),
        already_queued: false,
        started: false,
    };
    let _ = client.deployment_status(&dep).await;
    let _ = client.list_owned().await;

    let seen = seen.lock().unwrap().clone();
    let doc = load_yaml(&root().join("tests/contract/coolify/openapi.prism.yaml"));
    let mut problems = vec![];
    for s in &seen {
        if let Some(v) = &s.violations {
            problems.push(format!(
                "{} {}?{} -> {}: {v}\n  body: {}",
                s.method, s.path, s.query, s.status, s.body
            ));
        }
        let known = |f: &str| {
            BEYOND_OPENAPI
                .iter()
                .any(|(path, field)| s.path.ends_with(path) && f == *field)
        };
        for f in undeclared(&doc, s).into_iter().filter(|f| !known(f)) {
            problems.push(format!(
                "{} {}: field {f} is not in the OpenAPI request schema",
                s.method, s.path
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "contract violations:\n{}",
        problems.join("\n")
    );

    // Every kind of request was exercised.
    let lines: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    for expected in [
        "GET /api/v1/version",
        "GET /api/v1/projects",
        "POST /api/v1/applications/dockerimage",
        "POST /api/v1/applications/dockerfile",
        "POST /api/v1/applications/public",
        "POST /api/v1/services",
        "GET /api/v1/applications/app-uuid",
        "PATCH /api/v1/applications/app-uuid",
        "PATCH /api/v1/services/app-uuid",
        "GET /api/v1/applications/app-uuid/envs",
        "PATCH /api/v1/applications/app-uuid/envs/bulk",
        "PATCH /api/v1/services/app-uuid/envs/bulk",
        "POST /api/v1/deploy",
        "GET /api/v1/deployments/applications/app-uuid",
        "GET /api/v1/deployments/dep-uuid",
        "DELETE /api/v1/applications/app-uuid",
        "DELETE /api/v1/services/app-uuid",
        "GET /api/v1/projects/proj-uuid/env-uuid",
        "GET /api/v1/applications",
        "GET /api/v1/services",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "never sent: {expected}\nsent: {lines:#?}"
        );
    }
    println!("{} Coolify requests checked against Prism", seen.len());
}

#[test]
fn the_undeclared_field_check_can_fail() {
    let doc = load_yaml(&root().join("tests/contract/coolify/openapi.prism.yaml"));
    let s = Seen {
        method: "POST".into(),
        path: "/api/v1/applications/dockerimage".into(),
        query: String::new(),
        body: json!({"project_uuid": "p", "uuid": "chosen-by-client", "is_build_time": true})
            .to_string(),
        status: 0,
        violations: None,
    };
    assert_eq!(undeclared(&doc, &s), vec!["is_build_time", "uuid"]);
    let bulk = Seen {
        method: "PATCH".into(),
        path: "/api/v1/applications/x/envs/bulk".into(),
        body: json!({"data": [{"key": "A", "value": "1", "is_build_time": true}]}).to_string(),
        ..s
    };
    assert_eq!(undeclared(&doc, &bulk), vec!["data[].is_build_time"]);
}

fn record_validator() -> jsonschema::Validator {
    let mut doc = load_yaml(&root().join("tests/contract/cloudflare/dns-openapi.yaml"));
    // The shared record base lists response-only (readOnly) fields as
    // required: a request need not carry them. Only the base's are lifted
    // (`content` is read-only in structured types but required in others).
    let mut read_only = std::collections::BTreeSet::new();
    collect_read_only(
        &doc["components"]["schemas"]["dns-records_base"],
        &mut read_only,
    );
    // The record id is assigned by Cloudflare; the schema, shared by requests
    // and responses, lists it as required without marking it read-only.
    read_only.insert("id".to_owned());
    strip_required(&mut doc, &read_only);
    // Validate against one component, with the whole document in scope for
    // its `$ref`s (draft 7 ignores the OpenAPI keys around `$ref`).
    doc["$ref"] = json!("#/components/schemas/dns-records_dns-record");
    jsonschema::draft7::new(&doc).unwrap()
}

fn collect_read_only(v: &Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Object(props)) = o.get("properties") {
                for (k, p) in props {
                    if p.get("readOnly") == Some(&Value::Bool(true)) {
                        out.insert(k.clone());
                    }
                }
            }
            o.values().for_each(|x| collect_read_only(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_read_only(x, out)),
        _ => {}
    }
}

fn strip_required(v: &mut Value, read_only: &std::collections::BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Array(req)) = o.get_mut("required") {
                req.retain(|r| r.as_str().is_none_or(|n| !read_only.contains(n)));
            }
            o.values_mut().for_each(|x| strip_required(x, read_only));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| strip_required(x, read_only)),
        _ => {}
    }
}

fn errors(v: &jsonschema::Validator, body: &Value) -> Vec<String> {
    v.iter_errors(body).map(|e| e.to_string()).collect()
}

#[tokio::test]
async fn cloudflare_request_bodies_match_the_dns_record_schema() {
    let fake = Fake::start().await;
    let z = "/client/v4/zones/zone-1/dns_records";
    let rec = json!({"id":"r1","type":"A","name":"blog.example.com","content":"203.0.113.1","ttl":300,"proxied":false,"comment":null,"tags":[]});
    fake.on(
        "POST",
        z,
        vec![Reply::json(
            200,
            json!({"success":true,"errors":[],"messages":[],"result":rec}),
        )],
    );
    fake.on(
        "PATCH",
        &format!("{z}/r1"),
        vec![Reply::json(
            200,
            json!({"success":true,"errors":[],"messages":[],"result":rec}),
        )],
    );
    let client = CloudflareClient::new(
        CloudflareConfig {
            api_url: format!("{}/client/v4", fake.base),
            token: SecretValue::new("t0ken-value"),
            use_tags: true,
        },
        http(Arc::new(Retries::default())),
    )
    .unwrap();
    let zone = Zone {
        id: "zone-1".into(),
        name: "example.com".into(),
    };
    let m = OwnershipMark::new(
        DeploymentId::new("a".repeat(63)).unwrap(),
        "01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap(),
    );
    let cases = [
        (RecordType::A, "203.0.113.10", true),
        (RecordType::Aaaa, "2001:db8::10", false),
        (RecordType::Cname, "app.example.net", true),
        (RecordType::Txt, "v=spf1 -all", false),
    ];
    for (kind, content, proxied) in cases {
        let d = RecordDesired {
            kind,
            name: "blog.example.com".into(),
            content: content.into(),
            ttl: 300,
            proxied,
            adopt: true,
        };
        client.create_record(&zone, &d, &m).await.unwrap();
        let remote = RemoteRecord {
            id: "r1".into(),
            kind: kind.as_str().into(),
            name: "blog.example.com".into(),
            content: "old".into(),
            ttl: 120,
            proxied: !proxied,
            comment: None,
            tags: vec![],
            mark: None,
        };
        client.update_record(&zone, &remote, &d, &m).await.unwrap();
    }
    let v = record_validator();
    let bodies: Vec<(String, Value)> = fake
        .hits()
        .iter()
        .filter(|h| !h.body.is_empty())
        .map(|h| (h.method.clone(), h.json()))
        .collect();
    assert_eq!(bodies.len(), 8);
    for (method, b) in &bodies {
        assert_eq!(errors(&v, b), Vec::<String>::new(), "body {b}");
        if method == "POST" {
            // A free zone allows 100 characters of comment.
            assert!(b["comment"].as_str().unwrap().len() <= 100, "{b}");
        } else {
            // An adopted record is updated, never marked.
            assert!(b.get("comment").is_none(), "{b}");
        }
    }
    // The check can fail: a bad address and a missing content are caught.
    assert!(
        !errors(
            &v,
            &json!({"type":"A","name":"x.example.com","content":"not-an-ip"})
        )
        .is_empty()
    );
    assert!(!errors(&v, &json!({"type":"CNAME","name":"x.example.com"})).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prism_flags_a_request_that_breaks_the_contract() {
    let Some(prism) = start_prism().await else {
        return;
    };
    // Missing environment_name (the OpenAPI demands both) and a wrong type.
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/applications/dockerimage", prism.base))
        .header("authorization", "Bearer 1|x")
        .json(&json!({"project_uuid": "p", "server_uuid": "s", "environment_uuid": "e", "docker_registry_image_name": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let v = resp
        .headers()
        .get("sl-violations")
        .expect("violations header")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(v.contains("environment_name"), "{v}");
}
