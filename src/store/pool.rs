//! [`Pool`]: a budget shared by the tables of one or more caches — heap bytes, or off-heap
//! segments. Terracotta sizes tiers per server with optional per-cache pools: a cache with
//! its own `heap`/`offheap` gets a pool of that size, the others share what is left.

use std::sync::atomic::{AtomicU64, Ordering};

/// A budget and what is used of it.
#[derive(Debug)]
pub struct Pool {
    limit: u64,
    used: AtomicU64,
}

impl Pool {
    /// A pool of `limit` units (`u64::MAX`: unbounded).
    pub fn new(limit: u64) -> Pool {
        Pool {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// The budget.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Units in use.
    #[inline]
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// True when more is used than the budget allows.
    #[inline]
    pub fn over(&self) -> bool {
        self.used() > self.limit
    }

    /// True when `n` more units fit.
    #[inline]
    pub fn fits(&self, n: u64) -> bool {
        self.used().saturating_add(n) <= self.limit
    }

    /// Takes `n` units if they fit.
    pub fn try_take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    /// Returns `n` units.
    pub fn give(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }

    /// Changes the units in use by `delta`, budget or not (heap bytes follow the data).
    #[inline]
    pub fn add(&self, delta: i64) {
        if delta >= 0 {
            self.used.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            self.give(delta.unsigned_abs());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_within_the_limit() {
        let p = Pool::new(3);
        assert!(p.try_take(2));
        assert!(!p.try_take(2));
        assert!(p.fits(1) && !p.fits(2));
        p.add(5);
        assert!(p.over());
        p.give(100);
        assert_eq!(p.used(), 0);
    }
}
