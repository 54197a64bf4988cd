//! Every command through the engine, in process, against the fakes.

use fabrik::engine::Interrupt;
use fabrik::engine::command::{destroy, gc, resume, rollback};
use fabrik::event::{RunOutcome, RunState};
use fabrik::exit;
use fabrik::ownership::OwnershipMark;
use fabrik::provider::fake::{FakeApp, Fault};
use fabrik::provider::{AppDesired, AppKind, AppSource, DeploymentState};

use super::{Bench, InterruptAt, SPEC};

#[tokio::test]
async fn apply_creates_everything_and_a_second_apply_changes_nothing() {
    let b = Bench::new(SPEC);
    let r = b.apply().await;
    assert_eq!(r.exit_code, exit::OK, "{}", r.message);
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(b.counts(), (1, 1, 1));
    // Refreshed (the default): the remote side is read, nothing written.
    let calls = b.world.state().calls.len();
    let again = b.apply().await;
    assert_eq!(again.outcome, RunOutcome::NoChanges);
    let made: Vec<&str> = b.world.state().calls[calls..].to_vec();
    assert!(
        !made.is_empty(),
        "a refreshed apply looks at the remote side"
    );
    let reads = [
        "preflight",
        "find_zone",
        "find_monitors",
        "find_app",
        "app_drift",
        "list_records",
    ];
    assert!(
        made.iter().all(|c| reads.contains(c)),
        "a no-change apply wrote: {made:?}"
    );
    // Offline (`--refresh=false`): no provider call at all.
    let calls = b.world.state().calls.len();
    let offline = b.apply_as(b.request(), false, false).await.unwrap();
    assert_eq!(offline.outcome, RunOutcome::NoChanges);
    assert_eq!(
        b.world.state().calls.len(),
        calls,
        "an offline apply calls no provider"
    );
}

#[tokio::test]
async fn drift_made_by_hand_is_seen_and_repaired_by_the_next_apply() {
    let b = Bench::new(SPEC);
    b.apply().await;
    // The application is deleted in Coolify.
    b.world.state().apps.clear();
    let r = b.apply().await;
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{}", r.message);
    assert_eq!(r.changes, vec!["app: create".to_owned()]);
    assert_eq!(b.counts(), (1, 1, 1));
}

#[tokio::test]
async fn an_update_changes_the_application_in_place_and_deploys_it() {
    let b = Bench::new(SPEC);
    b.apply().await;
    let uuid = b.world.state().apps.keys().next().unwrap().clone();
    b.edit("whoami:v1.10", "whoami:v1.11");
    let r = b.apply().await;
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{}", r.message);
    assert_eq!(r.changes, vec!["app: update".to_owned()]);
    let s = b.world.state();
    let app = &s.apps[&uuid];
    assert_eq!(
        app.desired.source,
        AppSource::DockerImage {
            image: "traefik/whoami".into(),
            tag: Some("v1.11".into())
        }
    );
    assert_eq!(app.deployments.len(), 2);
}

#[tokio::test]
async fn a_failed_deployment_rolls_back_by_each_policy() {
    for (policy, outcome, code, left) in [
        // The defaults: DNS records are left for `fabrik rollback`.
        (
            "",
            RunOutcome::NeedsAttention,
            exit::NEEDS_ATTENTION,
            (0, 1, 0),
        ),
        (
            "rollback:\n  dns: auto\n",
            RunOutcome::RolledBack,
            exit::ROLLED_BACK,
            (0, 0, 0),
        ),
        (
            "rollback:\n  coolify: never\n  dns: auto\n",
            RunOutcome::RolledBack,
            exit::ROLLED_BACK,
            (1, 0, 0),
        ),
    ] {
        let b = Bench::new(&format!("{SPEC}{policy}"));
        b.world.state().deploy_ends = Some(DeploymentState::Failed);
        let r = b.apply().await;
        assert_eq!(r.outcome, outcome, "{policy}: {}", r.message);
        assert_eq!(r.exit_code, code, "{policy}");
        assert_eq!(b.counts(), left, "{policy}: what is left");
    }
}

#[tokio::test]
async fn a_manual_rollback_is_finished_by_fabrik_rollback() {
    let b = Bench::new(SPEC);
    b.world.state().deploy_ends = Some(DeploymentState::Failed);
    let failed = b.apply().await;
    assert_eq!(failed.outcome, RunOutcome::NeedsAttention);
    assert_eq!(b.counts(), (0, 1, 0));
    let r = rollback::rollback(b.request(), "shop").await.unwrap();
    assert_eq!(r.outcome, RunOutcome::RolledBack, "{}", r.message);
    assert_eq!(r.exit_code, exit::OK);
    assert_eq!(b.counts(), (0, 0, 0));
}

