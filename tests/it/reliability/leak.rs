//! The secret-leak sweep: a whole lifecycle with known high-entropy values
//! for a secret from each source (environment, `.env`, generated), for the
//! webhook signing key and URL token, the fingerprint key and every
//! provider credential; then every byte Fabrik wrote or printed is
//! searched for each value, raw, base64 (at every alignment, standard and
//! URL-safe) and percent-encoded.
//!
//! The providers are a sandbox running in this test process with
//! credentials of the test's choosing (its world lives outside the
//! project: it is the "remote side", which must hold the values), reached
//! through the environment as real services would be. Webhooks go to a
//! receiver in this process that keeps every request.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use fabrik::sandbox::{Credentials, FaultConfig, SandboxConfig};
use fabrik::secret::SecretValue;

use crate::faults::LiveSandbox;
use crate::support::{fabrik, stderr, stdout};

/// Secrets given to Fabrik, by name. High entropy, and (where the channel
/// allows it) with characters that base64 and percent-encoding change.
const ENV_SECRET: &str = "eS7+q/Vz9@Lm2!Xc4*Rt8=Kp1:Wd6&Hn3%Jb5~Gf0";
const ENV_SECRET_2: &str = "u4N!b8+Qe/2Zr@7Yt1=Mw9:Ks3&Pd6%Vh0*Lc5~Jx";
const ENV_SECRET_3: &str = "Ah3/zT9+wQ1@nL7!rK4=vB0:dF8&pS2%yG6*mJ5~c";
const DOTENV_SECRET: &str = "dV1@rQ8/mZ3+Tx6!kP9=Wb2:Ln5&Hs0%Jc7*Fy4~g";
const HOOK_TOKEN: &str = "hK2mT7xQ9vL4nR8pW1zB6cF3jD5sG0yA";
const FINGERPRINT_KEY: &str = "9a1f3c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a";
const COOLIFY_TOKEN: &str = "41|cT8+nQ2/vX7@mL4=rB9kW1zH6pF3sJ0d";
const CLOUDFLARE_TOKEN: &str = "cfT0k-Zq8Wm3Xr7Vb2Ny6Lp1Hs5Jd9Gf4Ke";
const KUMA_PASSWORD: &str = "kP4@w9+Ls/2Qx!7Nz=5Rv:1Mb&8Tc%3Hy*6Jd";
const WRONG_TOKEN: &str = "99|wR0+nG6/tY3@hU8=jI5kO2lP9zA4sD7x";

