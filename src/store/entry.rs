//! One stored entry: its value and the metadata expiry, eviction and caches need.

use bytes::Bytes;
use smallvec::SmallVec;

/// A stored key. Keys up to 24 bytes live inline in the map slot, so a lookup compares
/// against bytes already in cache instead of chasing a pointer to a separate allocation.
pub type Key = SmallVec<[u8; 24]>;

/// Bytes counted per entry on top of key and value (map slot, metadata, allocator headers).
/// An estimate: `used_memory` and per-cache `max_memory` are computed from it.
pub const ENTRY_OVERHEAD: usize = 72;

/// Redis's LFU_INIT_VAL: new keys start here so they are not evicted at once.
pub const LFU_INIT: u8 = 5;

/// A value. Only strings exist so far; other types join this enum, and every command
/// checks the type it expects through [`Value::as_str`] so WRONGTYPE comes for free.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string (Redis's binary-safe string).
    Str(Bytes),
}

impl Value {
    /// The `TYPE` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The string, or `None` for another type (the caller answers WRONGTYPE).
    pub fn as_str(&self) -> Option<&Bytes> {
        match self {
            Value::Str(b) => Some(b),
        }
    }

    /// Bytes the value occupies.
    pub fn mem(&self) -> usize {
        match self {
            Value::Str(b) => b.len(),
        }
    }

    /// `OBJECT ENCODING`, as Redis would report it.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(b) => {
                let is_int = b.len() <= 20 && crate::protocol::args::parse_i64(b).is_ok();
                if is_int {
                    "int"
                } else if b.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
        }
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// Absolute expiry in unix milliseconds; 0 = never.
    pub expire_at: u64,
    /// Last access in unix milliseconds (LRU, idle expiry, OBJECT IDLETIME).
    pub atime: u64,
    /// Logarithmic access counter (LFU, OBJECT FREQ).
    pub lfu: u8,
}

impl Entry {
    /// A new entry accessed now.
    pub fn new(value: Value, expire_at: u64, now: u64) -> Entry {
        Entry {
            value,
            expire_at,
            atime: now,
            lfu: LFU_INIT,
        }
    }

    /// True when the entry's TTL has passed at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now
    }

    /// Records an access: the LFU counter decays by one per idle minute (Redis's
    /// `lfu-decay-time 1`) then grows logarithmically (`lfu-log-factor 10`).
    pub fn touch(&mut self, now: u64) {
        self.lfu = self.freq(now);
        if self.lfu < u8::MAX {
            let base = f64::from(self.lfu.saturating_sub(LFU_INIT));
            if fastrand::f64() < 1.0 / (base * 10.0 + 1.0) {
                self.lfu += 1;
            }
        }
        self.atime = now;
    }

    /// The LFU counter as of `now`, after decay.
    pub fn freq(&self, now: u64) -> u8 {
        let idle_minutes = now.saturating_sub(self.atime) / 60_000;
        self.lfu
            .saturating_sub(u8::try_from(idle_minutes).unwrap_or(u8::MAX))
    }

    /// Bytes charged for this entry with key length `klen`.
    pub fn mem(&self, klen: usize) -> usize {
        klen + self.value.mem() + ENTRY_OVERHEAD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(Value::Str(Bytes::from("123")).encoding(), "int");
        assert_eq!(Value::Str(Bytes::from("0123")).encoding(), "embstr");
        assert_eq!(Value::Str(Bytes::from(vec![b'x'; 45])).encoding(), "raw");
    }

    #[test]
    fn lfu_grows_slowly_and_decays() {
        let mut e = Entry::new(Value::Str(Bytes::new()), 0, 0);
        for _ in 0..1000 {
            e.touch(0);
        }
        assert!(e.lfu > LFU_INIT && e.lfu < 40, "lfu {}", e.lfu);
        let before = e.lfu;
        assert_eq!(e.freq(3 * 60_000), before - 3);
    }

    #[test]
    fn expiry() {
        let e = Entry::new(Value::Str(Bytes::new()), 100, 0);
        assert!(!e.is_expired(99));
        assert!(e.is_expired(100));
        assert!(!Entry::new(Value::Str(Bytes::new()), 0, 0).is_expired(u64::MAX));
    }
}
