//! Deployments: queueing (with the skipped-deploy quirk), progress derived
//! from stored times, cancellation, and the deploy endpoints.
//!
//! A deployment row stores when it will start and finish, planned at
//! queueing time (one deployment at a time per application); its status is
//! read off the clock. No background task moves anything, so progress is
//! the same in every process sharing the data file.
//!
//! What a deployment deploys is the application as it is when the
//! deployment *starts*: the job re-reads the application when a worker
//! picks it up (`SerializesModels`, `app/Jobs/ApplicationDeploymentJob.php:43`,
//! `:214-221 @4.3.11`). A row's `artifact` stays empty until then, and is
//! frozen from the application's attributes by the first change of the
//! application after the start ([`freeze`]); until frozen it is read off
//! the current attributes.

use rusqlite::{OptionalExtension, Row, params};
use serde_json::{Value, json};

use super::application::{self, AppRow};
use super::service;
use super::{Call, Ctx, message, short_digest};
use crate::sandbox::reply::{Outcome, Reply};
use crate::sandbox::store::{Tx, timestamp};

/// The server's `deployment_queue_limit` (Coolify's default).
const QUEUE_LIMIT: i64 = 25;

/// One `deployment` row.
#[derive(Debug, Clone)]
pub(crate) struct DeploymentRow {
    pub(crate) id: i64,
    pub(crate) uuid: String,
    pub(crate) application_id: i64,
    pub(crate) commit_sha: String,
    pub(crate) pull_request_id: i64,
    pub(crate) force_rebuild: bool,
    pub(crate) restart_only: bool,
    /// What was deployed, as the app reports it.
    pub(crate) artifact: String,
    /// `finished` or `failed`: how it ends unless cancelled.
    pub(crate) outcome: String,
    pub(crate) created_at: i64,
    pub(crate) start_at: i64,
    pub(crate) finish_at: i64,
    pub(crate) cancelled_at: Option<i64>,
}

const COLUMNS: &str = "id, uuid, application_id, commit_sha, pull_request_id, force_rebuild, restart_only, artifact, outcome, created_at, start_at, finish_at, cancelled_at";

impl DeploymentRow {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            uuid: row.get(1)?,
            application_id: row.get(2)?,
            commit_sha: row.get(3)?,
            pull_request_id: row.get(4)?,
            force_rebuild: row.get(5)?,
            restart_only: row.get(6)?,
            artifact: row.get(7)?,
            outcome: row.get(8)?,
            created_at: row.get(9)?,
            start_at: row.get(10)?,
            finish_at: row.get(11)?,
            cancelled_at: row.get(12)?,
        })
    }

    /// The status at `now`. A build that cannot work (a clone URL that is
    /// no repository) ends `failed`.
    pub(crate) fn status(&self, now: i64) -> &str {
        if self.cancelled_at.is_some_and(|t| t <= now) {
            "cancelled-by-user"
        } else if now < self.start_at {
            "queued"
        } else if now < self.finish_at {
            "in_progress"
        } else if self.artifact.starts_with(UNBUILDABLE) {
            "failed"
        } else {
            &self.outcome
        }
    }

    /// Whether it is queued or running at `now`.
    pub(crate) fn active(&self, now: i64) -> bool {
        matches!(self.status(now), "queued" | "in_progress")
    }

    /// When it ended, if it has.
    pub(crate) fn finished_at(&self, now: i64) -> Option<i64> {
        match self.cancelled_at {
            Some(t) if t <= now => Some(t),
            _ if now >= self.finish_at => Some(self.finish_at),
            _ => None,
        }
    }

    fn updated_at(&self, now: i64) -> i64 {
        self.finished_at(now).unwrap_or(if now >= self.start_at {
            self.start_at
        } else {
            self.created_at
        })
    }
}

/// The prefix of the artifact of a build that fails.
const UNBUILDABLE: &str = "!";

/// The URL a git application is cloned from: for the public GitHub source
/// `{html_url}/{git_repository}` (`app/Models/Application.php:1749
/// @4.3.11`), otherwise the repository as stored.
fn clone_url(app: &AppRow) -> String {
    let repo = app.attr("git_repository").unwrap_or_default();
    if app
        .attr("source_type")
        .is_some_and(|t| t.ends_with("GithubApp"))
    {
        format!("https://github.com/{repo}")
    } else {
        repo.to_owned()
    }
}

