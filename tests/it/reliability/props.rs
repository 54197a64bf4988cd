//! Property tests with large case counts, the CI side of fuzzing (the
//! cargo-fuzz targets in `fuzz/` run the same entry points for hours):
//! spec parsing and validation on damaged specs, the compose lint, reading
//! hostile exports, and parsing hostile provider responses. No panic,
//! bounded memory, a clear error; and an export that is accepted holds
//! exactly the events that were exported.
//!
//! Each property has a default case count that runs in seconds;
//! `PROPTEST_CASES` raises (or lowers) all of them.

use std::io::Cursor;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fabrik::generate::Shape;
use fabrik::spec::{LoadOptions, MemoryFiles, check};
use fabrik::store::{ChainChecker, EventStore as _, StoredEvent};
use proptest::prelude::*;

/// `PROPTEST_CASES`, or `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: cases(default),
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

/// For the properties run by hand with a `TestRunner` (no source file to
/// keep regressions beside).
fn runner_config(default: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: None,
        ..config(default)
    }
}

// ------------------------------------------------------------------ specs

/// The example specs, as bytes.
fn examples() -> Vec<Vec<u8>> {
    crate::spec::example_specs()
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// One damage to a byte string.
#[derive(Debug, Clone)]
enum Damage {
    Flip(prop::sample::Index, u8),
    Delete(prop::sample::Index, usize),
    Insert(prop::sample::Index, Vec<u8>),
    Duplicate(prop::sample::Index, usize),
    Truncate(prop::sample::Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<prop::sample::Index>(), 0u8..8).prop_map(|(i, b)| Damage::Flip(i, b)),
        (any::<prop::sample::Index>(), 1usize..64).prop_map(|(i, n)| Damage::Delete(i, n)),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(
                prop_oneof![
                    any::<u8>(),
                    Just(b'&'),
                    Just(b'*'),
                    Just(b':'),
                    Just(b'\n'),
                    Just(b' '),
                    Just(b'{'),
                    Just(b'['),
                    Just(b'"'),
                    Just(b'$'),
                ],
                1..16
            )
        )
            .prop_map(|(i, v)| Damage::Insert(i, v)),
        (any::<prop::sample::Index>(), 1usize..200).prop_map(|(i, n)| Damage::Duplicate(i, n)),
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, d: &Damage) {
    if bytes.is_empty() {
        return;
    }
    match d {
        Damage::Flip(i, b) => {
            let at = i.index(bytes.len());
            bytes[at] ^= 1 << b;
        }
        Damage::Delete(i, n) => {
            let at = i.index(bytes.len());
            let end = (at + n).min(bytes.len());
            bytes.drain(at..end);
        }
        Damage::Insert(i, v) => {
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, v.iter().copied());
        }
        Damage::Duplicate(i, n) => {
            let at = i.index(bytes.len());
            let end = (at + n).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(end..end, copy);
        }
        Damage::Truncate(i) => {
            let at = i.index(bytes.len());
            bytes.truncate(at);
        }
    }
}