/// One request a webhook received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// A webhook receiver on 127.0.0.1:0 that answers 200 and keeps every
/// request.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(sandbox: &LiveSandbox) -> Self {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let keep = got.clone();
        let port = sandbox.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let app =
                axum::Router::new().fallback(move |req: axum::http::Request<axum::body::Body>| {
                    let keep = keep.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
                            .await
                            .map(|b| b.to_vec())
                            .unwrap_or_default();
                        keep.lock().unwrap().push(Received {
                            path: parts.uri.path().to_owned(),
                            headers: parts
                                .headers
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                                .collect(),
                            body,
                        });
                        "ok"
                    }
                });
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            port
        });
        Self { port, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

fn spec(port: u16, tag: &str, verify_timeout: &str) -> String {
    format!(
        r#"name: leaky
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:{tag}
  port: 80
  domains:
    - https://leaky.example.com
  health_check:
    path: /health
  env:
    FROM_ENV: ${{secret.ENV_SECRET}}
    FROM_DOTENV: ${{secret.DOTENV_SECRET}}
    GENERATED: ${{secret.GEN_SECRET}}
    DATABASE_URL: postgres://app:${{secret.DOTENV_SECRET}}@db:5432/app
secrets:
  ENV_SECRET:
  DOTENV_SECRET:
  HOOK_TOKEN:
  GEN_SECRET:
    generate: true
  SIGNING_KEY:
    generate: true
    length: 48
dns:
  zone: example.com
  records:
    - type: A
      name: leaky.example.com
      content: 203.0.113.10
verify:
  timeout: {verify_timeout}
  http:
    - url: https://leaky.example.com/health
      status: 200
monitors:
  - name: leaky
    url: https://leaky.example.com/health
    interval: 60s
notifications:
  webhooks:
    - name: audit
      url: http://127.0.0.1:{port}/audit/${{secret.HOOK_TOKEN}}
      signing_secret: SIGNING_KEY
    - name: team
      url: http://127.0.0.1:{port}/slack/${{secret.HOOK_TOKEN}}
      format: slack
rollback:
  dns: auto
retry:
  attempts: 2
  initial_delay: 10ms
  max_delay: 50ms
"#
    )
}

/// The forms a value can take in text: raw, percent-encoded (both hex
/// cases), base64 of the value alone (standard and URL-safe, padded or
/// not), and the part of the base64 of *any* text containing the value
/// that the value alone determines, at each of the three alignments (so a
/// value inside a larger encoded blob, a Basic auth header or a JWT, is
/// found too).
pub fn forms(value: &str) -> Vec<(String, Vec<u8>)> {
    let b = value.as_bytes();
    let mut out: Vec<(String, Vec<u8>)> = vec![("raw".into(), b.to_vec())];
    let mut pct_upper = String::new();
    let mut pct_lower = String::new();
    for &c in b {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
            pct_upper.push(c as char);
            pct_lower.push(c as char);
        } else {
            pct_upper.push_str(&format!("%{c:02X}"));
            pct_lower.push_str(&format!("%{c:02x}"));
        }
    }
    out.push(("percent-encoded".into(), pct_upper.into_bytes()));
    out.push((
        "percent-encoded (lower case)".into(),
        pct_lower.into_bytes(),
    ));
    let engines = [
        ("base64", base64::engine::general_purpose::STANDARD_NO_PAD),
        (
            "base64url",
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ),
    ];
    for (name, engine) in engines {
        out.push((name.into(), engine.encode(b).into_bytes()));
        for shift in 0..3usize {
            let mut padded = vec![0u8; shift];
            padded.extend_from_slice(b);
            let text = engine.encode(&padded);
            // Character i holds bits [6i, 6i + 6): keep those within the
            // value's bits [8 shift, 8 (shift + len)).
            let first = (8 * shift).div_ceil(6);
            let end = (8 * (shift + b.len())) / 6;
            if end > first + 8 {
                out.push((
                    format!("{name} inside other text (alignment {shift})"),
                    text.as_bytes()[first..end].to_vec(),
                ));
            }
        }
    }
    // JSON escapes: PHP's `json_encode` (Laravel, so Coolify) writes `/` as
    // `\/`; `\u` escapes of the characters JSON encoders escape on request
    // (everything but letters and digits) or of every character, in either
    // case of hex digits.
    out.push((
        "JSON with \\/".into(),
        value.replace('/', "\\/").into_bytes(),
    ));
    for (name, all, upper) in [
        ("JSON \\u escapes", false, false),
        ("JSON \\u escapes (upper case)", false, true),
        ("JSON \\u escapes of every character", true, false),
        (
            "JSON \\u escapes of every character (upper case)",
            true,
            true,
        ),
    ] {
        out.push((name.into(), json_u(value, all, upper).into_bytes()));
    }
    out.push(("hex".into(), hex::encode(b).into_bytes()));
    out.push(("hex (upper case)".into(), hex::encode_upper(b).into_bytes()));
    out.sort();
    out.dedup_by(|a, b| a.1 == b.1);
    out
}

/// `text` with `\uXXXX` escapes: of every character (`all`), or of those
/// that are not ASCII letters or digits.
pub fn json_u(text: &str, all: bool, upper: bool) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if !all && c.is_ascii_alphanumeric() {
            out.push(c);
            continue;
        }
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            if upper {
                out.push_str(&format!("\\u{u:04X}"));
            } else {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Every encoding a service might echo `text` in: JSON escapes, percent
/// encoding in both cases, base64 and base64url of the text behind 0, 1
/// and 2 other bytes (every alignment), hex in both cases.
pub fn echo_forms(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = vec![
        text.replace('/', "\\/"),
        json_u(text, false, false),
        json_u(text, false, true),
        json_u(text, true, false),
        json_u(text, true, true),
        hex::encode(b),
        hex::encode_upper(b),
    ];
    for upper in [false, true] {
        let mut pct = String::new();
        for &c in b {
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b'~') {
                pct.push(c as char);
            } else if upper {
                pct.push_str(&format!("%{c:02X}"));
            } else {
                pct.push_str(&format!("%{c:02x}"));
            }
        }
        out.push(pct);
    }
    for engine in [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for prefix in ["", "a", "ab"] {
            out.push(engine.encode(format!("{prefix}{text}")));
        }
    }
    out
}

