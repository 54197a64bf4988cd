//! The simulated Coolify API under `/api` (contract: `contracts/coolify`).
//!
//! One dispatcher parses the path into a [`Route`], checks the token, the
//! API switches and the token's abilities in the order Laravel's middleware
//! does, then runs the route's handler inside one transaction.

mod application;
mod deploy;
mod env;
pub(crate) mod fields;
mod project;
mod service;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use self::fields::{Field, Kind};
use super::reply::{Fail, Outcome, Reply, settle};
use super::server::Shared;
use super::store::Tx;

pub(crate) use self::application::{AppRow, live_app_rows};
pub(crate) use self::deploy::{
    DeploymentRow, of_application as deployments_of, serving as serving_deployment,
};
pub(crate) use self::env::of_resource as env_rows;
pub(crate) use self::project::tag_names as tag_names_of;
pub(crate) use self::service::{ServiceRow, live_service_rows};

/// Largest request body accepted (Coolify's PHP default is 8 MB).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// What handlers need besides the transaction and the request.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The simulated version, parsed.
    pub(crate) version: (u32, u32, u32),
    /// How long a deployment stays queued, ms.
    pub(crate) queue_ms: i64,
    /// How long a deployment runs, ms.
    pub(crate) deploy_ms: i64,
    /// How long a deleted resource stays visible, ms.
    pub(crate) delete_ms: i64,
    /// Deployments queued now end `failed`.
    pub(crate) deploy_fail: bool,
    /// Creates answer a 422 that echoes their values.
    pub(crate) echo_422: bool,
    /// Apps report `running:unhealthy`.
    pub(crate) health_fail: bool,
    /// The token may read secrets (env values, logs).
    pub(crate) sensitive: bool,
}

impl Ctx {
    fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        self.version >= (major, minor, patch)
    }
}

/// One parsed request.
#[derive(Debug)]
pub(crate) struct Call {
    method: Method,
    query: HashMap<String, String>,
    content_type: Option<String>,
    body: Bytes,
}

/// Which application-like resource an env or tag route is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    Application,
    Service,
}

impl Owner {
    /// The id of the visible resource with this uuid, or its 404.
    pub(crate) fn find_id(self, tx: &Tx<'_>, uuid: &str) -> Result<i64, Fail> {
        match self {
            Self::Application => Ok(application::find(tx, uuid)?.id),
            Self::Service => Ok(service::find(tx, uuid)?.id),
        }
    }

    /// The value of the `resource` column.
    pub(crate) fn column(self) -> &'static str {
        match self {
            Self::Application => "application",
            Self::Service => "service",
        }
    }
}

/// Every endpoint the sandbox implements.
#[derive(Debug, Clone)]
enum Route {
    Version,
    Enable,
    Disable,
    ListServers,
    GetServer(String),
    ServerDestinations(String),
    ServerDomains(String),
    ListDestinations,
    ListProjects,
    CreateProject,
    GetProject(String),
    ListEnvironments(String),
    CreateEnvironment(String),
    GetEnvironment(String, String),
    ListResources,
    ListTags,
    CreateTag,
    Team,
    ListApplications,
    CreateApplication(application::AppKind),
    GetApplication(String),
    UpdateApplication(String),
    DeleteApplication(String),
    StartApplication(String),
    StopApplication(String),
    RestartApplication(String),
    ApplicationLogs(String),
    ListEnvs(Owner, String),
    CreateEnv(Owner, String),
    UpdateEnv(Owner, String),
    BulkEnvs(Owner, String),
    DeleteEnv(Owner, String, String),
    ListResourceTags(Owner, String),
    AddResourceTags(Owner, String),
    RemoveResourceTag(Owner, String, String),
    Deploy,
    ListDeployments,
    GetDeployment(String),
    CancelDeployment(String),
    AppDeployments(String),
    ListServices,
    CreateService,
    GetService(String),
    UpdateService(String),
    DeleteService(String),
    StartService(String),
    StopService(String),
    RestartService(String),
    /// A GET on an endpoint that is POST-only since 4.2.
    PostOnly,
}

