//! Every command family through the `redis` crate, checking values and error strings.

use redis::Value;
use redis::aio::MultiplexedConnection;

use crate::util::{TestServer, try_run};

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

#[tokio::test]
async fn strings() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    assert_eq!(
        try_run::<String>(&mut c, &["SET", "k", "v"]).await.unwrap(),
        "OK"
    );
    assert_eq!(try_run::<String>(&mut c, &["GET", "k"]).await.unwrap(), "v");
    assert_eq!(
        try_run::<Option<String>>(&mut c, &["GET", "missing"])
            .await
            .unwrap(),
        None
    );
    // NX / XX / GET
    assert_eq!(
        try_run::<Option<String>>(&mut c, &["SET", "k", "w", "NX"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        try_run::<Option<String>>(&mut c, &["SET", "new", "1", "XX"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        try_run::<Option<String>>(&mut c, &["SET", "k", "w", "GET"])
            .await
            .unwrap(),
        Some("v".into())
    );
    assert_eq!(try_run::<String>(&mut c, &["GET", "k"]).await.unwrap(), "w");
    // IFEQ (Valkey 8.1)
    assert_eq!(
        try_run::<Option<String>>(&mut c, &["SET", "k", "x", "IFEQ", "nope"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        try_run::<String>(&mut c, &["SET", "k", "x", "IFEQ", "w"])
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "NX", "XX"]).await,
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "EX", "0"]).await,
        "ERR invalid expire time in 'set' command"
    );
    assert_eq!(
        err(&mut c, &["SET", "k", "v", "EX", "10", "PX", "5"]).await,
        "ERR syntax error"
    );
    // Expiry options and KEEPTTL
    assert_eq!(
        try_run::<String>(&mut c, &["SET", "t", "1", "EX", "100"])
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["SET", "t", "2", "KEEPTTL"])
            .await
            .unwrap(),
        "OK"
    );
    let ttl: i64 = try_run(&mut c, &["TTL", "t"]).await.unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(
        try_run::<String>(&mut c, &["SET", "t", "3"]).await.unwrap(),
        "OK"
    );
    assert_eq!(try_run::<i64>(&mut c, &["TTL", "t"]).await.unwrap(), -1);
    // SETNX SETEX PSETEX GETSET GETDEL GETEX
    assert_eq!(
        try_run::<i64>(&mut c, &["SETNX", "nx", "a"]).await.unwrap(),
        1
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["SETNX", "nx", "b"]).await.unwrap(),
        0
    );
    assert_eq!(
        try_run::<String>(&mut c, &["SETEX", "se", "50", "v"])
            .await
            .unwrap(),
        "OK"
    );
    assert!(try_run::<i64>(&mut c, &["PTTL", "se"]).await.unwrap() > 49_000);
    assert_eq!(
        try_run::<String>(&mut c, &["PSETEX", "pse", "50000", "v"])
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(
        err(&mut c, &["SETEX", "se", "-1", "v"]).await,
        "ERR invalid expire time in 'setex' command"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["GETSET", "nx", "c"])
            .await
            .unwrap(),
        "a"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["GETDEL", "nx"]).await.unwrap(),
        "c"
    );
    assert_eq!(try_run::<i64>(&mut c, &["EXISTS", "nx"]).await.unwrap(), 0);
    assert_eq!(
        try_run::<String>(&mut c, &["GETEX", "se", "PERSIST"])
            .await
            .unwrap(),
        "v"
    );
    assert_eq!(try_run::<i64>(&mut c, &["TTL", "se"]).await.unwrap(), -1);
    assert_eq!(
        try_run::<String>(&mut c, &["GETEX", "se", "EX", "30"])
            .await
            .unwrap(),
        "v"
    );
    assert!(try_run::<i64>(&mut c, &["TTL", "se"]).await.unwrap() >= 29);
    // MGET MSET MSETNX
    assert_eq!(
        try_run::<String>(&mut c, &["MSET", "a", "1", "b", "2"])
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(
        try_run::<Vec<Option<String>>>(&mut c, &["MGET", "a", "b", "zz"])
            .await
            .unwrap(),
        vec![Some("1".into()), Some("2".into()), None]
    );
    assert_eq!(
        err(&mut c, &["MSET", "a", "1", "b"]).await,
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["MSETNX", "a", "9", "c", "3"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        try_run::<Option<String>>(&mut c, &["GET", "c"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["MSETNX", "c", "3", "d", "4"])
            .await
            .unwrap(),
        1
    );
    // APPEND STRLEN GETRANGE SETRANGE SUBSTR
    assert_eq!(
        try_run::<i64>(&mut c, &["APPEND", "ap", "Hello"])
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["APPEND", "ap", " World"])
            .await
            .unwrap(),
        11
    );
    assert_eq!(try_run::<i64>(&mut c, &["STRLEN", "ap"]).await.unwrap(), 11);
    assert_eq!(
        try_run::<String>(&mut c, &["GETRANGE", "ap", "0", "4"])
            .await
            .unwrap(),
        "Hello"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["GETRANGE", "ap", "-5", "-1"])
            .await
            .unwrap(),
        "World"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["GETRANGE", "ap", "5", "2"])
            .await
            .unwrap(),
        ""
    );
    assert_eq!(
        try_run::<String>(&mut c, &["SUBSTR", "ap", "0", "-1"])
            .await
            .unwrap(),
        "Hello World"
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["SETRANGE", "ap", "6", "Redis"])
            .await
            .unwrap(),
        11
    );
    assert_eq!(
        try_run::<String>(&mut c, &["GET", "ap"]).await.unwrap(),
        "Hello Redis"
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["SETRANGE", "pad", "3", "x"])
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        try_run::<Vec<u8>>(&mut c, &["GET", "pad"]).await.unwrap(),
        b"\0\0\0x".to_vec()
    );
    assert_eq!(
        err(&mut c, &["SETRANGE", "pad", "-1", "x"]).await,
        "ERR offset is out of range"
    );
}