/// Every place a value was found: `(secret, form, where)`.
fn search(
    secrets: &[(&str, String)],
    haystacks: &[(String, Vec<u8>)],
) -> Vec<(String, String, String)> {
    let mut hits = Vec::new();
    for (name, value) in secrets {
        for (form, needle) in forms(value) {
            for (place, hay) in haystacks {
                if hay.windows(needle.len()).any(|w| w == needle.as_slice()) {
                    hits.push(((*name).to_owned(), form.clone(), place.clone()));
                }
            }
        }
    }
    hits
}

/// Every file under `dir` (recursively), except those `skip` names.
fn files(dir: &Path, skip: &dyn Fn(&Path) -> bool, out: &mut Vec<(String, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let path = entry.path();
        if skip(&path) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files(&path, skip, out);
        } else if kind.is_file() {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
}

/// The runs of the sweep: every command, its output, and where it ran.
struct Sweep {
    dir: tempfile::TempDir,
    sandbox: LiveSandbox,
    receiver: Receiver,
    outputs: Vec<(String, Output)>,
    env_secret: &'static str,
}

impl Sweep {
    fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    fn write_spec(&self, tag: &str, verify_timeout: &str) {
        std::fs::write(
            self.project().join("spec.yaml"),
            spec(self.receiver.port, tag, verify_timeout),
        )
        .unwrap();
    }

    fn command(&self) -> Command {
        let mut c = fabrik(&self.project());
        for (k, v) in self.sandbox.env() {
            c.env(k, v);
        }
        c.env("ENV_SECRET", self.env_secret)
            .env("HOME", self.dir.path().join("home"))
            .env("TMPDIR", self.dir.path().join("tmp"));
        c
    }

    /// Runs `fabrik ARGS`, keeps its output, checks the exit code.
    #[track_caller]
    fn run(&mut self, args: &[&str], codes: &[i32]) -> Output {
        self.run_with(args, codes, |_| {})
    }

    #[track_caller]
    fn run_with(
        &mut self,
        args: &[&str],
        codes: &[i32],
        tweak: impl FnOnce(&mut Command),
    ) -> Output {
        let mut c = self.command();
        c.args(args);
        tweak(&mut c);
        let o = c.output().expect("run fabrik");
        let code = o.status.code().unwrap_or(-1);
        assert!(
            codes.contains(&code),
            "fabrik {}: exit {code}, expected one of {codes:?}\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            stdout(&o),
            stderr(&o)
        );
        self.outputs.push((args.join(" "), o.clone()));
        o
    }

    fn faults(&self, f: FaultConfig) {
        self.sandbox.handle().set_faults(f);
    }
}

/// The commands printed after `next:` in human output.
fn next_commands(o: &Output) -> Vec<String> {
    stdout(o)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("next:"))
        .map(|c| c.trim().to_owned())
        .collect()
}

