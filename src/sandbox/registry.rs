//! A container registry for every image name: the manifest endpoint of
//! the OCI distribution API, behind an anonymous token as Docker Hub and
//! GHCR keep theirs.
//!
//! Sandboxed runs send every registry here, its host as the first
//! component of the path: `HEAD /v2/ghcr.io/acme/web/manifests/1.4.2`.
//!
//! - Without a token it answers `401` with a `WWW-Authenticate: Bearer`
//!   challenge whose realm is `/_sandbox/registry/token` (the token
//!   authentication spec, distribution.github.io/distribution/spec/auth/token/);
//!   with the token of the repository's `pull` scope, the manifest.
//! - Every tag of every name exists. Its manifest is made from the name,
//!   the tag and how many times the tag was pushed
//!   (`POST /_sandbox/registry/push`): the same until the tag is pushed
//!   again. Its digest (`Docker-Content-Digest`, distribution-spec
//!   `spec.md:207`) is the sha256 of the manifest served by `GET`.
//! - A repository made private answers `401` whatever the token; one made
//!   unreachable drops the connection without an answer
//!   (`PUT /_sandbox/registry/repository`).

use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use rusqlite::{OptionalExtension as _, params};
use serde_json::{Value, json};

use super::conn::KillSwitch;
use super::reply::Reply;
use super::server::Shared;
use super::store::Tx;
use crate::id::{ImageDigest, ImageRef};

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The registry's error body (`spec.md`, "Error Codes").
fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        json!({"errors": [{"code": code, "message": message, "detail": null}]}),
    )
}

/// The anonymous token of a scope.
fn token_for(scope: &str) -> String {
    blake3::hash(format!("sandbox-registry-token\n{scope}").as_bytes()).to_hex()[..32].to_owned()
}

/// `GET /_sandbox/registry/token?service=…&scope=…`: an anonymous token.
pub(crate) fn token(query: &std::collections::HashMap<String, String>) -> Reply {
    let scope = query.get("scope").cloned().unwrap_or_default();
    let token = token_for(&scope);
    Reply::json(
        200,
        json!({"token": token, "access_token": token, "expires_in": 300}),
    )
}

/// How a repository of the sandbox registry behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Access {
    private: bool,
    reachable: bool,
}

fn access(tx: &Tx<'_>, name: &str) -> rusqlite::Result<Access> {
    Ok(tx
        .query_row(
            "SELECT private, reachable FROM registry_repositories WHERE name = ?1",
            params![name],
            |r| {
                Ok(Access {
                    private: r.get::<_, i64>(0)? != 0,
                    reachable: r.get::<_, i64>(1)? != 0,
                })
            },
        )
        .optional()?
        .unwrap_or(Access {
            private: false,
            reachable: true,
        }))
}

fn pushes(tx: &Tx<'_>, name: &str, tag: &str) -> rusqlite::Result<i64> {
    Ok(tx
        .query_row(
            "SELECT pushes FROM registry_tags WHERE repository = ?1 AND tag = ?2",
            params![name, tag],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(1))
}

/// The manifest of `name:tag` after its `push`th push, as served.
fn manifest(name: &str, tag: &str, push: i64) -> String {
    let config = ImageDigest::of(format!("{name}:{tag}#{push}").as_bytes());
    json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config,
            "size": 2,
        },
        "layers": [],
        "annotations": {
            "org.opencontainers.image.ref.name": tag,
            "org.fabrik.sandbox.push": push.to_string(),
        },
    })
    .to_string()
}

/// The digest `name:tag` names now.
fn digest_now(tx: &Tx<'_>, name: &str, tag: &str) -> rusqlite::Result<ImageDigest> {
    let push = pushes(tx, name, tag)?;
    Ok(ImageDigest::of(manifest(name, tag, push).as_bytes()))
}

/// The registry key of an image as the admin API names it (`nginx:1`,
/// `ghcr.io/acme/web`): the API host and repository a sandboxed run asks
/// for, and the tag.
fn key_of(image: &str) -> Option<(String, String)> {
    let r = ImageRef::parse(image)?;
    Some((
        format!("{}/{}", r.api_host(), r.repository),
        r.tag_or_latest().to_owned(),
    ))
}

/// `POST /_sandbox/registry/push` `{"image": "NAME:TAG"}`: the tag is
/// pushed again and names a new manifest.
pub(crate) fn push(tx: &Tx<'_>, body: &Value) -> rusqlite::Result<Reply> {
    let image = body["image"].as_str().unwrap_or_default();
    let Some((name, tag)) = key_of(image) else {
        return Ok(Reply::json(
            400,
            json!({"error": "image is a reference such as ghcr.io/acme/web:1.4.2"}),
        ));
    };
    let next = pushes(tx, &name, &tag)? + 1;
    tx.execute(
        "INSERT INTO registry_tags (repository, tag, pushes) VALUES (?1, ?2, ?3)
         ON CONFLICT (repository, tag) DO UPDATE SET pushes = excluded.pushes",
        params![name, tag, next],
    )?;
    let digest = digest_now(tx, &name, &tag)?;
    Ok(Reply::json(
        200,
        json!({"repository": name, "tag": tag, "pushes": next, "digest": digest}),
    ))
}

