//! Sorted-set commands through the `redis` crate: values, Redis's error strings, score
//! formatting, RESP3 doubles and pairs, STORE forms, ZSCAN, and a restart that keeps them.

use std::collections::HashSet;

use redis::Value;
use redis::aio::MultiplexedConnection;

use crate::set::err;
use crate::util::{TestServer, run};

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// The raw RESP2 bulk strings of a reply (scores as Redis writes them).
async fn texts(c: &mut MultiplexedConnection, args: &[&str]) -> Vec<String> {
    run(c, args).await
}

#[tokio::test]
async fn zadd_and_scores() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    assert_eq!(
        run::<i64>(c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]).await,
        3
    );
    assert_eq!(run::<i64>(c, &["ZADD", "z", "1", "a", "5", "d"]).await, 1);
    assert_eq!(
        run::<i64>(c, &["ZADD", "z", "CH", "1", "a", "6", "d"]).await,
        1
    );
    assert_eq!(run::<i64>(c, &["ZADD", "z", "XX", "9", "zz"]).await, 0);
    assert_eq!(run::<Option<f64>>(c, &["ZSCORE", "z", "zz"]).await, None);
    assert_eq!(
        run::<i64>(c, &["ZADD", "z", "NX", "9", "a", "7", "e"]).await,
        1
    );
    assert_eq!(run::<f64>(c, &["ZSCORE", "z", "a"]).await, 1.0);
    // GT/LT only restrict updates; new members are added.
    assert_eq!(
        run::<i64>(c, &["ZADD", "z", "GT", "CH", "0", "a", "9", "b", "1", "f"]).await,
        2
    );
    assert_eq!(run::<i64>(c, &["ZADD", "z", "LT", "CH", "5", "b"]).await, 1);
    assert_eq!(run::<f64>(c, &["ZSCORE", "z", "b"]).await, 5.0);
    // INCR: the new score, or nil when a flag skips it.
    assert_eq!(
        run::<String>(c, &["ZADD", "z", "INCR", "1.5", "a"]).await,
        "2.5"
    );
    assert_eq!(
        run::<Option<String>>(c, &["ZADD", "z", "NX", "INCR", "1", "a"]).await,
        None
    );
    assert_eq!(
        run::<Option<String>>(c, &["ZADD", "z", "XX", "INCR", "1", "new"]).await,
        None
    );
    assert_eq!(
        run::<Option<String>>(c, &["ZADD", "nokey", "XX", "INCR", "1", "m"]).await,
        None
    );
    assert_eq!(run::<i64>(c, &["ZADD", "nokey", "XX", "1", "m"]).await, 0);
    assert_eq!(run::<i64>(c, &["EXISTS", "nokey"]).await, 0);
    assert_eq!(run::<String>(c, &["ZINCRBY", "z", "-0.5", "a"]).await, "2");
    assert_eq!(
        run::<String>(c, &["ZINCRBY", "fresh", "0.1", "m"]).await,
        "0.1"
    );
    assert_eq!(run::<i64>(c, &["ZCARD", "z"]).await, 6);
    assert_eq!(run::<i64>(c, &["ZCARD", "none"]).await, 0);
    let ms: Vec<Option<f64>> = run(c, &["ZMSCORE", "z", "a", "nope", "c"]).await;
    assert_eq!(ms, [Some(2.0), None, Some(3.0)]);
    let ms: Vec<Option<f64>> = run(c, &["ZMSCORE", "none", "a"]).await;
    assert_eq!(ms, [None]);
    assert_eq!(run::<i64>(c, &["ZREM", "z", "e", "f", "nope"]).await, 2);

    // Scores as Redis 7.4 writes them.
    run::<i64>(
        c,
        &[
            "ZADD", "fmt", "0.1", "p", "1e-7", "q", "1.5e300", "r", "-inf", "s", "+inf", "t", "3",
            "u", "1e17", "v", "1e19", "w", "-0.25", "x",
        ],
    )
    .await;
    assert_eq!(
        texts(c, &["ZRANGE", "fmt", "0", "-1", "WITHSCORES"]).await,
        [
            "s",
            "-inf",
            "x",
            "-0.25",
            "q",
            "1e-07",
            "p",
            "0.1",
            "u",
            "3",
            "v",
            "100000000000000000",
            "w",
            "1e+19",
            "r",
            "1.5e+300",
            "t",
            "inf"
        ]
    );
    assert_eq!(run::<String>(c, &["ZSCORE", "fmt", "q"]).await, "1e-07");

    // INCR to NaN is refused and changes nothing.
    run::<i64>(c, &["ZADD", "inf", "+inf", "a"]).await;
    assert_eq!(
        err(c, &["ZADD", "inf", "INCR", "-inf", "a"]).await,
        "ERR resulting score is not a number (NaN)"
    );
    assert_eq!(
        err(c, &["ZINCRBY", "inf", "-inf", "a"]).await,
        "ERR resulting score is not a number (NaN)"
    );
    assert_eq!(run::<String>(c, &["ZSCORE", "inf", "a"]).await, "inf");
}

