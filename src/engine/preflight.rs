//! Before any change: the providers handed in are connected, and every one
//! the run needs is checked (credentials, the Coolify target, the DNS zone,
//! Uptime Kuma), all at once, so a run fails before it changes anything
//! when one is wrong, naming every problem found.

use std::sync::{Arc, Mutex};

use futures_util::StreamExt as _;

use super::{Connected, EngineError, Journal, note, record, scrub, with};
use crate::event::{AttemptFailed, Event, ResourceKind};
use crate::projection::DeploymentView;
use crate::provider::registry::{Env, Need};
use crate::provider::{
    Connect, ConnectRequest, Providers, ResolvedTarget, RetryEvent, RetryObserver, ServerVersion,
    Target as CoolifyTarget, Zone,
};
use crate::spec::Spec;
use crate::spec::secrets::ResolvedSecrets;

/// Journals every retry of a provider call as `attempt_failed`, in the
/// journal of the moment: a connection made before its run started (the
/// refresh that decides whether there is anything to do) is handed to the
/// run ([`Connected::hand_to`]).
pub struct RetryLog(Mutex<Journal>);

impl RetryLog {
    fn new(journal: &Journal) -> Self {
        Self(Mutex::new(journal.clone()))
    }

    fn journal(&self) -> Journal {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Journals the retries from now on in `journal`.
    pub fn to(&self, journal: &Journal) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = journal.clone();
    }
}

impl std::fmt::Debug for RetryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryLog")
    }
}

impl RetryObserver for RetryLog {
    fn on_retry(&self, e: &RetryEvent) {
        let journal = self.journal();
        let reason = scrub(&journal, &e.reason);
        let _ = record(
            &journal,
            Event::AttemptFailed(AttemptFailed {
                operation: format!("{} {}", e.provider, e.operation),
                attempt: e.attempt,
                reason: reason.clone(),
                delay_ms: e.delay.as_millis() as u64,
            }),
        );
        note(
            &journal,
            &format!(
                "{} {}: {reason}; retrying in {} ms (attempt {})",
                e.provider,
                e.operation,
                e.delay.as_millis(),
                e.attempt + 1
            ),
        );
    }
}

/// What a run of `spec` needs to connect to.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The spec.
    pub spec: &'a Spec,
    /// Its resolved secrets (webhooks use them).
    pub secrets: &'a ResolvedSecrets,
    /// Credentials.
    pub env: &'a Env,
    /// What the journal says exists (resources the spec no longer has
    /// still need their provider to be deleted).
    pub view: &'a DeploymentView,
}

impl Scope<'_> {
    /// Whether the journal has resources of `kind` that exist or may
    /// exist (an intent without outcome): the run may have to delete or
    /// look them up.
    fn has_live(&self, kind: ResourceKind) -> bool {
        self.view.resources.values().any(|r| {
            r.kind == kind && (r.exists() || r.status == crate::projection::ResourceStatus::Pending)
        })
    }

    /// The zone the run's records live in: the spec's, or for records the
    /// spec no longer has, the one the journal recorded.
    fn zone_name(&self) -> Result<Option<String>, EngineError> {
        if let Some(dns) = &self.spec.dns {
            return Ok(Some(dns.zone_name()));
        }
        for r in self.view.resources.values() {
            if r.kind == ResourceKind::DnsRecord
                && let Some(s) = super::resource::decode::<super::resource::dns::RecordState>(r)?
            {
                return Ok(Some(s.zone));
            }
        }
        Ok(None)
    }
}

/// What the spec asks that this Coolify release cannot do, found before
/// anything changes (not half-way, after the DNS records).
fn unsupported(spec: &Spec, version: &ServerVersion) -> Option<EngineError> {
    use crate::spec::model::{AppSource, BuildPack};
    match &spec.app.source {
        AppSource::Git(g)
            if g.build_pack == BuildPack::Railpack && !version.supports_railpack() =>
        {
            Some(EngineError::Refused {
                message: format!(
                    "the railpack build pack exists from Coolify 4.1.0; this server runs {version}"
                ),
                hint: "use `build_pack: nixpacks`, or upgrade Coolify".to_owned(),
            })
        }
        _ => None,
    }
}

