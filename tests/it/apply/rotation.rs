//! A generated secret whose `.env` entry vanished is not silently replaced:
//! the apply is refused naming it, and `--rotate NAME` replaces it on
//! purpose, journaled as a rotation.

use super::Project;
use crate::support::stderr;

fn token(p: &Project) -> serde_json::Value {
    let world = p.dump();
    let app = &world["coolify"]["applications"][0];
    app["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == "API_TOKEN")
        .map(|e| e["value_fingerprint"].clone())
        .unwrap()
}

#[test]
fn a_lost_generated_secret_is_not_regenerated_without_rotate() {
    let p = Project::example("quickstart", &[]);
    assert_eq!(p.apply().status.code(), Some(0));
    let before = token(&p);
    std::fs::remove_file(p.path().join(".env")).unwrap();

    let o = p.apply();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the value of API_TOKEN is in neither"),
        "{err}"
    );
    assert!(err.contains("--rotate API_TOKEN"), "{err}");
    assert_eq!(token(&p), before, "the application got a new value");
    assert!(
        !p.path().join(".env").exists(),
        "a refused apply wrote a new value"
    );

    let o = p.run(&["apply", "spec.yaml", "--sandbox", "--rotate", "API_TOKEN"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_ne!(token(&p), before, "rotated on purpose");
    let events = crate::support::journal_events(p.path());
    assert!(
        events.iter().any(|e| e["type"] == "secret_resolved"
            && e["payload"]["name"] == "API_TOKEN"
            && e["payload"]["rotated"] == true),
        "the rotation is journaled"
    );
}
