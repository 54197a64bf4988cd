//! Reliability and security evidence: the tests behind
//! `docs/RELIABILITY.md`. Each one tries to break a promise of the brief
//! (secrets stay secret, concurrent runs never collide, a damaged journal
//! is reported and never read as a wrong state, hostile input costs
//! bounded time and memory, files are private, TLS is always verified).
//!
//! Two knobs raise the effort for long runs without slowing CI:
//! `FABRIK_RELIABILITY_ROUNDS` (repetitions of the concurrency and
//! tampering scenarios, default 1) and `PROPTEST_CASES` (cases of the
//! property tests, each of which has a default sized to run in seconds).

mod concurrency;
mod disk;
mod forgery;
mod hostile;
mod leak;
mod orchestration;
mod permissions;
mod props;
pub mod proxy;
mod tamper;
mod tls;

/// How many times to repeat the expensive scenarios
/// (`FABRIK_RELIABILITY_ROUNDS`, default 1).
pub fn rounds() -> usize {
    std::env::var("FABRIK_RELIABILITY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(1)
}

/// A spec that creates every resource kind (a DNS record, the application,
/// a monitor) for deployment `name`, with a verification timeout long
/// enough for a loaded machine.
pub fn spec(name: &str) -> String {
    format!(
        "name: {name}
coolify:
  project: default
  environment: production
  server: localhost
app:
  image: traefik/whoami:v1.10
  port: 80
  domains:
    - https://{name}.example.com
  health_check:
    path: /health
dns:
  zone: example.com
  records:
    - type: A
      name: {name}.example.com
      content: 203.0.113.10
verify:
  timeout: 60s
  http:
    - url: https://{name}.example.com/health
      status: 200
monitors:
  - name: {name}
    url: https://{name}.example.com/health
    interval: 60s
"
    )
}
