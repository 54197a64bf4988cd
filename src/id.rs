//! Identifiers and digests that cross module boundaries.
//!
//! Each is a newtype so that a run id can never be passed where a deployment
//! name is expected, and so that validation happens once, at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The name of a deployment: the key of its stream in the journal.
///
/// Lower-case letters, digits and inner hyphens, 1 to 63 characters (a DNS
/// label), so it fits every remote marker (Coolify tags are lower-cased, a
/// Cloudflare comment is short) without escaping. A deployment of a spec's
/// environment is `name@environment` (`web@staging`), the environment
/// following the same rule in at most [`MAX_ENVIRONMENT`] characters:
/// each environment has a stream, a lock and a history of its own.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DeploymentId(String);

/// Why a deployment name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid deployment name {name:?}: {reason}")]
pub struct InvalidDeploymentId {
    /// The refused name.
    pub name: String,
    /// What rule it broke.
    pub reason: &'static str,
}

/// The longest environment name.
pub const MAX_ENVIRONMENT: usize = 20;

/// Why `label` breaks the naming rule of names and environments.
fn label_problem(
    label: &str,
    max: usize,
    what: &'static [&'static str; 2],
) -> Option<&'static str> {
    if label.is_empty() {
        Some(what[0])
    } else if label.len() > max {
        Some(what[1])
    } else if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("use lower-case letters, digits and hyphens only")
    } else if label.starts_with('-') || label.ends_with('-') {
        Some("it may not start or end with a hyphen")
    } else {
        None
    }
}

/// Why `env` is not a valid environment name, if it is not.
pub fn environment_problem(env: &str) -> Option<&'static str> {
    label_problem(
        env,
        MAX_ENVIRONMENT,
        &[
            "the environment is empty",
            "the environment is longer than 20 characters",
        ],
    )
}