#[tokio::test]
async fn counters() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    assert_eq!(try_run::<i64>(&mut c, &["INCR", "n"]).await.unwrap(), 1);
    assert_eq!(
        try_run::<i64>(&mut c, &["INCRBY", "n", "10"])
            .await
            .unwrap(),
        11
    );
    assert_eq!(try_run::<i64>(&mut c, &["DECR", "n"]).await.unwrap(), 10);
    assert_eq!(
        try_run::<i64>(&mut c, &["DECRBY", "n", "20"])
            .await
            .unwrap(),
        -10
    );
    try_run::<String>(&mut c, &["SET", "s", "abc"])
        .await
        .unwrap();
    assert_eq!(
        err(&mut c, &["INCR", "s"]).await,
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["INCRBY", "n", "x"]).await,
        "ERR value is not an integer or out of range"
    );
    try_run::<String>(&mut c, &["SET", "big", &i64::MAX.to_string()])
        .await
        .unwrap();
    assert_eq!(
        err(&mut c, &["INCR", "big"]).await,
        "ERR increment or decrement would overflow"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["GET", "big"]).await.unwrap(),
        i64::MAX.to_string(),
        "no change on error"
    );
    try_run::<String>(&mut c, &["SET", "f", "10.50"])
        .await
        .unwrap();
    assert_eq!(
        try_run::<String>(&mut c, &["INCRBYFLOAT", "f", "0.1"])
            .await
            .unwrap(),
        "10.6"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["INCRBYFLOAT", "f", "-5"])
            .await
            .unwrap(),
        "5.6"
    );
    try_run::<String>(&mut c, &["SET", "f2", "5.0e3"])
        .await
        .unwrap();
    assert_eq!(
        try_run::<String>(&mut c, &["INCRBYFLOAT", "f2", "2.0e2"])
            .await
            .unwrap(),
        "5200"
    );
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", "s", "1"]).await,
        "ERR value is not a valid float"
    );
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", "f", "inf"]).await,
        "ERR increment would produce NaN or Infinity"
    );
    // A counter keeps its TTL.
    try_run::<String>(&mut c, &["SET", "ttl", "1", "EX", "100"])
        .await
        .unwrap();
    try_run::<i64>(&mut c, &["INCR", "ttl"]).await.unwrap();
    assert!(try_run::<i64>(&mut c, &["TTL", "ttl"]).await.unwrap() > 90);
}

