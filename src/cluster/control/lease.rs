//! The active's lease: the time until which the Raft leader has promised not to promote
//! another server of its stripe. An active serves writes and strong reads only while it
//! holds one (REPLICATION.md, "Failover" rule 5).
//!
//! The lease runs from when the active *sent* the report that earned it, on its own
//! monotonic clock, so network and queueing delays only shorten it. The leader promotes
//! only after `election_time` of silence, counted from when it *received* the last report;
//! the lease lasts half of that: the other half is the safety margin for clock drift.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A lease, shared by the reporter (which extends it) and the write path (which checks it).
#[derive(Debug)]
pub struct Lease {
    base: Instant,
    /// Microseconds after `base` until which it is held; 0 = not held.
    until_us: AtomicU64,
}

impl Default for Lease {
    fn default() -> Self {
        Lease {
            base: Instant::now(),
            until_us: AtomicU64::new(0),
        }
    }
}

impl Lease {
    /// Extends the lease to `sent + len` (never shortens it).
    pub fn grant(&self, sent: Instant, len: Duration) {
        let until = (sent + len)
            .saturating_duration_since(self.base)
            .as_micros() as u64;
        self.until_us.fetch_max(until.max(1), Ordering::AcqRel);
    }

    /// Gives the lease up (this server stopped being the active).
    pub fn clear(&self) {
        self.until_us.store(0, Ordering::Release);
    }

    /// Whether it is held now. Reads the monotonic clock (a cached clock could be stale
    /// after the process was stopped and continued, which is exactly when this matters).
    #[inline]
    pub fn valid(&self) -> bool {
        let until = self.until_us.load(Ordering::Acquire);
        until != 0 && (self.base.elapsed().as_micros() as u64) < until
    }

    /// Milliseconds left (0 when not held).
    pub fn remaining_ms(&self) -> u64 {
        let until = self.until_us.load(Ordering::Acquire);
        until.saturating_sub(self.base.elapsed().as_micros() as u64) / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_runs_from_the_send_time_and_never_shrinks() {
        let l = Lease::default();
        assert!(!l.valid());
        let now = Instant::now();
        l.grant(now, Duration::from_secs(60));
        assert!(l.valid());
        l.grant(now, Duration::from_millis(1));
        assert!(l.valid(), "an older, shorter grant does not shorten it");
        assert!(l.remaining_ms() > 59_000);
        l.clear();
        assert!(!l.valid());
        l.grant(Instant::now(), Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert!(!l.valid(), "a 1 ms lease granted 5 ms ago is over");
    }
}
