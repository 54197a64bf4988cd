//! Spec parsing and validation on arbitrary bytes: a spec or located
//! diagnostics, never a panic, within the default limits.
#![no_main]

use std::path::Path;

use fabrik::spec::{LoadOptions, MemoryFiles, check};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let files = MemoryFiles::new()
        .with("docker-compose.yml", "services:\n  web:\n    image: nginx:1\n")
        .with("Dockerfile", "FROM nginx:1\nEXPOSE 80\n");
    match check(data, Path::new("spec.yaml"), &files, &LoadOptions::default()) {
        Ok(checked) => {
            for w in &checked.warnings {
                assert!(!w.is_error());
            }
        }
        Err(diagnostics) => assert!(diagnostics.iter().any(|d| d.is_error())),
    }
});
