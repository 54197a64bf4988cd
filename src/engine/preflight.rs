//! Before any change: the providers handed in are connected, and every one
//! the run needs is checked (credentials, the Coolify target, the DNS zone,
//! Uptime Kuma), so a run fails before it changes anything when one is
//! wrong.

use std::sync::Arc;

use super::{Connected, EngineError, Journal, note, record, scrub, with};
use crate::event::{AttemptFailed, Event, ResourceKind};
use crate::projection::DeploymentView;
use crate::provider::registry::{Env, Need};
use crate::provider::{
    Connect, ConnectRequest, RetryEvent, RetryObserver, ServerVersion, Target as CoolifyTarget,
};
use crate::spec::Spec;
use crate::spec::secrets::ResolvedSecrets;

/// Journals every retry of a provider call as `attempt_failed`.
struct JournalRetries(Journal);

impl RetryObserver for JournalRetries {
    fn on_retry(&self, e: &RetryEvent) {
        let reason = scrub(&self.0, &e.reason);
        let _ = record(
            &self.0,
            Event::AttemptFailed(AttemptFailed {
                operation: format!("{} {}", e.provider, e.operation),
                attempt: e.attempt,
                reason: reason.clone(),
                delay_ms: e.delay.as_millis() as u64,
            }),
        );
        note(
            &self.0,
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
    fn zone_name(&self) -> Option<String> {
        if let Some(dns) = &self.spec.dns {
            return Some(dns.zone_name());
        }
        self.view
            .resources
            .values()
            .filter(|r| r.kind == ResourceKind::DnsRecord)
            .filter_map(|r| {
                super::resource::decode::<super::resource::dns::RecordState>(r)
                    .ok()
                    .flatten()
            })
            .map(|s| s.zone)
            .next()
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
    let remote = connector
        .connect(ConnectRequest {
            spec: Some(scope.spec),
            secrets: Some(scope.secrets),
            env: scope.env,
            dns: need(scope.spec.dns.is_some(), ResourceKind::DnsRecord),
            monitors: need(!scope.spec.monitors.is_empty(), ResourceKind::Monitor),
            retries: Some(Arc::new(JournalRetries(journal.clone()))),
        })
        .await
        .map_err(|e| (EngineError::from(e), None))?;
    with(journal, |r| r.scrub(&remote.scrubber));
    let mut connected = Connected {
        remote,
        target: None,
        zone: None,
    };
    note(journal, "checking access to Coolify");
    let t = &scope.spec.coolify;
    let target = CoolifyTarget {
        project: t.project.text().to_owned(),
        environment: t.environment.text().to_owned(),
        server: t.server.text().to_owned(),
        destination: t.destination.as_ref().map(|d| d.text().to_owned()),
    };
    match connected.remote.providers.app.preflight(&target).await {
        Ok(r) => {
            if let Some(problem) = unsupported(scope.spec, &r.version) {
                return Err((problem, Some(connected)));
            }
            connected.target = Some(r);
        }
        Err(e) => {
            return Err((
                EngineError::provider("checking Coolify", e),
                Some(connected),
            ));
        }
    }
    if let (Some(zone), Some(client)) = (scope.zone_name(), &connected.remote.providers.dns) {
        note(journal, "checking access to the DNS provider");
        match client.find_zone(&zone).await {
            Ok(z) => connected.zone = Some(z),
            Err(e) => {
                return Err((
                    EngineError::provider(format!("finding zone {zone}"), e),
                    Some(connected),
                ));
            }
        }
    }
    if let Some(m) = &connected.remote.providers.monitors {
        note(journal, "checking access to the monitors provider");
        if let Err(e) = m.find_owned(&scope.spec.name).await {
            return Err((
                EngineError::provider("checking Uptime Kuma", e),
                Some(connected),
            ));
        }
    }
    Ok(connected)
}