impl DeploymentId {
    /// Checks `name` against the naming rule (`name` or
    /// `name@environment`).
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidDeploymentId> {
        let name = name.into();
        let (base, env) = match name.split_once('@') {
            Some((b, e)) => (b, Some(e)),
            None => (name.as_str(), None),
        };
        let reason = label_problem(
            base,
            63,
            &["it is empty", "it is longer than 63 characters"],
        )
        .or_else(|| env.and_then(environment_problem));
        match reason {
            Some(reason) => Err(InvalidDeploymentId { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The deployment's name without its environment.
    pub fn base(&self) -> &str {
        self.0.split_once('@').map_or(self.0.as_str(), |(b, _)| b)
    }

    /// The environment, for a deployment of one.
    pub fn environment(&self) -> Option<&str> {
        self.0.split_once('@').map(|(_, e)| e)
    }

    /// The deployment of this name in `environment` (`web` in `staging`:
    /// `web@staging`).
    pub fn in_environment(&self, environment: &str) -> Result<Self, InvalidDeploymentId> {
        Self::new(format!("{}@{environment}", self.base()))
    }
}

impl TryFrom<String> for DeploymentId {
    type Error = InvalidDeploymentId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<DeploymentId> for String {
    fn from(value: DeploymentId) -> Self {
        value.0
    }
}

impl FromStr for DeploymentId {
    type Err = InvalidDeploymentId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of one run (one invocation of apply, destroy, rollback, ...).
///
/// A ULID in lower case: sortable by creation time, 26 characters, and never
/// confusable with a deployment name because it is exactly 26 base-32 digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

/// Why a run id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid run id {0:?}: expected 26 base-32 characters")]
pub struct InvalidRunId(pub String);

impl RunId {
    /// Builds a run id from 128 bits (time-ordered bits come from the caller,
    /// which owns the clock and the randomness).
    pub fn from_u128(bits: u128) -> Self {
        Self(ulid::Ulid(bits).to_string().to_ascii_lowercase())
    }

    /// A fresh id from the wall clock and the OS random source. Only the
    /// effectful shell calls this; the core receives ids as data.
    pub fn generate() -> Self {
        Self(ulid::Ulid::generate().to_string().to_ascii_lowercase())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the id was made (its first 48 bits are milliseconds since the
    /// Unix epoch).
    pub fn timestamp(&self) -> Option<jiff::Timestamp> {
        let ulid = ulid::Ulid::from_string(&self.0).ok()?;
        jiff::Timestamp::from_millisecond(i64::try_from(ulid.timestamp_ms()).ok()?).ok()
    }

    /// Whether `s` has the shape of a run id (used to tell `RUN_ID|DEPLOYMENT`
    /// arguments apart).
    pub fn looks_like(s: &str) -> bool {
        // 26 Crockford base-32 digits (no i, l, o, u), the first at most 7
        // so the value fits in 128 bits; either case.
        let b = s.as_bytes();
        b.len() == 26
            && matches!(b[0], b'0'..=b'7')
            && b.iter().all(|c| {
                let c = c.to_ascii_lowercase();
                c.is_ascii_digit()
                    || (c.is_ascii_lowercase() && !matches!(c, b'i' | b'l' | b'o' | b'u'))
            })
    }
}

impl TryFrom<String> for RunId {
    type Error = InvalidRunId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if Self::looks_like(&value) {
            let mut value = value;
            value.make_ascii_lowercase();
            Ok(Self(value))
        } else {
            Err(InvalidRunId(value))
        }
    }
}

impl From<RunId> for String {
    fn from(value: RunId) -> Self {
        value.0
    }
}

impl FromStr for RunId {
    type Err = InvalidRunId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_owned())
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Global position of an event in the journal, starting at 1.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Number of events in one deployment's stream; the version an append
/// expects to extend.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct StreamVersion(pub u64);

impl fmt::Display for StreamVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A 32-byte blake3 digest, shown and serialised as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

/// Why a digest could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {0:?}: expected 64 hex digits")]
pub struct InvalidDigest(pub String);

impl Digest {
    /// The all-zero digest that precedes the first event of the chain.
    pub const GENESIS: Digest = Digest([0; 32]);

    /// blake3 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
        out
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, InvalidDigest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| InvalidDigest(s.to_owned()))?;
        Ok(Self(out))
    }

    /// The first 12 hex digits, for people.
    pub fn short(&self) -> String {
        let mut s = self.to_hex();
        s.truncate(12);
        s
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// The identity of a journal: 32 lowercase hex digits, made at random once
/// with the journal and kept in its metadata.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JournalId(String);

impl JournalId {
    /// Reads a stored id: 8 to 64 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        ((8..=64).contains(&t.len()) && t.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(t.to_owned()))
    }

    /// A new random id (the in-memory journal's).
    pub fn random() -> Self {
        Self(hex::encode(rand::random::<[u8; 16]>()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its first 8 digits: the form the ownership mark carries (the mark
    /// must fit a Cloudflare comment of 100 characters).
    pub fn tag(&self) -> JournalTag {
        JournalTag(self.0[..8].to_owned())
    }
}

impl std::fmt::Display for JournalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The short form of a [`JournalId`] in ownership marks: 8 lowercase hex
/// digits.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct JournalTag(String);

impl JournalTag {
    /// Reads a tag: exactly 8 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        (text.len() == 8 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(text.to_owned()))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for JournalTag {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s).ok_or_else(|| format!("{s:?} is not a journal tag"))
    }
}

impl From<JournalTag> for String {
    fn from(t: JournalTag) -> Self {
        t.0
    }
}

impl std::fmt::Display for JournalTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The digest of an image manifest, as a registry names it:
/// `sha256:` and 64 lower-case hex digits (the OCI image spec's
/// `descriptor.md#digests`; sha256 is the algorithm every registry uses).
/// Not a [`Digest`]: another algorithm, computed by someone else.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageDigest(String);

impl ImageDigest {
    /// Reads `sha256:<64 hex digits>` (hex digits in either case, kept in
    /// lower case).
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(format!("sha256:{}", hex.to_ascii_lowercase())))
    }

    /// The digest of `bytes` (a manifest as served).
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(bytes))
        ))
    }

    /// The whole digest, `sha256:…`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits.
    pub fn hex(&self) -> &str {
        self.0.trim_start_matches("sha256:")
    }
}

impl TryFrom<String> for ImageDigest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
            .ok_or_else(|| format!("{s:?} is not an image digest (sha256:<64 hex digits>)"))
    }
}

impl From<ImageDigest> for String {
    fn from(d: ImageDigest) -> Self {
        d.0
    }
}

impl fmt::Display for ImageDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An image reference read the way registries read it:
/// `[registry/]repository[:tag][@sha256:digest]`. A first component with a
/// `.` or a `:`, or `localhost`, names the registry; any other name is on
/// Docker Hub (`docker.io`), where a one-component name lives under
/// `library/` (`nginx` is `docker.io/library/nginx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host (and port): `ghcr.io`, `docker.io`,
    /// `localhost:5000`.
    pub registry: String,
    /// The repository within it: `acme/web`, `library/nginx`.
    pub repository: String,
    /// The tag, when one is written.
    pub tag: Option<String>,
    /// The digest, when one is written.
    pub digest: Option<ImageDigest>,
}

