//! Property tests of the journal: serde round trips, fold composition,
//! export equivalence, and the decisions guarding the state machine.

use std::collections::BTreeMap;

use fabrik::decide;
use fabrik::event::*;
use fabrik::export::{self, ExportHeader};
use fabrik::generate::{Shape, generate};
use fabrik::id::{DeploymentId, Digest, RunId, Seq};
use fabrik::ownership::OwnershipMark;
use fabrik::projection::{Projection, RunState};
use fabrik::secret::SecretSource;
use fabrik::store::memory::MemoryStore;
use fabrik::store::{EventStore, Scan};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Printable text including quotes, backslashes, newlines and non-ASCII,
    // the characters canonical JSON must escape or keep.
    "[ -~\\n\\t\"\\\\é漢🙂]{0,24}"
}

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn run_id() -> impl Strategy<Value = RunId> {
    any::<u128>().prop_map(RunId::from_u128)
}

fn deployment() -> impl Strategy<Value = DeploymentId> {
    "[a-z][a-z0-9-]{0,20}[a-z0-9]".prop_map(|s| DeploymentId::new(s).unwrap())
}

fn key() -> impl Strategy<Value = ResourceKey> {
    text().prop_map(ResourceKey::new)
}

fn kind() -> impl Strategy<Value = ResourceKind> {
    prop_oneof![
        Just(ResourceKind::DnsRecord),
        Just(ResourceKind::Application),
        Just(ResourceKind::Monitor)
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Create),
        Just(Action::Update),
        Just(Action::Delete),
        Just(Action::Restore)
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Auto),
        Just(Policy::Manual),
        Just(Policy::Never)
    ]
}

