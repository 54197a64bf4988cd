//! Files a spec refers to (compose files, Dockerfiles), confined to the
//! project directory.
//!
//! A spec is often written by someone else (a template, a pull request):
//! reading `../../home/me/.ssh/id_rsa` as a "Dockerfile" and sending it to
//! a server must be impossible. Paths are checked lexically (no absolute
//! paths, no `..` above the project) and then, on disk, after symlinks are
//! resolved.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// Why a referenced file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileProblem {
    /// An absolute path.
    #[error("`{0}` is an absolute path")]
    Absolute(String),
    /// A path that leaves the project directory, lexically or through a
    /// symbolic link.
    #[error("`{0}` is outside the project directory")]
    Escapes(String),
    /// No such file.
    #[error("`{0}` does not exist")]
    NotFound(String),
    /// Larger than the limit.
    #[error("`{path}` is {}, larger than the limit of {}", size_text(*size), size_text(*limit as u64))]
    TooLarge {
        /// The path as written.
        path: String,
        /// Its size in bytes (at least this much).
        size: u64,
        /// The limit.
        limit: usize,
    },
    /// Not UTF-8 text.
    #[error("`{0}` is not UTF-8 text")]
    NotUtf8(String),
    /// Any other I/O failure, as text (a file problem is reported as a
    /// diagnostic, which holds no error chain).
    #[error("`{path}` can not be read: {reason}")]
    Io {
        /// The path as written.
        path: String,
        /// The operating system's reason.
        reason: String,
    },
}

impl FileProblem {
    /// How to fix it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Absolute(_) | Self::Escapes(_) => {
                Some("files a spec uses must be inside the spec's directory; give a relative path")
            }
            Self::NotFound(_) => Some("paths are relative to the spec's directory"),
            _ => None,
        }
    }
}

/// A size for people: `1 MiB`, `49.6 MiB`, `300 bytes`, with the exact
/// byte count when it is not a round figure.
pub fn size_text(bytes: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    let (unit, name) = if bytes >= MIB {
        (MIB, "MiB")
    } else if bytes >= KIB {
        (KIB, "KiB")
    } else {
        return format!("{bytes} bytes");
    };
    if bytes.is_multiple_of(unit) {
        format!("{} {name}", bytes / unit)
    } else {
        // One decimal is enough to read; the count says exactly.
        let tenths = bytes * 10 / unit;
        format!("{}.{} {name} ({bytes} bytes)", tenths / 10, tenths % 10)
    }
}

/// Read access to the files of one project.
pub trait ProjectFiles {
    /// Reads `relative` (a path relative to the project directory) as text.
    fn read(&self, relative: &str) -> Result<String, FileProblem>;

    /// How diagnostics name `relative`.
    fn display_path(&self, relative: &str) -> PathBuf;
}

/// Normalises a relative path without touching the disk, refusing
/// absolute paths and any `..` that climbs above the start.
pub fn confine(relative: &str) -> Result<PathBuf, FileProblem> {
    let p = Path::new(relative);
    if relative.starts_with('/') || relative.starts_with('\\') || p.has_root() {
        return Err(FileProblem::Absolute(relative.to_owned()));
    }
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return Err(FileProblem::Escapes(relative.to_owned()));
                }
                depth -= 1;
                out.pop();
            }
            Component::Normal(s) => {
                depth += 1;
                out.push(s);
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(FileProblem::Absolute(relative.to_owned()));
            }
        }
    }
    if depth == 0 {
        return Err(FileProblem::NotFound(relative.to_owned()));
    }
    Ok(out)
}

/// The project directory on disk.
#[derive(Debug, Clone)]
pub struct DiskFiles {
    /// The directory as the user named it (for messages).
    shown: PathBuf,
    /// The directory with symlinks resolved (for containment checks).
    real: PathBuf,
    /// Largest file read.
    limit: usize,
}

impl DiskFiles {
    /// The project rooted at `dir`, reading files up to `limit` bytes.
    /// An empty `dir` is the current directory, and paths are shown
    /// without a prefix.
    pub fn new(dir: &Path, limit: usize) -> std::io::Result<Self> {
        let real = if dir.as_os_str().is_empty() {
            Path::new(".").canonicalize()?
        } else {
            dir.canonicalize()?
        };
        Ok(Self {
            shown: dir.to_path_buf(),
            real,
            limit,
        })
    }

