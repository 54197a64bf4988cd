//! Behaviour of the orchestration (planner, engine, rollback, resume)
//! that the other suites left unchecked, found while measuring coverage or
//! sweeping for leaks.

use crate::faults::{Project, Spec};

/// Regression: an update whose env write failed after the application's
/// fields were changed (image tag patched, then a 422 on the env vars)
/// was reported "rolled back: 0 undone" (exit 5) while Coolify kept the
/// new image tag. The half-updated application is now restored.
#[test]
fn an_update_that_fails_half_way_is_restored_by_the_rollback() {
    let v1 = Spec::default();
    let p = Project::new(&v1);
    p.apply(None, &[]).expect(0);
    let app = |p: &Project| p.dump()["coolify"]["applications"][0].clone();
    assert_eq!(app(&p)["image_tag"], "v1.10");

    let v2 = Spec {
        tag: "v1.11",
        greeting: "bonjour",
        ..Spec::default()
    };
    p.write(&v2);
    // The env write is refused (the sandbox's 422 quoting the values);
    // the image tag was patched just before.
    let ran = p.apply(Some("echo_422=true"), &[]);
    ran.expect(5);
    assert!(ran.out.contains("1 undone"), "{}", ran.out);
    assert_eq!(app(&p)["image_tag"], "v1.10", "the image tag is restored");
    let events = p.events();
    let failed = crate::faults::of_type(&events, "resource_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["payload"]["outcome_unknown"], true);
    let restored = crate::faults::of_type(&events, "resource_updated");
    assert!(
        restored
            .iter()
            .any(|e| e["payload"]["restored"] == true && e["payload"]["resource"] == "app"),
        "{restored:?}"
    );
    p.assert_journal_verifies();

    // Without the fault, the update goes through.
    p.apply(None, &[]).expect(0);
    assert_eq!(app(&p)["image_tag"], "v1.11");
}