fn state() -> impl Strategy<Value = RunState> {
    proptest::sample::select(RunState::ALL.to_vec())
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON value where an `Option<Value>` field holds one: `null` there is
/// the same as absent in the journal's encoding.
fn some_json() -> impl Strategy<Value = serde_json::Value> {
    json_value().prop_filter("null stands for absent", |v| !v.is_null())
}

fn mark() -> impl Strategy<Value = OwnershipMark> {
    (deployment(), run_id()).prop_map(|(d, r)| OwnershipMark::new(d, r))
}

fn holder() -> impl Strategy<Value = LockHolder> {
    (run_id(), any::<u32>(), text(), text(), text(), text()).prop_map(
        |(run, pid, host, user, command, since)| LockHolder {
            run,
            pid,
            host,
            user,
            command,
            since,
        },
    )
}

fn step() -> impl Strategy<Value = RollbackStep> {
    (
        key(),
        kind(),
        action(),
        proptest::option::of(text()),
        policy(),
        proptest::option::of(some_json()),
    )
        .prop_map(
            |(resource, kind, action, remote_id, policy, restore_to)| RollbackStep {
                resource,
                kind,
                action,
                remote_id,
                policy,
                restore_to,
            },
        )
}

/// Every event type, with arbitrary field values.
fn event() -> impl Strategy<Value = Event> {
    let command = prop_oneof![
        Just(RunCommand::Apply),
        Just(RunCommand::Destroy),
        Just(RunCommand::Rollback),
        Just(RunCommand::Admin)
    ];
    let outcome = proptest::sample::select(vec![
        RunOutcome::Succeeded,
        RunOutcome::NoChanges,
        RunOutcome::RolledBack,
        RunOutcome::NeedsAttention,
        RunOutcome::Failed,
        RunOutcome::Destroyed,
    ]);
    let source = prop_oneof![
        Just(SecretSource::Env),
        Just(SecretSource::Dotenv),
        Just(SecretSource::Generated)
    ];
    let options = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(run_id()),
        proptest::option::of("[a-z/]{1,20}\\.yaml"),
    )
        .prop_map(
            |(no_rollback, sandbox, refresh, target_run, spec_id)| RunOptions {
                no_rollback,
                sandbox,
                refresh,
                policies: if refresh {
                    [("dns".to_owned(), Policy::Manual)].into_iter().collect()
                } else {
                    Default::default()
                },
                take_over: spec_id.is_some() && no_rollback,
                restores: if sandbox { target_run.clone() } else { None },
                shared_hash: refresh.then(|| fabrik::id::Digest::of(b"shared")),
                promoted_from: None,
                target_run,
                spec_id,
            },
        );
    let finding = prop_oneof![
        Just(Finding::Adopted),
        Just(Finding::Absent),
        Just(Finding::Applied)
    ];
    prop_oneof![
        (
            command,
            proptest::option::of(text()),
            proptest::option::of(digest()),
            text(),
            text(),
            any::<u32>(),
            text(),
            options
        )
            .prop_map(
                |(command, spec_path, spec_hash, user, host, pid, fabrik_version, options)| {
                    Event::RunStarted(RunStarted {
                        command,
                        spec_path,
                        spec_hash,
                        user,
                        host,
                        pid,
                        fabrik_version,
                        options,
                    })
                }
            ),
        (state(), state(), proptest::option::of(text())).prop_map(|(from, to, reason)| {
            Event::RunStateChanged(RunStateChanged { from, to, reason })
        }),
        (outcome, any::<i32>(), proptest::option::of(text())).prop_map(
            |(outcome, exit_code, message)| Event::RunFinished(RunFinished {
                outcome,
                exit_code,
                message
            })
        ),
        (any::<u32>(), text(), text())
            .prop_map(|(pid, host, user)| Event::RunResumed(RunResumed { pid, host, user })),
        (text(), text()).prop_map(|(reason, resume_command)| Event::RunInterrupted(
            RunInterrupted {
                reason,
                resume_command
            }
        )),
        (digest(), proptest::collection::vec(text(), 0..3)).prop_map(|(spec_hash, warnings)| {
            Event::SpecValidated(SpecValidated {
                spec_hash,
                warnings,
            })
        }),
        proptest::collection::vec(text(), 0..3)
            .prop_map(|problems| Event::SpecRejected(SpecRejected { problems })),
        (
            text(),
            source,
            proptest::option::of(digest()),
            any::<bool>()
        )
            .prop_map(|(name, source, fingerprint, rotated)| {
                Event::SecretResolved(SecretResolved {
                    name,
                    source,
                    fingerprint,
                    rotated,
                })
            },),
        (
            key(),
            kind(),
            action(),
            proptest::option::of(text()),
            proptest::option::of(some_json()),
            proptest::option::of(digest()),
            proptest::option::of(mark())
        )
            .prop_map(
                |(resource, kind, action, remote_id, desired, desired_hash, mark)| {
                    Event::ResourceIntent(ResourceIntent {
                        resource,
                        kind,
                        action,
                        remote_id,
                        desired,
                        desired_hash,
                        mark,
                    })
                }
            ),
        (
            key(),
            kind(),
            text(),
            mark(),
            proptest::option::of(digest()),
            any::<bool>()
        )
            .prop_map(|(resource, kind, remote_id, mark, desired_hash, adopted)| {
                Event::ResourceCreated(ResourceCreated {
                    resource,
                    kind,
                    remote_id,
                    mark,
                    desired_hash,
                    adopted,
                    incomplete: None,
                })
            }),
        (
            key(),
            kind(),
            text(),
            proptest::option::of(digest()),
            proptest::collection::vec(text(), 0..3),
            any::<bool>()
        )
            .prop_map(
                |(resource, kind, remote_id, desired_hash, changed, restored)| {
                    Event::ResourceUpdated(ResourceUpdated {
                        resource,
                        kind,
                        remote_id,
                        desired_hash,
                        changed,
                        restored,
                    })
                }
            ),
        (key(), kind(), text(), any::<bool>()).prop_map(
            |(resource, kind, remote_id, already_gone)| Event::ResourceDeleted(ResourceDeleted {
                resource,
                kind,
                remote_id,
                already_gone
            })
        ),
        (key(), kind(), action(), text(), any::<bool>()).prop_map(
            |(resource, kind, action, error, outcome_unknown)| Event::ResourceFailed(
                ResourceFailed {
                    resource,
                    kind,
                    action,
                    error,
                    outcome_unknown
                }
            )
        ),
        (
            key(),
            kind(),
            action(),
            finding,
            proptest::option::of(text())
        )
            .prop_map(|(resource, kind, action, finding, remote_id)| {
                Event::ResourceReconciled(ResourceReconciled {
                    resource,
                    kind,
                    action,
                    finding,
                    remote_id,
                })
            }),
        (text(), any::<u32>(), text(), any::<u64>()).prop_map(
            |(operation, attempt, reason, delay_ms)| Event::AttemptFailed(AttemptFailed {
                operation,
                attempt,
                reason,
                delay_ms
            })
        ),
        (key(), text(), proptest::option::of(text()), any::<bool>()).prop_map(
            |(resource, remote_id, deployment_uuid, force)| Event::DeployTriggered(
                DeployTriggered {
                    resource,
                    remote_id,
                    deployment_uuid,
                    force
                }
            )
        ),
        (
            key(),
            text(),
            text(),
            any::<u64>(),
            proptest::option::of(text())
        )
            .prop_map(|(resource, deployment_uuid, status, elapsed_ms, url)| {
                Event::DeploymentObserved(DeploymentObserved {
                    resource,
                    deployment_uuid,
                    status,
                    elapsed_ms,
                    url,
                })
            }),
        (text(), json_value()).prop_map(|(check, evidence)| Event::VerificationPassed(
            VerificationPassed { check, evidence }
        )),
        (text(), json_value(), text()).prop_map(|(check, evidence, error)| {
            Event::VerificationFailed(VerificationFailed {
                check,
                evidence,
                error,
            })
        }),
        (run_id(), proptest::collection::vec(step(), 0..3)).prop_map(|(target_run, steps)| {
            Event::RollbackPlanned(RollbackPlanned { target_run, steps })
        }),
        (key(), action()).prop_map(|(resource, action)| Event::RollbackStepDone(
            RollbackStepDone { resource, action }
        )),
        (key(), policy(), text(), proptest::option::of(text())).prop_map(
            |(resource, policy, reason, command)| Event::RollbackStepSkipped(RollbackStepSkipped {
                resource,
                policy,
                reason,
                command
            })
        ),
        (key(), action(), text()).prop_map(|(resource, action, error)| Event::RollbackStepFailed(
            RollbackStepFailed {
                resource,
                action,
                error
            }
        )),
        (text(), text()).prop_map(
            |(channel, event)| Event::NotificationSent(NotificationSent { channel, event })
        ),
        (text(), text(), text()).prop_map(|(channel, event, error)| Event::NotificationFailed(
            NotificationFailed {
                channel,
                event,
                error
            }
        )),
        holder().prop_map(|holder| Event::LockAcquired(LockAcquired { holder })),
        run_id().prop_map(|run| Event::LockReleased(LockReleased { run })),
        (holder(), text())
            .prop_map(|(previous, reason)| Event::LockBroken(LockBroken { previous, reason })),
    ]
}

