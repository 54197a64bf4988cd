//! Shared helpers: running the real binary, building journals.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fabrik::generate::{Shape, generate};
use fabrik::store::EventStore;

/// The `fabrik` binary built for these tests.
pub fn fabrik_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_fabrik"))
}

/// A `fabrik` command running in `dir` with a clean environment (no
/// provider credentials or state overrides leak in from the caller).
pub fn fabrik(dir: &Path) -> Command {
    let mut c = Command::new(fabrik_bin());
    c.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("FABRIK_")
            || k.starts_with("COOLIFY_")
            || k.starts_with("CLOUDFLARE_")
            || k.starts_with("UPTIME_KUMA_")
        {
            c.env_remove(&k);
        }
    }
    c.env("NO_COLOR", "1");
    c
}

/// Runs a command and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run fabrik")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Appends a generated journal to `store`.
pub fn fill(store: &dyn EventStore, shape: Shape) -> u64 {
    let mut n = 0;
    generate(shape, |b| {
        let v = store.stream_version(&b.deployment).unwrap();
        n += b.events.len() as u64;
        store.append(&b.deployment, v, &b.events).unwrap();
    });
    n
}

/// insta settings for snapshots under `snapshots/<area>`, with filters for
/// what changes from run to run.
pub fn insta_settings(area: &str) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("snapshots")
            .join(area),
    );
    s.set_prepend_module_to_snapshot(false);
    s.add_filter(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]");
    s.add_filter(r"\b[0-9a-f]{64}\b", "[HASH]");
    s.add_filter(r"\b[0-9a-f]{12}\b", "[SHORT]");
    s.add_filter(r"\b[0-9a-z]{26}\b", "[RUN]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s
}

/// The simulated world of the project in `dir` (`fabrik sandbox dump`).
pub fn sandbox_dump(dir: &Path) -> serde_json::Value {
    let o = run(fabrik(dir).args(["sandbox", "dump"]));
    assert!(o.status.success(), "sandbox dump: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("the dump is JSON")
}

/// Every event of the journal in `dir`, in order (`fabrik journal export`,
/// without its header line).
pub fn journal_events(dir: &Path) -> Vec<serde_json::Value> {
    let o = run(fabrik(dir).args(["journal", "export", "--format", "ndjson"]));
    assert!(o.status.success(), "journal export: {}", stderr(&o));
    stdout(&o)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one object per line"))
        .filter(|v| v.get("seq").is_some())
        .collect()
}

/// Copies the files of `from` (recursively) into `to`, creating it.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A `fabrik sandbox serve` process on ephemeral loopback ports, with its
/// world in its own file. Killed (by its own pid) when dropped.
pub struct SandboxServer {
    child: std::process::Child,
    /// What the server printed on start: its URLs and CA.
    pub info: serde_json::Value,
    /// Its data file.
    pub data: PathBuf,
}

impl SandboxServer {
    /// Starts `fabrik sandbox serve --addr 127.0.0.1:0 --data DIR/world.db`
    /// and waits for the line it prints once it listens (no sleeping: the
    /// read blocks until the line is there).
    pub fn start(dir: &Path) -> Self {
        use std::io::BufRead as _;
        let data = dir.join("world.db");
        let mut child = fabrik(dir)
            .args(["sandbox", "serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(&data)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start fabrik sandbox serve");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info = match serde_json::from_str(&line) {
            Ok(info) => info,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sandbox serve printed {line:?}: {e}");
            }
        };
        Self { child, info, data }
    }

    /// Base URL of its API listener.
    pub fn api_url(&self) -> String {
        self.info["api_url"].as_str().unwrap().to_owned()
    }

    /// Points a `fabrik` command at this sandbox as if it were the real
    /// services: URLs and the credentials the sandbox accepts, and
    /// `FABRIK_SANDBOX_URL` so verification reaches its apps.
    pub fn point<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        let api = self.api_url();
        let creds = fabrik::sandbox::Credentials::default();
        cmd.env("COOLIFY_URL", &api)
            .env("COOLIFY_TOKEN", creds.coolify_token.expose())
            .env("CLOUDFLARE_API_URL", format!("{api}/client/v4"))
            .env("CLOUDFLARE_API_TOKEN", creds.cloudflare_token.expose())
            .env("UPTIME_KUMA_URL", &api)
            .env("UPTIME_KUMA_USERNAME", &creds.kuma_username)
            .env("UPTIME_KUMA_PASSWORD", creds.kuma_password.expose())
            .env("FABRIK_SANDBOX_URL", &api)
    }

    /// Merges `patch` into the runtime switches (`PUT /_sandbox/settings`).
    pub fn put_settings(&self, patch: serde_json::Value) {
        let url = format!("{}/_sandbox/settings", self.api_url());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let status = rt.block_on(async {
            reqwest::Client::builder()
                .no_proxy()
                .build()
                .unwrap()
                .put(url)
                .json(&patch)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert_eq!(status, 200, "PUT /_sandbox/settings {patch}");
    }

    /// The whole simulated world, read from the data file.
    pub fn dump(&self) -> serde_json::Value {
        fabrik::sandbox::dump(&self.data).unwrap()
    }
}

impl Drop for SandboxServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
