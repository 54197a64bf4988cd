//! DNS checks through the binary against the sandbox, as production
//! answers them: TXT and CNAME answers compared canonically, an empty
//! `expect` compared with the spec's records, proxied names with
//! Cloudflare's edge addresses.

use serde_json::{Value, json};

use super::{LiveSandbox, Project, Spec, of_type};
use fabrik::sandbox::FaultConfig;

/// The `shop` spec (`tag` for its image) with `records` (YAML list items)
/// in place of its DNS records and `checks` as `verify.dns`.
fn spec(tag: &'static str, records: &str, checks: &str) -> String {
    let yaml = Spec {
        tag,
        cname: false,
        ..Spec::default()
    }
    .yaml();
    let start = yaml.find("  records:\n").unwrap() + "  records:\n".len();
    let end = yaml.find("verify:\n  timeout: 1s\n").unwrap() + "verify:\n  timeout: 1s\n".len();
    format!(
        "{}{records}verify:\n  timeout: 1s\n  dns:\n{checks}{}",
        &yaml[..start],
        &yaml[end..]
    )
}

fn write(p: &Project, yaml: &str) {
    std::fs::write(p.path().join("spec.yaml"), yaml).unwrap();
}

const A: &str = "    - type: A\n      name: shop.example.com\n      content: 203.0.113.10\n";