/// The ability a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ability {
    Read,
    Write,
    Deploy,
    Root,
}

impl Ability {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Deploy => "deploy",
            Self::Root => "root",
        }
    }
}

impl Route {
    fn parse(method: &Method, segs: &[&str], ctx: &Ctx) -> Option<Self> {
        use Route as R;
        let get = *method == Method::GET;
        let post = *method == Method::POST;
        let patch = *method == Method::PATCH;
        let delete = *method == Method::DELETE;
        let s = |i: usize| segs.get(i).map(|x| (*x).to_owned()).unwrap_or_default();
        let v42 = ctx.at_least(4, 2, 0);
        // Lifecycle endpoints: POST, or GET before 4.2.
        let lifecycle = post || (get && !v42);
        let post_only = get && v42;
        let owner = |name: &str| match name {
            "applications" => Some(Owner::Application),
            "services" => Some(Owner::Service),
            _ => None,
        };
        Some(match segs {
            ["version"] if get => R::Version,
            ["enable"] if get || post => R::Enable,
            ["disable"] if get || post => R::Disable,
            ["servers"] if get => R::ListServers,
            ["servers", _] if get => R::GetServer(s(1)),
            ["servers", _, "destinations"] if get && v42 => R::ServerDestinations(s(1)),
            ["servers", _, "domains"] if get => R::ServerDomains(s(1)),
            ["destinations"] if get && v42 => R::ListDestinations,
            ["projects"] if get => R::ListProjects,
            ["projects"] if post => R::CreateProject,
            ["projects", _] if get => R::GetProject(s(1)),
            ["projects", _, "environments"] if get => R::ListEnvironments(s(1)),
            ["projects", _, "environments"] if post => R::CreateEnvironment(s(1)),
            ["projects", _, _] if get => R::GetEnvironment(s(1), s(2)),
            ["resources"] if get => R::ListResources,
            ["tags"] if get && v42 => R::ListTags,
            ["tags"] if post && v42 => R::CreateTag,
            ["team"] | ["teams", "current"] if get => R::Team,
            ["applications"] if get => R::ListApplications,
            ["applications", kind] if post => {
                R::CreateApplication(application::AppKind::from_path(kind, ctx)?)
            }
            ["applications", _] if get => R::GetApplication(s(1)),
            ["applications", _] if patch => R::UpdateApplication(s(1)),
            ["applications", _] if delete => R::DeleteApplication(s(1)),
            ["applications", _, "logs"] if get => R::ApplicationLogs(s(1)),
            ["applications", _, "start" | "stop" | "restart"] if post_only => R::PostOnly,
            ["applications", _, "start"] if lifecycle => R::StartApplication(s(1)),
            ["applications", _, "stop"] if lifecycle => R::StopApplication(s(1)),
            ["applications", _, "restart"] if lifecycle => R::RestartApplication(s(1)),
            ["services"] if get => R::ListServices,
            ["services"] if post => R::CreateService,
            ["services", _] if get => R::GetService(s(1)),
            ["services", _] if patch => R::UpdateService(s(1)),
            ["services", _] if delete => R::DeleteService(s(1)),
            ["services", _, "start" | "stop" | "restart"] if post_only => R::PostOnly,
            ["services", _, "start"] if lifecycle => R::StartService(s(1)),
            ["services", _, "stop"] if lifecycle => R::StopService(s(1)),
            ["services", _, "restart"] if lifecycle => R::RestartService(s(1)),
            [kind, _, "envs"] if get => R::ListEnvs(owner(kind)?, s(1)),
            [kind, _, "envs"] if post => R::CreateEnv(owner(kind)?, s(1)),
            [kind, _, "envs"] if patch => R::UpdateEnv(owner(kind)?, s(1)),
            [kind, _, "envs", "bulk"] if patch => R::BulkEnvs(owner(kind)?, s(1)),
            [kind, _, "envs", _] if delete => R::DeleteEnv(owner(kind)?, s(1), s(3)),
            [kind, _, "tags"] if get && v42 => R::ListResourceTags(owner(kind)?, s(1)),
            [kind, _, "tags"] if post && v42 => R::AddResourceTags(owner(kind)?, s(1)),
            [kind, _, "tags", _] if delete && v42 => R::RemoveResourceTag(owner(kind)?, s(1), s(3)),
            ["deploy"] if post_only => R::PostOnly,
            ["deploy"] if lifecycle => R::Deploy,
            ["deployments"] if get => R::ListDeployments,
            ["deployments", _] if get => R::GetDeployment(s(1)),
            ["deployments", _, "cancel"] if post => R::CancelDeployment(s(1)),
            ["deployments", "applications", _] if get => R::AppDeployments(s(2)),
            _ => return None,
        })
    }

