//! `fabrik plan` reads and never writes.

use super::Project;
use crate::support::stderr;

#[test]
fn planning_a_new_project_writes_nothing() {
    let p = Project::example("quickstart", &[]);
    let before: Vec<_> = std::fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let o = p.run(&["plan", "spec.yaml"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("env.API_TOKEN: (secret)"), "{text}");
    let after: Vec<_> = std::fs::read_dir(p.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before, after, "plan created files (.env or .fabrik/)");
    // The apply that follows generates and keeps the secret.
    let a = p.apply();
    assert!(a.status.success(), "{}", stderr(&a));
    let env = std::fs::read_to_string(p.path().join(".env")).unwrap();
    assert!(env.contains("API_TOKEN="), "apply keeps generated secrets");
}
