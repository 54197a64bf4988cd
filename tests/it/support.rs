//! Shared helpers: running the real binary, building journals.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    // The journal key lives in the user's configuration directory: keep
    // the tests' keys in their own directories, never in the real one.
    c.env("XDG_CONFIG_HOME", dir.join(".config"));
    // Tests run without a terminal, as CI does: commands that change
    // remote resources go ahead as with `--yes` (the tests of the prompt
    // and of the refusal remove this).
    c.env("FABRIK_YES", "1");
    c
}

/// `fabrik ARGS` in `dir` on a pseudo-terminal (util-linux `script`), as a
/// person at a terminal runs it, typing `typed` (e.g. `"y\n"`). Returns the
/// exit code and everything the terminal showed (stdout and stderr).
pub fn on_terminal(dir: &Path, args: &[&str], typed: &str) -> (Option<i32>, String) {
    on_terminal_with(dir, args, typed, &[])
}

/// [`on_terminal`] with `env` set too (`FABRIK_SANDBOX_FAULTS`, ...).
pub fn on_terminal_with(
    dir: &Path,
    args: &[&str],
    typed: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, String) {
    let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, Some(*v))).collect();
    let mut t = Terminal::start(dir, args, &env);
    t.type_text(typed);
    t.finish()
}

/// `fabrik ARGS` running on a pseudo-terminal (util-linux `script`), as a
/// person at a terminal runs it: what it shows can be waited for, and keys
/// typed in between (`"\x03"` is Ctrl-C: the terminal turns it into
/// SIGINT for the program in front).
pub struct Terminal {
    child: std::process::Child,
    chunks: std::sync::mpsc::Receiver<String>,
    shown: String,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Terminal {
    /// Starts `fabrik ARGS` in `dir` with `env` (a `None` value removes
    /// the variable) over the clean environment of [`fabrik`], minus the
    /// go-ahead: a person answers.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, Option<&str>)]) -> Self {
        use std::io::Read as _;
        // `exec`: the shell `script` starts gives its place to fabrik, so
        // a Ctrl-C reaches fabrik alone and the exit status is fabrik's,
        // not that of a shell the same SIGINT ended.
        let mut line = format!("exec {}", shell_word(&fabrik_bin().display().to_string()));
        for a in args {
            line.push(' ');
            line.push_str(&shell_word(a));
        }
        let mut c = fabrik(dir);
        let script = std::mem::replace(&mut c, Command::new("script"));
        for (k, v) in script.get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        for (k, v) in env {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.env_remove("FABRIK_YES")
            .current_dir(dir)
            .args(["-qec", &line, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().expect("script (util-linux) runs");
        let mut out = child.stdout.take().unwrap();
        let (tx, chunks) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0
                    || tx
                        .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                        .is_err()
                {
                    break;
                }
            }
        });
        Self {
            child,
            chunks,
            shown: String::new(),
            reader: Some(reader),
        }
    }

    /// Types `text` on the terminal.
    pub fn type_text(&mut self, text: &str) {
        use std::io::Write as _;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits until the terminal has shown `text`; false if the program
    /// ended or `timeout` passed first.
    pub fn wait_for(&mut self, text: &str, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while !self.shown.contains(text) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => self.shown.push_str(&chunk),
                Err(_) => return false,
            }
        }
        true
    }

    /// Waits for the program to end: its exit code and everything the
    /// terminal showed (line ends as `\n`).
    pub fn finish(mut self) -> (Option<i32>, String) {
        drop(self.child.stdin.take());
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        while let Ok(chunk) = self.chunks.try_recv() {
            self.shown.push_str(&chunk);
        }
        (status.code(), self.shown.replace("\r\n", "\n"))
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn shell_word(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
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

/// Asserts that `fabrik ARGS` exited with `code`, showing its stderr if not.
#[track_caller]
pub fn expect_exit(o: &Output, code: i32, args: &[&str]) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "fabrik {}: {}",
        args.join(" "),
        stderr(o)
    );
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
    // A journal's id (random per journal) in ownership marks.
    s.add_filter(
        r"(\[RUN\]:|journal=|\x22journal\x22: \x22)[0-9a-f]{8}\b",
        "${1}[JOURNAL]",
    );
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s
}