    fn ability(&self) -> Ability {
        match self {
            Self::Enable | Self::Disable => Ability::Root,
            Self::Deploy
            | Self::StartApplication(_)
            | Self::StopApplication(_)
            | Self::RestartApplication(_)
            | Self::StartService(_)
            | Self::StopService(_)
            | Self::RestartService(_)
            | Self::CancelDeployment(_) => Ability::Deploy,
            Self::Version
            | Self::ListServers
            | Self::GetServer(_)
            | Self::ServerDestinations(_)
            | Self::ServerDomains(_)
            | Self::ListDestinations
            | Self::ListProjects
            | Self::GetProject(_)
            | Self::ListEnvironments(_)
            | Self::GetEnvironment(..)
            | Self::ListResources
            | Self::ListTags
            | Self::Team
            | Self::ListApplications
            | Self::GetApplication(_)
            | Self::ApplicationLogs(_)
            | Self::ListEnvs(..)
            | Self::ListResourceTags(..)
            | Self::ListDeployments
            | Self::GetDeployment(_)
            | Self::AppDeployments(_)
            | Self::ListServices
            | Self::GetService(_)
            | Self::PostOnly => Ability::Read,
            _ => Ability::Write,
        }
    }

    /// Whether the "API enabled" and IP allow-list middleware guards it.
    fn gated(&self) -> bool {
        !matches!(self, Self::Version | Self::Enable | Self::Disable)
    }

    /// Whether it only reads (runs in a read transaction).
    fn read_only(&self) -> bool {
        self.ability() == Ability::Read
    }