/// `PUT /_sandbox/registry/repository` `{"image": NAME, "private": bool,
/// "reachable": bool}` (either switch may be left out).
pub(crate) fn set_repository(tx: &Tx<'_>, body: &Value) -> rusqlite::Result<Reply> {
    let image = body["image"].as_str().unwrap_or_default();
    let Some((name, _)) = key_of(image) else {
        return Ok(Reply::json(
            400,
            json!({"error": "image is a reference such as ghcr.io/acme/web"}),
        ));
    };
    let now = access(tx, &name)?;
    let next = Access {
        private: body["private"].as_bool().unwrap_or(now.private),
        reachable: body["reachable"].as_bool().unwrap_or(now.reachable),
    };
    tx.execute(
        "INSERT INTO registry_repositories (name, private, reachable) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET private = excluded.private, reachable = excluded.reachable",
        params![name, i64::from(next.private), i64::from(next.reachable)],
    )?;
    Ok(Reply::json(
        200,
        json!({"repository": name, "private": next.private, "reachable": next.reachable}),
    ))
}

/// The registry in `fabrik sandbox dump`: the tags pushed and the
/// repositories switched, with what each tag names now.
pub(crate) fn dump(tx: &Tx<'_>) -> rusqlite::Result<Value> {
    let mut stmt =
        tx.prepare("SELECT repository, tag, pushes FROM registry_tags ORDER BY repository, tag")?;
    let tags: Vec<(String, String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for (repository, tag, pushes) in tags {
        let digest = digest_now(tx, &repository, &tag)?;
        out.push(json!({"repository": repository, "tag": tag, "pushes": pushes, "digest": digest}));
    }
    let mut stmt =
        tx.prepare("SELECT name, private, reachable FROM registry_repositories ORDER BY name")?;
    let repositories: Vec<Value> = stmt
        .query_map([], |r| {
            Ok(json!({
                "name": r.get::<_, String>(0)?,
                "private": r.get::<_, i64>(1)? != 0,
                "reachable": r.get::<_, i64>(2)? != 0,
            }))
        })?
        .collect::<Result<_, _>>()?;
    Ok(json!({"tags": out, "repositories": repositories}))
}

/// What a manifest request asks for.
enum Asked {
    /// `GET /v2/`: the API's base.
    Base,
    /// A manifest: the repository (host first) and the tag.
    Manifest { name: String, tag: String },
    /// Anything else.
    Unknown,
}

fn asked(path: &str) -> Asked {
    let rest = path.trim_start_matches("/v2").trim_matches('/');
    if rest.is_empty() {
        return Asked::Base;
    }
    match rest.rsplit_once("/manifests/") {
        Some((name, tag)) if !name.is_empty() && !tag.is_empty() && !tag.contains('/') => {
            Asked::Manifest {
                name: name.to_owned(),
                tag: tag.to_owned(),
            }
        }
        _ => Asked::Unknown,
    }
}

/// Entry point for everything under `/v2`.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return error(405, "UNSUPPORTED", "the sandbox registry only serves pulls").into_response();
    }
    let (name, tag) = match asked(req.uri().path()) {
        Asked::Base => return Reply::json(200, json!({})).into_response(),
        Asked::Unknown => {
            return error(404, "NAME_UNKNOWN", "repository name not known to registry")
                .into_response();
        }
        Asked::Manifest { name, tag } => (name, tag),
    };
    if ImageDigest::parse(&tag).is_some() {
        return error(
            404,
            "MANIFEST_UNKNOWN",
            "the sandbox registry serves tags only",
        )
        .into_response();
    }
    let scope = format!("repository:{name}:pull");
    let bearer = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let switch = req
        .extensions()
        .get::<ConnectInfo<KillSwitch>>()
        .map(|info| info.0.clone());
    let now = shared.now();
    let (lookup_name, lookup_tag) = (name.clone(), tag.clone());
    let found = shared
        .store
        .read(now, move |tx| {
            Ok((
                access(tx, &lookup_name)?,
                pushes(tx, &lookup_name, &lookup_tag)?,
            ))
        })
        .await;
    let (access, push) = match found {
        Ok(found) => found,
        Err(e) => return error(500, "UNKNOWN", &e.to_string()).into_response(),
    };
    if !access.reachable {
        // A registry that cannot be reached: the connection ends without
        // an answer.
        if let Some(switch) = switch {
            switch.cut();
        }
        return error(503, "UNAVAILABLE", "unreachable").into_response();
    }
    let challenge = format!(
        "Bearer realm=\"{}/_sandbox/registry/token\",service=\"fabrik-sandbox-registry\",scope=\"{scope}\"",
        shared.info.api_url
    );
    if access.private || bearer.as_deref() != Some(token_for(&scope).as_str()) {
        return error(401, "UNAUTHORIZED", "authentication required")
            .with_header("www-authenticate", challenge)
            .into_response();
    }
    let body = manifest(&name, &tag, push);
    let digest = ImageDigest::of(body.as_bytes());
    Reply::text(200, MANIFEST_TYPE, body)
        .with_header("docker-content-digest", digest.to_string())
        .into_response()
}