#[tokio::test]
async fn keys_family() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    for k in ["user:1", "user:2", "item:1"] {
        try_run::<String>(&mut c, &["SET", k, "v"]).await.unwrap();
    }
    let mut users: Vec<String> = try_run(&mut c, &["KEYS", "user:*"]).await.unwrap();
    users.sort();
    assert_eq!(users, vec!["user:1", "user:2"]);
    assert_eq!(
        try_run::<i64>(&mut c, &["EXISTS", "user:1", "user:1", "nope"])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        try_run::<String>(&mut c, &["TYPE", "user:1"])
            .await
            .unwrap(),
        "string"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["TYPE", "nope"]).await.unwrap(),
        "none"
    );
    assert_eq!(try_run::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 3);
    assert_eq!(
        try_run::<i64>(&mut c, &["TOUCH", "user:1", "nope"])
            .await
            .unwrap(),
        1
    );
    // RENAME keeps the TTL; RENAMENX refuses an existing target.
    try_run::<i64>(&mut c, &["EXPIRE", "item:1", "100"])
        .await
        .unwrap();
    assert_eq!(
        try_run::<String>(&mut c, &["RENAME", "item:1", "item:2"])
            .await
            .unwrap(),
        "OK"
    );
    assert!(try_run::<i64>(&mut c, &["TTL", "item:2"]).await.unwrap() > 90);
    assert_eq!(
        err(&mut c, &["RENAME", "nope", "x"]).await,
        "ERR no such key"
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["RENAMENX", "item:2", "user:1"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["RENAMENX", "item:2", "item:3"])
            .await
            .unwrap(),
        1
    );
    // COPY
    assert_eq!(
        try_run::<i64>(&mut c, &["COPY", "item:3", "user:1"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["COPY", "item:3", "user:1", "REPLACE"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["COPY", "item:3", "copy"])
            .await
            .unwrap(),
        1
    );
    assert!(try_run::<i64>(&mut c, &["TTL", "copy"]).await.unwrap() > 90);
    // RANDOMKEY
    let rk: String = try_run(&mut c, &["RANDOMKEY"]).await.unwrap();
    assert!(try_run::<i64>(&mut c, &["EXISTS", &rk]).await.unwrap() == 1);
    // DEL / UNLINK
    assert_eq!(
        try_run::<i64>(&mut c, &["DEL", "user:1", "user:2", "nope"])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["UNLINK", "copy"]).await.unwrap(),
        1
    );
    // OBJECT
    try_run::<String>(&mut c, &["SET", "int", "12345"])
        .await
        .unwrap();
    assert_eq!(
        try_run::<String>(&mut c, &["OBJECT", "ENCODING", "int"])
            .await
            .unwrap(),
        "int"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["OBJECT", "ENCODING", "item:3"])
            .await
            .unwrap(),
        "embstr"
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["OBJECT", "REFCOUNT", "int"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["OBJECT", "IDLETIME", "int"])
            .await
            .unwrap(),
        0
    );
    assert!(
        try_run::<i64>(&mut c, &["OBJECT", "FREQ", "int"])
            .await
            .unwrap()
            >= 5
    );
    assert_eq!(
        try_run::<Option<String>>(&mut c, &["OBJECT", "ENCODING", "nope"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        err(&mut c, &["OBJECT", "FOO", "x"]).await,
        "ERR unknown subcommand 'FOO'. Try OBJECT HELP."
    );
    // FLUSHALL
    assert_eq!(
        err(&mut c, &["FLUSHALL", "LATER"]).await,
        "ERR syntax error"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["FLUSHALL", "ASYNC"])
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(try_run::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 0);
    try_run::<String>(&mut c, &["SET", "x", "1"]).await.unwrap();
    assert_eq!(try_run::<String>(&mut c, &["FLUSHDB"]).await.unwrap(), "OK");
    assert_eq!(try_run::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 0);
}

#[tokio::test]
async fn scan_visits_every_key_once_per_pass() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let mut p = redis::pipe();
    for i in 0..5000 {
        p.cmd("SET").arg(format!("k:{i}")).arg(i).ignore();
        if i % 10 == 0 {
            p.cmd("SET").arg(format!("other:{i}")).arg(i).ignore();
        }
    }
    let () = p.query_async(&mut c).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut rounds = 0;
    loop {
        let (next, keys): (String, Vec<String>) =
            try_run(&mut c, &["SCAN", &cursor, "MATCH", "k:*", "COUNT", "100"])
                .await
                .unwrap();
        for k in keys {
            assert!(k.starts_with("k:"));
            seen.insert(k);
        }
        rounds += 1;
        assert!(rounds < 10_000, "scan does not terminate");
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 5000);
    let (_, typed): (String, Vec<String>) =
        try_run(&mut c, &["SCAN", "0", "TYPE", "hash", "COUNT", "100000"])
            .await
            .unwrap();
    assert!(typed.is_empty());
    assert_eq!(err(&mut c, &["SCAN", "abc"]).await, "ERR invalid cursor");
    assert_eq!(
        err(&mut c, &["SCAN", "0", "COUNT", "0"]).await,
        "ERR syntax error"
    );
}