/// Every diagnostic points inside the file (line and column exist) and
/// names no internal error.
fn diagnostics_are_sane(
    text: &[u8],
    diags: &[fabrik::spec::Diagnostic],
) -> Result<(), TestCaseError> {
    // Lines as YAML (and editors) count them: CR LF, a lone CR and LF
    // each end one.
    let breaks = text
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && text.get(i + 1) != Some(&b'\n')))
        .count();
    let lines = breaks + 1;
    for d in diags {
        let shown = d.to_string();
        prop_assert!(!shown.is_empty());
        prop_assert!(
            !shown.contains("can not be read:")
                || shown.contains("compose")
                || shown.contains("Dockerfile"),
            "a schema/serde mismatch leaked out: {shown}"
        );
        if d.file == Path::new("spec.yaml") {
            prop_assert!(
                d.line >= 1 && d.line as usize <= lines + 1,
                "line {} of {lines}: {shown}",
                d.line
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(3000))]

    /// Damaged example specs (1 to 4 damages each): a spec or located
    /// diagnostics, never a panic.
    #[test]
    fn damaged_specs_give_a_spec_or_located_diagnostics(
        which in any::<prop::sample::Index>(),
        damages in prop::collection::vec(damage(), 1..5),
    ) {
        let all = examples();
        let mut bytes = all[which.index(all.len())].clone();
        for d in &damages {
            apply(&mut bytes, d);
        }
        let files = MemoryFiles::new()
            .with("docker-compose.yml", "services:\n  web:\n    image: nginx:1\n")
            .with("Dockerfile", "FROM nginx:1\nEXPOSE 80\n");
        match check(&bytes, Path::new("spec.yaml"), &files, &LoadOptions::default()) {
            Ok(c) => diagnostics_are_sane(&bytes, &c.warnings)?,
            Err(diags) => {
                prop_assert!(diags.iter().any(|d| d.is_error()));
                diagnostics_are_sane(&bytes, &diags)?;
            }
        }
    }

    /// Inline compose files built from random services, keys and values,
    /// then damaged: the lint reports, never panics.
    #[test]
    fn compose_files_of_any_shape_are_linted_without_panic(
        services in prop::collection::btree_map("[a-z][a-z0-9-]{0,8}", compose_service(), 0..5),
        damages in prop::collection::vec(damage(), 0..3),
        top in prop::collection::btree_map("[a-z]{1,8}", yaml_scalar(), 0..3),
    ) {
        let mut compose = String::from("services:\n");
        for (name, body) in &services {
            compose.push_str(&format!("  {name}:\n"));
            for line in body {
                compose.push_str(&format!("    {line}\n"));
            }
        }
        for (k, v) in &top {
            compose.push_str(&format!("{k}: {v}\n"));
        }
        let mut bytes = compose.into_bytes();
        for d in &damages {
            apply(&mut bytes, d);
        }
        let compose = String::from_utf8_lossy(&bytes).into_owned();
        let spec = "name: fuzz\ncoolify: {project: default, environment: production, server: localhost}\napp:\n  compose:\n    file: docker-compose.yml\n  domains: [https://fuzz.example.com]\nsecrets:\n  TOKEN: {generate: true}\n";
        let files = MemoryFiles::new().with("docker-compose.yml", compose);
        let r = check(spec.as_bytes(), Path::new("spec.yaml"), &files, &LoadOptions::default());
        if let Err(diags) = r {
            for d in diags {
                prop_assert!(!d.to_string().is_empty());
            }
        }
    }
}

fn yaml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_.:/-]{0,20}",
        Just("${TOKEN}".to_owned()),
        Just("${MISSING}".to_owned()),
        Just("$${LITERAL}".to_owned()),
        Just("~".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("*alias".to_owned()),
        Just("&anchor x".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("\"8080:80\"".to_owned()),
    ]
}

fn compose_service() -> impl Strategy<Value = Vec<String>> {
    let key = prop_oneof![
        Just("image"),
        Just("ports"),
        Just("expose"),
        Just("environment"),
        Just("volumes"),
        Just("build"),
        Just("depends_on"),
        Just("labels"),
        Just("networks"),
        Just("command"),
        Just("x-custom"),
        Just("privileged"),
        Just("network_mode"),
    ];
    prop::collection::vec(
        (key, yaml_scalar(), any::<bool>()).prop_map(|(k, v, list)| {
            if list {
                format!("{k}: [{v}, {v}]")
            } else {
                format!("{k}: {v}")
            }
        }),
        0..6,
    )
}

// ---------------------------------------------------------------- exports

