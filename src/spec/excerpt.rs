//! The line a diagnostic points at, quoted under it as compilers do:
//!
//! ```text
//! spec.yaml:21:12: error: `ttl` must be `auto`, found `fast`
//!   21 |       ttl: fast
//!      |            ^^^^
//! ```
//!
//! Only files the loader holds the text of are quoted (the spec and the
//! files it read, such as a compose file); a diagnostic about any other
//! file has no excerpt. The line is made safe to show first: a value that
//! is a secret as a whole ([`credential::is_secret_value`]) becomes
//! `********`, a credential in a URL is hidden as in every message, and
//! control, bidirectional and zero-width characters (tabs too) are escaped
//! with [`crate::text::printable_line`]. The carets then count characters
//! of the line as shown. (A character a terminal draws two columns wide
//! counts as one, as in Fabrik's tables.)
//!
//! Where a value or key ends is read from the file's YAML tree: the value
//! as written (plain, or in quotes without escapes) at its position. When
//! it is written otherwise (escapes, several lines) one caret points at
//! its start, and a secret there is masked to the end of the line.
//!
//! Pure: takes text, returns data.

use std::ops::Range;
use std::path::PathBuf;

use super::credential;
use super::diagnostic::{Diagnostic, Excerpt, Mark, shown};
use super::path::{FieldPath, Segment};
use super::yaml::{self, Kind, Limits, Node};

/// What replaces a value that is a secret.
pub(crate) const MASK: &str = "********";

/// The text of a file diagnostics may point into, as the loader read it.
pub(crate) struct Source {
    /// The file, as diagnostics name it.
    pub file: PathBuf,
    /// Its text.
    pub text: String,
}

/// Gives each diagnostic about one of `sources` the line it points at.
pub(crate) fn attach(diagnostics: &mut [Diagnostic], sources: &[Source], limits: &Limits) {
    for source in sources {
        let mut wanted = diagnostics
            .iter_mut()
            .filter(|d| d.file == source.file)
            .peekable();
        if wanted.peek().is_none() {
            continue;
        }
        let lines: Vec<&str> = source.text.lines().collect();
        let written = written(&source.text, &lines, limits);
        for d in wanted {
            let at = Mark::new(d.line, d.column);
            d.excerpt = line_index(at.line)
                .and_then(|i| lines.get(i))
                .map(|line| excerpt(line, at, &written));
        }
    }
}

/// A key or a value written in a file: where it starts, how many
/// characters it takes on its line (when it is written as it reads), and
/// whether it is a secret.
struct Written {
    at: Mark,
    width: Option<usize>,
    secret: bool,
}

