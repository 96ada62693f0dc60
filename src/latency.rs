//! Latency histograms with fixed buckets, for INFO and the Prometheus endpoint.
//!
//! One set of bucket bounds serves every histogram (commands, fsyncs), so dashboards can
//! compare them. [`Histogram`] is for one writer at a time (an fsync thread);
//! [`Striped`] spreads per-command histograms over per-thread stripes, because every
//! connection thread records into them on every command.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::stripe::Counters;

/// Upper bounds of the buckets, in microseconds (the last bucket, +Inf, is implied).
pub const BOUNDS_US: [u64; 19] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
    200_000, 500_000, 1_000_000,
];
/// Buckets, +Inf included.
pub const BUCKETS: usize = BOUNDS_US.len() + 1;

/// The bucket of a duration.
#[inline]
pub fn bucket(us: u64) -> usize {
    BOUNDS_US.partition_point(|&b| b < us)
}

/// What a histogram holds at one moment: per-bucket (not cumulative) counts and the sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Observations per bucket; `counts[BUCKETS - 1]` is +Inf.
    pub counts: [u64; BUCKETS],
    /// Sum of the observations, µs.
    pub sum_us: u64,
}

impl Snapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Cumulative counts per finite upper bound (µs), as Prometheus buckets are.
    pub fn cumulative(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        BOUNDS_US.iter().scan(0u64, move |acc, &b| {
            *acc += self.counts[bucket(b)];
            Some((b, *acc))
        })
    }
}

/// A histogram for a single writer (or a few, rarely).
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn record(&self, us: u64) {
        self.counts[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// The current counts.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Ordering::Relaxed)),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// Counter slots of one [`Striped`] histogram: the buckets, then the sum.
const SLOTS: usize = BUCKETS + 1;

/// Histograms recorded from every thread, one per index (a command id), each striped per
/// thread like the INFO counters.
#[derive(Debug)]
pub struct Striped {
    each: Box<[Counters<SLOTS>]>,
}

impl Striped {
    /// `n` histograms.
    pub fn new(n: usize) -> Striped {
        Striped {
            each: (0..n).map(|_| Counters::default()).collect(),
        }
    }

    /// Records `us` in histogram `i` (ignored when out of range).
    #[inline]
    pub fn record(&self, i: usize, us: u64) {
        if let Some(c) = self.each.get(i) {
            c.add(bucket(us), 1);
            c.add(BUCKETS, us as i64);
        }
    }

    /// Histogram `i` now.
    pub fn snapshot(&self, i: usize) -> Snapshot {
        let Some(c) = self.each.get(i) else {
            return Snapshot::default();
        };
        Snapshot {
            counts: std::array::from_fn(|b| c.count(b)),
            sum_us: c.count(BUCKETS),
        }
    }

    /// Zeroes every histogram (CONFIG RESETSTAT).
    pub fn reset(&self) {
        for c in self.each.iter() {
            for s in 0..SLOTS {
                c.reset(s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_first_bucket_whose_bound_holds_them() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 0);
        assert_eq!(bucket(2), 1);
        assert_eq!(bucket(3), 2);
        assert_eq!(bucket(1_000_000), BOUNDS_US.len() - 1);
        assert_eq!(bucket(1_000_001), BUCKETS - 1);
    }

    #[test]
    fn snapshots_count_sum_and_accumulate() {
        let h = Histogram::default();
        for us in [1, 3, 3, 7_000, 9_000_000] {
            h.record(us);
        }
        let s = h.snapshot();
        assert_eq!((s.count(), s.sum_us), (5, 9_007_007));
        let cum: Vec<(u64, u64)> = s.cumulative().collect();
        assert_eq!(cum[0], (1, 1));
        assert_eq!(cum[2], (5, 3));
        assert_eq!(cum.last(), Some(&(1_000_000, 4)), "+Inf holds the fifth");
        let st = Striped::new(3);
        st.record(2, 4);
        st.record(2, 4);
        st.record(9, 4);
        assert_eq!(st.snapshot(2).count(), 2);
        assert_eq!(st.snapshot(2).sum_us, 8);
        assert_eq!(st.snapshot(0).count(), 0);
        st.reset();
        assert_eq!(st.snapshot(2).count(), 0);
    }
}
