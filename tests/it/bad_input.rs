//! Hostile and broken input: Redis's errors, the connection closed only on framing errors,
//! the server and other clients unaffected, no data lost.

use std::io::Write;

use redis::cmd;

use crate::util::{TestServer, read_n, read_to_close};

async fn survivor_check(s: &TestServer) {
    let mut c = s.conn().await;
    let v: String = cmd("GET")
        .arg("precious")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(v, "data", "data survived");
}

async fn seed(s: &TestServer) {
    let mut c = s.conn().await;
    let _: () = cmd("SET")
        .arg("precious")
        .arg("data")
        .query_async(&mut c)
        .await
        .unwrap();
}

#[tokio::test]
async fn bulk_length_over_the_limit_closes_only_that_connection() {
    let s = TestServer::start();
    seed(&s).await;
    let mut other = s.conn().await;
    let mut raw = s.raw();
    raw.write_all(b"*2\r\n$3\r\nGET\r\n$999999999999\r\n")
        .unwrap();
    let (out, closed) = read_to_close(&mut raw);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(closed, "the connection is closed after a protocol error");
    let pong: String = cmd("PING").query_async(&mut other).await.unwrap();
    assert_eq!(pong, "PONG");
    survivor_check(&s).await;
}

#[tokio::test]
async fn garbage_bytes() {
    let s = TestServer::start();
    seed(&s).await;
    for garbage in [
        &b"*abc\r\n"[..],
        b"*1\r\n:12\r\n",
        b"*2\r\n$3\r\nGET\r\n$x\r\n",
        b"SET \"unterminated\r\n",
        b"*3000000\r\n",
    ] {
        let mut raw = s.raw();
        raw.write_all(garbage).unwrap();
        let (out, closed) = read_to_close(&mut raw);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.starts_with("-ERR Protocol error: "),
            "{garbage:?} -> {text:?}"
        );
        assert!(closed);
    }
    // Binary junk that is a valid inline line is just an unknown command.
    let mut raw = s.raw();
    raw.write_all(b"\x01\x02\xff\xfe\r\nPING\r\n").unwrap();
    let out = String::from_utf8_lossy(&read_n(&mut raw, 60)).to_string();
    assert!(out.starts_with("-ERR unknown command '"), "{out:?}");
    assert!(out.ends_with("+PONG\r\n"));
    survivor_check(&s).await;
}

#[tokio::test]
async fn unterminated_frame_then_close() {
    let s = TestServer::start();
    seed(&s).await;
    for _ in 0..20 {
        let mut raw = s.raw();
        raw.write_all(b"*3\r\n$3\r\nSET\r\n$8\r\nprecious\r\n$100\r\nhalf")
            .unwrap();
        drop(raw);
    }
    survivor_check(&s).await;
    let mut c = s.conn().await;
    let n: i64 = cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(n, 1, "the half-sent SET was never applied");
}

#[tokio::test]
async fn command_errors_keep_the_connection() {
    let s = TestServer::start();
    let mut raw = s.raw();
    raw.write_all(b"SET n abc\r\nINCR n\r\nINCRBY n 99999999999999999999\r\nSET big 9223372036854775807\r\nINCRBY big 1\r\nGET\r\nPING\r\n").unwrap();
    let out = String::from_utf8_lossy(&read_n(&mut raw, 230)).to_string();
    assert_eq!(
        out,
        "+OK\r\n-ERR value is not an integer or out of range\r\n-ERR value is not an integer or out of range\r\n+OK\r\n-ERR increment or decrement would overflow\r\n-ERR wrong number of arguments for 'get' command\r\n+PONG\r\n"
    );
}

#[tokio::test]
async fn maxclients_refuses_with_redis_error() {
    let s = TestServer::start_with(Some("limits:\n  maxclients: 2\n"), &[]);
    // The readiness probe's connection may not be reaped yet on a busy machine: retry
    // until two clients are in.
    let live = |s: &TestServer| {
        let mut c = s.raw();
        c.write_all(b"PING\r\n").ok()?;
        (read_n(&mut c, 7) == b"+PONG\r\n").then_some(c)
    };
    let mut clients = Vec::new();
    for _ in 0..40 {
        if clients.len() == 2 {
            break;
        }
        match live(&s) {
            Some(c) => clients.push(c),
            None => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    assert_eq!(clients.len(), 2, "two clients could not connect");
    for _ in 0..10 {
        let mut third = s.raw();
        third
            .set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .unwrap();
        let (out, closed) = read_to_close(&mut third);
        if out.is_empty() && !closed {
            // Accepted: the probe was still counted. Try again.
            continue;
        }
        assert_eq!(
            String::from_utf8_lossy(&out),
            "-ERR max number of clients reached\r\n"
        );
        assert!(closed);
        return;
    }
    panic!("a third client was never refused");
}

#[tokio::test]
async fn idle_timeout_closes_idle_clients() {
    let s = TestServer::start_with(Some("limits:\n  timeout: 1s\n"), &[]);
    let mut raw = s.raw();
    let started = std::time::Instant::now();
    let (_, closed) = read_to_close(&mut raw);
    assert!(closed, "closed by the server");
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
}