#[tokio::test]
async fn expire_family() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    try_run::<String>(&mut c, &["SET", "k", "v"]).await.unwrap();
    assert_eq!(try_run::<i64>(&mut c, &["TTL", "k"]).await.unwrap(), -1);
    assert_eq!(try_run::<i64>(&mut c, &["TTL", "nope"]).await.unwrap(), -2);
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIRE", "k", "100", "XX"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIRE", "k", "100", "GT"])
            .await
            .unwrap(),
        0,
        "no TTL counts as infinite"
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIRE", "k", "100", "NX"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIRE", "k", "200", "NX"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIRE", "k", "50", "GT"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIRE", "k", "50", "LT"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["PEXPIRE", "k", "80000", "GT"])
            .await
            .unwrap(),
        1
    );
    let pttl: i64 = try_run(&mut c, &["PTTL", "k"]).await.unwrap();
    assert!((79_000..=80_000).contains(&pttl), "{pttl}");
    let at = 4_102_444_800i64; // 2100-01-01
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIREAT", "k", &at.to_string()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIRETIME", "k"]).await.unwrap(),
        at
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["PEXPIRETIME", "k"]).await.unwrap(),
        at * 1000
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["PEXPIREAT", "k", &(at * 1000 + 5).to_string()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        try_run::<i64>(&mut c, &["PEXPIRETIME", "k"]).await.unwrap(),
        at * 1000 + 5
    );
    assert_eq!(try_run::<i64>(&mut c, &["PERSIST", "k"]).await.unwrap(), 1);
    assert_eq!(try_run::<i64>(&mut c, &["PERSIST", "k"]).await.unwrap(), 0);
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIRETIME", "k"]).await.unwrap(),
        -1
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", "10", "NX", "XX"]).await,
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", "10", "GT", "LT"]).await,
        "ERR GT and LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", "10", "FOO"]).await,
        "ERR Unsupported option FOO"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "k", &i64::MAX.to_string()]).await,
        "ERR invalid expire time in 'expire' command"
    );
    // A deadline in the past deletes the key.
    assert_eq!(
        try_run::<i64>(&mut c, &["EXPIRE", "k", "-1"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(try_run::<i64>(&mut c, &["EXISTS", "k"]).await.unwrap(), 0);
    // Lazy expiry on access.
    try_run::<String>(&mut c, &["SET", "short", "v", "PX", "50"])
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert_eq!(
        try_run::<Option<String>>(&mut c, &["GET", "short"])
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn connection_and_server_commands() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    assert_eq!(try_run::<String>(&mut c, &["PING"]).await.unwrap(), "PONG");
    assert_eq!(
        try_run::<String>(&mut c, &["PING", "hi"]).await.unwrap(),
        "hi"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["ECHO", "x y"]).await.unwrap(),
        "x y"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["SELECT", "0"]).await.unwrap(),
        "OK"
    );
    assert_eq!(
        err(&mut c, &["SELECT", "1"]).await,
        "ERR SELECT is not allowed in cluster mode"
    );
    // CLIENT
    let id: i64 = try_run(&mut c, &["CLIENT", "ID"]).await.unwrap();
    assert!(id > 0);
    assert_eq!(
        try_run::<String>(&mut c, &["CLIENT", "SETNAME", "worker-1"])
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["CLIENT", "GETNAME"])
            .await
            .unwrap(),
        "worker-1"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "SETNAME", "a b"]).await,
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    let list: String = try_run(&mut c, &["CLIENT", "LIST"]).await.unwrap();
    assert!(
        list.contains(&format!("id={id} "))
            && list.contains("name=worker-1")
            && list.contains("cmd=client|list"),
        "{list}"
    );
    let info: String = try_run(&mut c, &["CLIENT", "INFO"]).await.unwrap();
    assert!(info.starts_with(&format!("id={id} ")));
    assert_eq!(
        try_run::<String>(&mut c, &["CLIENT", "SETINFO", "LIB-NAME", "mylib"])
            .await
            .unwrap(),
        "OK"
    );
    assert!(
        try_run::<String>(&mut c, &["CLIENT", "INFO"])
            .await
            .unwrap()
            .contains("lib-name=mylib")
    );
    assert_eq!(
        try_run::<String>(&mut c, &["CLIENT", "NO-EVICT", "on"])
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["CLIENT", "NO-TOUCH", "on"])
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "NO-TOUCH", "maybe"]).await,
        "ERR syntax error"
    );
    // CLIENT KILL from another connection closes this one.
    let mut other = s.conn().await;
    let killed: i64 = try_run(&mut other, &["CLIENT", "KILL", "ID", &id.to_string()])
        .await
        .unwrap();
    assert_eq!(killed, 1);
    // COMMAND, generated from the table
    let count: i64 = try_run(&mut other, &["COMMAND", "COUNT"]).await.unwrap();
    assert!(count >= 60, "{count}");
    let info: Vec<Value> = try_run(&mut other, &["COMMAND", "INFO", "get", "nosuch"])
        .await
        .unwrap();
    assert_eq!(info.len(), 2);
    assert_eq!(info[1], Value::Nil);
    let keys: Vec<String> = try_run(
        &mut other,
        &["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
    )
    .await
    .unwrap();
    assert_eq!(keys, vec!["a", "b"]);
    assert_eq!(
        err(&mut other, &["COMMAND", "GETKEYS", "PING"]).await,
        "ERR The command has no key arguments"
    );
    let names: Vec<String> = try_run(
        &mut other,
        &["COMMAND", "LIST", "FILTERBY", "PATTERN", "get*"],
    )
    .await
    .unwrap();
    assert!(names.contains(&"getrange".to_string()) && !names.contains(&"set".to_string()));
    let docs: Value = try_run(&mut other, &["COMMAND", "DOCS", "get"])
        .await
        .unwrap();
    assert!(format!("{docs:?}").contains("Returns the string value of a key."));
    // CONFIG
    let cfg: Vec<String> = try_run(&mut other, &["CONFIG", "GET", "maxclients"])
        .await
        .unwrap();
    assert_eq!(cfg, vec!["maxclients", "10000"]);
    assert_eq!(
        try_run::<String>(
            &mut other,
            &["CONFIG", "SET", "maxclients", "500", "timeout", "0"]
        )
        .await
        .unwrap(),
        "OK"
    );
    let cfg: Vec<String> = try_run(&mut other, &["CONFIG", "GET", "max*"])
        .await
        .unwrap();
    assert!(
        cfg.windows(2).any(|w| w == ["maxclients", "500"]),
        "{cfg:?}"
    );
    assert_eq!(
        err(&mut other, &["CONFIG", "SET", "maxclients", "x"]).await,
        "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer"
    );
    assert_eq!(
        err(&mut other, &["CONFIG", "SET", "nosuch", "1"]).await,
        "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'"
    );
    assert_eq!(
        try_run::<String>(&mut other, &["CONFIG", "RESETSTAT"])
            .await
            .unwrap(),
        "OK"
    );
    // TIME, MEMORY USAGE
    let t: Vec<String> = try_run(&mut other, &["TIME"]).await.unwrap();
    let secs: u64 = t[0].parse().unwrap();
    assert!(secs > 1_700_000_000);
    try_run::<String>(&mut other, &["SET", "m", "0123456789"])
        .await
        .unwrap();
    let mem: i64 = try_run(&mut other, &["MEMORY", "USAGE", "m"])
        .await
        .unwrap();
    assert!(mem > 11, "{mem}");
    assert_eq!(
        try_run::<Option<i64>>(&mut other, &["MEMORY", "USAGE", "nope"])
            .await
            .unwrap(),
        None
    );
    // SLOWLOG: log everything, then read it back.
    try_run::<String>(
        &mut other,
        &["CONFIG", "SET", "slowlog-log-slower-than", "0"],
    )
    .await
    .unwrap();
    try_run::<String>(&mut other, &["ECHO", "slow-marker"])
        .await
        .unwrap();
    let log: Value = try_run(&mut other, &["SLOWLOG", "GET", "5"]).await.unwrap();
    assert!(format!("{log:?}").contains("slow-marker"));
    assert!(
        try_run::<i64>(&mut other, &["SLOWLOG", "LEN"])
            .await
            .unwrap()
            >= 1
    );
    assert_eq!(
        try_run::<String>(&mut other, &["SLOWLOG", "RESET"])
            .await
            .unwrap(),
        "OK"
    );
    // INFO
    let info: String = try_run(&mut other, &["INFO"]).await.unwrap();
    for field in [
        "redis_version:7.4.0",
        "redis_mode:cluster",
        "cluster_enabled:1",
        "tcp_port:",
        "run_id:",
        "terrace_state:ACTIVE-COORDINATOR",
        "terrace_server:server1",
        "# Keyspace",
        "connected_clients:",
    ] {
        assert!(info.contains(field), "INFO lacks {field}");
    }
    assert!(info.contains("db0:keys=1,expires=0"), "{info}");
    let only: String = try_run(&mut other, &["INFO", "terrace"]).await.unwrap();
    assert!(only.starts_with("# Terrace") && !only.contains("# Server"));
}

