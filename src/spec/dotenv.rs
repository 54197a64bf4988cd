//! The project's `.env` file: reading it, and adding generated values to
//! it atomically.
//!
//! Format: `KEY=value` lines, an optional `export ` prefix, `#` comments,
//! single quotes (literal) and double quotes (with `\n`, `\t`, `\"`, `\\`
//! escapes; may span lines), and for unquoted values an inline comment
//! after whitespace. Errors name the line, never its content: the content
//! is a secret.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::secret::SecretValue;

/// Why the `.env` file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    /// The file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `KEY=value`.
    #[error("{}:{line}: {reason}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong (never the line's content).
        reason: &'static str,
    },
    /// The file is a symbolic link to somewhere outside the project.
    #[error("{} is a symbolic link to a file outside the project directory", path.display())]
    Outside {
        /// The link.
        path: PathBuf,
    },
    /// The file is larger than a `.env` can sensibly be.
    #[error("{} is {}, larger than the limit of {} for a .env file", path.display(), crate::spec::files::size_text(*size), crate::spec::files::size_text(MAX_BYTES))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes (at least this much).
        size: u64,
    },
    /// The file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The largest `.env` read: a few hundred secrets fit in a few
/// kilobytes; anything near this is not a `.env` (and is refused before it
/// is read, so a huge file costs no memory).
pub const MAX_BYTES: u64 = 1024 * 1024;

/// Reads the whole of an open `.env`, refusing one over [`MAX_BYTES`]
/// before reading it.
fn read_capped(file: &mut std::fs::File, path: &Path) -> Result<String, DotenvError> {
    let read = |source| DotenvError::Read {
        path: path.to_path_buf(),
        source,
    };
    let too_large = |size| DotenvError::TooLarge {
        path: path.to_path_buf(),
        size,
    };
    let len = file.metadata().map_err(read)?.len();
    if len > MAX_BYTES {
        return Err(too_large(len));
    }
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| {
        read(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not UTF-8 text",
        ))
    })
}

/// Parsed `.env` contents: every key with its (secret) value. Later lines
/// win over earlier ones, as in every dotenv implementation.
pub type Entries = BTreeMap<String, SecretValue>;

/// Parses `.env` text. `path` only names the file in errors.
pub(crate) fn parse(text: &str, path: &Path) -> Result<Entries, DotenvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut out = Entries::new();
    let mut i = 0;
    let err = |line: usize, reason| DotenvError::Syntax {
        path: path.to_path_buf(),
        line,
        reason,
    };
    while i < lines.len() {
        let lineno = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, rest)) = line.split_once('=') else {
            return Err(err(lineno, "expected KEY=value"));
        };
        let key = key.trim();
        if !super::model::interpolated::is_variable_name(key) {
            return Err(err(
                lineno,
                "the name before `=` is not a valid variable name",
            ));
        }
        let rest = rest.trim_start();
        let value = if let Some(body) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut current = body;
            loop {
                match take_double_quoted(current, &mut value) {
                    Some(after) => {
                        if !trailer_ok(after) {
                            return Err(err(lineno, "unexpected text after the closing quote"));
                        }
                        break;
                    }
                    None if i < lines.len() => {
                        value.push('\n');
                        current = lines[i];
                        i += 1;
                    }
                    None => return Err(err(lineno, "a double quote is not closed")),
                }
            }
            value
        } else if let Some(body) = rest.strip_prefix('\'') {
            let mut value = String::new();
            let mut current = body;
            loop {
                match current.find('\'') {
                    Some(end) => {
                        value.push_str(&current[..end]);
                        if !trailer_ok(&current[end + 1..]) {
                            return Err(err(lineno, "unexpected text after the closing quote"));
                        }
                        break;
                    }
                    None if i < lines.len() => {
                        value.push_str(current);
                        value.push('\n');
                        current = lines[i];
                        i += 1;
                    }
                    None => return Err(err(lineno, "a single quote is not closed")),
                }
            }
            value
        } else {
            let cut = rest
                .char_indices()
                .find(|(j, c)| *c == '#' && (*j == 0 || rest[..*j].ends_with([' ', '\t'])))
                .map_or(rest.len(), |(j, _)| j);
            rest[..cut].trim_end().to_owned()
        };
        out.insert(key.to_owned(), SecretValue::new(value));
    }
    Ok(out)
}