/// A `fabrik` process started in the background, whose stderr is read
/// line by line as it comes (progress lines), so that a test can act when
/// the run reaches a given point.
pub struct Running {
    /// The process.
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Starts `cmd` with stdout and stderr captured.
    pub fn start(cmd: &mut Command) -> Self {
        use std::io::BufRead as _;
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start fabrik");
        let err = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let all = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                {
                    let mut a = all.lock().unwrap();
                    a.push_str(&line);
                    a.push('\n');
                }
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            lines,
            stderr,
            reader: Some(reader),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until a stderr line contains `text`; false if the process
    /// closed stderr (ended) or `timeout` passed first.
    pub fn wait_for(&mut self, text: &str, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    }

    /// Sends a signal (`INT`, `KILL`, ...) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -{name} {}", self.pid());
    }

    /// Waits for the process to end; returns its output (stderr whole).
    pub fn finish(mut self) -> Output {
        use std::io::Read as _;
        let mut out = Vec::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_end(&mut out);
        }
        let status = self.child.wait().expect("wait for fabrik");
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let stderr = self.stderr.lock().unwrap().clone().into_bytes();
        Output {
            status,
            stdout: out,
            stderr,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that failed half-way must not leave a process behind.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
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
/// Copies the tree at `from` to `to`, leaving out what running Fabrik in
/// it leaves behind (`.env` with generated secrets, the `.fabrik/`
/// journal): a test starts from the tree as the repository has it,
/// whatever a user ran in the checkout before.
pub fn copy_pristine(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let left_by_a_run =
            name == ".fabrik" || (name.starts_with(".env") && name != ".env.example");
        if left_by_a_run {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_pristine(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A copy of the repository's `examples/` made once per test process (in
/// cargo's temporary directory for integration tests), as the repository
/// has it: tests read the examples there, never in the checkout.
pub fn examples() -> PathBuf {
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let to =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("examples-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&to);
        copy_pristine(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"), &to);
        to
    })
    .clone()
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
        self.put("settings", patch);
    }

    /// Replaces the fault config (`PUT /_sandbox/faults`).
    pub fn put_faults(&self, faults: serde_json::Value) {
        self.put("faults", faults);
    }

    fn put(&self, what: &str, patch: serde_json::Value) {
        let url = format!("{}/_sandbox/{what}", self.api_url());
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
        assert_eq!(status, 200, "PUT /_sandbox/{what} {patch}");
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

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The request line's target: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Hit {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// A webhook receiver on loopback: answers 204, or never answers (`hang`:
/// it holds each connection for at most a minute, then closes it).
pub struct Receiver {
    pub url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    pub fn start(hang: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let seen = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(64) {
                let Ok(mut stream) = stream else { break };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut headers = Vec::new();
                    let mut line = String::new();
                    let _ = reader.read_line(&mut line);
                    let target = line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                            break;
                        }
                        if let Some((k, v)) = line.trim().split_once(':') {
                            headers.push((k.trim().to_owned(), v.trim().to_owned()));
                        }
                    }
                    let len = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; len];
                    let _ = reader.read_exact(&mut body);
                    seen.lock().unwrap().push(Hit {
                        target,
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    if hang {
                        std::thread::sleep(Duration::from_secs(60));
                    } else {
                        let _ = stream.write_all(
                            b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        );
                    }
                });
            }
        });
        Self { url, hits }
    }

    pub fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

/// Runs the `standardwebhooks` npm package (the reference JavaScript
/// verifier, installed by `scripts/test`) on one delivery.
pub fn verify_with_reference(key: &str, h: &Hit) -> Result<(), String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("node_modules/standardwebhooks").is_dir(),
        "run `npm ci` (scripts/test does) to install the standardwebhooks verifier"
    );
    let script = r#"
const { Webhook } = require("standardwebhooks");
const [key, id, ts, sig] = process.argv.slice(1);
let body = "";
process.stdin.on("data", (d) => (body += d));
process.stdin.on("end", () => {
  try {
    // Its tolerance is 5 minutes: check as of the delivery's own time.
    const wh = new Webhook(key);
    const realNow = Date.now;
    Date.now = () => Number(ts) * 1000;
    wh.verify(body, { "webhook-id": id, "webhook-timestamp": ts, "webhook-signature": sig });
    Date.now = realNow;
    console.log("verified");
  } catch (e) {
    console.log("refused: " + e.message);
    process.exit(3);
  }
});
"#;
    let mut child = std::process::Command::new("node")
        .current_dir(root)
        .arg("-e")
        .arg(script)
        .arg(key)
        .arg(h.header("webhook-id").unwrap())
        .arg(h.header("webhook-timestamp").unwrap())
        .arg(h.header("webhook-signature").unwrap())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(h.body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && text.trim() == "verified" {
        Ok(())
    } else {
        Err(text)
    }
}
