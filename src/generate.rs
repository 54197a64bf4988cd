//! Realistic synthetic journals, for tests and benchmarks.
//!
//! Pure and deterministic: the same [`Shape`] and seed always give the same
//! events (time and ids enter as data derived from the seed). Runs follow
//! the state machine exactly as the engine drives it: successful applies,
//! no-change applies, failures that roll back, failures left for a person,
//! and destroys.

use crate::event::{
    Action, DeployTriggered, DeploymentObserved, Event, LockAcquired, LockHolder, LockReleased,
    NewEvent, Policy, ResourceCreated, ResourceDeleted, ResourceFailed, ResourceIntent,
    ResourceKey, ResourceKind, ResourceUpdated, RollbackPlanned, RollbackStep, RollbackStepDone,
    RollbackStepSkipped, RunCommand, RunFinished, RunOptions, RunOutcome, RunStarted,
    RunStateChanged, SecretResolved, SpecValidated, VerificationFailed, VerificationPassed,
    format_timestamp,
};
use crate::id::{DeploymentId, Digest, RunId};
use crate::ownership::OwnershipMark;
use crate::projection::RunState;
use crate::secret::SecretSource;

/// How big a journal to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// Number of deployments.
    pub deployments: usize,
    /// Runs per deployment.
    pub runs: usize,
    /// DNS records per deployment.
    pub records: usize,
    /// Seed for the choices (failures, names).
    pub seed: u64,
}

/// One run's events, to append to one stream in one call.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The stream.
    pub deployment: DeploymentId,
    /// The events.
    pub events: Vec<NewEvent>,
}

