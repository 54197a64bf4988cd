//! [`Images`] on the OCI distribution API: the digest of the manifest an
//! image tag names, read anonymously.
//!
//! - `HEAD /v2/<name>/manifests/<tag>` answers `200` with the manifest's
//!   digest in `Docker-Content-Digest` (opencontainers/distribution-spec
//!   `spec.md:198-213` "Checking if content exists in the registry", the
//!   endpoint `end-3` of `spec.md:843`, @967efdc). The `Accept` header
//!   names the four manifest types a tag may name (`spec.md:166`,
//!   `content-negotiation.md`): without the two index types a registry
//!   answers for a multi-platform image with the digest of one platform's
//!   manifest, or converts it.
//! - A registry that wants a token answers `401` with
//!   `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`; a `GET`
//!   of the realm with `service` and `scope` gives an anonymous token for
//!   a public image, sent back as `Authorization: Bearer` (the registry
//!   token authentication spec,
//!   <https://distribution.github.io/distribution/spec/auth/token/>,
//!   "Requesting a Token" and "Using the Bearer token").
//! - A registry of an earlier spec version may leave the header out
//!   (`spec.md:210-211`): the manifest is then read with `GET` and its
//!   sha256 computed.
//!
//! Private images are out of reach (no registry credentials are read):
//! their lookup fails naming the image.

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderValue};

use super::Images;
use super::error::{ErrorKind, ProviderError, ProviderName};
use super::http::{self, Failure, Http, HttpConfig, Request, Response};
use crate::id::{ImageDigest, ImageRef};
use crate::secret::{Scrubber, SecretValue};

const P: ProviderName = ProviderName::Registry;

/// The manifest types a tag may name: OCI index, Docker manifest list,
/// OCI manifest, Docker v2 manifest.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Where registries are reached.
#[derive(Debug, Clone, Default)]
pub struct OciConfig {
    /// Every registry at this base URL instead of at its own host (the
    /// sandbox): the registry's host becomes the first component of the
    /// repository's path (`/v2/ghcr.io/acme/web/manifests/1.4`).
    pub route: Option<String>,
}

/// The image registries' client.
#[derive(Debug, Clone)]
pub struct OciClient {
    config: OciConfig,
    http: HttpConfig,
}

impl OciClient {
    /// A client; `http` carries the timeouts and retry policy.
    pub fn new(config: OciConfig, http: HttpConfig) -> Self {
        Self { config, http }
    }

    /// The HTTP client of `image`'s registry and the path of its manifest.
    fn manifest_of(&self, image: &ImageRef) -> Result<(Http, Vec<String>), ProviderError> {
        let (base, mut segments) = match &self.config.route {
            Some(route) => (
                route.clone(),
                vec!["v2".to_owned(), image.api_host().to_owned()],
            ),
            None => (origin(image.api_host()), vec!["v2".to_owned()]),
        };
        segments.extend(image.repository.split('/').map(str::to_owned));
        segments.push("manifests".to_owned());
        segments.push(image.tag_or_latest().to_owned());
        Ok((
            Http::new(P, &base, None, self.http.clone(), classify)?,
            segments,
        ))
    }

    /// An anonymous token for the scope a challenge names.
    async fn token(
        &self,
        challenge: &Challenge,
        image: &ImageRef,
    ) -> Result<SecretValue, ProviderError> {
        let http = Http::new(P, &challenge.realm, None, self.http.clone(), classify)?;
        let mut req = Request::new(Method::GET, operation(image), &[]);
        for (key, value) in [("service", &challenge.service), ("scope", &challenge.scope)] {
            if let Some(v) = value {
                req = req.query(key, v.clone());
            }
        }
        let resp = http.send(&req).await.map_err(|e| match e.kind {
            ErrorKind::Unauthorized | ErrorKind::Forbidden(_) => private(image, e),
            _ => e,
        })?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let t: Token = resp.json(&http, &req)?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .map(SecretValue::new)
            .ok_or_else(|| {
                http.error(
                    &req,
                    ErrorKind::MalformedResponse,
                    Some(resp.status.as_u16()),
                )
                .with_message("the token answer holds no token")
            })
    }
}

/// `https://HOST`, or `http://` for a registry on this machine (as
/// Docker treats `localhost` registries).
fn origin(host: &str) -> String {
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let local = name == "localhost"
        || name
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    format!("{}://{host}", if local { "http" } else { "https" })
}

fn operation(image: &ImageRef) -> String {
    format!("read manifest of {image}")
}

/// The manifest request, with the token when there is one.
fn manifest_request(
    method: Method,
    image: &ImageRef,
    segments: &[String],
    token: Option<&SecretValue>,
) -> Request {
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let mut req = Request::new(method, operation(image), &segments);
    req.accept = MANIFEST_TYPES;
    req.pass = &[401];
    if let Some(t) = token
        && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", t.expose()))
    {
        value.set_sensitive(true);
        req.headers.push((reqwest::header::AUTHORIZATION, value));
        req.secrets = Scrubber::with([t]);
    }
    req
}

