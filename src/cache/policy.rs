//! A cache's policy: the settings `CACHE.CONFIG` may change while the server runs.
//! Each is an atomic so the store reads them on every access without a lock.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::config::{CacheConfig, Dur, Eviction, Size};

/// The live policy of one cache. 0 means "none" for every limit and duration.
#[derive(Debug, Default)]
pub struct Policy {
    ttl_ms: AtomicU64,
    tti_ms: AtomicU64,
    max_entries: AtomicU64,
    max_memory: AtomicU64,
    eviction: AtomicU8,
}

/// A copy of a policy at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicySnapshot {
    /// Default TTL in ms for writes that set none; 0 = none.
    pub ttl_ms: u64,
    /// Idle expiry in ms; 0 = none.
    pub tti_ms: u64,
    /// Entry limit; 0 = unlimited.
    pub max_entries: u64,
    /// Byte limit; 0 = unlimited.
    pub max_memory: u64,
    /// What happens when a limit is reached.
    pub eviction: Eviction,
}

/// The fields `CACHE.CONFIG` accepts.
pub const FIELDS: [&str; 5] = ["ttl", "tti", "max_entries", "max_memory", "eviction"];

const EVICTIONS: [Eviction; 4] = [
    Eviction::Lru,
    Eviction::Lfu,
    Eviction::Random,
    Eviction::None,
];

/// The config name of an eviction policy.
pub fn eviction_name(e: Eviction) -> &'static str {
    match e {
        Eviction::Lru => "lru",
        Eviction::Lfu => "lfu",
        Eviction::Random => "random",
        Eviction::None => "none",
    }
}

impl Policy {
    /// The policy a cache starts with.
    pub fn from_config(c: &CacheConfig) -> Policy {
        let p = Policy::default();
        p.ttl_ms
            .store(c.ttl.map_or(0, |d| d.as_millis()), Ordering::Relaxed);
        p.tti_ms
            .store(c.tti.map_or(0, |d| d.as_millis()), Ordering::Relaxed);
        p.max_entries
            .store(c.max_entries.unwrap_or(0), Ordering::Relaxed);
        p.max_memory
            .store(c.max_memory.map_or(0, |s| s.0), Ordering::Relaxed);
        p.set_eviction(c.eviction);
        p
    }

    /// Default TTL in ms (0 = none).
    #[inline]
    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms.load(Ordering::Relaxed)
    }

    /// Idle expiry in ms (0 = none).
    #[inline]
    pub fn tti_ms(&self) -> u64 {
        self.tti_ms.load(Ordering::Relaxed)
    }

    /// Entry limit (0 = unlimited).
    #[inline]
    pub fn max_entries(&self) -> u64 {
        self.max_entries.load(Ordering::Relaxed)
    }

    /// Byte limit (0 = unlimited).
    #[inline]
    pub fn max_memory(&self) -> u64 {
        self.max_memory.load(Ordering::Relaxed)
    }

    /// The eviction policy.
    #[inline]
    pub fn eviction(&self) -> Eviction {
        EVICTIONS[usize::from(self.eviction.load(Ordering::Relaxed)) % EVICTIONS.len()]
    }

    fn set_eviction(&self, e: Eviction) {
        let i = EVICTIONS.iter().position(|x| *x == e).unwrap_or(0);
        self.eviction.store(i as u8, Ordering::Relaxed);
    }

    /// True when the cache has an entry or byte limit.
    #[inline]
    pub fn is_bounded(&self) -> bool {
        self.max_entries() != 0 || self.max_memory() != 0
    }

    /// All fields at once.
    pub fn snapshot(&self) -> PolicySnapshot {
        PolicySnapshot {
            ttl_ms: self.ttl_ms(),
            tti_ms: self.tti_ms(),
            max_entries: self.max_entries(),
            max_memory: self.max_memory(),
            eviction: self.eviction(),
        }
    }

    /// Checks `field value` as `CACHE.CONFIG` would apply it. Durations and sizes take the
    /// config file's units (`30m`, `256m`); `0` removes a limit.
    pub fn check(field: &str, value: &str) -> Result<Setting, String> {
        let field = field.to_ascii_lowercase();
        let v = value.trim();
        let dur = || {
            Dur::parse(v)
                .map(|d| d.as_millis())
                .map_err(|e| format!("invalid {field}: {e}"))
        };
        Ok(match field.as_str() {
            "ttl" => Setting::Ttl(dur()?),
            "tti" => Setting::Tti(dur()?),
            "max_entries" => Setting::MaxEntries(
                v.parse::<u64>()
                    .map_err(|_| format!("invalid max_entries '{v}': expected a count"))?,
            ),
            "max_memory" => Setting::MaxMemory(
                Size::parse(v)
                    .map_err(|e| format!("invalid max_memory: {e}"))?
                    .0,
            ),
            "eviction" => Setting::Eviction(
                EVICTIONS
                    .into_iter()
                    .find(|e| eviction_name(*e).eq_ignore_ascii_case(v))
                    .ok_or_else(|| {
                        format!("invalid eviction '{v}': expected lru, lfu, random or none")
                    })?,
            ),
            _ => {
                return Err(format!(
                    "unknown cache field '{field}': expected one of {}",
                    FIELDS.join(", ")
                ));
            }
        })
    }

    /// Applies a checked setting.
    pub fn apply(&self, s: Setting) {
        match s {
            Setting::Ttl(ms) => self.ttl_ms.store(ms, Ordering::Relaxed),
            Setting::Tti(ms) => self.tti_ms.store(ms, Ordering::Relaxed),
            Setting::MaxEntries(n) => self.max_entries.store(n, Ordering::Relaxed),
            Setting::MaxMemory(n) => self.max_memory.store(n, Ordering::Relaxed),
            Setting::Eviction(e) => self.set_eviction(e),
        }
    }
}

/// One checked `CACHE.CONFIG` change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Default TTL in ms.
    Ttl(u64),
    /// Idle expiry in ms.
    Tti(u64),
    /// Entry limit.
    MaxEntries(u64),
    /// Byte limit.
    MaxMemory(u64),
    /// Eviction policy.
    Eviction(Eviction),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_parses_units_and_rejects_nonsense() {
        assert_eq!(
            Policy::check("TTL", "6h"),
            Ok(Setting::Ttl(6 * 3600 * 1000))
        );
        assert_eq!(Policy::check("tti", "0"), Ok(Setting::Tti(0)));
        assert_eq!(
            Policy::check("max_memory", "1m"),
            Ok(Setting::MaxMemory(1 << 20))
        );
        assert_eq!(
            Policy::check("eviction", "LFU"),
            Ok(Setting::Eviction(Eviction::Lfu))
        );
        assert!(Policy::check("max_entries", "-1").is_err());
        assert!(Policy::check("eviction", "fifo").is_err());
        assert!(Policy::check("colour", "red").is_err());
    }

    #[test]
    fn apply_round_trips() {
        let p = Policy::default();
        p.apply(Setting::Eviction(Eviction::None));
        p.apply(Setting::MaxEntries(10));
        let s = p.snapshot();
        assert_eq!(s.eviction, Eviction::None);
        assert_eq!(s.max_entries, 10);
        assert!(p.is_bounded());
    }
}
