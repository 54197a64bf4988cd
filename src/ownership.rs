//! The ownership mark Fabrik leaves on every remote resource it creates.
//!
//! `resume` uses it to tell whether an intent whose outcome was lost reached
//! the remote side, and `gc` uses it to find resources no deployment owns.
//! Each provider renders the same mark in the place its service offers
//! (a Coolify tag and description, a Cloudflare record comment, an Uptime
//! Kuma description); [`OwnershipMark::parse`] reads any of those
//! renderings back.
//!
//! A mark names the deployment, the run that created the resource and,
//! since journals have an identity, the journal (its [`JournalTag`]): two
//! journals of one deployment (a laptop and CI) tell their resources
//! apart. A mark without a journal was written by a Fabrik that had none:
//! it belongs to the deployment, but which journal made it cannot be told;
//! a journal takes it for its own only when it has journaled that very
//! resource (by its remote id), never by the mark alone.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{DeploymentId, JournalTag, RunId};

/// The tag every Fabrik-owned remote resource carries, where tags exist.
pub const OWNER_TAG: &str = "fabrik";

/// The longest deployment name whose compact mark fits a Cloudflare
/// comment on a free zone (100 characters): `fabrik:` + name + `:` + run
/// (26) + `:` + journal (8).
pub const MAX_COMPACT_DEPLOYMENT: usize = 100 - 43;

/// Prefix of the textual mark.
const PREFIX: &str = "managed-by=fabrik";

/// Which deployment (and which run) created a remote resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OwnershipMark {
    /// The owning deployment.
    pub deployment: DeploymentId,
    /// The run that created the resource.
    pub run: RunId,
    /// The journal that run was journaled in (`None`: written before
    /// journals had an identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalTag>,
}

impl OwnershipMark {
    /// A mark for a resource created by `run` of `deployment`.
    pub fn new(deployment: DeploymentId, run: RunId) -> Self {
        Self {
            deployment,
            run,
            journal: None,
        }
    }

    /// The same mark, naming the journal too.
    pub fn in_journal(mut self, journal: JournalTag) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Whether this mark was written from `journal` of `deployment` (any
    /// run). A mark without a journal never is (see the module
    /// documentation).
    pub fn is_of(&self, deployment: &DeploymentId, journal: Option<&JournalTag>) -> bool {
        &self.deployment == deployment && self.journal.is_some() && self.journal.as_ref() == journal
    }

    /// Who wrote this mark, for messages: `deployment web (journal
    /// 1a2b3c4d)`.
    pub fn owner(&self) -> String {
        match &self.journal {
            Some(j) => format!("deployment {} (journal {j})", self.deployment),
            None => format!(
                "deployment {} (written by a fabrik without journal ids)",
                self.deployment
            ),
        }
    }

    /// The text form: `managed-by=fabrik deployment=<name> run=<run-id>
    /// journal=<tag>`.
    pub fn to_text(&self) -> String {
        let mut t = format!("{PREFIX} deployment={} run={}", self.deployment, self.run);
        if let Some(j) = &self.journal {
            t.push_str(&format!(" journal={j}"));
        }
        t
    }

    /// A compact form for places with tight length limits:
    /// `fabrik:<deployment>:<run>:<journal>`, at most `43 + len(deployment)`
    /// characters (100 for the longest name a spec with DNS records may
    /// have, [`MAX_COMPACT_DEPLOYMENT`]).
    pub fn to_compact(&self) -> String {
        let mut t = format!("{OWNER_TAG}:{}:{}", self.deployment, self.run);
        if let Some(j) = &self.journal {
            t.push(':');
            t.push_str(j.as_str());
        }
        t
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
            let mut journal = None;
            for word in rest.split_whitespace() {
                let word = word.trim_end_matches([';', ',']);
                if let Some(v) = word.strip_prefix("deployment=") {
                    deployment = DeploymentId::new(v).ok();
                } else if let Some(v) = word.strip_prefix("run=") {
                    run = v.parse::<RunId>().ok();
                } else if let Some(v) = word.strip_prefix("journal=") {
                    journal = JournalTag::parse(v);
                }
            }
            return Some(Self {
                deployment: deployment?,
                run: run?,
                journal,
            });
        }
        for word in text.split_whitespace() {
            if let Some(rest) = word.strip_prefix("fabrik:") {
                let mut parts = rest.split(':');
                let deployment = DeploymentId::new(parts.next()?).ok()?;
                let run = parts.next()?.parse().ok()?;
                let journal = match parts.next() {
                    Some(j) => Some(JournalTag::parse(j)?),
                    None => None,
                };
                if parts.next().is_some() {
                    return None;
                }
                return Some(Self {
                    deployment,
                    run,
                    journal,
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
            DeploymentId::new("a".repeat(MAX_COMPACT_DEPLOYMENT)).unwrap(),
            RunId::generate(),
        )
        .in_journal(JournalTag::parse("1a2b3c4d").unwrap());
        assert_eq!(m.to_compact().len(), 100);
        assert_eq!(OwnershipMark::parse(&m.to_compact()), Some(m));
    }

    #[test]
    fn marks_name_their_journal_and_old_marks_still_parse() {
        let j = JournalTag::parse("1a2b3c4d").unwrap();
        let m = mark().in_journal(j.clone());
        assert_eq!(OwnershipMark::parse(&m.to_text()), Some(m.clone()));
        assert_eq!(OwnershipMark::parse(&m.to_compact()), Some(m.clone()));
        assert!(m.is_of(&m.deployment, Some(&j)));
        let other = JournalTag::parse("ffffffff").unwrap();
        assert!(!m.is_of(&m.deployment, Some(&other)));
        // A mark from before journal ids: the deployment's, no journal's.
        let old = OwnershipMark::parse("fabrik:blog:01jdx3v5q6m7n8p9r0s1t2v3w4").unwrap();
        assert_eq!(old.journal, None);
        assert!(!old.is_of(&old.deployment, Some(&j)));
        assert!(OwnershipMark::parse("fabrik:blog:01jdx3v5q6m7n8p9r0s1t2v3w4:NOTHEX12").is_none());
    }
}