#[tokio::test]
async fn a_failure_without_rollback_is_finished_by_resume_or_undone_by_rollback() {
    // Resume: the same spec applied again finishes the job.
    let b = Bench::new(SPEC);
    b.world.fail("deploy", Fault::Refused);
    let failed = b.apply_with(b.request(), true).await.unwrap();
    assert_eq!(
        failed.exit_code,
        exit::NEEDS_ATTENTION,
        "{}",
        failed.message
    );
    assert_eq!(b.counts(), (1, 1, 0));
    let r = resume::resume(b.request(), "shop").await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{}", r.message);
    assert_eq!(b.counts(), (1, 1, 1));

    // Rollback: what the failed run created is deleted.
    let b = Bench::new(SPEC);
    b.world.fail("deploy", Fault::Refused);
    b.apply_with(b.request(), true).await.unwrap();
    let r = rollback::rollback(b.request(), "shop").await.unwrap();
    assert_eq!(r.outcome, RunOutcome::RolledBack, "{}", r.message);
    assert_eq!(b.counts(), (0, 0, 0));
}

#[tokio::test]
async fn an_apply_stopped_by_ctrl_c_at_each_phase_is_finished_by_resume() {
    for stop_at in [
        "resource_created",
        "deploy_triggered",
        "verification_passed",
    ] {
        let b = Bench::new(SPEC);
        let interrupt = Interrupt::new();
        let observer = InterruptAt {
            event_type: stop_at,
            interrupt: interrupt.clone(),
        };
        let base = b.request_on(b.store.clone(), Box::new(observer), interrupt);
        let stopped = b.apply_with(base, false).await.unwrap();
        assert_eq!(stopped.exit_code, exit::NEEDS_ATTENTION, "{stop_at}");
        assert_eq!(
            stopped.next.first().map(String::as_str),
            Some(format!("fabrik resume {}", stopped.run.clone().unwrap()).as_str())
        );
        let r = resume::resume(b.request(), "shop").await.unwrap();
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{stop_at}: {}", r.message);
        assert_eq!(b.counts(), (1, 1, 1), "{stop_at}: no duplicate");
        let deployments: usize = b
            .world
            .state()
            .apps
            .values()
            .map(|a| a.deployments.len())
            .sum();
        assert_eq!(deployments, 1, "{stop_at}: one deployment");
    }
}

#[tokio::test]
async fn a_lost_create_is_found_by_its_mark_not_made_twice() {
    let b = Bench::new(SPEC);
    b.world.fail("create_app", Fault::LostAfterEffect);
    b.world.fail("create_record", Fault::LostAfterEffect);
    b.world.fail("create_monitor", Fault::LostAfterEffect);
    let r = b.apply().await;
    assert_eq!(r.outcome, RunOutcome::Succeeded, "{}", r.message);
    assert_eq!(b.counts(), (1, 1, 1));
}

#[tokio::test]
async fn destroy_deletes_what_the_deployment_owns_and_nothing_else() {
    let b = Bench::new(SPEC);
    b.apply().await;
    let stranger = OwnershipMark::new(
        fabrik::id::DeploymentId::new("other").unwrap(),
        fabrik::id::RunId::generate(),
    );
    plant_app(&b, "other-app", stranger);
    let r = destroy::destroy(b.request(), "shop").await.unwrap();
    assert_eq!(r.outcome, RunOutcome::Destroyed, "{}", r.message);
    assert_eq!(
        b.counts(),
        (1, 0, 0),
        "only the other deployment's app is left"
    );
    assert_eq!(b.view().latest_state, Some(RunState::Destroyed));
}

#[tokio::test]
async fn gc_lists_and_deletes_orphans_only() {
    let b = Bench::new(SPEC);
    b.apply().await;
    let orphan = OwnershipMark::new(
        fabrik::id::DeploymentId::new("gone").unwrap(),
        fabrik::id::RunId::generate(),
    );
    plant_app(&b, "gone-app", orphan);
    let env = b.dir.path().join(".env");
    let found = gc::gc(b.store.as_ref(), &b.world, &[], &env, &[], None)
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].name, "gone-app");
    assert!(!found[0].deleted);
    assert_eq!(b.counts(), (2, 1, 1));
    let chosen = found.iter().map(|o| o.remote_id.clone()).collect();
    let deleted = gc::gc(b.store.as_ref(), &b.world, &[], &env, &[], Some(&chosen))
        .await
        .unwrap();
    assert!(deleted[0].deleted);
    assert_eq!(b.counts(), (1, 1, 1), "the deployment's own resources stay");
}

fn plant_app(b: &Bench, name: &str, mark: OwnershipMark) {
    let desired = AppDesired {
        name: name.to_owned(),
        description: None,
        source: AppSource::DockerImage {
            image: "nginx".into(),
            tag: None,
        },
        domains: Vec::new(),
        ports: Vec::new(),
        health: None,
        env: Vec::new(),
    };
    b.world.state().apps.insert(
        format!("planted-{name}"),
        FakeApp {
            kind: AppKind::Application,
            name: name.to_owned(),
            desired,
            env: Default::default(),
            mark,
            deployments: Vec::new(),
        },
    );
}
