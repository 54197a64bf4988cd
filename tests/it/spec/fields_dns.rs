//! Every field of a `dns` record and of a webhook reaches the service,
//! through the binary against the sandbox: a record's fields as
//! Cloudflare stores them, each updatable field changed in place (the same
//! record) and shown in `fabrik plan`; a webhook's fields in what its
//! receiver gets. The fields are read from the JSON Schema, so a field
//! added later without a case here fails the test.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::apply::{Project, ok};
use crate::faults::LiveSandbox;
use crate::support::{Receiver, stdout, verify_with_reference};
use fabrik::sandbox::FaultConfig;

/// The properties of `$defs.NAME` in the checked-in schema.
fn fields(name: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(super::root().join("schema/spec.schema.json")).unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    schema["$defs"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("no $defs.{name} in the schema"))
        .keys()
        .cloned()
        .collect()
}

/// Fails when the schema has a field of `name` that `covered` lacks, or
/// `covered` names one the schema no longer has.
#[track_caller]
fn all_covered(name: &str, covered: &[&str]) {
    let covered: BTreeSet<String> = covered.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(
        fields(name),
        covered,
        "every field of {name} needs a case in tests/it/spec/fields_dns.rs"
    );
}

const HEAD: &str = "name: shop
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:v1.10
  port: 80
  domains:
    - https://shop.example.com
";

/// One record per line of the test: each field spelt out.
const RECORDS: &str = "dns:
  zone: example.com
  records:
    - type: A
      name: shop.example.com
      content: 203.0.113.10
      ttl: 300
    - type: AAAA
      name: cdn.example.com
      content: 2001:DB8:0:0:0:0:0:10
      proxied: true
    - type: CNAME
      name: www.example.com
      content: shop.example.com
    - type: TXT
      name: '@'
      content: v=spf1 -all
      ttl: 3600
    - type: A
      name: legacy.example.com
      content: 198.51.100.7
      adopt: true
";