/// A tiny deterministic generator (SplitMix64): enough for shapes, and no
/// dependency on a random source.
#[derive(Debug, Clone)]
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Generates the batches of a journal, run by run, interleaving
/// deployments the way a team's history does. Calls `sink` for each batch
/// (so that a million events need not sit in memory at once).
pub fn generate(shape: Shape, mut sink: impl FnMut(Batch)) {
    let mut mix = Mix(shape.seed);
    // 2026-01-01T00:00:00Z, then a few seconds per event.
    let mut clock: i64 = 1_767_225_600_000_000;
    let mut run_counter: u128 = 0;
    let names: Vec<DeploymentId> = (0..shape.deployments)
        .filter_map(|i| DeploymentId::new(format!("svc-{i:05}")).ok())
        .collect();
    let mut alive = vec![false; names.len()];
    for round in 0..shape.runs {
        for (i, name) in names.iter().enumerate() {
            run_counter += 1;
            let run = RunId::from_u128((u128::from(shape.seed) << 64) | run_counter);
            let roll = mix.next() % 100;
            let kind = if round + 1 == shape.runs && roll < 5 {
                Kind::Destroy
            } else if !alive[i] || roll < 40 {
                if roll % 10 == 7 {
                    Kind::FailRolledBack
                } else if roll % 10 == 8 {
                    Kind::FailManual
                } else {
                    Kind::Apply
                }
            } else {
                Kind::NoChange
            };
            let mut b = Builder {
                deployment: name.clone(),
                run: run.clone(),
                events: Vec::new(),
                clock: &mut clock,
                state: RunState::Pending,
            };
            let spec_hash = Digest::of(&mix.next().to_le_bytes());
            b.push(Event::RunStarted(RunStarted {
                command: if kind == Kind::Destroy {
                    RunCommand::Destroy
                } else {
                    RunCommand::Apply
                },
                spec_path: Some("spec.yaml".to_owned()),
                spec_hash: Some(spec_hash),
                user: "ci".to_owned(),
                host: "runner-1".to_owned(),
                pid: 4000 + (run_counter % 1000) as u32,
                fabrik_version: env!("CARGO_PKG_VERSION").to_owned(),
                options: RunOptions::default(),
            }));
            b.push(Event::LockAcquired(LockAcquired {
                holder: LockHolder {
                    run: run.clone(),
                    pid: 4000,
                    host: "runner-1".to_owned(),
                    user: "ci".to_owned(),
                    command: "apply".to_owned(),
                    since: format_timestamp(jiff::Timestamp::UNIX_EPOCH),
                },
            }));
            match kind {
                Kind::Destroy => {
                    b.go(RunState::Destroying);
                    if alive[i] {
                        for key in b.keys(shape.records).into_iter().rev() {
                            b.delete(&key);
                        }
                    }
                    b.go(RunState::Destroyed);
                    b.finish(RunOutcome::Destroyed, 0);
                    alive[i] = false;
                }
                Kind::NoChange => {
                    b.go(RunState::Validating);
                    b.validated(spec_hash);
                    b.go(RunState::Complete);
                    b.finish(RunOutcome::NoChanges, 0);
                }
                Kind::Apply | Kind::FailRolledBack | Kind::FailManual => {
                    b.go(RunState::Validating);
                    b.validated(spec_hash);
                    b.push(Event::SecretResolved(SecretResolved {
                        name: "DB_PASSWORD".to_owned(),
                        source: SecretSource::Dotenv,
                        fingerprint: Some(Digest::of(&mix.next().to_le_bytes())),
                        rotated: false,
                    }));
                    b.go(RunState::Provisioning);
                    let keys = b.keys(shape.records);
                    let mut created = Vec::new();
                    let mut touch = |b: &mut Builder<'_>, key: &(ResourceKey, ResourceKind)| {
                        if alive[i] {
                            b.update(key);
                        } else {
                            b.create(key);
                            created.push(key.clone());
                        }
                    };
                    for key in keys.iter().filter(|k| k.1 == ResourceKind::DnsRecord) {
                        touch(&mut b, key);
                    }
                    b.go(RunState::Deploying);
                    for key in keys.iter().filter(|k| k.1 == ResourceKind::Application) {
                        touch(&mut b, key);
                    }
                    b.push(Event::DeployTriggered(DeployTriggered {
                        resource: ResourceKey::new("app"),
                        remote_id: format!("app-{}", b.deployment),
                        deployment_uuid: Some(format!("dep-{run_counter}")),
                        force: false,
                    }));
                    for status in ["queued", "in_progress", "finished"] {
                        b.push(Event::DeploymentObserved(DeploymentObserved {
                            resource: ResourceKey::new("app"),
                            deployment_uuid: format!("dep-{run_counter}"),
                            status: status.to_owned(),
                            elapsed_ms: 1000,
                            url: None,
                        }));
                    }
                    b.go(RunState::Verifying);
                    for key in keys.iter().filter(|k| k.1 == ResourceKind::Monitor) {
                        touch(&mut b, key);
                    }
                    if kind == Kind::Apply {
                        b.push(Event::VerificationPassed(VerificationPassed {
                            check: format!("http https://{}.example.com/health", b.deployment),
                            evidence: serde_json::json!({"status": 200, "attempts": 1}),
                        }));
                        b.go(RunState::Complete);
                        b.finish(RunOutcome::Succeeded, 0);
                        alive[i] = true;
                    } else {
                        b.push(Event::VerificationFailed(VerificationFailed {
                            check: format!("http https://{}.example.com/health", b.deployment),
                            evidence: serde_json::json!({"status": 503, "attempts": 20}),
                            error: "expected status 200, got 503".to_owned(),
                        }));
                        b.go(RunState::RollingBack);
                        let manual = kind == Kind::FailManual;
                        let steps: Vec<RollbackStep> = created
                            .iter()
                            .rev()
                            .map(|k| RollbackStep {
                                resource: k.0.clone(),
                                kind: k.1,
                                action: Action::Delete,
                                remote_id: Some(remote_id(k)),
                                policy: if manual && k.1 == ResourceKind::DnsRecord {
                                    Policy::Manual
                                } else {
                                    Policy::Auto
                                },
                                restore_to: None,
                            })
                            .collect();
                        b.push(Event::RollbackPlanned(RollbackPlanned {
                            target_run: b.run.clone(),
                            steps: steps.clone(),
                        }));
                        let mut pending = false;
                        for s in &steps {
                            if s.policy == Policy::Manual {
                                pending = true;
                                b.push(Event::RollbackStepSkipped(RollbackStepSkipped {
                                    resource: s.resource.clone(),
                                    policy: s.policy,
                                    reason: "policy is manual".to_owned(),
                                    command: Some(format!("fabrik rollback {}", b.run)),
                                }));
                            } else {
                                b.delete(&(s.resource.clone(), s.kind));
                                b.push(Event::RollbackStepDone(RollbackStepDone {
                                    resource: s.resource.clone(),
                                    action: Action::Delete,
                                }));
                            }
                        }
                        if pending {
                            b.go(RunState::Failed);
                            b.finish(RunOutcome::NeedsAttention, 6);
                            alive[i] = true;
                        } else {
                            b.go(RunState::RolledBack);
                            b.finish(RunOutcome::RolledBack, 5);
                        }
                    }
                }
            }
            b.push(Event::LockReleased(LockReleased { run: run.clone() }));
            let batch = Batch {
                deployment: name.clone(),
                events: b.events,
            };
            sink(batch);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Apply,
    NoChange,
    FailRolledBack,
    FailManual,
    Destroy,
}

struct Builder<'a> {
    deployment: DeploymentId,
    run: RunId,
    events: Vec<NewEvent>,
    clock: &'a mut i64,
    state: RunState,
}

fn remote_id(k: &(ResourceKey, ResourceKind)) -> String {
    format!("r-{}", Digest::of(k.0.as_str().as_bytes()).short())
}

