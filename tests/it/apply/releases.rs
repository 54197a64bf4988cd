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
