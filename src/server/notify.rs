//! Keyspace notifications (`notify-keyspace-events`): the event classes commands report
//! their changes under, the flag letters that select them, and the two channels each event
//! is published on.
//!
//! Commands call [`ExecCtx::notify`](crate::command::ExecCtx::notify) once per change,
//! with Redis's event name (`hset`, `lpush`, `expire`, `del`, ...) and class. Keys the
//! store removes on its own (`expired`, `evicted`) are collected by the store and
//! published by the server (see [`crate::server::Shared::deliver_notices`]): the store
//! never publishes. Only an active generates events; a mirror applying its records does
//! not, so each change is announced once, cluster-wide (see `cluster::relay`).

use std::sync::atomic::{AtomicU32, Ordering};

/// An event class: one letter of `notify-keyspace-events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `g`: DEL, EXPIRE, RENAME, ... (type-independent commands).
    Generic,
    /// `$`: string commands.
    String,
    /// `l`: list commands.
    List,
    /// `s`: set commands.
    Set,
    /// `h`: hash commands.
    Hash,
    /// `z`: sorted-set commands.
    ZSet,
    /// `x`: a key removed because its TTL passed.
    Expired,
    /// `e`: a key evicted to make room.
    Evicted,
    /// `n`: a new key (off in `A`, as in Redis).
    New,
    /// `t`: stream commands.
    Stream,
    /// `m`: a read of a missing key (off in `A`, as in Redis).
    KeyMiss,
}

/// `K`: publish on `__keyspace@0__:<key>`.
const KEYSPACE: u32 = 1 << 0;
/// `E`: publish on `__keyevent@0__:<event>`.
const KEYEVENT: u32 = 1 << 1;
const GENERIC: u32 = 1 << 2;
const STRING: u32 = 1 << 3;
const LIST: u32 = 1 << 4;
const SET: u32 = 1 << 5;
const HASH: u32 = 1 << 6;
const ZSET: u32 = 1 << 7;
const EXPIRED: u32 = 1 << 8;
const EVICTED: u32 = 1 << 9;
const STREAM: u32 = 1 << 10;
const KEY_MISS: u32 = 1 << 11;
const MODULE: u32 = 1 << 12;
const NEW: u32 = 1 << 13;
/// `A`: every class but `m` and `n` (Redis's NOTIFY_ALL, module events included).
const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// The letters of the type classes, in the order CONFIG GET prints them.
const CLASS_LETTERS: [(u32, char); 11] = [
    (GENERIC, 'g'),
    (STRING, '$'),
    (LIST, 'l'),
    (SET, 's'),
    (HASH, 'h'),
    (ZSET, 'z'),
    (EXPIRED, 'x'),
    (EVICTED, 'e'),
    (STREAM, 't'),
    (MODULE, 'd'),
    (NEW, 'n'),
];

/// Redis's CONFIG SET error for a letter it does not know.
pub const INVALID: &str = "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.";

impl Class {
    fn bit(self) -> u32 {
        match self {
            Class::Generic => GENERIC,
            Class::String => STRING,
            Class::List => LIST,
            Class::Set => SET,
            Class::Hash => HASH,
            Class::ZSet => ZSET,
            Class::Expired => EXPIRED,
            Class::Evicted => EVICTED,
            Class::New => NEW,
            Class::Stream => STREAM,
            Class::KeyMiss => KEY_MISS,
        }
    }
}

/// A parsed `notify-keyspace-events` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Events(u32);

impl Events {
    /// Parses Redis's flag letters (`KEA`, `Ex`, ...); `None` for an unknown letter.
    /// The empty string turns notifications off.
    pub fn parse(s: &str) -> Option<Events> {
        let mut f = 0;
        for c in s.chars() {
            f |= match c {
                'A' => ALL,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                'm' => KEY_MISS,
                c => CLASS_LETTERS.iter().find(|(_, l)| *l == c)?.0,
            };
        }
        Some(Events(f))
    }