#[async_trait]
impl Images for OciClient {
    async fn digest(&self, image: &ImageRef) -> Result<ImageDigest, ProviderError> {
        if let Some(d) = &image.digest {
            return Ok(d.clone());
        }
        let (http, segments) = self.manifest_of(image)?;
        let named = |e: ProviderError| match e.kind {
            ErrorKind::Forbidden(_) => private(image, e),
            ErrorKind::NotFound => {
                let message = format!(
                    "{} has no tag {} (or is private): {}",
                    image.name(),
                    image.tag_or_latest(),
                    e.message
                );
                e.with_message(message).with_hint(
                    "push the image before deploying it, or correct `app.image` in the spec",
                )
            }
            _ => e,
        };
        let mut token = None;
        let mut resp = http
            .send(&manifest_request(Method::HEAD, image, &segments, None))
            .await
            .map_err(named)?;
        if resp.status.as_u16() == 401 {
            let Some(challenge) = Challenge::of(&resp.headers) else {
                let e = ProviderError::new(P, operation(image), ErrorKind::Unauthorized);
                return Err(private(image, e));
            };
            let t = self.token(&challenge, image).await?;
            resp = http
                .send(&manifest_request(Method::HEAD, image, &segments, Some(&t)))
                .await
                .map_err(named)?;
            token = Some(t);
        }
        refuse_unauthorized(&resp, image)?;
        if let Some(d) = header_digest(&resp.headers) {
            return Ok(d);
        }
        let resp = http
            .send(&manifest_request(
                Method::GET,
                image,
                &segments,
                token.as_ref(),
            ))
            .await
            .map_err(named)?;
        refuse_unauthorized(&resp, image)?;
        Ok(header_digest(&resp.headers).unwrap_or_else(|| ImageDigest::of(&resp.body)))
    }
}

/// A 401 that a token did not end: the image is not readable anonymously.
fn refuse_unauthorized(resp: &Response, image: &ImageRef) -> Result<(), ProviderError> {
    if resp.status.as_u16() != 401 {
        return Ok(());
    }
    let mut e = ProviderError::new(P, operation(image), ErrorKind::Unauthorized);
    e.status = Some(401);
    Err(private(image, e))
}

/// The error for an image that cannot be read without credentials.
fn private(image: &ImageRef, e: ProviderError) -> ProviderError {
    let message = format!(
        "{image} cannot be read without credentials: a private image, or one that does not exist"
    );
    e.with_message(message).with_hint(
        "fabrik reads public images only: the deployment goes on (Coolify pulls with its own registry credentials), but its digest is unknown and the run cannot be promoted",
    )
}

fn header_digest(headers: &HeaderMap) -> Option<ImageDigest> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| ImageDigest::parse(v.trim()))
}

/// A `WWW-Authenticate: Bearer` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    realm: String,
    service: Option<String>,
    scope: Option<String>,
}

impl Challenge {
    /// The Bearer challenge of a 401, if it has one with a realm.
    fn of(headers: &HeaderMap) -> Option<Self> {
        headers
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(Self::parse)
    }

    /// `Bearer realm="…",service="…",scope="…"` (values quoted or not; a
    /// quoted value may hold commas, as a scope of several actions does).
    fn parse(text: &str) -> Option<Self> {
        let (scheme, rest) = text.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut params = std::collections::BTreeMap::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
                chars.next();
            }
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if key.is_empty() {
                break;
            }
            let mut value = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        '"' => break,
                        c => value.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.peek().copied().filter(|c| *c != ',') {
                    value.push(c);
                    chars.next();
                }
            }
            params.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
        Some(Self {
            realm: params.remove("realm").filter(|r| !r.is_empty())?,
            service: params.remove("service"),
            scope: params.remove("scope"),
        })
    }
}

/// A registry's error answer: `{"errors": [{"code", "message"}]}`
/// (`spec.md`, "Error Codes").
fn classify(resp: &Response, scrubber: &Scrubber) -> Failure {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<One>,
    }
    #[derive(serde::Deserialize)]
    struct One {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let first = serde_json::from_slice::<Body>(&resp.body)
        .ok()
        .and_then(|b| b.errors.into_iter().next());
    let message = match &first {
        Some(e) => scrubber.scrub(&crate::text::printable_line(&format!(
            "{} {}",
            e.code, e.message
        ))),
        None if resp.body.is_empty() => String::new(),
        None => http::excerpt(scrubber, &resp.body),
    };
    Failure {
        kind: http::kind_for_status(resp.status, &resp.headers),
        code: first.map(|e| e.code).filter(|c| !c.is_empty()),
        message: message.trim().to_owned(),
        hint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_are_read_with_their_quoted_commas() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.docker.io/token");
        assert_eq!(c.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            c.scope.as_deref(),
            Some("repository:library/nginx:pull,push")
        );
        let bare = Challenge::parse("bearer realm=https://r.example/t,service=r").unwrap();
        assert_eq!(
            (bare.realm.as_str(), bare.service.as_deref(), bare.scope),
            ("https://r.example/t", Some("r"), None)
        );
        assert_eq!(Challenge::parse(r#"Basic realm="registry""#), None);
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
    }

    #[test]
    fn registries_on_this_machine_are_plain_http() {
        assert_eq!(origin("ghcr.io"), "https://ghcr.io");
        assert_eq!(origin("localhost:5000"), "http://localhost:5000");
        assert_eq!(origin("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(
            origin("registry.example.com:443"),
            "https://registry.example.com:443"
        );
    }
}
