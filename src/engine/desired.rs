//! From a validated spec and its resolved secrets to what each resource
//! kind wants ([`World`]). The journal form of each kind lives with the
//! kind (`resource::{app, dns, monitor}`).

use std::time::Duration;

use super::resource::app::state as app_state;
use super::resource::dns::{RecordState, RecordWant};
use super::resource::monitor::{MonitorState, MonitorWant};
use super::resource::state_value;
use crate::event::{ResourceKey, ResourceKind};
use crate::id::DeploymentId;
use crate::plan::{Desired, Policies};
use crate::provider::{AppDesired, MonitorDesired, MonitorKind, RecordDesired, RecordType};
use crate::spec::hash::DesiredState;
use crate::spec::model::{self, Spec};
use crate::spec::secrets::ResolvedSecrets;

pub use super::resource::app::state::AppState;

/// The key of the application resource.
pub const APP_KEY: &str = "app";

/// Everything a spec asks of the providers.
#[derive(Debug, Clone)]
pub struct World {
    /// The deployment.
    pub deployment: DeploymentId,
    /// The application request.
    pub app: AppDesired,
    /// Its journal form.
    pub app_state: AppState,
    /// How long a deployment may take.
    pub deploy_timeout: Duration,
    /// The DNS zone, if any.
    pub zone: Option<String>,
    /// DNS records.
    pub records: Vec<RecordWant>,
    /// Monitors.
    pub monitors: Vec<MonitorWant>,
    /// The digests.
    pub digests: DesiredState,
    /// Rollback policies.
    pub policies: Policies,
}

/// Why the spec could not be turned into requests.
#[derive(Debug, thiserror::Error)]
#[error("env var {key}: {message}")]
pub struct DesiredError {
    /// The env var.
    pub key: String,
    /// What went wrong (never a value).
    pub message: String,
}

impl World {
    /// Maps a validated spec.
    pub fn from_spec(
        spec: &Spec,
        secrets: &ResolvedSecrets,
        digests: DesiredState,
    ) -> Result<Self, DesiredError> {
        Self::mapped(spec, app_state::from_spec(spec, secrets)?, digests)
    }

    /// Maps a spec for commands that only delete: the application's env
    /// vars whose secrets are not at hand are left out (see
    /// [`app_state::identity_from_spec`]).
    pub fn for_deletes(
        spec: &Spec,
        secrets: &ResolvedSecrets,
        digests: DesiredState,
    ) -> Result<Self, DesiredError> {
        Self::mapped(spec, app_state::identity_from_spec(spec, secrets)?, digests)
    }

    fn mapped(
        spec: &Spec,
        (app, app_state): (AppDesired, AppState),
        digests: DesiredState,
    ) -> Result<Self, DesiredError> {
        Ok(Self {
            deployment: spec.name.clone(),
            app,
            app_state,
            deploy_timeout: spec.timeouts.deploy.get(),
            zone: spec.dns.as_ref().map(|d| d.zone_name()),
            records: records(spec),
            monitors: monitors(spec),
            digests,
            policies: Policies {
                coolify: policy(spec.rollback.coolify),
                dns: policy(spec.rollback.dns),
                monitors: policy(spec.rollback.monitors),
            },
        })
    }

    /// The planner's view of the world: one [`Desired`] per resource.
    pub fn desired(&self) -> Vec<Desired> {
        let mut out = vec![Desired {
            key: ResourceKey::new(APP_KEY),
            kind: ResourceKind::Application,
            state: state_value(&self.app_state),
            hash: self.digests.app,
        }];
        let digest = |map: &std::collections::BTreeMap<String, crate::id::Digest>,
                      key: &ResourceKey| {
            map.get(key.as_str()).copied().unwrap_or_default()
        };
        for r in &self.records {
            out.push(Desired {
                key: r.key.clone(),
                kind: ResourceKind::DnsRecord,
                state: state_value(&r.state),
                hash: digest(&self.digests.records, &r.key),
            });
        }
        for m in &self.monitors {
            out.push(Desired {
                key: m.key.clone(),
                kind: ResourceKind::Monitor,
                state: state_value(&m.state),
                hash: digest(&self.digests.monitors, &m.key),
            });
        }
        out
    }

