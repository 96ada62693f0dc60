//! What every data type shares: TYPE and OBJECT ENCODING, WRONGTYPE across families, the
//! generic key commands, cache TTL/TTI/eviction, WATCH, L1 invalidation, fast restart of
//! whole values and of element-level patches. The families' own commands are tested in
//! hash.rs, list.rs, set.rs and zset.rs.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use crate::caches::with_caches;
use crate::util::{Resp3, TestServer, run, try_run};

/// One key of each type: `h` (hash), `l` (list), `s` (set), `z` (sorted set), `str`.
async fn one_of_each(c: &mut MultiplexedConnection) {
    let _: i64 = run(c, ("HSET", "h", "f", "v")).await;
    let _: i64 = run(c, ("RPUSH", "l", "a", "b")).await;
    let _: i64 = run(c, ("SADD", "s", "1", "2")).await;
    let _: i64 = run(c, ("ZADD", "z", "1", "m")).await;
    let _: () = run(c, ("SET", "str", "x")).await;
}

fn wrongtype(r: redis::RedisResult<redis::Value>) -> bool {
    matches!(r, Err(e) if e.code() == Some("WRONGTYPE"))
}

#[tokio::test]
async fn type_encoding_and_wrongtype_across_families() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    one_of_each(&mut c).await;
    for (k, t, enc) in [
        ("h", "hash", "listpack"),
        ("l", "list", "listpack"),
        ("s", "set", "intset"),
        ("z", "zset", "listpack"),
        ("str", "string", "embstr"),
    ] {
        let ty: String = run(&mut c, ("TYPE", k)).await;
        assert_eq!(ty, t, "{k}");
        let e: String = run(&mut c, ("OBJECT", "ENCODING", k)).await;
        assert_eq!(e, enc, "{k}");
    }
    let _: i64 = run(&mut c, ("SADD", "s", "not-a-number")).await;
    let e: String = run(&mut c, ("OBJECT", "ENCODING", "s")).await;
    assert_eq!(e, "listpack");
    let big = "x".repeat(100);
    let _: i64 = run(&mut c, ("HSET", "h", "big", big.as_str())).await;
    let e: String = run(&mut c, ("OBJECT", "ENCODING", "h")).await;
    assert_eq!(e, "hashtable");

    assert!(wrongtype(try_run(&mut c, ("GET", "h")).await));
    assert!(wrongtype(try_run(&mut c, ("HGET", "l", "f")).await));
    assert!(wrongtype(try_run(&mut c, ("LPUSH", "s", "x")).await));
    assert!(wrongtype(try_run(&mut c, ("SADD", "z", "x")).await));
    assert!(wrongtype(try_run(&mut c, ("ZADD", "str", "1", "x")).await));
    assert!(wrongtype(try_run(&mut c, ("APPEND", "h", "x")).await));
    // A refused command changed nothing.
    let n: i64 = run(&mut c, ("SCARD", "s")).await;
    assert_eq!(n, 3);

    let (_, keys): (u64, Vec<String>) =
        run(&mut c, ("SCAN", "0", "TYPE", "hash", "COUNT", "100")).await;
    assert_eq!(keys, vec!["h".to_string()]);
    let n: i64 = run(&mut c, ("DBSIZE",)).await;
    assert_eq!(n, 5);
}

#[tokio::test]
async fn generic_key_commands_work_on_collections() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    one_of_each(&mut c).await;
    let _: () = run(&mut c, ("RENAME", "l", "l2")).await;
    let items: Vec<String> = run(&mut c, ("LRANGE", "l2", "0", "-1")).await;
    assert_eq!(items, vec!["a", "b"]);
    let copied: i64 = run(&mut c, ("COPY", "s", "s2")).await;
    assert_eq!(copied, 1);
    let _: i64 = run(&mut c, ("SREM", "s", "1")).await;
    let mut m: Vec<String> = run(&mut c, ("SMEMBERS", "s2")).await;
    m.sort();
    assert_eq!(m, vec!["1", "2"], "COPY made an independent copy");

    let small: i64 = run(&mut c, ("MEMORY", "USAGE", "h")).await;
    let big = "y".repeat(10_000);
    let _: i64 = run(&mut c, ("HSET", "h", "g", big.as_str())).await;
    let grown: i64 = run(&mut c, ("MEMORY", "USAGE", "h")).await;
    assert!(grown >= small + 10_000, "{small} -> {grown}");

    let ok: i64 = run(&mut c, ("PEXPIRE", "z", "150")).await;
    assert_eq!(ok, 1);
    let ttl: i64 = run(&mut c, ("PTTL", "z")).await;
    assert!(ttl > 0 && ttl <= 150);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = run(&mut c, ("EXISTS", "z")).await;
        if n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the sorted set never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let n: i64 = run(&mut c, ("DEL", "h", "s2", "l2", "nope")).await;
    assert_eq!(n, 3);
}

