//! INFO: Redis's sections with Redis's field names, plus a `terrace` section.

use std::fmt::Write;

use crate::command::connection::REDIS_VERSION;
use crate::server::{Shared, Stats};
use crate::store::Db;

/// Sections in default order; `terrace` is Terrace's own.
const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "cluster",
    "keyspace",
    "caches",
    "terrace",
];

/// Renders the requested sections (`default`, `all`, `everything` or names).
pub fn render(srv: &Shared, db: &mut Db<'_>, asked: &[String]) -> String {
    let all = asked
        .iter()
        .any(|s| matches!(s.as_str(), "all" | "everything"));
    let mut wanted: Vec<&str> = if asked.is_empty() || all || asked.iter().any(|s| s == "default") {
        DEFAULT.to_vec()
    } else {
        DEFAULT
            .iter()
            .copied()
            .filter(|d| asked.iter().any(|a| a == d))
            .collect()
    };
    // As in Redis: not in the default set, but in `all` or when named.
    if all || asked.iter().any(|s| s == "commandstats") {
        wanted.push("commandstats");
    }
    let mut out = String::new();
    for (i, sec) in wanted.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let title = format!("# {}{}\r\n", &sec[..1].to_uppercase(), &sec[1..]);
        out.push_str(&title);
        let lines = match *sec {
            "server" => server(srv),
            "clients" => clients(srv),
            "memory" => memory(srv, db),
            "persistence" => persistence(srv),
            "stats" => stats(srv),
            "replication" => {
                for (k, v) in srv.repl.info() {
                    let _ = write!(out, "{k}:{v}\r\n");
                }
                continue;
            }
            "cpu" => cpu(),
            "cluster" => vec![("cluster_enabled", "1".to_string())],
            "keyspace" => keyspace(db),
            "caches" => {
                caches(srv, &mut out);
                continue;
            }
            "terrace" => terrace(srv),
            "commandstats" => {
                commandstats(srv, &mut out);
                continue;
            }
            _ => Vec::new(),
        };
        for (k, v) in lines {
            let _ = write!(out, "{k}:{v}\r\n");
        }
    }
    out
}

type Lines = Vec<(&'static str, String)>;

fn server(srv: &Shared) -> Lines {
    let id = &srv.identity;
    let up = id.started.elapsed().as_secs();
    vec![
        ("redis_version", REDIS_VERSION.to_string()),
        ("terrace_version", env!("CARGO_PKG_VERSION").to_string()),
        ("redis_mode", "cluster".to_string()),
        (
            "os",
            format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        ),
        ("arch_bits", (usize::BITS).to_string()),
        ("multiplexing_api", "tokio".to_string()),
        ("process_id", std::process::id().to_string()),
        ("run_id", id.run_id.clone()),
        ("tcp_port", id.port.to_string()),
        ("uptime_in_seconds", up.to_string()),
        ("uptime_in_days", (up / 86_400).to_string()),
        ("hz", "10".to_string()),
        (
            "executable",
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("config_file", id.config_file.clone().unwrap_or_default()),
    ]
}

fn clients(srv: &Shared) -> Lines {
    vec![
        ("connected_clients", srv.clients.len().to_string()),
        (
            "maxclients",
            Stats::get(&srv.settings.maxclients).to_string(),
        ),
        ("blocked_clients", srv.blocking.blocked().to_string()),
        ("total_blocking_keys", srv.blocking.keys().to_string()),
        // Only streams' XREADGROUP waits on keys that may be deleted; none here.
        ("total_blocking_keys_on_nokey", "0".to_string()),
        ("tracking_clients", srv.tracking.clients().to_string()),
    ]
}

fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1024 => format!("{bytes}B"),
        1024..1_048_576 => format!("{:.2}K", b / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.2}M", b / 1_048_576.0),
        _ => format!("{:.2}G", b / 1_073_741_824.0),
    }
}

/// Resident set size from /proc (0 where unavailable).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn memory(srv: &Shared, db: &mut Db<'_>) -> Lines {
    let used = db.used_memory() as u64;
    let rss = rss_bytes();
    let max = Stats::get(&srv.settings.maxmemory);
    let mut lines = vec![
        ("used_memory", used.to_string()),
        ("used_memory_human", human(used)),
        ("used_memory_rss", rss.to_string()),
        ("used_memory_rss_human", human(rss)),
        ("maxmemory", max.to_string()),
        ("maxmemory_human", human(max)),
        ("maxmemory_policy", srv.settings.policy().to_string()),
        ("mem_allocator", "libc".to_string()),
    ];
    lines.extend(tiers(srv));
    lines
}