#[tokio::test]
async fn ranges_ranks_and_counts() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    run::<i64>(
        c,
        &[
            "ZADD", "z", "1", "a", "2", "b", "2", "c", "3", "d", "4", "e",
        ],
    )
    .await;
    let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        texts(c, &["ZRANGE", "z", "0", "-1"]).await,
        r(&["a", "b", "c", "d", "e"])
    );
    assert_eq!(
        texts(c, &["ZRANGE", "z", "1", "2", "WITHSCORES"]).await,
        r(&["b", "2", "c", "2"])
    );
    assert_eq!(
        texts(c, &["ZRANGE", "z", "-2", "100"]).await,
        r(&["d", "e"])
    );
    assert!(texts(c, &["ZRANGE", "z", "3", "1"]).await.is_empty());
    assert!(texts(c, &["ZRANGE", "none", "0", "-1"]).await.is_empty());
    assert_eq!(
        texts(c, &["ZRANGE", "z", "0", "1", "REV"]).await,
        r(&["e", "d"])
    );
    assert_eq!(
        texts(c, &["ZREVRANGE", "z", "0", "1", "WITHSCORES"]).await,
        r(&["e", "4", "d", "3"])
    );
    // BYSCORE, exclusive bounds, infinities, LIMIT.
    assert_eq!(
        texts(c, &["ZRANGE", "z", "(1", "3", "BYSCORE"]).await,
        r(&["b", "c", "d"])
    );
    assert_eq!(
        texts(
            c,
            &["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"]
        )
        .await,
        r(&["b", "c"])
    );
    assert_eq!(
        texts(c, &["ZRANGE", "z", "+inf", "(3", "BYSCORE", "REV"]).await,
        r(&["e"])
    );
    assert_eq!(
        texts(c, &["ZRANGEBYSCORE", "z", "2", "2", "WITHSCORES"]).await,
        r(&["b", "2", "c", "2"])
    );
    assert_eq!(
        texts(
            c,
            &["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "1", "-1"]
        )
        .await,
        r(&["b", "c", "d", "e"])
    );
    assert!(
        texts(
            c,
            &["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "-1", "1"]
        )
        .await
        .is_empty()
    );
    assert!(
        texts(c, &["ZRANGEBYSCORE", "z", "(2", "(2"])
            .await
            .is_empty()
    );
    assert_eq!(
        texts(c, &["ZREVRANGEBYSCORE", "z", "3", "(1"]).await,
        r(&["d", "c", "b"])
    );
    assert_eq!(run::<i64>(c, &["ZCOUNT", "z", "(1", "+inf"]).await, 4);
    assert_eq!(run::<i64>(c, &["ZCOUNT", "z", "5", "1"]).await, 0);
    // BYLEX on equal scores.
    run::<i64>(c, &["ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d"]).await;
    assert_eq!(
        texts(c, &["ZRANGE", "lex", "[b", "(d", "BYLEX"]).await,
        r(&["b", "c"])
    );
    assert_eq!(
        texts(
            c,
            &["ZRANGE", "lex", "+", "-", "BYLEX", "REV", "LIMIT", "0", "2"]
        )
        .await,
        r(&["d", "c"])
    );
    assert_eq!(
        texts(c, &["ZRANGEBYLEX", "lex", "-", "+", "LIMIT", "1", "1"]).await,
        r(&["b"])
    );
    assert_eq!(
        texts(c, &["ZREVRANGEBYLEX", "lex", "(c", "-"]).await,
        r(&["b", "a"])
    );
    assert_eq!(run::<i64>(c, &["ZLEXCOUNT", "lex", "(a", "+"]).await, 3);
    // Ranks.
    assert_eq!(run::<i64>(c, &["ZRANK", "z", "d"]).await, 3);
    assert_eq!(run::<i64>(c, &["ZREVRANK", "z", "d"]).await, 1);
    assert_eq!(run::<Option<i64>>(c, &["ZRANK", "z", "nope"]).await, None);
    assert_eq!(run::<Option<i64>>(c, &["ZRANK", "none", "a"]).await, None);
    assert_eq!(
        run::<(i64, f64)>(c, &["ZRANK", "z", "c", "WITHSCORE"]).await,
        (2, 2.0)
    );
    assert_eq!(
        run::<(i64, f64)>(c, &["ZREVRANK", "z", "a", "withscore"]).await,
        (4, 1.0)
    );
    assert_eq!(
        run::<Value>(c, &["ZRANK", "z", "nope", "WITHSCORE"]).await,
        Value::Nil
    );
    // ZRANGESTORE: the count, and an empty result deletes the destination.
    assert_eq!(
        run::<i64>(
            c,
            &[
                "ZRANGESTORE",
                "dst",
                "z",
                "1",
                "3",
                "BYSCORE",
                "LIMIT",
                "0",
                "2"
            ]
        )
        .await,
        2
    );
    assert_eq!(
        texts(c, &["ZRANGE", "dst", "0", "-1", "WITHSCORES"]).await,
        r(&["a", "1", "b", "2"])
    );
    assert_eq!(
        run::<i64>(c, &["ZRANGESTORE", "dst", "z", "10", "20"]).await,
        0
    );
    assert_eq!(run::<i64>(c, &["EXISTS", "dst"]).await, 0);
    run::<()>(c, &["SET", "dst", "x"]).await;
    assert_eq!(
        run::<i64>(c, &["ZRANGESTORE", "dst", "none", "0", "-1"]).await,
        0
    );
    assert_eq!(run::<i64>(c, &["EXISTS", "dst"]).await, 0);
    // Range removals.
    run::<i64>(
        c,
        &[
            "ZADD", "rm", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "0", "x", "0", "y",
        ],
    )
    .await;
    assert_eq!(
        run::<i64>(c, &["ZREMRANGEBYSCORE", "rm", "(1", "3"]).await,
        2
    );
    assert_eq!(
        run::<i64>(c, &["ZREMRANGEBYRANK", "rm", "-1", "-1"]).await,
        1
    );
    assert_eq!(
        run::<i64>(c, &["ZREMRANGEBYLEX", "lex", "[b", "[c"]).await,
        2
    );
    assert_eq!(
        texts(c, &["ZRANGE", "rm", "0", "-1"]).await,
        r(&["x", "y", "a", "d"])
    );
    assert_eq!(
        run::<i64>(c, &["ZREMRANGEBYRANK", "rm", "0", "-1"]).await,
        4
    );
    assert_eq!(run::<i64>(c, &["EXISTS", "rm"]).await, 0);
    assert_eq!(
        run::<i64>(c, &["ZREMRANGEBYSCORE", "none", "-inf", "+inf"]).await,
        0
    );
}

#[tokio::test]
async fn pops_and_random_members() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    run::<i64>(c, &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"]).await;
    let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(texts(c, &["ZPOPMIN", "z"]).await, r(&["a", "1"]));
    assert_eq!(
        texts(c, &["ZPOPMAX", "z", "2"]).await,
        r(&["d", "4", "c", "3"])
    );
    assert!(texts(c, &["ZPOPMIN", "z", "0"]).await.is_empty());
    assert!(texts(c, &["ZPOPMIN", "none"]).await.is_empty());
    assert_eq!(texts(c, &["ZPOPMIN", "z", "10"]).await, r(&["b", "2"]));
    assert_eq!(run::<i64>(c, &["EXISTS", "z"]).await, 0);
    // ZMPOP: the first non-empty key.
    run::<i64>(c, &["ZADD", "z2", "1", "a", "2", "b", "3", "c"]).await;
    let v: (String, Vec<(String, f64)>) =
        run(c, &["ZMPOP", "2", "none", "z2", "MAX", "COUNT", "2"]).await;
    assert_eq!(v, ("z2".into(), vec![("c".into(), 3.0), ("b".into(), 2.0)]));
    let v: (String, Vec<(String, f64)>) = run(c, &["ZMPOP", "1", "z2", "MIN"]).await;
    assert_eq!(v, ("z2".into(), vec![("a".into(), 1.0)]));
    assert_eq!(
        run::<Value>(c, &["ZMPOP", "1", "z2", "MIN"]).await,
        Value::Nil
    );
    // ZRANDMEMBER.
    run::<i64>(c, &["ZADD", "r", "1", "a", "2", "b", "3", "c"]).await;
    let one: String = run(c, &["ZRANDMEMBER", "r"]).await;
    assert!(["a", "b", "c"].contains(&one.as_str()));
    let two: Vec<String> = run(c, &["ZRANDMEMBER", "r", "2"]).await;
    assert_eq!(two.iter().collect::<HashSet<_>>().len(), 2);
    let all: Vec<(String, f64)> = run(c, &["ZRANDMEMBER", "r", "10", "WITHSCORES"]).await;
    let mut all = all;
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        all,
        [("a".into(), 1.0), ("b".into(), 2.0), ("c".into(), 3.0)]
    );
    let rep: Vec<String> = run(c, &["ZRANDMEMBER", "r", "-5"]).await;
    assert_eq!(rep.len(), 5);
    assert!(
        run::<Vec<String>>(c, &["ZRANDMEMBER", "r", "0"])
            .await
            .is_empty()
    );
    assert!(
        run::<Vec<String>>(c, &["ZRANDMEMBER", "none", "3"])
            .await
            .is_empty()
    );
    assert_eq!(
        run::<Option<String>>(c, &["ZRANDMEMBER", "none"]).await,
        None
    );
}