    /// The directory with symlinks resolved.
    pub fn real_dir(&self) -> &Path {
        &self.real
    }
}

impl ProjectFiles for DiskFiles {
    fn read(&self, relative: &str) -> Result<String, FileProblem> {
        let rel = confine(relative)?;
        let full = self.real.join(&rel);
        let resolved = match full.canonicalize() {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(FileProblem::NotFound(relative.to_owned()));
            }
            Err(e) => {
                return Err(FileProblem::Io {
                    path: relative.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        if !resolved.starts_with(&self.real) {
            return Err(FileProblem::Escapes(relative.to_owned()));
        }
        let io = |e: std::io::Error| FileProblem::Io {
            path: relative.to_owned(),
            reason: e.to_string(),
        };
        // Before opening: opening a FIFO blocks until someone writes to it.
        if !std::fs::metadata(&resolved).map_err(io)?.is_file() {
            return Err(FileProblem::Io {
                path: relative.to_owned(),
                reason: "not a regular file".to_owned(),
            });
        }
        let file = std::fs::File::open(&resolved).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if !meta.is_file() {
            return Err(FileProblem::Io {
                path: relative.to_owned(),
                reason: "not a regular file".to_owned(),
            });
        }
        let too_large = |size| FileProblem::TooLarge {
            path: relative.to_owned(),
            size,
            limit: self.limit,
        };
        // Refused before reading; the capped read below only guards
        // against a file that grows meanwhile.
        if meta.len() > self.limit as u64 {
            return Err(too_large(meta.len()));
        }
        let mut bytes = Vec::new();
        file.take(self.limit as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() > self.limit {
            return Err(too_large(bytes.len() as u64));
        }
        String::from_utf8(bytes).map_err(|_| FileProblem::NotUtf8(relative.to_owned()))
    }

    fn display_path(&self, relative: &str) -> PathBuf {
        match confine(relative) {
            Ok(rel) if self.shown.as_os_str().is_empty() => rel,
            Ok(rel) => self.shown.join(rel),
            Err(_) => PathBuf::from(relative),
        }
    }
}

/// Project files held in memory, for tests and for callers that already
/// have the text.
#[derive(Debug, Clone, Default)]
pub struct MemoryFiles {
    files: BTreeMap<PathBuf, String>,
}

impl MemoryFiles {
    /// No files.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file at a relative path.
    pub fn with(mut self, relative: &str, text: impl Into<String>) -> Self {
        if let Ok(p) = confine(relative) {
            self.files.insert(p, text.into());
        }
        self
    }
}

impl ProjectFiles for MemoryFiles {
    fn read(&self, relative: &str) -> Result<String, FileProblem> {
        let p = confine(relative)?;
        self.files
            .get(&p)
            .cloned()
            .ok_or_else(|| FileProblem::NotFound(relative.to_owned()))
    }

    fn display_path(&self, relative: &str) -> PathBuf {
        confine(relative).unwrap_or_else(|_| PathBuf::from(relative))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(size_text(300), "300 bytes");
        assert_eq!(size_text(1024 * 1024), "1 MiB");
        assert_eq!(size_text(52_000_000), "49.5 MiB (52000000 bytes)");
        assert_eq!(size_text(1024 * 1024 + 1), "1.0 MiB (1048577 bytes)");
    }

    #[test]
    fn confines_lexically() {
        assert_eq!(confine("./a/b/../c.yml"), Ok(PathBuf::from("a/c.yml")));
        assert!(matches!(confine("../x"), Err(FileProblem::Escapes(_))));
        assert!(matches!(confine("a/../../x"), Err(FileProblem::Escapes(_))));
        assert!(matches!(
            confine("/etc/passwd"),
            Err(FileProblem::Absolute(_))
        ));
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinks_that_leave_the_project() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "x").unwrap();
        let project = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret"),
            project.path().join("Dockerfile"),
        )
        .unwrap();
        std::fs::write(project.path().join("ok"), "FROM scratch").unwrap();
        let files = DiskFiles::new(project.path(), 1024).unwrap();
        assert!(matches!(
            files.read("Dockerfile"),
            Err(FileProblem::Escapes(_))
        ));
        assert_eq!(files.read("ok").as_deref(), Ok("FROM scratch"));
        assert!(matches!(
            files.read("missing"),
            Err(FileProblem::NotFound(_))
        ));
    }
}
