//! A permanent failure in each phase of an apply, under each kind of
//! policy: the world afterwards is what the policies predict, the exit code
//! says whether a person is needed, and the printed commands finish the
//! job.

use std::collections::BTreeSet;

use super::{Policies, Policy, Project, Ran, Spec, of_type, shop_resources};

/// Where the run fails, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// One DNS record is created, then every further create fails (the
    /// sandbox's `creates_before_error=1`, retries included): the run
    /// fails in PROVISIONING with one record made, and the application
    /// (created beside the records, on Coolify) made but not deployed.
    Provisioning,
    /// Every Coolify deployment ends `failed` (`deploy_fail`): both
    /// records and the application exist.
    Deploying,
    /// The app answers its health check with 503 (`health_fail`): both
    /// records and the deployed application exist; the monitor, created
    /// only after verification, does not.
    Verifying,
}

impl Phase {
    fn state(self) -> &'static str {
        match self {
            Self::Provisioning => "PROVISIONING",
            Self::Deploying => "DEPLOYING",
            Self::Verifying => "VERIFYING",
        }
    }

    fn faults(self) -> Option<&'static str> {
        match self {
            // The second record's create fails (after its retries); the
            // first is in place.
            Self::Provisioning => Some("creates_before_error=1,target=cloudflare"),
            Self::Deploying => Some("deploy_fail=true"),
            Self::Verifying => Some("health_fail=true"),
        }
    }

    /// What the run created before it failed: (kind, world line, journal
    /// key).
    fn created(self, spec: &Spec) -> Vec<(&'static str, String, &'static str)> {
        let keys = [
            "dns:A:shop.example.com",
            "dns:CNAME:www.example.com",
            "app",
            "monitor:shop",
        ];
        let all: Vec<_> = shop_resources(spec)
            .into_iter()
            .zip(keys)
            .map(|((kind, line), key)| (kind, line, key))
            .collect();
        let n = match self {
            Self::Provisioning => 1,
            Self::Deploying | Self::Verifying => 3,
        };
        all.into_iter().take(n).collect()
    }
}

const DNS_AUTO: Policies = Policies {
    coolify: Policy::Auto,
    dns: Policy::Auto,
    monitors: Policy::Auto,
};
const COOLIFY_NEVER: Policies = Policies {
    coolify: Policy::Never,
    dns: Policy::Manual,
    monitors: Policy::Auto,
};
const ONLY_APP_KEPT: Policies = Policies {
    coolify: Policy::Never,
    dns: Policy::Auto,
    monitors: Policy::Auto,
};

