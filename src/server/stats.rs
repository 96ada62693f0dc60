//! Server-wide counters for INFO stats.
//!
//! Hot counters are striped: each runtime thread adds to its own cache-line-aligned
//! [`Stripe`], once per batch, and INFO sums the stripes. A single shared line written by
//! every core on every batch costs more than the commands it counts.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::store::DbStats;

/// Number of counter stripes (more than the threads we expect).
const STRIPES: usize = 16;

/// The per-batch counters of one thread.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Stripe {
    commands: AtomicU64,
    errors: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    expired: AtomicU64,
    net_in: AtomicU64,
    net_out: AtomicU64,
}

thread_local! {
    static STRIPE: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % STRIPES
    };
}

/// Counters reported by INFO and reset by CONFIG RESETSTAT.
#[derive(Debug, Default)]
pub struct Stats {
    /// Per-thread hot counters.
    stripes: [Stripe; STRIPES],
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused because of `maxclients`.
    pub rejected: AtomicU64,
    /// Keys evicted for memory.
    pub evicted: AtomicU64,
    /// Samples of the command counter for instantaneous_ops_per_sec.
    ops: Mutex<OpsSampler>,
}

#[derive(Debug, Default)]
struct OpsSampler {
    last: Option<(std::time::Instant, u64)>,
    rates: [f64; 16],
    idx: usize,
}

impl Stats {
    fn stripe(&self) -> &Stripe {
        &self.stripes[STRIPE.with(|s| *s)]
    }

    /// Adds a connection's batch of counters.
    pub fn add(&self, db: DbStats, commands: u64, errors: u64) {
        let s = self.stripe();
        add(&s.hits, db.hits);
        add(&s.misses, db.misses);
        add(&s.expired, db.expired);
        add(&s.commands, commands);
        add(&s.errors, errors);
    }

    /// Adds bytes read from and written to clients.
    pub fn add_net(&self, read: u64, written: u64) {
        let s = self.stripe();
        add(&s.net_in, read);
        add(&s.net_out, written);
    }

    /// Adds keys removed by the active expiry cycle.
    pub fn add_expired(&self, n: u64) {
        add(&self.stripe().expired, n);
    }

    fn sum(&self, f: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
        self.stripes
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum()
    }

    /// Commands executed.
    pub fn commands(&self) -> u64 {
        self.sum(|s| &s.commands)
    }
    /// Error replies sent.
    pub fn errors(&self) -> u64 {
        self.sum(|s| &s.errors)
    }
    /// Read lookups that found a key.
    pub fn hits(&self) -> u64 {
        self.sum(|s| &s.hits)
    }
    /// Read lookups that found nothing.
    pub fn misses(&self) -> u64 {
        self.sum(|s| &s.misses)
    }
    /// Keys removed by TTL (lazily or by the active cycle).
    pub fn expired(&self) -> u64 {
        self.sum(|s| &s.expired)
    }
    /// Bytes read from clients.
    pub fn net_in(&self) -> u64 {
        self.sum(|s| &s.net_in)
    }
    /// Bytes written to clients.
    pub fn net_out(&self) -> u64 {
        self.sum(|s| &s.net_out)
    }

    /// Reads a plain counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Takes an ops/sec sample; called by the server cron every 100 ms.
    pub fn sample_ops(&self) {
        let now = std::time::Instant::now();
        let total = self.commands();
        let mut s = self.ops.lock();
        if let Some((t, n)) = s.last {
            let dt = now.duration_since(t).as_secs_f64();
            if dt > 0.0 {
                let i = s.idx;
                s.rates[i] = total.saturating_sub(n) as f64 / dt;
                s.idx = (i + 1) % s.rates.len();
            }
        }
        s.last = Some((now, total));
    }

    /// Average commands per second over the last 1.6 s.
    pub fn ops_per_sec(&self) -> u64 {
        let s = self.ops.lock();
        (s.rates.iter().sum::<f64>() / s.rates.len() as f64) as u64
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in [&self.connections, &self.rejected, &self.evicted] {
            c.store(0, Ordering::Relaxed);
        }
        for s in &self.stripes {
            for c in [
                &s.commands,
                &s.errors,
                &s.hits,
                &s.misses,
                &s.expired,
                &s.net_in,
                &s.net_out,
            ] {
                c.store(0, Ordering::Relaxed);
            }
        }
        *self.ops.lock() = OpsSampler::default();
    }
}

fn add(c: &AtomicU64, n: u64) {
    if n != 0 {
        c.fetch_add(n, Ordering::Relaxed);
    }
}
