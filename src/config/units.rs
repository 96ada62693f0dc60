//! Human-friendly units in the config file: sizes (`256m`, `4g`, `512mb`) and durations
//! (`500ms`, `5s`, `30m`, `6h`, `1d`). Both deserialize from a string or a bare integer
//! (bytes or seconds), so `heap: 1048576` and `heap: 1m` mean the same.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A size in bytes. Suffixes are powers of 1024 as in redis.conf: `k`/`kb`, `m`/`mb`,
/// `g`/`gb`, `t`/`tb` (case-insensitive); no suffix means bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Size(pub u64);

/// A duration. Suffixes: `ms`, `s`, `m`, `h`, `d`; a bare number means seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl Size {
    /// Parses `"256m"`, `"4g"`, `"100"`.
    pub fn parse(s: &str) -> Result<Size, String> {
        let t = s.trim().to_ascii_lowercase();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("'{s}' is not a size (expected e.g. 512, 64k, 256m, 4g)"))?;
        let mult: u64 = match unit.trim() {
            "" | "b" => 1,
            "k" | "kb" => 1 << 10,
            "m" | "mb" => 1 << 20,
            "g" | "gb" => 1 << 30,
            "t" | "tb" => 1 << 40,
            other => {
                return Err(format!(
                    "'{s}': unknown size unit '{other}' (use k, m, g or t)"
                ));
            }
        };
        n.checked_mul(mult)
            .map(Size)
            .ok_or_else(|| format!("'{s}' is too large"))
    }
}

impl Dur {
    /// Parses `"500ms"`, `"5s"`, `"6h"`, `"10"` (seconds).
    pub fn parse(s: &str) -> Result<Dur, String> {
        let t = s.trim().to_ascii_lowercase();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        let n: u64 = num.parse().map_err(|_| {
            format!("'{s}' is not a duration (expected e.g. 500ms, 5s, 30m, 6h, 1d)")
        })?;
        let ms_per: u64 = match unit.trim() {
            "ms" => 1,
            "" | "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => {
                return Err(format!(
                    "'{s}': unknown duration unit '{other}' (use ms, s, m, h or d)"
                ));
            }
        };
        n.checked_mul(ms_per)
            .map(|ms| Dur(Duration::from_millis(ms)))
            .ok_or_else(|| format!("'{s}' is too large"))
    }

    /// Whole milliseconds.
    pub fn as_millis(&self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// True for a zero duration (used for "disabled").
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (shift, unit) in [(40, "t"), (30, "g"), (20, "m"), (10, "k")] {
            if b != 0 && b.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{}", b >> shift, unit);
            }
        }
        write!(f, "{b}")
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.as_millis();
        for (per, unit) in [
            (86_400_000, "d"),
            (3_600_000, "h"),
            (60_000, "m"),
            (1_000, "s"),
        ] {
            if ms != 0 && ms.is_multiple_of(per) {
                return write!(f, "{}{}", ms / per, unit);
            }
        }
        write!(f, "{ms}ms")
    }
}

/// Accepts a string with a unit or a bare unsigned integer.
struct UnitVisitor<T>(fn(&str) -> Result<T, String>, &'static str);

impl<T> Visitor<'_> for UnitVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.1)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.0)(&v.to_string()).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        if v < 0 {
            return Err(E::custom(format!("{v} is negative")));
        }
        (self.0)(&v.to_string()).map_err(E::custom)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor(
            Size::parse,
            "a size such as 512, 64k, 256m or 4g",
        ))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UnitVisitor(
            Dur::parse,
            "a duration such as 500ms, 5s, 30m or 6h",
        ))
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(Size::parse("256m"), Ok(Size(256 << 20)));
        assert_eq!(Size::parse("4g"), Ok(Size(4 << 30)));
        assert_eq!(Size::parse("512MB"), Ok(Size(512 << 20)));
        assert_eq!(Size::parse("100"), Ok(Size(100)));
        assert_eq!(Size::parse("1kb"), Ok(Size(1024)));
        assert!(Size::parse("4x").is_err());
        assert!(Size::parse("g").is_err());
        assert!(Size::parse("99999999999t").is_err());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(Dur::parse("500ms").map(|d| d.as_millis()), Ok(500));
        assert_eq!(Dur::parse("5s").map(|d| d.as_millis()), Ok(5_000));
        assert_eq!(Dur::parse("30m").map(|d| d.as_millis()), Ok(1_800_000));
        assert_eq!(Dur::parse("6h").map(|d| d.as_millis()), Ok(21_600_000));
        assert_eq!(Dur::parse("10").map(|d| d.as_millis()), Ok(10_000));
        assert!(Dur::parse("5 parsecs").is_err());
        assert!(Dur::parse("-5s").is_err());
    }

    #[test]
    fn display_round_trips() {
        for s in ["256m", "4g", "1000", "3k"] {
            assert_eq!(Size::parse(s).map(|v| v.to_string()), Ok(s.to_string()));
        }
        for s in ["500ms", "5s", "30m", "6h", "1d"] {
            assert_eq!(Dur::parse(s).map(|v| v.to_string()), Ok(s.to_string()));
        }
    }
}
