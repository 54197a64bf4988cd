//! Host names as every field of a spec reads them: internationalised
//! names turned into their ASCII (punycode) form the same way everywhere,
//! names that imitate another name refused, and targets that only make
//! sense inside one machine or network recognised.
//!
//! The script check follows Unicode TR39's "highly restrictive" level: a
//! label is accepted when all its letters are of one script (digits,
//! hyphens and combining marks go with any), or Latin with Han, Hiragana
//! and Katakana, or Latin with Han and Hangul. A label written entirely in
//! Cyrillic or Greek letters that look like Latin ones (`аррӏе`) is a
//! homoglyph of an ASCII name and refused too. A name written in punycode
//! (`xn--...`) is taken as written: whoever wrote it chose that name.

use std::net::IpAddr;

/// Why a host name was refused (to follow "`<name>` is not a valid host
/// name: ").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostProblem {
    /// A malformed name.
    Invalid(String),
    /// A label mixing scripts.
    MixedScript {
        label: String,
        scripts: String,
        punycode: String,
    },
    /// A label that imitates an ASCII one.
    Homoglyph {
        label: String,
        looks_like: String,
        punycode: String,
    },
}

impl HostProblem {
    /// What is wrong, in a few words.
    pub fn reason(&self) -> String {
        match self {
            Self::Invalid(why) => why.clone(),
            Self::MixedScript { label, scripts, .. } => {
                format!("label `{label}` mixes {scripts} letters")
            }
            Self::Homoglyph {
                label, looks_like, ..
            } => format!("label `{label}` imitates `{looks_like}` with look-alike letters"),
        }
    }

    /// How to fix it, when there is more to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Invalid(_) => None,
            Self::MixedScript { punycode, .. } | Self::Homoglyph { punycode, .. } => Some(format!(
                "such names are easily mistaken for another; if this is the name you mean, write it as punycode: `{punycode}`"
            )),
        }
    }
}

/// Reads a host name: trims it, drops a final `.`, checks it and returns
/// its ASCII form in lower case. `wildcard` allows a leading `*` label.
pub(crate) fn ascii_host(name: &str, wildcard: bool) -> Result<String, HostProblem> {
    let name = name.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(HostProblem::Invalid("it is empty".to_owned()));
    }
    if let Some(c) = name.chars().find(|c| crate::text::is_unsafe(*c)) {
        return Err(HostProblem::Invalid(format!(
            "it contains the invisible or control character `{}`",
            c.escape_unicode()
        )));
    }
    let (star, rest) = match name.strip_prefix("*.") {
        Some(r) if wildcard => ("*.", r),
        _ => ("", name),
    };
    let ascii = if rest.is_ascii() && !rest.contains("xn--") && !rest.contains("XN--") {
        rest.to_ascii_lowercase()
    } else {
        let ascii = idna::domain_to_ascii(rest).map_err(|_| {
            HostProblem::Invalid("it is not a valid international domain name".to_owned())
        })?;
        if !rest.is_ascii() {
            let (unicode, _) = idna::domain_to_unicode(&ascii);
            for label in unicode.split('.') {
                script_check(label, &ascii, star)?;
            }
        }
        ascii
    };
    let full = format!("{star}{ascii}");
    labels_ok(&full, wildcard).map_err(HostProblem::Invalid)?;
    Ok(full)
}

/// The ASCII form of `name` when it is valid, otherwise `name` as written
/// (lower case, trimmed): for comparing names before validation is done.
pub(crate) fn ascii_or_self(name: &str) -> String {
    ascii_host(name, true).unwrap_or_else(|_| {
        let n = name.trim();
        n.strip_suffix('.').unwrap_or(n).to_lowercase()
    })
}

