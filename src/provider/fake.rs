//! In-memory providers behind the capability traits, for the engine's own
//! tests: an application host, DNS, monitors, notifiers and probes that
//! keep one shared [`FakeState`], with faults that can be aimed at any
//! operation.
//!
//! These are test doubles of the *traits*, not of the services: they keep
//! each trait's documented contract (ownership marks, lookups by mark,
//! `already_gone` deletes, identical-record answers) and nothing of any
//! vendor's wire format. The HTTP sandbox (`crate::sandbox`) is the double
//! of the services themselves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::registry::{Connect, ConnectError, ConnectRequest, Need};
use super::{
    AppDesired, AppHost, AppKind, AppLookup, BuildLog, Connection, DeleteOutcome, DeploymentRef,
    DeploymentState, DeploymentStatus, Dns, EnvDiff, EnvVarDesired, ErrorKind, Images, LogLine,
    LogStream, MonitorDesired, MonitorId, Monitors, Notification, Notifier, NotifierEntry,
    OwnedRemote, Pace, Progress, ProviderError, ProviderName, Providers, RecordDesired, RecordType,
    RemoteApp, RemoteMonitor, RemoteRecord, ResolvedTarget, RetryPolicy, ServerVersion, Target,
    WaitOptions, Zone,
};
use crate::id::{DeploymentId, ImageDigest, ImageRef};
use crate::ownership::OwnershipMark;
use crate::spec::model::{self as spec, DnsExpectation};
use crate::verify::{CheckError, CheckResult, DnsEvidence, HttpEvidence, Probe, TlsEvidence};

/// How an aimed fault fails a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Refused (HTTP 422): nothing happened.
    Refused,
    /// The answer was lost after the call took effect (a timeout after
    /// sending): the outcome is unknown, and the effect is there.
    LostAfterEffect,
    /// The call never reached the service, but the client cannot know: the
    /// outcome is unknown, and nothing happened.
    LostBeforeEffect,
}

/// One application or service.
#[derive(Debug, Clone)]
pub struct FakeApp {
    /// Application or service.
    pub kind: AppKind,
    /// Its name.
    pub name: String,
    /// What it was last made to be.
    pub desired: AppDesired,
    /// Its env, by key: the value sent.
    pub env: BTreeMap<String, String>,
    /// Its mark.
    pub mark: OwnershipMark,
    /// Deployments, oldest first: (uuid, state).
    pub deployments: Vec<(String, DeploymentState)>,
}

/// One DNS record.
#[derive(Debug, Clone)]
pub struct FakeRecord {
    /// Zone name.
    pub zone: String,
    /// The record.
    pub record: RemoteRecord,
}

/// One monitor.
#[derive(Debug, Clone)]
pub struct FakeMonitor {
    /// What it was last made to be.
    pub desired: MonitorDesired,
    /// Running (not paused).
    pub active: bool,
    /// Its mark.
    pub mark: Option<OwnershipMark>,
}

/// The whole in-memory remote world.
#[derive(Debug, Default)]
pub struct FakeState {
    /// Applications and services by uuid.
    pub apps: BTreeMap<String, FakeApp>,
    /// DNS records by id.
    pub records: BTreeMap<String, FakeRecord>,
    /// Monitors by id.
    pub monitors: BTreeMap<u64, FakeMonitor>,
    /// Notifications sent: (channel, event, summary).
    pub sent: Vec<(String, String, String)>,
    /// Zones that exist.
    pub zones: Vec<String>,
    /// Faults aimed at operations (`create_app`, `deploy`, `create_record`,
    /// `update_record`, `delete_record`, `create_monitor`, ...): each call
    /// of the operation takes the first one left.
    pub faults: BTreeMap<&'static str, Vec<Fault>>,
    /// How deployments end (`Finished` unless set).
    pub deploy_ends: Option<DeploymentState>,
    /// Whether HTTP checks fail (the service answers 503).
    pub unhealthy: bool,
    /// Every call made, in order: the operation's name.
    pub calls: Vec<&'static str>,
    /// Pushes of each image tag (`name:tag`) beyond the first: a push
    /// moves the tag to another digest.
    pub pushes: BTreeMap<String, u32>,
    next: u64,
}

