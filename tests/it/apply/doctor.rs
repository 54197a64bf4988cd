//! `fabrik doctor SPEC`: every credential and target at once, each
//! problem in one report, nothing changed.

use super::Project;
use crate::support::{stderr, stdout};

#[test]
fn doctor_reports_everything_wrong_at_once_and_changes_nothing() {
    let p = Project::example("quickstart", &[]);
    let o = p.run(&["doctor", "spec.yaml", "--sandbox"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("everything the spec needs is in place"),
        "{}",
        stdout(&o)
    );
    // Two things wrong in two services: both named in one report.
    p.edit("spec.yaml", "server: localhost", "server: nowhere");
    p.edit(
        "spec.yaml",
        "    interval: 60s",
        "    interval: 60s\n    notifications: [99]",
    );
    let before = p.dump();
    let o = p.run(&["--output", "json", "doctor", "spec.yaml", "--sandbox"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(report["problems"], 2, "{report}");
    let text = report.to_string();
    assert!(text.contains("no server named \\\"nowhere\\\""), "{text}");
    assert!(
        text.contains("servers visible to this token: localhost"),
        "{text}"
    );
    assert!(text.contains("notification 99 does not exist"), "{text}");
    assert_eq!(p.dump(), before, "doctor changed the world");
    assert!(
        !p.path().join(".fabrik/state.db").exists(),
        "doctor created a journal"
    );
}

#[test]
fn doctor_names_every_missing_credential() {
    let p = Project::example("quickstart", &[]);
    let o = p.run(&["doctor", "spec.yaml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let out = stdout(&o);
    for var in [
        "COOLIFY_URL",
        "COOLIFY_TOKEN",
        "CLOUDFLARE_API_TOKEN",
        "UPTIME_KUMA_URL",
        "UPTIME_KUMA_USERNAME",
        "UPTIME_KUMA_PASSWORD",
    ] {
        assert!(out.contains(var), "{var}: {out}");
    }
    assert!(!p.path().join(".env").exists(), "doctor wrote a .env");
}
