//! Durations in settings: a number of seconds, or `90s`, `15m`, `12h`, `7d`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A duration in whole seconds, written as a number of seconds or as `90s`, `15m`, `12h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(into = "u64")]
pub struct Secs(pub u64);

impl Secs {
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl From<Secs> for u64 {
    fn from(s: Secs) -> u64 {
        s.0
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// Parses `"900"`, `"90s"`, `"15m"`, `"12h"` or `"7d"`.
pub fn parse_duration(text: &str) -> Result<Secs, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (use seconds or e.g. 90s, 15m, 7d)"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}` has an unknown unit (use s, m, h or d)")),
    };
    value
        .checked_mul(factor)
        .map(Secs)
        .ok_or_else(|| format!("`{text}` is too long"))
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Secs(n)),
            Raw::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_and_units() {
        assert_eq!(parse_duration("900"), Ok(Secs(900)));
        assert_eq!(parse_duration("90s"), Ok(Secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Secs(604_800)));
        assert!(parse_duration("15x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
