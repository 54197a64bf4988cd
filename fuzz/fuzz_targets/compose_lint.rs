//! The compose lint on arbitrary compose files (named by a valid spec):
//! diagnostics, never a panic.
#![no_main]

use std::path::Path;

use fabrik::spec::{LoadOptions, MemoryFiles, check};
use libfuzzer_sys::fuzz_target;

const SPEC: &str = "name: fuzz
coolify: {project: default, environment: production, server: localhost}
app:
  compose:
    file: docker-compose.yml
  domains: [https://fuzz.example.com]
secrets:
  TOKEN: {generate: true}
";

fuzz_target!(|data: &[u8]| {
    let Ok(compose) = std::str::from_utf8(data) else {
        return;
    };
    let files = MemoryFiles::new().with("docker-compose.yml", compose);
    let _ = check(SPEC.as_bytes(), Path::new("spec.yaml"), &files, &LoadOptions::default());
});