impl Builder<'_> {
    fn push(&mut self, event: Event) {
        *self.clock += 1_500_000;
        self.events.push(NewEvent {
            run: Some(self.run.clone()),
            at: jiff::Timestamp::from_microsecond(*self.clock)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            event,
        });
    }

    fn go(&mut self, to: RunState) {
        let from = self.state;
        self.state = to;
        self.push(Event::RunStateChanged(RunStateChanged {
            from,
            to,
            reason: None,
        }));
    }

    fn finish(&mut self, outcome: RunOutcome, exit_code: i32) {
        self.push(Event::RunFinished(RunFinished {
            outcome,
            exit_code,
            message: None,
        }));
    }

    fn validated(&mut self, spec_hash: Digest) {
        self.push(Event::SpecValidated(SpecValidated {
            spec_hash,
            warnings: Vec::new(),
        }));
    }

    fn keys(&self, records: usize) -> Vec<(ResourceKey, ResourceKind)> {
        let mut keys: Vec<_> = (0..records)
            .map(|i| {
                (
                    ResourceKey::new(format!("dns:A:h{i}.{}.example.com", self.deployment)),
                    ResourceKind::DnsRecord,
                )
            })
            .collect();
        keys.push((ResourceKey::new("app"), ResourceKind::Application));
        keys.push((ResourceKey::new("monitor:health"), ResourceKind::Monitor));
        keys
    }

    fn desired(&self, key: &ResourceKey) -> serde_json::Value {
        serde_json::json!({ "key": key.as_str(), "content": "203.0.113.10", "ttl": 1 })
    }

    fn create(&mut self, k: &(ResourceKey, ResourceKind)) {
        let mark = OwnershipMark::new(self.deployment.clone(), self.run.clone());
        let desired = self.desired(&k.0);
        let hash = Digest::of(desired.to_string().as_bytes());
        self.push(Event::ResourceIntent(ResourceIntent {
            resource: k.0.clone(),
            kind: k.1,
            action: Action::Create,
            remote_id: None,
            desired: Some(desired),
            desired_hash: Some(hash),
            mark: Some(mark.clone()),
        }));
        self.push(Event::ResourceCreated(ResourceCreated {
            resource: k.0.clone(),
            kind: k.1,
            remote_id: remote_id(k),
            mark,
            desired_hash: Some(hash),
            adopted: false,
            incomplete: None,
        }));
    }

    fn update(&mut self, k: &(ResourceKey, ResourceKind)) {
        let desired = self.desired(&k.0);
        let hash = Digest::of(desired.to_string().as_bytes());
        self.push(Event::ResourceIntent(ResourceIntent {
            resource: k.0.clone(),
            kind: k.1,
            action: Action::Update,
            remote_id: Some(remote_id(k)),
            desired: Some(desired),
            desired_hash: Some(hash),
            mark: None,
        }));
        self.push(Event::ResourceUpdated(ResourceUpdated {
            resource: k.0.clone(),
            kind: k.1,
            remote_id: remote_id(k),
            desired_hash: Some(hash),
            changed: vec!["content".to_owned()],
            restored: false,
        }));
    }

    fn delete(&mut self, k: &(ResourceKey, ResourceKind)) {
        self.push(Event::ResourceIntent(ResourceIntent {
            resource: k.0.clone(),
            kind: k.1,
            action: Action::Delete,
            remote_id: Some(remote_id(k)),
            desired: None,
            desired_hash: None,
            mark: None,
        }));
        if k.1 == ResourceKind::Monitor && self.events.len().is_multiple_of(97) {
            self.push(Event::ResourceFailed(ResourceFailed {
                resource: k.0.clone(),
                kind: k.1,
                action: Action::Delete,
                error: "uptime kuma: connection reset".to_owned(),
                outcome_unknown: false,
            }));
        }
        self.push(Event::ResourceDeleted(ResourceDeleted {
            resource: k.0.clone(),
            kind: k.1,
            remote_id: remote_id(k),
            already_gone: false,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::Projection;
    use crate::store::EventStore;
    use crate::store::memory::MemoryStore;

    #[test]
    fn generated_journals_are_deterministic_and_follow_the_state_machine() {
        let shape = Shape {
            deployments: 5,
            runs: 8,
            records: 3,
            seed: 42,
        };
        let collect = || {
            let mut v = Vec::new();
            generate(shape, |b| v.push(b));
            v
        };
        let a = collect();
        let b = collect();
        assert_eq!(a.len(), 40);
        assert_eq!(
            a.iter().map(|b| b.events.clone()).collect::<Vec<_>>(),
            b.iter().map(|b| b.events.clone()).collect::<Vec<_>>()
        );
        let store = MemoryStore::new();
        for batch in &a {
            let v = store.stream_version(&batch.deployment).unwrap();
            store.append(&batch.deployment, v, &batch.events).unwrap();
        }
        let (report, p): (_, Projection) = crate::store::verify_store(&store).unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert!(p.deployments.values().all(|d| d.anomalies == 0));
        assert!(p.runs.values().all(|r| !r.is_open()));
        let outcomes: std::collections::BTreeSet<_> =
            p.runs.values().filter_map(|r| r.outcome).collect();
        assert!(outcomes.contains(&RunOutcome::Succeeded));
        assert!(outcomes.len() >= 3, "{outcomes:?}");
    }
}
