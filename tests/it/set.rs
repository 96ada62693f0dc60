//! Set commands through the `redis` crate: values, Redis's error strings, RESP3 set
//! replies, STORE forms, SSCAN, and a mirror that holds what the active holds.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::MultiplexedConnection;

use crate::util::{TestServer, free_port, run, try_run};

/// The error text of a failed command, as the client received it.
pub async fn err(c: &mut MultiplexedConnection, args: &[&str]) -> String {
    match try_run::<Value>(c, args).await {
        Ok(v) => panic!("{args:?} should fail, got {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or("");
            let detail = e.detail().unwrap_or("");
            format!("{code} {detail}").trim().to_string()
        }
    }
}

/// A reply's members, sorted (set replies come in no particular order).
async fn members(c: &mut MultiplexedConnection, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = run(c, args).await;
    v.sort();
    v
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[tokio::test]
async fn set_commands() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    assert_eq!(run::<i64>(c, &["SADD", "s", "a", "b", "c", "a"]).await, 3);
    assert_eq!(run::<i64>(c, &["SADD", "s", "c", "d"]).await, 1);
    assert_eq!(members(c, &["SMEMBERS", "s"]).await, ["a", "b", "c", "d"]);
    assert_eq!(run::<i64>(c, &["SCARD", "s"]).await, 4);
    assert_eq!(run::<i64>(c, &["SCARD", "none"]).await, 0);
    assert_eq!(run::<i64>(c, &["SISMEMBER", "s", "a"]).await, 1);
    assert_eq!(run::<i64>(c, &["SISMEMBER", "s", "z"]).await, 0);
    assert_eq!(
        run::<Vec<i64>>(c, &["SMISMEMBER", "s", "a", "z", "d"]).await,
        [1, 0, 1]
    );
    assert_eq!(run::<Vec<i64>>(c, &["SMISMEMBER", "none", "a"]).await, [0]);
    assert_eq!(run::<i64>(c, &["SREM", "s", "d", "zz"]).await, 1);
    assert_eq!(run::<i64>(c, &["SREM", "none", "a"]).await, 0);
    assert!(members(c, &["SMEMBERS", "none"]).await.is_empty());

    // SPOP / SRANDMEMBER.
    let one: String = run(c, &["SRANDMEMBER", "s"]).await;
    assert!(["a", "b", "c"].contains(&one.as_str()));
    let two: Vec<String> = run(c, &["SRANDMEMBER", "s", "2"]).await;
    assert_eq!(two.iter().collect::<HashSet<_>>().len(), 2);
    assert_eq!(
        members(c, &["SRANDMEMBER", "s", "10"]).await,
        ["a", "b", "c"]
    );
    let rep: Vec<String> = run(c, &["SRANDMEMBER", "s", "-7"]).await;
    assert_eq!(rep.len(), 7);
    assert!(rep.iter().all(|m| ["a", "b", "c"].contains(&m.as_str())));
    assert!(
        run::<Vec<String>>(c, &["SRANDMEMBER", "s", "0"])
            .await
            .is_empty()
    );
    assert!(
        run::<Vec<String>>(c, &["SRANDMEMBER", "none", "3"])
            .await
            .is_empty()
    );
    assert_eq!(
        run::<Option<String>>(c, &["SRANDMEMBER", "none"]).await,
        None
    );
    let popped: Vec<String> = run(c, &["SPOP", "s", "2"]).await;
    assert_eq!(popped.len(), 2);
    assert_eq!(run::<i64>(c, &["SCARD", "s"]).await, 1);
    let last: String = run(c, &["SPOP", "s"]).await;
    assert!(!popped.contains(&last));
    assert_eq!(
        run::<i64>(c, &["EXISTS", "s"]).await,
        0,
        "emptied set deleted"
    );
    assert_eq!(run::<Option<String>>(c, &["SPOP", "s"]).await, None);
    assert!(run::<Vec<String>>(c, &["SPOP", "s", "3"]).await.is_empty());

    // SMOVE.
    run::<i64>(c, &["SADD", "src", "x", "y"]).await;
    assert_eq!(run::<i64>(c, &["SMOVE", "src", "dst", "x"]).await, 1);
    assert_eq!(run::<i64>(c, &["SMOVE", "src", "dst", "nope"]).await, 0);
    assert_eq!(run::<i64>(c, &["SMOVE", "none", "dst", "x"]).await, 0);
    assert_eq!(run::<i64>(c, &["SMOVE", "src", "src", "y"]).await, 1);
    assert_eq!(run::<i64>(c, &["SMOVE", "src", "dst", "y"]).await, 1);
    assert_eq!(run::<i64>(c, &["EXISTS", "src"]).await, 0);
    assert_eq!(members(c, &["SMEMBERS", "dst"]).await, ["x", "y"]);

    // Algebra.
    run::<i64>(c, &["SADD", "k1", "a", "b", "c", "d"]).await;
    run::<i64>(c, &["SADD", "k2", "c", "d", "e"]).await;
    run::<i64>(c, &["SADD", "k3", "d", "f"]).await;
    assert_eq!(members(c, &["SINTER", "k1", "k2", "k3"]).await, ["d"]);
    assert_eq!(members(c, &["SINTER", "k1", "k2"]).await, ["c", "d"]);
    assert!(members(c, &["SINTER", "k1", "none"]).await.is_empty());
    assert_eq!(
        members(c, &["SUNION", "k1", "k2", "none"]).await,
        ["a", "b", "c", "d", "e"]
    );
    assert_eq!(members(c, &["SDIFF", "k1", "k2", "k3"]).await, ["a", "b"]);
    assert!(members(c, &["SDIFF", "none", "k1"]).await.is_empty());
    assert_eq!(run::<i64>(c, &["SINTERCARD", "2", "k1", "k2"]).await, 2);
    assert_eq!(
        run::<i64>(c, &["SINTERCARD", "2", "k1", "k2", "LIMIT", "1"]).await,
        1
    );
    assert_eq!(
        run::<i64>(c, &["SINTERCARD", "2", "k1", "k2", "LIMIT", "0"]).await,
        2
    );
    assert_eq!(run::<i64>(c, &["SINTERCARD", "2", "k1", "none"]).await, 0);

    // STORE forms overwrite any type, and an empty result deletes the destination.
    run::<()>(c, &["SET", "out", "string"]).await;
    assert_eq!(run::<i64>(c, &["SINTERSTORE", "out", "k1", "k2"]).await, 2);
    assert_eq!(members(c, &["SMEMBERS", "out"]).await, ["c", "d"]);
    assert_eq!(run::<i64>(c, &["SUNIONSTORE", "out", "k2", "k3"]).await, 4);
    assert_eq!(run::<i64>(c, &["SDIFFSTORE", "out", "k1", "k2"]).await, 2);
    assert_eq!(members(c, &["SMEMBERS", "out"]).await, ["a", "b"]);
    assert_eq!(run::<i64>(c, &["SDIFFSTORE", "out", "k3", "k3"]).await, 0);
    assert_eq!(run::<i64>(c, &["EXISTS", "out"]).await, 0);
    run::<i64>(c, &["SADD", "out", "z"]).await;
    assert_eq!(
        run::<i64>(c, &["SINTERSTORE", "out", "k1", "none"]).await,
        0
    );
    assert_eq!(run::<i64>(c, &["EXISTS", "out"]).await, 0);
    // The destination may be one of the inputs.
    assert_eq!(run::<i64>(c, &["SUNIONSTORE", "k3", "k3", "k2"]).await, 4);
    assert_eq!(run::<String>(c, &["TYPE", "k3"]).await, "set");
    assert_eq!(
        run::<String>(c, &["OBJECT", "ENCODING", "k3"]).await,
        "listpack"
    );
}

