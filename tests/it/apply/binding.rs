//! A deployment belongs to one spec: a second spec with the same `name`
//! is refused, naming both, until the user says `--take-over`.

use super::Project;
use crate::support::{fabrik, run, stderr};

#[test]
fn a_second_spec_with_the_same_name_is_refused_until_take_over() {
    let p = Project::example("quickstart", &[]);
    let repo = tempfile::tempdir().unwrap();
    std::fs::create_dir(repo.path().join(".git")).unwrap();
    for env in ["staging", "prod"] {
        crate::support::copy_pristine(p.path(), &repo.path().join(env));
    }
    let prod = repo.path().join("prod/spec.yaml");
    let text = std::fs::read_to_string(&prod)
        .unwrap()
        .replace("quickstart.example.com", "prod.example.com");
    std::fs::write(&prod, text).unwrap();
    let apply = |spec: &str, extra: &[&str]| {
        run(fabrik(repo.path())
            .args(["--state", ".fabrik/state.db", "apply", spec, "--sandbox"])
            .args(extra))
    };
    let o = apply("staging/spec.yaml", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let before = fabrik::sandbox::dump(&repo.path().join(".fabrik/sandbox.db")).unwrap();

    let o = apply("prod/spec.yaml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("belongs to the spec staging/spec.yaml"),
        "{err}"
    );
    assert!(err.contains("not to prod/spec.yaml"), "{err}");
    assert!(err.contains("--take-over"), "{err}");
    assert!(err.contains("environments"), "{err}");
    let after = fabrik::sandbox::dump(&repo.path().join(".fabrik/sandbox.db")).unwrap();
    assert_eq!(before, after, "a refused apply changed the world");

    let o = apply("prod/spec.yaml", &["--take-over", "--rotate", "API_TOKEN"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Bound to prod now: staging is the one refused.
    let o = apply("staging/spec.yaml", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("belongs to the spec prod/spec.yaml"),
        "{}",
        stderr(&o)
    );
}
