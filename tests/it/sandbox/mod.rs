//! Integration tests of the `sandbox` module: each test starts its own
//! in-process sandbox on loopback (ephemeral ports, its own temp dir, a
//! manual clock) and talks to it as the provider clients do.

mod apps;
mod cloudflare;
mod contract;
mod coolify;
mod determinism;
mod faults;
mod kuma;
mod persistence;
mod server;
pub mod support;

/// Every fault key the sandbox accepts is documented in docs/sandbox.md.
#[test]
fn every_fault_key_is_documented() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/sandbox.md")).unwrap();
    let keys = serde_json::to_value(fabrik::sandbox::FaultConfig::default()).unwrap();
    for key in keys.as_object().unwrap().keys() {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "{key} is not in docs/sandbox.md"
        );
    }
}

/// `FABRIK_SANDBOX_TRACE=FILE` lists every request the sandbox received,
/// one JSON line each, for the three APIs and the deployed app: what the
/// round-trip benchmark (`scripts/roundtrips.py`) counts.
#[test]
fn the_request_trace_lists_every_request_of_a_run() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::copy_pristine(&crate::support::examples().join("quickstart"), dir.path());
    let trace = dir.path().join("trace.ndjson");
    let o = crate::support::run(
        crate::support::fabrik(dir.path())
            .env("FABRIK_SANDBOX_TRACE", &trace)
            .args(["apply", "spec.yaml", "--sandbox"]),
    );
    crate::support::expect_exit(&o, 0, &["apply"]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |service: &str, path: &str| {
        lines
            .iter()
            .any(|l| l["service"] == service && l["path"].as_str().unwrap().starts_with(path))
    };
    assert!(has("coolify", "/api/v1/version"), "{lines:?}");
    assert!(has("coolify", "/api/v1/deploy"), "{lines:?}");
    assert!(has("cloudflare", "/client/v4/zones"), "{lines:?}");
    assert!(has("kuma", "/socket.io/add"), "{lines:?}");
    assert!(has("apps", "/health"), "{lines:?}");
    // Whether each request writes.
    let writes = |service: &str, path: &str| {
        lines
            .iter()
            .filter(|l| l["service"] == service && l["path"] == path)
            .map(|l| l["write"].as_bool().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(writes("coolify", "/api/v1/version"), [false], "{lines:?}");
    assert_eq!(
        writes("coolify", "/api/v1/applications/dockerimage"),
        [true],
        "{lines:?}"
    );
    assert_eq!(writes("kuma", "/socket.io/add"), [true], "{lines:?}");
    let times: Vec<u64> = lines.iter().map(|l| l["ms"].as_u64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1] + 1000),
        "arrival times in order"
    );
}
