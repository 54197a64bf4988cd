//! Failure handling through the real binary against the sandbox: retries
//! of transient errors, rollback by policy when a phase fails for good,
//! `--no-rollback`, `fabrik rollback`, restoring an update, `fabrik destroy`
//! and `fabrik gc`.
//!
//! Every test deploys the same small service (`shop`: two DNS records, an
//! application, a monitor) into its own directory, breaks something with
//! `FABRIK_SANDBOX_FAULTS` (or by planting a resource in the simulated
//! world), and compares `fabrik sandbox dump` with what the policies
//! predict.

mod checks;
mod cleanup;
mod notify;
mod phases;
mod records;
mod retries;
mod update;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fabrik::sandbox::{FaultConfig, SandboxConfig, SandboxHandle};
use fabrik::verify::{Routing, Verifier};
use serde_json::{Value, json};

use crate::support::{fabrik, journal_events, run, sandbox_dump, stderr, stdout};

/// A rollback policy as the spec spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Auto,
    Manual,
    Never,
}

impl Policy {
    fn word(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Manual => "manual",
            Self::Never => "never",
        }
    }
}

/// The `rollback` block of the spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policies {
    pub coolify: Policy,
    pub dns: Policy,
    pub monitors: Policy,
}

impl Policies {
    /// What a spec without a `rollback` block gets.
    pub const DEFAULT: Self = Self {
        coolify: Policy::Auto,
        dns: Policy::Manual,
        monitors: Policy::Auto,
    };

    /// The policy of a resource kind (`dns`, `app`, `monitor`).
    pub fn of(&self, kind: &str) -> Policy {
        match kind {
            "dns" => self.dns,
            "app" => self.coolify,
            "monitor" => self.monitors,
            other => panic!("no policy for {other}"),
        }
    }
}

/// The spec of the `shop` service, with the parts the tests vary.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Image tag of `traefik/whoami`.
    pub tag: &'static str,
    /// Value of the `GREETING` env var.
    pub greeting: &'static str,
    /// Address of the A record.
    pub address: &'static str,
    /// Seconds between monitor checks.
    pub interval: u32,
    /// The `rollback` block, or none (the defaults).
    pub policies: Option<Policies>,
    /// `retry.attempts`.
    pub attempts: u8,
    /// Whether there is a CNAME `www.example.com` beside the A record (two
    /// records are created in parallel, so their order varies).
    pub cname: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Self {
            tag: "v1.10",
            greeting: "hello",
            address: "203.0.113.10",
            interval: 60,
            policies: None,
            attempts: 3,
            cname: true,
        }
    }
}

impl Spec {
    pub fn with_policies(policies: Policies) -> Self {
        Self {
            policies: Some(policies),
            ..Self::default()
        }
    }

    /// The YAML. Verification gives up after one second (the sandbox
    /// answers at once, so only an injected failure takes that long), and
    /// retries wait 10 to 50 ms instead of 1 to 30 s.
    pub fn yaml(&self) -> String {
        let mut s = format!(
            "name: shop
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:{tag}
  port: 80
  domains:
    - https://shop.example.com
  health_check:
    path: /health
  env:
    GREETING: {greeting}
dns:
  zone: example.com
  records:
    - type: A
      name: shop.example.com
      content: {address}
{cname}verify:
  timeout: 1s
  http:
    - url: https://shop.example.com/health
      status: 200
  tls:
    - host: shop.example.com
      min_days: 7
monitors:
  - name: shop
    url: https://shop.example.com/health
    interval: {interval}s
retry:
  attempts: {attempts}
  initial_delay: 10ms
  max_delay: 50ms
",
            tag = self.tag,
            greeting = self.greeting,
            address = self.address,
            interval = self.interval,
            attempts = self.attempts,
            cname = if self.cname {
                "    - type: CNAME\n      name: www.example.com\n      content: shop.example.com\n"
            } else {
                ""
            },
        );
        if let Some(p) = self.policies {
            s.push_str(&format!(
                "rollback:\n  coolify: {}\n  dns: {}\n  monitors: {}\n",
                p.coolify.word(),
                p.dns.word(),
                p.monitors.word()
            ));
        }
        s
    }
}

/// What one command did.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub out: String,
    pub err: String,
}

impl Ran {
    pub fn of(o: std::process::Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            out: stdout(&o),
            err: stderr(&o),
        }
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.out, self.err
        );
        self
    }

    /// The commands printed after `next:`.
    pub fn next(&self) -> Vec<String> {
        self.out
            .lines()
            .filter_map(|l| l.trim().strip_prefix("next:"))
            .map(|c| c.trim().to_owned())
            .collect()
    }

    /// The run named on the summary line (`... (run ID)`).
    pub fn run_id(&self) -> String {
        let line = self.out.lines().next().unwrap_or_default();
        let start = line
            .rfind("(run ")
            .unwrap_or_else(|| panic!("no run id in {line:?}"));
        line[start + 5..].trim_end_matches(')').to_owned()
    }
}

