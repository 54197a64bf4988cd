//! Text from outside (provider answers, spec values, file names) made safe
//! to print on a terminal and to keep in the journal.
//!
//! A terminal obeys control sequences: an escape (`\x1b[2K`), a carriage
//! return or a backspace in a provider's error body can erase or rewrite
//! what Fabrik printed; bidirectional overrides (U+202E) and zero-width
//! characters make a text read differently from what it is. Every such
//! character is written as a visible Rust-style escape (`\u{1b}`,
//! `\u{202e}`), so what is shown is what was received, and nothing in it
//! acts on the terminal.
//!
//! Pure: no I/O.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as itself: C0 and C1 controls
/// (but for the line breaks and tabs [`Lines::Keep`] allows), DEL,
/// bidirectional embeddings, overrides, isolates and marks, zero-width
/// characters, line and paragraph separators and the byte-order mark.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'              // Arabic letter mark
            | '\u{200b}'..='\u{200f}' // zero-width space, joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202a}'..='\u{202e}' // embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{feff}' // byte-order mark, zero-width no-break space
        )
}

/// What to do with line breaks and tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Keep `\n` and `\t` (a multi-line body quoted as it came).
    Keep,
    /// Escape them too (a value shown on one line, such as a field in an
    /// error message).
    Escape,
}

/// `text` with every unsafe character escaped (`\u{1b}`); borrowed when
/// there is nothing to escape.
pub fn printable(text: &str, lines: Lines) -> Cow<'_, str> {
    let needs = |c: char| match c {
        '\n' | '\t' => lines == Lines::Escape,
        c => is_unsafe(c),
    };
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs(c) {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`printable`] keeping line breaks and tabs: for provider answers and
/// messages, which may span lines.
pub fn printable_lines(text: &str) -> Cow<'_, str> {
    printable(text, Lines::Keep)
}

/// [`printable`] on one line: for values quoted inside a message.
pub fn printable_line(text: &str) -> Cow<'_, str> {
    printable(text, Lines::Escape)
}

/// An error and its causes on one line: `outer: cause: root cause`.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// A length of time for people, to the second: `12 s`, `4 min 30 s`,
/// `5 min`, `2 h 5 min` (seconds are left out from an hour on).
pub fn span(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, _) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

/// `n` and the noun, singular for one: `1 step`, `3 steps`, `0 changes`.
pub fn count<N: Copy + std::fmt::Display + PartialEq + From<u8>>(n: N, singular: &str) -> String {
    counted(n, singular, &format!("{singular}s"))
}

/// [`count`] for a noun whose plural is not the singular and an `s`
/// (`1 entry`, `2 entries`).
pub fn counted<N: Copy + std::fmt::Display + PartialEq + From<u8>>(
    n: N,
    singular: &str,
    plural: &str,
) -> String {
    format!("{n} {}", if n == N::from(1) { singular } else { plural })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        use std::time::Duration as D;
        assert_eq!(span(D::from_millis(12_900)), "12 s");
        assert_eq!(span(D::from_secs(300)), "5 min");
        assert_eq!(span(D::from_secs(270)), "4 min 30 s");
        assert_eq!(span(D::from_secs(7_500)), "2 h 5 min");
        assert_eq!(span(D::from_secs(3_600)), "1 h");
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "step"), "1 step");
        assert_eq!(count(0, "step"), "0 steps");
        assert_eq!(count(2, "change"), "2 changes");
        assert_eq!(counted(1, "entry", "entries"), "1 entry");
        assert_eq!(counted(3, "entry", "entries"), "3 entries");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let t = "deployed and verified: https://bücher.example.com → 200";
        assert!(matches!(printable_lines(t), Cow::Borrowed(_)));
        assert_eq!(printable_line(t), t);
    }

    #[test]
    fn terminal_sequences_are_escaped() {
        let hostile = "\x1b[2K\r\x1b[1A\x1b[32mok\x1b]0;pwned\x07\x08";
        let shown = printable_lines(hostile);
        assert!(!shown.chars().any(is_unsafe), "{shown:?}");
        assert_eq!(
            shown,
            "\\u{1b}[2K\\r\\u{1b}[1A\\u{1b}[32mok\\u{1b}]0;pwned\\u{7}\\u{8}"
        );
    }

    #[test]
    fn bidi_and_zero_width_characters_are_escaped() {
        assert_eq!(
            printable_line("a\u{202e}b\u{200b}c"),
            "a\\u{202e}b\\u{200b}c"
        );
        assert_eq!(printable_line("\u{2066}x\u{2069}"), "\\u{2066}x\\u{2069}");
        assert_eq!(printable_line("\u{feff}bom"), "\\u{feff}bom");
        assert_eq!(printable_line("c1\u{9b}31m"), "c1\\u{9b}31m");
        assert_eq!(printable_line("del\u{7f}"), "del\\u{7f}");
    }

    #[test]
    fn line_breaks_follow_the_mode() {
        assert_eq!(printable_lines("a\n\tb"), "a\n\tb");
        assert_eq!(printable_line("a\n\tb"), "a\\n\\tb");
        assert_eq!(printable_lines("a\r\nb"), "a\\r\nb");
    }
}
