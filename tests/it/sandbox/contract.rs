//! Every response of every endpoint the sandbox implements is validated
//! against the OpenAPI files in `tests/contract/` (copies of
//! `contracts/`), and the Uptime Kuma answers against the verified 2.5.3
//! sample.
//!
//! Where the notes say the real server differs from its OpenAPI, the test
//! follows the notes and patches the schema here, each patch named:
//!
//! 1. `nullable: true` (an OpenAPI 3.0 keyword, also used in the 3.1 Coolify
//!    file) is read as "null is allowed", as Laravel serialises nullable
//!    fields (Coolify notes §1).
//! 2. `Application.build_pack` also takes `dockerimage` (Coolify notes §14).
//! 3. `GET /deployments/applications/{uuid}` answers `{count, deployments}`
//!    with `ApplicationDeploymentQueue` items, not an array of Application
//!    (Coolify notes §7 and §13.6).
//! 4. Statuses an operation does not document (422 on application and env
//!    writes, 409 on an existing env var, 405 on `GET /deploy`, 429, 5xx)
//!    are checked against the shared `components/responses` of that status,
//!    or `{message: string}` (Coolify notes §2, §14), or the failure
//!    envelope for Cloudflare.
//! 5. `GET /zones/{zone_id}` is not in the Cloudflare subset: its result is
//!    checked against `zones_zone` in the common envelope.
//! 6. The `4XX` schemas of the DNS record operations are `allOf` the
//!    success envelope (`success: true`, a record in `result`) and the
//!    failure envelope (`success: false`, `result: null`), which no body
//!    can satisfy; the failure half is checked (Cloudflare notes §2).
//! 7. `GET /resources` is documented as a string ("will be implemented
//!    later"); the server returns the team's resources, each with `type`
//!    and `status` (Coolify notes §3).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use super::support::{Kuma, Resp, Sandbox, monitor_payload};