/// Whether `url` names a repository: `https://host/owner/repo[.git]`.
fn clonable(url: &str) -> bool {
    url.matches("://").count() == 1
        && url::Url::parse(url).is_ok_and(|u| {
            let segs: Vec<&str> = u.path_segments().into_iter().flatten().collect();
            matches!(u.scheme(), "http" | "https")
                && segs.len() == 2
                && segs.iter().all(|s| !s.is_empty())
        })
}

/// What an application runs when deployed from its current attributes.
pub(crate) fn artifact_of(app: &AppRow) -> String {
    let attr = |k: &str| app.attr(k).unwrap_or_default();
    match app.build_pack() {
        "dockerimage" => format!(
            "image {}:{}",
            attr("docker_registry_image_name"),
            attr("docker_registry_image_tag")
        ),
        "dockerfile" if !attr("dockerfile").is_empty() => {
            format!("dockerfile {}", short_digest(attr("dockerfile")))
        }
        "dockercompose" if !attr("docker_compose_raw").is_empty() => {
            format!("compose {}", short_digest(attr("docker_compose_raw")))
        }
        pack => {
            let url = clone_url(app);
            if !clonable(&url) {
                return format!("{UNBUILDABLE}clone failed: {url} is not a repository");
            }
            let commit = match attr("git_commit_sha") {
                "" | "HEAD" => String::new(),
                sha => format!(" at {sha}"),
            };
            let mut options = String::new();
            for key in [
                "base_directory",
                "publish_directory",
                "install_command",
                "build_command",
                "start_command",
                "dockerfile_location",
            ] {
                let default = match key {
                    "base_directory" => "/",
                    "dockerfile_location" => "/Dockerfile",
                    _ => "",
                };
                let value = attr(key);
                if !value.is_empty() && value != default {
                    options.push_str(&format!(", {key}={value}"));
                }
            }
            format!("git {url}@{}{commit} ({pack}{options})", attr("git_branch"))
        }
    }
}

/// The outcome of asking for a deployment.
#[derive(Debug, Clone)]
pub(crate) enum Queued {
    /// A new deployment was saved.
    Saved(String),
    /// One for the same commit is already queued or running; the uuid is
    /// freshly generated and was never saved.
    Skipped(String),
    /// The server's queue is full; the uuid was never saved.
    Full(String),
}

/// Rows, each with its artifact read off its application while unfrozen.
fn rows(
    tx: &Tx<'_>,
    filter: &str,
    args: impl rusqlite::Params,
) -> rusqlite::Result<Vec<DeploymentRow>> {
    let mut stmt = tx.prepare_cached(&format!("SELECT {COLUMNS} FROM deployment {filter}"))?;
    let rows = stmt.query_map(args, DeploymentRow::from_row)?;
    let mut rows: Vec<DeploymentRow> = rows.collect::<rusqlite::Result<_>>()?;
    for d in rows.iter_mut().filter(|d| d.artifact.is_empty()) {
        if let Some(app) = application::by_id(tx, d.application_id)? {
            d.artifact = artifact_of(&app);
        }
    }
    Ok(rows)
}

/// Before `app` changes: the deployments that have started keep what they
/// read when they started.
pub(crate) fn freeze(tx: &Tx<'_>, _ctx: &Ctx, app: &AppRow) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE deployment SET artifact = ?2 WHERE application_id = ?1 AND artifact = '' AND start_at <= ?3",
        params![app.id, artifact_of(app), tx.now],
    )?;
    Ok(())
}