/// Heap and off-heap tier figures (INFO memory): bytes used and free, entries and hits
/// per tier, and the off-heap tier's segment traffic.
fn tiers(srv: &Shared) -> Lines {
    let caches = srv.keyspace.caches();
    let sum = |f: fn(&crate::cache::CacheStats) -> u64| -> u64 {
        caches.iter().map(|c| f(&c.stats)).sum()
    };
    let region = srv.keyspace.region();
    let heap_used = sum(|s| s.heap_memory());
    let heap_budget = if region.is_some() {
        srv.config.storage.heap.0
    } else {
        0
    };
    let (size, seg, segs, taken) = region.map_or((0, 0, 0, 0), |r| {
        (
            r.size(),
            r.segment_size() as u64,
            r.segments() as u64,
            r.taken() as u64,
        )
    });
    let backing = match region {
        None => "none",
        Some(r) if r.file().is_some() => "file",
        Some(_) => "anonymous",
    };
    vec![
        ("heap_used", heap_used.to_string()),
        ("heap_used_human", human(heap_used)),
        ("heap_budget", heap_budget.to_string()),
        (
            "heap_free",
            heap_budget.saturating_sub(heap_used).to_string(),
        ),
        ("heap_entries", sum(|s| s.heap_entries()).to_string()),
        ("heap_hits", sum(|s| s.heap_hits()).to_string()),
        ("offheap_backing", backing.to_string()),
        ("offheap_size", size.to_string()),
        ("offheap_size_human", human(size)),
        ("offheap_used", (taken * seg).to_string()),
        ("offheap_used_human", human(taken * seg)),
        ("offheap_free", size.saturating_sub(taken * seg).to_string()),
        ("offheap_memory", sum(|s| s.off_memory()).to_string()),
        ("offheap_entries", sum(|s| s.off_entries()).to_string()),
        ("offheap_hits", sum(|s| s.off_hits()).to_string()),
        ("offheap_segment_size", seg.to_string()),
        ("offheap_segments", segs.to_string()),
        ("offheap_segments_used", taken.to_string()),
        ("offheap_promotions", sum(|s| s.promotions()).to_string()),
        ("offheap_demotions", sum(|s| s.demotions()).to_string()),
        (
            "offheap_segments_expired",
            sum(|s| s.segments_expired()).to_string(),
        ),
        (
            "offheap_segments_evicted",
            sum(|s| s.segments_evicted()).to_string(),
        ),
        ("offheap_compactions", sum(|s| s.compactions()).to_string()),
    ]
}

fn persistence(srv: &Shared) -> Lines {
    let mut v = vec![
        ("rdb_changes_since_last_save", "0".to_string()),
        ("rdb_bgsave_in_progress", "0".to_string()),
        ("rdb_last_bgsave_status", "ok".to_string()),
    ];
    match &srv.persist {
        Some(p) => v.extend(p.info()),
        None => v.extend([
            ("loading", "0".to_string()),
            ("async_loading", "0".to_string()),
            ("aof_enabled", "0".to_string()),
            ("aof_rewrite_in_progress", "0".to_string()),
            ("aof_last_write_status", "ok".to_string()),
        ]),
    }
    v
}

fn stats(srv: &Shared) -> Lines {
    let s = &srv.stats;
    let g = Stats::get;
    vec![
        ("total_connections_received", g(&s.connections).to_string()),
        ("total_commands_processed", s.commands().to_string()),
        ("instantaneous_ops_per_sec", s.ops_per_sec().to_string()),
        ("total_net_input_bytes", s.net_in().to_string()),
        ("total_net_output_bytes", s.net_out().to_string()),
        ("rejected_connections", g(&s.rejected).to_string()),
        ("expired_keys", s.expired().to_string()),
        ("evicted_keys", s.evicted().to_string()),
        ("keyspace_hits", s.hits().to_string()),
        ("keyspace_misses", s.misses().to_string()),
        ("pubsub_channels", srv.pubsub.counts().0.to_string()),
        ("pubsub_patterns", srv.pubsub.counts().1.to_string()),
        ("pubsubshard_channels", srv.pubsub.counts().2.to_string()),
        ("pubsub_relayed", srv.cluster.relay.relayed().to_string()),
        (
            "pubsub_relay_dropped",
            srv.cluster.relay.dropped().to_string(),
        ),
        ("total_error_replies", s.errors().to_string()),
        (
            "client_query_buffer_limit_disconnections",
            g(&s.qbuf_disconnections).to_string(),
        ),
        (
            "client_output_buffer_limit_disconnections",
            srv.settings.output.disconnections().to_string(),
        ),
        (
            "acl_access_denied_auth",
            srv.acl.log.denied()[0].to_string(),
        ),
        ("acl_access_denied_cmd", srv.acl.log.denied()[1].to_string()),
        ("acl_access_denied_key", srv.acl.log.denied()[2].to_string()),
        (
            "acl_access_denied_channel",
            srv.acl.log.denied()[3].to_string(),
        ),
        ("tracking_total_keys", srv.tracking.state.keys().to_string()),
        (
            "tracking_total_items",
            srv.tracking.state.items().to_string(),
        ),
        (
            "tracking_total_prefixes",
            srv.tracking.prefixes().to_string(),
        ),
    ]
}