/// Reads a double-quoted value up to its closing quote; returns the text
/// after the quote, or `None` when the line ends first.
fn take_double_quoted<'a>(s: &'a str, out: &mut String) -> Option<&'a str> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some(&s[i + 1..]),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((_, other)) => out.push(other),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    None
}

fn trailer_ok(s: &str) -> bool {
    let t = s.trim_start();
    t.is_empty() || t.starts_with('#')
}

/// The file to use for `path`: `path` itself, or the target of a symbolic
/// link that stays inside the directory holding `path`. `None` when there
/// is no file yet.
pub(crate) fn real_path(path: &Path) -> Result<Option<PathBuf>, DotenvError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(DotenvError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if !meta.file_type().is_symlink() {
        return regular(path, path);
    }
    let read = |source| DotenvError::Read {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = dir.canonicalize().map_err(read)?;
    let target = path.canonicalize().map_err(read)?;
    if !target.starts_with(&dir) {
        return Err(DotenvError::Outside {
            path: path.to_path_buf(),
        });
    }
    regular(path, &target)
}

/// `target` when it is a regular file: reading a FIFO or a device would
/// block or never end.
fn regular(path: &Path, target: &Path) -> Result<Option<PathBuf>, DotenvError> {
    let meta = std::fs::metadata(target).map_err(|source| DotenvError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(DotenvError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::other("not a regular file"),
        });
    }
    Ok(Some(target.to_path_buf()))
}

/// Reads and parses the `.env` at `path`; empty when there is none.
///
/// The `.env.<environment>` of an environment (`.env.staging`) is read
/// over the project's `.env` beside it: a name in both takes the value of
/// the environment's file.
pub fn read(path: &Path) -> Result<Entries, DotenvError> {
    let mut entries = read_one(path)?;
    if let Some(shared) = shared_layer(path) {
        for (name, value) in read_one(&shared)? {
            entries.entry(name).or_insert(value);
        }
    }
    Ok(entries)
}

/// The project's `.env` under the `.env.<environment>` at `path`, if that
/// is what `path` is.
pub fn shared_layer(path: &Path) -> Option<std::path::PathBuf> {
    let name = path.file_name()?.to_str()?;
    let env = name.strip_prefix(".env.")?;
    (crate::id::environment_problem(env).is_none() && env != "example")
        .then(|| path.with_file_name(".env"))
}

