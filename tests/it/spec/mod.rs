//! Integration tests of the `spec` module.

use std::path::PathBuf;

mod corpus;
mod examples;
mod excerpt;
mod fields_dns;
mod hardening;
mod init;
mod props;
mod schema;
mod secrets;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `spec.yaml` of a copy of `examples/` (see
/// [`crate::support::examples`]).
pub fn example_specs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(crate::support::examples()).unwrap() {
        let dir = dir.unwrap().path();
        let spec = dir.join("spec.yaml");
        if spec.is_file() {
            out.push(spec);
        }
    }
    out.sort();
    out
}
