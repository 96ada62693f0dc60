//! Named caches: TTI, size limits and eviction, CACHE.* commands, maxmemory.

use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::MultiplexedConnection;

use crate::util::{TestServer, run, try_run};

/// A one-server config with these caches (YAML list items, indented by four spaces).
pub fn with_caches(caches: &str) -> String {
    format!(
        "cluster:\n  stripes:\n    - name: s1\n      servers:\n        - {{ name: server1, host: 127.0.0.1, port: 6379 }}\ncaches:\n{caches}"
    )
}

/// A server with these caches, and a connection to it.
pub async fn cache_server(caches: &str) -> (TestServer, MultiplexedConnection) {
    let s = TestServer::start_with(Some(&with_caches(caches)), &[]);
    let c = s.conn().await;
    (s, c)
}

/// A numeric INFO field.
pub async fn info_u64(c: &mut MultiplexedConnection, section: &str, name: &str) -> u64 {
    let info: String = run(c, ("INFO", section)).await;
    let prefix = format!("{name}:");
    info.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {name} in INFO {section}"))
        .trim()
        .parse()
        .unwrap()
}

/// How many of the keys `k<i>` for `i` in `range` exist.
async fn existing(c: &mut MultiplexedConnection, range: std::ops::Range<i32>) -> i64 {
    let mut n = 0;
    for i in range {
        n += int(c, &["EXISTS", &format!("k{i}")]).await;
    }
    n
}

async fn int(c: &mut MultiplexedConnection, args: &[&str]) -> i64 {
    run(c, args).await
}

/// CACHE.INFO as field -> value text.
pub async fn cache_info(c: &mut MultiplexedConnection, name: &str) -> Vec<(String, String)> {
    let v: Value = run(c, ("CACHE.INFO", name)).await;
    let items = match v {
        Value::Array(items) => items,
        Value::Map(kv) => kv.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => panic!("unexpected {other:?}"),
    };
    items
        .chunks(2)
        .map(|kv| {
            let s = |v: &Value| match v {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::Int(n) => n.to_string(),
                other => panic!("unexpected {other:?}"),
            };
            (s(&kv[0]), s(&kv[1]))
        })
        .collect()
}

pub fn field<'a>(info: &'a [(String, String)], name: &str) -> &'a str {
    info.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no field {name} in {info:?}"))
}

#[tokio::test]
async fn tti_keeps_a_key_read_every_300ms_and_expires_an_unread_one() {
    let (_s, mut c) = cache_server("  - { name: sess, tti: 1s }\n").await;
    let _: () = run(&mut c, ("SET", "sess:read", "v")).await;
    let _: () = run(&mut c, ("SET", "sess:idle", "v")).await;
    let start = Instant::now();
    let mut checked_idle = false;
    while start.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let v: Option<String> = run(&mut c, ("GET", "sess:read")).await;
        assert_eq!(
            v.as_deref(),
            Some("v"),
            "read key gone after {:?}",
            start.elapsed()
        );
        if !checked_idle && start.elapsed() >= Duration::from_secs(2) {
            // Gone by 2 s, reclaimed by the background sweep (no read of it needed).
            assert_eq!(int(&mut c, &["CACHE.SIZE", "sess"]).await, 1);
            assert_eq!(int(&mut c, &["EXISTS", "sess:idle"]).await, 0);
            checked_idle = true;
        }
    }
    assert!(checked_idle);
    let info = cache_info(&mut c, "sess").await;
    assert_eq!(field(&info, "expired_tti"), "1");
    assert_eq!(field(&info, "expired_ttl"), "0");
    assert_eq!(field(&info, "tti"), "1s");
    // TTI is not a TTL: the key reports no expiry.
    assert_eq!(int(&mut c, &["TTL", "sess:read"]).await, -1);
}

