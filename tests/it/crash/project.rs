//! The project the crash, lock and interrupt tests deploy: a spec that
//! creates every resource kind (DNS records, an application, a monitor),
//! with its secret and fingerprint key fixed so that desired-state hashes
//! are the same in every directory.

use std::path::Path;
use std::process::Output;

use crate::support::{fabrik, run, stderr};

/// The deployment's name.
pub const NAME: &str = "crashy";

/// The first version: two DNS records, the application, a monitor.
/// `rollback.dns: auto` so that a rolled-back world is empty (the default
/// `manual` would leave the records for `fabrik rollback`, and a crash
/// test could not tell a record left by policy from an orphan).
pub const SPEC_V1: &str = r#"name: crashy
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:v1.10
  port: 80
  domains:
    - https://crashy.example.com
  health_check:
    path: /health
  env:
    GREETING: hello
    API_TOKEN: ${secret.API_TOKEN}
secrets:
  API_TOKEN:
    generate: true
dns:
  zone: example.com
  records:
    - type: A
      name: crashy.example.com
      content: 203.0.113.10
    - type: CNAME
      name: www.crashy.example.com
      content: crashy.example.com
verify:
  timeout: 30s
  http:
    - url: https://crashy.example.com/health
      status: 200
monitors:
  - name: crashy
    url: https://crashy.example.com/health
    interval: 60s
rollback:
  dns: auto
"#;

/// The second version: every kind updated, one record removed, one added.
// Only the crash harness (feature `failpoints`) uses it.
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub const SPEC_V2: &str = r#"name: crashy
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:v1.11
  port: 80
  domains:
    - https://crashy.example.com
  health_check:
    path: /health
  env:
    GREETING: bonjour
    API_TOKEN: ${secret.API_TOKEN}
secrets:
  API_TOKEN:
    generate: true
dns:
  zone: example.com
  records:
    - type: A
      name: crashy.example.com
      content: 203.0.113.11
    - type: A
      name: api.crashy.example.com
      content: 203.0.113.12
verify:
  timeout: 30s
  http:
    - url: https://crashy.example.com/health
      status: 200
monitors:
  - name: crashy
    url: https://crashy.example.com/health
    interval: 120s
rollback:
  dns: auto
"#;

/// The first version with a short verification timeout, for runs whose
/// verification is made to fail (`health_fail`).
pub fn spec_v1_failing() -> String {
    SPEC_V1.replace("timeout: 30s", "timeout: 1s")
}

/// Fixed secrets: the generated secret and the fingerprint key.
const DOTENV: &str = "API_TOKEN=Zx8pQ2mV7rT4kL9wN3bH6cJ1fD5sG0aY\n\
FABRIK_FINGERPRINT_KEY=5f0c1b2a3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccddeef\n";

/// Writes the spec and its `.env` into `dir`.
pub fn write(dir: &Path, spec: &str) {
    std::fs::write(dir.join("spec.yaml"), spec).unwrap();
    let env = dir.join(".env");
    if !env.exists() {
        std::fs::write(&env, DOTENV).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
    }
}

/// A fresh project directory holding `spec`, the root of a git work tree
/// as specs usually are: the spec's identity (`spec.yaml` in the work
/// tree) survives a copy of the project to another directory.
pub fn new(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    write(dir.path(), spec);
    dir
}

/// `fabrik apply spec.yaml --sandbox` in `dir`, which must succeed.
pub fn apply_ok(dir: &Path) -> Output {
    let o = run(fabrik(dir).args(["apply", "spec.yaml", "--sandbox"]));
    assert_eq!(o.status.code(), Some(0), "apply: {}", stderr(&o));
    o
}

/// Copies a project directory (spec, `.env`, journal, sandbox world,
/// lock files) into `to`. Only called while no process uses it.
// Only the crash harness (feature `failpoints`) uses it.
#[cfg_attr(not(feature = "failpoints"), allow(dead_code))]
pub fn copy(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
