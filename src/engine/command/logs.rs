//! `fabrik logs NAME`: what the deployment's application prints while it
//! runs, and the build log of its latest Coolify deployment, read from
//! Coolify, nothing changed and nothing journaled.
//!
//! Logs echo what a program was given, secrets included: every line is
//! scrubbed of the credentials and of the spec's secrets at hand, and
//! escaped, before it is returned.

use serde::Serialize;

use super::{Prepared, run_with_spec, spec_of, view};
use crate::engine::resource::{app, decode};
use crate::engine::{EngineError, Request};
use crate::provider::registry::Need;
use crate::provider::{AppKind, BuildLog, ConnectRequest, LogStream, RemoteApp};
use crate::text::printable_line;

/// What to read.
#[derive(Debug, Clone, Copy)]
pub struct Wanted {
    /// The runtime log's last lines; `None`: not read (`--build`).
    pub runtime_lines: Option<u32>,
}

/// One line of a build log, scrubbed and escaped.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// `stdout` or `stderr`.
    pub stream: LogStream,
    /// The text.
    pub text: String,
}

/// A part that could not be read, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What is wrong (escaped).
    pub problem: String,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Problem {
    fn of(e: &EngineError) -> Self {
        Self {
            problem: printable_line(&e.text()).into_owned(),
            hint: e.hint(),
        }
    }
}

/// The runtime log.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Runtime {
    /// Its lines, oldest first.
    Read {
        /// The lines.
        lines: Vec<String>,
    },
    /// Why there is none.
    Failed(Problem),
}

/// The build log of the latest deployment.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Build {
    /// Its lines, oldest first.
    Read {
        /// The deployment.
        deployment_uuid: String,
        /// The lines.
        lines: Vec<Line>,
    },
    /// Why there is none.
    Failed(Problem),
}

/// What `fabrik logs` found.
#[derive(Debug, Clone, Serialize)]
pub struct Logs {
    /// The deployment.
    pub deployment: String,
    /// The Coolify application's uuid.
    pub app_uuid: String,
    /// The runtime log, unless only the build log was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<Runtime>,
    /// The build log.
    pub build: Build,
}

impl Logs {
    /// How many parts could not be read.
    pub fn problems(&self) -> usize {
        usize::from(matches!(self.runtime, Some(Runtime::Failed(_))))
            + usize::from(matches!(self.build, Build::Failed(_)))
    }
}

/// Reads the logs of the deployment `target` names (a deployment name or
/// a run id).
pub async fn logs(req: &Request, target: &str, wanted: Wanted) -> Result<Logs, EngineError> {
    let run = run_with_spec(req.store.as_ref(), target)?;
    let deployment = run.deployment.clone();
    let view = view(req.store.as_ref(), &deployment)?;
    let found = view
        .resources
        .get(&app::key())
        .filter(|r| r.exists())
        .and_then(|r| r.remote_id.clone().map(|id| (r, id)));
    let Some((resource, uuid)) = found else {
        return Err(EngineError::Refused {
            message: format!("deployment {deployment} has no application in Coolify"),
            hint: format!("`fabrik status {deployment}` shows its resources"),
        });
    };
    let kind =
        decode::<app::state::AppState>(resource)?.map_or(AppKind::Application, |s| s.app_kind());
    // Only the secrets at hand: nothing generated, nothing written.
    let prepared = Prepared::for_deletes(spec_of(&run)?, &req.env_vars)?;
    let remote = req
        .connect
        .connect(ConnectRequest {
            spec: Some(&prepared.loaded.spec),
            secrets: Some(&prepared.secrets),
            env: &prepared.env,
            dns: Need::No,
            monitors: Need::No,
            retries: None,
        })
        .await?;
    let mut scrubber = remote.scrubber.clone();
    scrubber.extend(&prepared.secrets.scrubber());
    let clean = |text: &str| printable_line(&scrubber.scrub(text)).into_owned();
    let host = &remote.providers.app;
    let runtime = match wanted.runtime_lines {
        None => None,
        Some(lines) => Some(match host.runtime_logs(kind, &uuid, lines).await {
            Ok(text) => Runtime::Read {
                lines: text.lines().map(clean).collect(),
            },
            Err(e) => Runtime::Failed(Problem::of(&EngineError::provider(
                "reading the application's logs",
                e,
            ))),
        }),
    };
    let app = RemoteApp::known(kind, &uuid);
    let build = match host.latest_deployment(&app).await {
        Ok(Some(d)) => match host.build_log(&d).await {
            Ok(BuildLog::Lines(lines)) => Build::Read {
                deployment_uuid: d,
                lines: lines
                    .iter()
                    .map(|l| Line {
                        stream: l.stream,
                        text: clean(&l.text),
                    })
                    .collect(),
            },
            Ok(BuildLog::Hidden { url }) => Build::Failed(Problem {
                problem: format!(
                    "the build log needs a token with read:sensitive; see {}",
                    url.as_deref().map_or_else(|| format!("deployment {d} in Coolify"), clean)
                ),
                hint: Some(
                    "give COOLIFY_TOKEN the read:sensitive permission (or root), its user an admin of the team".to_owned(),
                ),
            }),
            Err(e) => Build::Failed(Problem::of(&EngineError::provider(
                "reading the build log",
                e,
            ))),
        },
        Ok(None) if kind == AppKind::Service => Build::Failed(Problem {
            problem: "a Coolify service (compose, one-click) keeps no deployments, so no build log"
                .to_owned(),
            hint: Some("read the service's logs in Coolify".to_owned()),
        }),
        Ok(None) => Build::Failed(Problem {
            problem: "the application has no deployment in Coolify".to_owned(),
            hint: Some(format!("`fabrik redeploy {deployment}` deploys it")),
        }),
        Err(e) => Build::Failed(Problem::of(&EngineError::provider(
            "reading the application's deployments",
            e,
        ))),
    };
    Ok(Logs {
        deployment: deployment.to_string(),
        app_uuid: uuid,
        runtime,
        build,
    })
}
