//! Lists with real processes: every list command's replies and errors byte for byte
//! (RESP2 and RESP3 null forms), blocking pops woken by other connections in arrival
//! order, timeouts, BLMOVE, blocking commands inside MULTI, CLIENT UNBLOCK, a blocked
//! client at shutdown, restart survival, the mirror's copy, and MOVED instead of
//! forwarding for a blocking command on another stripe's key.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redis::Value;

use crate::util::{Resp3, TestServer, field, free_port, read_n, run, show, try_run};

/// Sends `args` on a raw RESP2 socket and checks the exact reply bytes.
fn expect(s: &mut TcpStream, args: &[&str], want: &str) {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes()).expect("send");
    let got = read_n(s, want.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        want,
        "reply to {args:?} differs"
    );
}

#[test]
fn list_commands_reply_like_redis_byte_for_byte() {
    let s = TestServer::start();
    let mut c = s.raw();
    let wrong = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    let script: &[(&[&str], &str)] = &[
        (&["RPUSH", "l", "a", "b", "c"], ":3\r\n"),
        (&["LPUSH", "l", "z", "y"], ":5\r\n"),
        (
            &["LRANGE", "l", "0", "-1"],
            "*5\r\n$1\r\ny\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
        ),
        (
            &["LRANGE", "l", "-2", "100"],
            "*2\r\n$1\r\nb\r\n$1\r\nc\r\n",
        ),
        (&["LRANGE", "l", "3", "1"], "*0\r\n"),
        (&["LRANGE", "nokey", "0", "-1"], "*0\r\n"),
        (
            &["LRANGE", "l", "a", "1"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["LLEN", "l"], ":5\r\n"),
        (&["LLEN", "nokey"], ":0\r\n"),
        (&["LINDEX", "l", "-1"], "$1\r\nc\r\n"),
        (&["LINDEX", "l", "5"], "$-1\r\n"),
        (&["LINDEX", "nokey", "x"], "$-1\r\n"),
        (
            &["LINDEX", "l", "x"],
            "-ERR value is not an integer or out of range\r\n",
        ),
        (&["LSET", "l", "0", "Y"], "+OK\r\n"),
        (&["LSET", "l", "-6", "x"], "-ERR index out of range\r\n"),
        (&["LSET", "nokey", "0", "x"], "-ERR no such key\r\n"),
        (&["LINSERT", "l", "BEFORE", "a", "m"], ":6\r\n"),
        (&["LINSERT", "l", "after", "c", "n"], ":7\r\n"),
        (&["LINSERT", "l", "BEFORE", "nope", "m"], ":-1\r\n"),
        (&["LINSERT", "nokey", "BEFORE", "a", "m"], ":0\r\n"),
        (
            &["LINSERT", "l", "MIDDLE", "a", "m"],
            "-ERR syntax error\r\n",
        ),
        (
            &["LRANGE", "l", "0", "-1"],
            "*7\r\n$1\r\nY\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nn\r\n",
        ),
        (&["RPUSH", "r", "a", "b", "a", "c", "a"], ":5\r\n"),
        (&["LREM", "r", "-1", "a"], ":1\r\n"),
        (&["LREM", "r", "0", "a"], ":2\r\n"),
        (&["LREM", "nokey", "0", "a"], ":0\r\n"),
        (&["LRANGE", "r", "0", "-1"], "*2\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        (&["RPUSH", "p", "a", "b", "c", "a", "b", "a"], ":6\r\n"),
        (&["LPOS", "p", "a"], ":0\r\n"),
        (&["LPOS", "p", "a", "RANK", "2"], ":3\r\n"),
        (&["LPOS", "p", "a", "RANK", "-1"], ":5\r\n"),
        (
            &["LPOS", "p", "a", "COUNT", "0"],
            "*3\r\n:0\r\n:3\r\n:5\r\n",
        ),
        (
            &["LPOS", "p", "a", "COUNT", "2", "RANK", "-1"],
            "*2\r\n:5\r\n:3\r\n",
        ),
        (
            &["LPOS", "p", "a", "COUNT", "0", "MAXLEN", "4"],
            "*2\r\n:0\r\n:3\r\n",
        ),
        (&["LPOS", "p", "zz"], "$-1\r\n"),
        (&["LPOS", "p", "zz", "COUNT", "1"], "*0\r\n"),
        (&["LPOS", "nokey", "a"], "$-1\r\n"),
        (&["LPOS", "nokey", "a", "COUNT", "1"], "*0\r\n"),
        (
            &["LPOS", "p", "a", "RANK", "0"],
            "-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list\r\n",
        ),
        (
            &["LPOS", "p", "a", "COUNT", "-1"],
            "-ERR COUNT can't be negative\r\n",
        ),
        (
            &["LPOS", "p", "a", "MAXLEN", "-1"],
            "-ERR MAXLEN can't be negative\r\n",
        ),
        (&["LPOS", "p", "a", "FOO", "1"], "-ERR syntax error\r\n"),
        (&["LTRIM", "p", "1", "-2"], "+OK\r\n"),
        (
            &["LRANGE", "p", "0", "-1"],
            "*4\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nb\r\n",
        ),
        (&["LTRIM", "p", "5", "10"], "+OK\r\n"),
        (&["EXISTS", "p"], ":0\r\n"),
        (&["LPUSHX", "nokey", "a"], ":0\r\n"),
        (&["RPUSHX", "r", "d"], ":3\r\n"),
        (&["LPUSHX", "r", "e", "f"], ":5\r\n"),
        (&["EXISTS", "nokey"], ":0\r\n"),
        // Pops: nil bulk without a count, nil array with one.
        (&["LPOP", "r"], "$1\r\nf\r\n"),
        (&["RPOP", "r"], "$1\r\nd\r\n"),
        (&["LPOP", "r", "2"], "*2\r\n$1\r\ne\r\n$1\r\nb\r\n"),
        (&["LPOP", "r", "0"], "*0\r\n"),
        (&["RPOP", "r", "5"], "*1\r\n$1\r\nc\r\n"),
        (&["EXISTS", "r"], ":0\r\n"),
        (&["LPOP", "nokey"], "$-1\r\n"),
        (&["LPOP", "nokey", "2"], "*-1\r\n"),
        (&["RPOP", "nokey", "0"], "*-1\r\n"),
        (
            &["LPOP", "l", "-1"],
            "-ERR value is out of range, must be positive\r\n",
        ),
        (
            &["LPOP", "l", "x"],
            "-ERR value is out of range, must be positive\r\n",
        ),
        (
            &["LPOP"],
            "-ERR wrong number of arguments for 'lpop' command\r\n",
        ),
        // LMOVE / RPOPLPUSH
        (&["RPUSH", "src", "1", "2", "3"], ":3\r\n"),
        (&["LMOVE", "src", "dst", "LEFT", "RIGHT"], "$1\r\n1\r\n"),
        (&["RPOPLPUSH", "src", "dst"], "$1\r\n3\r\n"),
        (&["LMOVE", "src", "src", "LEFT", "RIGHT"], "$1\r\n2\r\n"),
        (&["LRANGE", "src", "0", "-1"], "*1\r\n$1\r\n2\r\n"),
        (
            &["LRANGE", "dst", "0", "-1"],
            "*2\r\n$1\r\n3\r\n$1\r\n1\r\n",
        ),
        (&["LMOVE", "nokey", "dst", "LEFT", "LEFT"], "$-1\r\n"),
        (
            &["LMOVE", "src", "dst", "UP", "LEFT"],
            "-ERR syntax error\r\n",
        ),
        // LMPOP
        (
            &["LMPOP", "2", "nokey", "dst", "RIGHT", "COUNT", "5"],
            "*2\r\n$3\r\ndst\r\n*2\r\n$1\r\n1\r\n$1\r\n3\r\n",
        ),
        (&["LMPOP", "1", "dst", "LEFT"], "*-1\r\n"),
        (
            &["LMPOP", "0", "a", "LEFT"],
            "-ERR numkeys should be greater than 0\r\n",
        ),
        (&["LMPOP", "3", "a", "LEFT"], "-ERR syntax error\r\n"),
        (
            &["LMPOP", "1", "a", "LEFT", "COUNT", "0"],
            "-ERR count should be greater than 0\r\n",
        ),
        (
            &["LMPOP", "1", "a", "LEFT", "COUNT"],
            "-ERR syntax error\r\n",
        ),
        // Timeouts of blocking commands.
        (&["BLPOP", "q", "-1"], "-ERR timeout is negative\r\n"),
        (
            &["BLPOP", "q", "abc"],
            "-ERR timeout is not a float or out of range\r\n",
        ),
        (&["BRPOP", "q", "inf"], "-ERR timeout is out of range\r\n"),
        (
            &["BLMPOP", "-0.5", "1", "q", "LEFT"],
            "-ERR timeout is negative\r\n",
        ),
        // WRONGTYPE everywhere.
        (&["SET", "s", "x"], "+OK\r\n"),
    ];
    for (args, want) in script {
        expect(&mut c, args, want);
    }
    for args in [
        &["LPUSH", "s", "a"][..],
        &["RPUSHX", "s", "a"],
        &["LPOP", "s"],
        &["RPOP", "s", "2"],
        &["LLEN", "s"],
        &["LRANGE", "s", "0", "1"],
        &["LINDEX", "s", "0"],
        &["LSET", "s", "0", "a"],
        &["LINSERT", "s", "BEFORE", "a", "b"],
        &["LREM", "s", "0", "a"],
        &["LTRIM", "s", "0", "1"],
        &["LPOS", "s", "a"],
        &["LMOVE", "s", "d", "LEFT", "LEFT"],
        &["LMOVE", "l", "s", "LEFT", "LEFT"],
        &["LMPOP", "2", "nokey", "s", "LEFT"],
        &["BLPOP", "nokey", "s", "0"],
        &["BLMOVE", "s", "d", "LEFT", "LEFT", "0"],
        &["BLMPOP", "0", "1", "s", "LEFT"],
    ] {
        expect(&mut c, args, wrong);
    }
    expect(&mut c, &["GET", "s"], "$1\r\nx\r\n");
    expect(&mut c, &["TYPE", "l"], "+list\r\n");
    expect(&mut c, &["OBJECT", "ENCODING", "l"], "$8\r\nlistpack\r\n");
}

#[test]
fn null_forms_in_resp3() {
    let s = TestServer::start();
    let mut c = Resp3::connect(s.port);
    assert_eq!(c.text(&["LPOP", "nokey"]), "nil");
    assert_eq!(c.text(&["LPOP", "nokey", "2"]), "nil");
    assert_eq!(c.text(&["LMPOP", "1", "nokey", "LEFT"]), "nil");
    assert_eq!(c.text(&["LINDEX", "nokey", "0"]), "nil");
    assert_eq!(c.text(&["BLPOP", "nokey", "0.01"]), "nil");
    assert_eq!(
        c.text(&["BLMOVE", "nokey", "d", "LEFT", "LEFT", "0.01"]),
        "nil"
    );
    assert_eq!(c.text(&["BLMPOP", "0.01", "1", "nokey", "LEFT"]), "nil");
    assert_eq!(c.text(&["RPUSH", "l", "a", "b"]), "2");
    assert_eq!(c.text(&["LPOP", "l", "1"]), "[a]");
    assert_eq!(
        c.text(&["LMPOP", "1", "l", "LEFT", "COUNT", "9"]),
        "[l [b]]"
    );
    assert_eq!(c.text(&["RPUSH", "l", "c"]), "1");
    assert_eq!(c.text(&["BLPOP", "nokey", "l", "0"]), "[l c]");
    // The raw bytes of a null in RESP3 are `_`, for bulk and array alike.
    let mut raw = c.into_socket();
    raw.write_all(b"*3\r\n$4\r\nLPOP\r\n$5\r\nnokey\r\n$1\r\n2\r\n")
        .expect("send");
    assert_eq!(read_n(&mut raw, 3), b"_\r\n");
}

/// Polls INFO until `blocked_clients` is `n` (bounded).
pub async fn wait_blocked(c: &mut redis::aio::MultiplexedConnection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = run(c, ("INFO", "clients")).await;
        if field(&info, "blocked_clients") == Some(n.to_string()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "blocked_clients never {n}: {info}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn blocked_pops_are_woken_by_pushes_in_arrival_order() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    // One client, woken by a push from another connection.
    let mut b1 = s.conn().await;
    let t1 = tokio::spawn(async move {
        try_run::<Option<(String, String)>>(&mut b1, ("BLPOP", "q1", "q2", 10)).await
    });
    wait_blocked(&mut c, 1).await;
    let _: i64 = run(&mut c, ("RPUSH", "q2", "x")).await;
    let got = t1.await.expect("task").expect("reply");
    assert_eq!(got, Some(("q2".into(), "x".into())));
    wait_blocked(&mut c, 0).await;
    assert_eq!(run::<i64>(&mut c, ("EXISTS", "q2")).await, 0);

    // Two clients on one key: the first to block is served first, one element each.
    let mut first = s.conn().await;
    let mut second = s.conn().await;
    let t1 = tokio::spawn(async move {
        try_run::<Option<(String, String)>>(&mut first, ("BRPOP", "q", 10)).await
    });
    wait_blocked(&mut c, 1).await;
    let t2 = tokio::spawn(async move {
        try_run::<Option<(String, String)>>(&mut second, ("BRPOP", "q", 10)).await
    });
    wait_blocked(&mut c, 2).await;
    let _: i64 = run(&mut c, ("RPUSH", "q", "a")).await;
    let got = t1.await.expect("task").expect("reply");
    assert_eq!(got, Some(("q".into(), "a".into())));
    wait_blocked(&mut c, 1).await;
    assert!(
        !t2.is_finished(),
        "the second client waits for the next element"
    );
    let _: i64 = run(&mut c, ("RPUSH", "q", "b")).await;
    let got = t2.await.expect("task").expect("reply");
    assert_eq!(got, Some(("q".into(), "b".into())));

    // One push of two elements serves both waiters (the turn passes on).
    let mut first = s.conn().await;
    let mut second = s.conn().await;
    let t1 = tokio::spawn(async move {
        try_run::<Option<(String, String)>>(&mut first, ("BLPOP", "w", 10)).await
    });
    wait_blocked(&mut c, 1).await;
    let t2 = tokio::spawn(async move {
        try_run::<Option<(String, String)>>(&mut second, ("BLPOP", "w", 10)).await
    });
    wait_blocked(&mut c, 2).await;
    let info: String = run(&mut c, ("INFO", "clients")).await;
    assert_eq!(field(&info, "total_blocking_keys").as_deref(), Some("1"));
    let _: i64 = run(&mut c, ("RPUSH", "w", "1", "2")).await;
    assert_eq!(
        t1.await.expect("task").expect("reply"),
        Some(("w".into(), "1".into()))
    );
    assert_eq!(
        t2.await.expect("task").expect("reply"),
        Some(("w".into(), "2".into()))
    );

    // BLMOVE and BLMPOP are woken too; the moved element lands in the destination.
    let mut b = s.conn().await;
    let t = tokio::spawn(async move {
        try_run::<Option<String>>(&mut b, ("BLMOVE", "from", "to", "RIGHT", "LEFT", 10)).await
    });
    wait_blocked(&mut c, 1).await;
    let _: i64 = run(&mut c, ("LPUSH", "from", "m")).await;
    assert_eq!(t.await.expect("task").expect("reply"), Some("m".into()));
    let to: Vec<String> = run(&mut c, ("LRANGE", "to", 0, -1)).await;
    assert_eq!(to, ["m"]);
    let mut b = s.conn().await;
    let t = tokio::spawn(async move {
        try_run::<Value>(&mut b, ("BLMPOP", 10, 2, "e1", "e2", "LEFT", "COUNT", 5)).await
    });
    wait_blocked(&mut c, 1).await;
    let _: i64 = run(&mut c, ("RPUSH", "e2", "u", "v")).await;
    let v = t.await.expect("task").expect("reply");
    let got: (String, Vec<String>) = redis::from_redis_value(v).expect("shape");
    assert_eq!(got, ("e2".into(), vec!["u".into(), "v".into()]));

    // A client blocked on a key that someone else empties first keeps waiting.
    let mut b = s.conn().await;
    let t = tokio::spawn(async move {
        try_run::<Option<(String, String)>>(&mut b, ("BLPOP", "race", 10)).await
    });
    wait_blocked(&mut c, 1).await;
    let mut pipe = redis::pipe();
    pipe.atomic()
        .cmd("RPUSH")
        .arg("race")
        .arg("gone")
        .cmd("LPOP")
        .arg("race");
    let _: (i64, String) = pipe.query_async(&mut c).await.expect("multi");
    wait_blocked(&mut c, 1).await;
    let _: i64 = run(&mut c, ("RPUSH", "race", "kept")).await;
    assert_eq!(
        t.await.expect("task").expect("reply"),
        Some(("race".into(), "kept".into()))
    );
}

#[tokio::test]
async fn timeouts_multi_and_client_unblock() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    // Timeouts answer the null of each command, after about the timeout.
    let t0 = Instant::now();
    let v: Value = run(&mut c, ("BLPOP", "none", "0.2")).await;
    assert_eq!(v, Value::Nil);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(5),
        "{took:?}"
    );
    let v: Value = run(&mut c, ("BRPOPLPUSH", "none", "d", "0.05")).await;
    assert_eq!(v, Value::Nil);
    let v: Value = run(&mut c, ("BLMPOP", "0.05", 1, "none", "RIGHT")).await;
    assert_eq!(v, Value::Nil);
    let mut raw = s.raw();
    expect(&mut raw, &["BLPOP", "none", "0.05"], "*-1\r\n");
    // Redis answers every timed-out wait with a null array, BLMOVE's too.
    expect(
        &mut raw,
        &["BLMOVE", "none", "d", "LEFT", "LEFT", "0.05"],
        "*-1\r\n",
    );
    expect(&mut raw, &["BRPOPLPUSH", "none", "d", "0.05"], "*-1\r\n");
    expect(
        &mut raw,
        &["BLMPOP", "0.05", "1", "none", "LEFT"],
        "*-1\r\n",
    );

    // Inside MULTI a blocking command answers at once, like its non-blocking form.
    let t0 = Instant::now();
    expect(&mut raw, &["MULTI"], "+OK\r\n");
    expect(&mut raw, &["BLPOP", "none", "0"], "+QUEUED\r\n");
    expect(
        &mut raw,
        &["BLMOVE", "none", "d", "LEFT", "LEFT", "0"],
        "+QUEUED\r\n",
    );
    expect(&mut raw, &["RPUSH", "m", "a"], "+QUEUED\r\n");
    expect(&mut raw, &["BRPOP", "m", "0"], "+QUEUED\r\n");
    expect(&mut raw, &["BLMPOP", "0", "1", "m", "LEFT"], "+QUEUED\r\n");
    expect(
        &mut raw,
        &["EXEC"],
        "*5\r\n*-1\r\n$-1\r\n:1\r\n*2\r\n$1\r\nm\r\n$1\r\na\r\n*-1\r\n",
    );
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(
        field(
            &run::<String>(&mut c, ("INFO", "clients")).await,
            "blocked_clients"
        )
        .as_deref(),
        Some("0")
    );

    // CLIENT UNBLOCK: TIMEOUT answers the timeout reply, ERROR the UNBLOCKED error.
    let mut b = s.conn().await;
    let id: i64 = run(&mut b, ("CLIENT", "ID")).await;
    assert_eq!(run::<i64>(&mut c, ("CLIENT", "UNBLOCK", id)).await, 0);
    let t = tokio::spawn(async move {
        let r = try_run::<Value>(&mut b, ("BLPOP", "none", 0)).await;
        let r2 = try_run::<Value>(&mut b, ("BLMOVE", "none", "d", "LEFT", "LEFT", 0)).await;
        (r, r2)
    });
    wait_blocked(&mut c, 1).await;
    assert_eq!(
        run::<i64>(&mut c, ("CLIENT", "UNBLOCK", id, "TIMEOUT")).await,
        1
    );
    wait_blocked(&mut c, 1).await;
    assert_eq!(
        run::<i64>(&mut c, ("CLIENT", "UNBLOCK", id, "ERROR")).await,
        1
    );
    let (r, r2) = t.await.expect("task");
    assert_eq!(r.expect("timeout reply"), Value::Nil);
    let e = r2.expect_err("error reply");
    assert_eq!(e.code(), Some("UNBLOCKED"), "{e}");
    assert!(
        e.to_string()
            .contains("client unblocked via CLIENT UNBLOCK"),
        "{e}"
    );
    let e = try_run::<i64>(&mut c, ("CLIENT", "UNBLOCK", id, "LATER"))
        .await
        .expect_err("bad reason");
    assert!(
        e.to_string()
            .contains("CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
        "{e}"
    );
    // The blocking flag shows in COMMAND INFO.
    let info: Value = run(&mut c, ("COMMAND", "INFO", "blpop")).await;
    assert!(format!("{info:?}").contains("blocking"), "{info:?}");
    // Keys after a count: COMMAND GETKEYS finds them, as routing and locking do.
    let keys: Vec<String> = run(
        &mut c,
        (
            "COMMAND", "GETKEYS", "BLMPOP", 0, 2, "a", "b", "LEFT", "COUNT", 2,
        ),
    )
    .await;
    assert_eq!(keys, ["a", "b"]);
    let e = try_run::<Vec<String>>(&mut c, ("COMMAND", "GETKEYS", "LMPOP", 5, "a", "LEFT"))
        .await
        .expect_err("bad count");
    assert!(
        e.to_string()
            .contains("Invalid arguments specified for command"),
        "{e}"
    );
}

#[tokio::test]
async fn pipelines_around_a_blocked_command_and_a_client_that_leaves() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    // Replies before the blocked command are written at once; requests sent while it is
    // blocked run after it, in order.
    let mut raw = s.raw();
    raw.write_all(
        b"*3\r\n$5\r\nRPUSH\r\n$1\r\nx\r\n$1\r\n1\r\n*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n",
    )
    .expect("send");
    assert_eq!(read_n(&mut raw, 4), b":1\r\n");
    wait_blocked(&mut c, 1).await;
    raw.write_all(b"*1\r\n$4\r\nPING\r\n").expect("send ping");
    let _: i64 = run(&mut c, ("RPUSH", "q", "a")).await;
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut raw, 30)),
        "*2\r\n$1\r\nq\r\n$1\r\na\r\n+PONG\r\n"
    );
    // A blocked client that closes its connection leaves the line: it takes nothing.
    raw.write_all(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
        .expect("send");
    wait_blocked(&mut c, 1).await;
    drop(raw);
    wait_blocked(&mut c, 0).await;
    let _: i64 = run(&mut c, ("RPUSH", "q", "kept")).await;
    assert_eq!(run::<i64>(&mut c, ("LLEN", "q")).await, 1);
}

