//! MULTI/EXEC/WATCH, SET IFEQ and DELIFEQ with real concurrent clients: the seeds'
//! appendEvent example, counters, and cross-shard atomicity.

use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;

use crate::caches::{cache_server, with_caches};
use crate::util::{TestServer, read_n, run, try_run};

/// Sends raw RESP and returns the reply text (for exact Redis wire behaviour).
fn raw_exchange(s: &TestServer, req: &str, want: usize) -> String {
    use std::io::Write;
    let mut t = s.raw();
    t.write_all(req.as_bytes()).unwrap();
    String::from_utf8_lossy(&read_n(&mut t, want)).into_owned()
}

#[tokio::test]
async fn multi_exec_discard_and_queueing_errors_match_redis() {
    let s = TestServer::start();
    let script = "MULTI\r\nSET a 1\r\nINCR a\r\nSET b 1 EX abc\r\nGET a\r\nEXEC\r\n";
    let want = "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*4\r\n+OK\r\n:2\r\n-ERR value is not an integer or out of range\r\n$1\r\n2\r\n";
    assert_eq!(raw_exchange(&s, script, want.len()), want);

    // A command that cannot be queued aborts the whole transaction.
    let script = "MULTI\r\nSET x 1\r\nNOSUCH\r\nSET\r\nEXEC\r\nGET x\r\n";
    let want = "+OK\r\n+QUEUED\r\n-ERR unknown command 'NOSUCH', with args beginning with: \r\n-ERR wrong number of arguments for 'set' command\r\n-EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n";
    assert_eq!(raw_exchange(&s, script, want.len()), want);

    // Nested MULTI and WATCH inside MULTI are errors that do not abort.
    let script = "MULTI\r\nMULTI\r\nWATCH k\r\nSET y 1\r\nEXEC\r\n";
    let want = "+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n*1\r\n+OK\r\n";
    assert_eq!(raw_exchange(&s, script, want.len()), want);

    let script = "EXEC\r\nDISCARD\r\nMULTI\r\nSET z 1\r\nDISCARD\r\nGET z\r\nMULTI\r\nEXEC\r\nMULTI\r\nSHUTDOWN\r\nEXEC\r\n";
    let want = "-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n+QUEUED\r\n+OK\r\n$-1\r\n+OK\r\n*0\r\n+OK\r\n-ERR Command not allowed inside a transaction\r\n-EXECABORT Transaction discarded because of previous errors.\r\n";
    assert_eq!(raw_exchange(&s, script, want.len()), want);

    // RESP3: an aborted EXEC is a null.
    let mut a = s.conn().await;
    let mut b = s.conn3().await;
    let _: () = run(&mut b, ("WATCH", "w")).await;
    let _: () = run(&mut a, ("SET", "w", "1")).await;
    let _: () = run(&mut b, ("MULTI",)).await;
    let _: () = run(&mut b, ("GET", "w")).await;
    let v: Value = run(&mut b, ("EXEC",)).await;
    assert_eq!(v, Value::Nil);
}

/// MULTI, SET key value, EXEC: `None` when EXEC answered nil (a watched key changed).
async fn multi_set(c: &mut MultiplexedConnection, key: &str, value: &str) -> Option<(String,)> {
    let mut p = redis::pipe();
    p.atomic().cmd("SET").arg(key).arg(value);
    p.query_async(c).await.unwrap()
}

/// WATCH key, let `change` run on another connection, then MULTI/SET/EXEC: true if the
/// transaction ran.
async fn watched_exec_runs(s: &TestServer, key: &str, change: &[&[&str]]) -> bool {
    let mut me = s.conn().await;
    let mut other = s.conn().await;
    let _: () = run(&mut me, ("WATCH", key)).await;
    for c in change {
        let _: Value = run(&mut other, (c[0], &c[1..])).await;
    }
    let r: Option<(String,)> = multi_set(&mut me, "tx:done", "1").await;
    r.is_some()
}

