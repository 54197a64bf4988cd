//! New code without a spec change (`fabrik redeploy`), and back to an
//! earlier release (`fabrik rollback NAME --to RUN`).

use super::Project;
use crate::support::{stderr, stdout};

fn deployments(p: &Project) -> usize {
    p.dump()["coolify"]["applications"][0]["deployments"]
        .as_array()
        .map_or(0, Vec::len)
}

#[test]
fn redeploy_deploys_the_same_spec_again() {
    let p = Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    assert_eq!(deployments(&p), 1);
    // A plain re-apply changes nothing...
    let o = p.apply();
    assert!(stdout(&o).starts_with("no changes"), "{}", stdout(&o));
    assert_eq!(deployments(&p), 1);
    // ...a redeploy deploys again, by name or by spec.
    let o = p.run(&["redeploy", "quickstart"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("deployed and verified"),
        "{}",
        stdout(&o)
    );
    assert_eq!(deployments(&p), 2);
    let o = p.run(&["apply", "spec.yaml", "--sandbox", "--redeploy"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(deployments(&p), 3);
}

fn image(p: &Project) -> String {
    let app = &p.dump()["coolify"]["applications"][0];
    format!(
        "{}:{}",
        app["image"].as_str().unwrap_or_default(),
        app["image_tag"].as_str().unwrap_or_default()
    )
}

#[test]
fn rollback_to_an_earlier_release_applies_what_that_run_left_and_deploys_it() {
    let p = Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    let first = p.runs("quickstart")[0]["run"].as_str().unwrap().to_owned();
    assert_eq!(image(&p), "traefik/whoami:v1.10");
    let env_then = p.dump()["coolify"]["applications"][0]["env"].clone();
    p.edit("spec.yaml", "traefik/whoami:v1.10", "traefik/whoami:v1.11");
    p.edit(
        "spec.yaml",
        "WHOAMI_NAME: quickstart",
        "WHOAMI_NAME: second",
    );
    let o = p.apply();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(image(&p), "traefik/whoami:v1.11");
    assert_eq!(deployments(&p), 2);

    // Dry run: the plan, nothing changed.
    let o = p.run(&["rollback", "quickstart", "--to", &first, "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("~ app"), "{}", stderr(&o));
    assert_eq!(image(&p), "traefik/whoami:v1.11");

    let o = p.run(&["rollback", "quickstart", "--to", &first, "--sandbox"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("release {first}")),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("fabrik apply"), "{}", stdout(&o));
    assert_eq!(image(&p), "traefik/whoami:v1.10");
    assert_eq!(deployments(&p), 3, "the release is deployed again");
    assert_eq!(
        p.dump()["coolify"]["applications"][0]["env"],
        env_then,
        "the release's env comes back"
    );
    let runs = p.runs("quickstart");
    let last = runs.last().unwrap();
    assert_eq!(last["outcome"], "succeeded");
    assert_eq!(last["options"]["restores"], first.as_str());
    // The spec still says v1.11: the next apply brings it forward again.
    let o = p.run(&["plan", "spec.yaml", "--sandbox"]);
    assert!(stdout(&o).contains("~ app"), "{}", stdout(&o));
    assert_eq!(p.apply().status.code(), Some(0));
    assert_eq!(image(&p), "traefik/whoami:v1.11");
}

#[test]
fn rollback_to_refuses_what_is_not_a_release_of_that_deployment() {
    let p = Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    let first = p.runs("quickstart")[0]["run"].as_str().unwrap().to_owned();
    // A run of the same journal that changed nothing is no release.
    let o = p.apply();
    assert_eq!(o.status.code(), Some(0));
    let second = p.runs("quickstart")[1]["run"].as_str().unwrap().to_owned();
    let o = p.run(&["rollback", "quickstart", "--to", &second, "--sandbox"]);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("only an apply that succeeded"),
        "{}",
        stderr(&o)
    );
    // Another deployment's name.
    let o = p.run(&["rollback", "other", "--to", &first, "--sandbox"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("not of other"), "{}", stderr(&o));
    // The release itself, once more: nothing differs.
    let o = p.run(&["rollback", "quickstart", "--to", &first, "--sandbox"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("no changes"), "{}", stdout(&o));
}