#[tokio::test]
async fn union_inter_diff_and_store() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    run::<i64>(c, &["ZADD", "z1", "1", "a", "2", "b", "3", "c"]).await;
    run::<i64>(c, &["ZADD", "z2", "10", "b", "20", "c", "30", "d"]).await;
    // A plain set counts with score 1.
    run::<i64>(c, &["SADD", "s", "c", "d", "e"]).await;
    let r = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        texts(c, &["ZUNION", "2", "z1", "z2", "WITHSCORES"]).await,
        r(&["a", "1", "b", "12", "c", "23", "d", "30"])
    );
    assert_eq!(
        texts(
            c,
            &[
                "ZUNION",
                "3",
                "z1",
                "z2",
                "s",
                "WEIGHTS",
                "2",
                "1",
                "0.5",
                "AGGREGATE",
                "MAX",
                "WITHSCORES"
            ]
        )
        .await,
        r(&["e", "0.5", "a", "2", "b", "10", "c", "20", "d", "30"])
    );
    assert_eq!(
        texts(
            c,
            &["ZINTER", "2", "z1", "z2", "AGGREGATE", "MIN", "WITHSCORES"]
        )
        .await,
        r(&["b", "2", "c", "3"])
    );
    assert_eq!(
        texts(c, &["ZINTER", "3", "z1", "z2", "s", "WITHSCORES"]).await,
        r(&["c", "24"])
    );
    assert!(texts(c, &["ZINTER", "2", "z1", "none"]).await.is_empty());
    assert_eq!(
        texts(c, &["ZDIFF", "2", "z1", "z2", "WITHSCORES"]).await,
        r(&["a", "1"])
    );
    assert_eq!(texts(c, &["ZDIFF", "2", "s", "z2"]).await, r(&["e"]));
    assert_eq!(run::<i64>(c, &["ZINTERCARD", "2", "z1", "z2"]).await, 2);
    assert_eq!(
        run::<i64>(c, &["ZINTERCARD", "2", "z1", "z2", "LIMIT", "1"]).await,
        1
    );
    assert_eq!(run::<i64>(c, &["ZINTERCARD", "2", "z2", "s"]).await, 2);
    // STORE forms: the size; an empty result deletes the destination.
    assert_eq!(
        run::<i64>(
            c,
            &["ZUNIONSTORE", "out", "2", "z1", "s", "WEIGHTS", "1", "3"]
        )
        .await,
        5
    );
    assert_eq!(
        texts(c, &["ZRANGE", "out", "0", "-1", "WITHSCORES"]).await,
        r(&["a", "1", "b", "2", "d", "3", "e", "3", "c", "6"])
    );
    assert_eq!(
        run::<i64>(c, &["ZINTERSTORE", "out", "2", "z1", "z2"]).await,
        2
    );
    assert_eq!(
        run::<i64>(c, &["ZDIFFSTORE", "out", "2", "z1", "z1"]).await,
        0
    );
    assert_eq!(run::<i64>(c, &["EXISTS", "out"]).await, 0);
    run::<()>(c, &["SET", "out", "x"]).await;
    assert_eq!(
        run::<i64>(c, &["ZINTERSTORE", "out", "2", "z1", "none"]).await,
        0
    );
    assert_eq!(run::<i64>(c, &["EXISTS", "out"]).await, 0);
    // The destination may be an input.
    assert_eq!(
        run::<i64>(c, &["ZUNIONSTORE", "z1", "2", "z1", "z2"]).await,
        4
    );
    assert_eq!(run::<f64>(c, &["ZSCORE", "z1", "c"]).await, 23.0);
}

