//! `fabrik plan` and `fabrik apply` end to end: the real binary, in a
//! project directory of its own, against the sandbox.
//!
//! - `coolify`: what a real Coolify does that the OpenAPI file does not
//!   say, one test per behaviour, each failing on a client that followed
//!   the OpenAPI file alone.
//! - `forms`: every app form (image, Dockerfile, git, compose, one-click
//!   service, the wordpress and static-site templates): apply, re-apply
//!   without a single provider call, change one field and see only that
//!   resource updated; plans snapshotted.
//! - `preflight`: what is found before anything changes (credentials, API
//!   switches, unknown server, project or zone): exit code, message and
//!   hint, and the sandbox world untouched.
//! - `serve`: the binary against `fabrik sandbox serve` in another process.
//! - `stream`: every line of `--output json` against
//!   `schema/progress.schema.json`.

mod binding;
mod colour;
mod confirm;
mod coolify;
mod deletes;
mod discovery;
mod doctor;
mod environments;
mod forms;
mod logs;
mod plan;
mod preflight;
mod promote;
mod reach;
mod releases;
mod rotation;
mod roundtrips;
mod serve;
mod stream;
mod tables;
mod waiting;
mod wording;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{fabrik, run, stderr, stdout};

/// A project directory holding a copy of one of the examples.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// A copy of `examples/NAME` with `edits` applied to its `spec.yaml`
    /// (each `from` must be found, so an example that changes under a test
    /// fails it instead of silently running something else).
    pub fn example(name: &str, edits: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        crate::support::copy_pristine(&crate::support::examples().join(name), dir.path());
        let p = Self { dir };
        for (from, to) in edits {
            p.edit("spec.yaml", from, to);
        }
        p
    }

    /// A project holding `spec` as `spec.yaml` and each of `files`.
    pub fn with_spec(spec: &str, files: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("spec.yaml"), spec).unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Self { dir }
    }

    /// The requests the project's sandbox received that could change
    /// something, oldest first.
    pub fn requests(&self) -> Vec<Value> {
        fabrik::sandbox::requests(&self.sandbox_data())
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces `from` (which must be there) by `to` in `file`.
    pub fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} has no {from:?}:\n{text}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    }

    /// A `fabrik` command in the project directory.
    pub fn cmd(&self) -> Command {
        fabrik(self.path())
    }

    /// Runs `fabrik ARGS` in the project directory.
    pub fn run(&self, args: &[&str]) -> Output {
        run(self.cmd().args(args))
    }

    /// `fabrik apply spec.yaml --sandbox`.
    pub fn apply(&self) -> Output {
        self.run(&["apply", "spec.yaml", "--sandbox"])
    }

    /// Where the in-process sandbox keeps its world.
    pub fn sandbox_data(&self) -> PathBuf {
        self.path().join(".fabrik").join("sandbox.db")
    }

    /// The simulated world.
    pub fn dump(&self) -> Value {
        fabrik::sandbox::dump(&self.sandbox_data()).unwrap()
    }

    /// A data-file path the sandbox can never open (its directory is a
    /// regular file), for `FABRIK_SANDBOX_DATA`: a run that starts the
    /// sandbox, which it does before its first provider call, fails.
    pub fn unusable_sandbox_data(&self) -> PathBuf {
        let blocker = self.path().join("not-a-directory");
        std::fs::write(&blocker, "").unwrap();
        blocker.join("sandbox.db")
    }

    /// `fabrik --output json ARGS`, parsed (one document).
    pub fn json(&self, args: &[&str]) -> Value {
        let o = run(self.cmd().args(["--output", "json"]).args(args));
        ok(&o);
        serde_json::from_str(&stdout(&o)).unwrap()
    }

    /// `fabrik journal export --run RUN`: the export document of one run.
    pub fn export(&self, run: &str) -> Value {
        let o = self.run(&["journal", "export", "--run", run]);
        ok(&o);
        serde_json::from_str(&stdout(&o)).unwrap()
    }

    /// The runs of `deployment`, oldest first.
    pub fn runs(&self, deployment: &str) -> Vec<Value> {
        self.json(&["history", deployment])["runs"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The entries of the project's `.env`: generated secrets land there,
    /// and the key of the secrets' fingerprints.
    pub fn dotenv(&self) -> Vec<(String, String)> {
        let text = std::fs::read_to_string(self.path().join(".env")).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
            .collect()
    }
}

/// Asserts the command succeeded, showing what it said otherwise.
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
}

/// The Coolify application or service with this uuid.
pub fn find_app<'a>(dump: &'a Value, uuid: &str) -> Option<&'a Value> {
    ["applications", "services"]
        .iter()
        .flat_map(|k| dump["coolify"][k].as_array().unwrap())
        .find(|a| a["uuid"] == uuid)
}

/// The DNS record with this id, in any zone.
pub fn find_record<'a>(dump: &'a Value, id: &str) -> Option<&'a Value> {
    dump["cloudflare"]["zones"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|z| z["records"].as_array().unwrap())
        .find(|r| r["id"] == id)
}

/// The Uptime Kuma monitor with this id.
pub fn find_monitor<'a>(dump: &'a Value, id: &str) -> Option<&'a Value> {
    dump["uptime_kuma"]["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| same_id(&m["id"], id))
}

/// Whether a dump's id (a string, or a number for monitors) is `id`, as
/// the journal writes remote ids.
fn same_id(v: &Value, id: &str) -> bool {
    match v {
        Value::String(s) => s == id,
        Value::Number(n) => n.to_string() == id,
        _ => false,
    }
}

/// The resource of `kind` (as the journal names kinds) with `remote_id`.
pub fn find_resource<'a>(dump: &'a Value, kind: &str, remote_id: &str) -> Option<&'a Value> {
    match kind {
        "application" => find_app(dump, remote_id),
        "dns_record" => find_record(dump, remote_id),
        "monitor" => find_monitor(dump, remote_id),
        other => panic!("unknown resource kind {other}"),
    }
}

/// The dump without one resource, to compare everything else.
pub fn without(dump: &Value, kind: &str, remote_id: &str) -> Value {
    let mut d = dump.clone();
    let keep = |list: &mut Value, field: &str| {
        list.as_array_mut()
            .unwrap()
            .retain(|x| !same_id(&x[field], remote_id));
    };
    match kind {
        "application" => {
            keep(&mut d["coolify"]["applications"], "uuid");
            keep(&mut d["coolify"]["services"], "uuid");
        }
        "dns_record" => {
            for z in d["cloudflare"]["zones"].as_array_mut().unwrap() {
                keep(&mut z["records"], "id");
            }
        }
        "monitor" => keep(&mut d["uptime_kuma"]["monitors"], "id"),
        other => panic!("unknown resource kind {other}"),
    }
    assert_ne!(&d, dump, "no {kind} {remote_id} in the dump");
    d
}
