//! Writes a large, realistic journal for benchmarks and demos.
//!
//! ```text
//! cargo run --release --example journal_gen -- --state /tmp/big.db --events 1000000
//! ```
//!
//! Options: `--state PATH` (default `.fabrik/state.db`), `--events N`
//! (stop after about N events; default 10000), `--deployments N` (default
//! 200), `--records N` (DNS records per deployment, default 3), `--seed N`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use fabrik::generate::{Shape, generate};
use fabrik::store::EventStore;
use fabrik::store::sqlite::SqliteStore;

fn main() -> ExitCode {
    let mut state = PathBuf::from(".fabrik/state.db");
    let mut events: u64 = 10_000;
    let mut deployments = 200usize;
    let mut records = 3usize;
    let mut seed = 1u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--state" => state = PathBuf::from(v),
            "--events" => events = v.parse().unwrap_or(events),
            "--deployments" => deployments = v.parse().unwrap_or(deployments),
            "--records" => records = v.parse().unwrap_or(records),
            "--seed" => seed = v.parse().unwrap_or(seed),
            other => {
                eprintln!("unknown option {other}");
                return ExitCode::from(2);
            }
        }
    }
    let store = match SqliteStore::open(&state) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    // A run has at least 10 events: enough rounds to reach the target.
    let per_round = (deployments as u64) * 10;
    let rounds = (events / per_round.max(1)).max(1) as usize + 1;
    let shape = Shape {
        deployments,
        runs: rounds,
        records,
        seed,
    };
    let mut batches = Vec::new();
    let mut planned = 0u64;
    generate(shape, |b| {
        if planned < events {
            planned += b.events.len() as u64;
            batches.push((b.deployment, b.events));
        }
    });
    match store.bulk_append(batches, 500) {
        Ok(n) => {
            let total = store.len().unwrap_or(n);
            println!("{} events appended; the journal holds {total}", n);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
