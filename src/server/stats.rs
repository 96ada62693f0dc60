//! Server-wide counters for INFO stats.
//!
//! Hot counters are striped: each runtime thread adds to its own cache-line-aligned
//! [`Stripe`], once per batch, and INFO sums the stripes. A single shared line written by
//! every core on every batch costs more than the commands it counts.

use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::store::DbStats;
use crate::stripe::Counters;

const COMMANDS: usize = 0;
const ERRORS: usize = 1;
const HITS: usize = 2;
const MISSES: usize = 3;
const EXPIRED: usize = 4;
const NET_IN: usize = 5;
const NET_OUT: usize = 6;
const EVICTED: usize = 7;

/// Counters reported by INFO and reset by CONFIG RESETSTAT.
#[derive(Debug, Default)]
pub struct Stats {
    /// Per-thread hot counters.
    hot: Counters<8>,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections refused because of `maxclients`.
    pub rejected: AtomicU64,
    /// Clients closed for passing `client-query-buffer-limit`.
    pub qbuf_disconnections: AtomicU64,
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
        self.hot.add(HITS, db.hits as i64);
        self.hot.add(MISSES, db.misses as i64);
        self.hot.add(EXPIRED, db.expired as i64);
        self.hot.add(EVICTED, db.evicted as i64);
        self.hot.add(COMMANDS, commands as i64);
        self.hot.add(ERRORS, errors as i64);
    }

    /// Adds bytes read from and written to clients.
    pub fn add_net(&self, read: u64, written: u64) {
        self.hot.add(NET_IN, read as i64);
        self.hot.add(NET_OUT, written as i64);
    }

    /// Adds keys removed by the active expiry cycle.
    pub fn add_expired(&self, n: u64) {
        self.hot.add(EXPIRED, n as i64);
    }

    /// Adds keys evicted for memory or a cache's size limit.
    pub fn add_evicted(&self, n: u64) {
        self.hot.add(EVICTED, n as i64);
    }

    /// Commands executed.
    pub fn commands(&self) -> u64 {
        self.hot.count(COMMANDS)
    }
    /// Error replies sent.
    pub fn errors(&self) -> u64 {
        self.hot.count(ERRORS)
    }
    /// Read lookups that found a key.
    pub fn hits(&self) -> u64 {
        self.hot.count(HITS)
    }
    /// Read lookups that found nothing.
    pub fn misses(&self) -> u64 {
        self.hot.count(MISSES)
    }
    /// Keys removed by TTL or TTI (lazily or by the active cycle).
    pub fn expired(&self) -> u64 {
        self.hot.count(EXPIRED)
    }
    /// Keys evicted.
    pub fn evicted(&self) -> u64 {
        self.hot.count(EVICTED)
    }
    /// Bytes read from clients.
    pub fn net_in(&self) -> u64 {
        self.hot.count(NET_IN)
    }
    /// Bytes written to clients.
    pub fn net_out(&self) -> u64 {
        self.hot.count(NET_OUT)
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
        for c in [&self.connections, &self.rejected, &self.qbuf_disconnections] {
            c.store(0, Ordering::Relaxed);
        }
        for i in 0..8 {
            self.hot.reset(i);
        }
        *self.ops.lock() = OpsSampler::default();
    }
}
