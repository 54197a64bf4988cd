//! The admin API under `/_sandbox`, for tests and the CLI:
//!
//! - `GET|PUT /_sandbox/faults`: the fault config (PUT replaces it; missing
//!   keys take their defaults; the dice restart),
//! - `GET /_sandbox/faults/injected`: how many faults each service injected
//!   since the config was last set,
//! - `GET|PUT /_sandbox/settings`: the runtime switches (PUT merges a
//!   partial object),
//! - `GET /_sandbox/dump`: the whole world,
//! - `GET /_sandbox/info`: listener addresses and the CA certificate,
//! - `GET /_sandbox/resolve?name=&type=`: a DNS answer from the records,
//! - `PUT /_sandbox/zone`: `{"name": ..., "status": ...}` sets a zone's
//!   status (`pending` until its nameservers are switched, ...),
//! - `POST /_sandbox/registry/push`: `{"image": "NAME:TAG"}` pushes the tag
//!   again: it names a new manifest (digest) from then on,
//! - `PUT /_sandbox/registry/repository`: `{"image": NAME, "private":
//!   bool, "reachable": bool}` makes a repository private or unreachable,
//! - `GET /_sandbox/registry/token`: the registry's anonymous tokens.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::config::Settings;
use super::faults::FaultConfig;
use super::reply::Reply;
use super::server::Shared;
use super::{coolify, registry, world};

fn error(status: u16, message: impl Into<String>) -> Reply {
    Reply::json(status, json!({"error": message.into()}))
}

/// Entry point for everything under `/_sandbox`.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return error(413, "body too large").into_response();
    };
    let path = parts
        .uri
        .path()
        .trim_start_matches("/_sandbox")
        .trim_matches('/');
    let reply = match (&parts.method, path) {
        (&Method::GET, "faults") => Reply::json(200, json!(shared.faults.config())),
        (&Method::GET, "faults/injected") => Reply::json(200, json!(shared.faults.injected())),
        (&Method::PUT, "faults") => match serde_json::from_slice::<FaultConfig>(&body) {
            Ok(faults) => match faults.validate() {
                Ok(()) => {
                    shared.faults.set(faults.clone());
                    Reply::json(200, json!(faults))
                }
                Err(e) => error(400, e.to_string()),
            },
            Err(e) => error(400, format!("invalid fault config: {e}")),
        },
        (&Method::GET, "settings") => Reply::json(200, json!(shared.settings())),
        (&Method::PUT, "settings") => match merge_settings(shared.settings(), &body) {
            Ok(settings) => {
                shared.set_settings(settings.clone());
                Reply::json(200, json!(settings))
            }
            Err(e) => error(400, e),
        },
        (&Method::GET, "dump") => {
            let now = shared.now();
            match shared.store.read(now, world::dump).await {
                Ok(dump) => Reply::json(200, dump),
                Err(e) => error(500, e.to_string()),
            }
        }
        (&Method::GET, "info") => Reply::json(200, json!(shared.info)),
        (&Method::GET, "resolve") => {
            let query = coolify::parse_query(parts.uri.query());
            let name = query.get("name").cloned().unwrap_or_default();
            let record_type = query.get("type").cloned().unwrap_or_else(|| "A".to_owned());
            if name.is_empty() {
                error(400, "the name parameter is required")
            } else {
                let now = shared.now();
                match shared
                    .store
                    .read(now, move |tx| world::resolve(tx, &name, &record_type))
                    .await
                {
                    Ok(answer) => Reply::json(200, answer),
                    Err(e) => error(500, e.to_string()),
                }
            }
        }
        (&Method::PUT, "zone") => {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let name = body["name"].as_str().unwrap_or_default().to_owned();
            let status = body["status"].as_str().unwrap_or_default().to_owned();
            if !matches!(
                status.as_str(),
                "initializing" | "pending" | "active" | "moved"
            ) {
                error(400, "status is one of initializing, pending, active, moved")
            } else {
                let now = shared.now();
                match shared
                    .store
                    .write(now, move |tx| {
                        super::cloudflare::set_zone_status(tx, &name, &status)
                    })
                    .await
                {
                    Ok(true) => Reply::json(200, json!({"ok": true})),
                    Ok(false) => error(404, "no such zone"),
                    Err(e) => error(500, e.to_string()),
                }
            }
        }
        (&Method::GET, "registry/token") => {
            registry::token(&coolify::parse_query(parts.uri.query()))
        }
        (&Method::POST, "registry/push") | (&Method::PUT, "registry/repository") => {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let pushing = parts.method == Method::POST;
            let now = shared.now();
            let done = shared
                .store
                .write(now, move |tx| {
                    if pushing {
                        registry::push(tx, &body)
                    } else {
                        registry::set_repository(tx, &body)
                    }
                })
                .await;
            done.unwrap_or_else(|e| error(500, e.to_string()))
        }
        _ => error(404, "no such admin endpoint"),
    };
    reply.into_response()
}

/// Applies a partial JSON object to the switches.
fn merge_settings(current: Settings, patch: &[u8]) -> Result<Settings, String> {
    let patch: Value = serde_json::from_slice(patch).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(patch) = patch else {
        return Err("expected a JSON object".to_owned());
    };
    let mut merged = match serde_json::to_value(current) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    merged.extend(patch);
    serde_json::from_value(Value::Object(merged)).map_err(|e| format!("invalid settings: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_merge_partially_and_reject_unknown_keys() {
        let merged =
            merge_settings(Settings::default(), br#"{"coolify_api_enabled": false}"#).unwrap();
        assert!(!merged.coolify_api_enabled);
        assert!(merged.coolify_ip_allowed);
        assert!(merge_settings(Settings::default(), br#"{"nope": 1}"#).is_err());
        assert!(merge_settings(Settings::default(), b"[]").is_err());
    }
}
