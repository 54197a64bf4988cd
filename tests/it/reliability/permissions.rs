//! File permissions: every file Fabrik creates that can hold sensitive
//! data (the journal with its WAL and shared-memory files, the lock files,
//! the generated `.env`, exports, the sandbox's world, a migrated journal)
//! is mode 0600 and every directory it creates 0700, whatever the umask.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::support::{expect_exit, fabrik_bin, stderr};

/// Runs `fabrik ARGS` in `dir` under `umask 000`, so that any file created
/// without an explicit mode would come out world-writable.
fn under_open_umask(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut script = String::from("umask 000; exec \"$0\"");
    for i in 1..=args.len() {
        script.push_str(&format!(" \"${i}\""));
    }
    let mut c = crate::support::fabrik(dir);
    let envs: Vec<(std::ffi::OsString, Option<std::ffi::OsString>)> = c
        .get_envs()
        .map(|(k, v)| (k.to_owned(), v.map(ToOwned::to_owned)))
        .collect();
    c = std::process::Command::new("sh");
    c.current_dir(dir)
        .arg("-c")
        .arg(script)
        .arg(fabrik_bin())
        .args(args);
    for (k, v) in envs {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.output().expect("run sh")
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn every_file_that_can_hold_secrets_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = super::spec("private").replace(
        "  health_check:",
        "  env:\n    TOKEN: ${secret.TOKEN}\n  health_check:",
    ) + "secrets:\n  TOKEN:\n    generate: true\n";
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    for args in [
        &["apply", "spec.yaml", "--sandbox"][..],
        &["journal", "export", "-o", "export.json"][..],
        &[
            "journal",
            "export",
            "--format",
            "ndjson",
            "-o",
            "export.ndjson",
        ][..],
        // Beside the journal's directory: migrate creates no directory.
        &["state", "migrate", "--to", "moved.db"][..],
    ] {
        expect_exit(&under_open_umask(d, args), 0, args);
    }
    let mut checked = Vec::new();
    let mut stack = vec![d.to_path_buf()];
    while let Some(p) = stack.pop() {
        for e in std::fs::read_dir(&p).unwrap() {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(d).unwrap().display().to_string();
            if rel == "spec.yaml" {
                continue; // the test wrote it
            }
            let m = mode(&path);
            if path.is_dir() {
                assert_eq!(m, 0o700, "{rel} is a directory with mode {m:o}");
                stack.push(path);
            } else {
                assert_eq!(m, 0o600, "{rel} has mode {m:o}");
            }
            checked.push(rel);
        }
    }
    checked.sort();
    for expected in [
        ".config/fabrik",
        ".config/fabrik/journal.key",
        ".config/fabrik/heads",
        ".env",
        ".fabrik",
        ".fabrik/locks",
        ".fabrik/locks/private.lock",
        ".fabrik/sandbox.db",
        ".fabrik/state.db",
        ".fabrik/state.db-head",
        ".fabrik/state.db-shm",
        ".fabrik/state.db-wal",
        "moved.db",
        "export.json",
        "export.ndjson",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} not created: {checked:?}"
        );
    }
    eprintln!(
        "permissions: {} paths checked under umask 000: {checked:?}",
        checked.len()
    );
}

/// Adding a generated secret to an existing `.env` that others can read
/// leaves it private: the file is replaced by one created with mode 0600
/// (by apply; a plan writes nothing).
#[test]
fn a_readable_dotenv_that_gets_a_generated_secret_becomes_private() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = super::spec("private").replace(
        "  health_check:",
        "  env:\n    TOKEN: ${secret.TOKEN}\n  health_check:",
    ) + "secrets:\n  TOKEN:\n    generate: true\n";
    std::fs::write(d.join("spec.yaml"), spec).unwrap();
    std::fs::write(d.join(".env"), "OTHER=1\n").unwrap();
    std::fs::set_permissions(d.join(".env"), std::fs::Permissions::from_mode(0o644)).unwrap();
    // A plan only previews the secret: the file is left as it was.
    let o = under_open_umask(d, &["plan", "spec.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(d.join(".env")).unwrap(),
        "OTHER=1\n"
    );
    assert_eq!(mode(&d.join(".env")), 0o644);
    let o = under_open_umask(d, &["apply", "spec.yaml", "--sandbox"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(d.join(".env")).unwrap();
    assert!(
        text.starts_with("OTHER=1\n") && text.contains("TOKEN="),
        "{text}"
    );
    assert_eq!(mode(&d.join(".env")), 0o600);
}

/// Issue: read-only commands failed on a read-only state directory (a
/// journal kept on a read-only mount, or one whose files belong to
/// another user who lets others read them). The directory and its files
/// are made read-only for the user that runs the commands: as root,
/// whom permissions do not stop, the commands run as `nobody` instead.
#[test]
fn reading_commands_work_on_a_read_only_state_directory() {
    use std::os::unix::process::CommandExt as _;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("spec.yaml"), super::spec("frozen")).unwrap();
    let args = ["apply", "spec.yaml", "--sandbox"];
    expect_exit(
        &crate::support::run(crate::support::fabrik(d).args(args)),
        0,
        &args,
    );
    let root = runs_as_root();
    let nobody = 65534;
    // Everything readable (and the directories enterable) by the user
    // that reads; nothing writable by it.
    let mut stack = vec![d.to_path_buf()];
    while let Some(p) = stack.pop() {
        let dir_mode = if p.is_dir() { 0o500 } else { 0o400 };
        if root {
            std::os::unix::fs::chown(&p, Some(nobody), Some(nobody)).unwrap();
        }
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(dir_mode)).unwrap();
    }
    let reader = |args: &[&str]| {
        let mut c = crate::support::fabrik(d);
        c.args(args);
        if root {
            c.uid(nobody).gid(nobody);
        }
        c.output().unwrap()
    };
    // A write is refused (the test does make the state read-only).
    let o = reader(&["apply", "spec.yaml", "--sandbox"]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "apply wrote to a read-only journal"
    );
    for args in [
        &["status"][..],
        &["status", "frozen"],
        &["history", "frozen"],
        &["lock", "status"],
        &["journal", "export", "--format", "ndjson"],
        &["replay"],
        &["replay", "--verify"],
    ] {
        let o = reader(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "fabrik {}: {}",
            args.join(" "),
            stderr(&o)
        );
    }
    // Put things back so that the temporary directory can be removed.
    let mut stack = vec![d.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = if p.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        if p.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
}

/// Whether this process runs as root (whom file permissions do not stop).
fn runs_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next().map(|u| u == "0"))
        .unwrap_or(false)
}
