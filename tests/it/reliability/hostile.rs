//! Hostile input through the real binary: file references that leave the
//! project, alias bombs, deep nesting, huge specs, invalid UTF-8, FIFOs
//! and symbolic links in place of files, a symlinked `.env`. Each gets a
//! clear error (exit 4 for a spec, 1 for an unusable `.env`) in bounded
//! time and memory, measured on the process with GNU time.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::support::{expect_exit, fabrik, stderr};

/// Peak memory a rejected input may cost, in KiB (the binary alone,
/// with its runtime, takes about 15 MiB).
const MAX_RSS_KIB: u64 = 128 * 1024;
/// Time a rejected input may take on a loaded machine.
const MAX_TIME: Duration = Duration::from_secs(20);

/// Runs `fabrik ARGS` in `dir` under GNU time; returns the output, the
/// wall time and the peak resident set size in KiB.
fn measured(dir: &Path, args: &[&str]) -> (Output, Duration, u64) {
    let c = fabrik(dir);
    let program = c.get_program().to_owned();
    let mut timed = std::process::Command::new("/usr/bin/time");
    timed
        .current_dir(dir)
        .arg("-f")
        .arg("@@rss=%M")
        .arg(&program)
        .args(args);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => timed.env(k, v),
            None => timed.env_remove(k),
        };
    }
    let started = std::time::Instant::now();
    let o = timed.output().expect("run /usr/bin/time");
    let elapsed = started.elapsed();
    let err = stderr(&o);
    let rss = err
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("@@rss="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak memory from /usr/bin/time: {err}"));
    (o, elapsed, rss)
}

#[track_caller]
fn rejected(dir: &Path, args: &[&str], code: i32, message: &str) -> String {
    let (o, t, rss) = measured(dir, args);
    expect_exit(&o, code, args);
    let err = stderr(&o);
    assert!(
        err.contains(message),
        "fabrik {}: expected {message:?} in\n{err}",
        args.join(" ")
    );
    assert!(t < MAX_TIME, "fabrik {}: {t:?}", args.join(" "));
    assert!(
        rss < MAX_RSS_KIB,
        "fabrik {}: peak memory {rss} KiB",
        args.join(" ")
    );
    eprintln!(
        "hostile: `fabrik {}` refused in {t:?}, peak {} MiB: {message}",
        args.join(" "),
        rss / 1024
    );
    err
}

const HEAD: &str = "name: hostile
coolify: {project: default, environment: production, server: localhost}
";

fn project(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("p")).unwrap();
    std::fs::write(dir.path().join("p/spec.yaml"), spec).unwrap();
    dir
}

#[test]
fn file_references_that_leave_the_project_are_refused() {
    for (file, message) in [
        ("../outside.yml", "is outside the project directory"),
        ("sub/../../outside.yml", "is outside the project directory"),
        ("/etc/passwd", "is an absolute path"),
        ("link.yml", "is outside the project directory"),
        ("dirlink/outside.yml", "is outside the project directory"),
    ] {
        let dir = project(&format!("{HEAD}app:\n  compose:\n    file: {file}\n"));
        std::fs::write(
            dir.path().join("outside.yml"),
            "services: {web: {image: nginx:1}}\n",
        )
        .unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("outside.yml"),
            dir.path().join("p/link.yml"),
        )
        .unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("p/dirlink")).unwrap();
        let err = rejected(
            &dir.path().join("p"),
            &["validate", "spec.yaml"],
            4,
            message,
        );
        assert!(err.contains("field: app.compose.file"), "{err}");
        // Its content is never quoted.
        assert!(!err.contains("nginx:1"), "{err}");
    }
}

#[test]
fn an_exponential_alias_bomb_is_refused_in_bounded_time_and_memory() {
    // 10 levels of 10 references: 10^10 values once expanded.
    let mut spec =
        format!("{HEAD}app:\n  image: nginx:1\n  port: 80\n  domains: [https://a.example.com]\n");
    spec.push_str("x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        spec.push_str(&format!(
            "x{i}: &a{i} [{}]\n",
            vec![format!("*a{p}"); 10].join(", ")
        ));
    }
    let dir = project(&spec);
    rejected(
        &dir.path().join("p"),
        &["validate", "spec.yaml"],
        4,
        "alias",
    );
}

