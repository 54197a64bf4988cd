//! The `fabrik` command: parse arguments, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser as _;

/// mimalloc instead of the system allocator: replaying a journal allocates
/// millions of short-lived strings from two threads, where glibc's malloc
/// spent a third of the time (measured with `perf`, see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = fabrik::cli::Cli::try_parse().unwrap_or_else(|e| fabrik::cli::hint_usage(e).exit());
    let mut out = fabrik::output::Output::stdio(cli.output, cli.color);
    let code = match fabrik::cli::run(cli, &mut out) {
        Ok(code) => code,
        // The reader of stdout had enough (`| head`): a quiet success.
        Err(err) if err.is_broken_pipe() => 0,
        Err(err) => {
            out.error(&err);
            err.exit_code()
        }
    };
    let _ = out.flush();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
