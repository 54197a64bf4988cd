//! Integration tests of the `sandbox` module: each test starts its own
//! in-process sandbox on loopback (ephemeral ports, its own temp dir, a
//! manual clock) and talks to it as the provider clients do.

mod apps;
mod cloudflare;
mod contract;
mod coolify;
mod determinism;
mod faults;
mod kuma;
mod persistence;
mod server;
pub mod support;
