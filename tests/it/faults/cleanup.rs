//! `fabrik destroy` deletes everything a deployment owns, and finishes the
//! job when run again after a partial failure; `fabrik gc` finds resources
//! that carry Fabrik's mark but that no deployment of the journal owns.

use std::collections::BTreeSet;

use fabrik::id::{DeploymentId, RunId};
use fabrik::ownership::OwnershipMark;
use fabrik::provider::{
    AppDesired, AppHost as _, AppSource, CoolifyClient, CoolifyConfig, HttpConfig, KumaClient,
    KumaConfig, MonitorDesired, MonitorKind, Monitors as _, Target,
};
use fabrik::sandbox::FaultConfig;
use serde_json::Value;

use super::{LiveSandbox, Project, Spec, of_type, shop_resources};

const KEEP: &str = "dns TXT keep.example.com keep -";

fn full_world(spec: &Spec) -> BTreeSet<String> {
    shop_resources(spec).into_iter().map(|(_, l)| l).collect()
}

/// Deleted resources in journal order, as their kinds.
fn deleted_kinds(events: &[Value], run: &str) -> Vec<String> {
    of_type(events, "resource_deleted")
        .into_iter()
        .filter(|e| e["run"] == run)
        .map(|e| e["payload"]["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// Destroy deletes the monitor, the application and the records (side by
/// side), and nothing it does not own; a second destroy has nothing to do.
#[test]
fn destroy_leaves_nothing_the_deployment_owns() {
    let spec = Spec::default();
    let p = Project::new(&spec);
    p.plant_foreign_record("TXT", "keep.example.com", "keep");
    p.apply(None, &[]).expect(0);
    let mut full = full_world(&spec);
    full.insert(KEEP.to_owned());
    assert_eq!(p.world(), full);

    let refused = p.run_unconfirmed(&["destroy", "shop", "--sandbox"]);
    refused.expect(2);
    assert!(refused.err.contains("--yes"), "{}", refused.err);
    assert_eq!(p.world(), full, "an unconfirmed destroy changed the world");

    let ran = p.run(None, &["destroy", "shop", "--sandbox", "--yes"]);
    ran.expect(0);
    assert!(ran.out.contains("4 resources deleted"), "{}", ran.out);
    assert_eq!(p.world(), BTreeSet::from([KEEP.to_owned()]));
    let events = p.events();
    // Side by side: journaled in the order they ended.
    let mut kinds = deleted_kinds(&events, &ran.run_id());
    kinds.sort();
    assert_eq!(
        kinds,
        ["application", "dns_record", "dns_record", "monitor"],
        "each deleted once"
    );

    let again = p.run(None, &["destroy", "spec.yaml", "--sandbox", "--yes"]);
    again.expect(0);
    assert!(again.out.contains("0 resources deleted"), "{}", again.out);
    assert_eq!(p.world(), BTreeSet::from([KEEP.to_owned()]));
    p.assert_journal_verifies();
}

/// Deleting DNS records fails for good: the monitor and the application
/// are gone, the records stay, the run exits 6 naming `fabrik destroy`;
/// that command, run again, finishes the job.
#[test]
fn destroy_after_a_partial_failure_finishes_the_job() {
    let spec = Spec::default();
    let p = Project::new(&spec);
    p.apply(None, &[]).expect(0);
    let zone = p.dump()["cloudflare"]["zones"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Only the paths of single records: listing the zone still works.
    let faults = format!("error_rate=1,target=/client/v4/zones/{zone}/dns_records/");
    let ran = p.run(Some(&faults), &["destroy", "shop", "--sandbox", "--yes"]);
    ran.expect(6);
    let records: BTreeSet<String> = shop_resources(&spec)
        .into_iter()
        .filter(|(k, _)| *k == "dns")
        .map(|(_, l)| l)
        .collect();
    assert_eq!(p.world(), records, "monitor and app deleted, records left");
    let next = ran.next();
    assert_eq!(next, ["fabrik destroy shop"], "{}", ran.out);

    let finished = p.run_printed(&next[0], &["--yes"]);
    finished.expect(0);
    assert!(
        finished.out.contains("2 resources deleted"),
        "{}",
        finished.out
    );
    assert_eq!(p.world(), BTreeSet::new());
    let status = p.run(None, &["--output", "json", "status", "shop"]);
    status.expect(0);
    let view: Value = serde_json::from_str(&status.out).unwrap();
    let live: Vec<_> = view["deployment"]["resources"]
        .as_object()
        .map(|m| {
            m.values()
                .filter(|r| r["status"] == "present" || r["status"] == "pending")
                .collect()
        })
        .unwrap_or_default();
    assert!(live.is_empty(), "the journal holds nothing live: {live:?}");
    p.assert_journal_verifies();
}

/// Orphans carrying Fabrik's mark are planted on all three services (a
/// deployment the journal never heard of, and a run of `shop` it never
/// heard of). `gc` lists exactly those, never what `shop` owns; `gc
/// --delete` removes them and nothing else.
#[test]
fn gc_finds_planted_orphans_and_deletes_only_them() {
    let spec = Spec::default();
    let p = Project::new(&spec);
    p.apply(None, &[]).expect(0);
    let owned_world = p.world();

    let ghost = OwnershipMark::new(DeploymentId::new("ghost").unwrap(), RunId::from_u128(42));
    let stray = OwnershipMark::new(DeploymentId::new("shop").unwrap(), RunId::from_u128(43));
    let mut planted = BTreeSet::new();
    {
        let sandbox = LiveSandbox::start(&p.data(), FaultConfig::default());
        let h = sandbox.handle();
        planted.insert(sandbox.plant_record(
            "TXT",
            "ghost.example.com",
            "ghost",
            Some(&ghost.to_compact()),
        ));
        planted.insert(sandbox.plant_record(
            "TXT",
            "stray.example.com",
            "stray",
            Some(&stray.to_compact()),
        ));
        let coolify = CoolifyClient::new(
            CoolifyConfig {
                base_url: h.coolify_url.clone(),
                token: h.credentials.coolify_token.clone(),
            },
            HttpConfig::default(),
        )
        .unwrap();
        let app = sandbox.block_on(async {
            let target = coolify
                .preflight(&Target {
                    project: "default".into(),
                    environment: "production".into(),
                    server: "localhost".into(),
                    destination: None,
                })
                .await
                .unwrap();
            coolify
                .create_app(
                    &target,
                    &AppDesired {
                        name: "ghost".into(),
                        description: None,
                        source: AppSource::DockerImage {
                            image: "nginx".into(),
                            tag: Some("1.27".into()),
                        },
                        domains: Vec::new(),
                        ports: vec![80],
                        health: None,
                        env: Vec::new(),
                    },
                    &ghost,
                )
                .await
                .unwrap()
        });
        planted.insert(app.uuid);
        let kuma = KumaClient::new(
            KumaConfig {
                url: h.kuma_url.clone(),
                username: h.credentials.kuma_username.clone(),
                password: h.credentials.kuma_password.clone(),
            },
            HttpConfig::default(),
        );
        let monitor = sandbox
            .block_on(kuma.create(
                &MonitorDesired {
                    name: "ghost".into(),
                    kind: MonitorKind::Http,
                    url: "https://ghost.example.com/".into(),
                    keyword: None,
                    interval: 60,
                    retries: 0,
                    retry_interval: 60,
                    accepted_status: vec!["200-299".into()],
                    notification_ids: Vec::new(),
                },
                &ghost,
            ))
            .unwrap();
        planted.insert(monitor.id.to_string());
    }
    let with_orphans = p.world();
    assert_eq!(with_orphans.len(), owned_world.len() + 4);

    let orphans = |o: &super::Ran| -> BTreeSet<(String, bool)> {
        let v: Value = serde_json::from_str(&o.out).unwrap();
        assert_eq!(v["kind"], "gc");
        v["orphans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["remote_id"].as_str().unwrap().to_owned(),
                    x["deleted"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let listed = p.run(None, &["--output", "json", "gc", "--sandbox"]);
    listed.expect(0);
    let want: BTreeSet<(String, bool)> = planted.iter().map(|id| (id.clone(), false)).collect();
    assert_eq!(orphans(&listed), want, "exactly the planted orphans");
    assert_eq!(p.world(), with_orphans, "listing deletes nothing");

    let human = p.run(None, &["gc", "--sandbox"]);
    human.expect(0);
    assert!(human.out.contains("ghost"), "{}", human.out);
    assert!(human.err.contains("gc --delete"), "{}", human.err);

    let deleted = p.run(None, &["--output", "json", "gc", "--sandbox", "--delete"]);
    deleted.expect(0);
    let want: BTreeSet<(String, bool)> = planted.iter().map(|id| (id.clone(), true)).collect();
    assert_eq!(orphans(&deleted), want);
    assert_eq!(p.world(), owned_world, "only the orphans are gone");

    let after = p.run(None, &["--output", "json", "gc", "--sandbox"]);
    after.expect(0);
    assert!(orphans(&after).is_empty());
}