#[tokio::test]
async fn zset_errors() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    run::<()>(c, &["SET", "str", "x"]).await;
    run::<i64>(c, &["ZADD", "z", "1", "a"]).await;
    for args in [
        &["ZADD", "str", "1", "a"][..],
        &["ZINCRBY", "str", "1", "a"],
        &["ZREM", "str", "a"],
        &["ZSCORE", "str", "a"],
        &["ZMSCORE", "str", "a"],
        &["ZCARD", "str"],
        &["ZCOUNT", "str", "0", "1"],
        &["ZLEXCOUNT", "str", "-", "+"],
        &["ZRANGE", "str", "0", "-1"],
        &["ZRANGEBYSCORE", "str", "0", "1"],
        &["ZRANGESTORE", "d", "str", "0", "-1"],
        &["ZRANK", "str", "a"],
        &["ZPOPMIN", "str"],
        &["ZMPOP", "2", "none", "str", "MIN"],
        &["ZRANDMEMBER", "str"],
        &["ZREMRANGEBYRANK", "str", "0", "1"],
        &["ZUNION", "2", "z", "str"],
        &["ZINTERSTORE", "d", "2", "none", "str"],
        &["ZINTERCARD", "1", "str"],
        &["ZSCAN", "str", "0"],
        &["SADD", "z", "a"],
    ] {
        assert_eq!(err(c, args).await, WRONGTYPE, "{args:?}");
    }
    for (args, msg) in [
        (
            &["ZADD", "z", "NX", "XX", "1", "a"][..],
            "ERR XX and NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "GT", "LT", "1", "a"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "NX", "GT", "1", "a"],
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ),
        (
            &["ZADD", "z", "INCR", "1", "a", "2", "b"],
            "ERR INCR option supports a single increment-element pair",
        ),
        (&["ZADD", "z", "1", "a", "2"], "ERR syntax error"),
        (&["ZADD", "z", "x", "a"], "ERR value is not a valid float"),
        (&["ZADD", "z", "nan", "a"], "ERR value is not a valid float"),
        (
            &["ZADD", "z"],
            "ERR wrong number of arguments for 'zadd' command",
        ),
        (
            &["ZINCRBY", "z", "x", "a"],
            "ERR value is not a valid float",
        ),
        (&["ZCOUNT", "z", "(x", "1"], "ERR min or max is not a float"),
        (
            &["ZRANGEBYSCORE", "z", "1", "y"],
            "ERR min or max is not a float",
        ),
        (
            &["ZRANGE", "z", "0", "1", "BYSCORE", "x", "y"],
            "ERR syntax error",
        ),
        (
            &["ZLEXCOUNT", "z", "a", "b"],
            "ERR min or max not valid string range item",
        ),
        (
            &["ZRANGE", "z", "[a", "b", "BYLEX"],
            "ERR min or max not valid string range item",
        ),
        (
            &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ),
        (
            &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ),
        (
            &["ZRANGEBYLEX", "z", "-", "+", "WITHSCORES"],
            "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
        ),
        (
            &["ZRANGE", "z", "x", "1"],
            "ERR value is not an integer or out of range",
        ),
        (&["ZREVRANGE", "z", "0", "1", "REV"], "ERR syntax error"),
        (
            &["ZRANGESTORE", "d", "z", "0", "-1", "WITHSCORES"],
            "ERR syntax error",
        ),
        (&["ZRANK", "z", "a", "foo"], "ERR syntax error"),
        (
            &["ZRANK", "z", "a", "WITHSCORE", "x"],
            "ERR wrong number of arguments for 'zrank' command",
        ),
        (
            &["ZPOPMIN", "z", "-1"],
            "ERR value is out of range, must be positive",
        ),
        (&["ZPOPMAX", "z", "1", "2"], "ERR syntax error"),
        (
            &["ZMPOP", "0", "z", "MIN"],
            "ERR numkeys should be greater than 0",
        ),
        (&["ZMPOP", "2", "z", "MIN"], "ERR syntax error"),
        (&["ZMPOP", "1", "z", "MIDDLE"], "ERR syntax error"),
        (
            &["ZMPOP", "1", "z", "MIN", "COUNT", "0"],
            "ERR count should be greater than 0",
        ),
        (
            &["ZRANDMEMBER", "z", "1", "WITHSCORES", "x"],
            "ERR syntax error",
        ),
        (
            &["ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES"],
            "ERR value is out of range",
        ),
        (
            &["ZREMRANGEBYRANK", "z", "a", "1"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["ZUNIONSTORE", "d", "0", "z"],
            "ERR at least 1 input key is needed for 'zunionstore' command",
        ),
        (
            &["ZUNION", "0", "z"],
            "ERR at least 1 input key is needed for 'zunion' command",
        ),
        (&["ZUNION", "3", "z", "y"], "ERR syntax error"),
        (
            &["ZUNION", "1", "z", "WEIGHTS", "x"],
            "ERR weight value is not a float",
        ),
        (
            &["ZINTER", "1", "z", "AGGREGATE", "AVG"],
            "ERR syntax error",
        ),
        (&["ZDIFF", "1", "z", "WEIGHTS", "1"], "ERR syntax error"),
        (
            &["ZINTERCARD", "0", "z"],
            "ERR at least 1 input key is needed for 'zintercard' command",
        ),
        (
            &["ZINTERCARD", "1", "z", "LIMIT", "-1"],
            "ERR LIMIT can't be negative",
        ),
        (&["ZSCAN", "z", "x"], "ERR invalid cursor"),
    ] {
        assert_eq!(err(c, args).await, msg, "{args:?}");
    }
    assert_eq!(
        err(c, &["BZPOPMIN", "z", "soon"]).await,
        "ERR timeout is not a float or out of range"
    );
    assert_eq!(
        err(c, &["BZPOPMAX", "z", "-1"]).await,
        "ERR timeout is negative"
    );
}

