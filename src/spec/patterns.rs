//! Coolify's validation patterns for the application fields Fabrik sends,
//! as checks: `validate` refuses what the server would answer with a 422,
//! and the sandbox answers as the server does.
//!
//! Read from `app/Support/ValidationPatterns.php` and `sharedDataApplications()`
//! (`bootstrap/helpers/api.php:113-205`) at 379abb25 (4.3.11); the patterns
//! are written out by hand (no regular-expression engine), each beside the
//! expression it implements.

/// `DIRECTORY_PATH_PATTERN`, `^\/([a-zA-Z0-9._\-\/~@+]*)?$`, at most 255
/// characters (`ValidationPatterns.php:30`, `:499`): `base_directory`,
/// `publish_directory`.
pub fn is_directory_path(s: &str) -> bool {
    s.len() <= 255
        && s.strip_prefix('/')
            .is_some_and(|rest| rest.chars().all(path_char))
}

/// `FILE_PATH_PATTERN`, `^\/[a-zA-Z0-9._\-\/~@+]+$`, at most 255
/// characters (`ValidationPatterns.php:24`, `:481`): `dockerfile_location`.
pub fn is_file_path(s: &str) -> bool {
    s.len() <= 255
        && s.strip_prefix('/')
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(path_char))
}

fn path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '~' | '@' | '+')
}

/// The commit rule, `^[a-zA-Z0-9][a-zA-Z0-9._\-\/]*$` (`api.php:153`):
/// `git_commit_sha`.
pub fn is_commit(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
}

/// `SHELL_SAFE_COMMAND_PATTERN` (`ValidationPatterns.php:74`), at most
/// 1000 characters (`:515`): `install_command`, `build_command`,
/// `start_command`. The expression:
///
/// ```text
/// ^(?:[ \t]+|&&|\|\||"[^"$`\\\n\r]*"|'[^'\n\r]*'|[a-zA-Z0-9._\-\/=:@,+\[\]{}#%^~*?!]+)+$
/// ```
///
/// so words, spaces, `&&`, `||`, and quoted strings (no `$`, backtick or
/// backslash inside double quotes); no `;`, `|`, `$`, `<`, `>` or newline.
pub fn is_shell_safe_command(s: &str) -> bool {
    if s.is_empty() || s.chars().count() > 1000 {
        return false;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' | b'\t' => i += 1,
            b'&' | b'|' if b.get(i + 1) == Some(&b[i]) => i += 2,
            b'"' => match b[i + 1..].iter().position(|&c| c == b'"') {
                Some(end)
                    if !b[i + 1..i + 1 + end]
                        .iter()
                        .any(|c| matches!(c, b'$' | b'`' | b'\\' | b'\n' | b'\r')) =>
                {
                    i += end + 2;
                }
                _ => return false,
            },
            b'\'' => match b[i + 1..].iter().position(|&c| c == b'\'') {
                Some(end)
                    if !b[i + 1..i + 1 + end]
                        .iter()
                        .any(|c| matches!(c, b'\n' | b'\r')) =>
                {
                    i += end + 2;
                }
                _ => return false,
            },
            c if c.is_ascii_alphanumeric() || b"._-/=:@,+[]{}#%^~*?!".contains(&c) => i += 1,
            _ => return false,
        }
    }
    true
}

/// The characters `ValidGitRepositoryUrl` refuses in a repository URL
/// (`app/Rules/ValidGitRepositoryUrl.php:31-36`).
pub const REPOSITORY_FORBIDDEN: &[char] = &[
    ';', '|', '&', '$', '`', '(', ')', '{', '}', '[', ']', '<', '>', '"', '\'', '\\', '!', '?',
    '*', '^', '%', '=', '+', '#',
];

/// `health_check_host`, `^[a-zA-Z0-9.\-_]+$` (`api.php:169`).
pub fn is_health_host(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// `health_check_path`, `^[a-zA-Z0-9/\-_.~%,;]+$` (`api.php:167`).
pub fn is_health_path(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~' | '%' | ',' | ';')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(is_directory_path("/"));
        assert!(is_directory_path("/dashboard/final-example"));
        assert!(!is_directory_path("dist"));
        assert!(!is_directory_path("/a b"));
        assert!(is_file_path("/Dockerfile"));
        assert!(!is_file_path("/"));
        assert!(!is_file_path("/a;b"));
    }

    #[test]
    fn commits() {
        assert!(is_commit("HEAD"));
        assert!(is_commit("0123abcd"));
        assert!(is_commit("v1.2/rc"));
        assert!(!is_commit(""));
        assert!(!is_commit("-x"));
        assert!(!is_commit("a b"));
    }

    #[test]
    fn commands() {
        for ok in [
            "npm run build",
            "npm ci && npm run build",
            "echo \"hello world\"",
            "sh -c 'a; b'",
            "NODE_ENV=production node server.js",
            "a || b",
        ] {
            assert!(is_shell_safe_command(ok), "{ok}");
        }
        for bad in [
            "a; b",
            "a | b",
            "echo $HOME",
            "echo \"$HOME\"",
            "a > b",
            "a\nb",
            "echo 'x",
            "a & b",
            "",
        ] {
            assert!(!is_shell_safe_command(bad), "{bad}");
        }
    }

    #[test]
    fn health() {
        assert!(is_health_path("/healthz"));
        assert!(!is_health_path("/h?x=1"));
        assert!(is_health_host("localhost"));
        assert!(!is_health_host("a b"));
    }
}
