//! The ownership mark Fabrik leaves on every remote resource it creates.
//!
//! `resume` uses it to tell whether an intent whose outcome was lost reached
//! the remote side, and `gc` uses it to find resources no deployment owns.
//! Each provider renders the same mark in the place its service offers
//! (a Coolify tag and description, a Cloudflare record comment, an Uptime
//! Kuma tag value and description); [`OwnershipMark::parse`] reads any of
//! those renderings back.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{DeploymentId, RunId};

/// The tag every Fabrik-owned remote resource carries, where tags exist.
pub const OWNER_TAG: &str = "fabrik";

/// Prefix of the textual mark.
const PREFIX: &str = "managed-by=fabrik";

/// Which deployment (and which run) created a remote resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OwnershipMark {
    /// The owning deployment.
    pub deployment: DeploymentId,
    /// The run that created the resource.
    pub run: RunId,
}

impl OwnershipMark {
    /// A mark for a resource created by `run` of `deployment`.
    pub fn new(deployment: DeploymentId, run: RunId) -> Self {
        Self { deployment, run }
    }

    /// The text form: `managed-by=fabrik deployment=<name> run=<run-id>`.
    ///
    /// 68 to 130 characters at most for the longest deployment names; short
    /// enough for a Cloudflare comment on a free zone (100 characters) for any
    /// name up to 35 characters, see [`OwnershipMark::to_compact`].
    pub fn to_text(&self) -> String {
        format!("{PREFIX} deployment={} run={}", self.deployment, self.run)
    }

    /// A compact form for places with tight length limits (at most 99
    /// characters): `fabrik:<deployment>:<run>`.
    pub fn to_compact(&self) -> String {
        format!("{OWNER_TAG}:{}:{}", self.deployment, self.run)
    }

    /// The per-deployment tag (`fabrik-<deployment>`), lower-case as Coolify
    /// stores tags, used to list one deployment's resources.
    pub fn deployment_tag(&self) -> String {
        deployment_tag(&self.deployment)
    }

    /// Reads a mark back from any text that contains either rendering.
    /// Returns `None` for text Fabrik did not write.
    pub fn parse(text: &str) -> Option<Self> {
        if let Some(at) = text.find(PREFIX) {
            let rest = &text[at + PREFIX.len()..];
            let mut deployment = None;
            let mut run = None;
            for word in rest.split_whitespace() {
                if let Some(v) = word.strip_prefix("deployment=") {
                    deployment = DeploymentId::new(v.trim_end_matches([';', ','])).ok();
                } else if let Some(v) = word.strip_prefix("run=") {
                    run = v.trim_end_matches([';', ',']).parse::<RunId>().ok();
                }
            }
            return Some(Self {
                deployment: deployment?,
                run: run?,
            });
        }
        for word in text.split_whitespace() {
            if let Some(rest) = word.strip_prefix("fabrik:") {
                let (deployment, run) = rest.rsplit_once(':')?;
                return Some(Self {
                    deployment: DeploymentId::new(deployment).ok()?,
                    run: run.parse().ok()?,
                });
            }
        }
        None
    }
}

/// The tag naming one deployment (`fabrik-<deployment>`).
pub fn deployment_tag(deployment: &DeploymentId) -> String {
    format!("{OWNER_TAG}-{deployment}")
}

impl fmt::Display for OwnershipMark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> OwnershipMark {
        OwnershipMark::new(
            DeploymentId::new("blog").unwrap(),
            "01jdx3v5q6m7n8p9r0s1t2v3w4".parse().unwrap(),
        )
    }

    #[test]
    fn both_renderings_parse_back() {
        let m = mark();
        assert_eq!(OwnershipMark::parse(&m.to_text()), Some(m.clone()));
        assert_eq!(OwnershipMark::parse(&m.to_compact()), Some(m.clone()));
        let embedded = format!("Blog app. {}", m.to_text());
        assert_eq!(OwnershipMark::parse(&embedded), Some(m));
    }

    #[test]
    fn foreign_text_is_not_a_mark() {
        assert_eq!(OwnershipMark::parse("managed by hand"), None);
        assert_eq!(
            OwnershipMark::parse("managed-by=fabrik deployment=Blog"),
            None
        );
        assert_eq!(OwnershipMark::parse("fabrik:blog:not-a-run"), None);
    }

    #[test]
    fn compact_form_fits_a_free_zone_comment() {
        let m = OwnershipMark::new(
            DeploymentId::new("a".repeat(63)).unwrap(),
            RunId::generate(),
        );
        assert!(m.to_compact().len() < 100);
    }
}
