//! DNS records and monitors as the real services behave, through the
//! binary against the sandbox: record sets, records that already exist,
//! two journals of one deployment, type changes, canonical contents,
//! pending zones, the journal shape of earlier versions, and monitors.

use serde_json::{Value, json};

use super::{LiveSandbox, Policies, Policy, Project, Spec, of_type};
use fabrik::provider::{HttpConfig, KumaClient, KumaConfig, Monitors as _};
use fabrik::sandbox::FaultConfig;

/// The `shop` spec with its `dns.records` replaced by `records` (YAML
/// list items, indented by four spaces).
fn with_records(spec: &Spec, records: &str) -> String {
    let yaml = spec.yaml();
    let start = yaml.find("  records:\n").unwrap() + "  records:\n".len();
    let end = yaml.find("verify:").unwrap();
    format!("{}{records}{}", &yaml[..start], &yaml[end..])
}

fn a(content: &str) -> String {
    format!("    - type: A\n      name: shop.example.com\n      content: {content}\n")
}

fn write(p: &Project, yaml: &str) {
    std::fs::write(p.path().join("spec.yaml"), yaml).unwrap();
}

/// The DNS records of the world: (type, name, content, id, comment).
fn records(p: &Project) -> Vec<(String, String, String, String, Value)> {
    let dump = p.dump();
    let mut out = Vec::new();
    for z in dump["cloudflare"]["zones"].as_array().unwrap() {
        for r in z["records"].as_array().unwrap() {
            out.push((
                r["type"].as_str().unwrap().to_owned(),
                r["name"].as_str().unwrap().to_owned(),
                r["content"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
                r["comment"].clone(),
            ));
        }
    }
    out
}

fn contents(p: &Project, kind: &str, name: &str) -> Vec<String> {
    let mut c: Vec<String> = records(p)
        .into_iter()
        .filter(|r| r.0 == kind && r.1 == name)
        .map(|r| r.2)
        .collect();
    c.sort();
    c
}

#[test]
fn a_record_set_grows_and_shrinks_without_losing_live_records() {
    let spec = Spec {
        cname: false,
        ..Spec::default()
    };
    let p = Project::new(&spec);
    write(&p, &with_records(&spec, &a("203.0.113.10")));
    p.apply(None, &[]).expect(0);
    // 1 → 2: the first address stays, the second is added.
    write(
        &p,
        &with_records(&spec, &(a("203.0.113.10") + &a("203.0.113.11"))),
    );
    p.apply(None, &[]).expect(0);
    assert_eq!(
        contents(&p, "A", "shop.example.com"),
        vec!["203.0.113.10", "203.0.113.11"]
    );
    // 2 → 1: only the address that left is deleted.
    write(&p, &with_records(&spec, &a("203.0.113.11")));
    p.apply(None, &[]).expect(0);
    assert_eq!(contents(&p, "A", "shop.example.com"), vec!["203.0.113.11"]);
    let again = p.apply(None, &[]);
    again.expect(0);
    assert!(again.out.contains("no changes"), "{}", again.out);
}

#[test]
fn a_record_of_no_one_is_refused_until_the_spec_adopts_it() {
    let spec = Spec {
        cname: false,
        ..Spec::default()
    };
    let p = Project::new(&spec);
    write(&p, &with_records(&spec, &a("203.0.113.10")));
    // The old server's record, made by hand.
    p.plant_foreign_record("A", "shop.example.com", "198.51.100.7");
    let ran = p.apply(None, &[]);
    assert_ne!(ran.code, 0, "{}", ran.out);
    assert!(ran.err.contains("198.51.100.7"), "{}", ran.err);
    assert!(ran.err.contains("adopt: true"), "{}", ran.err);
    assert_eq!(contents(&p, "A", "shop.example.com"), vec!["198.51.100.7"]);
    // Adopted: Fabrik manages it, leaves its comment, and neither a
    // rollback nor destroy deletes it.
    let adopted = "    - type: A\n      name: shop.example.com\n      content: 198.51.100.7\n      adopt: true\n";
    write(&p, &with_records(&spec, adopted));
    // The run fails; its rollback deletes what it made, never the adopted
    // record.
    p.apply(Some("deploy_fail=true"), &[]).expect(5);
    assert_eq!(contents(&p, "A", "shop.example.com"), vec!["198.51.100.7"]);
    p.apply(None, &[]).expect(0);
    let rec = records(&p).into_iter().find(|r| r.0 == "A").unwrap();
    assert_eq!(
        rec.4,
        Value::Null,
        "an adopted record keeps its (empty) comment"
    );
    p.run(None, &["destroy", "shop", "--yes"]).expect(0);
    assert_eq!(contents(&p, "A", "shop.example.com"), vec!["198.51.100.7"]);
}

#[test]
fn a_second_journal_never_takes_or_deletes_the_first_ones_resources() {
    let p = Project::new(&Spec::default());
    p.apply(None, &[]).expect(0);
    let before = records(&p);
    // CI: the same spec and world, another journal.
    let data = p.data();
    let ci = |args: &[&str]| {
        let mut c = p.command(None);
        c.env("FABRIK_SANDBOX_DATA", &data)
            .args(["--state", "ci/state.db"])
            .args(args);
        super::Ran::of(crate::support::run(&mut c))
    };
    let ran = ci(&["apply", "spec.yaml", "--sandbox"]);
    assert_ne!(ran.code, 0, "{}", ran.out);
    assert!(ran.err.contains("journal"), "{}", ran.err);
    // Its failed run is rolled back: nothing of the first journal goes.
    let _ = p.run(
        None,
        &["--state", "ci/state.db", "rollback", "shop", "--yes"],
    );
    let after = records(&p);
    assert_eq!(before, after);
    let monitors = p.dump()["uptime_kuma"]["monitors"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(monitors, 1, "no second monitor");
}

#[test]
fn an_a_record_becomes_a_cname_in_one_apply() {
    let spec = Spec {
        cname: false,
        policies: Some(Policies {
            coolify: Policy::Auto,
            dns: Policy::Auto,
            monitors: Policy::Auto,
        }),
        ..Spec::default()
    };
    let p = Project::new(&spec);
    write(&p, &with_records(&spec, &a("203.0.113.10")));
    p.apply(None, &[]).expect(0);
    let cname =
        "    - type: CNAME\n      name: shop.example.com\n      content: edge.example.net\n";
    write(&p, &with_records(&spec, cname));
    p.apply(None, &[]).expect(0);
    assert!(contents(&p, "A", "shop.example.com").is_empty());
    assert_eq!(
        contents(&p, "CNAME", "shop.example.com"),
        vec!["edge.example.net"]
    );
    // A failed change of type is undone: the A record comes back.
    let next = Spec {
        tag: "v1.11",
        ..spec.clone()
    };
    write(&p, &with_records(&next, &a("203.0.113.20")));
    // (The app's own restore deploys again, which fails too: exit 6.)
    p.apply(Some("deploy_fail=true"), &[]).expect(6);
    assert_eq!(
        contents(&p, "CNAME", "shop.example.com"),
        vec!["edge.example.net"]
    );
    assert!(contents(&p, "A", "shop.example.com").is_empty());
}

#[test]
fn contents_stored_otherwise_are_not_drift() {
    let spec = Spec {
        cname: false,
        ..Spec::default()
    };
    let p = Project::new(&spec);
    let recs = "    - type: AAAA\n      name: shop.example.com\n      content: 2001:DB8:0:0:0:0:0:10\n    - type: TXT\n      name: example.com\n      content: v=spf1 -all\n    - type: CNAME\n      name: www.example.com\n      content: Shop.Example.com.\n";
    write(&p, &with_records(&spec, recs));
    p.apply(None, &[]).expect(0);
    assert_eq!(
        contents(&p, "AAAA", "shop.example.com"),
        vec!["2001:db8::10"]
    );
    let before = p.events().len();
    p.apply(None, &["--refresh"]).expect(0);
    let events = p.events();
    let updates = of_type(&events[before..], "resource_updated");
    assert!(updates.is_empty(), "refresh found drift: {updates:?}");
}

#[test]
fn a_pending_zone_is_refused_before_any_change() {
    let p = Project::new(&Spec::default());
    {
        let sandbox = LiveSandbox::start(&p.data(), FaultConfig::default());
        let url = format!("{}/_sandbox/zone", sandbox.handle().api_url);
        let status = sandbox.block_on(async {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .put(url)
                .json(&json!({"name": "example.com", "status": "pending"}))
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 200);
    }
    let ran = p.apply(None, &[]);
    ran.expect(1);
    assert!(ran.err.contains("pending"), "{}", ran.err);
    assert!(ran.err.contains("ns.cloudflare.com"), "{}", ran.err);
    assert!(records(&p).is_empty());
}

#[test]
fn a_journal_of_the_earlier_key_shape_keeps_its_records() {
    use fabrik::event::*;
    use fabrik::id::{DeploymentId, RunId, StreamVersion};
    use fabrik::ownership::OwnershipMark;
    use fabrik::store::EventStore;
    let spec = Spec {
        cname: false,
        ..Spec::default()
    };
    let p = Project::new(&spec);
    write(
        &p,
        &with_records(&spec, &(a("203.0.113.10") + &a("203.0.113.11"))),
    );
    // The records an earlier Fabrik made, with its marks (no journal).
    let run = RunId::from_u128(7);
    let old_mark = format!("fabrik:shop:{run}");
    let ids: Vec<String> = {
        let sandbox = LiveSandbox::start(&p.data(), FaultConfig::default());
        ["203.0.113.10", "203.0.113.11"]
            .iter()
            .map(|ip| sandbox.plant_record("A", "shop.example.com", ip, Some(&old_mark)))
            .collect()
    };
    // Its journal: one completed apply that created them under the keys
    // it gave a set of two, `dns:A:<name>:<content>`.
    std::fs::create_dir_all(p.path().join(".fabrik")).unwrap();
    let store =
        fabrik::store::sqlite::SqliteStore::open(&p.path().join(".fabrik/state.db")).unwrap();
    let d = DeploymentId::new("shop").unwrap();
    let mut events = vec![Event::RunStarted(RunStarted {
        command: RunCommand::Apply,
        spec_path: None,
        spec_hash: None,
        user: "u".into(),
        host: "h".into(),
        pid: 1,
        fabrik_version: "0.1.0".into(),
        options: RunOptions::default(),
    })];
    let mut state = RunState::Pending;
    for to in [RunState::Validating, RunState::Provisioning] {
        events.push(Event::RunStateChanged(RunStateChanged {
            from: state,
            to,
            reason: None,
        }));
        state = to;
    }
    for (ip, id) in ["203.0.113.10", "203.0.113.11"].iter().zip(&ids) {
        let key = ResourceKey::new(format!("dns:A:shop.example.com:{ip}"));
        let mark = OwnershipMark::new(d.clone(), run.clone());
        events.push(Event::ResourceIntent(ResourceIntent {
            resource: key.clone(),
            kind: ResourceKind::DnsRecord,
            action: Action::Create,
            remote_id: None,
            desired: Some(json!({"zone": "example.com", "type": "A", "name": "shop.example.com", "content": ip, "ttl": 1, "proxied": false})),
            desired_hash: None,
            mark: Some(mark.clone()),
        }));
        events.push(Event::ResourceCreated(ResourceCreated {
            resource: key,
            kind: ResourceKind::DnsRecord,
            remote_id: id.clone(),
            mark,
            desired_hash: None,
            adopted: false,
            incomplete: None,
        }));
    }
    for to in [RunState::Deploying, RunState::Verifying, RunState::Complete] {
        events.push(Event::RunStateChanged(RunStateChanged {
            from: state,
            to,
            reason: None,
        }));
        state = to;
    }
    let at = jiff::Timestamp::now();
    let events: Vec<NewEvent> = events
        .into_iter()
        .map(|event| NewEvent {
            run: Some(run.clone()),
            at,
            event,
        })
        .collect();
    store.append(&d, StreamVersion(0), &events).unwrap();
    drop(store);
    // The new Fabrik plans those records under the keys the journal has.
    let plan = p.run(None, &["plan", "spec.yaml", "--sandbox"]);
    plan.expect(0);
    assert!(
        !plan.out.contains("- dns:"),
        "nothing is deleted: {}",
        plan.out
    );
    p.apply(None, &[]).expect(0);
    let mut now: Vec<String> = records(&p)
        .into_iter()
        .filter(|r| r.0 == "A")
        .map(|r| r.3)
        .collect();
    now.sort();
    let mut was = ids.clone();
    was.sort();
    assert_eq!(now, was, "the same records, none deleted or made again");
    let events = p.events();
    assert!(of_type(&events, "resource_deleted").is_empty());
}

fn kuma(sandbox: &LiveSandbox) -> KumaClient {
    let h = sandbox.handle();
    KumaClient::new(
        KumaConfig {
            url: h.kuma_url.clone(),
            username: h.credentials.kuma_username.clone(),
            password: h.credentials.kuma_password.clone(),
        },
        HttpConfig::default(),
    )
}

fn monitor(p: &Project) -> Value {
    p.dump()["uptime_kuma"]["monitors"][0].clone()
}

#[test]
fn every_monitor_field_reaches_uptime_kuma_and_refresh_resumes_a_paused_one() {
    let p = Project::new(&Spec::default());
    let yaml = Spec::default().yaml().replace(
        "    interval: 60s\n",
        "    interval: 60s\n    retry_interval: 30s\n    accepted_status: [\"200-299\", \"301\"]\n    retries: 2\n",
    );
    write(&p, &yaml);
    p.apply(None, &[]).expect(0);
    let m = monitor(&p);
    assert_eq!(m["retryInterval"], 30);
    assert_eq!(m["maxretries"], 2);
    assert_eq!(m["accepted_statuscodes"], json!(["200-299", "301"]));
    // A changed field is planned with its line and reaches Kuma.
    write(
        &p,
        &yaml.replace("retry_interval: 30s", "retry_interval: 45s"),
    );
    let plan = p.run(None, &["plan", "spec.yaml", "--sandbox"]);
    assert!(plan.out.contains("retry_interval"), "{}", plan.out);
    p.apply(None, &[]).expect(0);
    assert_eq!(monitor(&p)["retryInterval"], 45);
    // Paused in Kuma: refresh sees it and resumes it.
    {
        let sandbox = LiveSandbox::start(&p.data(), FaultConfig::default());
        let client = kuma(&sandbox);
        let id = monitor(&p)["id"].as_u64().unwrap();
        sandbox
            .block_on(client.pause(fabrik::provider::MonitorId(id)))
            .unwrap();
    }
    assert_eq!(monitor(&p)["active"], false);
    p.apply(None, &["--refresh"]).expect(0);
    assert_eq!(monitor(&p)["active"], true);
}

#[test]
fn an_unknown_notification_id_is_refused_before_any_change() {
    let p = Project::new(&Spec::default());
    let yaml = Spec::default().yaml().replace(
        "    interval: 60s\n",
        "    interval: 60s\n    notifications: [1, 99]\n",
    );
    write(&p, &yaml);
    let ran = p.apply(None, &[]);
    ran.expect(1);
    assert!(
        ran.err.contains("notification 99 does not exist"),
        "{}",
        ran.err
    );
    assert!(
        p.dump()["uptime_kuma"]["monitors"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(records(&p).is_empty(), "nothing changed");
}

#[test]
fn an_add_kuma_refuses_after_saving_is_journaled_as_made() {
    // Uptime Kuma saves the monitor, then fails on the unknown id (kuma
    // notes §2): the client says refused, and the monitor exists anyway.
    let p = Project::new(&Spec::default());
    p.apply(None, &[]).expect(0);
    let sandbox = LiveSandbox::start(&p.data(), FaultConfig::default());
    let client = kuma(&sandbox);
    let mark = fabrik::ownership::OwnershipMark::new(
        fabrik::id::DeploymentId::new("half").unwrap(),
        fabrik::id::RunId::from_u128(9),
    );
    let desired = fabrik::provider::MonitorDesired {
        name: "half/made".into(),
        kind: fabrik::provider::MonitorKind::Http,
        url: "https://half.example.com/".into(),
        keyword: None,
        interval: 60,
        retries: 0,
        retry_interval: 60,
        accepted_status: vec!["200-299".into()],
        notification_ids: vec![1, 99],
    };
    let err = sandbox
        .block_on(client.create(&desired, &mark))
        .unwrap_err();
    assert!(err.message.contains("FOREIGN KEY"), "{err}");
    let owned = sandbox.block_on(client.list_owned()).unwrap();
    let half = owned.iter().find(|m| m.name == "half/made").unwrap();
    assert_eq!(
        half.fields.as_ref().unwrap().notification_ids,
        vec![1],
        "the ids before the unknown one were linked"
    );
}

#[test]
fn monitors_carry_no_tag_and_no_run_in_a_label() {
    let p = Project::new(&Spec::default());
    p.apply(None, &[]).expect(0);
    let m = monitor(&p);
    assert_eq!(m["tags"], json!([]), "{m}");
    assert!(
        m["description"]
            .as_str()
            .unwrap()
            .contains("managed-by=fabrik"),
        "{m}"
    );
    assert_eq!(m["ownership"]["deployment"], "shop");
}