#[tokio::test]
async fn caches_apply_tti_eviction_and_watch_to_collections() {
    let yaml = with_caches(
        "  - { name: idle, tti: 1s }\n  - { name: small, max_entries: 2, eviction: lru }\n  - { name: default }\n",
    );
    let s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let _: i64 = run(&mut c, ("HSET", "idle:h", "f", "v")).await;
    for k in ["small:a", "small:b", "small:c"] {
        let _: i64 = run(&mut c, ("RPUSH", k, "x")).await;
    }
    let size: i64 = run(&mut c, ("CACHE.SIZE", "small")).await;
    assert_eq!(
        size, 2,
        "the cache evicted a list to stay within max_entries"
    );
    let newest: i64 = run(&mut c, ("LLEN", "small:c")).await;
    assert_eq!(newest, 1);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n: i64 = run(&mut c, ("EXISTS", "idle:h")).await;
        if n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the idle hash never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // WATCH sees a change to an element.
    let mut other = s.conn().await;
    let _: i64 = run(&mut c, ("SADD", "w", "a")).await;
    let _: () = run(&mut c, ("WATCH", "w")).await;
    let _: i64 = run(&mut other, ("SADD", "w", "b")).await;
    let _: () = run(&mut c, ("MULTI",)).await;
    let _: redis::Value = run(&mut c, ("SADD", "w", "c")).await;
    let r: redis::Value = run(&mut c, ("EXEC",)).await;
    assert_eq!(r, redis::Value::Nil, "EXEC after a watched set changed");
    // A command that changes nothing does not count as a change.
    let _: () = run(&mut c, ("WATCH", "w")).await;
    let _: i64 = run(&mut other, ("SREM", "w", "not-there")).await;
    let _: () = run(&mut c, ("MULTI",)).await;
    let _: redis::Value = run(&mut c, ("SCARD", "w")).await;
    let r: Vec<i64> = run(&mut c, ("EXEC",)).await;
    assert_eq!(r, vec![2]);
}

#[test]
fn tracking_invalidates_changed_collections() {
    let s = TestServer::start();
    let mut r = Resp3::connect(s.port);
    assert_eq!(r.text(&["CLIENT", "TRACKING", "ON"]), "OK");
    let mut w = Resp3::connect(s.port);
    assert_eq!(w.text(&["HSET", "h", "f", "1"]), "1");
    assert_eq!(w.text(&["RPUSH", "l", "a"]), "1");
    assert_eq!(r.text(&["HGET", "h", "f"]), "1");
    let _ = r.text(&["LRANGE", "l", "0", "-1"]);
    let keys = |k: &str| Some(Some(vec![k.to_string()]));
    assert_eq!(w.text(&["HSET", "h", "f", "2"]), "0");
    assert_eq!(r.invalidation(Duration::from_secs(5)), keys("h"));
    assert_eq!(w.text(&["LPOP", "l"]), "a");
    assert_eq!(r.invalidation(Duration::from_secs(5)), keys("l"));
}

/// A one-server restartable config on `data`.
fn restartable(data: &std::path::Path) -> String {
    format!(
        "cluster:\n  stripes:\n    - name: s\n      servers:\n        - {{ name: a, host: 127.0.0.1, port: 6379, data: {} }}\nstorage:\n  restartable: true\n  fsync: always\n",
        data.display()
    )
}