/// Connects and checks access: Coolify's target, the DNS zone, Uptime
/// Kuma. On failure, what was connected so far comes back with the error
/// (the failure path may still notify).
pub async fn connect(
    journal: &Journal,
    connector: &dyn Connect,
    scope: Scope<'_>,
) -> Result<Connected, (EngineError, Option<Connected>)> {
    let need = |in_spec: bool, kind| {
        if in_spec || scope.has_live(kind) {
            Need::Required
        } else {
            Need::No
        }
    };
    let retries = Arc::new(RetryLog::new(journal));
    let remote = connector
        .connect(ConnectRequest {
            spec: Some(scope.spec),
            secrets: Some(scope.secrets),
            env: scope.env,
            dns: need(scope.spec.dns.is_some(), ResourceKind::DnsRecord),
            monitors: need(!scope.spec.monitors.is_empty(), ResourceKind::Monitor),
            retries: Some(retries.clone()),
        })
        .await
        .map_err(|e| (EngineError::from(e), None))?;
    with(journal, |r| r.scrub(&remote.scrubber));
    let tag =
        with(journal, |r| r.store().journal_id()).map_err(|e| (EngineError::from(e), None))?;
    let mut connected = Connected {
        remote,
        target: None,
        zone: None,
        retries,
        journal: Some(tag.tag()),
    };
    let zone_name = match scope.zone_name() {
        Ok(z) => z,
        Err(e) => return Err((e, Some(connected))),
    };
    note(journal, "checking access to the services");
    let found = check(
        &connected.remote.providers,
        scope.spec,
        zone_name,
        &new_names(&scope),
    )
    .await;
    let mut problems = Vec::new();
    match found.coolify.result {
        Ok(t) => connected.target = Some(t),
        Err(e) => problems.push(e),
    }
    match found.dns.map(|f| f.result) {
        Some(Ok(z)) => connected.zone = Some(z),
        Some(Err(e)) => problems.push(e),
        None => {}
    }

    for f in [found.monitors, found.notifications].into_iter().flatten() {
        if let Err(e) = f.result {
            problems.push(e);
        }
    }
    match EngineError::all(problems) {
        None => Ok(connected),
        Some(e) => Err((e, Some(connected))),
    }
}