#[tokio::test]
async fn resp3_doubles_and_pairs() {
    let s = TestServer::start();
    let mut c = s.conn3().await;
    let c = &mut c;
    run::<i64>(c, &["ZADD", "z", "1.5", "a", "2", "b"]).await;
    let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    let pair = |m: &str, s: f64| Value::Array(vec![bulk(m), Value::Double(s)]);
    assert_eq!(
        run::<Value>(c, &["ZSCORE", "z", "a"]).await,
        Value::Double(1.5)
    );
    assert_eq!(run::<Value>(c, &["ZSCORE", "z", "x"]).await, Value::Nil);
    assert_eq!(
        run::<Value>(c, &["ZMSCORE", "z", "b", "x"]).await,
        Value::Array(vec![Value::Double(2.0), Value::Nil])
    );
    assert_eq!(
        run::<Value>(c, &["ZINCRBY", "z", "1", "b"]).await,
        Value::Double(3.0)
    );
    assert_eq!(
        run::<Value>(c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]).await,
        Value::Array(vec![pair("a", 1.5), pair("b", 3.0)])
    );
    assert_eq!(
        run::<Value>(c, &["ZRANGE", "z", "0", "-1"]).await,
        Value::Array(vec![bulk("a"), bulk("b")])
    );
    assert_eq!(
        run::<Value>(c, &["ZUNION", "1", "z", "WITHSCORES"]).await,
        Value::Array(vec![pair("a", 1.5), pair("b", 3.0)])
    );
    assert_eq!(
        run::<Value>(c, &["ZRANK", "z", "b", "WITHSCORE"]).await,
        Value::Array(vec![Value::Int(1), Value::Double(3.0)])
    );
    // ZPOPMIN: flat without a count, pairs with one; ZMPOP always pairs.
    run::<i64>(c, &["ZADD", "z", "4", "c", "5", "d"]).await;
    assert_eq!(
        run::<Value>(c, &["ZPOPMIN", "z"]).await,
        Value::Array(vec![bulk("a"), Value::Double(1.5)])
    );
    assert_eq!(
        run::<Value>(c, &["ZPOPMIN", "z", "1"]).await,
        Value::Array(vec![pair("b", 3.0)])
    );
    assert_eq!(
        run::<Value>(c, &["ZMPOP", "1", "z", "MAX"]).await,
        Value::Array(vec![bulk("z"), Value::Array(vec![pair("d", 5.0)])])
    );
    // ZSCAN: scores as strings, as in Redis.
    assert_eq!(
        run::<Value>(c, &["ZSCAN", "z", "0"]).await,
        Value::Array(vec![bulk("0"), Value::Array(vec![bulk("c"), bulk("4")])])
    );
    assert_eq!(
        run::<Value>(c, &["ZADD", "z", "INCR", "0.25", "c"]).await,
        Value::Double(4.25)
    );
}