impl FakeState {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}{:04}", self.next)
    }

    /// The fault aimed at the next call of `op`, if any.
    fn fault(&mut self, op: &'static str) -> Option<Fault> {
        self.calls.push(op);
        let list = self.faults.get_mut(op)?;
        if list.is_empty() {
            None
        } else {
            Some(list.remove(0))
        }
    }
}

/// The in-memory world, shared by every provider it hands out; also the
/// [`Connect`] the engine's tests pass in.
#[derive(Debug, Clone, Default)]
pub struct FakeWorld(Arc<Mutex<FakeState>>);

impl FakeWorld {
    /// A world with the zone `example.com`.
    pub fn new() -> Self {
        let w = Self::default();
        w.state().zones.push("example.com".to_owned());
        w
    }

    /// The state, to look at or to arrange.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Aims `fault` at the next call of `op` not already aimed at.
    pub fn fail(&self, op: &'static str, fault: Fault) {
        self.state().faults.entry(op).or_default().push(fault);
    }

    /// The providers over this world.
    pub fn providers(&self, notifiers: Vec<NotifierEntry>) -> Providers {
        Providers {
            app: Arc::new(FakeApps(self.clone())),
            dns: Some(Arc::new(FakeDns(self.clone()))),
            monitors: Some(Arc::new(FakeMonitors(self.clone()))),
            notifiers: Arc::new(notifiers),
            probe: Arc::new(FakeProbe(self.clone())),
            images: Arc::new(FakeImages(self.clone())),
        }
    }
}

