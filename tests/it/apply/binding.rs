//! A deployment belongs to one spec: a second spec with the same `name`
//! is refused, naming both, until the user says `--take-over`.

use super::Project;
use crate::support::{fabrik, run, stderr, stdout};

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

    // The generated secrets stay as they were: prod gets staging's values
    // (a take-over that lacked them would be refused as a silent rotation).
    std::fs::copy(
        repo.path().join("staging/.env"),
        repo.path().join("prod/.env"),
    )
    .unwrap();
    let o = apply("prod/spec.yaml", &["--take-over"]);
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

#[test]
fn a_renamed_deployment_is_told_to_destroy_the_old_one() {
    let p = Project::example("quickstart", &[]);
    let o = p.apply();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    p.edit("spec.yaml", "name: quickstart", "name: renamed");
    let o = p.apply();
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("belongs to deployment quickstart"), "{err}");
    assert!(err.contains("`fabrik destroy quickstart`"), "{err}");
    // Following the hint works.
    let o = p.run(&["destroy", "quickstart", "--sandbox"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = p.apply();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn commands_given_the_old_name_act_on_the_old_deployment_after_a_rename() {
    let p = Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    // The spec names another deployment now; its records too.
    let text = std::fs::read_to_string(p.path().join("spec.yaml"))
        .unwrap()
        .replace("name: quickstart\n", "name: renamed\n")
        .replace("quickstart.example.com", "renamed.example.com");
    std::fs::write(p.path().join("spec.yaml"), text).unwrap();
    let o = p.apply();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = p.run(&["redeploy", "quickstart", "--sandbox"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("now names deployment renamed"),
        "{}",
        stderr(&o)
    );
    // Destroying the old name deletes the old deployment's resources only.
    let o = p.run(&["destroy", "quickstart", "--sandbox"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("quickstart destroyed"),
        "{}",
        stdout(&o)
    );
    let dump = p.dump().to_string();
    assert!(dump.contains("renamed.example.com"), "{dump}");
    assert!(!dump.contains("\"quickstart.example.com\""), "{dump}");
}

#[test]
fn gc_leaves_what_another_journal_made_alone() {
    let p = Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    // A second journal beside the first, against the same services (the
    // sandbox world lives with the journals): it owns nothing, and what
    // the first made carries the first's mark.
    let other = ["--state", ".fabrik/other.db"];
    let o = run(p
        .cmd()
        .args(other)
        .args(["--output", "json", "gc", "--sandbox"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(listed["orphans"], serde_json::json!([]), "{listed}");
    let o = run(p.cmd().args(other).args(["gc", "--sandbox", "--delete"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(p.apply().status.code(), Some(0));
    let o = p.run(&["status", "quickstart"]);
    assert!(!stdout(&o).contains("gone"), "{}", stdout(&o));
    assert_eq!(
        p.dump()["coolify"]["applications"].as_array().map(Vec::len),
        Some(1)
    );
}