/// `queue_application_deployment()` (`bootstrap/helpers/applications.php:14-108
/// @4.3.11`, the same at `:47-64 @b474`): refused when the server already
/// has `deployment_queue_limit` *queued* deployments (`:33-44`); skipped
/// when one of the same application, commit (`git_commit_sha`, else
/// `HEAD`), pull request and image tag (the preview tag: `NULL` here) is
/// queued or in progress, unless `force` (`force_rebuild`, `rollback` or
/// `no_questions_asked`) is set (`:46-64`).
pub(crate) fn queue(
    tx: &Tx<'_>,
    ctx: &Ctx,
    app: &AppRow,
    force: bool,
    restart_only: bool,
) -> rusqlite::Result<Queued> {
    let commit = match app.attr("git_commit_sha") {
        Some(sha) if !sha.is_empty() => sha.to_owned(),
        _ => "HEAD".to_owned(),
    };
    if queue_full(tx)? {
        return Ok(Queued::Full(tx.uuid()?));
    }
    let existing = rows(tx, "WHERE application_id = ?1 ORDER BY id", [app.id])?;
    let now = tx.now;
    if !force
        && existing
            .iter()
            .any(|d| d.active(now) && d.commit_sha == commit && d.pull_request_id == 0)
    {
        return Ok(Queued::Skipped(tx.uuid()?));
    }
    // One deployment at a time per application: start after the last
    // active one ends.
    let busy_until = existing
        .iter()
        .filter(|d| d.cancelled_at.is_none() && d.finish_at > now)
        .map(|d| d.finish_at)
        .max()
        .unwrap_or(now);
    let start_at = (now + ctx.queue_ms).max(busy_until);
    let uuid = tx.uuid()?;
    tx.execute(
        "INSERT INTO deployment (uuid, application_id, commit_sha, pull_request_id, force_rebuild, restart_only, artifact, outcome, created_at, start_at, finish_at) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            uuid,
            app.id,
            commit,
            force,
            restart_only,
            "",
            if ctx.deploy_fail { "failed" } else { "finished" },
            now,
            start_at,
            start_at + ctx.deploy_ms
        ],
    )?;
    Ok(Queued::Saved(uuid))
}

/// The deployment an application is serving: its latest finished one
/// (a failed one leaves the previous container running, `ADJ:4039-4047`).
pub(crate) fn serving(tx: &Tx<'_>, app: &AppRow) -> rusqlite::Result<Option<DeploymentRow>> {
    let mut done = rows(
        tx,
        "WHERE application_id = ?1 AND cancelled_at IS NULL AND outcome = 'finished' AND finish_at <= ?2 ORDER BY finish_at DESC, id DESC",
        params![app.id, tx.now],
    )?;
    done.retain(|d| d.status(tx.now) == "finished");
    Ok(done.into_iter().next())
}

/// All deployments of an application, newest first.
pub(crate) fn of_application(
    tx: &Tx<'_>,
    application_id: i64,
) -> rusqlite::Result<Vec<DeploymentRow>> {
    rows(
        tx,
        "WHERE application_id = ?1 ORDER BY id DESC",
        [application_id],
    )
}

