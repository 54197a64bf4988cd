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

#[test]
fn a_service_moved_to_another_domain_answers_there() {
    let p = Project::example("compose", &[]);
    let a = p.apply();
    assert!(a.status.success(), "{}", stderr(&a));
    // Every mention of the domain moves: the app's domains, the env, the
    // check and the monitor (all lines that name it).
    let spec = std::fs::read_to_string(p.path().join("spec.yaml")).unwrap();
    std::fs::write(
        p.path().join("spec.yaml"),
        spec.replace("https://links.example.com", "https://go.example.com"),
    )
    .unwrap();
    let b = p.apply();
    assert!(
        b.status.success(),
        "the service must answer on its new domain: {}",
        stderr(&b)
    );
    let dump = p.dump();
    let text = dump.to_string();
    assert!(text.contains("go.example.com"), "{dump:#}");
}