fn journal(shape: Shape) -> Vec<(DeploymentId, Vec<NewEvent>)> {
    let mut v = Vec::new();
    generate(shape, |b| v.push((b.deployment, b.events)));
    v
}

fn shape() -> impl Strategy<Value = Shape> {
    (1usize..4, 1usize..5, 0usize..3, any::<u64>()).prop_map(
        |(deployments, runs, records, seed)| Shape {
            deployments,
            runs,
            records,
            seed,
        },
    )
}

fn stored(store: &MemoryStore) -> Vec<RecordedEvent> {
    let mut out = Vec::new();
    store
        .scan(&Scan::default(), &mut |e| {
            out.push(e.decode().unwrap());
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_event_survives_the_journal_encoding(e in event()) {
        let payload = canonical_json(&e.payload());
        let back = Event::decode(e.type_name(), EVENT_VERSION, &payload).unwrap();
        prop_assert_eq!(&back, &e);
        // Canonical text is a fixed point: re-encoding what was read gives
        // the same bytes, so hashes can be recomputed from an export.
        let reparsed: serde_json::Value = serde_json::from_str(&payload).unwrap();
        prop_assert_eq!(&canonical_json(&reparsed), &payload);
        // The journal writes the same text without building the value.
        prop_assert_eq!(e.canonical_payload(), payload);
    }

    #[test]
    fn folding_in_two_parts_equals_folding_at_once(shape in shape(), cut in any::<prop::sample::Index>()) {
        let store = MemoryStore::new();
        for (d, events) in journal(shape) {
            let v = store.stream_version(&d).unwrap();
            store.append(&d, v, &events).unwrap();
        }
        let events = stored(&store);
        let at = cut.index(events.len() + 1);
        let whole = Projection::fold(&events);
        let mut parts = Projection::fold(&events[..at]);
        for e in &events[at..] {
            parts.apply(e);
        }
        prop_assert_eq!(&parts, &whole);
        // And the cached projections, built append by append, agree too.
        for (d, view) in &whole.deployments {
            let cached = store.deployment(d).unwrap();
            prop_assert_eq!(cached.as_ref(), Some(view));
        }
    }

    #[test]
    fn an_export_replays_to_the_projection_of_the_store(shape in shape(), ndjson in any::<bool>()) {
        let store = MemoryStore::new();
        for (d, events) in journal(shape) {
            let v = store.stream_version(&d).unwrap();
            store.append(&d, v, &events).unwrap();
        }
        let header = ExportHeader {
            format: export::FORMAT.into(),
            format_version: export::FORMAT_VERSION,
            fabrik_version: "test".into(),
            exported_at: "2026-01-01T00:00:00.000000Z".into(),
            deployment: None,
            run: None,
            complete: true,
        };
        let mut buf = Vec::new();
        if ndjson {
            export::write_ndjson(&store, &Scan::default(), &header, &mut buf).unwrap();
        } else {
            export::write_json(&store, &Scan::default(), &header, &mut buf).unwrap();
        }
        let mut checker = fabrik::store::ChainChecker::whole();
        let mut replayed = Projection::new();
        export::read(&buf[..], &mut |row| {
            checker.check(&row).unwrap();
            replayed.apply(&row.decode().unwrap());
            Ok(())
        }).unwrap();
        let direct = Projection::fold(&stored(&store));
        prop_assert_eq!(replayed, direct);
    }

    #[test]
    fn no_sequence_of_decisions_appends_an_illegal_transition(
        targets in proptest::collection::vec((state(), any::<bool>()), 1..40)
    ) {
        let store = MemoryStore::new();
        let d = DeploymentId::new("prop").unwrap();
        let mut runs = 0u128;
        let mut at = 0i64;
        let mut next_at = || {
            at += 1;
            jiff::Timestamp::from_microsecond(1_767_225_600_000_000 + at).unwrap()
        };
        for (to, finish) in targets {
            let view = store.deployment(&d).unwrap();
            let latest = view
                .as_ref()
                .and_then(|v| v.latest_run.clone())
                .and_then(|r| store.run(&r).unwrap());
            let version = store.stream_version(&d).unwrap();
            // Start a run when the decisions allow it.
            if decide::may_start(latest.as_ref()).is_ok() && (latest.is_none() || finish) {
                runs += 1;
                let run = RunId::from_u128(runs);
                store.append(&d, version, &[NewEvent {
                    run: Some(run),
                    at: next_at(),
                    event: Event::RunStarted(RunStarted {
                        command: RunCommand::Apply,
                        spec_path: None,
                        spec_hash: None,
                        user: "u".into(),
                        host: "h".into(),
                        pid: 1,
                        fabrik_version: "0".into(),
                        options: RunOptions::default(),
                    }),
                }]).unwrap();
                continue;
            }
            let Some(run) = latest else { continue };
            let decided = if finish && run.state.is_terminal() {
                decide::finish(&run, RunOutcome::Failed, 1, None)
            } else {
                decide::transition(&run, to, None)
            };
            if let Ok(event) = decided {
                store.append(&d, version, &[NewEvent { run: Some(run.run.clone()), at: next_at(), event }]).unwrap();
            } else {
                prop_assert!(!run.state.can_go_to(to) || run.outcome.is_some() || finish);
            }
        }
        let events = stored(&store);
        let p = Projection::fold(&events);
        prop_assert_eq!(p.deployments.get(&d).map_or(0, |v| v.anomalies), 0);
        // Replaying the transitions run by run, each one is legal.
        let mut states: BTreeMap<RunId, RunState> = BTreeMap::new();
        for e in &events {
            match &e.event {
                Event::RunStarted(_) => { states.insert(e.run.clone().unwrap(), RunState::Pending); }
                Event::RunStateChanged(c) => {
                    let s = states.get_mut(e.run.as_ref().unwrap()).unwrap();
                    prop_assert_eq!(*s, c.from);
                    prop_assert!(c.from.can_go_to(c.to), "{} -> {}", c.from, c.to);
                    *s = c.to;
                }
                _ => {}
            }
        }
        prop_assert!(p.last_seq >= Seq(1));
    }
}

/// The remote world as the providers hold it, and the journal a run of
/// Fabrik would write about it: the reference model of the fold.
mod world_model {
    use std::collections::{BTreeMap, BTreeSet};

    use fabrik::event::*;
    use fabrik::id::{DeploymentId, RunId};
    use fabrik::ownership::OwnershipMark;
    use fabrik::projection::Projection;
    use fabrik::store::EventStore;
    use fabrik::store::memory::MemoryStore;
    use proptest::prelude::*;

    /// The resources of the model: two DNS records, the application, a
    /// monitor (every kind, and two of one kind).
    pub const KEYS: [(&str, ResourceKind); 4] = [
        ("dns:A:a.example.com", ResourceKind::DnsRecord),
        ("dns:A:b.example.com", ResourceKind::DnsRecord),
        ("app", ResourceKind::Application),
        ("monitor:health", ResourceKind::Monitor),
    ];

    /// How a provider call ended.
    #[derive(Debug, Clone, Copy)]
    pub enum Outcome {
        /// It succeeded and the answer arrived.
        Done,
        /// The provider refused it for good (a 4xx): nothing changed.
        Refused,
        /// The answer was lost (a timeout after sending): the change was
        /// made or not, the journal cannot tell.
        Unknown { applied: bool },
        /// The process was killed after the intent: no outcome event.
        Killed { applied: bool },
        /// A create of several calls whose first call made the resource
        /// and a later one failed for good: it exists, not yet as desired.
        Incomplete,
    }

    /// One step of a generated history.
    #[derive(Debug, Clone, Copy)]
    pub enum Op {
        Create(usize, Outcome),
        Update(usize, Outcome),
        Delete(usize, Outcome),
        /// `fabrik resume` reconciles whatever the journal left unknown.
        Resume,
        /// The run ends and another begins (apply or destroy).
        NextRun(bool),
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            4 => Just(Outcome::Done),
            3 => Just(Outcome::Refused),
            1 => any::<bool>().prop_map(|applied| Outcome::Unknown { applied }),
            1 => any::<bool>().prop_map(|applied| Outcome::Killed { applied }),
            1 => Just(Outcome::Incomplete),
        ]
    }

    pub fn ops() -> impl Strategy<Value = Vec<Op>> {
        let key = 0..KEYS.len();
        let op = prop_oneof![
            4 => (key.clone(), outcome()).prop_map(|(k, o)| Op::Create(k, o)),
            2 => (key.clone(), outcome()).prop_map(|(k, o)| Op::Update(k, o)),
            3 => (key, outcome()).prop_map(|(k, o)| Op::Delete(k, o)),
            1 => Just(Op::Resume),
            1 => any::<bool>().prop_map(Op::NextRun),
        ];
        proptest::collection::vec(op, 1..60)
    }

    /// The world, the journal written so far, and what the journal left
    /// unresolved.
    pub struct Sim {
        store: MemoryStore,
        deployment: DeploymentId,
        run: RunId,
        runs: u128,
        ids: u64,
        at: i64,
        /// Remote ids that exist, by resource.
        pub world: BTreeMap<usize, String>,
        /// Resources whose last intent has no definite outcome in the
        /// journal: (action, the remote id the intent named or the create
        /// made, whether the change was made).
        pub unresolved: BTreeMap<usize, (Action, Option<String>, bool)>,
        /// The remote id the journal holds for each resource it knows to
        /// exist (what Fabrik itself would act on).
        known: BTreeMap<usize, String>,
        /// Resources this run made (completely or not): a rollback of the
        /// run undoes them.
        made: BTreeSet<usize>,
    }

    impl Sim {
        pub fn new() -> Self {
            let mut s = Self {
                store: MemoryStore::new(),
                deployment: DeploymentId::new("model").unwrap(),
                run: RunId::from_u128(1),
                runs: 1,
                ids: 0,
                at: 0,
                world: BTreeMap::new(),
                unresolved: BTreeMap::new(),
                known: BTreeMap::new(),
                made: BTreeSet::new(),
            };
            s.start(RunCommand::Apply);
            s
        }

        fn append(&mut self, events: Vec<Event>) {
            let v = self.store.stream_version(&self.deployment).unwrap();
            let news: Vec<NewEvent> = events
                .into_iter()
                .map(|event| {
                    self.at += 1;
                    NewEvent {
                        run: Some(self.run.clone()),
                        at: jiff::Timestamp::from_microsecond(1_767_225_600_000_000 + self.at)
                            .unwrap(),
                        event,
                    }
                })
                .collect();
            self.store.append(&self.deployment, v, &news).unwrap();
        }

        fn start(&mut self, command: RunCommand) {
            self.append(vec![Event::RunStarted(RunStarted {
                command,
                spec_path: None,
                spec_hash: None,
                user: "u".into(),
                host: "h".into(),
                pid: 1,
                fabrik_version: "0".into(),
                options: RunOptions::default(),
            })]);
        }

        fn key(k: usize) -> (ResourceKey, ResourceKind) {
            (ResourceKey::new(KEYS[k].0), KEYS[k].1)
        }

        fn intent(&self, k: usize, action: Action, remote_id: Option<String>) -> Event {
            let (resource, kind) = Self::key(k);
            Event::ResourceIntent(ResourceIntent {
                resource,
                kind,
                action,
                remote_id,
                desired: None,
                desired_hash: None,
                mark: (action == Action::Create)
                    .then(|| OwnershipMark::new(self.deployment.clone(), self.run.clone())),
            })
        }

        fn failed(k: usize, action: Action, outcome_unknown: bool) -> Event {
            let (resource, kind) = Self::key(k);
            Event::ResourceFailed(ResourceFailed {
                resource,
                kind,
                action,
                error: "HTTP 422".into(),
                outcome_unknown,
            })
        }

        /// Plays one step as the engine would: a create only for what the
        /// journal knows to be absent, an update or delete only for what it
        /// knows to exist, never a new change while an outcome is unknown.
        pub fn play(&mut self, op: Op) {
            match op {
                Op::Create(k, o)
                    if !self.known.contains_key(&k) && !self.unresolved.contains_key(&k) =>
                {
                    self.ids += 1;
                    let id = format!("r{}", self.ids);
                    let mut events = vec![self.intent(k, Action::Create, None)];
                    let (resource, kind) = Self::key(k);
                    match o {
                        Outcome::Done | Outcome::Incomplete => {
                            self.world.insert(k, id.clone());
                            self.known.insert(k, id.clone());
                            self.made.insert(k);
                            events.push(Event::ResourceCreated(ResourceCreated {
                                resource,
                                kind,
                                remote_id: id,
                                mark: OwnershipMark::new(self.deployment.clone(), self.run.clone()),
                                desired_hash: None,
                                adopted: false,
                                incomplete: matches!(o, Outcome::Incomplete)
                                    .then(|| "tagging it: HTTP 500".to_owned()),
                            }));
                        }
                        Outcome::Refused => events.push(Self::failed(k, Action::Create, false)),
                        Outcome::Unknown { applied } | Outcome::Killed { applied } => {
                            if applied {
                                self.world.insert(k, id.clone());
                            }
                            if matches!(o, Outcome::Unknown { .. }) {
                                events.push(Self::failed(k, Action::Create, true));
                            }
                            self.unresolved
                                .insert(k, (Action::Create, Some(id), applied));
                        }
                    }
                    self.append(events);
                }
                Op::Update(k, o) | Op::Delete(k, o)
                    if self.known.contains_key(&k) && !self.unresolved.contains_key(&k) =>
                {
                    let delete = matches!(op, Op::Delete(..));
                    let action = if delete {
                        Action::Delete
                    } else {
                        Action::Update
                    };
                    let id = self.known[&k].clone();
                    let mut events = vec![self.intent(k, action, Some(id.clone()))];
                    let (resource, kind) = Self::key(k);
                    match o {
                        Outcome::Done if delete => {
                            self.world.remove(&k);
                            self.known.remove(&k);
                            events.push(Event::ResourceDeleted(ResourceDeleted {
                                resource,
                                kind,
                                remote_id: id,
                                already_gone: false,
                            }));
                        }
                        Outcome::Done => events.push(Event::ResourceUpdated(ResourceUpdated {
                            resource,
                            kind,
                            remote_id: id,
                            desired_hash: None,
                            changed: vec!["x".into()],
                            restored: false,
                        })),
                        Outcome::Refused | Outcome::Incomplete => {
                            events.push(Self::failed(k, action, false));
                        }
                        Outcome::Unknown { applied } | Outcome::Killed { applied } => {
                            if applied && delete {
                                self.world.remove(&k);
                            }
                            if matches!(o, Outcome::Unknown { .. }) {
                                events.push(Self::failed(k, action, true));
                            }
                            self.unresolved.insert(k, (action, Some(id), applied));
                        }
                    }
                    self.append(events);
                }
                Op::Resume => self.resume(),
                Op::NextRun(destroy) => {
                    self.resume();
                    self.append(vec![Event::RunFinished(RunFinished {
                        outcome: RunOutcome::Failed,
                        exit_code: 1,
                        message: None,
                    })]);
                    self.runs += 1;
                    self.run = RunId::from_u128(self.runs);
                    self.made.clear();
                    self.start(if destroy {
                        RunCommand::Destroy
                    } else {
                        RunCommand::Apply
                    });
                }
                _ => {}
            }
        }

        /// What `fabrik resume` records for every unknown outcome: it looks
        /// the resource up (by its mark, or its id) and records what it
        /// found; a delete found not done is made again.
        fn resume(&mut self) {
            let unresolved = std::mem::take(&mut self.unresolved);
            for (k, (action, id, _)) in unresolved {
                let (resource, kind) = Self::key(k);
                let found = self.world.get(&k).cloned();
                let found = found.filter(|f| Some(f) == id.as_ref());
                match action {
                    Action::Delete if found.is_some() => {
                        let id = found.unwrap();
                        self.world.remove(&k);
                        self.known.remove(&k);
                        self.append(vec![
                            self.intent(k, Action::Delete, Some(id.clone())),
                            Event::ResourceDeleted(ResourceDeleted {
                                resource,
                                kind,
                                remote_id: id,
                                already_gone: false,
                            }),
                        ]);
                        continue;
                    }
                    _ => {}
                }
                let finding = match (action, &found) {
                    (Action::Create, Some(_)) => Finding::Adopted,
                    (Action::Delete, None) => Finding::Applied,
                    _ => Finding::Absent,
                };
                match (action, &found) {
                    (Action::Create, Some(f)) => {
                        self.known.insert(k, f.clone());
                    }
                    (Action::Delete, None) => {
                        self.known.remove(&k);
                    }
                    _ => {}
                }
                self.append(vec![Event::ResourceReconciled(ResourceReconciled {
                    resource,
                    kind,
                    action,
                    finding,
                    remote_id: found,
                })]);
            }
        }

        /// The fold of the whole journal, and the store's own view.
        pub fn check(&self) -> Result<(), TestCaseError> {
            let mut events = Vec::new();
            self.store
                .scan(&fabrik::store::Scan::default(), &mut |e| {
                    events.push(e.decode().unwrap());
                    std::ops::ControlFlow::Continue(())
                })
                .unwrap();
            let fold = Projection::fold(&events);
            let view = fold.deployments.get(&self.deployment).unwrap();
            prop_assert_eq!(view.anomalies, 0);
            let live: BTreeSet<&str> = view
                .live_resources()
                .iter()
                .map(|r| r.key.as_str())
                .collect();
            for (k, (name, kind)) in KEYS.iter().enumerate() {
                if self.unresolved.contains_key(&k) {
                    continue;
                }
                let r = view.resources.get(&ResourceKey::new(*name));
                let exists = r.is_some_and(|r| r.exists());
                prop_assert_eq!(
                    exists,
                    self.world.contains_key(&k),
                    "{} ({}): the journal says {:?}, the world holds {:?}",
                    name,
                    kind,
                    r.map(|r| (r.status, r.remote_id.clone())),
                    self.world.get(&k)
                );
                prop_assert_eq!(live.contains(name), exists);
                if let Some(id) = self.world.get(&k) {
                    prop_assert_eq!(r.and_then(|r| r.remote_id.as_ref()), Some(id));
                    prop_assert_eq!(r.map(|r| r.kind), Some(*kind));
                }
            }
            // What this run made is in its rollback plan, complete or not.
            let run = fold.runs.get(&self.run).unwrap();
            for k in &self.made {
                prop_assert!(
                    run.created.contains(&ResourceKey::new(KEYS[*k].0)),
                    "{} was made by the run but is not among what it created: {:?}",
                    KEYS[*k].0,
                    run.created
                );
            }
            let stored = self.store.deployment(&self.deployment).unwrap();
            prop_assert_eq!(stored.as_ref(), Some(view));
            Ok(())
        }
    }

    /// `PROPTEST_CASES`, or a number that runs in about a second.
    pub fn cases() -> u32 {
        std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(world_model::cases()))]

    /// Whatever the interleaving of creates, updates and deletes that
    /// succeed, are refused, lose their answer or are killed, and of
    /// resumes that adopt or find nothing, across apply and destroy runs:
    /// every resource whose outcome the journal knows is present in the
    /// fold exactly when the world holds it, under the id the world holds.
    #[test]
    fn the_fold_says_what_the_remote_world_holds(ops in world_model::ops()) {
        let mut sim = world_model::Sim::new();
        for op in ops {
            sim.play(op);
            sim.check()?;
        }
    }
}