#[tokio::test]
async fn exec_returns_nil_when_a_watched_key_changed_expired_was_evicted_or_flushed() {
    let (s, mut c) = cache_server("  - { name: tiny, max_entries: 1, eviction: lru }\n").await;
    let _: () = run(&mut c, ("SET", "k", "v")).await;
    assert!(watched_exec_runs(&s, "k", &[&["GET", "k"], &["SET", "other", "1"]]).await);
    assert!(!watched_exec_runs(&s, "k", &[&["SET", "k", "v2"]]).await);
    assert!(!watched_exec_runs(&s, "k", &[&["DEL", "k"]]).await);
    let _: () = run(&mut c, ("SET", "k", "v")).await;
    assert!(!watched_exec_runs(&s, "k", &[&["EXPIRE", "k", "100"]]).await);
    assert!(!watched_exec_runs(&s, "k", &[&["FLUSHALL"]]).await);
    // FLUSHALL of a key that did not exist is no change (as in Redis), nor is a PERSIST
    // of a key without a TTL.
    assert!(watched_exec_runs(&s, "missing", &[&["FLUSHALL"]]).await);
    let _: () = run(&mut c, ("SET", "k", "v")).await;
    assert!(watched_exec_runs(&s, "k", &[&["GETEX", "k", "PERSIST"], &["PERSIST", "k"]]).await);
    // Expiry: nobody touches the key; it is simply past its TTL at EXEC.
    let _: () = run(&mut c, ("SET", "k", "v", "PX", 100)).await;
    let mut me = s.conn().await;
    let _: () = run(&mut me, ("WATCH", "k")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r: Option<(String,)> = multi_set(&mut me, "x", "1").await;
    assert!(r.is_none(), "expired watched key must abort EXEC");
    // Eviction: writing a second key into a 1-entry cache evicts the watched one.
    let _: () = run(&mut c, ("SET", "tiny:a", "v")).await;
    assert!(!watched_exec_runs(&s, "tiny:a", &[&["SET", "tiny:b", "v"]]).await);
    // The client's own write after WATCH counts too; UNWATCH forgets.
    let _: () = run(&mut c, ("WATCH", "k")).await;
    let _: () = run(&mut c, ("SET", "k", "mine")).await;
    let r: Option<(String,)> = multi_set(&mut c, "x", "1").await;
    assert!(r.is_none());
    let _: () = run(&mut c, ("WATCH", "k")).await;
    let _: () = run(&mut c, ("SET", "k", "mine2")).await;
    let _: () = run(&mut c, ("UNWATCH",)).await;
    let r: Option<(String,)> = multi_set(&mut c, "x", "1").await;
    assert!(r.is_some());
    let list: String = run(&mut c, ("CLIENT", "LIST")).await;
    assert!(list.lines().all(|l| l.contains("multi=-1")), "{list}");
}

/// The seeds' appendEvent, with WATCH/MULTI/EXEC: read the list, append, write back only
/// if nobody else wrote in between; retry otherwise.
async fn append_event_watch(c: &mut MultiplexedConnection, key: &str, event: &str) -> u32 {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let () = run(c, ("WATCH", key)).await;
        let old: Option<String> = run(c, ("GET", key)).await;
        let new = match old {
            Some(o) if !o.is_empty() => format!("{o},{event}"),
            _ => event.to_string(),
        };
        let r: Option<(String,)> = multi_set(c, key, &new).await;
        if r.is_some() {
            return attempts;
        }
    }
}

/// The same with compare-and-set: putIfAbsent (SET NX), then replace(old, new) as
/// SET ... IFEQ old.
async fn append_event_ifeq(c: &mut MultiplexedConnection, key: &str, event: &str) -> u32 {
    let _: Option<String> = run(c, ("SET", key, "", "NX")).await;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let old: String = run(c, ("GET", key)).await;
        let new = if old.is_empty() {
            event.to_string()
        } else {
            format!("{old},{event}")
        };
        let r: Option<String> = run(c, ("SET", key, &new, "IFEQ", &old)).await;
        if r.is_some() {
            return attempts;
        }
    }
}