async fn dump_all(c: &mut MultiplexedConnection) -> Vec<(String, redis::Value)> {
    let mut out = Vec::new();
    let mut keys: Vec<String> = run(c, ("KEYS", "*")).await;
    keys.sort();
    for k in keys {
        let ty: String = run(c, ("TYPE", k.as_str())).await;
        let mut v: redis::Value = match ty.as_str() {
            "hash" => run(c, ("HGETALL", k.as_str())).await,
            "list" => run(c, ("LRANGE", k.as_str(), "0", "-1")).await,
            "set" => run(c, ("SMEMBERS", k.as_str())).await,
            "zset" => run(c, ("ZRANGE", k.as_str(), "0", "-1", "WITHSCORES")).await,
            _ => run(c, ("GET", k.as_str())).await,
        };
        // Hashes and sets have no order: compare them sorted.
        if let redis::Value::Array(items) = &mut v
            && matches!(ty.as_str(), "set")
        {
            items.sort_by_key(|i| format!("{i:?}"));
        }
        if let redis::Value::Array(items) = &mut v
            && ty == "hash"
        {
            let mut pairs: Vec<Vec<redis::Value>> = items.chunks(2).map(<[_]>::to_vec).collect();
            pairs.sort_by_key(|p| format!("{p:?}"));
            *items = pairs.concat();
        }
        if let redis::Value::Map(pairs) = &mut v {
            pairs.sort_by_key(|p| format!("{p:?}"));
        }
        out.push((k, v));
    }
    out
}

#[tokio::test]
async fn collections_and_their_patches_survive_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let yaml = restartable(data.path());
    let mut s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    one_of_each(&mut c).await;
    // Large collections, then element changes to them (recorded as patches).
    let mut cmd = redis::cmd("HSET");
    cmd.arg("bigh");
    let mut sadd = redis::cmd("SADD");
    sadd.arg("bigs");
    let mut zadd = redis::cmd("ZADD");
    zadd.arg("bigz");
    for i in 0..2_000 {
        cmd.arg(format!("field-{i}")).arg(format!("value-{i}"));
        sadd.arg(format!("member-{i}"));
        zadd.arg(i).arg(format!("member-{i}"));
    }
    let _: i64 = cmd.query_async(&mut c).await.expect("hset");
    let _: i64 = sadd.query_async(&mut c).await.expect("sadd");
    let _: i64 = zadd.query_async(&mut c).await.expect("zadd");
    let items: Vec<String> = (0..2_000).map(|i| format!("item-{i}")).collect();
    let _: i64 = run(&mut c, ("RPUSH", "bigl", items)).await;
    let log_size = || -> u64 {
        std::fs::read_dir(data.path())
            .expect("data dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("terrace.log"))
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    let before = log_size();
    for i in 0..100 {
        let _: i64 = run(&mut c, ("HSET", "bigh", format!("field-{i}"), "changed")).await;
        let _: i64 = run(&mut c, ("HDEL", "bigh", format!("field-{}", 1000 + i))).await;
        let _: i64 = run(&mut c, ("SREM", "bigs", format!("member-{i}"))).await;
        let _: f64 = run(&mut c, ("ZINCRBY", "bigz", "0.5", format!("member-{i}"))).await;
        let _: i64 = run(&mut c, ("LPUSH", "bigl", format!("pushed-{i}"))).await;
        let _: String = run(&mut c, ("RPOP", "bigl")).await;
        let set: Vec<i64> = run(
            &mut c,
            (
                "HPEXPIRE",
                "bigh",
                "3600000",
                "FIELDS",
                "1",
                format!("field-{}", 1500 + i),
            ),
        )
        .await;
        assert_eq!(set, vec![1]);
    }
    let grown = log_size() - before;
    // 700 changes of 2,000-element collections: whole values would log about 50 MB.
    assert!(
        grown < 1 << 20,
        "the log grew {grown} bytes for 700 element changes"
    );
    let before = dump_all(&mut c).await;
    drop(c);
    assert!(s.terminate().is_some_and(|st| st.success()));
    let s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let after = dump_all(&mut c).await;
    assert_eq!(after.len(), before.len());
    assert!(after == before, "the data after the restart differs");
    let n: i64 = run(&mut c, ("HLEN", "bigh")).await;
    assert_eq!(n, 1_900);
    let ttl: Vec<i64> = run(
        &mut c,
        ("HTTL", "bigh", "FIELDS", "2", "field-1500", "field-1"),
    )
    .await;
    assert!(ttl[0] > 3_000 && ttl[1] == -1, "{ttl:?}");
}
