//! Server-wide counters for INFO stats. Connections add their counts once per batch, so
//! the per-command path touches no shared cache line.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::store::DbStats;

/// Counters reported by INFO and reset by CONFIG RESETSTAT.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused because of `maxclients`.
    pub rejected: AtomicU64,
    /// Commands executed.
    pub commands: AtomicU64,
    /// Error replies sent.
    pub errors: AtomicU64,
    /// Read lookups that found a key.
    pub hits: AtomicU64,
    /// Read lookups that found nothing.
    pub misses: AtomicU64,
    /// Keys removed by TTL (lazily or by the active cycle).
    pub expired: AtomicU64,
    /// Keys evicted for memory.
    pub evicted: AtomicU64,
    /// Bytes read from clients.
    pub net_in: AtomicU64,
    /// Bytes written to clients.
    pub net_out: AtomicU64,
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
    /// Adds a connection's batch of counters.
    pub fn add(&self, db: DbStats, commands: u64, errors: u64) {
        let add = |c: &AtomicU64, n: u64| {
            if n != 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        };
        add(&self.hits, db.hits);
        add(&self.misses, db.misses);
        add(&self.expired, db.expired);
        add(&self.commands, commands);
        add(&self.errors, errors);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// Takes an ops/sec sample; called by the server cron every 100 ms.
    pub fn sample_ops(&self) {
        let now = std::time::Instant::now();
        let total = Stats::get(&self.commands);
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
        for c in [
            &self.connections,
            &self.rejected,
            &self.commands,
            &self.errors,
            &self.hits,
            &self.misses,
            &self.expired,
            &self.evicted,
            &self.net_in,
            &self.net_out,
        ] {
            c.store(0, Ordering::Relaxed);
        }
        *self.ops.lock() = OpsSampler::default();
    }
}