#[tokio::test]
async fn set_errors() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    run::<()>(c, &["SET", "str", "x"]).await;
    run::<i64>(c, &["SADD", "s", "a"]).await;
    for args in [
        &["SADD", "str", "a"][..],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SPOP", "str", "0"],
        &["SRANDMEMBER", "str"],
        &["SINTER", "s", "str"],
        // Every key is type-checked, even after a missing one.
        &["SINTER", "none", "str"],
        &["SUNION", "s", "str"],
        &["SDIFF", "none", "str"],
        &["SINTERSTORE", "d", "s", "str"],
        &["SINTERCARD", "2", "s", "str"],
        &["SMOVE", "str", "s", "a"],
        &["SMOVE", "s", "str", "a"],
        &["SSCAN", "str", "0"],
    ] {
        assert_eq!(err(c, args).await, WRONGTYPE, "{args:?}");
    }
    assert_eq!(run::<i64>(c, &["SMOVE", "none", "str", "a"]).await, 0);
    for (args, msg) in [
        (
            &["SADD", "s"][..],
            "ERR wrong number of arguments for 'sadd' command",
        ),
        (
            &["SPOP", "s", "-1"],
            "ERR value is out of range, must be positive",
        ),
        (
            &["SPOP", "s", "x"],
            "ERR value is out of range, must be positive",
        ),
        (&["SPOP", "s", "1", "2"], "ERR syntax error"),
        (
            &["SRANDMEMBER", "s", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["SRANDMEMBER", "s", "-9223372036854775808"],
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ),
        (
            &["SINTERCARD", "0", "s"],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["SINTERCARD", "x", "s"],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["SINTERCARD", "3", "s", "t"],
            "ERR Number of keys can't be greater than number of args",
        ),
        (
            &["SINTERCARD", "1", "s", "LIMIT", "-1"],
            "ERR LIMIT can't be negative",
        ),
        (&["SINTERCARD", "1", "s", "LIMIT"], "ERR syntax error"),
        (&["SINTERCARD", "1", "s", "FOO", "1"], "ERR syntax error"),
        (&["SSCAN", "s", "x"], "ERR invalid cursor"),
        (&["SSCAN", "s", "0", "COUNT", "0"], "ERR syntax error"),
        (&["SSCAN", "s", "0", "MATCH"], "ERR syntax error"),
    ] {
        assert_eq!(err(c, args).await, msg, "{args:?}");
    }
}

