//! `fabrik init`: a commented `spec.yaml`, `.env.example`, and `.gitignore`
//! entries that keep `.env` and `.fabrik/` out of version control.

use std::path::{Path, PathBuf};

use crate::id::DeploymentId;

/// The commented spec, with `__NAME__` for the deployment name.
const SPEC: &str = include_str!("spec.yaml");

/// What `.gitignore` must contain.
const IGNORED: [&str; 2] = [".env", ".fabrik/"];

/// Why scaffolding failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A spec is already there; `init` never overwrites one.
    #[error("{} already exists", path.display())]
    SpecExists {
        /// The existing spec.
        path: PathBuf,
    },
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Writes `spec.yaml` and `.env.example` into `dir` (created if needed) and
/// adds `.env` and `.fabrik/` to its `.gitignore` where they are missing.
/// Returns the files created or changed. An existing `.env.example` is
/// left alone.
pub fn scaffold(dir: &Path) -> Result<Vec<PathBuf>, InitError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InitError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let spec_path = dir.join("spec.yaml");
    let name = deployment_name(dir);
    let spec = SPEC.replace("__NAME__", &name);
    let mut written = Vec::new();
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&spec_path)
    {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(spec.as_bytes()).map_err(io(&spec_path))?;
            written.push(spec_path);
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(InitError::SpecExists { path: spec_path });
        }
        Err(e) => return Err(io(&spec_path)(e)),
    }
    let example = dir.join(".env.example");
    if !example.exists() {
        std::fs::write(&example, env_example()).map_err(io(&example))?;
        written.push(example);
    }
    let gitignore = dir.join(".gitignore");
    let current = match std::fs::read_to_string(&gitignore) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(&gitignore)(e)),
    };
    let missing: Vec<&str> = IGNORED
        .iter()
        .copied()
        .filter(|want| !ignores(&current, want))
        .collect();
    if !missing.is_empty() {
        let mut text = current;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if !text.is_empty() {
            text.push_str("\n# Fabrik: secrets and local state\n");
        }
        for m in missing {
            text.push_str(m);
            text.push('\n');
        }
        std::fs::write(&gitignore, text).map_err(io(&gitignore))?;
        written.push(gitignore);
    }
    Ok(written)
}

/// Whether `.gitignore` text already ignores `entry` (in any of the usual
/// spellings: `.env`, `/.env`, `.fabrik`, `/.fabrik/`).
fn ignores(gitignore: &str, entry: &str) -> bool {
    let bare = entry.trim_end_matches('/');
    gitignore.lines().map(str::trim).any(|l| {
        let l = l.trim_start_matches('/').trim_end_matches('/');
        l == bare
    })
}

/// A deployment name from the directory's name, or `my-app`.
fn deployment_name(dir: &Path) -> String {
    let base = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let mut name: String = base
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.truncate(40);
    let name = name.trim_matches('-').to_owned();
    match DeploymentId::new(name) {
        Ok(id) => id.as_str().to_owned(),
        Err(_) => FALLBACK_NAME.to_owned(),
    }
}

/// The name used when the directory's name can not be made into one.
const FALLBACK_NAME: &str = "my-app";

fn env_example() -> String {
    "\
# Copy this file to .env and fill it in. Never commit .env.
# Environment variables take precedence over .env.

# Provider credentials.
COOLIFY_URL=
COOLIFY_TOKEN=
CLOUDFLARE_API_TOKEN=
UPTIME_KUMA_URL=
UPTIME_KUMA_USERNAME=
UPTIME_KUMA_PASSWORD=

# Secrets declared in spec.yaml. Left empty, secrets with `generate: true`
# are created by Fabrik and appended to .env.
# API_TOKEN: token the application expects
API_TOKEN=

# Key of the secret fingerprints kept in the journal. Fabrik creates one in
# .env on the first run; on CI, store it as a secret variable, or every run
# will see all secrets as changed.
FABRIK_FINGERPRINT_KEY=
"
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_name_is_valid() {
        assert!(DeploymentId::new(FALLBACK_NAME).is_ok());
        assert_eq!(
            deployment_name(Path::new("/nonexistent/Weird Name!")),
            FALLBACK_NAME
        );
    }

    #[test]
    fn recognises_existing_ignore_entries() {
        assert!(ignores("/.env\n", ".env"));
        assert!(ignores("target\n.fabrik\n", ".fabrik/"));
        assert!(!ignores(".env.local\n", ".env"));
    }
}