/// Every key and value of the file's YAML tree (none when it does not
/// parse: then only credentials in URLs are found, by their text).
fn written(text: &str, lines: &[&str], limits: &Limits) -> Vec<Written> {
    fn walk(node: &Node, path: &mut FieldPath, lines: &[&str], out: &mut Vec<Written>) {
        match &node.kind {
            Kind::Scalar(s) => {
                if !node.is_null() {
                    out.push(Written {
                        at: node.mark,
                        width: width_at(lines, node.mark, &s.text),
                        secret: credential::is_secret_value(path, &s.text),
                    });
                }
            }
            Kind::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    walk(item, path, lines, out);
                    path.pop();
                }
            }
            Kind::Map(entries) => {
                for e in entries {
                    out.push(Written {
                        at: e.key_mark,
                        width: width_at(lines, e.key_mark, &e.key),
                        secret: false,
                    });
                    path.push(Segment::Key(e.key.clone()));
                    walk(&e.value, path, lines, out);
                    path.pop();
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Ok((tree, _)) = yaml::parse(text.as_bytes(), limits) {
        walk(&tree, &mut FieldPath::root(), lines, &mut out);
    }
    out
}

/// The index in a list of lines of the 1-based `line`.
fn line_index(line: u32) -> Option<usize> {
    usize::try_from(line).ok()?.checked_sub(1)
}

/// The byte offset of the 1-based character `column` of `line` (its end
/// when the line is shorter).
fn byte_at(line: &str, column: usize) -> usize {
    line.char_indices()
        .nth(column.saturating_sub(1))
        .map_or(line.len(), |(i, _)| i)
}

/// How many characters `text` takes at `at`, when it is written there as
/// it reads: plain, or in quotes.
fn width_at(lines: &[&str], at: Mark, text: &str) -> Option<usize> {
    let line = lines.get(line_index(at.line)?)?;
    let rest = &line[byte_at(line, at.column as usize)..];
    [text.to_owned(), format!("\"{text}\""), format!("'{text}'")]
        .into_iter()
        .find(|form| !text.is_empty() && rest.starts_with(form.as_str()))
        .map(|form| form.chars().count())
}

/// `line` as shown, pointing at `at` (on that line).
fn excerpt(line: &str, at: Mark, written: &[Written]) -> Excerpt {
    let column = at.column as usize;
    let range = |start: usize, width: Option<usize>| {
        byte_at(line, start)..width.map_or(line.len(), |w| byte_at(line, start + w))
    };
    let masks: Vec<Range<usize>> = written
        .iter()
        .filter(|w| w.secret && w.at.line == at.line)
        .map(|w| range(w.at.column as usize, w.width))
        .filter(|r| !r.is_empty())
        .collect();
    let target = written
        .iter()
        .find(|w| w.at == at)
        .and_then(|w| w.width)
        .unwrap_or(1);
    let mut pointed = range(column, Some(target));
    // Point at a mask whole, never into it.
    for m in &masks {
        if m.start < pointed.start && pointed.start < m.end {
            pointed.start = m.start;
        }
        if m.start < pointed.end && pointed.end < m.end {
            pointed.end = m.end;
        }
    }
    let mut cuts: Vec<usize> = vec![0, line.len(), pointed.start, pointed.end];
    cuts.extend(masks.iter().flat_map(|m| [m.start, m.end]));
    cuts.sort_unstable();
    cuts.dedup();
    let mut text = String::new();
    let mut shown_len = 0usize;
    let (mut caret, mut end) = (None, None);
    let mut last_mask = None;
    for piece in cuts.windows(2) {
        let (from, to) = (piece[0], piece[1]);
        if from == pointed.start {
            caret = Some(shown_len);
        }
        if from == pointed.end {
            end = Some(shown_len);
        }
        let part = match masks.iter().position(|m| m.start <= from && to <= m.end) {
            Some(m) if last_mask == Some(m) => String::new(),
            Some(m) => {
                last_mask = Some(m);
                MASK.to_owned()
            }
            None => {
                last_mask = None;
                shown(&line[from..to])
            }
        };
        shown_len += part.chars().count();
        text.push_str(&part);
    }
    let caret = caret.unwrap_or(shown_len);
    let end = end.unwrap_or(shown_len);
    Excerpt {
        text,
        caret: to_u32(caret),
        width: to_u32(end.saturating_sub(caret).max(1)),
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::diagnostic::{Issue, Part};

    fn quoted(text: &str, line: u32, column: u32) -> Option<Excerpt> {
        let mut d = vec![
            Issue::error(FieldPath::root(), "x")
                .into_diagnostic(std::path::Path::new("s.yaml"), Mark::new(line, column)),
        ];
        let sources = [Source {
            file: PathBuf::from("s.yaml"),
            text: text.to_owned(),
        }];
        attach(&mut d, &sources, &Limits::default());
        d.pop().and_then(|d| d.excerpt)
    }

    fn pointed(e: &Excerpt) -> String {
        e.text
            .chars()
            .skip(e.caret as usize)
            .take(e.width as usize)
            .collect()
    }

    #[test]
    fn points_at_the_whole_value_or_key() {
        let text = "dns:\n  records:\n    - ttl: fast\n      name: \"a b\"\n";
        let e = quoted(text, 3, 12).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!(
            (e.text.as_str(), e.caret, e.width),
            ("    - ttl: fast", 11, 4)
        );
        let e = quoted(text, 3, 7).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!(pointed(&e), "ttl");
        let e = quoted(text, 4, 13).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!(pointed(&e), "\"a b\"");
    }

    #[test]
    fn escapes_and_multi_byte_characters_do_not_move_the_carets() {
        let text = "app:\n  image: \"é\u{202e}\tx\"\n  port: [é, \tbad]\n";
        let e = quoted(text, 3, 14).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!(e.text, "  port: [é, \\tbad]");
        assert_eq!(pointed(&e), "bad");
        let e = quoted(text, 2, 10).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!(e.text, "  image: \"é\\u{202e}\\tx\"");
        assert_eq!(pointed(&e), "\"é\\u{202e}\\tx\"");
    }

    #[test]
    fn secrets_are_masked_and_the_carets_stay_on_them() {
        let text = "secrets:\n  API_KEY: sk_live_1234567\nnotifications:\n  webhooks: [{url: https://hooks.slack.com/services/T0/B0/XYZ, name: x}]\napp:\n  env: {DB: \"postgres://u:pw1234@db/app\"}\n";
        let e = quoted(text, 2, 12).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!(e.text, "  API_KEY: ********");
        assert_eq!(pointed(&e), MASK);
        let e = quoted(text, 4, 70).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!(e.text, "  webhooks: [{url: ********, name: x}]");
        assert_eq!(pointed(&e), "x");
        let e = quoted(text, 6, 13).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!(e.text, "  env: {DB: \"postgres://u:***@db/app\"}");
        assert_eq!(pointed(&e), "\"postgres://u:***@db/app\"");
        // An unparsable file still hides credentials in URLs.
        let e = quoted("a: [https://u:pw1234@h/\n", 1, 4).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!(e.text, "a: [https://u:***@h/");
    }

    #[test]
    fn the_last_line_without_a_line_break_is_quoted_and_a_line_past_the_end_is_not() {
        let e = quoted("name: a\nport: x", 2, 7).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!((e.text.as_str(), e.caret, e.width), ("port: x", 6, 1));
        assert_eq!(quoted("name: a\n", 2, 1), None);
        // A column past the end of the line points just after it.
        let e = quoted("name: a\n", 1, 40).unwrap_or_else(|| panic!("no excerpt"));
        assert_eq!((e.caret, e.width), (7, 1));
    }

    #[test]
    fn renders_under_the_first_line() {
        let mut d = Issue::error(FieldPath::of("dns.ttl"), "`ttl` must be `auto`")
            .into_diagnostic(std::path::Path::new("s.yaml"), Mark::new(7, 10));
        d.excerpt = Some(Excerpt {
            text: "    ttl: fast".to_owned(),
            caret: 9,
            width: 4,
        });
        assert_eq!(
            d.report(),
            "s.yaml:7:10: error: `ttl` must be `auto`\n   7 |     ttl: fast\n     |          ^^^^\n  field: dns.ttl"
        );
        let pointer: Vec<String> = d
            .parts()
            .into_iter()
            .filter(|(p, _)| *p == Part::Pointer)
            .map(|(_, t)| t)
            .collect();
        assert_eq!(pointer, ["^^^^"]);
    }
}
