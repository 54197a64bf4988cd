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
