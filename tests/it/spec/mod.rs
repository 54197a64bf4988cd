//! Integration tests of the `spec` module.

use std::path::{Path, PathBuf};

use fabrik::spec::{LoadOptions, load};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn quickstart_loads() {
    let path = root().join("examples/quickstart/spec.yaml");
    match load(&path, &LoadOptions::default()) {
        Ok(l) => {
            assert_eq!(l.spec.name.as_str(), "quickstart");
            for w in &l.warnings {
                println!("{w}");
            }
        }
        Err(e) => {
            for d in e.diagnostics() {
                println!("{d}");
            }
            panic!("{e}");
        }
    }
    let _ = Path::new("");
}