fn read_one(path: &Path) -> Result<Entries, DotenvError> {
    let Some(real) = real_path(path)? else {
        return Ok(Entries::new());
    };
    let mut file = std::fs::File::open(&real).map_err(|source| DotenvError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = read_capped(&mut file, path)?;
    parse(&text, path)
}

/// Adds `new` values to the `.env` at `path` and returns the value each
/// name now has there, with whether it is the one given here.
///
/// The file is replaced atomically (a temporary file in the same
/// directory, mode 0600, synced, then renamed over it), under an exclusive
/// lock, and re-read under that lock: when another process added a name
/// first, its value is kept and returned, so concurrent first runs agree
/// on one value.
pub(crate) fn add(
    path: &Path,
    new: &[(String, SecretValue)],
) -> Result<BTreeMap<String, (SecretValue, bool)>, DotenvError> {
    let write = |source| DotenvError::Write {
        path: path.to_path_buf(),
        source,
    };
    for _attempt in 0..16 {
        let real = real_path(path)?.unwrap_or_else(|| path.to_path_buf());
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut file = opts.open(&real).map_err(write)?;
        file.lock().map_err(write)?;
        if !same_file(&file, &real) {
            // Replaced while we waited for the lock: start again on the new file.
            continue;
        }
        let text = read_capped(&mut file, path)?;
        let existing = parse(&text, path)?;
        let mut result = BTreeMap::new();
        let mut append = String::new();
        for (name, value) in new {
            match existing.get(name).filter(|v| !v.expose().is_empty()) {
                Some(v) => {
                    result.insert(name.clone(), (v.clone(), false));
                }
                None => {
                    append.push_str(name);
                    append.push('=');
                    append.push_str(value.expose());
                    append.push('\n');
                    result.insert(name.clone(), (value.clone(), true));
                }
            }
        }
        if !append.is_empty() {
            let mut content = text;
            if !content.is_empty() && !content.ends_with('\n') {
                content.push('\n');
            }
            content.push_str(&append);
            replace(&real, content.as_bytes()).map_err(write)?;
        }
        return Ok(result);
    }
    Err(write(std::io::Error::other(
        "the file kept changing while it was being updated",
    )))
}

#[cfg(unix)]
fn same_file(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::File, _: &Path) -> bool {
    true
}

/// Writes `bytes` to a new file beside `target` (mode 0600), syncs it and
/// renames it over `target`.
fn replace(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".env".to_owned());
    let suffix: u64 = rand::random();
    let tmp = dir.join(format!(".{name}.{suffix:016x}.tmp"));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, target)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            // Make the rename durable; not every platform can sync a directory.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse(text, Path::new(".env"))
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_owned()))
            .collect()
    }

    #[test]
    fn reads_the_common_dotenv_forms() {
        let text = "# comment\n\nA=1\nexport B = two words # note\nC=\"x\\ny \\\"q\\\"\" # c\nD='lit $X \\n'\nE=\"multi\nline\"\nF=\nG=a#b\nA=again\r\n";
        assert_eq!(
            parsed(text),
            vec![
                ("A".into(), "again".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "x\ny \"q\"".into()),
                ("D".into(), "lit $X \\n".into()),
                ("E".into(), "multi\nline".into()),
                ("F".into(), String::new()),
                ("G".into(), "a#b".into()),
            ]
        );
    }

    #[test]
    fn errors_name_the_line_but_never_its_content() {
        let e = parse("OK=1\nthis-is-secret-ish\n", Path::new(".env"))
            .err()
            .map(|e| e.to_string());
        let e = e.unwrap_or_default();
        assert!(e.contains(".env:2"), "{e}");
        assert!(!e.contains("secret-ish"), "{e}");
        let e = parse("A=\"hunter2-open\n", Path::new(".env"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not closed") && !e.contains("hunter2"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn adds_atomically_with_mode_0600_and_keeps_existing_values() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "KEEP=me").unwrap();
        let got = add(
            &path,
            &[
                ("NEW".into(), SecretValue::new("generated-1")),
                ("KEEP".into(), SecretValue::new("other")),
            ],
        )
        .unwrap();
        assert_eq!(got["NEW"].0.expose(), "generated-1");
        assert!(got["NEW"].1);
        assert_eq!(got["KEEP"].0.expose(), "me");
        assert!(!got["KEEP"].1);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "KEEP=me\nNEW=generated-1\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_symlink_out_of_the_project() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("env"), "A=1\n").unwrap();
        let project = tempfile::tempdir().unwrap();
        std::fs::create_dir(project.path().join("sub")).unwrap();
        std::fs::write(project.path().join("sub/real.env"), "A=2\n").unwrap();
        let link = project.path().join(".env");
        std::os::unix::fs::symlink(outside.path().join("env"), &link).unwrap();
        assert!(matches!(read(&link), Err(DotenvError::Outside { .. })));
        assert!(matches!(add(&link, &[]), Err(DotenvError::Outside { .. })));
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(project.path().join("sub/real.env"), &link).unwrap();
        assert_eq!(read(&link).unwrap()["A"].expose(), "2");
    }
}
