//! Every example loads; the quickstart is exactly what the sandbox seeds.

use fabrik::spec::model::{AppSource, RecordType, Rollback, RollbackPolicy};
use fabrik::spec::{LoadOptions, load};

use super::example_specs;

#[test]
fn every_example_is_valid_and_warning_free() {
    let mut report = String::new();
    for path in example_specs() {
        let examples = crate::support::examples();
        let rel = path.strip_prefix(&examples).unwrap().display().to_string();
        match load(&path, &LoadOptions::default()) {
            Ok(l) => {
                for w in &l.warnings {
                    let at = examples.display().to_string();
                    report.push_str(&format!("{w}\n").replace(&at, ""));
                }
            }
            Err(e) => {
                let all: Vec<String> = e.diagnostics().iter().map(ToString::to_string).collect();
                panic!("{rel}: {e}\n{}", all.join("\n"));
            }
        }
    }
    assert!(
        report.is_empty(),
        "examples should be free of warnings:\n{report}"
    );
}

#[test]
fn quickstart_matches_the_sandbox() {
    let l = load(
        &crate::support::examples().join("quickstart/spec.yaml"),
        &LoadOptions::default(),
    )
    .unwrap();
    let s = &l.spec;
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(s.name.as_str(), "quickstart");
    assert_eq!(s.coolify.project.as_name(), Some("default"));
    assert_eq!(s.coolify.environment.as_name(), Some("production"));
    assert_eq!(s.coolify.server.as_name(), Some("localhost"));
    assert_eq!(
        s.app.source,
        AppSource::Image("traefik/whoami:v1.10".into())
    );
    assert_eq!(s.app.port, Some(80));
    assert_eq!(s.app.hosts(), vec!["quickstart.example.com"]);
    assert_eq!(
        s.app.health_check.as_ref().map(|h| h.path.as_str()),
        Some("/health")
    );
    let dns = s.dns.as_ref().unwrap();
    assert_eq!(dns.zone, "example.com");
    assert_eq!(dns.records.len(), 1);
    assert_eq!(dns.records[0].kind, RecordType::A);
    assert_eq!(dns.fqdn(&dns.records[0]), "quickstart.example.com");
    assert_eq!(s.verify.http[0].status, 200);
    assert_eq!(s.verify.tls[0].min_days, 7);
    assert_eq!(s.monitors.len(), 1);
    assert_eq!(s.secrets.len(), 1);
    assert!(s.secrets.values().all(|d| d.generate));
    assert_eq!(s.app_secret_names().len(), 1);
    assert_eq!(s.rollback, RollbackPolicy::default());
    assert_eq!(
        (s.rollback.coolify, s.rollback.dns, s.rollback.monitors),
        (Rollback::Auto, Rollback::Manual, Rollback::Auto)
    );
}

#[test]
fn file_based_sources_are_read_into_the_spec() {
    let l = load(
        &crate::support::examples().join("compose/spec.yaml"),
        &LoadOptions::default(),
    )
    .unwrap();
    let AppSource::Compose(c) = &l.spec.app.source else {
        panic!("compose")
    };
    assert_eq!(c.file.as_deref(), Some("docker-compose.yml"));
    assert!(c.text().unwrap().contains("shlink"));
    let l = load(
        &crate::support::examples().join("dockerfile/spec.yaml"),
        &LoadOptions::default(),
    )
    .unwrap();
    let AppSource::Dockerfile(d) = &l.spec.app.source else {
        panic!("dockerfile")
    };
    assert!(d.text().unwrap().starts_with("FROM python"));
}

#[test]
fn templates_expand_into_app_and_secrets() {
    let l = load(
        &crate::support::examples().join("wordpress/spec.yaml"),
        &LoadOptions::default(),
    )
    .unwrap();
    let AppSource::Compose(c) = &l.spec.app.source else {
        panic!("compose")
    };
    let text = c.text().unwrap();
    assert!(
        text.contains("image: wordpress:6.8-php8.3-apache"),
        "{text}"
    );
    assert!(!text.contains("{{"));
    assert_eq!(c.public_service.as_deref(), Some("wordpress"));
    assert_eq!(l.spec.app.hosts(), vec!["blog.example.com"]);
    let names: Vec<&str> = l.spec.secrets.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        vec!["MARIADB_ROOT_PASSWORD", "WORDPRESS_DB_PASSWORD"]
    );
    assert!(l.spec.secrets.values().all(|d| d.generate));

    let l = load(
        &crate::support::examples().join("static-site/spec.yaml"),
        &LoadOptions::default(),
    )
    .unwrap();
    let AppSource::Git(g) = &l.spec.app.source else {
        panic!("git")
    };
    assert_eq!(g.branch, "master");
    assert_eq!(g.publish_directory.as_deref(), Some("/"));
    assert_eq!(l.spec.app.port, Some(80));
}

#[test]
fn compose_files_are_named_relative_to_how_the_spec_was_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spec.yaml"),
        "name: rel\ncoolify: {project: p, environment: e, server: s}\napp:\n  compose: {file: c.yml}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.yml"),
        "services:\n  web: {image: nginx}\n",
    )
    .unwrap();
    let files = fabrik::spec::DiskFiles::new(dir.path(), 1 << 20).unwrap();
    let r = fabrik::spec::check(
        &std::fs::read(dir.path().join("spec.yaml")).unwrap(),
        std::path::Path::new("spec.yaml"),
        &files,
        &LoadOptions::default(),
    )
    .unwrap();
    assert!(
        r.warnings
            .iter()
            .any(|w| w.file == dir.path().join("c.yml")),
        "{:?}",
        r.warnings
    );
    let l = load(&dir.path().join("spec.yaml"), &LoadOptions::default()).unwrap();
    assert!(
        l.warnings.iter().all(|w| w.file.starts_with(dir.path())),
        "{:?}",
        l.warnings
    );
    assert_eq!(l.default_dotenv(), dir.path().join(".env"));
}
