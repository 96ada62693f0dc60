//! The Prometheus endpoint: `GET /metrics` on a server's `metrics_port`.
//!
//! Every scrape reads the counters the server keeps anyway (INFO's) and builds metric
//! families that the `prometheus` crate's text encoder writes; nothing is recorded twice.
//! The HTTP side is the least a scraper needs: one `GET` per connection, bounded in size
//! and time, `Connection: close`.

use std::sync::Arc;
use std::time::Duration;

use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::latency::Snapshot;
use crate::server::Shared;

/// The largest request head read.
const MAX_HEAD: usize = 8192;
/// How long one exchange (request and reply) may take: a scraper that stops reading
/// does not hold its connection longer.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrapes served at once; more connections are closed at once.
const MAX_SCRAPES: usize = 16;

/// Serves `/metrics` on `listener` until the server stops.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_SCRAPES));
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let Ok(permit) = slots.clone().try_acquire_owned() else {
                        continue;
                    };
                    let shared = shared.clone();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, answer(shared, stream)).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    tracing::warn!("metrics endpoint: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = crate::server::stopping(&mut shutdown) => return,
        }
    }
}

/// Reads one request head and answers it.
async fn answer(shared: Arc<Shared>, mut stream: TcpStream) {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let path = path.split(|&b| b == b'?').next().unwrap_or_default();
    let (status, ctype, body) = match (method, path) {
        (b"GET", b"/metrics") => match render(&shared) {
            Ok(text) => ("200 OK", prometheus::TEXT_FORMAT, text),
            Err(e) => ("500 Internal Server Error", "text/plain", format!("{e}\n")),
        },
        (b"GET", _) => ("404 Not Found", "text/plain", "try /metrics\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        ),
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// One family being built.
struct Family(MetricFamily);

impl Family {
    fn new(name: &str, help: &str, kind: MetricType) -> Family {
        let mut f = MetricFamily::default();
        f.set_name(name.to_string());
        f.set_help(help.to_string());
        f.set_field_type(kind);
        Family(f)
    }

    fn metric(&mut self, labels: &[(&str, &str)]) -> &mut Metric {
        let mut m = Metric::default();
        m.set_label(
            labels
                .iter()
                .map(|(k, v)| {
                    let mut l = LabelPair::default();
                    l.set_name(k.to_string());
                    l.set_value(v.to_string());
                    l
                })
                .collect(),
        );
        self.0.mut_metric().push(m);
        let last = self.0.mut_metric().len() - 1;
        &mut self.0.mut_metric()[last]
    }

    fn value(&mut self, labels: &[(&str, &str)], v: f64) -> &mut Self {
        let counter = self.0.get_field_type() == MetricType::COUNTER;
        let m = self.metric(labels);
        if counter {
            let mut c = Counter::default();
            c.set_value(v);
            m.set_counter(c);
        } else {
            let mut g = Gauge::default();
            g.set_value(v);
            m.set_gauge(g);
        }
        self
    }

    fn histogram(&mut self, labels: &[(&str, &str)], s: &Snapshot) -> &mut Self {
        let mut h = Histogram::default();
        h.set_sample_count(s.count());
        h.set_sample_sum(s.sum_us as f64 / 1e6);
        h.set_bucket(
            s.cumulative()
                .map(|(us, n)| {
                    let mut b = Bucket::default();
                    b.set_upper_bound(us as f64 / 1e6);
                    b.set_cumulative_count(n);
                    b
                })
                .collect(),
        );
        self.metric(labels).set_histogram(h);
        self
    }
}

/// The whole exposition text.
pub fn render(srv: &Shared) -> Result<String, String> {
    use MetricType::{COUNTER, GAUGE, HISTOGRAM};
    let mut out: Vec<Family> = Vec::new();

    // Commands: calls and latency, by command.
    let mut calls = Family::new(
        "terrace_commands_total",
        "Commands run on this server, by command",
        COUNTER,
    );
    let mut latency = Family::new(
        "terrace_command_duration_seconds",
        "How long commands took to run, by command",
        HISTOGRAM,
    );
    for (i, spec) in crate::command::SPECS.iter().enumerate() {
        let h = srv.commands.snapshot(i);
        if h.count() > 0 {
            calls.value(&[("cmd", spec.name)], h.count() as f64);
            latency.histogram(&[("cmd", spec.name)], &h);
        }
    }
    out.extend([calls, latency]);
    let s = &srv.stats;
    out.push({
        let mut f = Family::new(
            "terrace_command_errors_total",
            "Commands answered with an error",
            COUNTER,
        );
        f.value(&[], s.errors() as f64);
        f
    });
    out.push({
        let mut f = Family::new(
            "terrace_connections_received_total",
            "Client connections accepted",
            COUNTER,
        );
        f.value(&[], crate::server::Stats::get(&s.connections) as f64);
        f
    });

    // Caches: hits and misses per tier, entries and bytes per tier, evictions, expiries.
    let mut hits = Family::new(
        "terrace_cache_hits_total",
        "Reads that found their key, by cache and the tier that held it",
        COUNTER,
    );
    let mut misses = Family::new(
        "terrace_cache_misses_total",
        "Reads that found no key, by cache",
        COUNTER,
    );
    let mut entries = Family::new("terrace_cache_entries", "Entries, by cache and tier", GAUGE);
    let mut bytes = Family::new(
        "terrace_cache_memory_bytes",
        "Bytes of entries, by cache and tier",
        GAUGE,
    );
    let mut evictions = Family::new(
        "terrace_cache_evictions_total",
        "Entries evicted for space, by cache",
        COUNTER,
    );
    let mut expired = Family::new(
        "terrace_cache_expired_total",
        "Entries expired, by cache and reason (ttl or tti)",
        COUNTER,
    );
    let caches = srv.keyspace.caches();
    for c in caches.iter() {
        let (n, st) = (c.name.as_str(), &c.stats);
        hits.value(&[("cache", n), ("tier", "heap")], st.heap_hits() as f64)
            .value(&[("cache", n), ("tier", "offheap")], st.off_hits() as f64);
        misses.value(&[("cache", n)], st.misses() as f64);
        entries
            .value(&[("cache", n), ("tier", "heap")], st.heap_entries() as f64)
            .value(
                &[("cache", n), ("tier", "offheap")],
                st.off_entries() as f64,
            );
        bytes
            .value(&[("cache", n), ("tier", "heap")], st.heap_memory() as f64)
            .value(&[("cache", n), ("tier", "offheap")], st.off_memory() as f64);
        evictions.value(&[("cache", n)], st.evictions() as f64);
        expired
            .value(&[("cache", n), ("reason", "ttl")], st.expired_ttl() as f64)
            .value(&[("cache", n), ("reason", "tti")], st.expired_tti() as f64);
    }
    out.extend([hits, misses, entries, bytes, evictions, expired]);

    // Memory per tier: what is used and what the tier may hold (0: no limit / no tier).
    let region = srv.keyspace.region();
    let heap_used: u64 = caches.iter().map(|c| c.stats.heap_memory()).sum();
    let heap_limit = if region.is_some() {
        srv.config.storage.heap.0
    } else {
        0
    };
    let (off_size, off_used) = region.map_or((0, 0), |r| {
        (r.size(), r.taken() as u64 * r.segment_size() as u64)
    });
    let mut used = Family::new(
        "terrace_memory_used_bytes",
        "Bytes used, by tier (offheap: segments in use)",
        GAUGE,
    );
    used.value(&[("tier", "heap")], heap_used as f64)
        .value(&[("tier", "offheap")], off_used as f64);
    let mut limit = Family::new(
        "terrace_memory_limit_bytes",
        "Bytes a tier may hold (heap: the budget when there is an off-heap tier, else 0 = none)",
        GAUGE,
    );
    limit
        .value(&[("tier", "heap")], heap_limit as f64)
        .value(&[("tier", "offheap")], off_size as f64);
    out.extend([used, limit]);

    // Role, state, epoch, lsn, lease and the control plane.
    let repl = &srv.repl;
    let state = repl.state();
    let mut role = Family::new(
        "terrace_role",
        "1 for this server's role (active, mirror, starting), 0 for the others",
        GAUGE,
    );
    for r in ["active", "mirror", "starting"] {
        role.value(&[("role", r)], f64::from(u8::from(state.role() == r)));
    }
    let mut st = Family::new(
        "terrace_state",
        "1 for this server's state (ACTIVE-COORDINATOR, PASSIVE-STANDBY, ...), 0 for the others",
        GAUGE,
    );
    for s in crate::replication::State::ALL {
        st.value(&[("state", s.name())], f64::from(u8::from(s == state)));
    }
    let mut epoch = Family::new("terrace_epoch", "The stripe epoch this server knows", GAUGE);
    epoch.value(&[], repl.epoch() as f64);
    let mut lsn = Family::new(
        "terrace_lsn",
        "The last log sequence number this server holds",
        GAUGE,
    );
    lsn.value(&[], repl.last_lsn() as f64);
    out.extend([role, st, epoch, lsn]);
    if let Some(cp) = repl.control() {
        let mut lease = Family::new(
            "terrace_lease_remaining_seconds",
            "What is left of this server's lease from the control plane (0: none)",
            GAUGE,
        );
        lease.value(&[], repl.lease.remaining_ms() as f64 / 1e3);
        let mut term = Family::new(
            "terrace_control_plane_term",
            "The control plane's Raft term as this member sees it",
            GAUGE,
        );
        term.value(&[], cp.term() as f64);
        let mut leader = Family::new(
            "terrace_control_plane_leader",
            "1 when this member leads the control plane",
            GAUGE,
        );
        leader.value(&[], f64::from(u8::from(cp.is_leader())));
        out.extend([lease, term, leader]);
    }

    // Replication: every mirror's lag, seen from the active.
    let links = repl.in_sync.links();
    if !links.is_empty() {
        let head = repl.last_lsn();
        let now = crate::store::now_ms();
        let mut records = Family::new(
            "terrace_replication_lag_records",
            "Records a mirror has not acknowledged yet, by mirror",
            GAUGE,
        );
        let mut silent = Family::new(
            "terrace_replication_last_contact_seconds",
            "Time since a mirror was last heard from, by mirror",
            GAUGE,
        );
        for l in &links {
            let acked = l.acked.load(std::sync::atomic::Ordering::Relaxed);
            let labels = [("mirror", l.name.as_str())];
            records.value(&labels, head.saturating_sub(acked) as f64);
            let last = l.last_contact_ms.load(std::sync::atomic::Ordering::Relaxed);
            silent.value(&labels, now.saturating_sub(last) as f64 / 1e3);
        }
        out.extend([records, silent]);
    }

    // Pub/sub messages relayed to the other servers of the cluster, and dropped.
    out.push({
        let mut f = Family::new(
            "terrace_pubsub_relayed_total",
            "PUBLISH, SPUBLISH and keyspace-notification messages queued for other servers",
            COUNTER,
        );
        f.value(&[], srv.cluster.relay.relayed() as f64);
        f
    });
    out.push({
        let mut f = Family::new(
            "terrace_pubsub_relay_dropped_total",
            "Pub/sub messages for other servers dropped because a server's queue was full",
            COUNTER,
        );
        f.value(&[], srv.cluster.relay.dropped() as f64);
        f
    });

    // The fast-restart log's fsyncs.
    if let Some(log) = srv.persist.as_ref().and_then(|p| p.log()) {
        let mut f = Family::new(
            "terrace_fsync_duration_seconds",
            "How long fsyncs of the fast-restart log took",
            HISTOGRAM,
        );
        f.histogram(&[], &log.stats.fsync_latency.snapshot());
        out.push(f);
    }

    encode(out)
}

/// The text of `families`; families without a sample (no command has run yet) are left
/// out, since the text format has no way to write them.
fn encode(families: Vec<Family>) -> Result<String, String> {
    let families: Vec<MetricFamily> = families
        .into_iter()
        .map(|f| f.0)
        .filter(|f| !f.get_metric().is_empty())
        .collect();
    let mut text = String::new();
    prometheus::TextEncoder::new()
        .encode_utf8(&families, &mut text)
        .map_err(|e| format!("metrics: {e}"))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_family_is_left_out_instead_of_failing_the_scrape() {
        let empty = Family::new("terrace_a_total", "nothing yet", MetricType::COUNTER);
        let mut one = Family::new("terrace_b", "one", MetricType::GAUGE);
        one.value(&[("x", "y")], 2.0);
        let text = encode(vec![empty, one]).expect("encodes");
        assert!(!text.contains("terrace_a_total"), "{text}");
        assert!(text.contains("terrace_b{x=\"y\"} 2"), "{text}");
    }
}
