//! Commands that delete need the credentials of the services they touch,
//! never the application's secrets.

use super::Project;
use crate::support::{run, stderr};

fn with_a_required_secret() -> Project {
    let p = Project::example("quickstart", &[]);
    p.edit(
        "spec.yaml",
        "    API_TOKEN: ${secret.API_TOKEN}\n",
        "    API_TOKEN: ${secret.API_TOKEN}\n    SENTRY_DSN: ${secret.SENTRY_DSN}\n",
    );
    p.edit(
        "spec.yaml",
        "secrets:\n",
        "secrets:\n  SENTRY_DSN:\n    description: where errors are reported\n",
    );
    p
}

#[test]
fn destroy_needs_no_secret_of_the_application() {
    let p = with_a_required_secret();
    let o = run(p
        .cmd()
        .env("SENTRY_DSN", "https://key@errors.example.com/1")
        .args(["apply", "spec.yaml", "--sandbox"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The incident: the secret is not at hand.
    let o = p.run(&["destroy", "quickstart", "--sandbox"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        p.dump()["coolify"]["applications"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn rollback_of_what_a_run_created_needs_no_secret_of_the_application() {
    let p = with_a_required_secret();
    let o = run(p
        .cmd()
        .env("SENTRY_DSN", "https://key@errors.example.com/1")
        .env("FABRIK_SANDBOX_FAULTS", "deploy_fail=true")
        .args(["apply", "spec.yaml", "--sandbox", "--no-rollback"]));
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    let o = p.run(&["rollback", "quickstart", "--sandbox"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        p.dump()["coolify"]["applications"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
