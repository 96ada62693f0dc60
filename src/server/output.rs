//! Output buffer limits per client class (`client-output-buffer-limit`), with Redis's
//! hard/soft semantics: a client whose pending output (replies not yet on its socket plus
//! queued out-of-band messages) passes the hard limit is disconnected at once; one that
//! stays above the soft limit for the soft seconds is disconnected then.
//!
//! The limits are shared atomics (CONFIG SET changes them for every client at once);
//! each client keeps when it went over its soft limit in its [`Watch`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::config::OutputBufferLimits;

/// A client class, in Redis's CONFIG GET order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Any client not in another class.
    Normal = 0,
    /// A mirror's replication stream (Redis's `slave`/`replica`).
    Replica = 1,
    /// A client subscribed to a channel, pattern or shard channel.
    Pubsub = 2,
}

/// Redis's names, by class index (`slave` is what Redis 7 prints; `replica` is accepted).
const NAMES: [&str; 3] = ["normal", "slave", "pubsub"];

/// One class's limit in bytes and seconds; 0 turns that part off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limit {
    /// Disconnect at once above this.
    pub hard: u64,
    /// Disconnect when above this for `soft_secs`.
    pub soft: u64,
    /// Seconds allowed above `soft`.
    pub soft_secs: u64,
}

/// The runtime limits of every class and the disconnections they caused.
#[derive(Debug, Default)]
pub struct Limits {
    /// hard, soft, soft seconds per class (config `limits.client_output_buffer_limit`).
    classes: [[AtomicU64; 3]; 3],
    /// INFO stats `client_output_buffer_limit_disconnections`.
    disconnections: AtomicU64,
}

/// Why a CONFIG SET of `client-output-buffer-limit` was refused (Redis's words).
const WRONG_COUNT: &str = "Wrong number of arguments in buffer limit configuration.";
const BAD_CLASS: &str = "Invalid client class specified in buffer limit configuration.";
const BAD_VALUE: &str =
    "Error in hard, soft or soft_seconds setting in buffer limit configuration.";

impl Limits {
    /// The limits from the config file.
    pub fn from_config(c: &OutputBufferLimits) -> Limits {
        let l = Limits::default();
        for (class, cfg) in [
            (Class::Normal, c.normal),
            (Class::Replica, c.replica),
            (Class::Pubsub, c.pubsub),
        ] {
            l.store(
                class,
                Limit {
                    hard: cfg.hard.0,
                    soft: cfg.soft.0,
                    soft_secs: cfg.soft_seconds,
                },
            );
        }
        l
    }

    fn store(&self, class: Class, v: Limit) {
        let a = &self.classes[class as usize];
        a[0].store(v.hard, Ordering::Relaxed);
        a[1].store(v.soft, Ordering::Relaxed);
        a[2].store(v.soft_secs, Ordering::Relaxed);
    }

    /// The current limit of a class.
    pub fn get(&self, class: Class) -> Limit {
        let a = &self.classes[class as usize];
        Limit {
            hard: a[0].load(Ordering::Relaxed),
            soft: a[1].load(Ordering::Relaxed),
            soft_secs: a[2].load(Ordering::Relaxed),
        }
    }

