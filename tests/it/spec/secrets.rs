//! Secret resolution from each source, write-back of generated values,
//! and proof that no `Debug` or `Display` shows a value.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fabrik::secret::SecretSource;
use fabrik::spec::hash::desired_state;
use fabrik::spec::secrets::{
    FINGERPRINT_KEY_VAR, FingerprintKey, ResolvedSecrets, SecretError, resolve,
};
use fabrik::spec::{LoadOptions, Loaded, load};

/// A project directory with the quickstart spec plus a secret that may not
/// be generated.
fn project(extra_secrets: &str) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!(
        "name: secrets-test
coolify: {{project: default, environment: production, server: localhost}}
app:
  image: traefik/whoami:v1.10
  port: 80
  env:
    TOKEN: ${{secret.API_TOKEN}}
    DSN: https://${{secret.SENTRY_KEY}}@sentry.example.com/1
secrets:
  API_TOKEN: {{generate: true}}
{extra_secrets}"
    );
    std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
    let loaded = load(&dir.path().join("spec.yaml"), &LoadOptions::default()).unwrap_or_else(|e| {
        panic!("{e}: {:?}", e.diagnostics());
    });
    (dir, loaded)
}

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn dotenv(dir: &Path) -> PathBuf {
    dir.join(".env")
}

const SENTRY: &str = "  SENTRY_KEY:\n";

#[test]
fn environment_wins_over_dotenv() {
    let (dir, l) = project(SENTRY);
    std::fs::write(
        dotenv(dir.path()),
        "SENTRY_KEY=from-dotenv-value\nAPI_TOKEN=token-from-dotenv\n",
    )
    .unwrap();
    let env = env_of(&[("SENTRY_KEY", "from-env-value-1234")]);
    let r = resolve(&l.spec, &env, &dotenv(dir.path())).unwrap();
    assert_eq!(
        r.value("SENTRY_KEY").unwrap().expose(),
        "from-env-value-1234"
    );
    assert_eq!(r.get("SENTRY_KEY").unwrap().source, SecretSource::Env);
    assert_eq!(r.value("API_TOKEN").unwrap().expose(), "token-from-dotenv");
    assert_eq!(r.get("API_TOKEN").unwrap().source, SecretSource::Dotenv);
    assert_eq!(
        r.sources(),
        BTreeMap::from([
            ("API_TOKEN".to_owned(), SecretSource::Dotenv),
            ("SENTRY_KEY".to_owned(), SecretSource::Env)
        ])
    );
    // The fingerprint key was missing: generated and written back.
    assert_eq!(r.key_source(), SecretSource::Generated);
    assert!(
        std::fs::read_to_string(dotenv(dir.path()))
            .unwrap()
            .contains(FINGERPRINT_KEY_VAR)
    );
}

#[test]
fn empty_values_count_as_absent() {
    let (dir, l) = project(SENTRY);
    std::fs::write(dotenv(dir.path()), "SENTRY_KEY=\n").unwrap();
    let env = env_of(&[("SENTRY_KEY", "")]);
    let err = resolve(&l.spec, &env, &dotenv(dir.path())).unwrap_err();
    assert!(matches!(err, SecretError::Missing { .. }), "{err}");
}