/// The ApplicationDeploymentQueue object.
pub(crate) fn render(
    tx: &Tx<'_>,
    ctx: &Ctx,
    d: &DeploymentRow,
    app: &AppRow,
) -> rusqlite::Result<Value> {
    let now = tx.now;
    let status = d.status(now);
    let (server_id, server_name, project_uuid, environment_uuid): (i64, String, String, String) = tx
        .prepare_cached(
            "SELECT s.id, s.name, p.uuid, e.uuid FROM destination dst JOIN server s ON s.id = dst.server_id, environment e JOIN project p ON p.id = e.project_id WHERE dst.id = ?1 AND e.id = ?2",
        )?
        .query_row(params![app.destination_id, app.environment_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    let mut out = json!({
        "id": d.id,
        "deployment_uuid": d.uuid,
        "application_id": app.id.to_string(),
        "application_name": app.name(),
        "server_id": server_id,
        "server_name": server_name,
        "destination_id": app.destination_id.to_string(),
        "pull_request_id": d.pull_request_id,
        "docker_registry_image_tag": null,
        "configuration_hash": null,
        "force_rebuild": d.force_rebuild,
        "commit": d.commit_sha,
        "commit_message": "",
        "status": status,
        "is_webhook": false,
        "is_api": true,
        "restart_only": d.restart_only,
        "rollback": false,
        "only_this_server": false,
        "git_type": "",
        "current_process_id": "",
        "deployment_url": format!(
            "/project/{project_uuid}/environment/{environment_uuid}/application/{}/deployment/{}",
            app.uuid, d.uuid
        ),
        "created_at": timestamp(d.created_at),
        "updated_at": timestamp(d.updated_at(now)),
        "finished_at": d.finished_at(now).map(timestamp),
    });
    if ctx.sensitive
        && let Value::Object(map) = &mut out
    {
        map.insert("logs".into(), json!(logs(d, app, &server_name, now)));
    }
    Ok(out)
}

/// The deployment log as Coolify stores it: a JSON string of entries
/// `{command, output, type, timestamp, hidden, batch, order}`, the first
/// without `order` (`app/Models/ApplicationDeploymentQueue.php:182-217`,
/// `app/Traits/ExecuteRemoteCommand.php:173-196 @4.3.11`). What the job
/// writes, by how the deployment ends (`app/Jobs/ApplicationDeploymentJob.php
/// @4.3.11`): the start (`:600`), each command it runs, hidden (`:1309-1320`),
/// the rolling update (`:1939-1977`); a container that is not healthy
/// (`:4045`); an exception, between two rules, its message visible and its
/// class, location and trace hidden (`failed()`, `:5016-5040`).
fn logs(d: &DeploymentRow, app: &AppRow, server: &str, now: i64) -> String {
    let mut entries: Vec<Value> = Vec::new();
    let mut push = |at: i64, output: &str, kind: &str, hidden: bool, command: Option<&str>| {
        let mut entry = json!({
            "command": command,
            "output": output,
            "type": kind,
            "timestamp": timestamp(at),
            "hidden": hidden,
            "batch": 1,
        });
        if !entries.is_empty()
            && let Value::Object(map) = &mut entry
        {
            map.insert("order".into(), json!(entries.len() + 1));
        }
        entries.push(entry);
    };
    if now >= d.start_at && d.cancelled_at.is_none_or(|c| c > d.start_at) {
        let at = d.start_at;
        let what = d.artifact.trim_start_matches(UNBUILDABLE);
        push(
            at,
            &format!(
                "Starting deployment of {} ({what}) to {server}.",
                app.name()
            ),
            "stdout",
            false,
            None,
        );
        let image = app.attr("docker_registry_image_name").unwrap_or("builder");
        let pull = format!("docker pull {image} 2>/dev/null");
        push(
            at,
            &format!("Status: Image is up to date for {image}"),
            "stdout",
            true,
            Some(&pull),
        );
    }
    let end = d.finish_at;
    match d.status(now) {
        "finished" => {
            push(end, "Rolling update started.", "stdout", false, None);
            push(end, "Rolling update completed.", "stdout", false, None);
        }
        "failed" if d.artifact.starts_with(UNBUILDABLE) => {
            let rule = "========================================";
            let why = d.artifact.trim_start_matches(UNBUILDABLE);
            push(end, rule, "stderr", false, None);
            push(
                end,
                &format!("Deployment failed: {why}"),
                "stderr",
                false,
                None,
            );
            push(end, "Error type: RuntimeException", "stderr", true, None);
            push(
                end,
                "Location: /var/www/html/app/Traits/ExecuteRemoteCommand.php:243",
                "stderr",
                true,
                None,
            );
            push(end, rule, "stderr", false, None);
        }
        "failed" => {
            push(end, "Rolling update started.", "stdout", false, None);
            push(
                end,
                "New container is not healthy, rolling back to the old container.",
                "stdout",
                false,
                None,
            );
        }
        "cancelled-by-user" => push(
            d.cancelled_at.unwrap_or(now),
            "Deployment cancelled by user.",
            "stderr",
            false,
            None,
        ),
        _ => {}
    }
    Value::Array(entries).to_string()
}

fn find(tx: &Tx<'_>, uuid: &str) -> rusqlite::Result<Option<(DeploymentRow, AppRow)>> {
    let Some(d) = rows(tx, "WHERE uuid = ?1", [uuid])?.into_iter().next() else {
        return Ok(None);
    };
    let app = tx
        .prepare_cached(
            "SELECT uuid FROM application WHERE id = ?1 AND (gone_at IS NULL OR gone_at > ?2)",
        )?
        .query_row(params![d.application_id, tx.now], |r| r.get::<_, String>(0))
        .optional()?;
    match app {
        Some(uuid) => Ok(application::find_optional(tx, &uuid)?.map(|app| (d, app))),
        None => Ok(None),
    }
}

/// `GET /deployments/{uuid}`.
pub(super) fn get(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    match find(tx, uuid)? {
        Some((d, app)) => Ok(Reply::json(200, render(tx, ctx, &d, &app)?)),
        None => Ok(message(404, "Deployment not found.")),
    }
}

/// `GET /deployments`: the active deployments only.
pub(super) fn list_active(tx: &Tx<'_>, ctx: &Ctx) -> Outcome {
    let mut out = Vec::new();
    for app in application::live_app_rows(tx)? {
        let mut deployments = of_application(tx, app.id)?;
        deployments.reverse();
        for d in deployments.iter().filter(|d| d.active(tx.now)) {
            out.push((d.id, render(tx, ctx, d, &app)?));
        }
    }
    out.sort_by_key(|(id, _)| *id);
    Ok(Reply::json(
        200,
        Value::Array(out.into_iter().map(|(_, v)| v).collect()),
    ))
}

/// `GET /deployments/applications/{uuid}?skip=&take=`: `{count, deployments}`
/// newest first (the OpenAPI's "array of Application" is wrong, notes §7).
pub(super) fn for_application(tx: &Tx<'_>, ctx: &Ctx, call: &Call, uuid: &str) -> Outcome {
    let app = application::find(tx, uuid)?;
    let all = of_application(tx, app.id)?;
    let skip = call
        .query("skip")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0usize);
    let take = call
        .query("take")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10usize);
    let mut page = Vec::new();
    for d in all.iter().skip(skip).take(take) {
        page.push(render(tx, ctx, d, &app)?);
    }
    Ok(Reply::json(
        200,
        json!({"count": all.len(), "deployments": page}),
    ))
}