    /// The normalised letters CONFIG GET answers, as Redis prints them: `A` when every
    /// class of `A` is on (then `n` is not shown, as in Redis), else the class letters;
    /// then `K`, `E`, `m`.
    pub fn to_letters(self) -> String {
        let mut s = String::new();
        if self.0 & ALL == ALL {
            s.push('A');
        } else {
            for (bit, l) in CLASS_LETTERS {
                if self.0 & bit != 0 {
                    s.push(l);
                }
            }
        }
        for (bit, l) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
            if self.0 & bit != 0 {
                s.push(l);
            }
        }
        s
    }

    /// Whether an event of `class` is published, and on which channels: (keyspace,
    /// keyevent). Both false when the class is off or neither `K` nor `E` is set.
    pub fn channels(self, class: Class) -> (bool, bool) {
        if self.0 & class.bit() == 0 {
            return (false, false);
        }
        (self.0 & KEYSPACE != 0, self.0 & KEYEVENT != 0)
    }

    /// Whether any event of `class` would be published.
    pub fn wants(self, class: Class) -> bool {
        let (k, e) = self.channels(class);
        k || e
    }
}

/// The live setting, shared by every connection (CONFIG SET changes it at once).
#[derive(Debug, Default)]
pub struct Setting(AtomicU32);

impl Setting {
    /// A setting holding `e`.
    pub fn new(e: Events) -> Setting {
        Setting(AtomicU32::new(e.0))
    }

    /// The current value.
    pub fn get(&self) -> Events {
        Events(self.0.load(Ordering::Relaxed))
    }

    /// Replaces the value.
    pub fn set(&self, e: Events) {
        self.0.store(e.0, Ordering::Relaxed);
    }
}

/// The keyspace channel of `key` in database 0.
pub fn keyspace_channel(key: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(15 + key.len());
    c.extend_from_slice(b"__keyspace@0__:");
    c.extend_from_slice(key);
    c
}

/// The keyevent channel of `event` in database 0.
pub fn keyevent_channel(event: &str) -> Vec<u8> {
    let mut c = Vec::with_capacity(15 + event.len());
    c.extend_from_slice(b"__keyevent@0__:");
    c.extend_from_slice(event.as_bytes());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> Option<String> {
        Events::parse(s).map(Events::to_letters)
    }

    #[test]
    fn letters_normalise_like_redis() {
        // Each pair was checked against redis-server 7.0's CONFIG SET / CONFIG GET.
        assert_eq!(norm("KEA").as_deref(), Some("AKE"));
        assert_eq!(norm("Kx").as_deref(), Some("xK"));
        assert_eq!(norm("Egx$lshzetdmn").as_deref(), Some("AEm"));
        assert_eq!(norm("ndt").as_deref(), Some("tdn"));
        assert_eq!(norm("g$lshzxet").as_deref(), Some("g$lshzxet"));
        assert_eq!(norm("Kn").as_deref(), Some("nK"));
        assert_eq!(norm("Km").as_deref(), Some("Km"));
        assert_eq!(norm("").as_deref(), Some(""));
        assert_eq!(norm("xyz"), None);
        assert_eq!(norm("K E"), None);
        assert_eq!(norm("k"), None);
    }

    #[test]
    fn channels_need_a_class_and_k_or_e() {
        let e = Events::parse("Kg").unwrap_or_default();
        assert_eq!(e.channels(Class::Generic), (true, false));
        assert_eq!(e.channels(Class::String), (false, false));
        let e = Events::parse("A").unwrap_or_default();
        assert!(!e.wants(Class::Generic), "no K nor E: nothing is published");
        let e = Events::parse("EA").unwrap_or_default();
        assert_eq!(e.channels(Class::Expired), (false, true));
        assert!(!e.wants(Class::New), "A leaves out n");
        assert!(!e.wants(Class::KeyMiss), "A leaves out m");
        assert!(Events::parse("En").unwrap_or_default().wants(Class::New));
    }

    #[test]
    fn channel_names() {
        assert_eq!(keyspace_channel(b"k"), b"__keyspace@0__:k");
        assert_eq!(keyevent_channel("del"), b"__keyevent@0__:del");
    }
}
