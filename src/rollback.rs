//! Rollback planning: which steps undo a failed run, derived from the
//! journal alone.
//!
//! Pure. Only resources the run created (and therefore owns: their owner is
//! the run) are deleted, never one it found or adopted; resources it
//! updated are restored to the state the last completed run recorded;
//! resources it deleted are made again in the state they had. Steps run in reverse dependency order:
//! monitors, then the application, then DNS records.

use crate::event::{Action, Policy, ResourceKind, RollbackStep};
use crate::plan::Policies;
use crate::projection::{DeploymentView, ResourceStatus, RunView};

/// The policies a run was started with (the spec's, journaled), or the
/// defaults.
pub fn policies_of(run: &RunView) -> Policies {
    let get = |k: &str, d: Policy| run.options.policies.get(k).copied().unwrap_or(d);
    let d = Policies::default();
    Policies {
        coolify: get("coolify", d.coolify),
        dns: get("dns", d.dns),
        monitors: get("monitors", d.monitors),
    }
}

/// The steps that undo `run`.
pub fn plan(view: &DeploymentView, run: &RunView, policies: Policies) -> Vec<RollbackStep> {
    let mut steps = Vec::new();
    for key in run.created.iter().rev() {
        let Some(r) = view.resources.get(key) else {
            continue;
        };
        let owned = r.owner_run.as_ref() == Some(&run.run);
        if !owned || !matches!(r.status, ResourceStatus::Present | ResourceStatus::Pending) {
            continue;
        }
        steps.push(RollbackStep {
            resource: key.clone(),
            kind: r.kind,
            action: Action::Delete,
            remote_id: r.remote_id.clone(),
            policy: policies.of(r.kind),
            restore_to: None,
        });
    }
    // Creates whose outcome was never recorded: the resource may exist
    // under this run's mark; the executor looks it up before deleting.
    for r in view.resources.values() {
        if let Some(p) = &r.pending
            && p.run.as_ref() == Some(&run.run)
            && p.action == Action::Create
            && !steps.iter().any(|s| s.resource == r.key)
        {
            steps.push(RollbackStep {
                resource: r.key.clone(),
                kind: r.kind,
                action: Action::Delete,
                remote_id: r.remote_id.clone(),
                policy: policies.of(r.kind),
                restore_to: None,
            });
        }
    }
    for key in run.updated.iter().rev() {
        if run.created.contains(key) {
            continue;
        }
        let Some(r) = view.resources.get(key) else {
            continue;
        };
        let Some(committed) = r.committed.as_ref().filter(|c| c.run != run.run) else {
            continue;
        };
        if r.desired_hash == committed.desired_hash {
            continue;
        }
        steps.push(RollbackStep {
            resource: key.clone(),
            kind: r.kind,
            action: Action::Restore,
            remote_id: r.remote_id.clone(),
            policy: policies.of(r.kind),
            restore_to: committed.desired.clone(),
        });
    }
    // Updates whose outcome is unknown or was never recorded (a lost
    // answer, a crash, an application left half-updated by a failed env
    // write): the resource may have changed, so it is restored too.
    for r in view.resources.values() {
        if let Some(p) = &r.pending
            && p.run.as_ref() == Some(&run.run)
            && p.action == Action::Update
            && !steps.iter().any(|s| s.resource == r.key)
            && let Some(committed) = r.committed.as_ref().filter(|c| c.run != run.run)
        {
            steps.push(RollbackStep {
                resource: r.key.clone(),
                kind: r.kind,
                action: Action::Restore,
                remote_id: r.remote_id.clone(),
                policy: policies.of(r.kind),
                restore_to: committed.desired.clone(),
            });
        }
    }
    // What the run deleted (a DNS record whose type a new record at its
    // name replaced, a content that left a set, anything the spec no longer
    // had): made again in the state it had. Not what the run made itself
    // (deleted again by its own rollback, or by a later step).
    for key in run.deleted.iter().rev() {
        if run.created.contains(key) {
            continue;
        }
        let Some(r) = view.resources.get(key) else {
            continue;
        };
        if r.status != ResourceStatus::Deleted || steps.iter().any(|s| &s.resource == key) {
            continue;
        }
        let Some(before) = r.desired.clone() else {
            continue;
        };
        steps.push(RollbackStep {
            resource: key.clone(),
            kind: r.kind,
            action: Action::Restore,
            remote_id: r.remote_id.clone(),
            policy: policies.of(r.kind),
            restore_to: Some(before),
        });
    }
    steps.sort_by_key(|s| std::cmp::Reverse(rank(s.kind)));
    steps
}

fn rank(kind: ResourceKind) -> u8 {
    kind.creation_rank()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ResourceKey;
    use crate::generate::{Shape, generate};
    use crate::store::EventStore;
    use crate::store::memory::MemoryStore;

    #[test]
    fn only_what_the_run_created_is_deleted_in_reverse_order() {
        let store = MemoryStore::new();
        generate(
            Shape {
                deployments: 1,
                runs: 1,
                records: 2,
                seed: 5,
            },
            |b| {
                store
                    .append(&b.deployment, crate::id::StreamVersion(0), &b.events)
                    .unwrap();
            },
        );
        let d = store.deployments().unwrap().remove(0);
        let view = store.deployment(&d).unwrap().unwrap();
        let run = store.runs(&d).unwrap().remove(0);
        let steps = plan(&view, &run, Policies::default());
        let live = view.live_resources().len();
        assert_eq!(steps.len(), live);
        let kinds: Vec<_> = steps.iter().map(|s| s.kind).collect();
        let mut sorted = kinds.clone();
        sorted.sort_by_key(|k| std::cmp::Reverse(k.creation_rank()));
        assert_eq!(kinds, sorted, "monitors first, DNS last");
        assert!(steps.iter().all(|s| s.action == Action::Delete));
        let dns: Vec<_> = steps
            .iter()
            .filter(|s| s.kind == ResourceKind::DnsRecord)
            .collect();
        assert!(dns.iter().all(|s| s.policy == Policy::Manual));
        // A resource some other run owns is never in the plan.
        let other = crate::id::RunId::from_u128(99);
        let mut foreign = run.clone();
        foreign.run = other;
        assert!(plan(&view, &foreign, Policies::default()).is_empty());
        let _ = ResourceKey::new("x");
    }
}
