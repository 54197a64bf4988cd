//! The sandbox: a stateful simulator of Coolify, Cloudflare and Uptime Kuma
//! (and of the container registries their images come from).
//!
//! A test double and a try-out ground, never a replacement for the real
//! services. It answers the way `contracts/` says the real servers answer,
//! quirks included (skipped deploys with unsaved uuids, asynchronous
//! deletes, `{count, deployments}`, `conditions` mandatory on Kuma 2.x...),
//! so code that works against it works against them. It also serves the
//! deployed apps over HTTP and HTTPS (certificates from a sandbox CA) so
//! that verification runs its real code path, and injects faults from a
//! seed so that failures are reproducible.
//!
//! # Use
//!
//! - [`start`]: in-process, on ephemeral loopback ports (`--sandbox` runs,
//!   tests, benchmarks). Returns a [`SandboxHandle`] with the URLs, the CA
//!   and the credentials.
//! - [`bind`] then [`BoundSandbox::run`], or [`serve`]: `fabrik sandbox
//!   serve`.
//! - [`dump`]: the whole world of a data file as JSON (`fabrik sandbox dump`).
//!
//! # Layout
//!
//! - `config`: [`SandboxConfig`], credentials, runtime [`Settings`], [`Clock`].
//! - `faults`: [`FaultConfig`] and the seeded dice.
//! - `store` (+ `schema.sql`): the SQLite data file; one transaction per
//!   request, committed before the response.
//! - `world`: views across services: host → site, DNS answers, the dump.
//! - `coolify/`: the Coolify API (applications, envs, deployments,
//!   services, projects, tags).
//! - `cloudflare`: zones and DNS records.
//! - `kuma/`: Uptime Kuma over Socket.IO (auth, monitors, tags).
//! - `apps`: the deployed apps over HTTP and HTTPS.
//! - `registry`: a container registry for every image name (manifest
//!   digests, anonymous tokens, pushes that move a tag).
//! - `ca`: the sandbox CA and per-domain certificates.
//! - `admin`: `/_sandbox/...` (faults, settings, dump, info, resolve,
//!   registry pushes).
//! - `server`: listeners, routing, fault middleware, lifecycle.
//! - `conn`: connections that can be cut for the lost-response fault.
//! - `reply`: the answer type handlers build inside a transaction.
//!
//! # Invariants
//!
//! - The data file is the source of truth; nothing about the world is
//!   cached in memory, so several processes can share one file.
//! - Time-driven state (deployment progress, asynchronous deletes) is
//!   derived from stored timestamps and the [`Clock`] on every read; there
//!   is no background task.
//! - The library prints nothing.

mod admin;
mod apps;
mod ca;
mod cloudflare;
mod config;
mod conn;
mod coolify;
mod error;
mod faults;
mod kuma;
mod registry;
mod reply;
mod server;
mod store;
mod world;

use std::path::Path;

pub use self::config::{
    COOLIFY_VERSION_ENV, Clock, Credentials, DATA_ENV, FAULTS_ENV, ManualClock, SandboxConfig,
    Settings,
};
pub use self::error::SandboxError;
pub use self::faults::{FaultConfig, FaultParseError, Injections};
pub use self::server::{BoundSandbox, SandboxHandle, SandboxInfo, bind, serve, start};

/// The whole world stored in `data` as JSON (`fabrik sandbox dump`):
/// Coolify projects, applications with env vars (values as keyed
/// fingerprints), tags and deployments, services; Cloudflare zones with
/// their records; Uptime Kuma monitors with their tags. Stable order; each
/// resource carries its ownership mark (parsed with
/// [`crate::ownership::OwnershipMark::parse`]) or null. Reads only.
pub fn dump(data: &Path) -> Result<serde_json::Value, SandboxError> {
    world::dump_file(data, config::system_now_ms())
}

/// The requests the simulated Coolify received that could change
/// something (every method but GET), oldest first, as a JSON array of
/// `{at, service, method, path, query, body, status}`; the body as the
/// controller saw it (trimmed, empty strings as null), env values and
/// passwords as keyed fingerprints. For tests that check what a client
/// sent. Reads only.
pub fn requests(data: &Path) -> Result<serde_json::Value, SandboxError> {
    world::requests_file(data, config::system_now_ms())
}