#[async_trait]
impl Connect for FakeWorld {
    async fn connect(&self, request: ConnectRequest<'_>) -> Result<Connection, ConnectError> {
        let notifiers = request
            .spec
            .map(|s| {
                s.notifications
                    .webhooks
                    .iter()
                    .map(|w| NotifierEntry {
                        name: w.name.clone(),
                        events: w
                            .events
                            .iter()
                            .filter_map(|e| serde_json::to_value(e).ok())
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect(),
                        timeout: s.notifications.timeout.get(),
                        notifier: Arc::new(FakeNotifier(self.clone(), w.name.clone())),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut providers = self.providers(notifiers);
        if request.dns == Need::No {
            providers.dns = None;
        }
        if request.monitors == Need::No {
            providers.monitors = None;
        }
        Ok(Connection {
            providers,
            pace: Pace {
                poll: std::time::Duration::from_millis(1),
                verify_first: std::time::Duration::from_millis(1),
                verify_max: std::time::Duration::from_millis(1),
                parallel: 4,
            },
            retry: RetryPolicy {
                attempts: 2,
                base_delay: std::time::Duration::from_millis(1),
                max_delay: std::time::Duration::from_millis(2),
                ..RetryPolicy::default()
            },
            scrubber: crate::secret::Scrubber::new(),
            keep_alive: None,
        })
    }
}

fn error(provider: ProviderName, op: &str, kind: ErrorKind) -> ProviderError {
    ProviderError::new(provider, op, kind)
}

/// The error a fault makes, or `None` when the call goes ahead (with its
/// answer lost afterwards for [`Fault::LostAfterEffect`]).
fn faulted(provider: ProviderName, op: &str, fault: Option<Fault>) -> Result<bool, ProviderError> {
    match fault {
        None => Ok(false),
        Some(Fault::Refused) => {
            Err(
                error(provider, op, ErrorKind::Validation { fields: Vec::new() })
                    .with_status(422)
                    .with_message("refused by an aimed fault"),
            )
        }
        Some(Fault::LostBeforeEffect) => Err(lost(provider, op)),
        Some(Fault::LostAfterEffect) => Ok(true),
    }
}

fn lost(provider: ProviderName, op: &str) -> ProviderError {
    let mut e = error(provider, op, ErrorKind::Timeout { request_sent: true });
    e.ambiguous = true;
    e
}

/// [`AppHost`] over a [`FakeWorld`].
#[derive(Debug)]
pub struct FakeApps(FakeWorld);

const COOLIFY: ProviderName = ProviderName::Coolify;

/// The fields of `now` that differ from `was` (env aside).
fn changed_fields(was: &AppDesired, now: &AppDesired) -> Vec<String> {
    let mut changed = Vec::new();
    if was.source != now.source {
        changed.push("source".to_owned());
    }
    if was.domains != now.domains {
        changed.push("domains".to_owned());
    }
    if was.ports != now.ports {
        changed.push("ports".to_owned());
    }
    if was.health != now.health {
        changed.push("health_check".to_owned());
    }
    if was.description != now.description {
        changed.push("description".to_owned());
    }
    changed
}

fn remote(uuid: &str, a: &FakeApp) -> RemoteApp {
    RemoteApp {
        kind: a.kind,
        uuid: uuid.to_owned(),
        name: a.name.clone(),
        description: a.desired.description.clone(),
        domains: a.desired.domains.clone(),
        status: Some("running:healthy".to_owned()),
        mark: Some(a.mark.clone()),
    }
}

#[async_trait]
impl AppHost for FakeApps {
    async fn preflight(&self, target: &Target) -> Result<ResolvedTarget, ProviderError> {
        self.0.state().calls.push("preflight");
        Ok(ResolvedTarget {
            version: ServerVersion::parse("4.3.11").unwrap_or(ServerVersion {
                major: 4,
                minor: 3,
                patch: 11,
                pre: None,
            }),
            project_uuid: format!("p-{}", target.project),
            project_name: target.project.clone(),
            environment_uuid: format!("e-{}", target.environment),
            environment_name: target.environment.clone(),
            server_uuid: format!("s-{}", target.server),
            server_name: target.server.clone(),
            destination_uuid: None,
        })
    }

    async fn find_app(
        &self,
        _target: &ResolvedTarget,
        lookup: &AppLookup,
    ) -> Result<Option<RemoteApp>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("find_app");
        if let Some(uuid) = &lookup.uuid {
            return Ok(s.apps.get(uuid).map(|a| remote(uuid, a)));
        }
        let found: Vec<RemoteApp> = s
            .apps
            .iter()
            .filter(|(_, a)| a.name == lookup.name && a.mark.deployment == lookup.deployment)
            .map(|(u, a)| remote(u, a))
            .collect();
        match found.len() {
            0 | 1 => Ok(found.into_iter().next()),
            _ => Err(error(
                COOLIFY,
                "find application",
                ErrorKind::AmbiguousMatch {
                    candidates: found.into_iter().map(|a| a.uuid).collect(),
                },
            )),
        }
    }

    async fn create_app(
        &self,
        _target: &ResolvedTarget,
        desired: &AppDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteApp, ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("create_app");
        let lose = faulted(COOLIFY, "create application", fault)?;
        let uuid = s.id("app-");
        let app = FakeApp {
            kind: desired.source.kind(),
            name: desired.name.clone(),
            desired: desired.clone(),
            env: BTreeMap::new(),
            mark: mark.clone(),
            deployments: Vec::new(),
        };
        let r = remote(&uuid, &app);
        s.apps.insert(uuid, app);
        if lose {
            return Err(lost(COOLIFY, "create application"));
        }
        Ok(r)
    }

    async fn update_app(
        &self,
        app: &RemoteApp,
        desired: &AppDesired,
        _previous: Option<&AppDesired>,
    ) -> Result<Vec<String>, ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("update_app");
        let lose = faulted(COOLIFY, "update application", fault)?;
        let Some(a) = s.apps.get_mut(&app.uuid) else {
            return Err(error(COOLIFY, "update application", ErrorKind::NotFound));
        };
        let changed = changed_fields(&a.desired, desired);
        a.desired = AppDesired {
            env: a.desired.env.clone(),
            ..desired.clone()
        };
        if lose {
            return Err(lost(COOLIFY, "update application"));
        }
        Ok(changed)
    }

    async fn app_drift(
        &self,
        app: &RemoteApp,
        desired: &AppDesired,
        _previous: Option<&AppDesired>,
    ) -> Result<Vec<crate::plan::Drift>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("app_drift");
        let Some(a) = s.apps.get(&app.uuid) else {
            return Err(error(COOLIFY, "check application", ErrorKind::NotFound));
        };
        let mut fields = changed_fields(&a.desired, desired);
        for v in &desired.env {
            if a.env.get(&v.key).map(String::as_str) != Some(v.value.expose()) {
                fields.push(format!("env.{}", v.key));
            }
        }
        Ok(fields
            .into_iter()
            .map(|field| crate::plan::Drift {
                field,
                journal: None,
                remote: None,
            })
            .collect())
    }

    async fn reconcile_env(
        &self,
        app: &RemoteApp,
        env: &[EnvVarDesired],
    ) -> Result<EnvDiff, ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("reconcile_env");
        let lose = faulted(COOLIFY, "set environment", fault)?;
        let Some(a) = s.apps.get_mut(&app.uuid) else {
            return Err(error(COOLIFY, "set environment", ErrorKind::NotFound));
        };
        let mut diff = EnvDiff::default();
        for v in env {
            match a.env.get(&v.key) {
                None => diff.created.push(v.key.clone()),
                Some(old) if old != v.value.expose() => diff.updated.push(v.key.clone()),
                Some(_) => diff.unchanged.push(v.key.clone()),
            }
            a.env.insert(v.key.clone(), v.value.expose().to_owned());
        }
        let wanted: Vec<&str> = env.iter().map(|v| v.key.as_str()).collect();
        let extra: Vec<String> = a
            .env
            .keys()
            .filter(|k| !wanted.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in extra {
            a.env.remove(&k);
            diff.deleted.push(k);
        }
        if lose {
            return Err(lost(COOLIFY, "set environment"));
        }
        Ok(diff)
    }

    async fn deploy(&self, app: &RemoteApp, _force: bool) -> Result<DeploymentRef, ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("deploy");
        let lose = faulted(COOLIFY, "deploy", fault)?;
        let uuid = s.id("dep-");
        let Some(a) = s.apps.get_mut(&app.uuid) else {
            return Err(error(COOLIFY, "deploy", ErrorKind::NotFound));
        };
        a.deployments.push((uuid.clone(), DeploymentState::Queued));
        if lose {
            return Err(lost(COOLIFY, "deploy"));
        }
        Ok(DeploymentRef {
            kind: app.kind,
            app_uuid: app.uuid.clone(),
            deployment_uuid: Some(uuid),
            already_queued: false,
            started: false,
        })
    }