/// The record of the world with this type and name.
fn record(p: &Project, kind: &str, name: &str) -> Value {
    let dump = p.dump();
    let zone = dump["cloudflare"]["zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == "example.com")
        .unwrap()
        .clone();
    zone["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == kind && r["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {zone:#}"))
        .clone()
}

#[test]
fn every_dns_record_field_reaches_cloudflare_and_changes_in_place() {
    all_covered("Dns", &["zone", "records"]);
    all_covered(
        "DnsRecord",
        &["type", "name", "content", "ttl", "proxied", "adopt"],
    );
    let p = Project::with_spec(&format!("{HEAD}{RECORDS}"), &[]);
    // A record made by hand before Fabrik, which the spec adopts.
    let planted = {
        let sandbox = LiveSandbox::start(&p.sandbox_data(), FaultConfig::default());
        sandbox.plant_record("A", "legacy.example.com", "198.51.100.7", None)
    };
    ok(&p.apply());

    // zone, type, name: each record lies in the zone under its full name
    // (`@` is the apex) with its type.
    let txt = record(&p, "TXT", "example.com");
    let a = record(&p, "A", "shop.example.com");
    let aaaa = record(&p, "AAAA", "cdn.example.com");
    let cname = record(&p, "CNAME", "www.example.com");
    // content, as Cloudflare stores it: AAAA compressed, TXT as Fabrik
    // sends it (a quoted character-string).
    assert_eq!(a["content"], "203.0.113.10");
    assert_eq!(aaaa["content"], "2001:db8::10");
    assert_eq!(cname["content"], "shop.example.com");
    assert_eq!(txt["content"], "\"v=spf1 -all\"");
    // ttl: seconds as given, `auto` (and every proxied record) as 1.
    assert_eq!(a["ttl"], 300);
    assert_eq!(txt["ttl"], 3600);
    assert_eq!(cname["ttl"], 1);
    assert_eq!(aaaa["ttl"], 1);
    // proxied.
    assert_eq!(aaaa["proxied"], true);
    assert_eq!(a["proxied"], false);
    // Fabrik's own records carry its mark; adopt: the hand-made record
    // is taken over as it is, without a second one or a mark.
    assert_eq!(a["ownership"]["deployment"], "shop");
    let legacy = record(&p, "A", "legacy.example.com");
    assert_eq!(legacy["id"], planted.as_str());
    assert_eq!(legacy["ownership"], Value::Null);

    // Each updatable field: changed in place (the same record), and a
    // field line in the plan.
    let cases: &[(&str, &str, &str, &str, &str, Value)] = &[
        (
            "content: 203.0.113.10\n",
            "content: 203.0.113.20\n",
            "A",
            "shop.example.com",
            "content",
            json!("203.0.113.20"),
        ),
        (
            "ttl: 300\n",
            "ttl: 600\n",
            "A",
            "shop.example.com",
            "ttl",
            json!(600),
        ),
        (
            "      proxied: true\n",
            "      proxied: false\n",
            "AAAA",
            "cdn.example.com",
            "proxied",
            json!(false),
        ),
        (
            "content: shop.example.com\n",
            "content: edge.example.net\n",
            "CNAME",
            "www.example.com",
            "content",
            json!("edge.example.net"),
        ),
        (
            "content: v=spf1 -all\n",
            "content: v=spf1 include:_spf.example.net -all\n",
            "TXT",
            "example.com",
            "content",
            json!("\"v=spf1 include:_spf.example.net -all\""),
        ),
    ];
    for (from, to, kind, name, field, stored) in cases {
        let before = record(&p, kind, name);
        p.edit("spec.yaml", from, to);
        let plan = p.json(&["plan", "spec.yaml"]);
        let steps: Vec<&Value> = plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["kind"] == "dns_record" && s["action"] != "noop")
            .collect();
        assert_eq!(steps.len(), 1, "{to}: {plan:#}");
        assert_eq!(steps[0]["action"], "update", "{to}: {plan:#}");
        assert_eq!(steps[0]["remote_id"], before["id"], "{to}: {plan:#}");
        let paths: Vec<&str> = steps[0]["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, vec![*field], "{to}: {plan:#}");
        let human = stdout(&p.run(&["plan", "spec.yaml"]));
        let key = steps[0]["key"].as_str().unwrap();
        let lines: Vec<&str> = human
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(&format!("~ {key} ")))
            .collect();
        assert!(
            lines
                .get(1)
                .is_some_and(|l| l.trim_start().starts_with(&format!("{field}: "))),
            "{to}: no `{field}` line under {key} in\n{human}"
        );
        ok(&p.apply());
        let after = record(&p, kind, name);
        assert_eq!(after["id"], before["id"], "{to}: not changed in place");
        assert_eq!(&after[*field], stored, "{to}: {after:#}");
    }
}

#[test]
fn every_webhook_field_shows_in_what_the_receiver_gets() {
    all_covered("Notifications", &["timeout", "webhooks"]);
    all_covered(
        "Webhook",
        &["name", "url", "events", "format", "signing_secret"],
    );
    let json_hook = Receiver::start(false);
    let slack_hook = Receiver::start(false);
    let discord_hook = Receiver::start(false);
    let hung = Receiver::start(true);
    let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let spec = format!(
        "{HEAD}secrets:
  HOOK_KEY:
    description: the webhook key
notifications:
  timeout: 2s
  webhooks:
    - name: ops
      url: {}?team=ops
      events: [succeeded]
      format: json
      signing_secret: HOOK_KEY
    - name: chat
      url: {}
      events: [started]
      format: slack
    - name: pager
      url: {}
      events: [started, succeeded]
      format: discord
    - name: slow
      url: {}
      events: [started]
",
        json_hook.url, slack_hook.url, discord_hook.url, hung.url
    );
    let p = Project::with_spec(&spec, &[(".env", &format!("HOOK_KEY={key}\n"))]);
    let start = std::time::Instant::now();
    ok(&p.apply());
    let took = start.elapsed();

    // url: its path and query reach the receiver.
    let hits = json_hook.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].target, "/hook?team=ops");
    // events: only the subscribed ones (succeeded here, started there).
    assert_eq!(hits[0].json()["event"], "succeeded");
    // format: json is Fabrik's document, slack a `text` message, discord
    // a `content` message.
    assert_eq!(hits[0].json()["deployment"], "shop");
    let slack = slack_hook.hits();
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert!(
        slack[0].json()["text"]
            .as_str()
            .unwrap()
            .contains("started"),
        "{}",
        slack[0].body
    );
    let discord: Vec<String> = discord_hook
        .hits()
        .iter()
        .map(|h| h.json()["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(discord.len(), 2, "{discord:?}");
    assert!(discord[0].contains("started") && discord[1].contains("succeeded"));
    // signing_secret: a Standard Webhooks signature the reference
    // verifier accepts; unsigned webhooks carry none.
    verify_with_reference(key, &hits[0]).unwrap();
    assert!(slack[0].header("webhook-signature").is_none());
    // timeout: a receiver that never answers is given up after
    // `notifications.timeout`, and the run does not wait longer.
    assert!(!hung.hits().is_empty(), "the hung receiver got the event");
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    // name: the journal names each delivery by its webhook.
    let events = crate::support::journal_events(p.path());
    let channels: BTreeSet<(String, String)> = events
        .iter()
        .filter(|e| e["type"] == "notification_sent" || e["type"] == "notification_failed")
        .map(|e| {
            (
                e["payload"]["channel"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = [
        ("ops", "notification_sent"),
        ("chat", "notification_sent"),
        ("pager", "notification_sent"),
        ("slow", "notification_failed"),
    ]
    .iter()
    .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
    .collect();
    assert_eq!(channels, expected);
    let failed = events
        .iter()
        .find(|e| e["type"] == "notification_failed")
        .unwrap();
    assert!(
        failed["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("notifications.timeout"),
        "{failed}"
    );
}