async fn append_events(s: &TestServer, key: &'static str, use_watch: bool) -> u32 {
    let mut tasks = Vec::new();
    for client in 0..20 {
        let mut c = s.conn().await;
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0;
            for n in 0..500 {
                let event = format!("{client}.{n}");
                attempts += if use_watch {
                    append_event_watch(&mut c, key, &event).await
                } else {
                    append_event_ifeq(&mut c, key, &event).await
                };
            }
            attempts
        }));
    }
    let mut attempts = 0;
    for t in tasks {
        attempts += t.await.unwrap();
    }
    let mut c = s.conn().await;
    let list: String = run(&mut c, ("GET", key)).await;
    let events: Vec<&str> = list.split(',').collect();
    assert_eq!(events.len(), 10_000, "events lost or duplicated");
    let unique: std::collections::HashSet<&str> = events.iter().copied().collect();
    assert_eq!(unique.len(), 10_000, "duplicated events");
    for client in 0..20 {
        // Each client's events are in its own order.
        let mine: Vec<u32> = events
            .iter()
            .filter_map(|e| e.split_once('.'))
            .filter(|(c, _)| *c == client.to_string())
            .map(|(_, n)| n.parse().unwrap())
            .collect();
        assert_eq!(mine, (0..500).collect::<Vec<_>>());
    }
    attempts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn append_event_20_clients_x_500_with_watch_and_with_ifeq_loses_nothing() {
    let s = TestServer::start_with(
        Some(&with_caches("  - { name: events, consistency: strong }\n")),
        &[],
    );
    let watch_attempts = append_events(&s, "events:user1", true).await;
    let ifeq_attempts = append_events(&s, "events:user2", false).await;
    // Contention really happened: some attempts lost the race and retried.
    assert!(watch_attempts > 10_000, "{watch_attempts}");
    assert!(ifeq_attempts > 10_000, "{ifeq_attempts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_clients_times_1000_incr_is_exactly_50000() {
    let s = TestServer::start();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let mut c = s.conn().await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..1000 {
                let _: i64 = run(&mut c, ("INCR", "counter")).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut c = s.conn().await;
    let n: i64 = run(&mut c, ("GET", "counter")).await;
    assert_eq!(n, 50_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_client_sees_half_a_transaction_across_shards() {
    let s = TestServer::start();
    let keys: Vec<String> = (0..8).map(|i| format!("acct:{i}")).collect();
    let mut c = s.conn().await;
    for k in &keys {
        let _: () = run(&mut c, ("SET", k, 0)).await;
    }
    let writer = {
        let mut w = s.conn().await;
        let keys = keys.clone();
        tokio::spawn(async move {
            for n in 1..=500 {
                let mut p = redis::pipe();
                p.atomic();
                for k in &keys {
                    p.cmd("SET").arg(k).arg(n).ignore();
                }
                let () = p.query_async(&mut w).await.unwrap();
            }
        })
    };
    let mut r = s.conn().await;
    let mut reads = 0;
    while !writer.is_finished() {
        let vals: Vec<i64> = run(&mut r, ("MGET", &keys)).await;
        assert!(
            vals.iter().all(|v| *v == vals[0]),
            "half a transaction: {vals:?}"
        );
        reads += 1;
    }
    writer.await.unwrap();
    let vals: Vec<i64> = run(&mut r, ("MGET", &keys)).await;
    assert_eq!(vals, vec![500; 8]);
    assert!(reads > 0);
}

#[tokio::test]
async fn cache_config_inside_exec_applies_without_blocking_the_server() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    for i in 0..100 {
        let () = run(&mut c, ("SET", format!("k{i}"), i)).await;
    }
    // EXEC holds every shard (FLUSHALL-like commands aside, CACHE.CONFIG must not wait for
    // shard locks inside it); the limit is enforced by the cron right after.
    let mut p = redis::pipe();
    p.atomic()
        .cmd("SET")
        .arg("k0")
        .arg("new")
        .cmd("CACHE.CONFIG")
        .arg(&["default", "max_entries", "10"])
        .cmd("DBSIZE");
    let (set, cfg, n): (String, String, i64) =
        tokio::time::timeout(Duration::from_secs(5), p.query_async(&mut c))
            .await
            .expect("EXEC must not hang")
            .unwrap();
    assert_eq!((set.as_str(), cfg.as_str(), n), ("OK", "OK", 100));
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while run::<i64>(&mut c, ("DBSIZE",)).await != 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "cron did not shrink the cache"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Over maxmemory, EXEC of a transaction with writes is aborted the Redis way.
    let () = run(&mut c, ("CONFIG", "SET", "maxmemory", "1")).await;
    let mut a = s.conn().await;
    let () = run(&mut a, ("CONFIG", "SET", "maxmemory", "0")).await;
    let () = run(&mut a, ("MULTI",)).await;
    let q: String = run(&mut a, ("SET", "x", "1")).await;
    assert_eq!(q, "QUEUED");
    let () = run(&mut c, ("CONFIG", "SET", "maxmemory", "1")).await;
    let e = try_run::<Value>(&mut a, ("EXEC",)).await.unwrap_err();
    assert_eq!(e.code(), Some("EXECABORT"), "{e}");
    assert!(e.to_string().contains("OOM command not allowed"), "{e}");
    let () = run(&mut c, ("CONFIG", "SET", "maxmemory", "0")).await;
}

#[tokio::test]
async fn delifeq_removes_only_a_matching_string() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let _: () = run(&mut c, ("SET", "lock", "owner-1")).await;
    let n: i64 = run(&mut c, ("DELIFEQ", "lock", "owner-2")).await;
    assert_eq!(n, 0);
    let n: i64 = run(&mut c, ("DELIFEQ", "lock", "owner-1")).await;
    assert_eq!(n, 1);
    let n: i64 = run(&mut c, ("DELIFEQ", "lock", "owner-1")).await;
    assert_eq!(n, 0);
    let err = try_run::<i64>(&mut c, ("DELIFEQ", "lock"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("wrong number of arguments for 'delifeq'"),
        "{err}"
    );
}