/// The DNS checks a run journaled: (check, evidence, error), in order.
fn dns_checks(events: &[Value]) -> Vec<(String, Value, Option<String>)> {
    events
        .iter()
        .filter(|e| e["type"] == "verification_passed" || e["type"] == "verification_failed")
        .map(|e| &e["payload"])
        .filter(|p| p["check"].as_str().unwrap().starts_with("dns "))
        .map(|p| {
            (
                p["check"].as_str().unwrap().to_owned(),
                p["evidence"].clone(),
                p["error"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn answers(evidence: &Value) -> Vec<String> {
    evidence["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// Changes a record of the world by hand, as a person in Cloudflare's
/// dashboard would (the record keeps Fabrik's mark).
fn edit_record(p: &Project, kind: &str, name: &str, patch: Value) {
    let id = p.dump()["cloudflare"]["zones"][0]["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == kind && r["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    LiveSandbox::start(&p.data(), FaultConfig::default()).edit_record(&id, &patch);
}

#[test]
fn txt_and_cname_checks_pass_against_the_sandbox() {
    let p = Project::new(&Spec::default());
    let records = format!(
        "{A}    - type: CNAME\n      name: www.example.com\n      content: shop.example.com\n    - type: TXT\n      name: example.com\n      content: v=spf1 include:_spf.example.net -all\n    - type: AAAA\n      name: shop.example.com\n      content: 2001:DB8:0:0:0:0:0:10\n"
    );
    // Values as people write them: dig's trailing dot, the long form of
    // an IPv6 address, the text without its quotes.
    let checks = "    - name: example.com\n      type: TXT\n      expect: [\"v=spf1 include:_spf.example.net -all\"]\n    - name: example.com\n      type: TXT\n    - name: www.example.com\n      type: CNAME\n      expect: [shop.example.com.]\n    - name: www.example.com\n      type: CNAME\n    - name: shop.example.com\n      type: AAAA\n      expect: [\"2001:db8:0::10\"]\n";
    write(&p, &spec("v1.10", &records, checks));
    p.apply(None, &[]).expect(0);
    let checks = dns_checks(&p.events());
    let seen: Vec<(&str, Vec<String>)> = checks
        .iter()
        .map(|(c, ev, err)| {
            assert_eq!(err, &None, "{c}: {ev}");
            (c.as_str(), answers(ev))
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                "dns TXT example.com",
                vec!["v=spf1 include:_spf.example.net -all".to_owned()]
            ),
            (
                "dns TXT example.com",
                vec!["v=spf1 include:_spf.example.net -all".to_owned()]
            ),
            (
                "dns CNAME www.example.com",
                vec!["shop.example.com".to_owned()]
            ),
            (
                "dns CNAME www.example.com",
                vec!["shop.example.com".to_owned()]
            ),
            ("dns AAAA shop.example.com", vec!["2001:db8::10".to_owned()]),
        ]
    );
    assert_eq!(
        checks[1].1["compared_with"],
        "the spec's TXT records: v=spf1 include:_spf.example.net -all"
    );
}

#[test]
fn an_empty_expect_fails_when_the_world_holds_another_record_than_the_spec() {
    let p = Project::new(&Spec::default());
    let check = "    - name: shop.example.com\n";
    write(&p, &spec("v1.10", A, check));
    p.apply(None, &[]).expect(0);
    let first = dns_checks(&p.events());
    assert_eq!(
        first[0].1["compared_with"],
        "the spec's A records: 203.0.113.10"
    );
    // Someone points the name elsewhere by hand; a run that plans from
    // the journal alone does not see it, its verification does.
    edit_record(
        &p,
        "A",
        "shop.example.com",
        json!({"content": "198.51.100.7"}),
    );
    write(&p, &spec("v1.11", A, check));
    let ran = p.apply(None, &["--refresh=false"]);
    assert_ne!(ran.code, 0, "{}", ran.out);
    let events = p.events();
    let failed = of_type(&events, "verification_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let payload = &failed[0]["payload"];
    assert_eq!(
        payload["error"],
        "shop.example.com resolves to 198.51.100.7 (A), but the spec's records say 203.0.113.10"
    );
    assert_eq!(answers(&payload["evidence"]), vec!["198.51.100.7"]);
}

#[test]
fn a_proxied_record_is_checked_against_cloudflare_s_addresses() {
    let p = Project::new(&Spec::default());
    let proxied = "    - type: A\n      name: shop.example.com\n      content: 203.0.113.10\n      proxied: true\n";
    // A proxied name also answers AAAA (Cloudflare's IPv6 addresses),
    // with no AAAA record in the spec.
    let both = "    - name: shop.example.com\n    - name: shop.example.com\n      type: AAAA\n";
    write(&p, &spec("v1.10", proxied, both));
    p.apply(None, &[]).expect(0);
    let checks = dns_checks(&p.events());
    assert_eq!(checks.len(), 2, "{checks:?}");
    for (check, evidence, error) in &checks {
        assert_eq!(error, &None, "{check}");
        assert_eq!(
            evidence["compared_with"],
            "Cloudflare's edge addresses (shop.example.com is proxied)"
        );
        let seen = answers(evidence);
        assert!(!seen.is_empty(), "{check}: {evidence}");
        for ip in seen {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            assert!(fabrik::spec::model::cloudflare_edge(ip), "{check}: {ip}");
        }
    }
    // Proxying switched off by hand: resolvers now get the origin, which
    // is not what the spec asks for.
    edit_record(&p, "A", "shop.example.com", json!({"proxied": false}));
    write(
        &p,
        &spec("v1.11", proxied, "    - name: shop.example.com\n"),
    );
    let ran = p.apply(None, &["--refresh=false"]);
    assert_ne!(ran.code, 0, "{}", ran.out);
    let events = p.events();
    let failed = of_type(&events, "verification_failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        failed[0]["payload"]["error"],
        "shop.example.com is proxied, but resolves to 203.0.113.10 outside Cloudflare's edge addresses (the zone may not be active, or the record not proxied)"
    );
}

#[test]
fn the_origin_address_of_a_proxied_record_is_refused_as_an_expected_answer() {
    let p = Project::new(&Spec::default());
    let proxied = "    - type: A\n      name: shop.example.com\n      content: 203.0.113.10\n      proxied: true\n    - type: CNAME\n      name: www.example.com\n      content: shop.example.com\n      proxied: true\n";
    let checks = "    - name: shop.example.com\n      expect: [203.0.113.10]\n    - name: www.example.com\n      type: CNAME\n";
    write(&p, &spec("v1.10", proxied, checks));
    let ran = p.run(None, &["validate", "spec.yaml"]);
    ran.expect(4);
    assert!(
        ran.err.contains("`203.0.113.10` can never be an answer: `shop.example.com` is proxied, so resolvers get Cloudflare's addresses"),
        "{}",
        ran.err
    );
    assert!(ran.err.contains("remove `expect`"), "{}", ran.err);
    assert!(
        ran.err
            .contains("`www.example.com` is proxied, so Cloudflare flattens its CNAME"),
        "{}",
        ran.err
    );
}