/// DNS label rules on an ASCII name: labels of letters, digits, inner
/// hyphens and `_` (which service records use), at most 63 octets each
/// and 253 in all, optionally starting with a `*` label.
fn labels_ok(name: &str, wildcard: bool) -> Result<(), String> {
    if name.len() > 253 {
        return Err("it is longer than 253 characters (in its ASCII form)".to_owned());
    }
    for (i, label) in name.split('.').enumerate() {
        if label == "*" && i == 0 && wildcard {
            continue;
        }
        if label.is_empty() {
            return Err("it has an empty label (`..`)".to_owned());
        }
        if label.len() > 63 {
            return Err(format!(
                "label `{label}` is longer than 63 characters (in its ASCII form)"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "label `{label}` may only hold letters, digits, `-` and `_`"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with `-`"));
        }
    }
    Ok(())
}

/// The scripts a host label may be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
    Armenian,
    Hebrew,
    Arabic,
    Devanagari,
    Thai,
    Georgian,
    Hangul,
    Hiragana,
    Katakana,
    Han,
    /// Another script, by its 128-character block.
    Other(u32),
}

impl Script {
    fn name(self) -> String {
        match self {
            Self::Other(block) => format!("U+{:04X} block", block << 7),
            s => format!("{s:?}"),
        }
    }
}

/// The script of `c`, or `None` for characters that go with any script
/// (digits, `-`, combining marks, CJK punctuation).
fn script(c: char) -> Option<Script> {
    let u = u32::from(c);
    let s = match u {
        0x41..=0x5A | 0x61..=0x7A | 0xAA | 0xBA => Script::Latin,
        0xD7 | 0xF7 => return None,
        0xC0..=0x24F | 0x250..=0x2AF | 0x1E00..=0x1EFF | 0x2C60..=0x2C7F | 0xA720..=0xA7FF => {
            Script::Latin
        }
        0xAB30..=0xAB6F | 0xFF21..=0xFF3A | 0xFF41..=0xFF5A => Script::Latin,
        0x300..=0x36F | 0x1AB0..=0x1AFF | 0x1DC0..=0x1DFF | 0x200C | 0x200D => return None,
        0x370..=0x3FF | 0x1F00..=0x1FFF => Script::Greek,
        0x400..=0x52F | 0x1C80..=0x1C8F | 0x2DE0..=0x2DFF | 0xA640..=0xA69F => Script::Cyrillic,
        0x530..=0x58F => Script::Armenian,
        0x590..=0x5FF => Script::Hebrew,
        0x600..=0x6FF | 0x750..=0x77F | 0x8A0..=0x8FF => Script::Arabic,
        0x900..=0x97F => Script::Devanagari,
        0xE00..=0xE7F => Script::Thai,
        0x10A0..=0x10FF | 0x2D00..=0x2D2F => Script::Georgian,
        0x1100..=0x11FF | 0x3130..=0x318F | 0xAC00..=0xD7AF => Script::Hangul,
        0x3000..=0x303F | 0x30FC => return None,
        0x3040..=0x309F => Script::Hiragana,
        0x30A0..=0x30FF | 0x31F0..=0x31FF | 0xFF66..=0xFF9F => Script::Katakana,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF => Script::Han,
        _ if !c.is_alphabetic() => return None,
        _ => Script::Other(u >> 7),
    };
    Some(s)
}

/// Whether a set of scripts (sorted, deduplicated) may share a label.
fn allowed(scripts: &[Script]) -> bool {
    use Script::{Han, Hangul, Hiragana, Katakana, Latin};
    scripts.len() <= 1
        || scripts
            .iter()
            .all(|s| matches!(s, Latin | Han | Hiragana | Katakana))
        || scripts.iter().all(|s| matches!(s, Latin | Han | Hangul))
}

/// The Latin letter a Cyrillic or Greek letter is mistaken for.
fn latin_look_alike(c: char) -> Option<char> {
    Some(match c {
        'а' | 'α' => 'a',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' => 'e',
        'һ' => 'h',
        'і' | 'ι' => 'i',
        'ј' | 'ϳ' => 'j',
        'κ' => 'k',
        'ӏ' => 'l',
        'о' | 'ο' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'υ' => 'u',
        'ν' => 'v',
        'ԝ' => 'w',
        'х' | 'χ' => 'x',
        'у' => 'y',
        _ => return None,
    })
}

fn script_check(label: &str, ascii: &str, star: &str) -> Result<(), HostProblem> {
    let mut scripts: Vec<Script> = label.chars().filter_map(script).collect();
    scripts.sort();
    scripts.dedup();
    let punycode = format!("{star}{ascii}");
    if !allowed(&scripts) {
        let names: Vec<String> = scripts.iter().map(|s| s.name()).collect();
        return Err(HostProblem::MixedScript {
            label: label.to_owned(),
            scripts: join_and(&names),
            punycode,
        });
    }
    if matches!(scripts.as_slice(), [Script::Cyrillic | Script::Greek]) {
        let imitated: Option<String> = label
            .chars()
            .map(|c| {
                if script(c).is_none() {
                    Some(c)
                } else {
                    latin_look_alike(c)
                }
            })
            .collect();
        if let Some(looks_like) = imitated {
            return Err(HostProblem::Homoglyph {
                label: label.to_owned(),
                looks_like,
                punycode,
            });
        }
    }
    Ok(())
}

fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Why a target is reachable only from inside one machine or network:
/// `loopback`, `private`, `link-local` (cloud metadata lives there) or
/// `unspecified`; `None` for a public address or an ordinary name.
pub(crate) fn internal_target(host: &str) -> Option<&'static str> {
    let h = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(&h);
    if h == "localhost" || h.ends_with(".localhost") {
        return Some("loopback");
    }
    match h.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1])) {
                Some("private")
            } else if v4.is_unspecified() {
                Some("unspecified")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal_target(&v4.to_string());
            }
            if v6.is_loopback() {
                Some("loopback")
            } else if first & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if first & 0xfe00 == 0xfc00 {
                Some("private")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_names_are_checked_and_lower_cased() {
        assert_eq!(
            ascii_host("Quickstart.Example.com.", false).as_deref(),
            Ok("quickstart.example.com")
        );
        assert!(ascii_host("_acme-challenge.example.com", false).is_ok());
        assert!(ascii_host("*.example.com", true).is_ok());
        assert!(ascii_host("*.example.com", false).is_err());
        for bad in ["a..b", "-a.b", "a b.c", "", "a\u{202e}b.com"] {
            assert!(ascii_host(bad, false).is_err(), "{bad}");
        }
        assert!(ascii_host(&"a".repeat(64), false).is_err());
    }

    #[test]
    fn single_script_names_become_punycode() {
        assert_eq!(
            ascii_host("bücher.example.com", false).as_deref(),
            Ok("xn--bcher-kva.example.com")
        );
        assert_eq!(
            ascii_host("пример.рф", false).as_deref(),
            Ok("xn--e1afmkfd.xn--p1ai")
        );
        assert!(ascii_host("東京タワー.jp", false).is_ok());
        assert!(ascii_host("xn--shp-ted.example.com", false).is_ok());
    }

    #[test]
    fn mixed_scripts_and_homoglyphs_are_refused_with_their_punycode() {
        let e = ascii_host("shоp.example.com", false).unwrap_err();
        assert!(e.reason().contains("Latin and Cyrillic"), "{e:?}");
        assert!(
            e.hint()
                .unwrap_or_default()
                .contains("xn--shp-ted.example.com"),
            "{e:?}"
        );
        let e = ascii_host("аррӏе.com", false).unwrap_err();
        assert!(e.reason().contains("imitates `apple`"), "{e:?}");
        // Cyrillic that does not pass for Latin is just Cyrillic.
        assert!(ascii_host("пример.com", false).is_ok());
    }

    #[test]
    fn internal_targets() {
        for (h, why) in [
            ("127.0.0.1", Some("loopback")),
            ("localhost", Some("loopback")),
            ("10.0.0.5", Some("private")),
            ("192.168.1.1", Some("private")),
            ("169.254.169.254", Some("link-local")),
            ("[::1]", Some("loopback")),
            ("[fe80::1]", Some("link-local")),
            ("[fd00::1]", Some("private")),
            ("0.0.0.0", Some("unspecified")),
            ("203.0.113.10", None),
            ("app.example.com", None),
        ] {
            assert_eq!(internal_target(h), why, "{h}");
        }
    }
}