    async fn latest_deployment(&self, app: &RemoteApp) -> Result<Option<String>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("latest_deployment");
        Ok(s.apps
            .get(&app.uuid)
            .and_then(|a| a.deployments.last().map(|(u, _)| u.clone())))
    }

    async fn deployment_after(
        &self,
        app: &RemoteApp,
        after: Option<&str>,
    ) -> Result<Option<DeploymentRef>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("deployment_after");
        Ok(s.apps.get(&app.uuid).and_then(|a| {
            let newer = match after {
                None => &a.deployments[..],
                Some(after) => match a.deployments.iter().position(|(u, _)| u == after) {
                    Some(i) => &a.deployments[i + 1..],
                    None => &a.deployments[..],
                },
            };
            newer.last().map(|(u, st)| DeploymentRef {
                kind: app.kind,
                app_uuid: app.uuid.clone(),
                deployment_uuid: Some(u.clone()),
                already_queued: false,
                started: *st != DeploymentState::Queued,
            })
        }))
    }

    async fn active_deployment(
        &self,
        app: &RemoteApp,
    ) -> Result<Option<DeploymentRef>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("active_deployment");
        Ok(s.apps.get(&app.uuid).and_then(|a| {
            a.deployments
                .iter()
                .rev()
                .find(|(_, st)| !st.is_terminal())
                .map(|(u, st)| DeploymentRef {
                    kind: app.kind,
                    app_uuid: app.uuid.clone(),
                    deployment_uuid: Some(u.clone()),
                    already_queued: true,
                    started: *st != DeploymentState::Queued,
                })
        }))
    }

    async fn deployment_status(
        &self,
        deployment: &DeploymentRef,
    ) -> Result<DeploymentStatus, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("deployment_status");
        let ends = s.deploy_ends.clone().unwrap_or(DeploymentState::Finished);
        let a = s
            .apps
            .get_mut(&deployment.app_uuid)
            .ok_or_else(|| error(COOLIFY, "read deployment", ErrorKind::NotFound))?;
        let d = a
            .deployments
            .iter_mut()
            .find(|(u, _)| Some(u) == deployment.deployment_uuid.as_ref())
            .ok_or_else(|| error(COOLIFY, "read deployment", ErrorKind::NotFound))?;
        // Each read moves a deployment on: queued → in progress → its end.
        d.1 = match &d.1 {
            DeploymentState::Queued => DeploymentState::InProgress,
            DeploymentState::InProgress => ends,
            other => other.clone(),
        };
        Ok(DeploymentStatus {
            state: d.1.clone(),
            url: None,
            commit: None,
        })
    }

    async fn wait_deployment(
        &self,
        deployment: &DeploymentRef,
        wait: WaitOptions,
        progress: Progress<'_>,
    ) -> Result<DeploymentStatus, ProviderError> {
        let start = std::time::Instant::now();
        loop {
            let status = self.deployment_status(deployment).await?;
            progress(&status, start.elapsed());
            if status.state.is_terminal() {
                return Ok(status);
            }
            if start.elapsed() > wait.timeout {
                return Err(error(
                    COOLIFY,
                    "wait for deployment",
                    ErrorKind::DeadlineExceeded {
                        after: wait.timeout,
                    },
                ));
            }
            tokio::task::yield_now().await;
        }
    }

    async fn runtime_logs(
        &self,
        _kind: AppKind,
        uuid: &str,
        lines: u32,
    ) -> Result<String, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("runtime_logs");
        let a = s
            .apps
            .get(uuid)
            .ok_or_else(|| error(COOLIFY, "read application logs", ErrorKind::NotFound))?;
        if !matches!(a.deployments.last(), Some((_, DeploymentState::Finished))) {
            return Err(error(
                COOLIFY,
                "read application logs",
                ErrorKind::Validation { fields: Vec::new() },
            )
            .with_message("the application is not running"));
        }
        let all: Vec<String> = a
            .env
            .iter()
            .map(|(k, v)| format!("{} started with {k}={v}", a.name))
            .collect();
        let from = all.len().saturating_sub(lines as usize);
        Ok(all[from..].join("\n"))
    }

    async fn build_log(&self, deployment_uuid: &str) -> Result<BuildLog, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("build_log");
        let found = s.apps.values().find_map(|a| {
            a.deployments
                .iter()
                .find(|(u, _)| u == deployment_uuid)
                .map(|(_, state)| (a.name.clone(), state.clone()))
        });
        let (name, state) =
            found.ok_or_else(|| error(COOLIFY, "read deployment", ErrorKind::NotFound))?;
        let mut lines = vec![LogLine {
            stream: LogStream::Stdout,
            text: format!("Starting deployment of {name}."),
        }];
        if state == DeploymentState::Failed {
            lines.push(LogLine {
                stream: LogStream::Stderr,
                text: "Deployment failed.".to_owned(),
            });
        }
        Ok(BuildLog::Lines(lines))
    }

    async fn delete_app(
        &self,
        _kind: AppKind,
        uuid: &str,
        _wait: Option<WaitOptions>,
    ) -> Result<DeleteOutcome, ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("delete_app");
        let lose = faulted(COOLIFY, "delete application", fault)?;
        let gone = s.apps.remove(uuid).is_none();
        if lose {
            return Err(lost(COOLIFY, "delete application"));
        }
        Ok(DeleteOutcome { already_gone: gone })
    }

    async fn list_owned(&self) -> Result<Vec<OwnedRemote>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("list_apps");
        Ok(s.apps
            .iter()
            .map(|(u, a)| OwnedRemote {
                kind: a.kind,
                uuid: u.clone(),
                name: a.name.clone(),
                mark: a.mark.clone(),
            })
            .collect())
    }
}