#[test]
fn deep_nesting_is_refused_in_bounded_time_and_memory() {
    for (name, text) in [
        (
            "flow lists",
            format!(
                "{HEAD}app: {}{}\n",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
        ),
        (
            "flow maps",
            format!(
                "{HEAD}app: {}1{}\n",
                "{a: ".repeat(50_000),
                "}".repeat(50_000)
            ),
        ),
        ("block lists", {
            let mut s = format!("{HEAD}app:\n");
            for depth in 1..1_000 {
                s.push_str(&" ".repeat(depth));
                s.push_str("-\n");
            }
            s
        }),
    ] {
        let dir = project(&text);
        let err = rejected(
            &dir.path().join("p"),
            &["validate", "spec.yaml"],
            4,
            "error",
        );
        assert!(
            ["nest", "deep", "recursion limit"]
                .iter()
                .any(|w| err.contains(w)),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_huge_spec_is_refused_without_being_read_whole() {
    // 64 MiB: only the first MiB and one byte are ever read.
    let dir = project("");
    let path = dir.path().join("p/spec.yaml");
    let line = "# padding padding padding padding padding padding padding padding\n";
    let mut text = String::with_capacity(64 << 20);
    text.push_str(HEAD);
    while text.len() < 64 << 20 {
        text.push_str(line);
    }
    std::fs::write(&path, text).unwrap();
    rejected(
        &dir.path().join("p"),
        &["validate", "spec.yaml"],
        4,
        "file is too large",
    );
    // And a spec just under the limit, with thousands of env vars, is read
    // in bounded time too (valid or not).
    let mut big = format!(
        "{HEAD}app:\n  image: nginx:1\n  port: 80\n  domains: [https://a.example.com]\n  env:\n"
    );
    let mut i = 0;
    while big.len() < 1000 * 1024 {
        big.push_str(&format!("    VAR_{i}: value-{i}-{}\n", "x".repeat(40)));
        i += 1;
    }
    std::fs::write(&path, big).unwrap();
    let (o, t, rss) = measured(&dir.path().join("p"), &["validate", "spec.yaml"]);
    assert!(matches!(o.status.code(), Some(0 | 4)), "{}", stderr(&o));
    assert!(t < MAX_TIME && rss < MAX_RSS_KIB * 2, "{t:?} {rss} KiB");
    eprintln!(
        "hostile: a 1000 KiB spec with {i} env vars checked in {t:?}, peak {} MiB",
        rss / 1024
    );
}

#[test]
fn invalid_utf8_anywhere_is_refused_with_its_position() {
    for (name, bytes) in [
        (
            "in a value",
            b"name: hostile\napp:\n  image: caf\xe9\n".to_vec(),
        ),
        ("in a key", b"name: hostile\n\xff\xfe: 1\n".to_vec()),
        ("a lone continuation byte", b"name: host\x80ile\n".to_vec()),
        ("UTF-16 with its byte order mark", {
            let mut v = vec![0xff, 0xfe];
            v.extend("name: hostile\n".encode_utf16().flat_map(u16::to_le_bytes));
            v
        }),
    ] {
        let dir = project("");
        std::fs::write(dir.path().join("p/spec.yaml"), &bytes).unwrap();
        let err = rejected(
            &dir.path().join("p"),
            &["validate", "spec.yaml"],
            4,
            "spec.yaml:",
        );
        assert!(
            err.contains("UTF-8") || err.contains("utf-8"),
            "{name}: {err}"
        );
    }
}

#[test]
fn fifos_and_directories_in_place_of_files_are_refused_not_waited_on() {
    let spec = format!(
        "{HEAD}app:\n  dockerfile:\n    file: Dockerfile\n  domains: [https://a.example.com]\n"
    );
    let dir = project(&spec);
    let p = dir.path().join("p");
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(p.join("Dockerfile"))
        .status()
        .unwrap();
    assert!(mkfifo.success());
    rejected(
        &p,
        &["validate", "spec.yaml"],
        4,
        "`Dockerfile` can not be read: not a regular file",
    );
    std::fs::remove_file(p.join("Dockerfile")).unwrap();
    std::fs::create_dir(p.join("Dockerfile")).unwrap();
    rejected(&p, &["validate", "spec.yaml"], 4, "not a regular file");
    std::fs::remove_dir(p.join("Dockerfile")).unwrap();
    std::fs::write(p.join("Dockerfile"), "FROM nginx:1\nEXPOSE 80\n").unwrap();
    // The .env as a FIFO: apply stops before anything runs.
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(p.join(".env"))
        .status()
        .unwrap();
    assert!(mkfifo.success());
    rejected(
        &p,
        &["apply", "spec.yaml", "--sandbox"],
        1,
        ".env: not a regular file",
    );
    assert!(!p.join(".fabrik/state.db").exists() || crate::support::journal_events(&p).is_empty());
}

#[test]
fn a_symlinked_dotenv_is_used_inside_the_project_and_refused_outside() {
    let spec = crate::reliability::spec("hostile").replace(
        "  health_check:",
        "  env:\n    TOKEN: ${secret.TOKEN}\n  health_check:",
    ) + "secrets:\n  TOKEN:\n";
    let dir = project(&spec);
    let p = dir.path().join("p");
    // Outside the project: refused, its content never read into output.
    std::fs::write(
        dir.path().join("stolen.env"),
        "TOKEN=outside-value-never-shown\n",
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.path().join("stolen.env"), p.join(".env")).unwrap();
    let err = rejected(
        &p,
        &["apply", "spec.yaml", "--sandbox"],
        1,
        "is a symbolic link to a file outside the project directory",
    );
    assert!(!err.contains("outside-value-never-shown"), "{err}");
    let o = crate::support::run(fabrik(&p).args(["plan", "spec.yaml"]));
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    // Inside the project (a shared env file in a subdirectory): used.
    std::fs::remove_file(p.join(".env")).unwrap();
    std::fs::create_dir(p.join("env")).unwrap();
    std::fs::write(p.join("env/shared.env"), "TOKEN=inside-value\n").unwrap();
    std::os::unix::fs::symlink(p.join("env/shared.env"), p.join(".env")).unwrap();
    let o = crate::support::run(fabrik(&p).args(["apply", "spec.yaml", "--sandbox"]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("secret TOKEN from dotenv"),
        "{}",
        stderr(&o)
    );
    // The generated fingerprint key went into the file the link names,
    // which stays a link.
    assert!(
        std::fs::symlink_metadata(p.join(".env"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let shared = std::fs::read_to_string(p.join("env/shared.env")).unwrap();
    assert!(shared.contains("FABRIK_FINGERPRINT_KEY="), "{shared}");
}

#[test]
fn hostile_exports_are_refused_in_bounded_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let header = r#"{"format":"fabrik-journal","format_version":1,"fabrik_version":"0.1.0","exported_at":"2026-01-01T00:00:00Z","complete":true}"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", Vec::new(), "empty file"),
        ("not json", b"hello\n".to_vec(), "export.ndjson:"),
        (
            "a 20 MiB line",
            {
                let mut v = header.as_bytes().to_vec();
                v.push(b'\n');
                v.extend(std::iter::repeat_n(b'x', 20 << 20));
                v
            },
            "line longer than",
        ),
        (
            "no trailer",
            format!("{header}\n").into_bytes(),
            "truncated",
        ),
        (
            "deep nesting",
            format!("{header}\n{}\n", "[".repeat(1 << 20)).into_bytes(),
            "bad event",
        ),
        (
            "a document 100 MiB deep in strings",
            {
                let mut v =
                    br#"{"format":"fabrik-journal","events":[{"seq":1,"payload":""#.to_vec();
                v.extend(std::iter::repeat_n(b'a', 100 << 20));
                v
            },
            "export.ndjson:",
        ),
        (
            "newer format",
            header
                .replace("\"format_version\":1", "\"format_version\":9")
                .into_bytes(),
            "not supported",
        ),
        (
            "invalid utf-8",
            [header.as_bytes(), b"\n\xff\xfe\n"].concat(),
            "not valid UTF-8",
        ),
        (
            "wrong types",
            format!("{header}\n{{\"seq\":\"one\"}}\n").into_bytes(),
            "bad event",
        ),
        (
            "huge numbers",
            format!("{header}\n{{\"seq\":1e999}}\n").into_bytes(),
            "bad event",
        ),
    ];
    for (name, bytes, message) in cases {
        std::fs::write(d.join("export.ndjson"), &bytes).unwrap();
        let err = rejected(d, &["replay", "--input", "export.ndjson"], 7, message);
        assert!(err.contains("export.ndjson"), "{name}: {err}");
    }
}

/// What a hostile server answered in the issue: it erases the line,
/// moves up, prints a success in green and retitles the terminal.
const HOSTILE_BODY: &str = "\u{1b}[2K\r\u{1b}[1A\u{1b}[32mhostile is deployed and verified\u{1b}]0;pwned\u{7} \u{202e}desrever\u{8}";

/// Whether `text` holds a character that acts on a terminal.
fn acts_on_a_terminal(text: &str) -> Option<char> {
    text.chars()
        .find(|&c| c != '\n' && c != '\t' && fabrik::text::is_unsafe(c))
}

/// Every string in a JSON document.
fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(m) => m.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// Issue: provider bodies were quoted raw. A refusal whose text erases
/// lines, fakes a success in green and retitles the terminal reached
/// stderr, was stored in the journal and was printed again by every
/// `fabrik status`. Now every control, bidirectional and zero-width
/// character from outside is written as a visible escape, in what is
/// printed and in what is journaled.
#[test]
fn a_provider_answer_with_terminal_escapes_is_printed_and_journaled_escaped() {
    use crate::faults::LiveSandbox;
    use crate::reliability::proxy::{Proxy, reencode_errors};
    use fabrik::sandbox::FaultConfig;
    let dir = tempfile::tempdir().unwrap();
    let sandbox = LiveSandbox::start(
        &dir.path().join("world.db"),
        FaultConfig {
            echo_422: true,
            ..FaultConfig::default()
        },
    );
    let coolify_url = sandbox.handle().coolify_url.clone();
    let proxy = Proxy::start(
        &sandbox,
        &coolify_url,
        std::sync::Arc::new(|_, body| {
            reencode_errors(body, &|m| vec![format!("{HOSTILE_BODY} ({m})")])
        }),
    );
    let p = dir.path().join("p");
    std::fs::create_dir(&p).unwrap();
    std::fs::write(
        p.join("spec.yaml"),
        format!(
            "{HEAD}app:
  image: traefik/whoami:v1.10
  port: 80
  domains: [https://hostile.example.com]
retry: {{attempts: 1}}
"
        ),
    )
    .unwrap();
    let fabrik_here = || {
        let mut c = fabrik(&p);
        for (k, v) in sandbox.env() {
            c.env(k, v);
        }
        c.env("COOLIFY_URL", proxy.through(&coolify_url));
        c
    };
    let o = fabrik_here().args(["apply", "spec.yaml"]).output().unwrap();
    assert!(matches!(o.status.code(), Some(1 | 5 | 6)), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("hostile is deployed and verified") && err.contains("\\u{1b}[32m"),
        "the answer is shown, escaped: {err}"
    );
    assert_eq!(acts_on_a_terminal(&err), None, "stderr: {err:?}");
    assert_eq!(acts_on_a_terminal(&crate::support::stdout(&o)), None);
    // The journal holds the text escaped: every string of every payload.
    let mut texts = Vec::new();
    for e in crate::support::journal_events(&p) {
        strings(&e["payload"], &mut texts);
    }
    assert!(
        texts.iter().any(|t| t.contains("hostile is deployed")),
        "the answer was journaled"
    );
    for t in &texts {
        assert_eq!(acts_on_a_terminal(t), None, "journaled: {t:?}");
    }
    for args in [
        &["status", "hostile"][..],
        &["history", "hostile"],
        &["status"],
    ] {
        let o = fabrik_here().args(args).output().unwrap();
        expect_exit(&o, 0, args);
        let shown = format!("{}{}", crate::support::stdout(&o), stderr(&o));
        assert_eq!(
            acts_on_a_terminal(&shown),
            None,
            "fabrik {args:?}: {shown:?}"
        );
    }
}

/// A journal written before the escaping (the raw text of a hostile
/// answer in a failure's error) is printed escaped all the same.
#[test]
fn raw_text_in_an_old_journal_is_printed_escaped() {
    use fabrik::event::*;
    use fabrik::id::{DeploymentId, RunId};
    use fabrik::store::EventStore as _;
    let dir = tempfile::tempdir().unwrap();
    let store =
        fabrik::store::sqlite::SqliteStore::open(&dir.path().join(".fabrik/state.db")).unwrap();
    let d = DeploymentId::new("old").unwrap();
    let run = RunId::from_u128(7);
    let at = jiff::Timestamp::from_second(1_767_225_600).unwrap();
    let events = vec![
        Event::RunStarted(RunStarted {
            command: RunCommand::Apply,
            spec_path: Some("spec\u{1b}[2J.yaml".to_owned()),
            spec_hash: None,
            user: "u\u{7}".into(),
            host: "h\r".into(),
            pid: 1,
            fabrik_version: "0.0.1".into(),
            options: RunOptions::default(),
        }),
        Event::ResourceFailed(ResourceFailed {
            resource: ResourceKey::new("app"),
            kind: ResourceKind::Application,
            action: Action::Create,
            error: HOSTILE_BODY.into(),
            outcome_unknown: false,
        }),
        Event::RunStateChanged(RunStateChanged {
            from: fabrik::projection::RunState::Pending,
            to: fabrik::projection::RunState::Failed,
            reason: Some(HOSTILE_BODY.into()),
        }),
        Event::RunFinished(RunFinished {
            outcome: RunOutcome::Failed,
            exit_code: 1,
            message: Some(HOSTILE_BODY.into()),
        }),
    ];
    let news: Vec<NewEvent> = events
        .into_iter()
        .map(|event| NewEvent {
            run: Some(run.clone()),
            at,
            event,
        })
        .collect();
    store.append(&d, Default::default(), &news).unwrap();
    drop(store);
    for args in [
        &["status", "old"][..],
        &["status"],
        &["history", "old"],
        &["replay"],
        &["replay", "--until", "2"],
    ] {
        let o = crate::support::run(fabrik(dir.path()).args(args));
        expect_exit(&o, 0, args);
        let shown = format!("{}{}", crate::support::stdout(&o), stderr(&o));
        assert_eq!(
            acts_on_a_terminal(&shown),
            None,
            "fabrik {args:?}: {shown:?}"
        );
    }
    let o = crate::support::run(fabrik(dir.path()).args(["status", "old"]));
    assert!(
        crate::support::stdout(&o).contains("\\u{1b}[32mhostile is deployed"),
        "the text is shown, escaped: {}",
        crate::support::stdout(&o)
    );
}

/// Issue: `COOLIFY_URL=http://192.0.2.2:…` received the bearer token with
/// no word. Plain http to another machine is refused before anything is
/// sent or journaled, naming the variable and how to opt in; with
/// `--allow-insecure-http` (or `FABRIK_ALLOW_INSECURE_HTTP=1`) the run goes
/// on to the network. Plain http to this machine stays allowed.
#[test]
fn credentials_never_go_over_plain_http_to_another_machine_unasked() {
    const TOKEN: &str = "7|plainHttpTokenValue0123456789";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("spec.yaml"),
        format!(
            "{HEAD}app:
  image: traefik/whoami:v1.10
  port: 80
timeouts: {{request: 2s}}
retry: {{attempts: 1}}
"
        ),
    )
    .unwrap();
    let apply = |url: &str, opt_in: Option<(&str, &str)>| {
        let mut c = fabrik(d);
        c.args(["apply", "spec.yaml"])
            .env("COOLIFY_URL", url)
            .env("COOLIFY_TOKEN", TOKEN);
        match opt_in {
            Some(("--flag", _)) => {
                c.arg("--allow-insecure-http");
            }
            Some((k, v)) => {
                c.env(k, v);
            }
            None => {}
        }
        crate::support::run(&mut c)
    };
    let o = apply("http://192.0.2.2:8000", None);
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("COOLIFY_URL is plain http to 192.0.2.2")
            && err.contains("--allow-insecure-http")
            && err.contains("FABRIK_ALLOW_INSECURE_HTTP=1"),
        "{err}"
    );
    assert!(!err.contains(TOKEN) && !crate::support::stdout(&o).contains(TOKEN));
    assert!(
        !d.join(".fabrik").join("state.db").exists(),
        "nothing was journaled"
    );
    // Opted in (either way), the check lets it through: the run gets as far
    // as the network (where 192.0.2.2, a documentation address, fails).
    for opt_in in [("--flag", ""), ("FABRIK_ALLOW_INSECURE_HTTP", "1")] {
        let o = apply("http://192.0.2.2:8000", Some(opt_in));
        let err = stderr(&o);
        assert_ne!(o.status.code(), Some(0), "{err}");
        assert!(!err.contains("plain http"), "{opt_in:?}: {err}");
        assert!(err.contains("coolify"), "{opt_in:?}: {err}");
    }
    // To this machine, plain http is fine: the refusal is not what stops
    // a run against a closed local port.
    let o = apply("http://127.0.0.1:9", None);
    assert!(!stderr(&o).contains("plain http"), "{}", stderr(&o));
}