#[tokio::test]
async fn set_replies_are_resp3_sets() {
    let s = TestServer::start();
    let mut c = s.conn3().await;
    let c = &mut c;
    run::<i64>(c, &["SADD", "s", "a", "b"]).await;
    run::<i64>(c, &["SADD", "t", "b", "c"]).await;
    let set_of = |v: Value| match v {
        Value::Set(items) => {
            let mut m: Vec<String> = items
                .into_iter()
                .map(|i| redis::from_redis_value(i).expect("string"))
                .collect();
            m.sort();
            m
        }
        other => panic!("expected a RESP3 set, got {other:?}"),
    };
    assert_eq!(set_of(run(c, &["SMEMBERS", "s"]).await), ["a", "b"]);
    assert_eq!(set_of(run(c, &["SINTER", "s", "t"]).await), ["b"]);
    assert_eq!(set_of(run(c, &["SUNION", "s", "t"]).await), ["a", "b", "c"]);
    assert_eq!(set_of(run(c, &["SDIFF", "s", "t"]).await), ["a"]);
    assert!(set_of(run(c, &["SMEMBERS", "none"]).await).is_empty());
    assert!(set_of(run(c, &["SPOP", "none", "2"]).await).is_empty());
    assert_eq!(set_of(run(c, &["SPOP", "t", "5"]).await), ["b", "c"]);
    // SRANDMEMBER may repeat members: an array, as in Redis.
    assert!(matches!(
        run::<Value>(c, &["SRANDMEMBER", "s", "-3"]).await,
        Value::Array(v) if v.len() == 3
    ));
    assert!(matches!(
        run::<Value>(c, &["SMISMEMBER", "s", "a"]).await,
        Value::Array(v) if v == [Value::Int(1)]
    ));
}