/// The two OpenAPI documents, as JSON, with patch 1 and 2 applied.
struct Contract {
    coolify: Value,
    cloudflare: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let load = |path: &str| -> Value {
        let text = std::fs::read_to_string(format!(
            "{}/tests/contract/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let yaml: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let mut json = serde_json::to_value(yaml).unwrap();
        allow_nullable(&mut json);
        json
    };
    let mut coolify = load("coolify/openapi.yaml");
    // Patch 2.
    coolify["components"]["schemas"]["Application"]["properties"]["build_pack"]["enum"]
        .as_array_mut()
        .unwrap()
        .push(json!("dockerimage"));
    // Patch 3: an empty env value is stored as null (the input middleware
    // turns "" into null, `app/Http/Kernel.php:60-61`; the model keeps it,
    // `app/Models/EnvironmentVariable.php:358-379 @4.3.11`).
    for field in ["value", "real_value"] {
        coolify["components"]["schemas"]["EnvironmentVariable"]["properties"][field]["type"] =
            json!(["string", "null"]);
    }
    Contract {
        coolify,
        cloudflare: load("cloudflare/dns-openapi.yaml"),
        validators: Mutex::new(HashMap::new()),
    }
});

/// Patch 1: `nullable: true` becomes "or null".
fn allow_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for child in map.values_mut() {
                allow_nullable(child);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::Array(items)) = map.get_mut("enum")
                    && !items.contains(&Value::Null)
                {
                    items.push(Value::Null);
                }
                match map.get("type").cloned() {
                    Some(Value::String(t)) => {
                        map.insert("type".into(), json!([t, "null"]));
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                allow_nullable(item);
            }
        }
        _ => {}
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Api {
    Coolify,
    Cloudflare,
}

fn message_schema() -> Value {
    json!({"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}})
}

fn resolve_response<'a>(doc: &'a Value, response: &'a Value) -> &'a Value {
    match response.get("$ref").and_then(Value::as_str) {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap(),
        None => response,
    }
}

fn response_schema(response: &Value) -> Option<Value> {
    let content = response.get("content")?;
    content
        .get("application/json")
        .or_else(|| content.get("text/html"))
        .and_then(|c| c.get("schema"))
        .cloned()
}

/// The schema the response of `method template` with `status` must match.
fn schema_for(api: Api, method: &Method, template: &str, status: u16) -> Value {
    let doc = match api {
        Api::Coolify => &CONTRACT.coolify,
        Api::Cloudflare => &CONTRACT.cloudflare,
    };
    // Patches 3, 5, 6 and 7.
    if api == Api::Coolify && template == "/deployments/applications/{uuid}" && status == 200 {
        return json!({
            "type": "object",
            "required": ["count", "deployments"],
            "properties": {
                "count": {"type": "integer"},
                "deployments": {"type": "array", "items": {"$ref": "#/components/schemas/ApplicationDeploymentQueue"}},
            },
        });
    }
    if api == Api::Coolify && template == "/resources" && status == 200 {
        return json!({
            "type": "array",
            "items": {"type": "object", "required": ["uuid", "type", "status"]},
        });
    }
    if api == Api::Cloudflare && template.contains("dns_records") && (400..500).contains(&status) {
        return json!({"$ref": "#/components/schemas/dns-records_api-response-common-failure"});
    }
    if api == Api::Cloudflare && template == "/zones/{zone_id}" && status == 200 {
        return json!({"allOf": [
            {"$ref": "#/components/schemas/zones_api-response-common"},
            {"properties": {"result": {"$ref": "#/components/schemas/zones_zone"}}},
        ]});
    }
    let op = doc["paths"]
        .get(template)
        .and_then(|p| p.get(method.as_str().to_lowercase()))
        .unwrap_or_else(|| panic!("{} {template} is not in the OpenAPI file", method));
    let responses = &op["responses"];
    let documented = responses.get(status.to_string()).or_else(|| {
        (400..500)
            .contains(&status)
            .then(|| responses.get("4XX"))
            .flatten()
    });
    if let Some(response) = documented {
        let response = resolve_response(doc, response);
        return response_schema(response).unwrap_or(json!({}));
    }
    // Patch 4.
    match api {
        Api::Coolify => doc["components"]["responses"]
            .get(status.to_string())
            .and_then(response_schema)
            .unwrap_or_else(message_schema),
        Api::Cloudflare => {
            json!({"$ref": "#/components/schemas/dns-records_api-response-common-failure"})
        }
    }
}

/// Validates one response body; panics with every violation.
fn check(api: Api, method: &Method, template: &str, resp: &Resp) {
    let schema = schema_for(api, method, template, resp.status);
    let key = format!("{}|{method}|{template}|{}", api as u8, resp.status);
    let validator = {
        let mut cache = CONTRACT.validators.lock().unwrap();
        cache
            .entry(key)
            .or_insert_with(|| {
                let doc = match api {
                    Api::Coolify => &CONTRACT.coolify,
                    Api::Cloudflare => &CONTRACT.cloudflare,
                };
                let root = json!({
                    "components": {"schemas": doc["components"]["schemas"].clone()},
                    "$defs": {"target": schema},
                    "$ref": "#/$defs/target",
                });
                std::sync::Arc::new(
                    jsonschema::draft202012::options()
                        .should_validate_formats(true)
                        .build(&root)
                        .unwrap(),
                )
            })
            .clone()
    };
    let errors: Vec<String> = validator
        .iter_errors(&resp.body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {template} → {}: {errors:#?}\nbody: {}",
        resp.status,
        serde_json::to_string_pretty(&resp.body).unwrap()
    );
}

/// Calls Coolify and validates the answer.
async fn coolify(
    sb: &Sandbox,
    method: Method,
    template: &str,
    path: &str,
    body: Option<Value>,
) -> Resp {
    let resp = sb.coolify(method.clone(), path, body).await;
    check(Api::Coolify, &method, template, &resp);
    resp
}

/// Calls Cloudflare and validates the answer.
async fn cf(sb: &Sandbox, method: Method, template: &str, path: &str, body: Option<Value>) -> Resp {
    let resp = sb.cf(method.clone(), path, body).await;
    check(Api::Cloudflare, &method, template, &resp);
    resp
}

#[test]
fn the_nullable_patch_does_what_it_says() {
    let mut schema = json!({"type": "string", "nullable": true, "enum": ["a"]});
    allow_nullable(&mut schema);
    assert_eq!(
        schema,
        json!({"type": ["string", "null"], "enum": ["a", null]})
    );
    let mut schema = json!({"$ref": "#/x", "nullable": true});
    allow_nullable(&mut schema);
    assert_eq!(
        schema,
        json!({"anyOf": [{"$ref": "#/x"}, {"type": "null"}]})
    );
}

#[tokio::test]
async fn every_coolify_response_matches_the_openapi() {
    let sb = Sandbox::start().await;
    let g = Method::GET;
    let post = Method::POST;
    let patch = Method::PATCH;
    let delete = Method::DELETE;
    coolify(&sb, g.clone(), "/version", "/version", None).await;
    coolify(&sb, g.clone(), "/health", "/health", None).await;
    let servers = coolify(&sb, g.clone(), "/servers", "/servers", None).await;
    let server = servers.body[0]["uuid"].as_str().unwrap().to_owned();
    coolify(
        &sb,
        g.clone(),
        "/servers/{uuid}",
        &format!("/servers/{server}"),
        None,
    )
    .await;
    coolify(&sb, g.clone(), "/servers/{uuid}", "/servers/nope", None).await;
    coolify(
        &sb,
        g.clone(),
        "/servers/{server_uuid}/destinations",
        &format!("/servers/{server}/destinations"),
        None,
    )
    .await;
    coolify(&sb, g.clone(), "/destinations", "/destinations", None).await;
    let projects = coolify(&sb, g.clone(), "/projects", "/projects", None).await;
    let project = projects.body[0]["uuid"].as_str().unwrap().to_owned();
    coolify(
        &sb,
        g.clone(),
        "/projects/{uuid}",
        &format!("/projects/{project}"),
        None,
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/projects/{uuid}/environments",
        &format!("/projects/{project}/environments"),
        None,
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/projects",
        "/projects",
        Some(json!({"name": "other", "description": "d"})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/projects",
        "/projects",
        Some(json!({"description": "no name"})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/projects/{uuid}/environments",
        &format!("/projects/{project}/environments"),
        Some(json!({"name": "staging"})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/projects/{uuid}/environments",
        &format!("/projects/{project}/environments"),
        Some(json!({"name": "staging"})),
    )
    .await;
    coolify(&sb, g.clone(), "/tags", "/tags", None).await;
    coolify(
        &sb,
        post.clone(),
        "/tags",
        "/tags",
        Some(json!({"name": "shared"})),
    )
    .await;
    coolify(&sb, g.clone(), "/team", "/team", None).await;

    // Applications of every form, and their errors.
    let place =
        json!({"project_uuid": project, "server_uuid": server, "environment_name": "production"});
    let with = |extra: Value| {
        let mut body = place.clone();
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Some(body)
    };
    let image = coolify(
        &sb,
        post.clone(),
        "/applications/dockerimage",
        "/applications/dockerimage",
        with(json!({"docker_registry_image_name": "nginx", "docker_registry_image_tag": "1.27", "ports_exposes": "80",
                    "name": "web", "description": "d", "domains": "https://web.example.com", "tags": ["fabrik"]})),
    )
    .await;
    assert_eq!(image.status, 201);
    let app = image.body["uuid"].as_str().unwrap().to_owned();
    for (template, extra) in [
        (
            "/applications/public",
            json!({"git_repository": "https://github.com/a/b", "git_branch": "main", "build_pack": "nixpacks", "ports_exposes": "3000"}),
        ),
        (
            "/applications/private-github-app",
            json!({"github_app_uuid": "g", "git_repository": "a/b", "git_branch": "main", "build_pack": "static"}),
        ),
        (
            "/applications/private-deploy-key",
            json!({"private_key_uuid": "k", "git_repository": "a/b", "git_branch": "main", "build_pack": "dockercompose", "docker_compose_domains": [{"name": "web", "domain": "https://compose.example.com"}]}),
        ),
        (
            "/applications/dockerfile",
            json!({"dockerfile": "RlJPTSBuZ2lueAo="}),
        ),
    ] {
        let resp = coolify(&sb, post.clone(), template, template, with(extra)).await;
        assert_eq!(resp.status, 201, "{template}: {resp:?}");
    }
    coolify(
        &sb,
        post.clone(),
        "/applications/dockerimage",
        "/applications/dockerimage",
        with(json!({"docker_registry_image_name": "nginx", "bogus": 1})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/applications/dockerimage",
        "/applications/dockerimage",
        with(json!({"docker_registry_image_name": "nginx", "domains": "https://web.example.com"})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/applications/public",
        "/applications/public",
        with(json!({})),
    )
    .await;
    let apps = coolify(&sb, g.clone(), "/applications", "/applications", None).await;
    assert_eq!(apps.body.as_array().unwrap().len(), 5);
    coolify(
        &sb,
        g.clone(),
        "/applications",
        "/applications?tag=fabrik",
        None,
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/applications/{uuid}",
        &format!("/applications/{app}"),
        None,
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/applications/{uuid}",
        "/applications/nope",
        None,
    )
    .await;
    coolify(
        &sb,
        patch.clone(),
        "/applications/{uuid}",
        &format!("/applications/{app}"),
        Some(json!({"docker_registry_image_tag": "1.28"})),
    )
    .await;
    coolify(
        &sb,
        patch.clone(),
        "/applications/{uuid}",
        &format!("/applications/{app}"),
        Some(json!({"tags": ["x"]})),
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/projects/{uuid}/{environment_name_or_uuid}",
        &format!("/projects/{project}/production"),
        None,
    )
    .await;
    coolify(&sb, g.clone(), "/resources", "/resources", None).await;

    // Env vars.
    let envs = format!("/applications/{app}/envs");
    let t_envs = "/applications/{uuid}/envs";
    coolify(
        &sb,
        post.clone(),
        t_envs,
        &envs,
        Some(json!({"key": "A", "value": "1", "is_literal": true})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        t_envs,
        &envs,
        Some(json!({"key": "A", "value": "1"})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        t_envs,
        &envs,
        Some(json!({"key": "B", "is_build_time": true})),
    )
    .await;
    coolify(
        &sb,
        patch.clone(),
        t_envs,
        &envs,
        Some(json!({"key": "A", "value": "2"})),
    )
    .await;
    coolify(
        &sb,
        patch.clone(),
        t_envs,
        &envs,
        Some(json!({"key": "ZZ", "value": "2"})),
    )
    .await;
    coolify(
        &sb,
        patch.clone(),
        "/applications/{uuid}/envs/bulk",
        &format!("{envs}/bulk"),
        Some(json!({"data": [{"key": "C", "value": "3"}, {"key": "D", "value": null}]})),
    )
    .await;
    coolify(
        &sb,
        patch.clone(),
        "/applications/{uuid}/envs/bulk",
        &format!("{envs}/bulk"),
        Some(json!({"data": [{"key": "bad key"}]})),
    )
    .await;
    let list = coolify(&sb, g.clone(), t_envs, &envs, None).await;
    let env_uuid = list.body[0]["uuid"].as_str().unwrap().to_owned();
    coolify(
        &sb,
        delete.clone(),
        "/applications/{uuid}/envs/{env_uuid}",
        &format!("{envs}/{env_uuid}"),
        None,
    )
    .await;
    coolify(
        &sb,
        delete.clone(),
        "/applications/{uuid}/envs/{env_uuid}",
        &format!("{envs}/{env_uuid}"),
        None,
    )
    .await;

    // Tags of a resource.
    let tags = format!("/applications/{app}/tags");
    let added = coolify(
        &sb,
        post.clone(),
        "/applications/{uuid}/tags",
        &tags,
        Some(json!({"tag_names": ["blog", "web"]})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/applications/{uuid}/tags",
        &tags,
        Some(json!({"tag_name": "x"})),
    )
    .await;
    coolify(&sb, g.clone(), "/applications/{uuid}/tags", &tags, None).await;
    let tag = added.body[0]["uuid"].as_str().unwrap().to_owned();
    coolify(
        &sb,
        delete.clone(),
        "/applications/{uuid}/tags/{tag_uuid}",
        &format!("{tags}/{tag}"),
        None,
    )
    .await;

    // Deployments, in every state.
    let deploy = coolify(
        &sb,
        post.clone(),
        "/deploy",
        &format!("/deploy?uuid={app}"),
        None,
    )
    .await;
    let d = deploy.body["deployments"][0]["deployment_uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    coolify(
        &sb,
        post.clone(),
        "/deploy",
        &format!("/deploy?uuid={app}"),
        None,
    )
    .await;
    coolify(&sb, post.clone(), "/deploy", "/deploy?uuid=nothing", None).await;
    // GET /deploy is not an operation of the file: its 405 is checked
    // against POST /deploy's undocumented-status fallback.
    let get_deploy = sb
        .coolify(Method::GET, &format!("/deploy?uuid={app}"), None)
        .await;
    assert_eq!(get_deploy.status, 405);
    check(Api::Coolify, &post, "/deploy", &get_deploy);
    coolify(
        &sb,
        g.clone(),
        "/deployments/{uuid}",
        &format!("/deployments/{d}"),
        None,
    )
    .await;
    coolify(&sb, g.clone(), "/deployments", "/deployments", None).await;
    sb.advance_ms(60);
    coolify(
        &sb,
        g.clone(),
        "/deployments/{uuid}",
        &format!("/deployments/{d}"),
        None,
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/deployments/applications/{uuid}",
        &format!("/deployments/applications/{app}"),
        None,
    )
    .await;
    sb.finish_deploys();
    coolify(
        &sb,
        g.clone(),
        "/deployments/{uuid}",
        &format!("/deployments/{d}"),
        None,
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/deployments/{uuid}/cancel",
        &format!("/deployments/{d}/cancel"),
        None,
    )
    .await;
    let start = coolify(
        &sb,
        post.clone(),
        "/applications/{uuid}/start",
        &format!("/applications/{app}/start"),
        None,
    )
    .await;
    let started = start.body["deployment_uuid"].as_str().unwrap().to_owned();
    coolify(
        &sb,
        post.clone(),
        "/deployments/{uuid}/cancel",
        &format!("/deployments/{started}/cancel"),
        None,
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/deployments/{uuid}",
        &format!("/deployments/{started}"),
        None,
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/deployments/{uuid}",
        "/deployments/nope",
        None,
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/applications/{uuid}/restart",
        &format!("/applications/{app}/restart"),
        None,
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/applications/{uuid}/stop",
        &format!("/applications/{app}/stop"),
        None,
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/applications/{uuid}",
        &format!("/applications/{app}"),
        None,
    )
    .await;

    // Services.
    let svc = coolify(&sb, post.clone(), "/services", "/services", with(json!({"type": "ghost", "urls": [{"name": "ghost", "url": "https://ghost.example.com"}], "instant_deploy": true}))).await;
    assert_eq!(svc.status, 201, "{svc:?}");
    coolify(
        &sb,
        post.clone(),
        "/services",
        "/services",
        with(json!({"type": "ghost", "docker_compose_raw": "eA=="})),
    )
    .await;
    let svc = svc.body["uuid"].as_str().unwrap().to_owned();
    coolify(&sb, g.clone(), "/services", "/services", None).await;
    coolify(
        &sb,
        g.clone(),
        "/services/{uuid}",
        &format!("/services/{svc}"),
        None,
    )
    .await;
    coolify(
        &sb,
        patch.clone(),
        "/services/{uuid}",
        &format!("/services/{svc}"),
        Some(json!({"name": "blog-ghost"})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/services/{uuid}/envs",
        &format!("/services/{svc}/envs"),
        Some(json!({"key": "K", "value": "v"})),
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/services/{uuid}/envs",
        &format!("/services/{svc}/envs"),
        None,
    )
    .await;
    coolify(
        &sb,
        patch.clone(),
        "/services/{uuid}/envs/bulk",
        &format!("/services/{svc}/envs/bulk"),
        Some(json!({"data": [{"key": "K", "value": "w"}]})),
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/services/{uuid}/tags",
        &format!("/services/{svc}/tags"),
        Some(json!({"tag_name": "blog"})),
    )
    .await;
    coolify(
        &sb,
        g.clone(),
        "/services/{uuid}/tags",
        &format!("/services/{svc}/tags"),
        None,
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/services/{uuid}/restart",
        &format!("/services/{svc}/restart"),
        None,
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/services/{uuid}/stop",
        &format!("/services/{svc}/stop"),
        None,
    )
    .await;
    coolify(
        &sb,
        post.clone(),
        "/services/{uuid}/start",
        &format!("/services/{svc}/start"),
        None,
    )
    .await;
    coolify(
        &sb,
        delete.clone(),
        "/services/{uuid}",
        &format!("/services/{svc}"),
        None,
    )
    .await;

    // Deletes, then the auth and fault shapes.
    coolify(
        &sb,
        delete.clone(),
        "/applications/{uuid}",
        &format!("/applications/{app}"),
        None,
    )
    .await;
    let unauthenticated = sb.coolify_as(g.clone(), "/applications", None, None).await;
    check(Api::Coolify, &g, "/applications", &unauthenticated);
    sb.handle
        .set_faults(fabrik::sandbox::FaultConfig::from_cli("rate_limit_rate=1").unwrap());
    coolify(&sb, g.clone(), "/applications", "/applications", None).await;
    sb.handle
        .set_faults(fabrik::sandbox::FaultConfig::from_cli("error_rate=1").unwrap());
    coolify(&sb, g.clone(), "/applications", "/applications", None).await;
}

#[tokio::test]
async fn every_cloudflare_response_matches_the_openapi() {
    let sb = Sandbox::start().await;
    let zones = cf(&sb, Method::GET, "/zones", "/zones?name=example.com", None).await;
    let zone = zones.body["result"][0]["id"].as_str().unwrap().to_owned();
    cf(&sb, Method::GET, "/zones", "/zones?per_page=5&page=2", None).await;
    cf(
        &sb,
        Method::GET,
        "/zones/{zone_id}",
        &format!("/zones/{zone}"),
        None,
    )
    .await;
    let list_t = "/zones/{zone_id}/dns_records";
    let one_t = "/zones/{zone_id}/dns_records/{dns_record_id}";
    let records = format!("/zones/{zone}/dns_records");
    let mut ids = Vec::new();
    for body in [
        json!({"type": "A", "name": "app", "content": "203.0.113.1", "comment": "c", "tags": ["owner:fabrik"]}),
        json!({"type": "AAAA", "name": "app", "content": "2001:db8::1", "proxied": true}),
        json!({"type": "CNAME", "name": "www", "content": "app.example.com", "ttl": 300}),
        json!({"type": "TXT", "name": "_verify", "content": "hello"}),
        json!({"type": "MX", "name": "@", "content": "mail.example.com", "priority": 10}),
    ] {
        let resp = cf(&sb, Method::POST, list_t, &records, Some(body.clone())).await;
        assert_eq!(resp.status, 200, "{body}: {resp:?}");
        ids.push(resp.body["result"]["id"].as_str().unwrap().to_owned());
    }
    cf(
        &sb,
        Method::POST,
        list_t,
        &records,
        Some(json!({"type": "A", "name": "app", "content": "203.0.113.1"})),
    )
    .await;
    cf(
        &sb,
        Method::POST,
        list_t,
        &records,
        Some(json!({"type": "A", "name": "www", "content": "203.0.113.1"})),
    )
    .await;
    cf(
        &sb,
        Method::POST,
        list_t,
        &records,
        Some(json!({"type": "A", "name": "x", "content": "nope"})),
    )
    .await;
    cf(&sb, Method::GET, list_t, &records, None).await;
    cf(
        &sb,
        Method::GET,
        list_t,
        &format!("{records}?type=A&name.exact=app.example.com&per_page=5"),
        None,
    )
    .await;
    let first = &ids[0];
    cf(&sb, Method::GET, one_t, &format!("{records}/{first}"), None).await;
    cf(
        &sb,
        Method::PATCH,
        one_t,
        &format!("{records}/{first}"),
        Some(json!({"content": "203.0.113.2"})),
    )
    .await;
    cf(
        &sb,
        Method::PUT,
        one_t,
        &format!("{records}/{first}"),
        Some(json!({"type": "A", "name": "app", "content": "203.0.113.3"})),
    )
    .await;
    cf(
        &sb,
        Method::DELETE,
        one_t,
        &format!("{records}/{first}"),
        None,
    )
    .await;
    cf(&sb, Method::GET, one_t, &format!("{records}/{first}"), None).await;
    cf(
        &sb,
        Method::PATCH,
        one_t,
        &format!("{records}/{first}"),
        Some(json!({"content": "1.1.1.1"})),
    )
    .await;
    cf(
        &sb,
        Method::DELETE,
        one_t,
        &format!("{records}/{first}"),
        None,
    )
    .await;
    cf(&sb, Method::GET, list_t, "/zones/0123/dns_records", None).await;
    sb.handle
        .set_faults(fabrik::sandbox::FaultConfig::from_cli("rate_limit_rate=1").unwrap());
    cf(&sb, Method::GET, list_t, &records, None).await;
    sb.handle
        .set_faults(fabrik::sandbox::FaultConfig::from_cli("error_rate=1").unwrap());
    cf(&sb, Method::GET, list_t, &records, None).await;
}

/// Same JSON type, or null where the verified answer had null.
fn same_shape(ours: &Value, real: &Value) -> bool {
    match (ours, real) {
        (_, Value::Null) | (Value::Null, _) => true,
        (Value::Object(a), Value::Object(b)) => b
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|x| same_shape(x, v))),
        (Value::Array(_), Value::Array(_)) => true,
        (Value::Bool(_), Value::Bool(_)) | (Value::String(_), Value::String(_)) => true,
        (Value::Number(_), Value::Number(_)) => true,
        _ => false,
    }
}

#[tokio::test]
async fn kuma_answers_match_the_verified_2_5_3_sample() {
    let sample: Value = serde_json::from_str(include_str!(
        "../../contract/uptime-kuma/sample-http-monitor-2.5.3.json"
    ))
    .unwrap();
    let sb = Sandbox::start().await;
    let mut kuma = Kuma::logged_in(&sb).await;
    let ack = kuma
        .ack("add", vec![sample["add_payload_sent"].clone()])
        .await;
    let real_ack = &sample["add_callback"];
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ack), keys(real_ack));
    assert_eq!(ack["msg"], real_ack["msg"]);
    let monitor = kuma.ack("getMonitor", vec![ack["monitorID"].clone()]).await["monitor"].clone();
    let real = &sample["getMonitor_result"];
    assert_eq!(keys(&monitor), keys(real), "the same 119 keys");
    assert!(same_shape(&monitor, real));
    for (key, value) in real.as_object().unwrap() {
        if key != "id" {
            assert_eq!(&monitor[key], value, "{key}");
        }
    }
    // The payload Fabrik sends (with tags later) is accepted as-is.
    let ours = kuma
        .ack(
            "add",
            vec![monitor_payload("fabrik:x", "https://x.example.com")],
        )
        .await;
    assert_eq!(keys(&ours), keys(real_ack));
}
