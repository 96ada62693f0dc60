//! Hashes through the `redis` crate: every command with its errors, RESP3 maps and pairs,
//! field expiry with real short TTLs (bounded polls), HSCAN while the hash changes, field
//! TTLs across a restart, and a mirror that has what its active has.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::MultiplexedConnection;

use crate::util::{TestServer, free_port, run, try_run};

/// The error text of a failed command, as the client received it.
async fn err(c: &mut MultiplexedConnection, args: &[&str]) -> String {
    match try_run::<Value>(c, args).await {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or("");
            let detail = e.detail().unwrap_or("");
            format!("{code} {detail}").trim().to_string()
        }
    }
}

async fn ints(c: &mut MultiplexedConnection, args: &[&str]) -> Vec<i64> {
    run(c, args).await
}

/// Polls `check` every 20 ms until it holds; fails after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_hash_command_with_its_errors() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    assert_eq!(run::<i64>(c, &["HSET", "h", "a", "1", "b", "2"]).await, 2);
    assert_eq!(run::<i64>(c, &["HSET", "h", "a", "10", "c", "3"]).await, 1);
    assert_eq!(run::<String>(c, &["HMSET", "h", "d", "4"]).await, "OK");
    assert_eq!(
        run::<Option<String>>(c, &["HGET", "h", "a"])
            .await
            .as_deref(),
        Some("10")
    );
    assert_eq!(run::<Option<String>>(c, &["HGET", "h", "zz"]).await, None);
    assert_eq!(
        run::<Option<String>>(c, &["HGET", "nokey", "a"]).await,
        None
    );
    assert_eq!(
        run::<Vec<Option<String>>>(c, &["HMGET", "h", "a", "zz", "d"]).await,
        vec![Some("10".into()), None, Some("4".into())]
    );
    assert_eq!(
        run::<Vec<Option<String>>>(c, &["HMGET", "nokey", "a"]).await,
        vec![None]
    );
    let all: HashMap<String, String> = run(c, &["HGETALL", "h"]).await;
    let want: HashMap<String, String> = [("a", "10"), ("b", "2"), ("c", "3"), ("d", "4")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(all, want);
    let mut keys: Vec<String> = run(c, &["HKEYS", "h"]).await;
    keys.sort();
    assert_eq!(keys, ["a", "b", "c", "d"]);
    let mut vals: Vec<String> = run(c, &["HVALS", "h"]).await;
    vals.sort();
    assert_eq!(vals, ["10", "2", "3", "4"]);
    assert_eq!(
        run::<Vec<String>>(c, &["HKEYS", "nokey"]).await,
        Vec::<String>::new()
    );
    assert_eq!(run::<i64>(c, &["HLEN", "h"]).await, 4);
    assert_eq!(run::<i64>(c, &["HLEN", "nokey"]).await, 0);
    assert_eq!(run::<i64>(c, &["HEXISTS", "h", "a"]).await, 1);
    assert_eq!(run::<i64>(c, &["HEXISTS", "h", "zz"]).await, 0);
    assert_eq!(run::<i64>(c, &["HSTRLEN", "h", "a"]).await, 2);
    assert_eq!(run::<i64>(c, &["HSTRLEN", "h", "zz"]).await, 0);
    assert_eq!(run::<i64>(c, &["HSETNX", "h", "a", "x"]).await, 0);
    assert_eq!(run::<i64>(c, &["HSETNX", "h", "e", "5"]).await, 1);
    assert_eq!(run::<i64>(c, &["HDEL", "h", "e", "zz", "e"]).await, 1);
    assert_eq!(run::<i64>(c, &["HDEL", "nokey", "a"]).await, 0);

    // Counters.
    assert_eq!(run::<i64>(c, &["HINCRBY", "h", "a", "5"]).await, 15);
    assert_eq!(run::<i64>(c, &["HINCRBY", "h", "n", "-3"]).await, -3);
    assert_eq!(
        run::<String>(c, &["HINCRBYFLOAT", "h", "f", "10.5"]).await,
        "10.5"
    );
    assert_eq!(
        run::<String>(c, &["HINCRBYFLOAT", "h", "f", "0.1"]).await,
        "10.6"
    );
    assert_eq!(
        run::<String>(c, &["HINCRBYFLOAT", "h", "f", "-5"]).await,
        "5.6"
    );
    assert_eq!(
        run::<String>(c, &["HINCRBYFLOAT", "h", "g", "5.0e3"]).await,
        "5000"
    );
    assert_eq!(
        run::<Option<String>>(c, &["HGET", "h", "f"])
            .await
            .as_deref(),
        Some("5.6")
    );
    let () = run(c, &["HSET", "h", "big", "9223372036854775807"]).await;
    assert_eq!(
        err(c, &["HINCRBY", "h", "big", "1"]).await,
        "ERR increment or decrement would overflow"
    );
    let () = run(c, &["HSET", "h", "txt", "abc"]).await;
    assert_eq!(
        err(c, &["HINCRBY", "h", "txt", "1"]).await,
        "ERR hash value is not an integer"
    );
    assert_eq!(
        err(c, &["HINCRBYFLOAT", "h", "txt", "1"]).await,
        "ERR hash value is not a float"
    );
    assert_eq!(
        err(c, &["HINCRBY", "h", "a", "x"]).await,
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(c, &["HINCRBYFLOAT", "h", "a", "x"]).await,
        "ERR value is not a valid float"
    );
    assert_eq!(
        err(c, &["HINCRBYFLOAT", "h", "a", "inf"]).await,
        "ERR value is NaN or Infinity"
    );

    // HRANDFIELD.
    let () = run(c, &["DEL", "r"]).await;
    let _: i64 = run(c, &["HSET", "r", "x", "1", "y", "2", "z", "3"]).await;
    let one: String = run(c, &["HRANDFIELD", "r"]).await;
    assert!(["x", "y", "z"].contains(&one.as_str()));
    assert_eq!(
        run::<Option<String>>(c, &["HRANDFIELD", "nokey"]).await,
        None
    );
    assert_eq!(
        run::<Vec<String>>(c, &["HRANDFIELD", "nokey", "3"]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        run::<Vec<String>>(c, &["HRANDFIELD", "r", "0"]).await,
        Vec::<String>::new()
    );
    let two: Vec<String> = run(c, &["HRANDFIELD", "r", "2"]).await;
    assert_eq!(two.len(), 2);
    assert_eq!(
        two.iter().collect::<HashSet<_>>().len(),
        2,
        "distinct: {two:?}"
    );
    let mut every: Vec<String> = run(c, &["HRANDFIELD", "r", "10"]).await;
    every.sort();
    assert_eq!(every, ["x", "y", "z"]);
    let reps: Vec<String> = run(c, &["HRANDFIELD", "r", "-20"]).await;
    assert_eq!(reps.len(), 20);
    assert!(reps.iter().all(|f| ["x", "y", "z"].contains(&f.as_str())));
    let flat: Vec<String> = run(c, &["HRANDFIELD", "r", "-4", "WITHVALUES"]).await;
    assert_eq!(flat.len(), 8, "RESP2: a flat array of field, value");
    for p in flat.chunks(2) {
        let want = match p[0].as_str() {
            "x" => "1",
            "y" => "2",
            _ => "3",
        };
        assert_eq!(p[1], want);
    }
    assert_eq!(
        err(c, &["HRANDFIELD", "r", "1", "VALUES"]).await,
        "ERR syntax error"
    );
    assert_eq!(
        err(c, &["HRANDFIELD", "r", "x"]).await,
        "ERR value is not an integer or out of range"
    );

    // Types, arity.
    let () = run(c, &["SET", "s", "v"]).await;
    let wrong = "WRONGTYPE Operation against a key holding the wrong kind of value";
    for args in [
        &["HSET", "s", "a", "1"][..],
        &["HGET", "s", "a"],
        &["HMGET", "s", "a"],
        &["HGETALL", "s"],
        &["HDEL", "s", "a"],
        &["HLEN", "s"],
        &["HEXISTS", "s", "a"],
        &["HKEYS", "s"],
        &["HVALS", "s"],
        &["HINCRBY", "s", "a", "1"],
        &["HINCRBYFLOAT", "s", "a", "1"],
        &["HSETNX", "s", "a", "1"],
        &["HSTRLEN", "s", "a"],
        &["HRANDFIELD", "s"],
        &["HSCAN", "s", "0"],
        &["HEXPIRE", "s", "10", "FIELDS", "1", "a"],
        &["HTTL", "s", "FIELDS", "1", "a"],
        &["HPERSIST", "s", "FIELDS", "1", "a"],
    ] {
        assert_eq!(err(c, args).await, wrong, "{args:?}");
    }
    assert_eq!(
        err(c, &["HSET", "h", "a"]).await,
        "ERR wrong number of arguments for 'hset' command"
    );
    assert_eq!(
        err(c, &["HSET", "h", "a", "1", "b"]).await,
        "ERR wrong number of arguments for 'hset' command"
    );
    assert_eq!(
        err(c, &["HMSET", "h", "a", "1", "b"]).await,
        "ERR wrong number of arguments for 'hmset' command"
    );
    assert_eq!(
        err(c, &["HGET", "h"]).await,
        "ERR wrong number of arguments for 'hget' command"
    );
    assert_eq!(
        err(c, &["HEXPIRE", "h", "10", "FIELDS", "1"]).await,
        "ERR wrong number of arguments for 'hexpire' command"
    );

    // Deleting the last field deletes the key.
    assert_eq!(run::<i64>(c, &["HDEL", "r", "x", "y", "z"]).await, 3);
    assert_eq!(run::<i64>(c, &["EXISTS", "r"]).await, 0);
    assert_eq!(run::<String>(c, &["TYPE", "h"]).await, "hash");
}

#[tokio::test]
async fn resp3_replies_are_maps_and_pairs() {
    let s = TestServer::start();
    let mut c = s.conn3().await;
    let _: i64 = run(&mut c, &["HSET", "h", "a", "1", "b", "2"]).await;
    let v: Value = run(&mut c, &["HGETALL", "h"]).await;
    let Value::Map(pairs) = v else {
        panic!("HGETALL in RESP3 is a map: {v:?}");
    };
    let got: HashMap<Vec<u8>, Vec<u8>> = pairs
        .into_iter()
        .map(|(k, v)| match (k, v) {
            (Value::BulkString(k), Value::BulkString(v)) => (k, v),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[&b"a"[..]], b"1");
    assert_eq!(got[&b"b"[..]], b"2");
    let empty: Value = run(&mut c, &["HGETALL", "nokey"]).await;
    assert_eq!(empty, Value::Map(Vec::new()));
    let v: Value = run(&mut c, &["HRANDFIELD", "h", "-3", "WITHVALUES"]).await;
    let Value::Array(items) = v else {
        panic!("{v:?}");
    };
    assert_eq!(items.len(), 3, "RESP3: one [field, value] pair per pick");
    for p in items {
        let Value::Array(p) = p else {
            panic!("a pair: {p:?}");
        };
        assert_eq!(p.len(), 2);
        match (&p[0], &p[1]) {
            (Value::BulkString(f), Value::BulkString(v)) => {
                assert_eq!(v, if f == b"a" { b"1" } else { b"2" });
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn field_ttls_hide_expire_and_reclaim_fields() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    let _: i64 = run(
        c,
        &[
            "HSET", "h", "keep", "k", "short", "s", "long", "l", "n", "1",
        ],
    )
    .await;
    // Reply codes: -2 missing field, 1 set; the key missing: all -2.
    assert_eq!(
        ints(c, &["HPEXPIRE", "h", "1500", "FIELDS", "2", "short", "zz"]).await,
        [1, -2]
    );
    assert_eq!(
        ints(c, &["HEXPIRE", "nokey", "10", "FIELDS", "2", "a", "b"]).await,
        [-2, -2]
    );
    assert_eq!(
        ints(c, &["HEXPIRE", "h", "100", "FIELDS", "2", "long", "n"]).await,
        [1, 1]
    );
    // NX / XX / GT / LT.
    assert_eq!(
        ints(
            c,
            &["HEXPIRE", "h", "200", "NX", "FIELDS", "2", "long", "keep"]
        )
        .await,
        [0, 1]
    );
    assert_eq!(
        ints(c, &["HPERSIST", "h", "FIELDS", "3", "keep", "keep", "zz"]).await,
        [1, -1, -2]
    );
    assert_eq!(
        ints(
            c,
            &["HEXPIRE", "h", "200", "XX", "FIELDS", "2", "long", "keep"]
        )
        .await,
        [1, 0]
    );
    assert_eq!(
        ints(
            c,
            &["HEXPIRE", "h", "100", "GT", "FIELDS", "2", "long", "keep"]
        )
        .await,
        [0, 0]
    );
    assert_eq!(
        ints(
            c,
            &["HEXPIRE", "h", "150", "LT", "FIELDS", "2", "long", "keep"]
        )
        .await,
        [1, 1]
    );
    assert_eq!(
        ints(c, &["HPERSIST", "h", "FIELDS", "1", "keep"]).await,
        [1]
    );
    // TTL reports.
    let ttl = ints(c, &["HTTL", "h", "FIELDS", "3", "long", "keep", "zz"]).await;
    assert!(ttl[0] > 140 && ttl[0] <= 150, "{ttl:?}");
    assert_eq!(&ttl[1..], [-1, -2]);
    let pttl = ints(c, &["HPTTL", "h", "FIELDS", "1", "short"]).await;
    assert!(pttl[0] > 0 && pttl[0] <= 1500, "{pttl:?}");
    let at = ints(c, &["HPEXPIRETIME", "h", "FIELDS", "1", "long"]).await[0];
    let at_s = ints(c, &["HEXPIRETIME", "h", "FIELDS", "1", "long"]).await[0];
    assert_eq!(at_s, (at + 999) / 1000, "seconds round up, as in Redis");
    assert_eq!(ints(c, &["HTTL", "nokey", "FIELDS", "1", "a"]).await, [-2]);
    // HSET clears a TTL, HINCRBY keeps it.
    assert_eq!(
        ints(c, &["HEXPIRE", "h", "100", "FIELDS", "1", "keep"]).await,
        [1]
    );
    let _: i64 = run(c, &["HSET", "h", "keep", "k2"]).await;
    assert_eq!(ints(c, &["HTTL", "h", "FIELDS", "1", "keep"]).await, [-1]);
    let _: i64 = run(c, &["HINCRBY", "h", "n", "1"]).await;
    assert!(ints(c, &["HTTL", "h", "FIELDS", "1", "n"]).await[0] > 0);
    // A time in the past deletes the field (2).
    assert_eq!(
        ints(c, &["HEXPIRE", "h", "0", "FIELDS", "1", "n"]).await,
        [2]
    );
    assert_eq!(
        ints(c, &["HPEXPIREAT", "h", "1", "FIELDS", "1", "zz"]).await,
        [-2]
    );
    assert_eq!(run::<i64>(c, &["HEXISTS", "h", "n"]).await, 0);
    // Errors, word for word.
    assert_eq!(
        err(c, &["HEXPIRE", "h", "-1", "FIELDS", "1", "a"]).await,
        "ERR invalid expire time, must be >= 0"
    );
    assert_eq!(
        err(c, &["HEXPIRE", "h", "x", "FIELDS", "1", "a"]).await,
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(c, &["HEXPIRE", "h", "99999999999999", "FIELDS", "1", "a"]).await,
        "ERR invalid expire time in 'hexpire' command"
    );
    assert_eq!(
        err(
            c,
            &["HPEXPIREAT", "h", "70368744177664", "FIELDS", "1", "a"]
        )
        .await,
        "ERR invalid expire time in 'hpexpireat' command"
    );
    assert_eq!(
        err(c, &["HEXPIRE", "h", "10", "FIELD", "1", "a"]).await,
        "ERR Mandatory argument FIELDS is missing or not at the right position"
    );
    assert_eq!(
        err(c, &["HEXPIRE", "h", "10", "FIELDS", "0", "a"]).await,
        "ERR Parameter `numFields` should be greater than 0"
    );
    assert_eq!(
        err(c, &["HEXPIRE", "h", "10", "FIELDS", "2", "a"]).await,
        "ERR The `numfields` parameter must match the number of arguments"
    );
    assert_eq!(
        err(c, &["HTTL", "h", "FIELDS", "x", "a"]).await,
        "ERR Number of fields must be a positive integer"
    );
    assert_eq!(
        err(c, &["HPERSIST", "h", "FIELDS", "0", "a"]).await,
        "ERR Number of fields must be a positive integer"
    );

    // The short field expires: invisible to every read at once, then reclaimed by the
    // server's sweep (HLEN counts it until then, as Redis's does).
    eventually(Duration::from_secs(5), "short field expired", || {
        let mut c = c.clone();
        async move {
            run::<Option<String>>(&mut c, &["HGET", "h", "short"])
                .await
                .is_none()
        }
    })
    .await;
    assert_eq!(run::<i64>(c, &["HEXISTS", "h", "short"]).await, 0);
    assert_eq!(run::<i64>(c, &["HSTRLEN", "h", "short"]).await, 0);
    let all: HashMap<String, String> = run(c, &["HGETALL", "h"]).await;
    assert!(!all.contains_key("short"), "{all:?}");
    assert_eq!(ints(c, &["HTTL", "h", "FIELDS", "1", "short"]).await, [-2]);
    eventually(Duration::from_secs(5), "expired field reclaimed", || {
        let mut c = c.clone();
        async move { run::<i64>(&mut c, &["HLEN", "h"]).await == 2 }
    })
    .await;

    // A hash whose every field expires is deleted by the sweep, with no command touching it.
    let _: i64 = run(c, &["HSET", "gone", "a", "1", "b", "2"]).await;
    assert_eq!(
        ints(c, &["HPEXPIRE", "gone", "100", "FIELDS", "2", "a", "b"]).await,
        [1, 1]
    );
    eventually(Duration::from_secs(5), "emptied hash deleted", || {
        let mut c = c.clone();
        async move { run::<i64>(&mut c, &["EXISTS", "gone"]).await == 0 }
    })
    .await;
    // An expired field is absent to writes too: HSETNX sets it, HINCRBY starts from 0.
    let _: i64 = run(c, &["HSET", "w", "a", "5", "b", "5", "z", "1"]).await;
    assert_eq!(
        ints(c, &["HPEXPIRE", "w", "50", "FIELDS", "2", "a", "b"]).await,
        [1, 1]
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(run::<i64>(c, &["HINCRBY", "w", "a", "1"]).await, 1);
    assert_eq!(run::<i64>(c, &["HSETNX", "w", "b", "x"]).await, 1);
    assert_eq!(
        ints(c, &["HTTL", "w", "FIELDS", "2", "a", "b"]).await,
        [-1, -1]
    );
}

#[tokio::test]
async fn hscan_returns_every_field_present_for_the_whole_scan() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    // A small hash: one page, cursor 0, like Redis's listpack.
    let _: i64 = run(c, &["HSET", "small", "a", "1", "b", "2", "ab", "3"]).await;
    let (cur, items): (String, Vec<String>) = run(c, &["HSCAN", "small", "0", "COUNT", "1"]).await;
    assert_eq!(cur, "0");
    assert_eq!(items.len(), 6);
    let (_, items): (String, Vec<String>) =
        run(c, &["HSCAN", "small", "0", "MATCH", "a*", "NOVALUES"]).await;
    let mut items = items;
    items.sort();
    assert_eq!(items, ["a", "ab"]);
    let (cur, items): (String, Vec<String>) = run(c, &["HSCAN", "nokey", "0", "COUNT", "0"]).await;
    assert_eq!(
        (cur.as_str(), items.len()),
        ("0", 0),
        "a missing key ignores the options"
    );
    assert_eq!(
        err(c, &["HSCAN", "small", "0", "COUNT", "0"]).await,
        "ERR syntax error"
    );
    assert_eq!(err(c, &["HSCAN", "small", "x"]).await, "ERR invalid cursor");
    assert_eq!(
        err(c, &["HSCAN", "small", "0", "TYPE", "hash"]).await,
        "ERR syntax error"
    );

    // A big hash, changed between every two pages: fields present for the whole scan
    // are all returned.
    let stable: Vec<String> = (0..3000).map(|i| format!("s{i}")).collect();
    for chunk in stable.chunks(500) {
        let mut args = vec!["HSET".to_string(), "big".to_string()];
        for f in chunk {
            args.push(f.clone());
            args.push(format!("v-{f}"));
        }
        let _: i64 = run(c, &args).await;
    }
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut pages = 0;
    loop {
        let (next, items): (String, Vec<String>) =
            run(c, &["HSCAN", "big", &cursor, "COUNT", "50"]).await;
        for p in items.chunks(2) {
            if p[0].starts_with('s') {
                assert_eq!(p[1], format!("v-{}", p[0]));
            }
            seen.insert(p[0].clone());
        }
        // Churn: new fields, and removed ones that are not part of the stable set.
        let mut args = vec!["HSET".to_string(), "big".to_string()];
        for j in 0..40 {
            args.push(format!("t{pages}-{j}"));
            args.push("x".into());
        }
        let _: i64 = run(c, &args).await;
        if pages > 0 {
            let mut del = vec!["HDEL".to_string(), "big".to_string()];
            del.extend((0..40).map(|j| format!("t{}-{j}", pages - 1)));
            let _: i64 = run(c, &del).await;
        }
        pages += 1;
        assert!(pages < 10_000, "the scan ends");
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert!(pages > 10, "a big hash is scanned in pages: {pages}");
    let missing: Vec<&String> = stable.iter().filter(|f| !seen.contains(*f)).collect();
    assert!(missing.is_empty(), "fields never returned: {missing:?}");
}

/// A one-server restartable config on `data`.
fn restartable(data: &std::path::Path) -> String {
    format!(
        "cluster:\n  stripes:\n    - name: s\n      servers:\n        - {{ name: a, host: 127.0.0.1, port: 6379, data: {} }}\nstorage:\n  restartable: true\n  fsync: always\n",
        data.display()
    )
}

#[tokio::test]
async fn hashes_and_field_ttls_survive_a_restart() {
    let data = tempfile::tempdir().expect("tempdir");
    let yaml = restartable(data.path());
    let mut s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let _: i64 = run(&mut c, &["HSET", "h", "a", "1", "b", "2", "c", "3"]).await;
    assert_eq!(
        ints(&mut c, &["HEXPIRE", "h", "600", "FIELDS", "1", "a"]).await,
        [1]
    );
    assert_eq!(
        ints(&mut c, &["HPEXPIRE", "h", "300", "FIELDS", "1", "b"]).await,
        [1]
    );
    let at = ints(&mut c, &["HPEXPIRETIME", "h", "FIELDS", "1", "a"]).await[0];
    let _: String = run(&mut c, &["HINCRBYFLOAT", "h", "f", "1.5"]).await;
    drop(c);
    assert!(s.terminate().is_some_and(|st| st.success()));
    // Down long enough for `b` to pass its TTL.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let all: HashMap<String, String> = run(&mut c, &["HGETALL", "h"]).await;
    let want: HashMap<String, String> = [("a", "1"), ("c", "3"), ("f", "1.5")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(all, want, "b expired while the server was down");
    assert_eq!(
        ints(&mut c, &["HPEXPIRETIME", "h", "FIELDS", "3", "a", "b", "c"]).await,
        [at, -2, -1]
    );
}

#[test]
fn a_mirror_has_the_hash_with_its_field_ttls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: Vec<(u16, u16)> = (0..2).map(|_| (free_port(), free_port())).collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, (p, g))| {
            let data = dir.path().join(format!("data{i}"));
            format!(
                "        - {{ name: m{i}, host: 127.0.0.1, port: {p}, group_port: {g}, data: {} }}\n",
                data.display()
            )
        })
        .collect();
    let yaml = format!(
        "cluster:\n  replica_timeout: 3s\n  stripes:\n    - name: s1\n      servers:\n{servers}caches:\n  - {{ name: e, consistency: eventual }}\n  - {{ name: default, consistency: strong }}\n"
    );
    let conf = dir.path().join("conf.yaml");
    std::fs::write(&conf, yaml).expect("config");
    let a = TestServer::start_named(&conf, "m0", ports[0].0);
    wait_state(ports[0].0, "ACTIVE-COORDINATOR");
    let b = TestServer::start_named(&conf, "m1", ports[1].0);
    wait_state(ports[1].0, "PASSIVE-STANDBY");
    let (mut ca, mut cb) = (con(a.port), con(b.port));
    let dv = |c: &mut redis::Connection, k: &str| -> Vec<String> {
        redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(k)
            .query(c)
            .expect("digest-value")
    };
    let q = |c: &mut redis::Connection, args: &[&str]| -> Value {
        redis::cmd(args[0])
            .arg(&args[1..])
            .query(c)
            .expect("command")
    };
    q(&mut ca, &["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    q(&mut ca, &["HINCRBYFLOAT", "h", "c", "0.5"]);
    q(&mut ca, &["HEXPIRE", "h", "600", "FIELDS", "1", "a"]);
    q(&mut ca, &["HPEXPIRE", "h", "1500", "FIELDS", "1", "b"]);
    // Strong cache: the reply means the mirror has it.
    assert_eq!(dv(&mut cb, "h"), dv(&mut ca, "h"));
    assert_ne!(
        dv(&mut cb, "h"),
        vec!["0".to_string()],
        "{:?}",
        dv(&mut cb, "h")
    );
    // The active's sweep reclaims `b`; the mirror gets the new value.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let len: i64 = redis::cmd("HLEN").arg("h").query(&mut ca).expect("hlen");
        if len == 2 && dv(&mut cb, "h") == dv(&mut ca, "h") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mirror did not follow the reclaim"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Reads of an eventual cache are served by the mirror to a READONLY connection: the
    // same live fields and TTLs.
    q(&mut ca, &["HSET", "e:h", "a", "1", "c", "3"]);
    q(&mut ca, &["HEXPIRE", "e:h", "600", "FIELDS", "1", "a"]);
    let n: i64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5000)
        .query(&mut ca)
        .expect("wait");
    assert_eq!(n, 1);
    let () = redis::cmd("READONLY").query(&mut cb).expect("readonly");
    let all: HashMap<String, String> = redis::cmd("HGETALL")
        .arg("e:h")
        .query(&mut cb)
        .expect("hgetall");
    assert_eq!(all.len(), 2);
    assert_eq!(all["c"], "3");
    let ttl: Vec<i64> = redis::cmd("HTTL")
        .arg("e:h")
        .arg("FIELDS")
        .arg(2)
        .arg("a")
        .arg("c")
        .query(&mut cb)
        .expect("httl");
    assert!(ttl[0] > 590 && ttl[1] == -1, "{ttl:?}");
}

fn con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("client")
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect")
}

/// Waits (bounded) until the server on `port` reports `state`.
fn wait_state(port: u16, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text: Option<String> = redis::cmd("INFO").arg("terrace").query(&mut con(port)).ok();
        let now = text
            .as_deref()
            .and_then(|t| crate::util::field(t, "terrace_state"));
        if now.as_deref() == Some(state) {
            return;
        }
        assert!(Instant::now() < deadline, "server on {port} not {state}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