/// [`Dns`] over a [`FakeWorld`].
#[derive(Debug)]
pub struct FakeDns(FakeWorld);

const CLOUDFLARE: ProviderName = ProviderName::Cloudflare;

#[async_trait]
impl Dns for FakeDns {
    async fn find_zone(&self, name: &str) -> Result<Zone, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("find_zone");
        if s.zones.iter().any(|z| z == name) {
            Ok(Zone {
                id: format!("zone-{name}"),
                name: name.to_owned(),
            })
        } else {
            Err(error(CLOUDFLARE, "find zone", ErrorKind::NotFound))
        }
    }

    async fn zone_for(&self, fqdn: &str) -> Result<Zone, ProviderError> {
        let zone = {
            let s = self.0.state();
            s.zones
                .iter()
                .filter(|z| fqdn == z.as_str() || fqdn.ends_with(&format!(".{z}")))
                .max_by_key(|z| z.len())
                .cloned()
        };
        match zone {
            Some(z) => self.find_zone(&z).await,
            None => Err(error(CLOUDFLARE, "find zone", ErrorKind::NotFound)),
        }
    }

    async fn records_at(
        &self,
        zone: &Zone,
        name: &str,
    ) -> Result<Vec<RemoteRecord>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("records_at");
        Ok(s.records
            .values()
            .filter(|r| r.zone == zone.name && r.record.name == name)
            .map(|r| r.record.clone())
            .collect())
    }

    async fn list_records(
        &self,
        zone: &Zone,
        kind: RecordType,
        name: &str,
    ) -> Result<Vec<RemoteRecord>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("list_records");
        Ok(s.records
            .values()
            .filter(|r| r.zone == zone.name && r.record.kind == kind.as_str())
            .filter(|r| r.record.name == name)
            .map(|r| r.record.clone())
            .collect())
    }

    async fn create_record(
        &self,
        zone: &Zone,
        desired: &RecordDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteRecord, ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("create_record");
        let lose = faulted(CLOUDFLARE, "create record", fault)?;
        let same = s
            .records
            .values()
            .find(|r| {
                r.zone == zone.name
                    && r.record.kind == desired.kind.as_str()
                    && r.record.name == desired.name
                    && desired.kind.same(&r.record.content, &desired.content)
            })
            .map(|r| r.record.clone());
        if let Some(r) = same {
            return match &r.mark {
                Some(m) if m == mark => Ok(r),
                _ => Err(error(CLOUDFLARE, "create record", ErrorKind::NotOwned)),
            };
        }
        let id = s.id("rec-");
        let record = RemoteRecord {
            id: id.clone(),
            kind: desired.kind.as_str().to_owned(),
            name: desired.name.clone(),
            content: desired.content.clone(),
            ttl: desired.ttl,
            proxied: desired.proxied,
            comment: Some(mark.to_text()),
            tags: Vec::new(),
            mark: Some(mark.clone()),
        };
        s.records.insert(
            id,
            FakeRecord {
                zone: zone.name.clone(),
                record: record.clone(),
            },
        );
        if lose {
            return Err(lost(CLOUDFLARE, "create record"));
        }
        Ok(record)
    }

    async fn update_record(
        &self,
        _zone: &Zone,
        remote: &RemoteRecord,
        desired: &RecordDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteRecord, ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("update_record");
        let lose = faulted(CLOUDFLARE, "update record", fault)?;
        let r = s
            .records
            .get_mut(&remote.id)
            .ok_or_else(|| error(CLOUDFLARE, "update record", ErrorKind::NotFound))?;
        if r.record.mark.as_ref().map(|m| &m.deployment) != Some(&mark.deployment) && !desired.adopt
        {
            return Err(error(CLOUDFLARE, "update record", ErrorKind::NotOwned));
        }
        r.record.content = desired.content.clone();
        r.record.ttl = desired.ttl;
        r.record.proxied = desired.proxied;
        let out = r.record.clone();
        if lose {
            return Err(lost(CLOUDFLARE, "update record"));
        }
        Ok(out)
    }

    async fn delete_record(&self, _zone: &Zone, id: &str) -> Result<DeleteOutcome, ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("delete_record");
        let lose = faulted(CLOUDFLARE, "delete record", fault)?;
        let gone = s.records.remove(id).is_none();
        if lose {
            return Err(lost(CLOUDFLARE, "delete record"));
        }
        Ok(DeleteOutcome { already_gone: gone })
    }

    async fn list_owned(&self, zone: &Zone) -> Result<Vec<RemoteRecord>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("list_owned_records");
        Ok(s.records
            .values()
            .filter(|r| r.zone == zone.name && r.record.mark.is_some())
            .map(|r| r.record.clone())
            .collect())
    }
}