#[tokio::test]
async fn zscan_covers_a_big_sorted_set() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    let mut cmd = vec!["ZADD".to_string(), "big".to_string()];
    for i in 0..500 {
        cmd.push(i.to_string());
        cmd.push(format!("m{i}"));
    }
    run::<i64>(c, &cmd).await;
    let mut seen = std::collections::HashMap::new();
    let mut cursor = "0".to_string();
    let mut pages = 0;
    loop {
        let (next, page): (String, Vec<String>) = run(c, &["ZSCAN", "big", &cursor]).await;
        for p in page.chunks(2) {
            assert!(
                seen.insert(p[0].clone(), p[1].clone()).is_none(),
                "{} twice",
                p[0]
            );
        }
        pages += 1;
        if next == "0" {
            break;
        }
        cursor = next;
    }
    assert!(pages > 10);
    assert_eq!(seen.len(), 500);
    assert_eq!(seen.get("m42").map(String::as_str), Some("42"));
}

#[tokio::test]
async fn sets_and_sorted_sets_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "cluster:\n  stripes:\n    - name: s\n      servers:\n        - {{ name: a, host: 127.0.0.1, port: 6379, data: {} }}\nstorage:\n  restartable: true\n  fsync: always\n",
        dir.path().display()
    );
    let mut s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    run::<i64>(&mut c, &["SADD", "s", "a", "b", "c"]).await;
    run::<i64>(&mut c, &["SREM", "s", "b"]).await;
    run::<i64>(&mut c, &["ZADD", "z", "1.5", "a", "-2", "b", "+inf", "c"]).await;
    run::<String>(&mut c, &["ZINCRBY", "z", "1", "a"]).await;
    run::<i64>(&mut c, &["ZUNIONSTORE", "u", "2", "z", "s"]).await;
    run::<i64>(&mut c, &["SADD", "gone", "x"]).await;
    run::<Value>(&mut c, &["SPOP", "gone"]).await;
    drop(c);
    assert!(s.terminate().is_some_and(|st| st.success()));
    let s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let mut m: Vec<String> = run(&mut c, &["SMEMBERS", "s"]).await;
    m.sort();
    assert_eq!(m, ["a", "c"]);
    assert_eq!(
        texts(&mut c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]).await,
        ["b", "-2", "a", "2.5", "c", "inf"]
    );
    assert_eq!(
        texts(&mut c, &["ZRANGE", "u", "0", "-1", "WITHSCORES"]).await,
        ["b", "-2", "a", "3.5", "c", "inf"]
    );
    assert_eq!(run::<i64>(&mut c, &["EXISTS", "gone"]).await, 0);
    assert_eq!(run::<String>(&mut c, &["TYPE", "z"]).await, "zset");
}