#[test]
fn generated_values_are_written_with_mode_0600_and_reused() {
    let env = env_of(&[]);
    let (dir, l) = project("  SENTRY_KEY: {generate: true, length: 20}\n");
    let first = resolve(&l.spec, &env, &dotenv(dir.path())).unwrap();
    let token = first.value("API_TOKEN").unwrap().expose().to_owned();
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()), "{token}");
    assert_eq!(first.value("SENTRY_KEY").unwrap().expose().len(), 20);
    assert_eq!(
        first.get("API_TOKEN").unwrap().source,
        SecretSource::Generated
    );
    let mut generated = first.generated().to_vec();
    generated.sort();
    assert_eq!(generated, vec!["API_TOKEN", "SENTRY_KEY"]);

    let text = std::fs::read_to_string(dotenv(dir.path())).unwrap();
    assert!(text.contains(&format!("API_TOKEN={token}\n")), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dotenv(dir.path()))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    let second = resolve(&l.spec, &env, &dotenv(dir.path())).unwrap();
    assert_eq!(second.value("API_TOKEN").unwrap().expose(), token);
    assert_eq!(
        second.get("API_TOKEN").unwrap().source,
        SecretSource::Dotenv
    );
    assert_eq!(second.key_source(), SecretSource::Dotenv);
    assert_eq!(first.fingerprints(), second.fingerprints());
    assert!(second.generated().is_empty());
    assert_eq!(
        desired_state(&l.spec, &first),
        desired_state(&l.spec, &second)
    );
}

