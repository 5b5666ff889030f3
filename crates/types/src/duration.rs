use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::TypesError;

/// A positive duration written like `90s`, `30m`, `8h`, `1h30m`, `7d`.
/// Built only by parsing; printed back in the same style.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(Duration);

/// Ten years: anything longer is a typo, not a policy.
const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

impl Ttl {
    /// A TTL from a whole number of seconds (must be > 0 and ≤ 10 years).
    pub fn from_secs(secs: u64) -> Result<Self, TypesError> {
        Self::new(Duration::from_secs(secs))
    }

    /// Validated constructor.
    pub fn new(d: Duration) -> Result<Self, TypesError> {
        if d.is_zero() {
            return Err(TypesError::invalid("ttl", "must be greater than zero"));
        }
        if d > MAX_TTL {
            return Err(TypesError::invalid(
                "ttl",
                "must be at most 10 years (3650d)",
            ));
        }
        Ok(Self(d))
    }

    /// For compile-time constants known to be in range (1 s ..= 10 years).
    pub(crate) const fn constant_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    pub fn as_duration(&self) -> Duration {
        self.0
    }

    pub fn as_secs(&self) -> u64 {
        self.0.as_secs()
    }
}

impl FromStr for Ttl {
    type Err = TypesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            TypesError::invalid(
                "duration",
                format!("{s:?} is not a duration; write e.g. 90s, 30m, 8h, 1h30m or 7d"),
            )
        };
        let s = s.trim();
        if s.is_empty() || s.len() > 32 {
            return Err(bad());
        }
        let mut total: u64 = 0;
        let mut number: Option<u64> = None;
        for c in s.chars() {
            if let Some(d) = c.to_digit(10) {
                let n = number.unwrap_or(0);
                number = Some(
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d)))
                        .ok_or_else(bad)?,
                );
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                _ => return Err(bad()),
            };
            let n = number.take().ok_or_else(bad)?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        if number.is_some() {
            // A bare trailing number ("90") is ambiguous: demand a unit.
            return Err(bad());
        }
        Ttl::from_secs(total)
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut secs = self.0.as_secs();
        let mut wrote = false;
        for (unit, name) in [(86_400, 'd'), (3600, 'h'), (60, 'm'), (1, 's')] {
            if secs >= unit {
                write!(f, "{}{}", secs / unit, name)?;
                secs %= unit;
                wrote = true;
            }
        }
        if !wrote {
            write!(f, "0s")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ttl({self})")
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Ttl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (s, secs, back) in [
            ("90s", 90, "1m30s"),
            ("8h", 28_800, "8h"),
            ("1h30m", 5400, "1h30m"),
            ("7d", 604_800, "7d"),
        ] {
            let t: Ttl = s.parse().unwrap();
            assert_eq!(t.as_secs(), secs);
            assert_eq!(t.to_string(), back);
        }
    }

    #[test]
    fn rejects_nonsense() {
        for s in [
            "",
            "0s",
            "90",
            "h",
            "1x",
            "-5m",
            "99999999999999999999d",
            "3651d",
            "1h 30m",
        ] {
            assert!(s.parse::<Ttl>().is_err(), "{s} should be rejected");
        }
    }
}