/// [`Monitors`] over a [`FakeWorld`].
#[derive(Debug)]
pub struct FakeMonitors(FakeWorld);

const KUMA: ProviderName = ProviderName::UptimeKuma;

fn remote_monitor(id: u64, m: &FakeMonitor) -> RemoteMonitor {
    RemoteMonitor {
        id: MonitorId(id),
        name: m.desired.name.clone(),
        kind: "http".to_owned(),
        url: Some(m.desired.url.clone()),
        active: m.active,
        mark: m.mark.clone(),
        fields: Some(super::MonitorFields {
            keyword: m.desired.keyword.clone(),
            interval: m.desired.interval,
            retry_interval: m.desired.retry_interval,
            retries: m.desired.retries,
            accepted_status: m.desired.accepted_status.clone(),
            notification_ids: m.desired.notification_ids.clone(),
        }),
    }
}

#[async_trait]
impl Monitors for FakeMonitors {
    async fn find_owned(
        &self,
        deployment: &DeploymentId,
    ) -> Result<Vec<RemoteMonitor>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("find_monitors");
        Ok(s.monitors
            .iter()
            .filter(|(_, m)| m.mark.as_ref().is_some_and(|k| &k.deployment == deployment))
            .map(|(id, m)| remote_monitor(*id, m))
            .collect())
    }

    async fn create(
        &self,
        desired: &MonitorDesired,
        mark: &OwnershipMark,
    ) -> Result<RemoteMonitor, ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("create_monitor");
        let lose = faulted(KUMA, "add monitor", fault)?;
        s.next += 1;
        let id = s.next;
        let m = FakeMonitor {
            desired: desired.clone(),
            active: true,
            mark: Some(mark.clone()),
        };
        let r = remote_monitor(id, &m);
        s.monitors.insert(id, m);
        if lose {
            return Err(lost(KUMA, "add monitor"));
        }
        Ok(r)
    }

    async fn update(&self, id: MonitorId, desired: &MonitorDesired) -> Result<(), ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("update_monitor");
        let lose = faulted(KUMA, "edit monitor", fault)?;
        let m = s
            .monitors
            .get_mut(&id.0)
            .ok_or_else(|| error(KUMA, "edit monitor", ErrorKind::NotFound))?;
        m.desired = desired.clone();
        m.active = true;
        if lose {
            return Err(lost(KUMA, "edit monitor"));
        }
        Ok(())
    }

    async fn delete(&self, id: MonitorId) -> Result<(), ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("delete_monitor");
        let lose = faulted(KUMA, "delete monitor", fault)?;
        s.monitors.remove(&id.0);
        if lose {
            return Err(lost(KUMA, "delete monitor"));
        }
        Ok(())
    }

    async fn pause(&self, id: MonitorId) -> Result<(), ProviderError> {
        let mut s = self.0.state();
        s.calls.push("pause_monitor");
        if let Some(m) = s.monitors.get_mut(&id.0) {
            m.active = false;
        }
        Ok(())
    }

    async fn resume(&self, id: MonitorId) -> Result<(), ProviderError> {
        let mut s = self.0.state();
        s.calls.push("resume_monitor");
        if let Some(m) = s.monitors.get_mut(&id.0) {
            m.active = true;
        }
        Ok(())
    }

    async fn notification_ids(&self) -> Result<Option<Vec<u64>>, ProviderError> {
        Ok(None)
    }

    async fn list_owned(&self) -> Result<Vec<RemoteMonitor>, ProviderError> {
        let mut s = self.0.state();
        s.calls.push("list_monitors");
        Ok(s.monitors
            .iter()
            .filter(|(_, m)| m.mark.is_some())
            .map(|(id, m)| remote_monitor(*id, m))
            .collect())
    }
}