    /// CONFIG GET's value: `normal 0 0 0 slave 268435456 67108864 60 pubsub ...`.
    pub fn format(&self) -> String {
        [Class::Normal, Class::Replica, Class::Pubsub]
            .iter()
            .map(|&c| {
                let l = self.get(c);
                format!(
                    "{} {} {} {}",
                    NAMES[c as usize], l.hard, l.soft, l.soft_secs
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// CONFIG SET: groups of `<class> <hard> <soft> <soft seconds>`; only the classes
    /// named change, and nothing changes when any group is wrong.
    pub fn set(&self, value: &str) -> Result<(), &'static str> {
        let words: Vec<&str> = value.split_whitespace().collect();
        if words.is_empty() || !words.len().is_multiple_of(4) {
            return Err(WRONG_COUNT);
        }
        let mut parsed = Vec::new();
        for g in words.chunks(4) {
            let class = match g[0].to_ascii_lowercase().as_str() {
                "normal" => Class::Normal,
                "slave" | "replica" => Class::Replica,
                "pubsub" => Class::Pubsub,
                _ => return Err(BAD_CLASS),
            };
            let (Some(hard), Some(soft), Ok(soft_secs)) =
                (memtoull(g[1]), memtoull(g[2]), g[3].parse::<u64>())
            else {
                return Err(BAD_VALUE);
            };
            parsed.push((
                class,
                Limit {
                    hard,
                    soft,
                    soft_secs,
                },
            ));
        }
        for (class, l) in parsed {
            self.store(class, l);
        }
        Ok(())
    }

    /// Counts a disconnection and logs it as Redis does.
    pub fn disconnected(&self, class: Class, who: &str, pending: u64) {
        tracing::warn!(
            "Client {who} scheduled to be closed ASAP for overcoming of output buffer limits (class {}, {pending} bytes pending).",
            NAMES[class as usize]
        );
        // Counted after the log line: whoever sees the count finds the line.
        self.disconnections.fetch_add(1, Ordering::Relaxed);
    }

    /// INFO stats `client_output_buffer_limit_disconnections`.
    pub fn disconnections(&self) -> u64 {
        self.disconnections.load(Ordering::Relaxed)
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&self) {
        self.disconnections.store(0, Ordering::Relaxed);
    }
}

/// Redis's `memtoull`: digits and an optional unit, `k`/`m`/`g` powers of 1000, `kb`/
/// `mb`/`gb` powers of 1024, `b` bytes (case-insensitive).
fn memtoull(s: &str) -> Option<u64> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    let n: u64 = if num.is_empty() { 0 } else { num.parse().ok()? };
    n.checked_mul(mul)
}

/// When one client went over its soft limit (Redis's `obuf_soft_limit_reached_time`).
#[derive(Debug, Default)]
pub struct Watch {
    /// Milliseconds since `base` + 1 when it went over; 0 while under.
    since: AtomicU64,
}

impl Watch {
    /// True when `pending` bytes break `limit` now: over hard, or over soft for longer
    /// than the soft seconds. `base` is any fixed instant (the client's creation).
    pub fn breaks(&self, limit: Limit, pending: u64, base: Instant) -> bool {
        if limit.hard > 0 && pending >= limit.hard {
            return true;
        }
        if limit.soft == 0 || pending < limit.soft {
            self.since.store(0, Ordering::Relaxed);
            return false;
        }
        let now = base.elapsed().as_millis() as u64 + 1;
        let since = match self
            .since
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => now,
            Err(t) => t,
        };
        // Another thread (a publisher) may have stored a later start than this `now`.
        now.saturating_sub(since) > limit.soft_secs.saturating_mul(1000)
    }

    /// Whether the client is over its soft limit now.
    #[cfg(test)]
    fn over_soft(&self) -> bool {
        self.since.load(Ordering::Relaxed) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_get_and_set_in_redis_format() {
        let l = Limits::from_config(&OutputBufferLimits::default());
        assert_eq!(
            l.format(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert_eq!(l.set("normal 1mb 512kb 10 replica 1g 2m 5"), Ok(()));
        assert_eq!(
            l.format(),
            "normal 1048576 524288 10 slave 1000000000 2000000 5 pubsub 33554432 8388608 60"
        );
        assert_eq!(l.set("normal 1 2"), Err(WRONG_COUNT));
        assert_eq!(l.set("master 0 0 0"), Err(BAD_CLASS));
        assert_eq!(l.set("pubsub -1 0 0"), Err(BAD_VALUE));
        assert_eq!(l.set("pubsub 1 1 x"), Err(BAD_VALUE));
        assert_eq!(l.set("pubsub 1 1xb 1"), Err(BAD_VALUE));
        assert_eq!(l.set("pubsub 1 1 1 normal 0 0 -1"), Err(BAD_VALUE));
        assert_eq!(l.get(Class::Pubsub).hard, 32 << 20, "nothing changed");
    }

    #[test]
    fn hard_at_once_soft_after_its_seconds() {
        let w = Watch::default();
        let base = Instant::now();
        let l = Limit {
            hard: 100,
            soft: 10,
            soft_secs: 0,
        };
        assert!(w.breaks(l, 100, base));
        assert!(!w.breaks(l, 9, base));
        assert!(!w.over_soft());
        let slow = Limit {
            soft_secs: 3600,
            ..l
        };
        assert!(!w.breaks(slow, 50, base), "over soft, but not for long");
        assert!(w.over_soft());
        assert!(!w.breaks(slow, 5, base));
        assert!(!w.over_soft(), "back under: the clock restarts");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(!w.breaks(l, 50, base));
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(
            w.breaks(l, 50, base),
            "soft 0 seconds: broken once time passed"
        );
    }
}