#[tokio::test]
async fn unknown_and_wrong_arity() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    assert_eq!(
        err(&mut c, &["FOOBAR", "a", "b"]).await,
        "ERR unknown command 'FOOBAR', with args beginning with: 'a' 'b'"
    );
    assert_eq!(
        err(&mut c, &["GET"]).await,
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err(&mut c, &["GET", "a", "b"]).await,
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err(&mut c, &["CLIENT", "SETNAME"]).await,
        "ERR wrong number of arguments for 'client|setname' command"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["PING"]).await.unwrap(),
        "PONG",
        "connection survives errors"
    );
}

#[tokio::test]
async fn auth_with_requirepass() {
    let yaml = "security:\n  requirepass: s3cret\n";
    let s = TestServer::start_with(Some(yaml), &[]);
    let mut raw = s.raw();
    use std::io::Write;
    raw.write_all(
        b"GET k\r\nAUTH wrong\r\nAUTH s3cret\r\nSET k v\r\nAUTH default s3cret\r\nGET k\r\n",
    )
    .unwrap();
    let out = crate::util::read_n(&mut raw, 200);
    let text = String::from_utf8_lossy(&out);
    let expected = "-NOAUTH Authentication required.\r\n-WRONGPASS invalid username-password pair or user is disabled.\r\n+OK\r\n+OK\r\n+OK\r\n$1\r\nv\r\n";
    let mut got = text.to_string();
    if got.len() < expected.len() {
        got.push_str(&String::from_utf8_lossy(&crate::util::read_n(
            &mut raw,
            expected.len() - got.len(),
        )));
    }
    assert_eq!(got, expected);
    // The redis crate authenticates from the URL.
    let url = format!("redis://:s3cret@127.0.0.1:{}/", s.port);
    let mut c = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    assert_eq!(try_run::<String>(&mut c, &["GET", "k"]).await.unwrap(), "v");
}