#[test]
fn a_blocked_client_is_disconnected_cleanly_at_shutdown() {
    let mut s = TestServer::start();
    let mut blocked = s.raw();
    blocked
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    blocked
        .write_all(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n")
        .expect("send");
    let mut probe = s.raw();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut req = Vec::new();
        req.extend_from_slice(b"*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n");
        probe.write_all(&req).expect("info");
        let mut buf = vec![0u8; 8192];
        let n = std::io::Read::read(&mut probe, &mut buf).expect("read info");
        if String::from_utf8_lossy(&buf[..n]).contains("blocked_clients:1") {
            break;
        }
        assert!(Instant::now() < deadline, "never blocked");
        std::thread::sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    let status = s
        .terminate()
        .expect("the server stops while a client is blocked");
    assert!(status.success(), "{status}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    let (rest, closed) = crate::util::read_to_close(&mut blocked);
    assert!(closed, "the blocked connection is closed");
    assert!(rest.is_empty(), "no stray reply: {rest:?}");
}

#[tokio::test]
async fn lists_survive_a_restart_including_blocked_pops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "cluster:\n  stripes:\n    - name: s\n      servers:\n        - {{ name: a, host: 127.0.0.1, port: 6379, data: {} }}\nstorage:\n  restartable: true\n  fsync: always\n",
        dir.path().display()
    );
    let mut s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let _: i64 = run(&mut c, ("RPUSH", "l", "a", "b", "c", "d")).await;
    let _: i64 = run(&mut c, ("LINSERT", "l", "AFTER", "b", "bb")).await;
    let _: String = run(&mut c, ("LPOP", "l")).await;
    let _: i64 = run(&mut c, ("LREM", "l", 1, "c")).await;
    let _: () = run(&mut c, ("LSET", "l", -1, "D")).await;
    // A pop served to a blocked client is logged like any write.
    let mut b = s.conn().await;
    let t = tokio::spawn(async move {
        try_run::<Option<(String, String)>>(&mut b, ("BLPOP", "q", 10)).await
    });
    wait_blocked(&mut c, 1).await;
    let _: i64 = run(&mut c, ("RPUSH", "q", "1", "2")).await;
    assert_eq!(
        t.await.expect("task").expect("reply"),
        Some(("q".into(), "1".into()))
    );
    drop(c);
    assert!(s.terminate().is_some_and(|st| st.success()));
    let s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let l: Vec<String> = run(&mut c, ("LRANGE", "l", 0, -1)).await;
    assert_eq!(l, ["b", "bb", "D"]);
    let q: Vec<String> = run(&mut c, ("LRANGE", "q", 0, -1)).await;
    assert_eq!(q, ["2"]);
}