#[tokio::test]
async fn blocking_pops_wait_for_members_and_time_out() {
    use std::time::Duration;

    use crate::list::wait_blocked;
    use crate::util::try_run;

    let s = TestServer::start();
    let mut c = s.conn().await;
    // Served at once when a member is there.
    let _: i64 = run(&mut c, ("ZADD", "z1", "1", "a", "2", "b")).await;
    let got: (String, String, f64) = run(&mut c, ("BZPOPMAX", "nothing", "z1", 1)).await;
    assert_eq!(got, ("z1".into(), "b".into(), 2.0));
    // Woken by a ZADD from another connection.
    let mut b = s.conn().await;
    let t = tokio::spawn(async move {
        try_run::<Option<(String, String, f64)>>(&mut b, ("BZPOPMIN", "z2", "z3", 10)).await
    });
    wait_blocked(&mut c, 1).await;
    let _: i64 = run(&mut c, ("ZADD", "z3", "5", "m", "7", "n")).await;
    let got = t.await.expect("task").expect("reply");
    assert_eq!(got, Some(("z3".into(), "m".into(), 5.0)));
    wait_blocked(&mut c, 0).await;
    let left: Vec<String> = run(&mut c, ("ZRANGE", "z3", "0", "-1")).await;
    assert_eq!(left, vec!["n"]);
    // BZMPOP, woken by a ZUNIONSTORE that creates the key.
    let mut b = s.conn().await;
    let t = tokio::spawn(async move {
        try_run::<redis::Value>(&mut b, ("BZMPOP", 10, 1, "z4", "MAX", "COUNT", 5)).await
    });
    wait_blocked(&mut c, 1).await;
    let _: i64 = run(&mut c, ("ZUNIONSTORE", "z4", 1, "z1")).await;
    let got = t.await.expect("task").expect("reply");
    let want = redis::Value::Array(vec![
        redis::Value::BulkString(b"z4".to_vec()),
        redis::Value::Array(vec![redis::Value::Array(vec![
            redis::Value::BulkString(b"a".to_vec()),
            redis::Value::BulkString(b"1".to_vec()),
        ])]),
    ]);
    assert_eq!(got, want);
    // A timeout answers a null array.
    let started = std::time::Instant::now();
    let got: redis::Value = run(&mut c, ("BZPOPMIN", "none", "0.2")).await;
    assert_eq!(got, redis::Value::Nil);
    assert!(started.elapsed() >= Duration::from_millis(150));
    // A wrong type answers WRONGTYPE at once.
    let _: () = run(&mut c, ("SET", "str", "x")).await;
    let e = try_run::<redis::Value>(&mut c, ("BZPOPMIN", "str", 1)).await;
    assert!(matches!(e, Err(e) if e.code() == Some("WRONGTYPE")));
}
