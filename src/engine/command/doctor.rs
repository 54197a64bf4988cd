//! `fabrik doctor [SPEC]`: every credential and every target checked at
//! once, each problem in one report, nothing changed and nothing
//! journaled.
//!
//! The same checks as a run's preflight ([`preflight::check`]), each
//! reported on its own line: the credentials that are not set, then for
//! each service whether it answers, and what the spec names there
//! (Coolify's project, environment and server; the DNS zone; Uptime Kuma
//! and the notifications the monitors use).

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

    fn of<T>(f: preflight::Finding<T>) -> Self {
        match f.result {
            Ok(_) => Self::ok(f.service, f.what),
            Err(e) => Self::failed(f.service, f.what, &e),
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
    let zone = spec.dns.as_ref().map(|d| d.zone_name());
    let found = preflight::check(&remote.providers, spec, zone, &[]).await;
    checks.push(Check::of(found.coolify));
    checks.extend(found.dns.map(Check::of));
    checks.extend(found.monitors.map(Check::of));
    checks.extend(found.notifications.map(Check::of));
    checks
}