#[tokio::test]
async fn sscan_sees_every_member_that_stays_while_the_set_changes() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    // A small set: one page.
    run::<i64>(c, &["SADD", "small", "1", "2", "3"]).await;
    let (cursor, page): (String, Vec<String>) = run(c, &["SSCAN", "small", "0"]).await;
    assert_eq!((cursor.as_str(), page.len()), ("0", 3));
    let (_, page): (String, Vec<String>) = run(c, &["SSCAN", "small", "0", "MATCH", "2"]).await;
    assert_eq!(page, ["2"]);
    let (cursor, page): (String, Vec<String>) = run(c, &["SSCAN", "none", "0"]).await;
    assert_eq!((cursor.as_str(), page.len()), ("0", 0));

    let mut cmd = vec!["SADD".to_string(), "big".to_string()];
    cmd.extend((0..1000).map(|i| format!("m{i}")));
    run::<i64>(c, &cmd).await;
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut round = 0;
    loop {
        let (next, page): (String, Vec<String>) =
            run(c, &["SSCAN", "big", &cursor, "COUNT", "50"]).await;
        for m in page {
            assert!(seen.insert(m.clone()), "{m} returned twice");
        }
        // Writes between pages: new members, and removal of earlier new ones.
        run::<i64>(c, &["SADD", "big", &format!("new{round}")]).await;
        run::<i64>(c, &["SREM", "big", &format!("new{}", round / 2)]).await;
        round += 1;
        if next == "0" {
            break;
        }
        cursor = next;
        assert!(round < 500, "scan does not end");
    }
    assert!(round > 10, "pages of about 50: {round}");
    for i in 0..1000 {
        assert!(seen.contains(&format!("m{i}")), "m{i} missed");
    }
    let (_, page): (String, Vec<String>) =
        run(c, &["SSCAN", "big", "0", "MATCH", "m99*", "COUNT", "2000"]).await;
    let mut page = page;
    page.sort();
    assert_eq!(
        page,
        [
            "m99", "m990", "m991", "m992", "m993", "m994", "m995", "m996", "m997", "m998", "m999"
        ]
    );
}

/// The INFO terrace field `name` of the server on `port`.
fn info_field(port: u16, name: &str) -> Option<String> {
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .ok()?
        .get_connection_with_timeout(Duration::from_secs(5))
        .ok()?;
    let text: String = redis::cmd("INFO").arg("terrace").query(&mut c).ok()?;
    crate::util::field(&text, name)
}