/// The names of the spec's records at which the journal has no record:
/// those the run will create at, each looked at before its create
/// ([`crate::engine::resource::dns::check_creates`]).
fn new_names(scope: &Scope<'_>) -> Vec<String> {
    let Some(spec_dns) = &scope.spec.dns else {
        return Vec::new();
    };
    let known: Vec<String> = scope
        .view
        .resources
        .values()
        .filter(|r| r.kind == ResourceKind::DnsRecord)
        .filter_map(|r| {
            super::resource::decode::<super::resource::dns::RecordState>(r)
                .ok()
                .flatten()
        })
        .map(|s| s.name.to_ascii_lowercase())
        .collect();
    let mut names: Vec<String> = spec_dns
        .records
        .iter()
        .map(|r| spec_dns.fqdn(r).to_ascii_lowercase())
        .filter(|n| !known.contains(n))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// One check of [`check`]: which service, what was checked, what came of
/// it.
#[derive(Debug)]
pub struct Finding<T> {
    /// `coolify`, `dns`, `monitors`.
    pub service: &'static str,
    /// What was checked.
    pub what: String,
    /// What it found.
    pub result: Result<T, EngineError>,
}

/// Names looked at side by side at most by [`check`].
const PARALLEL_LOOKS: usize = 16;

/// What [`check`] found, service by service.
#[derive(Debug)]
pub struct Findings {
    /// Coolify: the API, the token's abilities, the project, environment
    /// and server (and that the server's version can do what the spec asks).
    pub coolify: Finding<ResolvedTarget>,
    /// The DNS zone, when there is one to check.
    pub dns: Option<Finding<Zone>>,
    /// The Uptime Kuma login, when there are monitors.
    pub monitors: Option<Finding<()>>,
    /// That Uptime Kuma has the notifications the monitors name (after a
    /// login that worked).
    pub notifications: Option<Finding<()>>,
}

/// Every check of what the spec needs of `providers`, nothing changed: the
/// services are independent, so they are asked at once (Coolify's own
/// lookups likewise, [`crate::provider::AppHost::preflight`]). Shared by
/// apply's preflight and `fabrik doctor`.
///
/// Once the zone is found, what each of `new_names` holds is listed too,
/// side by side with the rest: the answers wait in the provider for the
/// look before each create (until the run writes at the name); a failure
/// is left for that look to meet and report.
pub async fn check(
    providers: &Providers,
    spec: &Spec,
    zone: Option<String>,
    new_names: &[String],
) -> Findings {
    let target = coolify_target(spec);
    let coolify = async {
        let result = match providers.app.preflight(&target).await {
            Ok(r) => match unsupported(spec, &r.version) {
                Some(problem) => Err(problem),
                None => Ok(r),
            },
            Err(e) => Err(EngineError::provider("checking Coolify", e)),
        };
        Finding {
            service: "coolify",
            what: format!(
                "Coolify: project {}, environment {}, server {}",
                target.project, target.environment, target.server
            ),
            result,
        }
    };
    let dns = async {
        let (client, zone) = (providers.dns.as_ref()?, zone?);
        let result = client
            .find_zone(&zone)
            .await
            .map_err(|e| EngineError::provider(format!("finding zone {zone}"), e));
        if let Ok(found) = &result {
            futures_util::stream::iter(new_names)
                .for_each_concurrent(PARALLEL_LOOKS, |name| async move {
                    let _ = client.records_at(found, name).await;
                })
                .await;
        }
        Some(Finding {
            service: "dns",
            what: format!("DNS: zone {zone}"),
            result,
        })
    };
    let monitors = async {
        let Some(m) = &providers.monitors else {
            return (None, None);
        };
        let login = m
            .find_owned(&spec.name)
            .await
            .map(|_| ())
            .map_err(|e| EngineError::provider("checking Uptime Kuma", e));
        // An unknown id makes Uptime Kuma save a monitor and then fail
        // (kuma notes §2): refused here, before any change.
        let notifications = match login {
            Ok(()) => Some(Finding {
                service: "monitors",
                what: "Uptime Kuma: the monitors' notifications".to_owned(),
                result: match m.notification_ids().await {
                    Ok(Some(known)) => known_notifications(spec, &known),
                    Ok(None) => Ok(()),
                    Err(e) => Err(EngineError::provider(
                        "reading Uptime Kuma's notifications",
                        e,
                    )),
                },
            }),
            Err(_) => None,
        };
        let login = Finding {
            service: "monitors",
            what: "Uptime Kuma: login and monitors".to_owned(),
            result: login,
        };
        (Some(login), notifications)
    };
    let (coolify, dns, (monitors, notifications)) = tokio::join!(coolify, dns, monitors);
    Findings {
        coolify,
        dns,
        monitors,
        notifications,
    }
}

/// Where in Coolify the spec's application lives.
pub(crate) fn coolify_target(spec: &Spec) -> CoolifyTarget {
    let t = &spec.coolify;
    CoolifyTarget {
        project: t.project.text().to_owned(),
        environment: t.environment.text().to_owned(),
        server: t.server.text().to_owned(),
        destination: t.destination.as_ref().map(|d| d.text().to_owned()),
    }
}

/// Every notification id of the spec's monitors is one Uptime Kuma has.
pub(crate) fn known_notifications(spec: &Spec, known: &[u64]) -> Result<(), EngineError> {
    for (i, m) in spec.monitors.iter().enumerate() {
        if let Some(n) = m
            .notifications
            .iter()
            .find(|n| !known.contains(&u64::from(**n)))
        {
            let have = if known.is_empty() {
                "none".to_owned()
            } else {
                known
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(EngineError::Refused {
                message: format!(
                    "monitors[{i}] ({}): notification {n} does not exist in Uptime Kuma",
                    m.name
                ),
                hint: format!(
                    "use the id of a notification Uptime Kuma has (it has: {have}), or remove {n} from `monitors[{i}].notifications`"
                ),
            });
        }
    }
    Ok(())
}