fn sync_con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("client")
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect")
}

fn info_field(port: u16, section: &str, name: &str) -> Option<String> {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query(&mut sync_con(port))
        .ok()?;
    field(&text, name)
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_mirror_has_the_list_including_pops_served_to_blocked_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p0, g0, p1, g1) = (free_port(), free_port(), free_port(), free_port());
    let yaml = format!(
        "cluster:\n  stripes:\n    - name: s1\n      servers:\n        - {{ name: m0, host: 127.0.0.1, port: {p0}, group_port: {g0} }}\n        - {{ name: m1, host: 127.0.0.1, port: {p1}, group_port: {g1} }}\n"
    );
    let conf = dir.path().join("conf.yaml");
    std::fs::write(&conf, yaml).expect("config");
    let a = TestServer::start_named(&conf, "m0", p0);
    wait_until("an active", || {
        info_field(a.port, "terrace", "terrace_state").as_deref() == Some("ACTIVE-COORDINATOR")
    });
    let m = TestServer::start_named(&conf, "m1", p1);
    wait_until("a standby mirror", || {
        info_field(m.port, "terrace", "terrace_state").as_deref() == Some("PASSIVE-STANDBY")
    });
    let mut c = sync_con(a.port);
    let _: i64 = redis::cmd("RPUSH")
        .arg("l")
        .arg(&["a", "b", "c"])
        .query(&mut c)
        .expect("rpush");
    let _: i64 = redis::cmd("LREM")
        .arg("l")
        .arg(0)
        .arg("b")
        .query(&mut c)
        .expect("lrem");
    // A blocked BLMOVE served by a push: both its lists reach the mirror.
    let port = a.port;
    let blocked = std::thread::spawn(move || {
        redis::cmd("BLMOVE")
            .arg("src")
            .arg("l")
            .arg("LEFT")
            .arg("RIGHT")
            .arg(10)
            .query::<Option<String>>(&mut sync_con(port))
    });
    wait_until("a blocked client", || {
        info_field(a.port, "clients", "blocked_clients").as_deref() == Some("1")
    });
    let _: i64 = redis::cmd("RPUSH")
        .arg("src")
        .arg(&["x", "y"])
        .query(&mut c)
        .expect("rpush src");
    assert_eq!(
        blocked.join().expect("thread").expect("blmove"),
        Some("x".to_string())
    );
    // A long list: its pushes and pops travel as ops on the list's version.
    let items: Vec<String> = (0..500).map(|i| format!("item-{i}")).collect();
    let _: i64 = redis::cmd("RPUSH")
        .arg("long")
        .arg(&items)
        .query(&mut c)
        .expect("rpush long");
    for i in 0..50 {
        let _: i64 = redis::cmd("LPUSH")
            .arg("long")
            .arg(format!("new-{i}"))
            .query(&mut c)
            .expect("lpush");
        let _: Option<String> = redis::cmd("RPOP").arg("long").query(&mut c).expect("rpop");
    }
    let _: () = redis::cmd("LSET")
        .arg("long")
        .arg(10)
        .arg("set")
        .query(&mut c)
        .expect("lset");
    let _: i64 = redis::cmd("RPUSH")
        .arg("long")
        .arg("last")
        .query(&mut c)
        .expect("rpush");
    let mut mc = sync_con(m.port);
    // A mirror redirects a blocking command to its active.
    let e = redis::cmd("BLPOP")
        .arg("l")
        .arg(1)
        .query::<Value>(&mut mc)
        .expect_err("a mirror does not serve BLPOP");
    assert_eq!(e.code(), Some("MOVED"), "{e}");
    wait_until("the mirror to catch up", || {
        let la = info_field(a.port, "terrace", "terrace_lsn");
        la.is_some() && la == info_field(m.port, "terrace", "terrace_lsn")
    });
    let dv = |c: &mut redis::Connection, k: &str| -> Vec<String> {
        redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(k)
            .query(c)
            .expect("digest-value")
    };
    for k in ["l", "src", "long"] {
        assert_eq!(dv(&mut mc, k), dv(&mut c, k), "{k} differs on the mirror");
    }
    let l: Vec<String> = redis::cmd("LRANGE")
        .arg("l")
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .expect("lrange");
    assert_eq!(l, ["a", "c", "x"]);

    // A client blocked on the active when it hands over to its mirror is redirected.
    let port = a.port;
    let blocked = std::thread::spawn(move || {
        redis::cmd("BLPOP")
            .arg("never")
            .arg(30)
            .query::<Value>(&mut sync_con(port))
    });
    wait_until("a blocked client", || {
        info_field(a.port, "clients", "blocked_clients").as_deref() == Some("1")
    });
    let t0 = Instant::now();
    let _: () = redis::cmd("FAILOVER").query(&mut c).expect("switchover");
    let e = blocked
        .join()
        .expect("thread")
        .expect_err("the old active no longer serves the key");
    assert_eq!(e.code(), Some("MOVED"), "{e}");
    assert!(e.to_string().contains(&m.port.to_string()), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_plain_client_gets_moved_for_a_blocking_command_on_another_stripe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: Vec<u16> = (0..2).map(|_| free_port()).collect();
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
    for s in &servers {
        wait_until("actives", || {
            info_field(s.port, "terrace", "terrace_state").as_deref() == Some("ACTIVE-COORDINATOR")
        });
    }
    for s in &servers {
        let mut c = sync_con(s.port);
        wait_until("keyed commands to be served", || {
            redis::cmd("LLEN").arg("probe").query::<i64>(&mut c).is_ok()
        });
    }
    // Find a key the first server does not own (a cluster-mode connection is told
    // MOVED): a plain RPUSH on it is forwarded, a blocking pop redirected instead.
    let mut cluster_mode = sync_con(servers[0].port);
    let _: () = redis::cmd("READONLY")
        .query(&mut cluster_mode)
        .expect("readonly");
    let k = (0..500)
        .map(|i| format!("k{i}"))
        .find(|k| {
            redis::cmd("LLEN")
                .arg(k)
                .query::<i64>(&mut cluster_mode)
                .is_err_and(|e| e.code() == Some("MOVED"))
        })
        .expect("a key of the second stripe");
    let mut c = sync_con(servers[0].port);
    let n: i64 = redis::cmd("RPUSH")
        .arg(&k)
        .arg("v")
        .query(&mut c)
        .expect("forwarded push");
    assert_eq!(n, 1);
    let e = redis::cmd("BLPOP")
        .arg(&k)
        .arg(1)
        .query::<Value>(&mut c)
        .expect_err("blocking commands are not forwarded");
    assert_eq!(e.code(), Some("MOVED"), "{e}");
    assert!(e.to_string().contains(&servers[1].port.to_string()), "{e}");
    // On the owner it is served.
    let got: (String, String) = redis::cmd("BLPOP")
        .arg(&k)
        .arg(1)
        .query(&mut sync_con(servers[1].port))
        .expect("served on the owner");
    assert_eq!(got, (k, "v".to_string()));
}