/// `POST /deployments/{uuid}/cancel`.
pub(super) fn cancel(tx: &Tx<'_>, ctx: &Ctx, uuid: &str) -> Outcome {
    let Some((d, app)) = find(tx, uuid)? else {
        return Ok(message(404, "Deployment not found."));
    };
    let now = tx.now;
    let status = d.status(now).to_owned();
    if !d.active(now) {
        return Ok(message(
            400,
            format!("Deployment cannot be cancelled. Current status: {status}"),
        ));
    }
    tx.execute(
        "UPDATE deployment SET cancelled_at = ?2 WHERE id = ?1",
        params![d.id, now],
    )?;
    reschedule(tx, ctx, &app)?;
    Ok(Reply::json(
        200,
        json!({
            "message": "Deployment cancelled successfully.",
            "deployment_uuid": d.uuid,
            "status": "cancelled-by-user",
        }),
    ))
}

/// After a cancellation, the queue moves up: deployments that have not
/// started yet are planned again behind the ones still running.
fn reschedule(tx: &Tx<'_>, ctx: &Ctx, app: &AppRow) -> rusqlite::Result<()> {
    let now = tx.now;
    let mut busy_until = now;
    let mut deployments = of_application(tx, app.id)?;
    deployments.reverse();
    for d in deployments.iter().filter(|d| d.cancelled_at.is_none()) {
        if d.start_at <= now {
            busy_until = busy_until.max(d.finish_at);
            continue;
        }
        let start_at = (d.created_at + ctx.queue_ms).max(busy_until).max(now);
        let finish_at = start_at + ctx.deploy_ms;
        tx.execute(
            "UPDATE deployment SET start_at = ?2, finish_at = ?3 WHERE id = ?1",
            params![d.id, start_at, finish_at],
        )?;
        busy_until = finish_at;
    }
    Ok(())
}

/// `POST /deploy` (and `GET /deploy` before 4.2): by uuid(s) or tag(s),
/// parameters from the query string or a JSON body.
pub(super) fn deploy(tx: &Tx<'_>, ctx: &Ctx, call: &Call) -> Outcome {
    let body = if call.is_get() {
        serde_json::Map::new()
    } else {
        call.optional_json()
    };
    let param = |key: &str| -> Option<String> {
        call.query(key)
            .map(str::to_owned)
            .or_else(|| match body.get(key) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Bool(b)) => Some(b.to_string()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            })
    };
    let force = param("force").is_some_and(|v| matches!(v.as_str(), "true" | "1"));
    let uuids = param("uuid").filter(|s| !s.trim().is_empty());
    let tags = param("tag").filter(|s| !s.trim().is_empty());
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    // `/deploy` turns a full queue into 429 (`DC:548-549 @4.3.11`).
    if matches!((&uuids, &tags), (Some(_), None) | (None, Some(_))) && queue_full(tx)? {
        return Ok(
            message(429, "Deployment queue is full. Please try again later.")
                .with_header("retry-after", "60"),
        );
    }
    match (uuids, tags) {
        (Some(_), Some(_)) => Ok(message(400, "You can only use uuid or tag, not both.")),
        (None, None) => Ok(message(400, "You must provide uuid or tag.")),
        (Some(uuids), None) => {
            let mut deployments = Vec::new();
            for uuid in list(&uuids) {
                if let Some(entry) = deploy_one(tx, ctx, &uuid, force)? {
                    deployments.push(entry);
                }
            }
            if deployments.is_empty() {
                return Ok(message(404, "No resources found."));
            }
            Ok(Reply::json(200, json!({"deployments": deployments})))
        }
        (None, Some(tags)) => {
            let mut messages = Vec::new();
            let mut details = Vec::new();
            for tag in list(&tags) {
                for uuid in super::project::uuids_with_tag(tx, &tag)? {
                    if let Some(entry) = deploy_one(tx, ctx, &uuid, force)? {
                        if let Some(m) = entry.get("message") {
                            messages.push(m.clone());
                        }
                        details.push(json!({
                            "resource_uuid": entry.get("resource_uuid"),
                            "deployment_uuid": entry.get("deployment_uuid"),
                        }));
                    }
                }
            }
            if details.is_empty() {
                return Ok(message(404, "No resources found."));
            }
            Ok(Reply::json(
                200,
                json!({"message": messages, "details": details}),
            ))
        }
    }
}

