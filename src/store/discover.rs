//! Where the journal is when `--state` / `FABRIK_STATE` do not say: found
//! the way git finds its directory.
//!
//! From a start directory (the spec's, for commands given a spec; the
//! current one otherwise), the nearest `.fabrik/state.db` upward, up to
//! and including the root of the git work tree the start directory is in.
//! Outside a git work tree only the start directory itself is looked at,
//! so that a journal left in `/tmp` or `/` is never picked up by accident.
//! When none is found, the journal goes in the start directory
//! (`.fabrik/state.db` there), created by the first run that writes.

use std::path::{Path, PathBuf};

/// The journal's directory name.
pub const DIR: &str = ".fabrik";

/// The journal file in [`DIR`].
pub const FILE: &str = "state.db";

/// Where the journal of `start` is, and whether it exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    /// The journal file.
    pub path: PathBuf,
    /// Whether it exists (otherwise it is where one would be created).
    pub found: bool,
}

/// The journal for work started in `start`.
pub fn journal_from(start: &Path) -> Discovered {
    let start = if start.as_os_str().is_empty() {
        Path::new(".")
    } else {
        start
    };
    let here = start.join(DIR).join(FILE);
    if here.is_file() {
        return Discovered {
            path: here,
            found: true,
        };
    }
    let absolute = std::fs::canonicalize(start).unwrap_or_else(|_| start.to_owned());
    if let Some(root) = work_tree_root(&absolute) {
        // Only directories inside the work tree: when the start is the
        // root itself, nothing above it is looked at.
        for dir in absolute
            .ancestors()
            .skip(1)
            .take_while(|d| d.starts_with(root))
        {
            let candidate = dir.join(DIR).join(FILE);
            if candidate.is_file() {
                return Discovered {
                    path: candidate,
                    found: true,
                };
            }
        }
    }
    Discovered {
        path: here,
        found: false,
    }
}

/// The root of the git work tree `dir` is in: the nearest ancestor (or
/// itself) holding `.git`.
pub fn work_tree_root(dir: &Path) -> Option<&Path> {
    dir.ancestors().find(|d| d.join(".git").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal_in(dir: &Path) {
        std::fs::create_dir_all(dir.join(DIR)).unwrap();
        std::fs::write(dir.join(DIR).join(FILE), b"").unwrap();
    }

    #[test]
    fn the_start_directory_comes_first_then_upward_to_the_work_tree_root() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        let app = repo.join("deploy/app");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        // Nothing anywhere: beside the start, to be created.
        let d = journal_from(&app);
        assert_eq!(d.path, app.join(".fabrik/state.db"));
        assert!(!d.found);
        // At the work tree's root: found from below.
        journal_in(&repo);
        let d = journal_from(&app);
        assert!(d.found);
        assert_eq!(
            std::fs::canonicalize(&d.path).unwrap(),
            std::fs::canonicalize(repo.join(".fabrik/state.db")).unwrap()
        );
        // Nearer wins.
        journal_in(&repo.join("deploy"));
        let d = journal_from(&app);
        assert_eq!(
            std::fs::canonicalize(&d.path).unwrap(),
            std::fs::canonicalize(repo.join("deploy/.fabrik/state.db")).unwrap()
        );
    }

    #[test]
    fn outside_a_work_tree_nothing_above_the_start_is_used() {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("app");
        std::fs::create_dir_all(&app).unwrap();
        journal_in(t.path());
        let d = journal_from(&app);
        assert_eq!(d.path, app.join(".fabrik/state.db"));
        assert!(!d.found);
    }

    #[test]
    fn the_search_stops_at_the_work_tree_root() {
        let t = tempfile::tempdir().unwrap();
        let repo = t.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        journal_in(t.path());
        let d = journal_from(&repo);
        assert!(!d.found, "{d:?}");
    }
}