/// A project directory with the spec and, after the first `--sandbox`
/// command, the journal and the simulated world under `.fabrik/`.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new(spec: &Spec) -> Self {
        let p = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        p.write(spec);
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, spec: &Spec) {
        std::fs::write(self.path().join("spec.yaml"), spec.yaml()).unwrap();
    }

    /// The data file of the in-process sandbox of `--sandbox` runs.
    pub fn data(&self) -> PathBuf {
        self.path().join(".fabrik").join("sandbox.db")
    }

    /// `fabrik` in this directory, with `faults` in `FABRIK_SANDBOX_FAULTS`.
    pub fn command(&self, faults: Option<&str>) -> Command {
        let mut c = fabrik(self.path());
        if let Some(f) = faults {
            c.env("FABRIK_SANDBOX_FAULTS", f);
        }
        c
    }

    pub fn run(&self, faults: Option<&str>, args: &[&str]) -> Ran {
        Ran::of(run(self.command(faults).args(args)))
    }

    /// Runs a command as a user without a terminal would, with no
    /// `--yes` and no `FABRIK_YES`.
    pub fn run_unconfirmed(&self, args: &[&str]) -> Ran {
        Ran::of(run(self.command(None).env_remove("FABRIK_YES").args(args)))
    }

    /// `fabrik apply spec.yaml --sandbox EXTRA...`.
    pub fn apply(&self, faults: Option<&str>, extra: &[&str]) -> Ran {
        let mut args = vec!["apply", "spec.yaml", "--sandbox"];
        args.extend_from_slice(extra);
        self.run(faults, &args)
    }

    /// Runs a command exactly as Fabrik printed it after `next:`, plus
    /// `extra` (`--yes`: there is no terminal to confirm on).
    pub fn run_printed(&self, printed: &str, extra: &[&str]) -> Ran {
        let words: Vec<&str> = printed.split_whitespace().collect();
        assert_eq!(words.first(), Some(&"fabrik"), "{printed}");
        let mut args = words[1..].to_vec();
        args.extend_from_slice(extra);
        self.run(None, &args)
    }

    pub fn dump(&self) -> Value {
        sandbox_dump(self.path())
    }

    pub fn world(&self) -> BTreeSet<String> {
        world(&self.dump())
    }

    pub fn events(&self) -> Vec<Value> {
        journal_events(self.path())
    }

    /// The hash chain is intact and the cached projections equal a fresh
    /// fold, whatever failed.
    #[track_caller]
    pub fn assert_journal_verifies(&self) {
        self.run(None, &["replay", "--verify"]).expect(0);
    }

    /// Creates a DNS record that Fabrik does not own, straight through the
    /// sandbox's Cloudflare API.
    pub fn plant_foreign_record(&self, kind: &str, name: &str, content: &str) {
        let sandbox = LiveSandbox::start(&self.data(), FaultConfig::default());
        sandbox.plant_record(kind, name, content, None);
    }
}

/// The world as one line per resource, with its owning deployment (or `-`
/// for resources without Fabrik's mark):
/// `dns A shop.example.com 203.0.113.10 shop`, `app shop shop`,
/// `monitor shop/shop shop`.
pub fn world(dump: &Value) -> BTreeSet<String> {
    let owner = |v: &Value| {
        v["ownership"]["deployment"]
            .as_str()
            .unwrap_or("-")
            .to_owned()
    };
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let mut out = BTreeSet::new();
    for zone in list(&dump["cloudflare"]["zones"]) {
        for r in list(&zone["records"]) {
            out.insert(format!(
                "dns {} {} {} {}",
                r["type"].as_str().unwrap(),
                r["name"].as_str().unwrap(),
                r["content"].as_str().unwrap(),
                owner(&r)
            ));
        }
    }
    for a in list(&dump["coolify"]["applications"]) {
        let deleting = if a["deleting"] == json!(true) {
            " (deleting)"
        } else {
            ""
        };
        out.insert(format!(
            "app {} {}{deleting}",
            a["name"].as_str().unwrap(),
            owner(&a)
        ));
    }
    for s in list(&dump["coolify"]["services"]) {
        out.insert(format!(
            "service {} {}",
            s["name"].as_str().unwrap(),
            owner(&s)
        ));
    }
    for m in list(&dump["uptime_kuma"]["monitors"]) {
        out.insert(format!(
            "monitor {} {}",
            m["name"].as_str().unwrap(),
            owner(&m)
        ));
    }
    out
}