fn wait_state(s: &TestServer, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while info_field(s.port, "terrace_state").as_deref() != Some(state) {
        assert!(Instant::now() < deadline, "not {state}:\n{}", s.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_mirror_holds_the_sets_and_sorted_sets_of_its_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut servers = String::new();
    let mut ports = Vec::new();
    for i in 0..2 {
        let (port, group) = (free_port(), free_port());
        servers.push_str(&format!(
            "        - {{ name: m{i}, host: 127.0.0.1, port: {port}, group_port: {group}, data: {} }}\n",
            dir.path().join(format!("data{i}")).display()
        ));
        ports.push(port);
    }
    let conf = dir.path().join("conf.yaml");
    std::fs::write(
        &conf,
        format!(
            "cluster:\n  stripes:\n    - name: s1\n      servers:\n{servers}storage:\n  restartable: false\ncaches:\n  - {{ name: default, consistency: strong }}\n"
        ),
    )
    .expect("config");
    let a = TestServer::start_named(&conf, "m0", ports[0]);
    wait_state(&a, "ACTIVE-COORDINATOR");
    let b = TestServer::start_named(&conf, "m1", ports[1]);
    wait_state(&b, "PASSIVE-STANDBY");
    let con = |port: u16| {
        redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .expect("client")
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect")
    };
    let (mut ca, mut cb) = (con(a.port), con(b.port));
    let q = |c: &mut redis::Connection, args: &[&str]| -> Value {
        redis::cmd(args[0])
            .arg(&args[1..])
            .query(c)
            .expect("command")
    };
    // Strong cache: each write is on the mirror when its reply arrives.
    q(&mut ca, &["SADD", "s", "a", "b", "c"]);
    q(&mut ca, &["SREM", "s", "b"]);
    q(&mut ca, &["SPOP", "s"]);
    q(&mut ca, &["SADD", "t", "x", "y"]);
    q(&mut ca, &["SUNIONSTORE", "u", "s", "t"]);
    q(&mut ca, &["ZADD", "z", "1", "a", "2.5", "b", "-3", "c"]);
    q(&mut ca, &["ZINCRBY", "z", "10", "c"]);
    q(&mut ca, &["ZPOPMAX", "z"]);
    q(
        &mut ca,
        &["ZUNIONSTORE", "zu", "2", "z", "t", "WEIGHTS", "2", "1"],
    );
    q(&mut ca, &["SADD", "gone", "1"]);
    q(&mut ca, &["SREM", "gone", "1"]);
    let keys = ["s", "t", "u", "z", "zu", "gone"];
    let digest = |c: &mut redis::Connection| -> Vec<String> {
        redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(&keys[..])
            .query(c)
            .expect("digest-value")
    };
    assert_eq!(digest(&mut cb), digest(&mut ca));
    let zu: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(&["zu", "0", "-1", "WITHSCORES"])
        .query(&mut ca)
        .expect("zrange");
    let want = [("x", 1.0), ("y", 1.0), ("a", 2.0), ("b", 5.0)];
    assert_eq!(zu, want.map(|(m, s)| (m.to_string(), s)));
    assert_eq!(
        info_field(b.port, "terrace_state").as_deref(),
        Some("PASSIVE-STANDBY")
    );
}

#[tokio::test]
async fn command_getkeys_knows_numkeys() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let c = &mut c;
    let keys = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (cmd, want) in [
        (
            &["ZUNIONSTORE", "d", "2", "a", "b", "WEIGHTS", "1", "2"][..],
            &["d", "a", "b"][..],
        ),
        (&["ZINTER", "1", "a", "WITHSCORES"], &["a"]),
        (&["SINTERCARD", "2", "a", "b", "LIMIT", "1"], &["a", "b"]),
        (&["ZMPOP", "2", "a", "b", "MIN", "COUNT", "3"], &["a", "b"]),
        (&["SMOVE", "a", "b", "m"], &["a", "b"]),
        (&["ZRANGESTORE", "d", "s", "0", "-1"], &["d", "s"]),
    ] {
        let mut args = vec!["COMMAND", "GETKEYS"];
        args.extend_from_slice(cmd);
        assert_eq!(run::<Vec<String>>(c, &args).await, keys(want), "{cmd:?}");
    }
}

/// Two one-server stripes; returns the servers once the cluster is formed.
fn two_stripes(dir: &tempfile::TempDir) -> Vec<TestServer> {
    let ports = [free_port(), free_port()];
    let mut yaml = String::from("cluster:\n  stripes:\n");
    for (i, p) in ports.iter().enumerate() {
        yaml.push_str(&format!(
            "    - name: stripe{n}\n      servers:\n        - {{ name: s{n}, host: 127.0.0.1, port: {p}, group_port: {g} }}\n",
            n = i + 1,
            g = free_port()
        ));
    }
    let conf = dir.path().join("conf.yaml");
    std::fs::write(&conf, yaml).expect("config");
    let servers: Vec<TestServer> = ports
        .iter()
        .enumerate()
        .map(|(i, &p)| TestServer::start_named(&conf, &format!("s{}", i + 1), p))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    for s in &servers {
        wait_state(s, "ACTIVE-COORDINATOR");
        loop {
            let ok = redis::Client::open(s.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
                .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
                .is_ok_and(|i| i.contains("cluster_state:ok"));
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "cluster not ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    servers
}

#[tokio::test]
async fn counted_keys_route_and_crossslot_in_a_cluster() {
    let dir = tempfile::tempdir().expect("tempdir");
    let servers = two_stripes(&dir);
    for s in &servers {
        // A plain client: same-slot keys run wherever they live (forwarded), and the
        // WEIGHTS values are not taken for keys.
        let mut c = s.conn().await;
        let c = &mut c;
        run::<i64>(c, &["ZADD", "{t}1", "1", "a", "2", "b"]).await;
        run::<i64>(c, &["SADD", "{t}2", "b", "c"]).await;
        assert_eq!(
            run::<i64>(
                c,
                &[
                    "ZUNIONSTORE",
                    "{t}d",
                    "2",
                    "{t}1",
                    "{t}2",
                    "WEIGHTS",
                    "1",
                    "10"
                ]
            )
            .await,
            3
        );
        assert_eq!(run::<f64>(c, &["ZSCORE", "{t}d", "b"]).await, 12.0);
        assert_eq!(run::<i64>(c, &["SINTERCARD", "1", "{t}2"]).await, 2);
        assert_eq!(
            run::<i64>(c, &["ZINTERCARD", "2", "{t}1", "{t}2", "LIMIT", "5"]).await,
            1
        );
        // Keys of two slots: CROSSSLOT (these commands are not split).
        for args in [
            &["ZUNIONSTORE", "{a}d", "2", "{a}1", "{b}1"][..],
            &["SINTERCARD", "2", "{a}1", "{b}1"],
            &["ZMPOP", "2", "{a}1", "{b}1", "MIN"],
            &["SUNION", "{a}1", "{b}1"],
        ] {
            assert!(err(c, args).await.starts_with("CROSSSLOT"), "{args:?}");
        }
    }
}