/// A [`Notifier`] that keeps what it was sent in the [`FakeWorld`].
#[derive(Debug)]
pub struct FakeNotifier(FakeWorld, String);

#[async_trait]
impl Notifier for FakeNotifier {
    async fn send(&self, n: &Notification) -> Result<(), ProviderError> {
        let mut s = self.0.state();
        let fault = s.fault("notify");
        faulted(ProviderName::Webhook, "send", fault)?;
        s.sent
            .push((self.1.clone(), n.event.clone(), n.summary.clone()));
        Ok(())
    }
}

/// [`Images`] over a [`FakeWorld`]: every tag names a digest of its own,
/// which moves on each push (`FakeState::pushes`); `image_digest` faults
/// make a lookup fail.
#[derive(Debug)]
pub struct FakeImages(FakeWorld);

#[async_trait]
impl Images for FakeImages {
    async fn digest(&self, image: &ImageRef) -> Result<ImageDigest, ProviderError> {
        let mut st = self.0.state();
        if faulted(
            ProviderName::Registry,
            "image_digest",
            st.fault("image_digest"),
        )? {
            return Err(lost(ProviderName::Registry, "image_digest"));
        }
        if let Some(d) = &image.digest {
            return Ok(d.clone());
        }
        let name = format!("{}:{}", image.name(), image.tag_or_latest());
        let pushes = st.pushes.get(&name).copied().unwrap_or(0);
        Ok(ImageDigest::of(format!("{name}#{pushes}").as_bytes()))
    }
}