/// The resources of a full `shop` deployment, by kind (`dns`, `app`,
/// `monitor`) and as [`world`] lines.
pub fn shop_resources(spec: &Spec) -> Vec<(&'static str, String)> {
    let mut all = vec![(
        "dns",
        format!("dns A shop.example.com {} shop", spec.address),
    )];
    if spec.cname {
        all.push((
            "dns",
            "dns CNAME www.example.com shop.example.com shop".to_owned(),
        ));
    }
    all.push(("app", "app shop shop".to_owned()));
    all.push(("monitor", "monitor shop/shop shop".to_owned()));
    all
}

/// The events of one type.
pub fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

/// A sandbox running in the test process on a data file: to plant
/// resources in a world the CLI uses, to read the deployed app, or to serve
/// a CLI run pointed at it through the environment (then the fault dice and
/// their counters live here, where the test can read them).
pub struct LiveSandbox {
    rt: tokio::runtime::Runtime,
    handle: Option<SandboxHandle>,
}

impl LiveSandbox {
    pub fn start(data: &Path, faults: FaultConfig) -> Self {
        let mut config = SandboxConfig::new(data);
        config.faults = faults;
        Self::with_config(config)
    }

    /// A sandbox with a config of the caller's (other credentials, say).
    pub fn with_config(config: SandboxConfig) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.block_on(fabrik::sandbox::start(config)).unwrap();
        Self {
            rt,
            handle: Some(handle),
        }
    }

    pub fn handle(&self) -> &SandboxHandle {
        self.handle.as_ref().unwrap()
    }

    /// The variables that point a run without `--sandbox` at this sandbox.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let h = self.handle();
        let c = &h.credentials;
        vec![
            ("COOLIFY_URL", h.coolify_url.clone()),
            ("COOLIFY_TOKEN", c.coolify_token.expose().to_owned()),
            ("CLOUDFLARE_API_URL", h.cloudflare_url.clone()),
            (
                "CLOUDFLARE_API_TOKEN",
                c.cloudflare_token.expose().to_owned(),
            ),
            ("UPTIME_KUMA_URL", h.kuma_url.clone()),
            ("UPTIME_KUMA_USERNAME", c.kuma_username.clone()),
            ("UPTIME_KUMA_PASSWORD", c.kuma_password.expose().to_owned()),
            ("FABRIK_SANDBOX_URL", h.api_url.clone()),
        ]
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The id of zone `example.com`.
    pub fn zone_id(&self) -> String {
        let dump = self.block_on(self.handle().dump()).unwrap();
        dump["cloudflare"]["zones"]
            .as_array()
            .unwrap()
            .iter()
            .find(|z| z["name"] == "example.com")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a DNS record through the Cloudflare API, with `comment` (an
    /// ownership mark, or nothing for a record Fabrik does not own).
    pub fn plant_record(
        &self,
        kind: &str,
        name: &str,
        content: &str,
        comment: Option<&str>,
    ) -> String {
        let mut body = json!({"type": kind, "name": name, "content": content, "ttl": 1});
        if let Some(c) = comment {
            body["comment"] = json!(c);
        }
        let v = self.records_call(reqwest::Method::POST, "", &body);
        v["result"]["id"].as_str().unwrap().to_owned()
    }

    /// Changes a DNS record through the Cloudflare API, as a person in
    /// the dashboard would.
    pub fn edit_record(&self, id: &str, patch: &Value) {
        self.records_call(reqwest::Method::PATCH, &format!("/{id}"), patch);
    }

    /// A successful call under `/zones/ZONE/dns_records` of zone
    /// `example.com`.
    fn records_call(&self, method: reqwest::Method, path: &str, body: &Value) -> Value {
        let h = self.handle();
        let url = format!(
            "{}/zones/{}/dns_records{path}",
            h.cloudflare_url,
            self.zone_id()
        );
        let token = h.credentials.cloudflare_token.expose().to_owned();
        let v: Value = self.block_on(async {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .request(method, url)
                .bearer_auth(token)
                .json(body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        assert_eq!(v["success"], json!(true), "{v}");
        v
    }

    /// GETs a URL of a deployed app (its name resolved by the sandbox, its
    /// certificate checked against the sandbox CA): status and body.
    pub fn get(&self, url: &str) -> (u16, String) {
        let h = self.handle();
        let verifier = Verifier::new(
            Routing::Sandbox {
                http: h.app_http,
                https: h.app_https,
                resolve_url: format!("{}/_sandbox/resolve", h.api_url),
            },
            Some(&h.ca_pem),
            Duration::from_secs(10),
        )
        .unwrap();
        let (ev, body) = self.block_on(verifier.get(url)).unwrap();
        (ev.status, body)
    }
}

impl Drop for LiveSandbox {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = self.rt.block_on(h.shutdown());
        }
    }
}