    fn run(&self, tx: &Tx<'_>, ctx: &Ctx, call: &Call) -> Outcome {
        use Route as R;
        if !self.read_only() {
            application::purge_gone(tx)?;
            service::purge_gone(tx)?;
        }
        match self {
            R::Version | R::Enable | R::Disable => Ok(not_found()),
            R::ListServers => project::list_servers(tx),
            R::GetServer(uuid) => project::get_server(tx, uuid),
            R::ServerDestinations(uuid) => project::server_destinations(tx, uuid),
            R::ServerDomains(uuid) => project::server_domains(tx, uuid),
            R::ListDestinations => project::list_destinations(tx),
            R::ListProjects => project::list_projects(tx),
            R::CreateProject => project::create_project(tx, call),
            R::GetProject(uuid) => project::get_project(tx, uuid),
            R::ListEnvironments(uuid) => project::list_environments(tx, uuid),
            R::CreateEnvironment(uuid) => project::create_environment(tx, call, uuid),
            R::GetEnvironment(p, e) => project::get_environment(tx, ctx, p, e),
            R::ListResources => project::list_resources(tx, ctx),
            R::ListTags => project::list_tags(tx),
            R::CreateTag => project::create_tag(tx, call),
            R::Team => project::team(tx),
            R::ListApplications => application::list(tx, ctx, call),
            R::CreateApplication(kind) => application::create(tx, ctx, call, *kind),
            R::GetApplication(uuid) => application::get(tx, ctx, uuid),
            R::UpdateApplication(uuid) => application::update(tx, ctx, call, uuid),
            R::DeleteApplication(uuid) => application::delete(tx, ctx, uuid),
            R::StartApplication(uuid) => application::start(tx, ctx, call, uuid),
            R::StopApplication(uuid) => application::stop(tx, uuid),
            R::RestartApplication(uuid) => application::restart(tx, ctx, uuid),
            R::ApplicationLogs(uuid) => application::logs(tx, call, uuid),
            R::ListEnvs(owner, uuid) => env::list(tx, ctx, *owner, uuid),
            R::CreateEnv(owner, uuid) => env::create(tx, ctx, call, *owner, uuid),
            R::UpdateEnv(owner, uuid) => env::update(tx, ctx, call, *owner, uuid),
            R::BulkEnvs(owner, uuid) => env::bulk(tx, ctx, call, *owner, uuid),
            R::DeleteEnv(owner, uuid, env) => env::delete(tx, *owner, uuid, env),
            R::ListResourceTags(owner, uuid) => project::resource_tags(tx, *owner, uuid),
            R::AddResourceTags(owner, uuid) => project::add_resource_tags(tx, call, *owner, uuid),
            R::RemoveResourceTag(owner, uuid, tag) => {
                project::remove_resource_tag(tx, *owner, uuid, tag)
            }
            R::Deploy => deploy::deploy(tx, ctx, call),
            R::ListDeployments => deploy::list_active(tx, ctx),
            R::GetDeployment(uuid) => deploy::get(tx, ctx, uuid),
            R::CancelDeployment(uuid) => deploy::cancel(tx, ctx, uuid),
            R::AppDeployments(uuid) => deploy::for_application(tx, ctx, call, uuid),
            R::ListServices => service::list(tx, ctx),
            R::CreateService => service::create(tx, ctx, call),
            R::GetService(uuid) => service::get(tx, ctx, uuid),
            R::UpdateService(uuid) => service::update(tx, ctx, call, uuid),
            R::DeleteService(uuid) => service::delete(tx, ctx, uuid),
            R::StartService(uuid) => service::start(tx, ctx, uuid),
            R::RestartService(uuid) => service::restart(tx, ctx, uuid),
            R::StopService(uuid) => service::stop(tx, uuid),
            R::PostOnly => Ok(Reply::json(
                405,
                json!({"message": "This endpoint has changed to a POST request."}),
            )
            .with_header("allow", "POST")),
        }
    }
}

