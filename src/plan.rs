//! The planner: desired resources + what the journal knows (+ what the
//! remote side showed, when refreshing) → dependency-ordered steps.
//!
//! Pure: no I/O, clock or randomness. The engine maps the spec to
//! [`Desired`] resources (secrets only as keyed fingerprints) and executes
//! the [`Plan`]; `fabrik plan` prints it.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::event::{Action, Policy, ResourceKey, ResourceKind, RollbackStep};
use crate::id::{DeploymentId, Digest};
use crate::projection::{DeploymentView, ResourceStatus};

/// One resource as the spec wants it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    /// Stable key (`dns:A:blog.example.com`, `app`, `monitor:health`).
    pub key: ResourceKey,
    /// Kind.
    pub kind: ResourceKind,
    /// The desired state, without secret values: secrets appear as
    /// `{"secret": NAME, "fingerprint": HEX}` objects, so that a changed
    /// secret changes the state without revealing anything.
    pub state: serde_json::Value,
    /// Digest of `state`.
    pub hash: Digest,
}

/// What the remote side showed for one resource (`--refresh`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observed {
    /// It exists and matches what the journal says.
    InSync,
    /// It exists but differs: the fields, with both values.
    Drifted(Vec<Drift>),
    /// It is gone.
    Missing,
}

impl Observed {
    /// A resource that exists, with the fields it shows otherwise: in sync
    /// when there are none.
    pub fn of(drift: Vec<Drift>) -> Self {
        if drift.is_empty() {
            Self::InSync
        } else {
            Self::Drifted(drift)
        }
    }
}

/// One field the remote side shows otherwise than the journal says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// Dotted path of the field (`image`, `content`, `env.API_KEY`).
    pub field: String,
    /// What the journal says (`None`: absent). Secrets appear only as
    /// `"(secret)"` or a fingerprint, never as a value.
    pub journal: Option<serde_json::Value>,
    /// What the remote side shows (`None`: absent).
    pub remote: Option<serde_json::Value>,
}

impl Drift {
    /// A field whose values are plain text.
    pub fn text(field: &str, journal: impl Into<String>, remote: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            journal: Some(serde_json::Value::String(journal.into())),
            remote: Some(serde_json::Value::String(remote.into())),
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepAction {
    /// Create the resource.
    Create,
    /// Change it in place.
    Update,
    /// Delete it (no longer in the spec).
    Delete,
    /// Leave it as it is.
    Noop,
}

/// One field that changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Dotted path of the field (`env.DB_PASSWORD`, `image`).
    pub path: String,
    /// Value before (none when added). Secrets are never shown.
    pub from: Option<serde_json::Value>,
    /// Value after (none when removed).
    pub to: Option<serde_json::Value>,
    /// True for a secret: people see only "changed".
    pub secret: bool,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The resource.
    pub key: ResourceKey,
    /// Its kind.
    pub kind: ResourceKind,
    /// What happens.
    pub action: StepAction,
    /// Its remote id, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_id: Option<String>,
    /// The fields that change (updates).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// Why (drift found by refresh, previous attempt failed, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What refresh found changed outside Fabrik, field by field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
}

/// What apply would do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The deployment.
    pub deployment: DeploymentId,
    /// Desired-state hash of the spec.
    pub spec_hash: Digest,
    /// Steps in execution order: DNS records, the application, monitors;
    /// deletions of resources removed from the spec come last, in reverse
    /// dependency order.
    pub steps: Vec<Step>,
    /// True when nothing would change and the spec is the one last applied:
    /// apply will not call any provider.
    pub no_changes: bool,
    /// The rollback this plan implies if the run fails: what each create or
    /// update would be undone by, with the policy that applies.
    pub rollback: Vec<RollbackStep>,
}

impl Plan {
    /// Number of steps that change something.
    pub fn change_count(&self) -> usize {
        self.steps
            .iter()
            .filter(|s| s.action != StepAction::Noop)
            .count()
    }

    /// Steps of one kind.
    pub fn steps_of(&self, kind: ResourceKind) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.kind == kind)
    }
}

/// The rollback policy of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    /// Coolify application.
    pub coolify: Policy,
    /// DNS records.
    pub dns: Policy,
    /// Monitors.
    pub monitors: Policy,
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            coolify: Policy::Auto,
            dns: Policy::Manual,
            monitors: Policy::Auto,
        }
    }
}

impl Policies {
    /// The policy for a kind.
    pub fn of(&self, kind: ResourceKind) -> Policy {
        match kind {
            ResourceKind::Application => self.coolify,
            ResourceKind::DnsRecord => self.dns,
            ResourceKind::Monitor => self.monitors,
        }
    }
}