fn run_of(next: &[String], command: &str) -> String {
    next.iter()
        .find_map(|c| c.strip_prefix(&format!("fabrik {command} ")))
        .unwrap_or_else(|| panic!("no `fabrik {command}` in {next:?}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn no_secret_value_reaches_any_byte_fabrik_writes_or_prints() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SandboxConfig::new(dir.path().join("remote-world.db"));
    config.credentials = Credentials {
        coolify_token: SecretValue::new(COOLIFY_TOKEN),
        cloudflare_token: SecretValue::new(CLOUDFLARE_TOKEN),
        kuma_username: "operator".to_owned(),
        kuma_password: SecretValue::new(KUMA_PASSWORD),
    };
    let sandbox = LiveSandbox::with_config(config);
    let receiver = Receiver::start(&sandbox);
    for d in ["project", "home", "tmp"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    let mut s = Sweep {
        dir,
        sandbox,
        receiver,
        outputs: Vec::new(),
        env_secret: ENV_SECRET,
    };
    std::fs::write(
        s.project().join(".env"),
        format!(
            "DOTENV_SECRET='{DOTENV_SECRET}'\nHOOK_TOKEN={HOOK_TOKEN}\nFABRIK_FINGERPRINT_KEY={FINGERPRINT_KEY}\n"
        ),
    )
    .unwrap();
    s.write_spec("v1.10", "60s");

    // A first deployment, and every command that reads the journal.
    s.run(&["validate", "spec.yaml"], &[0]);
    s.run(&["plan", "spec.yaml"], &[0]);
    s.run(&["apply", "spec.yaml"], &[0]);
    s.run(&["--output", "json", "apply", "spec.yaml"], &[0]);
    s.run(&["plan", "spec.yaml"], &[0]);
    s.run(
        &[
            "--output",
            "json",
            "plan",
            "spec.yaml",
            "--detailed-exitcode",
        ],
        &[0],
    );
    s.run(&["status"], &[0]);
    s.run(&["status", "leaky"], &[0]);
    s.run(&["--output", "json", "status", "leaky"], &[0]);
    s.run(&["history", "leaky"], &[0]);
    s.run(&["--output", "json", "history", "leaky"], &[0]);
    s.run(&["lock", "status"], &[0]);
    s.run(&["journal", "export", "-o", "export.json"], &[0]);
    s.run(
        &[
            "journal",
            "export",
            "--format",
            "ndjson",
            "-o",
            "export.ndjson",
        ],
        &[0],
    );
    s.run(&["journal", "export", "--format", "ndjson"], &[0]);
    s.run(&["replay"], &[0]);
    s.run(&["--output", "json", "replay", "--verify"], &[0]);
    s.run(&["replay", "--input", "export.ndjson"], &[0]);
    s.run(
        &["--output", "json", "replay", "--input", "export.json"],
        &[0],
    );

    // An update whose verification fails: rolled back (exit 5), with a
    // changed secret from the environment.
    s.env_secret = ENV_SECRET_2;
    s.write_spec("v1.11", "2s");
    s.faults(FaultConfig {
        health_fail: true,
        ..FaultConfig::default()
    });
    s.run(&["--output", "json", "apply", "spec.yaml"], &[5]);
    s.run(&["plan", "spec.yaml"], &[0]);

    // A provider that echoes every submitted value in its 422 (the
    // environment update carries every secret of the app).
    s.env_secret = ENV_SECRET_3;
    s.faults(FaultConfig {
        echo_422: true,
        ..FaultConfig::default()
    });
    let echoed = s.run(&["apply", "spec.yaml"], &[5, 6]);
    assert!(
        stderr(&echoed).contains("(HTTP 422)")
            && stderr(&echoed).contains(fabrik::secret::REDACTED),
        "the provider echoed the values and Fabrik scrubbed them: {}",
        stderr(&echoed)
    );
    s.run(&["--output", "json", "apply", "spec.yaml"], &[5, 6]);
    s.faults(FaultConfig::default());

    // A failed deployment kept with --no-rollback, then resumed.
    s.write_spec("v1.12", "60s");
    s.faults(FaultConfig {
        deploy_fail: true,
        ..FaultConfig::default()
    });
    let failed = s.run(&["apply", "spec.yaml", "--no-rollback"], &[6]);
    s.faults(FaultConfig::default());
    let resume = run_of(&next_commands(&failed), "resume");
    s.run(&["resume", &resume], &[0]);

    // Another one, rolled back by hand.
    s.write_spec("v1.13", "60s");
    s.faults(FaultConfig {
        deploy_fail: true,
        ..FaultConfig::default()
    });
    let failed = s.run(&["apply", "spec.yaml", "--no-rollback"], &[6]);
    s.faults(FaultConfig::default());
    let rollback = run_of(&next_commands(&failed), "rollback");
    s.run(&["rollback", &rollback, "--dry-run"], &[0]);
    s.run(
        &["--output", "json", "rollback", &rollback, "--yes"],
        &[0, 5],
    );

    // A credential the provider refuses.
    s.run_with(&["apply", "spec.yaml"], &[1], |c| {
        c.env("COOLIFY_TOKEN", WRONG_TOKEN);
    });
    s.run_with(&["--output", "json", "plan", "spec.yaml"], &[0, 1], |c| {
        c.env("COOLIFY_TOKEN", WRONG_TOKEN);
    });

    // Cleanup, and the journal afterwards.
    s.run(&["gc"], &[0]);
    s.run(&["destroy", "leaky", "--yes"], &[0]);
    s.run(&["journal", "export", "-o", "final.json"], &[0]);
    s.run(&["replay", "--verify"], &[0]);

    // What Fabrik generated is in the project's .env, where the user keeps
    // secrets (and nowhere else).
    let dotenv = fabrik::spec::dotenv::read(&s.project().join(".env")).unwrap();
    let generated = |name: &str| dotenv[name].expose().to_owned();
    // The journal key, in the user's configuration directory (where the
    // tests keep it: inside the project).
    let key_path = s.project().join(".config/fabrik/journal.key");
    let journal_key = std::fs::read_to_string(&key_path).unwrap();
    let secrets: Vec<(&str, String)> = vec![
        ("ENV_SECRET", ENV_SECRET.to_owned()),
        ("ENV_SECRET (changed)", ENV_SECRET_2.to_owned()),
        ("ENV_SECRET (changed again)", ENV_SECRET_3.to_owned()),
        ("DOTENV_SECRET", DOTENV_SECRET.to_owned()),
        ("GEN_SECRET (generated)", generated("GEN_SECRET")),
        ("SIGNING_KEY (generated)", generated("SIGNING_KEY")),
        ("HOOK_TOKEN", HOOK_TOKEN.to_owned()),
        ("FABRIK_FINGERPRINT_KEY", FINGERPRINT_KEY.to_owned()),
        ("COOLIFY_TOKEN", COOLIFY_TOKEN.to_owned()),
        ("CLOUDFLARE_API_TOKEN", CLOUDFLARE_TOKEN.to_owned()),
        ("UPTIME_KUMA_PASSWORD", KUMA_PASSWORD.to_owned()),
        ("COOLIFY_TOKEN (refused)", WRONG_TOKEN.to_owned()),
        ("journal key", journal_key.trim().to_owned()),
    ];
    assert_eq!(generated("GEN_SECRET").len(), 32);
    assert_eq!(generated("SIGNING_KEY").len(), 48);

    // Every byte Fabrik wrote or printed: the project directory (state
    // database with its WAL and shared-memory files, lock files, exports),
    // HOME and TMPDIR of every run, stdout and stderr of every run, and
    // every request the webhooks received (bodies and headers; the URL
    // path carries HOOK_TOKEN by the user's choice).
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    let dotenv_path = s.project().join(".env");
    files(
        s.dir.path(),
        &|p| {
            p == dotenv_path
                || p == key_path
                || p.ends_with("remote-world.db")
                || p.to_string_lossy().contains("remote-world.db-")
        },
        &mut haystacks,
    );
    let names: Vec<&str> = haystacks.iter().map(|(p, _)| p.as_str()).collect();
    for expected in [
        "state.db",
        "state.db-wal",
        "state.db-shm",
        "export.json",
        "export.ndjson",
        "final.json",
    ] {
        assert!(
            names.iter().any(|n| n.ends_with(&format!("/{expected}"))),
            "{expected} was searched: {names:#?}"
        );
    }
    for (label, o) in &s.outputs {
        haystacks.push((format!("stdout of `fabrik {label}`"), o.stdout.clone()));
        haystacks.push((format!("stderr of `fabrik {label}`"), o.stderr.clone()));
    }
    let hooks = s.receiver.received();
    for (i, r) in hooks.iter().enumerate() {
        haystacks.push((
            format!(
                "webhook request {i} to {} (body)",
                r.path.replace(HOOK_TOKEN, "HOOK_TOKEN")
            ),
            r.body.clone(),
        ));
        for (k, v) in &r.headers {
            haystacks.push((format!("webhook request {i} header {k}"), v.clone()));
        }
    }

    // The sweep searched something real: the webhooks were called for
    // every kind of outcome, the provider's echo reached the journal
    // scrubbed, and the searcher finds values where they belong.
    let events: Vec<String> = hooks
        .iter()
        .filter(|r| r.path.starts_with("/audit/"))
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter_map(|v| v["event"].as_str().map(str::to_owned))
        .collect();
    for e in [
        "started",
        "succeeded",
        "rolled_back",
        "needs_attention",
        "destroyed",
    ] {
        assert!(
            events.iter().any(|x| x == e),
            "no {e} webhook in {events:?}"
        );
    }
    let journal = std::fs::read_to_string(s.project().join("final.json")).unwrap();
    assert!(
        journal.contains(fabrik::secret::REDACTED),
        "the echoed 422 reached the journal, scrubbed"
    );
    let mut world = Vec::new();
    files(
        s.dir.path(),
        &|p| p.is_file() && !p.to_string_lossy().contains("remote-world.db"),
        &mut world,
    );
    let found_remote = search(&secrets[..4], &world);
    assert!(
        found_remote.iter().any(|(_, form, _)| form == "raw"),
        "the secret values did reach the provider"
    );
    let dotenv_bytes = std::fs::read(&dotenv_path).unwrap();
    assert!(!search(&secrets[4..5], &[(".env".into(), dotenv_bytes)]).is_empty());

    let hits = search(&secrets, &haystacks);
    assert!(
        hits.is_empty(),
        "{} secret value(s) found in {} haystacks:\n{}",
        hits.len(),
        haystacks.len(),
        hits.iter()
            .map(|(s, f, p)| format!("  {s} ({f}) in {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "leak sweep: {} secrets x {} forms searched in {} haystacks ({} bytes) from {} commands and {} webhook requests: 0 hits",
        secrets.len(),
        forms(ENV_SECRET).len(),
        haystacks.len(),
        haystacks.iter().map(|(_, h)| h.len()).sum::<usize>(),
        s.outputs.len(),
        hooks.len()
    );
}

/// The committed snapshots hold none of the fixed secret values the tests
/// use (sandbox credentials, the crash project's secret and key, ...).
#[test]
fn committed_snapshots_hold_no_test_secret() {
    let defaults = Credentials::default();
    let secrets: Vec<(&str, String)> = vec![
        (
            "sandbox coolify token",
            defaults.coolify_token.expose().to_owned(),
        ),
        (
            "sandbox cloudflare token",
            defaults.cloudflare_token.expose().to_owned(),
        ),
        (
            "sandbox kuma password",
            defaults.kuma_password.expose().to_owned(),
        ),
        (
            "crash project API_TOKEN",
            "Zx8pQ2mV7rT4kL9wN3bH6cJ1fD5sG0aY".to_owned(),
        ),
        (
            "crash project fingerprint key",
            "5f0c1b2a3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef".to_owned(),
        ),
        ("provider tests secret", "hunter2-very-secret".to_owned()),
    ];
    let mut haystacks = Vec::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("snapshots");
    files(&root, &|_| false, &mut haystacks);
    assert!(haystacks.len() > 50, "{} snapshot files", haystacks.len());
    let hits = search(&secrets, &haystacks);
    assert!(hits.is_empty(), "{hits:#?}");
}

#[test]
fn the_forms_searched_include_base64_inside_other_text() {
    let value = "p@ss/w+rd=42:xyz";
    let f = forms(value);
    let found = |text: &[u8]| {
        f.iter()
            .any(|(_, n)| text.windows(n.len()).any(|w| w == n.as_slice()))
    };
    for prefix in ["", "a", "ab", "user:"] {
        let blob = format!("{prefix}{value} and more");
        for engine in [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ] {
            assert!(found(engine.encode(&blob).as_bytes()), "{prefix:?}");
        }
    }
    assert!(found(b"x=p%40ss%2Fw%2Brd%3D42%3Axyz&y"));
    assert!(!found(b"p@ss/w+rd=41:xyz"));
}

/// `Debug` of everything that holds a secret in memory (what a panic
/// message or a `{:?}` in a log line would print) shows none of them.
#[test]
fn debug_output_of_every_secret_holder_shows_no_value() {
    use fabrik::secret::SecretSource;
    let spec_text = spec(1, "v1.10", "60s");
    let checked = fabrik::spec::check(
        spec_text.as_bytes(),
        Path::new("spec.yaml"),
        &fabrik::spec::MemoryFiles::new(),
        &fabrik::spec::LoadOptions::default(),
    )
    .unwrap_or_else(|d| panic!("{d:?}"));
    let key = fabrik::spec::secrets::FingerprintKey::from_hex(FINGERPRINT_KEY).unwrap();
    let secrets = fabrik::spec::secrets::ResolvedSecrets::from_values(
        key,
        SecretSource::Dotenv,
        [
            ("ENV_SECRET", ENV_SECRET, SecretSource::Env),
            ("DOTENV_SECRET", DOTENV_SECRET, SecretSource::Dotenv),
            ("GEN_SECRET", ENV_SECRET_2, SecretSource::Generated),
            ("SIGNING_KEY", ENV_SECRET_3, SecretSource::Generated),
            ("HOOK_TOKEN", HOOK_TOKEN, SecretSource::Dotenv),
        ]
        .map(|(n, v, s)| (n.to_owned(), SecretValue::new(v), s)),
    );
    let endpoints = fabrik::provider::registry::Endpoints {
        coolify_url: "http://127.0.0.1:9".into(),
        coolify_token: SecretValue::new(COOLIFY_TOKEN),
        cloudflare_url: "http://127.0.0.1:9/client/v4".into(),
        cloudflare_token: Some(SecretValue::new(CLOUDFLARE_TOKEN)),
        kuma_url: Some("http://127.0.0.1:9".into()),
        kuma_username: Some("operator".into()),
        kuma_password: Some(SecretValue::new(KUMA_PASSWORD)),
        routing: fabrik::verify::Routing::System,
        ca_pem: None,
        registry_route: None,
    };
    let env = fabrik::provider::registry::Env::load(
        [("COOLIFY_TOKEN".to_owned(), COOLIFY_TOKEN.to_owned())],
        Path::new("/nonexistent/.env"),
    )
    .unwrap();
    let session = fabrik::provider::registry::Registry::build(
        &fabrik::provider::ConnectRequest {
            spec: Some(&checked.spec),
            secrets: Some(&secrets),
            env: &env,
            dns: fabrik::provider::registry::Need::Required,
            monitors: fabrik::provider::registry::Need::Required,
            retries: None,
        },
        &endpoints,
    )
    .unwrap();
    let texts = vec![
        (
            "Endpoints".to_owned(),
            format!("{endpoints:?}").into_bytes(),
        ),
        (
            "ResolvedSecrets".to_owned(),
            format!("{secrets:?}").into_bytes(),
        ),
        ("Session".to_owned(), format!("{session:?}").into_bytes()),
        (
            "Providers".to_owned(),
            format!("{:?}", session.providers).into_bytes(),
        ),
        (
            "Scrubber".to_owned(),
            format!("{:?}", session.scrubber).into_bytes(),
        ),
        ("Env".to_owned(), format!("{env:?}").into_bytes()),
        (
            "Spec".to_owned(),
            format!("{:?}", checked.spec).into_bytes(),
        ),
    ];
    let values: Vec<(&str, String)> = [
        ("ENV_SECRET", ENV_SECRET),
        ("DOTENV_SECRET", DOTENV_SECRET),
        ("GEN_SECRET", ENV_SECRET_2),
        ("SIGNING_KEY", ENV_SECRET_3),
        ("HOOK_TOKEN", HOOK_TOKEN),
        ("FABRIK_FINGERPRINT_KEY", FINGERPRINT_KEY),
        ("COOLIFY_TOKEN", COOLIFY_TOKEN),
        ("CLOUDFLARE_API_TOKEN", CLOUDFLARE_TOKEN),
        ("UPTIME_KUMA_PASSWORD", KUMA_PASSWORD),
    ]
    .map(|(n, v)| (n, v.to_owned()))
    .to_vec();
    // The session does hold them (the scrubber knows the credentials and
    // the webhook URLs), so this looks at real holders.
    assert!(session.scrubber.finds_in(COOLIFY_TOKEN));
    assert!(
        session
            .scrubber
            .finds_in(&format!("http://127.0.0.1:1/audit/{HOOK_TOKEN}"))
    );
    let hits = search(&values, &texts);
    assert!(hits.is_empty(), "{hits:#?}");
}

/// Issue: a service that echoes a secret in another encoding than the one
/// it was sent in put it on stdout, stderr, in the journal and in exports:
/// Coolify is Laravel, whose JSON writes `/` as `\/`; `\u` escapes,
/// lower-case percent-encoding, base64 at two of three alignments and hex
/// passed too. Here a proxy in front of the sandbox's Coolify answers every
/// error with the sandbox's own echo of the submitted values, re-encoded
/// in every one of those forms; nothing Fabrik prints or writes holds any
/// form of any secret.
#[test]
fn secrets_echoed_in_any_encoding_never_reach_output_or_the_journal() {
    use crate::reliability::proxy::{Proxy, reencode_errors};
    let dir = tempfile::tempdir().unwrap();
    let sandbox = LiveSandbox::start(&dir.path().join("remote-world.db"), FaultConfig::default());
    let coolify_url = sandbox.handle().coolify_url.clone();
    let proxy = Proxy::start(
        &sandbox,
        &coolify_url,
        Arc::new(|_, body| reencode_errors(body, &echo_forms)),
    );
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join(".env"),
        format!("DOTENV_SECRET='{DOTENV_SECRET}'\nFABRIK_FINGERPRINT_KEY={FINGERPRINT_KEY}\n"),
    )
    .unwrap();
    std::fs::write(
        project.join("spec.yaml"),
        r#"name: echoed
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:v1.10
  port: 80
  domains:
    - https://echoed.example.com
  env:
    FROM_ENV: ${secret.ENV_SECRET}
    FROM_DOTENV: ${secret.DOTENV_SECRET}
    API_TOKEN: ${secret.API_TOKEN}
secrets:
  ENV_SECRET:
  DOTENV_SECRET:
  API_TOKEN:
    generate: true
verify:
  timeout: 60s
  http:
    - url: https://echoed.example.com/
      status: 200
retry:
  attempts: 2
  initial_delay: 10ms
  max_delay: 50ms
"#,
    )
    .unwrap();
    let mut outputs: Vec<(String, Output)> = Vec::new();
    let mut run = |args: &[&str], env_secret: &str, codes: &[i32]| {
        let mut c = fabrik(&project);
        for (k, v) in sandbox.env() {
            c.env(k, v);
        }
        c.env("COOLIFY_URL", proxy.through(&coolify_url))
            .env("ENV_SECRET", env_secret)
            .args(args);
        let o = c.output().unwrap();
        let code = o.status.code().unwrap_or(-1);
        assert!(
            codes.contains(&code),
            "fabrik {}: exit {code}\n{}{}",
            args.join(" "),
            stdout(&o),
            stderr(&o)
        );
        outputs.push((args.join(" "), o.clone()));
        o
    };
    run(&["apply", "spec.yaml"], ENV_SECRET, &[0]);
    // The environment changes: its update carries every secret, and the
    // provider refuses it, echoing them.
    sandbox.handle().set_faults(FaultConfig {
        echo_422: true,
        ..FaultConfig::default()
    });
    let echoed = run(&["apply", "spec.yaml"], ENV_SECRET_2, &[5, 6]);
    assert!(
        stderr(&echoed).contains("(HTTP 422)")
            && stderr(&echoed).contains(fabrik::secret::REDACTED),
        "the provider's echo was shown, scrubbed: {}",
        stderr(&echoed)
    );
    run(
        &["--output", "json", "apply", "spec.yaml"],
        ENV_SECRET_3,
        &[5, 6],
    );
    sandbox.handle().set_faults(FaultConfig::default());
    for args in [
        &["status", "echoed"][..],
        &["history", "echoed"],
        &["--output", "json", "status", "echoed"],
        &["journal", "export", "-o", "export.json"],
        &["journal", "export", "--format", "ndjson"],
        &["replay", "--verify"],
    ] {
        run(args, ENV_SECRET_3, &[0]);
    }
    let dotenv = fabrik::spec::dotenv::read(&project.join(".env")).unwrap();
    let secrets: Vec<(&str, String)> = vec![
        ("ENV_SECRET", ENV_SECRET.to_owned()),
        ("ENV_SECRET (changed)", ENV_SECRET_2.to_owned()),
        ("ENV_SECRET (changed again)", ENV_SECRET_3.to_owned()),
        ("DOTENV_SECRET", DOTENV_SECRET.to_owned()),
        (
            "API_TOKEN (generated)",
            dotenv["API_TOKEN"].expose().to_owned(),
        ),
    ];
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    let dotenv_path = project.join(".env");
    let config = project.join(".config");
    files(
        &project,
        &|p| p == dotenv_path || p.starts_with(&config),
        &mut haystacks,
    );
    for (label, o) in &outputs {
        haystacks.push((format!("stdout of `fabrik {label}`"), o.stdout.clone()));
        haystacks.push((format!("stderr of `fabrik {label}`"), o.stderr.clone()));
    }
    // The proxy did send every form: the remote side's answers hold them.
    let sent = echo_forms(&format!("'{ENV_SECRET_2}'"));
    assert!(sent.len() >= 15, "{} forms", sent.len());
    let hits = search(&secrets, &haystacks);
    assert!(
        hits.is_empty(),
        "{} secret value(s) found:\n{}",
        hits.len(),
        hits.iter()
            .map(|(s, f, p)| format!("  {s} ({f}) in {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "encoded echoes: {} secrets x {} forms searched in {} haystacks: 0 hits",
        secrets.len(),
        forms(ENV_SECRET).len(),
        haystacks.len()
    );
}
