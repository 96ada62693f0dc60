//! Striped counters: each thread adds to its own cache-line-aligned stripe and readers sum
//! the stripes. A single shared counter written by every core on every command costs more
//! than the command it counts.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// Number of stripes: the cores plus room for the main thread and helpers, so the
/// worker threads rarely share one, while a read sums only a few cache lines.
static STRIPES: LazyLock<usize> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cores + 2).next_power_of_two().min(64)
});

thread_local! {
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % *STRIPES
    };
}

/// The calling thread's stripe.
fn index() -> usize {
    STRIPE.with(|s| *s)
}

#[derive(Debug)]
#[repr(align(128))]
struct Stripe<const N: usize>([AtomicI64; N]);

/// `N` signed counters, striped per thread. Counters are addressed by index; users name
/// them with constants.
#[derive(Debug)]
pub struct Counters<const N: usize> {
    stripes: Box<[Stripe<N>]>,
}

impl<const N: usize> Default for Counters<N> {
    fn default() -> Self {
        Counters {
            stripes: (0..*STRIPES)
                .map(|_| Stripe(std::array::from_fn(|_| AtomicI64::new(0))))
                .collect(),
        }
    }
}

impl<const N: usize> Counters<N> {
    /// Adds `n` (may be negative) to counter `i` on this thread's stripe.
    #[inline]
    pub fn add(&self, i: usize, n: i64) {
        if n != 0 {
            self.stripes[index()].0[i].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The sum of counter `i` over all stripes.
    pub fn get(&self, i: usize) -> i64 {
        self.stripes
            .iter()
            .map(|s| s.0[i].load(Ordering::Relaxed))
            .sum()
    }

    /// The sum of counter `i`, as a count (a counter that only ever grows, or one whose
    /// decrements never outrun its increments, is never negative; a racing read may be).
    pub fn count(&self, i: usize) -> u64 {
        self.get(i).max(0) as u64
    }

    /// Sets counter `i` to zero (a concurrent add may survive, as with Redis's RESETSTAT).
    pub fn reset(&self, i: usize) {
        for s in self.stripes.iter() {
            s.0[i].store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_across_threads() {
        let c = std::sync::Arc::new(Counters::<2>::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.add(0, 1);
                        c.add(1, -2);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(c.get(0), 4000);
        assert_eq!(c.get(1), -8000);
        c.reset(0);
        assert_eq!(c.get(0), 0);
    }
}
