//! Webhooks through the binary: which events a run sends, that deliveries
//! never hold a run up, and that their signatures are Standard Webhooks
//! that the reference verifier accepts.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Project, Spec, of_type};
use crate::support::{Receiver, verify_with_reference};

/// The `shop` spec with one webhook.
fn with_webhook(url: &str, extra: &str) -> String {
    format!(
        "{}notifications:\n{extra}  webhooks:\n    - name: ops\n      url: {url}\n",
        Spec::default().yaml()
    )
}

#[test]
fn a_run_that_failed_and_rolled_back_sends_failed() {
    // The events `fabrik init` and docs/spec.md show.
    let subscribed = "      events: [succeeded, failed, needs_attention]\n";
    let hook = Receiver::start(false);
    let auto = super::Policies {
        coolify: super::Policy::Auto,
        dns: super::Policy::Auto,
        monitors: super::Policy::Auto,
    };
    let p = Project::new(&Spec::with_policies(auto));
    let yaml = format!(
        "{}notifications:\n  webhooks:\n    - name: ops\n      url: {}\n{subscribed}",
        Spec::with_policies(auto).yaml(),
        hook.url
    );
    std::fs::write(p.path().join("spec.yaml"), yaml).unwrap();
    // The deployment fails and everything is rolled back.
    p.apply(Some("deploy_fail=true"), &[]).expect(5);
    let hits = hook.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].json()["event"], "failed");
    let events = p.events();
    let sent = of_type(&events, "notification_sent");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["payload"]["event"], "failed");

    // With the default policies DNS waits for a person: the same webhook
    // hears `needs_attention`, once (its most specific event).
    let hook = Receiver::start(false);
    let q = Project::new(&Spec::default());
    std::fs::write(
        q.path().join("spec.yaml"),
        with_webhook(&hook.url, "") + subscribed,
    )
    .unwrap();
    q.apply(Some("deploy_fail=true"), &[]).expect(6);
    let got: Vec<Value> = hook
        .hits()
        .iter()
        .map(|h| h.json()["event"].clone())
        .collect();
    assert_eq!(got, vec![Value::from("needs_attention")]);
}

#[test]
fn a_hung_webhook_never_holds_the_run_up() {
    let hook = Receiver::start(true);
    let p = Project::new(&Spec::default());
    let yaml = with_webhook(&hook.url, "  timeout: 2s\n");
    std::fs::write(p.path().join("spec.yaml"), yaml).unwrap();
    let start = Instant::now();
    p.apply(None, &[]).expect(0);
    let took = start.elapsed();
    // Before: every event waited for the endpoint, retries included
    // (about 93 s each with the default request timeout).
    assert!(took < Duration::from_secs(20), "the run took {took:?}");
    let events = p.events();
    let failed = of_type(&events, "notification_failed");
    assert_eq!(failed.len(), 2, "started and succeeded: {failed:?}");
    assert!(
        failed[0]["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("notifications.timeout"),
        "{failed:?}"
    );
    // The first change came before the started notification was settled.
    let seq = |t: &str| {
        events
            .iter()
            .find(|e| e["type"] == t)
            .map(|e| e["seq"].as_u64().unwrap())
            .unwrap()
    };
    assert!(seq("resource_intent") < seq("notification_failed"));
}

#[test]
fn signatures_are_standard_webhooks_that_the_reference_verifier_accepts() {
    let hook = Receiver::start(false);
    let p = Project::new(&Spec::default());
    let key = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let yaml = with_webhook(&hook.url, "")
        + "      signing_secret: HOOK_KEY\nsecrets:\n  HOOK_KEY:\n    description: the webhook key\n";
    std::fs::write(p.path().join("spec.yaml"), yaml).unwrap();
    std::fs::write(p.path().join(".env"), format!("HOOK_KEY={key}\n")).unwrap();
    p.apply(None, &[]).expect(0);
    let hits = hook.hits();
    assert_eq!(hits.len(), 2, "started and succeeded");
    let ids: Vec<&str> = hits
        .iter()
        .map(|h| h.header("webhook-id").unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "one id per event");
    for h in &hits {
        assert!(h.header("x-fabrik-signature").is_none());
        assert!(h.header("webhook-signature").unwrap().starts_with("v1,"));
        assert_eq!(h.json()["id"], h.header("webhook-id").unwrap());
        verify_with_reference(key, h).unwrap();
        // A tampered body is refused by the same verifier.
        let mut bad = h.clone();
        bad.body = bad.body.replace("shop", "sh0p");
        assert!(verify_with_reference(key, &bad).is_err());
    }
}

#[test]
fn discord_webhooks_get_content() {
    let hook = Receiver::start(false);
    let p = Project::new(&Spec::default());
    let yaml = with_webhook(&hook.url, "") + "      format: discord\n      events: [succeeded]\n";
    std::fs::write(p.path().join("spec.yaml"), yaml).unwrap();
    p.apply(None, &[]).expect(0);
    let hits = hook.hits();
    assert_eq!(hits.len(), 1);
    let body = hits[0].json();
    assert!(
        body["content"].as_str().unwrap().contains("succeeded"),
        "{body}"
    );
    assert_eq!(body["allowed_mentions"]["parse"], serde_json::json!([]));
}

#[test]
fn a_spec_without_checks_is_deployed_not_verified() {
    let hook = Receiver::start(false);
    let p = Project::new(&Spec::default());
    let yaml = with_webhook(&hook.url, "") + "      events: [succeeded]\n";
    let start = yaml.find("verify:\n").unwrap();
    let end = yaml.find("monitors:\n").unwrap();
    let yaml = format!("{}{}", &yaml[..start], &yaml[end..]);
    std::fs::write(p.path().join("spec.yaml"), yaml).unwrap();
    let ran = p.apply(None, &["--output", "json"]);
    ran.expect(0);
    let result: Value = ran
        .out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["kind"] == "result")
        .unwrap();
    assert_eq!(result["message"], "shop is deployed (no checks configured)");
    let hits = hook.hits();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(
        hits[0].json()["summary"],
        "shop: deployed (no checks configured)"
    );

    // The summary for people says so too.
    let spec = p.path().join("spec.yaml");
    let yaml = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, yaml.replace("whoami:v1.10", "whoami:v1.11")).unwrap();
    let ran = p.apply(None, &[]);
    ran.expect(0);
    assert!(
        ran.out
            .starts_with("shop is deployed (no checks configured) (run "),
        "{}",
        ran.out
    );
}

#[test]
fn a_failed_webhook_reads_as_a_notification_not_delivered() {
    // A port nothing listens on.
    let url = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let p = Project::new(&Spec::default());
    let yaml = with_webhook(&url, "  timeout: 2s\n") + "      events: [succeeded]\n";
    std::fs::write(p.path().join("spec.yaml"), yaml).unwrap();
    let ran = p.apply(None, &[]);
    ran.expect(0);
    let line = ran
        .err
        .lines()
        .find(|l| l.contains("notification") && l.starts_with("["))
        .unwrap_or_else(|| panic!("{}", ran.err));
    assert!(
        line.contains("the succeeded notification to ops was not delivered: "),
        "{line}"
    );
    assert!(!line.contains("failed: "), "{line}");
    assert!(!line.contains("send succeeded"), "{line}");
}