/// Found by the differential test (differential.rs): Redis reads the options before the
/// expire time's number, and GETEX looks the key up before it reads the number.
#[tokio::test]
async fn option_errors_come_before_number_errors() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    // GETEX on a missing key is nil whatever its expire time; on a string, the time is checked.
    for args in [
        ["GETEX", "nokey", "EX", "0"],
        ["GETEX", "nokey", "EXAT", "abc"],
    ] {
        assert_eq!(try_run::<Value>(&mut c, &args).await.unwrap(), Value::Nil);
    }
    try_run::<()>(&mut c, &["SET", "s", "v"]).await.unwrap();
    assert_eq!(
        err(&mut c, &["GETEX", "s", "EX", "0"]).await,
        "ERR invalid expire time in 'getex' command"
    );
    assert_eq!(
        err(&mut c, &["GETEX", "s", "PX", "abc"]).await,
        "ERR value is not an integer or out of range"
    );
    // SET: a syntax error after a bad number is still a syntax error.
    assert_eq!(
        err(&mut c, &["SET", "s", "v", "EX", "abc", "NX", "XX"]).await,
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SET", "s", "v", "EX", "abc"]).await,
        "ERR value is not an integer or out of range"
    );
    // EXPIRE: a bad option before a bad number.
    assert_eq!(
        err(&mut c, &["EXPIREAT", "s", "abc", "NX", "XX", "extra"]).await,
        "ERR Unsupported option extra"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "s", "abc", "NX", "XX"]).await,
        "ERR NX and XX, GT or LT options at the same time are not compatible"
    );
    assert_eq!(
        err(&mut c, &["EXPIRE", "s", "abc", "NX"]).await,
        "ERR value is not an integer or out of range"
    );
    assert_eq!(try_run::<String>(&mut c, &["GET", "s"]).await.unwrap(), "v");
}