/// Entry point for everything under `/api`.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let rest = path.trim_start_matches("/api").trim_matches('/');
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if matches!(segs.as_slice(), ["health"] | ["v1", "health"]) && parts.method == Method::GET {
        return Reply::text(200, "text/html; charset=UTF-8", "OK").into_response();
    }
    let settings = shared.settings();
    let config = &shared.config;
    let faults = shared.faults.config();
    let (queue_ms, deploy_ms, delete_ms) = (
        duration_ms(config.deploy_queue_time),
        duration_ms(config.deploy_duration),
        duration_ms(config.delete_delay),
    );
    let ctx = Ctx {
        version: config.coolify_semver(),
        queue_ms,
        deploy_ms,
        delete_ms,
        deploy_fail: faults.deploy_fail,
        echo_422: faults.echo_422,
        health_fail: faults.health_fail,
        sensitive: settings.can("read:sensitive"),
    };
    let route = match segs.split_first() {
        Some((&"v1", rest)) => Route::parse(&parts.method, rest, &ctx),
        _ => None,
    };
    let Some(route) = route else {
        return not_found().into_response();
    };
    // auth:sanctum
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if token != Some(config.credentials.coolify_token.expose()) {
        return Reply::json(401, json!({"message": "Unauthenticated."})).into_response();
    }
    // ApiAllowed
    if route.gated() {
        if !settings.coolify_api_enabled {
            return Reply::json(403, json!({"success": true, "message": "API is disabled."}))
                .into_response();
        }
        if !settings.coolify_ip_allowed {
            return Reply::json(
                403,
                json!({"success": true, "message": "You are not allowed to access the API."}),
            )
            .into_response();
        }
    }
    // api.ability
    let ability = route.ability();
    if !settings.can(ability.name()) {
        return Reply::json(
            403,
            json!({"message": format!("Missing required permissions: {}", ability.name())}),
        )
        .into_response();
    }
    match route {
        Route::Version => {
            return Reply::text(
                200,
                "text/html; charset=UTF-8",
                config.coolify_version.clone(),
            )
            .into_response();
        }
        Route::Enable | Route::Disable => {
            let enable = matches!(route, Route::Enable);
            let mut settings = settings;
            settings.coolify_api_enabled = enable;
            shared.set_settings(settings);
            let message = if enable {
                "API enabled."
            } else {
                "API disabled."
            };
            return Reply::json(200, json!({"message": message})).into_response();
        }
        _ => {}
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return Reply::json(413, json!({"message": "Request Entity Too Large"}))
                .into_response();
        }
    };
    let call = Call {
        method: parts.method.clone(),
        query: parse_query(parts.uri.query()),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    };
    let now = shared.now();
    let read_only = route.read_only();
    let work = move |tx: &Tx<'_>| {
        let reply = settle(route.run(tx, &ctx, &call))?;
        if !read_only {
            log_request(tx, &call, &path, reply.status().as_u16())?;
        }
        Ok(reply)
    };
    let result = if read_only {
        shared.store.read(now, work).await
    } else {
        shared.store.write(now, work).await
    };
    match result {
        Ok(reply) => reply.into_response(),
        Err(_) => server_error().into_response(),
    }
}

/// Keeps a request that could change something in `request_log`, its
/// body as the controller saw it, secret-bearing values as fingerprints.
fn log_request(tx: &Tx<'_>, call: &Call, path: &str, status: u16) -> rusqlite::Result<()> {
    fn redact(tx: &Tx<'_>, key: Option<&str>, v: &mut Value) {
        match v {
            Value::String(s)
                if key.is_some_and(|k| {
                    k == "value" || k.contains("password") || k.starts_with("manual_webhook_secret")
                }) =>
            {
                *s = format!("fingerprint:{}", super::world::fingerprint(tx, s));
            }
            Value::Array(items) => items.iter_mut().for_each(|i| redact(tx, None, i)),
            Value::Object(map) => map.iter_mut().for_each(|(k, v)| redact(tx, Some(k), v)),
            _ => {}
        }
    }
    let mut body = Value::Object(call.optional_json());
    redact(tx, None, &mut body);
    let mut query: Vec<(&String, &String)> = call.query.iter().collect();
    query.sort();
    tx.execute(
        "INSERT INTO request_log (at, service, method, path, query, body, status) VALUES (?1, 'coolify', ?2, ?3, ?4, ?5, ?6)",
        rusqlite::params![
            tx.now,
            call.method.as_str(),
            path,
            serde_json::to_string(&query).unwrap_or_default(),
            body.to_string(),
            status
        ],
    )?;
    Ok(())
}

