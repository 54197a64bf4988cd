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