impl ImageRef {
    /// Reads a reference; `None` when it is not one (the spec's rules say
    /// why, `spec::rules::app::check_image`).
    pub fn parse(image: &str) -> Option<Self> {
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, Some(ImageDigest::parse(digest)?)),
            None => (image, None),
        };
        let slash = name.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match name[slash..].rfind(':') {
            Some(i) => (&name[..slash + i], Some(name[slash + i + 1..].to_owned())),
            None => (name, None),
        };
        let (registry, repository) = match path.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_ascii_lowercase(), rest.to_owned())
            }
            _ => ("docker.io".to_owned(), path.to_owned()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
            _ => registry,
        };
        let repository = if registry == "docker.io" && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let component = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.as_bytes()[0].is_ascii_alphanumeric()
                && c.as_bytes()[c.len() - 1].is_ascii_alphanumeric()
        };
        // The distribution spec's `<reference>` tag grammar:
        // `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
        let tag_ok = |t: &str| {
            (1..=128).contains(&t.len())
                && (t.as_bytes()[0].is_ascii_alphanumeric() || t.starts_with('_'))
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        (repository.split('/').all(component) && tag.as_deref().is_none_or(tag_ok)).then_some(
            Self {
                registry,
                repository,
                tag,
                digest,
            },
        )
    }

    /// `registry/repository`: one name for the image however it is written
    /// (`nginx` and `docker.io/library/nginx` are the same).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag, `latest` when none is written (as `docker pull` reads it).
    pub fn tag_or_latest(&self) -> &str {
        self.tag.as_deref().unwrap_or("latest")
    }

    /// The host the registry's API answers on (`registry-1.docker.io`
    /// for Docker Hub).
    pub fn api_host(&self) -> &str {
        match self.registry.as_str() {
            "docker.io" => "registry-1.docker.io",
            other => other,
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_names_follow_the_dns_label_rule() {
        assert!(DeploymentId::new("blog").is_ok());
        assert!(DeploymentId::new("blog-2").is_ok());
        assert!(DeploymentId::new("").is_err());
        assert!(DeploymentId::new("Blog").is_err());
        assert!(DeploymentId::new("-blog").is_err());
        assert!(DeploymentId::new("blog_x").is_err());
        assert!(DeploymentId::new("a".repeat(64)).is_err());
    }

    #[test]
    fn a_deployment_of_an_environment_is_name_at_environment() {
        let d = DeploymentId::new("web@staging").unwrap();
        assert_eq!((d.base(), d.environment()), ("web", Some("staging")));
        let plain = DeploymentId::new("web").unwrap();
        assert_eq!((plain.base(), plain.environment()), ("web", None));
        assert_eq!(plain.in_environment("prod").unwrap().as_str(), "web@prod");
        assert_eq!(d.in_environment("prod").unwrap().as_str(), "web@prod");
        for bad in ["web@", "@staging", "web@Staging", "web@a@b", "web@-x"] {
            assert!(DeploymentId::new(bad).is_err(), "{bad}");
        }
        assert!(DeploymentId::new(format!("web@{}", "e".repeat(21))).is_err());
        assert!(DeploymentId::new(format!("web@{}", "e".repeat(20))).is_ok());
    }

    #[test]
    fn run_ids_are_recognised_and_not_confused_with_names() {
        let run = RunId::generate();
        assert!(RunId::looks_like(run.as_str()));
        assert!(!RunId::looks_like("blog"));
        assert_eq!(run.as_str().parse::<RunId>().as_ref(), Ok(&run));
    }

    #[test]
    fn digest_round_trips_through_hex_and_serde() {
        let d = Digest::of(b"fabrik");
        assert_eq!(Digest::from_hex(&d.to_hex()), Ok(d));
        let json = serde_json::to_string(&d).unwrap_or_default();
        let back: Digest = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, d);
        assert!(Digest::from_hex("zz").is_err());
    }

    #[test]
    fn image_digests_are_sha256_and_64_hex_digits() {
        let d = ImageDigest::of(b"{}");
        assert_eq!(
            d.as_str(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(d.hex().len(), 64);
        let upper = format!("sha256:{}", d.hex().to_ascii_uppercase());
        assert_eq!(ImageDigest::parse(&upper), Some(d.clone()));
        for bad in ["sha256:abc", "sha512:00", d.hex(), "sha256:"] {
            assert_eq!(ImageDigest::parse(bad), None, "{bad}");
        }
        let json = serde_json::to_string(&d).unwrap_or_default();
        assert_eq!(serde_json::from_str::<ImageDigest>(&json).ok(), Some(d));
    }

    #[test]
    fn image_references_name_their_registry() {
        let read = |s: &str| {
            let r = ImageRef::parse(s).unwrap_or_else(|| panic!("{s} is a reference"));
            (r.name(), r.tag.clone(), r.api_host().to_owned())
        };
        let hub = |name: &str, tag: Option<&str>| {
            (
                name.to_owned(),
                tag.map(str::to_owned),
                "registry-1.docker.io".to_owned(),
            )
        };
        assert_eq!(read("nginx"), hub("docker.io/library/nginx", None));
        assert_eq!(
            read("nginx:1.27"),
            hub("docker.io/library/nginx", Some("1.27"))
        );
        assert_eq!(
            read("traefik/whoami:v1.10"),
            hub("docker.io/traefik/whoami", Some("v1.10"))
        );
        assert_eq!(
            read("index.docker.io/library/nginx:1"),
            hub("docker.io/library/nginx", Some("1"))
        );
        assert_eq!(
            read("ghcr.io/acme/web:1.4.2"),
            (
                "ghcr.io/acme/web".to_owned(),
                Some("1.4.2".to_owned()),
                "ghcr.io".to_owned()
            )
        );
        assert_eq!(
            read("localhost:5000/web").0,
            "localhost:5000/web".to_owned()
        );
        let hex = "a".repeat(64);
        let pinned = ImageRef::parse(&format!("ghcr.io/acme/web:1.4@sha256:{hex}")).unwrap();
        assert_eq!(pinned.digest.map(|d| d.hex().to_owned()), Some(hex));
        assert_eq!(pinned.tag.as_deref(), Some("1.4"));
        for bad in [
            "Nginx",
            "nginx:",
            "ghcr.io/acme/web@sha256:abc",
            "a//b",
            "-x",
        ] {
            assert_eq!(ImageRef::parse(bad), None, "{bad}");
        }
    }
}