fn duration_ms(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Laravel's default answer to an unhandled exception.
pub(crate) fn server_error() -> Reply {
    Reply::json(500, json!({"message": "Server Error"}))
}

/// The throttle middleware's answer.
pub(crate) fn rate_limited(retry_after_s: u64) -> Reply {
    Reply::json(429, json!({"message": "Too Many Attempts."}))
        .with_header("retry-after", retry_after_s.to_string())
        .with_header("x-ratelimit-limit", "200")
        .with_header("x-ratelimit-remaining", "0")
}

/// The fallback route's answer to an unknown path.
fn not_found() -> Reply {
    Reply::json(
        404,
        json!({"message": "Not found.", "docs": "https://coolify.io/docs"}),
    )
}

/// `{"message": text}` with a status.
pub(crate) fn message(status: u16, text: impl Into<String>) -> Reply {
    Reply::json(status, json!({"message": text.into()}))
}

/// A 422 with Laravel's validation shape.
pub(crate) fn invalid(errors: Map<String, Value>) -> Reply {
    Reply::json(
        422,
        json!({"message": "Validation failed.", "errors": errors}),
    )
}

/// A 422 whose `errors` is a JSON list of messages, not an object: how the
/// domain checks answer (`AC:2929-2936`, `:4469-4477`; `SC:549-554`,
/// `:1266-1271` @4.3.11).
pub(crate) fn invalid_list(messages: Vec<String>) -> Reply {
    Reply::json(
        422,
        json!({"message": "Validation failed.", "errors": messages}),
    )
}

/// A 422 for one field.
pub(crate) fn invalid_field(field: &str, text: impl Into<String>) -> Reply {
    let mut errors = Map::new();
    errors.insert(field.to_owned(), json!([text.into()]));
    invalid(errors)
}

/// The `echo_422` fault: a validation error quoting every submitted string.
pub(crate) fn echo(body: &Value) -> Reply {
    let mut quoted = Vec::new();
    collect_strings("", body, &mut quoted);
    let mut errors = Map::new();
    for (path, value) in &quoted {
        errors.insert(
            path.clone(),
            json!([format!("The {path} value '{value}' is invalid.")]),
        );
    }
    let values: Vec<String> = quoted.iter().map(|(_, v)| format!("'{v}'")).collect();
    Reply::json(
        422,
        json!({
            "message": format!("Validation failed for {}.", values.join(", ")),
            "errors": errors,
        }),
    )
}

fn collect_strings(path: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(s) => out.push((path.to_owned(), s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_strings(&join_path(path, &i.to_string()), item, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                collect_strings(&join_path(path, k), v, out);
            }
        }
        _ => {}
    }
}

fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

impl Call {
    /// A query parameter.
    pub(crate) fn query(&self, key: &str) -> Option<&str> {
        self.query.get(key).map(String::as_str)
    }

    /// A boolean query parameter (`true`/`1` as Laravel's boolean cast).
    pub(crate) fn query_flag(&self, key: &str) -> Option<bool> {
        self.query(key)
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
    }

    /// The JSON object body, checked as `validateIncomingRequest` does.
    pub(crate) fn json_object(&self) -> Result<Map<String, Value>, Fail> {
        let bad = |error: &str| {
            Fail::Reply(Reply::json(
                400,
                json!({"message": "Invalid request.", "error": error}),
            ))
        };
        let is_json = self
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("application/json"));
        if !is_json {
            return Err(bad("Content-Type must be application/json."));
        }
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("Empty JSON."));
        }
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) if map.is_empty() => Err(bad("Empty JSON.")),
            Ok(Value::Object(map)) => Ok(laravel_input(map)),
            Ok(Value::Array(items)) if items.is_empty() => Err(bad("Empty JSON.")),
            _ => Err(bad("Invalid JSON.")),
        }
    }

    /// The body as JSON if there is one (endpoints that take parameters from
    /// the query string or the body).
    pub(crate) fn optional_json(&self) -> Map<String, Value> {
        match serde_json::from_slice::<Value>(&self.body) {
            Ok(Value::Object(map)) => laravel_input(map),
            _ => Map::new(),
        }
    }

    /// Whether this is a GET (only before 4.2 for lifecycle endpoints).
    pub(crate) fn is_get(&self) -> bool {
        self.method == Method::GET
    }
}