/// A [`Probe`] that answers from the [`FakeWorld`]: a name serves 200 when
/// an application with that domain has a finished deployment.
#[derive(Debug)]
pub struct FakeProbe(FakeWorld);

impl FakeProbe {
    fn serving(&self, host: &str) -> bool {
        let s = self.0.state();
        !s.unhealthy
            && s.apps.values().any(|a| {
                a.deployments
                    .iter()
                    .any(|(_, st)| *st == DeploymentState::Finished)
                    && a.desired.domains.iter().any(|d| host_of(d) == host)
            })
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split("://").nth(1).unwrap_or(url);
    rest.split(['/', ':']).next().unwrap_or(rest)
}

#[async_trait]
impl Probe for FakeProbe {
    async fn http(
        &self,
        url: &str,
        expect_status: u16,
        _expect_body: Option<&str>,
    ) -> CheckResult<HttpEvidence> {
        let status = if self.serving(host_of(url)) { 200 } else { 503 };
        let ev = HttpEvidence {
            url: url.to_owned(),
            status,
            elapsed_ms: 1,
            body_start: String::new(),
            addresses: Vec::new(),
            unreachable: Vec::new(),
        };
        if status == expect_status {
            Ok(ev)
        } else {
            Err((
                CheckError(format!("{url} answered {status}, expected {expect_status}")),
                Some(ev),
            ))
        }
    }

    async fn tls(
        &self,
        host: &str,
        _port: u16,
        _min_days: i64,
        _now: jiff::Timestamp,
    ) -> CheckResult<TlsEvidence> {
        if self.serving(host) {
            Ok(TlsEvidence {
                host: host.to_owned(),
                subject: format!("CN={host}"),
                issuer: "CN=fake".to_owned(),
                not_after: "2099-01-01T00:00:00Z".to_owned(),
                days_left: 365,
                addresses: Vec::new(),
                unreachable: Vec::new(),
            })
        } else {
            Err((CheckError(format!("cannot connect to {host}:443")), None))
        }
    }

    async fn dns(
        &self,
        name: &str,
        kind: spec::RecordType,
        expected: &DnsExpectation,
    ) -> CheckResult<DnsEvidence> {
        let answers: Vec<String> = self
            .0
            .state()
            .records
            .values()
            .filter(|r| r.record.name == name && r.record.kind == kind.as_str())
            .map(|r| spec::canonical_content(kind, &r.record.content))
            .collect();
        crate::verify::judge(name, kind, expected, answers, "NOERROR")
    }
}