/// Whether the server's deployment queue (`deployment_queue_limit`) is
/// full: that many deployments are *queued* (running ones do not count,
/// `applications.php:33-44 @4.3.11`).
fn queue_full(tx: &Tx<'_>) -> rusqlite::Result<bool> {
    let queued: i64 = tx
        .prepare_cached(
            "SELECT count(*) FROM deployment WHERE cancelled_at IS NULL AND start_at > ?1",
        )?
        .query_row([tx.now], |r| r.get(0))?;
    Ok(queued >= QUEUE_LIMIT)
}

/// Deploys one application or starts one service; `None` if no resource
/// has that uuid.
fn deploy_one(tx: &Tx<'_>, ctx: &Ctx, uuid: &str, force: bool) -> rusqlite::Result<Option<Value>> {
    if let Some(mut app) = application::find_optional(tx, uuid)? {
        if app.stopped {
            app.stopped = false;
            tx.execute("UPDATE application SET stopped = 0 WHERE id = ?1", [app.id])?;
        }
        return Ok(Some(match queue(tx, ctx, &app, force, false)? {
            Queued::Saved(d) | Queued::Full(d) => json!({
                "message": format!("Application {} deployment queued.", app.name()),
                "resource_uuid": app.uuid,
                "deployment_uuid": d,
            }),
            Queued::Skipped(d) => json!({
                "message": "Deployment already queued for this commit.",
                "resource_uuid": app.uuid,
                "deployment_uuid": d,
            }),
        }));
    }
    if let Some(name) = service::start_by_uuid(tx, ctx, uuid)? {
        // The service entry carries `resource_uuid` but no deployment
        // (`DC:453-457 @4.3.11`).
        return Ok(Some(json!({
            "message": format!("Service {name} started. It could take a while, be patient."),
            "resource_uuid": uuid,
        })));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        start_at: i64,
        finish_at: i64,
        cancelled_at: Option<i64>,
        outcome: &str,
    ) -> DeploymentRow {
        DeploymentRow {
            id: 1,
            uuid: "d".into(),
            application_id: 1,
            commit_sha: "HEAD".into(),
            pull_request_id: 0,
            force_rebuild: false,
            restart_only: false,
            artifact: "image nginx:latest".into(),
            outcome: outcome.into(),
            created_at: 0,
            start_at,
            finish_at,
            cancelled_at,
        }
    }

    #[test]
    fn status_follows_the_clock() {
        let d = row(50, 250, None, "finished");
        assert_eq!(d.status(0), "queued");
        assert_eq!(d.status(50), "in_progress");
        assert_eq!(d.status(249), "in_progress");
        assert_eq!(d.status(250), "finished");
        assert_eq!(d.finished_at(100), None);
        assert_eq!(d.finished_at(300), Some(250));
        let failed = row(50, 250, None, "failed");
        assert_eq!(failed.status(1000), "failed");
        let cancelled = row(50, 250, Some(100), "finished");
        assert_eq!(cancelled.status(99), "in_progress");
        assert_eq!(cancelled.status(100), "cancelled-by-user");
        assert_eq!(cancelled.status(1000), "cancelled-by-user");
        assert_eq!(cancelled.finished_at(1000), Some(100));
    }
}
