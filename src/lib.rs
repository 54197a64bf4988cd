//! Fabrik: a deployment orchestrator on an event-sourced journal.
//!
//! `fabrik apply spec.yaml` takes a service to production on a self-hosted
//! Coolify server: spec validation, secrets, Cloudflare DNS, the Coolify
//! application and its deployment, HTTP/TLS verification, Uptime Kuma
//! monitors and webhook notifications, with policy-based rollback. Every step
//! is an event in an append-only, hash-chained journal; everything else is
//! folded from it.
//!
//! # Layout
//!
//! - [`id`], [`ownership`], [`secret`]: identifiers, the remote ownership
//!   mark, secret values and scrubbing. Shared vocabulary.
//! - [`event`]: the event model, its canonical encoding and hash chain.
//! - [`projection`], [`decide`]: the pure core. The fold from events to
//!   deployment, run and resource views, the run state machine, and the
//!   checks made before an append. No I/O, clock or randomness.
//! - [`store`]: the journal backends (SQLite, in-memory) behind one trait,
//!   chain verification.
//! - [`export`]: the export format, streamed both ways.
//! - [`cli`], [`output`]: the command tree, and the one module that prints.
//! - [`error`]: the top-level error and exit codes.
//! - [`spec`]: the spec file: model, validation with locations, templates,
//!   compose lint, JSON Schema, secret resolution, desired-state hash.
//! - [`provider`]: capability traits (app host, DNS, monitors, notifier) and
//!   the Coolify, Cloudflare, Uptime Kuma and webhook clients behind them.
//! - [`text`]: outside text made safe to print and journal (control and
//!   bidirectional characters escaped).
//! - [`sandbox`]: a stateful simulator of the three services, for tests,
//!   benchmarks and trying Fabrik without accounts.
#![deny(missing_docs)]

pub mod canonical;
pub mod cli;
pub mod decide;
pub mod engine;
pub mod error;
pub mod event;
pub mod exit;
pub mod export;
pub mod failpoint;
pub mod generate;
pub mod id;

pub mod output;
pub mod ownership;
pub mod plan;
pub mod projection;
pub mod provider;
pub mod rollback;
pub mod sandbox;
pub mod secret;
pub mod spec;
pub mod store;
pub mod text;
pub mod verify;
