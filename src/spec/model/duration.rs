//! Durations as people write them: `500ms`, `30s`, `5m`, `1h30m`.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// The pattern the JSON Schema gives editors; [`Duration::from_str`] is
/// the rule that is enforced.
pub const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";

/// The longest duration accepted anywhere in a spec: a week. Anything
/// longer is a typo (`5000h`) rather than an intent.
const MAX: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// A length of time, written as one or more `<number><unit>` parts with
/// units `ms`, `s`, `m`, `h` (`90s`, `1m30s`). It serialises in a
/// canonical form (`1m30s`), so `90s` and `1m30s` mean, and hash, the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDuration {
    /// Not of the form `<number><unit>...`.
    #[error("`{0}` is not a duration")]
    Syntax(String),
    /// Longer than a week.
    #[error("`{0}` is longer than a week")]
    TooLong(String),
}

impl Duration {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// The standard library value.
    pub fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whole seconds, when the duration is a whole number of seconds (the
    /// unit Coolify health checks and Uptime Kuma intervals use).
    pub fn whole_secs(self) -> Option<u64> {
        (self.0.subsec_nanos() == 0).then_some(self.0.as_secs())
    }
}

impl FromStr for Duration {
    type Err = InvalidDuration;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || InvalidDuration::Syntax(s.to_owned());
        let b = s.as_bytes();
        if b.is_empty() {
            return Err(syntax());
        }
        let mut i = 0;
        let mut total_ms: u128 = 0;
        while i < b.len() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(syntax());
            }
            // More digits than fit a week in milliseconds: too long, not
            // malformed (the unit is still checked).
            let n: u128 = if i - start > 15 {
                u128::MAX
            } else {
                s[start..i].parse().map_err(|_| syntax())?
            };
            let unit_ms: u128 = if b[i..].starts_with(b"ms") {
                i += 2;
                1
            } else {
                let u = match b.get(i) {
                    Some(b's') => 1_000,
                    Some(b'm') => 60_000,
                    Some(b'h') => 3_600_000,
                    _ => return Err(syntax()),
                };
                i += 1;
                u
            };
            total_ms = total_ms.saturating_add(n.saturating_mul(unit_ms));
        }
        if total_ms > MAX.as_millis() {
            return Err(InvalidDuration::TooLong(s.to_owned()));
        }
        let ms = u64::try_from(total_ms).map_err(|_| InvalidDuration::TooLong(s.to_owned()))?;
        Ok(Self(std::time::Duration::from_millis(ms)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.0.as_millis();
        if total == 0 {
            return f.write_str("0s");
        }
        let (h, rest) = (total / 3_600_000, total % 3_600_000);
        let (m, rest) = (rest / 60_000, rest % 60_000);
        let (s, ms) = (rest / 1000, rest % 1000);
        for (n, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = Schema::default();
        s.insert("type".into(), "string".into());
        s.insert("pattern".into(), DURATION_PATTERN.into());
        s.insert(
            "description".into(),
            "A length of time: one or more `<number><unit>` parts, units `ms`, `s`, `m`, `h` (`30s`, `5m`, `1h30m`).".into(),
        );
        s.insert("examples".into(), serde_json::json!(["30s", "5m", "1h30m"]));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        for (s, canon) in [
            ("30s", "30s"),
            ("90s", "1m30s"),
            ("1m30s", "1m30s"),
            ("500ms", "500ms"),
            ("2h", "2h"),
            ("1h0m5s", "1h5s"),
            ("0s", "0s"),
        ] {
            let d: Duration = s.parse().unwrap_or_default();
            assert_eq!(d.to_string(), canon, "{s}");
        }
        for bad in [
            "",
            "30",
            "s",
            "5 m",
            "1d",
            "-5s",
            "1.5s",
            "9999999999999h",
            "99999999999999999999x",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
        for long in [
            "9999999999999h",
            "99999999999999999999s",
            "18446744073709551616ms",
        ] {
            assert!(
                matches!(long.parse::<Duration>(), Err(InvalidDuration::TooLong(_))),
                "{long}"
            );
        }
        assert!(matches!(
            "200h".parse::<Duration>(),
            Err(InvalidDuration::TooLong(_))
        ));
        assert_eq!(
            "5m".parse::<Duration>().ok().and_then(Duration::whole_secs),
            Some(300)
        );
        assert_eq!(
            "1500ms"
                .parse::<Duration>()
                .ok()
                .and_then(Duration::whole_secs),
            None
        );
    }
}
