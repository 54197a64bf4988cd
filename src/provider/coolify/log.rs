//! A deployment's build log as Coolify keeps it, read at 379abb25 (4.3.11).
//!
//! `GET /deployments/{uuid}` carries the log in its `logs` field only for
//! a token that may read sensitive data: `removeSensitiveData` hides it
//! otherwise (`app/Http/Controllers/Api/DeployController.php:21-34`; the
//! list of an application's deployments likewise, `:726-728`). The field
//! is a JSON *string* holding an array of entries
//! `{command, output, type, timestamp, hidden, batch, order}`
//! (`app/Models/ApplicationDeploymentQueue.php:182-217`,
//! `app/Traits/ExecuteRemoteCommand.php:173-196`): the first entry written
//! by `addLogEntry` has no `order` (`ApplicationDeploymentQueue.php:205-211`),
//! and `hidden: true` marks command noise (the commands the job ran, the
//! failure's stack trace, `ApplicationDeploymentJob.php:5016-5040`), which
//! Coolify's UI also leaves out unless asked.

use serde::Deserialize;
use serde_json::Value;

use super::super::types::{BuildLog, LogLine, LogStream};

#[derive(Debug, Deserialize)]
struct VLogEntry {
    #[serde(default)]
    output: Option<String>,
    #[serde(default, rename = "type")]
    stream: Option<String>,
    #[serde(default)]
    hidden: bool,
    #[serde(default)]
    order: Option<u64>,
}

/// Why a `logs` field could not be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum LogError {
    /// Neither absent, null nor a string.
    #[error("the deployment's `logs` field is not a string")]
    NotAString,
    /// The string is not the JSON array of entries.
    #[error("the deployment's `logs` field is not a list of log entries: {0}")]
    Entries(#[source] serde_json::Error),
}

/// The build log in a deployment object: [`BuildLog::Hidden`] when the
/// field is absent (the token may not read it), its visible lines
/// otherwise (none yet when it is `null` or empty: the job has not
/// written any).
pub(super) fn build_log(deployment: &Value, url: Option<String>) -> Result<BuildLog, LogError> {
    let text = match deployment.get("logs") {
        None => return Ok(BuildLog::Hidden { url }),
        Some(Value::Null) => return Ok(BuildLog::Lines(Vec::new())),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(BuildLog::Lines(Vec::new())),
        Some(Value::String(s)) => s,
        Some(_) => return Err(LogError::NotAString),
    };
    let mut entries: Vec<VLogEntry> = serde_json::from_str(text).map_err(LogError::Entries)?;
    // Stable: entries without `order` (the first) keep their place.
    entries.sort_by_key(|e| e.order.unwrap_or(0));
    let mut lines = Vec::new();
    for e in entries.into_iter().filter(|e| !e.hidden) {
        let stream = match e.stream.as_deref() {
            Some("stderr") => LogStream::Stderr,
            _ => LogStream::Stdout,
        };
        // An entry may hold several lines (a command's output), and starts
        // with a line break before a box drawing (`ApplicationDeploymentQueue.php:188-190`).
        for line in e.output.unwrap_or_default().lines() {
            if !line.trim().is_empty() {
                lines.push(LogLine {
                    stream,
                    text: line.trim_end().to_owned(),
                });
            }
        }
    }
    Ok(BuildLog::Lines(lines))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn hidden_entries_are_left_out_and_order_is_kept() {
        let entries = json!([
            {"command": null, "output": "Starting deployment of shop.", "type": "stdout", "hidden": false, "batch": 1},
            {"command": "docker pull x", "output": "pulling", "type": "stdout", "hidden": true, "batch": 2, "order": 3},
            {"command": null, "output": "Deployment failed: exit 1\nsecond line", "type": "stderr", "hidden": false, "batch": 1, "order": 4},
            {"command": null, "output": "Pulling image.", "type": "stdout", "hidden": false, "batch": 1, "order": 2},
        ]);
        let d = json!({"logs": entries.to_string()});
        let BuildLog::Lines(lines) = build_log(&d, None).unwrap() else {
            panic!("hidden")
        };
        let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Starting deployment of shop.",
                "Pulling image.",
                "Deployment failed: exit 1",
                "second line"
            ]
        );
        assert_eq!(lines[2].stream, LogStream::Stderr);
    }

    #[test]
    fn an_absent_field_is_hidden_and_null_is_empty() {
        let url = Some("https://c/x".to_owned());
        assert_eq!(
            build_log(&json!({}), url.clone()).unwrap(),
            BuildLog::Hidden { url }
        );
        assert_eq!(
            build_log(&json!({"logs": null}), None).unwrap(),
            BuildLog::Lines(Vec::new())
        );
        assert!(build_log(&json!({"logs": 3}), None).is_err());
        assert!(build_log(&json!({"logs": "{"}), None).is_err());
    }
}
