//! Fabrik's integration tests, built as one binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

mod apply;
mod architecture;
mod cli_reference;
mod crash;
mod docs;
mod engine;
mod faults;
mod journal;
mod json_output;
mod postgres;
mod props;
mod provider;
mod reliability;
mod sandbox;
mod spec;
mod store;
mod support;
