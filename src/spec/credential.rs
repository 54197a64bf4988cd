//! Credentials written into a spec: found, refused where they do not
//! belong, and never shown.
//!
//! Three kinds: a credential in a URL (`https://user:password@host`),
//! hidden wherever it appears (`user:***@`); a webhook URL whose path is
//! its token; and a value written where a secret is declared
//! (`secrets: {API_KEY: sk_live_...}`, where the spec holds only the
//! secret's name). The last two are hidden whole where a diagnostic
//! quotes the line they are on.
//!
//! Detection of the first is textual, so that it also works on text that
//! is not a valid URL (a message quoting what the user wrote): every
//! `scheme://userinfo@` is found, whatever follows it.

use std::borrow::Cow;

use super::path::{FieldPath, Segment};

/// The userinfo of one `scheme://userinfo@host` in a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Userinfo<'a> {
    /// The user name, as written.
    pub user: &'a str,
    /// The password, as written, when there is a `:`.
    pub password: Option<&'a str>,
    /// Byte range of the userinfo (without the `@`) in the text.
    start: usize,
    end: usize,
}

impl Userinfo<'_> {
    /// Whether it holds a credential written out: a password, or (for
    /// a user name alone) anything, unless it is only `${...}` references.
    pub fn is_literal(&self) -> bool {
        match self.password {
            Some(p) => !p.is_empty() && !only_references(p),
            None => !self.user.is_empty() && !only_references(self.user),
        }
    }

    /// Whether a password is written out (a user name alone is often
    /// public, like a Sentry DSN's key).
    pub fn has_literal_password(&self) -> bool {
        self.password
            .is_some_and(|p| !p.is_empty() && !only_references(p))
    }
}

/// Whether `s` is made of `${...}` references only.
fn only_references(s: &str) -> bool {
    let mut rest = s;
    while !rest.is_empty() {
        let Some(after) = rest.strip_prefix("${") else {
            return false;
        };
        let Some(end) = after.find('}') else {
            return false;
        };
        rest = &after[end + 1..];
    }
    true
}

/// Every `scheme://userinfo@` in `text`, in order.
pub(crate) fn userinfos(text: &str) -> Vec<Userinfo<'_>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(pos) = text[from..].find("://") {
        let start = from + pos + 3;
        let authority_len = text[start..]
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
            .unwrap_or(text.len() - start);
        let authority = &text[start..start + authority_len];
        if let Some(at) = authority.rfind('@') {
            let info = &authority[..at];
            let (user, password) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            out.push(Userinfo {
                user,
                password,
                start,
                end: start + at,
            });
        }
        from = start;
    }
    out
}

/// `text` with every written-out credential of a URL replaced by `***`
/// (`https://user:***@host`, or `https://***@host` for a user name alone).
/// Borrowed when there is nothing to hide.
pub(crate) fn redacted(text: &str) -> Cow<'_, str> {
    let found: Vec<Userinfo<'_>> = userinfos(text)
        .into_iter()
        .filter(Userinfo::is_literal)
        .collect();
    if found.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for u in found {
        out.push_str(&text[at..u.start]);
        match u.password {
            Some(_) => {
                out.push_str(u.user);
                out.push_str(":***");
            }
            None => out.push_str("***"),
        }
        at = u.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Whether a URL is one whose path is a credential (Slack, Discord and
/// similar incoming webhooks).
pub(crate) fn carries_token(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let host = u.host_str().unwrap_or_default();
    (host == "hooks.slack.com" && u.path().starts_with("/services/"))
        || ((host == "discord.com" || host == "discordapp.com")
            && u.path().starts_with("/api/webhooks/"))
        || (host.ends_with("webhook.office.com"))
}

/// Whether `path` of a spec (or of an environment's overrides) is where
/// a secret is declared (`secrets.NAME`): a value written there is the
/// secret's value.
pub(crate) fn declares_secret(path: &FieldPath) -> bool {
    let segments = match path.segments() {
        [Segment::Key(e), Segment::Key(_), rest @ ..] if e == "environments" => rest,
        all => all,
    };
    matches!(segments, [Segment::Key(s), Segment::Key(_)] if s == "secrets")
}

/// Whether `text`, a value written at `path` of a spec, is a secret as a
/// whole: a value written where a secret is declared, or a URL that
/// carries its token.
pub(crate) fn is_secret_value(path: &FieldPath, text: &str) -> bool {
    declares_secret(path) || carries_token(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_hides_credentials() {
        assert_eq!(
            redacted("`https://admin:hunter2pass@shop.example.com` is bad"),
            "`https://admin:***@shop.example.com` is bad"
        );
        assert_eq!(
            redacted("a https://tok3n@h.example.com/x and ftp://u:p@h/"),
            "a https://***@h.example.com/x and ftp://u:***@h/"
        );
        // Not a URL's userinfo: an address in a path, a reference.
        assert_eq!(
            redacted("https://h.example.com/a@b"),
            "https://h.example.com/a@b"
        );
        assert_eq!(
            redacted("postgres://app:${secret.PW}@db/app"),
            "postgres://app:${secret.PW}@db/app"
        );
        // Unparsable URLs are redacted all the same.
        assert_eq!(redacted("https://u:p:q@[bad"), "https://u:***@[bad");
    }

    #[test]
    fn tells_passwords_from_user_names() {
        let u = userinfos("https://public@sentry.example.com/1");
        assert_eq!(u.len(), 1);
        assert!(u[0].is_literal() && !u[0].has_literal_password());
        let u = userinfos("redis://:${REDIS_PASSWORD}@redis:6379");
        assert!(!u[0].is_literal() && !u[0].has_literal_password());
        let u = userinfos("redis://:pw@redis:6379");
        assert!(u[0].has_literal_password());
        assert!(userinfos("https://h.example.com").is_empty());
    }

    #[test]
    fn tells_secret_values_by_where_they_are_written() {
        let declared = FieldPath::of("secrets.API_KEY");
        assert!(is_secret_value(&declared, "sk_live_1234"));
        assert!(is_secret_value(
            &FieldPath::of("environments.staging.secrets.API_KEY"),
            "sk_live_1234"
        ));
        assert!(!is_secret_value(
            &declared.key("description"),
            "the API key"
        ));
        assert!(!is_secret_value(&FieldPath::of("app.image"), "nginx:1.27"));
        let hook = FieldPath::of("notifications.webhooks").index(0).key("url");
        assert!(is_secret_value(
            &hook,
            "https://hooks.slack.com/services/T0/B0/XYZ"
        ));
        assert!(!is_secret_value(&hook, "https://hooks.example.com/fabrik"));
    }
}