#[test]
fn concurrent_first_runs_agree_on_one_value() {
    let (dir, l) = project("  SENTRY_KEY: {generate: true}\n");
    let path = dotenv(dir.path());
    let values: Vec<(String, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let r = resolve(&l.spec, &|_: &str| None, &path).unwrap();
                    let fp = r.get("API_TOKEN").unwrap().fingerprint.to_hex();
                    (r.value("API_TOKEN").unwrap().expose().to_owned(), fp)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(values.windows(2).all(|w| w[0] == w[1]), "{values:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("API_TOKEN=").count(), 1, "{text}");
    assert_eq!(text.matches(FINGERPRINT_KEY_VAR).count(), 1, "{text}");
}

#[test]
fn a_secret_that_may_not_be_generated_is_an_error_naming_where_it_looked() {
    let (dir, l) = project(SENTRY);
    let path = dotenv(dir.path());
    let err = resolve(&l.spec, &|_: &str| None, &path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("`SENTRY_KEY`"), "{text}");
    assert!(text.contains("environment variable `SENTRY_KEY`"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(
        !text.contains("API_TOKEN"),
        "generatable secrets are not missing: {text}"
    );
    assert!(err.hint().unwrap().contains("generate: true"));
    // Nothing was generated or written before the error.
    assert!(!path.exists());
}

#[test]
fn a_malformed_fingerprint_key_is_refused() {
    let (dir2, l2) = project("  SENTRY_KEY: {generate: true}\n");
    let env = env_of(&[(FINGERPRINT_KEY_VAR, "not-hex-and-secretish")]);
    let err = resolve(&l2.spec, &env, &dotenv(dir2.path())).unwrap_err();
    assert!(
        matches!(
            err,
            SecretError::BadKey {
                found_in: SecretSource::Env
            }
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("secretish"));
}

#[test]
fn an_env_file_elsewhere_is_used_and_a_symlink_out_of_the_project_is_refused() {
    let (dir, l) = project("  SENTRY_KEY: {generate: true}\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let env_file = elsewhere.path().join("prod.env");
    std::fs::write(&env_file, "API_TOKEN=from-env-file-0000\n").unwrap();
    let r = resolve(&l.spec, &|_: &str| None, &env_file).unwrap();
    assert_eq!(r.value("API_TOKEN").unwrap().expose(), "from-env-file-0000");
    assert!(
        std::fs::read_to_string(&env_file)
            .unwrap()
            .contains("SENTRY_KEY=")
    );

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&env_file, dotenv(dir.path())).unwrap();
        let err = resolve(&l.spec, &|_: &str| None, &dotenv(dir.path())).unwrap_err();
        assert!(matches!(err, SecretError::Dotenv(_)), "{err}");
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(chain.contains("outside the project directory"), "{chain}");
    }
}

#[test]
fn fingerprints_are_keyed_and_change_with_the_value() {
    let key = FingerprintKey::from_bytes([7; 32]);
    let other = FingerprintKey::from_bytes([8; 32]);
    let v = fabrik::secret::SecretValue::new("correct horse battery staple");
    let fp = key.fingerprint("PW", &v);
    assert_ne!(fp, other.fingerprint("PW", &v), "the key matters");
    assert_ne!(fp, key.fingerprint("PW2", &v), "the name matters");
    assert_ne!(
        fp,
        key.fingerprint(
            "PW",
            &fabrik::secret::SecretValue::new("correct horse battery staplf")
        )
    );
    assert_ne!(
        fp,
        fabrik::id::Digest::of(v.expose().as_bytes()),
        "not an unkeyed hash"
    );
    assert_ne!(
        key.fingerprint("AB", &fabrik::secret::SecretValue::new("C")),
        key.fingerprint("A", &fabrik::secret::SecretValue::new("BC"))
    );
}

/// Renders every spec and secret type with `Debug` (and errors with
/// `Display`) and searches the text for every secret value and the key.
#[test]
fn no_debug_or_display_shows_a_value() {
    let (dir, l) = project("  SENTRY_KEY:\n");
    let sentry = "sentry-value-that-must-not-leak";
    let key_hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    std::fs::write(
        dotenv(dir.path()),
        format!("SENTRY_KEY={sentry}\n{FINGERPRINT_KEY_VAR}={key_hex}\n"),
    )
    .unwrap();
    let r = resolve(&l.spec, &|_: &str| None, &dotenv(dir.path())).unwrap();
    let token = r.value("API_TOKEN").unwrap().expose().to_owned();
    let rendered_env: Vec<_> = l
        .spec
        .app
        .env
        .values()
        .map(|v| r.render(v).unwrap())
        .collect();
    assert!(rendered_env.iter().any(|v| v.expose().contains(sentry)));
    let state = desired_state(&l.spec, &r);
    let mut texts = vec![
        format!("{r:?}"),
        format!("{:?}", r.fingerprint_key()),
        format!("{:?}", r.get("API_TOKEN")),
        format!("{:?}", r.iter().collect::<Vec<_>>()),
        format!("{:?}", r.scrubber()),
        format!("{l:?}"),
        format!("{:?}", l.spec),
        format!("{state:?}"),
        serde_json::to_string(&state).unwrap(),
        serde_json::to_string(&r.fingerprints()).unwrap(),
        serde_json::to_string(&r.sources()).unwrap(),
        format!("{rendered_env:?}"),
        rendered_env.iter().map(|v| v.to_string()).collect(),
    ];
    let missing = resolve(&l.spec, &|_: &str| None, &dir.path().join("none.env")).unwrap_err();
    texts.push(format!("{missing:?} {missing}"));
    std::fs::write(
        dir.path().join("bad.env"),
        format!("SENTRY_KEY=\"{sentry}\n"),
    )
    .unwrap();
    let syntax = resolve(&l.spec, &|_: &str| None, &dir.path().join("bad.env")).unwrap_err();
    texts.push(format!(
        "{syntax:?} {syntax} {}",
        std::error::Error::source(&syntax).unwrap()
    ));
    for text in &texts {
        for needle in [sentry, token.as_str(), key_hex] {
            assert!(!text.contains(needle), "a value leaked into: {text}");
        }
    }
    // And the scrubber knows every one of them.
    let s = r.scrubber();
    assert!(s.finds_in(sentry) && s.finds_in(&token) && s.finds_in(key_hex));
}

#[test]
fn resolved_secrets_can_be_built_from_known_values() {
    let key = FingerprintKey::from_bytes([1; 32]);
    let r = ResolvedSecrets::from_values(
        key.clone(),
        SecretSource::Env,
        [(
            "A".to_owned(),
            fabrik::secret::SecretValue::new("aaaa-value"),
            SecretSource::Env,
        )],
    );
    assert_eq!(
        r.get("A").unwrap().fingerprint,
        key.fingerprint("A", &fabrik::secret::SecretValue::new("aaaa-value"))
    );
}