/// A request body as a controller sees it, after Laravel's global
/// middleware `TrimStrings` then `ConvertEmptyStringsToNull`
/// (`app/Http/Kernel.php:60-61 @4.3.11`): every string, at any depth, is
/// trimmed (except `password`-like keys, `app/Http/Middleware/TrimStrings.php`),
/// and an empty string becomes `null`.
pub(crate) fn laravel_input(map: Map<String, Value>) -> Map<String, Value> {
    fn clean(key: Option<&str>, v: Value) -> Value {
        match v {
            Value::String(s) => {
                let keep = matches!(
                    key,
                    Some("password" | "current_password" | "password_confirmation")
                );
                let s = if keep {
                    s
                } else {
                    s.trim_matches(|c: char| {
                        c.is_whitespace() || c == '\u{feff}' || c == '\u{200b}'
                    })
                    .to_owned()
                };
                if s.is_empty() {
                    Value::Null
                } else {
                    Value::String(s)
                }
            }
            Value::Array(items) => {
                Value::Array(items.into_iter().map(|i| clean(None, i)).collect())
            }
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        let v = clean(Some(&k), v);
                        (k, v)
                    })
                    .collect(),
            ),
            other => other,
        }
    }
    map.into_iter()
        .map(|(k, v)| {
            let v = clean(Some(&k), v);
            (k, v)
        })
        .collect()
}