/// A generated journal and its exports (NDJSON and JSON, complete and for
/// one deployment), with the events each holds.
struct Exports {
    files: Vec<(&'static str, Vec<u8>, Vec<StoredEvent>)>,
}

fn exports() -> &'static Exports {
    static EXPORTS: std::sync::OnceLock<Exports> = std::sync::OnceLock::new();
    EXPORTS.get_or_init(|| {
        let store = fabrik::store::memory::MemoryStore::new();
        crate::support::fill(
            &store,
            Shape {
                deployments: 2,
                runs: 2,
                records: 1,
                seed: 3,
            },
        );
        let mut files = Vec::new();
        for (name, deployment) in [("complete", None), ("one deployment", Some("svc-00001"))] {
            let scan = fabrik::store::Scan {
                deployment: deployment.map(|d| fabrik::id::DeploymentId::new(d).unwrap()),
                ..fabrik::store::Scan::default()
            };
            let header = fabrik::export::ExportHeader {
                format: fabrik::export::FORMAT.to_owned(),
                format_version: fabrik::export::FORMAT_VERSION,
                fabrik_version: "0.1.0".to_owned(),
                exported_at: "2026-01-01T00:00:00.000000Z".to_owned(),
                deployment: deployment.map(str::to_owned),
                run: None,
                complete: deployment.is_none(),
            };
            let mut events = Vec::new();
            store
                .scan(&scan, &mut |e| {
                    events.push(e);
                    std::ops::ControlFlow::Continue(())
                })
                .unwrap();
            let mut nd = Vec::new();
            fabrik::export::write_ndjson(&store, &scan, &header, &mut nd).unwrap();
            let mut doc = Vec::new();
            fabrik::export::write_json(&store, &scan, &header, &mut doc).unwrap();
            let label: &'static str = if deployment.is_some() {
                "one deployment"
            } else {
                name
            };
            files.push((label, nd, events.clone()));
            files.push((label, doc, events));
        }
        Exports { files }
    })
}

/// Reads an export as `fabrik replay --input` does: the format, every
/// event's hash and link, the trailer, and (for one deployment's export)
/// its stream without gaps. The events, or why it was refused.
fn read_checked(bytes: &[u8]) -> Result<Vec<StoredEvent>, String> {
    let mut events = Vec::new();
    let mut checker: Option<ChainChecker> = None;
    let mut problem = None;
    let (header, trailer) = fabrik::export::read(Cursor::new(bytes), &mut |row| {
        if problem.is_none() {
            let c = checker.get_or_insert_with(|| {
                if row.seq == 1 {
                    ChainChecker::whole()
                } else {
                    ChainChecker::filtered()
                }
            });
            if let Err(e) = c.check(&row) {
                problem = Some(e.to_string());
            } else if let Err(e) = row.decode() {
                problem = Some(e.to_string());
            }
            events.push(row);
        }
        Ok(())
    })
    .map_err(|e| fabrik::error::chain_text(&e))?;
    if let Some(p) = problem {
        return Err(p);
    }
    if let Some(c) = &checker
        && trailer.last_hash.is_some()
        && c.last_hash() != trailer.last_hash
    {
        return Err("trailer".to_owned());
    }
    if header.deployment.is_some() && header.run.is_none() {
        for (i, e) in events.iter().enumerate() {
            if e.stream_version != i as u64 + 1 {
                return Err("stream gap".to_owned());
            }
        }
    }
    Ok(events)
}

