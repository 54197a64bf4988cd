//! A journal kept in memory: the reference backend for tests and for
//! replaying an export without a database.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Mutex, MutexGuard};

use super::{EventStore, Scan, StoreError, StoredEvent, Tail, encode};
use crate::event::{NewEvent, RecordedEvent};
use crate::id::{DeploymentId, JournalId, RunId, StreamVersion};
use crate::projection::{DeploymentView, RunView, apply_to};

#[derive(Debug, Default)]
struct Inner {
    events: Vec<StoredEvent>,
    deployments: BTreeMap<DeploymentId, DeploymentView>,
    runs: BTreeMap<RunId, RunView>,
}

/// An in-memory journal.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Made with the journal.
    id: JournalId,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            id: JournalId::random(),
        }
    }
}

impl MemoryStore {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-applied append
        // (rows and projections are computed before anything is stored), so
        // a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores rows as they are (from an export), rebuilding projections
    /// from them. Rows are not checked here; verify them first.
    pub fn import(&self, rows: Vec<StoredEvent>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let Inner {
            events,
            deployments,
            runs,
        } = &mut *inner;
        for row in rows {
            let rec = row.decode()?;
            let view = deployments
                .entry(rec.deployment.clone())
                .or_insert_with(|| DeploymentView::new(rec.deployment.clone()));
            apply_to(view, runs, &rec);
            events.push(row);
        }
        Ok(())
    }
}

impl EventStore for MemoryStore {
    fn append(
        &self,
        deployment: &DeploymentId,
        expected: StreamVersion,
        events: &[NewEvent],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut inner = self.lock();
        let actual = inner
            .deployments
            .get(deployment)
            .map(|d| d.version)
            .unwrap_or_default();
        if actual != expected {
            return Err(StoreError::Conflict {
                deployment: deployment.clone(),
                expected,
                actual,
            });
        }
        let tail = inner.events.last().map_or(Tail::EMPTY, |e| Tail {
            seq: e.seq,
            hash: e.hash,
        });
        let (rows, recorded) = encode(deployment, expected, tail, events);
        let mut view = inner
            .deployments
            .get(deployment)
            .cloned()
            .unwrap_or_else(|| DeploymentView::new(deployment.clone()));
        for r in &recorded {
            apply_to(&mut view, &mut inner.runs, r);
        }
        inner.deployments.insert(deployment.clone(), view);
        inner.events.extend(rows);
        Ok(recorded)
    }

    fn stream_version(&self, deployment: &DeploymentId) -> Result<StreamVersion, StoreError> {
        Ok(self
            .lock()
            .deployments
            .get(deployment)
            .map(|d| d.version)
            .unwrap_or_default())
    }

    fn deployment(&self, deployment: &DeploymentId) -> Result<Option<DeploymentView>, StoreError> {
        Ok(self.lock().deployments.get(deployment).cloned())
    }

    fn run(&self, run: &RunId) -> Result<Option<RunView>, StoreError> {
        Ok(self.lock().runs.get(run).cloned())
    }

    fn runs(&self, deployment: &DeploymentId) -> Result<Vec<RunView>, StoreError> {
        let mut runs: Vec<_> = self
            .lock()
            .runs
            .values()
            .filter(|r| &r.deployment == deployment)
            .cloned()
            .collect();
        runs.sort_by_key(|r| r.first_seq);
        Ok(runs)
    }

    fn deployments(&self) -> Result<Vec<DeploymentId>, StoreError> {
        Ok(self.lock().deployments.keys().cloned().collect())
    }

    fn scan(
        &self,
        scan: &Scan,
        visit: &mut dyn FnMut(StoredEvent) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let rows: Vec<StoredEvent> = self
            .lock()
            .events
            .iter()
            .filter(|e| {
                scan.deployment
                    .as_ref()
                    .is_none_or(|d| d.as_str() == e.deployment)
                    && scan
                        .run
                        .as_ref()
                        .is_none_or(|r| e.run.as_deref() == Some(r.as_str()))
                    && scan.until_seq.is_none_or(|s| e.seq <= s.0)
            })
            .cloned()
            .collect();
        for row in rows {
            if visit(row).is_break() {
                break;
            }
        }
        Ok(())
    }

    fn cached_deployments(&self) -> Result<Vec<DeploymentView>, StoreError> {
        Ok(self.lock().deployments.values().cloned().collect())
    }

    fn cached_runs(&self) -> Result<Vec<RunView>, StoreError> {
        Ok(self.lock().runs.values().cloned().collect())
    }

    fn len(&self) -> Result<u64, StoreError> {
        Ok(self.lock().events.len() as u64)
    }

    fn journal_id(&self) -> Result<JournalId, StoreError> {
        Ok(self.id.clone())
    }
}