/// Checks a body against an endpoint's accepted fields: unknown fields
/// first (a 422 of their own, as the controllers do), then types and
/// required fields together.
pub(crate) fn check_fields(
    body: &Map<String, Value>,
    accepted: &[Field],
    extra: &[Field],
    required: &[&str],
) -> Result<(), Fail> {
    let find = |key: &str| {
        accepted
            .iter()
            .chain(extra)
            .find(|(name, _)| *name == key)
            .map(|(_, kind)| *kind)
    };
    let mut errors = Map::new();
    for key in body.keys() {
        if find(key).is_none() {
            errors.insert(key.clone(), json!(["This field is not allowed."]));
        }
    }
    if !errors.is_empty() {
        return Err(invalid(errors).into());
    }
    for (key, value) in body {
        let Some(kind) = find(key) else { continue };
        if value.is_null() {
            continue;
        }
        let human = key.replace('_', " ");
        let problem = match kind {
            Kind::Str if !value.is_string() => Some(format!("The {human} field must be a string.")),
            Kind::Bool if !value.is_boolean() => {
                Some(format!("The {human} field must be true or false."))
            }
            Kind::Int if !(value.is_i64() || value.is_u64()) => {
                Some(format!("The {human} field must be an integer."))
            }
            Kind::IntLike
                if !(value.is_i64()
                    || value.is_u64()
                    || value.as_str().is_some_and(|s| s.parse::<i64>().is_ok())) =>
            {
                Some(format!("The {human} field must be an integer."))
            }
            Kind::Numeric
                if !(value.is_number()
                    || value.as_str().is_some_and(|s| s.parse::<f64>().is_ok())) =>
            {
                Some(format!("The {human} field must be a number."))
            }
            Kind::StrList
                if !value
                    .as_array()
                    .is_some_and(|items| items.iter().all(Value::is_string)) =>
            {
                Some(format!("The {human} field must be an array of strings."))
            }
            Kind::List if !value.is_array() => Some(format!("The {human} field must be an array.")),
            _ => None,
        };
        if let Some(problem) = problem {
            errors.insert(key.clone(), json!([problem]));
        }
    }
    for key in required {
        let missing = match body.get(*key) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            _ => false,
        };
        if missing && !errors.contains_key(*key) {
            errors.insert(
                (*key).to_owned(),
                json!([format!("The {} field is required.", key.replace('_', " "))]),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(invalid(errors).into())
    }
}

/// A string field of a body, trimmed, if present and not empty.
pub(crate) fn str_field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    body.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A boolean field of a body.
pub(crate) fn bool_field(body: &Map<String, Value>, key: &str) -> Option<bool> {
    body.get(key).and_then(Value::as_bool)
}

/// Base64 as Coolify checks it (`base64_decode(..., true)`).
pub(crate) fn decode_base64(text: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A short digest for content the deployed app reports (a compose file, a
/// Dockerfile).
pub(crate) fn short_digest(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(version: (u32, u32, u32)) -> Ctx {
        Ctx {
            version,
            queue_ms: 0,
            deploy_ms: 0,
            delete_ms: 0,
            deploy_fail: false,
            echo_422: false,
            health_fail: false,
            sensitive: true,
        }
    }

    #[test]
    fn routes_follow_the_version() {
        let new = ctx((4, 3, 11));
        let old = ctx((4, 1, 2));
        assert!(matches!(
            Route::parse(&Method::GET, &["deploy"], &new),
            Some(Route::PostOnly)
        ));
        assert!(matches!(
            Route::parse(&Method::GET, &["deploy"], &old),
            Some(Route::Deploy)
        ));
        assert!(Route::parse(&Method::GET, &["applications", "x", "tags"], &old).is_none());
        assert!(matches!(
            Route::parse(&Method::GET, &["applications", "x", "tags"], &new),
            Some(Route::ListResourceTags(Owner::Application, _))
        ));
        assert!(Route::parse(&Method::POST, &["applications", "dockercompose"], &new).is_none());
        assert!(
            Route::parse(
                &Method::POST,
                &["applications", "dockercompose"],
                &ctx((4, 0, 0))
            )
            .is_some()
        );
        assert!(Route::parse(&Method::PUT, &["applications", "x"], &new).is_none());
    }

    #[test]
    fn abilities_per_route() {
        let c = ctx((4, 3, 11));
        let ability = |m: Method, p: &[&str]| Route::parse(&m, p, &c).unwrap().ability();
        assert_eq!(ability(Method::GET, &["applications"]), Ability::Read);
        assert_eq!(
            ability(Method::PATCH, &["applications", "x"]),
            Ability::Write
        );
        assert_eq!(ability(Method::POST, &["deploy"]), Ability::Deploy);
        assert_eq!(
            ability(Method::POST, &["deployments", "x", "cancel"]),
            Ability::Deploy
        );
    }

    #[test]
    fn field_checks_report_like_laravel() {
        let accepted: &[Field] = &[("name", Kind::Str), ("instant_deploy", Kind::Bool)];
        let body = |v: Value| v.as_object().unwrap().clone();
        let err = check_fields(&body(json!({"uuid": "x"})), accepted, &[], &[]).unwrap_err();
        let Fail::Reply(reply) = err else { panic!() };
        assert_eq!(reply.status().as_u16(), 422);
        assert_eq!(
            reply.json_body().unwrap()["errors"]["uuid"][0],
            "This field is not allowed."
        );
        let err = check_fields(
            &body(json!({"instant_deploy": "yes"})),
            accepted,
            &[],
            &["name"],
        )
        .unwrap_err();
        let Fail::Reply(reply) = err else { panic!() };
        let errors = &reply.json_body().unwrap()["errors"];
        assert_eq!(
            errors["instant_deploy"][0],
            "The instant deploy field must be true or false."
        );
        assert_eq!(errors["name"][0], "The name field is required.");
        assert!(
            check_fields(
                &body(json!({"name": "a", "instant_deploy": null})),
                accepted,
                &[],
                &["name"]
            )
            .is_ok()
        );
    }

    #[test]
    fn echo_quotes_every_value() {
        let reply = echo(&json!({"key": "API_KEY", "value": "s3cr3t", "data": [{"value": "x"}]}));
        let text = reply.json_body().unwrap().to_string();
        assert!(text.contains("'s3cr3t'"), "{text}");
        assert!(text.contains("data.0.value"), "{text}");
        assert_eq!(reply.status().as_u16(), 422);
    }
}
