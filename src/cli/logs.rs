//! `fabrik logs NAME`.

use serde_json::json;

use super::Cli;
use super::common::{engine, journaled_sandbox, request_reading, runtime};
use crate::engine::command::logs::{self as logs_cmd, Build, Problem, Runtime, Wanted};
use crate::error::{Error, exit};
use crate::output::Output;
use crate::provider::LogStream;

/// `fabrik logs NAME [--lines N] [--build]`: the runtime log, then the
/// build log of the latest deployment; exit 0 when every part asked for
/// was read, 1 otherwise (each problem said, with its hint).
pub fn logs(
    cli: &Cli,
    target: &str,
    lines: u32,
    build_only: bool,
    sandbox: bool,
    out: &mut Output,
) -> Result<i32, Error> {
    let sandbox = sandbox || journaled_sandbox(cli, target, out);
    let rt = runtime()?;
    let req = request_reading(cli, sandbox, out, &rt)?;
    let wanted = Wanted {
        runtime_lines: (!build_only).then_some(lines),
    };
    let found = rt
        .block_on(logs_cmd::logs(&req, target, wanted))
        .map_err(engine)?;
    let problems = found.problems();
    if out.is_json() {
        let mut v = serde_json::to_value(&found).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("kind".to_owned(), json!("logs"));
            o.insert("problems".to_owned(), json!(problems));
        }
        out.json(&v)?;
    } else {
        // Headers only when there are two parts, as `tail` does.
        let headers = found.runtime.is_some();
        if let Some(r) = &found.runtime {
            out.line(&format!(
                "==> runtime log of {} (application {}) <==",
                found.deployment, found.app_uuid
            ))?;
            match r {
                Runtime::Read { lines } => {
                    for l in lines {
                        out.line(l)?;
                    }
                }
                Runtime::Failed(p) => problem(p, out)?,
            }
        }
        match &found.build {
            Build::Read {
                deployment_uuid,
                lines,
            } => {
                if headers {
                    out.line(&format!(
                        "==> build log of deployment {deployment_uuid} <=="
                    ))?;
                }
                for l in lines {
                    match l.stream {
                        LogStream::Stdout => out.line(&l.text)?,
                        LogStream::Stderr => out.line(&format!("stderr: {}", l.text))?,
                    }
                }
            }
            Build::Failed(p) => {
                if headers {
                    out.line("==> build log <==")?;
                }
                problem(p, out)?;
            }
        }
    }
    Ok(if problems == 0 {
        exit::OK
    } else {
        exit::UNEXPECTED
    })
}

/// A part that could not be read: on stderr, with its hint.
fn problem(p: &Problem, out: &mut Output) -> Result<(), Error> {
    out.diag(&format!("PROBLEM {}", p.problem));
    if let Some(h) = &p.hint {
        out.diag(&format!("  hint: {h}"));
    }
    Ok(())
}