/// Found by the differential test: Redis reads INCRBYFLOAT's numbers with C `strtold`,
/// which takes hex floats, in the increment and in the stored value.
#[tokio::test]
async fn incrbyfloat_reads_hex_like_strtold() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    assert_eq!(
        try_run::<String>(&mut c, &["INCRBYFLOAT", "f", "0x10"])
            .await
            .unwrap(),
        "16"
    );
    assert_eq!(
        try_run::<String>(&mut c, &["INCRBYFLOAT", "f", "-0x1.8p1"])
            .await
            .unwrap(),
        "13"
    );
    try_run::<()>(&mut c, &["SET", "h", "0x10"]).await.unwrap();
    assert_eq!(
        try_run::<String>(&mut c, &["INCRBYFLOAT", "h", "1"])
            .await
            .unwrap(),
        "17"
    );
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", "f", "0x"]).await,
        "ERR value is not a valid float"
    );
    // Beyond long double's range strtold reports ERANGE: not a float (not the NaN/Infinity
    // error that a number within it which overflows gets).
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", "f", "1e5000"]).await,
        "ERR value is not a valid float"
    );
    try_run::<()>(&mut c, &["SET", "big", "1e39223372036854775807"])
        .await
        .unwrap();
    assert_eq!(
        err(&mut c, &["INCRBYFLOAT", "big", "0"]).await,
        "ERR value is not a valid float"
    );
}
