//! `fabrik sandbox serve` and `fabrik sandbox dump`.

use std::path::{Path, PathBuf};

use super::{Cli, state_path};
use crate::error::{Error, exit};
use crate::output::Output;
use crate::sandbox::{FaultConfig, SandboxConfig};

fn data_path(cli: &Cli, data: Option<&Path>) -> Result<PathBuf, Error> {
    match data {
        Some(p) => Ok(p.to_owned()),
        None => Ok(SandboxConfig::for_state(&state_path(cli))
            .map_err(Error::Sandbox)?
            .data),
    }
}

/// Runs the simulator until Ctrl-C; prints its addresses (one JSON object
/// on stdout) so scripts can point Fabrik at it.
pub fn serve(
    cli: &Cli,
    addr: &str,
    data: Option<&Path>,
    faults: Option<&str>,
    out: &mut Output,
) -> Result<i32, Error> {
    let addr = addr.parse().map_err(|_| Error::Usage {
        message: format!("{addr:?} is not an address"),
        hint: Some("use e.g. 127.0.0.1:8787 (port 0 picks a free one)".to_owned()),
    })?;
    let mut config = SandboxConfig::new(data_path(cli, data)?);
    if let Some(f) = faults {
        config.faults = FaultConfig::from_cli(f).map_err(|e| Error::Usage {
            message: format!("--faults: {e}"),
            hint: Some("e.g. --faults latency_ms=100,error_rate=0.3,seed=7".to_owned()),
        })?;
    }
    let creds = config.credentials.clone();
    let rt = super::common::runtime()?;
    rt.block_on(async {
        let bound = crate::sandbox::bind(addr, config)
            .await
            .map_err(Error::Sandbox)?;
        let info = bound.info();
        out.json(&info)?;
        if !out.is_json() {
            out.diag(&format!(
                "sandbox listening on {} (apps: http {}, https {}); Ctrl-C stops it",
                info.api_url, info.app_http, info.app_https
            ));
            // Test values, not secrets: what the sandbox accepts, for a
            // user to paste into another shell.
            out.diag("point fabrik at it (paste into a shell; these are the sandbox's test credentials):");
            for (name, value) in [
                ("COOLIFY_URL", info.coolify_url.as_str()),
                ("COOLIFY_TOKEN", creds.coolify_token.expose()),
                ("CLOUDFLARE_API_URL", info.cloudflare_url.as_str()),
                ("CLOUDFLARE_API_TOKEN", creds.cloudflare_token.expose()),
                ("UPTIME_KUMA_URL", info.kuma_url.as_str()),
                ("UPTIME_KUMA_USERNAME", creds.kuma_username.as_str()),
                ("UPTIME_KUMA_PASSWORD", creds.kuma_password.expose()),
                ("FABRIK_SANDBOX_URL", info.api_url.as_str()),
            ] {
                out.diag(&format!("export {name}={}", shell_word(value)));
            }
            out.diag("faults: --faults KEY=VALUE,... (docs/sandbox.md)");
        }
        bound
            .run(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(Error::Sandbox)
    })?;
    Ok(exit::OK)
}

/// Prints the simulated world as JSON.
pub fn dump(cli: &Cli, data: Option<&Path>, out: &mut Output) -> Result<i32, Error> {
    let path = data_path(cli, data)?;
    if !path.exists() {
        return Err(Error::Usage {
            message: format!("no sandbox world at {}", path.display()),
            hint: Some("run a command with --sandbox first, or pass --data".to_owned()),
        });
    }
    let world = crate::sandbox::dump(&path).map_err(Error::Sandbox)?;
    if out.is_json() {
        out.json(&world)?;
    } else {
        out.line(&serde_json::to_string_pretty(&world).unwrap_or_default())?;
    }
    Ok(exit::OK)
}

/// `value` as one shell word (single-quoted unless it is plain).
fn shell_word(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c));
    if plain {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', "'\\''"))
    }
}