/// User and system CPU seconds from /proc/self/stat (clock ticks of 1/100 s).
fn cpu() -> Lines {
    let fields: Vec<u64> = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.to_string()))
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    // After the command name: state is not numeric, so utime/stime are at 10 and 11 here.
    let tick = |i: usize| fields.get(i).map_or(0.0, |&t| t as f64 / 100.0);
    vec![
        ("used_cpu_sys", format!("{:.6}", tick(11))),
        ("used_cpu_user", format!("{:.6}", tick(10))),
    ]
}

fn keyspace(db: &mut Db<'_>) -> Lines {
    let keys = db.len();
    if keys == 0 {
        return Vec::new();
    }
    vec![(
        "db0",
        format!("keys={keys},expires={},avg_ttl=0", db.expires_len()),
    )]
}

/// One line per cache: `cache_<name>:consistency=...,entries=...,hits=...`.
fn caches(srv: &Shared, out: &mut String) {
    for c in srv.keyspace.caches().iter() {
        let fields: Vec<String> = crate::cache::report(c)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = write!(out, "cache_{}:{}\r\n", c.name, fields.join(","));
    }
}

/// `cmdstat_NAME:calls=..,usec=..,usec_per_call=..` for every command that ran here.
fn commandstats(srv: &Shared, out: &mut String) {
    for (i, spec) in crate::command::SPECS.iter().enumerate() {
        let h = srv.commands.snapshot(i);
        let calls = h.count();
        if calls == 0 {
            continue;
        }
        let _ = write!(
            out,
            "cmdstat_{}:calls={calls},usec={},usec_per_call={:.2}\r\n",
            spec.name,
            h.sum_us,
            h.sum_us as f64 / calls as f64
        );
    }
}

fn terrace(srv: &Shared) -> Lines {
    let id = &srv.identity;
    let mut v: Lines = vec![
        ("terrace_server", id.name.clone()),
        ("terrace_stripe", id.stripe.clone()),
        ("terrace_role", srv.repl.state().role().to_string()),
        ("terrace_state", srv.repl.state().name().to_string()),
        ("terrace_epoch", srv.repl.epoch().to_string()),
        ("terrace_lsn", srv.repl.last_lsn().to_string()),
        (
            "terrace_active",
            srv.repl.active().map(|a| a.name).unwrap_or_default(),
        ),
        (
            "terrace_standby_mirrors",
            srv.repl.in_sync.standby_count().to_string(),
        ),
        (
            "terrace_stripes",
            srv.config.cluster.stripes.len().to_string(),
        ),
        (
            "terrace_config",
            id.config_file
                .clone()
                .unwrap_or_else(|| "embedded dev".to_string()),
        ),
        (
            "terrace_failover_priority",
            format!("{:?}", srv.repl.priority).to_lowercase(),
        ),
    ];
    if let Some(cp) = srv.repl.control() {
        let leader = cp
            .leader()
            .and_then(|l| cp.member_name(l))
            .unwrap_or("")
            .to_string();
        let entry = cp.stripe(&id.stripe);
        v.extend([
            ("control_plane_leader", leader),
            ("control_plane_term", cp.term().to_string()),
            (
                "control_plane_epoch",
                entry.as_ref().map_or(0, |e| e.epoch).to_string(),
            ),
            (
                "control_plane_active",
                entry.as_ref().map(|e| e.active.clone()).unwrap_or_default(),
            ),
            (
                "control_plane_in_sync",
                entry
                    .map(|e| e.in_sync.into_iter().collect::<Vec<_>>().join(","))
                    .unwrap_or_default(),
            ),
            (
                "control_plane_slot_map",
                srv.cluster.slot_map_state(&cp.map()).to_string(),
            ),
            (
                "terrace_lease_ms",
                srv.repl.lease.remaining_ms().to_string(),
            ),
        ]);
    }
    v
}