#[tokio::test]
async fn resp3_blocked_pop_replies_are_arrays() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let mut r = Resp3::connect(s.port);
    r.send(&["BLMPOP", "5", "1", "z", "RIGHT", "COUNT", "2"]);
    wait_blocked(&mut c, 1).await;
    let _: i64 = run(&mut c, ("RPUSH", "z", "1", "2", "3")).await;
    assert_eq!(show(&r.reply()), "[z [3 2]]");
    // Blocked, woken, served: one call.
    let stats: String = run(&mut c, ("INFO", "commandstats")).await;
    assert!(stats.contains("cmdstat_blmpop:calls=1,"), "{stats}");
}

#[tokio::test]
async fn a_blocked_tracking_client_gets_its_invalidations_once() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let mut r = Resp3::connect(s.port);
    assert_eq!(r.text(&["CLIENT", "TRACKING", "ON"]), "OK");
    let _: () = run(&mut c, ("SET", "x", "1")).await;
    assert_eq!(r.text(&["GET", "x"]), "1");
    r.send(&["BLPOP", "q", "5"]);
    wait_blocked(&mut c, 1).await;
    let _: () = run(&mut c, ("SET", "x", "2")).await;
    assert_eq!(
        r.invalidation(Duration::from_secs(5)),
        Some(Some(vec!["x".to_string()])),
        "the invalidation is not held until the pop is served"
    );
    let _: i64 = run(&mut c, ("RPUSH", "q", "a")).await;
    assert_eq!(show(&r.reply()), "[q a]");
    assert!(
        r.frame(Duration::from_millis(300)).is_none(),
        "nothing more (no second copy of the invalidation)"
    );
}