proptest! {
    #![proptest_config(config(10_000))]

    /// Damaged exports (1 to 4 damages): refused with a reason, or, when
    /// accepted, holding exactly the events that were exported (a damage
    /// in the header's free text, say, changes no event).
    #[test]
    fn a_damaged_export_is_refused_or_holds_exactly_the_exported_events(
        which in any::<prop::sample::Index>(),
        damages in prop::collection::vec(damage(), 1..5),
    ) {
        let all = &exports().files;
        let (label, original, events) = &all[which.index(all.len())];
        let mut bytes = original.clone();
        for d in &damages {
            apply(&mut bytes, d);
        }
        match read_checked(&bytes) {
            Err(why) => prop_assert!(!why.is_empty()),
            Ok(got) => prop_assert_eq!(&got, events, "{}: accepted with other events", label),
        }
    }

    /// Arbitrary bytes, and JSON of the wrong shape: refused, never a
    /// panic.
    #[test]
    fn arbitrary_bytes_are_never_an_export(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        header_first in any::<bool>(),
    ) {
        let mut input = Vec::new();
        if header_first {
            input.extend_from_slice(br#"{"format":"fabrik-journal","format_version":1,"fabrik_version":"x","exported_at":"x","complete":true}"#);
            input.push(b'\n');
        }
        input.extend_from_slice(&bytes);
        // Forging even one event would take its hash: whatever is
        // accepted holds none.
        match read_checked(&input) {
            Err(why) => prop_assert!(!why.is_empty()),
            Ok(events) => prop_assert!(events.is_empty()),
        }
    }
}

/// The CLI on damaged exports: exit 7 (or 0 with the same state as the
/// undamaged file), never another code or a panic. Slower (a process per
/// case), so fewer cases.
#[test]
fn replay_input_on_damaged_exports_exits_7_or_shows_the_same_state() {
    let dir = tempfile::tempdir().unwrap();
    let all = &exports().files;
    let mut baselines = Vec::new();
    for (i, (_, bytes, _)) in all.iter().enumerate() {
        let f = dir.path().join(format!("base{i}"));
        std::fs::write(&f, bytes).unwrap();
        let o = crate::support::run(
            crate::support::fabrik(dir.path())
                .args(["--output", "json", "replay", "--input"])
                .arg(&f),
        );
        assert_eq!(o.status.code(), Some(0), "{}", crate::support::stderr(&o));
        baselines.push(o.stdout);
    }
    let mut runner = proptest::test_runner::TestRunner::new(runner_config(200));
    let tally = Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    runner
        .run(
            &(
                any::<prop::sample::Index>(),
                prop::collection::vec(damage(), 1..4),
            ),
            |(which, damages)| {
                let i = which.index(all.len());
                let mut bytes = all[i].1.clone();
                for d in &damages {
                    apply(&mut bytes, d);
                }
                let f = dir.path().join("damaged");
                std::fs::write(&f, &bytes).unwrap();
                let o = crate::support::run(
                    crate::support::fabrik(dir.path())
                        .args(["--output", "json", "replay", "--input"])
                        .arg(&f),
                );
                let code = o.status.code();
                match code {
                    Some(7) => {}
                    Some(0) => prop_assert_eq!(&o.stdout, &baselines[i], "accepted another state"),
                    other => {
                        prop_assert!(false, "exit {:?}: {}", other, crate::support::stderr(&o))
                    }
                }
                *tally
                    .lock()
                    .unwrap()
                    .entry(format!("exit {code:?}"))
                    .or_default() += 1;
                Ok(())
            },
        )
        .unwrap();
    eprintln!(
        "replay --input on damaged exports: {:?}",
        tally.lock().unwrap()
    );
}

// ------------------------------------------------------ provider answers

/// What the fake service answers to every request.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

/// A server on 127.0.0.1:0 answering every request with the current
/// [`Answer`].
struct Service {
    rt: tokio::runtime::Runtime,
    base: String,
    answer: Arc<Mutex<Answer>>,
}

impl Service {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let answer = Arc::new(Mutex::new(Answer {
            status: 200,
            content_type: None,
            body: Vec::new(),
        }));
        let shared = answer.clone();
        let base = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let app = axum::Router::new().fallback(move || {
                let a = shared.lock().unwrap().clone();
                async move {
                    let mut r = axum::http::Response::builder().status(a.status);
                    if let Some(ct) = a.content_type {
                        r = r.header("content-type", ct);
                    }
                    r.body(axum::body::Body::from(a.body)).unwrap()
                }
            });
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            format!("http://{addr}")
        });
        Self { rt, base, answer }
    }
}

const TOKEN: &str = "fuzz-token-9Qe3vXb7Lm2Tz8Rk";