/// Fails `phase` under `policies` (or with `--no-rollback`) and checks the
/// world, the exit code, the journal and the printed commands; then runs
/// the printed `fabrik rollback` (dry run first) and checks the world
/// again.
fn scenario(phase: Phase, policies: Policies, no_rollback: bool) {
    let spec = Spec::with_policies(policies);
    let p = Project::new(&spec);
    let flags: &[&str] = if no_rollback { &["--no-rollback"] } else { &[] };
    let ran = p.apply(phase.faults(), flags);

    // The prediction, from the policies alone. DNS records are created
    // concurrently: when only one create may succeed (provisioning), the
    // one that did is read from the journal; it must be exactly one. The
    // application is created beside them.
    let mut created = phase.created(&spec);
    if phase == Phase::Provisioning {
        let made: Vec<String> = p
            .events()
            .iter()
            .filter(|e| e["type"] == "resource_created")
            .map(|e| e["payload"]["resource"].as_str().unwrap().to_owned())
            .collect();
        let records: Vec<&String> = made.iter().filter(|k| k.starts_with("dns:")).collect();
        assert_eq!(
            records.len(),
            1,
            "one record made before the failure: {made:?}"
        );
        assert!(made.iter().any(|k| k == "app"), "{made:?}");
        created = Phase::Deploying
            .created(&spec)
            .into_iter()
            .filter(|(_, _, key)| key == records[0] || *key == "app")
            .collect();
        assert_eq!(created.len(), 2, "{made:?}");
    }
    let undone_now = |kind: &str| !no_rollback && policies.of(kind) == Policy::Auto;
    let mut predicted = BTreeSet::new();
    predicted.extend(
        created
            .iter()
            .filter(|(k, _, _)| !undone_now(k))
            .map(|(_, line, _)| line.clone()),
    );
    let manual = created
        .iter()
        .any(|(k, _, _)| policies.of(k) == Policy::Manual);
    let needs_person = no_rollback || manual;

    ran.expect(if needs_person { 6 } else { 5 });
    assert!(
        ran.out
            .starts_with(&format!("failed in {}:", phase.state())),
        "{}",
        ran.out
    );
    assert_eq!(p.world(), predicted, "world after the failed run");

    let run = ran.run_id();
    let expected_next: Vec<String> = if no_rollback {
        vec![
            format!("fabrik resume {run}"),
            format!("fabrik rollback {run}"),
        ]
    } else if manual {
        vec![format!("fabrik rollback {run}")]
    } else {
        Vec::new()
    };
    assert_eq!(ran.next(), expected_next, "{}", ran.out);
    for (kind, _, key) in &created {
        if !no_rollback && policies.of(kind) == Policy::Never {
            assert!(
                ran.out.contains("kept by policy never") && ran.out.contains(key),
                "{key} is listed as kept: {}",
                ran.out
            );
        }
    }

    // The journal: the plan names every created resource with its policy,
    // monitors before the application before DNS records.
    let events = p.events();
    let planned = of_type(&events, "rollback_planned");
    if no_rollback {
        assert!(planned.is_empty(), "--no-rollback plans nothing");
        assert!(of_type(&events, "resource_deleted").is_empty());
    } else {
        assert_eq!(planned.len(), 1);
        let steps = planned[0]["payload"]["steps"].as_array().unwrap();
        let got: BTreeSet<(String, String)> = steps
            .iter()
            .map(|s| {
                (
                    s["resource"].as_str().unwrap().to_owned(),
                    s["policy"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: BTreeSet<(String, String)> = created
            .iter()
            .map(|(k, _, key)| ((*key).to_owned(), policy_word(policies.of(k))))
            .collect();
        assert_eq!(got, want, "rollback_planned steps");
        let rank = |s: &serde_json::Value| match s["kind"].as_str().unwrap() {
            "monitor" => 0,
            "application" => 1,
            _ => 2,
        };
        let ranks: Vec<_> = steps.iter().map(rank).collect();
        assert!(ranks.is_sorted(), "reverse dependency order: {steps:?}");
        for s in of_type(&events, "rollback_step_skipped") {
            if s["payload"]["policy"] == "manual" {
                assert_eq!(
                    s["payload"]["command"],
                    format!("fabrik rollback {run}"),
                    "a pending manual step names the command that finishes it"
                );
            }
        }
    }
    p.assert_journal_verifies();

    let Some(rollback) = expected_next
        .iter()
        .find(|c| c.starts_with("fabrik rollback"))
    else {
        return;
    };
    // Without a terminal, nothing happens unless confirmed with --yes.
    let before = p.dump();
    let words: Vec<&str> = rollback.split_whitespace().skip(1).collect();
    let refused = p.run_unconfirmed(&words);
    refused.expect(2);
    assert!(refused.err.contains("--yes"), "{}", refused.err);
    assert_eq!(
        p.dump(),
        before,
        "an unconfirmed rollback changed the world"
    );
    // The dry run prints what is left, from the journal alone, and touches
    // nothing.
    let dry = p.run_printed(rollback, &["--dry-run"]);
    dry.expect(0);
    let pending: Vec<_> = created.iter().filter(|(k, _, _)| !undone_now(k)).collect();
    assert!(
        dry.out.contains(&format!(
            "rollback of run {run} (shop): {} step",
            pending.len()
        )),
        "{}",
        dry.out
    );
    for (_, _, key) in &pending {
        assert!(dry.out.contains(key), "{key} in the plan: {}", dry.out);
    }
    assert_eq!(p.dump(), before, "--dry-run changed the world");
    let by_name = p.run(None, &["rollback", "shop", "--dry-run"]);
    by_name.expect(0);
    assert_eq!(by_name.out, dry.out, "the deployment's latest failed run");

    // The printed command finishes the job: everything this run created
    // is gone except what the policy says never to remove.
    p.run_printed(rollback, &["--yes"]).expect(0);
    let mut after = BTreeSet::new();
    after.extend(
        created
            .iter()
            .filter(|(k, _, _)| policies.of(k) == Policy::Never)
            .map(|(_, line, _)| line.clone()),
    );
    assert_eq!(p.world(), after, "world after fabrik rollback");
    // Nothing is left to do, and the journal is intact.
    let again = p.run_printed(rollback, &["--yes"]);
    again.expect(0);
    assert_eq!(p.world(), after);
    p.assert_journal_verifies();
}

fn policy_word(p: Policy) -> String {
    match p {
        Policy::Auto => "auto",
        Policy::Manual => "manual",
        Policy::Never => "never",
    }
    .to_owned()
}

macro_rules! scenarios {
    ($($name:ident: $phase:expr, $policies:expr, $no_rollback:expr;)*) => {
        $(
            #[test]
            fn $name() {
                scenario($phase, $policies, $no_rollback);
            }
        )*
    };
}

scenarios! {
    provisioning_fails_with_default_policies: Phase::Provisioning, Policies::DEFAULT, false;
    provisioning_fails_with_dns_auto: Phase::Provisioning, DNS_AUTO, false;
    provisioning_fails_with_coolify_never: Phase::Provisioning, COOLIFY_NEVER, false;
    provisioning_fails_without_rollback: Phase::Provisioning, Policies::DEFAULT, true;
    deploying_fails_with_default_policies: Phase::Deploying, Policies::DEFAULT, false;
    deploying_fails_with_dns_auto: Phase::Deploying, DNS_AUTO, false;
    deploying_fails_with_coolify_never: Phase::Deploying, COOLIFY_NEVER, false;
    deploying_fails_keeping_only_the_app: Phase::Deploying, ONLY_APP_KEPT, false;
    deploying_fails_without_rollback: Phase::Deploying, Policies::DEFAULT, true;
    verifying_fails_with_default_policies: Phase::Verifying, Policies::DEFAULT, false;
    verifying_fails_with_dns_auto: Phase::Verifying, DNS_AUTO, false;
    verifying_fails_with_coolify_never: Phase::Verifying, COOLIFY_NEVER, false;
    verifying_fails_keeping_only_the_app: Phase::Verifying, ONLY_APP_KEPT, false;
    verifying_fails_without_rollback: Phase::Verifying, Policies::DEFAULT, true;
}

/// `--no-rollback` prints `fabrik resume`: once the cause is gone, that
/// exact command finishes the deployment, with no duplicate.
#[test]
fn after_no_rollback_the_printed_resume_finishes_the_job() {
    let spec = Spec::default();
    let p = Project::new(&spec);
    let ran = p.apply(Phase::Deploying.faults(), &["--no-rollback"]);
    ran.expect(6);
    let resume = ran
        .next()
        .into_iter()
        .find(|c| c.starts_with("fabrik resume"))
        .expect("a resume command");
    let done = p.run_printed(&resume, &[]);
    done.expect(0);
    let full: BTreeSet<String> = shop_resources(&spec).into_iter().map(|(_, l)| l).collect();
    assert_eq!(p.world(), full);
    let dump = p.dump();
    let app = &dump["coolify"]["applications"][0];
    assert_eq!(app["serving"], "image traefik/whoami:v1.10");
    // Nothing is left to resume or to apply.
    p.run_printed(&resume, &[]).expect(0);
    let again = p.apply(None, &[]);
    again.expect(0);
    assert!(again.out.contains("no changes"), "{}", again.out);
    p.assert_journal_verifies();
}

/// An expired certificate fails verification like a failing health check.
#[test]
fn an_expired_certificate_fails_verification_and_is_rolled_back() {
    let p = Project::new(&Spec::with_policies(DNS_AUTO));
    let ran = p.apply(Some("cert_days=-1"), &[]);
    ran.expect(5);
    assert!(ran.out.starts_with("failed in VERIFYING:"), "{}", ran.out);
    assert_eq!(p.world(), BTreeSet::new());
}

/// A failed deployment kept by `coolify: never` is deployed by the next
/// apply of the same spec, although nothing in the spec changed.
#[test]
fn an_application_kept_undeployed_is_deployed_by_the_next_apply() {
    let spec = Spec::with_policies(ONLY_APP_KEPT);
    let p = Project::new(&spec);
    p.apply(Phase::Deploying.faults(), &[]).expect(5);
    assert_eq!(
        p.dump()["coolify"]["applications"][0]["serving"],
        serde_json::Value::Null
    );
    let ran = p.apply(None, &[]);
    ran.expect(0);
    assert!(ran.out.contains("deployed and verified"), "{}", ran.out);
    let dump = p.dump();
    assert_eq!(
        dump["coolify"]["applications"][0]["serving"],
        "image traefik/whoami:v1.10"
    );
    let full: BTreeSet<String> = shop_resources(&spec).into_iter().map(|(_, l)| l).collect();
    assert_eq!(super::world(&dump), full);
    // Now it is deployed: the same spec has nothing left to do.
    let again = p.apply(None, &[]);
    again.expect(0);
    assert!(again.out.contains("no changes"), "{}", again.out);
}

/// Ctrl-C during verification stops the run with nothing undone (exit 6,
/// naming `fabrik resume` and `fabrik rollback`); the printed rollback
/// takes the interrupted run over and undoes all it created, manual steps
/// included (a person asked).
#[test]
fn the_printed_rollback_undoes_an_interrupted_run() {
    use std::io::{BufRead as _, BufReader};
    use std::process::Stdio;

    let spec = Spec::default();
    let p = Project::new(&spec);
    let mut child = p
        .command(Phase::Verifying.faults())
        .args(["apply", "spec.yaml", "--sandbox"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Verification fails for one second before the run gives up: interrupt
    // it as soon as it starts.
    let mut progress = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while progress.read_line(&mut line).unwrap() > 0 && !line.contains("VERIFYING") {
        line.clear();
    }
    assert!(line.contains("VERIFYING"), "the run reached VERIFYING");
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let ran = Ran {
        code: out.status.code().unwrap_or(-1),
        out: crate::support::stdout(&out),
        err: String::new(),
    };
    ran.expect(6);
    assert!(
        ran.out.starts_with("interrupted during VERIFYING"),
        "{}",
        ran.out
    );
    let run = ran.run_id();
    assert_eq!(
        ran.next(),
        [
            format!("fabrik resume {run}"),
            format!("fabrik rollback {run}")
        ]
    );
    let created: BTreeSet<String> = Phase::Verifying
        .created(&spec)
        .into_iter()
        .map(|(_, l, _)| l)
        .collect();
    assert_eq!(p.world(), created, "nothing was undone");

    let rolled = p.run_printed(&ran.next()[1], &["--yes"]);
    rolled.expect(0);
    assert_eq!(p.world(), BTreeSet::new());
    let history = p.run(None, &["--output", "json", "history", "shop"]);
    let h: serde_json::Value = serde_json::from_str(&history.out).unwrap();
    assert_eq!(
        h["runs"][0]["state"], "ROLLED_BACK",
        "the run itself is undone"
    );
    p.run_printed(&ran.next()[1], &["--yes"]).expect(0);
    p.assert_journal_verifies();
}

/// What a person sees when a deployment fails with the default policies,
/// and the plan `--dry-run` shows them.
#[test]
fn a_failed_run_reads_like_this() {
    // One record: two are created in parallel, in no fixed order.
    let p = Project::new(&Spec {
        cname: false,
        ..Spec::default()
    });
    let ran = p.apply(Phase::Deploying.faults(), &[]);
    ran.expect(6);
    let dry = p.run_printed(&ran.next()[0], &["--dry-run"]);
    dry.expect(0);
    let mut settings = crate::support::insta_settings("faults");
    settings.add_filter(r"\b[0-9a-f]{32}\b", "[ID]");
    settings.add_filter(r"\b[0-9a-z]{24}\b", "[UUID]");
    settings.bind(|| {
        insta::assert_snapshot!("deploy_failed_default_policies", ran.out);
        insta::assert_snapshot!("rollback_dry_run", dry.out);
    });
}
