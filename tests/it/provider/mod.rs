//! Integration tests of the `provider` module: every client against a local
//! fake server, failure modes as snapshots, and the contract checks.

mod cloudflare;
mod contract;
mod coolify;
mod failures;
mod fake;
mod kuma;
mod webhook;
