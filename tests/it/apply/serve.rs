//! The real binary against `fabrik sandbox serve` in another process, the
//! way a user tries Fabrik against a sandbox they run themselves: the
//! providers are configured by environment variables exactly as for the
//! real services.

use serde_json::Value;

use super::{Project, find_monitor, find_record, ok};
use crate::support::{SandboxServer, insta_settings, run, stderr, stdout};

#[test]
fn quickstart_against_a_served_sandbox() {
    let p = Project::example("quickstart", &[]);
    let server = SandboxServer::start(p.path());

    let mut cmd = p.cmd();
    let first = run(server.point(&mut cmd).args(["apply", "spec.yaml"]));
    ok(&first);
    assert!(
        stdout(&first).contains("quickstart is deployed and verified"),
        "{}",
        stdout(&first)
    );
    let run1 = p.runs("quickstart")[0]["run"].as_str().unwrap().to_owned();
    let world = server.dump();
    let apps = world["coolify"]["applications"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{world:#}");
    let app = &apps[0];
    assert_eq!(app["name"], "quickstart");
    assert_eq!(app["image"], "traefik/whoami");
    assert_eq!(app["image_tag"], "v1.10");
    assert_eq!(app["fqdn"], "https://quickstart.example.com");
    assert_eq!(app["ownership"]["run"], run1.as_str());
    let deployments = app["deployments"].as_array().unwrap();
    assert_eq!(deployments.len(), 1);
    assert_eq!(deployments[0]["status"], "finished");
    assert_eq!(app["serving"], "image traefik/whoami:v1.10");
    let status = p.json(&["status", "quickstart"]);
    let resources = &status["deployment"]["resources"];
    let record = find_record(
        &world,
        resources["dns:A:quickstart.example.com"]["remote_id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["content"], "203.0.113.10");
    assert_eq!(record["ownership"]["run"], run1.as_str());
    let monitor = find_monitor(
        &world,
        resources["monitor:quickstart"]["remote_id"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(monitor["url"], "https://quickstart.example.com/health");
    assert_eq!(monitor["ownership"]["run"], run1.as_str());

    // The world as a user sees it with `fabrik sandbox dump`.
    let dumped = p.run(&["sandbox", "dump", "--data", server.data.to_str().unwrap()]);
    ok(&dumped);
    let printed: Value = serde_json::from_str(&stdout(&dumped)).unwrap();
    assert_eq!(printed, world);
    let mut settings = insta_settings("apply");
    settings.add_filter(
        r#""value_fingerprint": "[0-9a-f]{16}""#,
        r#""value_fingerprint": "[FP]""#,
    );
    settings.bind(|| insta::assert_json_snapshot!("served_quickstart_dump", world));

    // Re-apply offline with no credentials at all: a run that needed a
    // provider would stop at once on the missing COOLIFY_URL.
    let again = p.run(&["apply", "spec.yaml", "--refresh=false"]);
    ok(&again);
    assert!(
        stdout(&again).starts_with("no changes: the deployment matches the spec"),
        "{}",
        stdout(&again)
    );
    assert_eq!(server.dump(), world, "a re-apply changed the world");

    // The same probe fails a run that does need the providers.
    p.edit("spec.yaml", "whoami:v1.10", "whoami:v1.11");
    let changed = p.apply_real();
    assert_eq!(changed.status.code(), Some(1), "{}", stderr(&changed));
    assert!(
        stderr(&changed).contains("credentials are not set: COOLIFY_URL"),
        "{}",
        stderr(&changed)
    );
    assert_eq!(server.dump(), world);
}

impl Project {
    /// `fabrik apply spec.yaml` in real mode, with no credentials.
    fn apply_real(&self) -> std::process::Output {
        self.run(&["apply", "spec.yaml"])
    }
}

/// What `sandbox serve` prints is enough: its `export` lines, pasted into
/// the environment of a real-mode `fabrik apply`, deploy the quickstart.
#[test]
fn the_printed_exports_point_fabrik_at_the_served_sandbox() {
    use std::io::BufRead as _;
    let p = Project::example("quickstart", &[]);
    let mut child = crate::support::fabrik(p.path())
        .args(["sandbox", "serve", "--addr", "127.0.0.1:0", "--data"])
        .arg(p.path().join("world.db"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut exports = Vec::new();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(pair) = line.strip_prefix("export ") {
            let (k, v) = pair.split_once('=').unwrap();
            exports.push((k.to_owned(), v.trim_matches('\'').to_owned()));
            if k == "FABRIK_SANDBOX_URL" {
                break;
            }
        }
    }
    let names: Vec<&str> = exports.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "COOLIFY_URL",
            "COOLIFY_TOKEN",
            "CLOUDFLARE_API_URL",
            "CLOUDFLARE_API_TOKEN",
            "UPTIME_KUMA_URL",
            "UPTIME_KUMA_USERNAME",
            "UPTIME_KUMA_PASSWORD",
            "FABRIK_SANDBOX_URL"
        ]
    );
    let o = run(p.cmd().envs(exports).args(["apply", "spec.yaml"]));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("quickstart is deployed and verified"),
        "{}",
        stdout(&o)
    );
    // The image's registry is the served sandbox's too: its digest is
    // known, with no registry on the network.
    assert!(
        stderr(&o).contains("image traefik/whoami:v1.10 is sha256:"),
        "{}",
        stderr(&o)
    );
}
