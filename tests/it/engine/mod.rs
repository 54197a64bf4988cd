//! The engine in process, against the in-memory providers
//! (`fabrik::provider::fake`) and an in-memory journal: every command,
//! without the sandbox or the binary.

mod commands;
mod crash;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use fabrik::engine::command::apply::{ApplyRequest, apply};
use fabrik::engine::recorder::{Observer, Quiet, wall_clock};
use fabrik::engine::{EngineError, Interrupt, Report, Request};
use fabrik::event::{NewEvent, RecordedEvent};
use fabrik::id::{DeploymentId, RunId, StreamVersion};
use fabrik::projection::{DeploymentView, RunView};
use fabrik::provider::fake::FakeWorld;
use fabrik::store::memory::MemoryStore;
use fabrik::store::{EventStore, Scan, StateLocation, StoreError, StoredEvent};

/// A spec with an application, a DNS record, checks and a monitor.
pub const SPEC: &str = "\
name: shop
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:v1.10
  port: 80
  domains: [https://shop.example.com]
  env:
    GREETING: hello
dns:
  zone: example.com
  records:
    - type: A
      name: shop.example.com
      content: 203.0.113.10
verify:
  timeout: 2s
  http:
    - url: https://shop.example.com/
      status: 200
monitors:
  - name: home
    url: https://shop.example.com/
    interval: 60s
";

/// A project directory with a spec, a journal and a fake remote world.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn EventStore>,
    pub world: FakeWorld,
}

impl Bench {
    /// `spec` in a fresh directory, an empty journal, an empty world.
    pub fn new(spec: &str) -> Self {
        Self::with_store(spec, Arc::new(MemoryStore::new()))
    }

    /// Like [`Bench::new`] on the given journal.
    pub fn with_store(spec: &str, store: Arc<dyn EventStore>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
        Self {
            dir,
            store,
            world: FakeWorld::new(),
        }
    }

    /// Replaces the spec.
    pub fn edit(&self, from: &str, to: &str) {
        let p = self.dir.path().join("spec.yaml");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains(from), "{from:?} is not in the spec");
        std::fs::write(&p, text.replacen(from, to, 1)).unwrap();
    }

    /// What a command is handed.
    pub fn request(&self) -> Request {
        self.request_on(self.store.clone(), Box::new(Quiet), Interrupt::new())
    }

    /// What a command is handed, with this journal, observer and flag.
    pub fn request_on(
        &self,
        store: Arc<dyn EventStore>,
        observer: Box<dyn Observer>,
        interrupt: Interrupt,
    ) -> Request {
        Request {
            store,
            state: StateLocation::Sqlite(self.dir.path().join(".fabrik").join("state.db")),
            connect: Arc::new(self.world.clone()),
            env_vars: Vec::new(),
            clock: wall_clock(),
            interrupt,
            observer,
            lock_wait: None,
            environment: None,
        }
    }

    /// `fabrik apply spec.yaml` with `base`.
    pub async fn apply_with(
        &self,
        base: Request,
        no_rollback: bool,
    ) -> Result<Report, EngineError> {
        self.apply_as(base, no_rollback, true).await
    }

    /// `fabrik apply spec.yaml` with `base`, refreshing or not.
    pub async fn apply_as(
        &self,
        base: Request,
        no_rollback: bool,
        refresh: bool,
    ) -> Result<Report, EngineError> {
        let loaded =
            fabrik::spec::load(&self.dir.path().join("spec.yaml"), &Default::default()).unwrap();
        apply(ApplyRequest {
            base,
            loaded,
            no_rollback,
            refresh,
            retries: None,
            approved: None,
            redeploy: false,
            take_over: false,
            rotate: Vec::new(),
        })
        .await
    }

    /// `fabrik apply spec.yaml`.
    pub async fn apply(&self) -> Report {
        self.apply_with(self.request(), false).await.unwrap()
    }

    /// The deployment's view.
    pub fn view(&self) -> DeploymentView {
        self.store.deployment(&deployment()).unwrap().unwrap()
    }

    /// The deployment's runs.
    pub fn runs(&self) -> Vec<RunView> {
        self.store.runs(&deployment()).unwrap()
    }

    /// How many applications, records and monitors the world holds.
    pub fn counts(&self) -> (usize, usize, usize) {
        let s = self.world.state();
        (s.apps.len(), s.records.len(), s.monitors.len())
    }
}

/// The spec's deployment.
pub fn deployment() -> DeploymentId {
    DeploymentId::new("shop").unwrap()
}

/// Sets the interrupt flag (Ctrl-C) once an event of `event_type` is
/// journaled.
pub struct InterruptAt {
    pub event_type: &'static str,
    pub interrupt: Interrupt,
}

impl Observer for InterruptAt {
    fn event(&mut self, event: &RecordedEvent, _: &RunView) {
        if event.event.type_name() == self.event_type {
            self.interrupt.set();
        }
    }
}

/// A journal whose process "dies" after `budget` more events: every later
/// append fails, as if nothing after the last durable event was written.
pub struct Dying {
    pub inner: Arc<dyn EventStore>,
    pub budget: AtomicU64,
}

impl Dying {
    pub fn new(inner: Arc<dyn EventStore>, budget: u64) -> Self {
        Self {
            inner,
            budget: AtomicU64::new(budget),
        }
    }
}

impl EventStore for Dying {
    fn append(
        &self,
        deployment: &DeploymentId,
        expected: StreamVersion,
        events: &[NewEvent],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let n = events.len() as u64;
        let left = self.budget.load(Ordering::SeqCst);
        if left < n {
            self.budget.store(0, Ordering::SeqCst);
            return Err(StoreError::Backend("the process died".to_owned()));
        }
        self.budget.store(left - n, Ordering::SeqCst);
        self.inner.append(deployment, expected, events)
    }
    fn stream_version(&self, d: &DeploymentId) -> Result<StreamVersion, StoreError> {
        self.inner.stream_version(d)
    }
    fn deployment(&self, d: &DeploymentId) -> Result<Option<DeploymentView>, StoreError> {
        self.inner.deployment(d)
    }
    fn run(&self, run: &RunId) -> Result<Option<RunView>, StoreError> {
        self.inner.run(run)
    }
    fn runs(&self, d: &DeploymentId) -> Result<Vec<RunView>, StoreError> {
        self.inner.runs(d)
    }
    fn deployments(&self) -> Result<Vec<DeploymentId>, StoreError> {
        self.inner.deployments()
    }
    fn scan(
        &self,
        scan: &Scan,
        visit: &mut dyn FnMut(StoredEvent) -> std::ops::ControlFlow<()>,
    ) -> Result<(), StoreError> {
        self.inner.scan(scan, visit)
    }
    fn cached_deployments(&self) -> Result<Vec<DeploymentView>, StoreError> {
        self.inner.cached_deployments()
    }
    fn cached_runs(&self) -> Result<Vec<RunView>, StoreError> {
        self.inner.cached_runs()
    }
    fn len(&self) -> Result<u64, StoreError> {
        self.inner.len()
    }
    fn journal_id(&self) -> Result<fabrik::id::JournalId, StoreError> {
        self.inner.journal_id()
    }
}
