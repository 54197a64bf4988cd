//! `fabrik gc [--delete]`: remote resources carrying Fabrik's mark that no
//! deployment of this journal owns, through the same providers every other
//! command is handed. A mark that names another journal is left alone:
//! that journal may well own it.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::view;
use crate::engine::EngineError;
use crate::engine::resource::dns::RecordState;
use crate::event::ResourceKind;
use crate::id::{DeploymentId, JournalTag};
use crate::ownership::OwnershipMark;
use crate::projection::ResourceStatus;
use crate::provider::registry::{Env, Need};
use crate::provider::{AppKind, Connect, ConnectRequest, WaitOptions};
use crate::store::EventStore;

/// A remote resource carrying Fabrik's mark that no deployment of this
/// journal owns.
#[derive(Debug, Clone, Serialize)]
pub struct Orphan {
    /// `application`, `service`, `dns_record`, `monitor`.
    pub kind: String,
    /// Its remote id.
    pub remote_id: String,
    /// Its name.
    pub name: String,
    /// The zone, for DNS records.
    pub zone: Option<String>,
    /// The mark it carries.
    pub mark: OwnershipMark,
    /// Whether `--delete` removed it.
    pub deleted: bool,
}

/// What the journal owns: every remote id of a live (or pending) resource,
/// the deployments with an unfinished run (skipped: their outcome may not
/// be journaled yet), and the zones its records live in.
struct Owned {
    ids: BTreeSet<String>,
    busy: BTreeSet<DeploymentId>,
    zones: BTreeSet<String>,
    /// This journal's tag: a mark naming another journal is that
    /// journal's business, never an orphan of this one.
    journal: JournalTag,
}

impl Owned {
    fn read(store: &dyn EventStore, zones: &[String]) -> Result<Self, EngineError> {
        let mut owned = Self {
            ids: BTreeSet::new(),
            busy: BTreeSet::new(),
            zones: zones.iter().cloned().collect(),
            journal: store.journal_id()?.tag(),
        };
        for d in store.deployments()? {
            let v = view(store, &d)?;
            if let Some(l) = &v.latest_run
                && store.run(l)?.is_some_and(|r| r.is_open())
            {
                owned.busy.insert(d.clone());
            }
            for r in v.resources.values() {
                if let Some(id) = &r.remote_id
                    && matches!(r.status, ResourceStatus::Present | ResourceStatus::Pending)
                {
                    owned.ids.insert(id.clone());
                }
                if r.kind == ResourceKind::DnsRecord
                    && let Some(s) = crate::engine::resource::decode::<RecordState>(r)?
                {
                    owned.zones.insert(s.zone);
                }
            }
        }
        Ok(owned)
    }

    fn skips(&self, id: &str, mark: &OwnershipMark) -> bool {
        self.ids.contains(id)
            || self.busy.contains(&mark.deployment)
            || mark.journal.as_ref().is_some_and(|j| *j != self.journal)
    }
}

/// `fabrik gc [--delete]`: finds orphans, and deletes those of them whose
/// remote ids are in `delete` (the ones a person saw listed and
/// confirmed; what became owned since is never deleted).
pub async fn gc(
    store: &dyn EventStore,
    connector: &dyn Connect,
    env_vars: &[(String, String)],
    dotenv: &Path,
    zones: &[String],
    delete: Option<&BTreeSet<String>>,
) -> Result<Vec<Orphan>, EngineError> {
    let chosen = |id: &str| delete.is_some_and(|d| d.contains(id));
    let env = Env::load(env_vars.iter().cloned(), dotenv)?;
    let owned = Owned::read(store, zones)?;
    let remote = connector
        .connect(ConnectRequest {
            spec: None,
            secrets: None,
            env: &env,
            dns: Need::IfConfigured,
            monitors: Need::IfConfigured,
            retries: None,
        })
        .await?;
    let providers = &remote.providers;
    let mut orphans = Vec::new();
    for a in providers
        .app
        .list_owned()
        .await
        .map_err(|e| EngineError::provider("listing Coolify resources", e))?
    {
        if owned.skips(&a.uuid, &a.mark) {
            continue;
        }
        let mut o = Orphan {
            kind: match a.kind {
                AppKind::Application => "application",
                AppKind::Service => "service",
            }
            .to_owned(),
            remote_id: a.uuid.clone(),
            name: a.name.clone(),
            zone: None,
            mark: a.mark.clone(),
            deleted: false,
        };
        if chosen(&a.uuid) {
            // Coolify deletes in the background: wait until it is gone, as
            // destroy does, so that "deleted" is true when it is printed.
            let wait = WaitOptions {
                timeout: Duration::from_secs(300),
                poll_interval: remote.pace.poll,
            };
            providers
                .app
                .delete_app(a.kind, &a.uuid, Some(wait))
                .await
                .map_err(|e| EngineError::provider(format!("deleting {}", a.uuid), e))?;
            o.deleted = true;
        }
        orphans.push(o);
    }
    if let Some(dns) = &providers.dns {
        for z in &owned.zones {
            let zone = dns
                .find_zone(z)
                .await
                .map_err(|e| EngineError::provider(format!("finding zone {z}"), e))?;
            for r in dns
                .list_owned(&zone)
                .await
                .map_err(|e| EngineError::provider(format!("listing records of {z}"), e))?
            {
                let Some(mark) = r.mark.clone() else { continue };
                if owned.skips(&r.id, &mark) {
                    continue;
                }
                let mut o = Orphan {
                    kind: "dns_record".to_owned(),
                    remote_id: r.id.clone(),
                    name: format!("{} {}", r.kind, r.name),
                    zone: Some(z.clone()),
                    mark,
                    deleted: false,
                };
                if chosen(&r.id) {
                    dns.delete_record(&zone, &r.id)
                        .await
                        .map_err(|e| EngineError::provider(format!("deleting {}", r.id), e))?;
                    o.deleted = true;
                }
                orphans.push(o);
            }
        }
    }
    if let Some(monitors) = &providers.monitors {
        for m in monitors
            .list_owned()
            .await
            .map_err(|e| EngineError::provider("listing monitors", e))?
        {
            let Some(mark) = m.mark.clone() else { continue };
            let id = m.id.to_string();
            if owned.skips(&id, &mark) {
                continue;
            }
            let mut o = Orphan {
                kind: "monitor".to_owned(),
                remote_id: id,
                name: m.name.clone(),
                zone: None,
                mark,
                deleted: false,
            };
            if chosen(&o.remote_id) {
                monitors
                    .delete(m.id)
                    .await
                    .map_err(|e| EngineError::provider(format!("deleting monitor {}", m.id), e))?;
                o.deleted = true;
            }
            orphans.push(o);
        }
    }
    Ok(orphans)
}
