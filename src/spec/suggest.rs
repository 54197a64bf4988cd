//! "Did you mean ...?" for misspelt keys and values.

/// The candidate closest to `word`, when one is close enough to be a
/// likely typo: same text in another case, one a prefix of the other, or
/// an edit distance (with transpositions) of at most a third of the length.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        if c == word {
            continue;
        }
        let cl = c.to_ascii_lowercase();
        let score = if cl == lower || cl.replace(['-', '_'], "") == lower.replace(['-', '_'], "") {
            0
        } else {
            let d = distance(&lower, &cl);
            let limit = (word.chars().count().max(c.chars().count()) / 3).max(1);
            let prefix = lower.len() >= 3 && (cl.starts_with(&lower) || lower.starts_with(&cl));
            if d <= limit {
                d
            } else if prefix {
                limit + 1
            } else {
                continue;
            }
        };
        if best.is_none_or(|(s, _)| score < s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// A hint for a value that is not one of `candidates`: "did you mean `x`?"
/// when one is close, otherwise the list of valid values (when short).
pub(crate) fn hint_for(word: &str, candidates: &[&str]) -> Option<String> {
    if let Some(c) = closest(word, candidates.iter().copied()) {
        return Some(format!("did you mean `{c}`?"));
    }
    one_of(candidates)
}

/// "expected one of `a`, `b`, `c`", for up to 16 candidates.
pub(crate) fn one_of(candidates: &[&str]) -> Option<String> {
    if candidates.is_empty() || candidates.len() > 16 {
        return None;
    }
    let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
    Some(format!("expected one of {}", list.join(", ")))
}

/// Optimal string alignment distance (Levenshtein plus adjacent
/// transpositions), on characters.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    let width = m + 1;
    let mut d = vec![0usize; (n + 1) * width];
    for i in 0..=n {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(m + 1) {
        *cell = j;
    }
    for i in 1..=n {
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = v;
        }
    }
    d[n * width + m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_likely_typos_only() {
        let keys = ["domains", "port", "image", "health_check", "env"];
        assert_eq!(closest("domian", keys), Some("domains"));
        assert_eq!(closest("prot", keys), Some("port"));
        assert_eq!(closest("healthcheck", keys), Some("health_check"));
        assert_eq!(closest("Image", keys), Some("image"));
        assert_eq!(closest("zzz", keys), None);
        assert_eq!(
            closest("automatic", ["auto", "manual", "never"]),
            Some("auto")
        );
        assert_eq!(
            closest("cname", ["A", "AAAA", "CNAME", "TXT"]),
            Some("CNAME")
        );
    }

    #[test]
    fn hints_list_values_when_nothing_is_close() {
        assert_eq!(
            hint_for("qqq", &["auto", "manual"]).as_deref(),
            Some("expected one of `auto`, `manual`")
        );
        assert_eq!(
            hint_for("manul", &["auto", "manual"]).as_deref(),
            Some("did you mean `manual`?")
        );
    }
}