/// Real shapes of the services' answers, to damage.
const SHAPES: &[&str] = &[
    r#""4.3.11""#,
    r#"{"message":"Unauthenticated."}"#,
    r#"[{"uuid":"a1","name":"shop","description":"fabrik:shop:01m8","tags":[{"name":"fabrik"}],"fqdn":"https://shop.example.com","status":"running"}]"#,
    r#"[{"uuid":"p1","name":"default","environments":[{"name":"production","uuid":"e1"}]}]"#,
    r#"{"success":true,"errors":[],"messages":[],"result":[{"id":"z1","name":"example.com"}],"result_info":{"page":1,"per_page":50,"total_pages":1,"count":1,"total_count":1}}"#,
    r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#,
    r#"{"success":true,"errors":[],"result":[{"id":"r1","type":"A","name":"shop.example.com","content":"203.0.113.10","ttl":1,"proxied":false,"comment":"fabrik:shop:01m8"}],"result_info":{"page":1,"total_pages":1}}"#,
];

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "[ -~]{0,12}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from(TOKEN)),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("uuid".to_owned()),
                    Just("name".to_owned()),
                    Just("success".to_owned()),
                    Just("errors".to_owned()),
                    Just("result".to_owned()),
                    Just("message".to_owned()),
                    Just("id".to_owned()),
                    Just("code".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn answer() -> impl Strategy<Value = Answer> {
    let status = prop_oneof![
        Just(200u16),
        Just(201),
        Just(204),
        Just(301),
        Just(400),
        Just(401),
        Just(403),
        Just(404),
        Just(409),
        Just(422),
        Just(429),
        Just(500),
        Just(503),
        100u16..600,
    ];
    let content_type = prop_oneof![
        Just(Some("application/json")),
        Just(Some("text/html")),
        Just(None),
    ];
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(damage(), 0..4)
        )
            .prop_map(|(i, ds)| {
                let mut b = SHAPES[i.index(SHAPES.len())].as_bytes().to_vec();
                for d in &ds {
                    apply(&mut b, d);
                }
                b
            }),
        (1usize..20_000).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        (65usize..200).prop_map(|kib| {
            let mut v = br#"{"message":""#.to_vec();
            v.extend(std::iter::repeat_n(b'x', kib * 1024));
            v.extend_from_slice(br#""}"#);
            v
        }),
        Just(format!(r#"{{"message":"The token {TOKEN} is invalid"}}"#).into_bytes()),
        // A well-formed envelope around a result of any shape.
        json_value().prop_map(|v| {
            serde_json::json!({"success": true, "errors": [], "messages": [], "result": v})
                .to_string()
                .into_bytes()
        }),
        prop::collection::vec(json_value(), 0..4)
            .prop_map(|v| serde_json::Value::Array(v).to_string().into_bytes()),
    ];
    (status, content_type, body).prop_map(|(status, content_type, body)| Answer {
        status,
        content_type,
        body,
    })
}

/// The calls a run makes first, against the hostile answer. Returns the
/// errors' texts.
fn call_everything(s: &Service) -> Vec<String> {
    use fabrik::provider::{AppHost as _, Dns as _};
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
    .unwrap();
    let cloudflare = fabrik::provider::CloudflareClient::new(
        fabrik::provider::CloudflareConfig {
            api_url: format!("{}/client/v4", s.base),
            token: fabrik::secret::SecretValue::new(TOKEN),
            use_tags: false,
        },
        http,
    )
    .unwrap();
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
    s.rt.block_on(async {
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
        keep(
            fabrik::provider::AppHost::list_owned(&coolify)
                .await
                .map(|_| ()),
        );
        keep(cloudflare.find_zone("example.com").await.map(|_| ()));
        keep(
            fabrik::provider::Dns::list_owned(&cloudflare, &zone)
                .await
                .map(|_| ()),
        );
        keep(
            cloudflare
                .list_records(&zone, fabrik::provider::RecordType::A, "shop.example.com")
                .await
                .map(|_| ()),
        );
        errors
    })
}

#[test]
fn hostile_provider_answers_give_clear_errors_never_a_panic() {
    let service = Service::start();
    let mut runner = proptest::test_runner::TestRunner::new(runner_config(1000));
    let errors_seen = std::sync::atomic::AtomicUsize::new(0);
    runner
        .run(&answer(), |a| {
            *service.answer.lock().unwrap() = a.clone();
            for text in call_everything(&service) {
                errors_seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                prop_assert!(!text.trim().is_empty());
                // Quoted bodies are cut short, whatever their size.
                prop_assert!(text.len() < 4_000, "{} bytes: {}", text.len(), &text[..200]);
                prop_assert!(!text.contains(TOKEN), "the token leaked: {}", text);
            }
            Ok(())
        })
        .unwrap();
    let seen = errors_seen.into_inner();
    assert!(seen > 0);
    eprintln!("hostile provider answers: {seen} errors checked");
}
