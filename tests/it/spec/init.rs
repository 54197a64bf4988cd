//! `fabrik init`.

use fabrik::spec::init::{InitError, scaffold};
use fabrik::spec::{LoadOptions, load};

#[test]
fn scaffolds_a_valid_commented_spec_and_its_companions() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("My Shop");
    let written = scaffold(&dir).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["spec.yaml", ".env.example", ".gitignore"]);

    let loaded = load(&dir.join("spec.yaml"), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{:?}", e.diagnostics()));
    assert_eq!(loaded.spec.name.as_str(), "my-shop");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let text = std::fs::read_to_string(dir.join("spec.yaml")).unwrap();
    assert!(
        text.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            > 20,
        "commented"
    );

    let example = std::fs::read_to_string(dir.join(".env.example")).unwrap();
    for name in loaded.spec.secrets.keys() {
        assert!(
            example.contains(&format!("\n{name}=")),
            "{name} missing from .env.example"
        );
    }
    for var in [
        "COOLIFY_TOKEN",
        "CLOUDFLARE_API_TOKEN",
        "FABRIK_FINGERPRINT_KEY",
    ] {
        assert!(example.contains(var), "{var}");
    }
    let ignore = std::fs::read_to_string(dir.join(".gitignore")).unwrap();
    assert_eq!(ignore, ".env\n.fabrik/\n");
}

#[test]
fn never_overwrites_a_spec_and_appends_only_missing_ignores() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".gitignore"), "target\n/.env").unwrap();
    std::fs::write(dir.path().join(".env.example"), "MINE=1\n").unwrap();
    let written = scaffold(dir.path()).unwrap();
    assert_eq!(written.len(), 2, "{written:?}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".env.example")).unwrap(),
        "MINE=1\n"
    );
    let ignore = std::fs::read_to_string(dir.path().join(".gitignore")).unwrap();
    assert_eq!(
        ignore,
        "target\n/.env\n\n# Fabrik: secrets and local state\n.fabrik/\n"
    );

    std::fs::write(dir.path().join("spec.yaml"), "name: mine\n").unwrap();
    match scaffold(dir.path()) {
        Err(InitError::SpecExists { path }) => assert!(path.ends_with("spec.yaml")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("spec.yaml")).unwrap(),
        "name: mine\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".gitignore")).unwrap(),
        ignore
    );
}