    /// Gives each record the key its journal knows it by, so that a key
    /// never changes while the record stays: a record the journal has (by
    /// type, name and canonical content; a CNAME by type and name) keeps
    /// that key, whatever shape earlier versions gave it; a new record
    /// takes `dns:<TYPE>:<name>` when no record of the journal or the spec
    /// holds that key (a lone record, as before), and its content key
    /// otherwise; but a new record whose type and name a journal record
    /// no longer wanted has takes that record's key (an update in place).
    /// Growing or shrinking a set never renames a member, so nothing live
    /// is deleted and made again.
    pub fn align_keys(&mut self, view: Option<&crate::projection::DeploymentView>) {
        let mut journal: std::collections::BTreeMap<(String, String, String), ResourceKey> =
            std::collections::BTreeMap::new();
        let mut held: std::collections::BTreeSet<ResourceKey> = std::collections::BTreeSet::new();
        for r in view.into_iter().flat_map(|v| v.resources.values()) {
            let live = r.exists() || r.status == crate::projection::ResourceStatus::Pending;
            if r.kind != ResourceKind::DnsRecord || !live {
                continue;
            }
            held.insert(r.key.clone());
            if let Ok(Some(state)) = super::resource::decode::<RecordState>(r) {
                journal.insert(state.identity(), r.key.clone());
            }
        }
        let mut keys: Vec<Option<ResourceKey>> = self
            .records
            .iter()
            .map(|w| journal.get(&w.state.identity()).cloned())
            .collect();
        let taken: std::collections::BTreeSet<ResourceKey> =
            keys.iter().flatten().cloned().collect();
        // Journal records the spec no longer wants as they are, by type and
        // name: a wanted record of the same type and name that the journal
        // does not have takes one of their keys, so a changed content is an
        // update in place (no moment without the record), not a create and
        // a delete.
        let mut slots: std::collections::BTreeMap<(String, String), Vec<ResourceKey>> =
            std::collections::BTreeMap::new();
        for ((kind, name, _), key) in &journal {
            if !taken.contains(key) {
                slots
                    .entry((kind.clone(), name.clone()))
                    .or_default()
                    .push(key.clone());
            }
        }
        for (i, w) in self.records.iter().enumerate() {
            if keys[i].is_some() {
                continue;
            }
            let (kind, name, _) = w.state.identity();
            if let Some(key) = slots.get_mut(&(kind, name)).and_then(Vec::pop) {
                keys[i] = Some(key);
                continue;
            }
            let base = ResourceKey::new(format!("dns:{}:{}", w.state.kind, w.state.name));
            let free = !held.contains(&base)
                && !taken.contains(&base)
                && !keys.iter().flatten().any(|k| k == &base);
            keys[i] = Some(if free { base } else { w.key.clone() });
        }
        for (w, key) in self.records.iter_mut().zip(keys) {
            let Some(key) = key else { continue };
            if key == w.key {
                continue;
            }
            if let Some(d) = self.digests.records.remove(w.key.as_str()) {
                self.digests.records.insert(key.as_str().to_owned(), d);
            }
            w.key = key;
        }
    }

    /// The record wanted under `key`.
    pub fn record(&self, key: &ResourceKey) -> Option<&RecordWant> {
        self.records.iter().find(|r| &r.key == key)
    }

    /// The monitor wanted under `key`.
    pub fn monitor(&self, key: &ResourceKey) -> Option<&MonitorWant> {
        self.monitors.iter().find(|m| &m.key == key)
    }
}

fn records(spec: &Spec) -> Vec<RecordWant> {
    let Some(dns) = &spec.dns else {
        return Vec::new();
    };
    dns.keyed_records()
        .into_iter()
        .map(|(key, r)| {
            let kind = record_type(r.kind);
            let name = dns.fqdn(r);
            let ttl = if r.proxied { 1 } else { r.ttl.api_value() };
            let content = crate::spec::model::canonical_content(r.kind, &r.content);
            RecordWant {
                key: ResourceKey::new(key),
                desired: RecordDesired {
                    kind,
                    name: name.clone(),
                    content: content.clone(),
                    ttl,
                    proxied: r.proxied,
                    adopt: r.adopt,
                },
                state: RecordState {
                    zone: dns.zone_name(),
                    kind: kind.as_str().to_owned(),
                    name,
                    content,
                    ttl,
                    proxied: r.proxied,
                    adopt: r.adopt,
                },
            }
        })
        .collect()
}

fn monitors(spec: &Spec) -> Vec<MonitorWant> {
    spec.monitors
        .iter()
        .map(|m| {
            let kind = match m.kind {
                model::MonitorType::Http => MonitorKind::Http,
                model::MonitorType::Keyword => MonitorKind::Keyword,
            };
            let name = format!("{}/{}", spec.name, m.name);
            let interval = u32::try_from(m.interval.get().as_secs()).unwrap_or(u32::MAX);
            let notifications: Vec<u64> = m.notifications.iter().map(|n| u64::from(*n)).collect();
            let retry_interval =
                u32::try_from(m.retry_interval.get().as_secs()).unwrap_or(u32::MAX);
            MonitorWant {
                key: ResourceKey::new(m.key()),
                desired: MonitorDesired {
                    name: name.clone(),
                    kind,
                    url: m.url.clone(),
                    keyword: m.keyword.clone(),
                    interval,
                    retries: u32::from(m.retries),
                    retry_interval,
                    accepted_status: m.accepted_status.clone(),
                    notification_ids: notifications.clone(),
                },
                state: MonitorState {
                    name,
                    kind: match kind {
                        MonitorKind::Http => "http",
                        MonitorKind::Keyword => "keyword",
                    }
                    .to_owned(),
                    url: m.url.clone(),
                    keyword: m.keyword.clone(),
                    interval,
                    retries: u32::from(m.retries),
                    retry_interval: Some(retry_interval),
                    accepted_status: Some(m.accepted_status.clone()),
                    notifications,
                },
            }
        })
        .collect()
}

fn policy(p: model::Rollback) -> crate::event::Policy {
    match p {
        model::Rollback::Auto => crate::event::Policy::Auto,
        model::Rollback::Manual => crate::event::Policy::Manual,
        model::Rollback::Never => crate::event::Policy::Never,
    }
}

fn record_type(t: model::RecordType) -> RecordType {
    match t {
        model::RecordType::A => RecordType::A,
        model::RecordType::Aaaa => RecordType::Aaaa,
        model::RecordType::Cname => RecordType::Cname,
        model::RecordType::Txt => RecordType::Txt,
    }
}