/// Plans an apply.
pub fn plan(
    deployment: &DeploymentId,
    spec_hash: Digest,
    desired: &[Desired],
    view: Option<&DeploymentView>,
    observed: Option<&BTreeMap<ResourceKey, Observed>>,
    policies: Policies,
) -> Plan {
    let mut steps = Vec::new();
    let wanted: BTreeSet<&ResourceKey> = desired.iter().map(|d| &d.key).collect();
    let mut ordered: Vec<&Desired> = desired.iter().collect();
    ordered.sort_by(|a, b| (a.kind.creation_rank(), &a.key).cmp(&(b.kind.creation_rank(), &b.key)));
    for d in ordered {
        let current = view.and_then(|v| v.resources.get(&d.key));
        let seen = observed.and_then(|o| o.get(&d.key));
        let step = match current {
            Some(r) if r.exists() => {
                let remote_id = r.remote_id.clone();
                match seen {
                    Some(Observed::Missing) => Step {
                        key: d.key.clone(),
                        kind: d.kind,
                        action: StepAction::Create,
                        remote_id: None,
                        changes: diff(None, &d.state),
                        reason: Some("deleted outside fabrik (found by refresh)".to_owned()),
                        drift: Vec::new(),
                    },
                    Some(Observed::Drifted(drift)) => Step {
                        key: d.key.clone(),
                        kind: d.kind,
                        action: StepAction::Update,
                        remote_id,
                        changes: diff(r.desired.as_ref(), &d.state),
                        reason: Some(format!(
                            "changed outside fabrik: {} (found by refresh)",
                            drift
                                .iter()
                                .map(|f| f.field.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )),
                        drift: drift.clone(),
                    },
                    _ if r.desired_hash == Some(d.hash) && r.pending.is_none() => Step {
                        key: d.key.clone(),
                        kind: d.kind,
                        action: StepAction::Noop,
                        remote_id,
                        changes: Vec::new(),
                        reason: None,
                        drift: Vec::new(),
                    },
                    _ => Step {
                        key: d.key.clone(),
                        kind: d.kind,
                        action: StepAction::Update,
                        remote_id,
                        changes: diff(r.desired.as_ref(), &d.state),
                        reason: r
                            .last_error
                            .as_ref()
                            .filter(|_| r.desired_hash == Some(d.hash))
                            .map(|e| format!("the last attempt failed: {e}")),
                        drift: Vec::new(),
                    },
                }
            }
            _ => Step {
                key: d.key.clone(),
                kind: d.kind,
                action: StepAction::Create,
                remote_id: None,
                changes: diff(None, &d.state),
                reason: current
                    .filter(|r| r.status == ResourceStatus::Deleted)
                    .map(|_| "deleted by an earlier run".to_owned()),
                drift: Vec::new(),
            },
        };
        steps.push(step);
    }
    // Resources the journal has that the spec no longer wants: delete,
    // in reverse dependency order.
    if let Some(v) = view {
        let mut gone: Vec<_> = v
            .live_resources()
            .into_iter()
            .filter(|r| !wanted.contains(&r.key))
            .collect();
        gone.reverse();
        for r in gone {
            steps.push(Step {
                key: r.key.clone(),
                kind: r.kind,
                action: StepAction::Delete,
                remote_id: r.remote_id.clone(),
                changes: diff(r.desired.as_ref(), &serde_json::Value::Null)
                    .into_iter()
                    .filter(|c| c.from.is_some())
                    .collect(),
                reason: Some("no longer in the spec".to_owned()),
                drift: Vec::new(),
            });
        }
    }
    let all_noop = steps.iter().all(|s| s.action == StepAction::Noop);
    let no_changes = all_noop && view.and_then(|v| v.desired_hash) == Some(spec_hash);
    let rollback = implied_rollback(&steps, view, policies);
    Plan {
        deployment: deployment.clone(),
        spec_hash,
        steps,
        no_changes,
        rollback,
    }
}

/// What would undo each create or update of `steps`, in reverse order.
fn implied_rollback(
    steps: &[Step],
    view: Option<&DeploymentView>,
    policies: Policies,
) -> Vec<RollbackStep> {
    steps
        .iter()
        .rev()
        .filter_map(|s| match s.action {
            StepAction::Create => Some(RollbackStep {
                resource: s.key.clone(),
                kind: s.kind,
                action: Action::Delete,
                remote_id: None,
                policy: policies.of(s.kind),
                restore_to: None,
            }),
            StepAction::Update => Some(RollbackStep {
                resource: s.key.clone(),
                kind: s.kind,
                action: Action::Restore,
                remote_id: s.remote_id.clone(),
                policy: policies.of(s.kind),
                restore_to: view
                    .and_then(|v| v.resources.get(&s.key))
                    .and_then(|r| r.committed.as_ref())
                    .and_then(|c| c.desired.clone()),
            }),
            // A delete is undone by making the resource again.
            StepAction::Delete => Some(RollbackStep {
                resource: s.key.clone(),
                kind: s.kind,
                action: Action::Restore,
                remote_id: s.remote_id.clone(),
                policy: policies.of(s.kind),
                restore_to: view
                    .and_then(|v| v.resources.get(&s.key))
                    .and_then(|r| r.desired.clone()),
            }),
            StepAction::Noop => None,
        })
        .collect()
}

/// Field-level differences between two desired states. Objects are walked
/// key by key; a secret reference (`{"secret": ..}`) is a leaf, shown as
/// changed or unchanged only.
pub fn diff(from: Option<&serde_json::Value>, to: &serde_json::Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", from, Some(to), &mut out);
    out
}

fn is_secret(v: Option<&serde_json::Value>) -> bool {
    v.and_then(|v| v.as_object())
        .is_some_and(|o| o.contains_key("secret") && o.contains_key("fingerprint"))
}

fn walk(
    path: &str,
    from: Option<&serde_json::Value>,
    to: Option<&serde_json::Value>,
    out: &mut Vec<Change>,
) {
    use serde_json::Value;
    let from = from.filter(|v| !v.is_null());
    let to = to.filter(|v| !v.is_null());
    if from == to {
        return;
    }
    let secret = is_secret(from) || is_secret(to);
    if let (false, Some(Value::Object(a)), Some(Value::Object(b))) = (secret, from, to) {
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for k in keys {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            walk(&p, a.get(k), b.get(k), out);
        }
        return;
    }
    if let (false, None, Some(Value::Object(b))) = (secret, from, to) {
        for (k, v) in b {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            walk(&p, None, Some(v), out);
        }
        return;
    }
    if let (false, Some(Value::Object(a)), None) = (secret, from, to) {
        for (k, v) in a {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            walk(&p, Some(v), None, out);
        }
        return;
    }
    out.push(Change {
        path: if path.is_empty() {
            "(all)".to_owned()
        } else {
            path.to_owned()
        },
        from: if secret { None } else { from.cloned() },
        to: if secret { None } else { to.cloned() },
        secret,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{
        Event, NewEvent, ResourceCreated, ResourceIntent, RunCommand, RunOptions, RunStarted,
        RunStateChanged,
    };
    use crate::id::RunId;
    use crate::ownership::OwnershipMark;
    use crate::projection::RunState;
    use crate::store::EventStore;
    use crate::store::memory::MemoryStore;
    use serde_json::json;

    fn desired(key: &str, kind: ResourceKind, state: serde_json::Value) -> Desired {
        Desired {
            key: ResourceKey::new(key),
            kind,
            hash: Digest::of(state.to_string().as_bytes()),
            state,
        }
    }

    /// A journal in which one completed run created `resources`.
    fn applied(resources: &[Desired], spec_hash: Digest) -> DeploymentView {
        let d = DeploymentId::new("blog").unwrap();
        let run = RunId::from_u128(1);
        let s = MemoryStore::new();
        let at = jiff::Timestamp::UNIX_EPOCH;
        let mut events = vec![Event::RunStarted(RunStarted {
            command: RunCommand::Apply,
            spec_path: None,
            spec_hash: Some(spec_hash),
            user: "u".into(),
            host: "h".into(),
            pid: 1,
            fabrik_version: "0".into(),
            options: RunOptions::default(),
        })];
        let mut state = RunState::Pending;
        for to in [
            RunState::Validating,
            RunState::Provisioning,
            RunState::Deploying,
            RunState::Verifying,
        ] {
            events.push(Event::RunStateChanged(RunStateChanged {
                from: state,
                to,
                reason: None,
            }));
            state = to;
        }
        for r in resources {
            let mark = OwnershipMark::new(d.clone(), run.clone());
            events.push(Event::ResourceIntent(ResourceIntent {
                resource: r.key.clone(),
                kind: r.kind,
                action: Action::Create,
                remote_id: None,
                desired: Some(r.state.clone()),
                desired_hash: Some(r.hash),
                mark: Some(mark.clone()),
            }));
            events.push(Event::ResourceCreated(ResourceCreated {
                resource: r.key.clone(),
                kind: r.kind,
                remote_id: format!("id-{}", r.key),
                mark,
                desired_hash: Some(r.hash),
                adopted: false,
                incomplete: None,
            }));
        }
        events.push(Event::RunStateChanged(RunStateChanged {
            from: state,
            to: RunState::Complete,
            reason: None,
        }));
        let events: Vec<NewEvent> = events
            .into_iter()
            .map(|event| NewEvent {
                run: Some(run.clone()),
                at,
                event,
            })
            .collect();
        s.append(&d, crate::id::StreamVersion(0), &events).unwrap();
        s.deployment(&d).unwrap().unwrap()
    }

    fn base() -> Vec<Desired> {
        vec![
            desired(
                "monitor:health",
                ResourceKind::Monitor,
                json!({"url": "https://b/health"}),
            ),
            desired(
                "app",
                ResourceKind::Application,
                json!({"image": "nginx", "tag": "1.27", "env": {"DB": {"secret": "DB", "fingerprint": "aa"}}}),
            ),
            desired(
                "dns:A:b",
                ResourceKind::DnsRecord,
                json!({"content": "203.0.113.10"}),
            ),
        ]
    }

    #[test]
    fn a_first_apply_creates_everything_in_dependency_order() {
        let d = DeploymentId::new("blog").unwrap();
        let p = plan(
            &d,
            Digest::of(b"s"),
            &base(),
            None,
            None,
            Policies::default(),
        );
        let order: Vec<_> = p.steps.iter().map(|s| (s.key.as_str(), s.action)).collect();
        assert_eq!(
            order,
            vec![
                ("dns:A:b", StepAction::Create),
                ("app", StepAction::Create),
                ("monitor:health", StepAction::Create)
            ]
        );
        assert!(!p.no_changes);
        // Rolling back would delete in reverse order, DNS by its manual policy.
        let rb: Vec<_> = p
            .rollback
            .iter()
            .map(|r| (r.resource.as_str(), r.policy))
            .collect();
        assert_eq!(
            rb,
            vec![
                ("monitor:health", Policy::Auto),
                ("app", Policy::Auto),
                ("dns:A:b", Policy::Manual)
            ]
        );
    }

    #[test]
    fn an_unchanged_spec_is_no_changes() {
        let d = DeploymentId::new("blog").unwrap();
        let h = Digest::of(b"s");
        let view = applied(&base(), h);
        let p = plan(&d, h, &base(), Some(&view), None, Policies::default());
        assert!(p.no_changes);
        assert_eq!(p.change_count(), 0);
    }

    #[test]
    fn a_changed_field_updates_only_its_resource_with_a_field_diff() {
        let d = DeploymentId::new("blog").unwrap();
        let view = applied(&base(), Digest::of(b"s"));
        let mut next = base();
        next[1] = desired(
            "app",
            ResourceKind::Application,
            json!({"image": "nginx", "tag": "1.28", "env": {"DB": {"secret": "DB", "fingerprint": "bb"}}}),
        );
        let p = plan(
            &d,
            Digest::of(b"t"),
            &next,
            Some(&view),
            None,
            Policies::default(),
        );
        assert_eq!(p.change_count(), 1);
        let app = p.steps.iter().find(|s| s.key.as_str() == "app").unwrap();
        assert_eq!(app.action, StepAction::Update);
        let paths: Vec<_> = app
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.secret))
            .collect();
        assert_eq!(paths, vec![("env.DB", true), ("tag", false)]);
        let secret = &app.changes[0];
        assert!(
            secret.from.is_none() && secret.to.is_none(),
            "secrets are never shown"
        );
        // The rollback of an update is a restore to the committed state.
        let restore = p
            .rollback
            .iter()
            .find(|r| r.resource.as_str() == "app")
            .unwrap();
        assert_eq!(restore.action, Action::Restore);
        assert_eq!(restore.restore_to.as_ref().unwrap()["tag"], "1.27");
    }

    #[test]
    fn resources_removed_from_the_spec_are_deleted_last() {
        let d = DeploymentId::new("blog").unwrap();
        let view = applied(&base(), Digest::of(b"s"));
        let next: Vec<Desired> = base()
            .into_iter()
            .filter(|r| r.kind != ResourceKind::Monitor)
            .collect();
        let p = plan(
            &d,
            Digest::of(b"t"),
            &next,
            Some(&view),
            None,
            Policies::default(),
        );
        let last = p.steps.last().unwrap();
        assert_eq!(
            (last.key.as_str(), last.action),
            ("monitor:health", StepAction::Delete)
        );
        assert_eq!(last.remote_id.as_deref(), Some("id-monitor:health"));
    }

    #[test]
    fn refresh_turns_drift_into_repairs() {
        let d = DeploymentId::new("blog").unwrap();
        let h = Digest::of(b"s");
        let view = applied(&base(), h);
        let mut seen = BTreeMap::new();
        seen.insert(ResourceKey::new("dns:A:b"), Observed::Missing);
        seen.insert(
            ResourceKey::new("app"),
            Observed::Drifted(vec![Drift::text("tag", "v1", "hacked")]),
        );
        let p = plan(
            &d,
            h,
            &base(),
            Some(&view),
            Some(&seen),
            Policies::default(),
        );
        assert!(!p.no_changes);
        let acts: Vec<_> = p.steps.iter().map(|s| s.action).collect();
        assert_eq!(
            acts,
            vec![StepAction::Create, StepAction::Update, StepAction::Noop]
        );
    }
}