#[tokio::test]
async fn lru_cache_holds_exactly_1000_of_5000_and_keeps_the_read_ones() {
    let (_s, mut c) =
        cache_server("  - { name: lru, max_entries: 1000, eviction: lru }\n  - { name: other }\n")
            .await;
    let mut p = redis::pipe();
    for i in 0..100 {
        p.cmd("SET").arg(format!("other:{i}")).arg("v").ignore();
    }
    let () = p.query_async(&mut c).await.unwrap();
    for chunk in 0..50 {
        let mut p = redis::pipe();
        for i in chunk * 100..chunk * 100 + 100 {
            p.cmd("SET").arg(format!("lru:{i}")).arg(i).ignore();
        }
        for h in 0..50 {
            p.cmd("GET").arg(format!("lru:{h}")).ignore();
        }
        let () = p.query_async(&mut c).await.unwrap();
        // Let the clock move between chunks so "recent" is well defined.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(int(&mut c, &["CACHE.SIZE", "lru"]).await, 1000);
    assert_eq!(int(&mut c, &["DBSIZE"]).await, 1100);
    for h in 0..50 {
        let v: Option<i64> = run(&mut c, ("GET", format!("lru:{h}"))).await;
        assert_eq!(v, Some(h), "recently read lru:{h} was evicted");
    }
    for i in 0..100 {
        assert_eq!(int(&mut c, &["EXISTS", &format!("other:{i}")]).await, 1);
    }
    let info = cache_info(&mut c, "lru").await;
    assert_eq!(field(&info, "evictions"), "4000");
    assert_eq!(field(&info, "entries"), "1000");
    assert_eq!(field(&info, "eviction"), "lru");
    assert_eq!(field(&cache_info(&mut c, "other").await, "evictions"), "0");
    let stats: String = run(&mut c, ("INFO", "stats")).await;
    assert!(stats.contains("evicted_keys:4000"), "{stats}");
}

#[tokio::test]
async fn eviction_none_answers_oom_naming_the_cache_and_loses_nothing() {
    let (_s, mut c) = cache_server("  - { name: fixed, max_entries: 100, eviction: none }\n").await;
    for i in 0..100 {
        let _: () = run(&mut c, ("SET", format!("fixed:{i}"), i)).await;
    }
    let err = try_run::<()>(&mut c, ("SET", "fixed:100", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("OOM"), "{err}");
    assert!(err.to_string().contains("cache 'fixed' is full"), "{err}");
    // Other writes of new keys are refused too, MSET as a whole; updates are not.
    assert!(try_run::<i64>(&mut c, ("INCR", "fixed:new")).await.is_err());
    let err = try_run::<()>(&mut c, ("MSET", &["fixed:1", "one", "fixed:new", "x"]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("OOM"));
    let v: String = run(&mut c, ("GET", "fixed:1")).await;
    assert_eq!(v, "1", "a refused MSET wrote nothing");
    let _: () = run(&mut c, ("SET", "fixed:7", "seven")).await;
    // Other caches are untouched by the full one.
    for i in 0..200 {
        let _: () = run(&mut c, ("SET", format!("free:{i}"), i)).await;
    }
    assert_eq!(int(&mut c, &["CACHE.SIZE", "fixed"]).await, 100);
    assert_eq!(int(&mut c, &["CACHE.SIZE", "default"]).await, 200);
    for i in 0..100 {
        let want = if i == 7 {
            "seven".to_string()
        } else {
            i.to_string()
        };
        let v: String = run(&mut c, ("GET", format!("fixed:{i}"))).await;
        assert_eq!(v, want);
    }
    // Making room by hand lets writes in again; a key written twice in one MSET needs
    // room once.
    assert_eq!(int(&mut c, &["DEL", "fixed:0"]).await, 1);
    let () = run(&mut c, ("MSET", "fixed:100", "a", "fixed:100", "x")).await;
    let v: String = run(&mut c, ("GET", "fixed:100")).await;
    assert_eq!(v, "x");
    assert_eq!(int(&mut c, &["CACHE.SIZE", "fixed"]).await, 100);
}

#[tokio::test]
async fn mset_into_a_byte_limited_cache_is_all_or_nothing() {
    let (_s, mut c) = cache_server("  - { name: b, max_memory: 1k, eviction: none }\n").await;
    let big = "x".repeat(300);
    let () = run(&mut c, ("SET", "b:1", &big)).await;
    let e = try_run::<()>(&mut c, ("MSET", "b:2", &big, "b:3", &big, "b:4", &big))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("OOM"), "{e}");
    assert!(e.to_string().contains("max_memory 1024"), "{e}");
    assert_eq!(
        int(&mut c, &["CACHE.SIZE", "b"]).await,
        1,
        "nothing of the MSET was written"
    );
    let () = run(&mut c, ("MSET", "b:2", &big)).await;
    assert_eq!(int(&mut c, &["CACHE.SIZE", "b"]).await, 2);
}

#[tokio::test]
async fn cache_commands_list_info_size_clear_and_config() {
    let (_s, mut c) = cache_server("  - { name: events, consistency: strong, ttl: 6h, tti: 30m, max_entries: 1000000, eviction: lru }\n  - { name: default }\n").await;
    let names: Vec<String> = run(&mut c, ("CACHE.LIST",)).await;
    assert_eq!(names, vec!["events", "default"]);
    for i in 0..10 {
        let _: () = run(&mut c, ("SET", format!("events:{i}"), "e")).await;
        let _: () = run(&mut c, ("SET", format!("plain:{i}"), "p")).await;
    }
    // The cache's TTL is the default; a TTL given by the command wins.
    let ttl = int(&mut c, &["TTL", "events:1"]).await;
    assert!((6 * 3600 - 5..=6 * 3600).contains(&ttl), "{ttl}");
    let _: () = run(&mut c, ("SET", "events:x", "e", "EX", 100)).await;
    assert_eq!(int(&mut c, &["TTL", "events:x"]).await, 100);
    assert_eq!(int(&mut c, &["TTL", "plain:1"]).await, -1);
    let _: Option<String> = run(&mut c, ("GET", "events:1")).await;
    let _: Option<String> = run(&mut c, ("GET", "events:nope")).await;

    let info = cache_info(&mut c, "events").await;
    for (k, v) in [
        ("name", "events"),
        ("consistency", "strong"),
        ("ttl", "6h"),
        ("tti", "30m"),
        ("max_entries", "1000000"),
        ("eviction", "lru"),
        ("entries", "11"),
        ("hits", "1"),
        ("misses", "1"),
        ("evictions", "0"),
    ] {
        assert_eq!(field(&info, k), v, "{k} in {info:?}");
    }
    assert!(field(&info, "memory").parse::<u64>().unwrap() > 11 * 8);
    let all: String = run(&mut c, ("INFO",)).await;
    assert!(
        all.contains("# Caches\r\ncache_events:consistency=strong,l1=yes,ttl=6h,tti=30m"),
        "{all}"
    );
    assert!(all.contains("cache_default:consistency=eventual"), "{all}");

    assert_eq!(int(&mut c, &["CACHE.CLEAR", "events"]).await, 11);
    assert_eq!(int(&mut c, &["CACHE.SIZE", "events"]).await, 0);
    assert_eq!(int(&mut c, &["CACHE.SIZE", "default"]).await, 10);
    assert_eq!(int(&mut c, &["DBSIZE"]).await, 10);

    // Runtime policy changes; lowering a limit evicts at once.
    for i in 0..50 {
        let _: () = run(&mut c, ("SET", format!("events:{i}"), "e")).await;
    }
    let _: () = run(
        &mut c,
        (
            "CACHE.CONFIG",
            &[
                "events",
                "max_entries",
                "20",
                "ttl",
                "0",
                "eviction",
                "random",
            ],
        ),
    )
    .await;
    assert_eq!(int(&mut c, &["CACHE.SIZE", "events"]).await, 20);
    let _: () = run(&mut c, ("SET", "events:new", "e")).await;
    assert_eq!(
        int(&mut c, &["TTL", "events:new"]).await,
        -1,
        "ttl 0 removed the default"
    );
    assert_eq!(int(&mut c, &["CACHE.SIZE", "events"]).await, 20);
    let info = cache_info(&mut c, "events").await;
    assert_eq!(field(&info, "max_entries"), "20");
    assert_eq!(field(&info, "eviction"), "random");
    assert_eq!(field(&info, "evictions"), "31");
    let _: () = run(&mut c, ("CACHE.CONFIG", &["events", "eviction", "none"])).await;
    assert!(
        try_run::<()>(&mut c, ("SET", "events:more", "e"))
            .await
            .is_err()
    );

    // Errors: unknown cache, unknown field, bad value, odd pairs; nothing changes.
    for (args, want) in [
        (vec!["CACHE.SIZE", "nope"], "no such cache 'nope'"),
        (
            vec!["CACHE.CONFIG", "events", "colour", "red"],
            "unknown cache field",
        ),
        (
            vec!["CACHE.CONFIG", "events", "ttl", "soon"],
            "invalid ttl: 'soon'",
        ),
        (
            vec!["CACHE.CONFIG", "events", "max_entries", "10", "tti"],
            "wrong number of arguments",
        ),
    ] {
        let err = try_run::<Value>(&mut c, (args[0], &args[1..]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(want), "{args:?}: {err}");
    }
    let info = cache_info(&mut c, "events").await;
    assert_eq!(field(&info, "max_entries"), "20");
    let pong: String = run(&mut c, ("PING",)).await;
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn object_idletime_and_freq_follow_real_accesses() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let _: () = run(&mut c, ("SET", "k", "v")).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let idle = int(&mut c, &["OBJECT", "IDLETIME", "k"]).await;
    assert!((2..=3).contains(&idle), "{idle}");
    let freq0 = int(&mut c, &["OBJECT", "FREQ", "k"]).await;
    for _ in 0..200 {
        let _: String = run(&mut c, ("GET", "k")).await;
    }
    assert_eq!(int(&mut c, &["OBJECT", "IDLETIME", "k"]).await, 0);
    assert!(int(&mut c, &["OBJECT", "FREQ", "k"]).await > freq0);
}

#[tokio::test]
async fn maxmemory_evicts_by_policy_or_refuses_with_redis_oom() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let value = "x".repeat(1000);
    for i in 0..100 {
        let _: () = run(&mut c, ("SET", format!("k{i}"), &value)).await;
    }
    let _: () = run(&mut c, ("CONFIG", &["SET", "maxmemory", "50000"])).await;
    let err = try_run::<()>(&mut c, ("SET", "new", "v"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("OOM"));
    assert_eq!(
        err.detail(),
        Some("command not allowed when used memory > 'maxmemory'.")
    );
    // Reads and deletes still work under noeviction.
    let v: String = run(&mut c, ("GET", "k1")).await;
    assert_eq!(v.len(), 1000);
    let _: () = run(
        &mut c,
        ("CONFIG", &["SET", "maxmemory-policy", "allkeys-lru"]),
    )
    .await;
    for i in 100..200 {
        let _: () = run(&mut c, ("SET", format!("k{i}"), &value)).await;
    }
    let n = int(&mut c, &["DBSIZE"]).await;
    assert!((40..=50).contains(&n), "{n} keys");
    let used = info_u64(&mut c, "memory", "used_memory").await;
    assert!(used <= 50_000 + 1200, "{used}");
    // The last written key survived (the least recently used went first).
    assert_eq!(int(&mut c, &["EXISTS", "k199"]).await, 1);
    let evicted = info_u64(&mut c, "stats", "evicted_keys").await;
    assert_eq!(evicted as i64, 200 - n);
}

#[tokio::test]
async fn every_maxmemory_policy_evicts_what_it_should() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let value = "x".repeat(500);
    for policy in terrace::server::settings::MAXMEMORY_POLICIES {
        let () = run(&mut c, ("FLUSHALL",)).await;
        let () = run(&mut c, ("CONFIG", "SET", "maxmemory", "0")).await;
        // 50 persistent keys, then 50 with a TTL (the later, the longer).
        for i in 0..100 {
            let k = format!("k{i}");
            if i < 50 {
                let () = run(&mut c, ("SET", &k, &value)).await;
            } else {
                let () = run(&mut c, ("SET", &k, &value, "EX", 1000 + i)).await;
            }
        }
        let used = info_u64(&mut c, "memory", "used_memory").await;
        let () = run(&mut c, ("CONFIG", "SET", "maxmemory-policy", policy)).await;
        let () = run(&mut c, ("CONFIG", "SET", "maxmemory", used.to_string())).await;
        // Each new key needs one eviction.
        let mut refused = 0;
        let mut errors = Vec::new();
        for i in 0..20 {
            let r: redis::RedisResult<()> =
                try_run(&mut c, ("SET", format!("new{i}"), &value)).await;
            if let Err(e) = r {
                assert_eq!(e.code(), Some("OOM"), "{policy}: {e}");
                refused += 1;
                errors.push(e.to_string());
            }
        }
        let policy_errors = format!("{policy} {errors:?}");
        let policy = policy_errors.as_str();
        let persistent_left = existing(&mut c, 0..50).await;
        let volatile_left = existing(&mut c, 50..100).await;
        match policy.split(' ').next().unwrap_or("") {
            "noeviction" => {
                // At exactly maxmemory one more write is allowed (Redis refuses only when
                // used memory is above the limit); after it, every write is refused.
                assert_eq!(refused, 19, "{policy}");
                assert_eq!(persistent_left + volatile_left, 100, "{policy}");
            }
            p if p.starts_with("volatile") => {
                assert_eq!(refused, 0, "{policy}");
                assert_eq!(
                    persistent_left, 50,
                    "{policy} must spare keys without a TTL"
                );
                assert!(
                    volatile_left <= 31,
                    "{policy}: {volatile_left} volatile keys left"
                );
                if p.starts_with("volatile-ttl") {
                    // The nearest deadlines go first (sampled: mostly the early ones).
                    let early = existing(&mut c, 50..60).await;
                    assert!(early < 5, "{early} of the 10 nearest deadlines survived");
                }
            }
            _ => {
                assert_eq!(refused, 0, "{policy}");
                // Off-heap, a key with a TTL is charged 8 bytes more than one without:
                // evicting those for new persistent keys can leave room for one more.
                assert!(int(&mut c, &["DBSIZE"]).await <= 101, "{policy}");
                if !policy.starts_with("allkeys-random") {
                    // The 20 new keys are the most recent (and as frequent): old ones went.
                    assert!(persistent_left + volatile_left <= 81, "{policy}");
                }
            }
        }
    }
    // Volatile policies refuse once no key with a TTL is left.
    let () = run(&mut c, ("FLUSHALL",)).await;
    let () = run(&mut c, ("CONFIG", "SET", "maxmemory", "0")).await;
    for i in 0..20 {
        let () = run(&mut c, ("SET", format!("p{i}"), &value)).await;
    }
    let () = run(
        &mut c,
        ("CONFIG", "SET", "maxmemory-policy", "volatile-lru"),
    )
    .await;
    let () = run(&mut c, ("CONFIG", "SET", "maxmemory", "1000")).await;
    let e = try_run::<()>(&mut c, ("SET", "q", &value))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("OOM"));
    assert_eq!(int(&mut c, &["DBSIZE"]).await, 20);
}
