//! `fabrik doctor [SPEC]`: every credential and every target checked at
//! once, each problem in one report, nothing changed and nothing
//! journaled.
//!
//! A run's preflight stops at its first problem (it is about to change
//! things); the doctor goes on, so that one command shows everything to
//! fix: the credentials that are not set, then for each service whether it
//! answers, and what the spec names there (Coolify's project, environment
//! and server; the DNS zone; Uptime Kuma and the notifications the
//! monitors use).

use serde::Serialize;

use super::Prepared;
use crate::engine::EngineError;
use crate::engine::preflight;
use crate::provider::registry::{ConnectError, Need};
use crate::provider::{Connect, ConnectRequest};

/// One check and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `credentials`, `coolify`, `dns`, `monitors`.
    pub service: &'static str,
    /// What was checked.
    pub what: String,
    /// The problem, if any (escaped for a terminal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn ok(service: &'static str, what: String) -> Self {
        Self {
            service,
            what,
            problem: None,
            hint: None,
        }
    }

    fn failed(service: &'static str, what: String, e: &EngineError) -> Self {
        Self {
            service,
            what,
            problem: Some(crate::text::printable_line(&e.text()).into_owned()),
            hint: e.hint(),
        }
    }
}

/// Checks what `prepared` needs of `connector`, everything at once.
pub async fn doctor(connector: &dyn Connect, prepared: &Prepared) -> Vec<Check> {
    let spec = &prepared.loaded.spec;
    let need = |yes: bool| if yes { Need::Required } else { Need::No };
    let request = ConnectRequest {
        spec: Some(spec),
        secrets: Some(&prepared.secrets),
        env: &prepared.env,
        dns: need(spec.dns.is_some()),
        monitors: need(!spec.monitors.is_empty()),
        retries: None,
    };
    let mut checks = Vec::new();
    let remote = match connector.connect(request).await {
        Ok(remote) => {
            checks.push(Check::ok(
                "credentials",
                "every credential the spec needs is set".to_owned(),
            ));
            remote
        }
        Err(e @ ConnectError::Missing { .. }) => {
            checks.push(Check::failed(
                "credentials",
                "the credentials the spec needs".to_owned(),
                &e.into(),
            ));
            return checks;
        }
        Err(e) => {
            checks.push(Check::failed(
                "credentials",
                "connecting to the services".to_owned(),
                &e.into(),
            ));
            return checks;
        }
    };
    let providers = &remote.providers;
    let target = preflight::coolify_target(spec);
    let what = format!(
        "Coolify: project {}, environment {}, server {}",
        target.project, target.environment, target.server
    );
    checks.push(match providers.app.preflight(&target).await {
        Ok(_) => Check::ok("coolify", what),
        Err(e) => Check::failed(
            "coolify",
            what,
            &EngineError::provider("checking Coolify", e),
        ),
    });
    if let (Some(dns), Some(d)) = (&providers.dns, &spec.dns) {
        let zone = d.zone_name();
        let what = format!("DNS: zone {zone}");
        checks.push(match dns.find_zone(&zone).await {
            Ok(_) => Check::ok("dns", what),
            Err(e) => Check::failed(
                "dns",
                what,
                &EngineError::provider(format!("finding zone {zone}"), e),
            ),
        });
    }
    if let Some(m) = &providers.monitors {
        let what = "Uptime Kuma: login and monitors".to_owned();
        checks.push(match m.find_owned(&spec.name).await {
            Ok(_) => Check::ok("monitors", what),
            Err(e) => Check::failed(
                "monitors",
                what,
                &EngineError::provider("checking Uptime Kuma", e),
            ),
        });
        let what = "Uptime Kuma: the monitors' notifications".to_owned();
        checks.push(match m.notification_ids().await {
            Ok(Some(known)) => match preflight::known_notifications(spec, &known) {
                Ok(()) => Check::ok("monitors", what),
                Err(e) => Check::failed("monitors", what, &e),
            },
            Ok(None) => Check::ok("monitors", what),
            Err(e) => Check::failed(
                "monitors",
                what,
                &EngineError::provider("reading Uptime Kuma's notifications", e),
            ),
        });
    }
    checks
}
